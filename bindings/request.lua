-- mxdeploy.request: one HTTP request with the retry policy, JSON bodies and structured errors,
-- over core.http (which performs exactly one exchange). This is `mx.request`.
--
--   mx.request{method=, url=, headers=, query=, query_order=, query_raw=, json=, body=, file=, form=, output=,
--              timeout=, connect_timeout=, raw=, retry=, auth=, auth_scheme=, on_progress=, insecure=,
--              ca_file=, max_response_size=, trace=}
--   budget: a mxdeploy.rate_budget shared with other requests (a client's): waited on before each
--   exchange, paused by a 429 for every request to that host.
--   query_order: query keys to put first, in this order (an operation's documented order);
--   the other keys follow, sorted. query_raw: set of keys whose values are already percent-encoded.
--   -> {status=, headers=, body=, json=, url=, retries=, time=}
--
-- A status >= 400 raises an `http` error (mxdeploy.errors) unless `raw = true`; so does a final
-- redirect (3xx) that was not followed (a loop past max_redirects, no Location), unless the
-- caller asked for redirects themselves (max_redirects = 0).
--
-- Deadline: `timeout` seconds bound the whole call, retries and their waits included. Without
-- one, a call inside mx.timeout(s, fn) gets that deadline, else the client's `timeout`, else
-- M.default_timeout (120 s) for an API call; a transfer to or from a file (file=, output=) has
-- no default deadline (it fails when stalled: low_speed_time).
-- Size: an answer held in memory (not output= to a file) may be at most `max_response_size`
-- bytes decompressed (default 16 MiB); a larger one is a `response` error, never retried.

local core = require("mxdeploy.core")
local json = require("mxdeploy.json")
local errors = require("mxdeploy.errors")
local retry_policy = require("mxdeploy.retry_policy")

local M = {}

--- The deadline of an API call that sets none (seconds; mx.connect{timeout=} or a call's own).
M.default_timeout = 120

--- mx.timeout(s, fn) deadlines by task: a call made in fn's task uses it instead of the default.
M.call_deadlines = setmetatable({}, { __mode = "k" })

--- Percent-encodes a string for a URL path segment or query value (RFC 3986 unreserved kept).
local function escape_char(c) return ("%%%02X"):format(c:byte()) end
function M.escape(s)
  if type(s) ~= "string" then s = tostring(s) end
  if s:find("^[%w._~-]*$") then return s end -- most values need nothing (anchored: 2x faster)
  return (s:gsub("[^%w%-%._~]", escape_char))
end

local function query_value(v)
  if type(v) == "boolean" then return v and "true" or "false" end
  if math.type(v) == "float" and v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then
    return ("%d"):format(v)
  end
  return tostring(v)
end

--- Appends `query` (a table; array values repeat the key). Keys listed in `order` come first,
--- in that order; the others follow sorted, so the URL is stable. Values of keys in `raw` are
--- already percent-encoded and go out as given.
function M.with_query(url, query, order, raw)
  if query == nil or next(query) == nil then return url end
  local keys, rest, placed = {}, {}, {}
  for _, k in ipairs(order or {}) do
    if query[k] ~= nil and not placed[k] then
      keys[#keys + 1] = k
      placed[k] = true
    end
  end
  for k in pairs(query) do
    if not placed[k] then rest[#rest + 1] = k end
  end
  table.sort(rest, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  local parts = {}
  for _, k in ipairs(keys) do
    local v = query[k]
    if type(v) == "table" then
      for _, item in ipairs(v) do
        parts[#parts + 1] = M.escape(k) .. "=" .. M.escape(query_value(item))
      end
    elseif v ~= nil and v ~= json.null then
      parts[#parts + 1] = M.escape(k) .. "=" .. (raw and raw[k] and query_value(v) or M.escape(query_value(v)))
    end
  end
  if #parts == 0 then return url end
  return url .. (url:find("?", 1, true) and "&" or "?") .. table.concat(parts, "&")
end

local ALLOWED = {
  method = true, url = true, headers = true, query = true, query_order = true, query_raw = true, json = true, body = true, file = true,
  form = true, output = true, timeout = true, connect_timeout = true, low_speed_time = true,
  raw = true, retry = true, auth = true, auth_scheme = true, on_progress = true, insecure = true, ca_file = true,
  max_redirects = true, trace = true, policy = true, budget = true, max_response_size = true, defaults = true,
}

-- Refuses a request table mx.request cannot send as asked (also before a dry run records it).
local function check(req)
  if type(req) ~= "table" then
    errors.raise(errors.argument("request", 1, "table expected, got " .. errors.typename(req)), 3)
  end
  for k in pairs(req) do
    if not ALLOWED[k] then
      local names = {}
      for name in pairs(ALLOWED) do names[#names + 1] = name end
      table.sort(names)
      local hint = errors.did_you_mean(tostring(k), names)
      errors.raise(errors.argument("request", 1, "unknown field '" .. tostring(k) .. "'"
        .. (hint and ("; did you mean " .. hint .. "?") or (" (fields: " .. table.concat(names, ", ") .. ")"))), 3)
    end
  end
  if type(req.url) ~= "string" or not req.url:match("^https?://") then
    errors.raise(errors.argument("request", 1, "url: absolute http(s) URL expected, got "
      .. (type(req.url) == "string" and ("'" .. errors.redact_url(req.url) .. "'") or errors.typename(req.url))), 3)
  end
  if req.method ~= nil and type(req.method) ~= "string" then
    errors.raise(errors.argument("request", 1, "method: string expected, got " .. errors.typename(req.method)), 3)
  end
  if req.json ~= nil and req.body ~= nil then
    errors.raise(errors.argument("request", 1, "json and body are exclusive"), 3)
  end
  if req.query_order ~= nil and type(req.query_order) ~= "table" then
    errors.raise(errors.argument("request", 1, "query_order: array of keys expected, got " .. errors.typename(req.query_order)), 3)
  end
  if req.file ~= nil and type(req.file) ~= "string" then
    errors.raise(errors.argument("request", 1, "file: path expected, got " .. errors.typename(req.file)), 3)
  end
  local timeout, max_size = req.timeout, req.max_response_size
  if timeout ~= nil and (type(timeout) ~= "number" or not (timeout > 0)) then
    errors.raise(errors.argument("request", 1, "timeout: positive number expected, got " .. tostring(timeout)), 3)
  end
  if max_size ~= nil and (type(max_size) ~= "number" or not (max_size > 0)) then
    errors.raise(errors.argument("request", 1, "max_response_size: positive number expected, got " .. tostring(max_size)), 3)
  end
end

-- The call's deadline (absolute) and its length, or nil: see the module comment.
local function call_deadline(req)
  local now = core.now()
  if req.timeout then return now + req.timeout, req.timeout end
  local task = core.current()
  local d = task and M.call_deadlines[task]
  if d then return d, d - now end
  local defaults = req.defaults
  local s = defaults and defaults.timeout
  if s == nil and req.file == nil and req.output == nil then s = M.default_timeout end
  if s then return now + s, s end
end

-- "503", "timeout", "network error (Connection refused)": what a retry decision was about.
local function failure_of(resp, err)
  if resp then return tostring(resp.status) end
  if err.kind == "network" then return "network error (" .. tostring(err.message) .. ")" end
  return tostring(err.kind)
end

-- The error for a final redirect that was not followed.
local REDIRECT_STOPS = {
  limit = "stopped after %d redirects (the limit, max_redirects)",
  no_location = "redirect without a Location header",
  loop = "redirected back to a URL it was sent to: a %s is never sent twice",
}
local function redirect_error(where, resp, retries)
  local e = errors.http(where, resp, retries)
  local stop = REDIRECT_STOPS[resp.redirect_stop] or "unexpected redirect status %d"
  local msg = stop:format(resp.redirect_stop == "limit" and resp.redirects
    or resp.redirect_stop == "loop" and where.method or resp.status)
  local location = resp.headers and resp.headers.location
  if location and resp.redirect_stop ~= "no_location" then
    msg = msg .. ", last Location: " .. core.redact_url(location)
  end
  e.message = errors.printable(msg)
  return e
end

-- Fields handed to core.http as given.
local PASSED = { "file", "form", "output", "timeout", "connect_timeout", "low_speed_time", "on_progress",
  "auth", "auth_scheme", "insecure", "ca_file", "max_redirects", "trace" }

M.check = check

-- The request, its table already checked.
local function perform(req)
  local method = req.method
  method = method and method:upper() or "GET"
  local url = M.with_query(req.url, req.query, req.query_order, req.query_raw)
  local headers = req.headers -- core.http only reads it: copied only to add a header
  local body = req.body
  if req.json ~= nil then
    body = json.encode(req.json)
    local has_ct = false
    for k in pairs(headers or {}) do if k:lower() == "content-type" then has_ct = true end end
    if not has_ct then
      local copy = { ["Content-Type"] = "application/json" }
      for k, v in pairs(headers or {}) do copy[k] = v end
      headers = copy
    end
  end
  local policy = retry_policy.resolve(req.policy or M.policy, req.retry)
  -- only the fields that are set: a constructor naming all of them sized the table for all
  -- decode_json: core.http decodes a JSON answer (Content-Type application/...json or +json)
  -- into resp.json, or says why it could not in resp.json_error
  local exchange = { method = method, url = url, headers = headers, body = body, decode_json = true }
  for i = 1, #PASSED do
    local k = PASSED[i]
    local v = req[k]
    if v ~= nil then exchange[k] = v end
  end
  local limits = req.defaults
  exchange.max_response_size = req.max_response_size or (limits and limits.max_response_size)
  local deadline, seconds = call_deadline(req)
  local retries = 0
  local budget = req.budget
  while true do
    if budget then budget:acquire(url) end
    if deadline then exchange.timeout = math.max(deadline - core.now(), 0.001) end
    local resp, err = core.http(exchange)
    local delay, why
    local paused -- seconds the budget pauses this host (a 429): budget:acquire waits, not a sleep
    if err and err.kind == "timeout" and deadline and core.now() >= deadline - 0.005 then
      err.message = ("no complete answer within the call's deadline of %g s (%s)"):format(seconds, err.message)
      delay, why = nil, "the call's deadline passed"
    elseif resp then
      if budget and resp.status == 429 then
        -- the host's limit holds for every task of the client: pause them all
        paused = math.min(retry_policy.server_wait(resp) or retry_policy.backoff(policy, retries + 1),
          policy.max_retry_after or 120)
        budget:pause(url, paused)
      end
      -- an answer that is neither an error nor a retryable status ends the call: no decision
      if resp.status >= 400 or policy.statuses[resp.status] then
        delay, why = retry_policy.decide(policy, method, resp, nil, retries)
      end
    else
      delay, why = retry_policy.decide(policy, method, nil, err, retries)
    end
    if delay and deadline and core.now() + math.max(delay, paused or 0) >= deadline then
      delay, why = nil, ("the call's deadline (%g s) would pass"):format(seconds)
    end
    local failed = err or resp.status >= 400
    if delay then
      core.http_trace(("retrying %s %s in %.1f s after %s (attempt %d of %d)"):format(method, errors.url_path(url),
        math.max(delay, paused or 0), failure_of(resp, err), retries + 2, (policy.max_retries or 0) + 1), req.trace)
      if paused then delay = 0 end -- budget:acquire waits
    elseif failed then
      core.http_trace(("not retrying %s %s after %s: %s"):format(method, errors.url_path(url), failure_of(resp, err), why),
        req.trace)
    end
    if not delay then
      local where = failed and { method = method, url = url } -- what an error names
      if err then
        local e = errors.transport(where, err, retries)
        if err.reached and not policy.idempotent[method] then e.maybe_applied = true end
        if deadline and err.kind == "timeout" then e.deadline = seconds end
        errors.raise(e, 2)
      end
      resp.retries = retries
      if resp.status >= 400 and not req.raw then
        errors.raise(errors.http(where, resp, retries), 2)
      end
      if resp.status >= 300 and resp.status < 400 and not req.raw
        and not (exchange.max_redirects == 0 and resp.headers.location) then
        errors.raise(redirect_error({ method = method, url = url }, resp, retries), 2)
      end
      return resp
    end
    retries = retries + 1
    if delay > 0 then
      core.sleep(delay, ("retry %d of %s %s in %.1f s"):format(retries, method, core.redact_url(url), delay))
    end
  end
end

--- Performs the request (see module comment). `req.policy` is the base retry policy (a client's);
--- `req.retry` overrides it for this call.
function M.request(req)
  check(req)
  return perform(req)
end

--- M.request without check(): for a request table built by our own code from arguments it has
--- checked itself (client.lua's operations), where walking its ~10 fields again was ~8K
--- instructions per call.
M.perform = perform

--- The base retry policy of `mx.request` (module-level; `mx.retry_policy`).
M.policy = retry_policy.default

return M
