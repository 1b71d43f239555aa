-- mxdeploy.errors: structured error objects raised by every part of the module.
--
-- Every error is a table with metatable `Error` and a `kind`:
--   "http"        the server answered with status >= 400
--   "network"     the exchange failed (connect, reset, ...)
--   "tls"         the server's certificate could not be verified (never retried)
--   "timeout"     a request or a deadline (mx.timeout, job:wait{timeout=}) ran out
--   "cancelled"   the task was cancelled
--   "argument"    a call was refused before any request was sent
--   "job"         a long-running job failed or did not finish in time
--   "credentials" no credential of the kind an API needs was configured
--   "response"    the server's answer was malformed (not the JSON the API answers)
--   "refused"     a change needed confirmation that was not given (exit_code = 2)
--   "version"     a script needs a newer mxdeploy (mx.require_version)
-- `tostring(err)` gives one line; no field ever holds a secret.

local core = require("mxdeploy.core")

local M = {}

local Error = {}
Error.__index = Error
M.Error = Error

--- Removes user info, secret query values and the fragment from a URL: the host's one redactor
--- (core.redact_url, also behind --trace and mx.pending()).
function M.redact_url(url)
  if type(url) ~= "string" then return url end
  return core.redact_url(url)
end

--- The path of a URL, without origin and query ("/api/1/apps/calc").
function M.url_path(url)
  if type(url) ~= "string" then return "?" end
  local path = url:match("^%a[%w+.-]*://[^/?#]*(/[^?#]*)") or url:match("^(/[^?#]*)")
  if path then return path end
  -- no path: "/" for a URL (not the URL itself, with its user info and query), else redacted
  if url:match("^%a[%w+.-]*://") then return "/" end
  return M.redact_url(url)
end

local function is_null(v)
  return v == nil or (type(v) == "userdata") or v == false
end

local function str(v)
  if is_null(v) then return nil end
  if type(v) == "table" then return nil end
  local iv = math.type(v) == "float" and math.tointeger(v) -- 404.0 -> "404"; 1e300 stays as it is
  if iv then return tostring(iv) end
  return tostring(v)
end

