-- The retry policy of mx.request, against the sandbox's fault injection: idempotent methods are
-- retried on 429/502/503/504 and network failures with backoff, honouring Retry-After; POST and
-- PATCH only when the request never left; 500 never.

local mx = require("mxdeploy")
local retry_policy = require("mxdeploy.retry_policy")
local sandboxctl = require("mxdeploy.sandboxctl")

local FAST = { base_delay = 0.01, max_delay = 0.05 }

local count = require("sandbox").count

describe("retries against the sandbox", function()
  local sb, c
  before_each(function()
    sb = sandboxctl.start{ time_scale = 0.001 }
    c = mx.sandbox_client(sb, { retry = FAST, yes = true })
  end)
  after_each(function() sb:stop() end)

  it("GET is retried on 503 until it succeeds, and the response says how often", function()
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps", error_rate = 1, status = 503, times = 2 } } }
    local apps = c.v1.list_apps()
    assert.are.equal("calc", apps[1].AppId)
    assert.are.equal(2, c:last_response().retries)
    assert.are.equal(3, count(sb, "GET", "/deploy/api/1/apps"))
  end)

  it("a status a policy lists is retried even when it is not an error", function()
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps", error_rate = 1, status = 202, times = 2 } } }
    local c2 = mx.sandbox_client(sb, { retry = { base_delay = 0.01, max_delay = 0.05, statuses = { [202] = true } } })
    assert.are.equal("calc", c2.v1.list_apps()[1].AppId)
    assert.are.equal(2, c2:last_response().retries)
    assert.are.equal(3, count(sb, "GET", "/deploy/api/1/apps"))
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps", error_rate = 1, status = 202, times = 1 } } }
    c.v1.list_apps() -- the default policy does not list 202: the answer is the result
    assert.are.equal(0, c:last_response().retries)
    assert.are.equal(202, c:last_response().status)
  end)

  for _, status in ipairs{ 429, 502, 504 } do
    it("GET is retried on " .. status, function()
      sb:configure{ faults = { { route = "GET /deploy/api/1/apps/calc", error_rate = 1, status = status, times = 1 } } }
      assert.are.equal("calc", c.v1.get_app("calc").AppId)
      assert.are.equal(2, count(sb, "GET", "/deploy/api/1/apps/calc"))
    end)
  end

  it("PUT and DELETE are retried (idempotent)", function()
    local P, E = "c533ee0b-f7db-4e62-868b-1192d392ccec", "867c9f56-84ec-438b-b1ae-9f9c50377cba"
    local snap = c.backups.list_snapshots(P, E).snapshots[1].snapshot_id
    local path = "/deploy/api/v2/apps/" .. P .. "/environments/" .. E .. "/snapshots/" .. snap
    sb:configure{ faults = { { route = "PUT " .. path, error_rate = 1, status = 503, times = 1 },
                             { route = "DELETE " .. path, error_rate = 1, status = 502, times = 1 } } }
    assert.are.equal("renamed", c.backups.update_snapshot(P, E, snap, { comment = "renamed" }).comment)
    assert.are.equal(2, count(sb, "PUT", path))
    c.backups.delete_snapshot(P, E, snap)
    assert.are.equal(2, count(sb, "DELETE", path))
  end)

  it("POST is not retried on 503 (it reached the server)", function()
    local path = "/deploy/api/1/apps/calc/environments/Test/stop"
    sb:configure{ faults = { { route = "POST " .. path, error_rate = 1, status = 503, times = 1 } } }
    local ok, e = pcall(c.v1.stop_environment, "calc", "Test")
    assert.is_false(ok)
    assert.are.equal("http", e.kind)
    assert.are.equal(503, e.status)
    assert.are.equal(0, e.retries)
    assert.are.equal(1, count(sb, "POST", path))
  end)

  it("PATCH is not retried on 503", function()
    local APP = "c533ee0b-f7db-4e62-868b-1192d392ccec"
    sb:configure{ faults = { { route = "PATCH /cloud/api/v4/apps/" .. APP, error_rate = 1, status = 503, times = 1 } } }
    local ok, e = pcall(c.v4.update_app, APP, { technicalContact = { userId = "jane.doe@example.com" } })
    assert.is_false(ok)
    assert.are.equal(503, e.status)
    assert.are.equal(1, count(sb, "PATCH", "/cloud/api/v4/apps/" .. APP))
  end)

  -- The 500 codes of the v1 start that the docs list as permanent (Deploy API v1, "Start
  -- Environment" and "Get Start Environment Status" error tables): the failing answer is the
  -- last request on its path, whether the start job ends with it (job_fail) or the status
  -- request itself fails (a documented error on an idempotent GET).
  local PERMANENT_START_500 = { "NO_PACKAGE", "ALREADY_LOCKED", "ALREADY_STARTED", "DB_SYNC_FAILED",
    "INVALID_DB_STRUCTURE", "MISSING_CONSTANT", "INSECURE_ADMIN_PASSWORD", "STARTUP_ACTION_FAILED",
    "START_FAILED", "NO_MDA_HAS_BEEN_DEPLOYED", "APP_ALREADY_HAS_A_STARTING_JOB" }

  -- the requests made to `path` and how many of them came after the first 500 with `code`
  local function after_failure(path, code)
    local n, failed_at, later = 0, nil, 0
    for _, r in ipairs(sb:requests()) do
      if r.path == path then
        n = n + 1
        if failed_at then later = later + 1 elseif r.status == 500 then failed_at = n end
      end
    end
    return n, failed_at, later
  end

  for _, code in ipairs(PERMANENT_START_500) do
    it("a start job failing with 500 " .. code .. " makes no request after the failing answer", function()
      local job_failing = code ~= "NO_MDA_HAS_BEEN_DEPLOYED" and code ~= "APP_ALREADY_HAS_A_STARTING_JOB"
      local status_route = "GET /deploy/api/1/apps/calc/environments/Test/start/*"
      sb:configure{ faults = { job_failing and { route = "POST */start", job_fail = code }
        or { route = status_route, error = code, status = 500 } } }
      local job = c.v1.start_environment("calc", "Test", { AutoSyncDb = true })
      local ok, e = pcall(job.wait, job, { timeout = 10, interval = 0.01 })
      if code ~= "ALREADY_STARTED" then -- the bindings take "already running" as started
        assert.is_false(ok)
        assert.are.equal(code, e.code)
      end
      local path = "/deploy/api/1/apps/calc/environments/Test/start/" .. job.id
      local n, failed_at, later = after_failure(path, code)
      assert.is_truthy(failed_at, "no 500 on " .. path)
      assert.are.equal(0, later, code .. ": " .. later .. " request(s) after the failing answer")
      assert.are.equal(n, failed_at)
    end)
  end

  it("500 is never retried, even for GET (permanent Mendix failures use 500)", function()
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps", error_rate = 1, status = 500, times = 3 } } }
    local ok, e = pcall(c.v1.list_apps)
    assert.is_false(ok)
    assert.are.equal(500, e.status)
    assert.are.equal(1, count(sb, "GET", "/deploy/api/1/apps"))
    -- a v1 start that answers 500 NO_MDA_HAS_BEEN_DEPLOYED is raised at once
    sb:reset_log()
    local ok2, e2 = pcall(c.v1.start_environment, "tictactoc", "Test")
    assert.is_false(ok2)
    assert.are.equal("NO_MDA_HAS_BEEN_DEPLOYED", e2.code)
    assert.are.equal(1, #sb:requests())
  end)

  it("429 with Retry-After (seconds) waits that long before retrying", function()
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps", rate_limit = { count = 1, retry_after = 1 } } } }
    local t0 = mx.now()
    c.v1.list_apps()
    local waited = mx.now() - t0
    assert.is_true(waited >= 0.95, "waited " .. waited)
    assert.are.equal(2, count(sb, "GET", "/deploy/api/1/apps"))
  end)

  it("a Retry-After longer than max_retry_after is not waited for", function()
    -- 6 s: longer than the cap (2 s) and within the call's deadline (60 s), so only the cap
    -- refuses the wait (a call deadline it would pass, e.g. mx.timeout's, refuses it too); a
    -- policy without the cap fails this test after 6 s
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps", rate_limit = { count = 1, retry_after = 6 } } } }
    local c2 = mx.sandbox_client(sb, { retry = { max_retry_after = 2, base_delay = 0.01 }, timeout = 60 })
    local t0 = mx.now()
    local ok, e = pcall(c2.v1.list_apps)
    assert.is_false(ok, "the 6 s Retry-After was waited for")
    assert.are.equal("http", e.kind, tostring(e))
    assert.are.equal(429, e.status)
    assert.are.equal("6", e.retry_after)
    assert.is_true(mx.now() - t0 < 1)
  end)

  it("a dropped connection: GET is retried, POST is not (it may have taken effect)", function()
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps", drop = true, times = 1 },
                             { route = "POST /deploy/api/1/apps/calc/environments/Test/stop", drop = true, times = 1 } } }
    assert.are.equal("calc", c.v1.list_apps()[1].AppId)
    assert.are.equal(2, count(sb, "GET", "/deploy/api/1/apps"))
    local ok, e = pcall(c.v1.stop_environment, "calc", "Test")
    assert.is_false(ok)
    assert.are.equal("network", e.kind)
    assert.are.equal(1, count(sb, "POST", "/deploy/api/1/apps/calc/environments/Test/stop"))
  end)

  it("retry = false on a client or a call turns retries off", function()
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps", error_rate = 1, status = 503, times = 1 } } }
    local c2 = mx.sandbox_client(sb, { retry = false })
    local ok, e = pcall(c2.v1.list_apps)
    assert.is_false(ok)
    assert.are.equal(503, e.status)
    sb:configure{ faults = { { route = "GET /x", error_rate = 1, status = 503, times = 1 } } }
    local resp = mx.request{ url = sb.url .. "/x", retry = false, raw = true }
    assert.are.equal(503, resp.status)
    assert.are.equal(0, resp.retries)
  end)
end)

describe("retries without a server", function()
  it("a POST whose connection was refused is retried (it never left), then raises a network error", function()
    local sb = sandboxctl.start{}
    local url = sb.bases["deploy-v1"] .. "/apps/calc/environments/Test/stop"
    sb:stop() -- nothing listens on that port any more
    local t0 = mx.now()
    local ok, e = pcall(mx.request, { method = "POST", url = url, retry = { max_retries = 2, base_delay = 0.05 } })
    assert.is_false(ok)
    assert.are.equal("network", e.kind)
    assert.is_false(e.reached)
    assert.are.equal(2, e.retries)
    assert.is_true(mx.now() - t0 >= 0.05)
    assert.matches("^network error: .* %(POST /deploy/api/1/apps/calc/environments/Test/stop%) after 2 retries$", tostring(e))
  end)
end)

describe("retry policy rules", function()
  local P = retry_policy.resolve(retry_policy.default, { jitter = 0 })
  local function decide(method, status, err)
    local resp = status and { status = status, headers = {} } or nil
    return retry_policy.decide(P, method, resp, err, 0)
  end

  it("is visible and configurable as mx.retry_policy", function()
    assert.are.equal(retry_policy.default, mx.retry_policy)
    assert.is_true(mx.retry_policy.statuses[429])
    assert.is_nil(mx.retry_policy.statuses[500])
    assert.is_number(mx.retry_policy.max_retries)
  end)

  it("by method and outcome", function()
    for _, m in ipairs{ "GET", "PUT", "DELETE", "HEAD" } do
      for _, s in ipairs{ 429, 502, 503, 504 } do assert.is_number(decide(m, s), m .. " " .. s) end
      assert.is_nil(decide(m, 500))
      assert.is_nil(decide(m, 404))
      assert.is_number(decide(m, nil, { kind = "network", reached = true }))
      assert.is_number(decide(m, nil, { kind = "timeout", reached = true }))
      assert.is_nil(decide(m, nil, { kind = "cancelled" }))
    end
    for _, m in ipairs{ "POST", "PATCH" } do
      for _, s in ipairs{ 429, 500, 502, 503, 504 } do assert.is_nil(decide(m, s)) end
      assert.is_nil(decide(m, nil, { kind = "network", reached = true }))
      assert.is_nil(decide(m, nil, { kind = "timeout", reached = true }))
      assert.is_number(decide(m, nil, { kind = "network", reached = false }))
    end
  end)

  it("backs off exponentially up to max_delay, with jitter inside bounds", function()
    assert.are.equal(0.5, retry_policy.backoff(P, 1))
    assert.are.equal(1, retry_policy.backoff(P, 2))
    assert.are.equal(2, retry_policy.backoff(P, 3))
    assert.are.equal(30, retry_policy.backoff(P, 20))
    local J = retry_policy.resolve(retry_policy.default, { jitter = 0.5 })
    for _ = 1, 100 do
      local d = retry_policy.backoff(J, 3)
      assert.is_true(d >= 1 and d <= 2)
    end
  end)

  it("reads Retry-After as seconds or an HTTP date", function()
    assert.are.equal(7, retry_policy.retry_after_seconds("7"))
    assert.are.equal(0, retry_policy.retry_after_seconds("0"))
    -- only digits (RFC 9110 delay-seconds) or a date: anything else means our own backoff
    for _, bad in ipairs({ "-3", "-5", "0x10", "1e-300", "1e3", "+5", "5.5", "inf", "nan", " 0x1A " }) do
      assert.is_nil(retry_policy.retry_after_seconds(bad), bad)
    end
    local now = retry_policy.parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT")
    assert.are.equal(784111777, now)
    assert.are.equal(120, retry_policy.retry_after_seconds("Sun, 06 Nov 1994 08:51:37 GMT", now))
    assert.are.equal(0, retry_policy.retry_after_seconds("Sun, 06 Nov 1994 08:00:00 GMT", now))
    assert.is_nil(retry_policy.retry_after_seconds("soon"))
    -- the obsolete HTTP-date forms a recipient must accept too (RFC 9110 5.6.7)
    assert.are.equal(120, retry_policy.retry_after_seconds("Sunday, 06-Nov-94 08:51:37 GMT", now))
    assert.are.equal(120, retry_policy.retry_after_seconds("Sun Nov  6 08:51:37 1994", now))
    assert.are.equal(now + 86400 * 365 * 30 + 86400 * 8,
      retry_policy.parse_http_date("Sunday, 06-Nov-24 08:49:37 GMT"))
    local resp = { status = 503, headers = { ["retry-after"] = "Sun, 06 Nov 1994 08:49:40 GMT" } }
    local d = retry_policy.decide(P, "GET", resp, nil, 0)
    assert.is_number(d) -- the date is in the past relative to os.time(): retry at once
    assert.are.equal(0, d)
  end)

  it("stops after max_retries", function()
    assert.is_nil(retry_policy.decide(P, "GET", { status = 503, headers = {} }, nil, P.max_retries))
  end)
end)
