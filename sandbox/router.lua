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
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- "/a/{x}/b" -> Lua pattern and the parameter names, compiled once when the route is added
local function compile(pattern)
  local names = {}
  local pat = "^" .. pattern:gsub("[%-%.%+%[%]%(%)%$%^%%%?%*]", "%%%0"):gsub("{(%w+)}", function(n)
    names[#names + 1] = n
    return "([^/]+)"
  end) .. "$"
  return pat, names
end

local function match(rt, path)
  if #rt.names == 0 then return path:match(rt.pat) and {} or nil end
  local caps = { path:match(rt.pat) }
  if #caps == 0 then return nil end
  local t = {}
  for i, n in ipairs(rt.names) do t[n] = unescape_path(caps[i]) end
  return t
end

function M.new()
  local r = { routes = {} }

  -- add(method, pattern, [opts], fn) with the resolvers of `needs` (a module's own lookups)
  function r.with(needs)
    return function(method, pattern, opts, fn)
      if fn == nil then opts, fn = {}, opts end
      local resolve = opts.needs and needs[opts.needs]
      if opts.needs and not resolve then error("route " .. pattern .. ": unknown need " .. opts.needs, 2) end
      local pat, names = compile(pattern)
      r.routes[#r.routes + 1] = { method = method, pattern = pattern, pat = pat, names = names,
        fn = fn, resolve = resolve }
    end
  end
  r.add = r.with({})

  function r.dispatch(method, path)
    local path_found = false
    for _, rt in ipairs(r.routes) do
      local p = match(rt, path)
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
