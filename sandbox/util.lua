-- Shared helpers of the sandbox routes: responses, errors, ids, time, queries, pagination,
-- multipart bodies.
local json = require("mxdeploy.json")
local native = require("mxdeploy.sandbox.native")

local U = {}
U.json = json
U.null = json.null
U.now = native.now

function U.array(t)
  return json.array(t or {})
end

function U.map(list, f)
  local out = json.array({})
  for i, v in ipairs(list or {}) do out[#out + 1] = f(v, i) end
  return out
end

function U.copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = U.copy(x) end
  return setmetatable(t, getmetatable(v))
end

-- Deep copy that marks every sequence (and listed empty keys) as a JSON array.
function U.arrays(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = U.arrays(x) end
  if #t > 0 or json.is_array(v) then json.array(t) end
  return t
end

-- A version 4 UUID whose last 12 digits are the time and a counter (two sandboxes seeded in the
-- same millisecond still differ there), written from a table of hex digit pairs: string.format
-- took 10K instructions per UUID, and every answer gets one (X-Request-Id).
local HEX, NIBBLE = {}, {}
for i = 0, 255 do HEX[i] = string.format("%02x", i) end
for i = 0, 15 do NIBBLE[i] = string.format("%x", i) end
local seq = 0
function U.uuid()
  seq = seq + 1
  local r = math.random
  local a, b, c = r(0, 0xffffffff), r(0, 0xfffffff), 0x8000 | r(0, 0x3fff)
  local t = (math.floor(U.now() * 1000) * 4096 + seq) % 0xffffffffffff
  local v = b & 0xfff -- after the version digit 4
  return HEX[a >> 24] .. HEX[(a >> 16) & 255] .. HEX[(a >> 8) & 255] .. HEX[a & 255] .. "-"
    .. HEX[(b >> 20) & 255] .. HEX[(b >> 12) & 255] .. "-4" .. NIBBLE[v >> 8] .. HEX[v & 255] .. "-"
    .. HEX[c >> 8] .. HEX[c & 255] .. "-"
    .. HEX[(t >> 40) & 255] .. HEX[(t >> 32) & 255] .. HEX[(t >> 24) & 255] .. HEX[(t >> 16) & 255]
    .. HEX[(t >> 8) & 255] .. HEX[t & 255]
end

function U.shortid()
  local chars = "abcdefghijklmnopqrstuvwxyz0123456789"
  local t = {}
  for i = 1, 8 do
    local k = math.random(1, #chars)
    t[i] = chars:sub(k, k)
  end
  return table.concat(t)
end

function U.iso(ts)
  local s = math.floor(ts)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. string.format(".%03dZ", math.floor((ts - s) * 1000))
end

function U.ms(ts) return math.floor(ts * 1000) end

function U.unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

function U.parse_query(q)
  local t = {}
  for pair in (q or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    if k and k ~= "" then t[U.unescape(k)] = U.unescape(v) end
  end
  return t
end

function U.response(status, value, headers)
  local h = headers or {}
  local body
  if value ~= nil then
    body = type(value) == "string" and value or json.encode(value)
    h["Content-Type"] = h["Content-Type"] or "application/json"
  end
  return { status = status, body = body, headers = h }
end

function U.ok(value, headers) return U.response(200, value, headers) end

-- v1 / v2 / Build / Backups error body
function U.mx_error(status, code, message)
  return U.response(status, { errorCode = code, errorMessage = message or code })
end

-- v4 / Private Cloud error body
function U.v4_error(status, message, invalid)
  local e = { code = status, message = message }
  if invalid then e["invalid-params"] = json.array(invalid) end
  return U.response(status, { error = e })
end

function U.decode_body(req)
  if not req.body or req.body == "" then return {} end
  local ok, v = pcall(json.decode, req.body)
  if ok and type(v) == "table" then return v end
  return nil
end

-- Reads up to n bytes of the request body (memory or temp file).
function U.body_head(req, n)
  if req.body then return req.body:sub(1, n) end
  if req.body_file then
    local f = io.open(req.body_file, "rb")
    if f then
      local s = f:read(n) or ""
      f:close()
      return s
    end
  end
  return ""
end

-- Multipart: returns fields {name=value} (small text fields), the file part's filename, the
-- file part's size in bytes and its offset in the body. Only the first and last 64 KiB of a
-- large body are read.
function U.multipart(req)
  local ct = req.headers["content-type"] or ""
  local boundary = ct:match('boundary="?([^";]+)"?')
  local fields, filename, fstart = {}, nil, nil
  if not boundary then return nil end
  local total = req.body_size or 0
  local head = U.body_head(req, 65536)
  local delim = "\r\n--" .. boundary
  local pat = ("--" .. boundary):gsub("%p", "%%%0") .. "\r\n(.-)\r\n\r\n()"
  for hdrs, rest in head:gmatch(pat) do
    local name = hdrs:match('name="([^"]*)"')
    local fname = hdrs:match('filename="([^"]*)"')
    if fname then
      if name == "file" or not filename then filename, fstart = fname, rest end
    elseif name then
      local value = head:sub(rest):match("^(.-)\r\n%-%-")
      if value then fields[name] = value end
    end
  end
  local size
  if fstart then
    if total <= #head then
      local e = head:find(delim, fstart, true)
      if e then size = e - fstart end
    elseif req.body_file then
      local f = io.open(req.body_file, "rb")
      if f then
        local n = math.min(65536, total)
        f:seek("set", total - n)
        local tail = f:read("a") or ""
        f:close()
        local e = tail:find(delim, 1, true)
        if e then size = (total - n + e) - fstart end
        local tpat = ("--" .. boundary):gsub("%p", "%%%0") .. "\r\n(.-)\r\n\r\n()"
        for hdrs, rest in tail:gmatch(tpat) do
          local name = hdrs:match('name="([^"]*)"')
          if name and not hdrs:match('filename="') then
            local value = tail:sub(rest):match("^(.-)\r\n%-%-")
            if value then fields[name] = value end
          end
        end
      end
    end
  end
  return fields, filename, size, fstart and fstart - 1
end

-- Multipart part headers, for the request log: an array of {name=, filename=, content_type=}
-- (filename/content_type only when the part has them), read from the first and the last 64 KiB
-- of the body. nil when the request is not multipart or has no boundary.
function U.multipart_parts(req)
  local ct = req.headers["content-type"] or ""
  local boundary = ct:match('boundary="?([^";]+)"?')
  if not boundary then return nil end
  local pat = ("--" .. boundary):gsub("%p", "%%%0") .. "\r\n(.-)\r\n\r\n"
  local parts = json.array({})
  local function scan(text)
    for hdrs in text:gmatch(pat) do
      local part = { name = hdrs:match('[%s;]name="([^"]*)"') }
      part.filename = hdrs:match('filename="([^"]*)"')
      part.content_type = hdrs:match("[Cc]ontent%-[Tt]ype:%s*([^\r\n]+)")
      parts[#parts + 1] = part
    end
  end
  local total = req.body_size or 0
  scan(U.body_head(req, 65536))
  if total > 65536 and req.body_file then
    local f = io.open(req.body_file, "rb")
    if f then
      local from = math.max(65536, total - 65536)
      f:seek("set", from)
      scan(f:read("a") or "")
      f:close()
    end
  end
  return parts
end

-- offset/limit from the query; returns slice, offset, limit or an error message.
function U.page(list, q, default_limit, max_limit)
  local offset = tonumber(q.offset or "0")
  local limit = tonumber(q.limit or tostring(default_limit))
  if not offset or offset < 0 or offset ~= math.floor(offset) then return nil, "offset must be a non-negative integer" end
  if not limit or limit < 1 or limit ~= math.floor(limit) then return nil, "limit must be a positive integer" end
  if max_limit and limit > max_limit then limit = max_limit end
  local out = json.array({})
  for i = offset + 1, math.min(#list, offset + limit) do out[#out + 1] = list[i] end
  return out, math.tointeger(offset), math.tointeger(limit)
end

-- The offset/limit pages of Deploy v4 and Private Cloud: items, {offset=, limit=, size=} or nil
-- and the 400 answer (v4 names the parameter in "invalid-params": `detailed`).
function U.v4_page(ctx, list, default_limit, max_limit, detailed)
  local items, offset, limit = U.page(list, ctx.q, default_limit, max_limit)
  if not items then
    if detailed then
      return nil, U.v4_error(400, "Request validation errors", { { name = "query-parameter", reason = offset } })
    end
    return nil, U.v4_error(400, offset)
  end
  return items, { offset = offset, limit = limit, size = #items }
end

function U.find(list, key, value)
  for i, v in ipairs(list or {}) do
    if v[key] == value then return v, i end
  end
end

-- Status of a timed process: phases = { {"Queued", d1}, {"Running", d2}, ... final }
-- elapsed is simulated seconds. Returns the phase name and whether it is the final one.
function U.phase(phases, elapsed)
  local t = 0
  for i = 1, #phases - 1 do
    t = t + phases[i][2]
    if elapsed < t then return phases[i][1], false end
  end
  return phases[#phases][1], true
end

-- Whether `user` ({username=}) is a member of `app` (the apps a key or token can see).
function U.member(app, user)
  for _, m in ipairs(app.members or {}) do
    if m == user.username then return true end
  end
  return false
end

return U
