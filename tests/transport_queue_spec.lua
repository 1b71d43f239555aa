-- Requests beyond a host's connection cap wait in a per-host queue outside curl's multi (issue 9),
-- and finished transfers' easy handles are reused: real HTTP against the sandbox.
local core = require("mxdeploy.core")
local S = require("sandbox")
local count = S.count

local ROUTE = "GET /deploy/api/1/apps"

local function status_kb(field)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)"))
end

describe("per-host queue", function()
  local sb, creds, url
  setup(function()
    sb = S.start({ time_scale = 0.001 })
    creds = core.credentials({ username = sb.username, apikey = sb.apikey, token = sb.token })
    url = sb.url .. "/deploy/api/1/apps"
  end)
  teardown(function()
    mx.configure({ max_host_connections = 64 })
    sb:stop()
  end)
  before_each(function()
    mx.configure({ max_host_connections = 1 })
    sb:configure({ faults = {} })
    sb:reset_log()
  end)

  -- Each test tags its requests (?t=tag): the sandbox logs an exchange once it has answered, so
  -- a test's count must not see the previous test's last requests.
  local tag = 0
  before_each(function() tag = tag + 1 end)
  local function get(opts)
    opts = opts or {}
    opts.url, opts.auth = opts.url or (url .. "?t=" .. tag), creds
    return core.http(opts)
  end
  -- the number of this test's requests the server has logged, once it stops changing (bounded)
  local function sent(expected)
    local function n() return count(sb, function(r) return r.query == "t=" .. tag end) end
    S.eventually(function() return n() == expected end, 3)
    return n()
  end

  it("holds requests beyond the cap as queued waits, shown in pending(), and runs them in order", function()
    sb:configure({ faults = { { route = ROUTE, latency = 0.2 } } })
    local order, tasks = {}, {}
    for i = 1, 4 do
      tasks[i] = core.spawn(function()
        local r = get()
        order[#order + 1] = i
        return r.status
      end)
    end
    local t0 = core.now()
    core.sleep(0.05)
    local waits = 0
    for _, p in ipairs(core.pending()) do
      if p.kind == "http" and p.what:find("GET http://127.0.0.1:%d+/deploy/api/1/apps") then waits = waits + 1 end
    end
    assert.are.equal(4, waits)
    for i = 1, 4 do assert.are.equal(200, tasks[i]:wait()) end
    assert.are.same({ 1, 2, 3, 4 }, order)
    assert.is_true(core.now() - t0 >= 0.75, "more than one ran at once") -- one after another: 4 x 0.2 s
    assert.are.equal(4, sent(4))
  end)

  it("cancels a queued request without sending it; the others proceed", function()
    sb:configure({ faults = { { route = ROUTE, latency = 0.3 } } })
    local a = core.spawn(function() return get().status end)
    local b = core.spawn(function() return get().status end)
    local c = core.spawn(function() return get().status end)
    core.sleep(0.05)
    assert.is_true(b:cancel())
    local ok, err = pcall(b.wait, b)
    assert.is_false(ok)
    assert.are.equal("cancelled", err.kind)
    for _, p in ipairs(core.pending()) do assert.are_not.equal(b.id, p.task) end
    assert.are.equal(200, a:wait())
    assert.are.equal(200, c:wait())
    assert.are.equal(2, sent(2))
  end)

  it("counts the time queued in the request's timeout, and says it never reached the server", function()
    sb:configure({ faults = { { route = ROUTE, latency = 1 } } })
    local a = core.spawn(function() return get().status end)
    core.sleep(0.05)
    local t0 = core.now()
    local resp, err = get({ timeout = 0.3 })
    assert.is_nil(resp)
    assert.are.equal("timeout", err.kind)
    assert.is_false(err.reached)
    assert.matches("waiting for one of the 1 connections", err.message)
    assert.is_true(core.now() - t0 < 0.9, "the timeout waited for the transfer ahead")
    assert.are.equal(200, a:wait())
    -- the place went on: the next request runs at once, and only a's reached the server
    sb:configure({ faults = {} })
    assert.are.equal(200, get({ timeout = 5 }).status)
    assert.are.equal(2, sent(2))
  end)

  it("names a queued request redacted, by the URL it was queued with, in pending() and its timeout", function()
    sb:configure({ faults = { { route = ROUTE, latency = 0.6 } } })
    local a = core.spawn(function() return get().status end)
    core.sleep(0.05)
    local req = { url = url .. "?t=" .. tag .. "&token=s3cr3t", auth = creds, timeout = 0.3 }
    local b = core.spawn(function() return core.http(req) end)
    core.sleep(0.02)
    req.url = "http://changed.invalid/" -- the table changes while it waits; the queued request does not
    collectgarbage()
    collectgarbage()
    local shown
    for _, p in ipairs(core.pending()) do if p.task == b.id then shown = p.what end end
    assert.matches("^GET http://127%.0%.0%.1:%d+/deploy/api/1/apps%?t=%d+&token=%*%*%*$", shown)
    local resp, err = b:wait()
    assert.is_nil(resp)
    assert.are.equal("timeout", err.kind)
    assert.is_false(err.reached)
    assert.matches("^http://127%.0%.0%.1:%d+/deploy/api/1/apps%?t=%d+&token=%*%*%*$", err.url)
    assert.are.equal(200, a:wait())
    assert.are.equal(1, sent(1))
  end)

  it("gives a transfer that was queued only the rest of its timeout", function()
    sb:configure({ faults = { { route = ROUTE, latency = 0.5 } } })
    local a = core.spawn(function() return get().status end)
    core.sleep(0.05)
    -- queued ~0.45 s, then a 0.5 s transfer: 0.8 s in all is too short
    local resp, err = get({ timeout = 0.8 })
    assert.is_nil(resp)
    assert.are.equal("timeout", err.kind)
    assert.is_true(err.reached)
    assert.are.equal(200, a:wait())
  end)

  it("mx.timeout ends a queued request", function()
    sb:configure({ faults = { { route = ROUTE, latency = 1 } } })
    local a = core.spawn(function() return get().status end)
    core.sleep(0.05)
    local ok, err = pcall(mx.timeout, 0.2, get)
    assert.is_false(ok)
    assert.are.equal("timeout", err.kind)
    assert.are.equal(200, a:wait())
    assert.are.equal(1, sent(1))
  end)

  it("retries queued requests, each retry queueing again", function()
    sb:configure({ faults = { { route = ROUTE, status = 503, error_rate = 1, times = 2 } } })
    local tasks = {}
    for i = 1, 3 do
      tasks[i] = core.spawn(function()
        return mx.request({ url = url .. "?t=" .. tag, auth = creds, retry = { base_delay = 0.01 } }).status
      end)
    end
    for i = 1, 3 do assert.are.equal(200, tasks[i]:wait()) end
    assert.are.equal(5, sent(5))
  end)

  it("gives the place back when a request fails to start, fails, or is redirected", function()
    assert.has_error(function() get({ on_progress = 42 }) end)
    local resp = core.http({ url = "http://127.0.0.1:1/x" }) -- refused: another host's place
    assert.is_nil(resp)
    assert.are.equal(200, get({ timeout = 5 }).status)
    assert.are.equal(200, get({ timeout = 5 }).status) -- after a finished one too
  end)

  it("admits queued requests at once when the cap grows", function()
    sb:configure({ faults = { { route = ROUTE, latency = 0.5 } } })
    local tasks = {}
    for i = 1, 4 do tasks[i] = core.spawn(function() return get().status end) end
    core.sleep(0.05)
    local t0 = core.now()
    mx.configure({ max_host_connections = 4 })
    for i = 1, 4 do assert.are.equal(200, tasks[i]:wait()) end
    assert.is_true(core.now() - t0 < 0.9, "queued requests waited for the first one after the cap grew")
  end)

  it("holds a queued request in a few KB: no easy handle, no buffers", function()
    sb:configure({ faults = { { route = ROUTE, latency = 2 } } })
    get({ timeout = 10 }) -- the transport loaded, one connection open
    collectgarbage()
    collectgarbage()
    local rss0 = status_kb("VmRSS")
    local tasks = {}
    local n = 3000
    for i = 1, n do tasks[i] = core.spawn(function() return get({ timeout = 60 }) end) end
    core.sleep(0.2)
    local per = (status_kb("VmRSS") - rss0) * 1024 / n
    for _, t in ipairs(tasks) do t:cancel() end
    if os.getenv("MXDEPLOY_SANITIZED") ~= "ON" then -- sanitizers add their own shadow and redzones
      assert.is_true(per < 4096, ("%.0f bytes per queued request"):format(per))
    end
    -- the warm-up and the one that held the place (sent before its cancel): no queued one
    assert.are.equal(2, sent(2))
  end)
end)

describe("easy handle reuse", function()
  local sb, creds
  setup(function()
    sb = S.start({ time_scale = 0.001 })
    creds = core.credentials({ username = sb.username, apikey = sb.apikey, token = sb.token })
  end)
  teardown(function() sb:stop() end)

  it("keeps nothing of one request in the next: credentials, headers, method, timeout, output", function()
    local url = sb.url .. "/deploy/api/1/apps"
    sb:reset_log()
    -- a request with every kind of setting, then plain ones that may reuse its handle
    local out = os.tmpname()
    local first, err = core.http({ url = url, auth = creds, headers = { ["X-Extra"] = "one" },
      timeout = 5, output = out })
    assert.is_not_nil(first, err and err.message)
    assert.are.equal(200, first.status)
    os.remove(out)
    assert.are.equal(200, core.http({ method = "POST", url = sb.url .. "/deploy/api/1/apps/calc/environments/Acceptance/stop",
      auth = creds, body = "{}", headers = { ["Content-Type"] = "application/json" } }).status)
    sb:configure({ faults = { { route = "GET /deploy/api/1/apps", latency = 1 } } })
    local plain = core.http({ url = url }) -- no credentials, no timeout: must wait out the latency
    assert.is_not_nil(plain)
    assert.are.equal(401, plain.status)
    assert.is_nil(plain.file)
    local log = sb:requests()
    local last = log[#log]
    assert.are.equal("GET", last.method)
    assert.is_false(last.credentials)
    assert.is_nil(last.headers["x-extra"])
    sb:configure({ faults = {} })
  end)
end)
