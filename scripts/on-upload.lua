-- Deploy every package uploaded to an app, as Mendix announces it: serve webhook deliveries and,
-- for each verified `package.uploaded` event of the app, transport that package to the
-- environment (stopping it first when it runs), start it and wait until it has started.
--
--   MXDEPLOY_WEBHOOK_SECRET=... mxdeploy scripts/on-upload.lua [--port N] [--address IP] [--once] APP MODE
--
-- The secret is the webhook's validationSecret (never on the command line). The receiver listens
-- on 127.0.0.1 unless --address is given (put a TLS-terminating proxy in front of it). The event
-- names the package file; its PackageId is found with the Build API's package list. Deployments
-- run one after another; other deliveries are received meanwhile. --once: stop after the first
-- deployment (exit status 1 when it failed). Credentials: MENDIX_USERNAME and MENDIX_APIKEY.

local mx = mx or require("mxdeploy")

local log = mx.logger()

local positional, port, address, once = {}, 0, nil, false
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--port" then port = math.tointeger(tonumber(arg[i + 1])); i = i + 1
  elseif a == "--address" then address = arg[i + 1]; i = i + 1
  elseif a == "--once" then once = true
  else positional[#positional + 1] = a end
  i = i + 1
end
local app, mode = positional[1], positional[2]
local secret = os.getenv("MXDEPLOY_WEBHOOK_SECRET")
if not (app and mode and port) or not secret or secret == "" then
  io.stderr:write("usage: MXDEPLOY_WEBHOOK_SECRET=... mxdeploy scripts/on-upload.lua [--port N] [--address IP] [--once] APP MODE\n")
  os.exit(2)
end

local project = mx.v1.get_app(app).ProjectId -- events name the project: only this app's are deployed

local function deploy(event)
  local package_id
  for _, p in ipairs(mx.build.list_packages(app)) do
    if p.Name == event.name and p.Status == "Succeeded" then package_id = p.PackageId end
  end
  if not package_id then error(("no ready package named %s in app %s"):format(tostring(event.name), app), 0) end
  local env = mx.v1.get_environment(app, mode)
  if env.Status == "Running" or env.Status == "Starting" then
    mx.v1.stop_environment(app, mode)
    log("stop", "%s/%s stopped", app, mode)
  end
  mx.v1.transport_package(app, mode, { PackageId = package_id })
  log("transport", "%s (%s) -> %s/%s", event.name, package_id, app, mode)
  local start = mx.v1.start_environment(app, mode, { AutoSyncDb = true })
  start:wait{ timeout = 1800 }
  log("done", "%s/%s runs %s", app, mode, tostring(event.modelVersion or event.name))
end

local previous, failed
local receiver
receiver = mx.webhooks.serve{ port = port, address = address, secret = secret,
  on_event = function(event, delivery)
    if type(event) ~= "table" or event.eventType ~= "package.uploaded" then
      log("skip", "delivery %s: event %s", delivery.id, type(event) == "table" and tostring(event.eventType) or "?")
      return
    end
    if event.projectId ~= project then
      log("skip", "delivery %s: package of another app (%s)", delivery.id, tostring(event.projectId))
      return
    end
    log("event", "delivery %s: %s uploaded", delivery.id, tostring(event.name))
    local before = previous
    previous = mx.current()
    if before then pcall(before.wait, before) end -- one deployment at a time
    local ok, err = pcall(deploy, event)
    if not ok then
      if mx.errors.is(err, "interrupted") then error(err, 0) end
      failed = true
      log("failed", "%s: %s", tostring(event.name), tostring(err))
    end
    if once then receiver:close() end
  end }
log("listen", "webhook deliveries on %s (deploying app %s to %s)", receiver.url, app, mode)
receiver:wait()
receiver:settle()
if failed then os.exit(1) end
