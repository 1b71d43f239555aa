-- Bench (e): N Private Cloud build jobs started and waited on at once with mx.wait_all.
-- Usage: mxdeploy bench/jobs.lua [N]
-- The sandbox runs at time_scale 0.001 (a 6 s simulated build takes 6 ms); the jobs poll every
-- 50 ms, so N jobs make many requests while all wait together. The CPU time of the main thread
-- (the client) and of the other threads (the in-process sandbox) is compared.
local B = dofile((arg[0]:match("^(.*/)") or "./") .. "lib.lua")
local N = tonumber(arg[1]) or 1000
local name = ("jobs %d"):format(N)
local PC_APP = "c533ee0b-f7db-4e62-868b-1192d392ccec"

local sb = require("mxdeploy.sandboxctl").start{ time_scale = 0.001 }
assert(sb.url:match("^http://127%.0%.0%.1:"), sb.url)
local c = mx.sandbox_client(sb, { poll_interval = 0.05 })

local cpu_total0, cpu_main0 = B.cpu_seconds()
local t0 = mx.now()
local jobs = {}
for i = 1, N do
  jobs[i] = c.pcbuild.build_package(PC_APP, { branch = "main", revision = "r" .. i })
end
local t_start = mx.now() - t0
local t1 = mx.now()
local results = mx.wait_all(jobs, { timeout = 120, interval = 0.05 })
local t_wait = mx.now() - t1
local hwm = B.status_kb("VmHWM")
local cpu_total, cpu_main = B.cpu_seconds()
local client_cpu, sandbox_cpu = cpu_main - cpu_main0, (cpu_total - cpu_total0) - (cpu_main - cpu_main0)
local done = 0
for i = 1, N do
  if results[i] and results[i].status == "finished" and jobs[i].state == "done" then done = done + 1 end
end
local polls = 0
for i = 1, N do polls = polls + (jobs[i].polls or 0) end
sb:stop()

B.row(name, "jobs finished", ("%d/%d"):format(done, N), tostring(N), done == N)
B.row(name, "start (sequential POSTs)", ("%.0f ms"):format(t_start * 1000), nil, nil)
B.row(name, "wait_all until all done", ("%.0f ms"):format(t_wait * 1000), nil, nil)
B.row(name, "status polls", polls, nil, nil)
B.row(name, "peak RSS incl. sandbox (VmHWM)", B.mb(hwm), nil, nil)
-- issue 9: the sandbox must not be the bottleneck of a fleet rehearsal
B.row(name, "CPU: client (main thread) / sandbox (its threads)",
  ("%.2f s / %.2f s"):format(client_cpu, sandbox_cpu), "sandbox < client", sandbox_cpu < client_cpu)
