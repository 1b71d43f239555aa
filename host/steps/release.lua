-- mxdeploy.steps.release: the steps deploy, promote and rollback share on a Mendix Cloud
-- environment (Deploy API v1, Backups API v2), each recorded in the release ledger.
--
--   local release = require("mxdeploy.steps.release")
--   local app, env = release.check(s, app_id, mode)        -- exists, readable, not busy
--   local prev = release.running_package(app_id, mode)     -- {PackageId, Name, Version} or nil
--   local missing = release.missing_constants(app_id, mode, needs, settings)
--   local snap = release.backup(s, app, env, comment)       -- snapshot id (waited)
--   local result = release.run(s, {...})                    -- stop, transport, start, verify, record
--   release.change_options(p, rollback_help)               -- --settings, --rollback-on-failure, --ledger
--
-- Package constants: `release.package_constants(path)` reads the constants a package file
-- declares (the sandbox's manifest line `mxdeploy-constants: A, B` in its first 64 KiB, see
-- sandbox/packages.lua); a package without one declares none that can be checked before the
-- change, and the environment's settings are checked again after the transport, before the start.
local json = require("mxdeploy.json")
local ledger = require("mxdeploy.steps.ledger")

local M = {}

local function mx() return package.loaded["mxdeploy"] or require("mxdeploy") end

local function is_http(err, status, code)
  local m = mx()
  return m.errors.is(err, "http") and (not status or err.status == status) and (not code or err.code == code)
end

--- The options of a script that changes what runs (deploy, promote), on its argparse parser `p`.
function M.change_options(p, rollback_help)
  p:option("--settings", "Constants and custom settings (JSON, as settings export writes) applied before the start"):argname("FILE")
  p:flag("--rollback-on-failure", rollback_help)
  p:option("--ledger", "Release ledger (default $MXDEPLOY_LEDGER, else $XDG_STATE_HOME/mxdeploy/releases.jsonl)"):argname("FILE")
end

--- The app and environment, read before any change; fails when the environment is busy (a start
--- is running: the API would answer ENVIRONMENT_BUSY or APP_ALREADY_HAS_A_STARTING_JOB).
function M.check(s, app_id, mode)
  local m = mx()
  local app = m.v1.get_app(app_id) -- exists, and these credentials may see it
  local env = m.v1.get_environment(app_id, mode)
  if env.Status == "Starting" then
    s.fail("%s/%s is busy: a start is running (ENVIRONMENT_BUSY); nothing was changed, try again when it is done",
      app_id, mode)
  end
  return app, env
end

--- The package the environment runs now ({PackageId, Name, Version, ...}), or nil when none.
function M.running_package(app_id, mode)
  local ok, pkg = pcall(mx().v1.get_environment_package, app_id, mode)
  if ok then return pkg end
  if is_http(pkg, 404) then return nil end
  error(pkg, 0)
end

