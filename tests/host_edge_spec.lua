-- Edge cases of the host (scheduler, HTTP transport, JSON) found in review; each guards a fix.
local core = require("mxdeploy.core")
local json = require("mxdeploy.json")
local S = require("sandbox")

describe("scheduler edge cases", function()
  it("cancels a task that only yields (coroutine.yield) to let others run", function()
    local t = core.spawn(function()
      while true do coroutine.yield() end
    end)
    core.sleep(0.01)
    assert.is_true(t:cancel())
    assert.are.equal(1, core.wait_any({ t }, 5), "the cancellation was ignored")
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.are.equal("cancelled", err.kind)
    assert.are.equal("cancelled", t:status())
    t = nil
  end)

  it("fails tasks that wait on each other with a deadlock error instead of hanging", function()
    -- in a child process: a scheduler that missed the deadlock would hang this spec (any timer
    -- set here to bound the wait would itself keep the loop alive); process.run bounds it instead
    local P = require("process")
    local script = "local a, b; a = mx.spawn(function() mx.sleep(0); return b:wait() end); "
      .. "b = mx.spawn(function() mx.sleep(0); return a:wait() end); "
      .. "local ok, e = pcall(a.wait, a); print(ok, e.kind, tostring(e))"
    local code, out, err = P.run(("%q -e %q"):format(os.getenv("MXDEPLOY_BIN"), script), { timeout = 10 })
    assert.are.equal("false\tdeadlock\tdeadlock error: every task is waiting for another task\n", out, err)
    assert.are.equal(1, code, err) -- the other task failed too, and nobody waited for it
  end)

  it("keeps coroutine.yield/resume values in user coroutines", function()
    local co = coroutine.create(function(a)
      local b, c = coroutine.yield(a + 1, false)
      return b, c
    end)
    assert.are.same({ true, 2, false }, { coroutine.resume(co, 1) })
    assert.are.same({ true, false, "x" }, { coroutine.resume(co, false, "x") })
  end)

  it("survives a task failing with an error object whose __index raises", function()
    local obj = setmetatable({}, { __index = function() error("no such field") end })
    local t = core.spawn(function() error(obj) end)
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.are.equal(obj, err)
    assert.are.equal("failed", t:status())
  end)

  it("sleeps for math.huge until cancelled", function()
    local t = core.spawn(core.sleep, math.huge)
    assert.is_nil(core.wait_any({ t }, 0.01))
    t:cancel()
    assert.are.equal(1, core.wait_any({ t }, math.huge))
    assert.are.equal("cancelled", t:status())
  end)
end)

