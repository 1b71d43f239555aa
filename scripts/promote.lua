-- Promote what runs in one environment to another: the same checks as deploy (target exists and
-- is not busy, the constants the source environment has against the target's values), a
-- snapshot of the target first (Backups API), stop, transport the source's package, apply
-- --settings, start, wait, verify the model version, record in the release ledger;
-- --rollback-on-failure puts back what the target ran before when that fails.
--
--   mxdeploy run promote APP [FROM] [TO]       FROM defaults to Acceptance, TO to Production
--   mxdeploy --sandbox --yes run promote calc
local steps = require("mxdeploy.steps")
local release = require("mxdeploy.steps.release")
local ledger = require("mxdeploy.steps.ledger")

steps.script{
  name = "promote",
  description = "Promote the package running in one environment to another (backup first)",
  requires = ">= 0.2",
  epilog = "APP is the v1 AppId (subdomain); the backup uses the app's ProjectId and the target's\n"
    .. "EnvironmentId, looked up through v1. With --sandbox, APP defaults to calc. The constants\n"
    .. "checked before the change are those FROM has: each needs a value in TO (or in --settings).",
  arguments = function(p)
    p:argument("app", "App ID (the subdomain)"):args("?")
    p:argument("from", "Environment whose package is promoted (default Acceptance)"):args("?")
    p:argument("to", "Environment that receives it (default Production)"):args("?")
    p:flag("--no-backup", "Do not take a snapshot of the target first")
    release.change_options(p, "When the start fails, put back the package the target ran before")
  end,
  run = function(args, s)
    local app_id = args.app or (s.sandbox and "calc")
    local from, to = args.from or "Acceptance", args.to or "Production"
    if not app_id then s.usage("APP is required") end
    if from == to then s.usage("FROM and TO are the same environment (%s)", from) end
    local settings = args.settings and release.read_settings(args.settings) or nil

    local pkg = mx.v1.get_environment_package(app_id, from)
    s.log("source", "%s/%s runs %s (%s)", app_id, from, tostring(pkg.Name), tostring(pkg.PackageId))
    local app, target = release.check(s, app_id, to)
    local previous = release.running_package(app_id, to)
    s.log("target", "%s/%s is %s (model %s)", app_id, to, tostring(target.Status), tostring(target.ModelVersion))
    local needs = {}
    for _, c in ipairs(mx.v1.get_environment_settings(app_id, from).Constants or {}) do needs[#needs + 1] = c.Name end
    local missing = release.missing_constants(app_id, to, needs, settings)
    if #missing > 0 then release.fail_missing(s, app_id, to, missing, "nothing was changed") end
    s.confirm_change(app_id, to, "promote " .. tostring(pkg.Name) .. " from " .. from)

    local snapshot = not args.no_backup
      and release.backup(s, app, target, "Before promoting " .. tostring(pkg.Version) .. " from " .. from) or nil
    local result = release.run(s, { action = "promote", app = app_id, mode = to, package_id = pkg.PackageId,
      package_name = pkg.Name, model_version = pkg.Version, previous = previous, snapshot = snapshot, source = from,
      settings = settings, settings_file = args.settings, rollback = args.rollback_on_failure,
      ledger = ledger.path(args.ledger) })
    result.from, result.to = from, to
    return result
  end,
}
