-- Lookups into the simulated world, by id, in constant time: the index maps every resource id
-- to the resource and its owner (package -> app, environment -> app, snapshot -> environment,
-- namespace -> cluster ...). The index lives beside the world (it is never saved with it), is
-- built once from the world when the sandbox starts, and is kept up to date by the routes that
-- add or remove resources (through put/drop below). Jobs that finish by themselves wait in
-- queues ordered by start time, so settling them costs nothing while none is due.
--
--   local ix = world.index(w)           -- at start
--   ix:get("pkg", id) -> pkg, app       ix:put("pkg", id, pkg, app)     ix:drop("pkg", id)
--   ix:owned("pkg", id, app) -> pkg when it is app's
--   world.find_pkg(ctx, app, id)        the package `id` of `app` (v1 apps)
--   world.remove(list, item)            removes item from an array (deletes only)
--
-- Kinds: app (AppId), project (ProjectId), pkg (v1 PackageId), env (EnvironmentId), snapshot,
-- cluster, namespace, pcapp, pcenv, pcpkg.
local U = require("mxdeploy.sandbox.util")
local E = U.mx_error

local M = {}
local Index = {}
Index.__index = Index

function Index:get(kind, id)
  local e = id ~= nil and self[kind][id]
  if e then return e[1], e[2] end
  return nil
end

-- The resource `id` of `kind` when it belongs to `owner`, else nil.
function Index:owned(kind, id, owner)
  local e = id ~= nil and self[kind][id]
  if e and e[2] == owner then return e[1] end
  return nil
end

function Index:put(kind, id, item, owner)
  if id ~= nil then self[kind][id] = { item, owner } end
  return item
end

function Index:drop(kind, id)
  if id ~= nil then self[kind][id] = nil end
end

-- Jobs that settle by themselves, in start order: queue(name, job) when created; due(name, fn)
-- pops every job for which fn(job) says it has settled, stopping at the first that has not.
function Index:queue(name, job)
  local q = self.queues[name]
  q.last = q.last + 1
  q[q.last] = job
end

function Index:due(name, settled)
  local q = self.queues[name]
  while q.first <= q.last do
    local j = q[q.first]
    if not settled(j) then return end
    q[q.first] = nil
    q.first = q.first + 1
  end
end

local function queues(names)
  local t = {}
  for _, n in ipairs(names) do t[n] = { first = 1, last = 0 } end
  return t
end

function M.index(w)
  local ix = setmetatable({ app = {}, project = {}, pkg = {}, env = {}, snapshot = {}, cluster = {},
    namespace = {}, pcapp = {}, pcenv = {}, pcpkg = {}, queues = queues({ "start", "pc" }) }, Index)
  for _, a in ipairs(w.apps) do M.add_app(ix, a) end
  local pc = w.privatecloud
  for _, c in ipairs(pc.clusters) do
    ix:put("cluster", c.clusterId, c)
    for _, ns in ipairs(c.namespaces) do ix:put("namespace", ns.namespaceId, ns, c) end
  end
  for _, a in ipairs(pc.apps) do M.add_pcapp(ix, a) end
  -- unfinished jobs of a saved world, oldest first
  local starts = {}
  for _, a in ipairs(w.apps) do
    for _, e in ipairs(a.environments) do
      if e.start_job and not e.start_job.done then starts[#starts + 1] = e end
    end
  end
  table.sort(starts, function(x, y) return x.start_job.t0 < y.start_job.t0 end)
  for _, e in ipairs(starts) do ix:queue("start", { env = e, job = e.start_job }) end
  for _, id in ipairs(pc.job_order) do
    local j = pc.jobs[id]
    if j and (j.status == "created" or j.status == "running") then ix:queue("pc", j) end
  end
  return ix
end

-- An app of Deploy v1/v2/v4 with its packages, environments and their snapshots.
function M.add_app(ix, a)
  ix:put("app", a.AppId, a)
  ix:put("project", a.ProjectId, a)
  for _, p in ipairs(a.packages or {}) do ix:put("pkg", p.PackageId, p, a) end
  for _, e in ipairs(a.environments or {}) do
    ix:put("env", e.EnvironmentId, e, a)
    if type(e.snapshots) == "table" then
      for _, s in ipairs(e.snapshots) do ix:put("snapshot", s.snapshot_id, s, e) end
    end
  end
end

-- A Private Cloud app with its environments and packages.
function M.add_pcapp(ix, a)
  ix:put("pcapp", a.appId, a)
  for _, e in ipairs(a.environments) do ix:put("pcenv", e.id, e, a) end
  for _, p in ipairs(a.packages) do ix:put("pcpkg", p.id, p, a) end
end

function M.find_pkg(ctx, app, id)
  return ctx.ix:owned("pkg", id, app)
end

-- ---------- the API-key APIs' lookups (Deploy v1, Build, Deploy v2) ----------

local STD_MODES = { test = "Test", acceptance = "Acceptance", production = "Production" }

-- The app `id` (an AppId) the user is a member of, or nil and the documented error.
function M.app_of(ctx, id)
  if not id:match("^[%w%-_]+$") then return nil, E(400, "INVALID_APPID", "Invalid AppId") end
  local a = ctx.ix:get("app", id)
  if a and U.member(a, ctx.user) then return a end
  return nil, E(404, "APP_NOT_FOUND", "App not found")
end

-- The environment p.Mode of app p.AppId, and its app; or nil and the documented error
-- (`notfound_code` replaces APP_NOT_FOUND / ENVIRONMENT_NOT_FOUND where a route's docs say so).
function M.env_of(ctx, p, notfound_code)
  local app, err = M.app_of(ctx, p.AppId)
  if not app then
    if notfound_code and err.status == 404 then
      return nil, E(404, notfound_code, "An App or Environment is not found.")
    end
    return nil, err
  end
  local mode = p.Mode
  if not mode:match("^[%w%-_ ]+$") then
    return nil, E(400, "INVALID_ENVIRONMENT", "Could not parse environment mode '" .. mode ..
      "'. Valid options are Test, Acceptance, Production or the name of a flexible environment.")
  end
  local want = (STD_MODES[mode:lower()] or mode):lower()
  for _, e in ipairs(app.environments) do -- a handful per app
    if e.Mode:lower() == want then return e, app end
  end
  return nil, E(404, notfound_code or "ENVIRONMENT_NOT_FOUND",
    notfound_code and "An App or Environment is not found." or "Environment not found.")
end

function M.remove(list, item)
  for i, x in ipairs(list) do
    if x == item then
      table.remove(list, i)
      return true
    end
  end
  return false
end

return M
