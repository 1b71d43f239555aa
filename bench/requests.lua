-- Bench (c): N concurrent API calls against the in-process sandbox.
-- Usage: mxdeploy bench/requests.lua [N]
-- N tasks each call c.v1.list_apps() (bindings, retry policy, JSON decoding, curl multi) at once.
-- The sandbox runs in a thread of this same process, so the peak RSS includes it.
local B = dofile((arg[0]:match("^(.*/)") or "./") .. "lib.lua")
local N = tonumber(arg[1]) or 500
local name = ("requests %d"):format(N)

local sb = require("mxdeploy.sandboxctl").start{ time_scale = 0.001 }
assert(sb.url:match("^http://127%.0%.0%.1:"), sb.url)
local c = mx.sandbox_client(sb, { retry = false, timeout = 60 })
c.v1.list_apps() -- warm up: one connection, the sandbox's Lua state

local t0 = mx.now()
local tasks = {}
for i = 1, N do
  tasks[i] = mx.spawn(function()
    local ok, r = pcall(c.v1.list_apps)
    if not ok then return false, tostring(r) end
    return type(r) == "table"
  end)
end
local errors, first = 0, nil
for i = 1, N do
  local ok, why = tasks[i]:wait()
  if not ok then
    errors = errors + 1
    first = first or why
  end
end
local elapsed = mx.now() - t0
local hwm = B.status_kb("VmHWM")
sb:stop()

if first then io.stderr:write("first error: ", first, "\n") end
B.row(name, "errors", errors, "0", errors == 0)
B.row(name, "requests/second", ("%.0f"):format(N / elapsed), nil, nil)
B.row(name, "wall time", ("%.0f ms"):format(elapsed * 1000), nil, nil)
B.row(name, "peak RSS incl. sandbox (VmHWM)", B.mb(hwm), nil, nil)