--- Reads a Mendix error code and message from a decoded body of any documented shape:
---   {errorCode=, errorMessage=}                 v1, v2, Build, Backups
---   {error={code=, message=, ["invalid-params"]=}}  v4, Private Cloud
---   {status="failed", error={code=, message=}, details=}  failed Private Cloud job
---   {code=, message=} / {message=}              anything else
--- Returns code, message, invalid_params.
function M.parse_body(body)
  if type(body) ~= "table" then return nil, nil, nil end
  local code, message, invalid
  if body.errorCode ~= nil or body.errorMessage ~= nil then
    code, message = str(body.errorCode), str(body.errorMessage)
  elseif type(body.error) == "table" then
    local e = body.error
    code = str(e.code) or str(e.errorCode)
    message = str(e.message) or str(e.errorMessage)
    invalid = type(e["invalid-params"]) == "table" and e["invalid-params"] or nil
  elseif type(body.error) == "string" then
    code, message = str(body.code), str(body.error_description) or body.error
  else
    code = str(body.code)
    message = str(body.message) or str(body.status_message) or str(body.detail)
  end
  if type(body["invalid-params"]) == "table" then invalid = body["invalid-params"] end
  if invalid then
    local reasons = {}
    for _, p in ipairs(invalid) do
      if type(p) == "table" then
        reasons[#reasons + 1] = (str(p.name) or "?") .. ": " .. (str(p.reason) or "invalid")
      end
    end
    if #reasons > 0 then
      message = (message and (message .. " ") or "") .. "[" .. table.concat(reasons, "; ") .. "]"
    end
  end
  return code, message, invalid
end

local REQUEST_ID_HEADERS = { "x-request-id", "x-correlation-id", "request-id", "x-amzn-requestid", "x-amz-request-id" }

function M.request_id(headers)
  if type(headers) ~= "table" then return nil end
  for _, h in ipairs(REQUEST_ID_HEADERS) do
    if headers[h] then return headers[h] end
  end
  return nil
end

-- One line of printable text: line breaks become spaces, other control characters (a server's
-- escape sequences, BEL) are escaped (\x1B, \u009B) so they never act on a terminal.
local function printable(s)
  return core.printable((s:gsub("%s*[\r\n]+%s*", " "):gsub("\t", " ")))
end
M.printable = printable

--- Creates an error object. `fields` becomes the error (kind is set from the first argument).
function M.new(kind, fields)
  local e = fields or {}
  e.kind = kind
  if e.url then e.url = M.redact_url(e.url) end
  for _, k in ipairs({ "message", "code" }) do
    if type(e[k]) == "string" then e[k] = printable(e[k]:match("^%s*(.-)%s*$")) end
  end
  return setmetatable(e, Error)
end

function M.is(v, kind)
  return getmetatable(v) == Error and (kind == nil or v.kind == kind)
end

--- Raises `err` (an error object) at `level` (default 2). Table errors carry no position,
--- so `level` only matters for callers that convert the error to a string themselves.
function M.raise(err, level)
  error(err, (level or 1) + 1)
end

local function where(e)
  if e.method or e.url then
    return " (" .. (e.method or "?") .. " " .. M.url_path(e.url) .. ")"
  end
  return ""
end

local function retries_note(e)
  if e.retries and e.retries > 0 then
    return " after " .. e.retries .. (e.retries == 1 and " retry" or " retries")
  end
  return ""
end

local function describe(e)
  local k = e.kind
  if k == "http" then
    local head = "HTTP " .. tostring(e.status)
    if e.code and tostring(e.code) ~= tostring(e.status) then head = head .. " " .. tostring(e.code) end
    local msg = e.message and (": " .. e.message) or ""
    return head .. msg .. where(e) .. retries_note(e)
  elseif k == "argument" or k == "refused" or k == "version" or k == "usage" or k == "failure" then
    return e.message
  elseif k == "job" then
    local s = "job " .. (e.job_kind or "?") .. " " .. tostring(e.job_id or "?")
    if e.reason == "deadline" then
      s = s .. " did not finish within " .. tostring(e.timeout) .. "s"
    else
      s = s .. " failed"
    end
    if e.last_status then s = s .. " (last status " .. tostring(e.last_status) .. ")" end
    if e.code then s = s .. " " .. tostring(e.code) end
    if e.message then s = s .. ": " .. e.message end
    return s
  elseif k == "interrupted" then
    return "interrupted"
  elseif k == "response" then
    return tostring(e.message) .. where(e)
  elseif k == "network" or k == "timeout" or k == "cancelled" or k == "tls" then
    local label = (k == "network" and "network error") or (k == "tls" and "TLS error") or k
    return label .. (e.message and (": " .. e.message) or "") .. where(e) .. retries_note(e)
      .. (e.maybe_applied and "; it was sent and may have been applied" or "")
  else
    return tostring(k) .. " error: " .. tostring(e.message)
  end
end

-- One line whatever the server (or a caller) put in a message: line breaks become spaces.
function Error.__tostring(e)
  return printable(describe(e))
end

--- An HTTP error from a response (status >= 400, or a redirect not followed). `req` = {method=, url=}.
function M.http(req, resp, retries)
  local body = resp.json
  if body == nil and resp.body and #resp.body > 0 then
    local ok, json = pcall(require, "mxdeploy.json")
    if ok then
      local okd, decoded = pcall(json.decode, resp.body)
      if okd then body = decoded end
    end
  end
  local code, message, invalid = M.parse_body(body)
  if not message and type(resp.body) == "string" and #resp.body > 0 and type(body) ~= "table" then
    message = resp.body:sub(1, 200):gsub("%s+", " ")
  end
  return M.new("http", {
    status = resp.status, code = code, message = message, invalid_params = invalid,
    method = req.method, url = req.url, request_id = M.request_id(resp.headers),
    retries = retries or 0, body = body, headers = resp.headers,
    retry_after = resp.headers and resp.headers["retry-after"] or nil,
  })
end

--- A transport error from core.http's `err` ({kind=, message=, curl_code=, reached=}).
function M.transport(req, err, retries)
  return M.new(err.kind or "network", {
    message = err.message, curl_code = err.curl_code, reached = err.reached,
    method = req.method, url = req.url, retries = retries or 0,
  })
end

local function typename(v)
  local t = type(v)
  if t == "userdata" and v == (package.loaded["mxdeploy.json"] or {}).null then return "null" end
  return t
end
M.typename = typename

--- The candidate closest to `word` (case-insensitive edit distance), or nil when none is close:
--- for "did you mean" hints (AutoSyncDB -> AutoSyncDb, get_ap -> get_app).
function M.did_you_mean(word, candidates)
  if type(word) ~= "string" then return nil end
  local w = word:lower()
  local function distance(a, b)
    local prev = {}
    for j = 0, #b do prev[j] = j end
    for i = 1, #a do
      local cur = { [0] = i }
      for j = 1, #b do
        local cost = a:byte(i) == b:byte(j) and 0 or 1
        cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      end
      prev = cur
    end
    return prev[#b]
  end
  local best, best_d
  for _, c in ipairs(candidates) do
    local d = distance(w, c:lower())
    if not best_d or d < best_d or (d == best_d and c < best) then best, best_d = c, d end
  end
  if best and best_d <= math.max(2, #w // 3) then return best end
  return nil
end

--- `bad argument #n to 'fname' (what)`, raised before any request.
function M.argument(fname, index, what)
  return M.new("argument", {
    message = ("bad argument #%d to '%s' (%s)"):format(index, fname, what),
    ["function"] = fname, index = index, detail = what,
  })
end

function M.credentials(message)
  return M.new("credentials", { message = message })
end

function M.timeout(message, seconds)
  return M.new("timeout", { message = message, timeout = seconds })
end

function M.cancelled(message)
  return M.new("cancelled", { message = message or "cancelled" })
end

-- Errors raised by the host itself (cancelled, interrupted, deadlock) share this metatable.
if core.set_error_metatable then core.set_error_metatable(Error) end

return M
