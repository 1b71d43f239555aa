-- The sandbox app: a stateful simulated Mendix Cloud. The C server (sandbox/server.c) calls
-- app:handle(req) for every request on its two listeners, under a mutex.
--
--   local app = require("mxdeploy.sandbox").new{seed=, state=, log=, time_scale=, faults=,
--                                               durations=, api_url=, files_url=}
--   app:handle(req) -> resp        req  = {listener="api"|"files", method, path, query, headers,
--                                           body|body_file, body_size}
--                                  resp = {status, headers, body|file, delay, fault}
--   app:configure{faults=, time_scale=, durations=}   app:requests()   app:reset_log()
--   app:snapshot()   app:credentials()   app:close()
--
-- Request log (app:requests(), and one JSON line per request in the `log` file), one record per
-- request:
--   seq, time, listener, method, path, query (nil when empty), status, faults (applied, "a,b")
--   request_id   the X-Request-Id header of the answer (every answer carries one)
--   credentials  whether any credential header (Mendix-Username/-ApiKey, Authorization) was sent
--   auth_ok      whether they identify a seeded user: the Mendix-Username/Mendix-ApiKey pair on
--                the API-key APIs, a seeded PAT (`Authorization: MxToken`) on v4 and Private
--                Cloud, either on the files listener (scopes are not considered)
--   headers      the request headers, names lowercased; the VALUE of every secret-bearing header
--                (mendix-apikey, authorization, proxy-authorization, cookie, x-api-key and any
--                name containing apikey/api-key/auth/token/secret/password/cookie/session) is
--                "<redacted>"; mendix-username is kept
--   body_size    bytes of the request body (0 when none)
--   body         the body text when it is not multipart and at most 64 KiB (nil otherwise)
--   parts        multipart bodies: array of {name=, filename=, content_type=} (no content)
-- Secrets are never stored: besides the redacted headers, any seeded API key or token that
-- appears in the body, query or another header value is replaced by "<redacted>".
--
-- URL layout (api listener):
--   /deploy/api/1/...        Deploy API v1 and Build API          (API key)
--   /deploy/api/v2/...       Deploy API v2 and Backups API v2     (API key)
--   /cloud/api/v4/...        Deploy API v4                        (MxToken PAT)
--   /privatecloud/api/v4/... Private Cloud Deploy and Build       (MxToken PAT)
-- Files listener: /files/... (log downloads, package/backup/CLI files; must get no credentials).
--
-- Faults: a list of rules, each matching requests by `route` ("METHOD /path/with/*" or "/path*" or
-- "*"; `*` matches any characters) and optionally `listener`. Fields (all optional):
--   latency = seconds            added delay (real seconds, not scaled)
--   error_rate = 0..1, status=n  deterministic share of matching requests answered with `status`
--                                (default 503) before reaching the simulation (the n-th matching
--                                request fails when floor(n*rate) grows: 0.5 fails every 2nd)
--   rate_limit = {count=n, status=429, retry_after=s}  the next n matching requests get 429
--   redirect = "files" | URL [, status=n]  answer with a redirect (default 302) to the files
--                                listener (another origin) or to URL
--   error = "CODE" [, status=n]  answer with a documented error code (API-key APIs: errorCode
--                                body at its documented status; v4/PC: {"error":{...}})
--   drop = true                  the request takes effect, then the connection closes mid-body
--   truncate = true              the request takes effect; Content-Length exceeds what is sent
--   body = "text"                the request takes effect; the body is replaced (e.g. not JSON)
--   job_fail = true | "CODE"     jobs created by matching requests end failed (v1 start: CODE)
--   times = n                    the rule applies to the next n matching requests only
local U = require("mxdeploy.sandbox.util")
local json = U.json
local apikey = require("mxdeploy.sandbox.apikey")
local v4 = require("mxdeploy.sandbox.v4")
local pc = require("mxdeploy.sandbox.pc")
local errors = require("mxdeploy.sandbox.errors")

local M = {}
local App = {}
App.__index = App

local function load_seed(path)
  if not path then return U.copy(require("mxdeploy.sandbox.seed")) end
  local chunk, err = loadfile(path, "t", {})
  if not chunk then error("cannot load seed " .. path .. ": " .. tostring(err), 0) end
  local ok, seed = pcall(chunk)
  if not ok or type(seed) ~= "table" then error("seed " .. path .. " must return a table: " .. tostring(seed), 0) end
  return seed
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function glob_to_pattern(g)
  return "^" .. g:gsub("[%-%.%+%[%]%(%)%$%^%%%?]", "%%%0"):gsub("%*", ".*") .. "$"
