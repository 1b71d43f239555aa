-- Credentials as a user meets them: one-line errors naming the file or variable at fault, INI
-- quoting, unknown keys and malformed lines by line number, only a regular file of the user's
-- (a FIFO must not hang), control characters refused, --profile, `mxdeploy auth status`.
local core = require("mxdeploy.core")

local bin = os.getenv("MXDEPLOY_BIN") or "mxdeploy"
local source = os.getenv("MXDEPLOY_SOURCE_DIR") or "."

local P = require("process")
local q, slurp = P.quote, P.slurp

local function write(path, text, mode)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  os.execute(("chmod %s %s"):format(mode or "600", q(path)))
  return path
end

-- Runs mxdeploy with a clean credential environment plus `env`; returns code, stdout, stderr.
local function run(args, env)
  return P.run(("cd %s && env -u MENDIX_USERNAME -u MENDIX_APIKEY -u MENDIX_TOKEN -u MXDEPLOY_PROFILE %s timeout 20 %s %s")
    :format(q(source), env or "", q(bin), args))
end

local lines = P.line_count

local SECRET_KEY, SECRET_TOKEN = "sandbox-apikey-0000", "sandbox-pat-rw"

describe("credentials", function()
  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 " .. q(dir)))
  end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  it("MXDEPLOY_CREDENTIALS naming a missing file is named in the one-line error", function()
    local code, _, err = run("-e 'mx.v1.list_apps()'", "MXDEPLOY_CREDENTIALS=" .. q(dir .. "/nope"))
    assert.are.equal(1, code)
    assert.are.equal(1, lines(err), err)
    assert.matches("MXDEPLOY_CREDENTIALS names " .. dir:gsub("%p", "%%%0") .. "/nope, which does not exist", err)
  end)

  it("with only MENDIX_USERNAME set the error says the API key is missing", function()
    local code, _, err = run("-e 'mx.v1.list_apps()'", "MXDEPLOY_CREDENTIALS=/nonexistent MENDIX_USERNAME=u@example.com")
    assert.are.equal(1, code)
    assert.are.equal(1, lines(err), err)
    assert.matches("the username comes from MENDIX_USERNAME but no API key is set: set MENDIX_APIKEY", err)
  end)

  it("quotes around values are removed as INI readers do (the sandbox accepts the key)", function()
    local sb = require("mxdeploy.sandboxctl").start{ time_scale = 0.001 }
    local path = write(dir .. "/c", ('[default]\nusername = "%s"\napikey = \'%s\'\ntoken = "%s"\n')
      :format(sb.username, sb.apikey, sb.token))
    local c = mx.sandbox_client(sb, { credentials = core.credentials{ file = path, profile = "default" } })
    assert.are.equal(3, #c.v1.list_apps())
    assert.are.equal("table", type(c.v4.list_apps().apps))
    for _, r in ipairs(sb:requests()) do assert.is_true(r.auth_ok, r.path) end
    sb:stop()
  end)

  it("an unknown key or a malformed line anywhere is reported by file and line number, never its content", function()
    local path = write(dir .. "/c", "[default]\nusername = u\n\n[other]\nusrname = secret-value-1\n")
    local ok, err = pcall(core.credentials, { file = path })
    assert.is_false(ok)
    assert.matches(path:gsub("%p", "%%%0") .. ":5: unknown key 'usrname' %(expected username, apikey, token%)", err)
    assert.is_nil(err:find("secret-value-1", 1, true))
    write(path, "[default]\nusername = u\n[broken\n")
    ok, err = pcall(core.credentials, { file = path })
    assert.is_false(ok)
    assert.matches(":3: expected %[profile%]", err)
  end)

  it("only a regular file is read: a FIFO is refused at once (no hang), a directory too", function()
    assert(os.execute("mkfifo -m 600 " .. q(dir .. "/fifo")))
    local started = core.now()
    local code, _, err = run("-e 'mx.v1.list_apps()'", "MXDEPLOY_CREDENTIALS=" .. q(dir .. "/fifo"))
    assert.is_true(core.now() - started < 10, "reading a FIFO hung")
    assert.are.equal(1, code, err)
    assert.matches("credentials file .*/fifo %(MXDEPLOY_CREDENTIALS%) is not a regular file", err)
    assert(os.execute("mkdir -m 700 " .. q(dir .. "/d")))
    local ok, e = pcall(core.credentials, { file = dir .. "/d" })
    assert.is_false(ok)
    assert.matches("is not a regular file", e)
  end)

  it("a file owned by another user is refused even when its mode is 0600", function()
    local path = write(dir .. "/c", "[default]\ntoken = t\n")
    local me = io.popen("id -u"):read("l")
    if me ~= "0" then
      pending("needs root to give a file to another user")
      return
    end
    assert(os.execute("chown 65534 " .. q(path)))
    local ok, e = pcall(core.credentials, { file = path })
    assert.is_false(ok)
    assert.matches("belongs to another user %(uid 65534%)", e)
  end)

  it("values with control characters are refused when read (CR LF would inject a header)", function()
    local code, _, err = run("-e 'mx.v1.list_apps()'", "MXDEPLOY_CREDENTIALS=/nonexistent MENDIX_USERNAME=u MENDIX_APIKEY=\"$(printf 'k\\r\\nX-Evil: 1')\"")
    assert.are.equal(1, code)
    assert.are.equal("mxdeploy: credentials error: MENDIX_APIKEY contains a control character; refused\n", err)
    local path = write(dir .. "/c", "[default]\napikey = a\rX-Evil: 1\n")
    local ok, e = pcall(core.credentials, { file = path })
    assert.is_false(ok)
    assert.matches(":2: control character in the value of apikey", e)
    assert.is_nil(e:find("X-Evil", 1, true))
    ok, e = pcall(mx.connect, { username = "u", apikey = "k\n" })
    assert.is_false(ok)
    assert.matches("apikey contains a control character", tostring(e))
  end)
end)

describe("--profile and mxdeploy auth status", function()
  local out, pid, log, url, dir
  setup(function()
    out, pid, log = os.tmpname(), os.tmpname(), os.tmpname()
    assert(os.execute(("%s sandbox --time-scale 0.001 --log %s > %s 2>&1 & echo $! > %s"):format(q(bin), q(log), q(out), q(pid))))
    for _ = 1, 100 do
      url = slurp(out):match("(http://127%.0%.0%.1:%d+)/deploy/api/1")
      if url then break end
      os.execute("sleep 0.05")
    end
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 " .. q(dir)))
    write(dir .. "/credentials", ("[default]\nusername = sandbox@example.com\napikey = wrong-key\n\n"
      .. "[ops]\nusername = sandbox@example.com\napikey = %s\n"):format(SECRET_KEY))
  end)
  teardown(function()
    os.execute("kill " .. slurp(pid):match("%d+"))
    os.remove(out); os.remove(pid); os.remove(log)
    os.execute("rm -rf " .. q(dir))
  end)

  it("shows where each credential comes from per API family, never the secret", function()
    assert.truthy(url)
    local env = "MXDEPLOY_CREDENTIALS=" .. q(dir .. "/credentials") .. " MENDIX_TOKEN=" .. SECRET_TOKEN
    local code, o, e = run("--endpoint " .. url .. " auth status", env)
    assert.are.equal(0, code, e)
    assert.matches("profile: default", o)
    assert.matches("apikey%s+from .*/credentials %[default%]", o)
    assert.matches("token%s+from MENDIX_TOKEN", o)
    assert.is_nil((o .. e):find(SECRET_TOKEN, 1, true))
    assert.is_nil((o .. e):find("wrong-key", 1, true))
  end)

  it("--check makes one read-only call per family; --profile chooses the profile", function()
    local env = "MXDEPLOY_CREDENTIALS=" .. q(dir .. "/credentials")
    -- [default] has a wrong key and no token: nothing works
    local code, o, e = run("--endpoint " .. url .. " auth status --check", env)
    assert.are.equal(1, code, e)
    assert.matches("check%s+failed: HTTP 401", o)
    assert.matches("check%s+not configured", o)
    -- --profile ops: the key works, the token is still missing: partial (exit 3)
    code, o, e = run("--profile ops --endpoint " .. url .. " auth status --check", env)
    assert.are.equal(3, code, e)
    assert.matches("profile: ops", o)
    assert.matches("check%s+ok %(3 apps visible%)", o)
    assert.matches("auth check: 1 of 2 API families do not work", e)
    for line in slurp(log):gmatch("[^\n]+") do
      assert.matches('"method":"GET"', line)
    end
    assert.is_nil((o .. e):find(SECRET_KEY, 1, true))
  end)
end)
