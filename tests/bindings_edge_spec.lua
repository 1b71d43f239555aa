-- Edge cases found in review: unexpected answers from the server, transient failures while a job
-- is polled, and arguments that must be refused with one-line argument errors.

local mx = require("mxdeploy")
local errors = require("mxdeploy.errors")
local sandboxctl = require("mxdeploy.sandboxctl")

describe("edge cases", function()
  local sb, c
  setup(function()
    sb = sandboxctl.start{ time_scale = 0.001 }
  end)
  teardown(function() sb:stop() end)
  before_each(function()
    sb:configure{ faults = {}, time_scale = 0.001 }
    c = mx.sandbox_client(sb, { poll_interval = 0.01, retry = { base_delay = 0.01, max_delay = 0.02 } })
  end)

  it("an error whose server message spans lines is still one line", function()
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps/nosuch",
      body = '{"errorCode":"APP_NOT_FOUND","errorMessage":"App not found\\r\\n  see the logs\\n"}' } } }
    local ok, e = pcall(c.v1.get_app, "nosuch")
    assert.is_false(ok)
    assert.is_true(errors.is(e, "http"))
    assert.are.equal("HTTP 404 APP_NOT_FOUND: App not found see the logs (GET /deploy/api/1/apps/nosuch)", tostring(e))
  end)
end)

describe("jobs polled through transient failures", function()
  local sb, c
  setup(function() sb = sandboxctl.start{ time_scale = 0.001 } end)
  teardown(function() sb:stop() end)
  before_each(function()
    sb:configure{ faults = {}, time_scale = 0.001 }
    c = mx.sandbox_client(sb, { poll_interval = 0.01, retry = { base_delay = 0.01, max_delay = 0.02 } })
  end)

  it("a v1 start job whose status poll answers 503 is not failed: the error is raised and a later wait finishes", function()
    sb:configure{ faults = { { route = "GET */start/*", error_rate = 1 } } }
    local job = c.v1.start_environment("calc", "Test", { AutoSyncDb = true })
    local ok, e = pcall(job.wait, job, { timeout = 10 })
    assert.is_false(ok)
    assert.is_true(errors.is(e, "http"))
    assert.are.equal(503, e.status)
    assert.are.equal("pending", job.state)
    sb:configure{ faults = {} }
    assert.are.equal("Started", job:wait{ timeout = 10 }.Status)
  end)
end)

