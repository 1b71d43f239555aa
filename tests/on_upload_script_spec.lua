-- scripts/on-upload.lua end to end: the script serves webhook deliveries; a task started with -e
-- registers its URL as a webhook of the sandbox app and uploads a package; the sandbox delivers
-- the signed package.uploaded event and the script deploys that package to the environment.

local source = os.getenv("MXDEPLOY_SOURCE_DIR") or "."
local bin = os.getenv("MXDEPLOY_BIN") or "mxdeploy"
local P = require("process")
local SECRET = "whsec_c2FuZGJveC13ZWJob29rLXNlY3JldC0wMDAwMDAwMA=="

-- The -e chunk: a sandbox for the script, and a task that waits until the receiver answers,
-- makes it the app's webhook and uploads a package (with `spoil`: first one whose delivery is
-- tampered with, which must be refused).
local SETUP = [[
sb = require('mxdeploy.sandboxctl').start{time_scale = 0.001}
mx.use_sandbox(sb)
local url = 'http://127.0.0.1:%d/'
mx.spawn(function()
  for _ = 1, 200 do
    local r = require('mxdeploy.core').http{method = 'POST', url = url, body = '{}', timeout = 2}
    if r and r.status == 401 then break end
    mx.sleep(0.05)
  end
  mx.webhooks.create_webhook('c533ee0b-f7db-4e62-868b-1192d392ccec', {name = 'on upload', url = url,
    eventTypes = {'package.uploaded'}, isActive = true, validationSecret = '%s'})
  local file = os.tmpname()
  local f = io.open(file, 'wb') f:write('PK on-upload test') f:close()
  if %s then
    sb:configure{faults = {{route = 'POST /deploy/api/v2/apps/*/packages/upload', webhook = 'tamper', times = 1}}}
    mx.v2.upload_package('calc', file, {name = 'calc_9.9.9.1.mda'}):wait()
  end
  mx.v2.upload_package('calc', file, {name = 'calc_9.9.9.2.mda'}):wait()
  os.remove(file)
end)
]]

local function run_on(port, spoil)
  local setup = SETUP:format(port, SECRET, spoil and "true" or "false")
  local cmd = ("cd %q && MXDEPLOY_WEBHOOK_SECRET=%q %q -e %q scripts/on-upload.lua --port %d --once calc Test 2>&1")
    :format(source, SECRET, bin, setup, port)
  return require("process").run(cmd) -- bounded: a delivery that never comes fails in seconds
end

-- One attempt on a random port (below Linux's ephemeral range, 32768 up, where outgoing
-- connections take theirs); another port when that one was taken.
local function run(spoil)
  for _ = 1, 5 do
    local code, text = run_on(math.random(20000, 32000), spoil)
    if not text:find("Address already in use", 1, true) then return code, text end
  end
  error("no free port for the receiver after 5 attempts")
end

describe("scripts/on-upload.lua", function()
  it("deploys the package a verified package.uploaded delivery names", function()
    local code, out = run(false)
    assert.are.equal(0, code, out)
    assert.matches("listen%s+webhook deliveries on http://127%.0%.0%.1:%d+/", out)
    assert.matches("event%s+delivery msg_%w+: calc_9%.9%.9%.2%.mda uploaded", out)
    assert.matches("transport%s+calc_9%.9%.9%.2%.mda %(", out)
    assert.matches("done%s+calc/Test runs 9%.9%.9%.2", out)
  end)

  it("refuses a tampered delivery and deploys only the genuine one", function()
    local code, out = run(true)
    assert.are.equal(0, code, out)
    assert.matches("webhook: refused delivery msg_%w+ from 127%.0%.0%.1: signature mismatch", out)
    assert.is_nil(out:find("9.9.9.1", 1, true), out)
    assert.matches("done%s+calc/Test runs 9%.9%.9%.2", out)
  end)

  -- `mxdeploy --sandbox run on-upload ARGS` with the sandbox's request log: code, stdout, stderr,
  -- the number of requests the sandbox saw.
  local function run_named(args, env)
    local log = os.tmpname()
    os.remove(log)
    local code, o, e = P.run(("cd %s && MXDEPLOY_SANDBOX_LOG=%s %s timeout 20 %s --sandbox run on-upload %s")
      :format(P.quote(source), P.quote(log), env or "", P.quote(bin), args))
    local _, requests = P.slurp(log):gsub("\n", "")
    os.remove(log)
    return code, o, e, requests
  end

  it("needs the secret in the environment, not on the command line (a usage error, nothing sent)", function()
    local code, _, err, requests = run_named("calc Test", "env -u MXDEPLOY_WEBHOOK_SECRET")
    assert.are.equal(2, code, err)
    assert.matches("\non%-upload: set MXDEPLOY_WEBHOOK_SECRET to the webhook's validationSecret", err)
    assert.are.equal(0, requests)
    local c, _, e = require("process").run(("cd %q && %q scripts/on-upload.lua calc Test"):format(source, bin), { timeout = 10 })
    assert.are.equal(2, c, e)
  end)

  it("follows the script contract: mxdeploy run on-upload --help exits 0 and sends nothing", function()
    local code, out, err, requests = run_named("--help", "MXDEPLOY_WEBHOOK_SECRET=" .. SECRET)
    assert.are.equal(0, code, err)
    assert.matches("^Usage: mxdeploy run on%-upload ", out)
    assert.matches("%-%-once", out)
    assert.matches("MXDEPLOY_WEBHOOK_SECRET", out)
    assert.matches("Exit status: 0 success", out)
    assert.are.equal(0, requests, "--help sent a request")
  end)

  it("refuses an unknown flag or a bad port: exit 2, one line, nothing sent", function()
    for _, args in ipairs({ "--force calc Test", "--port 70000 calc Test", "--port x calc Test", "calc" }) do
      local code, out, err, requests = run_named(args, "MXDEPLOY_WEBHOOK_SECRET=" .. SECRET)
      assert.are.equal(2, code, args .. ": " .. err)
      assert.are.equal("", out, args)
      assert.matches("\non%-upload: [^\n]+ %(see %-%-help%)\n$", err, nil, args)
      assert.are.equal(0, requests, args)
    end
  end)
end)
