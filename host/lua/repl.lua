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

-- Candidate names of a value: its fields (tables), its metatable's __index table, or (userdata
-- such as tasks, whose __index is a function) the methods its metatable holds. After ":" only
-- functions are offered (methods); metamethods ("__...") never.
local function fields(v, out, methods_only)
  local seen = {}
  local function add(t)
    if type(t) ~= "table" or seen[t] then return end
    seen[t] = true
    for k, x in pairs(t) do
      if is_identifier(k) and k:sub(1, 2) ~= "__" and (not methods_only or type(x) == "function") then
        out[k] = true
      end
    end
  end
  local ok = pcall(function()
    if type(v) == "table" then add(v) end
    local mt = getmetatable(v)
    if type(mt) == "table" then
      if type(mt.__index) == "table" then add(mt.__index) end
      if type(mt.__index) == "function" and type(v) == "userdata" then add(mt) end
      if mt.__name == "mxdeploy.task" and not methods_only then out.id = true end
      if type(mt.__complete) == "function" then
        for _, k in ipairs(mt.__complete(v)) do out[k] = true end
      end
    end
  end)
  return ok
end

-- The value a dotted name refers to ("mx.v1.get_app"), by field lookups only (nothing is called
-- but __index metamethods); nil when any step fails.
local function lookup(name)
  local v = _G
  for part in name:gmatch("[^.:]+") do
    if type(v) ~= "table" and type(getmetatable(v)) ~= "table" then return nil end
    local ok, x = pcall(function() return v[part] end)
    if not ok or x == nil then return nil end
    v = x
  end
  return v
end

