-- Deploy a package to a Mendix Cloud environment: check the app, the environment (not busy), the
-- package (size, and the constants it declares against the environment's values) first; then
-- optionally snapshot (--backup), upload (Deploy API v2, waiting for the upload job), stop the
-- environment when it runs, transport, apply --settings, start with AutoSyncDb, wait, verify the
-- model version; --rollback-on-failure puts back the package that ran before when that fails.
-- Every deploy is a line in the release ledger (mxdeploy.steps.ledger).
--
--   mxdeploy run deploy APP MODE PACKAGE.mda [--backup] [--settings FILE] [--rollback-on-failure]
--   mxdeploy run deploy --branch NAME [--revision R] [--version X.Y.Z] APP MODE
--   mxdeploy --sandbox run deploy              (calc / Test / a generated demo package)
--   mxdeploy --dry-run run deploy calc Production app.mda   (only reads; prints the plan)
--
-- --branch builds the newest commit of the branch (App Repository API, then the Build API; the
-- version defaults to 1.0.0) instead of uploading a file; it also needs MENDIX_TOKEN (scope
-- mx:modelrepository:repo:read).
local steps = require("mxdeploy.steps")
local release = require("mxdeploy.steps.release")
local ledger = require("mxdeploy.steps.ledger")

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

-- The checks and the change shared by a file and a branch: settings, constants, backup, release.
local function checked_release(args, s, o)
  local app_id, mode = args.app, args.mode
  local settings = args.settings and release.read_settings(args.settings) or nil
  local app, env = release.check(s, app_id, mode)
  local previous = release.running_package(app_id, mode)
  s.log("check", "%s/%s is %s (model %s, package %s)", app_id, mode, env.Status, tostring(env.ModelVersion),
    previous and tostring(previous.Name) or "none")
  if o.needs then
    local missing = release.missing_constants(app_id, mode, o.needs, settings)
    if #missing > 0 then release.fail_missing(s, app_id, mode, missing, "nothing was changed") end
    s.log("check", "constants: %d declared, each has a value", #o.needs)
  end
  s.confirm_change(app_id, mode, o.what)
  local snapshot = args.backup and release.backup(s, app, env, "Before deploying " .. o.what) or nil
  return { app = app, env = env, previous = previous, settings = settings, snapshot = snapshot }
end

-- --branch: a commit of the branch (--revision, else its newest: App Repository API) built into a
-- package (Build API job), then deployed.
deploy_branch = function(args, s)
  local app_id, mode, branch, version = args.app, args.mode, args.branch, args.version or "1.0.0"
  local revision = args.revision
  if not revision then
    local project = mx.v1.get_app(app_id).ProjectId -- the App Repository names apps by ProjectId
    local head = mx.repository.get_branch(project, branch).latestCommit
    revision = head.id
    s.log("check", "%s is at %s (%s)", branch, revision, tostring(head.message))
  end
  local c = checked_release(args, s, { what = branch .. " at " .. revision })
  if s.dry_run then s.plan("build %s at %s as version %s", branch, revision, version) end
  s.log("build", "%s at %s", branch, revision)
  local build = mx.build.build_package(app_id, { Branch = branch, Revision = revision, Version = version,
    Description = "mxdeploy: " .. branch .. " at " .. revision })
  local built = build:wait{ timeout = 3600, on_progress = function(_, status) s.log("build", "package %s: %s", build.id, status) end }
  s.log("build", "package %s ready", tostring(built.PackageId))
  local pkg = not s.dry_run and mx.build.get_package(app_id, built.PackageId) or {}
  local result = release.run(s, { action = "deploy", app = app_id, mode = mode, package_id = built.PackageId,
    package_name = pkg.Name, model_version = pkg.Version, previous = c.previous, snapshot = c.snapshot,
    settings = c.settings, settings_file = args.settings, rollback = args.rollback_on_failure,
    ledger = ledger.path(args.ledger) })
  result.branch, result.revision = branch, revision
  return result
end

steps.script{
  name = "deploy",
  description = "Deploy a package to an environment: check, upload, stop, transport, start, verify, record",
  requires = ">= 0.2",
  epilog = "APP is the v1 AppId (the subdomain, e.g. calc); MODE is Test, Acceptance, Production or a\n"
    .. "flexible environment's name. With --sandbox and no arguments: calc Test and a demo package.",
  arguments = function(p)
    p:argument("app", "App ID (the subdomain)"):args("?")
    p:argument("mode", "Environment (Test, Acceptance, Production, ...)"):args("?")
    p:argument("package", "Deployment package (.mda); not with --branch"):args("?")
    p:option("--branch", "Build a commit of this branch (the newest, or --revision) instead of uploading a file"):argname("NAME")
    p:option("--revision", "The commit --branch builds (default: the branch's newest)"):argname("R")
    p:option("--version", "Version of the package built with --branch (default 1.0.0)"):argname("X.Y.Z")
    p:flag("--backup", "Take a snapshot of the environment first (waited for)")
    release.change_options(p, "When the start fails, put back the package that ran before and start it")
  end,
  run = function(args, s)
    local app, mode, path = args.app, args.mode, args.package
    local name = path and path:match("([^/]+)$")
    if args.branch then
      if path then s.usage("give a PACKAGE or --branch, not both") end
      if not (app and mode) then s.usage("APP and MODE are required") end
      return deploy_branch(args, s)
    end
    if args.version or args.revision then s.usage("--version and --revision go with --branch") end
    local demo <close> = not path and s.sandbox and demo_package() or nil
    if demo then
      app, mode, path = app or "calc", mode or "Test", demo.path
      name = "demo_1.0.0." .. os.time() % 100000 .. ".mda"
    end
    if not (app and mode and path) then s.usage("APP, MODE and PACKAGE are required") end

    -- 1. check everything before changing anything
    local size = mx.package_size(path) -- "cannot open /x.mda: No such file or directory"
    if size > 1024 ^ 3 then s.fail("%s is %s: Mendix Cloud refuses packages over 1 GB", name, human(size)) end
    args.app, args.mode = app, mode
    local c = checked_release(args, s, { what = name, needs = release.package_constants(path) })
    s.log("check", "package %s (%s)", name, human(size))

    -- 2. upload (v2: a job that ends Completed and carries the PackageId)
    s.log("upload", "%s (%s) to app %s", name, human(size), app)
    local upload = mx.v2.upload_package(app, path, { name = name, on_progress = not s.json and mx.progress("upload " .. name) or nil })
    local uploaded = upload:wait{ timeout = 900, on_progress = function(_, status)
      s.log("upload", "job %s: %s", upload.id, status)
    end }
    local package_id = uploaded.PackageId
    s.log("upload", "package %s ready", tostring(package_id))
    local pkg = not s.dry_run and mx.build.get_package(app, package_id) or {}

    -- 3. stop, transport, settings, start, wait, verify, record (and put back on failure)
    return release.run(s, { action = "deploy", app = app, mode = mode, package_id = package_id, package_name = name,
      model_version = pkg.Version, previous = c.previous, snapshot = c.snapshot, settings = c.settings,
      settings_file = args.settings, rollback = args.rollback_on_failure, ledger = ledger.path(args.ledger) })
  end,
}
