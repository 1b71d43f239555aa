-- One rate budget per API host, shared by every task of a client (issue 11): a 429 pauses every
-- task's requests to that host, and `rate = {requests =, per =}` keeps a quota.

local mx = require("mxdeploy")
local sandboxctl = require("mxdeploy.sandboxctl")
local S = require("sandbox")

local ROUTE = "/cloud/api/v4/apps"

describe("rate budget", function()
  local sb
  setup(function() sb = sandboxctl.start{ time_scale = 0.001 } end)
  teardown(function() sb:stop() end)
  before_each(function()
    sb:configure{ faults = {} }
    sb:reset_log()
  end)

  local function requests_to(path)
    local out = {}
    for _, r in ipairs(sb:requests()) do
      if r.path == path then out[#out + 1] = r end
    end
    return out
  end

  it("20 tasks against a host answering 429 (X-RateLimit-Reset) make one request each during the pause", function()
    sb:configure{ faults = { { route = "GET " .. ROUTE, rate_limit = { window = 1, limit = 60 } } } }
    local c = mx.sandbox_client(sb)
    local t0 = mx.now()
    local tasks = {}
    for i = 1, 20 do tasks[i] = mx.spawn(function() c.v4.list_apps(); return c:last_response().retries end) end
    local retries = mx.wait_all(tasks)
    local log = requests_to(ROUTE)
    local limited, ok = 0, 0
    for _, r in ipairs(log) do
      if r.status == 429 then limited = limited + 1 elseif r.status == 200 then ok = ok + 1 end
    end
    assert.are.equal(20, ok)
    assert.is_true(limited <= 20, limited .. " requests were answered 429 (each task retried alone)")
    for i = 1, 20 do assert.is_true(retries[i] <= 1, "task " .. i .. " retried " .. retries[i] .. " times") end
    assert.is_true(mx.now() - t0 >= 0.5, "the pause was not waited for")
  end)

  it("tasks that start during the pause send nothing until it ends", function()
    sb:configure{ faults = { { route = "GET " .. ROUTE, rate_limit = { count = 1, retry_after = 1 } } } }
    local c = mx.sandbox_client(sb)
    local first = mx.spawn(c.v4.list_apps)
    assert.is_true(S.eventually(function() return #requests_to(ROUTE) == 1 end, 5))
    local later = {}
    for i = 1, 19 do later[i] = mx.spawn(c.v4.list_apps) end
    mx.sleep(0.5) -- inside the pause
    assert.are.equal(1, #requests_to(ROUTE))
    first:wait()
    mx.wait_all(later)
    local log = requests_to(ROUTE)
    assert.are.equal(21, #log) -- one 429, then one request per task
    assert.are.equal(429, log[1].status)
    for i = 2, 21 do assert.are.equal(200, log[i].status) end
  end)

  it("is per client: another client is not paused", function()
    sb:configure{ faults = { { route = "GET " .. ROUTE, rate_limit = { count = 1, retry_after = 2 } } } }
    local c1, c2 = mx.sandbox_client(sb), mx.sandbox_client(sb)
    local t = mx.spawn(c1.v4.list_apps)
    assert.is_true(S.eventually(function() return #requests_to(ROUTE) == 1 end, 5))
    local t0 = mx.now()
    c2.v4.list_apps()
    assert.is_true(mx.now() - t0 < 1)
    t:wait()
  end)

  it("keeps a quota of requests per period for each host", function()
    local c = mx.sandbox_client(sb, { rate = { requests = 5, per = 0.5 } })
    local t0 = mx.now()
    local tasks = {}
    for i = 1, 12 do tasks[i] = mx.spawn(c.v4.list_apps) end
    mx.wait_all(tasks)
    local elapsed = mx.now() - t0
    assert.is_true(elapsed >= 1.0, ("12 requests at 5 per 0.5 s took %.2f s"):format(elapsed))
    assert.are.equal(12, #requests_to(ROUTE))
    -- the quota is the host's: every API of the sandbox is on one host, so they share it
    t0 = mx.now()
    for _ = 1, 6 do c.pc.list_clusters() end
    assert.is_true(mx.now() - t0 >= 0.3)
    -- another client has its own
    local c2 = mx.sandbox_client(sb, { rate = { requests = 5, per = 0.5 } })
    t0 = mx.now()
    for _ = 1, 5 do c2.pc.list_clusters() end
    assert.is_true(mx.now() - t0 < 0.4)
  end)

  it("a pause holds only its own host, and only until it ends", function()
    local rate_budget = require("mxdeploy.rate_budget")
    local b = rate_budget.new()
    local a_url, other = "http://127.0.0.1:1/x", "http://localhost:1/y"
    local t0 = mx.now()
    b:acquire(a_url) -- nothing paused: at once
    b:pause(a_url .. "/z", 0.3)
    b:acquire(other)
    b:acquire("http://u:p@LOCALHOST:1/other") -- the same other origin
    assert.is_true(mx.now() - t0 < 0.2, "a request to another host waited for the pause")
    b:acquire(a_url)
    assert.is_true(mx.now() - t0 >= 0.29, "the paused host's request did not wait")
    t0 = mx.now()
    b:acquire(a_url) -- the pause is over
    assert.is_true(mx.now() - t0 < 0.1)
    assert.is_true(b:paused_for(a_url) == 0)
  end)

  it("refuses a malformed rate", function()
    local ok, e = pcall(mx.connect, { rate = { requests = 0, per = 60 } })
    assert.are.equal("argument", e.kind)
    ok, e = pcall(mx.connect, { rate = { requests = 60, per = 0 } })
    assert.matches("rate.per", e.message)
    ok, e = pcall(mx.connect, { rate = { requests = 60, period = 60 } })
    assert.matches("unknown field 'period'", e.message)
  end)
end)