-- In `code` (a line up to the cursor), the position of the innermost "(" not closed yet, or of
-- the "(" matching a final ")" when `closing` is set (or of braces: `f{...}` is a call too). Strings are skipped (roughly: no long
-- brackets). Returns the position or nil.
local function open_paren(code, closing, open_c, close_c)
  open_c, close_c = open_c or "(", close_c or ")"
  local stack, i, n = {}, 1, #code
  local last_closed
  while i <= n do
    local c = code:sub(i, i)
    if c == '"' or c == "'" then
      local j = i + 1
      while j <= n and code:sub(j, j) ~= c do
        if code:sub(j, j) == "\\" then j = j + 1 end
        j = j + 1
      end
      i = j
    elseif c == open_c then
      stack[#stack + 1] = i
    elseif c == close_c then
      last_closed = stack[#stack]
      stack[#stack] = nil
    end
    i = i + 1
  end
  if closing then return last_closed end
  return stack[#stack]
end

local function callee_before(code, pos)
  local name = code:sub(1, pos - 1):match("([%a_][%w_.:]*)%s*$")
  return name, name and lookup(name)
end

local JOB = { methods = { "wait", "status", "cancel", "result" }, fields = { "id" } }
local TASK = { methods = { "wait", "status", "cancel" }, fields = { "id" } }

-- What a call returns, for completing after `f(...)` without making the call: a job for an
-- operation that completes as a job, a task for mx.spawn, a client for mx.connect; nil (nothing
-- offered) for anything else, whose result is unknown until it runs.
local function result_shape(fn)
  local client = package.loaded["mxdeploy.client"]
  local mx = rawget(_G, "mx")
  local op = client and client.function_ops[fn]
  if op then return op.completes == "job" and JOB or nil end
  if mx and fn == mx.spawn then return TASK end
  if mx and (fn == mx.connect or fn == mx.sandbox_client or fn == mx.use_sandbox) then
    local c = mx.default_client
    local shape = { methods = {}, fields = {} }
    local names = {}
    fields(c, names)
    for k in pairs(names) do
      if type(c[k]) == "function" then shape.methods[#shape.methods + 1] = k else shape.fields[#shape.fields + 1] = k end
    end
    return shape
  end
  return nil
end

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto",
  "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }

--- Completions for the word before the cursor: `mx.v1.li` -> {"mx.v1.li..."}. `before` is the
--- line before that word. Returns the candidates, and a hint to show instead (the signature of
--- the function whose arguments the cursor is in) when there are none to offer.
function M.complete(word, before)
  before = before or ""
  local prefix, sep, partial = word:match("^(.-)([.:])([%w_]*)$")
  local names = {}
  -- after a call expression: `mx.v1.start_environment("calc", "Test"):` -> the job's methods
  local closer = word:match("^[.:]") and before:match("([)}])%s*$")
  if closer then
    local lead, rest = word:match("^([.:])([%w_]*)$")
    if not lead then return {} end -- `f().a.b`: the result's fields' fields are unknown
    local pos = closer == ")" and open_paren(before, true) or open_paren(before, true, "{", "}")
    local shape
    if pos then
      local _, fn = callee_before(before, pos)
      shape = fn ~= nil and result_shape(fn)
    end
    if not shape then return {} end
    for _, k in ipairs(lead == ":" and shape.methods or shape.fields) do names[k] = true end
    if lead == "." then for _, k in ipairs(shape.methods) do names[k] = true end end
    prefix, sep, partial = "", lead, rest
  elseif prefix then
    if prefix == "" then return {} end -- "." alone: nothing to complete
    local base = lookup(prefix)
    if base == nil then return {} end
    fields(base, names, sep == ":")
  else
    if word == "" then
      local pos = open_paren(before)
      if pos then -- inside a call's arguments: the hint is the callee's signature
        local _, fn = callee_before(before, pos)
        local hint = fn ~= nil and require("mxdeploy.help").hint(fn)
        if hint then return {}, hint end
      end
    end
    prefix, sep, partial = "", "", word
    fields(_G, names)
    for _, kw in ipairs(KEYWORDS) do names[kw] = true end
  end
  local out = {}
  for name in pairs(names) do
    if name:sub(1, #partial) == partial then out[#out + 1] = prefix .. sep .. name end
  end
  table.sort(out)
  return out
end

-- Argument names whose value is a secret: a line giving one a literal value is not saved.
local SECRET_NAMES = { "apikey", "api_key", "token", "password", "passwd", "secret", "authorization",
  "mendix%-apikey", "credential" }

--- False for a line that holds a literal credential: `mx.connect{apikey = "..."}`, `token='...'`,
--- `headers = {["Mendix-ApiKey"] = "..."}` (a name from SECRET_NAMES given a string literal), a
--- URL with a password, a "whsec_" webhook secret.
--- Such lines run, but are kept out of the history (and so out of the history file).
function M.keep_in_history(line)
  local lower = line:lower()
  -- a URL with a password in it (base_urls = {v1 = "https://user:pw@host"}) or a webhook's
  -- validation secret given positionally (mx.webhooks.verify("whsec_...", ...))
  if lower:find("%a[%w+.-]*://[^/%s\"'@]*:[^/%s\"'@]*@") or lower:find("whsec_", 1, true) then return false end
  for _, name in ipairs(SECRET_NAMES) do
    for tail in lower:gmatch("[%w_]*" .. name .. "[%w_]*[\"']?%]?%s*=%s*(.)") do
      if tail == '"' or tail == "'" or tail == "[" then return false end
    end
  end
  return true
end

--- Lines describing what the still-running tasks wait on (mx.pending()), or nil when none runs.
function M.pending_lines()
  local core = require("mxdeploy.core")
  local list = core.pending()
  if #list == 0 then return nil end
  local lines = { ("%d task%s still running:"):format(#list, #list == 1 and " is" or "s are") }
  table.sort(list, function(a, b) return (tonumber(a.task) or 0) < (tonumber(b.task) or 0) end)
  for _, p in ipairs(list) do
    lines[#lines + 1] = ("  task %s waits on %s (for %.1f s)"):format(tostring(p.task),
      p.what and p.what ~= "" and p.what or p.kind, p.waited or 0)
  end
  lines[#lines + 1] = "Waiting for them to finish: Ctrl-D again or Ctrl-C ends them."
  return table.concat(lines, "\n")
end

return M
