-- Deploy a package to a Mendix Cloud environment: check the app, the environment and the package
-- first; then upload it (Deploy API v2, waiting for the upload job), stop the environment when it
-- runs, transport the package, start with AutoSyncDb and wait until it has started.
--
--   mxdeploy run deploy APP MODE PACKAGE.mda
--   mxdeploy run deploy --branch NAME [--version X.Y.Z] APP MODE
--   mxdeploy --sandbox run deploy              (calc / Test / a generated demo package)
--   mxdeploy --dry-run run deploy calc Production app.mda   (only reads; prints the plan)
--
-- --branch builds the newest commit of the branch (App Repository API, then the Build API; the
-- version defaults to 1.0.0) instead of uploading a file; it also needs MENDIX_TOKEN (scope
-- mx:modelrepository:repo:read).
local steps = require("mxdeploy.steps")

local deploy_branch -- defined below

local human = mx.format_size -- the formatter of mx.progress too: one size, written one way

-- a demo package for the simulated cloud (any bytes will do there); removed at the end
local function demo_package()
  local reserved = os.tmpname() -- creates an empty file: removed with the package
  local path = reserved .. ".mda"
  local f = assert(io.open(path, "wb"))
  f:write("PK\3\4", ("demo deployment archive\n"):rep(400))
  f:close()
  return setmetatable({ path = path }, { __close = function() os.remove(path) os.remove(reserved) end })
end

-- The rest of a deploy once the package exists: stop when it runs, transport, start, wait.
local function stop_transport_start(s, app, mode, env, package_id)
  if env.Status == "Running" or env.Status == "Starting" then
    mx.v1.stop_environment(app, mode)
    s.log("stop", "%s/%s %s", app, mode, s.dry_run and "(planned)" or "stopped")
  end
  -- "MDA is still being processed" (503) is safe to repeat: nothing was applied
  for attempt = 1, 10 do
    local ok, err = pcall(mx.v1.transport_package, app, mode, { PackageId = package_id })
    if ok then break end
    if not (mx.errors.is(err, "http") and err.status == 503 and attempt < 10) then error(err, 0) end
    s.log("transport", "package still being processed; retrying")
    mx.sleep(attempt)
  end
  s.log("transport", "package %s -> %s/%s", package_id, app, mode)
  local start = mx.v1.start_environment(app, mode, { AutoSyncDb = true })
  local result = start:wait{ timeout = 1800, on_progress = function(_, status)
    s.log("start", "job %s: %s", start.id, status)
  end }
  s.log("start", "%s/%s %s", app, mode, start.already_done and "was already running" or result.Status)
  local final = mx.v1.get_environment(app, mode)
  s.log("done", "%s/%s is %s with model version %s", app, mode, final.Status, tostring(final.ModelVersion))
  return final
end

-- --branch: the newest commit of the branch built into a package (Build API job), then deployed.
deploy_branch = function(args, s)
  local app, mode, branch, version = args.app, args.mode, args.branch, args.version or "1.0.0"
  local project = mx.v1.get_app(app).ProjectId -- the App Repository names apps by ProjectId
  local env = mx.v1.get_environment(app, mode)
  local head = mx.repository.get_branch(project, branch).latestCommit
  s.log("check", "%s/%s is %s; %s is at %s", app, mode, env.Status, branch, head.id)
  s.confirm_change(app, mode, "deploy " .. branch .. " at " .. head.id)
  if s.dry_run then s.plan("build %s at %s (%s) as version %s", branch, head.id, tostring(head.message), version) end
  s.log("build", "%s at %s (%s)", branch, head.id, tostring(head.message))
  local build = mx.build.build_package(app, { Branch = branch, Revision = head.id, Version = version,
    Description = "mxdeploy: " .. branch .. " at " .. head.id })
  local built = build:wait{ timeout = 3600, on_progress = function(_, status) s.log("build", "package %s: %s", build.id, status) end }
  s.log("build", "package %s ready", built.PackageId)
  local final = stop_transport_start(s, app, mode, env, built.PackageId)
  return { app = app, mode = mode, branch = branch, revision = head.id, package_id = built.PackageId,
           status = final.Status, model_version = final.ModelVersion }
end

steps.script{
  name = "deploy",
  description = "Deploy a package to an environment: upload, stop, transport, start, wait",
  requires = ">= 0.2",
  epilog = "APP is the v1 AppId (the subdomain, e.g. calc); MODE is Test, Acceptance, Production or a\n"
    .. "flexible environment's name. With --sandbox and no arguments: calc Test and a demo package.",
  arguments = function(p)
    p:argument("app", "App ID (the subdomain)"):args("?")
    p:argument("mode", "Environment (Test, Acceptance, Production, ...)"):args("?")
    p:argument("package", "Deployment package (.mda); not with --branch"):args("?")
    p:option("--branch", "Build the newest commit of this branch instead of uploading a file"):argname("NAME")
    p:option("--version", "Version of the package built with --branch (default 1.0.0)"):argname("X.Y.Z")
  end,
  run = function(args, s)
    local app, mode, path = args.app, args.mode, args.package
    local name = path and path:match("([^/]+)$")
    if args.branch then
      if path then s.usage("give a PACKAGE or --branch, not both") end
      if not (app and mode) then s.usage("APP and MODE are required") end
      return deploy_branch(args, s)
    end
    if args.version then s.usage("--version goes with --branch") end
    local demo <close> = not path and s.sandbox and demo_package() or nil
    if demo then
      app, mode, path = app or "calc", mode or "Test", demo.path
      name = "demo_1.0.0." .. os.time() % 100000 .. ".mda"
    end
    if not (app and mode and path) then s.usage("APP, MODE and PACKAGE are required") end

    -- 1. check everything before changing anything
    local size = mx.package_size(path) -- "cannot open /x.mda: No such file or directory"
    if size > 1024 ^ 3 then s.fail("%s is %s: Mendix Cloud refuses packages over 1 GB", name, human(size)) end
    mx.v1.get_app(app) -- the app exists and these credentials may see it
    local env = mx.v1.get_environment(app, mode)
    s.log("check", "%s/%s is %s (model %s); package %s (%s)", app, mode, env.Status, tostring(env.ModelVersion), name, human(size))
    s.confirm_change(app, mode, "deploy " .. name)

    -- 2. upload (v2: a job that ends Completed and carries the PackageId)
    s.log("upload", "%s (%s) to app %s", name, human(size), app)
    local upload = mx.v2.upload_package(app, path, { name = name, on_progress = not s.json and mx.progress("upload " .. name) or nil })
    local uploaded = upload:wait{ timeout = 900, on_progress = function(_, status)
      s.log("upload", "job %s: %s", upload.id, status)
    end }
    local package_id = uploaded.PackageId
    s.log("upload", "package %s ready", package_id)

    -- 3. stop, transport, start and wait
    local final = stop_transport_start(s, app, mode, env, package_id)
    return { app = app, mode = mode, package = name, package_id = package_id, status = final.Status,
             model_version = final.ModelVersion }
  end,
}
