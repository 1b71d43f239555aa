-- Promote what runs in one environment to another: back up the target (Backups API snapshot),
-- stop it, transport the source environment's package, start it and wait.
--
--   mxdeploy scripts/promote.lua APP [FROM] [TO]      FROM defaults to Acceptance, TO to Production
--   mxdeploy --sandbox scripts/promote.lua calc
--
-- APP is the v1 AppId (subdomain); the backup uses the app's ProjectId and the target's
-- EnvironmentId, looked up through v1. Pass --no-backup to skip the snapshot, --dry-run to check
-- and print the plan without changing anything (only GET requests are sent).

local mx = mx or require("mxdeploy")

local log = mx.logger() -- "[  12.3s] step      message" lines on stdout

local positional, backup, dry_run = {}, true, false
for _, a in ipairs(arg) do
  if a == "--no-backup" then backup = false
  elseif a == "--dry-run" then dry_run = true
  else positional[#positional + 1] = a end
end
local app_id = positional[1] or (package.loaded["mxdeploy.active_sandbox"] and "calc")
local from, to = positional[2] or "Acceptance", positional[3] or "Production"
if not app_id then
  io.stderr:write("usage: mxdeploy scripts/promote.lua APP [FROM] [TO] [--no-backup] [--dry-run]\n")
  os.exit(2)
end

local ok, err = pcall(function()
  local app = mx.v1.get_app(app_id)
  local pkg = mx.v1.get_environment_package(app_id, from)
  log("source", "%s/%s runs %s (%s)", app_id, from, pkg.Name, pkg.PackageId)
  local target = mx.v1.get_environment(app_id, to)

  if dry_run then
    if backup then log("plan", "back up %s/%s (snapshot of %s)", app_id, to, target.EnvironmentId) end
    if target.Status == "Running" or target.Status == "Starting" then
      log("plan", "stop %s/%s (it is %s)", app_id, to, target.Status)
    end
    log("plan", "transport %s (%s) to %s/%s, then start it and wait", pkg.Name, pkg.PackageId, app_id, to)
    log("dry-run", "nothing was changed")
    return
  end

  if backup then
    local snap = mx.backups.create_snapshot(app.ProjectId, target.EnvironmentId,
      { comment = "Before promoting " .. tostring(pkg.Version) .. " from " .. from })
    log("backup", "snapshot %s of %s requested", snap.id, to)
    snap:wait{ timeout = 3600, on_progress = function(_, s) log("backup", "snapshot %s", s) end }
  end

  if target.Status == "Running" or target.Status == "Starting" then
    mx.v1.stop_environment(app_id, to)
    log("stop", "%s/%s stopped", app_id, to)
  end
  mx.v1.transport_package(app_id, to, { PackageId = pkg.PackageId })
  log("transport", "%s -> %s/%s", pkg.PackageId, app_id, to)
  local start = mx.v1.start_environment(app_id, to, { AutoSyncDb = true })
  start:wait{ timeout = 1800, on_progress = function(_, s) log("start", "%s", s) end }
  local final = mx.v1.get_environment(app_id, to)
  log("done", "%s/%s is %s with model version %s", app_id, to, final.Status, tostring(final.ModelVersion))
end)
if not ok then
  -- Ctrl-C is not a failed step: let it end the script as interrupted (exit status 130)
  if mx.errors.is(err, "interrupted") then error(err, 0) end
  io.stderr:write("promote failed: ", tostring(err), "\n")
  os.exit(1)
end