--- The constants a package file declares (see the top of this file), or nil when it says nothing.
function M.package_constants(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local head = f:read(65536) or ""
  f:close()
  local line = head:match("mxdeploy%-constants:[ \t]*([^\r\n]*)")
  if not line then return nil end
  local names = {}
  for name in line:gmatch("[^,%s]+") do names[#names + 1] = name end
  return names
end

local function has_value(v) return v ~= nil and v ~= json.null and v ~= "" end

--- A settings file (the shape of `settings export` and GET .../settings): {Constants = [{Name,
--- Value}], CustomSettings = [...], ...}. Raises a one-line error naming the file.
function M.read_settings(path)
  local f, err = io.open(path, "rb")
  if not f then error(mx().errors.new("failure", { message = "cannot read settings " .. tostring(err) }), 0) end
  local text = f:read("a")
  f:close()
  local ok, v = pcall(json.decode, text)
  if not ok or type(v) ~= "table" or json.is_array(v) then
    error(mx().errors.new("failure", { message = "settings " .. path .. ": not a JSON object ("
      .. tostring(ok and "an array or value" or v) .. ")" }), 0)
  end
  return v
end

--- Names (in order) of `needs` that neither the environment's settings nor `settings` (a settings
--- file's table) give a value. `needs` nil: every constant the environment lists without a value.
function M.missing_constants(app_id, mode, needs, settings)
  local have, listed = {}, {}
  local current = mx().v1.get_environment_settings(app_id, mode)
  for _, c in ipairs(current.Constants or {}) do
    listed[#listed + 1] = c.Name
    if has_value(c.Value) then have[c.Name] = true end
  end
  for _, c in ipairs(settings and settings.Constants or {}) do
    if has_value(c.Value) and c.Value ~= "<secret>" then have[c.Name] = true end
  end
  local missing = {}
  for _, name in ipairs(needs or listed) do
    if not have[name] then missing[#missing + 1] = name end
  end
  return missing
end

--- Fails with one line naming each constant without a value.
function M.fail_missing(s, app_id, mode, missing, when)
  for _, name in ipairs(missing) do
    s.warn("missing constant: %s has no value in %s/%s (give it with --settings FILE)", name, app_id, mode)
  end
  s.fail("%d constant%s without a value in %s/%s (MISSING_CONSTANT): %s; %s", #missing, #missing == 1 and "" or "s",
    app_id, mode, table.concat(missing, ", "), when)
end

--- A snapshot of the environment (Backups API), waited for; its id.
function M.backup(s, app, env, comment)
  local m = mx()
  local snap = m.backups.create_snapshot(app.ProjectId, env.EnvironmentId, { comment = comment })
  s.log("backup", "snapshot %s of %s requested", tostring(snap.id), env.Mode)
  snap:wait{ timeout = 3600, on_progress = function(_, st) s.log("backup", "snapshot %s", tostring(st)) end }
  return snap.id
end

-- Transport, repeating "MDA is still being processed" (503: nothing was applied).
local function transport(s, app_id, mode, package_id)
  local m = mx()
  for attempt = 1, 10 do
    local ok, err = pcall(m.v1.transport_package, app_id, mode, { PackageId = package_id })
    if ok then return end
    if not (is_http(err, 503) and attempt < 10) then error(err, 0) end
    s.log("transport", "package still being processed; retrying")
    m.sleep(attempt)
  end
end

local function stop(s, app_id, mode)
  local m = mx()
  local env = m.v1.get_environment(app_id, mode)
  if env.Status == "Running" or env.Status == "Starting" then
    m.v1.stop_environment(app_id, mode)
    s.log("stop", "%s/%s %s", app_id, mode, s.dry_run and "(planned)" or "stopped")
    return true
  end
  return false
end

local function start(s, app_id, mode)
  local m = mx()
  local job = m.v1.start_environment(app_id, mode, { AutoSyncDb = true })
  local result = job:wait{ timeout = 1800, on_progress = function(_, status)
    s.log("start", "job %s: %s", tostring(job.id), tostring(status))
  end }
  s.log("start", "%s/%s %s", app_id, mode, job.already_done and "was already running" or tostring(result and result.Status))
end

-- Stop, transport, start and wait: the whole change of one package. Returns the environment.
local function put(s, app_id, mode, package_id, o)
  local stopped = stop(s, app_id, mode)
  local ok, err = pcall(transport, s, app_id, mode, package_id)
  if not ok then
    -- nothing was transported (e.g. 403 TRANSPORT_NOT_ALLOWED): what ran before is still there
    if stopped and not mx().errors.is(err, "interrupted") then
      s.log("restart", "the transport failed; starting %s/%s again with the package it ran", app_id, mode)
      local rok, rerr = pcall(start, s, app_id, mode)
      if not rok then s.log("restart", "failed too: %s", tostring(rerr)) end
    end
    error(err, 0)
  end
  s.log("transport", "package %s -> %s/%s", package_id, app_id, mode)
  if o and o.settings then
    local body = {}
    for _, k in ipairs({ "Constants", "CustomSettings", "ScheduledEvents" }) do
      if o.settings[k] then
        body[k] = json.array({})
        for _, c in ipairs(o.settings[k]) do
          if c.Value ~= "<secret>" then body[k][#body[k] + 1] = { Name = c.Name, Value = c.Value } end -- kept as is
        end
      end
    end
    mx().v1.set_environment_settings(app_id, mode, body)
    s.log("settings", "applied %s to %s/%s", o.settings_file or "the settings", app_id, mode)
  end
  if o and o.check_constants and not s.dry_run then
    local missing = M.missing_constants(app_id, mode, nil, nil)
    if #missing > 0 then M.fail_missing(s, app_id, mode, missing, "the package is transported but not started") end
  end
  start(s, app_id, mode)
  return mx().v1.get_environment(app_id, mode)
end

--- The change and its record. o: app (v1 AppId), mode, package_id, package_name, model_version
--- (expected; nil: not checked), previous (running_package before), snapshot, action, source,
--- settings (table) / settings_file, rollback (bool: put back `previous` when the change fails),
--- ledger (path), extra (more fields for the ledger line). Returns the result table; raises (exit 1) when the change failed, after the
--- rollback and the ledger line.
function M.run(s, o)
  local m = mx()
  local app_id, mode = o.app, o.mode
  local record = { action = o.action, app = app_id, environment = mode, package_id = o.package_id,
    package_name = o.package_name, model_version = o.model_version,
    previous_package_id = o.previous and o.previous.PackageId or nil,
    previous_package_name = o.previous and o.previous.Name or nil, snapshot = o.snapshot or json.null,
    source = o.source }
  for k, v in pairs(o.extra or {}) do record[k] = v end
  local function write(result, err)
    record.result = result
    record.error = err and tostring(err) or nil
    if s.dry_run then
      s.plan("record %s of %s in the ledger %s (%s)", o.action, tostring(o.package_name or o.package_id), o.ledger, result)
    else
      ledger.append(o.ledger, record)
      s.log("ledger", "%s %s recorded in %s", o.action, result, o.ledger)
    end
  end

  local ok, final = pcall(put, s, app_id, mode, o.package_id, { settings = o.settings, settings_file = o.settings_file,
    check_constants = true })
  local err = not ok and final or nil
  if ok and not s.dry_run then
    if final.Status ~= "Running" then
      err = m.errors.new("failure", { message = ("%s/%s is %s after the start"):format(app_id, mode, tostring(final.Status)) })
    elseif o.model_version and final.ModelVersion ~= o.model_version then
      err = m.errors.new("failure", { message = ("%s/%s reports model version %s, expected %s"):format(app_id, mode,
        tostring(final.ModelVersion), o.model_version) })
    end
  end
  if err then
    if m.errors.is(err, "interrupted") or m.errors.is(err, "cancelled") or m.errors.is(err, "refused") then error(err, 0) end
    s.log("failed", "%s", tostring(err))
    if o.rollback and o.previous and o.previous.PackageId ~= o.package_id then
      s.log("rollback", "putting back %s (%s), which ran before", tostring(o.previous.Name), o.previous.PackageId)
      local rok, rfinal = pcall(put, s, app_id, mode, o.previous.PackageId, nil)
      if rok then
        s.log("rollback", "%s/%s runs %s again (%s, model version %s)", app_id, mode, tostring(o.previous.Name),
          tostring(rfinal.Status), tostring(rfinal.ModelVersion))
        write("rolled back", err)
        error(m.errors.new("failure", { message = tostring(err) .. "; rolled back: " .. app_id .. "/" .. mode
          .. " runs " .. tostring(o.previous.Name) .. " again" }), 0)
      end
      s.log("rollback", "failed too: %s", tostring(rfinal))
      write("failed", tostring(err) .. "; rollback failed: " .. tostring(rfinal))
      error(m.errors.new("failure", { message = tostring(err) .. "; the rollback failed too: " .. tostring(rfinal) }), 0)
    elseif o.rollback then
      s.log("rollback", "nothing to put back: %s/%s ran no other package before", app_id, mode)
    end
    write("failed", err)
    error(err, 0)
  end
  write("succeeded")
  if s.dry_run then
    s.log("verify", "%s/%s: model version %s (planned)", app_id, mode, tostring(o.model_version or "unchecked"))
  else
    s.log("done", "%s/%s is %s with model version %s", app_id, mode, final.Status, tostring(final.ModelVersion))
  end
  return { app = app_id, mode = mode, action = o.action, package_id = o.package_id, package = o.package_name,
    previous_package_id = record.previous_package_id, snapshot = o.snapshot, status = final.Status,
    model_version = final.ModelVersion, ledger = o.ledger }
end

return M
