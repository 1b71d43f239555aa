-- Error objects: HTTP errors from every body shape, argument errors raised before any request,
-- credential errors that name what to set, timeouts, and no secret anywhere in an error.

local mx = require("mxdeploy")
local errors = require("mxdeploy.errors")
local sandboxctl = require("mxdeploy.sandboxctl")

local strings_of = require("strings_of")

local function assert_no_secret(e, secrets)
  local all = table.concat(strings_of(e), "\n") .. "\n" .. tostring(e)
  for _, s in ipairs(secrets) do
    assert.is_nil(all:find(s, 1, true), "secret leaked into the error")
  end
end

describe("HTTP errors from the sandbox", function()
  local sb, c
  setup(function()
    sb = sandboxctl.start{ time_scale = 0.001 }
    c = mx.sandbox_client(sb, { retry = false })
  end)
  teardown(function() sb:stop() end)

  it("v1 {errorCode, errorMessage}: one line with status, code, message, method and path", function()
    local ok, e = pcall(c.v1.get_app, "nosuch")
    assert.is_false(ok)
    assert.is_true(errors.is(e, "http"))
    assert.are.equal(404, e.status)
    assert.are.equal("APP_NOT_FOUND", e.code)
    assert.are.equal("App not found", e.message)
    assert.are.equal("GET", e.method)
    assert.are.equal(sb.bases["deploy-v1"] .. "/apps/nosuch", e.url)
    assert.are.equal(0, e.retries)
    assert.are.equal("HTTP 404 APP_NOT_FOUND: App not found (GET /deploy/api/1/apps/nosuch)", tostring(e))
    assert_no_secret(e, { sb.apikey })
    local log = sb:requests()
    assert.matches("^[%x-]+$", e.request_id)                  -- the server's X-Request-Id
    assert.are.equal(log[#log].request_id, e.request_id)
  end)

  it("v4 and Private Cloud {error = {code, message}}", function()
    local ok, e = pcall(c.v4.get_app, "00000000-0000-4000-8000-000000000000")
    assert.is_false(ok)
    assert.are.equal(404, e.status)
    assert.are.equal("App not found", e.message)
    assert.matches("^HTTP 404: App not found %(GET /cloud/api/v4/apps/", tostring(e))
    ok, e = pcall(c.pc.get_cluster, "00000000-0000-4000-8000-000000000000")
    assert.is_false(ok)
    assert.are.equal("Cluster not found", e.message)
    assert_no_secret(e, { sb.token })
  end)

  it("a 401 keeps no secret query value or fragment in err.url", function()
    local bad = mx.connect{ username = sb.username, apikey = "wrong-key-123", retry = false,
      base_urls = { v1 = sb.url .. "/deploy/api/1" } }
    local ok, e = pcall(mx.request, { url = sb.url .. "/deploy/api/1/apps?client_secret=abc&sessionkey=z&passphrase=q#frag-x",
      auth = bad:credentials(), retry = false })
    assert.is_false(ok)
    assert.are.equal(401, e.status)
    assert.are.equal(sb.url .. "/deploy/api/1/apps?client_secret=***&sessionkey=***&passphrase=***#***", e.url)
    assert_no_secret(e, { "abc", "=z", "=q", "frag-x", "wrong-key-123" })
  end)

  it("raw = true returns the response instead of raising", function()
    local resp = mx.request{ url = sb.bases["deploy-v1"] .. "/apps/nosuch", raw = true, retry = false,
                             auth = c:credentials(), auth_scheme = "apikey" }
    assert.are.equal(404, resp.status)
    assert.are.equal("APP_NOT_FOUND", resp.json.errorCode)
  end)

  it("a body that is not JSON still gives a one-line error", function()
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps", error_rate = 1, status = 502, times = 1 } } }
    local ok, e = pcall(c.v1.list_apps)
    assert.is_false(ok)
    assert.are.equal(502, e.status)
    assert.is_nil(tostring(e):find("\n"))
  end)

  it("a 200 answer that is not JSON is a malformed response, not a result", function()
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps", body = "<html>maintenance</html>", times = 1 } } }
    local ok, e = pcall(c.v1.list_apps)
    assert.is_false(ok)
    assert.are.equal("response", e.kind)
    assert.are.equal(200, e.status)
    assert.matches("^malformed response: expected JSON.*<html>maintenance.*%(GET /deploy/api/1/apps%)$", tostring(e))
  end)
end)

describe("argument errors", function()
  local sb, c
  setup(function()
    sb = sandboxctl.start{ time_scale = 0.001 }
    c = mx.sandbox_client(sb)
  end)
  teardown(function() sb:stop() end)

  local cases = {
    { function(c) return c.v1.start_environment() end,
      "bad argument #1 to 'v1.start_environment' (AppId: string expected, got nil)" },
    { function(c) return c.v1.start_environment("calc", nil, {}) end,
      "bad argument #2 to 'v1.start_environment' (Mode: string expected, got nil)" },
    { function(c) return c.v1.start_environment("calc", "Test", { AutoSyncDb = "yes" }) end,
      "bad argument #3 to 'v1.start_environment' (AutoSyncDb: boolean expected, got string)" },
    { function(c) return c.v1.start_environment("calc", "Test", "now") end,
      "bad argument #3 to 'v1.start_environment' (table expected, got string)" },
    { function(c) return c.v1.get_app("") end,
      "bad argument #1 to 'v1.get_app' (AppId: non-empty string expected)" },
    { function(c) return c.v1.get_app("calc", "extra") end,
      "bad argument #2 to 'v1.get_app' (no more arguments expected, got string)" },
    { function(c) return c.v1.transport_package("calc", "Test", {}) end,
      "bad argument #3 to 'v1.transport_package' (PackageId: string expected, got nil)" },
    { function(c) return c.v1.get_app_logs("calc", "Test", "12-06-2024") end,
      "bad argument #3 to 'v1.get_app_logs' (Date: date in the format YYYY-MM-DD expected, got '12-06-2024')" },
    { function(c) return c.v1.get_access_logs("calc", "Test", "2023-02-29") end,
      "bad argument #3 to 'v1.get_access_logs' (Date: no such date '2023-02-29')" },
    { function(c) return c.v1.get_environment_package("calc", "Test", { URL = true }) end,
      "bad argument #3 to 'v1.get_environment_package' (unknown parameter 'URL'; did you mean url? (expected url))" },
    { function(c) return c.v1.stop_environment("calc", "Test", { force = true }) end,
      "bad argument #3 to 'v1.stop_environment' (this operation takes no body or query parameters)" },
    { function(c) return c.v2.upload_package("calc", "/nonexistent/app.mda") end,
      "bad argument #2 to 'v2.upload_package' (file: cannot open /nonexistent/app.mda: No such file or directory)" },
    { function(c) return c.v4.get_app("calc") end,
      "bad argument #1 to 'v4.get_app' (appId: UUID expected (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got 'calc')" },
    { function(c) return c.pc.create_environment("not-a-uuid", {}) end,
      "bad argument #1 to 'pc.create_environment' (appId: UUID expected (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got 'not-a-uuid')" },
    { function(c) return c.pc.get_environment("c533ee0b-f7db-4e62-868b-1192d392ccec", "toolong123") end,
      "bad argument #2 to 'pc.get_environment' (environmentId: Private Cloud environment ID has at most 8 characters, got 'toolong123')" },
    -- IDs chosen inside a Private Cloud manifest are checked like path IDs (the spec's formats)
    { function(c) return c.pc.create_environment("c533ee0b-f7db-4e62-868b-1192d392ccec", { manifestVersion = "2.0.0",
        environment = { id = "pcenv-too-long", provider = { namespace = "ns", clusterId = "42dec69c-9bdb-4918-a979-716fbbe3b8a6" } } }) end,
      "bad argument #2 to 'pc.create_environment' (environment.id: Private Cloud environment ID has at most 8 characters, got 'pcenv-too-long')" },
    { function(c) return c.pc.update_namespace_environment("c533ee0b-f7db-4e62-868b-1192d392ccec",
        "db6ed4d3-8b6d-4c2b-ad2b-2a69d0f7afe0", "pcenv01", { environment = { id = "pcenv01", provider = { clusterId = "my-cluster" } } }) end,
      "bad argument #4 to 'pc.update_namespace_environment' (environment.provider.clusterId: UUID expected (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got 'my-cluster')" },
    { function(c) return c.pc.create_cluster({ manifestVersion = "2.0.0", cluster = { clusterId = "cluster-1", name = "c", clusterType = "k8s" } }) end,
      "bad argument #1 to 'pc.create_cluster' (cluster.clusterId: UUID expected (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got 'cluster-1')" },
    { function(c) return c.pc.create_namespace("42dec69c-9bdb-4918-a979-716fbbe3b8a6", { namespace = { namespaceId = 7, name = "n" } }) end,
      "bad argument #2 to 'pc.create_namespace' (namespace.namespaceId: string expected, got number)" },
    { function(c) return c.pcbuild.build_package("c533ee0b-f7db-4e62-868b-1192d392ccec", { branch = "main" }) end,
      "bad argument #2 to 'pcbuild.build_package' (revision: string expected, got nil)" },
    { function(c) return c.backups.list_snapshots("p", "e", { limit = "ten" }) end,
      "bad argument #3 to 'backups.list_snapshots' (limit: number expected, got string)" },
  }

  it("are raised before any request, naming the function and the parameter", function()
    sb:reset_log()
    for _, case in ipairs(cases) do
      local ok, e = pcall(case[1], c)
      assert.is_false(ok)
      assert.are.equal("argument", e.kind)
      assert.are.equal(case[2], tostring(e))
    end
    assert.are.equal(0, #sb:requests())
  end)

  it("a Date path value follows the Gregorian leap years (2000 and 2024 have a 29 February, 1900 and 2100 none)", function()
    sb:reset_log()
    for _, date in ipairs({ "2000-02-29", "2024-02-29" }) do
      local info = c.v1.get_access_logs("calc", "Test", date)
      assert.is_string(info.DownloadUrl, date)
    end
    for _, date in ipairs({ "1900-02-29", "2100-02-29" }) do
      local ok, e = pcall(c.v1.get_access_logs, "calc", "Test", date)
      assert.is_false(ok, date)
      assert.are.equal("bad argument #3 to 'v1.get_access_logs' (Date: no such date '" .. date .. "')", tostring(e))
    end
    assert.are.equal(2, #sb:requests())
  end)

  it("path values are percent-encoded: '?', '#' and '/' in a value stay in their segment", function()
    for _, app in ipairs({ "calc?x=1", "calc#top", "calc/environments" }) do
      sb:reset_log()
      local ok, e = pcall(c.v1.get_app, app)
      assert.is_false(ok, app .. " reached another resource")
      assert.are.equal("http", e.kind, tostring(e)) -- the sandbox refuses such an AppId (400 or 404)
      local log = sb:requests()
      assert.are.equal(1, #log)
      assert.are_not.equal("/deploy/api/1/apps/calc", log[1].path, app)
      assert.are_not.equal("/deploy/api/1/apps/calc/environments", log[1].path, app)
    end
  end)

  it("an upload over 1 GB is refused before sending", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:seek("set", 1024 * 1024 * 1024) -- sparse: 1 GB + 1 byte without writing a gigabyte
    f:write("x")
    f:close()
    sb:reset_log()
    local ok, e = pcall(c.v2.upload_package, "calc", path)
    os.remove(path)
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'v2.upload_package' %(file: '.*' is 1.00 GB; Mendix Cloud refuses packages over 1 GB%)", tostring(e))
    assert.are.equal(0, #sb:requests())
  end)

  it("mx.request checks its table too", function()
    local ok, e = pcall(mx.request, { url = "ftp://x" })
    assert.is_false(ok)
    assert.matches("^bad argument #1 to 'request' %(url: absolute http%(s%) URL expected", tostring(e))
    ok, e = pcall(mx.request, { url = "http://127.0.0.1/", bogus = 1 })
    assert.matches("unknown field 'bogus'", tostring(e))
  end)

  it("mx.request refuses a misspelt option with did-you-mean, in a dry run too, sending nothing", function()
    local sb <close> = require("mxdeploy.sandboxctl").start{ time_scale = 0.001 }
    local url = sb.url .. "/deploy/api/1/apps/calc/environments/Test/stop"
    local ok, e = pcall(mx.request, { url = url, methd = "POST" })
    assert.is_false(ok)
    assert.are.equal("argument", e.kind)
    assert.are.equal("bad argument #1 to 'request' (unknown field 'methd'; did you mean method?)", tostring(e))
    ok, e = pcall(mx.request, { url = url, timout = 5 })
    assert.matches("did you mean timeout%?", tostring(e))
    ok, e = pcall(mx.request, { url = url, zzzzzzzz = 5 })
    assert.matches("unknown field 'zzzzzzzz' %(fields: auth, auth_scheme, ", tostring(e))
    mx.options.dry_run = true
    local plans = #mx.default_client.plan
    ok, e = pcall(mx.request, { url = url, method = "POST", jsn = {} })
    mx.options.dry_run = false
    assert.is_false(ok)
    assert.are.equal("bad argument #1 to 'request' (unknown field 'jsn'; did you mean json?)", tostring(e))
    assert.are.equal(plans, #mx.default_client.plan, "a refused request was planned")
    assert.are.equal(0, #sb:requests())
  end)
end)

describe("credentials errors", function()
  it("name what to set, per API, and never show a secret", function()
    if os.getenv("MENDIX_APIKEY") or os.getenv("MENDIX_TOKEN") then return end -- a developer's env
    local c = mx.connect{}
    local ok, e = pcall(c.v1.list_apps)
    assert.is_false(ok)
    assert.are.equal("credentials", e.kind)
    assert.matches("MENDIX_USERNAME and MENDIX_APIKEY", tostring(e))
    assert.is_nil(tostring(e):find("\n"))
    ok, e = pcall(c.pc.list_clusters)
    assert.is_false(ok)
    assert.matches("MENDIX_TOKEN", tostring(e))
    -- a client with only an API key lacks the token
    local c2 = mx.connect{ username = "someone@example.com", apikey = "very-secret-key-123" }
    ok, e = pcall(c2.v4.list_apps)
    assert.is_false(ok)
    assert.are.equal("credentials", e.kind)
    assert_no_secret(e, { "very-secret-key-123" })
  end)
end)

describe("error objects", function()
  it("read every documented body shape", function()
    assert.are.same({ "APP_NOT_FOUND", "App not found" },
      { errors.parse_body{ errorCode = "APP_NOT_FOUND", errorMessage = "App not found" } })
    local code, msg, invalid = errors.parse_body{ error = { code = 400, message = "Bad request",
      ["invalid-params"] = { { name = "limit", reason = "must be >= 1" } } } }
    assert.are.equal("400", code)
    assert.are.equal("Bad request [limit: must be >= 1]", msg)
    assert.are.equal(1, #invalid)
    code, msg = errors.parse_body{ id = "j", status = "failed", error = { message = "duplicate id" } }
    assert.is_nil(code)
    assert.are.equal("duplicate id", msg)
  end)

  it("carry the request id from the response headers", function()
    local e = errors.http({ method = "GET", url = "https://deploy.mendix.com/api/1/apps/calc" },
      { status = 404, headers = { ["x-request-id"] = "req-42" },
        body = '{"errorCode":"APP_NOT_FOUND","errorMessage":"App not found"}' }, 0)
    assert.are.equal("req-42", e.request_id)
    assert.are.equal("HTTP 404 APP_NOT_FOUND: App not found (GET /api/1/apps/calc)", tostring(e))
  end)

  it("remove credentials and signatures from URLs", function()
    assert.are.equal("https://logs.example.com/v1/logs/x?endDate=2021-06-12&expire=20210616&signature=***",
      errors.redact_url("https://logs.example.com/v1/logs/x?endDate=2021-06-12&expire=20210616&signature=0D5D1D81"))
    assert.are.equal("https://***@host/path", errors.redact_url("https://user:pass@host/path"))
    local e = errors.new("network", { method = "GET", url = "https://a:b@h/p?token=abc&x=1", message = "reset" })
    assert.are.equal("https://***@h/p?token=***&x=1", e.url)
    assert.are.equal("network error: reset (GET /p)", tostring(e))
  end)

  it("use the host's one redactor: names holding key/secret/pass, and the fragment", function()
    local url = "https://h/p?client_secret=abc&sessionkey=z&passphrase=q&page=2#access_token=frag-secret"
    local want = "https://h/p?client_secret=***&sessionkey=***&passphrase=***&page=2#***"
    assert.are.equal(want, errors.redact_url(url))
    assert.are.equal(want, require("mxdeploy.core").redact_url(url))
    assert.are.equal("https://h/p#***", errors.redact_url("https://h/p#s3cret"))
    assert.are.equal("https://***@h/p?x=1#***", errors.redact_url("https://u:pw@h/p?x=1#t=abc"))
  end)
end)

describe("mx.timeout", function()
  it("cancels the work and raises a timeout error", function()
    local finished = false
    local t0 = mx.now()
    local ok, e = pcall(mx.timeout, 0.1, function() mx.sleep(5); finished = true end)
    assert.is_false(ok)
    assert.are.equal("timeout", e.kind)
    assert.are.equal("timeout: no result within 0.1s", tostring(e))
    assert.is_true(mx.now() - t0 < 1)
    mx.sleep(0.05)
    assert.is_false(finished)
  end)

  it("returns the function's results when it finishes in time", function()
    assert.are.same({ 1, 2 }, { mx.timeout(1, function(a, b) mx.sleep(0.01); return a, b end, 1, 2) })
  end)
end)
