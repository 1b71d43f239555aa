-- mxdeploy: the Mendix Cloud deployment APIs as one Lua module (global `mx` in the host).
--
--   mx.v1 / v2 / v4 / build / backups / pc / pcbuild   namespaces of the default client
--   mx.connect{...}            a client of its own (mxdeploy.client)
--   mx.request{...}            any HTTP request, with retries and structured errors
--   mx.download(url, path)     fetch a signed URL without credentials
--   mx.operations()            one record per operation;  mx.help(fn_or_name) / mx.describe(...)
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

--- Transport settings for the whole process: `max_host_connections` (concurrent connections to
--- one host, default 64) and `trace` (log every exchange to stderr, like --trace). Returns the
--- connection cap in force.
function M.configure(opts)
  if type(opts) ~= "table" then
    errors.raise(errors.argument("configure", 1, "table expected, got " .. errors.typename(opts)), 2)
  end
  local cap = opts.max_host_connections
  if cap ~= nil and (math.type(cap) ~= "integer" or cap < 1) then
    errors.raise(errors.argument("configure", 1, "max_host_connections must be a positive integer"), 2)
  end
  return core.http_config({ max_host_connections = cap, trace = opts.trace })
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
--- /deploy/api/1, /deploy/api/v2, /cloud/api/v4, /privatecloud/api/v4). Returns the client.
function M.sandbox_client(sb, extra)
  local url = sb.url:gsub("/+$", "")
  local opts = {
    username = sb.username, apikey = sb.apikey, token = sb.token,
    base_urls = {
      v1 = url .. "/deploy/api/1", build = url .. "/deploy/api/1",
      v2 = url .. "/deploy/api/v2", backups = url .. "/deploy/api/v2",
      v4 = url .. "/cloud/api/v4",
      pc = url .. "/privatecloud/api/v4", pcbuild = url .. "/privatecloud/api/v4",
    },
    poll_interval = 0.05,
  }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return M.connect(opts)
end

function M.use_sandbox(sb)
  if type(sb) ~= "table" or type(sb.url) ~= "string" then
    errors.raise(errors.argument("use_sandbox", 1, "table with url expected, got " .. errors.typename(sb)), 2)
  end
  return M.set_default_client(M.sandbox_client(sb))
end

local function signature(op)
  local parts = { table.unpack(op.params) }
  local fields = {}
  for _, f in ipairs(op.fields or {}) do
    fields[#fields + 1] = f.name .. (f.required and "" or "?") .. "=" .. f.type
  end
  local opts = "{" .. table.concat(fields, ", ") .. "}"
  if op.input == "upload" then
    parts[#parts + 1] = "file"
    parts[#parts + 1] = "[" .. opts .. "]"
  elseif op.input == "download" then
    parts[#parts + 1] = "[output]"
    if #fields > 0 then parts[#parts + 1] = opts end
  elseif op.input == "body" then
    parts[#parts + 1] = "[body " .. opts .. "]"
  elseif op.input == "query" then
    parts[#parts + 1] = "[query " .. opts .. "]"
  end
  local returns = op.completes == "job" and "job" or (op.input == "download" and "output path" or "decoded JSON")
  return ("%s(%s) -> %s"):format(op.full_name, table.concat(parts, ", "), returns)
end
M.signature = signature

local function find_ops(x)
  if type(x) == "function" then
    local op = client.function_ops[x]
    return op and { op } or {}
  end
  if type(x) ~= "string" then return {} end
  if operations.by_name[x] then return { operations.by_name[x] } end
  local found = {}
  for _, op in ipairs(operations.list) do
    if op.name == x or op.ns == x or op.path == x then found[#found + 1] = op end
  end
  return found
end

--- Text describing an operation (function, "ns.name", "name", a namespace or a path).
function M.describe(x)
  if x == nil then
    local lines = { "mxdeploy " .. M.version .. ": mx.help(fn) or mx.help('v1.start_environment') describes an operation.",
      "Namespaces (" .. #operations.list .. " operations):" }
    for _, n in ipairs(operations.namespaces) do
      local count = 0
      for _, op in ipairs(operations.list) do if op.ns == n.ns then count = count + 1 end end
      lines[#lines + 1] = ("  mx.%-8s %s (%d operations, %s)"):format(n.ns, n.title, count,
        n.auth == "apikey" and "MENDIX_USERNAME/MENDIX_APIKEY" or "MENDIX_TOKEN")
    end
    return table.concat(lines, "\n")
  end
  local ops = find_ops(x)
  if #ops == 0 then return "no operation matches " .. tostring(x) end
  local out = {}
  for _, op in ipairs(ops) do
    out[#out + 1] = signature(op)
    out[#out + 1] = ("  %s %s   (%s)"):format(op.method, op.path, op.completes == "job" and "returns a job" or "completes now")
    out[#out + 1] = "  " .. op.summary
    for _, f in ipairs(op.fields or {}) do
      out[#out + 1] = ("    %s (%s%s)%s"):format(f.name, f.type, f.required and ", required" or "",
        f.doc and (": " .. f.doc) or "")
    end
    if op.note then out[#out + 1] = "  " .. op.note end
    if op.each then out[#out + 1] = "  Iterator: for item in " .. op.ns .. "." .. op.each .. "(...) do ... end" end
    out[#out + 1] = "  Docs: " .. op.source
  end
  return table.concat(out, "\n")
end

--- Prints M.describe(x).
function M.help(x)
  print(M.describe(x))
end

M.set_default_client(M.connect())

return M
