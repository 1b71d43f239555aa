-- Sandbox faults (latency, 5xx share, 429 + Retry-After, drop, truncate, non-JSON, documented
-- errors, failed jobs), the request log, state/seed files and the standalone `mxdeploy sandbox`.
local S = require("sandbox")
local core = S.core
local json = S.json

local function timed(fn)
  local t0 = core.now()
  local a, b, c, d = fn()
  return core.now() - t0, a, b, c, d
end

describe("sandbox faults", function()
  local sb, c
  before_each(function() sb = S.start{ time_scale = 0.001 } c = S.client(sb) end)
  after_each(function() sb:stop() end)

  it("adds latency per route", function()
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps", latency = 0.3 } } }
    local slow = timed(function() return c.v1("GET", "/apps") end)
    local fast = timed(function() return c.v1("GET", "/apps/calc") end)
    assert.is_true(slow >= 0.3, "slow took " .. slow)
    assert.is_true(fast < 0.25, "fast took " .. fast)
  end)

  it("serves 500 concurrent slow requests in about one delay, on a few threads", function()
    -- Two curl processes in parallel mode, 250 transfers each (curl caps --parallel-max at 300;
    -- the mxdeploy client caps connections per host at 64). This measures the server, which
    -- suspends a delayed connection instead of sleeping on a thread of its own.
    sb:configure{ faults = { { route = "*", latency = 1.0 } } }
    local files = {}
    for k = 1, 2 do
      local cfg, out = os.tmpname(), os.tmpname()
      local f = assert(io.open(cfg, "w"))
      f:write('header = "Mendix-Username: ', sb.username, '"\nheader = "Mendix-ApiKey: ', sb.apikey, '"\n')
      for _ = 1, 250 do f:write('url = "', sb.url, '/deploy/api/1/apps/calc"\noutput = "/dev/null"\n') end
      f:close()
      files[k] = { cfg = cfg, out = out }
    end
    local cmd = "curl -s --parallel --parallel-immediate --parallel-max 250 --max-time 20 -w '%%{http_code}\\n' -K '%s' > '%s' 2>/dev/null"
    local done = os.tmpname()
    os.remove(done)
    local function threads() -- of this process, where the sandbox runs
      local f = assert(io.open("/proc/self/status"))
      local n = tonumber(f:read("a"):match("Threads:%s*(%d+)"))
      f:close()
      return n
    end
    local before = threads()
    local t0 = core.now()
    assert(os.execute("{ " .. cmd:format(files[1].cfg, files[1].out) .. " & " .. cmd:format(files[2].cfg, files[2].out)
      .. " & wait; touch '" .. done .. "'; } &"))
    local most = before
    repeat
      core.sleep(0.05)
      most = math.max(most, threads())
    until io.open(done) or core.now() - t0 > 20
    local took = core.now() - t0
    os.remove(done)
    -- a thread per connection was 500 more threads here
    assert.is_true(most - before < 20, ("threads: %d before, %d at most"):format(before, most))
    local ok = 0
    for _, x in ipairs(files) do
      local f = assert(io.open(x.out))
      ok = ok + select(2, f:read("a"):gsub("200", ""))
      f:close()
      os.remove(x.cfg)
      os.remove(x.out)
    end
    assert.are.equal(500, ok)
    assert.is_true(took < 2.5, "500 requests took " .. took)
    assert.are.equal(500, #sb:requests())
  end)

  it("answers an exact share of requests with 5xx, before they take effect", function()
    sb:configure{ faults = { { route = "* /deploy/api/1/apps/calc/environments/Test/tags", error_rate = 0.5, status = 503 } } }
    local statuses = {}
    for i = 1, 6 do
      local st, d = c.v1("POST", "/apps/calc/environments/Test/tags", { Tag = "t" .. i })
      statuses[i] = st
      if st == 503 then assert.are.equal("SERVICE_UNAVAILABLE", d.errorCode) end
    end
    assert.are.same({ 200, 503, 200, 503, 200, 503 }, statuses)
    sb:configure{ faults = {} }
    local _, tags = c.v1("GET", "/apps/calc/environments/Test/tags")
    local names = {}
    for _, t in ipairs(tags) do names[#names + 1] = t.Tag end
    assert.are.same({ "sandbox", "t1", "t3", "t5" }, names)
  end)

  it("rate-limits with 429 and Retry-After in each API's error shape", function()
    sb:configure{ faults = { { route = "*", rate_limit = { count = 2, retry_after = 3 } } } }
    local st, d, resp = c.v1("GET", "/apps")
    assert.are.same({ 429, "3", "TOO_MANY_REQUESTS" }, { st, resp.headers["retry-after"], d.errorCode })
    st, d = c.v4("GET", "/apps")
    assert.are.same({ 429, 429 }, { st, d.error.code })
    st = c.v4("GET", "/apps")
    assert.are.equal(200, st)
  end)

  it("drops the connection mid-response after the request took effect", function()
    sb:configure{ faults = { { route = "POST */tags", drop = true } } }
    local st, _, _, err = c.v1("POST", "/apps/calc/environments/Test/tags", { Tag = "dropped" })
    assert.is_nil(st)
    assert.are.equal("network", err.kind)
    local _, tags = c.v1("GET", "/apps/calc/environments/Test/tags")
    assert.are.equal("dropped", tags[#tags].Tag)
  end)

  it("truncates bodies (Content-Length larger than what is sent)", function()
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps", truncate = true } } }
    local st, _, _, err = c.v1("GET", "/apps")
    assert.is_nil(st)
    assert.truthy(err.message:find("remaining", 1, true) or err.message:find("partial", 1, true), err.message)
  end)

  it("replaces bodies with non-JSON", function()
    sb:configure{ faults = { { route = "GET /cloud/api/v4/apps", body = "<html>gateway</html>" } } }
    local st, d, resp = c.v4("GET", "/apps")
    assert.are.same({ 200, "<html>gateway</html>" }, { st, resp.body })
    assert.is_nil(d)
  end)

  it("answers documented error codes on demand, once with times=1", function()
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps/calc", error = "INVALID_APPID", times = 1 } } }
    local st, d = c.v1("GET", "/apps/calc")
    assert.are.same({ 400, "INVALID_APPID", "Invalid AppId" }, { st, d.errorCode, d.errorMessage })
    assert.are.equal(200, (c.v1("GET", "/apps/calc")))
  end)

  it("answers every code of the docs' error tables at the status documented for that operation", function()
    -- Each API call section of the v1, Build and Backups docs: its method, URL and error table.
    local VALUES = { AppId = "calc", Mode = "Test", JobId = "j-1", PackageId = S.PKG1, Date = "2024-01-02",
      ProjectId = S.PROJECT, EnvironmentId = S.ENV_TEST, SnapshotId = "s-1", ArchiveId = "a-1", RestoreId = "r-1",
      Boolean = "true", PackageName = "p.mda" }
    local rows, sections = 0, 0
    for _, page in ipairs({ "deploy-api-1", "build-api", "backups-api-v2" }) do
      -- specs/docs/<page>.json: the docs page's sections as data (tools/derive-spec-data)
      local f = assert(io.open(require("prism").specs_dir() .. "/docs/" .. page .. ".json"))
      local doc = S.json.decode(f:read("a"))
      f:close()
      for _, sec in ipairs(doc.sections) do
        local url = sec.url and sec.url:match("^https://deploy%.mendix%.com(/api/%S+)")
        if url then
          sections = sections + 1
          local method = sec.method
          local path = "/deploy" .. url:gsub("%?.*$", ""):gsub("<(%w+)>", function(n) return assert(VALUES[n], n) end)
          for _, e in ipairs(sec.errors) do
            if e.code:match("^%u[%u_ ]*%u$") then -- not "204 | No Content"
              rows = rows + 1
              sb:configure{ faults = { { route = method .. " " .. path, error = e.code, times = 1 } } }
              local api, rest = path:match("^/deploy/api/(%w+)(/.*)$")
              local st, d = c[api == "1" and "v1" or "v2"](method, rest, method ~= "GET" and method ~= "DELETE" and {} or nil)
              local what = page .. ": " .. method .. " " .. path .. " " .. e.code
              assert.are.equal(e.status, st, what)
              assert.are.equal(e.code, d and d.errorCode, what)
              assert.is_string(d.errorMessage, what)
            end
          end
        end
      end
    end
    assert.are.equal(34, sections) -- 20 v1, 5 Build, 9 Backups calls
    assert.are.equal(148, rows)
  end)

  it("answers a missing restore with the documented 400 NOT_FOUND", function()
    local st, d = c.v2("GET", "/apps/" .. S.PROJECT .. "/environments/" .. S.ENV_TEST .. "/restores/00000000-0000-4000-8000-000000000000")
    assert.are.same({ 400, "NOT_FOUND" }, { st, d.errorCode })
  end)

  it("fails v1 start jobs with a documented code (job_fail)", function()
    sb:configure{ faults = { { route = "POST */start", job_fail = "DB_SYNC_FAILED" } } }
    local _, d = c.v1("POST", "/apps/calc/environments/Test/start", {})
    local st, s = nil, nil
    S.eventually(function()
      st, s = c.v1("GET", "/apps/calc/environments/Test/start/" .. d.JobId)
      return st ~= 200
    end, 5)
    assert.are.same({ 500, "DB_SYNC_FAILED" }, { st, s.errorCode })
    local _, env = c.v1("GET", "/apps/calc/environments/Test")
    assert.are.equal("Stopped", env.Status)
  end)

  it("fails Private Cloud jobs (job_fail) with the error in the job body", function()
    sb:configure{ faults = { { route = "DELETE /privatecloud/*", job_fail = true } } }
    local st, job = c.pc("DELETE", "/apps/" .. S.PROJECT .. "/environments/pcenv01")
    assert.are.equal(202, st)
    local j = S.eventually(function()
      local _, x = c.pc("GET", "/jobs/" .. job.id)
      return x.status == "failed" and x
    end, 5)
    assert.is_table(j.error)
    assert.are.equal(200, (c.pc("GET", "/apps/" .. S.PROJECT .. "/environments/pcenv01")))
  end)
end)

describe("sandbox request log", function()
  local SECRETS = { "sandbox-apikey-0000", "sandbox-pat-rw", "sandbox-pat-ro", "wrong-key-1234", "Cookie-Secret-99" }

  local function assert_no_secret(text, where)
    for _, secret in ipairs(SECRETS) do
      assert.is_nil(text:find(secret, 1, true), where .. " leaks " .. secret)
    end
  end

  it("records method, path, status, listener, headers (secrets redacted), auth_ok and body, never a secret", function()
    local logfile = os.tmpname()
    local sb = S.start{ time_scale = 0.001, log = logfile }
    finally(function() sb:stop() end)
    local c = S.client(sb)
    c.v1("GET", "/apps")
    c.v4("POST", "/apps", {})
    S.request{ method = "GET", url = sb.bases["deploy-v1"] .. "/apps" }
    c.v1("POST", "/apps/calc/environments/Test/tags", { Tag = "europe" })
    -- a wrong key, a cookie, an unknown auth header and the real key in the body: none is stored
    S.request{ method = "POST", url = sb.bases["deploy-v1"] .. "/apps/calc/environments/Test/tags",
      headers = { ["Mendix-Username"] = sb.username, ["Mendix-ApiKey"] = "wrong-key-1234",
                  Cookie = "session=Cookie-Secret-99", ["X-Auth-Token"] = "sandbox-pat-ro",
                  ["Content-Type"] = "application/json" },
      body = json.encode({ Tag = "sandbox-apikey-0000" }) }
    c.pc("GET", "/apps/" .. S.PROJECT .. "/environments/pcenv01")
    local big = S.tmpfile(("x"):rep(70000))
    c.v1("POST", "/apps/calc/packages/upload?name=a.mda", nil, { file = big, form = { note = "hi" } })
    S.request{ method = "POST", url = sb.bases["deploy-v1"] .. "/apps/calc/environments/Test/tags",
      headers = { ["Mendix-Username"] = sb.username, ["Mendix-ApiKey"] = sb.apikey, ["Content-Type"] = "application/json" },
      body = json.encode({ Tag = ("y"):rep(70000) }) }
    local log = sb:requests()
    assert.are.equal(8, #log)
    assert.are.same({ "GET", "/deploy/api/1/apps", 200, true, "api" },
      { log[1].method, log[1].path, log[1].status, log[1].credentials, log[1].listener })
    assert.are.same({ "POST", 405 }, { log[2].method, log[2].status })
    assert.are.same({ 401, false, false }, { log[3].status, log[3].credentials, log[3].auth_ok })

    -- headers: lowercase names, the username kept, every secret-bearing value redacted
    assert.is_true(log[1].auth_ok)
    assert.are.equal(sb.username, log[1].headers["mendix-username"])
    assert.are.equal("<redacted>", log[1].headers["mendix-apikey"])
    assert.is_nil(log[1].body)
    assert.are.equal(0, log[1].body_size)
    assert.is_true(log[2].auth_ok)   -- a seeded PAT (the 405 is about the route)
    assert.are.equal("<redacted>", log[2].headers["authorization"])
    assert.are.same({ true, '{"Tag":"europe"}', 16, "application/json" },
      { log[4].auth_ok, log[4].body, log[4].body_size, log[4].headers["content-type"] })
    local w = log[5]
    assert.are.same({ 401, true, false }, { w.status, w.credentials, w.auth_ok })
    assert.are.same({ "<redacted>", "<redacted>", "<redacted>" },
      { w.headers["mendix-apikey"], w.headers["cookie"], w.headers["x-auth-token"] })
    assert.are.same({ Tag = "<redacted>" }, json.decode(w.body))
    assert.are.same({ true, "<redacted>" }, { log[6].auth_ok, log[6].headers["authorization"] })

    -- multipart: only the part names/filenames and the size; large JSON: only the size
    local up = log[7]
    assert.are.equal(200, up.status)
    assert.is_nil(up.body)
    assert.is_true(up.body_size > 70000)
    assert.matches("^multipart/form%-data; boundary=", up.headers["content-type"])
    local names = {}
    for _, p in ipairs(up.parts) do names[p.name] = p.filename or true end
    assert.are.equal(big:match("([^/]+)$"), names.file)
    assert.is_true(names.note)
    assert.is_nil(log[8].body)
    assert.is_true(log[8].body_size > 70000)
    assert_no_secret(json.encode(log), "sb:requests()")
    sb:stop()
    os.remove(big)

    local f = assert(io.open(logfile, "r"))
    local text = f:read("a")
    f:close()
    os.remove(logfile)
    local lines = {}
    for line in text:gmatch("[^\n]+") do lines[#lines + 1] = json.decode(line) end
    assert.are.equal(8, #lines)
    assert.are.equal("/deploy/api/1/apps", lines[1].path)
    assert.are.equal("<redacted>", lines[1].headers["mendix-apikey"])
    assert.are.equal('{"Tag":"europe"}', lines[4].body)
    assert.is_false(lines[5].auth_ok)
    assert_no_secret(text, "--log file")
  end)

  it("lets a test assert that a dry run sent no mutating request", function()
    local sb = S.start{ time_scale = 0.001 }
    finally(function() sb:stop() end)
    local c = S.client(sb)
    c.v1("GET", "/apps/calc/environments")
    c.v4("GET", "/apps")
    local mutating = 0
    for _, r in ipairs(sb:requests()) do
      if r.method ~= "GET" then mutating = mutating + 1 end
    end
    assert.are.equal(0, mutating)
    sb:reset_log()
    assert.are.equal(0, #sb:requests())
  end)
end)

describe("sandbox state and seed files", function()
  it("persists the world in the state file across restarts", function()
    local state = os.tmpname()
    os.remove(state)
    local sb = S.start{ time_scale = 0.001, state = state }
    finally(function() sb:stop() end)
    assert.are.equal(200, (S.client(sb).v1("POST", "/apps/calc/environments/Test/tags", { Tag = "persisted" })))
    sb:stop()
    sb = S.start{ time_scale = 0.001, state = state }
    local _, tags = S.client(sb).v1("GET", "/apps/calc/environments/Test/tags")
    assert.are.equal("persisted", tags[#tags].Tag)
    local _, s = S.client(sb).v1("GET", "/apps/calc/environments/Test/settings")
    assert.is_true(json.is_array(s.CustomSettings))
    os.remove(state)
  end)

  it("keeps the old state file and answers 500 when the new state cannot be written", function()
    local P = require("process")
    local state = os.tmpname()
    os.remove(state)
    local sb = S.start{ time_scale = 0.001, state = state }
    finally(function() sb:stop(); os.remove(state) end)
    assert.are.equal(200, (S.client(sb).v1("POST", "/apps/calc/environments/Test/tags", { Tag = "first" })))
    sb:stop()
    local before = P.slurp(state)
    assert.is_true(#before > 8192, "the state is too small for this test: " .. #before)
    -- a child whose files may not grow past 4 KiB (ulimit -f counts 512-byte blocks in dash,
    -- 1 KiB in bash: both below the state's size); SIGXFSZ ignored, so the write fails (EFBIG)
    local script = P.tmpfile(([[
      local sb = require("mxdeploy.sandboxctl").start{time_scale = 0.001, state = %q}
      local r = require("mxdeploy.core").http{method = "POST", url = sb.bases["deploy-v1"] ..
        "/apps/calc/environments/Test/tags", body = '{"Tag":"second"}', headers = {["Content-Type"] = "application/json",
        ["Mendix-Username"] = sb.username, ["Mendix-ApiKey"] = sb.apikey}}
      print(r.status, r.body)
      sb:stop()
    ]]):format(state))
    local code, out, err = P.run(("trap '' XFSZ; ulimit -f 8; %s %s"):format(P.quote(P.BIN), P.quote(script)))
    os.remove(script)
    assert.are.equal(0, code, err)
    local status, body = out:match("^(%d+)\t(.*)$")
    assert.are.equal("500", status, out)
    assert.are.equal("STATE_NOT_SAVED", json.decode(body).errorCode)
    assert.matches("cannot save the state", err)
    assert.are.equal(before, P.slurp(state), "the state file changed")
    assert.is_nil(io.open(state .. ".tmp"), "a temporary state file was left behind")
  end)

  it("loads another seed file", function()
    local seed = S.tmpfile([[return {
      users = { { username = "u@example.com", apikey = "k", name = "U", can_deploy = true } },
      tokens = { { token = "t", user = "u@example.com", scopes = { "mx:deployment:read" } } },
      credentials = { username = "u@example.com", apikey = "k", token = "t", readonly_token = "t" },
      apps = { { AppId = "solo", ProjectId = "11111111-2222-4333-8444-555555555555", Name = "Solo",
                 members = { "u@example.com" }, environments = {} } },
    }]])
    local sb = S.start{ seed = seed, time_scale = 0.001 }
    finally(function() sb:stop() end)
    os.remove(seed)
    assert.are.same({ "u@example.com", "k", "t" }, { sb.username, sb.apikey, sb.token })
    local _, apps = S.client(sb).v1("GET", "/apps")
    assert.are.same({ 1, "solo" }, { #apps, apps[1].AppId })
  end)
end)

describe("mxdeploy sandbox (standalone)", function()
  -- Starts `mxdeploy sandbox ARGS` in the background; returns its pid and API base URL.
  local serve, stop = S.serve, S.stop_served

  it("--seed, --log and --state: its world, a JSON line per request without secrets, kept across restarts", function()
    local seed = S.tmpfile([[return {
      users = { { username = "cli@example.com", apikey = "cli-seeded-key-42", name = "C", can_deploy = true } },
      tokens = { { token = "cli-seeded-token-42", user = "cli@example.com", scopes = { "mx:deployment:read", "mx:deployment:write" } } },
      credentials = { username = "cli@example.com", apikey = "cli-seeded-key-42", token = "cli-seeded-token-42",
                      readonly_token = "cli-seeded-token-42" },
      apps = { { AppId = "solo", ProjectId = "11111111-2222-4333-8444-555555555555", Name = "Solo",
                 members = { "cli@example.com" }, environments = { { Mode = "Test", EnvironmentId =
                 "11111111-2222-4333-8444-666666666666", Status = "Stopped", Url = "https://solo-test.example.com" } } } },
    }]])
    local log, state = os.tmpname(), os.tmpname()
    os.remove(log); os.remove(state)
    local args = ("--seed '%s' --log '%s' --state '%s'"):format(seed, log, state)
    local pid, base, banner = serve(args)
    assert.truthy(banner:find("Mendix-Username: cli@example.com", 1, true), banner) -- the seed's credentials
    local h = { ["Mendix-Username"] = "cli@example.com", ["Mendix-ApiKey"] = "cli-seeded-key-42" }
    local st, apps = S.request{ method = "GET", url = base .. "/deploy/api/1/apps", headers = h }
    assert.are.same({ 200, 1, "solo" }, { st, #apps, apps[1].AppId })
    h["Content-Type"] = "application/json"
    st = S.request{ method = "POST", url = base .. "/deploy/api/1/apps/solo/environments/Test/tags", headers = h,
      body = json.encode({ Tag = "kept" }) }
    assert.are.equal(200, st)
    st = S.request{ method = "GET", url = base .. "/deploy/api/1/apps", headers = { ["Mendix-Username"] = "cli@example.com" } }
    assert.are.equal(401, st)
    stop(pid)

    local f = assert(io.open(log))
    local text = f:read("a")
    f:close()
    assert.is_nil(text:find("cli-seeded-key-42", 1, true), "the API key is in the log")
    local lines = {}
    for line in text:gmatch("[^\n]+") do lines[#lines + 1] = json.decode(line) end
    assert.are.equal(3, #lines)
    assert.are.same({ "GET", "/deploy/api/1/apps", 200, true, true },
      { lines[1].method, lines[1].path, lines[1].status, lines[1].credentials, lines[1].auth_ok })
    assert.are.same({ "POST", "/deploy/api/1/apps/solo/environments/Test/tags", 200, '{"Tag":"kept"}' },
      { lines[2].method, lines[2].path, lines[2].status, lines[2].body })
    assert.are.same({ 401, true, false }, { lines[3].status, lines[3].credentials, lines[3].auth_ok })

    -- restarted on the same state file: the tag is still there
    pid, base = serve(("--seed '%s' --state '%s'"):format(seed, state))
    h["Content-Type"] = nil
    local tags
    st, tags = S.request{ method = "GET", url = base .. "/deploy/api/1/apps/solo/environments/Test/tags", headers = h }
    stop(pid)
    assert.are.equal(200, st)
    assert.are.equal("kept", tags[#tags].Tag)
    os.remove(seed); os.remove(log); os.remove(state)
  end)

  it("prints its URLs and credentials, serves, and stops on SIGTERM", function()
    local pid, base, text = serve("")
    assert.truthy(base)
    assert.truthy(text:find("MxToken", 1, true))
    assert.truthy(text:find("sandbox-apikey-0000", 1, true))
    local st = S.request{ method = "GET", url = base .. "/deploy/api/1/apps",
      headers = { ["Mendix-Username"] = "sandbox@example.com", ["Mendix-ApiKey"] = "sandbox-apikey-0000" } }
    assert.are.equal(200, st)
    stop(pid)
  end)
end)

describe("sandbox connections", function()
  local P = require("process")
  local core = require("mxdeploy.core")

  it("4,096 idle connections do not lock out a real client (the oldest idle ones are closed)", function()
    local sb = S.start{ time_scale = 0.001 }
    finally(function() sb:stop() end)
    local port = sb.url:match(":(%d+)$")
    -- bash holds 4,096 connections open that never send a byte
    local pid, out = P.spawn(("bash -c %s"):format(P.quote(("ulimit -n 8192; for i in $(seq 4096); do "
      .. "exec {fd}<>/dev/tcp/127.0.0.1/%s || break; done; echo opened $i; sleep 60"):format(port))))
    finally(function() P.kill(pid); os.remove(out) end)
    local opened = S.eventually(function() return P.slurp(out):match("opened (%d+)") end, 30)
    assert.are.equal("4096", opened, P.slurp(out))
    local st, apps = S.client(sb).v1("GET", "/apps", nil, { timeout = 5 })
    assert.are.same({ 200, "calc" }, { st, apps and apps[1] and apps[1].AppId })
  end)

  it("closes a connection idle for idle_timeout, but not one waiting for a slow answer", function()
    local sb = S.start{ time_scale = 0.001, idle_timeout = 1,
      faults = { { route = "GET /deploy/api/1/apps", latency = 2 } } }
    finally(function() sb:stop() end)
    local h = { ["Mendix-Username"] = sb.username, ["Mendix-ApiKey"] = sb.apikey }
    local slow = core.http{ url = sb.bases["deploy-v1"] .. "/apps", headers = h, timeout = 10 }
    assert.are.equal(200, slow.status) -- 2 s of latency on a connection with a 1 s idle timeout
    local again = core.http{ url = sb.bases["deploy-v1"] .. "/apps/calc", headers = h, timeout = 10 }
    assert.are.same({ 200, 0 }, { again.status, again.new_connections }) -- kept alive
    core.sleep(2.5)
    local later = core.http{ url = sb.bases["deploy-v1"] .. "/apps/calc", headers = h, timeout = 10 }
    assert.are.same({ 200, 1 }, { later.status, later.new_connections }) -- the idle one was closed
  end)
end)

describe("sandbox: delayed answers (suspended connections)", function()
  -- a delayed answer suspends its connection and the waker thread resumes it (sandbox/server.c);
  -- on stop every held answer is resumed at once, and a client that gave up during its delay
  -- leaves nothing behind
  it("stops at once with many delayed answers held, after clients gave up during theirs", function()
    local sb = S.start{ time_scale = 0.001, faults = { { route = "GET /deploy/api/1/apps", latency = 30 } } }
    local stopped = false
    finally(function() if not stopped then sb:stop() end end)
    local h = { ["Mendix-Username"] = sb.username, ["Mendix-ApiKey"] = sb.apikey }
    local url = sb.bases["deploy-v1"] .. "/apps"
    local function fetch(timeout)
      return mx.spawn(function()
        local resp, err = core.http{ url = url, headers = h, timeout = timeout }
        return resp and resp.status or err
      end)
    end
    local gone = {}
    for i = 1, 40 do gone[i] = fetch(0.2) end
    for _, t in ipairs(gone) do assert.is_not.equal(200, t:wait()) end -- gave up during the delay
    local held = {}
    for i = 1, 60 do held[i] = fetch(20) end
    S.eventually(function() return #sb:requests() >= 100 end, 10)
    local t0 = core.now()
    sb:stop()
    stopped = true
    local took = core.now() - t0
    for _, t in ipairs(held) do t:wait() end -- each ended (an answer or a closed connection)
    local ended = core.now() - t0
    assert.is_true(took < 2, "stop took " .. took)
    assert.is_true(ended < 5, "the held clients ended after " .. ended .. " s")
  end)
end)

describe("sandbox fault rules from a file", function()
  for _, case in ipairs({
    { "JSON", '[{"route": "GET /deploy/api/1/apps", "error_rate": 1, "status": 503, "times": 1}]' },
    { "Lua", 'return {faults = {{route = "GET /deploy/api/1/apps", error_rate = 1, status = 503, times = 1}}}' },
  }) do
    it("loads the rules of configure{faults=} from a " .. case[1] .. " file (faults_file)", function()
      local file = S.tmpfile(case[2])
      local sb = S.start{ time_scale = 0.001, faults_file = file }
      finally(function() sb:stop(); os.remove(file) end)
      local c = S.client(sb)
      assert.are.equal(503, (c.v1("GET", "/apps")))
      assert.are.equal(200, (c.v1("GET", "/apps")))
    end)
  end

  it("refuses a rule with an unknown field, naming it", function()
    local sb = S.start{ time_scale = 0.001 }
    finally(function() sb:stop() end)
    local ok, err = pcall(sb.configure, sb, { faults = { { route = "*", latncy = 1 } } })
    assert.is_false(ok)
    assert.matches("fault #1: unknown field 'latncy'", tostring(err))
    local file = S.tmpfile("[1, 2")
    finally(function() os.remove(file) end)
    ok, err = pcall(S.start, { faults_file = file })
    assert.is_false(ok)
    assert.matches("not valid JSON", tostring(err))
  end)
end)
