-- Conformance of every Deploy API v4, Private Cloud Deploy and Private Cloud Build operation:
-- each is called through the Lua API against Stoplight Prism serving the official OpenAPI spec
-- with --errors, which rejects (4xx/422) any request violating the spec: wrong path, method,
-- parameters, body, content type, or a missing `Authorization: MxToken ...`.

local mx = require("mxdeploy")
local prism_server = require("prism")

local APP = "c533ee0b-f7db-4e62-868b-1192d392ccec"
local ENV_UUID = "22064f8f-ee55-438c-9ab2-182f2f8e5f2f"
local CLUSTER = "a712d8f4-a77c-4189-a211-e0ea1dfde03c"
local NAMESPACE = "9fab54b2-39f9-48e4-8ceb-5a7ecbba44e1"
local PC_ENV = "e9m3vf7f"
local PACKAGE = "63e50976-34bf-4ce4-820b-9e5f106e5fa5"
local JOB = "db6ed4d3-8b6d-4c2b-ad2b-2a69d0f7afe0"

-- Operations called in this file, per namespace; checked against the operations table at the end.
local called = {}
local function record(ns, name) called[ns .. "." .. name] = true end

local function client_for(ns, url)
  return mx.connect{ token = "conformance-test-token", base_urls = { [ns] = url },
                     retry = false, poll_interval = 0.01, yes = true }
end

local function environment_manifest()
  return {
    manifestVersion = "2.0.0",
    environment = {
      id = PC_ENV,
      properties = { name = "my-environment", production = false, secretsStoreEnabled = false,
                     defaultStudioTarget = false },
      container = { instances = 1, coreResources = {
        requests = { cpu = "1", memory = "0.512" }, limits = { cpu = "1", memory = "0.512" } } },
      deployment = { appUrl = "https://test.app.url", packageId = PACKAGE },
      services = mx.array{ { plan = "OnDemand", name = "ephemeral_db", config = '{type: \\"database\\"}' } },
      provider = { namespace = "my-namespace", clusterId = CLUSTER },
    },
  }
end

local function assert_job(job, ns)
  assert.is_true(mx.is_job(job))
  assert.is_string(job.id)
  assert.are.equal(ns, job.op.ns)
end

describe("Deploy API v4 against Prism", function()
  local prism, c
  setup(function()
    prism = prism_server.mock("deploy-api-v4.openapi.yaml")
    c = client_for("v4", prism.url)
  end)
  teardown(function() if prism then prism:stop() end end)

  it("list_apps, with query parameters, and each_app", function()
    local r = c.v4.list_apps()
    assert.is_table(r.apps)
    assert.is_true(mx.json.is_array(r.apps))
    r = c.v4.list_apps{ offset = 0, limit = 10, licenseType = "licensed" }
    assert.is_table(r.pagination)
    local n = 0
    for app in c.v4.each_app() do
      assert.is_string(app.id)
      n = n + 1
    end
    assert.is_true(n >= 1)
    record("v4", "list_apps")
  end)

  it("get_app and update_app", function()
    local app = c.v4.get_app(APP)
    assert.is_string(app.name)
    record("v4", "get_app")
    assert.is_true(c.v4.update_app(APP, { technicalContact = { userId = "jane.doe@domain.tld" } }))
    assert.are.equal(200, c:last_response().status)
    record("v4", "update_app")
  end)

  it("list_environments, each_environment and get_environment", function()
    local r = c.v4.list_environments(APP, { sort = "name", expand = "package" })
    assert.is_table(r.environments)
    local n = 0
    for env in c.v4.each_environment(APP) do n = n + 1; assert.is_string(env.id) end
    assert.is_true(n >= 1)
    record("v4", "list_environments")
    local env = c.v4.get_environment(APP, ENV_UUID)
    assert.is_string(env.id)
    record("v4", "get_environment")
  end)

  it("list_environment_permissions and update_environment_permissions", function()
    local r = c.v4.list_environment_permissions(APP, ENV_UUID, { userId = "jane.doe@domain.tld" })
    assert.is_table(r.permissions)
    local n = 0
    for p in c.v4.each_environment_permission(APP, ENV_UUID) do n = n + 1; assert.is_table(p.member) end
    assert.is_true(n >= 1)
    record("v4", "list_environment_permissions")
    c.v4.update_environment_permissions(APP, ENV_UUID, { permissions = mx.array{
      { member = { userId = "jane.doe@domain.tld" }, canDeployApp = true, canManageBackups = false,
        canViewAlerts = true, canAccessAPI = false, canViewLogs = true, canManagePrivileges = false },
    } })
    assert.are.equal(200, c:last_response().status)
    record("v4", "update_environment_permissions")
  end)

  it("a request without a token is refused by the spec (the check is real)", function()
    local resp = mx.request{ url = prism.url .. "/apps/" .. APP, raw = true, retry = false }
    assert.are.equal(401, resp.status)
  end)

  it("an invalid UUID is refused before any request", function()
    local ok, e = pcall(c.v4.get_app, "calc")
    assert.is_false(ok)
    assert.are.equal("argument", e.kind)
    assert.matches("bad argument #1 to 'v4.get_app' %(appId: UUID expected", tostring(e))
  end)
end)

