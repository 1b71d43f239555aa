-- The workflow scripts in scripts/ run end to end with `mxdeploy --sandbox` (a fast simulated
-- clock) and exit 0; a failing step exits 1 with one line on stderr. Every run is bounded
-- (tests/support/process.lua): a script that hangs fails its test in seconds.

local P = require("process")
local source, bin = P.SOURCE, P.BIN

-- Runs a script with the sandbox; returns its exit code and its output. Bounded (P.TIMEOUT): a
-- script that hangs fails its test in seconds.
local function run(script, args, env)
  local code, text = P.run(("cd %q && MXDEPLOY_SANDBOX_TIME_SCALE=0.001 %s %q --sandbox --yes scripts/%s %s < /dev/null"):format(
    source, env or "", bin, script, args or ""), { merge = true })
  return code, text
end

describe("scripts", function()
  it("deploy.lua uploads, transports, restarts and waits", function()
    local code, out = run("deploy.lua")
    assert.are.equal(0, code, out)
    assert.matches("upload%s+job [%x-]+: Completed", out)
    assert.matches("transport package [%x-]+ %-> calc/Test", out)
    assert.matches("start%s+calc/Test Started", out)
    assert.matches("done%s+calc/Test is Running", out)
  end)

  it("deploy.lua leaves no temporary file behind when it makes its demo package", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute(("mkdir %q"):format(dir)))
    -- os.tmpname as Lua's: creates the file it names (here inside `dir`)
    local wrap = ("local n = 0; os.tmpname = function() n = n + 1; local p = %q .. '/t' .. n; "
      .. "io.open(p, 'w'):close(); return p end"):format(dir)
    local code, text = P.run(("cd %q && MXDEPLOY_SANDBOX_TIME_SCALE=0.001 %q --sandbox -e %q scripts/deploy.lua")
      :format(source, bin, wrap), { merge = true })
    assert.are.equal(0, code, text)
    local _, left = P.run(("ls -A %q"):format(dir))
    os.execute(("rm -rf %q"):format(dir))
    assert.are.equal("", left)
  end)

  it("deploy.lua logs the package size as its progress line does (one formatter, the file's bytes)", function()
    local code, out = run("deploy.lua")
    assert.are.equal(0, code, out)
    local logged = out:match("upload%s+demo[^\n]* %(([%d.]+ [KMG]?B)%) to app calc")
    local progress = out:match("upload demo[^\n]*: 100%% of ([%d.]+ [KMG]?B)")
    assert.is_not_nil(logged, out)
    assert.is_not_nil(progress, out)
    assert.are.equal(logged, progress)
  end)

  it("deploy.lua with a missing package file fails with one line naming it", function()
    for _, args in ipairs({ "calc Test /nonexistent/x.mda", "--dry-run calc Test /nonexistent/x.mda" }) do
      local code, out = run("deploy.lua", args)
      assert.are.equal(1, code, out)
      local last = out:gsub("^%[sandbox%][^\n]*\n", "")
      assert.are.equal("deploy failed: cannot open /nonexistent/x.mda: No such file or directory\n", last)
    end
  end)

  it("deploy.lua stops a running environment first", function()
    local code, out = run("deploy.lua", "calc Acceptance")
    assert.are.equal(0, code, out)
    assert.matches("stop%s+calc/Acceptance stopped", out)
    assert.matches("done%s+calc/Acceptance is Running", out)
  end)

  it("deploy.lua fails with one line when the app does not exist", function()
    local code, out = run("deploy.lua", "nosuchapp Test")
    assert.are.equal(1, code, out)
    assert.matches("deploy failed: HTTP 404 APP_NOT_FOUND", out)
  end)

  for _, case in ipairs({ { "deploy.lua", "--dry-run calc Acceptance" }, { "promote.lua", "calc --dry-run" } }) do
    it(case[1] .. " --dry-run checks, prints the plan and sends no mutating request", function()
      local log = os.tmpname()
      local code, out = run(case[1], case[2], "MXDEPLOY_SANDBOX_LOG=" .. log)
      assert.are.equal(0, code, out)
      assert.matches("plan%s+", out)
      assert.matches("plan%s+POST /deploy/api/1/apps/calc/environments/%a+/stop", out)
      assert.matches("dry%-run%s+nothing was changed", out)
      local f = assert(io.open(log))
      local methods = {}
      for line in f:lines() do
        local r = require("mxdeploy.json").decode(line)
        methods[#methods + 1] = r.method .. " " .. r.path
        assert.are.equal("GET", r.method, "a dry run sent " .. r.method .. " " .. r.path)
      end
      f:close()
      os.remove(log)
      assert.is_true(#methods >= 2, "the dry run checked nothing")
    end)
  end

  it("status.lua lists every environment of every app", function()
    local code, out = run("status.lua")
    assert.are.equal(0, code, out)
    assert.matches("calc%s+Production%s+Running", out)
    assert.matches("tictactoc%s+Test%s+Empty", out)
    assert.matches("3 apps in", out)
  end)

  it("status.lua reports a null or non-array answer instead of crashing or listing nothing as success", function()
    local function status_with(fault)
      local setup = ("sb = require('mxdeploy.sandboxctl').start{time_scale = 0.001}; mx.use_sandbox(sb); "
        .. "sb:configure{faults = {%s}}"):format(fault)
      local code, text = P.run(("cd %q && %q -e %q scripts/status.lua"):format(source, bin, setup), { merge = true })
      return code, text
    end
    local code, out = status_with([[{route = "GET /deploy/api/1/apps/calc/environments", body = "null"}]])
    assert.are.equal(3, code, out)
    assert.matches("status: calc: unexpected answer", out)
    assert.matches("freebie%s+Sandbox%s+Running", out)
    assert.is_nil(out:find("traceback", 1, true), out)
    code, out = status_with([[{route = "GET /deploy/api/1/apps", body = '{"apps":[]}'}]])
    assert.are.equal(1, code, out)
    assert.matches("status failed: unexpected answer to GET /apps %(expected a JSON array", out)
  end)

  it("promote.lua backs up Production, then promotes Acceptance's package", function()
    local code, out = run("promote.lua", "calc")
    assert.are.equal(0, code, out)
    assert.matches("backup%s+snapshot completed", out)
    assert.matches("done%s+calc/Production is Running", out)
  end)

  it("backup.lua snapshots, archives and downloads", function()
    local file = os.tmpname()
    local code, out = run("backup.lua", "calc Production " .. file .. " --database-only")
    assert.are.equal(0, code, out)
    assert.matches("saved%s+", out)
    local f = assert(io.open(file, "rb"))
    assert.is_true(#f:read("a") > 0)
    f:close()
    os.remove(file)
  end)

  for _, case in ipairs({ { "deploy.lua", "upload " }, { "promote.lua", "backup " }, { "backup.lua calc Production", "snapshot " } }) do
    it(case[1] .. " interrupted by Ctrl-C exits 130 (interrupted), not 1 as a failed step", function()
      local script, args = case[1]:match("^(%S+)%s*(.*)$")
      local argv = { bin, "--sandbox", "--yes", "scripts/" .. script }
      for a in args:gmatch("%S+") do argv[#argv + 1] = a end
      -- real durations (a snapshot or an upload takes seconds), SIGINT once the step is under way
      local child = P.start{ argv = argv, dir = source, env = { MXDEPLOY_SANDBOX_TIME_SCALE = "1" } }
      local started = child:wait_for(case[2], P.SLOW and 60 or 20)
      if started then require("mxdeploy.core").sleep(0.3) end
      child:signal("INT")
      local code, out, err = child:wait(P.AFTER_SIGNAL) -- a broken Ctrl-C fails here, in seconds
      local text = out .. err
      assert.is_true(started, "the script never showed '" .. case[2] .. "':\n" .. text)
      assert.are.equal(130, code, text)
      assert.matches("mxdeploy: interrupted", text)
      assert.is_nil(text:find("failed: interrupted", 1, true), text)
    end)
  end

  it("gen-reference.lua regenerates docs/REFERENCE.md byte for byte (into a temporary file)", function()
    local tmp = os.tmpname()
    local code, _, err = P.run(("cd %q && %q scripts/gen-reference.lua --output %q"):format(source, bin, tmp))
    assert.are.equal(0, code, err)
    local f = assert(io.open(tmp, "rb"))
    local generated = f:read("a")
    f:close()
    os.remove(tmp)
    f = assert(io.open(source .. "/docs/REFERENCE.md", "rb"))
    local committed = f:read("a")
    f:close()
    assert.is_true(#generated > 10000, "generated only " .. #generated .. " bytes")
    assert.is_true(generated == committed, "docs/REFERENCE.md is out of date: run mxdeploy scripts/gen-reference.lua")
  end)

  it("gen-reference.lua --check agrees with the committed reference", function()
    local code, _, err = P.run(("cd %q && %q scripts/gen-reference.lua --check"):format(source, bin))
    assert.are.equal(0, code, err)
  end)
end)