describe("job states the docs do not list", function()
  local sb, c
  setup(function() sb = sandboxctl.start{ time_scale = 0.001 } end)
  teardown(function() sb:stop() end)
  before_each(function()
    sb:configure{ faults = {}, time_scale = 0.001 }
    c = mx.sandbox_client(sb, { poll_interval = 0.01, retry = false })
  end)

  it("an unknown state fails the job at once instead of polling until the deadline (or forever)", function()
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps/calc/packages/*",
      body = '{"Status":"Cancelled","PackageId":"x"}' } } }
    local job = c.build.build_package("calc", { Branch = "main", Revision = "1", Version = "1.2.3" })
    local t0 = mx.now()
    local ok, e = pcall(job.wait, job, { timeout = 20 })
    assert.is_false(ok)
    assert.is_true(mx.now() - t0 < 5)
    assert.are.same({ "job", "failed", "Cancelled" }, { e.kind, e.reason, e.last_status })
    assert.are.equal("failed", job.state)
    assert.matches("unknown job state 'Cancelled'", tostring(e))
  end)

  it("a poll answer without a state is a response error and the job stays pending", function()
    sb:configure{ faults = { { route = "GET /deploy/api/v2/apps/calc/jobs/*", body = "null" } } }
    local mda = os.tmpname()
    local f = assert(io.open(mda, "wb")); f:write(("x"):rep(2048)); f:close()
    local job = c.v2.upload_package("calc", mda)
    os.remove(mda)
    local ok, e = pcall(job.wait, job, { timeout = 20 })
    assert.is_false(ok)
    assert.is_true(errors.is(e, "response"))
    assert.matches("no Status in the answer", tostring(e))
    assert.are.equal("pending", job.state)
    sb:configure{ faults = {} }
    assert.are.equal("Completed", job:wait{ timeout = 20 }.Status)
  end)

  it("every documented state is known", function()
    local ops = require("mxdeploy.operations")
    for _, op in ipairs(ops.list) do
      if op.job then assert.is_table(op.job.pending, op.full_name) end
    end
  end)
end)

describe("a failed job whose reason is not text", function()
  local sb, c
  setup(function() sb = sandboxctl.start{ time_scale = 0.001 } end)
  teardown(function() sb:stop() end)

  it("still gives a job error that prints as one line", function()
    c = mx.sandbox_client(sb, { poll_interval = 0.01, retry = false })
    sb:configure{ faults = { { route = "GET /privatecloud/api/v4/jobs/*",
      body = '{"status":"failed","details":{"step":"x"},"error":{"code":409,"message":["a","b"]}}' } } }
    local job = c.pc.create_environment("c533ee0b-f7db-4e62-868b-1192d392ccec", { manifestVersion = "2.0.0",
      environment = { id = "pcenv09", properties = { name = "x" },
        provider = { namespace = "sandbox-ns", clusterId = "42dec69c-9bdb-4918-a979-716fbbe3b8a6" } } })
    local ok, e = pcall(job.wait, job, { timeout = 10 })
    assert.is_false(ok)
    assert.are.equal("job", e.kind)
    local tok, text = pcall(tostring, e)
    assert.is_true(tok, text)
    assert.matches("^job pc%.create_environment [%x-]+ failed %(last status failed%) 409$", text)
  end)
end)

describe("path arguments given as numbers", function()
  it("refuses inf, nan and floats too big for an integer with an argument error", function()
    local c = mx.connect{ base_urls = { v1 = "http://127.0.0.1:9/api/1" } }
    for _, v in ipairs({ math.huge, -math.huge, 0 / 0, 1e300 }) do
      local ok, e = pcall(c.v1.get_app, v)
      assert.is_false(ok)
      assert.is_true(errors.is(e, "argument"), tostring(e))
      assert.matches("^bad argument #1 to 'v1.get_app' %(AppId: string expected, got number", tostring(e))
    end
  end)
end)

describe("uploads of something that is not a file", function()
  it("a directory is refused as unreadable, not as a package over 1 GB", function()
    local c = mx.connect{ base_urls = { v2 = "http://127.0.0.1:9/api/v2" } }
    local ok, e = pcall(c.v2.upload_package, "calc", "/tmp")
    assert.is_false(ok)
    assert.is_true(errors.is(e, "argument"), tostring(e))
    assert.matches("^bad argument #2 to 'v2.upload_package' %(file: cannot read '/tmp'", tostring(e))
    -- an empty file is still accepted by the check
    local empty = os.tmpname()
    local ok2, e2 = pcall(c.v2.upload_package, "calc", empty, { name = "x" })
    os.remove(empty)
    assert.is_false(ok2)
    assert.is_false(errors.is(e2, "argument"), tostring(e2))
  end)
end)

describe("paginated lists", function()
  local sb, c
  setup(function() sb = sandboxctl.start{ time_scale = 0.001 } end)
  teardown(function() sb:stop() end)

  it("a Backups page shorter than the limit asked for does not end the list before its total", function()
    c = mx.sandbox_client(sb, { retry = false })
    local P, E = "c533ee0b-f7db-4e62-868b-1192d392ccec", "867c9f56-84ec-438b-b1ae-9f9c50377cba" -- Production
    local all = c.backups.list_snapshots(P, E)
    local total = #all.snapshots
    assert.is_true(total >= 2)
    -- the server caps the first page at one item (and says so in `limit`)
    sb:configure{ faults = { { route = "GET /deploy/api/v2/apps/*/snapshots", times = 1,
      body = mx.json.encode({ snapshots = mx.array({ all.snapshots[1] }), total = total, offset = 0, limit = 1 }) } } }
    local ids = {}
    for s in c.backups.each_snapshot(P, E) do ids[#ids + 1] = s.snapshot_id end
    assert.are.equal(total, #ids)
    for i, s in ipairs(all.snapshots) do assert.are.equal(s.snapshot_id, ids[i]) end
  end)
end)

