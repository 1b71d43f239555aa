-- Deploy API v1, Build API v1, Deploy API v2 and Backups API v2 (API-key authentication).
-- Mounted at /deploy/api/1 (v1 + Build) and /deploy/api/v2 (v2 + Backups).
local U = require("mxdeploy.sandbox.util")
local json = U.json
local E = U.mx_error

local M = {}

local STD_MODES = { test = "Test", acceptance = "Acceptance", production = "Production" }

-- ---------- lookups ----------

local member = U.member

local function get_app(ctx, id)
  if not id:match("^[%w%-_]+$") then return nil, E(400, "INVALID_APPID", "Invalid AppId") end
  for _, a in ipairs(ctx.world.apps) do
    if (a.AppId == id) and member(a, ctx.user) then return a end
  end
  return nil, E(404, "APP_NOT_FOUND", "App not found")
end

local function get_env(ctx, p, notfound_code)
  local app, err = get_app(ctx, p.AppId)
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
  for _, e in ipairs(app.environments) do
    if e.Mode:lower() == want then return e, app end
  end
  return nil, E(404, notfound_code or "ENVIRONMENT_NOT_FOUND",
    notfound_code and "An App or Environment is not found." or "Environment not found.")
end

local function find_pkg(app, id)
  return U.find(app.packages, "PackageId", id)
end

-- ---------- packages ----------

-- Status of a package from its recorded history (see M.settle for the side effects).
local function pkg_status(ctx, p)
  if p.kind == "build" then
    local st = U.phase({ { "Queued", ctx.d.build_queued }, { "Building", ctx.d.build_building },
      { p.fail and "Failed" or "Succeeded", 0 } }, ctx.sim(p.t0))
    return st
  elseif p.kind == "upload" then
    local st = U.phase({ { "Uploading", ctx.d.upload_queued + ctx.d.upload_running },
      { p.fail and "Failed" or "Succeeded", 0 } }, ctx.sim(p.t0))
    return st
  end
  return p.Status or "Succeeded"
end

local function pkg_json(ctx, p, with_url)
  local t = {
    PackageId = p.PackageId, Name = p.Name, Description = p.Description or "", Version = p.Version,
    Creator = p.Creator or "Sandbox User", CreationDate = p.CreationDate, Size = p.Size,
    Status = pkg_status(ctx, p), ExpiryDate = json.null,
  }
  if with_url then
    t.Url = { Location = ctx.app.files_url .. "/files/packages/" .. p.PackageId .. ".mda", TTL = 900 }
  end
  return t
end

local function env_json(ctx, e, app)
  local p = e.PackageId and find_pkg(app, e.PackageId)
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

-- Applies finished jobs to the world (start jobs make the environment Running).
function M.settle(ctx)
  for _, app in ipairs(ctx.world.apps) do
    for _, e in ipairs(app.environments) do
      local j = e.start_job
      if j and not j.done and ctx.sim(j.t0) >= ctx.d.start then
        j.done = true
        if not j.fail then e.Status = "Running" end
      end
    end
  end
end

