-- mxdeploy.steps.settings: environment settings as code (Deploy API v1): read them into a
-- settings document, compare two documents into changes, apply changes, write a document as JSON
-- with a stable key order.
--
-- A settings document (what `mxdeploy run settings export` writes, and a FILE plan/apply read):
--   { "Constants": [{"Name", "Value"}], "CustomSettings": [{"Name", "Value"}],
--     "ScheduledEvents": [{"Name", "Value"}], "Tags": ["..."] }
-- in the API's own shape (the body of POST .../settings), each list sorted by Name. A section a
-- file leaves out is not managed. A constant whose name looks secret (M.is_secret: password,
-- secret, token, key, credential, private) is exported as "<secret>" unless values are shown,
-- and "<secret>" in a file means "keep the current value". Scaling is not part of it: the
-- Deploy API v1 has no read of an environment's scaling to compare with.
local json = require("mxdeploy.json")

local M = {}

M.SECRET = "<secret>"
M.SECTIONS = { "Constants", "CustomSettings", "ScheduledEvents", "Tags" }

local function mx() return package.loaded["mxdeploy"] or require("mxdeploy") end

function M.is_secret(name)
  local n = tostring(name):lower()
  for _, w in ipairs({ "password", "secret", "token", "key", "credential", "private" }) do
    if n:find(w, 1, true) then return true end
  end
  return false
end

local function by_name(a, b) return a.Name < b.Name end

local function str(v)
  if v == nil or v == json.null then return "" end
  return tostring(v)
end