describe("http edge cases", function()
  local sb
  setup(function() sb = S.start({ time_scale = 0.001 }) end)
  teardown(function() sb:stop() end)

  it("lets a progress callback cancel the task whose transfer it reports", function()
    local t
    local calls = 0
    t = core.spawn(function()
      return core.http({ url = sb.bases["deploy-v1"] .. "/apps", on_progress = function()
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
    local resp = core.http({ url = sb.bases["deploy-v1"] .. "/apps", timeout = 10 })
    assert.are.equal(401, resp.status)
  end)

  it("accepts math.huge as a timeout and refuses NaN", function()
    local resp = core.http({ url = sb.bases["deploy-v1"] .. "/apps", timeout = math.huge,
      connect_timeout = math.huge, low_speed_time = math.huge, max_redirects = math.huge })
    assert.are.equal(401, resp.status)
    assert.has_error(function() core.http({ url = sb.url, timeout = 0 / 0 }) end)
  end)

  it("answers 500 when a sandbox route returns a status that is not an integer", function()
    -- was luaL_optinteger outside the sandbox's pcall: a Lua panic aborted the whole process
    sb:configure({ faults = { { route = "GET /deploy/api/1/apps", redirect = "files", status = 302.5 } } })
    local resp = core.http({ url = sb.bases["deploy-v1"] .. "/apps", timeout = 10 })
    sb:configure({ faults = {} })
    assert.are.equal(500, resp.status)
  end)
end)

describe("credentials file", function()
  -- read through a stdio buffer of our own that is wiped afterwards (glibc's would be freed holding
  -- every profile's secrets); these guard that path
  local path = os.tmpname()
  teardown(function() os.remove(path) end)

  local function write(text)
    local f = assert(io.open(path, "w"))
    f:write(text)
    f:close()
    os.execute("chmod 600 " .. path)
  end

  it("reads the chosen profile of a file larger than one buffer", function()
    local lines = { "[other]", "apikey = other-key" }
    for i = 1, 400 do lines[#lines + 1] = "# filler line " .. i .. string.rep("x", 20) end
    lines[#lines + 1] = "[ci]"
    lines[#lines + 1] = "username = ci@example.com"
    lines[#lines + 1] = "apikey = ci-key"
    write(table.concat(lines, "\n") .. "\n")
    local c = core.credentials({ file = path, profile = "ci" })
    assert.is_true(c:has("apikey"))
    assert.is_false(c:has("token"))
    assert.is_nil(tostring(c):find("ci-key", 1, true))
  end)

  it("reports a malformed line by its number, never its content", function()
    write("[ci]\nusername = u\nsecret-without-equals\n")
    local ok, err = pcall(core.credentials, { file = path, profile = "ci" })
    assert.is_false(ok)
    assert.matches(":3: expected key = value", err)
    assert.is_nil(err:find("secret-without-equals", 1, true))
  end)
end)

describe("json edge cases", function()
  it("encodes a string holding an escaped quote before the placeholder bytes exactly", function()
    local v = { n = 1, s = 'x"\1mx:evil\1' }
    local out = json.encode(v)
    local back = json.decode(out)
    assert.are.equal(v.s, back.s)
    assert.are.equal(1, back.n)
  end)

  it("encodes empty arrays as [] wherever they are, and null as null", function()
    assert.are.equal("[]", json.encode(json.array()))
    assert.are.equal('{"list":[]}', json.encode({ list = json.array() }))
    assert.are.equal('[[],null,3]', json.encode(json.array({ json.array(), json.null, 3 })))
    local back = json.decode(json.encode(json.decode('{"a":[],"b":{}}'))) -- a read-modify-write
    assert.is_true(json.is_array(back.a))
    assert.is_false(json.is_array(back.b))
  end)

  it("reads decimals as floats and only integer literals as integers", function()
    local v = json.decode('{"f":1.5,"g":-0.25,"e":1e3,"n":-7,"list":[2.5,3]}')
    assert.are.equal(1.5, v.f)
    assert.are.equal(-0.25, v.g)
    assert.are.equal(1000, v.e)
    assert.are.equal("float", math.type(v.e))
    assert.are.equal(-7, v.n)
    assert.are.equal("integer", math.type(v.n))
    assert.are.same({ 2.5, 3 }, { v.list[1], v.list[2] })
    assert.are.equal("integer", math.type(v.list[2]))
    assert.are.equal(0.5, json.decode("0.5"))
  end)

  it("encodes a key that starts with the bytes the cjson layer once reserved exactly", function()
    local back = json.decode(json.encode({ n = 1, ["\1mx:1\1"] = 2 }))
    assert.are.same({ n = 1, ["\1mx:1\1"] = 2 }, back)
  end)

  it("raises instead of crashing on a cyclic table", function()
    local t = { 1 }
    t.self = t
    local ok, err = pcall(json.encode, t)
    assert.is_false(ok)
    assert.matches("cycle", err)
  end)

  it("keeps the last of duplicate keys without mixing in the earlier values", function()
    local t = json.decode('{"a":{"x":1},"a":{"y":2}}')
    assert.are.same({ y = 2 }, t.a)
    local u = json.decode('{"a":[7],"a":{"y":2}}')
    assert.is_false(json.is_array(u.a))
    assert.is_nil(u.a[1])
    local w = json.decode('{"a":{"n":1.5},"a":{"n":12345678901234567}}')
    assert.are.equal(12345678901234567, w.a.n)
    assert.is_true(math.type(w.a.n) == "integer")
  end)
end)