describe("paginated lists end at their total", function()
  local sb
  setup(function() sb = sandboxctl.start{ time_scale = 0.001 } end)
  teardown(function() sb:stop() end)

  it("a Backups list with a total asks for no page past it", function()
    local c = mx.sandbox_client(sb, { retry = false })
    local P, E = "c533ee0b-f7db-4e62-868b-1192d392ccec", "867c9f56-84ec-438b-b1ae-9f9c50377cba" -- Production
    local total = c.backups.list_snapshots(P, E).total
    assert.is_true(total >= 2)
    sb:reset_log()
    local n = 0
    for _ in c.backups.each_snapshot(P, E, { limit = 1 }) do n = n + 1 end
    assert.are.equal(total, n)
    local pages = 0
    for _, r in ipairs(sb:requests()) do
      if r.path:match("/snapshots$") then pages = pages + 1 end
    end
    assert.are.equal(total, pages, "one page of one snapshot each, and none after the total")
  end)
end)

describe("job:wait options", function()
  local sb, c
  setup(function() sb = sandboxctl.start{ time_scale = 0.001 } end)
  teardown(function() sb:stop() end)

  it("refuses an interval that would poll without pause, and options of the wrong type", function()
    c = mx.sandbox_client(sb, { retry = false })
    local job = c.build.build_package("calc", { Branch = "main", Revision = "1", Version = "1.2.3" })
    for _, opts in ipairs({ { interval = 0 }, { interval = -1 }, { max_interval = 0 }, { interval = "x" },
                            { timeout = "abc" }, { timeout = -1 }, { interval = 0 / 0 }, { on_progress = 1 } }) do
      local ok, e = pcall(job.wait, job, opts)
      assert.is_false(ok)
      assert.is_true(errors.is(e, "argument"), tostring(e))
      assert.matches("^bad argument #1 to 'job:wait'", tostring(e))
    end
    assert.are.equal(0, job.polls)
    assert.are.equal("Succeeded", job:wait{ timeout = 20, interval = 0.01 }.Status)
  end)
end)

describe("connect options", function()
  it("refuses a poll_interval or timeout that is not a positive number of seconds", function()
    for _, opts in ipairs({ { poll_interval = 0 }, { poll_interval = -1 }, { poll_interval = 0 / 0 }, { timeout = 0 } }) do
      local ok, e = pcall(mx.connect, opts)
      assert.is_false(ok)
      assert.is_true(errors.is(e, "argument"), tostring(e))
      assert.matches("^bad argument #1 to 'connect' %([%w_]+: positive number of seconds expected", tostring(e))
    end
    assert.is_table(mx.connect{ poll_interval = 0.01, timeout = 5 })
  end)
end)

describe("log downloads", function()
  local sb
  setup(function() sb = sandboxctl.start{ time_scale = 0.001 } end)
  teardown(function() sb:stop() end)

  it("an answer without DownloadUrl is a response error naming the request, not an HTTP 200 error", function()
    local c = mx.sandbox_client(sb, { retry = false })
    sb:configure{ faults = { { route = "GET /deploy/api/1/apps/calc/environments/Test/logs/*", body = "{}" } } }
    local ok, e = pcall(c.v1.download_app_logs, "calc", "Test", "2024-01-02")
    assert.is_false(ok)
    assert.is_true(errors.is(e, "response"), tostring(e))
    assert.are.equal("malformed response: no DownloadUrl in the answer (GET /deploy/api/1/apps/calc/environments/Test/logs/2024-01-02)", tostring(e))
  end)
end)

describe("error bodies with odd numbers", function()
  local sb
  setup(function() sb = sandboxctl.start{ time_scale = 0.001 } end)
  teardown(function() sb:stop() end)

  it("a code too big for an integer still gives the HTTP error", function()
    local c = mx.sandbox_client(sb, { retry = false })
    sb:configure{ faults = { { route = "GET /cloud/api/v4/apps/*",
      body = '{"error":{"code":1e300,"message":"odd"}}' } } }
    local ok, e = pcall(c.v4.get_app, "00000000-0000-4000-8000-000000000000")
    assert.is_false(ok)
    assert.is_true(errors.is(e, "http"), tostring(e))
    assert.are.equal(404, e.status)
    assert.matches("^HTTP 404 1e%+300: odd", tostring(e))
  end)
end)

describe("wait_all and wait_any lists", function()
  it("an item that is neither a task nor a job is an argument error, not a raw Lua error", function()
    local t = mx.spawn(function() return 1 end)
    for _, case in ipairs({ { mx.wait_all, { 1 } }, { mx.wait_all, { t, "x" } }, { mx.wait_any, { {} } } }) do
      local ok, e = pcall(case[1], case[2])
      assert.is_false(ok)
      assert.is_true(errors.is(e, "argument"), tostring(e))
      assert.matches("^bad argument #1 to 'wait_%a+' %(item %d is not a task or job, got %a+%)$", tostring(e))
    end
    assert.are.same({ 1 }, mx.wait_all({ t }))
  end)
end)

