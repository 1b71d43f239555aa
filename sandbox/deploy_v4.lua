-- Deploy API v4 (personal access token), mounted at /cloud/api/v4: apps, environments and
-- their permissions. appId is the v1 ProjectId, environmentId the EnvironmentId.
local U = require("mxdeploy.sandbox.util")
local world = require("mxdeploy.sandbox.world")
local E = U.v4_error

local M = {}

local member = U.member

local function get_app(ctx, id)
  local a = ctx.ix:get("project", id)
  if a and member(a, ctx.user) then return a end
  return nil, E(404, "App not found")
end

local NEEDS = {
  app = function(ctx, p) return get_app(ctx, p.appId) end,
  env = function(ctx, p)
    local a, err = get_app(ctx, p.appId)
    if not a then return nil, err end
    local e = ctx.ix:owned("env", p.environmentId, a)
    if not e then return nil, E(404, "Environment not found") end
    return e, a
  end,
}

local STATE = { Running = "running", Stopped = "stopped", Empty = "notdeployed" }

local function env_json(ctx, a, e, expand)
  local t = { id = e.EnvironmentId, appId = a.ProjectId, name = e.Mode, state = STATE[e.Status] or "stopped",
    isProduction = e.Production and true or false, url = e.Url, planName = e.planName or "S21-STANDARD",
    dbVersion = e.dbVersion or "14" }
  local p = e.PackageId and world.find_pkg(ctx, a, e.PackageId)
  if expand and p then
    t.package = { id = p.PackageId, appId = a.ProjectId, modelVersion = p.Version,
      runtimeVersion = p.MendixVersion or "9.24.0.2965",
      createdOn = U.iso((p.CreationDate or 0) / 1000):gsub("%.%d+Z$", "Z"),
      description = p.Description or "", fileName = p.Name, fileSize = math.tointeger(p.Size) or 0 }
  end
  return t
end

local function app_json(ctx, a)
  local tc = a.technicalContact or {}
  return { id = a.ProjectId, name = a.Name, licenseType = a.licenseType or "licensed", subdomain = a.AppId,
    technicalContact = { userId = tc.userId or "", name = tc.name or "", status = tc.status or "active" },
    region = a.region or "prod2-eu-central-1" }
end

local function page(ctx, list)
  return U.v4_page(ctx, list, 20, 100, true)
end

local function perms_of(e)
  e.permissions = e.permissions or U.array()
  return e.permissions
end

local PERM_KEYS = { "canDeployApp", "canManageBackups", "canViewAlerts", "canAccessAPI", "canViewLogs", "canManagePrivileges" }

