-- Environment settings as code (Deploy API v1): constants, custom settings, scheduled events and
-- tags of an environment as a JSON file with a stable key order, kept in git.
--
--   mxdeploy run settings export APP MODE [--show-values] > calc-test.json
--   mxdeploy run settings plan APP MODE FILE      exit 0 no change, 2 changes, 1 error
--   mxdeploy run settings apply APP MODE FILE [--restart]
--   mxdeploy run settings diff APP MODE1 MODE2
--
-- The file's format, and how secrets are masked, are described at the top of
-- host/steps/settings.lua (mxdeploy.steps.settings).
local steps = require("mxdeploy.steps")
local settings = require("mxdeploy.steps.settings")

local function print_changes(s, changes, show)
  for _, c in ipairs(changes) do s.print("%s", settings.line(c, show)) end
end

local function problems_fail(s, problems, file)
  for _, p in ipairs(problems) do s.warn("%s: %s", file, p) end
  s.fail("%s cannot be applied: %s", file, problems[1])
end

local function restart(s, app, mode)
  local env = mx.v1.get_environment(app, mode)
  if env.Status == "Running" then
    mx.v1.stop_environment(app, mode)
    s.log("restart", "%s/%s stopped", app, mode)
  end
  local job = mx.v1.start_environment(app, mode, { AutoSyncDb = true })
  job:wait{ timeout = 1800, on_progress = function(_, st) s.log("restart", "%s/%s %s", app, mode, tostring(st)) end }
  s.log("restart", "%s/%s started", app, mode)
end

steps.script{
  name = "settings",
  description = "Environment settings as code: export, plan, apply, diff (constants, custom settings, events, tags)",
  requires = ">= 0.2",
  epilog = "plan exits 0 when FILE matches the environment, 2 when there are changes, 1 on an error\n"
    .. "(as terraform plan -detailed-exitcode); diff likewise. Values of constants whose names look\n"
    .. "secret (password, secret, token, key, credential, private) are masked unless --show-values;\n"
    .. "\"<secret>\" in a FILE keeps the current value. Settings take effect at the next restart.",
  arguments = function(p)
    p:command_target("command")
    -- a command on APP MODE
    local function command(name, description, mode)
      local c = p:command(name, description)
      c:argument("app", "App ID (the subdomain)")
      c:argument("mode", mode or "Environment")
      return c
    end
    local export = command("export", "Print the environment's settings as JSON (stable key order)")
    local plan = command("plan", "The changes FILE makes, one per line (exit 0 none, 2 some, 1 error)")
    plan:argument("file", "Settings file (JSON, as export writes)")
    local apply = command("apply", "Show the plan, confirm, apply exactly it, re-read and verify")
    apply:argument("file", "Settings file (JSON, as export writes)")
    apply:flag("--restart", "Restart the environment afterwards, so the changes take effect")
    local diff = command("diff", "The settings MODE2 has that MODE1 has not (exit 0 same, 2 different)", "Environment (from)")
    diff:argument("mode2", "Environment (to)")
    for _, c in ipairs({ export, plan, apply, diff }) do
      c:flag("--show-values", "Print the values of secret constants too")
      c:flag("--dry-run", "Send only reads; print the changes instead of making them (as mxdeploy --dry-run).")
    end
  end,
  run = function(args, s)
    local app, mode, show = args.app, args.mode, args.show_values
    if args.command == "export" then
      local doc = settings.read(app, mode, show)
      if not s.json then io.stdout:write(settings.pretty(doc), "\n") end
      return doc
    end
    if args.command == "diff" then
      local a, b = settings.read(app, mode, true), settings.read(app, args.mode2, true)
      local changes = settings.changes(a, b)
      s.log("diff", "%s/%s -> %s/%s: %d difference%s", app, mode, app, args.mode2, #changes, #changes == 1 and "" or "s")
      print_changes(s, changes, show)
      return { app = app, from = mode, to = args.mode2, changes = settings.records(changes, show) }, #changes > 0 and 2 or 0
    end
    local want = settings.load(args.file)
    local current = settings.read(app, mode, true)
    local changes, problems = settings.changes(current, want)
    if #problems > 0 then problems_fail(s, problems, args.file) end
    s.log("plan", "%s/%s: %d change%s from %s", app, mode, #changes, #changes == 1 and "" or "s", args.file)
    print_changes(s, changes, show)
    local result = { app = app, mode = mode, file = args.file, changes = settings.records(changes, show) }
    if args.command == "plan" then return result, #changes > 0 and 2 or 0 end

    -- apply
    if #changes == 0 then
      s.log("apply", "nothing to change")
      if args.restart then restart(s, app, mode) end
      return result
    end
    s.confirm(("apply %d settings change%s to %s/%s"):format(#changes, #changes == 1 and "" or "s", app, mode))
    settings.apply(app, mode, changes, current)
    if s.dry_run then
      result.planned = true
      return result
    end
    local after = settings.read(app, mode, true)
    local left = settings.changes(after, want)
    if #left > 0 then
      print_changes(s, left, show)
      s.fail("%s/%s does not hold %d of the changes after applying them", app, mode, #left)
    end
    s.log("apply", "%s/%s holds every change (re-read)", app, mode)
    local pending = settings.needs_restart(changes)
    result.needs_restart = settings.records(pending, show)
    if #pending > 0 and not args.restart then
      for _, c in ipairs(pending) do s.log("restart", "needed for %s", settings.line(c, show)) end
      s.log("restart", "%d change%s take effect at the next restart (--restart does it now)", #pending, #pending == 1 and "" or "s")
    elseif #pending > 0 then
      restart(s, app, mode)
      result.restarted = true
    end
    return result
  end,
}
