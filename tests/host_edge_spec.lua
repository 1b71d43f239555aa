-- Edge cases of the host (scheduler, HTTP transport, JSON) found in review; each guards a fix.
local core = require("mxdeploy.core")
local json = require("mxdeploy.json")
local S = require("sandbox")

describe("http edge cases", function()
  local sb
  setup(function() sb = S.start({ time_scale = 0.001 }) end)
  teardown(function() sb:stop() end)

  it("lets a progress callback cancel the task whose transfer it reports", function()
    local t
    local calls = 0
    t = core.spawn(function()
      return core.http({ url = sb.url .. "/deploy/api/1/apps", on_progress = function()
        calls = calls + 1
        t:cancel()
      end })
    end)
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.are.equal("cancelled", err.kind)
    assert.is_true(calls >= 1)
    -- the transfer is gone and the loop still works
    for _, p in ipairs(core.pending()) do assert.are_not.equal(t.id, p.task) end
    local resp = core.http({ url = sb.url .. "/deploy/api/1/apps", timeout = 10 })
    assert.are.equal(401, resp.status)
  end)
end)
