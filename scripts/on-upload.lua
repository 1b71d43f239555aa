-- Deploy every package uploaded to an app, as Mendix announces it: serve webhook deliveries and,
-- for each verified `package.uploaded` event of the app, transport that package to the
-- environment (stopping it first when it runs), start it and wait until it has started.
--
--   MXDEPLOY_WEBHOOK_SECRET=... mxdeploy run on-upload [--port N] [--address IP] [--once] APP MODE
--
-- The secret is the webhook's validationSecret (never on the command line). The event names the
-- package file; its PackageId is found with the Build API's package list. Deployments run one
-- after another; other deliveries are received meanwhile.
local steps = require("mxdeploy.steps")

-- The PackageId of the ready package named `name` (the file name the event gives).
local function package_id(app, name)
  local id
  for _, p in ipairs(mx.build.list_packages(app)) do
    if p.Name == name and p.Status == "Succeeded" then id = p.PackageId end
  end
  return id
end

local function deploy(s, app, mode, event)
  local id = package_id(app, event.name)
  if not id then error(("no ready package named %s in app %s"):format(tostring(event.name), app), 0) end
  local env = mx.v1.get_environment(app, mode)
  if env.Status == "Running" or env.Status == "Starting" then
    mx.v1.stop_environment(app, mode)
    s.log("stop", "%s/%s stopped", app, mode)
  end
  mx.v1.transport_package(app, mode, { PackageId = id })
  s.log("transport", "%s (%s) -> %s/%s", event.name, id, app, mode)
  mx.v1.start_environment(app, mode, { AutoSyncDb = true }):wait{ timeout = 1800 }
  s.log("done", "%s/%s runs %s", app, mode, tostring(event.modelVersion or event.name))
end

steps.script{
  name = "on-upload",
  description = "Deploy every package uploaded to an app, as its webhook deliveries announce it",
  epilog = "The webhook's validationSecret comes from MXDEPLOY_WEBHOOK_SECRET (never the command line).\n"
    .. "The receiver listens on 127.0.0.1 unless --address is given (put a TLS-terminating proxy in\n"
    .. "front of it).",
  requires = ">= 0.2",
  arguments = function(p)
    p:argument("app", "App ID (the subdomain)")
    p:argument("mode", "Environment to deploy to (Test, Acceptance, Production, ...)")
    p:option("--port", "Port of the webhook receiver (0: a free one)", "0"):argname("N")
      :convert(function(v) return math.tointeger(tonumber(v)) end)
    p:option("--address", "Address to listen on (default 127.0.0.1)"):argname("IP")
    p:flag("--once", "Stop after the first deployment (exit status 1 when it failed)")
  end,
  run = function(args, s)
    local app, mode = args.app, args.mode
    if args.port < 0 or args.port > 65535 then s.usage("--port needs a port number from 0 to 65535") end
    local secret = os.getenv("MXDEPLOY_WEBHOOK_SECRET")
    if not secret or secret == "" then s.usage("set MXDEPLOY_WEBHOOK_SECRET to the webhook's validationSecret") end
    local project = mx.v1.get_app(app).ProjectId -- events name the project: only this app's are deployed
    s.confirm_change(app, mode, "deploy every uploaded package to")
    local previous, deployed, failed = nil, 0, 0
    local receiver
    receiver = mx.webhooks.serve{ port = args.port, address = args.address, secret = secret,
      on_event = function(event, delivery)
        if type(event) ~= "table" or event.eventType ~= "package.uploaded" then
          s.log("skip", "delivery %s: event %s", delivery.id, type(event) == "table" and tostring(event.eventType) or "?")
          return
        end
        if event.projectId ~= project then
          s.log("skip", "delivery %s: package of another app (%s)", delivery.id, tostring(event.projectId))
          return
        end
        s.log("event", "delivery %s: %s uploaded", delivery.id, tostring(event.name))
        local before = previous
        previous = mx.current()
        if before then pcall(before.wait, before) end -- one deployment at a time
        local ok, err = pcall(deploy, s, app, mode, event)
        if ok then
          deployed = deployed + 1
        else
          if mx.errors.is(err, "interrupted") then error(err, 0) end
          failed = failed + 1
          s.log("failed", "%s: %s", tostring(event.name), tostring(err))
        end
        if args.once then receiver:close() end
      end }
    s.log("listen", "webhook deliveries on %s (deploying app %s to %s)", receiver.url, app, mode)
    receiver:wait()
    receiver:settle()
    return { app = app, mode = mode, deployed = deployed, failed = failed }, failed > 0 and 1 or 0
  end,
}
