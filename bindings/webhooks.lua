-- mxdeploy.webhooks: checking and receiving Mendix webhook deliveries (docs/webhooks.md).
--
--   mx.webhooks.verify(secret, headers, body [, {tolerance = 300, now = epoch}]) -> true | nil, reason
--   local srv = mx.webhooks.serve{secret =, on_event = function(event, delivery) ... end,
--                                 port = 0, address = "127.0.0.1", tolerance = 300, log = fn}
--   srv.port, srv.url, srv.stats, srv:wait() (until closed), srv:settle() (running handlers), srv:close()
--
-- A delivery is signed: webhook-signature = "v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>"
-- (the secret as written, as in the docs' openssl example). When several signatures are listed
-- (space separated) the first is the current one. The comparison is constant-time and the
-- timestamp must be within `tolerance` seconds of now (either way), so an old delivery cannot be
-- replayed.
--
-- serve: each verified POST is answered 204 at once and runs on_event(event, delivery) as a task
-- of its own on the scheduler (a handler may wait on jobs while other deliveries arrive);
-- event = the decoded JSON body, delivery = {id=, timestamp=, headers=, body=, remote=}. A
-- delivery whose webhook-id was handled already (the sender retries) is answered 204 and not run
-- again. An unverified one gets 401 and one log line without its body; a non-POST gets 405, a
-- body that is not JSON 400.

local core = require("mxdeploy.core")
local json = require("mxdeploy.json")
local errors = require("mxdeploy.errors")

local M = {}

local function header(headers, name)
  local v = headers[name]
  if v ~= nil then return v end
  for k, x in pairs(headers) do
    if type(k) == "string" and k:lower() == name then return x end
  end
  return nil
end

local function argument(fname, n, what)
  errors.raise(errors.argument(fname, n, what), 3)
end

--- Checks a delivery's signature and age. Returns true, or nil and the reason.
function M.verify(secret, headers, body, opts)
  if type(secret) ~= "string" or secret == "" then
    argument("webhooks.verify", 1, "secret: non-empty string expected, got " .. errors.typename(secret))
  end
  if type(headers) ~= "table" then
    argument("webhooks.verify", 2, "headers: table expected, got " .. errors.typename(headers))
  end
  if type(body) ~= "string" then
    argument("webhooks.verify", 3, "body: string (the raw request body) expected, got " .. errors.typename(body))
  end
  if opts ~= nil and type(opts) ~= "table" then
    argument("webhooks.verify", 4, "table expected, got " .. errors.typename(opts))
  end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "tolerance" and k ~= "now" then
      argument("webhooks.verify", 4, "unknown option '" .. tostring(k) .. "' (expected tolerance, now)")
    end
  end
  local tolerance = opts.tolerance or 300
  if type(tolerance) ~= "number" or not (tolerance >= 0) then
    argument("webhooks.verify", 4, "tolerance: non-negative number of seconds expected")
  end
  local now = opts.now or os.time()
  if type(now) ~= "number" then argument("webhooks.verify", 4, "now: epoch seconds expected") end

  local id, ts, sigs = header(headers, "webhook-id"), header(headers, "webhook-timestamp"),
    header(headers, "webhook-signature")
  if type(id) ~= "string" or id == "" then return nil, "missing webhook-id header" end
  if type(ts) ~= "string" and math.type(ts) ~= "integer" then return nil, "missing webhook-timestamp header" end
  ts = tostring(ts)
  if not ts:match("^%d+$") or #ts > 15 then return nil, "malformed webhook-timestamp header" end
  if type(sigs) ~= "string" or sigs == "" then return nil, "missing webhook-signature header" end
  local age = now - tonumber(ts)
  if math.abs(age) > tolerance then
    return nil, ("timestamp outside the tolerance of %g s (%s by %d s)"):format(tolerance,
      age > 0 and "old" or "in the future", math.floor(math.abs(age)))
  end
  local first = sigs:match("^%s*(%S+)")
  if not first then return nil, "missing webhook-signature header" end
  local version, given = first:match("^([^,]+),(.+)$")
  if version ~= "v1" then return nil, "unsupported signature version (v1 expected)" end
  local expected = core.base64(core.hmac_sha256(secret, id .. "." .. ts .. "." .. body))
  if not core.equal_ct(expected, given) then return nil, "signature mismatch" end
  return true
end

local Server = {}
Server.__index = Server

function Server:__tostring()
  return ("webhook receiver %s (%d accepted, %d refused)"):format(self.url, self.stats.accepted, self.stats.refused)
end

--- Stops accepting deliveries (handlers already running go on). Idempotent.
function Server:close()
  if self.closed then return end
  self.closed = true
  self._srv:close()
end

--- Waits until the receiver is closed (e.g. by a handler, or Ctrl-C).
function Server:wait()
  return self._dispatcher:wait()
end

--- Waits until every handler started so far has finished (their errors are logged, not raised).
function Server:settle()
  for _, t in ipairs(self.tasks) do pcall(t.wait, t) end
end

local SERVE_OPTIONS = { secret = "string", on_event = "function", port = "number", address = "string",
  tolerance = "number", log = "function", max_body = "number" }

local function redact(s) return (tostring(s):gsub("[%c]", " ")) end

--- Serves webhook deliveries (see the module comment). Returns the receiver.
function M.serve(opts)
  if type(opts) ~= "table" then
    argument("webhooks.serve", 1, "table expected, got " .. errors.typename(opts))
  end
  for k, v in pairs(opts) do
    local want = SERVE_OPTIONS[k]
    if not want then
      argument("webhooks.serve", 1, "unknown option '" .. tostring(k) .. "'")
    end
    if type(v) ~= want then
      argument("webhooks.serve", 1, k .. ": " .. want .. " expected, got " .. errors.typename(v))
    end
  end
  if not opts.secret or opts.secret == "" then argument("webhooks.serve", 1, "secret: the webhook's validation secret expected") end
  if not opts.on_event then argument("webhooks.serve", 1, "on_event: function(event, delivery) expected") end
  local port = opts.port or 0
  if math.type(port) ~= "integer" or port < 0 or port > 65535 then
    argument("webhooks.serve", 1, "port: integer 0 to 65535 expected")
  end
  local address = opts.address or "127.0.0.1"
  local srv = core.webhook_listen{ address = address, port = port, max_body = opts.max_body }
  local log = opts.log or function(line) io.stderr:write(line, "\n") end
  local secret, on_event, tolerance = opts.secret, opts.on_event, opts.tolerance
  local host = address:find(":", 1, true) and ("[" .. address .. "]") or address
  local self = setmetatable({ _srv = srv, port = srv:port(), address = address,
    stats = { accepted = 0, refused = 0, duplicates = 0, failed = 0 }, tasks = {} }, Server)
  self.url = ("http://%s:%d/"):format(host, self.port)
  local seen, order = {}, {}

  local function run(event, delivery)
    local ok, err = pcall(on_event, event, delivery)
    if not ok then
      self.stats.failed = self.stats.failed + 1
      log(("webhook: handler for delivery %s failed: %s"):format(redact(delivery.id), tostring(err)))
    end
  end

  local function handle(d)
    if d.method ~= "POST" then
      srv:respond(d.id, 405, '{"error":"POST expected"}')
      return
    end
    local ok, reason = M.verify(secret, d.headers, d.body, { tolerance = tolerance })
    if not ok then
      self.stats.refused = self.stats.refused + 1
      srv:respond(d.id, 401, '{"error":"unverified delivery"}')
      log(("webhook: refused delivery %s from %s: %s"):format(redact(d.headers["webhook-id"] or "?"),
        d.remote ~= "" and d.remote or "?", reason))
      return
    end
    local wid = d.headers["webhook-id"]
    if seen[wid] then
      self.stats.duplicates = self.stats.duplicates + 1
      srv:respond(d.id, 204)
      return
    end
    local decoded_ok, event = pcall(json.decode, d.body)
    if not decoded_ok then
      srv:respond(d.id, 400, '{"error":"body is not JSON"}')
      return
    end
    seen[wid] = true
    order[#order + 1] = wid
    if #order > 1000 then seen[table.remove(order, 1)] = nil end
    self.stats.accepted = self.stats.accepted + 1
    srv:respond(d.id, 204)
    local delivery = { id = wid, timestamp = tonumber(d.headers["webhook-timestamp"]), headers = d.headers,
      body = d.body, remote = d.remote }
    local t = core.spawn(run, event, delivery)
    if #self.tasks >= 64 then -- keep the handlers still running (and the newest finished ones)
      local kept = {}
      for _, x in ipairs(self.tasks) do
        local st = x:status()
        if st == "ready" or st == "waiting" then kept[#kept + 1] = x end
      end
      self.tasks = kept
    end
    self.tasks[#self.tasks + 1] = t
  end

  self._dispatcher = core.spawn(function()
    while not self.closed do
      local d = srv:next()
      if d == nil then break end
      -- one delivery that breaks its handling must not end the receiver for every later one
      local ok, err = pcall(handle, d)
      if not ok then
        self.stats.failed = self.stats.failed + 1
        srv:respond(d.id, 500, '{"error":"delivery not handled"}')
        log(("webhook: delivery from %s not handled: %s"):format(d.remote ~= "" and d.remote or "?", redact(err)))
      end
    end
  end)
  return self
end

return M
