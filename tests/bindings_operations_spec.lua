-- The operations table: exactly the 83 rows of specs/operations.tsv and operations-newer.tsv, what mx.operations() and
-- mx.help() show, and docs/REFERENCE.md generated from it and committed up to date.

local mx = require("mxdeploy")
local prism = require("prism") -- for the specs directory

local source = os.getenv("MXDEPLOY_SOURCE_DIR") or "."

local function tsv_rows()
  local rows = {}
  for _, name in ipairs({ "operations.tsv", "operations-newer.tsv" }) do
    local f = assert(io.open(prism.specs_dir() .. "/" .. name))
    f:read("l")
    for line in f:lines() do
      local api, method, path, completes = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)")
      if api then rows[#rows + 1] = { api = api, method = method, path = path, completes = completes } end
    end
    f:close()
  end
  return rows
end

describe("mx.operations()", function()
  it("has one record per row of operations.tsv and operations-newer.tsv, in order, with method, path and completion", function()
    local rows, ops = tsv_rows(), mx.operations()
    assert.are.equal(83, #rows)
    assert.are.equal(#rows, #ops)
    for i, row in ipairs(rows) do
      local op = ops[i]
      assert.are.equal(row.api, op.api, "row " .. i)
      assert.are.equal(row.method, op.method, "row " .. i)
      assert.are.equal(row.path, op.path, "row " .. i)
      assert.are.equal(row.completes:match("^job") and "job" or "now", op.completes, "row " .. i .. " " .. op.full_name)
    end
  end)

  it("names are unique snake_case verbs and every one is a function on a client", function()
    local c = mx.connect{ username = "u", apikey = "k", token = "t" }
    local seen = {}
    for _, op in ipairs(mx.operations()) do
      assert.matches("^[a-z]+_?[a-z_]*$", op.name)
      assert.matches("^(%l+)_", op.name .. "_")
      local verb = op.name:match("^(%l+)")
      assert.truthy(({ list = 1, get = 1, create = 1, update = 1, delete = 1, set = 1, start = 1, stop = 1,
        upload = 1, transport = 1, clean = 1, scale = 1, build = 1, download = 1, restore = 1 })[verb], op.name)
      assert.is_nil(seen[op.full_name])
      seen[op.full_name] = true
      assert.is_function(c[op.namespace][op.name])
      assert.is_function(mx[op.namespace][op.name])
      if op.iterator then assert.is_function(c[op.namespace][op.iterator]) end
    end
  end)

  it("paths are path parameters in order; v4 and Backups lists have iterators", function()
    for _, op in ipairs(mx.operations()) do
      local i = 0
      for p in op.path:gmatch("{([%w%-]+)}") do
        i = i + 1
        assert.are.equal(p, op.params[i])
      end
      assert.are.equal(i, #op.params)
    end
    assert.are.equal("each_app", mx.operations()[23].iterator)
    local c = mx.connect{}
    assert.is_function(c.v4.each_app)
    assert.is_function(c.v4.each_environment)
    assert.is_function(c.backups.each_snapshot)
  end)

  it("help describes an operation by function or by name", function()
    local text = mx.describe(mx.v1.start_environment)
    assert.matches("v1.start_environment%(AppId, Mode", text)
    assert.matches("POST /api/1/apps/{AppId}/environments/{Mode}/start", text, 1, true)
    assert.matches("AutoSyncDb", text)
    assert.matches("returns a job", text)
    assert.are.equal(text, mx.describe("v1.start_environment"))
    assert.matches("pc.update_environment", mx.describe("update_environment"))
    assert.matches("v4.list_apps", mx.describe("list_apps"))
    assert.matches("nothing matches", mx.describe("nope"))
    assert.matches("83 operations", mx.describe())
    assert.are.equal(mx.describe(), mx.describe(mx))
  end)

  it("help lists a namespace's operations with one-line summaries, for any client", function()
    local text = mx.describe(mx.v1)
    assert.matches("^mx%.v1: Deploy API v1", text)
    for _, op in ipairs(mx.operations()) do
      if op.namespace == "v1" then
        assert.truthy(text:find("  " .. op.name .. " ", 1, true), op.name)
        assert.truthy(text:find(op.summary, 1, true), op.summary)
      end
    end
    assert.matches("download_app_logs", text)
    assert.are.equal(mx.describe(mx.pc), mx.describe(mx.connect{}.pc))
    assert.are.equal(mx.describe(mx.backups), mx.describe("backups"))
    assert.matches("Private Cloud Build API", mx.describe(mx.pcbuild))
  end)

  it("help searches names, paths and summaries", function()
    local text = mx.describe("start")
    assert.matches("^%d+ matches for \"start\"", text)
    for _, name in ipairs({ "v1.start_environment", "v1.get_start_status", "build.build_package", "mx.spawn" }) do
      assert.truthy(text:find("\n  " .. name .. " ", 1, true), name)
    end
    assert.is_nil(text:find("v1.list_apps ", 1, true))
    -- a path fragment and a summary word
    assert.matches("backups.restore_snapshot", mx.describe("/restores"))
    assert.matches("pc.download_cli", mx.describe("mxpc-cli"))
  end)

  it("help describes mx functions, methods and helpers, by value and by name", function()
    assert.matches("^mx%.spawn%(fn, %.%.%.%) %-> task", mx.describe(mx.spawn))
    assert.are.equal(mx.describe(mx.spawn), mx.describe("mx.spawn"))
    assert.are.equal(mx.describe(mx.spawn), mx.describe("spawn"))
    assert.matches("auth_scheme=", mx.describe(mx.request))
    assert.matches("MxToken", mx.describe(mx.request))
    assert.matches("^mx%.json%.encode", mx.describe(mx.json.encode))
    assert.matches("job:wait{timeout=", mx.describe("job"), 1, true)
    local t = mx.spawn(function() end)
    assert.are.equal(mx.describe("task"), mx.describe(t))
    assert.matches("task:cancel()", mx.describe(t), 1, true)
    t:wait()
    assert.matches("^v1%.download_app_logs%(", mx.describe(mx.v1.download_app_logs))
    assert.matches("^backups%.download_archive%(", mx.describe(mx.backups.download_archive))
  end)

  it("every mx function (and mx.json, mx.errors function) has help and a signature", function()
    local missing = {}
    local function walk(prefix, t)
      for k, v in pairs(t) do
        if type(v) == "function" then
          local text = mx.describe(v)
          if text:match("^no help") then missing[#missing + 1] = prefix .. k end
          local ok = pcall(mx.signature, v)
          if not ok then missing[#missing + 1] = prefix .. k .. " (signature)" end
        end
      end
    end
    walk("mx.", mx)
    walk("mx.json.", mx.json)
    walk("mx.errors.", mx.errors)
    table.sort(missing)
    assert.are.same({}, missing)
  end)

  it("mx.signature takes an operation function, a name or a record", function()
    local sig = "v1.start_environment(AppId, Mode, [body {AutoSyncDb?=boolean}]) -> job"
    assert.are.equal(sig, mx.signature(mx.v1.start_environment))
    assert.are.equal(sig, mx.signature("v1.start_environment"))
    assert.are.equal(sig, mx.signature(mx.operations()[6]))
    assert.matches("^mx%.wait_all%(list", mx.signature(mx.wait_all))
    local ok, e = pcall(mx.signature, 42)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'signature'", tostring(e))
  end)

  it("Docs lines link the public docs pages, not files of the repository", function()
    for _, op in ipairs(mx.operations()) do
      local docs = mx.describe(op.full_name):match("\n  Docs: (%S+)")
      -- the deployment guide pages, and the Pipelines, Webhooks and App Repository pages (own urls)
      assert.matches("^https://docs%.mendix%.com/apidocs%-mxsdk/apidocs/[%w/-]+/", docs, nil, op.full_name)
      assert.is_nil(docs:find(".md", 1, true), op.full_name)
    end
    assert.matches("Docs: https://docs.mendix.com/apidocs-mxsdk/apidocs/deployment/deploy-api-1/#start-environment",
      mx.describe(mx.v1.start_environment), 1, true)
    assert.matches("deploy-api-4/ (OpenAPI operation get-apps)", mx.describe(mx.v4.list_apps), 1, true)
  end)
end)

describe("path values in URLs", function()
  it("are percent-encoded each time, the same value alike, also past the remembered few", function()
    local plans = {}
    local c = mx.connect{ dry_run = true, base_urls = { v1 = "https://example.test/api/1" },
      on_plan = function(e) plans[#plans + 1] = e.path end }
    local function path_of(app, env)
      c.v1.start_environment(app, env, { AutoSyncDb = true })
      return plans[#plans]
    end
    local want = "/api/1/apps/a%20b%2Fc%3F%23%25/environments/Test/start"
    assert.are.equal(want, path_of("a b/c?#%", "Test"))
    assert.are.equal(want, path_of("a b/c?#%", "Test"))
    assert.are.equal("/api/1/apps/calc-1.x_~/environments/T%C3%A9st/start", path_of("calc-1.x_~", "Tést"))
    for i = 1, 600 do
      assert.are.equal("/api/1/apps/app%20" .. i .. "/environments/" .. i .. "/start", path_of("app " .. i, i))
    end
    assert.are.equal(want, path_of("a b/c?#%", "Test"))
  end)
end)

describe("paginated list iterators against the sandbox", function()
  local sandboxctl = require("mxdeploy.sandboxctl")
  local PROJECT, CLUSTER = "c533ee0b-f7db-4e62-868b-1192d392ccec", "42dec69c-9bdb-4918-a979-716fbbe3b8a6"
  local sb, c
  setup(function()
    sb = sandboxctl.start{ time_scale = 0.001 }
    c = mx.sandbox_client(sb, { poll_interval = 0.01 })
  end)
  teardown(function() sb:stop() end)

  local function queries(path)
    local out = {}
    for _, r in ipairs(sb:requests()) do
      if r.path == path then out[#out + 1] = r.query end
    end
    return out
  end

  it("fetch one page at a time, only as far as the loop goes", function()
    sb:reset_log()
    for app in c.v4.each_app{ limit = 1 } do
      assert.are.equal(PROJECT, app.id)
      break
    end
    assert.are.same({ "offset=0&limit=1" }, queries("/cloud/api/v4/apps"))
    sb:reset_log()
    local ids = {}
    for app in c.v4.each_app{ limit = 2 } do ids[#ids + 1] = app.id end
    local all = c.v4.list_apps().apps
    assert.are.equal(#all, #ids)
    for i, a in ipairs(all) do assert.are.equal(a.id, ids[i]) end
    assert.are.same({ "offset=0&limit=2", "offset=2&limit=2" }, queries("/cloud/api/v4/apps"))
  end)

  it("walk a Private Cloud list across pages", function()
    c.pc.create_environment(PROJECT, { manifestVersion = "2.0.0", environment = { id = "pcenv02",
      properties = { name = "second" }, provider = { namespace = "sandbox-ns", clusterId = CLUSTER } } }):wait{ timeout = 30 }
    sb:reset_log()
    local ids = {}
    for e in c.pc.each_environment(PROJECT, { limit = 1 }) do ids[#ids + 1] = e.environment.id end
    assert.are.same({ "pcenv01", "pcenv02" }, ids)
    local path = "/privatecloud/api/v4/apps/" .. PROJECT .. "/environments"
    assert.are.same({ "offset=0&limit=1", "offset=1&limit=1", "offset=2&limit=1" }, queries(path))
  end)
end)

describe("docs/REFERENCE.md", function()
  it("is generated from the operations table and committed up to date", function()
    local chunk = assert(loadfile(source .. "/scripts/gen-reference.lua"))
    local text = chunk("--render")
    local f = assert(io.open(source .. "/docs/REFERENCE.md"))
    local committed = f:read("a")
    f:close()
    assert.is_true(committed == text,
      "docs/REFERENCE.md is out of date: run mxdeploy scripts/gen-reference.lua")
    for _, op in ipairs(mx.operations()) do
      assert.truthy(committed:find("`" .. op.full_name .. "`", 1, true), op.full_name)
    end
    -- the whole Lua API, and Source lines that link the public docs
    for _, name in ipairs({ "mx.spawn(", "mx.logger(", "mx.progress(", "mx.format_size(", "mx.request{",
      "job:wait{", "task:cancel(", "mx.json.encode(", "sandboxctl.start{", "sandbox:requests(" }) do
      assert.truthy(committed:find("`" .. name, 1, true), name)
    end
    assert.truthy(committed:find("auth_scheme = \"apikey\"", 1, true))
    for line in committed:gmatch("[^\n]+") do
      if line:match("^Source:") then assert.matches("^Source: %[[^]]+%]%(https://docs%.mendix%.com/", line) end
    end
  end)
end)
