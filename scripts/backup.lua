-- Back up an environment and download the archive: create a snapshot, wait, create an archive
-- of it, wait, download it (the archive URL is fetched without credentials).
--
--   mxdeploy scripts/backup.lua APP MODE [OUTPUT] [--database-only]
--   mxdeploy --sandbox scripts/backup.lua calc Production backup.tar.gz

local mx = mx or require("mxdeploy")

local log = mx.logger() -- "[  12.3s] step      message" lines on stdout

local positional, data_type = {}, "files_and_database"
for _, a in ipairs(arg) do
  if a == "--database-only" then data_type = "database_only" else positional[#positional + 1] = a end
end
local app_id, mode = positional[1], positional[2]
if not (app_id and mode) then
  io.stderr:write("usage: mxdeploy scripts/backup.lua APP MODE [OUTPUT] [--database-only]\n")
  os.exit(2)
end
local output = positional[3] or ("%s-%s-%s.backup"):format(app_id, mode, os.date("!%Y%m%dT%H%M%SZ"))

local ok, err = pcall(function()
  local app = mx.v1.get_app(app_id)
  local env = mx.v1.get_environment(app_id, mode)
  local snap = mx.backups.create_snapshot(app.ProjectId, env.EnvironmentId, { comment = "scripts/backup.lua" })
  log("snapshot", "%s requested", snap.id)
  snap:wait{ timeout = 3600, on_progress = function(_, s) log("snapshot", "%s", s) end }
  local archive = mx.backups.create_archive(app.ProjectId, env.EnvironmentId, snap.id, { data_type = data_type })
  log("archive", "%s requested (%s)", archive.id, data_type)
  local ready = archive:wait{ timeout = 3600, on_progress = function(_, s) log("archive", "%s", s) end }
  mx.backups.download_archive(ready, output)
  local f = assert(io.open(output, "rb"))
  local size = f:seek("end")
  f:close()
  log("saved", "%s (%d bytes)", output, size)
end)
if not ok then
  -- Ctrl-C is not a failed step: let it end the script as interrupted (exit status 130)
  if mx.errors.is(err, "interrupted") then error(err, 0) end
  io.stderr:write("backup failed: ", tostring(err), "\n")
  os.exit(1)
end
