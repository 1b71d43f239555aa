-- Webhooks API (personal access token), mounted at /webhooks/api/v1: webhooks of an app (CRUD,
-- cursor pagination), and their deliveries: when a package of the app is uploaded, every active
-- webhook subscribed to package.uploaded gets a signed POST (docs/webhooks.md: webhook-id,
-- webhook-timestamp, webhook-signature = v1,base64(HMAC-SHA256(secret, id.timestamp.body))),
-- sent by the C server once the upload has finished (resp.deliveries, outside the lock).
-- A `webhook = "tamper" | "stale" | "unsigned"` fault on the upload spoils its deliveries. Only
-- loopback receivers (127.x.x.x, localhost, [::1]) are posted to: the sandbox stays local.
local U = require("mxdeploy.sandbox.util")
local native = require("mxdeploy.sandbox.native")
local json = U.json
local E = U.v4_error

local M = {}

local EVENT_TYPES = { ["package.uploaded"] = true, ["teamserver.push"] = true, ["alerts"] = true }

function M.prepare(w, seed)
  w.webhooks = w.webhooks or U.copy(seed.webhooks or {})
  setmetatable(w.webhooks, nil)
end

local function hooks_of(ctx, a)
  local list = ctx.world.webhooks[a.ProjectId]
  if not list then
    list = U.array()
    ctx.world.webhooks[a.ProjectId] = list
  end
  return list
end

local function get_app(ctx, id)
  local a = ctx.ix:get("project", id)
  if a and U.member(a, ctx.user) then return a end
  return nil, E(404, "App not found")
end

local NEEDS = {
  app = function(ctx, p) return get_app(ctx, p.appId) end,
  hook = function(ctx, p)
    local a, err = get_app(ctx, p.appId)
    if not a then return nil, err end
    for _, h in ipairs(hooks_of(ctx, a)) do
      if h.id == p.webhookId then return h, a end
    end
    return nil, E(404, "Webhook not found")
  end,
}

local function summary(h)
  return { id = h.id, name = h.name, url = h.url, eventTypes = U.array(U.copy(h.eventTypes)), isActive = h.isActive }
end

local function detailed(h)
  local t = summary(h)
  t.validationSecret = h.validationSecret
  t.headers = U.array(U.copy(h.headers or {}))
  return t
end

