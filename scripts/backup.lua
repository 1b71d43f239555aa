-- Back up an environment: create a snapshot and wait; with OUTPUT also create an archive of it,
-- wait, and download it (the archive URL is fetched without credentials). OUTPUT is checked to be
-- writable before anything is made.
--
--   mxdeploy run backup APP MODE [OUTPUT] [--database-only]
--   mxdeploy --sandbox --yes run backup calc Production backup.tar.gz
local steps = require("mxdeploy.steps")

-- Can `path` be written (without creating it)?
local function writable(path)
  local dir = path:match("^(.*)/[^/]*$") or "."
  if dir == "" then dir = "/" end
  local q = function(p) return "'" .. p:gsub("'", "'\\''") .. "'" end
  return os.execute(("test -d %s -a -w %s -a ! -d %s -a \\( ! -e %s -o -w %s \\)"):format(q(dir), q(dir), q(path), q(path), q(path))) == true
end

steps.script{
  name = "backup",
  description = "Back up an environment: snapshot (waited); with FILE also archive and download it",
  requires = ">= 0.2",
  arguments = function(p)
    p:argument("app", "App ID (the subdomain)")
    p:argument("mode", "Environment (Test, Acceptance, Production, ...)")
    p:argument("output", "Archive file to write (without it: only the snapshot)"):args("?")
    p:flag("--database-only", "Archive only the database (no files)")
  end,
  run = function(args, s)
    local app_id, mode = args.app, args.mode
    local output = args.output
    local data_type = args.database_only and "database_only" or "files_and_database"
    if args.database_only and not output then s.usage("--database-only describes the archive: give a FILE") end
    if output and not writable(output) then s.fail("cannot write %s (checked before making anything)", output) end
    local app = mx.v1.get_app(app_id)
    local env = mx.v1.get_environment(app_id, mode)
    s.confirm_change(app_id, mode, "back up")
    local snap = mx.backups.create_snapshot(app.ProjectId, env.EnvironmentId, { comment = "mxdeploy run backup" })
    s.log("snapshot", "%s requested", snap.id)
    snap:wait{ timeout = 3600, on_progress = function(_, st) s.log("snapshot", "%s", st) end }
    if not output then
      s.log("done", "snapshot %s of %s/%s %s", tostring(snap.id), app_id, mode, s.dry_run and "(planned)" or "completed")
      return { app = app_id, mode = mode, snapshot = snap.id }
    end
    local archive = mx.backups.create_archive(app.ProjectId, env.EnvironmentId, snap.id, { data_type = data_type })
    s.log("archive", "%s requested (%s)", archive.id, data_type)
    local ready = archive:wait{ timeout = 3600, on_progress = function(_, st) s.log("archive", "%s", st) end }
    mx.backups.download_archive(ready, output)
    if s.dry_run then
      return { app = app_id, mode = mode, output = output, planned = true }
    end
    local f = assert(io.open(output, "rb"))
    local size = f:seek("end")
    f:close()
    s.log("saved", "%s (%d bytes)", output, size)
    return { app = app_id, mode = mode, snapshot = snap.id, archive = archive.id, output = output, bytes = size }
  end,
}
