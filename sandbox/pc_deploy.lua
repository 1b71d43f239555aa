-- Private Cloud Deploy API (personal access token), mounted at /privatecloud/api/v4: clusters,
-- namespaces, apps, environments and the mxpc-cli downloads. Mutations are jobs (pc_jobs.lua).
local U = require("mxdeploy.sandbox.util")
local world = require("mxdeploy.sandbox.world")
local jobs = require("mxdeploy.sandbox.pc_jobs")
local E = U.v4_error

local M = {}

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local pcw, find_cluster, find_namespace, find_app, find_env = jobs.world, jobs.cluster, jobs.namespace, jobs.app, jobs.env
local new_job, page = jobs.new, jobs.page

local function pc_app(ctx, p)
  local a = find_app(ctx, p.appId)
  if not a then return nil, E(404, "App not found") end
  return a
end

local NEEDS = {
  app = pc_app,
  ["app:uuid"] = function(ctx, p) -- GET /apps/{appId} checks the id's form first
    if not p.appId:match(UUID) then return nil, E(400, "appId must be a UUID") end
    return pc_app(ctx, p)
  end,
  -- an environment of the app (and of the namespace, when the path names one)
  env = function(ctx, p)
    local a, err = pc_app(ctx, p)
    if not a then return nil, err end
    local e = find_env(ctx, a, p.environmentId)
    if not e or (p.namespaceId and e.namespaceId ~= p.namespaceId) then return nil, E(404, "Environment not found") end
    return e, a
  end,
  cluster = function(ctx, p)
    local c = find_cluster(ctx, p.clusterId)
    if not c then return nil, E(404, "Cluster not found") end
    return c
  end,
  namespace = function(ctx, p)
    local c = find_cluster(ctx, p.clusterId)
    if not c then return nil, E(404, "Cluster not found") end
    local ns, owner = find_namespace(ctx, p.namespaceId)
    if not ns or owner ~= c then return nil, E(404, "Namespace not found") end
    return ns, c
  end,
}

-- ---------- job effects ----------

