-- The mxdeploy command line: lua5.4 compatibility, exit codes, errors, SIGINT, secrets.
local BIN = os.getenv("MXDEPLOY_BIN")

local P = require("process")
local tmpfile, slurp = P.tmpfile, P.slurp

local core = require("mxdeploy.core")

-- Runs a shell command line; returns exit code, stdout, stderr. Bounded (P.TIMEOUT): a child that
-- hangs fails the test with its output instead of running into ctest's timeout.
local function run(cmdline, stdin)
  return P.run(cmdline, { stdin = stdin })
end

local function mx(args, stdin, env)
  return run(("%s %q %s"):format(env or "", BIN, args), stdin)
end

-- Runs a script that prints "ready" once it waits, sends it SIGINT then, and returns its exit
-- code, stdout (the "ready" line is in a file of its own) and stderr. Bounded: a script that never
-- gets ready, or still runs P.AFTER_SIGNAL seconds after SIGINT, fails the test with a message.
local function interrupt_when_ready(script)
  local ready = os.tmpname()
  local child = P.start{ argv = { "sh", "-c", ("exec %q %q > %q"):format(BIN, script, ready) } }
  local deadline = core.now() + 30
  repeat
    if slurp(ready):find("ready", 1, true) or child:done() then break end
    core.sleep(0.05)
  until core.now() > deadline
  child:signal("INT") -- right away: as the first request starts (signals_spec has the race)
  local code, out, err = child:wait(P.AFTER_SIGNAL)
  os.remove(ready)
  assert(code, err)
  return code, out, err
end

local lines = P.line_count

