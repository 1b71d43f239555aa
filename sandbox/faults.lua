-- The fault engine: rules that spoil matching requests, before the simulation sees them (the
-- request has no effect) or after (it did take effect). The rule fields are documented at the
-- top of init.lua; the same rules come from app:configure{faults=}, new{faults=} and a file
-- (M.load: JSON or a Lua chunk returning the list).
local U = require("mxdeploy.sandbox.util")
local json = U.json
local errors = require("mxdeploy.sandbox.errors")

local M = {}

local FIELDS = { route = "string", listener = "string", latency = "number", error_rate = "number",
  status = "number", rate_limit = "table", redirect = "string", error = "string", drop = "boolean",
  truncate = "boolean", body = "string", job_fail = true, times = "number", webhook = "string" }

local function glob_to_pattern(g)
  return "^" .. g:gsub("[%-%.%+%[%]%(%)%$%^%%%?]", "%%%0"):gsub("%*", ".*") .. "$"
end

local function check(i, f)
  if type(f) ~= "table" then error("fault #" .. i .. " must be a table", 0) end
  for k, v in pairs(f) do
    local want = FIELDS[k]
    if not want then
      local names = {}
      for n in pairs(FIELDS) do names[#names + 1] = n end
      table.sort(names)
      error("fault #" .. i .. ": unknown field '" .. tostring(k) .. "' (fields: " .. table.concat(names, ", ") .. ")", 0)
    end
    if want ~= true and type(v) ~= want then
      error("fault #" .. i .. ": " .. k .. " must be a " .. want .. ", got " .. type(v), 0)
    end
  end
end

-- Validated rules with their counters.
function M.normalize(list)
  local out = {}
  for i, f in ipairs(list or {}) do
    check(i, f)
    local r = U.copy(f)
    local route = r.route or "*"
    local method, path = route:match("^(%S+)%s+(.+)$")
    r.method = method ~= "*" and method or nil
    r.pattern = glob_to_pattern(path or route)
    r.seen, r.fired = 0, 0
    if r.rate_limit then r.rate_left = r.rate_limit.count or 1 end
    out[#out + 1] = r
  end
  return out
end

-- The fault list in a file: a JSON array (or {"faults": [...]}) or a Lua chunk returning one.
-- Every error is one line starting "faults PATH: " (mxdeploy sandbox --faults shows it as is).
function M.load(path)
  local function fail(msg) error("faults " .. path .. ": " .. tostring(msg):match("[^\n]*"), 0) end
  local f, err = io.open(path, "rb")
  if not f then fail("cannot read it (" .. tostring(err) .. ")") end
  local text = f:read("a")
  f:close()
  local list
  if text:match("^%s*[%[{]") then
    local ok, v = pcall(json.decode, text)
    if not ok then fail("not valid JSON: " .. tostring(v)) end
    list = v
  else
    local chunk, cerr = load(text, "@" .. path, "t", {})
    if not chunk then fail(cerr) end
    local ok, v = pcall(chunk)
    if not ok then fail(v) end
    list = v
  end
  if type(list) == "table" and list.faults then list = list.faults end
  if type(list) ~= "table" then fail("expected a list of fault rules") end
  local ok, rules = pcall(M.normalize, list)
  if not ok then fail(rules) end
  return rules
end

function M.matching(rules, req)
  local out = {}
  for _, f in ipairs(rules) do
    if (not f.method or f.method == req.method) and (not f.listener or f.listener == req.listener)
      and (req.path):match(f.pattern) and (not f.times or f.fired < f.times) then
      out[#out + 1] = f
    end
  end
  return out
end

-- The faults answered before the simulation: resp (or nil), the delay to add, the job_fail to
-- apply. `applied` collects the names of the faults that fired; `err(status, code, message)`
-- makes an error answer in the API's own shape.
function M.before(app, faults, req, mount, applied, err)
  local resp, delay, job_fail = nil, 0, nil
  for _, f in ipairs(faults) do
    f.seen = f.seen + 1
    if f.latency then delay = delay + f.latency end
    local window = f.rate_limit and f.rate_limit.window
    if window and not f.window_end then
      -- the window ends on a whole epoch second, as X-RateLimit-Reset can only say that
      f.window_end = math.ceil(U.now() + window)
    end
    if not resp and window and U.now() < f.window_end then
      f.fired = f.fired + 1
      resp = err(429, "TOO_MANY_REQUESTS", "Rate limit exceeded")
      resp.headers["X-RateLimit-Limit"] = tostring(f.rate_limit.limit or 60)
      resp.headers["X-RateLimit-Remaining"] = "0"
      resp.headers["X-RateLimit-Reset"] = tostring(f.window_end)
      applied[#applied + 1] = "rate_limit"
    elseif not resp and f.rate_limit and not window and f.rate_left > 0 then
      f.rate_left = f.rate_left - 1
      f.fired = f.fired + 1
      local rl = f.rate_limit
      resp = err(rl.status or 429, "TOO_MANY_REQUESTS", "Rate limit exceeded")
      if rl.retry_after ~= false then resp.headers["Retry-After"] = tostring(rl.retry_after or 1) end
      applied[#applied + 1] = "rate_limit"
    elseif not resp and f.error_rate then
      local n = f.seen
      if math.floor(n * f.error_rate + 1e-9) > math.floor((n - 1) * f.error_rate + 1e-9) then
        f.fired = f.fired + 1
        local st = f.status or 503
        resp = err(st, st == 503 and "SERVICE_UNAVAILABLE" or "INTERNAL_ERROR", "Simulated failure (sandbox fault)")
        applied[#applied + 1] = "error_rate"
      end
    elseif not resp and f.redirect then
      f.fired = f.fired + 1
      local target = f.redirect == "files" and (app.files_url .. "/files/redirected" .. req.path) or f.redirect
      resp = { status = f.status or 302, headers = { Location = target }, body = "" }
      applied[#applied + 1] = "redirect"
    elseif not resp and f.error then
      f.fired = f.fired + 1
      local c = errors.lookup(mount and mount.api or "", f.error, req.method, req.path)
      local st = f.status or (c and c.status) or 500
      resp = err(st, f.error, c and c.message or f.error)
      applied[#applied + 1] = "error"
    end
    if f.job_fail then job_fail = f.job_fail end
    if f.webhook then -- spoils the webhook deliveries this request causes (sandbox/webhooks.lua)
      req.webhook_fault = f.webhook
      f.fired = f.fired + 1
    end
  end
  return resp, delay, job_fail
end

-- The faults that spoil the answer of a request that did take effect.
function M.after(faults, resp, applied, job_failed)
  for _, f in ipairs(faults) do
    if job_failed and f.job_fail then f.fired = f.fired + 1 end
    if f.body then
      resp.body = f.body
      f.fired = f.fired + 1
      applied[#applied + 1] = "body"
    end
    if f.drop or f.truncate then
      resp.fault = f.drop and "drop" or "truncate"
      f.fired = f.fired + 1
      applied[#applied + 1] = resp.fault
    end
  end
end

-- A rule that only adds latency counts as fired on every request it matched.
function M.count_latency(faults)
  for _, f in ipairs(faults) do
    if f.latency and not (f.rate_limit or f.error_rate or f.error or f.redirect or f.body or f.drop or f.truncate or f.job_fail or f.webhook) then
      f.fired = f.fired + 1
    end
  end
end

return M
