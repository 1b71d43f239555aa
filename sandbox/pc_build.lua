-- Private Cloud Build API (personal access token), mounted at /privatecloud/api/v4 beside the
-- Private Cloud Deploy API: the packages of an app, uploaded or built; both are jobs.
local U = require("mxdeploy.sandbox.util")
local world = require("mxdeploy.sandbox.world")
local jobs = require("mxdeploy.sandbox.pc_jobs")
local E = U.v4_error

local M = {}

local NEEDS = {
  pkg = function(ctx, p)
    local a = jobs.app(ctx, p.appId)
    local pkg = a and ctx.ix:owned("pcpkg", p.packageId, a)
    if not pkg then return nil, E(404, "Package not found") end
    return pkg, a
  end,
}

function jobs.effects.create_package(ctx, d, j)
  local a = jobs.app(ctx, d.appId, true)
  if not a then return { code = 404, message = "App not found" } end
  d.pkg.createdOn = U.iso(ctx.now):gsub("%.%d+Z$", "Z")
  a.packages[#a.packages + 1] = d.pkg
  ctx.ix:put("pcpkg", d.pkg.id, d.pkg, a)
  j.packageId = d.pkg.id
end

function jobs.effects.delete_package(ctx, d)
  local a = jobs.app(ctx, d.appId)
  local pkg = a and ctx.ix:owned("pcpkg", d.packageId, a)
  if not pkg then return { code = 404, message = "Package not found" } end
  world.remove(a.packages, pkg)
  ctx.ix:drop("pcpkg", d.packageId)
end

local function pkg_json(ctx, p, with_url, with_log)
  local t = { id = p.id, appId = p.appId, modelVersion = p.modelVersion, runtimeVersion = p.runtimeVersion,
    createdOn = p.createdOn, description = p.description or "", fileName = p.fileName,
    fileSize = math.tointeger(p.fileSize) or 0 }
  if with_url then t.url = { location = ctx.app.files_url .. "/files/pcpackages/" .. p.id .. ".mda", ttl = 900 } end
  if with_log then t.buildLog = p.buildLog or "Build log not available" end
  return { package = t }
end

function M.routes(r)
  local add = r.with(NEEDS)

  add("GET", "/apps/{appId}/packages", function(ctx, p)
    local a = jobs.app(ctx, p.appId)
    if not a then return E(404, "App not found") end
    local list = U.map(a.packages, function(x) return pkg_json(ctx, x).package end)
    local items, pg = jobs.page(ctx, list, 20, 50)
    if not items then return pg end
    return U.ok({ packages = items, pagination = pg })
  end)

  add("POST", "/apps/{appId}/packages", function(ctx, p)
    if not jobs.app(ctx, p.appId, true) then return E(404, "App not found") end
    local fields, filename = U.multipart(ctx.req)
    if not fields or not filename then return E(400, "A multipart/form-data body with a file is required") end
    local name = fields.fileName
    if not name or name == "" then return E(400, "fileName is required") end
    if not name:match("%.mda$") then name = name .. ".mda" end
    local pkg = { id = U.uuid(), appId = p.appId, modelVersion = name:match("(%d+%.%d+%.%d+%.%d+)") or "1.0.0.0",
      runtimeVersion = "9.24.0.2965", description = "Uploaded package", fileName = name,
      fileSize = ctx.req.body_size or 0 }
    return (jobs.new(ctx, "create_package", { appId = p.appId, pkg = pkg }))
  end)

  add("POST", "/apps/{appId}/packages/build", function(ctx, p)
    if not jobs.app(ctx, p.appId, true) then return E(404, "App not found") end
    local b = ctx.body
    if not b or type(b.branch) ~= "string" or b.branch == "" or type(b.revision) ~= "string" or b.revision == "" then
      return E(400, "branch and revision are required")
    end
    if b.version ~= nil and (type(b.version) ~= "string" or not b.version:match("^%d+%.%d+%.%d+$")) then
      return E(400, "version must be in x.y.z format")
    end
    local version = (b.version or "1.0.0") .. ".1"
    local pkg = { id = U.uuid(), appId = p.appId, modelVersion = version, runtimeVersion = "9.24.0.2965",
      description = b.description or "", fileName = b.branch:gsub("/", "-") .. "-" .. version .. ".mda",
      fileSize = 15342295, buildLog = "Building " .. b.branch .. "@" .. b.revision .. "\nBuild succeeded" }
    local resp, j = jobs.new(ctx, "create_package", { appId = p.appId, pkg = pkg })
    j.build_log = "Building " .. b.branch .. "@" .. b.revision
    return resp
  end)

  add("GET", "/apps/{appId}/packages/{packageId}", { needs = "pkg" }, function(ctx, _, pkg)
    return U.ok(pkg_json(ctx, pkg, ctx.q.url == "true", ctx.q.log == "true"))
  end)

  add("DELETE", "/apps/{appId}/packages/{packageId}", { needs = "pkg" }, function(ctx, p)
    return (jobs.new(ctx, "delete_package", { appId = p.appId, packageId = p.packageId }))
  end)
end

return M
