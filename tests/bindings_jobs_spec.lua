-- Jobs against the sandbox: one that succeeds, one that fails (with the server's reason), one
-- that outlives its deadline, a thousand waited on at once, wait_any, and the PC job kinds.

local mx = require("mxdeploy")
local sandboxctl = require("mxdeploy.sandboxctl")

local PROJECT = "c533ee0b-f7db-4e62-868b-1192d392ccec"
local TEST_ENV = "22064f8f-ee55-438c-9ab2-182f2f8e5f2f"
local PC_APP = "c533ee0b-f7db-4e62-868b-1192d392ccec"
local PC_NS = "db6ed4d3-8b6d-4c2b-ad2b-2a69d0f7afe0"
local PC_CLUSTER = "42dec69c-9bdb-4918-a979-716fbbe3b8a6"

describe("jobs", function()
  local sb, c
  before_each(function()
    sb = sandboxctl.start{ time_scale = 0.001 }
    c = mx.sandbox_client(sb, { poll_interval = 0.01 })
  end)
  after_each(function() sb:stop() end)

  it("a build job that succeeds: polls until Succeeded, reporting progress", function()
    local job = c.build.build_package("calc", { Branch = "main", Revision = "1", Version = "1.2.3" })
    assert.are.equal("pending", job.state)
    local seen = {}
    local result = job:wait{ timeout = 30, on_progress = function(j, status)
      assert.are.equal(job, j)
      seen[#seen + 1] = status
    end }
    assert.are.equal("Succeeded", result.Status)
    assert.are.equal("done", job.state)
    assert.are.equal("Succeeded", seen[#seen])
    assert.is_true(job.polls >= 1)
  end)

  it("a start job that fails raises a job error with the last status and the server's reason", function()
    sb:configure{ faults = { { route = "POST */start", job_fail = "MISSING_CONSTANT" } } }
    local job = c.v1.start_environment("calc", "Test", { AutoSyncDb = true })
    local ok, e = pcall(job.wait, job, { timeout = 30 })
    assert.is_false(ok)
    assert.are.equal("job", e.kind)
    assert.are.equal("failed", e.reason)
    assert.are.equal("MISSING_CONSTANT", e.code)
    assert.are.equal(job.id, e.job_id)
    assert.are.equal("failed", job.state)
    assert.matches("^job v1.start_environment .* failed", tostring(e))
    assert.matches("MISSING_CONSTANT", tostring(e))
  end)

  it("a v2 upload job that fails carries the server's message", function()
    local mda = os.tmpname()
    local f = assert(io.open(mda, "wb")); f:write(("x"):rep(2048)); f:close()
    sb:configure{ faults = { { route = "POST */packages/upload", job_fail = true } } }
    local job = c.v2.upload_package("calc", mda)
    os.remove(mda)
    local ok, e = pcall(job.wait, job, { timeout = 30 })
    assert.is_false(ok)
    assert.are.equal("job", e.kind)
    assert.are.equal("Failed", e.last_status)
    assert.are.equal("Failed to process the deployment package.", e.message) -- the job's ErrorMessage
    assert.matches("^job v2%.upload_package [%x-]+ failed %(last status Failed%): Failed to process", tostring(e))
  end)

  it("a Private Cloud job that fails on a duplicate ID carries the server's code and message", function()
    local job = c.pc.create_environment(PC_APP, { manifestVersion = "2.0.0", environment = {
      id = "pcenv01", properties = { name = "again" }, provider = { namespace = "sandbox-ns", clusterId = PC_CLUSTER } } })
    local ok, e = pcall(job.wait, job, { timeout = 30 })
    assert.is_false(ok)
    assert.are.same({ "job", "failed", "failed" }, { e.kind, e.reason, e.last_status })
    assert.are.equal(409, e.code)
    assert.are.equal("An environment with ID 'pcenv01' already exists", e.message)
    assert.matches("failed %(last status failed%) 409: An environment with ID 'pcenv01' already exists$", tostring(e))
  end)

  it("a job that outlives its deadline raises a job error (reason deadline) in time", function()
    sb:configure{ time_scale = 1 } -- the start now takes 90 s
    local job = c.v1.start_environment("calc", "Test")
    local t0 = mx.now()
    local ok, e = pcall(job.wait, job, { timeout = 0.3 })
    local took = mx.now() - t0
    assert.is_false(ok)
    assert.are.equal("job", e.kind)
    assert.are.equal("deadline", e.reason)
    assert.are.equal("Starting", e.last_status)
    assert.is_true(took >= 0.3 and took < 2, "took " .. took)
    assert.matches("did not finish within 0.3s", tostring(e))
    assert.are.equal("pending", job.state)
  end)

  it("a thousand jobs are waited on at once", function()
    local jobs = {}
    for i = 1, 1000 do
      jobs[i] = c.pcbuild.build_package(PC_APP, { branch = "main", revision = "r" .. i })
    end
    local t0 = mx.now()
    local results = mx.wait_all(jobs, { timeout = 120, interval = 0.05 })
    assert.are.equal(1000, #results)
    for i = 1, 1000 do
      assert.are.equal("finished", results[i].status)
      assert.are.equal("done", jobs[i].state)
    end
    -- concurrently: far less than 1000 sequential waits of the 6 simulated seconds (6 ms each)
    assert.is_true(mx.now() - t0 < 60)
  end)

  it("wait_all takes tasks, jobs or both; the first failure is raised and the other waits stop", function()
    local t = mx.spawn(function(x) mx.sleep(0.01); return x * 2 end, 21)
    local job = c.build.build_package("calc", { Branch = "main", Revision = "3", Version = "1.2.5" })
    local results = mx.wait_all({ t, job }, { timeout = 30 })
    assert.are.equal(42, results[1])
    assert.are.equal("Succeeded", results[2].Status)
    assert.are.same({ 1, 2 }, mx.wait_all({ mx.spawn(function() return 1 end), mx.spawn(function() return 2 end) }))
    sb:configure{ time_scale = 1 } -- this start takes 90 s
    local slow = c.v1.start_environment("calc", "Test")
    local bad = mx.spawn(function() mx.sleep(0.05); error("task failed on purpose") end)
    local t0 = mx.now()
    local ok, e = pcall(mx.wait_all, { slow, bad }, { interval = 0.02, timeout = 5 }) -- bounded: a wait in list order fails in 5 s
    assert.is_false(ok)
    assert.matches("task failed on purpose", tostring(e))
    assert.is_true(mx.now() - t0 < 3, "wait_all kept waiting for the slow job") -- the failure came at 0.05 s
    local function polls()
      local n = 0
      for _, r in ipairs(sb:requests()) do
        if r.path:find("/start/" .. slow.id, 1, true) then n = n + 1 end
      end
      return n
    end
    mx.sleep(0.05) -- a poll cancelled in flight may still reach the log
    local before = polls()
    mx.sleep(0.5)  -- polls come at most 0.32 s apart while the job is waited on
    assert.are.equal(before, polls(), "the slow job is still being polled")
    local okl, el = pcall(mx.wait_all, "nope")
    assert.is_false(okl)
    assert.matches("^bad argument #1 to 'wait_all' %(list of tasks or jobs expected, got string%)$", tostring(el))
  end)

  it("job:wait never sleeps past its timeout, however long the poll interval", function()
    sb:configure{ time_scale = 1 } -- the start takes 90 s
    local job = c.v1.start_environment("calc", "Test")
    local t0 = mx.now()
    local ok, e = pcall(job.wait, job, { timeout = 0.3, interval = 5 })
    local took = mx.now() - t0
    assert.is_false(ok)
    assert.are.equal("deadline", e.reason)
    assert.is_true(took >= 0.3 and took < 2, "took " .. took)
  end)

  it("job:wait backs off between polls", function()
    sb:configure{ time_scale = 1 } -- the start takes 90 s: it stays Starting
    local job = c.v1.start_environment("calc", "Test")
    sb:reset_log()
    -- the pauses grow from 0.02 s by 1.5x: three polls in the first 0.4 s (jumping to the
    -- longest pause at once, 0.32 s, would make two)
    local early = mx.spawn(function() mx.sleep(0.4) return job.polls end)
    local ok, e = pcall(job.wait, job, { interval = 0.02, timeout = 1.5 })
    assert.is_true(early:wait() >= 3, early:wait() .. " polls in the first 0.4 s")
    assert.is_false(ok)
    assert.are.equal("deadline", e.reason)
    -- without backoff 1.5 s of 0.02 s pauses would be ~75 polls; growing by 1.5x it is about 10
    local polls = 0
    for _, r in ipairs(sb:requests()) do
      if r.path:find("/start/" .. job.id, 1, true) then polls = polls + 1 end
    end
    assert.are.equal(job.polls, polls)
    assert.is_true(polls >= 3 and polls <= 15, polls .. " polls in 1.5 s")
  end)

  it("wait_any returns the first job or task to finish", function()
    sb:configure{ durations = { backup_running = 30000 } } -- snapshots run 30 s at this scale
    local slow = c.backups.create_snapshot(PROJECT, TEST_ENV, { comment = "slow" })
    local fast = c.build.build_package("calc", { Branch = "main", Revision = "2", Version = "1.2.4" })
    local idx, result = mx.wait_any({ slow, fast }, 30)
    assert.are.equal(2, idx)
    assert.are.equal("Succeeded", result.Status)
    assert.are.equal("pending", slow.state)
    assert.is_nil(mx.wait_any({ slow }, 0.1))
  end)

  it("Private Cloud mutations are jobs polled at /jobs/{id}", function()
    local job = c.pc.update_namespace(PC_CLUSTER, PC_NS, c.pc.get_namespace(PC_CLUSTER, PC_NS))
    assert.are.equal("finished", job:wait{ timeout = 30 }.status)
    sb:configure{ faults = { { route = "POST */environments", job_fail = "duplicate environment id" } } }
    local failing = c.pc.create_environment(PC_APP, { manifestVersion = "2.0.0", environment = {
      id = "pcenv02", properties = { name = "second" }, provider = { namespace = "sandbox-ns", clusterId = PC_CLUSTER } } })
    local ok, e = pcall(failing.wait, failing, { timeout = 30 })
    assert.is_false(ok)
    assert.are.equal("job", e.kind)
    assert.are.equal("failed", e.last_status)
    assert.is_string(e.message)
  end)

  it("cancel stops local waiting; the API cannot cancel jobs", function()
    sb:configure{ time_scale = 1 }
    local job = c.v1.start_environment("calc", "Test")
    local waiter = mx.spawn(function() return job:wait{ interval = 0.05, timeout = 10 } end) -- bounded
    mx.sleep(0.1)
    local cancelled, why = job:cancel()
    assert.is_false(cancelled)
    assert.matches("cannot cancel", why)
    local ok, e = pcall(waiter.wait, waiter)
    assert.is_false(ok)
    assert.are.equal("cancelled", e.kind)
  end)
end)
