-- Promote what runs in one environment to another: back up the target (Backups API snapshot),
-- stop it, transport the source environment's package, start it and wait.
--
--   mxdeploy run promote APP [FROM] [TO]       FROM defaults to Acceptance, TO to Production
--   mxdeploy --sandbox --yes run promote calc
local steps = require("mxdeploy.steps")

steps.script{
  name = "promote",
  description = "Promote the package running in one environment to another (backup first)",
  requires = ">= 0.2",
  epilog = "APP is the v1 AppId (subdomain); the backup uses the app's ProjectId and the target's\n"
    .. "EnvironmentId, looked up through v1. With --sandbox, APP defaults to calc.",
  arguments = function(p)
    p:argument("app", "App ID (the subdomain)"):args("?")
    p:argument("from", "Environment whose package is promoted (default Acceptance)"):args("?")
    p:argument("to", "Environment that receives it (default Production)"):args("?")
    p:flag("--no-backup", "Do not take a snapshot of the target first")
  end,
  run = function(args, s)
    local app_id = args.app or (s.sandbox and "calc")
    local from, to = args.from or "Acceptance", args.to or "Production"
    if not app_id then s.usage("APP is required") end
    if from == to then s.usage("FROM and TO are the same environment (%s)", from) end

    local app = mx.v1.get_app(app_id)
    local pkg = mx.v1.get_environment_package(app_id, from)
    s.log("source", "%s/%s runs %s (%s)", app_id, from, tostring(pkg.Name), tostring(pkg.PackageId))
    local target = mx.v1.get_environment(app_id, to)
    s.log("target", "%s/%s is %s (model %s)", app_id, to, tostring(target.Status), tostring(target.ModelVersion))
    s.confirm_change(app_id, to, "promote " .. tostring(pkg.Name) .. " from " .. from)

    local snapshot
    if not args.no_backup then
      local snap = mx.backups.create_snapshot(app.ProjectId, target.EnvironmentId,
        { comment = "Before promoting " .. tostring(pkg.Version) .. " from " .. from })
      s.log("backup", "snapshot %s of %s requested", snap.id, to)
      snap:wait{ timeout = 3600, on_progress = function(_, st) s.log("backup", "snapshot %s", st) end }
      snapshot = snap.id
    end

    if target.Status == "Running" or target.Status == "Starting" then
      mx.v1.stop_environment(app_id, to)
      s.log("stop", "%s/%s %s", app_id, to, s.dry_run and "(planned)" or "stopped")
    end
    mx.v1.transport_package(app_id, to, { PackageId = pkg.PackageId })
    s.log("transport", "%s -> %s/%s", pkg.PackageId, app_id, to)
    local start = mx.v1.start_environment(app_id, to, { AutoSyncDb = true })
    start:wait{ timeout = 1800, on_progress = function(_, st) s.log("start", "%s", st) end }
    local final = mx.v1.get_environment(app_id, to)
    s.log("done", "%s/%s is %s with model version %s", app_id, to, final.Status, tostring(final.ModelVersion))
    return { app = app_id, from = from, to = to, package_id = pkg.PackageId, snapshot = snapshot,
             status = final.Status, model_version = final.ModelVersion }
  end,
}
