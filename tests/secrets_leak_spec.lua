-- Secrets through the newer paths (review of the transport hardening and the newer APIs): a
-- password in a base URL, a signed URL in a redirect, a webhook's validationSecret must not reach
-- mx.pending(), a trace or the sandbox's request log. Real servers on 127.0.0.1: the hostile
-- server (tests/support/hostile.c) and the sandbox.
local mx = require("mxdeploy")
local core = require("mxdeploy.core")
local request = require("mxdeploy.request")
local hostile = require("hostile")
local P = require("process")
local S = require("sandbox")

local WEBHOOK_SECRET = "whsec_Q0FGRUJBQkVkZWFkYmVlZjAxMjM0NTY3ODlhYmNkZWY="

-- Runs a Lua script in a child mxdeploy (its stderr is what a user would see); returns exit code
-- and stdout..stderr.
local function run(source)
  local script = P.tmpfile(source)
  local code, out = P.run(("timeout 60 %s %s"):format(P.quote(P.BIN), P.quote(script)), { merge = true })
  os.remove(script)
  return code, out
end

describe("secrets", function()
  local h
  setup(function() h = hostile.start() end)
  teardown(function() h:stop() end)

  it("a password in a base URL is not in what a task waits on (rate budget)", function()
    local base = h.url:gsub("^http://", "http://someone:RateBudgetPw42@") .. "/ok"
    local c = mx.connect{ token = "SECRET-TOKEN-5678", retry = false, base_urls = { webhooks = base },
      rate = { requests = 1, per = 30 } }
    local first = mx.spawn(function() return c.webhooks.list_webhooks(S.PROJECT) end)
    first:wait()
    local second = mx.spawn(function() return c.webhooks.list_webhooks(S.PROJECT) end)
    mx.sleep(0.2)
    local shown = {}
    for _, p in ipairs(mx.pending()) do shown[#shown + 1] = tostring(p.what) end
    second:cancel()
    pcall(second.wait, second)
    local text = table.concat(shown, "\n")
    assert.matches("rate budget of http://127%.0%.0%.1:%d+", text) -- the wait is described
    assert.is_nil(text:lower():find("ratebudgetpw42", 1, true))
    assert.is_nil(text:find("someone", 1, true))
  end)

  it("--trace=headers redacts a redirect's Location (a signed URL's secrets)", function()
    local to = h.url .. "/ok/file?X-Amz-Signature=LocSig0123456&token=LocTok0123456#access_token=LocFrag0123"
    local code, out = run(([[
      local core = require("mxdeploy.core")
      local r = assert(core.http{ url = %q, trace = "headers", timeout = 20 })
      print("status", r.status, r.redirects)
    ]]):format(h.url .. "/redirect/x?s=302&to=" .. request.escape(to)))
    assert.are.equal(0, code, out)
    assert.matches("status\t200\t1", out)
    assert.matches("< [Ll]ocation: http://127%.0%.0%.1:%d+/ok/file%?X%-Amz%-Signature=%*%*%*&token=%*%*%*#%*%*%*", out)
    -- (the first request's own query carries the target as to=..., a name that is no secret)
    local hop2 = {}
    for line in out:gmatch("[^\n]+") do
      if line:find("^%[http #%d+%] < [Ll]ocation") or line:find("/ok/file", 1, true) then hop2[#hop2 + 1] = line end
    end
    assert.is_true(#hop2 >= 3, out)
    for _, line in ipairs(hop2) do
      assert.is_nil(line:find("LocSig", 1, true), line)
      assert.is_nil(line:find("LocTok", 1, true), line)
      assert.is_nil(line:find("LocFrag", 1, true), line)
    end
  end)

  it("a secret query value is redacted however long its parameter's name", function()
    local name = ("x"):rep(70) .. "_token" -- the name was cut to 63 bytes before the words were sought
    local code, out = run(([[
      local core = require("mxdeploy.core")
      local mx = require("mxdeploy")
      local r = assert(core.http{ url = %q, trace = "exchanges", timeout = 20 })
      local _, e = pcall(mx.request, { url = %q, retry = false, timeout = 5 })
      print("status", r.status, tostring(e))
    ]]):format(h.url .. "/ok/x?" .. name .. "=LongNameSecret99", "http://127.0.0.1:1/x?" .. name .. "=LongNameSecret99"))
    assert.are.equal(0, code, out)
    assert.matches("status\t200", out)
    assert.matches(name .. "=%*%*%*", out)
    assert.is_nil(out:find("LongNameSecret99", 1, true), out)
  end)

  it("a URL without a path does not go whole into the retry trace lines", function()
    local url = h.url:gsub("^http://", "http://someone:NoPathPw55@") .. "?token=NoPathTok55"
    local code, out = run(([[
      local mx = require("mxdeploy")
      local ok, e = pcall(mx.request, { url = %q, trace = "exchanges", timeout = 10,
        retry = { max_retries = 1, base_delay = 0.01 } })
      print("result", ok, e and e.kind)
    ]]):format(url))
    assert.are.equal(0, code, out)
    assert.matches("result\t", out)
    assert.matches("retrying GET / ", out) -- the line that printed the whole URL
    assert.is_nil(out:find("NoPathPw55", 1, true), out)
    assert.is_nil(out:find("NoPathTok55", 1, true), out)
  end)

  it("--trace=body does not print a webhook's validationSecret or custom header values, sent or received", function()
    local code, out = run(([[
      local mx = require("mxdeploy")
      local sb = require("mxdeploy.sandboxctl").start{ time_scale = 0.001 }
      local c = mx.use_sandbox(sb)
      mx.configure{ trace = "body" }
      local ok, err = pcall(function()
        local hook = c.webhooks.create_webhook(%q, { name = "x", url = "http://127.0.0.1:9/hook",
          eventTypes = { "package.uploaded" }, isActive = true, validationSecret = %q,
          headers = { { key = "Authorization", value = "Bearer HdrS3cretXyz" }, { key = "X-Team", value = "TeamS3cret42" } } })
        local got = c.webhooks.get_webhook(%q, hook.id)
        print("same secret", got.validationSecret == %q)
      end)
      sb:stop()
      assert(ok, err)
    ]]):format(S.PROJECT, WEBHOOK_SECRET, S.PROJECT, WEBHOOK_SECRET))
    assert.are.equal(0, code, out)
    assert.matches("same secret\ttrue", out) -- the caller still gets it
    assert.matches('> body: {.*"validationSecret":"%*%*%*"', out)
    assert.matches('< body %(%d+ bytes%): {.*"validationSecret":"%*%*%*"', out)
    assert.is_nil(out:find("Q0FGRUJBQkVk", 1, true), out)
    assert.is_nil(out:find("HdrS3cretXyz", 1, true), out)
    assert.is_nil(out:find("TeamS3cret42", 1, true), out)
    assert.matches('"key":"Authorization"', out) -- the names stay readable
  end)

  it("the sandbox's request log does not keep a webhook's validationSecret or custom header values", function()
    local sb = S.start()
    local ok, err = pcall(function()
      local c = mx.sandbox_client(sb, { retry = false })
      c.webhooks.create_webhook(S.PROJECT, { name = "x", url = "http://127.0.0.1:9/hook",
        eventTypes = { "package.uploaded" }, isActive = true, validationSecret = WEBHOOK_SECRET,
        headers = { { key = "Authorization", value = "Bearer HdrS3cretXyz" } } })
      local logged
      for _, r in ipairs(sb:requests()) do
        if r.method == "POST" and r.path:find("/webhooks$") then logged = r end
      end
      assert.is_not_nil(logged)
      assert.matches('"validationSecret":"<redacted>"', logged.body)
      assert.matches('"name":"x"', logged.body) -- the rest as sent
      assert.is_nil(logged.body:find("Q0FGRUJBQkVk", 1, true))
      assert.is_nil(logged.body:find("HdrS3cretXyz", 1, true), logged.body)
      assert.matches('"key":"Authorization"', logged.body)
    end)
    sb:stop()
    assert(ok, err)
  end)
  -- a "headers" array nested in a header object ended the outer one's redaction when it closed:
  -- every "value" after it (in that object and the ones that follow) went out readable
  it("a headers array nested in a header object does not end the outer one's redaction (trace and request log)", function()
    local code, out = run([[
      local mx = require("mxdeploy")
      local sb = require("mxdeploy.sandboxctl").start{ time_scale = 0.001 }
      mx.configure{ trace = "body" }
      pcall(mx.request, { method = "POST", url = sb.bases["deploy-v1"] .. "/apps", json = { headers = {
        { key = "X-A", value = "FirstS3cretAbc", headers = { { key = "X-Inner" } } },
        { key = "Authorization", value = "Bearer NestedS3cretXyz" } } } })
      mx.configure{ trace = false }
      for _, r in ipairs(sb:requests()) do print("logged", r.body) end
      sb:stop()
    ]])
    assert.are.equal(0, code, out)
    assert.matches("> body: {", out)
    assert.matches('logged\t{.*"key":"Authorization"', out) -- the names stay readable
    assert.is_nil(out:find("FirstS3cretAbc", 1, true), out)
    assert.is_nil(out:find("NestedS3cretXyz", 1, true), out)
  end)
end)
