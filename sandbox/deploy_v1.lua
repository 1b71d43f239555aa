-- Deploy API v1 (API key), mounted at /deploy/api/1: apps, environments, start jobs,
-- transport, settings, scaling, tags and log downloads. Apps are addressed by AppId and
-- environments by Mode (see world.app_of / world.env_of).
local U = require("mxdeploy.sandbox.util")
local world = require("mxdeploy.sandbox.world")
local packages = require("mxdeploy.sandbox.packages")
local json = U.json
local E = U.mx_error

local M = {}

local member = U.member

local NEEDS = {
  app = function(ctx, p) return world.app_of(ctx, p.AppId) end,
  env = function(ctx, p) return world.env_of(ctx, p) end,
  -- tags and logs: the docs give "An App or Environment is not found." under these codes
  ["env:NOT_FOUND"] = function(ctx, p) return world.env_of(ctx, p, "NOT_FOUND") end,
  ["env:NOT FOUND"] = function(ctx, p) return world.env_of(ctx, p, "NOT FOUND") end,
}

local function env_json(ctx, e, app)
  local p = e.PackageId and world.find_pkg(ctx, app, e.PackageId)
  return {
    Status = e.Status, EnvironmentId = e.EnvironmentId, Mode = e.Mode, Url = e.Url,
    ModelVersion = p and p.Version or json.null, MendixVersion = p and p.MendixVersion or json.null,
    Production = e.Production and true or false,
  }
end

