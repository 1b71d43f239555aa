-- The newer APIs (issue 11) through the Lua API against the sandbox: Mendix Pipelines (a run is a
-- job), Webhooks (CRUD, cursor pagination, signed package.uploaded deliveries to
-- mx.webhooks.serve) and App Repository (branches in the path URL-encoded, cursor pagination).

local mx = require("mxdeploy")
local sandboxctl = require("mxdeploy.sandboxctl")
local S = require("sandbox")

local APP = S.PROJECT
local PIPELINE = "db6ed4d3-8b6d-4c2b-ad2b-2a69d0f7afe0"
local FAILING = "7d0c4f1e-3b8a-4c55-9e61-2f3a4b5c6d7e"
local SECRET = "whsec_c2FuZGJveC13ZWJob29rLXNlY3JldC0wMDAwMDAwMA=="

local last = S.last_request

describe("newer APIs on the sandbox", function()
  local sb, c
  setup(function()
    sb = sandboxctl.start{ time_scale = 0.001 }
    c = mx.sandbox_client(sb, { poll_interval = 0.01, yes = true })
  end)
  teardown(function() sb:stop() end)

  describe("pipelines", function()
    it("start_run returns a job with the run's name and who triggered it, that ends SUCCEEDED", function()
      local job = c.pipelines.start_run(APP, { pipelineId = PIPELINE })
      assert.is_true(mx.is_job(job))
      assert.are.equal("Test pipeline", job.run.pipelineName)
      assert.are.equal(S.USER or "sandbox@example.com", job.run.triggeredBy.email)
      assert.are.equal("apps/" .. APP .. "/runs/" .. job.id, c:last_response().headers["content-location"])
      local seen = {}
      local result = job:wait{ timeout = 30, on_progress = function(_, s) seen[#seen + 1] = s end }
      assert.are.equal("SUCCEEDED", result.status)
      assert.are.equal(job.id, result.runId)
      assert.are.same({ "Test pipeline", PIPELINE }, { result.pipelineName, result.pipelineId })
      assert.are.equal("SUCCEEDED", seen[#seen])
      assert.are.equal("SUCCEEDED", c.pipelines.get_run_status(APP, job.id).status)
    end)

    it("a failing run raises a job error", function()
      local job = c.pipelines.start_run(APP, { pipelineId = FAILING })
      local ok, e = pcall(job.wait, job, { timeout = 30 })
      assert.is_false(ok)
      assert.are.equal("job", e.kind)
      assert.are.equal("FAILED", e.last_status)
    end)

    it("argument and API errors", function()
      local ok, e = pcall(c.pipelines.start_run, APP, {})
      assert.are.equal("argument", e.kind)
      ok, e = pcall(c.pipelines.start_run, APP, { pipelineId = "nope" })
      assert.are.equal("argument", e.kind)
      ok, e = pcall(c.pipelines.start_run, APP, { pipelineId = "00000000-0000-4000-8000-000000000000" })
      assert.are.same({ "http", 404 }, { e.kind, e.status })
      assert.matches("^Pipeline not found", e.message)
    end)
  end)

  describe("webhooks", function()
    local function body(name, url)
      return { name = name, url = url or "http://127.0.0.1:9/hook", eventTypes = { "package.uploaded" },
               isActive = true, validationSecret = SECRET }
    end

    it("create, get, update, list with a cursor iterator, delete", function()
      local ids = {}
      for i = 1, 7 do ids[i] = c.webhooks.create_webhook(APP, body("hook " .. i)).id end
      local h = c.webhooks.get_webhook(APP, ids[1])
      assert.are.same({ "hook 1", SECRET, true }, { h.name, h.validationSecret, mx.json.is_array(h.headers) })
      local upd = body("renamed")
      upd.headers = { { key = "X-Env", value = "ci" } }
      assert.are.equal("renamed", c.webhooks.update_webhook(APP, ids[1], upd).name)
      assert.are.equal(202, c:last_response().status)
      local page = c.webhooks.list_webhooks(APP, { limit = 3, ascOrder = true })
      assert.are.equal(3, #page.webhooks)
      assert.is_string(page.cursors.next)
      local names = {}
      for w in c.webhooks.each_webhook(APP, { limit = 3, ascOrder = true }) do names[#names + 1] = w.name end
      assert.are.same({ "renamed", "hook 2", "hook 3", "hook 4", "hook 5", "hook 6", "hook 7" }, names)
      for _, id in ipairs(ids) do assert.is_true(c.webhooks.delete_webhook(APP, id)) end
      assert.are.equal(204, c:last_response().status)
      assert.are.equal(0, #c.webhooks.list_webhooks(APP).webhooks)
    end)

    it("checks the secret and the name before sending", function()
      local b = body("x")
      b.validationSecret = "short"
      local ok, e = pcall(c.webhooks.create_webhook, APP, b)
      assert.are.equal("argument", e.kind)
      assert.is_nil(e.message:find("short", 1, true)) -- a secret is not echoed
      b = body("bad-name!")
      ok, e = pcall(c.webhooks.create_webhook, APP, b)
      assert.matches("name", e.message)
    end)

    it("an iterator stops on a cursor that comes back", function()
      sb:configure{ faults = { { route = "GET /webhooks/api/v1/apps/*/webhooks",
        body = '{"webhooks":[{"id":"a","name":"a","url":"u","eventTypes":[],"isActive":true}],"cursors":{"next":"cur_1"}}' } } }
      local ok, e = pcall(function() for _ in c.webhooks.each_webhook(APP) do end end)
      sb:configure{ faults = {} }
      assert.is_false(ok)
      assert.matches("cursor 'cur_1' came back", tostring(e))
    end)
  end)

  describe("app repository", function()
    it("info, branches (paginated), a branch whose name has a slash, commits newest first", function()
      assert.are.equal("git", c.repository.get_info(APP).type)
      local names = {}
      for b in c.repository.each_branch(APP, { limit = 1 }) do names[#names + 1] = b.name end
      assert.are.same({ "main", "branches/development" }, names)
      sb:reset_log()
      local b = c.repository.get_branch(APP, "branches/development")
      assert.are.equal("branches/development", b.name)
      assert.are.equal("/repository/v1/repositories/" .. APP .. "/branches/branches%2Fdevelopment", last(sb).path)
      local commits = {}
      for x in c.repository.each_commit(APP, "main") do commits[#commits + 1] = x end
      assert.are.equal(45, #commits) -- three pages of 20
      assert.are.equal(c.repository.get_branch(APP, "main").latestCommit.id, commits[1].id)
      assert.is_true(commits[1].date > commits[45].date)
      local ok, e = pcall(c.repository.get_branch, APP, "nope")
      assert.are.same({ 404, "RS404" }, { e.status, e.code })
    end)
  end)

  describe("a package upload announced by a signed webhook", function()
    it("is deployed by the mx.webhooks.serve handler; tampered and stale deliveries are refused", function()
      local deployed, refused = {}, {}
      local srv = mx.webhooks.serve{ secret = SECRET, log = function(l) refused[#refused + 1] = l end,
        on_event = function(event)
          -- the handler deploys the package named in the event (waiting on jobs meanwhile)
          local pkg
          for _, p in ipairs(c.build.list_packages("calc")) do
            if p.Name == event.name then pkg = p end
          end
          c.v1.stop_environment("calc", "Test")
          c.v1.transport_package("calc", "Test", { PackageId = pkg.PackageId })
          c.v1.start_environment("calc", "Test", { AutoSyncDb = true }):wait{ timeout = 30 }
          deployed[#deployed + 1] = pkg.PackageId
        end }
      local hook = c.webhooks.create_webhook(APP, { name = "deployer", url = srv.url,
        eventTypes = { "package.uploaded" }, isActive = true, validationSecret = SECRET })
      local file = S.tmpfile("PK sandbox package")
      local pkg = c.v2.upload_package("calc", file, { name = "calc_1.2.3.4.mda" }):wait{ timeout = 30 }
      assert.is_true(S.eventually(function() return #deployed == 1 end, 10))
      assert.are.equal(pkg.PackageId, deployed[1])
      assert.are.equal(pkg.PackageId, c.v1.get_environment_package("calc", "Test").PackageId)
      -- the same upload, with its delivery spoiled: refused, nothing deployed
      for _, spoil in ipairs({ "tamper", "stale", "unsigned" }) do
        sb:configure{ faults = { { route = "POST /deploy/api/v2/apps/*/packages/upload", webhook = spoil } } }
        c.v2.upload_package("calc", file, { name = "calc_1.2.3.5.mda" }):wait{ timeout = 30 }
      end
      sb:configure{ faults = {} }
      assert.is_true(S.eventually(function() return #refused == 3 end, 10))
      assert.matches("signature mismatch", refused[1])
      assert.matches("outside the tolerance", refused[2])
      assert.matches("missing webhook%-signature", refused[3])
      srv:settle()
      assert.are.equal(1, #deployed)
      assert.are.same({ 1, 3 }, { srv.stats.accepted, srv.stats.refused })
      os.remove(file)
      c.webhooks.delete_webhook(APP, hook.id)
      srv:close()
    end)
  end)
end)

describe("mx.sandbox_client", function()
  it("keeps its sandbox alive while the client is used (nothing else holds the handle)", function()
    local c = mx.sandbox_client(sandboxctl.start{ time_scale = 0.001 })
    collectgarbage()
    collectgarbage()
    assert.are.equal("git", c.repository.get_info(APP).type)
  end)
end)
