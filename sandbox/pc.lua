-- Private Cloud Deploy API and Private Cloud Build API (PAT authentication), both mounted at
-- /privatecloud/api/v4; they share GET /jobs/{jobId}. Mutations answer 202 with a job and a
-- Location header and take effect when the job finishes (see M.settle).
local U = require("mxdeploy.sandbox.util")
local json = U.json
local E = U.v4_error

local M = {}

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local function pcw(ctx) return ctx.world.privatecloud end

local function find_cluster(ctx, id) return U.find(pcw(ctx).clusters, "clusterId", id) end

local function find_namespace(ctx, id)
  for _, c in ipairs(pcw(ctx).clusters) do
    local ns = U.find(c.namespaces, "namespaceId", id)
    if ns then return ns, c end
  end
end

local function find_app(ctx, id, create)
  local a = U.find(pcw(ctx).apps, "appId", id)
  if not a and create then
    local v = U.find(ctx.world.apps, "ProjectId", id)
    if v then
      a = { appId = id, appName = v.Name, environments = U.array(), packages = U.array() }
      pcw(ctx).apps[#pcw(ctx).apps + 1] = a
    end
  end
  return a
end

local function find_env(ctx, app, id)
  return U.find(app.environments, "id", id)
end

-- ---------- jobs ----------

local function job_json(ctx, j, with_log)
  local t = { id = j.id, status = j.status }
  if j.status == "created" or j.status == "running" then
    local el = ctx.sim(j.t0)
    t.status = el < ctx.d.pc_created and "created" or "running"
  end
  if j.details then t.details = j.details end
  if j.status == "failed" and j.error then t.error = j.error end
  if j.packageId and j.status == "finished" then t.packageId = j.packageId end
  if with_log and j.build_log then t.log = { build = j.build_log } end
  return t
end

local function new_job(ctx, kind, data, details)
  local j = { id = U.uuid(), t0 = ctx.now, status = "created", kind = kind, data = data, details = details }
  if ctx.job_fail then
    j.forced_fail = type(ctx.job_fail) == "string" and ctx.job_fail or "The job failed (sandbox fault)"
  end
  pcw(ctx).jobs[j.id] = j
  pcw(ctx).job_order[#pcw(ctx).job_order + 1] = j.id
  local loc = ctx.app.api_url .. "/privatecloud/api/v4/jobs/" .. j.id
  return U.response(202, job_json(ctx, j), { Location = loc })
end

local function remove(list, key, id)
  for i, x in ipairs(list) do
    if x[key] == id then
      table.remove(list, i)
      return true
    end
  end
  return false
end

-- Effects of finished jobs. Return nil on success or {code=, message=} to fail the job.
local APPLY = {}

function APPLY.create_cluster(ctx, d)
  if find_cluster(ctx, d.clusterId) then
    return { code = 409, message = "A cluster with ID '" .. d.clusterId .. "' already exists" }
  end
  d.namespaces = U.array()
  pcw(ctx).clusters[#pcw(ctx).clusters + 1] = d
end

function APPLY.update_cluster(ctx, d)
  local c = find_cluster(ctx, d.clusterId)
  if not c then return { code = 404, message = "Cluster not found" } end
  for k, v in pairs(d.fields) do c[k] = v end
end

function APPLY.delete_cluster(ctx, d)
  local c = find_cluster(ctx, d.clusterId)
  if not c then return { code = 404, message = "Cluster not found" } end
  if #c.namespaces > 0 then return { code = 400, message = "The cluster still has namespaces" } end
  remove(pcw(ctx).clusters, "clusterId", d.clusterId)
end

function APPLY.create_namespace(ctx, d)
  local c = find_cluster(ctx, d.clusterId)
  if not c then return { code = 404, message = "Cluster not found" } end
  if find_namespace(ctx, d.ns.namespaceId) then
    return { code = 409, message = "A namespace with ID '" .. d.ns.namespaceId .. "' already exists" }
  end
  for _, x in ipairs(c.namespaces) do
    if x.name == d.ns.name then return { code = 409, message = "A namespace named '" .. x.name .. "' already exists" } end
  end
  c.namespaces[#c.namespaces + 1] = d.ns
end

function APPLY.update_namespace(ctx, d)
  local ns = find_namespace(ctx, d.namespaceId)
  if not ns then return { code = 404, message = "Namespace not found" } end
  for k, v in pairs(d.fields) do if k ~= "namespaceId" then ns[k] = v end end
end

function APPLY.delete_namespace(ctx, d)
  local ns, c = find_namespace(ctx, d.namespaceId)
  if not ns then return { code = 404, message = "Namespace not found" } end
  for _, a in ipairs(pcw(ctx).apps) do
    for _, e in ipairs(a.environments) do
      if e.namespaceId == d.namespaceId then return { code = 400, message = "The namespace still has environments" } end
    end
  end
  remove(c.namespaces, "namespaceId", d.namespaceId)
end

function APPLY.create_environment(ctx, d)
  local a = find_app(ctx, d.appId, true)
  if not a then return { code = 404, message = "App not found" } end
  for _, x in ipairs(pcw(ctx).apps) do
    if find_env(ctx, x, d.env.id) then
      return { code = 409, message = "An environment with ID '" .. d.env.id .. "' already exists" }
    end
  end
  a.environments[#a.environments + 1] = d.env
end

function APPLY.update_environment(ctx, d)
  local a = find_app(ctx, d.appId)
  local e = a and find_env(ctx, a, d.envId)
  if not e then return { code = 404, message = "Environment not found" } end
  for k, v in pairs(d.env) do if k ~= "id" then e[k] = v end end
end

function APPLY.delete_environment(ctx, d)
  local a = find_app(ctx, d.appId)
  if not a or not remove(a.environments, "id", d.envId) then return { code = 404, message = "Environment not found" } end
end

function APPLY.create_package(ctx, d, j)
  local a = find_app(ctx, d.appId, true)
  if not a then return { code = 404, message = "App not found" } end
  d.pkg.createdOn = U.iso(ctx.now):gsub("%.%d+Z$", "Z")
  a.packages[#a.packages + 1] = d.pkg
  j.packageId = d.pkg.id
end

function APPLY.delete_package(ctx, d)
  local a = find_app(ctx, d.appId)
  if not a or not remove(a.packages, "id", d.packageId) then return { code = 404, message = "Package not found" } end
end

function M.settle(ctx)
  local w = pcw(ctx)
  local total = ctx.d.pc_created + ctx.d.pc_running
  for _, id in ipairs(w.job_order) do
    local j = w.jobs[id]
    if j and (j.status == "created" or j.status == "running") and ctx.sim(j.t0) >= total then
      local err
      if j.forced_fail then
        err = { code = 500, message = j.forced_fail }
      else
        err = APPLY[j.kind](ctx, j.data, j)
      end
      if err then
        j.status, j.error = "failed", err
        if j.build_log then j.build_log = j.build_log .. "\nERROR: " .. err.message end
      else
        j.status = "finished"
      end
    end
  end
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

local function pkg_json(ctx, p, with_url, with_log)
  local t = { id = p.id, appId = p.appId, modelVersion = p.modelVersion, runtimeVersion = p.runtimeVersion,
    createdOn = p.createdOn, description = p.description or "", fileName = p.fileName,
    fileSize = math.tointeger(p.fileSize) or 0 }
  if with_url then t.url = { location = ctx.app.files_url .. "/files/pcpackages/" .. p.id .. ".mda", ttl = 900 } end
  if with_log then t.buildLog = p.buildLog or "Build log not available" end
  return { package = t }
end

local function page(ctx, list, default, max)
  local items, offset, limit = U.page(list, ctx.q, default, max)
  if not items then return nil, E(400, offset) end
  return items, { offset = offset, limit = limit, size = #items }
end

-- ---------- routes ----------

function M.routes(r)
  r.add("GET", "/jobs/{jobId}", function(ctx, p)
    local j = pcw(ctx).jobs[p.jobId]
    if not j then return E(404, "Job not found") end
    return U.ok(job_json(ctx, j, ctx.q.log == "true"))
  end)

  r.add("GET", "/clusters", function(ctx)
    local items, pg = page(ctx, U.map(pcw(ctx).clusters, cluster_json), 20)
    if not items then return pg end
    return U.ok({ clusters = items })
  end)

  r.add("POST", "/clusters", function(ctx)
    local c = ctx.body and ctx.body.cluster
    if type(c) ~= "table" or type(c.clusterId) ~= "string" or not c.clusterId:match(UUID) or type(c.name) ~= "string" then
      return E(400, "cluster.clusterId (UUID) and cluster.name are required")
    end
    local types = { os = true, k8s = true, eks = true, aks = true }
    if not types[c.clusterType] then return E(400, "cluster.clusterType must be one of os, k8s, eks, aks") end
    return new_job(ctx, "create_cluster", { clusterId = c.clusterId, name = c.name, clusterType = c.clusterType,
      operatorType = c.operatorType or "standard_operator", description = c.description })
  end)

  r.add("GET", "/clusters/{clusterId}", function(ctx, p)
    local c = find_cluster(ctx, p.clusterId)
    if not c then return E(404, "Cluster not found") end
    return U.ok(cluster_json(c))
  end)

  r.add("PUT", "/clusters/{clusterId}", function(ctx, p)
    if not find_cluster(ctx, p.clusterId) then return E(404, "Cluster not found") end
    local c = ctx.body and ctx.body.cluster
    if type(c) ~= "table" then return E(400, "cluster is required") end
    local types = { os = true, k8s = true, eks = true, aks = true }
    if c.clusterType ~= nil and not types[c.clusterType] then return E(400, "cluster.clusterType must be one of os, k8s, eks, aks") end
    local fields = { name = c.name, description = c.description, clusterType = c.clusterType }
    return new_job(ctx, "update_cluster", { clusterId = p.clusterId, fields = fields })
  end)

  r.add("DELETE", "/clusters/{clusterId}", function(ctx, p)
    if not find_cluster(ctx, p.clusterId) then return E(404, "Cluster not found") end
    return new_job(ctx, "delete_cluster", { clusterId = p.clusterId })
  end)

  r.add("GET", "/clusters/{clusterId}/namespaces", function(ctx, p)
    local c = find_cluster(ctx, p.clusterId)
    if not c then return E(404, "Cluster not found") end
    local items, pg = page(ctx, U.map(c.namespaces, ns_json), 20)
    if not items then return pg end
    return U.ok({ namespaces = items })
  end)

  r.add("POST", "/clusters/{clusterId}/namespaces", function(ctx, p)
    if not find_cluster(ctx, p.clusterId) then return E(404, "Cluster not found") end
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

  local function get_ns(ctx, p)
    local c = find_cluster(ctx, p.clusterId)
    if not c then return nil, E(404, "Cluster not found") end
    local ns = U.find(c.namespaces, "namespaceId", p.namespaceId)
    if not ns then return nil, E(404, "Namespace not found") end
    return ns
  end

  r.add("GET", "/clusters/{clusterId}/namespaces/{namespaceId}", function(ctx, p)
    local ns, err = get_ns(ctx, p)
    if not ns then return err end
    return U.ok(ns_json(ns))
  end)

  r.add("PUT", "/clusters/{clusterId}/namespaces/{namespaceId}", function(ctx, p)
    local ns, err = get_ns(ctx, p)
    if not ns then return err end
    local b = ctx.body and ctx.body.namespace
    if type(b) ~= "table" then return E(400, "namespace is required") end
    local fields = {}
    for _, k in ipairs(NS_FIELDS) do fields[k] = b[k] end
    return new_job(ctx, "update_namespace", { namespaceId = p.namespaceId, fields = fields })
  end)

  r.add("DELETE", "/clusters/{clusterId}/namespaces/{namespaceId}", function(ctx, p)
    local ns, err = get_ns(ctx, p)
    if not ns then return err end
    return new_job(ctx, "delete_namespace", { namespaceId = p.namespaceId })
  end)

  r.add("GET", "/apps", function(ctx)
    local items, pg = page(ctx, U.map(pcw(ctx).apps, function(a)
      return { manifestVersion = "1", app = { appId = a.appId, appName = a.appName } }
    end), 100)
    if not items then return pg end
    return U.ok({ apps = items })
  end)

  r.add("GET", "/apps/{appId}", function(ctx, p)
    if not p.appId:match(UUID) then return E(400, "appId must be a UUID") end
    local a = find_app(ctx, p.appId)
    if not a then return E(404, "App not found") end
    return U.ok({ manifestVersion = "1", app = { appId = a.appId, appName = a.appName } })
  end)

  r.add("GET", "/apps/{appId}/environments", function(ctx, p)
    local a = find_app(ctx, p.appId)
    if not a then return E(404, "App not found") end
    local items, pg = page(ctx, U.map(a.environments, function(e) return env_json(ctx, e) end), 20)
    if not items then return pg end
    return U.ok({ environments = items })
  end)

  r.add("POST", "/apps/{appId}/environments", function(ctx, p)
    if not find_app(ctx, p.appId, false) and not U.find(ctx.world.apps, "ProjectId", p.appId) then
      return E(404, "App not found")
    end
    local e, why = env_from_manifest(ctx.body or {})
    if not e then return E(400, why) end
    if type(e.id) ~= "string" or #e.id == 0 or #e.id > 8 then return E(400, "environment.id must be 1 to 8 characters") end
    if type(e.name) ~= "string" then return E(400, "environment.properties.name is required") end
    if type(e.namespaceId) ~= "string" then -- resolve by cluster + namespace name
      local c = type(e.clusterId) == "string" and find_cluster(ctx, e.clusterId)
      local ns = c and U.find(c.namespaces, "name", e.namespace)
      e.namespaceId = ns and ns.namespaceId
    end
    if type(e.namespaceId) ~= "string" or not find_namespace(ctx, e.namespaceId) then
      return E(400, "environment.provider must name an existing namespace (namespaceId, or clusterId and namespace)")
    end
    return new_job(ctx, "create_environment", { appId = p.appId, env = e })
  end)

  local function env_route(namespaced)
    return function(ctx, p)
      local a = find_app(ctx, p.appId)
      if not a then return nil, E(404, "App not found") end
      local e = find_env(ctx, a, p.environmentId)
      if not e or (namespaced and e.namespaceId ~= p.namespaceId) then return nil, E(404, "Environment not found") end
      return e, a
    end
  end

  for _, namespaced in ipairs({ false, true }) do
    local path = namespaced and "/apps/{appId}/namespaces/{namespaceId}/environments/{environmentId}"
      or "/apps/{appId}/environments/{environmentId}"
    local lookup = env_route(namespaced)
    r.add("GET", path, function(ctx, p)
      local e, err = lookup(ctx, p)
      if not e then return err end
      return U.ok(env_json(ctx, e))
    end)
    r.add("PUT", path, function(ctx, p)
      local e, err = lookup(ctx, p)
      if not e then return err end
      local ct = ctx.req.headers["content-type"] or "application/json"
      if ct:find("xml") then return E(400, "Only application/json manifests are supported by the sandbox") end
      local m, why = env_from_manifest(ctx.body or {})
      if not m then return E(400, why) end
      if m.id and m.id ~= e.id then return E(400, "environment.id cannot be changed") end
      local fields = {}
      for k, v in pairs(m) do if v ~= nil then fields[k] = v end end
      return new_job(ctx, "update_environment", { appId = p.appId, envId = e.id, env = fields })
    end)
    r.add("DELETE", path, function(ctx, p)
      local e, err = lookup(ctx, p)
      if not e then return err end
      return new_job(ctx, "delete_environment", { appId = p.appId, envId = e.id })
    end)
  end

  r.add("GET", "/cli", function(ctx)
    return U.ok({ cliVersionList = U.arrays(pcw(ctx).cli_versions) })
  end)

  r.add("POST", "/cli/{cliVersionValue}", function(ctx, p)
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

  -- Private Cloud Build
  r.add("GET", "/apps/{appId}/packages", function(ctx, p)
    local a = find_app(ctx, p.appId)
    if not a then return E(404, "App not found") end
    local list = U.map(a.packages, function(x) return pkg_json(ctx, x).package end)
    local items, pg = page(ctx, list, 20, 50)
    if not items then return pg end
    return U.ok({ packages = items, pagination = pg })
  end)

  r.add("POST", "/apps/{appId}/packages", function(ctx, p)
    if not find_app(ctx, p.appId, true) then return E(404, "App not found") end
    local fields, filename = U.multipart(ctx.req)
    if not fields or not filename then return E(400, "A multipart/form-data body with a file is required") end
    local name = fields.fileName
    if not name or name == "" then return E(400, "fileName is required") end
    if not name:match("%.mda$") then name = name .. ".mda" end
    local pkg = { id = U.uuid(), appId = p.appId, modelVersion = name:match("(%d+%.%d+%.%d+%.%d+)") or "1.0.0.0",
      runtimeVersion = "9.24.0.2965", description = "Uploaded package", fileName = name,
      fileSize = ctx.req.body_size or 0 }
    return new_job(ctx, "create_package", { appId = p.appId, pkg = pkg })
  end)

  r.add("POST", "/apps/{appId}/packages/build", function(ctx, p)
    if not find_app(ctx, p.appId, true) then return E(404, "App not found") end
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
    local resp = new_job(ctx, "create_package", { appId = p.appId, pkg = pkg })
    local j = pcw(ctx).jobs[json.decode(resp.body).id]
    j.build_log = "Building " .. b.branch .. "@" .. b.revision
    return resp
  end)

  r.add("GET", "/apps/{appId}/packages/{packageId}", function(ctx, p)
    local a = find_app(ctx, p.appId)
    local pkg = a and U.find(a.packages, "id", p.packageId)
    if not pkg then return E(404, "Package not found") end
    return U.ok(pkg_json(ctx, pkg, ctx.q.url == "true", ctx.q.log == "true"))
  end)

  r.add("DELETE", "/apps/{appId}/packages/{packageId}", function(ctx, p)
    local a = find_app(ctx, p.appId)
    local pkg = a and U.find(a.packages, "id", p.packageId)
    if not pkg then return E(404, "Package not found") end
    return new_job(ctx, "delete_package", { appId = p.appId, packageId = p.packageId })
  end)
end

function M.prepare(world, seed)
  local pc = world.privatecloud or U.copy(seed.privatecloud or {})
  pc.clusters = U.array(pc.clusters or {})
  for _, c in ipairs(pc.clusters) do c.namespaces = U.array(c.namespaces or {}) end
  pc.apps = U.array(pc.apps or {})
  for _, a in ipairs(pc.apps) do
    a.environments = U.array(a.environments or {})
    a.packages = U.array(a.packages or {})
    for _, x in ipairs(a.packages) do x.appId = x.appId or a.appId end
  end
  pc.cli_versions = U.array(pc.cli_versions or {})
  pc.jobs = pc.jobs or {}
  pc.job_order = U.array(pc.job_order or {})
  world.privatecloud = pc
end

return M
