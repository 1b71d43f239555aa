-- Restart environments, one or many at once: Mendix Cloud (Deploy API v1) stop, start with
-- AutoSyncDb and wait; Private Cloud (--private-cloud, app and environment IDs) the manifest's
-- instances to 0 and back, each update job waited on. Production targets are confirmed up front.
--
--   mxdeploy run restart APP MODE
--   mxdeploy run restart --each calc/Test --each calc/Acceptance [--concurrency 4]
--   mxdeploy run restart --all --mode Acceptance
--   mxdeploy run restart --private-cloud APP_ID ENV_ID      (or --each APP_ID/ENV_ID)
local steps = require("mxdeploy.steps")

-- Mendix Cloud: stop when running, start, wait.
local function restart_cloud(s, t)
  local env = mx.v1.get_environment(t.app, t.env)
  if env.Status == "Starting" then error(mx.errors.new("failure", { message = t.label .. " is busy: a start is running" }), 0) end
  if env.Status == "Running" then
    mx.v1.stop_environment(t.app, t.env)
    s.log("stop", "%s %s", t.label, s.dry_run and "(planned)" or "stopped")
  end
  local job = mx.v1.start_environment(t.app, t.env, { AutoSyncDb = true })
  job:wait{ timeout = 1800, on_progress = function(_, st) s.log("start", "%s %s", t.label, tostring(st)) end }
  local final = s.dry_run and env or mx.v1.get_environment(t.app, t.env)
  s.log("done", "%s is %s", t.label, s.dry_run and "restarted (planned)" or tostring(final.Status))
  return { target = t.label, status = s.dry_run and "planned" or final.Status }
end

-- Private Cloud: the manifest read, instances set to 0 (job waited), then back (job waited).
local function restart_pc(s, t)
  local manifest = mx.pc.get_environment(t.app, t.env)
  local container = manifest.environment.container
  local n = math.tointeger(container.instances) or 1
  container.instances = 0
  local down = mx.pc.update_environment(t.app, t.env, manifest)
  down:wait{ timeout = 1800, on_progress = function(_, st) s.log("scale", "%s to 0: %s", t.label, tostring(st)) end }
  s.log("scale", "%s at 0 instances", t.label)
  container.instances = n
  local up = mx.pc.update_environment(t.app, t.env, manifest)
  up:wait{ timeout = 1800, on_progress = function(_, st) s.log("scale", "%s to %d: %s", t.label, n, tostring(st)) end }
  s.log("done", "%s back at %d instance%s", t.label, n, n == 1 and "" or "s")
  return { target = t.label, instances = n, status = s.dry_run and "planned" or "restarted" }
end

steps.script{
  name = "restart",
  description = "Restart environments (many at once, with a concurrency limit); Private Cloud too",
  requires = ">= 0.2",
  epilog = "Targets: APP MODE, or --each APP/MODE (repeated), or --all --mode MODE (every app these\n"
    .. "credentials see that has it). With --private-cloud, APP and MODE are the Private Cloud app and\n"
    .. "environment IDs. Exit 3 when some targets failed and others were restarted.",
  arguments = function(p)
    p:argument("app", "App ID (the subdomain; with --private-cloud the app ID)"):args("?")
    p:argument("mode", "Environment (with --private-cloud the environment ID)"):args("?")
    p:option("--each", "A target APP/MODE (repeatable)"):argname("APP/MODE"):count("*")
    p:flag("--all", "Every app's environment named by --mode")
    p:option("--mode", "The environment --all restarts"):argname("MODE"):target("all_mode")
    p:option("--concurrency", "Targets restarted at once (default 4)"):argname("N"):convert(function(v)
      local n = math.tointeger(tonumber(v))
      if not n or n < 1 then return nil, "--concurrency must be a positive integer" end
      return n
    end)
    p:flag("--private-cloud", "Mendix for Private Cloud: instances to 0 and back through the manifest")
  end,
  run = function(args, s)
    local targets = {}
    local function add(app, env) targets[#targets + 1] = { app = app, env = env, label = app .. "/" .. env } end
    if args.app or args.mode then
      if not (args.app and args.mode) then s.usage("give APP and MODE") end
      add(args.app, args.mode)
    end
    for _, each in ipairs(args.each or {}) do
      local a, e = each:match("^([^/]+)/(.+)$")
      if not a then s.usage("--each takes APP/MODE, got '%s'", each) end
      add(a, e)
    end
    if args.all then
      if args.private_cloud then s.usage("--all is for Mendix Cloud; give Private Cloud targets with --each") end
      if not args.all_mode then s.usage("--all needs --mode MODE") end
      for _, a in ipairs(mx.v1.list_apps()) do
        for _, e in ipairs(mx.v1.list_environments(a.AppId)) do
          if e.Mode == args.all_mode then add(a.AppId, e.Mode) end
        end
      end
      if #targets == 0 then s.fail("no app has an environment %s", args.all_mode) end
    elseif args.all_mode then
      s.usage("--mode goes with --all")
    end
    if #targets == 0 then s.usage("give APP MODE, --each APP/MODE or --all --mode MODE") end

    -- confirm every Production target before the first change
    if not args.private_cloud then
      for _, t in ipairs(targets) do
        local env = mx.v1.get_environment(t.app, t.env)
        t.production = env.Production
        if env.Production then s.confirm_change(t.app, "Production", "restart") end
      end
    end
    s.log("restart", "%d target%s, %d at a time", #targets, #targets == 1 and "" or "s", args.concurrency or 4)
    local results, failures = s.map(targets, function(t)
      return (args.private_cloud and restart_pc or restart_cloud)(s, t)
    end, { concurrency = args.concurrency or 4 })
    local out = mx.array()
    for i, t in ipairs(targets) do out[i] = results[i] or { target = t.label, status = "failed" } end
    for _, f in ipairs(failures) do
      out[f.index].error = tostring(f.error)
      s.warn("restart: %s: %s", targets[f.index].label, tostring(f.error))
    end
    if #failures > 0 then
      if #failures == #targets then s.fail("no target was restarted (%d failed)", #failures) end
      return { targets = out, failed = #failures }, steps.EXIT.partial
    end
    return { targets = out, failed = 0 }
  end,
}
