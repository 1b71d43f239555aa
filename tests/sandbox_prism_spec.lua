-- The sandbox's Deploy API v4, Private Cloud Deploy and Private Cloud Build answers conform to the
-- official OpenAPI specs: every operation is called through Stoplight Prism in proxy mode
-- (`prism proxy --errors SPEC http://127.0.0.1:PORT/...`), which validates both the request and
-- the sandbox's real response and turns any violation into an error we assert against.
local S = require("sandbox")
local prism = require("prism")
local core = S.core

local NEW_CLUSTER = "7a1f0d3e-1b2c-4d5e-8f90-0123456789ab"
local NEW_NS = "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a"

describe("sandbox conforms to the OpenAPI specs (Prism proxy)", function()
  local sb, v4p, pcd, pcb
  local checked = 0

  setup(function()
    sb = S.start{ time_scale = 0.001 }
    -- start the three proxies at once; each takes a few seconds to boot
    local tasks = {
      core.spawn(prism.proxy, "deploy-api-v4.openapi.yaml", sb.bases["deploy-v4"]),
      core.spawn(prism.proxy, "private-cloud-deploy-api.openapi.yaml", sb.bases["pc-deploy"]),
      core.spawn(prism.proxy, "private-cloud-build-api.openapi.yaml", sb.bases["pc-deploy"]),
    }
    v4p, pcd, pcb = tasks[1]:wait(), tasks[2]:wait(), tasks[3]:wait()
  end)

  teardown(function()
    for _, p in ipairs({ v4p, pcd, pcb }) do if p then p:stop() end end
    if sb then sb:stop() end
  end)

  -- One request through proxy `p`; asserts no violation and the expected status.
  local function call(p, method, path, body, want, opts)
    opts = opts or {}
    local headers = { Authorization = "MxToken " .. (opts.token or sb.token) }
    if opts.no_auth then headers = {} end
    local req = { method = method, url = p.url .. path, headers = headers, timeout = 30, max_redirects = opts.max_redirects }
    if body then
      req.body = S.json.encode(body)
      headers["Content-Type"] = "application/json"
    end
    if opts.file then req.file, req.form = opts.file, opts.form end
    local st, data, resp, err = S.request(req)
    assert.is_nil(err and err.message)
    local v = prism.violations(resp)
    assert.is_nil(v, method .. " " .. path .. " violates the spec: " .. tostring(v))
    assert.are.equal(want, st, method .. " " .. path .. ": " .. tostring(resp and resp.body))
    checked = checked + 1
    return data, resp
  end

  local function finish(job)
    return S.eventually(function()
      local _, j = S.client(sb).pc("GET", "/jobs/" .. job.id)
      return (j.status == "finished" or j.status == "failed") and j
    end, 5)
  end

  it("Deploy API v4: all 7 operations and their error answers", function()
    local apps = call(v4p, "GET", "/apps?offset=0&limit=2&licenseType=licensed", nil, 200)
    assert.are.equal(2, #apps.apps)
    call(v4p, "GET", "/apps/" .. S.PROJECT, nil, 200)
    call(v4p, "PATCH", "/apps/" .. S.PROJECT, { technicalContact = { userId = "jane.doe@example.com" } }, 200)
    call(v4p, "GET", "/apps/" .. S.PROJECT .. "/environments?sort=name&expand=package", nil, 200)
    call(v4p, "GET", "/apps/" .. S.PROJECT .. "/environments/" .. S.ENV_PROD .. "?expand=package", nil, 200)
    local path = "/apps/" .. S.PROJECT .. "/environments/" .. S.ENV_TEST .. "/permissions"
    call(v4p, "GET", path .. "?limit=10&offset=0", nil, 200)
    call(v4p, "PATCH", path, { permissions = { { member = { userId = "viewer@example.com" }, canViewLogs = true } } }, 200)
    -- error answers are validated as well
    call(v4p, "GET", "/apps/00000000-0000-4000-8000-000000000000", nil, 404)
    call(v4p, "GET", "/apps", nil, 401, { token = "not-a-token" })
    call(v4p, "PATCH", "/apps/" .. S.PROJECT, { technicalContact = { userId = "x@example.com" } }, 403, { token = sb.readonly_token })
    call(v4p, "GET", "/apps/" .. S.PROJECT .. "/environments/00000000-0000-4000-8000-000000000000", nil, 404)
    call(v4p, "GET", "/apps?licenseType=licensed&limit=1&offset=5", nil, 200)
  end)

  it("Private Cloud Deploy: clusters, namespaces, apps, environments, jobs, CLI", function()
    call(pcd, "GET", "/clusters", nil, 200)
    call(pcd, "GET", "/clusters/" .. S.CLUSTER, nil, 200)
    local job = call(pcd, "POST", "/clusters", { manifestVersion = "1",
      cluster = { clusterId = NEW_CLUSTER, name = "second", clusterType = "aks", description = "made by a test" } }, 202)
    call(pcd, "GET", "/jobs/" .. job.id, nil, 200)
    assert.are.equal("finished", finish(job).status)
    call(pcd, "GET", "/jobs/" .. job.id, nil, 200)
    job = call(pcd, "PUT", "/clusters/" .. NEW_CLUSTER, { manifestVersion = "1",
      cluster = { clusterId = NEW_CLUSTER, name = "renamed", clusterType = "aks" } }, 202)
    finish(job)
    job = call(pcd, "POST", "/clusters/" .. NEW_CLUSTER .. "/namespaces", { manifestVersion = "1",
      namespace = { namespaceId = NEW_NS, name = "ns-two", installationType = "Connected", secret = "s3cret" } }, 202)
    assert.are.equal("finished", finish(job).status)
    call(pcd, "GET", "/clusters/" .. NEW_CLUSTER .. "/namespaces", nil, 200)
    call(pcd, "GET", "/clusters/" .. NEW_CLUSTER .. "/namespaces/" .. NEW_NS, nil, 200)
    job = call(pcd, "PUT", "/clusters/" .. NEW_CLUSTER .. "/namespaces/" .. NEW_NS, { manifestVersion = "1",
      namespace = { namespaceId = NEW_NS, name = "ns-two", installationType = "Connected", secret = "s3cret",
        productTypePCLM = "", enableDevelopmentMode = true } }, 202)
    finish(job)
    -- a duplicate ID: accepted, and the job fails with its own error
    job = call(pcd, "POST", "/clusters", { manifestVersion = "1",
      cluster = { clusterId = NEW_CLUSTER, name = "dup", clusterType = "aks" } }, 202)
    assert.are.equal("failed", finish(job).status)
    call(pcd, "GET", "/jobs/" .. job.id, nil, 200)

    call(pcd, "GET", "/apps?offset=0&limit=10", nil, 200)
    call(pcd, "GET", "/apps/" .. S.PROJECT, nil, 200)
    call(pcd, "GET", "/apps/" .. S.PROJECT .. "/environments", nil, 200)
    local manifest = { manifestVersion = "1", environment = { id = "stage01",
      properties = { name = "staging", production = false, defaultStudioTarget = false, secretsStoreEnabled = false },
      deployment = { appUrl = "https://staging.example.com", packageId = "905ba2c3-4424-48b8-b4b0-393eedd4cd1e" },
      container = { instances = 1, coreResources = { limits = { cpu = "1", memory = "1Gi" }, requests = { cpu = "1", memory = "1Gi" } } },
      provider = { clusterId = NEW_CLUSTER, namespace = "ns-two", namespaceId = NEW_NS },
      services = { { name = "database", plan = "OnDemand", config = '{type: \\"database\\"}' } } } }
    job = call(pcd, "POST", "/apps/" .. S.PROJECT .. "/environments", manifest, 202)
    assert.are.equal("finished", finish(job).status)
    call(pcd, "GET", "/apps/" .. S.PROJECT .. "/environments/stage01", nil, 200)
    call(pcd, "GET", "/apps/" .. S.PROJECT .. "/namespaces/" .. NEW_NS .. "/environments/stage01", nil, 200)
    manifest.environment.container.instances = 2
    finish(call(pcd, "PUT", "/apps/" .. S.PROJECT .. "/environments/stage01", manifest, 202))
    finish(call(pcd, "PUT", "/apps/" .. S.PROJECT .. "/namespaces/" .. NEW_NS .. "/environments/stage01", manifest, 202))
    call(pcd, "GET", "/apps/" .. S.PROJECT .. "/environments", nil, 200)
    finish(call(pcd, "DELETE", "/apps/" .. S.PROJECT .. "/namespaces/" .. NEW_NS .. "/environments/stage01", nil, 202))
    call(pcd, "GET", "/apps/" .. S.PROJECT .. "/environments/stage01", nil, 404)
    finish(call(pcd, "DELETE", "/apps/" .. S.PROJECT .. "/environments/pcenv01", nil, 202))
    assert.are.equal("finished", finish(call(pcd, "DELETE", "/clusters/" .. NEW_CLUSTER .. "/namespaces/" .. NEW_NS, nil, 202)).status)
    assert.are.equal("finished", finish(call(pcd, "DELETE", "/clusters/" .. NEW_CLUSTER, nil, 202)).status)
    call(pcd, "GET", "/clusters/" .. NEW_CLUSTER, nil, 404)

    local cli = call(pcd, "GET", "/cli", nil, 200)
    -- POST /cli/{v} is checked directly: Prism's proxy follows the 303 itself (and forwards the
    -- Authorization header to the other origin, which the files listener refuses).
    local st, _, resp = S.request{ method = "POST", max_redirects = 0, headers = { Authorization = "MxToken " .. sb.token },
      url = sb.bases["pc-deploy"] .. "/cli/" .. cli.cliVersionList[1].cliVersion .. "?os=linux&architecture=arm" }
    assert.are.equal(303, st)
    assert.are.equal(sb.files_url, resp.headers["location"]:sub(1, #sb.files_url))
    assert.are.equal(resp.headers["location"], resp.headers["content-location"])
    call(pcd, "GET", "/clusters", nil, 401, { token = "not-a-token" })
    call(pcd, "POST", "/clusters", { manifestVersion = "1",
      cluster = { clusterId = NEW_CLUSTER, name = "x", clusterType = "k8s" } }, 403, { token = sb.readonly_token })
    call(pcd, "GET", "/jobs/00000000-0000-4000-8000-000000000000", nil, 404)
  end)

  it("Private Cloud Build: packages (upload, build, get, delete) and jobs", function()
    call(pcb, "GET", "/apps/" .. S.PROJECT .. "/packages?offset=0&limit=20", nil, 200)
    local file = S.tmpfile(string.rep("mda", 100))
    local job = call(pcb, "POST", "/apps/" .. S.PROJECT .. "/packages", nil, 202,
      { file = file, form = { fileName = "calc_1.2.3.4.mda" } })
    os.remove(file)
    local j = finish(job)
    assert.are.equal("finished", j.status)
    call(pcb, "GET", "/jobs/" .. job.id, nil, 200)
    job = call(pcb, "POST", "/apps/" .. S.PROJECT .. "/packages/build",
      { branch = "main", revision = "93de884c", version = "2.0.4", description = "Fixed issues" }, 202)
    j = finish(job)
    call(pcb, "GET", "/jobs/" .. job.id .. "?log=true", nil, 200)
    call(pcb, "GET", "/apps/" .. S.PROJECT .. "/packages/" .. j.packageId .. "?url=true&log=true", nil, 200)
    call(pcb, "GET", "/apps/" .. S.PROJECT .. "/packages", nil, 200)
    finish(call(pcb, "DELETE", "/apps/" .. S.PROJECT .. "/packages/" .. j.packageId, nil, 202))
    call(pcb, "GET", "/apps/" .. S.PROJECT .. "/packages/" .. j.packageId, nil, 404)
    call(pcb, "GET", "/apps/" .. S.PROJECT .. "/packages", nil, 401, { token = "not-a-token" })
  end)

  it("the check is real: a response that breaks the spec is reported by Prism", function()
    sb:configure{ faults = { { route = "GET /cloud/api/v4/apps/*", body = '{"id":5}', times = 1 } } }
    local _, _, resp = S.request{ method = "GET", url = v4p.url .. "/apps/" .. S.PROJECT,
      headers = { Authorization = "MxToken " .. sb.token } }
    local v = prism.violations(resp)
    assert.truthy(v)
    assert.truthy(v:find("required", 1, true))
    assert.is_true(checked >= 50, "only " .. checked .. " checked calls")
  end)
end)
