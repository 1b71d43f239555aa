-- Conformance of every Deploy API v1, Deploy API v2, Build API and Backups API operation (the
-- APIs without a machine-readable spec): each is called through the Lua API against the sandbox,
-- and the sandbox's request log record of that call is checked against the docs' example
-- request (the docs pages; their examples as data in specs/docs/*.json):
--   - the exact method, path and query string (query keys in the docs' order);
--   - Mendix-Username is the sandbox user, Mendix-ApiKey was sent (the log only holds
--     "<redacted>") and was the right one (`auth_ok`), and no other credential was sent;
--   - Content-Type is application/json on every call except uploads, which are
--     multipart/form-data with a boundary and one part named "file" (specs/README.md);
--   - the JSON body, decoded with mxdeploy.json, deep-equals the docs' example body (same field
--     names, types, arrays; the test passes the docs' example values), and calls whose example
--     has no body send none.
-- Where the docs' example is not what is sent, the DOCS table below says so.

local mx = require("mxdeploy")
local json = require("mxdeploy.json")
local sandboxctl = require("mxdeploy.sandboxctl")

local PROJECT = "c533ee0b-f7db-4e62-868b-1192d392ccec"   -- calc
local TEST_ENV = "22064f8f-ee55-438c-9ab2-182f2f8e5f2f"   -- calc Test (stopped)
local DOC_ENV = "cd5fc610-edb0-43c5-a374-0439a6411ace"    -- calc Acceptance = the Backups docs' EnvironmentId
local DOC_PKG = "b3d14e53-2654-4534-b374-9179a69ef3cf"    -- the v1/Build docs' PackageId (seeded)
local DOC_PROJECT = "f5129445-b638-42f4-8108-5f370c85dc57" -- the v1 docs' Create Free App ProjectId
local PKG1 = "4ee10492-6cfc-4582-b825-a9040c0988ad"

-- The docs' example request bodies, from specs/docs/<page>.json (the docs pages' example requests
-- as data, verbatim), by page and section title.
local function docs_body(page, title)
  local f = assert(io.open(require("prism").specs_dir() .. "/docs/" .. page .. ".json"))
  local doc = json.decode(f:read("a"))
  f:close()
  for _, sec in ipairs(doc.sections) do
    if sec.title == title then
      return assert(sec.requests[1] and sec.requests[1].body, page .. ": no example body in " .. title)
    end
  end
  error(page .. ": no section " .. title)
end

local DOCS = {
  create_free_app = docs_body("deploy-api-1", "Create Free App Environment"),
  start_environment = docs_body("deploy-api-1", "Start Environment"),
  transport_package = docs_body("deploy-api-1", "Transport a Deployment Package to an Environment"),
  set_environment_settings = docs_body("deploy-api-1", "Set Environment Settings"),
  -- The docs show `{ Instances: 2, MemoryPerInstance: 2048, }` (not JSON: unquoted names, a
  -- trailing comma) and a stray UUID after /scale in the example path; the URL template is
  -- .../scale and the body is this JSON.
  scale_environment = [[{ "Instances": 2, "MemoryPerInstance": 2048 }]],
  create_environment_tag = docs_body("deploy-api-1", "Create Environment Tags"),
  -- the Create Environment Tags example output shows the tag "A", which the delete example removes
  create_environment_tag_a = [[{ "Tag": "A" }]],
  delete_environment_tag = docs_body("deploy-api-1", "Delete Environment Tags"),
  build_package = docs_body("build-api", "Start Building Deployment Package"),
  create_snapshot = docs_body("backups-api-v2", "Request Creation of an Environment Snapshot"),
  update_snapshot = docs_body("backups-api-v2", "Update an Existing Snapshot"),
}

local called = {}

-- ---------- a seed with the docs' example data ----------

-- Lua source for a seed value (plain data: tables, strings, numbers, booleans).
local function lua_literal(v, indent)
  indent = indent or ""
  local t = type(v)
  if t == "string" then return ("%q"):format(v) end
  if t == "number" then
    return math.type(v) == "integer" and tostring(v) or ("%.17g"):format(v)
  end
  if t == "boolean" then return tostring(v) end
  assert(t == "table", "seed value of type " .. t)
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  local inner = indent .. "  "
  local out = {}
  for _, k in ipairs(keys) do
    local key = type(k) == "number" and ("[" .. k .. "]") or ("[" .. ("%q"):format(k) .. "]")
    out[#out + 1] = inner .. key .. " = " .. lua_literal(v[k], inner)
  end
  return "{\n" .. table.concat(out, ",\n") .. "\n" .. indent .. "}"
end

-- The default seed, changed so that the docs' example values are valid requests:
-- settings hold the docs' constants and scheduled event (before the documented change), the
-- docs' Create Free App ProjectId is free, the docs' package is deployed nowhere (so it can be
-- deleted), and the docs' Backups environment (calc Acceptance) has 5 snapshots.
local function docs_seed_file()
  local src = (os.getenv("MXDEPLOY_SOURCE_DIR") or ".") .. "/sandbox/seed.lua"
  local seed = assert(loadfile(src, "t", {}))()
  local docs_settings = json.decode(DOCS.set_environment_settings)
  seed.settings = {
    Constants = {
      { Name = "MyFirstModule.BooleanConstant", DataType = "_Boolean", Value = "false", DeployedValue = "false" },
      docs_settings.Constants[2],
    },
    CustomSettings = {},
    ScheduledEvents = { { Name = "MyFirstModule.Monitor_Scheduled_event", Value = "Disabled", DeployedValue = "Disabled" } },
  }
  for _, a in ipairs(seed.apps) do
    if a.ProjectId == DOC_PROJECT then a.ProjectId = "0b5a3c9e-1234-4a56-8b9c-0d1e2f3a4b5c" end
    for _, e in ipairs(a.environments) do
      if e.PackageId == DOC_PKG then e.PackageId = PKG1 end
      if e.EnvironmentId == DOC_ENV then e.snapshots = 5 end
    end
  end
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("return ", lua_literal(seed), "\n")
  f:close()
  return path
end

local seed_path
local function new_sandbox()
  seed_path = seed_path or docs_seed_file()
  local sb = sandboxctl.start{ time_scale = 0.001, seed = seed_path }
  local c = mx.sandbox_client(sb, { poll_interval = 0.01, yes = true })
  return sb, c
end

-- ---------- checks ----------

-- Deep equality of decoded JSON: same types, same keys, arrays stay arrays, null stays null.
local function json_equal(a, b, where)
  where = where or "body"
  if type(a) ~= type(b) then return false, where .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) ~= "table" then
    if a ~= b then return false, where .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    return true
  end
  if json.is_array(a) ~= json.is_array(b) then return false, where .. ": array vs object" end
  for k, v in pairs(a) do
    local ok, why = json_equal(v, b[k], where .. "." .. tostring(k))
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, where .. "." .. tostring(k) .. ": unexpected" end
  end
  return true
end

-- The one API request logged since the last reset.
local function only_request(sb)
  local found = {}
  for _, r in ipairs(sb:requests()) do
    if r.listener == "api" then found[#found + 1] = r end
  end
  assert.are.equal(1, #found, "expected exactly one request, got " .. #found)
  return found[1]
end

-- Checks the one request `op` sent against the docs: method, path, query, credentials,
-- Content-Type and body (opts.body: the docs' JSON text; opts.upload: the file's name).
local function expect(sb, op, method, path, opts)
  opts = opts or {}
  local r = only_request(sb)
  local what = op .. " " .. method .. " " .. path
  assert.are.equal(method, r.method, what)
  assert.are.equal(path, r.path, what)
  assert.are.equal(opts.query, r.query, what)
  assert.is_true(r.status < 400, what .. ": status " .. tostring(r.status))
  -- credentials: the sandbox user, the right key (never stored), nothing else
  local h = r.headers
  assert.are.equal(sb.username, h["mendix-username"], what)
  assert.are.equal("<redacted>", h["mendix-apikey"], what)
  assert.is_true(r.auth_ok, what .. ": the API key does not match the user")
  assert.is_nil(h["authorization"], what)
  if opts.accept then assert.are.equal(opts.accept, h["accept"], what) end
  if opts.upload then
    assert.matches("^multipart/form%-data; boundary=%S+$", h["content-type"], what)
    assert.is_nil(r.body, what)
    assert.is_true(r.body_size > opts.upload_size, what)
    local files = {}
    for _, p in ipairs(r.parts or {}) do if p.filename then files[#files + 1] = p end end
    assert.are.equal(1, #files, what .. ": one file part")
    assert.are.same({ "file", opts.upload }, { files[1].name, files[1].filename })
  else
    assert.are.equal("application/json", h["content-type"], what)
    if opts.body then
      assert.is_string(r.body, what .. ": no body")
      assert.are.equal(#r.body, r.body_size)
      local ok, why = json_equal(json.decode(opts.body), json.decode(r.body))
      assert(ok, what .. ": body differs from the docs' example: " .. tostring(why) .. "\n" .. r.body)
    else
      assert.is_nil(r.body, what)
      assert.are.equal(0, r.body_size, what .. ": a body was sent")
    end
  end
  called[op] = true
  sb:reset_log()
  return r
end

-- A package file named as in the docs' curl example (-F "file=@.../calc_1.0.0.45.mda").
local function temp_mda(bytes)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -m 700 '" .. dir .. "'"))
  local path = dir .. "/calc_1.0.0.45.mda"
  local f = assert(io.open(path, "wb"))
  f:write("PK\3\4", ("m"):rep(bytes - 4))
  f:close()
  return path, function() os.remove(path); os.remove(dir) end
end

describe("Deploy API v1 against the sandbox", function()
  local sb, c, mda, cleanup
  local V1 = "/deploy/api/1/apps/calc"
  setup(function()
    sb, c = new_sandbox()
    mda, cleanup = temp_mda(4096)
  end)
  teardown(function() sb:stop(); cleanup() end)
  before_each(function() sb:reset_log() end)

  it("list_apps, get_app, list_environments, get_environment", function()
    local apps = c.v1.list_apps()
    assert.is_true(json.is_array(apps))
    assert.are.equal("calc", apps[1].AppId)
    expect(sb, "v1.list_apps", "GET", "/deploy/api/1/apps")
    assert.are.equal("Calculation App", c.v1.get_app("calc").Name)
    expect(sb, "v1.get_app", "GET", V1)
    assert.are.equal(3, #c.v1.list_environments("calc"))
    expect(sb, "v1.list_environments", "GET", V1 .. "/environments")
    assert.are.equal("Acceptance", c.v1.get_environment("calc", "Acceptance").Mode)
    expect(sb, "v1.get_environment", "GET", V1 .. "/environments/Acceptance")
  end)

  it("create_free_app with the docs' ProjectId", function()
    local app = c.v1.create_free_app({ ProjectId = DOC_PROJECT })
    assert.are.equal(DOC_PROJECT, app.ProjectId)
    expect(sb, "v1.create_free_app", "POST", "/deploy/api/1/apps", { body = DOCS.create_free_app })
  end)

  it("get_environment_package with ?url=true", function()
    local pkg = c.v1.get_environment_package("calc", "Acceptance", { url = true })
    assert.is_string(pkg.PackageId)
    expect(sb, "v1.get_environment_package", "GET", V1 .. "/environments/Acceptance/package", { query = "url=true" })
  end)

  it("settings: read, change as the docs do, write back: the body is the docs' example", function()
    local settings = c.v1.get_environment_settings("calc", "acceptance")
    expect(sb, "v1.get_environment_settings", "GET", V1 .. "/environments/acceptance/settings")
    assert.is_true(json.is_array(settings.CustomSettings))   -- [] stays an array
    settings.Constants[1].Value = "true"
    settings.ScheduledEvents[1].Value = "Enabled"
    local written = c.v1.set_environment_settings("calc", "acceptance", settings)
    assert.are.equal("true", written.Constants[1].Value)
    assert.are.equal("Enabled", written.ScheduledEvents[1].Value)
    expect(sb, "v1.set_environment_settings", "POST", V1 .. "/environments/acceptance/settings",
      { body = DOCS.set_environment_settings })
  end)

  it("scale_environment", function()
    local r = c.v1.scale_environment("calc", "acceptance", { Instances = 2, MemoryPerInstance = 2048 })
    assert.are.equal(4096, r.TotalMemory)
    expect(sb, "v1.scale_environment", "POST", V1 .. "/environments/acceptance/scale", { body = DOCS.scale_environment })
  end)

  it("tags: create, get, delete (DELETE with the documented JSON body)", function()
    c.v1.create_environment_tag("calc", "acceptance", { Tag = "europe" })
    expect(sb, "v1.create_environment_tag", "POST", V1 .. "/environments/acceptance/tags", { body = DOCS.create_environment_tag })
    c.v1.create_environment_tag("calc", "acceptance", { Tag = "A" })
    expect(sb, "v1.create_environment_tag", "POST", V1 .. "/environments/acceptance/tags", { body = DOCS.create_environment_tag_a })
    local tags = c.v1.get_environment_tags("calc", "acceptance")
    assert.are.same({ "europe", "A" }, { tags[1].Tag, tags[2].Tag })
    expect(sb, "v1.get_environment_tags", "GET", V1 .. "/environments/acceptance/tags")
    c.v1.delete_environment_tag("calc", "acceptance", { Tag = "A" })
    expect(sb, "v1.delete_environment_tag", "DELETE", V1 .. "/environments/acceptance/tags", { body = DOCS.delete_environment_tag })
    tags = c.v1.get_environment_tags("calc", "acceptance")
    assert.are.same({ "europe" }, { tags[1].Tag, tags[2] and tags[2].Tag })
  end)

  it("logs: DownloadUrl, then fetched from the files host without credentials", function()
    local info = c.v1.get_app_logs("calc", "acceptance", "2018-08-10")
    assert.is_string(info.DownloadUrl)
    expect(sb, "v1.get_app_logs", "GET", V1 .. "/environments/acceptance/logs/2018-08-10")
    local info2 = c.v1.get_access_logs("calc", "acceptance", "2021-06-12")
    assert.is_string(info2.DownloadUrl)
    expect(sb, "v1.get_access_logs", "GET", V1 .. "/environments/acceptance/access-logs/2021-06-12")
    local out = os.tmpname()
    assert.are.equal(out, c.v1.download_app_logs("calc", "acceptance", "2018-08-10", out))
    local f = assert(io.open(out))
    assert.is_true(#f:read("a") > 0)
    f:close()
    os.remove(out)
    local files = 0
    for _, r in ipairs(sb:requests()) do
      if r.listener == "files" then
        files = files + 1
        assert.is_false(r.credentials)
        assert.is_nil(r.headers["mendix-username"])
        assert.is_nil(r.headers["content-type"])
      end
    end
    assert.are.equal(1, files)
  end)

  it("stop, upload (multipart, ?name=), transport, clean, start (job) and start status", function()
    c.v1.stop_environment("calc", "Acceptance")
    expect(sb, "v1.stop_environment", "POST", V1 .. "/environments/Acceptance/stop")
    local up = c.v1.upload_package("calc", mda, { name = "calc_1.0.0.45.mda" })
    assert.is_string(up.PackageId)
    expect(sb, "v1.upload_package", "POST", V1 .. "/packages/upload",
      { query = "name=calc_1.0.0.45.mda", upload = "calc_1.0.0.45.mda", upload_size = 4096 })
    c.v1.transport_package("calc", "acceptance", { PackageId = DOC_PKG })
    expect(sb, "v1.transport_package", "POST", V1 .. "/environments/acceptance/transport", { body = DOCS.transport_package })
    c.v1.clean_environment("calc", "acceptance")
    expect(sb, "v1.clean_environment", "POST", V1 .. "/environments/acceptance/clean")
    local job = c.v1.start_environment("calc", "Acceptance", { AutoSyncDb = true })
    assert.is_true(mx.is_job(job))
    expect(sb, "v1.start_environment", "POST", V1 .. "/environments/Acceptance/start", { body = DOCS.start_environment })
    local status = c.v1.get_start_status("calc", "Acceptance", job.id)
    assert.is_string(status.Status)
    expect(sb, "v1.get_start_status", "GET", V1 .. "/environments/Acceptance/start/" .. job.id)
    assert.are.equal("Started", job:wait{ timeout = 30 }.Status)
    for _, rq in ipairs(sb:requests()) do   -- the job polls the same documented URL
      assert.are.same({ "GET", V1 .. "/environments/Acceptance/start/" .. job.id, "application/json", true },
        { rq.method, rq.path, rq.headers["content-type"], rq.auth_ok })
    end
  end)

  it("starting a running environment is ALREADY_STARTED: a job that is already done", function()
    local job = c.v1.start_environment("calc", "Production")
    assert.is_true(job.already_done)
    assert.are.equal("done", job.state)
    assert.is_true(job:wait{ timeout = 10 }.already_done)
  end)
end)

describe("Deploy API v2 against the sandbox", function()
  local sb, c, mda, cleanup
  setup(function() sb, c = new_sandbox(); mda, cleanup = temp_mda(10000) end)
  teardown(function() sb:stop(); cleanup() end)
  before_each(function() sb:reset_log() end)

  it("upload_package returns a job whose result carries PackageId; get_job", function()
    local job = c.v2.upload_package("calc", mda, { name = "calc_1.0.0.45.mda" })
    expect(sb, "v2.upload_package", "POST", "/deploy/api/v2/apps/calc/packages/upload",
      { query = "name=calc_1.0.0.45.mda", upload = "calc_1.0.0.45.mda", upload_size = 10000 })
    assert.is_string(job.id)
    local status = c.v2.get_job("calc", job.id)
    assert.is_string(status.Status)
    -- the docs' Job Status example shows no Content-Type; specs/README.md: on every call but uploads
    expect(sb, "v2.get_job", "GET", "/deploy/api/v2/apps/calc/jobs/" .. job.id)
    local result = job:wait{ timeout = 30 }
    assert.are.equal("Completed", result.Status)
    assert.are.equal(job.start_response.PackageId, result.PackageId)
  end)
end)

describe("Build API against the sandbox", function()
  local sb, c
  local B = "/deploy/api/1/apps/calc/packages"
  setup(function() sb, c = new_sandbox() end)
  teardown(function() sb:stop() end)
  before_each(function() sb:reset_log() end)

  -- The Build docs' examples show `Accept: */*` (and no Content-Type; specs/README.md says
  -- Content-Type: application/json on every call but uploads, which is what is sent).
  local A = "*/*"

  it("list, build (job until Succeeded), get the docs' package with ?url=true, download, delete", function()
    local pkgs = c.build.list_packages("calc")
    assert.is_true(#pkgs >= 1)
    expect(sb, "build.list_packages", "GET", B, { accept = A })
    local job = c.build.build_package("calc", { Branch = "branches/feature", Revision = "63", Version = "2.5.4",
      Description = "Add scientific mode" })
    expect(sb, "build.build_package", "POST", B, { body = DOCS.build_package, accept = A })
    local built = job:wait{ timeout = 30 }
    assert.are.equal("Succeeded", built.Status)
    sb:reset_log()
    local pkg = c.build.get_package("calc", DOC_PKG, { url = true })
    assert.are.equal(DOC_PKG, pkg.PackageId)
    expect(sb, "build.get_package", "GET", B .. "/" .. DOC_PKG, { query = "url=true", accept = A })
    local out = os.tmpname()
    assert.are.equal(out, c.build.download_package("calc", DOC_PKG, out))
    local f = assert(io.open(out, "rb"))
    assert.matches("PK%-SANDBOX%-MDA", f:read("a"))
    f:close()
    os.remove(out)
    expect(sb, "build.download_package", "GET", B .. "/" .. DOC_PKG .. "/download", { accept = A })
    c.build.delete_package("calc", DOC_PKG)
    expect(sb, "build.delete_package", "DELETE", B .. "/" .. DOC_PKG, { accept = A })
    assert.has_error(function() c.build.get_package("calc", DOC_PKG) end)
  end)
end)

describe("Backups API against the sandbox", function()
  local sb, c
  local base = "/deploy/api/v2/apps/" .. PROJECT .. "/environments/"
  setup(function() sb, c = new_sandbox() end)
  teardown(function() sb:stop() end)
  before_each(function() sb:reset_log() end)

  it("list_snapshots ?offset=0&limit=2 (the docs' order), and each_snapshot pages lazily", function()
    local page = c.backups.list_snapshots(PROJECT, DOC_ENV, { offset = 0, limit = 2 })
    assert.are.equal(2, #page.snapshots)
    assert.are.equal(5, page.total)
    expect(sb, "backups.list_snapshots", "GET", base .. DOC_ENV .. "/snapshots", { query = "offset=0&limit=2" })
    local n = 0
    for s in c.backups.each_snapshot(PROJECT, DOC_ENV, { limit = 2 }) do
      assert.is_string(s.snapshot_id)
      n = n + 1
    end
    assert.are.equal(5, n)
    local queries = {}
    for _, r in ipairs(sb:requests()) do queries[#queries + 1] = r.query end
    assert.are.same({ "offset=0&limit=2", "offset=2&limit=2", "offset=4&limit=2" }, queries)
  end)

  it("snapshot, update, archive (download without credentials), restore (both examples), delete", function()
    local job = c.backups.create_snapshot(PROJECT, DOC_ENV, { comment = "My snapshot" })
    expect(sb, "backups.create_snapshot", "POST", base .. DOC_ENV .. "/snapshots", { body = DOCS.create_snapshot })
    local snap = job:wait{ timeout = 30 }
    assert.are.equal("completed", snap.state)
    sb:reset_log()
    assert.are.equal(job.id, c.backups.get_snapshot(PROJECT, DOC_ENV, job.id).snapshot_id)
    expect(sb, "backups.get_snapshot", "GET", base .. DOC_ENV .. "/snapshots/" .. job.id)
    assert.are.equal("Hello", c.backups.update_snapshot(PROJECT, DOC_ENV, job.id, { comment = "Hello" }).comment)
    expect(sb, "backups.update_snapshot", "PUT", base .. DOC_ENV .. "/snapshots/" .. job.id, { body = DOCS.update_snapshot })

    local ajob = c.backups.create_archive(PROJECT, DOC_ENV, job.id, { data_type = "database_only" })
    expect(sb, "backups.create_archive", "POST", base .. DOC_ENV .. "/snapshots/" .. job.id .. "/archives",
      { query = "data_type=database_only" })
    local archive = ajob:wait{ timeout = 30 }
    assert.is_string(archive.url)
    sb:reset_log()
    assert.are.equal(ajob.id, c.backups.get_archive(PROJECT, DOC_ENV, job.id, ajob.id).archive_id)
    expect(sb, "backups.get_archive", "GET", base .. DOC_ENV .. "/snapshots/" .. job.id .. "/archives/" .. ajob.id)
    local body = c.backups.download_archive(archive)
    assert.is_true(#body > 0)
    local files = sb:requests()
    assert.are.equal("files", files[#files].listener)
    assert.is_false(files[#files].credentials)
    sb:reset_log()

    -- like the docs, restore into another (stopped) environment of the same app
    local rjob = c.backups.restore_snapshot(PROJECT, TEST_ENV, { source_snapshot_id = job.id })
    expect(sb, "backups.restore_snapshot", "POST", base .. TEST_ENV .. "/restores", { query = "source_snapshot_id=" .. job.id })
    assert.are.equal("completed", rjob:wait{ timeout = 30 }.state)
    sb:reset_log()
    assert.are.equal(rjob.id, c.backups.get_restore(PROJECT, TEST_ENV, rjob.id).restore_id)
    expect(sb, "backups.get_restore", "GET", base .. TEST_ENV .. "/restores/" .. rjob.id)
    local djob = c.backups.restore_snapshot(PROJECT, TEST_ENV, { source_snapshot_id = job.id, db_only = true })
    expect(sb, "backups.restore_snapshot", "POST", base .. TEST_ENV .. "/restores",
      { query = "source_snapshot_id=" .. job.id .. "&db_only=true" })
    assert.are.equal("completed", djob:wait{ timeout = 30 }.state)
    sb:reset_log()

    c.backups.delete_snapshot(PROJECT, DOC_ENV, job.id)
    expect(sb, "backups.delete_snapshot", "DELETE", base .. DOC_ENV .. "/snapshots/" .. job.id)
  end)
end)

describe("coverage", function()
  teardown(function() if seed_path then os.remove(seed_path) end end)

  it("every v1, v2, build and backups operation was checked against the docs", function()
    local missing, n = {}, 0
    for _, op in ipairs(mx.operations()) do
      if op.auth == "apikey" then
        n = n + 1
        if not called[op.full_name] then missing[#missing + 1] = op.full_name end
      end
    end
    assert.are.same({}, missing)
    assert.are.equal(36, n)
  end)
end)
