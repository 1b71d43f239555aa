-- The request log: one record per request (app:requests(), and one JSON line per request in the
-- `log` file), with every secret replaced by "<redacted>". The record's fields are documented at
-- the top of init.lua.
local U = require("mxdeploy.sandbox.util")
local native = require("mxdeploy.sandbox.native")
local json = U.json

local M = {}
local Log = {}
Log.__index = Log

local REDACTED = "<redacted>"
local LOG_BODY_MAX = 64 * 1024
local SECRET_HEADERS = {
  ["mendix-apikey"] = true, authorization = true, ["proxy-authorization"] = true, cookie = true,
  ["set-cookie"] = true, ["x-api-key"] = true,
}
-- (the same words, normalized, are the member names sandbox/server.c's log_secret_member hides)
local SECRET_WORDS = { "apikey", "api-key", "api_key", "auth", "token", "secret", "password", "cookie", "session" }

-- Whether a (lowercase) header name is a secret's; remembered by name (a fleet of jobs sends the
-- same few headers thousands of times), at most 256 names, so odd clients cannot grow it.
local secret_header_names, remembered = {}, 0
local function secret_header(name)
  local known = secret_header_names[name]
  if known ~= nil then return known end
  local secret = SECRET_HEADERS[name] or false
  for _, w in ipairs(SECRET_WORDS) do
    if not secret and name:find(w, 1, true) then secret = true end
  end
  if remembered >= 256 then secret_header_names, remembered = {}, 0 end
  secret_header_names[name], remembered = secret, remembered + 1
  return secret
end

function M.has_credentials(h)
  return h["mendix-username"] ~= nil or h["mendix-apikey"] ~= nil or h["authorization"] ~= nil
end

-- new{seed=, users=, tokens=, file=}: users/tokens as the app keeps them (to tell auth_ok)
function M.new(opts)
  local self = setmetatable({ records = {}, file = opts.file, users = opts.users, tokens = opts.tokens,
    secrets = {} }, Log)
  -- every seeded secret, longest first, so scrub replaces whole secrets
  local seen = {}
  local function secret(v)
    if type(v) == "string" and #v >= 4 and not seen[v] then
      seen[v] = true
      self.secrets[#self.secrets + 1] = v
    end
  end
  local seed = opts.seed
  for _, u in ipairs(seed.users or {}) do secret(u.apikey) end
  for _, t in ipairs(seed.tokens or {}) do secret(t.token) end
  local sc = seed.credentials or {}
  secret(sc.apikey); secret(sc.token); secret(sc.readonly_token)
  table.sort(self.secrets, function(a, b) return #a > #b end)
  return self
end

-- Replaces every seeded API key or token in `s` by "<redacted>".
function Log:scrub(s)
  if type(s) ~= "string" or s == "" then return s end
  for _, secret in ipairs(self.secrets) do
    if s:find(secret, 1, true) then
      s = s:gsub(secret:gsub("%p", "%%%0"), REDACTED)
    end
  end
  return s
end

function Log:headers(h)
  local out = {}
  for k, v in pairs(h) do
    local name = tostring(k):lower()
    out[name] = secret_header(name) and REDACTED or self:scrub(v)
  end
  return out
end

function Log:auth_ok(mount, h)
  local function apikey_ok()
    local u = self.users[h["mendix-username"] or ""]
    return u ~= nil and h["mendix-apikey"] ~= nil and u.apikey == h["mendix-apikey"]
  end
  local function token_ok()
    local tok = (h["authorization"] or ""):match("^MxToken%s+(%S+)%s*$")
    return tok ~= nil and self.tokens[tok] ~= nil
  end
  if mount and mount.auth == "apikey" then return apikey_ok() end
  if mount and mount.auth == "token" then return token_ok() end
  return apikey_ok() or token_ok()
end

-- `body` with the string value of every member whose name holds a secret word (a webhook's
-- validationSecret, a password), and every "value" inside a "headers" array (a webhook's custom
-- headers), replaced by "<redacted>": such a secret is not seeded, so Log:scrub cannot know it.
-- The rest of the text stays exactly as sent. The walk is host/redact.c's, the one --trace=body
-- uses (sandbox/server.c gives it this log's words and marker).
local redact_members = native.redact_members
M.redact_members = redact_members

-- The request's body text (or its multipart parts) for the record, as sent: read before routing
-- (an upload's body file may be moved away); redacted when the record is first listed.
function Log:body(req)
  local ct = req.headers["content-type"] or ""
  if ct:lower():find("multipart", 1, true) then return nil, U.multipart_parts(req) end
  local size = req.body_size or 0
  if size == 0 or size > LOG_BODY_MAX then return nil, nil end
  return req.body or U.body_head(req, LOG_BODY_MAX), nil
end

-- The record as app:requests() shows it, every secret redacted, from what Log:record kept.
function Log:finish(e)
  local req_headers = e.headers
  local body = e.body
  if type(body) == "string" then
    body = self:scrub(body)
    if body:find('"', 1, true) then body = redact_members(body) end
  end
  return {
    seq = e.seq, time = U.iso(e.now), listener = e.listener, method = e.method, path = e.path,
    query = e.query ~= "" and self:scrub(e.query) or nil, status = e.status,
    credentials = M.has_credentials(req_headers), body_size = e.body_size,
    faults = #e.applied > 0 and table.concat(e.applied, ",") or nil,
    auth_ok = self:auth_ok(e.mount, req_headers), headers = self:headers(req_headers),
    request_id = e.request_id, body = body, parts = e.parts,
  }
end

-- Records one exchange. `r` = {req=, now=, mount=, resp=, applied=, body=, parts=}. What it
-- needs is kept as it is and made into the shown record (Log:finish) when first listed: a fleet
-- of jobs makes thousands of requests nobody lists, and redacting and formatting each one at
-- once was a third of the sandbox's work per request. With a log file, each is written now.
function Log:record(r)
  local req, resp = r.req, r.resp
  local e = {
    seq = #self.records + 1, now = r.now, listener = req.listener, method = req.method, path = req.path,
    query = req.query, status = resp.status, headers = req.headers, body_size = req.body_size or 0,
    applied = r.applied, mount = r.mount, request_id = resp.headers["X-Request-Id"], body = r.body,
    parts = r.parts, raw = true,
  }
  if self.file then
    e = self:finish(e)
    local f = io.open(self.file, "a")
    if f then
      f:write(json.encode(e), "\n")
      f:close()
    end
  end
  self.records[#self.records + 1] = e
end

function Log:list()
  local records = self.records
  for i = 1, #records do
    if records[i].raw then records[i] = self:finish(records[i]) end
  end
  return U.copy(records)
end

function Log:reset() self.records = {} end

return M
