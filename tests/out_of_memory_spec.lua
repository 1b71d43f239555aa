-- A failed allocation fails the request with one line (it called abort(): exit 134 and a core dump
-- holding the API key), and no core dump is written once credentials are held.
local BIN = os.getenv("MXDEPLOY_BIN")
local sanitized = os.getenv("MXDEPLOY_SANITIZED") == "ON"

local P = require("process")

-- Runs `sh -c '<limits>; mxdeploy <script>'`; returns how it ended, its code, stdout, stderr.
local function run_limited(limits, script_text)
  local script, out, err = P.tmpfile(script_text), os.tmpname(), os.tmpname()
  local _, how, code = os.execute(("sh -c '%s; exec %q %q' > %q 2> %q < /dev/null"):format(limits, BIN, script, out, err))
  local o, e = P.slurp(out), P.slurp(err)
  os.remove(script); os.remove(out); os.remove(err)
  return how, code, o, e
end

describe("out of memory", function()
  it("a response too big for the address space fails the request with one line, no abort", function()
    if sanitized then
      pending("the sanitizers reserve terabytes of address space: ulimit -v cannot apply")
      return
    end
    local sb = require("mxdeploy.sandboxctl").start{ time_scale = 0.001,
      faults = { { route = "GET /deploy/api/1/apps", body = string.rep("x", 96 * 1024 * 1024) } } }
    finally(function() sb:stop() end)
    local how, code, out, err = run_limited("ulimit -v 160000", ([[
      local core = require("mxdeploy.core")
      local creds = core.credentials{username = %q, apikey = %q}
      -- a cap above the address space limit: the allocation fails before the cap is reached
      local r, e = core.http{url = %q, auth = creds, auth_scheme = "apikey", max_response_size = 1e9}
      if not r then error(e) end
      print("got " .. #r.body .. " bytes")
    ]]):format(sb.username, sb.apikey, sb.url .. "/deploy/api/1/apps"))
    assert.are.equal("exit", how, "killed by signal " .. tostring(code) .. ": " .. err)
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.are.equal("mxdeploy: network: not enough memory for the response\n", err)
    assert.is_nil(err:find(sb.apikey, 1, true))
  end)

  it("Lua running out of memory in a script is one line too", function()
    if sanitized then
      pending("the sanitizers reserve terabytes of address space: ulimit -v cannot apply")
      return
    end
    local how, code, _, err = run_limited("ulimit -v 160000", "local s = string.rep('x', 500000000)")
    assert.are.equal("exit", how)
    assert.are.equal(1, code)
    assert.are.equal("mxdeploy: not enough memory\n", err)
  end)

  -- The receiver built the delivery's Lua table while holding its lock: a memory error there
  -- left the lock held, and the next call on the receiver (or its connection thread) hung.
  it("a webhook delivery too big for the memory left is an error, and the receiver still closes", function()
    if sanitized then
      pending("the sanitizers reserve terabytes of address space: an address space limit cannot apply")
      return
    end
    local script = P.tmpfile([[
      local core = require("mxdeploy.core")
      local function status(field)
        local f = assert(io.open("/proc/self/status"))
        local v = tonumber(f:read("a"):match(field .. ":%s*(%d+)"))
        f:close()
        return v
      end
      local pid = status("Pid")
      local srv = core.webhook_listen{ address = "127.0.0.1", port = 0, max_body = 256 * 1024 * 1024 }
      local body = os.tmpname()
      local f = assert(io.open(body, "wb"))
      local mib = string.rep("x", 1024 * 1024)
      for _ = 1, 96 do f:write(mib) end
      f:close()
      local rss0 = status("VmRSS")
      os.execute(("curl -s -o /dev/null --max-time 30 --data-binary @%s http://127.0.0.1:%d/hook &"):format(body, srv:port()))
      -- the receiver's thread holds the whole body once the resident size has grown by it
      local deadline = core.now() + 20
      while status("VmRSS") < rss0 + 90 * 1024 do
        assert(core.now() < deadline, "the delivery never arrived")
        core.sleep(0.05)
      end
      os.remove(body)
      core.sleep(0.2)
      collectgarbage("collect")
      -- room for small allocations, not for another copy of the body
      local limit = (status("VmSize") + 32 * 1024) * 1024
      assert(os.execute(("prlimit --pid %d --as=%d:unlimited"):format(pid, limit)))
      local ok, e = pcall(srv.next, srv, 1)
      assert(os.execute(("prlimit --pid %d --as=unlimited:unlimited"):format(pid)))
      print(ok, tostring(e):match("not enough memory") ~= nil)
      srv:close()
      print("closed")
    ]])
    local code, out, err = P.run(("%q %q"):format(BIN, script)) -- bounded: the hang fails it
    os.remove(script)
    assert.are.equal(0, code, err)
    assert.are.equal("false\ttrue\nclosed\n", out)
  end)

  it("writes no core dump once credentials are held", function()
    local how, code, out, err = run_limited("ulimit -c unlimited", [[
      local core = require("mxdeploy.core")
      local function core_limit()
        local f = assert(io.open("/proc/self/limits"))
        local s = f:read("a")
        f:close()
        return s:match("Max core file size%s+(%S+)")
      end
      local before = core_limit()
      core.credentials{username = "u@example.com", apikey = "k"}
      print(before, core_limit())
    ]])
    assert.are.equal("exit", how, err)
    assert.are.equal(0, code, err)
    -- (AddressSanitizer sets the limit to 0 itself at startup)
    assert.are.equal((sanitized and "0" or "unlimited") .. "\t0\n", out)
  end)
end)
