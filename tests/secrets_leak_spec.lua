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

end)
