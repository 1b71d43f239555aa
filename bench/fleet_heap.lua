-- The memory of a task fleet (issue 9's 10,000-task row), measured where it peaks for live data:
-- N tasks each make one mx.request{url=} GET and mx.wait_all waits for them; once every task has
-- run up to its wait (64 transfers, the rest queued for a connection), two full collections, then
-- the Lua heap per task and the RSS. Usage: mxdeploy bench/fleet_heap.lua URL [N]
-- (URL: any local JSON answer, e.g. bench/peers' nginx; run it against 127.0.0.1 only).
local B = dofile((arg[0]:match("^(.*/)") or "./") .. "lib.lua")
local url, N = assert(arg[1], "usage: mxdeploy bench/fleet_heap.lua URL [N]"), tonumber(arg[2]) or 10000
collectgarbage()
collectgarbage()
local lua0 = collectgarbage("count")
local list = {}
for t = 1, N do
  list[t] = mx.spawn(function()
    local r = mx.request{ url = url .. "?n=" .. t, retry = false }
    assert(type(r.json) == "table", "no JSON decoded")
  end)
end
local waiter = mx.spawn(mx.wait_all, list)
mx.sleep(0) -- every task runs up to its request's wait
collectgarbage()
collectgarbage()
local per_task = (collectgarbage("count") - lua0) * 1024 / N
local name = ("fleet %dk"):format(N // 1000)
B.row(name, "Lua heap per queued request (all queued, full GC)", ("%.0f B"):format(per_task), nil, nil)
waiter:wait()
local hwm = B.status_kb("VmHWM")
if N <= 10000 then
  B.row(name, "peak RSS (VmHWM)", B.mb(hwm), "<= 64 MB", hwm <= 64 * 1024)
else
  B.row(name, "peak RSS (VmHWM)", B.mb(hwm), nil, nil)
end
