-- Mendix Cloud deployment packages (MDA files), as Deploy v1, the Build API and Deploy v2 see
-- them: their status over (simulated) time, their JSON, uploads and downloads.
local U = require("mxdeploy.sandbox.util")
local world = require("mxdeploy.sandbox.world")
local json = U.json
local E = U.mx_error

local M = {}

-- Status of a package from its recorded history: builds and uploads progress with time.
function M.status(ctx, p)
  if p.kind == "build" then
    return (U.phase({ { "Queued", ctx.d.build_queued }, { "Building", ctx.d.build_building },
      { p.fail and "Failed" or "Succeeded", 0 } }, ctx.sim(p.t0)))
  elseif p.kind == "upload" then
    return (U.phase({ { "Uploading", ctx.d.upload_queued + ctx.d.upload_running },
      { p.fail and "Failed" or "Succeeded", 0 } }, ctx.sim(p.t0)))
  end
  return p.Status or "Succeeded"
end

function M.json(ctx, p, with_url)
  local t = {
    PackageId = p.PackageId, Name = p.Name, Description = p.Description or "", Version = p.Version,
    Creator = p.Creator or "Sandbox User", CreationDate = p.CreationDate, Size = p.Size,
    Status = M.status(ctx, p), ExpiryDate = json.null,
  }
  if with_url then
    t.Url = { Location = ctx.app.files_url .. "/files/packages/" .. p.PackageId .. ".mda", TTL = 900 }
  end
  return t
end

function M.add(ctx, app, p)
  app.packages[#app.packages + 1] = p
  ctx.ix:put("pkg", p.PackageId, p, app)
  return p
end

function M.remove(ctx, app, p)
  world.remove(app.packages, p)
  ctx.ix:drop("pkg", p.PackageId)
end

-- The constants a package declares. The sandbox's manifest: a line
--   mxdeploy-constants: Module.Name1, Module.Name2
-- anywhere in the first 64 KiB of the package's bytes (e.g. an uncompressed zip entry, or the
-- demo package's text). nil when there is none. Seeded packages list them as `Constants = {...}`.
function M.manifest_constants(bytes)
  local line = bytes:match("mxdeploy%-constants:[ \t]*([^\r\n]*)")
  if not line then return nil end
  local names = {}
  for name in line:gmatch("[^,%s]+") do names[#names + 1] = name end
  return names
end

-- A multipart upload (v1 and v2 upload_package) becomes a new package of `app`.
function M.record_upload(ctx, app, kind)
  local q = ctx.q
  local fields, filename, size, offset = U.multipart(ctx.req)
  if not fields or not filename or (ctx.req.body_size or 0) == 0 then
    return nil, E(500, "INVALID_PACKAGE", "Failed to process the deployment package.")
  end
  if kind == "v2" and (size or ctx.req.body_size) > 1024 * 1024 * 1024 then -- the package, not the envelope
    return nil, E(400, "PACKAGE_TOO_LARGE", "Files bigger than 1 GB cannot be uploaded.")
  end
  local name = q.name or "default.mda"
  local constants = M.manifest_constants(U.body_head(ctx.req, 65536):sub((offset or 0) + 1))
  local version = name:match("(%d+%.%d+%.%d+%.%d+)") or "1.0.0.0"
  local p = {
    PackageId = U.uuid(), Name = name, Description = "Uploaded via the Deploy API", Version = version,
    Creator = ctx.user.name, CreationDate = U.ms(ctx.now), Size = size or ctx.req.body_size, kind = "upload",
    t0 = ctx.now, fail = ctx.job_fail and true or nil, MendixVersion = "9.24.0.2965", filename = filename,
    Constants = constants,
  }
  -- keep the uploaded bytes, so downloading the package gives back exactly what was uploaded
  if ctx.req.body_file and size and offset then
    local kept = ctx.req.body_file .. ".package"
    if os.rename(ctx.req.body_file, kept) then
      p.file, p.file_offset = kept, offset
      ctx.app.kept_files[#ctx.app.kept_files + 1] = kept
    end
  end
  M.add(ctx, app, p)
  -- package.uploaded deliveries go out when the upload is done (Uploading -> Succeeded)
  local ready_in = (ctx.d.upload_queued + ctx.d.upload_running) * (ctx.app.time_scale or 1)
  require("mxdeploy.sandbox.webhooks").package_uploaded(ctx, app, p, ready_in)
  return p
end

-- The package's bytes: the uploaded file when there was one, else a small placeholder.
function M.response(pkg)
  local r = { status = 200, headers = { ["Content-Type"] = "application/octet-stream",
    ["Content-Disposition"] = 'attachment; filename="' .. (pkg.Name or pkg.PackageId) .. '"' } }
  local kept = pkg.file and io.open(pkg.file, "rb")
  if kept then
    kept:close()
    r.file, r.file_offset, r.file_size = pkg.file, pkg.file_offset, math.tointeger(pkg.Size)
  else
    r.body = "PK-SANDBOX-MDA " .. pkg.PackageId .. " " .. (pkg.Name or "") .. "\n"
  end
  return r
end

return M