local function app_json(a)
  return { Name = a.Name, Url = a.environments[#a.environments] and a.environments[#a.environments].Url or json.null,
    ProjectId = a.ProjectId, AppId = a.AppId }
end

-- Whether a start job is still starting (the environment cannot be transported, cleaned ...).
function M.starting(e)
  return e.start_job ~= nil and not e.start_job.done
end

-- A started environment runs its settings: DeployedValue becomes Value (a change made since
-- shows as Value ~= DeployedValue in GET .../settings until the next start).
function M.deployed(e)
  for _, k in ipairs({ "Constants", "ScheduledEvents" }) do
    for _, c in ipairs(e.settings[k] or {}) do c.DeployedValue = c.Value end
  end
end

-- The constants the package needs that the environment has no value for (names, in order).
function M.missing_constants(pkg, e)
  local missing = {}
  for _, name in ipairs(pkg and pkg.Constants or {}) do
    local c = U.find(e.settings.Constants, "Name", name)
    if not c or c.Value == nil or c.Value == json.null or c.Value == "" then missing[#missing + 1] = name end
  end
  return missing
end

-- Start jobs that have run their (simulated) time make their environment Running.
function M.settle(ctx)
  ctx.ix:due("start", function(q)
    local j = q.job
    if not j.done then
      if ctx.sim(j.t0) < (j.duration or ctx.d.start) then return false end
      j.done = true
      if not j.fail and q.env.start_job == j then
        q.env.Status = "Running"
        M.deployed(q.env)
      end
    end
    return true
  end)
end

local function logs(kind)
  return function(ctx, p, e)
    if ctx.user.can_view_logs == false then return E(403, "FORBIDDEN", "You do not have access") end
    local y, m, d = p.Date:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    if not y then return E(404, "NOT FOUND", "An App or Environment is not found.") end
    local ts = os.time({ year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 0 })
    if p.Date > os.date("!%Y-%m-%d", math.floor(ctx.now)) then -- logs exist for past days and today
      return E(404, "NOT FOUND", "An App or Environment is not found.")
    end
    local sig = U.shortid() .. U.shortid()
    return U.ok({ Environment = e.EnvironmentId, Date = ts * 1000,
      DownloadUrl = ctx.app.files_url .. "/files/" .. kind .. "/" .. e.EnvironmentId .. "/" .. p.Date ..
        "?expire=" .. os.date("!%Y%m%d%H%M%S", math.floor(ctx.now) + 3600) .. "&signature=" .. sig })
  end
end

local function update_settings(s, b)
  for _, c in ipairs(b.Constants or {}) do
    local have = U.find(s.Constants, "Name", c.Name)
    if not have then return E(400, "CONSTANT_NOT_FOUND", "Constant not found: " .. tostring(c.Name) .. ".") end
    if c.Value ~= nil then have.Value = tostring(c.Value) end
  end
  if b.CustomSettings then
    local cs = U.array()
    for _, c in ipairs(b.CustomSettings) do
      if type(c.Name) ~= "string" or c.Name == "" or c.Name:find("%s") then
        return E(400, "CUSTOM_SETTING_NOT_SUPPORTED", "Custom setting not supported.")
      end
      cs[#cs + 1] = { Name = c.Name, Value = tostring(c.Value or "") }
    end
    s.CustomSettings = cs
  end
  for _, ev in ipairs(b.ScheduledEvents or {}) do
    local have = U.find(s.ScheduledEvents, "Name", ev.Name)
    if not have then
      return E(400, "SCHEDULED_EVENT_NOT_FOUND", "Scheduled Event not found: " .. tostring(ev.Name) .. ".")
    end
    if ev.Value ~= "Enabled" and ev.Value ~= "Disabled" then
      return E(500, "INVALID_SCHEDULED_EVENT_PARAMETER", "Scheduled Event parameter should be Enabled or Disabled.")
    end
    have.Value = ev.Value
  end
end

function M.routes(r)
  local add = r.with(NEEDS)

  add("GET", "/apps", function(ctx)
    local out = U.array()
    for _, a in ipairs(ctx.world.apps) do
      if member(a, ctx.user) then out[#out + 1] = app_json(a) end
    end
    return U.ok(out)
  end)

  add("POST", "/apps", function(ctx)
    local b = ctx.body
    local pid = b and b.ProjectId
    if type(pid) ~= "string" or not pid:match("^%x+%-%x+%-%x+%-%x+%-%x+$") then
      return E(400, "INVALID_PROJECTID", "Invalid ProjectId")
    end
    if ctx.ix:get("project", pid) then
      return E(400, "APPLICATION_ALREADY_EXISTS", "Application already exists")
    end
    local sub = "app-" .. pid:sub(1, 8)
    local a = {
      AppId = sub, ProjectId = pid, Name = "Free App " .. pid:sub(1, 8), licenseType = "free",
      region = "prod1-eu-west-1", members = U.array({ ctx.user.username }), packages = U.array(),
      technicalContact = { userId = ctx.user.username, name = ctx.user.name, status = "active" },
      environments = U.array({ { Mode = "Sandbox", EnvironmentId = U.uuid(), Status = "Empty",
        Url = "https://" .. sub .. ".mxapps.io", Production = false, Instances = 1, MemoryPerInstance = 1024,
        settings = U.arrays(ctx.world.default_settings), tags = U.array() } }),
    }
    ctx.world.apps[#ctx.world.apps + 1] = a
    world.add_app(ctx.ix, a)
    return U.ok(app_json(a))
  end)

  add("GET", "/apps/{AppId}", { needs = "app" }, function(_, _, a)
    return U.ok(app_json(a))
  end)

  add("GET", "/apps/{AppId}/environments", { needs = "app" }, function(ctx, _, a)
    return U.ok(U.map(a.environments, function(e) return env_json(ctx, e, a) end))
  end)

  add("GET", "/apps/{AppId}/environments/{Mode}", { needs = "env" }, function(ctx, _, e, a)
    return U.ok(env_json(ctx, e, a))
  end)

  add("POST", "/apps/{AppId}/environments/{Mode}/start", { needs = "env" }, function(ctx, _, e, a)
    if e.Status == "Running" then return E(200, "ALREADY_STARTED", "Cannot start app. App is already running.") end
    if e.Status == "Empty" or not e.PackageId then
      return E(500, "NO_MDA_HAS_BEEN_DEPLOYED", "Cannot start app. There is no MDA deployed.")
    end
    if M.starting(e) then
      return E(500, "APP_ALREADY_HAS_A_STARTING_JOB", "Cannot start app. There is already a starting job id found.")
    end
    local pkg = world.find_pkg(ctx, a, e.PackageId)
    local missing = M.missing_constants(pkg, e)
    if #missing > 0 then
      return E(500, "MISSING_CONSTANT", "Cannot start app. Missing one or more constant values.")
    end
    local fail = ctx.job_fail
    if fail == true then fail = "START_FAILED" end
    e.start_job = { JobId = U.uuid(), t0 = ctx.now, fail = fail or nil }
    e.start_jobs = e.start_jobs or {}
    e.start_jobs[e.start_job.JobId] = e.start_job
    ctx.ix:queue("start", { env = e, job = e.start_job })
    return U.ok({ JobId = e.start_job.JobId })
  end)

  add("GET", "/apps/{AppId}/environments/{Mode}/start/{JobId}", { needs = "env" }, function(ctx, p, e)
    local j = e.start_jobs and e.start_jobs[p.JobId]
    if not j then return E(404, "NO_SUCH_STARTJOB", "Job not found.") end
    if not j.done then return U.ok({ Status = "Starting" }) end
    if j.fail then
      local code = ctx.app.errors.lookup("deploy-v1", j.fail, ctx.req.method, ctx.req.path)
      return E(code and code.status or 500, j.fail, code and code.message or ("Cannot start app: " .. j.fail))
    end
    return U.ok({ Status = "Started" })
  end)

  add("POST", "/apps/{AppId}/environments/{Mode}/stop", { needs = "env" }, function(_, _, e)
    if M.starting(e) then
      e.start_job.done, e.start_job.fail = true, "START_FAILED"
    end
    if e.Status == "Running" then e.Status = "Stopped" end
    return U.response(200)
  end)

  add("GET", "/apps/{AppId}/environments/{Mode}/package", { needs = "env" }, function(ctx, _, e, a)
    local pkg = e.PackageId and world.find_pkg(ctx, a, e.PackageId)
    if not pkg then return E(404, "PACKAGE_NOT_FOUND", "No package found for this environment") end
    return U.ok(packages.json(ctx, pkg, ctx.q.url == "true"))
  end)

  add("POST", "/apps/{AppId}/packages/upload", { needs = "app" }, function(ctx, _, a)
    local pkg, uerr = packages.record_upload(ctx, a, "v1")
    if not pkg then return uerr end
    return U.ok({ PackageId = pkg.PackageId })
  end)

  add("POST", "/apps/{AppId}/environments/{Mode}/transport", { needs = "env" }, function(ctx, _, e, a)
    local id = ctx.body and ctx.body.PackageId
    if type(id) ~= "string" then
      return E(400, "INVALID_PARAMETERS", "Not enough parameters given. Please set AppId and Mode parameters.")
    end
    if not ctx.user.can_deploy then
      return E(403, "TRANSPORT_NOT_ALLOWED", "No access to transport to environment '" .. e.Mode .. "'.")
    end
    local pkg = world.find_pkg(ctx, a, id)
    if not pkg then return E(404, "PACKAGE_NOT_FOUND", "Package not found.") end
    if e.Status == "Running" or M.starting(e) then
      return E(403, "APP_IS_RUNNING", "The '" .. e.Mode .. "' environment of '" .. a.AppId .. "' must be stopped to do transport.")
    end
    local st = packages.status(ctx, pkg)
    if st == "Failed" then
      return E(403, "NOT ALLOWED", "Cannot transport - MDA processing failed, try uploading again with a valid MDA.")
    elseif st ~= "Succeeded" then
      return E(503, "SERVICE UNAVAILABLE", "Cannot transport - MDA is still being processed, retry later")
    end
    e.PackageId = pkg.PackageId
    if e.Status == "Empty" then e.Status = "Stopped" end
    -- the package's constants appear in the environment's settings (a new one without a value)
    for _, name in ipairs(pkg.Constants or {}) do
      if not U.find(e.settings.Constants, "Name", name) then
        local list = e.settings.Constants
        list[#list + 1] = { Name = name, DataType = "String", Value = "", DeployedValue = "" }
      end
    end
    return U.response(200)
  end)

  add("POST", "/apps/{AppId}/environments/{Mode}/clean", { needs = "env" }, function(ctx, _, e)
    if e.Status == "Running" or M.starting(e) then
      return E(403, "ENVIRONMENT_NOT_STOPPED", "Environment needs to be stopped.")
    end
    if e.Status == "Empty" or not e.PackageId then
      return E(422, "ENVIRONMENT_NOT_DEPLOYED", "No app deployed to the environment.")
    end
    e.cleaned_at = U.ms(ctx.now)
    for _, s in ipairs(e.snapshots or {}) do ctx.ix:drop("snapshot", s.snapshot_id) end
    e.snapshots = U.array()
    return U.ok(U.array({ { Status = e.Status, Mode = e.Mode, Url = e.Url } }))
  end)

  add("GET", "/apps/{AppId}/environments/{Mode}/settings", { needs = "env" }, function(_, _, e)
    return U.ok(U.arrays(e.settings))
  end)

  add("POST", "/apps/{AppId}/environments/{Mode}/settings", { needs = "env" }, function(ctx, _, e)
    local b = ctx.body
    if not b then return E(400, "INVALID_PARAMETERS", "Request body is not valid JSON.") end
    local s = U.copy(e.settings)
    local err = update_settings(s, b)
    if err then return err end
    e.settings = U.arrays(s)
    return U.ok(U.arrays(e.settings))
  end)

  add("POST", "/apps/{AppId}/environments/{Mode}/scale", { needs = "env" }, function(ctx, _, e, a)
    if a.licenseType == "free" then
      return E(400, "NOT_ALLOWED", "Scaling is only available for licensed apps using a supported version of Mendix.")
    end
    local b = ctx.body or {}
    local inst = math.tointeger(b.Instances or e.Instances)
    local mem = math.tointeger(b.MemoryPerInstance or e.MemoryPerInstance)
    if not inst or not mem or inst < 1 then
      return E(400, "INVALID_REQUEST", "Instances and MemoryPerInstance must be positive integers.")
    end
    if mem < 1024 then return E(400, "INVALID_REQUEST", "Memory per instance cannot be smaller than 1024 MB.") end
    if inst * mem > (e.MaxMemory or 16384) then
      return E(400, "INVALID_REQUEST",
        "You have allocated more memory than is available under your plan. Please contact Support to upgrade your plan.")
    end
    e.Instances, e.MemoryPerInstance = inst, mem
    local pkg = e.PackageId and world.find_pkg(ctx, a, e.PackageId)
    return U.ok({ Status = e.Status, Instances = inst, Mode = e.Mode, Production = e.Production and true or false,
      MemoryPerInstance = mem, TotalMemory = inst * mem, ModelVersion = pkg and pkg.Version or json.null,
      MendixVersion = pkg and pkg.MendixVersion or json.null, Url = e.Url })
  end)

  add("POST", "/apps/{AppId}/environments/{Mode}/tags", { needs = "env:NOT_FOUND" }, function(ctx, _, e)
    local tag = ctx.body and ctx.body.Tag
    if type(tag) ~= "string" or tag == "" then return E(400, "INVALID_PARAMETERS", "Tag is required.") end
    e.tags = e.tags or U.array()
    local found = false
    for _, t in ipairs(e.tags) do if t == tag then found = true end end
    if not found then e.tags[#e.tags + 1] = tag end
    return U.ok({ Tag = tag })
  end)

  add("GET", "/apps/{AppId}/environments/{Mode}/tags", { needs = "env:NOT FOUND" }, function(_, _, e)
    return U.ok(U.map(e.tags or {}, function(t) return { Tag = t } end))
  end)

  add("DELETE", "/apps/{AppId}/environments/{Mode}/tags", { needs = "env:NOT FOUND" }, function(ctx, _, e)
    local tag = (ctx.body and ctx.body.Tag) or ctx.q.tag or ctx.q.Tag
    local keep = U.array()
    for _, t in ipairs(e.tags or {}) do if t ~= tag then keep[#keep + 1] = t end end
    e.tags = keep
    return U.response(204)
  end)

  add("GET", "/apps/{AppId}/environments/{Mode}/logs/{Date}", { needs = "env:NOT FOUND" }, logs("logs"))
  add("GET", "/apps/{AppId}/environments/{Mode}/access-logs/{Date}", { needs = "env:NOT FOUND" }, logs("access-logs"))
end

-- World setup from the seed: every environment gets the default settings and a tag list.
function M.prepare(w, seed)
  w.default_settings = U.arrays(seed.settings or {})
  for _, k in ipairs({ "Constants", "CustomSettings", "ScheduledEvents" }) do
    w.default_settings[k] = U.array(w.default_settings[k] or {})
  end
  for _, a in ipairs(w.apps) do
    a.packages = U.array(a.packages or {})
    a.members = U.array(a.members or {})
    for _, e in ipairs(a.environments) do
      e.settings = e.settings and U.arrays(e.settings) or U.arrays(w.default_settings)
      for _, k in ipairs({ "Constants", "CustomSettings", "ScheduledEvents" }) do
        e.settings[k] = U.array(e.settings[k] or {})
      end
      e.tags = U.array(e.tags or {})
      -- a seeded busy environment: a start that runs for `starting_for` simulated seconds
      if e.Status == "Starting" and not e.start_job then
        e.start_job = { JobId = U.uuid(), t0 = U.now(), duration = e.starting_for or 1e9 }
        e.start_jobs = { [e.start_job.JobId] = e.start_job }
      end
    end
  end
end

return M
