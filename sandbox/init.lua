-- The sandbox app: a stateful simulated Mendix Cloud. The C server (sandbox/server.c) calls
-- app:handle(req) for every request on its two listeners, under a mutex.
--
--   local app = require("mxdeploy.sandbox").new{seed=, state=, log=, time_scale=, faults=,
--                                               durations=, api_url=, files_url=}
--   app:handle(req) -> resp        req  = {listener="api"|"files", method, path, query, headers,
--                                           body|body_file, body_size}
--                                  resp = {status, headers, body|file, delay, fault}
--   app:configure{faults=, time_scale=, durations=}   app:requests()   app:reset_log()
--   app:snapshot()   app:credentials()   app:bases()   app:families()   app:close()
--   new{faults_file = PATH}: fault rules from a JSON or Lua file (faults.lua, M.load)
--
-- This file wires the parts: families.lua (which API is served where, by which module),
-- router.lua (routes and what they need), world.lua (the index of the world), faults.lua (the
-- fault engine), request_log.lua, files.lua (the files listener).
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
-- URL layout (api listener): families.lua is the source; app:bases() and sandboxctl's sb.bases
-- give the base URLs, app:families() the list `mxdeploy sandbox` prints (e.g. /deploy/api/1 for
-- Deploy API v1 and Build API, /cloud/api/v4 for Deploy API v4, /pipelines/api/v1, ...).
-- Files listener: /files/... (log downloads, package/backup/CLI files; must get no credentials).
--
-- Faults: a list of rules, each matching requests by `route` ("METHOD /path/with/*" or "/path*" or
-- "*"; `*` matches any characters) and optionally `listener`. Fields (all optional):
--   latency = seconds            added delay (real seconds, not scaled)
--   error_rate = 0..1, status=n  deterministic share of matching requests answered with `status`
--                                (default 503) before reaching the simulation (the n-th matching
--                                request fails when floor(n*rate) grows: 0.5 fails every 2nd)
--   rate_limit = {count=n, status=429, retry_after=s}  the next n matching requests get 429
--                                (retry_after = false: no Retry-After header)
--   rate_limit = {window=s, limit=n}  every matching request within s real seconds of the first
--                                one gets 429 with the Webhooks API's X-RateLimit-Limit (n, default
--                                60), X-RateLimit-Remaining (0) and X-RateLimit-Reset (epoch seconds
--                                at the window's end), no Retry-After
--   redirect = "files" | URL [, status=n]  answer with a redirect (default 302) to the files
--                                listener (another origin) or to URL
--   error = "CODE" [, status=n]  answer with a documented error code (API-key APIs: errorCode
--                                body at its documented status; v4/PC: {"error":{...}})
--   drop = true                  the request takes effect, then the connection closes mid-body
--   truncate = true              the request takes effect; Content-Length exceeds what is sent
--   body = "text"                the request takes effect; the body is replaced (e.g. not JSON)
--   job_fail = true | "CODE"     jobs created by matching requests end failed (v1 start: CODE)
--   webhook = "tamper" | "stale" | "unsigned"   the webhook deliveries a matching upload causes
--                                carry a changed body, a timestamp an hour old, or no signature
--   times = n                    the rule applies to the next n matching requests only
local U = require("mxdeploy.sandbox.util")
local json = U.json
local router = require("mxdeploy.sandbox.router")
local world = require("mxdeploy.sandbox.world")
local faults = require("mxdeploy.sandbox.faults")
local request_log = require("mxdeploy.sandbox.request_log")
local files = require("mxdeploy.sandbox.files")
local FAMILIES = require("mxdeploy.sandbox.families")

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

-- The modules of FAMILIES (each once, in order) and the mount points: families sharing a
-- prefix share one router.
local function mount(families)
  local modules, seen, mounts, by_prefix = {}, {}, {}, {}
  for _, f in ipairs(families) do
    local mod = require("mxdeploy.sandbox." .. f.module)
    if not seen[mod] then
      seen[mod] = true
      modules[#modules + 1] = mod
    end
    local m = by_prefix[f.prefix]
    if not m then
      m = { prefix = f.prefix, auth = f.auth, api = f.api, router = router.new(), scopes = f.scopes, errors = f.errors }
      by_prefix[f.prefix] = m
      mounts[#mounts + 1] = m
    elseif m.auth ~= f.auth then
      error("families " .. m.api .. " and " .. f.api .. " share " .. f.prefix .. " but not their auth", 0)
    end
    mod.routes(m.router)
  end
  return modules, mounts
end

local function load_world(self)
  if self.state_file then
    local s = read_file(self.state_file)
    if s and s ~= "" then
      local ok, v = pcall(json.decode, s)
      if not ok or type(v) ~= "table" or type(v.world) ~= "table" then
        error("state file " .. self.state_file .. " is not a sandbox state: " .. tostring(v), 0)
      end
      return v.world
    end
  end
  return { apps = U.copy(self.seed.apps or {}), privatecloud = U.copy(self.seed.privatecloud or {}) }
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
  self.errors = require("mxdeploy.sandbox.errors")
  self.users, self.tokens = {}, {}
  for _, u in ipairs(self.seed.users or {}) do self.users[u.username] = u end
  for _, t in ipairs(self.seed.tokens or {}) do
    local scopes = {}
    for _, s in ipairs(t.scopes or {}) do scopes[s] = true end
    self.tokens[t.token] = { user = t.user, scopes = scopes }
  end
  self.faults = faults.normalize(opts.faults)
  if opts.faults_file then
    for _, f in ipairs(faults.load(opts.faults_file)) do self.faults[#self.faults + 1] = f end
  end
  self.log = request_log.new{ seed = self.seed, users = self.users, tokens = self.tokens, file = opts.log }
  self.state_file = opts.state
  math.randomseed(math.floor(U.now() * 1000) % 2147483647)

  local w = load_world(self)
  w.apps = U.array(w.apps)
  self.modules, self.mounts = mount(FAMILIES)
  for _, mod in ipairs(self.modules) do
    if mod.prepare then mod.prepare(w, self.seed) end
  end
  self.world = w
  self.index = world.index(w)
  return self
end

-- ---------- control ----------

function App:configure(t)
  t = t or {}
  if t.faults then self.faults = faults.normalize(t.faults) end
  if t.time_scale then self.time_scale = tonumber(t.time_scale) or self.time_scale end
  for k, v in pairs(t.durations or {}) do self.durations[k] = v end
  return true
end

function App:requests()
  return self.log:list()
end

function App:reset_log()
  self.log:reset()
  return true
end

function App:credentials()
  local c = self.seed.credentials or {}
  return { username = c.username, apikey = c.apikey, token = c.token, readonly_token = c.readonly_token }
end

-- The base URL of every API family: {["deploy-v1"] = "http://127.0.0.1:PORT/deploy/api/1", ...}
function App:bases()
  local t = {}
  for _, f in ipairs(FAMILIES) do t[f.api] = self.api_url .. f.prefix end
  return t
end

-- Every API family in the order of families.lua: {{api=, title=, auth=, base=}, ...} (the banner
-- of `mxdeploy sandbox`).
function App:families()
  local t = {}
  for _, f in ipairs(FAMILIES) do
    t[#t + 1] = { api = f.api, title = f.title, auth = f.auth, base = self.api_url .. f.prefix }
  end
  return t
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

-- Writes the world to the state file: to a temporary file first, renamed over the old state only
-- when every byte was written. true, or nil and the reason (the old state file is kept).
function App:save()
  if not self.state_file then return true end
  local tmp = self.state_file .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(json.encode({ version = 1, world = self.world }))
  if ok then ok, werr = f:flush() end
  local closed, cerr = f:close()
  if ok and not closed then ok, werr = nil, cerr end
  if ok then ok, werr = os.rename(tmp, self.state_file) end
  if not ok then
    os.remove(tmp)
    return nil, werr
  end
  return true
end

-- ---------- request handling ----------

function App:context(req)
  local now = U.now()
  local scale = self.time_scale
  return {
    app = self, world = self.world, ix = self.index, req = req, now = now, d = self.durations,
    q = U.parse_query(req.query),
    sim = function(t0) return (now - t0) / (scale > 0 and scale or 1) end,
  }
end

function App:settle(ctx)
  for _, mod in ipairs(self.modules) do
    if mod.settle then mod.settle(ctx) end
  end
end

-- The mount point serving `path`, and the path below it.
function App:mount_of(path)
  for _, m in ipairs(self.mounts) do
    local n = #m.prefix
    if path:sub(1, n) == m.prefix and (#path == n or path:byte(n + 1) == 47) then return m, path:sub(n + 1) end
  end
end

local function error_for(mount, status, code, message)
  if mount and mount.auth == "token" and mount.errors ~= "mx" then return U.v4_error(status, message or code) end
  return U.mx_error(status, code, message)
end

function App:authenticate(ctx, mount)
  local h = ctx.req.headers
  if mount.auth == "apikey" then
    local u = self.users[h["mendix-username"] or ""]
    if not u or u.apikey ~= h["mendix-apikey"] then
      return U.mx_error(401, "UNAUTHORIZED", "Missing or invalid Mendix-Username / Mendix-ApiKey headers")
    end
    ctx.user = u
    return nil
  end
  local tok = (h["authorization"] or ""):match("^MxToken%s+(%S+)%s*$")
  local t = tok and self.tokens[tok]
  if not t then return error_for(mount, 401, "RS401", "No valid personal access token (Authorization: MxToken <PAT>)") end
  local scopes = mount.scopes or { read = "mx:deployment:read", write = "mx:deployment:write" }
  local need = ctx.req.method == "GET" and scopes.read or scopes.write
  if not need or not t.scopes[need] then
    return error_for(mount, 403, "RS403", "The personal access token lacks the scope " .. tostring(need or scopes.read))
  end
  ctx.user = self.users[t.user] or { username = t.user, name = t.user, can_deploy = true }
  return nil
end

-- The JSON body of a request that is not multipart, wherever the server kept it (bodies over
-- 1 MiB are in a file): a table, or nil when it is not a JSON object or array.
local JSON_BODY_MAX = 64 * 1024 * 1024
local function json_body(req)
  if req.body_file and (req.body_size or 0) > JSON_BODY_MAX then return nil end
  local text = req.body or U.body_head(req, JSON_BODY_MAX)
  return U.decode_body({ body = text })
end

function App:route(ctx, mount, rest)
  local req = ctx.req
  if req.listener == "files" then return files.handle(ctx) end
  if not mount then return U.response(404, { error = { code = 404, message = "No API at " .. req.path } }) end
  local aerr = self:authenticate(ctx, mount)
  if aerr then return aerr end
  local rt, params = mount.router.dispatch(req.method, rest == "" and "/" or rest)
  if not rt then
    if params then return error_for(mount, 405, "METHOD_NOT_ALLOWED", "Method not allowed") end
    return error_for(mount, 404, "NOT_FOUND", "No such endpoint: " .. req.method .. " " .. req.path)
  end
  local ct = req.headers["content-type"] or ""
  if (req.body or req.body_file) and not ct:find("multipart", 1, true) then
    ctx.body = json_body(req)
    if ctx.body == nil and req.method ~= "GET" then
      return error_for(mount, 400, "INVALID_PARAMETERS", "The request body is not valid JSON.")
    end
  else
    ctx.body = {}
  end
  return router.call(rt, ctx, params)
end

-- The simulation's answer: settle what finished by itself, route, and keep a mutation in the
-- state file (a 500 when it cannot be saved).
function App:simulate(ctx, mount, rest)
  local req = ctx.req
  self:settle(ctx)
  local ok, resp = pcall(self.route, self, ctx, mount, rest)
  if not ok then
    io.stderr:write("sandbox: error handling ", req.method, " ", req.path, ": ", tostring(resp), "\n")
    resp = error_for(mount, 500, "SANDBOX_ERROR", "internal sandbox error: " .. tostring(resp))
  end
  if req.method ~= "GET" and req.listener == "api" and resp.status < 400 then
    local saved, err = self:save()
    if not saved then
      io.stderr:write("sandbox: cannot save the state to ", self.state_file, ": ", tostring(err), "\n")
      resp = error_for(mount, 500, "STATE_NOT_SAVED",
        "The sandbox could not save its state (" .. tostring(err) .. "); the state file keeps the previous state.")
    end
  end
  return resp
end

function App:handle(req)
  req.headers = req.headers or {}
  local log_body, log_parts = self.log:body(req) -- before routing: an upload's file may move
  local ctx = self:context(req)
  local mount, rest
  if req.listener ~= "files" then mount, rest = self:mount_of(req.path) end
  local matching = faults.matching(self.faults, req)
  local applied = {}
  local resp, delay, job_fail = faults.before(self, matching, req, mount, applied,
    function(status, code, message) return error_for(mount, status, code, message) end)
  if not resp then
    ctx.job_fail = job_fail
    resp = self:simulate(ctx, mount, rest)
    faults.after(matching, resp, applied, job_fail ~= nil)
  end
  faults.count_latency(matching)
  -- webhook deliveries the request caused: the C server posts them, outside the lock
  if ctx.deliveries and resp.status < 400 then resp.deliveries = ctx.deliveries end
  if delay > 0 then resp.delay = delay end
  resp.headers = resp.headers or {}
  -- like the Mendix gateways: every answer names its request, for error reports and support
  resp.headers["X-Request-Id"] = U.uuid()
  self.log:record{ req = req, now = ctx.now, mount = mount, resp = resp, applied = applied,
    body = log_body, parts = log_parts }
  return resp
end

return M
