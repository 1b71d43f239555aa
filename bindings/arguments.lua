-- mxdeploy.arguments: checks the arguments of an operation call before any request is sent, and
-- turns them into path values, a JSON body, query parameters, an upload or a download.
-- Every refusal is an `argument` error: bad argument #n to 'ns.name' (Param: what is wrong).

local errors = require("mxdeploy.errors")
local json = require("mxdeploy.json")
local operations = require("mxdeploy.operations")

local M = {}

-- Tables marked by mx.raw{...}: a body whose undocumented fields are sent on purpose.
M.raw_bodies = setmetatable({}, { __mode = "k" })

--- Marks `t` as a body to send as it is (fields the docs do not list included); returns `t`.
function M.raw(t)
  if type(t) ~= "table" then
    errors.raise(errors.argument("raw", 1, "table expected, got " .. errors.typename(t)), 2)
  end
  M.raw_bodies[t] = true
  return t
end

local function days_in_month(y, m)
  local d = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
  if m == 2 and (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then return 29 end
  return d[m]
end

-- Rules for path parameters: return nil when valid, else what is wrong.
M.rules = {
  date = function(v)
    local y, m, d = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    if not y then return "date in the format YYYY-MM-DD expected, got '" .. v .. "'" end
    y, m, d = tonumber(y), tonumber(m), tonumber(d)
    if m < 1 or m > 12 or d < 1 or d > days_in_month(y, m) then
      return "no such date '" .. v .. "'"
    end
  end,
  uuid = function(v)
    if not v:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$") then
      return "UUID expected (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got '" .. v .. "'"
    end
  end,
  -- Private Cloud environment IDs: the spec says a string of at most 8 characters (and no more:
  -- a stricter rule would lock out a real environment).
  max8 = function(v)
    if #v > 8 then
      return "Private Cloud environment ID has at most 8 characters, got '" .. v .. "'"
    end
  end,
  -- Webhooks API upsert-webhook schema
  webhook_secret = function(v)
    local body = v:match("^whsec_(.*)$") or v
    if #body < 32 or #body > 100 or body:find("[^%w+/=]") then
      return "validation secret must match ^(whsec_)?[a-zA-Z0-9+/=]{32,100}$"
    end
  end,
  webhook_name = function(v)
    if not v:match("^[%w_ ]+$") then
      return "webhook name of letters, digits, _ and spaces expected, got '" .. v .. "'"
    end
  end,
  cli_version = function(v)
    if not v:match("^%d+%.%d+%.%d+$") then
      return "mxpc-cli version like 2.5.1 expected, got '" .. v .. "'"
    end
  end,
}

local function typename(v) return errors.typename(v) end

local function fail(op, index, what)
  errors.raise(errors.argument(op.full_name, index, what), 4)
end

local function check_field(op, index, f, v)
  if v == nil or v == json.null then return end
  local t = f.type
  local ok
  if t == "array" then ok = type(v) == "table"
  elseif t == "number" then ok = type(v) == "number"
  else ok = type(v) == t end
  if not ok then
    fail(op, index, f.name .. ": " .. t .. " expected, got " .. typename(v))
  end
end

--- Checks a package file as an upload does: returns its size, or nil and a one-line problem
--- naming the file ("cannot open /x.mda: No such file or directory"). `limit`: apply Mendix
--- Cloud's documented 1 GB limit.
function M.check_package(file, limit)
  local fh, msg = io.open(file, "rb")
  if not fh then return nil, "cannot open " .. tostring(msg) end -- io.open's message names the file
  local readable, rerr = fh:read(0) -- a directory opens, but reading it fails
  if readable == nil and rerr then
    fh:close()
    return nil, ("cannot read '%s': %s"):format(file, tostring(rerr))
  end
  local size = fh:seek("end")
  fh:close()
  if limit and size > operations.UPLOAD_LIMIT then
    return nil, ("'%s' is %.2f GB; Mendix Cloud refuses packages over 1 GB"):format(file, size / 2 ^ 30)
  end
  return size
end

--- mx.package_size(path): the size of a package file, checked as an upload checks it; raises an
--- argument error whose message is the one line naming the file.
function M.package_size(file)
  if type(file) ~= "string" then
    errors.raise(errors.argument("package_size", 1, "path of the package expected, got " .. typename(file)), 2)
  end
  local size, problem = M.check_package(file, true)
  if not size then errors.raise(errors.new("argument", { message = problem, file = file }), 2) end
  return size
end

-- The body with every empty table at a declared array path replaced by a JSON array, so it is
-- encoded `[]` (an empty Lua table encodes as `{}`). The caller's tables are not changed: the
-- tables along a changed path are shallow copies.
local function with_arrays(body, paths)
  for _, path in ipairs(paths) do
    local chain, v = { body }, body
    for i, key in ipairs(path) do
      if type(v) ~= "table" or json.is_array(v) and i < #path then v = nil break end
      v = v[key]
      chain[i + 1] = v
    end
    if type(v) == "table" and next(v) == nil and not json.is_array(v) and getmetatable(v) == nil then
      local replacement = json.array()
      for i = #path, 1, -1 do
        local copy = {}
        for k, x in pairs(chain[i]) do copy[k] = x end
        setmetatable(copy, getmetatable(chain[i]))
        copy[path[i]] = replacement
        replacement = copy
      end
      body = replacement
    end
  end
  return body
end
M.with_arrays = with_arrays

-- An operation's documented fields by name, and their names in order: the same for every call,
-- so made once per operation (every call of a bound operation goes through M.check).
local field_index = setmetatable({}, { __mode = "k" })
local function fields_of(op)
  local idx = field_index[op]
  if not idx then
    idx = { by_name = {}, names = {} }
    for _, f in ipairs(op.fields or {}) do
      idx.by_name[f.name] = f
      idx.names[#idx.names + 1] = f.name
    end
    field_index[op] = idx
  end
  return idx
end

--- Checks a call's arguments (the `...` of a generated function). Returns a table:
--- {path = {values in path order}, body =, query =, file =, output =}.
function M.check(op, ...)
  local n = select("#", ...)
  local args = { ... }
  local params, input = op.params, op.input
  local path = {}
  local out = { path = path }
  for i = 1, #params do
    local p, v = params[i], args[i]
    if type(v) == "number" then
      local iv = math.tointeger(v)
      if iv then v = tostring(iv)
      elseif v == math.floor(v) or v ~= v then -- inf, nan, or too big to write as an integer
        fail(op, i, p .. ": string expected, got number " .. tostring(v))
      else v = tostring(v) end
    end
    if type(v) ~= "string" then
      fail(op, i, p .. ": string expected, got " .. typename(v))
    end
    if v == "" then fail(op, i, p .. ": non-empty string expected") end
    local rule = op.rules[p]
    if rule then
      local problem = M.rules[rule](v)
      if problem then fail(op, i, p .. ": " .. problem) end
    end
    path[i] = v
  end
  local i = #params + 1
  if input == "upload" then
    local file = args[i]
    if type(file) ~= "string" then
      fail(op, i, "file: path of the package expected, got " .. typename(file))
    end
    local size, problem = M.check_package(file, op.auth == "apikey")
    if not size then fail(op, i, "file: " .. problem) end
    out.file, out.size = file, size
    i = i + 1
  elseif input == "download" and type(args[i]) ~= "table" then
    local output = args[i]
    if output ~= nil and type(output) ~= "string" then
      fail(op, i, "output: file path expected, got " .. typename(output))
    end
    out.output = output
    i = i + 1
  end
  local opts = args[i]
  if input == nil and opts ~= nil and type(opts) ~= "table" then
    fail(op, i, "no more arguments expected, got " .. typename(opts))
  end
  if opts ~= nil and type(opts) ~= "table" then
    fail(op, i, "table expected, got " .. typename(opts))
  end
  if n > i then
    fail(op, i + 1, "no more arguments expected, got " .. typename(args[i + 1]))
  end
  if input == nil then
    if opts ~= nil and next(opts) ~= nil then
      fail(op, i, "this operation takes no body or query parameters")
    end
    return out
  end
  opts = opts or {}
  if (op.input == "upload" or op.input == "download") and opts.on_progress ~= nil then
    -- transfer progress, not a query parameter: on_progress(done_bytes, total_bytes, "up"|"down")
    if type(opts.on_progress) ~= "function" then
      fail(op, i, "on_progress: function expected, got " .. typename(opts.on_progress))
    end
    out.on_progress = opts.on_progress
    local copy = {}
    for k, v in pairs(opts) do
      if k ~= "on_progress" then copy[k] = v end
    end
    if M.raw_bodies[opts] then M.raw_bodies[copy] = true end
    opts = copy
  end
  local index = fields_of(op)
  local fields = index.by_name
  for _, f in ipairs(op.fields or {}) do
    if f.required and opts[f.name] == nil then
      fail(op, i, f.name .. ": " .. f.type .. " expected, got nil")
    end
    check_field(op, i, f, opts[f.name])
  end
  if op.input == "body" then
    -- IDs the caller chooses inside a manifest (only where present: an update may omit them)
    for _, r in ipairs(op.body_rules or {}) do
      local path, rule = r[1], r[2]
      local v = opts
      for _, key in ipairs(path) do
        if type(v) ~= "table" then v = nil break end
        v = v[key]
      end
      if v ~= nil and v ~= json.null then
        local name = table.concat(path, ".")
        if type(v) ~= "string" then fail(op, i, name .. ": string expected, got " .. typename(v)) end
        local problem = M.rules[rule](v)
        if problem then fail(op, i, name .. ": " .. problem) end
      end
    end
    -- a field the docs do not list is most likely a typo (AutoSyncDB): refused before sending,
    -- unless the caller marked the body with mx.raw{...}
    if op.fields and #op.fields > 0 and not M.raw_bodies[opts] and not json.is_array(opts) then
      local names = index.names
      for k in pairs(opts) do
        if not fields[k] then
          local hint = errors.did_you_mean(tostring(k), names)
          fail(op, i, "unknown field '" .. tostring(k) .. "'"
            .. (hint and ("; did you mean " .. hint .. "?") or (" (documented: " .. table.concat(names, ", ") .. ")"))
            .. "; send it on purpose with mx.raw{...}")
        end
      end
    end
    out.body = with_arrays(opts, op.array_paths or {})
  else
    -- query, upload and download options: only documented keys
    for k in pairs(opts) do
      if not fields[k] and not M.raw_bodies[opts] then
        local names = index.names
        local hint = errors.did_you_mean(tostring(k), names)
        fail(op, i, "unknown parameter '" .. tostring(k) .. "'"
          .. (hint and ("; did you mean " .. hint .. "?") or "")
          .. (#names > 0 and (" (expected " .. table.concat(names, ", ") .. ")") or ""))
      end
    end
    out.query = opts
  end
  return out
end

return M