-- The upsert-webhook schema: nil, or a 400 answer naming what is wrong.
local function invalid(b)
  local bad = {}
  local function no(name, reason) bad[#bad + 1] = { name = name, reason = reason } end
  if type(b.name) ~= "string" or not b.name:match("^[%w_ ]+$") then no("name", "must match ^([a-zA-Z0-9_ ]+)$") end
  if type(b.url) ~= "string" or #b.url < 1 or #b.url > 65536 then no("url", "must be a URL") end
  if type(b.eventTypes) ~= "table" then
    no("eventTypes", "must be an array of event types")
  else
    for _, t in ipairs(b.eventTypes) do
      if not EVENT_TYPES[t] then no("eventTypes", "unknown event type '" .. tostring(t) .. "'") end
    end
  end
  if type(b.isActive) ~= "boolean" then no("isActive", "must be a boolean") end
  local s = type(b.validationSecret) == "string" and (b.validationSecret:match("^whsec_(.*)$") or b.validationSecret)
  if not s or #s < 32 or #s > 100 or s:find("[^%w+/=]") then
    no("validationSecret", "must match ^(whsec_)?[a-zA-Z0-9+/=]{32,100}$")
  end
  if b.headers ~= nil and b.headers ~= json.null then
    if type(b.headers) ~= "table" then no("headers", "must be an array of {key, value}") else
      for _, h in ipairs(b.headers) do
        if type(h) ~= "table" or type(h.key) ~= "string" or type(h.value) ~= "string" then
          no("headers", "every header needs a key and a value")
        end
      end
    end
  end
  if #bad > 0 then return E(400, "Request validation errors", bad) end
end

local function apply(h, b)
  h.name, h.url, h.isActive, h.validationSecret = b.name, b.url, b.isActive, b.validationSecret
  h.eventTypes = U.array(U.copy(b.eventTypes))
  h.headers = U.array(U.copy(b.headers ~= json.null and b.headers or {}))
end

local function new_id()
  local chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
  local t = {}
  for i = 1, 30 do
    local k = math.random(1, #chars)
    t[i] = chars:sub(k, k)
  end
  return "mxep_" .. table.concat(t)
end

function M.routes(r)
  local add = r.with(NEEDS)

  add("GET", "/apps/{appId}/webhooks", { needs = "app" }, function(ctx, _, a)
    local q = ctx.q
    local limit = tonumber(q.limit or "20")
    if not limit or limit < 1 or limit ~= math.floor(limit) then
      return E(400, "Request validation errors", { { name = "limit", reason = "must be a positive integer" } })
    end
    local offset = 0
    if q.cursor and q.cursor ~= "" then
      offset = tonumber(q.cursor:match("^cur_(%d+)$") or "")
      if not offset then return E(400, "Request validation errors", { { name = "cursor", reason = "unknown cursor" } }) end
    end
    local list = {}
    for _, h in ipairs(hooks_of(ctx, a)) do list[#list + 1] = h end
    table.sort(list, function(x, y) -- by creation time, newest first unless ascOrder
      if q.ascOrder == "true" then return x.seq < y.seq end
      return x.seq > y.seq
    end)
    local items = U.array()
    for i = offset + 1, math.min(offset + limit, #list) do items[#items + 1] = summary(list[i]) end
    local cursors = {}
    if offset > 0 then cursors.prev = "cur_" .. math.max(0, offset - limit) end
    if offset + limit < #list then cursors.next = "cur_" .. (offset + limit) end
    return U.ok({ webhooks = items, cursors = cursors })
  end)

  add("POST", "/apps/{appId}/webhooks", { needs = "app" }, function(ctx, _, a)
    local bad = invalid(ctx.body)
    if bad then return bad end
    ctx.world.webhook_seq = (ctx.world.webhook_seq or 0) + 1
    local h = { id = new_id(), seq = ctx.world.webhook_seq }
    apply(h, ctx.body)
    local list = hooks_of(ctx, a)
    list[#list + 1] = h
    return U.ok(detailed(h))
  end)

  add("GET", "/apps/{appId}/webhooks/{webhookId}", { needs = "hook" }, function(_, _, h)
    return U.ok(detailed(h))
  end)

  add("PUT", "/apps/{appId}/webhooks/{webhookId}", { needs = "hook" }, function(ctx, _, h)
    local bad = invalid(ctx.body)
    if bad then return bad end
    apply(h, ctx.body)
    return U.response(202, detailed(h))
  end)

  add("DELETE", "/apps/{appId}/webhooks/{webhookId}", { needs = "hook" }, function(ctx, _, h, a)
    local list = hooks_of(ctx, a)
    for i, x in ipairs(list) do
      if x == h then table.remove(list, i) break end
    end
    return { status = 204, headers = {} }
  end)
end

-- The sandbox stays on this machine: it posts only to loopback receivers. The host is what
-- follows the user info: in http://127.0.0.1:80@example.com/ the host is example.com (libcurl
-- reads it so), and an authority with two '@' (which parsers split differently) is refused.
local function loopback(url)
  local authority = tostring(url):match("^https?://([^/?#]*)")
  if not authority or authority:find("\\", 1, true) then return false end
  local _, ats = authority:gsub("@", "")
  if ats > 1 then return false end
  local hostport = authority:match("@(.*)$") or authority
  local host = hostport:match("^(%[[^%]]*%])") or hostport:match("^([^:]*)")
  local rest = hostport:sub(#host + 1)
  if rest ~= "" and not rest:match("^:%d+$") then return false end
  return host == "localhost" or host == "[::1]" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end
M.loopback = loopback

local function sign(secret, id, ts, body)
  return "v1," .. native.base64(native.hmac_sha256(secret, id .. "." .. ts .. "." .. body))
end

--- A package of app `a` was uploaded (or built): queue its package.uploaded deliveries, sent
--- `delay` real seconds from now (when the package is ready).
function M.package_uploaded(ctx, a, pkg, delay)
  local hooks = ctx.world.webhooks and ctx.world.webhooks[a.ProjectId]
  if not hooks then return end
  local spoil = ctx.req.webhook_fault
  for _, h in ipairs(hooks) do
    local wants = false
    for _, t in ipairs(h.eventTypes or {}) do wants = wants or t == "package.uploaded" end
    if h.isActive and wants and not loopback(h.url) then
      io.stderr:write("sandbox: webhook ", h.id, " is not on 127.0.0.1 or localhost: its delivery is not sent\n")
    elseif h.isActive and wants then
      local body = json.encode({
        eventType = "package.uploaded", modelVersion = pkg.Version, name = pkg.Name, projectId = a.ProjectId,
        runtimeVersion = pkg.MendixVersion or "9.24.0.2965", uploadTime = U.iso(ctx.now + delay),
        uploaderId = ctx.user.id or ctx.user.username,
      })
      local id = "msg_" .. U.shortid() .. U.shortid() .. U.shortid()
      local ts = tostring(math.floor(ctx.now + delay) - (spoil == "stale" and 3600 or 0))
      local headers = { ["Content-Type"] = "application/json", ["User-Agent"] = "mxdeploy-sandbox-webhooks/1",
        ["webhook-id"] = id, ["webhook-timestamp"] = ts }
      if spoil ~= "unsigned" then headers["webhook-signature"] = sign(h.validationSecret, id, ts, body) end
      for _, x in ipairs(h.headers or {}) do headers[x.key] = x.value end
      if spoil == "tamper" then body = body:gsub(pkg.Name:gsub("%p", "%%%0"), "tampered.mda", 1) end
      ctx.deliveries = ctx.deliveries or {}
      ctx.deliveries[#ctx.deliveries + 1] = { url = h.url, headers = headers, body = body, delay = delay }
      ctx.app.delivered = (ctx.app.delivered or 0) + 1
    end
  end
end

return M
