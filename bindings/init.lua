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
--   mx.setup{dry_run=, yes=, json=, profile=, endpoint=}  the run options (the host's --dry-run,
--                              --yes, --json, --profile, --endpoint), read back as mx.options
--   mx.map(list, fn, {concurrency=})   fan-out;  mx.raw{...}  a body sent as it is
--   mx.version, mx.require_version(">= 0.2")

local core = require("mxdeploy.core")
local json = require("mxdeploy.json")
local errors = require("mxdeploy.errors")
local request = require("mxdeploy.request")
local tasks = require("mxdeploy.tasks")
local jobs = require("mxdeploy.jobs") -- tasks needs it anyway

-- The operation table, clients and argument rules load on first use (mx.connect, mx.v1, ...,
-- mx.operations, mx.raw): building the 83 operations was most of `mxdeploy -e ''`, which a
-- script that only spawns tasks or sends mx.request never needs. Functions that forward to them
-- make a tail call, so an argument error still names the caller's line.
local function lazy(name)
  return function() return require(name) end
end
local operations, client, arguments =
  lazy("mxdeploy.operations"), lazy("mxdeploy.client"), lazy("mxdeploy.arguments")

local M = {}

M.version = "0.2.0"

-- tasks and waiting
M.spawn = core.spawn
M.sleep = core.sleep
M.now = core.now
M.pending = core.pending
M.current = core.current
M.wait_all = tasks.wait_all
M.wait_any = tasks.wait_any
M.timeout = tasks.timeout
M.map = tasks.map
function M.raw(...) return arguments().raw(...) end

-- HTTP (mx.request and mx.download: below, with the dry-run rule)
M.retry_policy = request.policy
M.progress = require("mxdeploy.progress").new
M.logger = require("mxdeploy.progress").logger
M.format_size = require("mxdeploy.progress").format_size
function M.package_size(...) return arguments().package_size(...) end

--- Transport settings for the whole process: `max_host_connections` (concurrent connections to
--- one host, default 64) and `trace` (true, "headers", "body" or false: like --trace=LEVEL).
--- Returns the connection cap in force.
function M.configure(opts)
  if type(opts) ~= "table" then
    errors.raise(errors.argument("configure", 1, "table expected, got " .. errors.typename(opts)), 2)
  end
  for k in pairs(opts) do
    if k ~= "max_host_connections" and k ~= "trace" then
      local hint = errors.did_you_mean(tostring(k), { "max_host_connections", "trace" })
      errors.raise(errors.argument("configure", 1, "unknown option '" .. tostring(k) .. "'"
        .. (hint and ("; did you mean " .. hint .. "?") or " (expected max_host_connections, trace)")), 2)
    end
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

function M.connect(...) return client().connect(...) end

--- One record per operation: namespace, name, method, path, completes ("now"|"job"), params,
--- input, paginated, iterator, summary, source.
function M.operations()
  return operations().records()
end

local function namespaces()
  return operations().namespace
end

--- Run options of this process, set by the host from its command line (mx.setup): dry_run,
--- yes, json (false, "document" or "ndjson"), profile, endpoint.
M.options = { dry_run = false, yes = false, json = false }

local function client_options()
  local o = M.options
  return { dry_run = o.dry_run or nil, yes = o.yes or nil, profile = o.profile, endpoint = o.endpoint }
end

--- Sets the run options (see M.options) and rebuilds the default client with them.
function M.setup(opts)
  if type(opts) ~= "table" then
    errors.raise(errors.argument("setup", 1, "table expected, got " .. errors.typename(opts)), 2)
  end
  local known = { dry_run = "boolean", yes = "boolean", json = "string|boolean", profile = "string", endpoint = "string" }
  for k, v in pairs(opts) do
    if not known[k] then
      errors.raise(errors.argument("setup", 1, "unknown option '" .. tostring(k) .. "'"), 2)
    end
    if not known[k]:find(type(v), 1, true) then
      errors.raise(errors.argument("setup", 1, k .. ": " .. known[k] .. " expected, got " .. errors.typename(v)), 2)
    end
  end
  if opts.json ~= nil and opts.json ~= false and opts.json ~= "document" and opts.json ~= "ndjson" then
    errors.raise(errors.argument("setup", 1, "json: false, 'document' or 'ndjson' expected"), 2)
  end
  for k, v in pairs(opts) do M.options[k] = v end
  local current = rawget(M, "default_client")
  if current and current._sandbox then
    -- --sandbox came first: keep its URLs and credentials
    return M.set_default_client(M.sandbox_client(current._sandbox))
  end
  return M.set_default_client(M.connect(client_options()))
end

