-- REPL helpers for the host: pretty printing and tab completion.
local json = require("mxdeploy.json")

local M = {}

local MAX_ITEMS, MAX_DEPTH = 200, 8

local function is_identifier(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil
end

-- Numbers first (ascending), then strings (alphabetical), then anything else by its text.
local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    local rank = { number = 1, string = 2 }
    return (rank[ta] or 3) < (rank[tb] or 3)
  end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function scalar(v)
  if v == json.null then return "null" end
  if type(v) == "string" then return string.format("%q", v):gsub("\\\n", "\\n") end
  return tostring(v)
end

local function render(v, indent, seen, depth, out)
  if type(v) ~= "table" then
    out[#out + 1] = scalar(v)
    return
  end
  local mt = getmetatable(v)
  if mt and mt.__tostring and not json.is_array(v) then
    out[#out + 1] = tostring(v)
    return
  end
  if seen[v] then
    out[#out + 1] = "<cycle>"
    return
  end
  local is_array = json.is_array(v)
  local open, close = is_array and "[" or "{", is_array and "]" or "}"
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  if #keys == 0 then
    out[#out + 1] = open .. close
    return
  end
  if depth >= MAX_DEPTH then
    out[#out + 1] = open .. " ... " .. close
    return
  end
  table.sort(keys, key_order)
  seen[v] = true
  local n = #v
  out[#out + 1] = open .. "\n"
  local pad = indent .. "  "
  for i, k in ipairs(keys) do
    if i > MAX_ITEMS then
      out[#out + 1] = pad .. "... (" .. (#keys - MAX_ITEMS) .. " more)\n"
      break
    end
    out[#out + 1] = pad
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then
      out[#out + 1] = is_identifier(k) and k or ("[" .. scalar(k) .. "]")
      out[#out + 1] = " = "
    end
    render(v[k], pad, seen, depth + 1, out)
    out[#out + 1] = ",\n"
  end
  out[#out + 1] = indent .. close
  seen[v] = nil
end

--- Renders a value for the REPL: nested tables with stable key order; `null` and `[]` visible.
function M.pretty(v)
  local out = {}
  render(v, "", {}, 0, out)
  return table.concat(out)
end

-- Candidate names of a value: its fields (tables), or its metatable's __index table.
local function fields(v, out)
  local seen = {}
  local function add(t)
    if type(t) ~= "table" or seen[t] then return end
    seen[t] = true
    for k in pairs(t) do
      if is_identifier(k) then out[k] = true end
    end
  end
  local ok = pcall(function()
    if type(v) == "table" then add(v) end
    local mt = getmetatable(v)
    if type(mt) == "table" then
      add(mt.__index)
      if type(mt.__complete) == "function" then
        for _, k in ipairs(mt.__complete(v)) do out[k] = true end
      end
    end
  end)
  return ok
end

--- Completions for the word before the cursor: `mx.v1.li` -> {"mx.v1.list_apps", ...}.
function M.complete(word)
  local prefix, sep, partial = word:match("^(.-)([.:])([%w_]*)$")
  local base
  if prefix then
    base = _G
    for name in prefix:gmatch("[^.:]+") do
      if type(base) ~= "table" and type(getmetatable(base)) ~= "table" then return {} end
      local ok, v = pcall(function() return base[name] end)
      if not ok or v == nil then return {} end
      base = v
    end
  else
    base, prefix, sep, partial = _G, "", "", word
  end
  local names = {}
  fields(base, names)
  if prefix == "" then
    for _, kw in ipairs({ "and", "break", "do", "else", "elseif", "end", "false", "for",
      "function", "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then",
      "true", "until", "while" }) do
      names[kw] = true
    end
  end
  local out = {}
  for name in pairs(names) do
    if name:sub(1, #partial) == partial then out[#out + 1] = prefix .. sep .. name end
  end
  table.sort(out)
  return out
end

return M
