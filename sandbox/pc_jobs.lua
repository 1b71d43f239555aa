-- Private Cloud jobs, shared by the Private Cloud Deploy and Build APIs: a mutation answers 202
-- with a job and a Location header, and takes effect when the job finishes (settle). Each API
-- registers the effects of its job kinds in M.effects; GET /jobs/{jobId} serves both.
-- Also the Private Cloud world's lookups (by id, through the index; see world.lua).
local U = require("mxdeploy.sandbox.util")
local world = require("mxdeploy.sandbox.world")
local E = U.v4_error

local M = {}

-- effects[kind](ctx, data, job) -> nil, or {code=, message=} to fail the job
M.effects = {}

function M.world(ctx) return ctx.world.privatecloud end

function M.cluster(ctx, id) return (ctx.ix:get("cluster", id)) end

function M.namespace(ctx, id) return ctx.ix:get("namespace", id) end

-- The Private Cloud app `id`; with `create`, made from the Mendix Cloud app of that ProjectId.
function M.app(ctx, id, create)
  local a = ctx.ix:get("pcapp", id)
  if not a and create then
    local v = ctx.ix:get("project", id)
    if v then
      a = { appId = id, appName = v.Name, environments = U.array(), packages = U.array() }
      local apps = M.world(ctx).apps
      apps[#apps + 1] = a
      world.add_pcapp(ctx.ix, a)
    end
  end
  return a
end

function M.env(ctx, app, id)
  return ctx.ix:owned("pcenv", id, app)
end

-- offset/limit pages with the Private Cloud error shape
function M.page(ctx, list, default, max)
  return U.v4_page(ctx, list, default, max, false)
end

local function job_json(ctx, j, with_log)
  local t = { id = j.id, status = j.status }
  if j.status == "created" or j.status == "running" then
    local el = ctx.sim(j.t0)
    t.status = el < ctx.d.pc_created and "created" or "running"
  end
  if j.details then t.details = j.details end
  if j.status == "failed" and j.error then t.error = j.error end
  if j.packageId and j.status == "finished" then t.packageId = j.packageId end
  if with_log and j.build_log then t.log = { build = j.build_log } end
  return t
end

-- A new job of `kind` (a key of M.effects) with its data; returns the 202 answer and the job.
function M.new(ctx, kind, data, details)
  local j = { id = U.uuid(), t0 = ctx.now, status = "created", kind = kind, data = data, details = details }
  if ctx.job_fail then
    j.forced_fail = type(ctx.job_fail) == "string" and ctx.job_fail or "The job failed (sandbox fault)"
  end
  local w = M.world(ctx)
  w.jobs[j.id] = j
  w.job_order[#w.job_order + 1] = j.id
  ctx.ix:queue("pc", j)
  local loc = ctx.app.api_url .. "/privatecloud/api/v4/jobs/" .. j.id
  return U.response(202, job_json(ctx, j), { Location = loc }), j
end

-- Jobs all take the same time, so they finish in the order they started.
function M.settle(ctx)
  local total = ctx.d.pc_created + ctx.d.pc_running
  ctx.ix:due("pc", function(j)
    if j.status ~= "created" and j.status ~= "running" then return true end
    if ctx.sim(j.t0) < total then return false end
    local err
    if j.forced_fail then
      err = { code = 500, message = j.forced_fail }
    else
      err = M.effects[j.kind](ctx, j.data, j)
    end
    if err then
      j.status, j.error = "failed", err
      if j.build_log then j.build_log = j.build_log .. "\nERROR: " .. err.message end
    else
      j.status = "finished"
    end
    return true
  end)
end

function M.routes(r)
  r.add("GET", "/jobs/{jobId}", function(ctx, p)
    local j = M.world(ctx).jobs[p.jobId]
    if not j then return E(404, "Job not found") end
    return U.ok(job_json(ctx, j, ctx.q.log == "true"))
  end)
end

function M.prepare(w, seed)
  local pc = w.privatecloud or U.copy(seed.privatecloud or {})
  pc.clusters = U.array(pc.clusters or {})
  for _, c in ipairs(pc.clusters) do c.namespaces = U.array(c.namespaces or {}) end
  pc.apps = U.array(pc.apps or {})
  for _, a in ipairs(pc.apps) do
    a.environments = U.array(a.environments or {})
    a.packages = U.array(a.packages or {})
    for _, x in ipairs(a.packages) do x.appId = x.appId or a.appId end
  end
  pc.cli_versions = U.array(pc.cli_versions or {})
  pc.jobs = pc.jobs or {}
  pc.job_order = U.array(pc.job_order or {})
  w.privatecloud = pc
end

return M
