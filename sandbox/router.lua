-- Routes of one mount point (e.g. /deploy/api/1): method + path pattern -> handler, where a
-- route may declare what it needs resolved first, so "not found" is answered in one place.
--
--   local r = router.new()
--   local add = r.with(NEEDS)      -- NEEDS = { app = function(ctx, p) return app | nil, err_resp end, ... }
--   add("GET", "/apps/{AppId}", { needs = "app" }, function(ctx, p, app) ... end)
--   add("GET", "/apps", function(ctx, p) ... end)
--   local route, params = r.dispatch(method, path)   -- nil, path_found when nothing matches
--   router.call(route, ctx, params) -> response
--
-- A resolver returns the resource(s) the handler gets after (ctx, p), or nil and the answer to
-- send instead (a 404 in the API's own error shape).
local M = {}

local function unescape_path(s)
  if not s:find("%", 1, true) then return s end -- most values have nothing to unescape
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- "/a/{x}/b" -> its segments, each a literal string or {name = "x"} (a parameter, one whole
-- non-empty segment), compiled once when the route is added. A path is split into segments once
-- per request and compared route by route: segment counts first, then literals (string
-- equality), so the 69 routes cost a few comparisons each instead of a pattern match each.
local function compile(pattern)
  assert(pattern:sub(1, 1) == "/", "route pattern must start with /")
  local segs = {}
  for seg in pattern:sub(2):gmatch("([^/]*)/?") do
    local name = seg:match("^{(%w+)}$")
    if not name and seg:find("[{}]") then error("route " .. pattern .. ": a parameter must be a whole segment", 3) end
    segs[#segs + 1] = name and { name = name } or seg
  end
  if pattern:sub(-1) ~= "/" and segs[#segs] == "" and #segs > 1 then segs[#segs] = nil end
  return segs
end

-- "/a/b/c" -> { "a", "b", "c" } ("/" -> { "" }); nil when it does not start with "/"
local function split(path)
  if path:byte(1) ~= 47 then return nil end
  local segs, from = {}, 2
  while true do
    local slash = path:find("/", from, true)
    segs[#segs + 1] = path:sub(from, (slash or 0) - 1)
    if not slash then return segs end
    from = slash + 1
  end
end

local function match(rt, segs)
  local want = rt.segs
  if #want ~= #segs then return nil end
  for i = 1, #want do
    local w = want[i]
    if type(w) == "string" then
      if w ~= segs[i] then return nil end
    elseif segs[i] == "" then
      return nil
    end
  end
  local t = {}
  for i = 1, #want do
    local w = want[i]
    if type(w) == "table" then t[w.name] = unescape_path(segs[i]) end
  end
  return t
end

function M.new()
  -- routes by segment count (only those can match a path of that many), each list in the order added
  local r = { by_count = {} }

  -- add(method, pattern, [opts], fn) with the resolvers of `needs` (a module's own lookups)
  function r.with(needs)
    return function(method, pattern, opts, fn)
      if fn == nil then opts, fn = {}, opts end
      local resolve = opts.needs and needs[opts.needs]
      if opts.needs and not resolve then error("route " .. pattern .. ": unknown need " .. opts.needs, 2) end
      local rt = { method = method, pattern = pattern, segs = compile(pattern), fn = fn, resolve = resolve }
      local same = r.by_count[#rt.segs] or {}
      same[#same + 1] = rt
      r.by_count[#rt.segs] = same
    end
  end
  r.add = r.with({})

  function r.dispatch(method, path)
    local path_found = false
    local segs = split(path)
    if not segs then return nil, false end
    for _, rt in ipairs(r.by_count[#segs] or {}) do
      local p = match(rt, segs)
      if p then
        if rt.method == method then return rt, p end
        path_found = true
      end
    end
    return nil, path_found
  end
  return r
end

function M.call(rt, ctx, p)
  if not rt.resolve then return (rt.fn(ctx, p)) end
  local a, b = rt.resolve(ctx, p)
  if a == nil then return b end
  return (rt.fn(ctx, p, a, b))
end

return M
