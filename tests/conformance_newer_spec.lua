-- The Mendix Pipelines and Webhooks operations against Stoplight Prism with the official specs
-- (pipelines-api.openapi.yaml, webhooks-api.openapi.yaml):
--   - mock mode (--errors): every request the Lua API sends must satisfy the spec (path, method,
--     parameters, body, Authorization: MxToken) or Prism answers 4xx/422, which raises;
--   - proxy mode in front of the sandbox: the sandbox's real answers must satisfy the spec too, or
--     Prism turns them into a 500 problem+json (which raises, or is asserted against).
-- The App Repository has no published spec: tests/newer_apis_spec.lua covers it on the sandbox.

local mx = require("mxdeploy")
local prism = require("prism")
local core = require("mxdeploy.core")
local sandboxctl = require("mxdeploy.sandboxctl")

local APP = "c533ee0b-f7db-4e62-868b-1192d392ccec"
local PIPELINE = "db6ed4d3-8b6d-4c2b-ad2b-2a69d0f7afe0"
local WEBHOOK = "mxep_mfiHo9gZw6RcGisubUfhyfuCllim5q"
-- the docs' create/update example body
local function webhook_body()
  return { name = "string", url = "https://some.domain.com/webhooks", eventTypes = { "teamserver.push" },
           isActive = true, validationSecret = "PMJhiGo1nTL6wlNyZVFh5v9rLZdcLsG2O",
           headers = { { key = "Authorization", value = "Beaerer DG4R4GT6R43" } } }
end

describe("Pipelines and Webhooks against Prism", function()
  local mocks, proxies, sb = {}, {}, nil
  setup(function()
    sb = sandboxctl.start{ time_scale = 0.001 }
    local t = {
      core.spawn(prism.mock, "pipelines-api.openapi.yaml"),
      core.spawn(prism.mock, "webhooks-api.openapi.yaml"),
      core.spawn(prism.proxy, "pipelines-api.openapi.yaml", sb.url .. "/pipelines/api/v1"),
      core.spawn(prism.proxy, "webhooks-api.openapi.yaml", sb.url .. "/webhooks/api/v1"),
    }
    mocks.pipelines, mocks.webhooks, proxies.pipelines, proxies.webhooks = t[1]:wait(), t[2]:wait(), t[3]:wait(), t[4]:wait()
  end)
  teardown(function()
    for _, p in pairs(mocks) do p:stop() end
    for _, p in pairs(proxies) do p:stop() end
    if sb then sb:stop() end
  end)

  local function mock_client()
    return mx.connect{ token = "conformance-test-token", retry = false, poll_interval = 0.01, yes = true,
      base_urls = { pipelines = mocks.pipelines.url, webhooks = mocks.webhooks.url } }
  end

  local function proxy_client()
    return mx.connect{ token = sb.token, retry = false, poll_interval = 0.01, yes = true,
      base_urls = { pipelines = proxies.pipelines.url, webhooks = proxies.webhooks.url } }
  end

  it("Pipelines: start_run and get_run_status are what the spec accepts", function()
    local c = mock_client()
    local job = c.pipelines.start_run(APP, { pipelineId = PIPELINE })
    assert.are.equal(201, c:last_response().status)
    assert.are.same({ "Test pipeline", "jane.doe@domain.tld" }, { job.run.pipelineName, job.run.triggeredBy.email })
    assert.are.equal("2868b153-2d92-4ec5-ab64-2e26a9e0f16e", job.id)
    local s = job:status()
    assert.truthy(({ CREATED = 1, RUNNING = 1, SUCCEEDED = 1, FAILED = 1 })[s])
    assert.are.equal(job.id, c.pipelines.get_run_status(APP, job.id).runId)
  end)

  it("Webhooks: all 5 operations are what the spec accepts", function()
    local c = mock_client()
    local page = c.webhooks.list_webhooks(APP, { limit = 20, ascOrder = true })
    assert.is_table(page.webhooks)
    c.webhooks.list_webhooks(APP, { cursor = "e8151c8a-3682-4346-85f9-d976e441c254" })
    local created = c.webhooks.create_webhook(APP, webhook_body())
    assert.are.equal(WEBHOOK, created.id)
    assert.are.equal(WEBHOOK, c.webhooks.get_webhook(APP, WEBHOOK).id)
    c.webhooks.update_webhook(APP, WEBHOOK, webhook_body())
    assert.are.equal(202, c:last_response().status)
    assert.is_true(c.webhooks.delete_webhook(APP, WEBHOOK))
    assert.are.equal(204, c:last_response().status)
  end)

  it("the sandbox's Pipelines answers conform (a run to SUCCEEDED, a 404)", function()
    local c = proxy_client()
    local job = c.pipelines.start_run(APP, { pipelineId = PIPELINE })
    assert.are.equal("SUCCEEDED", job:wait{ timeout = 30 }.status)
    local ok, e = pcall(c.pipelines.start_run, APP, { pipelineId = "00000000-0000-4000-8000-000000000000" })
    assert.is_false(ok)
    assert.are.equal(404, e.status) -- not Prism's 500: the error body has the spec's shape
    ok, e = pcall(c.pipelines.get_run_status, APP, "00000000-0000-4000-8000-000000000000")
    assert.are.equal(404, e.status)
  end)

  it("the sandbox's Webhooks answers conform (CRUD, pages with cursors, a 404)", function()
    local c = proxy_client()
    local ids = {}
    for i = 1, 3 do
      local b = webhook_body()
      b.name = "hook " .. i
      ids[i] = c.webhooks.create_webhook(APP, b).id
    end
    local n = 0
    for _ in c.webhooks.each_webhook(APP, { limit = 2 }) do n = n + 1 end
    assert.are.equal(3, n)
    assert.are.equal("hook 1", c.webhooks.get_webhook(APP, ids[1]).name)
    c.webhooks.update_webhook(APP, ids[1], webhook_body())
    for _, id in ipairs(ids) do c.webhooks.delete_webhook(APP, id) end
    local ok, e = pcall(c.webhooks.get_webhook, APP, ids[1])
    assert.is_false(ok)
    assert.are.equal(404, e.status)
  end)
end)
