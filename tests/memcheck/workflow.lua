-- Run under valgrind memcheck by ctest (memcheck_workflow): concurrent requests, a cancelled
-- task, a timeout, a job waited to the end, a redirect, a streamed download, JSON round trips, and
-- a deeply nested table copied into the sandbox from a task's small stack (it wrote past it).
local core = require("mxdeploy.core")
local json = require("mxdeploy.json")
local sb = require("mxdeploy.sandboxctl").start{ time_scale = 0.001 }
mx.use_sandbox(sb)

local tasks = {}
for i = 1, 20 do tasks[i] = mx.spawn(function() return #mx.v1.list_apps() end) end
for i = 1, 20 do assert(tasks[i]:wait() > 0) end

local sleeper = mx.spawn(mx.sleep, 10)
mx.sleep(0.01)
assert(sleeper:cancel())
assert(not pcall(mx.timeout, 0.05, mx.sleep, 1))

local job = mx.v1.start_environment("calc", "Test", { AutoSyncDb = true })
assert(job:wait{ timeout = 30 }.Status == "Started")

local creds = core.credentials{ token = sb.token }
local resp = assert(core.http{ method = "POST", auth = creds, auth_scheme = "token",
  url = sb.url .. "/privatecloud/api/v4/cli/2.9.0?os=linux&architecture=x86" })
assert(resp.status == 200 and resp.redirects == 1)

local out = os.tmpname()
assert(mx.v1.download_app_logs("calc", "Test", "2024-01-31", out) == out)
os.remove(out)

local text = '{"a":[],"b":{},"c":null,"d":[1,[],{"e":null}],"n":12345678901234567}'
assert(json.encode(json.decode(json.encode(json.decode(text)))):find('"a":[]', 1, true))
local function nested(n)
  local t = { leaf = true }
  for i = 1, n do t = { ["level" .. i] = t, other = { i, i + 1 } } end
  return t
end
assert(mx.spawn(function() return pcall(sb.configure, sb, { durations = { deep = nested(40) } }) end):wait())
sb:stop()
print("memcheck workflow ok")
