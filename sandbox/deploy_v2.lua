-- Deploy API v2 (API key), mounted at /deploy/api/v2: package uploads as jobs.
local U = require("mxdeploy.sandbox.util")
local world = require("mxdeploy.sandbox.world")
local packages = require("mxdeploy.sandbox.packages")
local E = U.mx_error

local M = {}

local NEEDS = {
  app = function(ctx, p) return world.app_of(ctx, p.AppId) end,
}

local function job_status(ctx, j)
  return (U.phase({ { "Queued", ctx.d.upload_queued }, { "Running", ctx.d.upload_running },
    { j.fail and "Failed" or "Completed", 0 } }, ctx.sim(j.t0)))
end

function M.routes(r)
  local add = r.with(NEEDS)

  add("POST", "/apps/{AppId}/packages/upload", { needs = "app" }, function(ctx, _, a)
    local pkg, uerr = packages.record_upload(ctx, a, "v2")
    if not pkg then return uerr end
    local job = { JobId = U.uuid(), PackageId = pkg.PackageId, t0 = ctx.now, fail = pkg.fail }
    a.jobs = a.jobs or {}
    a.jobs[job.JobId] = job
    return U.ok({ PackageId = pkg.PackageId, JobId = job.JobId })
  end)

  add("GET", "/apps/{AppId}/jobs/{JobId}", { needs = "app" }, function(ctx, p, a)
    local j = a.jobs and a.jobs[p.JobId]
    if not j then return E(404, "JOB_NOT_FOUND", "Job not found.") end
    local st = job_status(ctx, j)
    local out = { Status = st }
    if st == "Completed" then out.PackageId = j.PackageId end
    if st == "Failed" then out.ErrorMessage = "Failed to process the deployment package." end
    return U.ok(out)
  end)
end

return M
