-- Mendix Pipelines API (personal access token), mounted at /pipelines/api/v1: start a run of a
-- saved pipeline design and read its status. A run goes CREATED -> RUNNING -> SUCCEEDED (or
-- FAILED: the seeded "Failing pipeline", or a `job_fail` fault) in (scaled) time.
local U = require("mxdeploy.sandbox.util")
local E = U.v4_error

local M = {}

-- Seeded pipeline designs of the calc app (seed.pipelines replaces them).
local DEFAULT = {
  { pipelineId = "db6ed4d3-8b6d-4c2b-ad2b-2a69d0f7afe0", appId = "c533ee0b-f7db-4e62-868b-1192d392ccec",
    name = "Test pipeline" },
  { pipelineId = "7d0c4f1e-3b8a-4c55-9e61-2f3a4b5c6d7e", appId = "c533ee0b-f7db-4e62-868b-1192d392ccec",
    name = "Failing pipeline", fails = true },
}

function M.prepare(w, seed)
  w.pipelines = U.array(w.pipelines or U.copy(seed.pipelines or DEFAULT))
  w.pipeline_runs = U.array(w.pipeline_runs or {})
end

local function get_app(ctx, id)
  local a = ctx.ix:get("project", id)
  if a and U.member(a, ctx.user) then return a end
  return nil, E(404, "App not found", { { name = "Validation", reason = "App " .. id .. " could not be found" } })
end

local NEEDS = {
  app = function(ctx, p) return get_app(ctx, p.appId) end,
  run = function(ctx, p)
    local a, err = get_app(ctx, p.appId)
    if not a then return nil, err end
    for _, r in ipairs(ctx.world.pipeline_runs) do
      if r.id == p.runId and r.appId == a.ProjectId then return r, a end
    end
    return nil, E(404, "Run not found", { { name = "Validation", reason = "Run " .. p.runId .. " could not be found" } })
  end,
}

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local function status_of(ctx, r)
  return (U.phase({ { "CREATED", ctx.d.pipeline_created or 2 }, { "RUNNING", ctx.d.pipeline_running or 60 },
    { r.fails and "FAILED" or "SUCCEEDED", 0 } }, ctx.sim(r.t0)))
end

function M.routes(r)
  local add = r.with(NEEDS)

  add("POST", "/apps/{appId}/runs", { needs = "app" }, function(ctx, _, a)
    local id = ctx.body.pipelineId
    if type(id) ~= "string" or not id:match(UUID) then
      return E(400, "Request validation errors", { { name = "pipelineId", reason = "must be a UUID" } })
    end
    local design
    for _, p in ipairs(ctx.world.pipelines) do
      if p.pipelineId == id and p.appId == a.ProjectId then design = p end
    end
    if not design then
      return E(404, "Pipeline not found", { { name = "Validation", reason = "Pipeline " .. id .. " could not be found" } })
    end
    local run = { id = U.uuid(), appId = a.ProjectId, pipelineId = id, pipelineName = design.name,
      triggeredBy = { email = ctx.user.username }, t0 = ctx.now, fails = (design.fails or ctx.job_fail) and true or nil }
    ctx.world.pipeline_runs[#ctx.world.pipeline_runs + 1] = run
    return U.response(201, { id = run.id, pipelineId = run.pipelineId, pipelineName = run.pipelineName,
      triggeredBy = run.triggeredBy }, { ["Content-Location"] = "apps/" .. a.ProjectId .. "/runs/" .. run.id })
  end)

  add("GET", "/apps/{appId}/runs/{runId}/status", { needs = "run" }, function(ctx, _, run)
    return U.ok({ runId = run.id, status = status_of(ctx, run) })
  end)
end

return M