describe("Private Cloud Deploy API against Prism", function()
  local prism, c
  setup(function()
    prism = prism_server.mock("private-cloud-deploy-api.openapi.yaml")
    c = client_for("pc", prism.url)
  end)
  teardown(function() if prism then prism:stop() end end)

  it("get_job", function()
    local job = c.pc.get_job(JOB)
    assert.is_string(job.status)
    record("pc", "get_job")
  end)

  it("clusters: list, create (job), get, update (job), delete (job)", function()
    assert.is_table(c.pc.list_clusters())
    assert.is_table(c.pc.list_clusters{ offset = 0, limit = 5 })
    for cluster in c.pc.each_cluster() do assert.is_table(cluster) end
    record("pc", "list_clusters")
    local job = c.pc.create_cluster{ manifestVersion = "2.0.0",
      cluster = { clusterId = CLUSTER, name = "my-cluster", clusterType = "k8s" } }
    assert_job(job, "pc")
    -- Prism's job never finishes (static example); one poll proves GET /jobs/{id} conforms
    local status, body = job:status()
    assert.are.equal(body.status, status)
    record("pc", "create_cluster")
    local manifest = c.pc.get_cluster(CLUSTER)
    assert.is_table(manifest)
    record("pc", "get_cluster")
    assert_job(c.pc.update_cluster(CLUSTER, { manifestVersion = "2.0.0",
      cluster = { clusterId = CLUSTER, name = "renamed", clusterType = "k8s" } }), "pc")
    record("pc", "update_cluster")
    assert_job(c.pc.delete_cluster(CLUSTER), "pc")
    record("pc", "delete_cluster")
  end)

  it("namespaces: list, create, get, read-modify-write update, delete", function()
    assert.is_table(c.pc.list_namespaces(CLUSTER))
    assert.is_table(c.pc.list_namespaces(CLUSTER, { offset = 0, limit = 10 }))
    record("pc", "list_namespaces")
    assert_job(c.pc.create_namespace(CLUSTER, { manifestVersion = "2.0.0", namespace = {
      name = "my-namespace", secret = "c3Vic2NyaXB0aW9uLXNlY3JldA==", namespaceId = NAMESPACE,
      namespaceType = "standard", installationType = "Connected" } }), "pc")
    record("pc", "create_namespace")
    local manifest = c.pc.get_namespace(CLUSTER, NAMESPACE)
    assert.is_table(manifest)
    record("pc", "get_namespace")
    -- read-modify-write: send back what was read plus the change
    manifest.manifestVersion = manifest.manifestVersion or "2.0.0"
    if type(manifest.namespace) == "table" then manifest.namespace.name = "my-namespace" end
    assert_job(c.pc.update_namespace(CLUSTER, NAMESPACE, manifest), "pc")
    record("pc", "update_namespace")
    assert_job(c.pc.delete_namespace(CLUSTER, NAMESPACE), "pc")
    record("pc", "delete_namespace")
  end)

  it("apps and environments, including the deprecated and namespace-scoped forms", function()
    assert.is_table(c.pc.list_apps())
    assert.is_table(c.pc.list_apps{ offset = 0, limit = 100 })
    record("pc", "list_apps")
    assert.is_table(c.pc.get_app(APP))
    record("pc", "get_app")
    assert.is_table(c.pc.list_environments(APP, { limit = 20 }))
    record("pc", "list_environments")
    assert_job(c.pc.create_environment(APP, environment_manifest()), "pc")
    record("pc", "create_environment")
    assert.is_table(c.pc.get_environment(APP, PC_ENV))
    record("pc", "get_environment")
    assert_job(c.pc.update_environment(APP, PC_ENV, environment_manifest()), "pc")
    record("pc", "update_environment")
    assert_job(c.pc.delete_environment(APP, PC_ENV), "pc")
    record("pc", "delete_environment")
    assert.is_table(c.pc.get_namespace_environment(APP, NAMESPACE, PC_ENV))
    record("pc", "get_namespace_environment")
    assert_job(c.pc.update_namespace_environment(APP, NAMESPACE, PC_ENV, environment_manifest()), "pc")
    record("pc", "update_namespace_environment")
    assert_job(c.pc.delete_namespace_environment(APP, NAMESPACE, PC_ENV), "pc")
    record("pc", "delete_namespace_environment")
  end)

  it("cli: list versions and download (303 redirect)", function()
    assert.is_table(c.pc.list_cli_versions())
    record("pc", "list_cli_versions")
    -- without an output path the Location of the 303 is returned (not followed)
    local location = c.pc.download_cli("2.5.1", { os = "linux", architecture = "x86" })
    assert.are.equal(303, c:last_response().status)
    assert.is_string(location)
    record("pc", "download_cli")
  end)

  it("Private Cloud IDs are checked before any request", function()
    local ok, e = pcall(c.pc.get_environment, APP, "Not-Valid-Id")
    assert.is_false(ok)
    assert.matches("environmentId: Private Cloud environment ID", tostring(e))
    ok, e = pcall(c.pc.download_cli, "latest", { os = "linux", architecture = "x86" })
    assert.is_false(ok)
    assert.matches("cliVersionValue", tostring(e))
  end)
end)

