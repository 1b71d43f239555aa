-- Conformance of every Deploy API v1, Deploy API v2, Build API and Backups API operation (the
-- APIs without a machine-readable spec): each is called through the Lua API against the sandbox,
-- and the sandbox's request log is checked for the method, path and query the docs show, the
-- Mendix-Username/Mendix-ApiKey credentials (the sandbox answers 401 without them), and the size
-- of the JSON body the docs show (uploads: multipart, no JSON).

local mx = require("mxdeploy")
local json = mx.json
local sandboxctl = require("mxdeploy.sandboxctl")

local PROJECT = "c533ee0b-f7db-4e62-868b-1192d392ccec"   -- calc
local TEST_ENV = "22064f8f-ee55-438c-9ab2-182f2f8e5f2f"
local PROD_ENV = "867c9f56-84ec-438b-b1ae-9f9c50377cba"   -- has 5 seeded snapshots
local SUCCEEDED_PKG = "4ee10492-6cfc-4582-b825-a9040c0988ad"

local called = {}
local function record(name) called[name] = true end

local function new_sandbox()
  local sb = sandboxctl.start{ time_scale = 0.001 }
  local c = mx.sandbox_client(sb, { poll_interval = 0.01 })
  return sb, c
end

-- The one API request logged since the last reset (skipping file downloads unless asked).
local function only_request(sb, listener)
  local log = sb:requests()
  local found = {}
  for _, r in ipairs(log) do
    if r.listener == (listener or "api") then found[#found + 1] = r end
  end
  assert.are.equal(1, #found, "expected exactly one request, got " .. #found)
  return found[1]
end

-- Checks what reached the sandbox: method, path, query, credentials and the JSON body's size.
local function expect(sb, method, path, opts)
  opts = opts or {}
  local r = only_request(sb)
  assert.are.equal(method, r.method)
  assert.are.equal(path, r.path)
  assert.are.equal(opts.query, r.query)
  assert.is_true(r.credentials)
  assert.is_true(r.status < 400, "status " .. tostring(r.status))
  if opts.body then
    assert.are.equal(#json.encode(opts.body), r.body_size)
  elseif not opts.upload then
    assert.are.equal(0, r.body_size)
  end
  sb:reset_log()
  return r
end

local function temp_mda(bytes)
  local path = os.tmpname() .. ".mda"
  local f = assert(io.open(path, "wb"))
  f:write("PK\3\4", ("m"):rep(bytes - 4))
  f:close()
  return path
end

describe("Deploy API v1 against the sandbox", function()
  local sb, c, mda
  setup(function()
    sb, c = new_sandbox()
    mda = temp_mda(4096)
  end)
  teardown(function() sb:stop(); os.remove(mda) end)
  before_each(function() sb:reset_log() end)

  it("list_apps, get_app, list_environments, get_environment", function()
    local apps = c.v1.list_apps()
    assert.is_true(json.is_array(apps))
    assert.are.equal("calc", apps[1].AppId)
    expect(sb, "GET", "/deploy/api/1/apps")
    record("v1.list_apps")
    assert.are.equal("Calculation App", c.v1.get_app("calc").Name)
    expect(sb, "GET", "/deploy/api/1/apps/calc")
    record("v1.get_app")
    assert.are.equal(3, #c.v1.list_environments("calc"))
    expect(sb, "GET", "/deploy/api/1/apps/calc/environments")
    record("v1.list_environments")
    assert.are.equal("Acceptance", c.v1.get_environment("calc", "Acceptance").Mode)
    expect(sb, "GET", "/deploy/api/1/apps/calc/environments/Acceptance")
    record("v1.get_environment")
  end)

  it("create_free_app", function()
    local body = { ProjectId = "0b5a3c9e-1234-4a56-8b9c-0d1e2f3a4b5c" }
    local app = c.v1.create_free_app(body)
    assert.are.equal(body.ProjectId, app.ProjectId)
    expect(sb, "POST", "/deploy/api/1/apps", { body = body })
    record("v1.create_free_app")
  end)

  it("get_environment_package with ?url=true", function()
    local pkg = c.v1.get_environment_package("calc", "Acceptance", { url = true })
    assert.is_string(pkg.PackageId)
    expect(sb, "GET", "/deploy/api/1/apps/calc/environments/Acceptance/package", { query = "url=true" })
    record("v1.get_environment_package")
  end)

  it("settings: read, change one constant, write back what was read", function()
    local settings = c.v1.get_environment_settings("calc", "Acceptance")
    expect(sb, "GET", "/deploy/api/1/apps/calc/environments/Acceptance/settings")
    record("v1.get_environment_settings")
    assert.is_true(json.is_array(settings.CustomSettings))   -- [] stays an array
    settings.Constants[1].Value = "true"
    local written = c.v1.set_environment_settings("calc", "Acceptance", settings)
    assert.are.equal("true", written.Constants[1].Value)
    expect(sb, "POST", "/deploy/api/1/apps/calc/environments/Acceptance/settings", { body = settings })
    record("v1.set_environment_settings")
  end)

  it("scale_environment", function()
    local body = { Instances = 2, MemoryPerInstance = 2048 }
    local r = c.v1.scale_environment("calc", "Acceptance", body)
    assert.are.equal(4096, r.TotalMemory)
    expect(sb, "POST", "/deploy/api/1/apps/calc/environments/Acceptance/scale", { body = body })
    record("v1.scale_environment")
  end)

  it("tags: create, get, delete (DELETE with the documented JSON body)", function()
    c.v1.create_environment_tag("calc", "Acceptance", { Tag = "europe" })
    expect(sb, "POST", "/deploy/api/1/apps/calc/environments/Acceptance/tags", { body = { Tag = "europe" } })
    record("v1.create_environment_tag")
    local tags = c.v1.get_environment_tags("calc", "Acceptance")
    assert.are.equal("europe", tags[1].Tag)
    expect(sb, "GET", "/deploy/api/1/apps/calc/environments/Acceptance/tags")
    record("v1.get_environment_tags")
    c.v1.delete_environment_tag("calc", "Acceptance", { Tag = "europe" })
    expect(sb, "DELETE", "/deploy/api/1/apps/calc/environments/Acceptance/tags", { body = { Tag = "europe" } })
    record("v1.delete_environment_tag")
    assert.are.equal(0, #c.v1.get_environment_tags("calc", "Acceptance"))
  end)

  it("logs: DownloadUrl, then fetched from the files host without credentials", function()
    local info = c.v1.get_app_logs("calc", "Acceptance", "2024-06-12")
    assert.is_string(info.DownloadUrl)
    expect(sb, "GET", "/deploy/api/1/apps/calc/environments/Acceptance/logs/2024-06-12")
    record("v1.get_app_logs")
    local info2 = c.v1.get_access_logs("calc", "Acceptance", "2024-06-12")
    assert.is_string(info2.DownloadUrl)
    expect(sb, "GET", "/deploy/api/1/apps/calc/environments/Acceptance/access-logs/2024-06-12")
    record("v1.get_access_logs")
    local out = os.tmpname()
    assert.are.equal(out, c.v1.download_app_logs("calc", "Acceptance", "2024-06-12", out))
    local f = assert(io.open(out))
    assert.is_true(#f:read("a") > 0)
    f:close()
    os.remove(out)
    for _, r in ipairs(sb:requests()) do
      if r.listener == "files" then assert.is_false(r.credentials) end
    end
    local files = 0
    for _, r in ipairs(sb:requests()) do if r.listener == "files" then files = files + 1 end end
    assert.are.equal(1, files)
  end)

  it("stop, upload (multipart, ?name=), transport, clean, start (job) and start status", function()
    c.v1.stop_environment("calc", "Test")
    expect(sb, "POST", "/deploy/api/1/apps/calc/environments/Test/stop")
    record("v1.stop_environment")
    local up = c.v1.upload_package("calc", mda, { name = "calc_1.0.0.45.mda" })
    assert.is_string(up.PackageId)
    local r = expect(sb, "POST", "/deploy/api/1/apps/calc/packages/upload",
      { query = "name=calc_1.0.0.45.mda", upload = true })
    assert.is_true(r.body_size > 4096)   -- the file inside a multipart body
    record("v1.upload_package")
    c.v1.transport_package("calc", "Test", { PackageId = SUCCEEDED_PKG })
    expect(sb, "POST", "/deploy/api/1/apps/calc/environments/Test/transport", { body = { PackageId = SUCCEEDED_PKG } })
    record("v1.transport_package")
    c.v1.clean_environment("calc", "Test")
    expect(sb, "POST", "/deploy/api/1/apps/calc/environments/Test/clean")
    record("v1.clean_environment")
    local job = c.v1.start_environment("calc", "Test", { AutoSyncDb = true })
    assert.is_true(mx.is_job(job))
    expect(sb, "POST", "/deploy/api/1/apps/calc/environments/Test/start", { body = { AutoSyncDb = true } })
    record("v1.start_environment")
    local status = c.v1.get_start_status("calc", "Test", job.id)
    assert.is_string(status.Status)
    expect(sb, "GET", "/deploy/api/1/apps/calc/environments/Test/start/" .. job.id)
    record("v1.get_start_status")
    assert.are.equal("Started", job:wait{ timeout = 30 }.Status)
    for _, rq in ipairs(sb:requests()) do
      assert.are.equal("/deploy/api/1/apps/calc/environments/Test/start/" .. job.id, rq.path)
    end
  end)

  it("starting a running environment is ALREADY_STARTED: a job that is already done", function()
    local job = c.v1.start_environment("calc", "Acceptance")
    assert.is_true(job.already_done)
    assert.are.equal("done", job.state)
    assert.is_true(job:wait().already_done)
  end)
end)

describe("Deploy API v2 against the sandbox", function()
  local sb, c, mda
  setup(function() sb, c = new_sandbox(); mda = temp_mda(10000) end)
  teardown(function() sb:stop(); os.remove(mda) end)
  before_each(function() sb:reset_log() end)

  it("upload_package returns a job whose result carries PackageId; get_job", function()
    local job = c.v2.upload_package("calc", mda, { name = "calc_1.0.0.46.mda" })
    local r = expect(sb, "POST", "/deploy/api/v2/apps/calc/packages/upload",
      { query = "name=calc_1.0.0.46.mda", upload = true })
    assert.is_true(r.body_size > 10000)
    record("v2.upload_package")
    assert.is_string(job.id)
    local status = c.v2.get_job("calc", job.id)
    assert.is_string(status.Status)
    expect(sb, "GET", "/deploy/api/v2/apps/calc/jobs/" .. job.id)
    record("v2.get_job")
    local result = job:wait{ timeout = 30 }
    assert.are.equal("Completed", result.Status)
    assert.are.equal(job.start_response.PackageId, result.PackageId)
  end)
end)

describe("Build API against the sandbox", function()
  local sb, c
  setup(function() sb, c = new_sandbox() end)
  teardown(function() sb:stop() end)
  before_each(function() sb:reset_log() end)

  it("list, build (job until Succeeded), get with ?url=true, download, delete", function()
    local pkgs = c.build.list_packages("calc")
    assert.is_true(#pkgs >= 1)
    expect(sb, "GET", "/deploy/api/1/apps/calc/packages")
    record("build.list_packages")
    local body = { Branch = "branches/feature", Revision = "63", Version = "2.5.4", Description = "Add scientific mode" }
    local job = c.build.build_package("calc", body)
    expect(sb, "POST", "/deploy/api/1/apps/calc/packages", { body = body })
    record("build.build_package")
    local built = job:wait{ timeout = 30 }
    assert.are.equal("Succeeded", built.Status)
    sb:reset_log()
    local pkg = c.build.get_package("calc", job.id, { url = true })
    assert.are.equal(job.id, pkg.PackageId)
    expect(sb, "GET", "/deploy/api/1/apps/calc/packages/" .. job.id, { query = "url=true" })
    record("build.get_package")
    local out = os.tmpname()
    assert.are.equal(out, c.build.download_package("calc", job.id, out))
    local f = assert(io.open(out, "rb"))
    assert.matches("PK%-SANDBOX%-MDA", f:read("a"))
    f:close()
    os.remove(out)
    expect(sb, "GET", "/deploy/api/1/apps/calc/packages/" .. job.id .. "/download")
    record("build.download_package")
    c.build.delete_package("calc", job.id)
    expect(sb, "DELETE", "/deploy/api/1/apps/calc/packages/" .. job.id)
    record("build.delete_package")
  end)
end)

describe("Backups API against the sandbox", function()
  local sb, c
  local base = "/deploy/api/v2/apps/" .. PROJECT .. "/environments/"
  setup(function() sb, c = new_sandbox() end)
  teardown(function() sb:stop() end)
  before_each(function() sb:reset_log() end)

  it("list_snapshots with offset/limit, and each_snapshot pages lazily", function()
    local page = c.backups.list_snapshots(PROJECT, PROD_ENV, { offset = 0, limit = 2 })
    assert.are.equal(2, #page.snapshots)
    assert.are.equal(5, page.total)
    expect(sb, "GET", base .. PROD_ENV .. "/snapshots", { query = "limit=2&offset=0" })
    record("backups.list_snapshots")
    local n = 0
    for s in c.backups.each_snapshot(PROJECT, PROD_ENV, { limit = 2 }) do
      assert.is_string(s.snapshot_id)
      n = n + 1
    end
    assert.are.equal(5, n)
    assert.are.equal(3, #sb:requests())   -- 2 + 2 + 1
  end)

  it("snapshot, update, archive (download without credentials), restore, delete", function()
    local job = c.backups.create_snapshot(PROJECT, TEST_ENV, { comment = "My snapshot" })
    expect(sb, "POST", base .. TEST_ENV .. "/snapshots", { body = { comment = "My snapshot" } })
    record("backups.create_snapshot")
    local snap = job:wait{ timeout = 30 }
    assert.are.equal("completed", snap.state)
    sb:reset_log()
    assert.are.equal(job.id, c.backups.get_snapshot(PROJECT, TEST_ENV, job.id).snapshot_id)
    expect(sb, "GET", base .. TEST_ENV .. "/snapshots/" .. job.id)
    record("backups.get_snapshot")
    assert.are.equal("Hello", c.backups.update_snapshot(PROJECT, TEST_ENV, job.id, { comment = "Hello" }).comment)
    expect(sb, "PUT", base .. TEST_ENV .. "/snapshots/" .. job.id, { body = { comment = "Hello" } })
    record("backups.update_snapshot")

    local ajob = c.backups.create_archive(PROJECT, TEST_ENV, job.id, { data_type = "database_only" })
    expect(sb, "POST", base .. TEST_ENV .. "/snapshots/" .. job.id .. "/archives", { query = "data_type=database_only" })
    record("backups.create_archive")
    local archive = ajob:wait{ timeout = 30 }
    assert.is_string(archive.url)
    sb:reset_log()
    assert.are.equal(ajob.id, c.backups.get_archive(PROJECT, TEST_ENV, job.id, ajob.id).archive_id)
    expect(sb, "GET", base .. TEST_ENV .. "/snapshots/" .. job.id .. "/archives/" .. ajob.id)
    record("backups.get_archive")
    local body = c.backups.download_archive(archive)
    assert.is_true(#body > 0)
    local files = sb:requests()
    assert.are.equal("files", files[#files].listener)
    assert.is_false(files[#files].credentials)
    sb:reset_log()

    local rjob = c.backups.restore_snapshot(PROJECT, TEST_ENV, { source_snapshot_id = job.id })
    expect(sb, "POST", base .. TEST_ENV .. "/restores", { query = "source_snapshot_id=" .. job.id })
    record("backups.restore_snapshot")
    assert.are.equal("completed", rjob:wait{ timeout = 30 }.state)
    sb:reset_log()
    assert.are.equal(rjob.id, c.backups.get_restore(PROJECT, TEST_ENV, rjob.id).restore_id)
    expect(sb, "GET", base .. TEST_ENV .. "/restores/" .. rjob.id)
    record("backups.get_restore")

    c.backups.delete_snapshot(PROJECT, TEST_ENV, job.id)
    expect(sb, "DELETE", base .. TEST_ENV .. "/snapshots/" .. job.id)
    record("backups.delete_snapshot")
  end)
end)

describe("coverage", function()
  it("every v1, v2, build and backups operation was called", function()
    local missing = {}
    for _, op in ipairs(mx.operations()) do
      if op.auth == "apikey" and not called[op.full_name] then missing[#missing + 1] = op.full_name end
    end
    assert.are.same({}, missing)
  end)
end)