describe("printing a client", function()
  it("shows no user info or secret query value of a base URL", function()
    local c = mx.connect{ base_urls = { v1 = "https://u:s3cret@h.example/api/1?token=abc" } }
    local text = tostring(c)
    assert.is_nil(text:find("s3cret", 1, true), text)
    assert.is_nil(text:find("abc", 1, true), text)
    assert.matches("v1=https://%*%*%*@h.example/api/1%?token=%*%*%*", text)
    c = mx.connect{ base_urls = { v2 = "https://h.example/api/v2?client_secret=abc&sessionkey=zz&passphrase=qq#frag" } }
    text = tostring(c)
    assert.matches("v2=https://h.example/api/v2%?client_secret=%*%*%*&sessionkey=%*%*%*&passphrase=%*%*%*#%*%*%*", text)
    for _, secret in ipairs({ "abc", "zz", "qq", "frag" }) do
      assert.is_nil(text:find(secret, 1, true), secret .. " in " .. text)
    end
  end)

  it("argument errors quoting a URL redact it", function()
    local ok, e = pcall(mx.request, { url = "ftp://u:pw1@h/x?client_secret=abc&sessionkey=zz&passphrase=qq#frag" })
    assert.is_false(ok)
    assert.are.equal("argument", e.kind)
    assert.matches("'ftp://%*%*%*@h/x%?client_secret=%*%*%*&sessionkey=%*%*%*&passphrase=%*%*%*#%*%*%*'", e.message)
    for _, secret in ipairs({ "pw1", "abc", "zz", "qq", "frag" }) do
      assert.is_nil(tostring(e):find(secret, 1, true), secret .. " in " .. tostring(e))
    end
  end)
end)

describe("a server that ignores offset", function()
  local sb
  setup(function() sb = sandboxctl.start{ time_scale = 0.001 } end)
  teardown(function() sb:stop() end)

  it("makes the iterator raise a response error instead of serving the first page forever", function()
    local c = mx.sandbox_client(sb, { retry = false })
    sb:configure{ faults = { { route = "GET /cloud/api/v4/apps",
      body = '{"apps":[{"id":"a"},{"id":"b"}],"pagination":{"offset":0,"limit":2,"size":2}}' } } }
    local seen = 0
    local ok, e = pcall(function()
      for _ in c.v4.each_app{ limit = 2 } do
        seen = seen + 1
        if seen > 10 then error("looping") end
      end
    end)
    assert.is_false(ok)
    assert.is_true(errors.is(e, "response"), tostring(e))
    assert.are.equal("malformed page of v4.list_apps: asked for offset 2, got offset 0", tostring(e))
    assert.are.equal(2, seen)
    sb:configure{ faults = {} }
    local n = 0
    for _ in c.v4.each_app{ limit = 1 } do n = n + 1 end
    assert.are.equal(3, n)
  end)
end)

describe("package files and sizes", function()
  it("mx.format_size writes bytes one way for progress lines and logs", function()
    assert.are.equal("512 B", mx.format_size(512))
    assert.are.equal("9.4 KB", mx.format_size(9604))
    assert.are.equal("12.0 MB", mx.format_size(12 * 2 ^ 20))
    assert.are.equal("1.50 GB", mx.format_size(1.5 * 2 ^ 30))
    local lines = {}
    local bar = mx.progress("up", { tty = false, stream = { write = function(_, s) lines[#lines + 1] = s end, flush = function() end } })
    bar(9604, 9604)
    assert.are.equal("up: 100% of " .. mx.format_size(9604) .. "\n", lines[1])
  end)

  it("mx.package_size returns the size, or raises one line naming a missing file", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(("x"):rep(1234))
    f:close()
    assert.are.equal(1234, mx.package_size(path))
    os.remove(path)
    local ok, e = pcall(mx.package_size, "/nonexistent/x.mda")
    assert.is_false(ok)
    assert.is_true(mx.errors.is(e, "argument"))
    assert.are.equal("cannot open /nonexistent/x.mda: No such file or directory", tostring(e))
  end)
end)
