-- Put back the package that ran before the last recorded release of an environment (or the one
-- given with --to): stop, transport, start, wait, verify, record in the release ledger.
-- --restore-backup also restores the snapshot that release took, after a warning that data
-- written since is lost and a confirmation.
--
--   mxdeploy run rollback APP MODE [--to PACKAGE_ID] [--restore-backup] [--ledger FILE]
local steps = require("mxdeploy.steps")
local release = require("mxdeploy.steps.release")
local ledger = require("mxdeploy.steps.ledger")

steps.script{
  name = "rollback",
  description = "Put back the package that ran before the last release (or --to PACKAGE_ID)",
  requires = ">= 0.2",
  epilog = "The last release is the newest succeeded line of APP/MODE in the release ledger (--ledger FILE,\n"
    .. "$MXDEPLOY_LEDGER, else $XDG_STATE_HOME/mxdeploy/releases.jsonl).",
  arguments = function(p)
    p:argument("app", "App ID (the subdomain)")
    p:argument("mode", "Environment (Test, Acceptance, Production, ...)")
    p:option("--to", "Put back this package instead of the one before the last release"):argname("PACKAGE_ID")
    p:flag("--restore-backup", "Also restore the snapshot the last release took (data written since is lost)")
    p:option("--ledger", "Release ledger file"):argname("FILE")
  end,
  run = function(args, s)
    local app_id, mode = args.app, args.mode
    local path = ledger.path(args.ledger)
    local last = ledger.last(path, app_id, mode, function(r) return r.result == "succeeded" end)
    local target_id = args.to or (last and last.previous_package_id)
    if not target_id then
      if last then s.fail("the last release of %s/%s (%s) recorded no package before it; give --to PACKAGE_ID", app_id, mode, tostring(last.time)) end
      s.fail("no release of %s/%s in %s to roll back; give --to PACKAGE_ID", app_id, mode, path)
    end
    local snapshot = args.restore_backup and last and last.snapshot
    if args.restore_backup and (not snapshot or snapshot == mx.null) then
      s.fail("the last release of %s/%s recorded no snapshot to restore (deploy --backup takes one)", app_id, mode)
    end

    local pkg = mx.build.get_package(app_id, target_id) -- exists (a 404 names it)
    local app, env = release.check(s, app_id, mode)
    local running = release.running_package(app_id, mode)
    s.log("check", "%s/%s runs %s; putting back %s (%s)", app_id, mode, running and tostring(running.Name) or "nothing",
      tostring(pkg.Name), target_id)
    if running and running.PackageId == target_id and not snapshot then
      s.log("done", "%s/%s already runs %s: nothing to do", app_id, mode, tostring(pkg.Name))
      return { app = app_id, mode = mode, package_id = target_id, unchanged = true }
    end
    if snapshot then
      s.warn("WARNING: restoring snapshot %s (taken by the release of %s at %s) replaces the data of %s/%s: "
        .. "everything written since is lost.", tostring(snapshot), tostring(last.package_name), tostring(last.time), app_id, mode)
      s.confirm(("restore snapshot %s to %s/%s, losing the data written since"):format(tostring(snapshot), app_id, mode))
    end
    s.confirm_change(app_id, mode, "roll back to " .. tostring(pkg.Name))

    if snapshot then
      if env.Status == "Running" then
        mx.v1.stop_environment(app_id, mode)
        s.log("stop", "%s/%s %s", app_id, mode, s.dry_run and "(planned)" or "stopped")
      end
      local job = mx.backups.restore_snapshot(app.ProjectId, env.EnvironmentId, { source_snapshot_id = snapshot })
      s.log("restore", "snapshot %s -> %s/%s requested", tostring(snapshot), app_id, mode)
      job:wait{ timeout = 3600, on_progress = function(_, st) s.log("restore", "%s", tostring(st)) end }
      s.log("restore", "snapshot %s restored", tostring(snapshot))
    end
    local result = release.run(s, { action = "rollback", app = app_id, mode = mode, package_id = target_id,
      package_name = pkg.Name, model_version = pkg.Version, previous = running, ledger = path,
      extra = { restored_snapshot = snapshot or nil } })
    result.restored_snapshot = snapshot or nil
    return result
  end,
}
