-- The sandbox through real HTTP on 127.0.0.1: authentication, state that behaves, documented
-- error codes and body shapes, pagination, jobs, files listener.
local S = require("sandbox")
local json = S.json

local function is_array(v) return type(v) == "table" and json.is_array(v) end

describe("sandbox: authentication", function()
  local sb, c
  setup(function() sb = S.start{ time_scale = 0.001 } c = S.client(sb) end)
  teardown(function() sb:stop() end)

  it("answers 401 with the errorCode body without API-key headers", function()
    local st, data = S.request{ method = "GET", url = sb.bases["deploy-v1"] .. "/apps" }
    assert.are.equal(401, st)
    assert.are.equal("UNAUTHORIZED", data.errorCode)
    assert.is_string(data.errorMessage)
  end)

  it("answers 401 to a wrong API key", function()
    local st = S.client(sb, { apikey = "wrong" }).v1("GET", "/apps")
    assert.are.equal(401, st)
    local log = sb:requests()
    assert.are.same({ 401, true, false, sb.username, "<redacted>" }, { log[#log].status, log[#log].credentials,
      log[#log].auth_ok, log[#log].headers["mendix-username"], log[#log].headers["mendix-apikey"] })
  end)

  it("answers 401 with the v4 error body without a PAT, and 403 to a read-only PAT writing", function()
    local st, data = S.request{ method = "GET", url = sb.bases["deploy-v4"] .. "/apps" }
    assert.are.equal(401, st)
    assert.are.equal(401, data.error.code)
    local ro = S.client(sb, { token = sb.readonly_token })
    st = ro.v4("GET", "/apps")
    assert.are.equal(200, st)
    st, data = ro.v4("PATCH", "/apps/" .. S.PROJECT, { technicalContact = { userId = "sandbox@example.com" } })
    assert.are.equal(403, st)
    assert.are.equal(403, data.error.code)
    local log = sb:requests()   -- a seeded PAT lacking the scope: identified (auth_ok), refused
    assert.are.same({ 403, true, "<redacted>" }, { log[#log].status, log[#log].auth_ok, log[#log].headers["authorization"] })
    st, data = ro.pc("POST", "/clusters", { manifestVersion = "1", cluster = { clusterId = "11111111-2222-4333-8444-555555555555", name = "x", clusterType = "k8s" } })
    assert.are.equal(403, st)
  end)

  it("rejects an API key on token APIs and a token on API-key APIs", function()
    local st = S.request{ method = "GET", url = sb.bases["deploy-v4"] .. "/apps",
      headers = { ["Mendix-Username"] = sb.username, ["Mendix-ApiKey"] = sb.apikey } }
    assert.are.equal(401, st)
    st = S.request{ method = "GET", url = sb.bases["deploy-v1"] .. "/apps", headers = { Authorization = "MxToken " .. sb.token } }
    assert.are.equal(401, st)
  end)
end)

describe("sandbox: Deploy API v1", function()
  local sb, c
  before_each(function() sb = S.start{ time_scale = 0.001 } c = S.client(sb) end)
  after_each(function() sb:stop() end)

  it("lists apps and environments as JSON arrays", function()
    local st, apps = c.v1("GET", "/apps")
    assert.are.equal(200, st)
    assert.is_true(is_array(apps))
    assert.are.equal("calc", apps[1].AppId)
    local _, envs = c.v1("GET", "/apps/calc/environments")
    assert.is_true(is_array(envs))
    assert.are.same({ "Test", "Acceptance", "Production" }, { envs[1].Mode, envs[2].Mode, envs[3].Mode })
  end)

  it("documents errors: INVALID_APPID 400, APP_NOT_FOUND 404, ENVIRONMENT_NOT_FOUND 404, INVALID_ENVIRONMENT 400", function()
    local st, d = c.v1("GET", "/apps/bad!id")
    assert.are.same({ 400, "INVALID_APPID" }, { st, d.errorCode })
    st, d = c.v1("GET", "/apps/nope")
    assert.are.same({ 404, "APP_NOT_FOUND" }, { st, d.errorCode })
    st, d = c.v1("GET", "/apps/calc/environments/Staging")
    assert.are.same({ 404, "ENVIRONMENT_NOT_FOUND" }, { st, d.errorCode })
    st, d = c.v1("GET", "/apps/calc/environments/Te$t")
    assert.are.same({ 400, "INVALID_ENVIRONMENT" }, { st, d.errorCode })
  end)

  it("validates a body over 1 MiB like any other: a non-JSON stop is refused, a large JSON body accepted", function()
    local big = ("x"):rep(1536 * 1024) -- kept in a file by the server, not in memory
    local st, d = c.v1("POST", "/apps/calc/environments/Acceptance/stop", big)
    assert.are.same({ 400, "INVALID_PARAMETERS" }, { st, d and d.errorCode })
    local _, env = c.v1("GET", "/apps/calc/environments/Acceptance")
    assert.are.equal("Running", env.Status)
    st, d = c.v1("POST", "/apps/calc/environments/Test/tags", { Tag = "large", Padding = big })
    assert.are.same({ 200, "large" }, { st, d and d.Tag })
  end)

  it("start goes Starting then Started and the environment then runs", function()
    sb:configure{ time_scale = 0.01 } -- 90 s start = 0.9 s
    local st, d = c.v1("POST", "/apps/calc/environments/Test/start", { AutoSyncDb = true })
    assert.are.equal(200, st)
    local job = d.JobId
    assert.is_string(job)
    local _, s1 = c.v1("GET", "/apps/calc/environments/Test/start/" .. job)
    assert.are.equal("Starting", s1.Status)
    st, d = c.v1("POST", "/apps/calc/environments/Test/start", {})
    assert.are.same({ 500, "APP_ALREADY_HAS_A_STARTING_JOB" }, { st, d.errorCode })
    assert.is_true(S.eventually(function()
      local _, s = c.v1("GET", "/apps/calc/environments/Test/start/" .. job)
      return s.Status == "Started"
    end, 5))
    local _, env = c.v1("GET", "/apps/calc/environments/Test")
    assert.are.equal("Running", env.Status)
    st, d = c.v1("POST", "/apps/calc/environments/Test/start", {})
    assert.are.same({ 200, "ALREADY_STARTED" }, { st, d.errorCode })
    st, d = c.v1("GET", "/apps/calc/environments/Test/start/00000000-0000-4000-8000-000000000000")
    assert.are.same({ 404, "NO_SUCH_STARTJOB" }, { st, d.errorCode })
  end)

  it("start without a deployed package is NO_MDA_HAS_BEEN_DEPLOYED (500)", function()
    local st, d = c.v1("POST", "/apps/tictactoc/environments/Test/start", {})
    assert.are.same({ 500, "NO_MDA_HAS_BEEN_DEPLOYED" }, { st, d.errorCode })
  end)

  it("clean needs a stopped environment and a deployment", function()
    local st, d = c.v1("POST", "/apps/calc/environments/Acceptance/clean")
    assert.are.same({ 403, "ENVIRONMENT_NOT_STOPPED" }, { st, d.errorCode })
    assert.are.equal(200, (c.v1("POST", "/apps/calc/environments/Acceptance/stop")))
    local _, env = c.v1("GET", "/apps/calc/environments/Acceptance")
    assert.are.equal("Stopped", env.Status)
    st, d = c.v1("POST", "/apps/calc/environments/Acceptance/clean")
    assert.are.equal(200, st)
    assert.is_true(is_array(d))
    st, d = c.v1("POST", "/apps/tictactoc/environments/Test/clean")
    assert.are.same({ 422, "ENVIRONMENT_NOT_DEPLOYED" }, { st, d.errorCode })
  end)

  it("transport needs a processed package and a stopped environment", function()
    local st, d = c.v1("POST", "/apps/calc/environments/Acceptance/transport", { PackageId = S.PKG1 })
    assert.are.same({ 403, "APP_IS_RUNNING" }, { st, d.errorCode })
    st, d = c.v1("POST", "/apps/calc/environments/Test/transport", { PackageId = S.PKG_UPLOADING })
    assert.are.same({ 503, "SERVICE UNAVAILABLE" }, { st, d.errorCode })
    st, d = c.v1("POST", "/apps/calc/environments/Test/transport", { PackageId = S.PKG_FAILED })
    assert.are.same({ 403, "NOT ALLOWED" }, { st, d.errorCode })
    st, d = c.v1("POST", "/apps/calc/environments/Test/transport", { PackageId = "00000000-0000-4000-8000-000000000000" })
    assert.are.same({ 404, "PACKAGE_NOT_FOUND" }, { st, d.errorCode })
    st, d = c.v1("POST", "/apps/calc/environments/Test/transport", {})
    assert.are.same({ 400, "INVALID_PARAMETERS" }, { st, d.errorCode })
    st, d = S.client(sb, { username = "viewer@example.com", apikey = "sandbox-apikey-viewer" })
      .v1("POST", "/apps/calc/environments/Test/transport", { PackageId = S.PKG2 })
    assert.are.same({ 403, "TRANSPORT_NOT_ALLOWED" }, { st, d.errorCode })
    st = c.v1("POST", "/apps/calc/environments/Test/transport", { PackageId = S.PKG2 })
    assert.are.equal(200, st)
    local _, pkg = c.v1("GET", "/apps/calc/environments/Test/package?url=true")
    assert.are.equal(S.PKG2, pkg.PackageId)
    assert.are.equal(sb.files_url, pkg.Url.Location:sub(1, #sb.files_url))
  end)

  it("an uploaded package is processed before it can be transported (multipart upload)", function()
    sb:configure{ time_scale = 0.02 } -- processing takes 10 s * 0.02 = 0.2 s
    local file = S.tmpfile(string.rep("MDA", 1000))
    local st, d = c.v1("POST", "/apps/calc/packages/upload?name=calc_1.0.0.45.mda", nil, { file = file })
    os.remove(file)
    assert.are.equal(200, st)
    local id = d.PackageId
    local _, pkg = c.v1("GET", "/apps/calc/packages/" .. id)
    assert.are.equal("Uploading", pkg.Status)
    assert.are.equal(3000, pkg.Size)
    assert.are.equal("calc_1.0.0.45.mda", pkg.Name)
    st, d = c.v1("POST", "/apps/calc/environments/Test/transport", { PackageId = id })
    assert.are.same({ 503, "SERVICE UNAVAILABLE" }, { st, d.errorCode })
    assert.is_true(S.eventually(function()
      local _, p = c.v1("GET", "/apps/calc/packages/" .. id)
      return p.Status == "Succeeded"
    end, 5))
    assert.are.equal(200, (c.v1("POST", "/apps/calc/environments/Test/transport", { PackageId = id })))
  end)

  it("streams a large upload to disk instead of memory", function()
    local function rss_kb()
      local f = io.open("/proc/self/status")
      local kb = tonumber(f:read("a"):match("VmRSS:%s*(%d+)"))
      f:close()
      return kb
    end
    local size = 160 * 1024 * 1024
    local file = os.tmpname()
    assert(os.execute("truncate -s " .. size .. " '" .. file .. "'"))
    local before = rss_kb()
    local st, d = c.v2("POST", "/apps/calc/packages/upload?name=big_1.0.0.1.mda", nil, { file = file, timeout = 120 })
    local grew = rss_kb() - before
    os.remove(file)
    assert.are.equal(200, st)
    local _, pkg = c.v1("GET", "/apps/calc/packages/" .. d.PackageId)
    assert.are.equal(size, pkg.Size)
    assert.is_true(grew < 64 * 1024, "RSS grew by " .. grew .. " KiB")
  end)

  it("settings, scaling and tags change what later reads return", function()
    local st, d = c.v1("POST", "/apps/calc/environments/Test/settings",
      { Constants = { { Name = "MyFirstModule.BooleanConstant", Value = "true" } },
        ScheduledEvents = { { Name = "MyFirstModule.Monitor_Scheduled_event", Value = "Enabled" } } })
    assert.are.equal(200, st)
    local _, s = c.v1("GET", "/apps/calc/environments/Test/settings")
    assert.are.equal("true", s.Constants[1].Value)
    assert.are.equal("false", s.Constants[1].DeployedValue)
    assert.are.equal("Enabled", s.ScheduledEvents[1].Value)
    assert.is_true(is_array(s.CustomSettings))
    st, d = c.v1("POST", "/apps/calc/environments/Test/settings", { Constants = { { Name = "Nope.Nothing", Value = "1" } } })
    assert.are.same({ 400, "CONSTANT_NOT_FOUND" }, { st, d.errorCode })
    st, d = c.v1("POST", "/apps/calc/environments/Test/settings", { ScheduledEvents = { { Name = "Nope.Event", Value = "Enabled" } } })
    assert.are.same({ 400, "SCHEDULED_EVENT_NOT_FOUND" }, { st, d.errorCode })
    st, d = c.v1("POST", "/apps/calc/environments/Test/settings",
      { ScheduledEvents = { { Name = "MyFirstModule.Monitor_Scheduled_event", Value = "On" } } })
    assert.are.same({ 500, "INVALID_SCHEDULED_EVENT_PARAMETER" }, { st, d.errorCode })

    st, d = c.v1("POST", "/apps/calc/environments/Test/scale", { Instances = 2, MemoryPerInstance = 2048 })
    assert.are.same({ 200, 4096, 2 }, { st, d.TotalMemory, d.Instances })
    st, d = c.v1("POST", "/apps/calc/environments/Test/scale", { Instances = 1, MemoryPerInstance = 512 })
    assert.are.same({ 400, "INVALID_REQUEST" }, { st, d.errorCode })
    st, d = c.v1("POST", "/apps/freebie/environments/Sandbox/scale", { Instances = 1, MemoryPerInstance = 1024 })
    assert.are.same({ 400, "NOT_ALLOWED" }, { st, d.errorCode })

    assert.are.equal(200, (c.v1("POST", "/apps/calc/environments/Test/tags", { Tag = "europe" })))
    local _, tags = c.v1("GET", "/apps/calc/environments/Test/tags")
    assert.are.same({ "sandbox", "europe" }, { tags[1].Tag, tags[2].Tag })
    assert.are.equal(204, (c.v1("DELETE", "/apps/calc/environments/Test/tags", { Tag = "europe" })))
    _, tags = c.v1("GET", "/apps/calc/environments/Test/tags")
    assert.are.equal(1, #tags)
    st, d = c.v1("GET", "/apps/calc/environments/Nowhere/tags")
    assert.are.same({ 404, "NOT FOUND" }, { st, d.errorCode })
    st, d = c.v1("POST", "/apps/calc/environments/Nowhere/tags", { Tag = "x" })
    assert.are.same({ 404, "NOT_FOUND" }, { st, d.errorCode })
  end)

  it("log DownloadUrls point at the files listener, which refuses credentials", function()
    local st, d = c.v1("GET", "/apps/calc/environments/Production/logs/2026-01-02")
    assert.are.equal(200, st)
    assert.are.equal(S.ENV_PROD, d.Environment)
    assert.are.equal(sb.files_url, d.DownloadUrl:sub(1, #sb.files_url))
    assert.are_not.equal(sb.url, sb.files_url)
    local fst, _, resp = S.request{ method = "GET", url = d.DownloadUrl }
    assert.are.equal(200, fst)
    assert.truthy(resp.body:find("2026-01-02", 1, true))
    local lst = S.request{ method = "GET", url = d.DownloadUrl, headers = { ["Mendix-ApiKey"] = sb.apikey } }
    assert.are.equal(400, lst)
    local log = sb:requests()
    assert.are.same({ "files", false }, { log[#log - 1].listener, log[#log - 1].credentials })
    assert.are.same({ "files", true }, { log[#log].listener, log[#log].credentials })
    -- the leaked key is logged redacted; alone (no username) it identifies nobody
    assert.are.same({ "<redacted>", false }, { log[#log].headers["mendix-apikey"], log[#log].auth_ok })
    st, d = c.v1("GET", "/apps/calc/environments/Production/access-logs/2026-01-02")
    assert.are.equal(200, st)
    assert.truthy(d.DownloadUrl:find("/files/access-logs/", 1, true))
    st, d = S.client(sb, { username = "viewer@example.com", apikey = "sandbox-apikey-viewer" })
      .v1("GET", "/apps/calc/environments/Production/logs/2026-01-02")
    assert.are.same({ 403, "FORBIDDEN" }, { st, d.errorCode })
  end)

  it("creates a free app once", function()
    local pid = "0a0b0c0d-1111-4222-8333-444455556666"
    local st, d = c.v1("POST", "/apps", { ProjectId = pid })
    assert.are.same({ 200, pid }, { st, d.ProjectId })
    st, d = c.v1("POST", "/apps", { ProjectId = pid })
    assert.are.same({ 400, "APPLICATION_ALREADY_EXISTS" }, { st, d.errorCode })
    st, d = c.v1("POST", "/apps", { ProjectId = "nope" })
    assert.are.same({ 400, "INVALID_PROJECTID" }, { st, d.errorCode })
  end)
end)

describe("sandbox: Build API and Deploy API v2", function()
  local sb, c
  before_each(function() sb = S.start{ time_scale = 0.001 } c = S.client(sb) end)
  after_each(function() sb:stop() end)

  it("a build goes Queued, Building, Succeeded", function()
    sb:configure{ time_scale = 0.005 } -- 5 s queued = 25 ms, 60 s building = 300 ms
    local st, d = c.v1("POST", "/apps/calc/packages", { Branch = "main", Revision = "63", Version = "2.5.4", Description = "x" })
    assert.are.equal(200, st)
    local id = d.PackageId
    local seen = {}
    S.eventually(function()
      local _, p = c.v1("GET", "/apps/calc/packages/" .. id)
      if seen[#seen] ~= p.Status then seen[#seen + 1] = p.Status end
      return p.Status == "Succeeded"
    end, 5)
    assert.are.same({ "Queued", "Building", "Succeeded" }, seen)
    local dst, _, resp = c.v1("GET", "/apps/calc/packages/" .. id .. "/download")
    assert.are.equal(200, dst)
    assert.truthy(resp.body:find(id, 1, true))
  end)

  it("documents Build API errors", function()
    local st, d = c.v1("POST", "/apps/calc/packages", { Branch = "main", Revision = "1" })
    assert.are.same({ 400, "INVALID_PARAMETERS" }, { st, d.errorCode })
    st, d = c.v1("POST", "/apps/calc/packages", { Branch = "main", Revision = "1", Version = "2.5" })
    assert.are.same({ 400, "INVALID_VERSION" }, { st, d.errorCode })
    st, d = c.v1("DELETE", "/apps/calc/packages/" .. S.PKG2)
    assert.are.same({ 409, "PACKAGE_IN_USE" }, { st, d.errorCode })
    st, d = c.v1("GET", "/apps/calc/packages/" .. S.PKG_FAILED .. "/download")
    assert.are.same({ 500, "BUILD_NOT_SUCCEEDED" }, { st, d.errorCode })
    st, d = c.v1("GET", "/apps/calc/packages/00000000-0000-4000-8000-000000000000")
    assert.are.same({ 404, "PACKAGE_NOT_FOUND" }, { st, d.errorCode })
    assert.are.equal(200, (c.v1("DELETE", "/apps/calc/packages/" .. S.PKG_FAILED)))
    st = c.v1("GET", "/apps/calc/packages/" .. S.PKG_FAILED)
    assert.are.equal(404, st)
  end)

  it("v2 upload jobs go Queued, Running, Completed and then give the PackageId", function()
    sb:configure{ time_scale = 0.02 }
    local file = S.tmpfile("abc")
    local st, d = c.v2("POST", "/apps/calc/packages/upload?name=x_1.2.3.4.mda", nil, { file = file })
    os.remove(file)
    assert.are.equal(200, st)
    local seen = {}
    S.eventually(function()
      local _, j = c.v2("GET", "/apps/calc/jobs/" .. d.JobId)
      if seen[#seen] ~= j.Status then seen[#seen + 1] = j.Status end
      if j.Status == "Completed" then assert.are.equal(d.PackageId, j.PackageId) end
      return j.Status == "Completed"
    end, 5)
    assert.are.same({ "Queued", "Running", "Completed" }, seen)
  end)

  it("a v2 upload over a job_fail fault ends Failed", function()
    sb:configure{ faults = { { route = "POST /deploy/api/v2/apps/*/packages/upload", job_fail = true } } }
    local file = S.tmpfile("abc")
    local _, d = c.v2("POST", "/apps/calc/packages/upload", nil, { file = file })
    os.remove(file)
    assert.is_true(S.eventually(function()
      local _, j = c.v2("GET", "/apps/calc/jobs/" .. d.JobId)
      return j.Status == "Failed"
    end, 5))
  end)
end)

describe("sandbox: Backups API v2", function()
  local sb, c
  local base = "/apps/" .. S.PROJECT .. "/environments/" .. S.ENV_PROD
  before_each(function() sb = S.start{ time_scale = 0.001 } c = S.client(sb) end)
  after_each(function() sb:stop() end)

  it("paginates snapshots with offset and limit", function()
    local st, d = c.v2("GET", base .. "/snapshots?offset=1&limit=2")
    assert.are.equal(200, st)
    assert.are.same({ 5, 1, 2, 2 }, { d.total, d.offset, d.limit, #d.snapshots })
    local _, all = c.v2("GET", base .. "/snapshots")
    assert.are.same({ 100, 5 }, { all.limit, #all.snapshots })
    assert.are.equal(all.snapshots[2].snapshot_id, d.snapshots[1].snapshot_id)
    local _, empty = c.v2("GET", base .. "/snapshots?offset=10")
    assert.is_true(is_array(empty.snapshots))
    assert.are.equal(0, #empty.snapshots)
  end)

  it("snapshot, archive and restore jobs go queued, running, completed", function()
    sb:configure{ time_scale = 0.005 }
    local st, s = c.v2("POST", base .. "/snapshots", { comment = "mine" })
    assert.are.same({ 200, "queued", "mine" }, { st, s.state, s.comment })
    local bst, busy = c.v2("POST", base .. "/snapshots", {})
    assert.are.same({ 400, "ENVIRONMENT_BUSY" }, { bst, busy.errorCode })
    assert.is_true(S.eventually(function()
      local _, x = c.v2("GET", base .. "/snapshots/" .. s.snapshot_id)
      return x.state == "completed"
    end, 5))
    local _, put = c.v2("PUT", base .. "/snapshots/" .. s.snapshot_id, { comment = "renamed" })
    assert.are.equal("renamed", put.comment)
    local ast, a = c.v2("POST", base .. "/snapshots/" .. s.snapshot_id .. "/archives?data_type=database_only")
    assert.are.same({ 200, "database_only" }, { ast, a.data_type })
    assert.are.equal(json.null, a.url)
    local done = S.eventually(function()
      local _, x = c.v2("GET", base .. "/snapshots/" .. s.snapshot_id .. "/archives/" .. a.archive_id)
      return x.state == "completed" and x
    end, 5)
    assert.are.equal(sb.files_url, done.url:sub(1, #sb.files_url))
    local ust, u = c.v2("POST", base .. "/snapshots/" .. s.snapshot_id .. "/archives?data_type=everything")
    assert.are.same({ 400, "UNSUPPORTED" }, { ust, u.errorCode })
    -- restore needs a stopped environment
    local rst, r = c.v2("POST", base .. "/restores?source_snapshot_id=" .. s.snapshot_id)
    assert.are.same({ 400, "ERROR_NOT_ALLOWED" }, { rst, r.errorCode })
    c.v1("POST", "/apps/calc/environments/Production/stop")
    rst, r = c.v2("POST", base .. "/restores?source_snapshot_id=" .. s.snapshot_id)
    assert.are.same({ 200, "queued" }, { rst, r.state })
    assert.is_true(S.eventually(function()
      local _, x = c.v2("GET", base .. "/restores/" .. r.restore_id)
      return x.state == "completed"
    end, 5))
    rst, r = c.v2("POST", base .. "/restores?source_snapshot_id=00000000-0000-4000-8000-000000000000")
    assert.are.same({ 400, "NOT_FOUND" }, { rst, r.errorCode })
    assert.are.equal(204, (c.v2("DELETE", base .. "/snapshots/" .. s.snapshot_id)))
    local gst, g = c.v2("GET", base .. "/snapshots/" .. s.snapshot_id)
    assert.are.same({ 404, "NOT_FOUND" }, { gst, g.errorCode })
  end)

  it("answers ENVIRONMENT_NOT_FOUND, NO_ACCESS and NOT_SUPPORTED", function()
    local st, d = c.v2("GET", "/apps/" .. S.PROJECT .. "/environments/00000000-0000-4000-8000-000000000000/snapshots")
    assert.are.same({ 404, "ENVIRONMENT_NOT_FOUND" }, { st, d.errorCode })
    st, d = S.client(sb, { username = "viewer@example.com", apikey = "sandbox-apikey-viewer" }).v2("GET", base .. "/snapshots")
    assert.are.same({ 403, "NO_ACCESS" }, { st, d.errorCode })
    st, d = c.v2("GET", "/apps/9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a/environments/9e8d7c6b-0000-4000-8000-00000000f001/snapshots")
    assert.are.same({ 400, "NOT_SUPPORTED" }, { st, d.errorCode })
  end)
end)

describe("sandbox: Deploy API v4", function()
  local sb, c
  before_each(function() sb = S.start{ time_scale = 0.001 } c = S.client(sb) end)
  after_each(function() sb:stop() end)

  it("paginates apps and environments", function()
    local st, d = c.v4("GET", "/apps?offset=1&limit=1")
    assert.are.equal(200, st)
    assert.are.same({ 1, 1, 1 }, { d.pagination.offset, d.pagination.limit, d.pagination.size })
    assert.are.equal("tictactoc", d.apps[1].subdomain)
    st, d = c.v4("GET", "/apps?licenseType=free")
    assert.are.same({ 1, "free" }, { #d.apps, d.apps[1].licenseType })
    st, d = c.v4("GET", "/apps?limit=0")
    assert.are.same({ 400, 400 }, { st, d.error.code })
    st, d = c.v4("GET", "/apps/" .. S.PROJECT .. "/environments?sort=-name&expand=package")
    assert.are.same({ "Test", "Production", "Acceptance" }, { d.environments[1].name, d.environments[2].name, d.environments[3].name })
    assert.are.equal(S.PKG1, d.environments[1].package.id)
  end)

  it("technical contact and permissions change later reads; 404 uses the v4 error body", function()
    local st = c.v4("PATCH", "/apps/" .. S.PROJECT, { technicalContact = { userId = "jane.doe@example.com" } })
    assert.are.equal(200, st)
    local _, app = c.v4("GET", "/apps/" .. S.PROJECT)
    assert.are.equal("jane.doe@example.com", app.technicalContact.userId)
    local path = "/apps/" .. S.PROJECT .. "/environments/" .. S.ENV_TEST .. "/permissions"
    local pst, p = c.v4("PATCH", path, { permissions = { { member = { userId = "viewer@example.com" }, canDeployApp = true } } })
    assert.are.same({ 200, true }, { pst, p.permissions[1].canDeployApp })
    local _, perms = c.v4("GET", path .. "?userId=viewer@example.com")
    assert.are.same({ 1, "true" }, { #perms.permissions, perms.permissions[1].canDeployApp })
    assert.are.equal("jane.doe@example.com", perms.technicalContact)
    local nst, nf = c.v4("GET", "/apps/00000000-0000-4000-8000-000000000000")
    assert.are.same({ 404, 404 }, { nst, nf.error.code })
    assert.is_string(nf.error.message)
  end)
end)

describe("sandbox: Private Cloud", function()
  local sb, c
  before_each(function() sb = S.start{ time_scale = 0.001 } c = S.client(sb) end)
  after_each(function() sb:stop() end)

  local NEW_CLUSTER = "7a1f0d3e-1b2c-4d5e-8f90-0123456789ab"
  local function cluster_body(id, name)
    return { manifestVersion = "1", cluster = { clusterId = id, name = name or "new", clusterType = "eks" } }
  end

  local function finish(job)
    return S.eventually(function()
      local _, j = c.pc("GET", "/jobs/" .. job.id)
      return (j.status == "finished" or j.status == "failed") and j
    end, 5)
  end

  it("mutations answer 202 with a job and Location, and take effect when the job finishes", function()
    sb:configure{ time_scale = 0.05 } -- the job takes 6 s * 0.05 = 0.3 s
    local st, job, resp = c.pc("POST", "/clusters", cluster_body(NEW_CLUSTER))
    assert.are.equal(202, st)
    assert.are.equal("created", job.status)
    assert.are.equal(sb.bases["pc-deploy"] .. "/jobs/" .. job.id, resp.headers["location"])
    assert.are.equal(404, (c.pc("GET", "/clusters/" .. NEW_CLUSTER)))
    local j = finish(job)
    assert.are.equal("finished", j.status)
    local gst, cl = c.pc("GET", "/clusters/" .. NEW_CLUSTER)
    assert.are.same({ 200, "eks" }, { gst, cl.cluster.clusterType })
  end)

  it("a duplicate ID makes the job fail with the error in the job body", function()
    local st, job = c.pc("POST", "/clusters", cluster_body(S.CLUSTER, "dup"))
    assert.are.equal(202, st)
    local j = finish(job)
    assert.are.equal("failed", j.status)
    assert.are.equal(409, j.error.code)
    assert.truthy(j.error.message:find("already exists", 1, true))
  end)

  it("creates, updates and deletes namespaces and environments", function()
    local ns = "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a"
    local _, job = c.pc("POST", "/clusters/" .. S.CLUSTER .. "/namespaces",
      { manifestVersion = "1", namespace = { namespaceId = ns, name = "ns2", installationType = "Connected" } })
    assert.are.equal("finished", finish(job).status)
    local _, list = c.pc("GET", "/clusters/" .. S.CLUSTER .. "/namespaces")
    assert.are.equal(2, #list.namespaces)
    local manifest = { manifestVersion = "1", environment = { id = "newenv1",
      properties = { name = "staging", production = false, defaultStudioTarget = false, secretsStoreEnabled = false },
      deployment = { appUrl = "https://staging.example.com", packageId = "905ba2c3-4424-48b8-b4b0-393eedd4cd1e" },
      container = { instances = 1, coreResources = { limits = { cpu = "1", memory = "1Gi" }, requests = { cpu = "1", memory = "1Gi" } } },
      provider = { clusterId = S.CLUSTER, namespace = "ns2" },
      services = { { name = "database", plan = "OnDemand", config = '{type: "database"}' } } } }
    local st
    st, job = c.pc("POST", "/apps/" .. S.PROJECT .. "/environments", manifest)
    assert.are.equal(202, st)
    assert.are.equal("finished", finish(job).status)
    local gst, env = c.pc("GET", "/apps/" .. S.PROJECT .. "/namespaces/" .. ns .. "/environments/newenv1")
    assert.are.same({ 200, "staging", "ns2" }, { gst, env.environment.properties.name, env.environment.provider.namespace })
    manifest.environment.container.instances = 3
    _, job = c.pc("PUT", "/apps/" .. S.PROJECT .. "/namespaces/" .. ns .. "/environments/newenv1", manifest)
    assert.are.equal("finished", finish(job).status)
    _, env = c.pc("GET", "/apps/" .. S.PROJECT .. "/environments/newenv1")
    assert.are.equal(3, env.environment.container.instances)
    _, job = c.pc("POST", "/apps/" .. S.PROJECT .. "/environments", manifest) -- duplicate id
    assert.are.equal("failed", finish(job).status)
    _, job = c.pc("DELETE", "/apps/" .. S.PROJECT .. "/environments/newenv1")
    assert.are.equal("finished", finish(job).status)
    assert.are.equal(404, (c.pc("GET", "/apps/" .. S.PROJECT .. "/environments/newenv1")))
  end)

  it("builds a package and the finished job carries packageId", function()
    local st, job = c.pc("POST", "/apps/" .. S.PROJECT .. "/packages/build", { branch = "main", revision = "93de884c", version = "2.0.4" })
    assert.are.equal(202, st)
    local j = finish(job)
    assert.are.equal("finished", j.status)
    assert.is_string(j.packageId)
    local pst, p = c.pc("GET", "/apps/" .. S.PROJECT .. "/packages/" .. j.packageId .. "?url=true")
    assert.are.equal(200, pst)
    assert.are.equal(sb.files_url, p.package.url.location:sub(1, #sb.files_url))
    local _, list = c.pc("GET", "/apps/" .. S.PROJECT .. "/packages?limit=1")
    assert.are.same({ 1, 1 }, { #list.packages, list.pagination.size })
    assert.are.equal(400, (c.pc("POST", "/apps/" .. S.PROJECT .. "/packages/build", { branch = "main" })))
  end)

  it("redirects CLI downloads to the files listener with 303", function()
    local _, list = c.pc("GET", "/cli")
    assert.is_true(#list.cliVersionList >= 1)
    local v = list.cliVersionList[1].cliVersion
    local st, _, resp = S.request{ method = "POST", max_redirects = 0, headers = { Authorization = "MxToken " .. sb.token },
      url = sb.bases["pc-deploy"] .. "/cli/" .. v .. "?os=linux&architecture=x86" }
    assert.are.equal(303, st)
    local loc = resp.headers["location"]
    assert.are.equal(sb.files_url, loc:sub(1, #sb.files_url))
    local fst, _, fresp = S.request{ method = "GET", url = loc }
    assert.are.equal(200, fst)
    assert.truthy(fresp.body:find("mxpc-cli " .. v, 1, true))
    local log = sb:requests()
    assert.are.same({ "files", false }, { log[#log].listener, log[#log].credentials })
    assert.are.same({ "api", 303, true }, { log[#log - 1].listener, log[#log - 1].status, log[#log - 1].credentials })
    st = S.request{ method = "POST", max_redirects = 0, headers = { Authorization = "MxToken " .. sb.token },
      url = sb.bases["pc-deploy"] .. "/cli/9.9.9?os=linux&architecture=x86" }
    assert.are.equal(404, st)
    st = S.request{ method = "POST", max_redirects = 0, headers = { Authorization = "MxToken " .. sb.token },
      url = sb.bases["pc-deploy"] .. "/cli/" .. v .. "?os=beos&architecture=x86" }
    assert.are.equal(400, st)
  end)
end)

describe("sandbox: control calls", function()
  -- host/sandbox_host.c copies tables between the host's and the sandbox's Lua states; it walked
  -- a nested table with two stack slots a level on the source state without making room for them
  -- (writing past a task's stack: memcheck_workflow sees that write, this checks the result)
  it("copy tables nested to the copy's depth limit, in both directions", function()
    local sb = S.start{ time_scale = 0.001 }
    finally(function() sb:stop() end)
    local function nested(n)
      local t = { leaf = true }
      for i = 1, n do t = { ["level" .. i] = t, other = { i, i + 1 } } end
      return t
    end
    -- from a task with a shallow stack, as a script's call would be
    local ok, err = mx.spawn(function() return pcall(sb.configure, sb, { durations = { deep = nested(40) } }) end):wait()
    assert.is_true(ok, tostring(err))
    local world = sb:world()
    assert.are.equal("table", type(world))
    -- and a seed nested as deeply reaches the sandbox whole up to the limit
    local sb2 = S.start{ time_scale = 0.001, extra = nested(40) }
    finally(function() sb2:stop() end)
    assert.are.equal("table", type(sb2:world()))
  end)
end)
