-- Thousands of tasks at once (issue 9's fleet rows): what each waiting task costs, and waiting on
-- all of them. Real tasks and waits; the HTTP cases talk to the sandbox on 127.0.0.1.
local core = require("mxdeploy.core")
local errors = require("mxdeploy.errors")

-- Lua heap (bytes) after full collections
local function heap()
  collectgarbage()
  collectgarbage()
  return collectgarbage("count") * 1024
end

local function pending_of(kind)
  local n, whats = 0, {}
  for _, p in ipairs(core.pending()) do
    if p.kind == kind then
      n = n + 1
      whats[#whats + 1] = p.what
    end
  end
  return n, whats
end

local function sleepers(n, seconds)
  local list = {}
  for i = 1, n do list[i] = core.spawn(function() core.sleep(seconds); return i end) end
  return list
end

local function cancel_all(list)
  for _, t in ipairs(list) do
    if t:status() == "ready" or t:status() == "waiting" then t:cancel() end
  end
end

describe("mx.wait_all over many tasks", function()
  it("is one wait in the scheduler, not a watcher task per entry", function()
    local list = sleepers(500, 0.2)
    local waiter = core.spawn(mx.wait_all, list)
    core.sleep(0.02)
    local joins, whats = pending_of("join")
    assert.are.equal(1, joins, table.concat(whats, "; ", 1, math.min(#whats, 3)))
    assert.are.same({ "all of 500 tasks" }, whats)
    assert.are.equal(500, (pending_of("sleep")))
    local results = waiter:wait()
    assert.are.equal(500, #results)
    for i = 1, 500 do assert.are.equal(i, results[i]) end
  end)

  it("adds next to nothing to the Lua heap while it waits (a watcher task was ~1.5 KB each)", function()
    local n = 2000
    local list = sleepers(n, 30)
    core.sleep(0) -- every task reaches its sleep
    local before = heap()
    local waiter = core.spawn(mx.wait_all, list)
    core.sleep(0)
    local during = heap()
    assert.is_true((during - before) / n < 100, ("%.0f bytes per task"):format((during - before) / n))
    waiter:cancel()
    cancel_all(list)
  end)

  it("raises the first failure when it happens, whatever its place, and stops waiting", function()
    local slow = core.spawn(core.sleep, 5) -- bounded: a wait_all that missed the failure ends in 5 s
    local bad = core.spawn(function() core.sleep(0.02); error("failed on purpose", 0) end)
    local t0 = core.now()
    local ok, e = pcall(mx.wait_all, { slow, core.spawn(function() return 1 end), bad })
    assert.is_false(ok)
    assert.matches("^failed on purpose\nstack traceback", e) -- a string error gets the task's traceback
    assert.is_true(core.now() - t0 < 3, "waited for the slow task")
    assert.are.equal("waiting", slow:status())
    assert.are.equal(0, (pending_of("join")), "the wait is still registered")
    slow:cancel()
  end)

  it("takes a cancelled task as a failure", function()
    local a = core.spawn(core.sleep, 5)
    local b = core.spawn(core.sleep, 5)
    core.spawn(function() core.sleep(0.02); b:cancel() end)
    local ok, e = pcall(mx.wait_all, { a, b })
    assert.is_false(ok)
    assert.is_true(errors.is(e, "cancelled"), tostring(e))
    a:cancel()
  end)

  it("lets the tasks finish normally after the waiting task is cancelled", function()
    local list = sleepers(50, 0.05)
    local waiter = core.spawn(mx.wait_all, list)
    core.sleep(0.01)
    assert.is_true(waiter:cancel())
    assert.is_false(pcall(waiter.wait, waiter))
    for i, t in ipairs(list) do assert.are.equal(i, t:wait()) end -- (under ASan: nothing freed is touched)
    assert.are.equal(0, (pending_of("join")))
  end)

  it("returns at once for finished tasks, and takes the same task twice", function()
    local t = core.spawn(function() return "x" end)
    assert.are.same({ "x" }, mx.wait_all({ t }))
    local u = core.spawn(function() core.sleep(0.01); return "y" end)
    assert.are.same({ "y", "x", "y" }, mx.wait_all({ u, t, u }))
    assert.are.same({}, mx.wait_all({}))
  end)
end)

describe("cancelling many ready tasks", function()
  it("takes each out of the ready queue at once, not by walking the queue", function()
    local n = 40000 -- walking the queue for each was quadratic: ~2.6 s here, now ~50 ms
    local list = {}
    for i = 1, n do list[i] = core.spawn(function() return i end) end
    local t0 = os.clock()
    for i = n, 1, -1 do assert.is_true(list[i]:cancel()) end -- the tail first: the longest walks
    local cpu = os.clock() - t0
    -- far below the quadratic walk (3.9 s natively, several times that under the sanitizers), with
    -- room for a loaded machine: ASan/UBSan make every cancel several times slower (1.7 s seen)
    local bound = os.getenv("MXDEPLOY_SANITIZED") == "ON" and 6 or 1.5
    assert.is_true(cpu < bound, ("%.2f s of CPU to cancel %d ready tasks"):format(cpu, n))
    for i = 1, n, 997 do assert.are.equal("cancelled", list[i]:status()) end
    -- the queue is whole: tasks made ready afterwards run, in order
    local order = {}
    local a = core.spawn(function() order[#order + 1] = "a" end)
    local b = core.spawn(function() order[#order + 1] = "b" end)
    core.wait_all({ a, b })
    assert.are.same({ "a", "b" }, order)
    list = nil
    collectgarbage()
  end)

  it("keeps the queue whole when a task in its middle is cancelled", function()
    local order, list = {}, {}
    for i = 1, 5 do list[i] = core.spawn(function() order[#order + 1] = i end) end
    list[3]:cancel()
    list[1]:cancel()
    list[5]:cancel()
    list[2]:wait()
    list[4]:wait()
    assert.are.same({ 2, 4 }, order)
  end)
end)

describe("a finished task", function()
  it("gives back the stack its coroutine grew at once, not when the collector finds it", function()
    local items = {}
    for i = 1, 5000 do items[i] = i end
    collectgarbage()
    collectgarbage("stop") -- only what finishing a task frees counts
    local ok, err = pcall(function()
      local before = collectgarbage("count") * 1024
      local list = {}
      -- each task's stack grows to 5,000 slots (80 KB) for a moment
      for i = 1, 100 do list[i] = core.spawn(function() return select("#", table.unpack(items)) end) end
      for i = 1, 100 do assert.are.equal(5000, list[i]:wait()) end
      local per_task = (collectgarbage("count") * 1024 - before) / 100
      -- what stays until the collector runs is the task, its thread and its outcome
      assert.is_true(per_task < 16384, ("%.0f bytes per finished task"):format(per_task))
    end)
    collectgarbage("restart")
    assert(ok, err)
  end)
end)

describe("core.wait_all", function()
  it("returns nil when all finished, else the index of the first to fail", function()
    assert.is_nil(core.wait_all({ core.spawn(function() end), core.spawn(core.sleep, 0.01) }))
    local ok_task = core.spawn(core.sleep, 0.05)
    local failing = core.spawn(function() core.sleep(0.01); error("no") end)
    assert.are.equal(2, core.wait_all({ ok_task, failing }))
    assert.are.equal(2, core.wait_all({ ok_task, failing }), "an already failed task is not waited for")
    assert.is_false(pcall(failing.wait, failing))
  end)

  it("refuses what is not a task, and a task waiting for itself", function()
    local ok, e = pcall(core.wait_all, { core.spawn(function() end), 3 })
    assert.is_false(ok)
    assert.matches("item 2 is not a task", tostring(e))
    local self_wait = core.spawn(function()
      local me = core.current()
      return pcall(core.wait_all, { me })
    end)
    local ok2, e2 = self_wait:wait()
    assert.is_false(ok2)
    assert.matches("cannot wait for itself", tostring(e2))
  end)

  it("counts a failure it raised as seen: nothing is reported at exit", function()
    local P = require("process")
    local script = "local ok, e = pcall(mx.wait_all, { mx.spawn(function() mx.sleep(0.01); error('boom', 0) end) }); "
      .. "print(ok, e)"
    local code, out, err = P.run(("%q -e %q"):format(os.getenv("MXDEPLOY_BIN"), script), { timeout = 20 })
    assert.matches("^false\tboom\n", out, err)
    assert.are.equal(0, code, err)
    assert.are.equal("", err)
  end)
end)