--- The settings document of an environment (values of secret constants masked unless `show`).
function M.read(app_id, mode, show)
  local m = mx()
  local s = m.v1.get_environment_settings(app_id, mode)
  local doc = {}
  for _, k in ipairs({ "Constants", "CustomSettings", "ScheduledEvents" }) do
    local list = json.array({})
    for _, c in ipairs(s[k] or {}) do
      local v = str(c.Value)
      if k == "Constants" and not show and M.is_secret(c.Name) and v ~= "" then v = M.SECRET end
      list[#list + 1] = { Name = c.Name, Value = v }
    end
    table.sort(list, by_name)
    doc[k] = list
  end
  local tags = json.array({})
  for _, t in ipairs(m.v1.get_environment_tags(app_id, mode) or {}) do tags[#tags + 1] = t.Tag end
  table.sort(tags)
  doc.Tags = tags
  return doc
end

--- A settings file as a document. Raises a one-line error naming the file.
function M.load(path)
  local m = mx()
  local function fail(msg) error(m.errors.new("failure", { message = "settings " .. path .. ": " .. msg }), 0) end
  local f, err = io.open(path, "rb")
  if not f then error(m.errors.new("failure", { message = "cannot read settings " .. tostring(err) }), 0) end
  local text = f:read("a")
  f:close()
  local ok, doc = pcall(json.decode, text)
  if not ok then fail("not valid JSON (" .. tostring(doc) .. ")") end
  if type(doc) ~= "table" or json.is_array(doc) then fail("not a JSON object") end
  for k, v in pairs(doc) do
    local known = false
    for _, s in ipairs(M.SECTIONS) do if s == k then known = true end end
    if not known then
      local hint = m.errors.did_you_mean(k, M.SECTIONS)
      fail("unknown section '" .. tostring(k) .. "'" .. (hint and ("; did you mean " .. hint .. "?") or ""))
    end
    if type(v) ~= "table" then fail(k .. " must be a list") end
    if k ~= "Tags" then
      for i, c in ipairs(v) do
        if type(c) ~= "table" or type(c.Name) ~= "string" then fail(("%s[%d] needs a Name"):format(k, i)) end
      end
    end
  end
  return doc
end

local KIND = { Constants = "constant", CustomSettings = "custom setting", ScheduledEvents = "scheduled event" }

--- The changes that turn document `from` into `to`: a list of {section, kind, name, old, new,
--- op = "change"|"add"|"remove"} in a stable order. Only sections `to` has are compared; a
--- "<secret>" value in `to` keeps the current one. Constants and scheduled events cannot be
--- added or removed (they come from the model): such a change is an error (returned second).
function M.changes(from, to)
  local out, problems = {}, {}
  for _, k in ipairs({ "Constants", "CustomSettings", "ScheduledEvents" }) do
    if to[k] then
      local have = {}
      for _, c in ipairs(from[k] or {}) do have[c.Name] = str(c.Value) end
      local want, names = {}, {}
      for _, c in ipairs(to[k]) do
        if want[c.Name] == nil then names[#names + 1] = c.Name end
        want[c.Name] = str(c.Value)
      end
      table.sort(names)
      for _, name in ipairs(names) do
        local old, new = have[name], want[name]
        if old == nil then
          if k == "CustomSettings" then
            out[#out + 1] = { section = k, kind = KIND[k], name = name, new = new, op = "add" }
          else
            problems[#problems + 1] = ("%s %s is not in the environment (its model has no such %s)"):format(KIND[k], name, KIND[k])
          end
        elseif new ~= M.SECRET and old ~= new then
          out[#out + 1] = { section = k, kind = KIND[k], name = name, old = old, new = new, op = "change" }
        end
      end
      if k == "CustomSettings" then
        local gone = {}
        for name in pairs(have) do if want[name] == nil then gone[#gone + 1] = name end end
        table.sort(gone)
        for _, name in ipairs(gone) do
          out[#out + 1] = { section = k, kind = KIND[k], name = name, old = have[name], op = "remove" }
        end
      end
    end
  end
  if to.Tags then
    local have, want = {}, {}
    for _, t in ipairs(from.Tags or {}) do have[t] = true end
    for _, t in ipairs(to.Tags) do want[t] = true end
    local adds, removes = {}, {}
    for t in pairs(want) do if not have[t] then adds[#adds + 1] = t end end
    for t in pairs(have) do if not want[t] then removes[#removes + 1] = t end end
    table.sort(adds)
    table.sort(removes)
    for _, t in ipairs(adds) do out[#out + 1] = { section = "Tags", kind = "tag", name = t, op = "add" } end
    for _, t in ipairs(removes) do out[#out + 1] = { section = "Tags", kind = "tag", name = t, op = "remove" } end
  end
  return out, problems
end

--- One line for a change; values of secret constants masked unless `show`.
function M.line(c, show)
  local function v(x)
    if x == nil then return "" end
    if c.section == "Constants" and not show and M.is_secret(c.name) then return "(secret, hidden)" end
    return M.pretty(x)
  end
  if c.section == "Tags" then return (c.op == "add" and "+ tag " or "- tag ") .. c.name end
  if c.op == "add" then return ("+ %s %s = %s"):format(c.kind, c.name, v(c.new)) end
  if c.op == "remove" then return ("- %s %s (was %s)"):format(c.kind, c.name, v(c.old)) end
  return ("~ %s %s: %s -> %s"):format(c.kind, c.name, v(c.old), v(c.new))
end

--- The changes as JSON-ready records (values masked as in M.line).
function M.records(changes, show)
  local out = json.array({})
  for _, c in ipairs(changes) do
    local hide = c.section == "Constants" and not show and M.is_secret(c.name)
    out[#out + 1] = { section = c.section, op = c.op, name = c.name,
      old = (not hide) and c.old or nil, new = (not hide) and c.new or nil, line = M.line(c, show) }
  end
  return out
end

--- Applies exactly `changes` (from M.changes against the environment's current document `current`).
function M.apply(app_id, mode, changes, current)
  local m = mx()
  local body, custom_changed = {}, false
  for _, c in ipairs(changes) do
    if c.section == "Constants" or c.section == "ScheduledEvents" then
      body[c.section] = body[c.section] or json.array({})
      local list = body[c.section]
      list[#list + 1] = { Name = c.name, Value = c.new }
    elseif c.section == "CustomSettings" then
      custom_changed = true
    end
  end
  if custom_changed then -- the API replaces the whole list of custom settings
    local list, drop, set = json.array({}), {}, {}
    for _, c in ipairs(changes) do
      if c.section == "CustomSettings" then
        if c.op == "remove" then drop[c.name] = true else set[c.name] = c.new end
      end
    end
    for _, c in ipairs(current.CustomSettings or {}) do
      if not drop[c.Name] and set[c.Name] == nil then list[#list + 1] = { Name = c.Name, Value = c.Value } end
    end
    local names = {}
    for name in pairs(set) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do list[#list + 1] = { Name = name, Value = set[name] } end
    body.CustomSettings = list
  end
  if next(body) then m.v1.set_environment_settings(app_id, mode, body) end
  for _, c in ipairs(changes) do
    if c.section == "Tags" then
      if c.op == "add" then m.v1.create_environment_tag(app_id, mode, { Tag = c.name })
      else m.v1.delete_environment_tag(app_id, mode, { Tag = c.name }) end
    end
  end
end

--- The changes that take effect only at the next restart (every settings change; not tags).
function M.needs_restart(changes)
  local out = {}
  for _, c in ipairs(changes) do
    if c.section ~= "Tags" then out[#out + 1] = c end
  end
  return out
end

--- JSON text with object keys sorted and two-space indentation (diffs well in git).
function M.pretty(v, indent)
  indent = indent or ""
  local inner = indent .. "  "
  if type(v) == "table" and v ~= json.null then
    if json.is_array(v) or (#v > 0) then
      if #v == 0 then return "[]" end
      local parts = {}
      for i = 1, #v do parts[i] = inner .. M.pretty(v[i], inner) end
      return "[\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    if #keys == 0 then return "{}" end
    table.sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do parts[i] = inner .. M.pretty(k) .. ": " .. M.pretty(v[k], inner) end
    return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
  end
  return (json.encode(v):gsub("\\/", "/")) -- cjson writes "/" as "\/": a '/' is always escaped, so this is exact
end

return M
