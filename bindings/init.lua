-- mxdeploy: the Mendix Cloud deployment APIs as one Lua module (global `mx` in the host).
--
--   mx.v1 / v2 / v4 / build / backups / pc / pcbuild / pipelines / webhooks / repository
--                              namespaces of the default client
--   mx.connect{...}            a client of its own (mxdeploy.client)
--   mx.request{...}            any HTTP request, with retries and structured errors
--   mx.download(url, path)     fetch a signed URL without credentials
--   mx.operations()            one record per operation;  mx.help(x) / mx.describe(x) / mx.signature(x)
--   mx.spawn, sleep, now, wait_all, wait_any, timeout, pending   tasks and waiting
--   mx.json, null, array, errors, retry_policy
--   mx.use_sandbox{url=, username=, apikey=, token=}   point the default client at a sandbox

local core = require("mxdeploy.core")
local json = require("mxdeploy.json")
local errors = require("mxdeploy.errors")
local operations = require("mxdeploy.operations")
local request = require("mxdeploy.request")
local client = require("mxdeploy.client")
local tasks = require("mxdeploy.tasks")
local jobs = require("mxdeploy.jobs")

local M = {}

M.version = "0.1.0"

-- tasks and waiting
M.spawn = core.spawn
M.sleep = core.sleep
M.now = core.now
M.pending = core.pending
M.current = core.current
M.wait_all = tasks.wait_all
M.wait_any = tasks.wait_any
M.timeout = tasks.timeout

-- HTTP
M.request = request.request
M.download = client.download
M.retry_policy = request.policy
M.progress = require("mxdeploy.progress").new
M.logger = require("mxdeploy.progress").logger
M.format_size = require("mxdeploy.progress").format_size
M.package_size = require("mxdeploy.arguments").package_size

--- Transport settings for the whole process: `max_host_connections` (concurrent connections to
--- one host, default 64) and `trace` (true, "headers", "body" or false: like --trace=LEVEL).
--- Returns the connection cap in force.
function M.configure(opts)
  if type(opts) ~= "table" then
    errors.raise(errors.argument("configure", 1, "table expected, got " .. errors.typename(opts)), 2)
  end
  local cap = opts.max_host_connections
  if cap ~= nil and (math.type(cap) ~= "integer" or cap < 1) then
    errors.raise(errors.argument("configure", 1, "max_host_connections must be a positive integer"), 2)
  end
  local trace = opts.trace
  if trace ~= nil and type(trace) ~= "boolean" and trace ~= "exchanges" and trace ~= "headers" and trace ~= "body" then
    errors.raise(errors.argument("configure", 1, "trace must be a boolean, 'headers' or 'body', got "
      .. (type(trace) == "string" and ("'" .. trace .. "'") or errors.typename(trace))), 2)
  end
  return core.http_config({ max_host_connections = cap, trace = trace })
end

-- data
M.json = json
M.null = json.null
M.array = json.array
M.errors = errors
M.is_job = jobs.is_job

M.connect = client.connect

--- One record per operation: namespace, name, method, path, completes ("now"|"job"), params,
--- input, paginated, iterator, summary, source.
function M.operations()
  return operations.records()
end

local NAMESPACES = {}
for _, n in ipairs(operations.namespaces) do NAMESPACES[#NAMESPACES + 1] = n.ns end

--- Makes `c` the client behind mx.v1, mx.v2, ...
function M.set_default_client(c)
  M.default_client = c
  for _, ns in ipairs(NAMESPACES) do M[ns] = c[ns] end
  return c
end

--- Points the default client at a sandbox started by mxdeploy.sandboxctl (its URL layout:
--- /deploy/api/1, /deploy/api/v2, /cloud/api/v4, /privatecloud/api/v4, /pipelines/api/v1,
--- /webhooks/api/v1, /repository/v1). Returns the client.
function M.sandbox_client(sb, extra)
  local url = sb.url:gsub("/+$", "")
  local opts = {
    username = sb.username, apikey = sb.apikey, token = sb.token,
    base_urls = {
      v1 = url .. "/deploy/api/1", build = url .. "/deploy/api/1",
      v2 = url .. "/deploy/api/v2", backups = url .. "/deploy/api/v2",
      v4 = url .. "/cloud/api/v4",
      pc = url .. "/privatecloud/api/v4", pcbuild = url .. "/privatecloud/api/v4",
      pipelines = url .. "/pipelines/api/v1", webhooks = url .. "/webhooks/api/v1",
      repository = url .. "/repository/v1",
    },
    poll_interval = 0.05,
  }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local c = M.connect(opts)
  -- the client keeps its sandbox alive: a sandbox handle nobody else holds would be collected
  -- (and stopped) while the client still talks to it
  c._sandbox = sb
  return c
end

function M.use_sandbox(sb)
  if type(sb) ~= "table" or type(sb.url) ~= "string" then
    errors.raise(errors.argument("use_sandbox", 1, "table with url expected, got " .. errors.typename(sb)), 2)
  end
  return M.set_default_client(M.sandbox_client(sb))
end

-- help: one description of every operation and mx function (mxdeploy.help, mxdeploy.api_docs)
local help = require("mxdeploy.help")
help.attach(M, client)
M.describe = help.describe
M.help = help.help
M.signature = help.signature

M.set_default_client(M.connect())

return M
