-- A Mendix for Private Cloud environment from a manifest file (Private Cloud Deploy API):
-- `apply` creates it, or updates it through a read-modify-write (the current manifest, with the
-- file's fields laid over it: objects merged key by key, lists and values, null included,
-- replaced; `[]` and `null` are kept exactly), waits for the job and prints the resulting
-- manifest; `delete` removes it (confirmed).
--
--   mxdeploy run pc-environment apply MANIFEST.json --app APP_ID
--   mxdeploy --yes run pc-environment delete APP_ID ENV_ID
local steps = require("mxdeploy.steps")
local settings = require("mxdeploy.steps.settings") -- pretty: sorted keys, [] and null kept

-- `over` laid onto `base` (both decoded JSON): objects merge, everything else replaces.
local function overlay(base, over)
  if type(base) ~= "table" or type(over) ~= "table" or mx.json.is_array(base) or mx.json.is_array(over) then
    return over
  end
  for k, v in pairs(over) do base[k] = overlay(base[k], v) end
  return base
end

local function read_manifest(s, path)
  local f, err = io.open(path, "rb")
  if not f then s.fail("cannot read the manifest %s", tostring(err)) end
  local text = f:read("a")
  f:close()
  local ok, m = pcall(mx.json.decode, text)
  if not ok or type(m) ~= "table" or type(m.environment) ~= "table" then
    s.fail("%s: not an environment manifest (a JSON object with an \"environment\")", path)
  end
  if type(m.environment.id) ~= "string" then s.fail("%s: environment.id is required", path) end
  return m
end

steps.script{
  name = "pc-environment",
  description = "Create or update a Private Cloud environment from a manifest (read-modify-write), or delete one",
  requires = ">= 0.2",
  epilog = "Needs MENDIX_TOKEN (mx:deployment:write). The manifest is the API's own (manifestVersion,\n"
    .. "environment{id, properties, deployment, container, provider, services, ...}).",
  arguments = function(p)
    p:command_target("command")
    local apply = p:command("apply", "Create or update the environment the manifest describes; wait; print the result")
    apply:argument("manifest", "Manifest file (JSON)")
    apply:option("--app", "The Private Cloud app ID"):argname("APP_ID"):args(1)
    local delete = p:command("delete", "Delete an environment (confirmed)")
    delete:argument("app", "The Private Cloud app ID")
    delete:argument("env", "The environment ID")
    for _, c in ipairs({ apply, delete }) do
      c:flag("--dry-run", "Send only reads; print the changes instead of making them (as mxdeploy --dry-run).")
    end
  end,
  run = function(args, s)
    if args.command == "delete" then
      local m = mx.pc.get_environment(args.app, args.env) -- exists: a 404 names it
      s.log("delete", "%s/%s (%s)", args.app, args.env, tostring(m.environment.properties and m.environment.properties.name))
      local job = mx.pc.delete_environment(args.app, args.env) -- deletes are confirmed by the client
      job:wait{ timeout = 1800, on_progress = function(_, st) s.log("delete", "job %s", tostring(st)) end }
      s.log("done", "%s/%s %s", args.app, args.env, s.dry_run and "delete planned" or "deleted")
      return { app = args.app, environment = args.env, deleted = not s.dry_run }
    end
    if not args.app then s.usage("--app APP_ID is required") end
    local file = read_manifest(s, args.manifest)
    local id = file.environment.id
    local ok, current = pcall(mx.pc.get_environment, args.app, id)
    local job
    if ok then
      local manifest = overlay(current, file)
      s.log("update", "%s/%s: the current manifest with %s laid over it", args.app, id, args.manifest)
      if manifest.environment.properties and manifest.environment.properties.production then
        s.confirm(("update the production Private Cloud environment %s/%s"):format(args.app, id))
      end
      job = mx.pc.update_environment(args.app, id, manifest)
    elseif mx.errors.is(current, "http") and current.status == 404 then
      s.log("create", "%s/%s from %s", args.app, id, args.manifest)
      job = mx.pc.create_environment(args.app, file)
    else
      error(current, 0)
    end
    job:wait{ timeout = 1800, on_progress = function(_, st) s.log("job", "%s", tostring(st)) end }
    if s.dry_run then return { app = args.app, environment = id, planned = true } end
    local result = mx.pc.get_environment(args.app, id)
    s.log("done", "%s/%s applied", args.app, id)
    if not s.json then io.stdout:write(settings.pretty(result), "\n") end
    return result
  end,
}