describe("Private Cloud Build API against Prism", function()
  local prism, c, mda
  setup(function()
    prism = prism_server.mock("private-cloud-build-api.openapi.yaml")
    c = client_for("pcbuild", prism.url)
    mda = os.tmpname() .. ".mda"
    local f = assert(io.open(mda, "wb"))
    f:write(("PK\3\4 mendix deployment archive "):rep(100))
    f:close()
  end)
  teardown(function()
    if prism then prism:stop() end
    if mda then os.remove(mda) end
  end)

  it("get_job (with log)", function()
    assert.is_string(c.pcbuild.get_job(JOB).status)
    assert.is_table(c.pcbuild.get_job(JOB, { log = true }))
    record("pcbuild", "get_job")
  end)

  it("list_packages and each_package", function()
    assert.is_table(c.pcbuild.list_packages(APP, { offset = 0, limit = 50 }))
    for p in c.pcbuild.each_package(APP) do assert.is_table(p) end
    record("pcbuild", "list_packages")
  end)

  it("upload_package (multipart file + fileName) returns a job", function()
    assert_job(c.pcbuild.upload_package(APP, mda, { fileName = "my-app_2.2.1.19665.mda" }), "pcbuild")
    assert_job(c.pcbuild.upload_package(APP, mda), "pcbuild")
    record("pcbuild", "upload_package")
  end)

  it("build_package returns a job; get_package; delete_package returns a job", function()
    assert_job(c.pcbuild.build_package(APP, { branch = "main", revision = "93de884c",
      version = "2.0.4", description = "Fixed issues" }), "pcbuild")
    record("pcbuild", "build_package")
    assert.is_table(c.pcbuild.get_package(APP, PACKAGE, { url = true, log = false }))
    record("pcbuild", "get_package")
    assert_job(c.pcbuild.delete_package(APP, PACKAGE), "pcbuild")
    record("pcbuild", "delete_package")
  end)
end)

describe("coverage", function()
  it("every v4, pc and pcbuild operation was called", function()
    local missing = {}
    for _, op in ipairs(mx.operations()) do
      if (op.namespace == "v4" or op.namespace == "pc" or op.namespace == "pcbuild")
          and not called[op.full_name] then
        missing[#missing + 1] = op.full_name
      end
    end
    assert.are.same({}, missing)
  end)
end)
