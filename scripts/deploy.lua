-- Deploy a package to a Mendix Cloud environment: upload it (Deploy API v2, waits for the upload
-- job), transport it to the environment (stopping the environment first when it runs), start the
-- environment and wait until it has started.
--
--   mxdeploy scripts/deploy.lua [--dry-run] APP MODE PACKAGE.mda
--   mxdeploy scripts/deploy.lua [--dry-run] --branch NAME [--version X.Y.Z] APP MODE
--   mxdeploy --sandbox scripts/deploy.lua                 (calc / Test / a generated demo package)
--
-- --branch builds the newest commit of the branch (App Repository API, then the Build API; the
-- version defaults to 1.0.0) instead of uploading a file; it also needs MENDIX_TOKEN (scope
-- mx:modelrepository:repo:read).
--
-- --dry-run checks what it can without changing anything (the app, the environment, the package
-- file) and prints the plan; it sends only GET requests.
--
-- APP is the v1 AppId (the subdomain, e.g. "calc"); MODE is Test, Acceptance, Production or a
-- flexible environment's name. Credentials: MENDIX_USERNAME and MENDIX_APIKEY (or a profile of
-- the credentials file). Exit status 1 with one line on stderr when a step fails.

local mx = mx or require("mxdeploy")

local log = mx.logger() -- "[  12.3s] step      message" lines on stdout

local human = mx.format_size -- the formatter of mx.progress too: one size, written one way

local sandbox = package.loaded["mxdeploy.active_sandbox"]
local positional, dry_run, branch, version = {}, false, nil, nil
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--dry-run" then dry_run = true
  elseif a == "--branch" then branch, i = arg[i + 1], i + 1
  elseif a == "--version" then version, i = arg[i + 1], i + 1
  else positional[#positional + 1] = a end
  i = i + 1
end
local app, mode, package_path = positional[1], positional[2], positional[3]
local generated
if branch then package_path = package_path or "" end
if not package_path and sandbox then
  -- a demo package for the simulated cloud (any bytes will do there)
  app, mode = app or "calc", mode or "Test"
  local reserved = os.tmpname() -- creates an empty file: removed with the package
  package_path = reserved .. ".mda"
  local f = assert(io.open(package_path, "wb"))
  f:write("PK\3\4", ("demo deployment archive\n"):rep(400))
  f:close()
  generated = { package_path, reserved }
end
if not (app and mode and package_path) then
  io.stderr:write("usage: mxdeploy scripts/deploy.lua [--dry-run] APP MODE PACKAGE.mda\n"
    .. "       mxdeploy scripts/deploy.lua [--dry-run] --branch NAME [--version X.Y.Z] APP MODE\n")
  os.exit(2)
end

-- The newest commit of `branch` built into a package (Build API job): its PackageId.
local function build_from_branch(plan_only)
  local project = mx.v1.get_app(app).ProjectId -- the App Repository names apps by ProjectId
  local head = mx.repository.get_branch(project, branch).latestCommit
  if plan_only then
    log("plan", "build %s at %s (%s) as version %s", branch, head.id, tostring(head.message), version or "1.0.0")
    return
  end
  log("build", "%s at %s (%s)", branch, head.id, tostring(head.message))
  local build = mx.build.build_package(app, { Branch = branch, Revision = head.id, Version = version or "1.0.0",
    Description = "mxdeploy: " .. branch .. " at " .. head.id })
  local built = build:wait{ timeout = 3600, on_progress = function(_, status) log("build", "package %s: %s", build.id, status) end }
  log("build", "package %s ready", built.PackageId)
  return built.PackageId
end

local ok, err = pcall(function()
  if branch then
    local env = mx.v1.get_environment(app, mode)
    local package_id = build_from_branch(dry_run)
    if dry_run then
      log("plan", "stop %s/%s if it runs, transport the package, start it and wait", app, mode)
      log("dry-run", "nothing was changed")
      return
    end
    if env.Status == "Running" or env.Status == "Starting" then
      mx.v1.stop_environment(app, mode)
      log("stop", "%s/%s stopped", app, mode)
    end
    mx.v1.transport_package(app, mode, { PackageId = package_id })
    log("transport", "package %s -> %s/%s", package_id, app, mode)
    mx.v1.start_environment(app, mode, { AutoSyncDb = true }):wait{ timeout = 1800 }
    local final = mx.v1.get_environment(app, mode)
    log("done", "%s/%s is %s with model version %s", app, mode, final.Status, tostring(final.ModelVersion))
    return
  end
  local name = package_path:match("([^/]+)$")
  if generated then name = "demo_1.0.0." .. os.time() % 100000 .. ".mda" end
  local size = mx.package_size(package_path) -- "cannot open /x.mda: No such file or directory"

  if dry_run then
    mx.v1.get_app(app) -- the app exists and these credentials may see it
    local env = mx.v1.get_environment(app, mode)
    log("plan", "upload %s (%s) to app %s (Deploy API v2) and wait for the package", name, human(size), app)
    if env.Status == "Running" or env.Status == "Starting" then
      log("plan", "stop %s/%s (it is %s)", app, mode, env.Status)
    end
    log("plan", "transport the package to %s/%s (now %s)", app, mode, tostring(env.ModelVersion))
    log("plan", "start %s/%s and wait until it has started", app, mode)
    log("dry-run", "nothing was changed")
    return
  end

  -- 1. upload (v2: a job that ends Completed and carries the PackageId)
  log("upload", "%s (%s) to app %s", name, human(size), app)
  local upload = mx.v2.upload_package(app, package_path,
    { name = name, on_progress = mx.progress("upload " .. name) })
  local uploaded = upload:wait{ timeout = 900, on_progress = function(_, status)
    log("upload", "job %s: %s", upload.id, status)
  end }
  local package_id = uploaded.PackageId
  log("upload", "package %s ready", package_id)

  -- 2. stop the environment when it runs (transport needs it stopped)
  local env = mx.v1.get_environment(app, mode)
  log("env", "%s/%s is %s", app, mode, env.Status)
  if env.Status == "Running" or env.Status == "Starting" then
    mx.v1.stop_environment(app, mode)
    log("stop", "%s/%s stopped", app, mode)
  end

  -- 3. transport; "MDA is still being processed" (503) is safe to repeat: nothing was applied
  for attempt = 1, 10 do
    local tok, terr = pcall(mx.v1.transport_package, app, mode, { PackageId = package_id })
    if tok then break end
    if not (mx.errors.is(terr, "http") and terr.status == 503 and attempt < 10) then error(terr, 0) end
    log("transport", "package still being processed; retrying")
    mx.sleep(attempt)
  end
  log("transport", "package %s -> %s/%s", package_id, app, mode)

  -- 4. start and wait for it (v1 start job: Starting -> Started)
  local start = mx.v1.start_environment(app, mode, { AutoSyncDb = true })
  local result = start:wait{ timeout = 1800, on_progress = function(_, status)
    log("start", "job %s: %s", start.id, status)
  end }
  log("start", "%s/%s %s", app, mode, start.already_done and "was already running" or result.Status)

  local final = mx.v1.get_environment(app, mode)
  log("done", "%s/%s is %s with model version %s", app, mode, final.Status, tostring(final.ModelVersion))
end)
if generated then for _, p in ipairs(generated) do os.remove(p) end end
if not ok then
  -- Ctrl-C is not a failed step: let it end the script as interrupted (exit status 130)
  if mx.errors.is(err, "interrupted") then error(err, 0) end
  io.stderr:write("deploy failed: ", tostring(err), "\n")
  os.exit(1)
end
