-- Signals through the command line: SIGTERM and SIGHUP end a run as Ctrl-C does (tasks cancelled,
-- <close> handlers run, a download's temporary file removed) and exit 143 / 129; past `ulimit -f`
-- a download fails cleanly instead of SIGXFSZ killing the process with its .part file left.
local BIN = os.getenv("MXDEPLOY_BIN")

local P = require("process")
local slurp, tmpfile, tmpdir = P.slurp, P.tmpfile, P.tmpdir

local function files_in(dir)
  local p = io.popen("ls -A " .. dir)
  local names = p:read("a")
  p:close()
  return names
end

-- Runs `prefix mxdeploy script` in the background; once it printed "ready", sends `sig`. Returns
-- the exit code and stderr. Bounded: a script that never gets ready (30 s), or still runs
-- P.AFTER_SIGNAL seconds after the signal, fails the test with a message.
local function signal_when_ready(script, sig, prefix)
  local P = require("process")
  local core = require("mxdeploy.core")
  local ready = os.tmpname()
  local child = P.start{ argv = { "sh", "-c", ("%s exec %q %q > %q"):format(prefix or "", BIN, script, ready) } }
  local deadline = core.now() + 30
  repeat
    if slurp(ready):find("ready", 1, true) or child:done() then break end
    core.sleep(0.1)
  until core.now() > deadline
  child:signal(sig)
  local code, _, e = child:wait(P.AFTER_SIGNAL)
  os.remove(ready)
  assert(code, e)
  return code, e
end

-- A script that starts a download into dir/f.bin from a sandbox that answers after 60 s, with a
-- <close> handler that leaves a mark, and says "ready" once the download waits.
local function download_script(dir, marker)
  return tmpfile(([[
    local core = require("mxdeploy.core")
    local sb = require("mxdeploy.sandboxctl").start{faults = {{route = "*", latency = 60}}}
    local guard <close> = setmetatable({}, {__close = function()
      local f = io.open(%q, "w"); f:write("closed"); f:close()
    end})
    local t = mx.spawn(function() return core.http{url = sb.url .. "/deploy/api/1/apps", output = %q} end)
    local function started() local p = io.popen("ls -A %s"); local s = p:read("a"); p:close(); return s ~= "" end
    while not started() do mx.sleep(0.05) end -- the f.bin.partXXXXXX exists
    io.stdout:write("ready\n"); io.stdout:flush()
    t:wait()
  ]]):format(marker, dir .. "/f.bin", dir))
end

describe("signals", function()
  for _, case in ipairs({ { sig = "TERM", code = 143, says = "SIGTERM" }, { sig = "HUP", code = 129, says = "SIGHUP" } }) do
    it(("SIG%s cancels a download, runs <close> handlers, removes the temporary file, exits %d")
      :format(case.sig, case.code), function()
      local dir, marker = tmpdir(), os.tmpname()
      os.remove(marker)
      local script = download_script(dir, marker)
      local t0 = os.time()
      local code, err = signal_when_ready(script, case.sig)
      local left = files_in(dir)
      local closed = slurp(marker)
      os.remove(marker); os.remove(script); os.execute("rm -rf " .. dir)
      assert.are.equal(case.code, code)
      assert.are.equal("closed", closed)
      assert.are.equal("", left) -- no f.bin.partXXXXXX
      assert.matches("mxdeploy: interrupted", err)
      assert.is_true(os.time() - t0 < 30)
    end)
  end

  it("ends a busy Lua loop on SIGTERM too", function()
    local script = tmpfile([[
      local guard <close> = setmetatable({}, {__close = function() io.stderr:write("cleaned up\n") end})
      io.stdout:write("ready\n"); io.stdout:flush()
      while true do end
    ]])
    local code, err = signal_when_ready(script, "TERM")
    os.remove(script)
    assert.are.equal(143, code)
    assert.matches("cleaned up", err)
  end)

  -- sandboxctl.start runs the sandbox's server threads inside mxdeploy. A signal the kernel gave
  -- one of them ran the handler there: it armed a hook on the main thread's Lua state from another
  -- thread and did not wake the main thread's poll, and a Ctrl-C as the first request started was
  -- sometimes lost (a second one exited). Every thread but the main one blocks the three signals.
  local function first_request_script()
    return tmpfile([[
      local core = require("mxdeploy.core")
      local sb = require("mxdeploy.sandboxctl").start{faults = {{route = "GET /deploy/api/1/apps", latency = 60}}}
      io.stdout:write("ready\n"); io.stdout:flush()
      core.http{url = sb.url .. "/deploy/api/1/apps"}
    ]])
  end

  local function start_until_ready(script)
    local child = P.start{ argv = { BIN, script } }
    local core = require("mxdeploy.core")
    local deadline = core.now() + 30
    while not child:stdout():find("ready", 1, true) and not child:done() and core.now() < deadline do
      core.sleep(0.001)
    end
    return child
  end

  it("only the main thread takes SIGINT, SIGTERM and SIGHUP (an in-process sandbox's threads block them)", function()
    local script = first_request_script()
    local child = start_until_ready(script)
    local core = require("mxdeploy.core")
    core.sleep(0.2) -- the request waits: a connection thread exists
    local threads, open = {}, {}
    local p = io.popen("ls /proc/" .. child.pid .. "/task")
    for tid in p:read("a"):gmatch("%d+") do threads[#threads + 1] = tonumber(tid) end
    p:close()
    for _, tid in ipairs(threads) do
      local blk = slurp(("/proc/%d/task/%d/status"):format(child.pid, tid)):match("SigBlk:%s*(%x+)")
      local mask = tonumber(blk:sub(-4), 16) -- HUP bit 0, INT bit 1, TERM bit 14
      if tid ~= child.pid and mask & 0x4003 ~= 0x4003 then open[#open + 1] = ("%d (SigBlk %s)"):format(tid, blk) end
    end
    child:signal("INT")
    local code, _, err = child:wait(P.AFTER_SIGNAL)
    os.remove(script)
    assert.is_true(#threads > 1, "expected the sandbox's threads")
    assert.are.same({}, open)
    assert.are.equal(130, code, err)
  end)

  it("a SIGINT right after a script starts its first request (libcurl loading) always ends it with 130", function()
    local script = first_request_script()
    local core = require("mxdeploy.core")
    local t0 = core.now()
    for _ = 1, 3 do
      for _, delay in ipairs({ 0, 0.002, 0.005, 0.01, 0.02, 0.05 }) do
        local child = start_until_ready(script)
        core.sleep(delay)
        child:signal("INT")
        local sent = core.now()
        local code, _, err = child:wait(P.AFTER_SIGNAL)
        assert.are.equal(130, code, ("SIGINT %g s after ready: %s"):format(delay, err))
        assert.is_true(core.now() - sent < 3, ("SIGINT %g s after ready took %g s"):format(delay, core.now() - sent))
      end
    end
    os.remove(script)
    assert.is_true(core.now() - t0 < 60)
  end)

  it("a download past ulimit -f fails with one line and leaves no temporary file (SIGXFSZ ignored)", function()
    local dir = tmpdir()
    local script = tmpfile(([[
      local core = require("mxdeploy.core")
      local sb = require("mxdeploy.sandboxctl").start{faults = {{route = "GET /deploy/api/1/apps", body = string.rep("x", 1000000)}}}
      local creds = core.credentials{username = sb.username, apikey = sb.apikey}
      local resp, err = core.http{url = sb.url .. "/deploy/api/1/apps", output = %q, auth = creds, auth_scheme = "apikey"}
      sb:stop()
      assert(not resp, "the download should have failed")
      error(err)
    ]]):format(dir .. "/f.bin"))
    local out, errf = os.tmpname(), os.tmpname()
    local ok, how, code = os.execute(("sh -c 'ulimit -f 64; %q %q' > %q 2> %q < /dev/null"):format(BIN, script, out, errf))
    local err = slurp(errf)
    local left = files_in(dir)
    os.remove(out); os.remove(errf); os.remove(script); os.execute("rm -rf " .. dir)
    assert.are.equal("exit", how, "killed by a signal: " .. tostring(code))
    assert.are.equal(1, code)
    assert.matches("^mxdeploy: [^\n]*\n$", err)
    assert.are.equal("", left)
  end)
end)