--- Puts the default client in dry-run mode (the script's own --dry-run). Returns it.
function M.set_dry_run(on)
  M.options.dry_run = on and true or false
  M.default_client.dry_run = M.options.dry_run
  return M.default_client
end

--- The calls dry-run mode recorded instead of sending (default client).
function M.plan()
  return M.default_client.plan
end

--- Asks once (on a terminal) before a change; refuses without a terminal unless --yes.
function M.confirm(question, key)
  return M.default_client:confirm(key or question, question)
end

local function parse_version(v)
  local parts = {}
  for n in tostring(v):gmatch("%d+") do parts[#parts + 1] = tonumber(n) end
  return parts
end

local function compare_versions(a, b)
  for i = 1, math.max(#a, #b) do
    local x, y = a[i] or 0, b[i] or 0
    if x ~= y then return x < y and -1 or 1 end
  end
  return 0
end

--- Checks that this mxdeploy satisfies `spec` (">= 0.2", "> 0.1.3", "< 1", "== 0.2.0"; several
--- joined by commas must all hold). Raises a one-line `version` error otherwise.
function M.require_version(spec)
  if type(spec) ~= "string" then
    errors.raise(errors.argument("require_version", 1, "string expected, got " .. errors.typename(spec)), 2)
  end
  local have = parse_version(M.version)
  for clause in spec:gmatch("[^,]+") do
    local op, v = clause:match("^%s*([<>=~]*)%s*(%d[%d%.]*)%s*$")
    if not op then
      errors.raise(errors.argument("require_version", 1, "version requirement like '>= 0.2' expected, got '" .. spec .. "'"), 2)
    end
    local c = compare_versions(have, parse_version(v))
    local ok = ({ [">="] = c >= 0, [">"] = c > 0, ["<="] = c <= 0, ["<"] = c < 0, ["=="] = c == 0, ["="] = c == 0, [""] = c >= 0 })[op]
    if ok == nil then
      errors.raise(errors.argument("require_version", 1, "unknown comparison '" .. op .. "' in '" .. spec .. "'"), 2)
    end
    if not ok then
      errors.raise(errors.new("version", { message = ("this script needs mxdeploy %s; this is mxdeploy %s"):format(spec, M.version) }), 2)
    end
  end
  return true
end

--- Makes `c` the client behind mx.v1, mx.v2, ...
function M.set_default_client(c)
  M.default_client = c
  for _, n in ipairs(operations().namespaces) do M[n.ns] = c[n.ns] end
  return c
end

--- Points the default client at a sandbox started by mxdeploy.sandboxctl (its URL layout:
--- /deploy/api/1, /deploy/api/v2, /cloud/api/v4, /privatecloud/api/v4, /pipelines/api/v1,
--- /webhooks/api/v1, /repository/v1). Returns the client.
function M.sandbox_client(sb, extra)
  local opts = {
    username = sb.username, apikey = sb.apikey, token = sb.token,
    base_urls = client().endpoint_urls(sb.url),
    poll_interval = 0.05, dry_run = M.options.dry_run or nil, yes = M.options.yes or nil,
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

-- help: one description of every operation and mx function (mxdeploy.help, mxdeploy.api_docs),
-- loaded on the first call: its tables are no work for a script that never asks (start-up).
local function from_help(name)
  return function(...)
    local help = require("mxdeploy.help")
    help.attach(M, client())
    return help[name](...) -- a tail call: argument errors still point at the caller
  end
end
M.describe = from_help("describe")
M.help = from_help("help")
M.signature = from_help("signature")

-- The default client (mx.default_client, behind mx.v1, mx.v2, ...) is made on first use.
setmetatable(M, {
  __index = function(_, k)
    if k == "default_client" or (type(k) == "string" and namespaces()[k]) then
      M.set_default_client(M.connect())
      return rawget(M, k)
    end
  end,
  -- for the REPL's completion: the names __index answers
  __complete = function()
    local names = { "default_client" }
    for _, n in ipairs(operations().namespaces) do names[#names + 1] = n.ns end
    return names
  end,
})

-- mx.request and mx.download send what they are given: in dry-run mode (mx.options.dry_run) a
-- call that changes something is recorded on the default client's plan instead.
function M.request(req)
  request.check(req) -- a misspelt option is refused in a dry run too, not recorded
  if M.options.dry_run and type(req) == "table" and ((req.method or "GET"):upper() ~= "GET" or req.output) then
    M.default_client:record_plan({ method = (req.method or "GET"):upper(), path = errors.url_path(req.url),
      body = req.json, output = req.output, operation = "request" })
    return { status = 0, planned = true, headers = {}, json = { planned = true } }
  end
  return request.perform(req) -- checked above
end

function M.download(url, output, opts)
  if M.options.dry_run and output ~= nil then
    M.default_client:record_plan({ method = "GET", path = errors.url_path(url), output = output, operation = "download" })
    return output
  end
  return client().download(url, output, opts)
end

return M