function M.routes(r)
  local add = r.with(NEEDS)

  add("GET", "/apps", function(ctx)
    local lt = ctx.q.licenseType
    if lt and lt ~= "free" and lt ~= "licensed" then
      return E(400, "Request validation errors", { { name = "query-parameter", reason = "Value '" .. lt .. "' is not supported" } })
    end
    local list = {}
    for _, a in ipairs(ctx.world.apps) do
      if member(a, ctx.user) and (not lt or a.licenseType == lt) then list[#list + 1] = app_json(ctx, a) end
    end
    local items, pg = page(ctx, list)
    if not items then return pg end
    return U.ok({ apps = items, pagination = pg })
  end)

  add("GET", "/apps/{appId}", { needs = "app" }, function(ctx, _, a)
    return U.ok(app_json(ctx, a))
  end)

  add("PATCH", "/apps/{appId}", { needs = "app" }, function(ctx, _, a)
    local b = ctx.body
    local uid = b and type(b.technicalContact) == "table" and b.technicalContact.userId
    if type(uid) ~= "string" or uid == "" then
      return E(400, "Request validation errors", { { name = "technicalContact.userId", reason = "A userId is required" } })
    end
    if not member(a, { username = uid }) then
      return E(400, "The user is not a member of this app", { { name = "technicalContact.userId", reason = "Unknown team member '" .. uid .. "'" } })
    end
    local u = ctx.app.users[uid]
    a.technicalContact = { userId = uid, name = u and u.name or uid, status = "active" }
    return U.response(200)
  end)

  local function envs(ctx, a)
    local list = {}
    for i, e in ipairs(a.environments) do list[#list + 1] = { e = e, i = i } end
    local sort = ctx.q.sort
    if sort and sort ~= "" then
      local dir, key = sort:match("^([%+%-]?)(%a+)$")
      if not key or (key ~= "name" and key ~= "index") then
        return nil, E(400, "Request validation errors", { { name = "query-parameter", reason = "Unsupported sort '" .. sort .. "'" } })
      end
      table.sort(list, function(x, y)
        local kx, ky
        if key == "name" then kx, ky = x.e.Mode, y.e.Mode else kx, ky = x.i, y.i end
        if dir == "-" then return kx > ky end
        return kx < ky
      end)
    end
    local out = {}
    for _, x in ipairs(list) do out[#out + 1] = x.e end
    return out
  end

  add("GET", "/apps/{appId}/environments", { needs = "app" }, function(ctx, _, a)
    local list, serr = envs(ctx, a)
    if not list then return serr end
    local expand = ctx.q.expand == "package"
    local js = {}
    for _, e in ipairs(list) do js[#js + 1] = env_json(ctx, a, e, expand) end
    local items, pg = page(ctx, js)
    if not items then return pg end
    return U.ok({ environments = items, pagination = pg })
  end)

  add("GET", "/apps/{appId}/environments/{environmentId}", { needs = "env" }, function(ctx, p, e, a)
    return U.ok(env_json(ctx, a, e, ctx.q.expand == "package"))
  end)

  add("GET", "/apps/{appId}/environments/{environmentId}/permissions", { needs = "env" }, function(ctx, p, e, a)
    local list = {}
    for _, x in ipairs(perms_of(e)) do
      if not ctx.q.userId or x.userId == ctx.q.userId then
        local t = { member = { userId = x.userId } }
        for _, k in ipairs(PERM_KEYS) do t[k] = tostring(x[k] and true or false) end
        list[#list + 1] = t
      end
    end
    local items, pg = page(ctx, list)
    if not items then return pg end
    return U.ok({ technicalContact = (a.technicalContact or {}).userId or "", permissions = items, pagination = pg })
  end)

  add("PATCH", "/apps/{appId}/environments/{environmentId}/permissions", { needs = "env" }, function(ctx, p, e, a)
    local b = ctx.body
    if not b or type(b.permissions) ~= "table" then
      return E(400, "Request validation errors", { { name = "permissions", reason = "An array of permissions is required" } })
    end
    local out = U.array()
    for _, x in ipairs(b.permissions) do
      local uid = type(x.member) == "table" and x.member.userId
      if type(uid) ~= "string" then
        return E(400, "Request validation errors", { { name = "member.userId", reason = "A userId is required" } })
      end
      if not member(a, { username = uid }) then
        return E(404, "User '" .. uid .. "' is not a member of this app")
      end
      local have = U.find(perms_of(e), "userId", uid)
      if not have then
        have = { userId = uid }
        e.permissions[#e.permissions + 1] = have
      end
      local echo = { member = { userId = uid } }
      for _, k in ipairs(PERM_KEYS) do
        if x[k] ~= nil then
          if type(x[k]) ~= "boolean" then
            return E(400, "Request validation errors", { { name = k, reason = "must be a boolean" } })
          end
          have[k] = x[k]
        end
        echo[k] = have[k] and true or false
      end
      out[#out + 1] = echo
    end
    return U.ok({ permissions = out })
  end)
end

function M.prepare(world)
  for _, a in ipairs(world.apps) do
    for _, e in ipairs(a.environments) do
      if not e.permissions then
        e.permissions = U.array()
        for _, m in ipairs(a.members or {}) do
          local full = m == "sandbox@example.com"
          e.permissions[#e.permissions + 1] = { userId = m, canDeployApp = full, canManageBackups = full,
            canViewAlerts = true, canAccessAPI = full, canViewLogs = true, canManagePrivileges = full }
        end
      end
    end
  end
end

return M
