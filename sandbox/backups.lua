-- Backups API v2 (API key), mounted at /deploy/api/v2 beside Deploy v2: snapshots, download
-- archives and restores of an environment, addressed by ProjectId and EnvironmentId. Each is a
-- job that progresses with time; an environment runs one at a time (ENVIRONMENT_BUSY).
local U = require("mxdeploy.sandbox.util")
local world = require("mxdeploy.sandbox.world")
local deploy_v1 = require("mxdeploy.sandbox.deploy_v1")
local json = U.json
local E = U.mx_error

local M = {}

-- The environment p.EnvironmentId of the app p.ProjectId, and the app.
local function backup_env(ctx, p)
  local app = ctx.ix:get("project", p.ProjectId)
  if app and not U.member(app, ctx.user) then app = nil end
  local e = app and ctx.ix:owned("env", p.EnvironmentId, app)
  if not e then return nil, E(404, "ENVIRONMENT_NOT_FOUND", "Environment not found.") end
  if app.licenseType == "free" then return nil, E(400, "NOT_SUPPORTED", "This endpoint can only be used with Mendix Cloud") end
  if not ctx.user.can_deploy then
    return nil, E(403, "NO_ACCESS", "The user does not have access to the backups of this environment.")
  end
  e.snapshots = e.snapshots or U.array()
  e.restores = e.restores or {}
  return e, app
end

local NEEDS = {
  env = backup_env,
  snapshot = function(ctx, p)
    local e, err = backup_env(ctx, p)
    if not e then return nil, err end
    local s = ctx.ix:owned("snapshot", p.SnapshotId, e)
    if not s then return nil, E(404, "NOT_FOUND", "Snapshot not found.") end
    return s, e
  end,
}

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

local function active(ctx, x)
  local st = x and job_state(ctx, x)
  return st == "queued" or st == "running"
end

-- Snapshots and restores start only when none is active, so only the newest of each can be.
-- A start still running makes the environment busy too.
local function busy(ctx, e)
  return active(ctx, e.snapshots[#e.snapshots]) or active(ctx, e.last_restore_id and e.restores[e.last_restore_id])
    or require("mxdeploy.sandbox.deploy_v1").starting(e)
end

local BUSY = "Environment is busy, please try again later or contact Support for assistance."

-- The snapshots of `e`, newest first, without copying them.
local function newest_first(e)
  local list = e.snapshots
  return setmetatable({}, { __len = function() return #list end,
    __index = function(_, i) return list[#list - i + 1] end })
end

function M.routes(r)
  local add = r.with(NEEDS)
  local base = "/apps/{ProjectId}/environments/{EnvironmentId}"

  add("GET", base .. "/snapshots", { needs = "env" }, function(ctx, _, e)
    local page, offset, limit = U.page(newest_first(e), ctx.q, 100)
    if not page then return E(400, "INVALID_PARAMETERS", offset) end
    return U.ok({ snapshots = U.map(page, function(s) return snapshot_json(ctx, s) end), total = #e.snapshots,
      offset = offset, limit = limit })
  end)

  add("POST", base .. "/snapshots", { needs = "env" }, function(ctx, _, e, app)
    if busy(ctx, e) then return E(400, "ENVIRONMENT_BUSY", BUSY) end
    local pkg = e.PackageId and world.find_pkg(ctx, app, e.PackageId)
    local s = { snapshot_id = U.uuid(), comment = (ctx.body or {}).comment, t0 = ctx.now,
      created_at = U.iso(ctx.now), expires_at = U.iso(ctx.now + 90 * 86400),
      model_version = pkg and pkg.Version or nil, fail = ctx.job_fail and true or nil }
    e.snapshots[#e.snapshots + 1] = s
    ctx.ix:put("snapshot", s.snapshot_id, s, e)
    return U.ok(snapshot_json(ctx, s))
  end)

  add("GET", base .. "/snapshots/{SnapshotId}", { needs = "snapshot" }, function(ctx, _, s)
    return U.ok(snapshot_json(ctx, s))
  end)

  add("PUT", base .. "/snapshots/{SnapshotId}", { needs = "snapshot" }, function(ctx, _, s)
    local b = ctx.body
    if not b then return E(400, "INVALID_PARAMETERS", "Request body is not valid JSON.") end
    s.comment = b.comment
    return U.ok(snapshot_json(ctx, s))
  end)

  add("DELETE", base .. "/snapshots/{SnapshotId}", { needs = "snapshot" }, function(ctx, _, s, e)
    world.remove(e.snapshots, s)
    ctx.ix:drop("snapshot", s.snapshot_id)
    return U.response(204)
  end)

  add("POST", base .. "/snapshots/{SnapshotId}/archives", { needs = "snapshot" }, function(ctx, _, s, e)
    local dt = ctx.q.data_type or "files_and_database"
    if dt ~= "files_and_database" and dt ~= "database_only" then return E(400, "UNSUPPORTED", "Unsupported data_type") end
    local x = { archive_id = U.uuid(), snapshot_id = s.snapshot_id, data_type = dt, t0 = ctx.now,
      created_at = U.iso(ctx.now), fail = ctx.job_fail and true or nil }
    e.archives = e.archives or {}
    e.archives[x.archive_id] = x
    return U.ok(archive_json(ctx, x))
  end)

  add("GET", base .. "/snapshots/{SnapshotId}/archives/{ArchiveId}", { needs = "snapshot" }, function(ctx, p, s, e)
    local x = e.archives and e.archives[p.ArchiveId]
    if not x or x.snapshot_id ~= s.snapshot_id then return E(404, "NOT_FOUND", "Archive not found.") end
    return U.ok(archive_json(ctx, x))
  end)

  add("POST", base .. "/restores", { needs = "env" }, function(ctx, _, e, app)
    local sid = ctx.q.source_snapshot_id
    if not sid or sid == "" then
      return E(400, "INVALID_PARAMETERS", "Not enough parameters given. Please set project_id and environment_id parameters.")
    end
    local src, src_env = ctx.ix:get("snapshot", sid)
    if src and select(2, ctx.ix:get("env", src_env.EnvironmentId)) ~= app then src = nil end
    if not src then return E(400, "NOT_FOUND", "Source snapshot not found") end
    if job_state(ctx, src) ~= "completed" then
      return E(400, "ERROR_NOT_ALLOWED", "Restore failed, backup is not in the right state to start restoring.")
    end
    if e.Status == "Running" or deploy_v1.starting(e) then
      return E(400, "ERROR_NOT_ALLOWED", "Please stop loft before restarting a backup.")
    end
    if busy(ctx, e) then return E(400, "ENVIRONMENT_BUSY", BUSY) end
    local x = { restore_id = U.uuid(), source_snapshot_id = sid, source_environment_id = src_env.EnvironmentId,
      target_environment_id = e.EnvironmentId, t0 = ctx.now, created_at = U.iso(ctx.now),
      db_only = ctx.q.db_only == "true", fail = ctx.job_fail and true or nil }
    e.restores[x.restore_id] = x
    e.last_restore_id = x.restore_id
    return U.ok(restore_json(ctx, x))
  end)

  add("GET", base .. "/restores/{RestoreId}", { needs = "env" }, function(ctx, p, e)
    local x = e.restores[p.RestoreId]
    if not x then return E(400, "NOT_FOUND", "Restore not found") end -- 400, as the docs' table says
    return U.ok(restore_json(ctx, x))
  end)
end

-- World setup from the seed: `snapshots = n` in the seed stands for n completed nightly backups.
function M.prepare(w)
  for _, a in ipairs(w.apps) do
    for _, e in ipairs(a.environments) do
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
