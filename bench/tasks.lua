-- Bench (b): N concurrent sleeping tasks. Usage: mxdeploy bench/tasks.lua [N] [sleep_seconds]
-- Measures the resident memory the waiting tasks add (bytes per task), the peak RSS of the
-- process, and the time to spawn N tasks and collect them all (minus the sleep itself).
local B = dofile((arg[0]:match("^(.*/)") or "./") .. "lib.lua")
local N = tonumber(arg[1]) or 10000
local SLEEP = tonumber(arg[2]) or 1
local name = ("tasks %dk"):format(N // 1000)

collectgarbage()
collectgarbage()
local rss0 = B.status_kb("VmRSS")
local lua0 = collectgarbage("count")
local t0 = mx.now()
local tasks = {}
local function sleeper() mx.sleep(SLEEP) return true end
for i = 1, N do tasks[i] = mx.spawn(sleeper) end
local t_spawn = mx.now() - t0
mx.sleep(0) -- let every task run up to its sleep
local rss_waiting = B.status_kb("VmRSS")
local lua_kb = collectgarbage("count") - lua0
local waiting = 0
for i = 1, N do
  if tasks[i]:status() == "waiting" then waiting = waiting + 1 end
end
assert(waiting == N, ("only %d of %d tasks are waiting"):format(waiting, N))
for i = 1, N do assert(tasks[i]:wait() == true) end
local elapsed = mx.now() - t0
local hwm = B.status_kb("VmHWM")

local per_task = (rss_waiting - rss0) * 1024 / N
B.row(name, "bytes per sleeping task (RSS delta)", ("%.0f B"):format(per_task), "< 2048 B", per_task < 2048)
B.row(name, "Lua heap per task", ("%.0f B"):format(lua_kb * 1024 / N), nil, nil)
B.row(name, "peak RSS (VmHWM)", B.mb(hwm), N <= 10000 and "< 64 MB" or nil,
  N <= 10000 and hwm < 64 * 1024 or nil)
B.row(name, "spawn time", ("%.1f ms"):format(t_spawn * 1000), nil, nil)
B.row(name, "scheduling overhead (total - sleep)", ("%.1f ms"):format((elapsed - SLEEP) * 1000), nil, nil)
