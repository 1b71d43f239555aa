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