function jobs.effects.create_cluster(ctx, d)
  if find_cluster(ctx, d.clusterId) then
    return { code = 409, message = "A cluster with ID '" .. d.clusterId .. "' already exists" }
  end
  d.namespaces = U.array()
  pcw(ctx).clusters[#pcw(ctx).clusters + 1] = d
  ctx.ix:put("cluster", d.clusterId, d)
end

function jobs.effects.update_cluster(ctx, d)
  local c = find_cluster(ctx, d.clusterId)
  if not c then return { code = 404, message = "Cluster not found" } end
  for k, v in pairs(d.fields) do c[k] = v end
end

function jobs.effects.delete_cluster(ctx, d)
  local c = find_cluster(ctx, d.clusterId)
  if not c then return { code = 404, message = "Cluster not found" } end
  if #c.namespaces > 0 then return { code = 400, message = "The cluster still has namespaces" } end
  world.remove(pcw(ctx).clusters, c)
  ctx.ix:drop("cluster", d.clusterId)
end

function jobs.effects.create_namespace(ctx, d)
  local c = find_cluster(ctx, d.clusterId)
  if not c then return { code = 404, message = "Cluster not found" } end
  if find_namespace(ctx, d.ns.namespaceId) then
    return { code = 409, message = "A namespace with ID '" .. d.ns.namespaceId .. "' already exists" }
  end
  for _, x in ipairs(c.namespaces) do
    if x.name == d.ns.name then return { code = 409, message = "A namespace named '" .. x.name .. "' already exists" } end
  end
  c.namespaces[#c.namespaces + 1] = d.ns
  ctx.ix:put("namespace", d.ns.namespaceId, d.ns, c)
end

function jobs.effects.update_namespace(ctx, d)
  local ns = find_namespace(ctx, d.namespaceId)
  if not ns then return { code = 404, message = "Namespace not found" } end
  for k, v in pairs(d.fields) do if k ~= "namespaceId" then ns[k] = v end end
end

function jobs.effects.delete_namespace(ctx, d)
  local ns, c = find_namespace(ctx, d.namespaceId)
  if not ns then return { code = 404, message = "Namespace not found" } end
  for _, a in ipairs(pcw(ctx).apps) do
    for _, e in ipairs(a.environments) do
      if e.namespaceId == d.namespaceId then return { code = 400, message = "The namespace still has environments" } end
    end
  end
  world.remove(c.namespaces, ns)
  ctx.ix:drop("namespace", d.namespaceId)
end

function jobs.effects.create_environment(ctx, d)
  local a = find_app(ctx, d.appId, true)
  if not a then return { code = 404, message = "App not found" } end
  if ctx.ix:get("pcenv", d.env.id) then
    return { code = 409, message = "An environment with ID '" .. d.env.id .. "' already exists" }
  end
  a.environments[#a.environments + 1] = d.env
  ctx.ix:put("pcenv", d.env.id, d.env, a)
end

function jobs.effects.update_environment(ctx, d)
  local a = find_app(ctx, d.appId)
  local e = a and find_env(ctx, a, d.envId)
  if not e then return { code = 404, message = "Environment not found" } end
  for k, v in pairs(d.env) do if k ~= "id" then e[k] = v end end
end

function jobs.effects.delete_environment(ctx, d)
  local a = find_app(ctx, d.appId)
  local e = a and find_env(ctx, a, d.envId)
  if not e then return { code = 404, message = "Environment not found" } end
  world.remove(a.environments, e)
  ctx.ix:drop("pcenv", d.envId)
end


-- ---------- JSON shapes ----------

local function cluster_json(c)
  return { manifestVersion = "1", cluster = { clusterId = c.clusterId, name = c.name, clusterType = c.clusterType,
    operatorType = c.operatorType, description = c.description } }
end

local NS_FIELDS = { "namespaceId", "name", "namespaceType", "installationType", "secret", "productTypePCLM", "plans",
  "enableDevelopmentMode", "enableExternalSecretsStore", "membership", "operationalLinks", "additionalInformation" }

local function ns_json(ns)
  local t = {}
  for _, k in ipairs(NS_FIELDS) do t[k] = ns[k] end
  t.installationType = t.installationType or "Connected"
  t.secret = t.secret or ""
  t.productTypePCLM = t.productTypePCLM or ""
  if t.plans then t.plans = U.arrays(t.plans) end
  if t.membership then t.membership = U.arrays(t.membership) end
  return { manifestVersion = "1", namespace = t }
end

local function env_json(ctx, e)
  local ns, c = find_namespace(ctx, e.namespaceId)
  local env = {
    id = e.id,
    properties = { name = e.name, production = e.production and true or false,
      defaultStudioTarget = e.defaultStudioTarget and true or false,
      secretsStoreEnabled = e.secretsStoreEnabled and true or false },
    deployment = { appUrl = e.appUrl or ("https://" .. e.name .. ".sandbox.example.com"), packageId = e.packageId or "",
      constants = U.array(U.arrays(e.constants or {})), scheduledEvents = U.array(U.arrays(e.scheduledEvents or {})) },
    container = { state = e.state or "Ready", instances = math.tointeger(e.instances) or 1,
      coreResources = e.coreResources or { limits = { cpu = "1", memory = "512Mi" }, requests = { cpu = "100m", memory = "512Mi" } } },
    provider = { clusterId = c and c.clusterId or (e.clusterId or ""), namespace = ns and ns.name or (e.namespace or ""),
      namespaceId = e.namespaceId },
    -- the spec's enum spells the config with backslashes: '{type: \"database\"}'
    services = U.arrays(e.services or { { name = "database", plan = "OnDemand", config = '{type: \\"database\\"}' } }),
  }
  if e.runtime then env.runtime = e.runtime end
  if e.annotations then env.annotations = U.arrays(e.annotations) end
  return { manifestVersion = "1", environment = env }
end

-- Manifest (request body) -> stored environment fields
local function env_from_manifest(m)
  local e = m.environment
  if type(e) ~= "table" then return nil, "environment is required" end
  local props = type(e.properties) == "table" and e.properties or {}
  local dep = type(e.deployment) == "table" and e.deployment or {}
  local cont = type(e.container) == "table" and e.container or {}
  local prov = type(e.provider) == "table" and e.provider or {}
  return {
    id = e.id, name = props.name, production = props.production, defaultStudioTarget = props.defaultStudioTarget,
    secretsStoreEnabled = props.secretsStoreEnabled, appUrl = dep.appUrl, packageId = dep.packageId,
    constants = dep.constants, scheduledEvents = dep.scheduledEvents, instances = cont.instances,
    coreResources = cont.coreResources, namespaceId = prov.namespaceId, clusterId = prov.clusterId,
    namespace = prov.namespace, services = e.services, runtime = e.runtime, annotations = e.annotations,
  }
end

-- ---------- routes ----------

function M.routes(r)
  local add = r.with(NEEDS)

  add("GET", "/clusters", function(ctx)
    local items, pg = page(ctx, U.map(pcw(ctx).clusters, cluster_json), 20)
    if not items then return pg end
    return U.ok({ clusters = items })
  end)

  add("POST", "/clusters", function(ctx)
    local c = ctx.body and ctx.body.cluster
    if type(c) ~= "table" or type(c.clusterId) ~= "string" or not c.clusterId:match(UUID) or type(c.name) ~= "string" then
      return E(400, "cluster.clusterId (UUID) and cluster.name are required")
    end
    local types = { os = true, k8s = true, eks = true, aks = true }
    if not types[c.clusterType] then return E(400, "cluster.clusterType must be one of os, k8s, eks, aks") end
    return new_job(ctx, "create_cluster", { clusterId = c.clusterId, name = c.name, clusterType = c.clusterType,
      operatorType = c.operatorType or "standard_operator", description = c.description })
  end)

  add("GET", "/clusters/{clusterId}", { needs = "cluster" }, function(_, _, c)
    return U.ok(cluster_json(c))
  end)

  add("PUT", "/clusters/{clusterId}", { needs = "cluster" }, function(ctx, p)
    local c = ctx.body and ctx.body.cluster
    if type(c) ~= "table" then return E(400, "cluster is required") end
    local types = { os = true, k8s = true, eks = true, aks = true }
    if c.clusterType ~= nil and not types[c.clusterType] then return E(400, "cluster.clusterType must be one of os, k8s, eks, aks") end
    local fields = { name = c.name, description = c.description, clusterType = c.clusterType }
    return new_job(ctx, "update_cluster", { clusterId = p.clusterId, fields = fields })
  end)

  add("DELETE", "/clusters/{clusterId}", { needs = "cluster" }, function(ctx, p)
    return new_job(ctx, "delete_cluster", { clusterId = p.clusterId })
  end)

  add("GET", "/clusters/{clusterId}/namespaces", { needs = "cluster" }, function(ctx, _, c)
    local items, pg = page(ctx, U.map(c.namespaces, ns_json), 20)
    if not items then return pg end
    return U.ok({ namespaces = items })
  end)

  add("POST", "/clusters/{clusterId}/namespaces", { needs = "cluster" }, function(ctx, p)
    local ns = ctx.body and ctx.body.namespace
    if type(ns) ~= "table" or type(ns.namespaceId) ~= "string" or not ns.namespaceId:match(UUID) or type(ns.name) ~= "string" then
      return E(400, "namespace.namespaceId (UUID) and namespace.name are required")
    end
    local stored = {}
    for _, k in ipairs(NS_FIELDS) do stored[k] = ns[k] end
    stored.installationType = stored.installationType or "Connected"
    stored.secret = stored.secret or U.shortid()
    stored.productTypePCLM = stored.productTypePCLM or ""
    return new_job(ctx, "create_namespace", { clusterId = p.clusterId, ns = stored })
  end)

  add("GET", "/clusters/{clusterId}/namespaces/{namespaceId}", { needs = "namespace" }, function(ctx, p, ns)
    return U.ok(ns_json(ns))
  end)

  add("PUT", "/clusters/{clusterId}/namespaces/{namespaceId}", { needs = "namespace" }, function(ctx, p, ns)
    local b = ctx.body and ctx.body.namespace
    if type(b) ~= "table" then return E(400, "namespace is required") end
    local fields = {}
    for _, k in ipairs(NS_FIELDS) do fields[k] = b[k] end
    return new_job(ctx, "update_namespace", { namespaceId = p.namespaceId, fields = fields })
  end)

  add("DELETE", "/clusters/{clusterId}/namespaces/{namespaceId}", { needs = "namespace" }, function(ctx, p, ns)
    return new_job(ctx, "delete_namespace", { namespaceId = p.namespaceId })
  end)

  add("GET", "/apps", function(ctx)
    local items, pg = page(ctx, U.map(pcw(ctx).apps, function(a)
      return { manifestVersion = "1", app = { appId = a.appId, appName = a.appName } }
    end), 100)
    if not items then return pg end
    return U.ok({ apps = items })
  end)

  add("GET", "/apps/{appId}", { needs = "app:uuid" }, function(_, _, a)
    return U.ok({ manifestVersion = "1", app = { appId = a.appId, appName = a.appName } })
  end)

  add("GET", "/apps/{appId}/environments", { needs = "app" }, function(ctx, _, a)
    local items, pg = page(ctx, U.map(a.environments, function(e) return env_json(ctx, e) end), 20)
    if not items then return pg end
    return U.ok({ environments = items })
  end)

  add("POST", "/apps/{appId}/environments", function(ctx, p)
    if not find_app(ctx, p.appId, false) and not ctx.ix:get("project", p.appId) then
      return E(404, "App not found")
    end
    local e, why = env_from_manifest(ctx.body or {})
    if not e then return E(400, why) end
    if type(e.id) ~= "string" or #e.id == 0 or #e.id > 8 then return E(400, "environment.id must be 1 to 8 characters") end
    if type(e.name) ~= "string" then return E(400, "environment.properties.name is required") end
    if type(e.namespaceId) ~= "string" then -- resolve by cluster + namespace name
      local c = type(e.clusterId) == "string" and find_cluster(ctx, e.clusterId)
      local ns = c and U.find(c.namespaces, "name", e.namespace) -- a handful per cluster
      e.namespaceId = ns and ns.namespaceId
    end
    if type(e.namespaceId) ~= "string" or not find_namespace(ctx, e.namespaceId) then
      return E(400, "environment.provider must name an existing namespace (namespaceId, or clusterId and namespace)")
    end
    return new_job(ctx, "create_environment", { appId = p.appId, env = e })
  end)

  for _, path in ipairs({ "/apps/{appId}/environments/{environmentId}",
    "/apps/{appId}/namespaces/{namespaceId}/environments/{environmentId}" }) do
    add("GET", path, { needs = "env" }, function(ctx, _, e)
      return U.ok(env_json(ctx, e))
    end)
    add("PUT", path, { needs = "env" }, function(ctx, p, e)
      local ct = ctx.req.headers["content-type"] or "application/json"
      if ct:find("xml") then return E(400, "Only application/json manifests are supported by the sandbox") end
      local m, why = env_from_manifest(ctx.body or {})
      if not m then return E(400, why) end
      if m.id and m.id ~= e.id then return E(400, "environment.id cannot be changed") end
      local fields = {}
      for k, v in pairs(m) do if v ~= nil then fields[k] = v end end
      return new_job(ctx, "update_environment", { appId = p.appId, envId = e.id, env = fields })
    end)
    add("DELETE", path, { needs = "env" }, function(ctx, p, e)
      return new_job(ctx, "delete_environment", { appId = p.appId, envId = e.id })
    end)
  end

  add("GET", "/cli", function(ctx)
    return U.ok({ cliVersionList = U.arrays(pcw(ctx).cli_versions) })
  end)

  add("POST", "/cli/{cliVersionValue}", function(ctx, p)
    local v = U.find(pcw(ctx).cli_versions, "cliVersion", p.cliVersionValue)
    local os_, arch = ctx.q.os, ctx.q.architecture
    local oses = { windows = true, linux = true, macos = true }
    if not oses[os_ or ""] or (arch ~= "x86" and arch ~= "arm") then
      return E(400, "os (windows, linux, macos) and architecture (x86, arm) are required")
    end
    if not v then return E(404, "CLI version not found") end
    local url = ctx.app.files_url .. "/files/cli/" .. p.cliVersionValue .. "/" .. os_ .. "/" .. arch .. "/mxpc-cli"
    return { status = 303, headers = { Location = url, ["Content-Location"] = url } }
  end)

end

return M
