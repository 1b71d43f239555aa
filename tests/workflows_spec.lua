-- The workflow scripts (issue "the workflows teams run") end to end: the real binary runs
-- `mxdeploy run NAME` against a sandbox of this process (MXDEPLOY_ENDPOINT), which keeps its world
-- across runs; the sandbox's request log proves what was (not) changed; the release ledger is a
-- file of the test.
local S = require("sandbox")
local json = require("mxdeploy.json")

local source = os.getenv("MXDEPLOY_SOURCE_DIR") or "."
local bin = os.getenv("MXDEPLOY_BIN") or "mxdeploy"

local P = require("process")
local q, slurp = P.quote, P.read

local function esc(s) return (tostring(s):gsub("%p", "%%%0")) end


local function mutating(sb)
  local sent = {}
  for _, r in ipairs(sb:requests()) do
    if r.method ~= "GET" then sent[#sent + 1] = r.method .. " " .. r.path end
  end
  return sent
end

-- A package file declaring constants with the sandbox's manifest line.
local function package(constants)
  local path = os.tmpname() .. "_2.0.0.1.mda"
  local f = assert(io.open(path, "wb"))
  f:write("PK\3\4 sandbox package\n")
  if constants then f:write("mxdeploy-constants: ", table.concat(constants, ", "), "\n") end
  f:close()
  return path
end

describe("workflow scripts", function()
  local sb, ledger, files

  -- Runs `mxdeploy [host options] run ARGS` against sb; stdin is not a terminal.
  local function run(args, opts)
    opts = opts or {}
    return P.run(("cd %s && MXDEPLOY_ENDPOINT=%s MENDIX_USERNAME=sandbox@example.com MENDIX_APIKEY=sandbox-apikey-0000 "
      .. "MXDEPLOY_LEDGER=%s MXDEPLOY_USER=tester %s %s %s")
      :format(q(opts.dir or source), q(sb.url), q(ledger), opts.env or "", q(bin), args))
  end

  local function releases()
    local list = {}
    for line in (slurp(ledger) or ""):gmatch("[^\n]+") do list[#list + 1] = json.decode(line) end
    return list
  end

  local function env_package(mode)
    local _, pkg = S.client(sb).v1("GET", "/apps/calc/environments/" .. mode .. "/package")
    return pkg
  end

  before_each(function()
    sb = S.start{ time_scale = 0.001 }
    ledger = os.tmpname()
    os.remove(ledger)
    files = {}
  end)
  after_each(function()
    sb:stop()
    os.remove(ledger)
    for _, f in ipairs(files) do os.remove(f) end
  end)

  local function pkg_file(constants)
    local p = package(constants)
    files[#files + 1] = p
    return p
  end

  describe("deploy", function()
    it("uploads, transports, starts, verifies the model version and records the release", function()
      local code, out, err = run("run deploy calc Test " .. q(pkg_file()))
      assert.are.equal(0, code, err .. out)
      assert.matches("done%s+calc/Test is Running with model version 2%.0%.0%.1", out)
      local list = releases()
      assert.are.equal(1, #list)
      local r = list[1]
      assert.are.same({ "tester", "deploy", "calc", "Test", "2.0.0.1", S.PKG1, "Main line-1.1.5.9.mda", "succeeded" },
        { r.user, r.action, r.app, r.environment, r.model_version, r.previous_package_id, r.previous_package_name, r.result })
      assert.are.equal(env_package("Test").PackageId, r.package_id)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", r.time)
      assert.are.equal(json.null, r.snapshot)
      -- the line's keys come in the ledger's order
      assert.matches('^{"time":.-"user":.-"action":.-"app":.-"environment":.-"package_id":', slurp(ledger))
    end)

    it("a constant without a value stops it before any change, naming the constant in one line", function()
      local code, out, err = run("run deploy calc Test " .. q(pkg_file({ "MyFirstModule.ApiUrl", "MyFirstModule.PaymentKey" })))
      assert.are.equal(1, code, err .. out)
      local _, n = err:gsub("missing constant: ", "")
      assert.are.equal(1, n, err)
      assert.matches("missing constant: MyFirstModule%.PaymentKey has no value in calc/Test", err)
      assert.matches("MISSING_CONSTANT", err)
      assert.are.same({}, mutating(sb))
      assert.is_nil(slurp(ledger), "a release was recorded")
    end)

    it("--settings supplies a missing constant: applied after the transport, before the start", function()
      local settings = S.tmpfile('{"Constants": [{"Name": "MyFirstModule.PaymentKey", "Value": "k-123"}]}')
      files[#files + 1] = settings
      local code, out, err = run("run deploy calc Test " .. q(pkg_file({ "MyFirstModule.PaymentKey" })) .. " --settings " .. q(settings))
      assert.are.equal(0, code, err .. out)
      local order = {}
      for _, r in ipairs(sb:requests()) do
        if r.method == "POST" then order[#order + 1] = r.path:match("[^/]+$") end
      end
      assert.are.same({ "upload", "transport", "settings", "start" }, order)
      local _, s = S.client(sb).v1("GET", "/apps/calc/environments/Test/settings")
      local c
      for _, x in ipairs(s.Constants) do if x.Name == "MyFirstModule.PaymentKey" then c = x end end
      assert.are.same({ "k-123", "k-123" }, { c.Value, c.DeployedValue })
    end)

    it("a failed start with --rollback-on-failure puts back the package that ran before and exits 1", function()
      sb:configure{ faults = { { route = "POST /deploy/api/1/apps/calc/environments/Acceptance/start", job_fail = true, times = 1 } } }
      local code, out, err = run("run deploy calc Acceptance " .. q(pkg_file()) .. " --rollback-on-failure")
      assert.are.equal(1, code, err .. out)
      assert.matches("rollback%s+putting back Main line%-2%.5%.4%.63%.mda", out)
      assert.matches("rolled back: calc/Acceptance runs Main line%-2%.5%.4%.63%.mda again", err)
      assert.are.equal(S.PKG2, env_package("Acceptance").PackageId)
      local _, env = S.client(sb).v1("GET", "/apps/calc/environments/Acceptance")
      assert.are.same({ "Running", "2.5.4.63" }, { env.Status, env.ModelVersion })
      local r = releases()[1]
      assert.are.equal("rolled back", r.result)
      assert.matches("START_FAILED", r.error)
    end)

    it("a failed start without --rollback-on-failure exits 1 and records the failure", function()
      sb:configure{ faults = { { route = "POST /deploy/api/1/apps/calc/environments/Test/start", job_fail = true, times = 1 } } }
      local code, out, err = run("run deploy calc Test " .. q(pkg_file()))
      assert.are.equal(1, code, err .. out)
      assert.are.equal("failed", releases()[1].result)
      assert.is_nil(out:find("rollback", 1, true))
    end)

    it("a transport refused (no permission) starts the environment again with the package it ran", function()
      local code, out, err = run("run deploy calc Acceptance " .. q(pkg_file()),
        { env = "MENDIX_USERNAME=viewer@example.com MENDIX_APIKEY=sandbox-apikey-viewer" })
      assert.are.equal(1, code, err .. out)
      assert.matches("TRANSPORT_NOT_ALLOWED", err)
      assert.matches("restart%s+the transport failed; starting calc/Acceptance again", out)
      local _, env = S.client(sb).v1("GET", "/apps/calc/environments/Acceptance")
      assert.are.same({ "Running", "2.5.4.63" }, { env.Status, env.ModelVersion })
      assert.are.equal("failed", releases()[1].result)
    end)

    it("refuses a busy environment (a start running) before any change", function()
      local seed = (slurp(source .. "/sandbox/seed.lua")):gsub('(Mode = "Test", EnvironmentId = "22064f8f%-ee55%-438c%-9ab2%-182f2f8e5f2f", Status = )"Stopped"', '%1"Starting"')
      local seed_file = S.tmpfile(seed)
      files[#files + 1] = seed_file
      sb:stop()
      sb = S.start{ time_scale = 0.001, seed = seed_file }
      local code, out, err = run("run deploy calc Test " .. q(pkg_file()))
      assert.are.equal(1, code, err .. out)
      assert.matches("calc/Test is busy: a start is running %(ENVIRONMENT_BUSY%)", err)
      assert.are.same({}, mutating(sb))
      -- the sandbox answers a snapshot of it ENVIRONMENT_BUSY
      local status, body = S.client(sb).v2("POST", "/apps/" .. S.PROJECT .. "/environments/" .. S.ENV_TEST .. "/snapshots", {})
      assert.are.same({ 400, "ENVIRONMENT_BUSY" }, { status, body.errorCode })
    end)

    it("--dry-run reads, plans the release and its ledger line, and changes nothing", function()
      local code, out, err = run("run deploy calc Test " .. q(pkg_file()) .. " --backup --rollback-on-failure --dry-run")
      assert.are.equal(0, code, err .. out)
      assert.are.same({}, mutating(sb))
      assert.matches("plan%s+POST " .. esc("/deploy/api/v2/apps/" .. S.PROJECT .. "/environments/" .. S.ENV_TEST .. "/snapshots"), out)
      assert.matches("plan%s+record deploy of .* in the ledger", out)
      assert.is_nil(slurp(ledger), "a dry run wrote the ledger")
    end)

    it("--json: the result is one document with the release", function()
      local code, out, err = run("--json run deploy calc Test " .. q(pkg_file()) .. " --backup")
      assert.are.equal(0, code, err)
      local doc = json.decode(out)
      assert.is_true(doc.ok)
      assert.are.same({ "deploy", "Running", "2.0.0.1", ledger }, { doc.result.action, doc.result.status, doc.result.model_version, doc.result.ledger })
      assert.are.equal(releases()[1].snapshot, doc.result.snapshot)
      assert.is_string(doc.result.snapshot)
    end)

    it("--branch B --revision R builds that revision with the Build API (no repository lookup)", function()
      local code, out, err = run("run deploy --branch main --revision abc123 --version 3.1.0 calc Test")
      assert.are.equal(0, code, err .. out)
      local build
      for _, r in ipairs(sb:requests()) do
        assert.is_nil(r.path:find("/repository/", 1, true))
        if r.method == "POST" and r.path == "/deploy/api/1/apps/calc/packages" then build = json.decode(r.body) end
      end
      assert.are.same({ "main", "abc123", "3.1.0" }, { build.Branch, build.Revision, build.Version })
      assert.are.equal("deploy", releases()[1].action)
    end)
  end)

  describe("promote", function()
    it("moves FROM's package to TO with a snapshot first and records it", function()
      local code, out, err = run("--yes run promote calc Test Acceptance")
      assert.are.equal(0, code, err .. out)
      assert.are.equal(S.PKG1, env_package("Acceptance").PackageId)
      local r = releases()[1]
      assert.are.same({ "promote", "Acceptance", "Test", S.PKG1, S.PKG2, "succeeded" },
        { r.action, r.environment, r.source, r.package_id, r.previous_package_id, r.result })
      assert.is_string(r.snapshot)
    end)

    it("refuses FROM = TO (exit 2, nothing sent)", function()
      local code, _, err = run("run promote calc Test Test")
      assert.are.equal(2, code)
      assert.matches("FROM and TO are the same environment", err)
      assert.are.equal(0, #sb:requests())
    end)

    it("--json and a failed start with --rollback-on-failure (TO runs its old package again)", function()
      sb:configure{ faults = { { route = "POST /deploy/api/1/apps/calc/environments/Acceptance/start", job_fail = true, times = 1 } } }
      local code, out, err = run("--json run promote calc Test Acceptance --no-backup --rollback-on-failure")
      assert.are.equal(1, code, err)
      local doc = json.decode(out)
      assert.is_false(doc.ok)
      assert.matches("rolled back", doc.error.message)
      assert.are.equal(S.PKG2, env_package("Acceptance").PackageId)
    end)
  end)

  describe("rollback", function()
    it("puts back the package before the last release; --restore-backup warns, asks (refused without --yes), restores", function()
      assert.are.equal(0, (run("run deploy calc Test " .. q(pkg_file()) .. " --backup")))
      local snapshot = releases()[1].snapshot
      sb:reset_log()
      local code, out, err = run("run rollback calc Test --restore-backup")
      assert.are.equal(2, code, err .. out)
      assert.matches("WARNING: restoring snapshot " .. esc(snapshot) .. ".*everything written since is lost", err)
      assert.are.same({}, mutating(sb))

      code, out, err = run("--yes run rollback calc Test --restore-backup")
      assert.are.equal(0, code, err .. out)
      assert.matches("restore%s+snapshot " .. esc(snapshot) .. " restored", out)
      assert.are.equal(S.PKG1, env_package("Test").PackageId)
      local list = releases()
      assert.are.same({ "rollback", "succeeded", snapshot, S.PKG1 },
        { list[2].action, list[2].result, list[2].restored_snapshot, list[2].package_id })
      local restores = S.count(sb, function(r) return r.method == "POST" and r.path:match("/restores$") end)
      assert.are.equal(1, restores)
    end)

    it("without a recorded release it says what to give (exit 1); --to PACKAGE_ID works without one", function()
      local code, _, err = run("run rollback calc Test")
      assert.are.equal(1, code)
      assert.matches("no release of calc/Test in .* to roll back; give %-%-to PACKAGE_ID", err)
      local out
      code, out, err = run("--json run rollback calc Acceptance --to " .. S.PKG1)
      assert.are.equal(0, code, err)
      assert.are.equal("1.1.5.9", json.decode(out).result.model_version)
    end)

    it("--dry-run sends only GETs", function()
      local code, out, err = run("run rollback calc Acceptance --to " .. S.PKG1 .. " --dry-run")
      assert.are.equal(0, code, err .. out)
      assert.are.same({}, mutating(sb))
      assert.is_nil(slurp(ledger))
    end)
  end)

  describe("releases and the ledger", function()
    it("lists an environment's releases; --json; a corrupt line is reported with its line number", function()
      assert.are.equal(0, (run("run deploy calc Test " .. q(pkg_file()))))
      assert.are.equal(0, (run("--yes run promote calc Test Acceptance --no-backup")))
      local code, out, err = run("run releases calc Test")
      assert.are.equal(0, code, err)
      assert.matches("tester%s+deploy%s+.*_2%.0%.0%.1%.mda%s+2%.0%.0%.1%s+Main line%-1%.1%.5%.9%.mda%s+succeeded", out)
      assert.is_nil(out:find("promote", 1, true))
      code, out = run("--json run releases calc Acceptance")
      assert.are.equal(0, code)
      assert.are.equal(1, #json.decode(out).result.releases)
      local f = assert(io.open(ledger, "a"))
      f:write("{not json\n")
      f:close()
      code, out, err = run("run releases calc Test")
      assert.are.equal(1, code)
      assert.matches("ledger .*:3: not a release record", err)
      assert.is_nil(err:find("traceback", 1, true))
    end)

    it("concurrent appends from many processes never interleave (one write per line)", function()
      local script = S.tmpfile([[
        local ledger = require("mxdeploy.steps.ledger")
        for i = 1, 100 do
          ledger.append(arg[1], { action = "deploy", app = "calc", environment = "Test", package_name = arg[2] .. ("x"):rep(300), result = tostring(i) })
        end]])
      files[#files + 1] = script
      local cmds = {}
      for p = 1, 6 do cmds[#cmds + 1] = ("%s %s %s p%d &"):format(q(bin), q(script), q(ledger), p) end
      assert.is_true(os.execute(table.concat(cmds, " ") .. " wait") == true)
      local list = releases()
      assert.are.equal(600, #list)
    end)

    it("the default ledger is $XDG_STATE_HOME/mxdeploy/releases.jsonl, else ~/.local/state/...", function()
      local ledger_mod = require("mxdeploy.steps.ledger")
      assert.are.equal("/x/state/mxdeploy/releases.jsonl",
        (function() local p = io.popen("XDG_STATE_HOME=/x/state MXDEPLOY_LEDGER= " .. q(bin) .. [[ -e 'print(require("mxdeploy.steps.ledger").path())']]); local s = p:read("l"); p:close(); return s end)())
      assert.are.equal("/h/.local/state/mxdeploy/releases.jsonl",
        (function() local p = io.popen("HOME=/h XDG_STATE_HOME= MXDEPLOY_LEDGER= " .. q(bin) .. [[ -e 'print(require("mxdeploy.steps.ledger").path())']]); local s = p:read("l"); p:close(); return s end)())
      assert.are.equal("given", ledger_mod.path("given"))
    end)
  end)

  describe("settings", function()
    local function export(mode, extra)
      local code, out, err = run("run settings export calc " .. mode .. (extra or ""))
      assert.are.equal(0, code, err)
      return out
    end

    it("export writes the API's shape with sorted keys; plan exits 2 with the changes, apply makes them, plan then exits 0", function()
      local text = export("Test")
      assert.matches('^{\n  "Constants": %[\n    {\n      "Name": "MyFirstModule%.ApiUrl",\n      "Value": "https://example%.com"\n    }', text)
      assert.matches('"CustomSettings": %[%],\n  "ScheduledEvents": ', text)
      assert.are.equal(text, export("Test"), "export is not stable")
      local doc = json.decode(text)
      doc.Constants[1].Value = "https://new.example.com"
      doc.CustomSettings = { { Name = "SessionTimeout", Value = "600000" } }
      doc.Tags = { "blue" }
      local file = S.tmpfile(json.encode(doc))
      files[#files + 1] = file
      local code, out, err = run("run settings plan calc Test " .. q(file))
      assert.are.equal(2, code, err)
      assert.matches('~ constant MyFirstModule%.ApiUrl: "https://example%.com" %-> "https://new%.example%.com"', out)
      assert.matches('%+ custom setting SessionTimeout = "600000"', out)
      assert.matches("%+ tag blue\n%- tag sandbox", out)
      assert.are.same({}, mutating(sb))

      code, out, err = run("run settings apply calc Test " .. q(file))
      assert.are.equal(2, code, "apply without --yes and without a terminal must be refused")
      assert.are.same({}, mutating(sb))

      code, out, err = run("--yes run settings apply calc Test " .. q(file))
      assert.are.equal(0, code, err .. out)
      assert.matches("holds every change %(re%-read%)", out)
      assert.matches("restart%s+2 changes take effect at the next restart", out)
      code, out = run("run settings plan calc Test " .. q(file))
      assert.are.equal(0, code, out)
      -- --restart restarts (also when the changes were applied before): DeployedValue follows
      code, out, err = run("--yes run settings apply calc Test " .. q(file) .. " --restart")
      assert.are.equal(0, code, err)
      assert.matches("restart%s+calc/Test started", out)
      local _, s = S.client(sb).v1("GET", "/apps/calc/environments/Test/settings")
      local c
      for _, x in ipairs(s.Constants) do if x.Name == "MyFirstModule.ApiUrl" then c = x end end
      assert.are.equal("https://new.example.com", c.DeployedValue)
    end)

    it("secret constants are masked in export and plan unless --show-values; <secret> keeps the value", function()
      local c = S.client(sb)
      assert.are.equal(200, (c.v1("POST", "/apps/calc/environments/Test/transport", { PackageId = "0f5b6c3e-9a39-4a8e-8d43-54c0b0a1e003" })))
      assert.are.equal(200, (c.v1("POST", "/apps/calc/environments/Test/settings", { Constants = { { Name = "MyFirstModule.PaymentKey", Value = "hunter2" } } })))
      local text = export("Test")
      assert.is_nil(text:find("hunter2", 1, true))
      assert.matches('"Value": "<secret>"', text)
      assert.matches("hunter2", export("Test", " --show-values"))
      local file = S.tmpfile(text)
      files[#files + 1] = file
      local code, out = run("run settings plan calc Test " .. q(file))
      assert.are.equal(0, code, out)
      local doc = json.decode(text)
      for _, x in ipairs(doc.Constants) do if x.Name == "MyFirstModule.PaymentKey" then x.Value = "new-key" end end
      local f = io.open(file, "wb"); f:write(json.encode(doc)); f:close()
      local err
      code, out, err = run("--json run settings plan calc Test " .. q(file))
      assert.are.equal(2, code, err)
      assert.is_nil(out:find("new-key", 1, true))
      assert.is_nil(err:find("new-key", 1, true))
      assert.is_nil(out:find("hunter2", 1, true))
      local plan = json.decode(out).result.changes
      assert.are.same({ "~ constant MyFirstModule.PaymentKey: (secret, hidden) -> (secret, hidden)" }, { plan[1].line })
    end)

    it("apply --dry-run sends only GETs; a constant the model lacks is an error (exit 1); diff compares two environments", function()
      local file = S.tmpfile('{"Constants": [{"Name": "MyFirstModule.ApiUrl", "Value": "x"}]}')
      files[#files + 1] = file
      local code, out, err = run("--yes run settings apply calc Test " .. q(file) .. " --dry-run")
      assert.are.equal(0, code, err .. out)
      assert.matches("plan%s+POST /deploy/api/1/apps/calc/environments/Test/settings", out)
      assert.are.same({}, mutating(sb))
      local bad = S.tmpfile('{"Constants": [{"Name": "Nope.Missing", "Value": "x"}]}')
      files[#files + 1] = bad
      code, out, err = run("run settings plan calc Test " .. q(bad))
      assert.are.equal(1, code)
      assert.matches("constant Nope%.Missing is not in the environment", err)
      code, out = run("run settings diff calc Test Acceptance")
      assert.are.equal(2, code)
      assert.matches("%- tag sandbox", out)
      code = run("run settings diff calc Acceptance Production")
      assert.are.equal(0, code)
    end)
  end)

  describe("restart", function()
    it("restarts many targets at once (--each), confirms Production up front, --json, exit 3 when some failed", function()
      local code, out, err = run("--json run restart --each calc/Test --each calc/Production --each tictactoc/Test")
      assert.are.equal(2, code, "a Production target without --yes and without a terminal must be refused")
      assert.are.same({}, mutating(sb))
      code, out, err = run("--yes --json run restart --each calc/Test --each calc/Production --each tictactoc/Test --concurrency 2")
      assert.are.equal(3, code, err)
      local doc = json.decode(out)
      assert.are.same({ "Running", "Running", "failed" }, { doc.result.targets[1].status, doc.result.targets[2].status, doc.result.targets[3].status })
      assert.matches("NO_MDA_HAS_BEEN_DEPLOYED", doc.result.targets[3].error)
      assert.are.equal(1, S.count(sb, "POST", "/deploy/api/1/apps/calc/environments/Production/stop"))
      assert.are.equal(1, S.count(sb, "POST", "/deploy/api/1/apps/calc/environments/Test/start"))
    end)

    it("--all --mode restarts that environment of every app; --dry-run sends only GETs", function()
      local code, out, err = run("run restart --all --mode Test --dry-run")
      assert.are.equal(0, code, err .. out)
      assert.are.same({}, mutating(sb))
      assert.matches("restart%s+2 targets", out)
      code, out, err = run("run restart calc Acceptance")
      assert.are.equal(0, code, err)
      assert.matches("done%s+calc/Acceptance is Running", out)
    end)

    it("--private-cloud sets the manifest's instances to 0 and back, waiting for each job", function()
      local code, out, err = run("run restart --private-cloud " .. S.PROJECT .. " pcenv01", { env = "MENDIX_TOKEN=sandbox-pat-rw" })
      assert.are.equal(0, code, err .. out)
      local puts = {}
      for _, r in ipairs(sb:requests()) do
        if r.method == "PUT" then puts[#puts + 1] = json.decode(r.body).environment.container.instances end
      end
      assert.are.same({ 0, 1 }, puts)
      assert.matches("done%s+.*pcenv01 back at 1 instance", out)
    end)
  end)

  describe("logs", function()
    it("one file per day, concurrently; a rerun downloads only the missing days; --dry-run writes nothing", function()
      local dir = os.tmpname()
      os.remove(dir)
      local today = os.time()
      local from, to = os.date("%Y-%m-%d", today - 5 * 86400), os.date("%Y-%m-%d", today - 2 * 86400)
      local code, out, err = run(("run logs calc Test --from %s --to %s --dir %s --dry-run"):format(from, to, q(dir)))
      assert.are.equal(0, code, err .. out)
      assert.is_nil(io.open(dir), "a dry run made the folder")
      code, out, err = run(("run logs calc Test --from %s --to %s --dir %s"):format(from, to, q(dir)))
      assert.are.equal(0, code, err .. out)
      local first = dir .. "/calc-Test-" .. from .. ".log"
      assert.matches(esc(from .. "T01:00:00"), slurp(first))
      os.remove(dir .. "/calc-Test-" .. to .. ".log")
      sb:reset_log()
      code, out, err = run(("--json run logs calc Test --from %s --to %s --dir %s"):format(from, to, q(dir)))
      assert.are.equal(0, code, err)
      local doc = json.decode(out)
      assert.are.equal(3, doc.result.skipped)
      assert.are.same({ to }, { doc.result.days[1].date })
      assert.are.equal(1, S.count(sb, function(r) return r.path:find("/environments/Test/logs/", 1, true) ~= nil end))
      assert.is_string(slurp(dir .. "/calc-Test-" .. to .. ".log"))
      os.execute("rm -rf " .. q(dir))
    end)

    it("refuses bad dates (exit 2) and a folder it cannot write (exit 1) before downloading", function()
      local code, _, err = run("run logs calc Test --from 2026-02-30 --dir /tmp")
      assert.are.equal(2, code)
      assert.matches("not a date", err)
      code, _, err = run("run logs calc Test --from 2026-01-01 --dir /proc/mxdeploy-nope")
      assert.are.equal(1, code)
      assert.matches("cannot write in /proc/mxdeploy%-nope", err)
      assert.are.equal(0, S.count(sb, function(r) return r.path:find("/environments/Test/logs/", 1, true) ~= nil end))
    end)
  end)

  describe("backup", function()
    it("without FILE takes only the snapshot (waited); --json", function()
      local code, out, err = run("--json run backup calc Test")
      assert.are.equal(0, code, err)
      assert.is_string(json.decode(out).result.snapshot)
      assert.are.same({ "POST /deploy/api/v2/apps/" .. S.PROJECT .. "/environments/" .. S.ENV_TEST .. "/snapshots" }, mutating(sb))
    end)

    it("refuses an unwritable file before any change", function()
      local code, _, err = run("--yes run backup calc Test /proc/nope/calc.backup")
      assert.are.equal(1, code)
      assert.matches("cannot write /proc/nope/calc%.backup %(checked before making anything%)", err)
      assert.are.same({}, mutating(sb))
    end)
  end)

  describe("pc-environment", function()
    local TOKEN = { env = "MENDIX_TOKEN=sandbox-pat-rw" }
    it("apply: a read-modify-write that keeps [] and null, waits, prints the manifest; creates a new one", function()
      local file = S.tmpfile('{"manifestVersion": "1", "environment": {"id": "pcenv01", "container": {"instances": 2}, "runtime": null}}')
      files[#files + 1] = file
      local code, out, err = run("run pc-environment apply " .. q(file) .. " --app " .. S.PROJECT, TOKEN)
      assert.are.equal(0, code, err .. out)
      local put
      for _, r in ipairs(sb:requests()) do if r.method == "PUT" then put = r end end
      assert.matches('"constants":%[%]', put.body)
      assert.matches('"scheduledEvents":%[%]', put.body)
      assert.matches('"runtime":null', put.body)
      assert.matches('"instances":2', put.body)
      assert.matches('"name":"pc%-test"', put.body)
      assert.matches('\n      "instances": 2,', out)
      assert.matches('"constants": %[%]', out)
      local created = S.tmpfile('{"manifestVersion": "1", "environment": {"id": "pcnew", "properties": {"name": "pc-new"}, '
        .. '"provider": {"namespaceId": "' .. S.NAMESPACE .. '"}}}')
      files[#files + 1] = created
      code, out, err = run("--json run pc-environment apply " .. q(created) .. " --app " .. S.PROJECT, TOKEN)
      assert.are.equal(0, code, err)
      assert.are.equal("pc-new", json.decode(out).result.environment.properties.name)
    end)

    it("--dry-run sends only GETs; delete is refused without --yes, then deletes and waits", function()
      local file = S.tmpfile('{"manifestVersion": "1", "environment": {"id": "pcenv01", "container": {"instances": 3}}}')
      files[#files + 1] = file
      local code, out, err = run("run pc-environment apply " .. q(file) .. " --app " .. S.PROJECT .. " --dry-run", TOKEN)
      assert.are.equal(0, code, err .. out)
      assert.are.same({}, mutating(sb))
      code, out, err = run("run pc-environment delete " .. S.PROJECT .. " pcenv01", TOKEN)
      assert.are.equal(2, code)
      assert.are.same({}, mutating(sb))
      code, out, err = run("--yes run pc-environment delete " .. S.PROJECT .. " pcenv01", TOKEN)
      assert.are.equal(0, code, err .. out)
      local status = S.client(sb).pc("GET", "/apps/" .. S.PROJECT .. "/environments/pcenv01")
      assert.are.equal(404, status)
    end)
  end)

  describe("the sandbox", function()
    it("settings changes show in GET .../settings (DeployedValue follows at the next start); logs exist up to today", function()
      local c = S.client(sb)
      local status = c.v1("POST", "/apps/calc/environments/Test/settings", { Constants = { { Name = "MyFirstModule.ApiUrl", Value = "https://new" } } })
      assert.are.equal(200, status)
      local _, s = c.v1("GET", "/apps/calc/environments/Test/settings")
      local k
      for _, x in ipairs(s.Constants) do if x.Name == "MyFirstModule.ApiUrl" then k = x end end
      assert.are.same({ "https://new", "https://example.com" }, { k.Value, k.DeployedValue })
      assert.are.equal(200, (c.v1("GET", "/apps/calc/environments/Test/logs/" .. os.date("!%Y-%m-%d", os.time() - 86400 * 3))))
      assert.are.equal(404, (c.v1("GET", "/apps/calc/environments/Test/logs/" .. os.date("!%Y-%m-%d", os.time() + 86400 * 3))))
    end)

    it("the seeded package that adds a constant fails to start with MISSING_CONSTANT until it has a value", function()
      local c = S.client(sb)
      assert.are.equal(200, (c.v1("POST", "/apps/calc/environments/Test/transport", { PackageId = "0f5b6c3e-9a39-4a8e-8d43-54c0b0a1e003" })))
      local status, body = c.v1("POST", "/apps/calc/environments/Test/start", { AutoSyncDb = true })
      assert.are.same({ 500, "MISSING_CONSTANT" }, { status, body.errorCode })
      assert.are.equal(200, (c.v1("POST", "/apps/calc/environments/Test/settings", { Constants = { { Name = "MyFirstModule.PaymentKey", Value = "k" } } })))
      assert.are.equal(200, (c.v1("POST", "/apps/calc/environments/Test/start", { AutoSyncDb = true })))
    end)
  end)
end)

describe("the release ledger of a rehearsal", function()
  it("is sandbox-releases.jsonl under --sandbox, never the real ledger", function()
    local state = os.tmpname()
    os.remove(state)
    assert(os.execute("mkdir -p " .. q(state)))
    local cmd = ("cd %s && env -u MXDEPLOY_LEDGER XDG_STATE_HOME=%s MXDEPLOY_SANDBOX_TIME_SCALE=0.01 %s --sandbox scripts/deploy.lua > /dev/null 2>&1 < /dev/null")
      :format(q(source), q(state), q(bin))
    local ok = os.execute(cmd)
    local rehearsal = slurp(state .. "/mxdeploy/sandbox-releases.jsonl")
    local real = slurp(state .. "/mxdeploy/releases.jsonl")
    os.execute("rm -rf " .. q(state))
    assert.is_true(ok == true)
    assert.is_nil(real)
    assert.truthy(rehearsal and rehearsal:find('"result":"succeeded"', 1, true), rehearsal)
  end)
end)