describe("command line", function()
  it("sets arg exactly as lua5.4 does", function()
    local script = tmpfile("for i = -1, #arg do io.write(i, '=', arg[i], ' ') end print(...)")
    local code, out = mx(script .. " a 'b c'")
    assert.are.equal(0, code)
    assert.are.equal(("-1=%s 0=%s 1=a 2=b c a\tb c\n"):format(BIN, script), out)
  end)

  it("runs -e, -l, - (stdin) and reports -v", function()
    local code, out = mx("-e 'x = 6 * 7' -e 'print(x)'")
    assert.are.equal(0, code)
    assert.are.equal("42\n", out)
    code, out = mx("-l string -e 'print(string.upper(\"ok\"))'")
    assert.are.equal("OK\n", out)
    code, out = mx("-", "print('from stdin', ...)")
    assert.are.equal(0, code)
    assert.are.equal("from stdin\n", out)
    code, out = mx("-v")
    assert.are.equal(0, code)
    assert.matches("^mxdeploy %d+%.%d+%.%d+ %(Lua 5%.4", out)
  end)

  it("exits 2 with one line on bad usage", function()
    for _, args in ipairs({ "--bogus", "-x", "-e" }) do
      local code, out, err = mx(args)
      assert.are.equal(2, code, args)
      assert.are.equal(1, lines(err), err)
      assert.matches("^mxdeploy: ", err)
    end
  end)

  it("--help and --version print to stdout and exit 0; -- ends the options", function()
    local code, out, err = mx("--help")
    assert.are.equal(0, code, err)
    assert.matches("^usage: mxdeploy %[options%] %[script %[args%]%]", out)
    for _, opt in ipairs({ "--sandbox", "--trace", "--version", "--help", "-e stat", "-l mod", "-i", "-v", "-E", "-W" }) do
      assert.truthy(out:find("\n  " .. opt, 1, true), opt .. " missing from --help")
    end
    assert.matches("MENDIX_APIKEY", out)
    code, out, err = mx("--version")
    assert.are.equal(0, code, err)
    assert.matches("^mxdeploy %d+%.%d+%.%d+ %(Lua 5%.4%.%d+, libcurl [%d.]+%)\n$", out)
    local script = tmpfile("print(select('#', ...), ...)")
    code, out = mx("-- " .. script .. " -e --trace")
    assert.are.equal(0, code)
    assert.are.equal("2\t-e\t--trace\n", out)
  end)

  it("loads libcurl and libmicrohttpd only when a transfer or a sandbox needs them", function()
    -- what a process has mapped: the shared objects the dynamic loader opened (LD_DEBUG=files)
    local function loaded(args, stdin)
      local code, _, err = mx(args, stdin, "LD_DEBUG=files")
      assert.are.equal(0, code, err)
      return { curl = err:find("file=libcurl", 1, true) ~= nil, mhd = err:find("file=libmicrohttpd", 1, true) ~= nil }
    end
    assert.are.same({ curl = false, mhd = false }, loaded("-e ''"))
    assert.are.same({ curl = false, mhd = false }, loaded("--help"))
    assert.are.same({ curl = false, mhd = false }, loaded("-i", "1 + 1\n"))
    assert.are.same({ curl = false, mhd = false }, loaded("-e 'mx.connect{}; mx.configure{max_host_connections = 8}'"))
    -- the check sees them once used
    assert.are.same({ curl = true, mhd = false }, loaded("-e 'pcall(mx.request, {url = \"http://127.0.0.1:1/\", retry = false})'"))
    assert.are.same({ curl = false, mhd = true }, loaded("-e 'require(\"mxdeploy.sandboxctl\").start{}:stop()'"))
    -- and a transfer after configure honours the configured cap
    local code, out, err = mx([[-e 'mx.configure{max_host_connections = 3}
      local sb = require("mxdeploy.sandboxctl").start{}
      print(mx.sandbox_client(sb).v1.list_apps() ~= nil, mx.configure{})
      sb:stop()']])
    assert.are.equal(0, code, err)
    assert.are.equal("true\t3\n", out)
  end)


  it("builds the operation table and the default client only when a script first uses them", function()
    local probe = [[local l = package.loaded
      io.write(tostring(l["mxdeploy.operations"] ~= nil), " ", tostring(rawget(mx, "default_client") ~= nil), " ")]]
    local code, out, err = mx(("-e %q -e 'print(mx.v1.list_apps ~= nil)' -e %q"):format(probe, probe))
    assert.are.equal(0, code, err)
    assert.are.equal("false false true\ntrue true ", out)
    -- each way in: a namespace, the default client, a client, the operation list, the REPL's completion
    for _, use in ipairs({ "mx.v4", "mx.default_client", "mx.connect{}", "mx.operations()", "mx.raw({})",
      "getmetatable(mx).__complete()" }) do
      code, out, err = mx(("-e 'local _ = %s; print(type(mx.v1.list_apps))'"):format(use))
      assert.are.equal(0, code, err)
      assert.are.equal("function\n", out, use)
    end
    -- misuse of a function loaded on first use is still one line naming it
    code, _, err = mx("-e 'mx.connect{bogus = 1}'")
    assert.are.equal(1, code)
    assert.are.equal("mxdeploy: bad argument #1 to 'connect' (unknown option 'bogus')\n", err)
  end)
  it("SIGINT ends requests queued behind the connection cap", function()
    local script = tmpfile([[
      local sb = require("mxdeploy.sandboxctl").start{faults = {{route = "*", latency = 60}}}
      mx.configure{max_host_connections = 1}
      local c = mx.sandbox_client(sb)
      local tasks = {}
      for i = 1, 5 do tasks[i] = mx.spawn(c.v1.list_apps) end
      mx.sleep(0.1)
      local queued = 0
      for _, p in ipairs(mx.pending()) do if p.kind == "http" then queued = queued + 1 end end
      assert(queued == 5, queued)
      io.stdout:write("ready\n"); io.stdout:flush()
      mx.wait_all(tasks)
    ]])
    local t0 = os.time()
    local code, _, err = interrupt_when_ready(script)
    assert.are.equal(130, code, err)
    assert.is_true(os.time() - t0 < 30)
  end)

  it("SIGINT ends a wait before any transfer (libcurl not loaded yet)", function()
    local script = tmpfile([[io.stdout:write("ready\n"); io.stdout:flush(); mx.sleep(60)]])
    local t0 = os.time()
    local code = interrupt_when_ready(script)
    assert.are.equal(130, code)
    assert.is_true(os.time() - t0 < 30)
  end)

  it("--trace logs each exchange on stderr: method, URL, status, time and sizes", function()
    local script = tmpfile([[
      mx.v1.list_apps()
      mx.v1.create_environment_tag("calc", "Test", {Tag = "traced"})
      pcall(mx.v1.get_app, "nosuch")
    ]])
    local code, out, err = mx("--sandbox --trace " .. script, nil,
      "env -u MENDIX_USERNAME -u MENDIX_APIKEY -u MENDIX_TOKEN MXDEPLOY_CREDENTIALS=/nonexistent")
    assert.are.equal(0, code, err)
    assert.are.equal("", out)
    local L = "%[http%] "
    local U = "http://127%.0%.0%.1:%d+/deploy/api/1"
    local T = " in [%d.]+ m?s %(sent (%d+) B, received (%d+) B%)"
    local sent, received = err:match(L .. "GET " .. U .. "/apps %-> 200" .. T)
    assert.truthy(sent, err)
    assert.are.equal("0", sent)
    assert.is_true(tonumber(received) > 0)
    sent = err:match(L .. "POST " .. U .. "/apps/calc/environments/Test/tags %-> 200" .. T)
    assert.are.equal(tostring(#'{"Tag":"traced"}'), sent, err)
    assert.matches(L .. "GET " .. U .. "/apps/nosuch %-> 404" .. T, err)
    assert.is_nil(err:find("sandbox-apikey-0000", 1, true))
  end)

  it("exits 1 with message and traceback on a script error", function()
    local script = tmpfile("local function f() error('kaput') end\nf()\n")
    local code, _, err = mx(script)
    assert.are.equal(1, code)
    assert.matches("kaput", err)
    assert.matches("stack traceback", err)
  end)

  it("gives one line for a structured error such as a missing credential", function()
    local code, _, err = mx("-e 'mx.v1.list_apps()'", nil,
      "env -u MENDIX_USERNAME -u MENDIX_APIKEY -u MENDIX_TOKEN MXDEPLOY_CREDENTIALS=/nonexistent")
    assert.are.equal(1, code)
    assert.are.equal(1, lines(err), err)
    assert.matches("MENDIX_APIKEY", err)
  end)

  it("refuses a credentials file that others can read (its group too)", function()
    local creds = tmpfile("[default]\nusername = u@example.com\napikey = k\n")
    for _, mode in ipairs({ "644", "640", "604", "620" }) do
      os.execute("chmod " .. mode .. " " .. creds)
      local code, _, err = mx("-e 'mx.v1.list_apps()'", nil, "MXDEPLOY_CREDENTIALS=" .. creds)
      assert.are.equal(1, code, "mode " .. mode)
      assert.matches("readable by others %(mode " .. mode .. "%)", err)
      assert.are.equal(1, lines(err), err)
    end
    os.remove(creds)
  end)

  it("reads named profiles from the credentials file lazily (MXDEPLOY_PROFILE or profile=), never printing them", function()
    -- The file does not exist when the clients are created: credentials are read at the first call.
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 " .. dir))
    local creds = dir .. "/credentials"
    local script = tmpfile(([[
      local sb = require("mxdeploy.sandboxctl").start{time_scale = 0.001}
      local base = {v1 = sb.bases["deploy-v1"], v4 = sb.bases["deploy-v4"]}
      local by_env, named = mx.connect{base_urls = base}, mx.connect{profile = "ops", base_urls = base}
      local f = assert(io.open(%q, "w"))
      f:write("[default]\nusername = sandbox@example.com\napikey = default-profile-wrong-key\n\n",
              "[ops]\nusername = sandbox@example.com\napikey = " .. sb.apikey .. "\ntoken = " .. sb.token .. "\n")
      f:close()
      os.execute("chmod 600 %s")
      print("env", pcall(function() return #by_env.v1.list_apps() end))
      print("named", #named.v1.list_apps(), #named.v4.list_apps().apps)
      local ok, e = pcall(function() return mx.connect{profile = "nosuch", base_urls = base}.v1.list_apps() end)
      print("missing", e.kind, tostring(e))
      for _, r in ipairs(sb:requests()) do print("log", r.path, r.auth_ok) end
      sb:stop()
    ]]):format(creds, creds))
    local env = "env -u MENDIX_USERNAME -u MENDIX_APIKEY -u MENDIX_TOKEN MXDEPLOY_CREDENTIALS=" .. creds
    local code, out, err = mx("--trace " .. script, nil, env .. " MXDEPLOY_PROFILE=ops")
    local printed = out .. err
    assert.are.equal(0, code, err)
    assert.matches("env\ttrue\t3\n", out)          -- MXDEPLOY_PROFILE=ops chose [ops]
    assert.matches("named\t3\t3\n", out)           -- profile = "ops": API key and token
    assert.matches("missing\tcredentials\tcredentials error: credentials file .* has no profile %[nosuch%]\n", out)
    assert.is_nil(out:find("log\t[^\n]*\tfalse"), out)
    code, out, err = mx(script, nil, env)             -- no MXDEPLOY_PROFILE: [default], a wrong key
    assert.are.equal(0, code, err)
    assert.matches("env\tfalse\tHTTP 401", out)
    assert.matches("named\t3\t3\n", out)
    assert.matches("log\t/deploy/api/1/apps\tfalse\n", out)
    printed = printed .. out .. err
    -- a chosen profile wins over the MENDIX_* variables (they stand in for no profile at all)
    code, out, err = mx(script, nil, "MENDIX_USERNAME=sandbox@example.com MENDIX_APIKEY=env-wrong-key "
      .. "MENDIX_TOKEN=env-wrong-token MXDEPLOY_CREDENTIALS=" .. creds .. " MXDEPLOY_PROFILE=ops")
    assert.are.equal(0, code, err)
    assert.matches("env\ttrue\t3\n", out)
    assert.matches("named\t3\t3\n", out)
    assert.is_nil(out:find("log\t[^\n]*\tfalse"), out)
    printed = printed .. out .. err
    for _, s in ipairs({ "default-profile-wrong-key", "sandbox-apikey-0000", "sandbox-pat-rw" }) do
      assert.is_nil(printed:find(s, 1, true), "a secret from the credentials file was printed")
    end
    os.remove(creds); os.remove(dir)
  end)

  it("exits 130 on SIGINT after running <close> handlers and aborting transfers", function()
    local marker = os.tmpname()
    os.remove(marker)
    local script = tmpfile(([[
      local core = require("mxdeploy.core")
      local sb = require("mxdeploy.sandboxctl").start{faults = {{route = "*", latency = 60}}}
      local guard <close> = setmetatable({}, {__close = function()
        local f = io.open(%q, "w"); f:write("closed"); f:close()
      end})
      io.stdout:write("ready\n"); io.stdout:flush()
      core.http{url = sb.bases["deploy-v1"] .. "/apps"}
    ]]):format(marker))
    local t0 = os.time()
    local code = interrupt_when_ready(script)
    assert.are.equal(130, code)
    assert.are.equal("closed", slurp(marker))
    assert.is_true(os.time() - t0 < 30)
  end)

  it("on SIGINT cancels every task, and cleanups may still make requests", function()
    local marker = os.tmpname()
    local script = tmpfile(([[
      local core = require("mxdeploy.core")
      local sb = require("mxdeploy.sandboxctl").start{faults = {{route = "GET /deploy/api/1/apps/calc", latency = 60}}}
      local creds = core.credentials{username = sb.username, apikey = sb.apikey}
      local function note(s) local f = io.open(%q, "a"); f:write(s, "\n"); f:close() end
      local background = mx.spawn(function()
        local g <close> = setmetatable({}, {__close = function() note("background closed") end})
        mx.sleep(60)
      end)
      mx.sleep(0) -- the background task starts (and waits) before Ctrl-C: a task that never ran has nothing to close
      local guard <close> = setmetatable({}, {__close = function()
        -- a cleanup that talks to the server after Ctrl-C (think: release a lock)
        local r = core.http{url = sb.bases["deploy-v1"] .. "/apps", auth = creds}
        note("cleanup request " .. r.status)
      end})
      io.stdout:write("ready\n"); io.stdout:flush()
      core.http{url = sb.bases["deploy-v1"] .. "/apps/calc", auth = creds}
    ]]):format(marker))
    local t0 = os.time()
    local code = interrupt_when_ready(script)
    assert.are.equal(130, code)
    local notes = slurp(marker)
    os.remove(marker)
    assert.matches("cleanup request 200", notes)
    assert.matches("background closed", notes)
    assert.is_true(os.time() - t0 < 30)
  end)

  it("interrupts a busy Lua loop on SIGINT", function()
    local script = tmpfile([[
      local guard <close> = setmetatable({}, {__close = function() io.stderr:write("cleaned up\n") end})
      io.stdout:write("ready\n"); io.stdout:flush()
      while true do end
    ]])
    local code, _, err = interrupt_when_ready(script)
    assert.are.equal(130, code)
    assert.matches("cleaned up", err)
    assert.matches("mxdeploy: interrupted", err)
  end)

  it("never prints a credential, whatever happens", function()
    local secret = "s3cr3t-apikey-do-not-print-" .. tostring(os.time())
    local token = "s3cr3t-pat-do-not-print-" .. tostring(os.time())
    local script = tmpfile(([[
      local core = require("mxdeploy.core")
      local sb = require("mxdeploy.sandboxctl").start{}
      local creds = core.credentials{}
      print(creds, tostring(creds))
      local c = mx.connect{base_urls = {v1 = sb.bases["deploy-v1"], pc = sb.bases["pc-deploy"]}}
      print(pcall(c.v1.list_apps))            -- 401: wrong key
      print(pcall(c.v1.get_app, "nope"))
      print(pcall(mx.request, {url = "http://127.0.0.1:1/x?apikey=%s", auth = creds, retry = false}))
      print(core.http{method = "POST", url = sb.bases["pc-deploy"] .. "/cli/2.9.0?os=linux&architecture=x86",
        auth = creds, auth_scheme = "token"}.status)
      local explicit = mx.connect{username = "u@example.com", apikey = os.getenv("MENDIX_APIKEY")}
      local pretty = require("mxdeploy.host.repl").pretty
      print(pretty(explicit), pretty(explicit.options), pretty(mx))
      local ok, e = pcall(error, {kind = "x", message = "boom"})
      error("final failure")
    ]]):format(secret))
    local code, out, err = mx("--trace " .. script, nil,
      ("MENDIX_USERNAME=u@example.com MENDIX_APIKEY=%s MENDIX_TOKEN=%s"):format(secret, token))
    assert.are.equal(1, code)
    assert.matches("%[http%]", err) -- the trace did run
    assert.matches("apikey=%*%*%*", err)
    for _, s in ipairs({ secret, token }) do
      assert.is_nil(out:find(s, 1, true), "secret in stdout")
      assert.is_nil(err:find(s, 1, true), "secret in stderr")
    end
  end)

  it("runs a script against the sandbox with --sandbox and no credentials", function()
    local script = tmpfile("local apps = mx.v1.list_apps() print(#apps > 0)")
    local code, out, err = mx("--sandbox " .. script, nil,
      "env -u MENDIX_USERNAME -u MENDIX_APIKEY -u MENDIX_TOKEN MXDEPLOY_CREDENTIALS=/nonexistent")
    assert.are.equal(0, code, err)
    assert.are.equal("true\n", out)
  end)

  it("--sandbox points every API of the default client at the sandbox", function()
    local script = tmpfile([[
      print(#mx.v1.list_apps(), #mx.v4.list_apps().apps, #mx.pc.list_clusters().clusters,
        #mx.build.list_packages("calc") > 0, #mx.backups.list_snapshots("c533ee0b-f7db-4e62-868b-1192d392ccec",
        "867c9f56-84ec-438b-b1ae-9f9c50377cba").snapshots >= 0,
        #mx.pcbuild.list_packages("c533ee0b-f7db-4e62-868b-1192d392ccec").packages > 0,
        mx.v2.get_job ~= nil)
      for ns in ("v1 v2 v4 build backups pc pcbuild"):gmatch("%S+") do
        assert(mx.default_client:base_url(ns):match("^http://127%.0%.0%.1:%d+/"), ns)
      end
    ]])
    local code, out, err = mx("--sandbox " .. script, nil,
      "env -u MENDIX_USERNAME -u MENDIX_APIKEY -u MENDIX_TOKEN MXDEPLOY_CREDENTIALS=/nonexistent")
    assert.are.equal(0, code, err)
    assert.matches("^3\t3\t1\ttrue\ttrue\ttrue\ttrue\n$", out)
  end)

  it("--sandbox serves the newer families too (Pipelines, Webhooks, App Repository)", function()
    local script = tmpfile([[
      local app = "c533ee0b-f7db-4e62-868b-1192d392ccec"
      for ns in ("pipelines webhooks repository"):gmatch("%S+") do
        assert(mx.default_client:base_url(ns):match("^http://127%.0%.0%.1:%d+/"), ns)
      end
      print(mx.repository.get_info(app).type, type(mx.webhooks.list_webhooks(app)),
        mx.pipelines.get_run_status ~= nil)
    ]])
    local code, out, err = mx("--sandbox " .. script, nil,
      "env -u MENDIX_USERNAME -u MENDIX_APIKEY -u MENDIX_TOKEN MXDEPLOY_CREDENTIALS=/nonexistent")
    assert.are.equal(0, code, err)
    assert.are.equal("git\ttable\ttrue\n", out)
  end)

  it("loads the module in stock lua5.4, where waits block", function()
    if os.getenv("MXDEPLOY_SANITIZED") == "ON" then
      pending("an ASan-built module cannot load into the uninstrumented lua5.4")
      return
    end
    local so_dir = BIN:match("^(.*)/[^/]+$")
    local code, out, err = run(("LUA_CPATH='%s/?.so;;' lua5.4 -e %q"):format(so_dir, [[
      local mx = require("mxdeploy")
      local t = mx.spawn(function() mx.sleep(0.01) return 42 end)
      print(t:wait())
    ]]))
    assert.are.equal(0, code, err)
    assert.are.equal("42\n", out)
  end)
end)

describe("REPL", function()
  it("prints expressions, continues incomplete lines and runs waits", function()
    local input = table.concat({
      "1 + 1",
      "function f(x)",
      "  return x * 2",
      "end",
      "f(21)",
      "mx.sleep(0.01) or 'slept'",
      "{b = 1, a = {}, c = mx.null, d = mx.array()}",
      "error('oops')",
      "'still alive'",
    }, "\n") .. "\n"
    local code, out, err = mx("-i", input, "MXDEPLOY_HISTORY=" .. os.tmpname())
    assert.are.equal(0, code)
    assert.matches("\n?2\n", out)
    assert.matches("42\n", out)
    assert.matches('"slept"', out)
    assert.matches("a = {},", out)
    assert.matches("c = null,", out)
    assert.matches("d = %[%],", out)
    assert.matches("oops", err)
    assert.matches('"still alive"', out)
  end)

  it("waits on every job kind at the prompt, shows help(fn) and honours _PROMPT", function()
    local P, ENV, C, NS = "c533ee0b-f7db-4e62-868b-1192d392ccec", "22064f8f-ee55-438c-9ab2-182f2f8e5f2f",
      "42dec69c-9bdb-4918-a979-716fbbe3b8a6", "db6ed4d3-8b6d-4c2b-ad2b-2a69d0f7afe0"
    local mda = tmpfile(("m"):rep(2048))
    local input = table.concat({
      "mx.use_sandbox(require('mxdeploy.sandboxctl').start{time_scale = 0.001}) and 'ready'",
      "mx.v1.start_environment('calc', 'Test', {AutoSyncDb = true}):wait{timeout = 30}.Status",
      ("mx.v2.upload_package('calc', %q):wait{timeout = 30}.Status"):format(mda),
      "mx.build.build_package('calc', {Branch = 'main', Revision = '7', Version = '1.0.7'}):wait{timeout = 30}.Status",
      ("snap = mx.backups.create_snapshot(%q, %q):wait{timeout = 30}"):format(P, ENV),
      "snap.state",
      ("mx.backups.create_archive(%q, %q, snap.snapshot_id):wait{timeout = 30}.state"):format(P, ENV),
      ("mx.pc.update_namespace(%q, %q, mx.pc.get_namespace(%q, %q)):wait{timeout = 30}.status"):format(C, NS, C, NS),
      ("mx.pcbuild.build_package(%q, {branch = 'main', revision = 'r1'}):wait{timeout = 30}.status"):format(P),
      "help(mx.v1.start_environment)",
      "_PROMPT = 'qa> '",
      "6 * 7",
    }, "\n") .. "\n"
    local code, out, err = mx("-i", input, "MXDEPLOY_HISTORY=" .. os.tmpname())
    os.remove(mda)
    assert.are.equal(0, code, err)
    assert.are.equal("", err)
    for _, want in ipairs({ '"ready"', '"Started"', '"Completed"', '"Succeeded"', '"completed"', '"finished"' }) do
      assert.truthy(out:find("> " .. want .. "\n", 1, true), want .. " missing from:\n" .. out)
    end
    assert.matches("v1%.start_environment%(AppId, Mode, %[body {AutoSyncDb%?=boolean}%]%) %-> job\n", out)
    assert.matches("POST /api/1/apps/{AppId}/environments/{Mode}/start", out, 1, true)
    assert.matches("Starts a specific environment", out, 1, true)
    assert.matches("qa> 42\nqa> $", out) -- the prompt after _PROMPT was set
    local repl = require("mxdeploy.host.repl")
    local found = {}
    for _, c in ipairs(repl.complete("mx.v1.st")) do found[c] = true end
    assert.is_true(found["mx.v1.start_environment"] and found["mx.v1.stop_environment"])
  end)

  it("leaves a history path that is not a regular file alone", function()
    local fifo = os.tmpname()
    os.remove(fifo)
    assert(os.execute("mkfifo -m 640 " .. fifo))
    local code = run(("MXDEPLOY_HISTORY=%q timeout 20 %q -i"):format(fifo, BIN), "1 + 1\n")
    assert.are.equal(0, code, "the REPL blocked on or failed with a FIFO history path")
    local p = io.popen("stat -c '%F %a' " .. fifo)
    local kind = p:read("a")
    p:close()
    os.remove(fifo)
    assert.are.equal("fifo 640\n", kind)
  end)

  it("completes module fields", function()
    local repl = require("mxdeploy.host.repl")
    local found = {}
    for _, c in ipairs(repl.complete("mx.sp")) do found[c] = true end
    assert.is_true(found["mx.spawn"])
  end)
end)

describe("mxdeploy sandbox (standalone)", function()
  it("has every option its usage line names listed and explained in mxdeploy --help", function()
    local code, usage = mx("sandbox --help")
    assert.are.equal(0, code)
    local _, help = mx("--help")
    local n = 0
    for opt in usage:gmatch("%-%-[%w-]+") do
      n = n + 1
      assert.matches("\n  " .. opt:gsub("%-", "%%-") .. " [%u]+%s+%l", help, nil, opt .. " missing from --help")
    end
    assert.are.equal(9, n) -- --port --files-port --state --log --seed --time-scale --faults --tls-cert --tls-key
  end)

  it("refuses bad options with one line and exit 2", function()
    for _, args in ipairs({ "--port abc", "--port 70000", "--files-port -1", "--time-scale 0", "--bogus x" }) do
      local code, _, err = mx("sandbox " .. args)
      assert.are.equal(2, code, args)
      assert.matches("^mxdeploy sandbox: ", err)
    end
  end)

  it("names every API family of sandbox/families.lua in its banner, at its base URL", function()
    local out, pid = os.tmpname(), os.tmpname()
    assert(os.execute(("%q sandbox > %q 2>&1 & echo $! > %q"):format(BIN, out, pid)))
    local banner
    for _ = 1, 100 do
      banner = slurp(out) or ""
      if banner:find("try: curl", 1, true) then break end
      os.execute("sleep 0.05")
    end
    os.execute("kill " .. assert(slurp(pid)):match("%d+"))
    os.remove(out)
    os.remove(pid)
    local url = assert(banner:match("(http://127%.0%.0%.1:%d+)/"), banner)
    local families = dofile((os.getenv("MXDEPLOY_SOURCE_DIR") or ".") .. "/sandbox/families.lua")
    assert.is_true(#families >= 11)
    for _, f in ipairs(families) do
      local line = banner:match("\n  " .. (url .. f.prefix):gsub("%p", "%%%0") .. " +([^\n]+)")
      assert.truthy(line, f.api .. " missing from the banner:\n" .. banner)
      assert.truthy(line:find(f.title, 1, true), f.api .. ": " .. line)
    end
    assert.matches("try: curl [^\n]+ " .. url:gsub("%p", "%%%0") .. "/deploy/api/1/apps", banner)
  end)

  it("reports a missing seed file in one line", function()
    local code, _, err = mx("sandbox --seed /nonexistent/seed.lua")
    assert.are.equal(1, code)
    assert.are.equal(1, lines(err), err)
    assert.matches("cannot load seed /nonexistent/seed.lua", err)
  end)
end)
