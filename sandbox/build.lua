-- Build API v1 (API key), mounted at /deploy/api/1 beside Deploy v1: the packages of an app,
-- builds from a revision (jobs that progress with time), package downloads.
local U = require("mxdeploy.sandbox.util")
local world = require("mxdeploy.sandbox.world")
local packages = require("mxdeploy.sandbox.packages")
local E = U.mx_error

local M = {}

local function pkg_of(message)
  return function(ctx, p)
    local a, err = world.app_of(ctx, p.AppId)
    if not a then return nil, err end
    local pkg = world.find_pkg(ctx, a, p.PackageId)
    if not pkg then return nil, E(404, "PACKAGE_NOT_FOUND", message) end
    return pkg, a
  end
end

local NEEDS = {
  app = function(ctx, p) return world.app_of(ctx, p.AppId) end,
  pkg = pkg_of("Package or build job not found."),
  ["pkg:get"] = pkg_of("Package or build job not found"), -- the docs' message for a GET, no period
}

function M.routes(r)
  local add = r.with(NEEDS)

  add("GET", "/apps/{AppId}/packages", { needs = "app" }, function(ctx, _, a)
    return U.ok(U.map(a.packages, function(x) return packages.json(ctx, x) end))
  end)

  add("POST", "/apps/{AppId}/packages", { needs = "app" }, function(ctx, _, a)
    local b = ctx.body
    if not b or type(b.Revision) ~= "string" and type(b.Revision) ~= "number" or type(b.Version) ~= "string" then
      return E(400, "INVALID_PARAMETERS", "Not enough parameters given. Please set Revision and Version parameters.")
    end
    if not b.Version:match("^%d+%.%d+%.%d+$") then
      return E(400, "INVALID_VERSION", "The Version parameter does not contain a valid version string. " ..
        "Please provide a version with a major, minor and patch number, like '2.3.5'.")
    end
    local branch = b.Branch or "main"
    local pkg = packages.add(ctx, a, {
      PackageId = U.uuid(), Name = (branch:gsub("/", "-")) .. "-" .. b.Version .. "." .. tostring(b.Revision) .. ".mda",
      Version = b.Version .. "." .. tostring(b.Revision), Description = b.Description or "",
      Creator = ctx.user.name, CreationDate = U.ms(ctx.now), Size = 15342295, kind = "build", t0 = ctx.now,
      fail = ctx.job_fail and true or nil, MendixVersion = "9.24.0.2965",
    })
    return U.ok({ PackageId = pkg.PackageId })
  end)

  add("GET", "/apps/{AppId}/packages/{PackageId}", { needs = "pkg:get" }, function(ctx, _, pkg)
    return U.ok(packages.json(ctx, pkg, ctx.q.url == "true"))
  end)

  add("DELETE", "/apps/{AppId}/packages/{PackageId}", { needs = "pkg" }, function(ctx, _, pkg, a)
    for _, e in ipairs(a.environments) do
      if e.PackageId == pkg.PackageId then return E(409, "PACKAGE_IN_USE", "Package is still in use.") end
    end
    packages.remove(ctx, a, pkg)
    return U.response(200)
  end)

  add("GET", "/apps/{AppId}/packages/{PackageId}/download", { needs = "pkg" }, function(ctx, _, pkg)
    if packages.status(ctx, pkg) ~= "Succeeded" then return E(500, "BUILD_NOT_SUCCEEDED", "Build not successful finished.") end
    return packages.response(pkg)
  end)
end

return M