local function record_upload(ctx, app, kind)
  local q = ctx.q
  local fields, filename, size, offset = U.multipart(ctx.req)
  if not fields or not filename or (ctx.req.body_size or 0) == 0 then
    return nil, E(500, "INVALID_PACKAGE", "Failed to process the deployment package.")
  end
  if kind == "v2" and (size or ctx.req.body_size) > 1024 * 1024 * 1024 then -- the package, not the envelope
    return nil, E(400, "PACKAGE_TOO_LARGE", "Files bigger than 1 GB cannot be uploaded.")
  end
  local name = q.name or "default.mda"
  local version = name:match("(%d+%.%d+%.%d+%.%d+)") or "1.0.0.0"
  local p = {
    PackageId = U.uuid(), Name = name, Description = "Uploaded via the Deploy API", Version = version,
    Creator = ctx.user.name, CreationDate = U.ms(ctx.now), Size = size or ctx.req.body_size, kind = "upload",
    t0 = ctx.now, fail = ctx.job_fail and true or nil, MendixVersion = "9.24.0.2965", filename = filename,
  }
  -- keep the uploaded bytes, so downloading the package gives back exactly what was uploaded
  if ctx.req.body_file and size and offset then
    local kept = ctx.req.body_file .. ".package"
    if os.rename(ctx.req.body_file, kept) then
      p.file, p.file_offset = kept, offset
      ctx.app.kept_files[#ctx.app.kept_files + 1] = kept
    end
  end
  app.packages[#app.packages + 1] = p
  return p
end

-- ---------- Deploy API v1 + Build API ----------

function M.routes_v1(r)
  r.add("GET", "/apps", function(ctx)
    local out = U.array()
    for _, a in ipairs(ctx.world.apps) do
      if member(a, ctx.user) then out[#out + 1] = app_json(a) end
    end
    return U.ok(out)
  end)

  r.add("POST", "/apps", function(ctx)
    local b = ctx.body
    local pid = b and b.ProjectId
    if type(pid) ~= "string" or not pid:match("^%x+%-%x+%-%x+%-%x+%-%x+$") then
      return E(400, "INVALID_PROJECTID", "Invalid ProjectId")
    end
    if U.find(ctx.world.apps, "ProjectId", pid) then
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
    return U.ok(app_json(a))
  end)

  r.add("GET", "/apps/{AppId}", function(ctx, p)
    local a, err = get_app(ctx, p.AppId)
    if not a then return err end
    return U.ok(app_json(a))
  end)

  r.add("GET", "/apps/{AppId}/environments", function(ctx, p)
    local a, err = get_app(ctx, p.AppId)
    if not a then return err end
    return U.ok(U.map(a.environments, function(e) return env_json(ctx, e, a) end))
  end)

  r.add("GET", "/apps/{AppId}/environments/{Mode}", function(ctx, p)
    local e, a = get_env(ctx, p)
    if not e then return a end
    return U.ok(env_json(ctx, e, a))
  end)

  r.add("POST", "/apps/{AppId}/environments/{Mode}/start", function(ctx, p)
    local app, aerr = get_app(ctx, p.AppId)
    if not app then return aerr end
    local e, a = get_env(ctx, p)
    if not e then return a end
    if e.Status == "Running" then return E(200, "ALREADY_STARTED", "Cannot start app. App is already running.") end
    if e.Status == "Empty" or not e.PackageId then
      return E(500, "NO_MDA_HAS_BEEN_DEPLOYED", "Cannot start app. There is no MDA deployed.")
    end
    if e.start_job and not e.start_job.done then
      return E(500, "APP_ALREADY_HAS_A_STARTING_JOB", "Cannot start app. There is already a starting job id found.")
    end
    local fail = ctx.job_fail
    if fail == true then fail = "START_FAILED" end
    e.start_job = { JobId = U.uuid(), t0 = ctx.now, fail = fail or nil }
    e.start_jobs = e.start_jobs or {}
    e.start_jobs[e.start_job.JobId] = e.start_job
    return U.ok({ JobId = e.start_job.JobId })
  end)

  r.add("GET", "/apps/{AppId}/environments/{Mode}/start/{JobId}", function(ctx, p)
    local e, a = get_env(ctx, p)
    if not e then return a end
    local j = e.start_jobs and e.start_jobs[p.JobId]
    if not j then return E(404, "NO_SUCH_STARTJOB", "Job not found.") end
    if not j.done then return U.ok({ Status = "Starting" }) end
    if j.fail then
      local code = ctx.app.errors.lookup("deploy-v1", j.fail, ctx.req.method, ctx.req.path)
      return E(code and code.status or 500, j.fail, code and code.message or ("Cannot start app: " .. j.fail))
    end
    return U.ok({ Status = "Started" })
  end)

  r.add("POST", "/apps/{AppId}/environments/{Mode}/stop", function(ctx, p)
    local e, a = get_env(ctx, p)
    if not e then return a end
    if e.start_job and not e.start_job.done then
      e.start_job.done, e.start_job.fail = true, "START_FAILED"
    end
    if e.Status == "Running" then e.Status = "Stopped" end
    return U.response(200)
  end)

  r.add("GET", "/apps/{AppId}/environments/{Mode}/package", function(ctx, p)
    local e, a = get_env(ctx, p)
    if not e then return a end
    local pkg = e.PackageId and find_pkg(a, e.PackageId)
    if not pkg then return E(404, "PACKAGE_NOT_FOUND", "No package found for this environment") end
    return U.ok(pkg_json(ctx, pkg, ctx.q.url == "true"))
  end)

  r.add("POST", "/apps/{AppId}/packages/upload", function(ctx, p)
    local a, err = get_app(ctx, p.AppId)
    if not a then return err end
    local pkg, uerr = record_upload(ctx, a, "v1")
    if not pkg then return uerr end
    return U.ok({ PackageId = pkg.PackageId })
  end)

  r.add("POST", "/apps/{AppId}/environments/{Mode}/transport", function(ctx, p)
    local e, a = get_env(ctx, p)
    if not e then return a end
    local id = ctx.body and ctx.body.PackageId
    if type(id) ~= "string" then
      return E(400, "INVALID_PARAMETERS", "Not enough parameters given. Please set AppId and Mode parameters.")
    end
    if not ctx.user.can_deploy then
      return E(403, "TRANSPORT_NOT_ALLOWED", "No access to transport to environment '" .. e.Mode .. "'.")
    end
    local pkg = find_pkg(a, id)
    if not pkg then return E(404, "PACKAGE_NOT_FOUND", "Package not found.") end
    if e.Status == "Running" or (e.start_job and not e.start_job.done) then
      return E(403, "APP_IS_RUNNING", "The '" .. e.Mode .. "' environment of '" .. a.AppId .. "' must be stopped to do transport.")
    end
    local st = pkg_status(ctx, pkg)
    if st == "Failed" then
      return E(403, "NOT ALLOWED", "Cannot transport - MDA processing failed, try uploading again with a valid MDA.")
    elseif st ~= "Succeeded" then
      return E(503, "SERVICE UNAVAILABLE", "Cannot transport - MDA is still being processed, retry later")
    end
    e.PackageId = pkg.PackageId
    if e.Status == "Empty" then e.Status = "Stopped" end
    return U.response(200)
  end)

  r.add("POST", "/apps/{AppId}/environments/{Mode}/clean", function(ctx, p)
    local e, a = get_env(ctx, p)
    if not e then return a end
    if e.Status == "Running" or (e.start_job and not e.start_job.done) then
      return E(403, "ENVIRONMENT_NOT_STOPPED", "Environment needs to be stopped.")
    end
    if e.Status == "Empty" or not e.PackageId then
      return E(422, "ENVIRONMENT_NOT_DEPLOYED", "No app deployed to the environment.")
    end
    e.cleaned_at = U.ms(ctx.now)
    e.snapshots = U.array()
    return U.ok(U.array({ { Status = e.Status, Mode = e.Mode, Url = e.Url } }))
  end)

  r.add("GET", "/apps/{AppId}/environments/{Mode}/settings", function(ctx, p)
    local e, a = get_env(ctx, p)
    if not e then return a end
    return U.ok(U.arrays(e.settings))
  end)

  r.add("POST", "/apps/{AppId}/environments/{Mode}/settings", function(ctx, p)
    local e, a = get_env(ctx, p)
    if not e then return a end
    local b = ctx.body
    if not b then return E(400, "INVALID_PARAMETERS", "Request body is not valid JSON.") end
    local s = U.copy(e.settings)
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
    e.settings = U.arrays(s)
    return U.ok(U.arrays(e.settings))
  end)

  r.add("POST", "/apps/{AppId}/environments/{Mode}/scale", function(ctx, p)
    local e, a = get_env(ctx, p)
    if not e then return a end
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
    local pkg = e.PackageId and find_pkg(a, e.PackageId)
    return U.ok({ Status = e.Status, Instances = inst, Mode = e.Mode, Production = e.Production and true or false,
      MemoryPerInstance = mem, TotalMemory = inst * mem, ModelVersion = pkg and pkg.Version or json.null,
      MendixVersion = pkg and pkg.MendixVersion or json.null, Url = e.Url })
  end)

  r.add("POST", "/apps/{AppId}/environments/{Mode}/tags", function(ctx, p)
    local e, err = get_env(ctx, p, "NOT_FOUND")
    if not e then return err end
    local tag = ctx.body and ctx.body.Tag
    if type(tag) ~= "string" or tag == "" then return E(400, "INVALID_PARAMETERS", "Tag is required.") end
    e.tags = e.tags or U.array()
    local found = false
    for _, t in ipairs(e.tags) do if t == tag then found = true end end
    if not found then e.tags[#e.tags + 1] = tag end
    return U.ok({ Tag = tag })
  end)

  r.add("GET", "/apps/{AppId}/environments/{Mode}/tags", function(ctx, p)
    local e, err = get_env(ctx, p, "NOT FOUND")
    if not e then return err end
    return U.ok(U.map(e.tags or {}, function(t) return { Tag = t } end))
  end)

  r.add("DELETE", "/apps/{AppId}/environments/{Mode}/tags", function(ctx, p)
    local e, err = get_env(ctx, p, "NOT FOUND")
    if not e then return err end
    local tag = (ctx.body and ctx.body.Tag) or ctx.q.tag or ctx.q.Tag
    local keep = U.array()
    for _, t in ipairs(e.tags or {}) do if t ~= tag then keep[#keep + 1] = t end end
    e.tags = keep
    return U.response(204)
  end)

  local function logs(kind)
    return function(ctx, p)
      local e, err = get_env(ctx, p, "NOT FOUND")
      if not e then return err end
      if ctx.user.can_view_logs == false then return E(403, "FORBIDDEN", "You do not have access") end
      local y, m, d = p.Date:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
      if not y then return E(404, "NOT FOUND", "An App or Environment is not found.") end
      local ts = os.time({ year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 0 })
      local sig = U.shortid() .. U.shortid()
      return U.ok({ Environment = e.EnvironmentId, Date = ts * 1000,
        DownloadUrl = ctx.app.files_url .. "/files/" .. kind .. "/" .. e.EnvironmentId .. "/" .. p.Date ..
          "?expire=" .. os.date("!%Y%m%d%H%M%S", math.floor(ctx.now) + 3600) .. "&signature=" .. sig })
    end
  end
  r.add("GET", "/apps/{AppId}/environments/{Mode}/logs/{Date}", logs("logs"))
  r.add("GET", "/apps/{AppId}/environments/{Mode}/access-logs/{Date}", logs("access-logs"))

  -- Build API
  r.add("GET", "/apps/{AppId}/packages", function(ctx, p)
    local a, err = get_app(ctx, p.AppId)
    if not a then return err end
    return U.ok(U.map(a.packages, function(x) return pkg_json(ctx, x) end))
  end)

  r.add("POST", "/apps/{AppId}/packages", function(ctx, p)
    local a, err = get_app(ctx, p.AppId)
    if not a then return err end
    local b = ctx.body
    if not b or type(b.Revision) ~= "string" and type(b.Revision) ~= "number" or type(b.Version) ~= "string" then
      return E(400, "INVALID_PARAMETERS", "Not enough parameters given. Please set Revision and Version parameters.")
    end
    if not b.Version:match("^%d+%.%d+%.%d+$") then
      return E(400, "INVALID_VERSION", "The Version parameter does not contain a valid version string. " ..
        "Please provide a version with a major, minor and patch number, like '2.3.5'.")
    end
    local branch = b.Branch or "main"
    local pkg = {
      PackageId = U.uuid(), Name = (branch:gsub("/", "-")) .. "-" .. b.Version .. "." .. tostring(b.Revision) .. ".mda",
      Version = b.Version .. "." .. tostring(b.Revision), Description = b.Description or "",
      Creator = ctx.user.name, CreationDate = U.ms(ctx.now), Size = 15342295, kind = "build", t0 = ctx.now,
      fail = ctx.job_fail and true or nil, MendixVersion = "9.24.0.2965",
    }
    a.packages[#a.packages + 1] = pkg
    return U.ok({ PackageId = pkg.PackageId })
  end)

  r.add("GET", "/apps/{AppId}/packages/{PackageId}", function(ctx, p)
    local a, err = get_app(ctx, p.AppId)
    if not a then return err end
    local pkg = find_pkg(a, p.PackageId)
    if not pkg then return E(404, "PACKAGE_NOT_FOUND", "Package or build job not found") end
    return U.ok(pkg_json(ctx, pkg, ctx.q.url == "true"))
  end)

  r.add("DELETE", "/apps/{AppId}/packages/{PackageId}", function(ctx, p)
    local a, err = get_app(ctx, p.AppId)
    if not a then return err end
    local pkg, i = find_pkg(a, p.PackageId)
    if not pkg then return E(404, "PACKAGE_NOT_FOUND", "Package or build job not found.") end
    for _, e in ipairs(a.environments) do
      if e.PackageId == pkg.PackageId then return E(409, "PACKAGE_IN_USE", "Package is still in use.") end
    end
    table.remove(a.packages, i)
    return U.response(200)
  end)

  r.add("GET", "/apps/{AppId}/packages/{PackageId}/download", function(ctx, p)
    local a, err = get_app(ctx, p.AppId)
    if not a then return err end
    local pkg = find_pkg(a, p.PackageId)
    if not pkg then return E(404, "PACKAGE_NOT_FOUND", "Package or build job not found.") end
    if pkg_status(ctx, pkg) ~= "Succeeded" then return E(500, "BUILD_NOT_SUCCEEDED", "Build not successful finished.") end
    return M.package_response(pkg)
  end)
end

-- The package's bytes: the uploaded file when there was one, else a small placeholder.
function M.package_response(pkg)
  local r = { status = 200, headers = { ["Content-Type"] = "application/octet-stream",
    ["Content-Disposition"] = 'attachment; filename="' .. (pkg.Name or pkg.PackageId) .. '"' } }
  local kept = pkg.file and io.open(pkg.file, "rb")
  if kept then
    kept:close()
    r.file, r.file_offset, r.file_size = pkg.file, pkg.file_offset, math.tointeger(pkg.Size)
  else
    r.body = M.package_bytes(pkg)
  end
  return r
end

function M.package_bytes(pkg)
  return "PK-SANDBOX-MDA " .. pkg.PackageId .. " " .. (pkg.Name or "") .. "\n"
end

-- ---------- Deploy API v2 + Backups API v2 ----------

local function v2_job_status(ctx, j)
  return U.phase({ { "Queued", ctx.d.upload_queued }, { "Running", ctx.d.upload_running },
    { j.fail and "Failed" or "Completed", 0 } }, ctx.sim(j.t0))
end

local function backup_env(ctx, p)
  local app
  for _, a in ipairs(ctx.world.apps) do
    if a.ProjectId == p.ProjectId and member(a, ctx.user) then app = a end
  end
  local e = app and U.find(app.environments, "EnvironmentId", p.EnvironmentId)
  if not e then return nil, E(404, "ENVIRONMENT_NOT_FOUND", "Environment not found.") end
  if app.licenseType == "free" then return nil, E(400, "NOT_SUPPORTED", "This endpoint can only be used with Mendix Cloud") end
  if not ctx.user.can_deploy then
    return nil, E(403, "NO_ACCESS", "The user does not have access to the backups of this environment.")
  end
  e.snapshots = e.snapshots or U.array()
  e.restores = e.restores or {}
  return e, app
end

local BACKUP_MSG = { queued = json.null, running = "Creating backup", completed = "Completed backup creation",
  failed = "Backup creation failed" }

local function job_state(ctx, x)
  if not x.t0 then return x.state or "completed" end
  return (U.phase({ { "queued", ctx.d.backup_queued }, { "running", ctx.d.backup_running },
    { x.fail and "failed" or "completed", 0 } }, ctx.sim(x.t0)))
end

local function finished_at(ctx, x, st)
  if st ~= "completed" and st ~= "failed" then return json.null end
  if not x.t0 then return x.finished_at or json.null end
  return U.iso(x.t0 + (ctx.d.backup_queued + ctx.d.backup_running) * ctx.app.time_scale)
end

local function snapshot_json(ctx, s)
  local st = job_state(ctx, s)
  local fin = finished_at(ctx, s, st)
  return {
    snapshot_id = s.snapshot_id, model_version = s.model_version or json.null, comment = s.comment or json.null,
    expires_at = s.expires_at, state = st, status_message = s.t0 and BACKUP_MSG[st] or (s.status_message or BACKUP_MSG[st]),
    created_at = s.created_at, finished_at = fin, updated_at = fin,
  }
end

local function archive_json(ctx, x)
  local st = job_state(ctx, x)
  local fin = finished_at(ctx, x, st)
  return {
    archive_id = x.archive_id, snapshot_id = x.snapshot_id, data_type = x.data_type, state = st,
    status_message = ({ queued = json.null, running = "Preparing download archive",
      completed = "Done preparing download archive", failed = "Archive creation failed" })[st],
    created_at = x.created_at, finished_at = fin, updated_at = fin,
    url = st == "completed" and (ctx.app.files_url .. "/files/backups/" .. x.archive_id .. ".tar.gz") or json.null,
  }
end

local function restore_json(ctx, x)
  local st = job_state(ctx, x)
  local fin = finished_at(ctx, x, st)
  return {
    restore_id = x.restore_id, source_snapshot_id = x.source_snapshot_id,
    source_environment_id = x.source_environment_id, target_environment_id = x.target_environment_id,
    state = st, status_message = ({ queued = json.null, running = "Restoring backup",
      completed = "Completed restore", failed = "Restore failed" })[st],
    created_at = x.created_at, finished_at = fin, updated_at = fin,
  }
end

local function busy(ctx, e)
  for _, s in ipairs(e.snapshots) do
    local st = job_state(ctx, s)
    if st == "queued" or st == "running" then return true end
  end
  for _, x in pairs(e.restores) do
    local st = job_state(ctx, x)
    if st == "queued" or st == "running" then return true end
  end
  return false
end

function M.routes_v2(r)
  r.add("POST", "/apps/{AppId}/packages/upload", function(ctx, p)
    local a, err = get_app(ctx, p.AppId)
    if not a then return err end
    local pkg, uerr = record_upload(ctx, a, "v2")
    if not pkg then return uerr end
    local job = { JobId = U.uuid(), PackageId = pkg.PackageId, t0 = ctx.now, fail = pkg.fail }
    a.jobs = a.jobs or {}
    a.jobs[job.JobId] = job
    return U.ok({ PackageId = pkg.PackageId, JobId = job.JobId })
  end)

  r.add("GET", "/apps/{AppId}/jobs/{JobId}", function(ctx, p)
    local a, err = get_app(ctx, p.AppId)
    if not a then return err end
    local j = a.jobs and a.jobs[p.JobId]
    if not j then return E(404, "JOB_NOT_FOUND", "Job not found.") end
    local st = v2_job_status(ctx, j)
    local out = { Status = st }
    if st == "Completed" then out.PackageId = j.PackageId end
    if st == "Failed" then out.ErrorMessage = "Failed to process the deployment package." end
    return U.ok(out)
  end)

  local base = "/apps/{ProjectId}/environments/{EnvironmentId}"
  r.add("GET", base .. "/snapshots", function(ctx, p)
    local e, err = backup_env(ctx, p)
    if not e then return err end
    local all = {}
    for i = #e.snapshots, 1, -1 do all[#all + 1] = e.snapshots[i] end -- newest first
    local page, offset, limit = U.page(all, ctx.q, 100)
    if not page then return E(400, "INVALID_PARAMETERS", offset) end
    return U.ok({ snapshots = U.map(page, function(s) return snapshot_json(ctx, s) end), total = #all,
      offset = offset, limit = limit })
  end)

  r.add("POST", base .. "/snapshots", function(ctx, p)
    local e, err = backup_env(ctx, p)
    if not e then return err end
    if busy(ctx, e) then
      return E(400, "ENVIRONMENT_BUSY", "Environment is busy, please try again later or contact Support for assistance.")
    end
    local pkg = e.PackageId and find_pkg(err, e.PackageId)
    local s = { snapshot_id = U.uuid(), comment = (ctx.body or {}).comment, t0 = ctx.now,
      created_at = U.iso(ctx.now), expires_at = U.iso(ctx.now + 90 * 86400),
      model_version = pkg and pkg.Version or nil, fail = ctx.job_fail and true or nil }
    e.snapshots[#e.snapshots + 1] = s
    return U.ok(snapshot_json(ctx, s))
  end)

  local function get_snap(ctx, p)
    local e, err = backup_env(ctx, p)
    if not e then return nil, err end
    local s = U.find(e.snapshots, "snapshot_id", p.SnapshotId)
    if not s then return nil, E(404, "NOT_FOUND", "Snapshot not found.") end
    return s, e
  end

  r.add("GET", base .. "/snapshots/{SnapshotId}", function(ctx, p)
    local s, err = get_snap(ctx, p)
    if not s then return err end
    return U.ok(snapshot_json(ctx, s))
  end)

  r.add("PUT", base .. "/snapshots/{SnapshotId}", function(ctx, p)
    local s, err = get_snap(ctx, p)
    if not s then return err end
    local b = ctx.body
    if not b then return E(400, "INVALID_PARAMETERS", "Request body is not valid JSON.") end
    s.comment = b.comment
    return U.ok(snapshot_json(ctx, s))
  end)

  r.add("DELETE", base .. "/snapshots/{SnapshotId}", function(ctx, p)
    local s, e = get_snap(ctx, p)
    if not s then return e end
    local _, i = U.find(e.snapshots, "snapshot_id", s.snapshot_id)
    table.remove(e.snapshots, i)
    return U.response(204)
  end)

  r.add("POST", base .. "/snapshots/{SnapshotId}/archives", function(ctx, p)
    local s, e = get_snap(ctx, p)
    if not s then return e end
    local dt = ctx.q.data_type or "files_and_database"
    if dt ~= "files_and_database" and dt ~= "database_only" then return E(400, "UNSUPPORTED", "Unsupported data_type") end
    local x = { archive_id = U.uuid(), snapshot_id = s.snapshot_id, data_type = dt, t0 = ctx.now,
      created_at = U.iso(ctx.now), fail = ctx.job_fail and true or nil }
    e.archives = e.archives or {}
    e.archives[x.archive_id] = x
    return U.ok(archive_json(ctx, x))
  end)

  r.add("GET", base .. "/snapshots/{SnapshotId}/archives/{ArchiveId}", function(ctx, p)
    local s, e = get_snap(ctx, p)
    if not s then return e end
    local x = e.archives and e.archives[p.ArchiveId]
    if not x or x.snapshot_id ~= s.snapshot_id then return E(404, "NOT_FOUND", "Archive not found.") end
    return U.ok(archive_json(ctx, x))
  end)

  r.add("POST", base .. "/restores", function(ctx, p)
    local e, app = backup_env(ctx, p)
    if not e then return app end
    local sid = ctx.q.source_snapshot_id
    if not sid or sid == "" then
      return E(400, "INVALID_PARAMETERS", "Not enough parameters given. Please set project_id and environment_id parameters.")
    end
    local src, src_env
    for _, env in ipairs(app.environments) do
      local s = U.find(env.snapshots or {}, "snapshot_id", sid)
      if s then src, src_env = s, env end
    end
    if not src then return E(400, "NOT_FOUND", "Source snapshot not found") end
    if job_state(ctx, src) ~= "completed" then
      return E(400, "ERROR_NOT_ALLOWED", "Restore failed, backup is not in the right state to start restoring.")
    end
    if e.Status == "Running" or (e.start_job and not e.start_job.done) then
      return E(400, "ERROR_NOT_ALLOWED", "Please stop loft before restarting a backup.")
    end
    if busy(ctx, e) then
      return E(400, "ENVIRONMENT_BUSY", "Environment is busy, please try again later or contact Support for assistance.")
    end
    local x = { restore_id = U.uuid(), source_snapshot_id = sid, source_environment_id = src_env.EnvironmentId,
      target_environment_id = e.EnvironmentId, t0 = ctx.now, created_at = U.iso(ctx.now),
      db_only = ctx.q.db_only == "true", fail = ctx.job_fail and true or nil }
    e.restores[x.restore_id] = x
    return U.ok(restore_json(ctx, x))
  end)

  r.add("GET", base .. "/restores/{RestoreId}", function(ctx, p)
    local e, err = backup_env(ctx, p)
    if not e then return err end
    local x = e.restores[p.RestoreId]
    if not x then return E(400, "NOT_FOUND", "Restore not found") end -- 400, as the docs' table says
    return U.ok(restore_json(ctx, x))
  end)
end

-- World setup from the seed: fills in defaults.
function M.prepare(world, seed)
  world.default_settings = U.arrays(seed.settings or {})
  for _, k in ipairs({ "Constants", "CustomSettings", "ScheduledEvents" }) do
    world.default_settings[k] = U.array(world.default_settings[k] or {})
  end
  for _, a in ipairs(world.apps) do
    a.packages = U.array(a.packages or {})
    a.members = U.array(a.members or {})
    for _, e in ipairs(a.environments) do
      e.settings = e.settings and U.arrays(e.settings) or U.arrays(world.default_settings)
      for _, k in ipairs({ "Constants", "CustomSettings", "ScheduledEvents" }) do
        e.settings[k] = U.array(e.settings[k] or {})
      end
      e.tags = U.array(e.tags or {})
      if type(e.snapshots) == "number" then
        local n = e.snapshots
        e.snapshots = U.array()
        for i = 1, n do
          local day = string.format("2026-01-%02dT01:41:27.000Z", i)
          e.snapshots[i] = { snapshot_id = string.format("5deda9e2-f882-4925-830c-%012d", i),
            model_version = "2.5.4.63", comment = "Automatically created nightly snapshot",
            state = "completed", status_message = "Completed backup creation", created_at = day,
            finished_at = day, expires_at = string.format("2026-04-%02dT01:41:27.000Z", i) }
        end
      else
        e.snapshots = U.array(e.snapshots or {})
      end
    end
  end
end

return M
