-- The host's scheduler and HTTP transport (issue 2), through real HTTP against the sandbox.
local core = require("mxdeploy.core")
local json = require("mxdeploy.json")
local S = require("sandbox")

local count = require("sandbox").count

describe("scheduler", function()
  it("runs 10,000 sleeping tasks in about one sleep", function()
    local t0 = core.now()
    local tasks = {}
    for i = 1, 10000 do
      tasks[i] = core.spawn(function(x) core.sleep(0.2); return x end, i)
    end
    local sum = 0
    for i = 1, #tasks do sum = sum + tasks[i]:wait() end
    assert.are.equal(10000 * 10001 // 2, sum)
    assert.is_true(core.now() - t0 < 20, "sleeps ran one after another") -- sum would be 2000 s
  end)

  it("returns results, re-raises errors with the task's traceback, and reports status", function()
    local ok_task = core.spawn(function(a, b) return a + b, "x" end, 1, 2)
    local a, b = ok_task:wait()
    assert.are.same({ 3, "x" }, { a, b })
    assert.are.equal("done", ok_task:status())
    local bad = core.spawn(function() error("boom in task") end)
    local ok, err = pcall(bad.wait, bad)
    assert.is_false(ok)
    assert.matches("boom in task", err)
    assert.matches("stack traceback", err)
    assert.are.equal("failed", bad:status())
  end)

  it("cancels a waiting task, running its <close> handlers", function()
    local closed = false
    local t = core.spawn(function()
      local guard <close> = setmetatable({}, { __close = function() closed = true end })
      core.sleep(60)
    end)
    core.sleep(0.01)
    assert.are.equal("waiting", t:status())
    assert.is_true(t:cancel())
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.are.equal("cancelled", err.kind)
    assert.is_true(closed)
    assert.are.equal("cancelled", t:status())
    for _, p in ipairs(core.pending()) do assert.are_not.equal(t.id, p.task) end
  end)

  it("wait_any returns the first finished task, or nil at the deadline", function()
    local slow = core.spawn(core.sleep, 5)
    local fast = core.spawn(core.sleep, 0.01)
    assert.are.equal(2, core.wait_any({ slow, fast }))
    assert.is_nil(core.wait_any({ slow }, 0.02))
    slow:cancel()
  end)

  it("blocks instead of failing where yielding is impossible", function()
    local t = { 3, 1, 2 }
    table.sort(t, function(x, y) core.sleep(0.001); return x < y end) -- sort comparator
    assert.are.same({ 1, 2, 3 }, t)
    local obj = setmetatable({}, { __tostring = function() core.sleep(0.001); return "waited" end })
    assert.are.equal("waited", tostring(obj)) -- metamethod called from C
    local s = ("abc"):gsub("%a", function(c) core.sleep(0.001); return c:upper() end)
    assert.are.equal("ABC", s)
  end)

  it("lets user coroutines wait inside a task", function()
    local gen = coroutine.wrap(function()
      for i = 1, 3 do core.sleep(0.001); coroutine.yield(i) end
    end)
    assert.are.same({ 1, 2, 3 }, { gen(), gen(), gen() })
    local co = coroutine.create(function(x) core.sleep(0.001); return x * 2 end)
    assert.are.same({ true, 42 }, { coroutine.resume(co, 21) })
  end)

  it("lists pending waits with what they wait on", function()
    local t = core.spawn(core.sleep, 5)
    core.sleep(0.01)
    local found
    for _, p in ipairs(core.pending()) do
      if p.task == t.id then found = p end
    end
    assert.is_not_nil(found)
    assert.are.equal("sleep", found.kind)
    assert.matches("sleep 5", found.what)
    assert.is_true(found.waited >= 0.01 and found.waited < 5, "waited " .. tostring(found.waited))
    core.sleep(0.05)
    for _, p in ipairs(core.pending()) do
      if p.task == t.id then assert.is_true(p.waited >= found.waited + 0.04, "waited does not grow") end
    end
    t:cancel()
  end)

  it("mx.timeout cancels the work inside it and raises a timeout error", function()
    local closed = false
    local ok, err = pcall(mx.timeout, 0.05, function()
      local guard <close> = setmetatable({}, { __close = function() closed = true end })
      core.sleep(30)
    end)
    assert.is_false(ok)
    assert.are.equal("timeout", err.kind)
    assert.is_true(closed)
    assert.are.same({ 7 }, { mx.timeout(1, function() return 7 end) })
  end)
end)

describe("http transport", function()
  local sb, c
  setup(function()
    sb = S.start({ time_scale = 0.001 })
    c = { credentials = core.credentials({ username = sb.username, apikey = sb.apikey, token = sb.token }) }
  end)
  teardown(function() sb:stop() end)
  before_each(function()
    sb:configure({ faults = {} })
    sb:reset_log()
  end)

  it("runs 500 concurrent requests to one host", function()
    local tasks = {}
    for i = 1, 500 do
      tasks[i] = core.spawn(function()
        return core.http({ url = sb.bases["deploy-v1"] .. "/apps", auth = c.credentials }).status
      end)
    end
    for i = 1, 500 do assert.are.equal(200, tasks[i]:wait()) end
    assert.are.equal(500, count(sb, function(r) return r.path == "/deploy/api/1/apps" end))
  end)

  it("waits on a slow endpoint concurrently: 100 requests take about one delay", function()
    sb:configure({ faults = { { route = "GET /deploy/api/1/apps", latency = 0.5 } } })
    local t0 = core.now()
    local tasks = {}
    for i = 1, 100 do
      tasks[i] = core.spawn(function()
        return core.http({ url = sb.bases["deploy-v1"] .. "/apps", auth = c.credentials }).status
      end)
    end
    for i = 1, 100 do assert.are.equal(200, tasks[i]:wait()) end
    assert.is_true(core.now() - t0 < 10, "requests ran one after another") -- the sum is 50 s
  end)

  it("reuses connections (keep-alive)", function()
    local fresh <close> = S.start({})
    local first = core.http({ url = fresh.url .. "/deploy/api/1/apps", auth = c.credentials })
    local second = core.http({ url = fresh.url .. "/deploy/api/1/apps", auth = c.credentials })
    assert.are.same({ 200, 200 }, { first.status, second.status })
    assert.are.equal(1, first.new_connections)
    assert.are.equal(0, second.new_connections)
  end)

  it("lets 64 requests to one host run at once by default", function()
    -- the log records when each request arrived; the latency is added after that. Were fewer
    -- than 64 allowed at once, the 64th could only arrive after a first one had answered.
    local fresh <close> = S.start({ faults = { { route = "GET /deploy/api/1/apps", latency = 2 } } })
    local tasks = {}
    for i = 1, 64 do
      tasks[i] = core.spawn(function()
        return core.http({ url = fresh.url .. "/deploy/api/1/apps", auth = c.credentials, timeout = 60 }).status
      end)
    end
    for i = 1, 64 do assert.are.equal(200, tasks[i]:wait()) end
    local log = fresh:requests()
    assert.are.equal(64, #log)
    local function seconds(iso)
      local h, m, sec = iso:match("T(%d+):(%d+):([%d.]+)Z$")
      return tonumber(h) * 3600 + tonumber(m) * 60 + tonumber(sec)
    end
    local first, last = math.huge, -math.huge
    for _, r in ipairs(log) do
      first, last = math.min(first, seconds(r.time)), math.max(last, seconds(r.time))
    end
    assert.is_true(last - first < 1.5, ("the 64 requests arrived over %.2f s: some waited for a connection"):format(last - first))
  end)

  it("caps concurrent connections per host as configured", function()
    -- a fresh host (no idle connections to reuse: the cap applies to opening new ones)
    local fresh <close> = S.start({ faults = { { route = "GET /deploy/api/1/apps", latency = 0.3 } } })
    mx.configure({ max_host_connections = 2 })
    local t0 = core.now()
    local tasks = {}
    for i = 1, 6 do
      tasks[i] = core.spawn(function()
        return core.http({ url = fresh.url .. "/deploy/api/1/apps", auth = c.credentials }).status
      end)
    end
    for i = 1, 6 do assert.are.equal(200, tasks[i]:wait()) end
    local elapsed = core.now() - t0
    assert.are.equal(64, mx.configure({ max_host_connections = 64 }))
    assert.is_true(elapsed >= 0.85, "more than 2 connections ran at once (" .. elapsed .. " s)")
  end)

  it("aborts a cancelled transfer and removes it from pending", function()
    sb:configure({ faults = { { route = "GET /deploy/api/1/apps", latency = 30 } } })
    local t = core.spawn(function()
      return core.http({ url = sb.bases["deploy-v1"] .. "/apps", auth = c.credentials })
    end)
    core.sleep(0.05)
    local p = core.pending()
    local waiting
    for _, e in ipairs(p) do if e.task == t.id then waiting = e end end
    assert.are.equal("http", waiting.kind)
    assert.matches("GET http://127.0.0.1:%d+/deploy/api/1/apps", waiting.what)
    local t0 = core.now()
    t:cancel()
    assert.has_error(function() t:wait() end)
    assert.is_true(core.now() - t0 < 5)
    for _, e in ipairs(core.pending()) do assert.are_not.equal(t.id, e.task) end
  end)

  it("times out with an error of its own kind", function()
    sb:configure({ faults = { { route = "GET /deploy/api/1/apps", latency = 5 } } })
    local resp, err = core.http({ url = sb.bases["deploy-v1"] .. "/apps", timeout = 0.2, auth = c.credentials })
    assert.is_nil(resp)
    assert.are.equal("timeout", err.kind)
    assert.is_true(err.reached)
  end)

  it("says a refused connection never reached the server", function()
    local resp, err = core.http({ method = "POST", url = "http://127.0.0.1:1/x", body = "{}" })
    assert.is_nil(resp)
    assert.are.equal("network", err.kind)
    assert.is_false(err.reached)
  end)

  it("retries an idempotent request on 503 and succeeds", function()
    sb:configure({ faults = { { route = "GET /deploy/api/1/apps", status = 503, error_rate = 1, times = 2 } } })
    local resp = mx.request({ url = sb.bases["deploy-v1"] .. "/apps", auth = c.credentials,
      retry = { base_delay = 0.01 } })
    assert.are.equal(200, resp.status)
    assert.are.equal(2, resp.retries)
    assert.are.equal(3, count(sb, function(r) return r.path == "/deploy/api/1/apps" end))
  end)

  it("never retries a POST that reached the server", function()
    sb:configure({ faults = { { route = "POST /deploy/api/1/apps/*", status = 503, error_rate = 1 } } })
    local ok, err = pcall(mx.request, { method = "POST", auth = c.credentials,
      url = sb.bases["deploy-v1"] .. "/apps/calc/environments/Acceptance/stop", retry = { base_delay = 0.01 } })
    assert.is_false(ok)
    assert.are.equal("http", err.kind)
    assert.are.equal(503, err.status)
    assert.are.equal(1, count(sb, function(r) return r.method == "POST" end))
  end)

  it("retries a POST that provably never left", function()
    local ok, err = pcall(mx.request, { method = "POST", url = "http://127.0.0.1:1/x",
      retry = { base_delay = 0.01, max_retries = 2 } })
    assert.is_false(ok)
    assert.are.equal("network", err.kind)
    assert.are.equal(2, err.retries)
  end)

  it("honours Retry-After on 429", function()
    sb:configure({ faults = { { route = "GET /deploy/api/1/apps", rate_limit = { count = 1, status = 429, retry_after = 1 } } } })
    local t0 = core.now()
    local resp = mx.request({ url = sb.bases["deploy-v1"] .. "/apps", auth = c.credentials })
    assert.are.equal(200, resp.status)
    assert.are.equal(1, resp.retries)
    assert.is_true(core.now() - t0 >= 0.95, "did not wait for Retry-After")
  end)

  it("does not send the token to another origin on a redirect", function()
    local resp = core.http({ method = "POST", url = sb.bases["pc-deploy"] .. "/cli/2.9.0?os=linux&architecture=x86",
      auth = c.credentials, auth_scheme = "token",
      headers = { ["Mendix-ApiKey"] = "user-supplied-secret", Cookie = "a=b" } })
    assert.are.equal(1, resp.redirects)
    local api, files
    for _, r in ipairs(sb:requests()) do
      if r.listener == "files" then files = r else api = r end
    end
    assert.is_true(api.credentials)
    assert.is_not_nil(files, "the redirect was not followed")
    assert.is_false(files.credentials)
  end)

  it("reports upload progress to a callback and renders it", function()
    local file = S.tmpfile(("x"):rep(3 * 1024 * 1024))
    local client = mx.sandbox_client(sb)
    local calls, last_done, last_total = 0, 0, 0
    local lines = {}
    local bar = mx.progress("upload", { tty = false, stream = { write = function(_, s) lines[#lines + 1] = s end,
      flush = function() end } })
    client.v2.upload_package(S.APP, file, { name = "p-1.0.0.1.mda", on_progress = function(done, total, dir)
      calls, last_done, last_total = calls + 1, done, total
      assert.are.equal("up", dir)
      bar(done, total)
    end }):wait({ timeout = 30 })
    os.remove(file)
    assert.is_true(calls >= 1)
    assert.is_true(last_total >= 3 * 1024 * 1024)
    assert.are.equal(last_total, last_done)
    assert.matches("upload: 100%% of", lines[#lines])
    assert.has_error(function() client.v2.upload_package(S.APP, "/etc/hostname", { on_progress = 5 }) end)
  end)

  it("does not send the API key, username or cookies to another origin on a redirect", function()
    sb:configure({ faults = { { route = "GET /deploy/api/1/apps", redirect = "files", status = 307 } } })
    local resp = mx.request({ url = sb.bases["deploy-v1"] .. "/apps", auth = c.credentials,
      headers = { Cookie = "session=abc", Authorization = "Bearer user-given" } })
    assert.are.equal(200, resp.status)
    assert.is_true(resp.json.redirected)
    local api, files
    for _, r in ipairs(sb:requests()) do
      if r.listener == "files" then files = r else api = r end
    end
    assert.is_true(api.credentials)
    assert.is_false(files.credentials)
    for _, h in ipairs({ "mendix-username", "mendix-apikey", "authorization", "cookie" }) do
      assert.is_nil(files.headers[h], h .. " followed the redirect")
    end
  end)

  it("does not send credentials again when a redirect to another origin redirects back", function()
    -- api -> files listener (another origin) -> api: the third hop goes out without credentials
    sb:configure({ faults = {
      { route = "GET /deploy/api/1/apps", listener = "api", redirect = "files", status = 307, times = 1 },
      { route = "GET /files/redirected/deploy/api/1/apps", listener = "files",
        redirect = sb.url .. "/deploy/api/1/apps/calc", status = 307 } } })
    local resp = mx.request({ url = sb.url .. "/deploy/api/1/apps", auth = c.credentials, raw = true, retry = false,
      headers = { Cookie = "session=abc", Authorization = "Bearer user-given" } })
    assert.are.equal(2, resp.redirects)
    assert.are.equal(401, resp.status) -- the sandbox's answer to a request without credentials
    local log = sb:requests()
    assert.are.equal(3, #log)
    assert.are.equal("/deploy/api/1/apps/calc", log[3].path)
    assert.is_true(log[1].credentials)
    assert.is_false(log[3].credentials, "credentials were sent again after coming back from another origin")
    for _, h in ipairs({ "mendix-username", "mendix-apikey", "authorization", "cookie" }) do
      assert.is_nil(log[3].headers[h], h .. " came back with the redirect")
    end
  end)

  it("keeps credentials on a redirect within the same origin", function()
    sb:configure({ faults = { { route = "GET /deploy/api/1/apps", redirect = sb.bases["deploy-v1"] .. "/apps/calc", times = 1 } } })
    local resp = mx.request({ url = sb.bases["deploy-v1"] .. "/apps", auth = c.credentials })
    assert.are.equal(200, resp.status)
    assert.are.equal("calc", resp.json.AppId)
    local log = sb:requests()
    assert.are.equal("/deploy/api/1/apps/calc", log[#log].path)
    assert.is_true(log[#log].auth_ok)
  end)

  it("round-trips [] and null exactly", function()
    local text = '{"a":[],"b":{},"c":null,"d":[1,[],{"e":null}],"n":12345678901234567,"f":0.5}'
    local v = json.decode(text)
    assert.is_true(json.is_array(v.a))
    assert.is_false(json.is_array(v.b))
    assert.are.equal(json.null, v.c)
    assert.are.equal("integer", math.type(v.n))
    assert.are.same(v, json.decode(json.encode(v)))
    local again = json.encode(json.decode(json.encode(v)))
    assert.matches('"a":%[%]', again)
    assert.matches('"b":{}', again)
    assert.matches('"c":null', again)
    assert.matches('"n":12345678901234567', again)
  end)

  it("writes a download atomically: a failed one leaves the old file and no temporary file", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 " .. dir))
    local out = dir .. "/app.mda"
    local function write_old()
      local f = assert(io.open(out, "wb")); f:write("OLD CONTENT"); f:close()
    end
    local function listing()
      local p = io.popen("ls -A " .. dir)
      local names = p:read("a")
      p:close()
      return names
    end
    local client = mx.sandbox_client(sb, { retry = false })
    local seen = {}
    for _, fault in ipairs({ { truncate = true }, { drop = true }, { error = "PACKAGE_NOT_FOUND" } }) do
      write_old()
      fault.route = "GET */download"
      sb:configure({ faults = { fault } })
      local ok, err = pcall(client.build.download_package, S.APP, S.PKG1, out)
      assert.is_false(ok)
      seen[#seen + 1] = err.kind
      local f = assert(io.open(out, "rb"))
      assert.are.equal("OLD CONTENT", f:read("a"), "a failed download changed the file")
      f:close()
      assert.are.equal("app.mda\n", listing(), "a temporary file was left behind")
    end
    assert.are.same({ "network", "network", "http" }, seen)
    -- a download that succeeds replaces the file whole and reports its progress
    sb:configure({ faults = {} })
    local calls, last = 0, nil
    assert.are.equal(out, client.build.download_package(S.APP, S.PKG1, out, { on_progress = function(done, total, dir_)
      calls, last = calls + 1, { done, total, dir_ }
    end }))
    local f = assert(io.open(out, "rb"))
    local body = f:read("a")
    f:close()
    assert.matches("^PK%-SANDBOX%-MDA", body)
    assert.is_true(calls >= 1)
    assert.are.same({ #body, #body, "down" }, last)
    assert.are.equal("app.mda\n", listing())
    os.remove(out); os.remove(dir)
  end)

  it("gives up on a stalled transfer after low_speed_time, and a client's timeout applies to its calls", function()
    sb:configure({ faults = { { route = "GET /deploy/api/1/apps", latency = 20 } } })
    local t0 = core.now()
    local ok, err = pcall(mx.request, { url = sb.bases["deploy-v1"] .. "/apps", auth = c.credentials,
      low_speed_time = 1, retry = false })
    assert.is_false(ok)
    assert.are.equal("timeout", err.kind)
    assert.matches("too slow", err.message)
    assert.is_true(core.now() - t0 < 15, "the stalled transfer was not abandoned")
    local client = mx.sandbox_client(sb, { timeout = 0.3, retry = false })
    ok, err = pcall(client.v1.list_apps)
    assert.is_false(ok)
    assert.are.equal("timeout", err.kind)
    assert.matches("^timeout: .*%(GET /deploy/api/1/apps%)$", tostring(err))
  end)

  it("streams a 160 MB upload and download within a 64 MB memory budget", function()
    local big = os.tmpname()
    assert(os.execute("truncate -s 160M " .. big))
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local c = mx.connect{username = os.getenv("SB_USER"), apikey = os.getenv("SB_KEY"),
        base_urls = {v2 = os.getenv("SB_URL") .. "/deploy/api/v2", build = os.getenv("SB_URL") .. "/deploy/api/1"}}
      local done = c.v2.upload_package("calc", arg[1], {name = "big-1.0.0.0.mda"}):wait{timeout = 40}
      c.build.download_package("calc", done.PackageId, arg[2])
      local hwm = io.open("/proc/self/status"):read("a"):match("VmHWM:%s*(%d+)")
      print("peak_kb", hwm)
    ]])
    f:close()
    local out = os.tmpname()
    local cmd = ("SB_URL=%q SB_USER=%q SB_KEY=%q %q %q %q %q 2>&1"):format(
      sb.url, sb.username, sb.apikey, os.getenv("MXDEPLOY_BIN"), script, big, out)
    local _, output = require("process").run(cmd, { timeout = 45 }) -- bounded: a stuck transfer fails in 45 s
    local hwm = tonumber(output:match("peak_kb%s+(%d+)"))
    assert.is_not_nil(hwm, output)
    assert.is_true(hwm < 64 * 1024, "peak memory " .. hwm .. " kB: the file was held in memory")
    assert.is_true(os.execute(("cmp -s %q %q"):format(big, out)), "downloaded bytes differ")
    os.remove(big); os.remove(out); os.remove(script)
  end)
end)

describe("waits in places that cannot yield", function()
  it("blocks correctly inside a required chunk", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local f = assert(io.open(dir .. "/slow_module.lua", "w"))
    f:write("local core = require('mxdeploy.core')\ncore.sleep(0.01)\nreturn {loaded = core.now()}\n")
    f:close()
    local saved = package.path
    package.path = dir .. "/?.lua;" .. package.path
    local ok, mod = pcall(require, "slow_module")
    package.path = saved
    package.loaded.slow_module = nil
    os.remove(dir .. "/slow_module.lua")
    os.remove(dir)
    assert.is_true(ok, tostring(mod))
    assert.is_number(mod.loaded)
  end)

  it("shows what a job wait is waiting for in pending()", function()
    local sb = S.start({ time_scale = 1 })
    finally(function() sb:stop() end)
    local c = mx.sandbox_client(sb)
    local job = c.v1.start_environment(S.APP, "Test", { AutoSyncDb = true })
    local t = core.spawn(function() return job:wait({ interval = 5 }) end)
    core.sleep(0.05)
    local seen
    for _, p in ipairs(core.pending()) do
      if p.task == t.id then seen = p end
    end
    assert.is_not_nil(seen)
    assert.matches("next poll in", seen.what)
    assert.matches(tostring(job.id), seen.what, 1, true)
    t:cancel()
  end)
end)

describe("TLS", function()
  local dir, sb, creds
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    -- a throwaway self-signed certificate for 127.0.0.1 (key and certificate stay in dir)
    assert(os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 " ..
      "-addext subjectAltName=IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem 2>/dev/null"):format(dir, dir)))
    sb = S.start({ time_scale = 0.001, tls_cert = dir .. "/cert.pem", tls_key = dir .. "/key.pem" })
    creds = core.credentials({ username = sb.username, apikey = sb.apikey })
  end)
  teardown(function()
    sb:stop()
    os.execute("rm -rf " .. dir)
  end)

  it("verifies certificates by default and never retries a failed check", function()
    assert.matches("^https://127%.0%.0%.1:%d+$", sb.url)
    local t0 = core.now()
    local ok, err = pcall(mx.request, { url = sb.bases["deploy-v1"] .. "/apps", auth = creds })
    assert.is_false(ok)
    assert.are.equal("tls", err.kind)
    assert.are.equal(0, err.retries)
    assert.matches("^TLS error: ", tostring(err))
    assert.is_true(core.now() - t0 < 5)
    assert.are.equal(0, #sb:requests()) -- no request got through
  end)

  it("speaks HTTP/2 where the server offers it, many requests on one connection", function()
    if os.execute("command -v nghttpd >/dev/null 2>&1") ~= true then
      error("nghttpd is not installed (Debian package nghttp2-server; run tools/install-deps)")
    end
    local www = dir .. "/www"
    assert(os.execute("mkdir -p " .. www))
    local f = assert(io.open(www .. "/apps.json", "w"))
    f:write('{"h2": true}')
    f:close()
    -- nghttpd (HTTP/2 over TLS with ALPN) on a free port, stopped at the end of the test
    local port, pid
    for _ = 1, 5 do
      port = math.random(20000, 45000)
      local p = io.popen(("nghttpd -a 127.0.0.1 -d %s %d %s/key.pem %s/cert.pem >/dev/null 2>&1 & echo $!")
        :format(www, port, dir, dir))
      pid = p:read("l")
      p:close()
      local up = false
      for _ = 1, 50 do
        local resp = core.http({ url = ("https://127.0.0.1:%d/apps.json"):format(port), ca_file = dir .. "/cert.pem",
          timeout = 2, connect_timeout = 2 })
        if resp then up = true break end
        core.sleep(0.05)
      end
      if up then break end
      os.execute("kill " .. pid .. " 2>/dev/null")
      pid = nil
    end
    assert.is_not_nil(pid, "nghttpd did not start")
    local ok, err = pcall(function()
      local tasks = {}
      for i = 1, 50 do
        tasks[i] = core.spawn(function()
          return core.http({ url = ("https://127.0.0.1:%d/apps.json"):format(port), ca_file = dir .. "/cert.pem" })
        end)
      end
      local opened = 0
      for i = 1, 50 do
        local resp = tasks[i]:wait()
        assert.are.equal(200, resp.status)
        assert.are.equal("2", resp.http_version)
        opened = opened + resp.new_connections
      end
      assert.are.equal(0, opened, "the 50 requests should reuse the connection opened while probing")
    end)
    os.execute("kill " .. pid .. " 2>/dev/null")
    assert(ok, err)
  end)

  it("trusts a given CA file, and skips the check only when told to", function()
    local resp = mx.request({ url = sb.bases["deploy-v1"] .. "/apps", auth = creds, ca_file = dir .. "/cert.pem" })
    assert.are.equal(200, resp.status)
    local insecure = mx.connect({ username = sb.username, apikey = sb.apikey, insecure = true,
      base_urls = { v1 = sb.bases["deploy-v1"] } })
    assert.is_true(#insecure.v1.list_apps() > 0)
    local default = mx.connect({ username = sb.username, apikey = sb.apikey,
      base_urls = { v1 = sb.bases["deploy-v1"] } })
    local ok, err = pcall(default.v1.list_apps)
    assert.is_false(ok)
    assert.are.equal("tls", err.kind)
  end)
end)
