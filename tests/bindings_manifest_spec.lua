-- Read-modify-write of a Private Cloud manifest keeps `[]` and `null` exactly: what is sent back
-- is what was read plus the change.

local mx = require("mxdeploy")
local sandboxctl = require("mxdeploy.sandboxctl")

local APP = "c533ee0b-f7db-4e62-868b-1192d392ccec"
local NS = "db6ed4d3-8b6d-4c2b-ad2b-2a69d0f7afe0"

describe("manifest round trip", function()
  local sb, c
  setup(function()
    sb = sandboxctl.start{ time_scale = 0.001 }
    c = mx.sandbox_client(sb, { poll_interval = 0.01 })
  end)
  teardown(function() sb:stop() end)

  it("decoded results keep empty arrays and null distinguishable", function()
    local m = c.pc.get_namespace_environment(APP, NS, "pcenv01")
    local constants = m.environment.deployment.constants
    assert.is_true(mx.json.is_array(constants))
    assert.are.equal(0, #constants)
    assert.matches('"constants":%[%]', mx.json.encode(m))
    local v = mx.json.decode('{"a":null,"b":[],"c":{}}')
    assert.are.equal(mx.null, v.a)
    local again = mx.json.encode(v)
    assert.matches('"a":null', again)
    assert.matches('"b":%[%]', again)
    assert.matches('"c":{}', again)
  end)

  it("sends back exactly what it read plus the change", function()
    local before = c.pc.get_namespace_environment(APP, NS, "pcenv01")
    local expected = mx.json.decode(mx.json.encode(before))
    before.environment.container.instances = 2
    expected.environment.container.instances = 2
    sb:reset_log()
    local job = c.pc.update_namespace_environment(APP, NS, "pcenv01", before)
    local put = sb:requests()[1]
    assert.are.equal("PUT", put.method)
    assert.are.equal(#mx.json.encode(expected), put.body_size)
    job:wait{ timeout = 30 }
    local after = c.pc.get_namespace_environment(APP, NS, "pcenv01")
    assert.are.equal(2, after.environment.container.instances)
    assert.is_true(mx.json.is_array(after.environment.deployment.constants))
    assert.is_true(mx.json.is_array(after.environment.deployment.scheduledEvents))
  end)
end)