end

local function normalize_faults(list)
  local out = {}
  for i, f in ipairs(list or {}) do
    if type(f) ~= "table" then error("fault #" .. i .. " must be a table", 0) end
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

function M.new(opts)
  opts = opts or {}
  local self = setmetatable({}, App)
  self.opts = opts
  self.kept_files = {} -- uploaded package bodies, removed on close
  self.seed = load_seed(opts.seed)
  self.time_scale = tonumber(opts.time_scale) or 1.0
  self.api_url = opts.api_url or "http://127.0.0.1"
  self.files_url = opts.files_url or self.api_url
  self.durations = U.copy(self.seed.durations or {})
  for k, v in pairs(opts.durations or {}) do self.durations[k] = v end
  local defaults = { start = 90, upload_queued = 2, upload_running = 8, build_queued = 5, build_building = 60,
    backup_queued = 2, backup_running = 30, pc_created = 1, pc_running = 5 }
  for k, v in pairs(defaults) do self.durations[k] = self.durations[k] or v end
  self.errors = errors
  self.users, self.tokens = {}, {}
  for _, u in ipairs(self.seed.users or {}) do self.users[u.username] = u end
  for _, t in ipairs(self.seed.tokens or {}) do
    local scopes = {}
    for _, s in ipairs(t.scopes or {}) do scopes[s] = true end
    self.tokens[t.token] = { user = t.user, scopes = scopes }
  end
  -- every seeded secret, longest first, so the request log can scrub them (see App:scrub)
  self.secrets = {}
  local seen = {}
  local function secret(v)
    if type(v) == "string" and #v >= 4 and not seen[v] then
      seen[v] = true
      self.secrets[#self.secrets + 1] = v
    end
  end
  for _, u in ipairs(self.seed.users or {}) do secret(u.apikey) end
  for _, t in ipairs(self.seed.tokens or {}) do secret(t.token) end
  local sc = self.seed.credentials or {}
  secret(sc.apikey); secret(sc.token); secret(sc.readonly_token)
  table.sort(self.secrets, function(a, b) return #a > #b end)
  self.faults = normalize_faults(opts.faults)
  self.log, self.log_file = {}, opts.log
  self.state_file = opts.state
  math.randomseed(math.floor(U.now() * 1000) % 2147483647)

  local world
  if self.state_file then
    local s = read_file(self.state_file)
    if s and s ~= "" then
      local ok, v = pcall(json.decode, s)
      if not ok or type(v) ~= "table" or type(v.world) ~= "table" then
        error("state file " .. self.state_file .. " is not a sandbox state: " .. tostring(v), 0)
      end
      world = v.world
    end
  end
  if not world then world = { apps = U.copy(self.seed.apps or {}), privatecloud = U.copy(self.seed.privatecloud or {}) } end
  world.apps = U.array(world.apps)
  apikey.prepare(world, self.seed)
  v4.prepare(world, self.seed)
  pc.prepare(world, self.seed)
  self.world = world

  self.api = U.router()
  self.v1 = U.router()
  apikey.routes_v1(self.v1)
  self.v2 = U.router()
  apikey.routes_v2(self.v2)
  self.v4 = U.router()
  v4.routes(self.v4)
  self.pc = U.router()
  pc.routes(self.pc)
  return self
end

-- ---------- control ----------

function App:configure(t)
  t = t or {}
  if t.faults then self.faults = normalize_faults(t.faults) end
  if t.time_scale then self.time_scale = tonumber(t.time_scale) or self.time_scale end
  for k, v in pairs(t.durations or {}) do self.durations[k] = v end
  return true
end

function App:requests()
  return U.copy(self.log)
end

function App:reset_log()
  self.log = {}
  return true
end

function App:credentials()
  local c = self.seed.credentials or {}
  return { username = c.username, apikey = c.apikey, token = c.token, readonly_token = c.readonly_token }
end

function App:snapshot()
  self:settle(self:context({ headers = {}, method = "GET", path = "/" }))
  return U.copy(self.world)
end

function App:close()
  self:save()
  for _, f in ipairs(self.kept_files) do os.remove(f) end
  self.kept_files = {}
  return true
end

function App:save()
  if not self.state_file then return end
  local tmp = self.state_file .. ".tmp"
  local f = io.open(tmp, "wb")
  if not f then return end
  f:write(json.encode({ version = 1, world = self.world }))
  f:close()
  os.rename(tmp, self.state_file)
end

-- ---------- request handling ----------

function App:context(req)
  local now = U.now()
  local scale = self.time_scale
  return {
    app = self, world = self.world, req = req, now = now, d = self.durations,
    q = U.parse_query(req.query),
    sim = function(t0) return (now - t0) / (scale > 0 and scale or 1) end,
  }
end

function App:settle(ctx)
  apikey.settle(ctx)
  pc.settle(ctx)
end

local FAMILIES = {
  { prefix = "/deploy/api/1", router = "v1", auth = "apikey", api = "deploy-v1" },
  { prefix = "/deploy/api/v2", router = "v2", auth = "apikey", api = "deploy-v2" },
  { prefix = "/cloud/api/v4", router = "v4", auth = "token", api = "deploy-v4" },
  { prefix = "/privatecloud/api/v4", router = "pc", auth = "token", api = "pc" },
}

local function family_of(path)
  for _, f in ipairs(FAMILIES) do
    if path == f.prefix or path:sub(1, #f.prefix + 1) == f.prefix .. "/" then return f, path:sub(#f.prefix + 1) end
  end
end

local function error_for(fam, status, code, message)
  if fam and fam.auth == "token" then return U.v4_error(status, message or code) end
  return U.mx_error(status, code, message)
end

local function has_credentials(h)
  return h["mendix-username"] ~= nil or h["mendix-apikey"] ~= nil or h["authorization"] ~= nil
end

-- ---------- request log ----------

local REDACTED = "<redacted>"
local LOG_BODY_MAX = 64 * 1024
local SECRET_HEADERS = {
  ["mendix-apikey"] = true, authorization = true, ["proxy-authorization"] = true, cookie = true,
  ["set-cookie"] = true, ["x-api-key"] = true,
}
local SECRET_WORDS = { "apikey", "api-key", "api_key", "auth", "token", "secret", "password", "cookie", "session" }

local function secret_header(name)
  if SECRET_HEADERS[name] then return true end
  for _, w in ipairs(SECRET_WORDS) do
    if name:find(w, 1, true) then return true end
  end
  return false
end

-- Replaces every seeded API key or token in `s` by "<redacted>".
function App:scrub(s)
  if type(s) ~= "string" or s == "" then return s end
  for _, secret in ipairs(self.secrets) do
    if s:find(secret, 1, true) then
      s = s:gsub(secret:gsub("%p", "%%%0"), REDACTED)
    end
  end
  return s
end

function App:log_headers(h)
  local out = {}
  for k, v in pairs(h) do
    local name = tostring(k):lower()
    out[name] = secret_header(name) and REDACTED or self:scrub(v)
  end
  return out
end

function App:auth_ok(fam, h)
  local function apikey_ok()
    local u = self.users[h["mendix-username"] or ""]
    return u ~= nil and h["mendix-apikey"] ~= nil and u.apikey == h["mendix-apikey"]
  end
  local function token_ok()
    local tok = (h["authorization"] or ""):match("^MxToken%s+(%S+)%s*$")
    return tok ~= nil and self.tokens[tok] ~= nil
  end
  if fam and fam.auth == "apikey" then return apikey_ok() end
  if fam and fam.auth == "token" then return token_ok() end
  return apikey_ok() or token_ok()
end

-- body, parts of the log record (see the module comment).
function App:log_body(req)
  local ct = req.headers["content-type"] or ""
  if ct:lower():find("multipart", 1, true) then return nil, U.multipart_parts(req) end
  local size = req.body_size or 0
  if size == 0 or size > LOG_BODY_MAX then return nil, nil end
  return self:scrub(req.body or U.body_head(req, LOG_BODY_MAX)), nil
end

function App:authenticate(ctx, fam)
  local h = ctx.req.headers
  if fam.auth == "apikey" then
    local u = self.users[h["mendix-username"] or ""]
    if not u or u.apikey ~= h["mendix-apikey"] then
      return U.mx_error(401, "UNAUTHORIZED", "Missing or invalid Mendix-Username / Mendix-ApiKey headers")
    end
    ctx.user = u
    return nil
  end
  local tok = (h["authorization"] or ""):match("^MxToken%s+(%S+)%s*$")
  local t = tok and self.tokens[tok]
  if not t then return U.v4_error(401, "No valid personal access token (Authorization: MxToken <PAT>)") end
  local need = ctx.req.method == "GET" and "mx:deployment:read" or "mx:deployment:write"
  if not t.scopes[need] then
    return U.v4_error(403, "The personal access token lacks the scope " .. need)
  end
  ctx.user = self.users[t.user] or { username = t.user, name = t.user, can_deploy = true }
  return nil
end

function App:route(ctx)
  local req = ctx.req
  if req.listener == "files" then return self:files(ctx) end
  local fam, rest = family_of(req.path)
  if not fam then return U.response(404, { error = { code = 404, message = "No API at " .. req.path } }), nil end
  ctx.family = fam
  local aerr = self:authenticate(ctx, fam)
  if aerr then return aerr, fam end
  local fn, params = self[fam.router].dispatch(req.method, rest == "" and "/" or rest)
  if not fn then
    if params then return error_for(fam, 405, "METHOD_NOT_ALLOWED", "Method not allowed"), fam end
    return error_for(fam, 404, "NOT_FOUND", "No such endpoint: " .. req.method .. " " .. req.path), fam
  end
  local ct = req.headers["content-type"] or ""
  if req.body and not ct:find("multipart", 1, true) then
    ctx.body = U.decode_body(req)
    if ctx.body == nil and req.method ~= "GET" then
      return error_for(fam, 400, "INVALID_PARAMETERS", "The request body is not valid JSON."), fam
    end
  else
    ctx.body = {}
  end
  return fn(ctx, params), fam
end

-- Files listener: DownloadUrls, package/backup downloads and the CLI redirect target.
function App:files(ctx)
  local req = ctx.req
  if has_credentials(req.headers) then
    return { status = 400, headers = { ["Content-Type"] = "application/xml" },
      body = "<Error><Code>InvalidRequest</Code><Message>Credentials must not be sent to the file host " ..
        "(they leaked across origins)</Message></Error>" }
  end
  local p = req.path
  local kind, env, date = p:match("^/files/([%a%-]+)/([%w%-]+)/(%d%d%d%d%-%d%d%-%d%d)$")
  if kind == "logs" or kind == "access-logs" then
    local lines = {}
    for i = 1, 5 do
      lines[i] = string.format("%sT%02d:00:00.000Z INFO - %s - sandbox %s line %d", date, i, env, kind, i)
    end
    return { status = 200, headers = { ["Content-Type"] = "text/plain" }, body = table.concat(lines, "\n") .. "\n" }
  end
  local id = p:match("^/files/packages/([%w%-]+)%.mda$") or p:match("^/files/pcpackages/([%w%-]+)%.mda$")
  if id then
    for _, a in ipairs(self.world.apps) do
      for _, pkg in ipairs(a.packages or {}) do
        if pkg.PackageId == id then return apikey.package_response(pkg) end
      end
    end
    return apikey.package_response({ PackageId = id, Name = id .. ".mda" })
  end
  local bid = p:match("^/files/backups/([%w%-]+)%.tar%.gz$")
  if bid then
    return { status = 200, headers = { ["Content-Type"] = "application/gzip" }, body = "SANDBOX-BACKUP " .. bid .. "\n" }
  end
  local v, os_, arch = p:match("^/files/cli/([%w%.]+)/(%a+)/(%w+)/mxpc%-cli$")
  if v then
    return { status = 200, headers = { ["Content-Type"] = "application/octet-stream" },
      body = "#!/bin/sh\necho mxpc-cli " .. v .. " " .. os_ .. " " .. arch .. " (sandbox)\n" }
  end
  local redirected = p:match("^/files/redirected(/.*)$")
  if redirected then -- the target of a `redirect = "files"` fault
    return U.ok({ redirected = true, path = redirected })
  end
  return { status = 404, headers = { ["Content-Type"] = "text/plain" }, body = "not found\n" }
end

function App:matching_faults(req)
  local out = {}
  for _, f in ipairs(self.faults) do
    if (not f.method or f.method == req.method) and (not f.listener or f.listener == req.listener)
      and (req.path):match(f.pattern) and (not f.times or f.fired < f.times) then
      out[#out + 1] = f
    end
  end
  return out
end

function App:handle(req)
  req.headers = req.headers or {}
  -- read before routing: an upload's body file may be moved away by the route
  local log_body, log_parts = self:log_body(req)
  local ctx = self:context(req)
  local fam = req.listener ~= "files" and family_of(req.path) or nil
  local faults = self:matching_faults(req)
  local resp, applied = nil, {}
  local delay = 0

  -- Faults answered before the simulation sees the request (it has no effect).
  for _, f in ipairs(faults) do
    f.seen = f.seen + 1
    if f.latency then delay = delay + f.latency end
    if not resp and f.rate_limit and f.rate_left > 0 then
      f.rate_left = f.rate_left - 1
      f.fired = f.fired + 1
      local rl = f.rate_limit
      resp = error_for(fam, rl.status or 429, "TOO_MANY_REQUESTS", "Rate limit exceeded")
      resp.headers["Retry-After"] = tostring(rl.retry_after or 1)
      applied[#applied + 1] = "rate_limit"
    elseif not resp and f.error_rate then
      local n = f.seen
      if math.floor(n * f.error_rate + 1e-9) > math.floor((n - 1) * f.error_rate + 1e-9) then
        f.fired = f.fired + 1
        local st = f.status or 503
        resp = error_for(fam, st, st == 503 and "SERVICE_UNAVAILABLE" or "INTERNAL_ERROR", "Simulated failure (sandbox fault)")
        applied[#applied + 1] = "error_rate"
      end
    elseif not resp and f.redirect then
      f.fired = f.fired + 1
      local target = f.redirect == "files" and (self.files_url .. "/files/redirected" .. req.path) or f.redirect
      resp = { status = f.status or 302, headers = { Location = target }, body = "" }
      applied[#applied + 1] = "redirect"
    elseif not resp and f.error then
      f.fired = f.fired + 1
      local c = errors.lookup(fam and fam.api or "", f.error, req.method, req.path)
      local st = f.status or (c and c.status) or 500
      resp = error_for(fam, st, f.error, c and c.message or f.error)
      applied[#applied + 1] = "error"
    end
    if f.job_fail then ctx.job_fail = f.job_fail end
  end

  if not resp then
    self:settle(ctx)
    local ok, r = pcall(self.route, self, ctx)
    if ok then
      resp = r
    else
      io.stderr:write("sandbox: error handling ", req.method, " ", req.path, ": ", tostring(r), "\n")
      resp = error_for(fam, 500, "SANDBOX_ERROR", "internal sandbox error: " .. tostring(r))
    end
    if ctx.job_fail then
      for _, f in ipairs(faults) do if f.job_fail then f.fired = f.fired + 1 end end
    end
    -- Faults that spoil the answer of a request that did take effect.
    for _, f in ipairs(faults) do
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
    if req.method ~= "GET" and req.listener == "api" and resp.status < 400 then self:save() end
  end
  for _, f in ipairs(faults) do
    if f.latency and not (f.rate_limit or f.error_rate or f.error or f.redirect or f.body or f.drop or f.truncate or f.job_fail) then
      f.fired = f.fired + 1
    end
  end
  if delay > 0 then resp.delay = delay end
  resp.headers = resp.headers or {}
  -- like the Mendix gateways: every answer names its request, for error reports and support
  local request_id = U.uuid()
  resp.headers["X-Request-Id"] = request_id

  local rec = {
    seq = #self.log + 1, time = U.iso(ctx.now), listener = req.listener, method = req.method, path = req.path,
    query = req.query ~= "" and req.query or nil, status = resp.status,
    credentials = has_credentials(req.headers), body_size = req.body_size or 0,
    faults = #applied > 0 and table.concat(applied, ",") or nil,
    auth_ok = self:auth_ok(fam, req.headers), headers = self:log_headers(req.headers),
    request_id = request_id,
  }
  rec.query = self:scrub(rec.query)
  rec.body, rec.parts = log_body, log_parts
  self.log[#self.log + 1] = rec
  if self.log_file then
    local f = io.open(self.log_file, "a")
    if f then
      f:write(json.encode(rec), "\n")
      f:close()
    end
  end
  return resp
end

return M
