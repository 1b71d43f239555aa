-- The command-line contract of workflow scripts (issue "scripts that are safe to run and easy to
-- share"): one declaration per script gives --help, usage errors, the `mxdeploy run` listing;
-- dry-run, confirmation and --json come from the client and mxdeploy.steps. Every case runs the
-- real binary against a real sandbox and reads the sandbox's request log.
local json = require("mxdeploy.json")

local source = os.getenv("MXDEPLOY_SOURCE_DIR") or "."
local bin = os.getenv("MXDEPLOY_BIN") or "mxdeploy"

local P = require("process")
local q, slurp, tmpdir = P.quote, P.read, P.tmpdir

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end


-- Runs `mxdeploy ARGS` in `dir` (default the source tree) with stdin from /dev/null (not a
-- terminal). Returns exit code, stdout, stderr and the sandbox's request log (list of records).
local function run(args, opts)
  opts = opts or {}
  local log = os.tmpname()
  os.remove(log)
  local code, o, e = P.run(("cd %s && MXDEPLOY_SANDBOX_TIME_SCALE=0.001 MXDEPLOY_SANDBOX_LOG=%s %s %s %s")
    :format(q(opts.dir or source), q(log), opts.env or "", q(bin), args))
  local l = slurp(log) or ""
  os.remove(log)
  local requests = {}
  for line in l:gmatch("[^\n]+") do requests[#requests + 1] = json.decode(line) end
  return code, o, e, requests
end

local function mutating(requests)
  local sent = {}
  for _, r in ipairs(requests) do
    if r.method ~= "GET" then sent[#sent + 1] = r.method .. " " .. r.path end
  end
  return sent
end


local function listing(dir)
  local p = io.popen("ls -A " .. q(dir))
  local s = p:read("a")
  p:close()
  return s
end

-- One row per shipped script: arguments for a run that changes Production, and the file that a
-- real run would write (nil: none).
local SCRIPTS = {
  { name = "deploy", args = "calc Production %s/scripts/deploy.lua", production = true },
  { name = "promote", args = "calc Acceptance Production", production = true },
  { name = "backup", args = "calc Production %s", output = true, production = true },
  { name = "status", args = "" },
  { name = "rollback", args = "calc Production --to 4ee10492-6cfc-4582-b825-a9040c0988ad", production = true },
  { name = "releases", args = "calc Production", no_api = true },
  { name = "settings", args = "export calc Production", read_only = true },
  { name = "restart", args = "calc Production", production = true },
  { name = "gen-reference", args = "--stdout", no_api = true },
}

describe("script contract", function()
  for _, s in ipairs(SCRIPTS) do
    local function args_for(dir)
      return (s.args:format(s.output and (dir .. "/out.backup") or source))
    end

    it(s.name .. ": --help prints usage from the declaration, exits 0 and sends nothing", function()
      local code, out, err, requests = run("--sandbox run " .. s.name .. " --help")
      assert.are.equal(0, code, err)
      assert.matches("^Usage: mxdeploy run " .. s.name:gsub("%-", "%%-") .. "%s", out)
      assert.matches("Exit status: 0 success, 1 failure, 2 usage error", out)
      assert.matches("--dry-run", out, 1, true)
      assert.are.equal(0, #requests, "--help sent a request")
    end)

    it(s.name .. ": an unknown flag is a usage error: exit 2, nothing sent", function()
      local code, out, err, requests = run("--sandbox run " .. s.name .. " --force " .. s.args:gsub("%%s", "/tmp/x"))
      assert.are.equal(2, code, err)
      assert.are.equal("", out)
      assert.matches("unknown option '%-%-force'", err)
      assert.matches("\nUsage: mxdeploy run " .. s.name:gsub("%-", "%%-") .. "%s", err)
      assert.are.equal(0, #requests)
    end)

    if not s.no_api then
      for _, where in ipairs({ "before", "after" }) do
        it(s.name .. ": --dry-run " .. where .. " the script name sends only GETs and writes no file", function()
          local dir = tmpdir()
          local a = args_for(dir)
          local cmdline = where == "before" and ("--sandbox --dry-run run %s %s"):format(s.name, a)
            or ("--sandbox run %s %s --dry-run"):format(s.name, a)
          local code, out, err, requests = run(cmdline, { dir = dir })
          local left = listing(dir)
          os.execute("rm -rf " .. q(dir))
          assert.are.equal(0, code, err .. out)
          assert.is_true(#requests >= 1, "the dry run read nothing")
          assert.are.same({}, mutating(requests))
          assert.are.equal("", left, "a dry run wrote a file")
          if s.name ~= "status" and not s.read_only then
            assert.matches("plan%s+POST /", out)
            assert.matches("dry%-run%s+nothing was changed", out)
          end
        end)
      end

      it(s.name .. ": --json prints one JSON document on stdout, human text on stderr", function()
        local dir = tmpdir()
        local code, out, err = run("--sandbox --yes --json run " .. s.name .. " " .. args_for(dir), { dir = dir })
        os.execute("rm -rf " .. q(dir))
        assert.are.equal(0, code, err)
        local doc = json.decode(out)
        assert.are.equal(s.name, doc.script)
        assert.is_true(doc.ok)
        assert.are.equal(0, doc.exit_code)
        assert.are.equal("table", type(doc.result))
        assert.is_nil(out:find("%[%s*%d+%.%ds%]"), "log lines on stdout")
      end)
    end

    if s.production then
      it(s.name .. ": a Production change without --yes and without a terminal is refused: exit 2, nothing sent", function()
        local dir = tmpdir()
        local code, out, err, requests = run("--sandbox run " .. s.name .. " " .. args_for(dir), { dir = dir })
        local left = listing(dir)
        os.execute("rm -rf " .. q(dir))
        assert.are.equal(2, code, err .. out)
        assert.matches("Production", err)
        assert.matches("rerun with %-%-yes", err)
        assert.are.same({}, mutating(requests))
        assert.are.equal("", left)
      end)
    end
  end

  it("on a terminal a Production change asks once: yes goes on, no refuses (exit 2, nothing sent)", function()
    -- script(1) gives the run a pseudo-terminal; the answer arrives once the question is out
    local function on_terminal(answer)
      local out, log = os.tmpname(), os.tmpname()
      os.remove(log)
      local cmd = ("cd %s && (sleep 2; printf '%s\\n') | MXDEPLOY_SANDBOX_TIME_SCALE=0.001 MXDEPLOY_SANDBOX_LOG=%s "
        .. "script -qec %s /dev/null > %s 2>&1"):format(q(source), answer, q(log), q(q(bin) .. " --sandbox run promote calc --no-backup"), q(out))
      local ok, _, code = os.execute(cmd)
      local text, l = slurp(out) or "", slurp(log) or ""
      os.remove(out); os.remove(log)
      local requests = {}
      for line in l:gmatch("[^\n]+") do requests[#requests + 1] = json.decode(line) end
      return ok and 0 or code, text, requests
    end
    local code, text, requests = on_terminal("n")
    assert.are.equal(2, code, text)
    assert.matches("on the Production environment calc/Production%? %[y/N%]", text)
    assert.matches("not confirmed", text)
    assert.are.same({}, mutating(requests))
    code, text, requests = on_terminal("y")
    assert.are.equal(0, code, text)
    local _, asked = text:gsub("%[y/N%]", "")
    assert.are.equal(1, asked, text)
    assert.matches("done%s+calc/Production is Running", text)
    assert.is_true(#mutating(requests) >= 3)
  end)

  it("gen-reference --dry-run writes nothing", function()
    local dir = tmpdir()
    local code, out, err = run("--dry-run run gen-reference --output " .. q(dir .. "/ref.md"))
    local left = listing(dir)
    os.execute("rm -rf " .. q(dir))
    assert.are.equal(0, code, err)
    assert.matches("plan%s+write .*ref.md", out)
    assert.are.equal("", left)
  end)

  it("--json=ndjson streams log events and ends with a result event", function()
    local code, out, err = run("--sandbox --json=ndjson run deploy")
    assert.are.equal(0, code, err)
    local events = {}
    for line in out:gmatch("[^\n]+") do events[#events + 1] = json.decode(line) end
    assert.is_true(#events > 3)
    assert.are.equal("log", events[1].event)
    assert.are.equal("result", events[#events].event)
    assert.is_true(events[#events].ok)
    assert.are.equal("Running", events[#events].result.status)
  end)

  it("host options after the script name are refused with a hint, never passed on", function()
    local script = write(os.tmpname(), "print('ran', ...)")
    for _, opt in ipairs({ "--sandbox", "--trace", "--json", "--yes", "--profile x", "--endpoint http://127.0.0.1:1" }) do
      local code, out, err = run(q(script) .. " " .. opt)
      assert.are.equal(2, code, opt)
      assert.are.equal("", out, opt)
      assert.matches("is an option of mxdeploy: put it before the script name", err)
      code, out, err = run("run status " .. opt)
      assert.are.equal(2, code, opt)
      assert.are.equal("", out, opt)
    end
    -- after `--` a script's arguments are its own (lua5.4's convention)
    local code, out = run("-- " .. q(script) .. " --sandbox")
    assert.are.equal(0, code)
    assert.are.equal("ran\t--sandbox\n", out)
    os.remove(script)
  end)

  it("--dry-run after a plain script's name puts the client in dry-run mode too", function()
    local script = write(os.tmpname(), "local j = mx.v1.start_environment('calc', 'Test'); print(j.state, j.planned)")
    local code, out, err, requests = run("--sandbox " .. q(script) .. " --dry-run")
    os.remove(script)
    assert.are.equal(0, code, err)
    assert.are.equal("done\ttrue\n", out)
    assert.matches("%[plan%] POST /deploy/api/1/apps/calc/environments/Test/start", err)
    assert.are.same({}, mutating(requests))
  end)

  it("status reports an app it cannot read on stderr and exits 3 (partial failure)", function()
    local faults = write(os.tmpname() .. ".lua",
      [[return {{route = "GET /deploy/api/1/apps/calc/environments", error_rate = 1, status = 500}}]])
    local setup = ("sb = require('mxdeploy.sandboxctl').start{time_scale = 0.001}; mx.use_sandbox(sb); "
      .. "sb:configure{faults = dofile(%q)}"):format(faults)
    local code, out, err = run(("-e %s run status"):format(q(setup)))
    assert.are.equal(3, code, err)
    assert.matches("status: calc: HTTP 500", err)
    assert.is_nil(out:find("calc", 1, true), "the failure is in the table on stdout")
    assert.matches("freebie%s+Sandbox%s+Running", out)
    code, out = run(("--json -e %s run status"):format(q(setup)))
    assert.are.equal(3, code)
    local doc = json.decode(out)
    assert.is_false(doc.ok)
    assert.are.equal("calc", doc.result.failed[1].app)
    os.remove(faults)
  end)

  it("deploy checks the environment before uploading anything", function()
    local code, _, err, requests = run("--sandbox run deploy calc Staging " .. q(source .. "/scripts/deploy.lua"))
    assert.are.equal(1, code, err)
    assert.matches("deploy failed: HTTP 404", err)
    assert.are.same({}, mutating(requests))
  end)

  it("promote refuses FROM = TO as a usage error", function()
    local code, _, err, requests = run("--sandbox run promote calc Test Test")
    assert.are.equal(2, code)
    assert.matches("FROM and TO are the same environment %(Test%)", err)
    assert.are.equal(0, #requests)
  end)

  it("backup refuses an output it cannot write before making anything", function()
    local code, _, err, requests = run("--sandbox --yes run backup calc Test /nonexistent-dir/x.backup")
    assert.are.equal(1, code)
    assert.matches("cannot write /nonexistent%-dir/x.backup", err)
    assert.are.equal(0, #requests)
  end)

  it("gen-reference --help does not rewrite docs/REFERENCE.md", function()
    local before = slurp(source .. "/docs/REFERENCE.md")
    local f = assert(io.open(source .. "/docs/REFERENCE.md", "rb"))
    f:close()
    local code = run("run gen-reference --help")
    assert.are.equal(0, code)
    assert.are.equal(before, slurp(source .. "/docs/REFERENCE.md"))
  end)
end)

describe("mxdeploy run", function()
  local team
  before_each(function()
    team = tmpdir()
    assert(os.execute("mkdir " .. q(team .. "/lib")))
    write(team .. "/lib/greet.lua", "return function(who) return 'hello ' .. who end")
    write(team .. "/hello.lua", [[
-- not this comment: the declaration is the description
local steps = require("mxdeploy.steps")
local greet = require("lib.greet")
steps.script{
  name = "hello",
  description = "Greets someone (a team's script)",
  requires = ">= 0.2",
  arguments = function(p) p:argument("who", "Whom to greet") end,
  run = function(args, s)
    s.print("%s", greet(args.who))
    return { greeting = greet(args.who) }
  end,
}
]])
    write(team .. "/raw.lua", "-- A plain Lua script without a declaration\nprint('raw ran', ...)\n")
  end)
  after_each(function() os.execute("rm -rf " .. q(team)) end)

  it("finds a team's script on MXDEPLOY_PATH; it requires its own lib/ from another working directory", function()
    local code, out, err = run("run hello world", { dir = "/", env = "MXDEPLOY_PATH=" .. q("/nonexistent:" .. team) })
    assert.are.equal(0, code, err)
    assert.are.equal("hello world\n", out)
    code, out = run("--json run hello team", { dir = "/", env = "MXDEPLOY_PATH=" .. q(team) })
    assert.are.equal("hello team", json.decode(out).result.greeting)
    code, out = run("run raw a b", { dir = "/", env = "MXDEPLOY_PATH=" .. q(team) })
    assert.are.equal(0, code)
    assert.are.equal("raw ran\ta\tb\n", out)
  end)

  it("a team's script comes before a shipped one of the same name", function()
    write(team .. "/status.lua", "print('team status')")
    local code, out = run("run status", { env = "MXDEPLOY_PATH=" .. q(team) })
    assert.are.equal(0, code)
    assert.are.equal("team status\n", out)
  end)

  it("lists every script with its description and location, without running any", function()
    write(team .. "/boom.lua", "-- Would write a file if run\nio.open(" .. ("%q"):format(team .. "/ran") .. ", 'w'):close()\n")
    local code, out, err, requests = run("--sandbox run", { env = "MXDEPLOY_PATH=" .. q(team) })
    assert.are.equal(0, code, err)
    assert.matches("hello%s+Greets someone %(a team's script%)%s+%(" .. team:gsub("%p", "%%%0") .. "/hello.lua%)", out)
    assert.matches("raw%s+A plain Lua script without a declaration", out)
    assert.matches("deploy%s+Deploy a package to an environment", out)
    assert.matches("status%s+Status of every environment", out)
    assert.matches("/scripts/promote.lua%)", out)
    assert.is_nil(io.open(team .. "/ran"), "listing ran a script")
    assert.are.equal(0, #requests, "listing sent a request")
    code, out = run("run --names", { env = "MXDEPLOY_PATH=" .. q(team) })
    assert.matches("^backup\nboom\ndeploy\n", out)
  end)

  it("an unknown script name is a usage error with a hint", function()
    local code, _, err = run("run stauts")
    assert.are.equal(2, code)
    assert.matches("no script 'stauts' in .*; did you mean status%?", err)
  end)

  it("a bug in a script (a plain error) prints its traceback; an expected failure one line", function()
    write(team .. "/buggy.lua", [[require("mxdeploy.steps").script{name = "buggy", description = "x",
      run = function() local t = nil; return t.field end}]])
    write(team .. "/failing.lua", [[require("mxdeploy.steps").script{name = "failing", description = "x",
      run = function(_, s) s.fail("no %s", "luck") end}]])
    local code, _, err = run("run buggy", { env = "MXDEPLOY_PATH=" .. q(team) })
    assert.are.equal(1, code)
    assert.matches("^buggy failed: .*buggy.lua:2: attempt to index a nil value", err)
    assert.matches("stack traceback:", err)
    code, _, err = run("run failing", { env = "MXDEPLOY_PATH=" .. q(team) })
    assert.are.equal(1, code)
    assert.are.equal("failing failed: no luck\n", err)
  end)

  it("mx.require_version refuses a script that needs a newer mxdeploy, in one line", function()
    write(team .. "/future.lua", [[require("mxdeploy.steps").script{name = "future", description = "x",
      requires = ">= 99.0", run = function() end}]])
    local code, _, err = run("run future", { env = "MXDEPLOY_PATH=" .. q(team) })
    assert.are.equal(1, code)
    assert.matches("this script needs mxdeploy >= 99.0; this is mxdeploy 0.2", err)
  end)

  it("prints a script's shell completion from its declaration", function()
    local code, out = run("run deploy --completion bash")
    assert.are.equal(0, code)
    assert.matches("complete %-F", out)
    assert.matches("%-%-dry%-run", out)
  end)
end)

describe("pointing scripts elsewhere", function()
  -- A standalone `mxdeploy sandbox` on a free port; returns its base URL, log path and pid file.
  local function standalone(extra)
    local out, log, pid = os.tmpname(), os.tmpname(), os.tmpname()
    os.remove(log)
    assert(os.execute(("%s sandbox --time-scale 0.001 --log %s %s > %s 2>&1 & echo $! > %s"):format(q(bin), q(log), extra or "", q(out), q(pid))))
    local url
    for _ = 1, 100 do
      url = (slurp(out) or ""):match("(http://127%.0%.0%.1:%d+)/deploy/api/1")
      if url then break end
      os.execute("sleep 0.05")
    end
    return url, log, pid, out
  end
  local function stop(pid)
    os.execute("kill " .. assert(slurp(pid)):match("%d+"))
  end
  local CREDS = "MENDIX_USERNAME=sandbox@example.com MENDIX_APIKEY=sandbox-apikey-0000"

  it("--endpoint and MXDEPLOY_ENDPOINT send every API to one base (a standalone sandbox)", function()
    local url, log, pid = standalone()
    assert.truthy(url, "the standalone sandbox did not start")
    local code, out, err = run("--endpoint " .. url .. " run status", { env = CREDS })
    assert.are.equal(0, code, err)
    assert.matches("calc%s+Production%s+Running", out)
    code, out, err = run("--yes run deploy calc Test " .. q(source .. "/scripts/deploy.lua"),
      { env = CREDS .. " MXDEPLOY_ENDPOINT=" .. url })
    assert.are.equal(0, code, err)
    assert.matches("done%s+calc/Test is Running", out)
    stop(pid)
    local paths = {}
    for line in (slurp(log) or ""):gmatch("[^\n]+") do
      local r = json.decode(line)
      paths[r.method .. " " .. r.path] = true
    end
    os.remove(log)
    assert.is_true(paths["POST /deploy/api/v2/apps/calc/packages/upload"])
    assert.is_true(paths["GET /deploy/api/1/apps"])
  end)

  it("mxdeploy sandbox --faults FILE loads fault rules (JSON or Lua)", function()
    local rules = write(os.tmpname(), '[{"route": "GET /deploy/api/1/apps/calc/environments", "error_rate": 1, "status": 500}]')
    local url, log, pid = standalone("--faults " .. q(rules))
    assert.truthy(url, "the standalone sandbox did not start")
    local code, out, err = run("--endpoint " .. url .. " run status", { env = CREDS })
    stop(pid)
    os.remove(log)
    assert.are.equal(3, code, err)
    assert.matches("status: calc: HTTP 500", err)
    assert.matches("tictactoc%s+Test", out)
    -- a bad file is refused before serving, in one line naming the file
    write(rules, "return {'not a rule'}")
    code, out, err = run("sandbox --faults " .. q(rules))
    assert.are.equal(2, code, out)
    assert.matches("^mxdeploy sandbox: %-%-faults " .. rules:gsub("%p", "%%%0") .. ": fault #1 must be a table\n$", err)
    write(rules, "[not json")
    code, out, err = run("sandbox --faults " .. q(rules))
    assert.are.equal(2, code, out)
    assert.matches("^mxdeploy sandbox: %-%-faults [^\n]+: not valid JSON[^\n]*\n$", err)
    write(rules, '[{"route": "GET /x", "eror": "NOT_FOUND"}]')
    code, out, err = run("sandbox --faults " .. q(rules))
    assert.are.equal(2, code, out)
    assert.matches("^mxdeploy sandbox: %-%-faults [^\n]+: fault #1: unknown field 'eror'", err)
    os.remove(rules)
    code, out, err = run("sandbox --faults " .. q(rules))
    assert.are.equal(2, code, out)
    assert.matches("^mxdeploy sandbox: %-%-faults [^\n]+: cannot read it[^\n]*\n$", err)
  end)

  it("mxdeploy sandbox --faults reads every form the sandbox's loader reads ({\"faults\": [...]} too)", function()
    local rules = write(os.tmpname(), '{"faults": [{"route": "GET /deploy/api/1/apps/calc/environments", "error_rate": 1, "status": 500}]}')
    local url, log, pid = standalone("--faults " .. q(rules))
    assert.truthy(url, "the standalone sandbox did not start")
    local code, out, err = run("--endpoint " .. url .. " run status", { env = CREDS })
    stop(pid)
    os.remove(log)
    os.remove(rules)
    assert.are.equal(3, code, err)
    assert.matches("status: calc: HTTP 500", err)
    assert.matches("tictactoc%s+Test", out)
  end)
end)

describe("typos caught before sending", function()
  local sb, c
  setup(function()
    sb = require("mxdeploy.sandboxctl").start{ time_scale = 0.001 }
    c = mx.sandbox_client(sb, { yes = true })
  end)
  teardown(function() sb:stop() end)

  it("an undocumented body field is refused with did-you-mean; mx.raw sends it on purpose", function()
    sb:reset_log()
    local ok, e = pcall(c.v1.start_environment, "calc", "Test", { AutoSyncDB = true })
    assert.is_false(ok)
    assert.are.equal("argument", e.kind)
    assert.matches("unknown field 'AutoSyncDB'; did you mean AutoSyncDb%?", tostring(e))
    assert.are.equal(0, #sb:requests())
    local job = c.v1.start_environment("calc", "Test", mx.raw{ AutoSyncDb = true, Extra = 1 })
    assert.truthy(job.id)
    local sent = sb:requests()
    assert.are.equal(1, #sent)
    assert.matches('"Extra"', sent[1].body or "")
  end)

  it("unknown options to job:wait, mx.connect, mx.configure, mx.download, mx.map are argument errors", function()
    local job = c.v1.start_environment("calc", "Acceptance", { AutoSyncDb = true })
    local ok, e = pcall(job.wait, job, { timout = 1 })
    assert.is_false(ok)
    assert.are.equal("bad argument #1 to 'job:wait' (unknown option 'timout'; did you mean timeout?)", tostring(e))
    ok, e = pcall(mx.connect, { dryrun = true })
    assert.is_false(ok)
    assert.matches("unknown option 'dryrun'; did you mean dry_run%?", tostring(e))
    ok, e = pcall(mx.configure, { max_connections = 2 })
    assert.is_false(ok)
    assert.matches("unknown option 'max_connections'; did you mean max_host_connections%?", tostring(e))
    ok, e = pcall(mx.download, "http://127.0.0.1:1/x", nil, { timout = 1 })
    assert.is_false(ok)
    assert.matches("unknown option 'timout'", tostring(e))
    ok, e = pcall(mx.map, {}, print, { concurency = 2 })
    assert.is_false(ok)
    assert.matches("unknown option 'concurency'", tostring(e))
  end)

  it("an unknown operation name is one line with a hint", function()
    local ok, e = pcall(function() return c.v1.get_ap("calc") end)
    assert.is_false(ok)
    assert.are.equal("no operation 'get_ap' in mx.v1; did you mean get_app?", tostring(e))
    local code, _, err = run("-e 'mx.v1.get_ap(\"calc\")'")
    assert.are.equal(1, code)
    assert.are.equal("mxdeploy: no operation 'get_ap' in mx.v1; did you mean get_app?\n", err)
  end)
end)

describe("client dry-run and mx.map", function()
  local sb
  setup(function() sb = require("mxdeploy.sandboxctl").start{ time_scale = 0.001 } end)
  teardown(function() sb:stop() end)

  it("mx.connect{dry_run = true} sends reads, plans changes and completes their jobs at once", function()
    sb:reset_log()
    local plans = {}
    local c = mx.sandbox_client(sb, { dry_run = true, on_plan = function(p) plans[#plans + 1] = p.line end })
    assert.are.equal("calc", c.v1.get_app("calc").AppId)
    local job = c.v1.start_environment("calc", "Production", { AutoSyncDb = true })
    assert.is_true(job:wait().planned)
    assert.is_true(c.backups.delete_snapshot("p", "e", "s").planned)
    local out = os.tmpname()
    os.remove(out)
    assert.are.equal(out, c.build.download_package("calc", "b3d14e53-2654-4534-b374-9179a69ef3cf", out))
    assert.is_nil(io.open(out))
    assert.are.same({ 'POST /deploy/api/1/apps/calc/environments/Production/start {"AutoSyncDb":true}',
      "DELETE /deploy/api/v2/apps/p/environments/e/snapshots/s",
      "GET /deploy/api/1/apps/calc/packages/b3d14e53-2654-4534-b374-9179a69ef3cf/download -> " .. out }, plans)
    assert.are.equal(1, #sb:requests())
  end)

  it("a plan line shows nested values only by their size (a constant's value is never logged)", function()
    local plans = {}
    local c = mx.sandbox_client(sb, { dry_run = true, on_plan = function(p) plans[#plans + 1] = p.line end })
    c.v1.set_environment_settings("calc", "Test", { Constants = mx.array{ { Name = "M.Secret", Value = "hunter2" } } })
    assert.are.same({ 'POST /deploy/api/1/apps/calc/environments/Test/settings {"Constants":"<1 item>"}' }, plans)
  end)

  it("mx.map runs at most `concurrency` at a time and collects failures in list order", function()
    local running, peak = 0, 0
    local results, failures = mx.map({ 1, 2, 3, 4, 5, 6 }, function(n)
      running = running + 1
      peak = math.max(peak, running)
      mx.sleep(0.01)
      running = running - 1
      if n % 3 == 0 then error("no " .. n, 0) end
      return n * 10
    end, { concurrency = 2 })
    assert.are.equal(2, peak)
    assert.are.same({ 10, 20, nil, 40, 50 }, { results[1], results[2], results[3], results[4], results[5] })
    assert.are.equal(2, #failures)
    assert.are.equal(3, failures[1].index)
    assert.are.equal("no 6", failures[2].error)
  end)

  it("a delete asks for confirmation; without a terminal it is refused before sending", function()
    sb:reset_log()
    local c = mx.sandbox_client(sb)
    local ok, e = pcall(c.backups.delete_snapshot, "p", "e", "s")
    assert.is_false(ok)
    assert.are.equal("refused", e.kind)
    assert.are.equal(2, e.exit_code)
    assert.are.equal(0, #sb:requests())
  end)
end)
