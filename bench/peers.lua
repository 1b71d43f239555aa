-- The mxdeploy side of bench/peers (one measurement per run; bench/peers times the process,
-- interleaves it with the same work done by curl, and computes the ratios).
-- Usage: mxdeploy bench/peers.lua MODE ARGS...
--   request URL N TASKS     N GETs of URL?n=i spread over TASKS tasks, each reads `.json`
--   operation BASE N TASKS  the same through c.v1.list_environments("app") with base_urls.v1 = BASE
--   download URL OUT        one GET with output = OUT
--   upload URL FILE         one multipart POST of FILE (field "file")
-- Exits non-zero (with a message) when any request failed or answered something unexpected.
local mode = arg[1]

local function run_tasks(n, tasks, one)
  local next_i, failed = 0, nil
  local list = {}
  for t = 1, math.min(tasks, n) do
    list[t] = mx.spawn(function()
      while next_i < n do
        next_i = next_i + 1
        local ok, why = pcall(one, next_i)
        if not ok then failed = failed or tostring(why) end
      end
    end)
  end
  mx.wait_all(list)
  if failed then error(failed, 0) end
end

if mode == "request" then
  local url, n, tasks = arg[2], tonumber(arg[3]), tonumber(arg[4])
  run_tasks(n, tasks, function(i)
    local r = mx.request{ url = url .. "?n=" .. i, retry = false }
    assert(type(r.json) == "table" and #r.json > 0, "no JSON array decoded")
  end)
elseif mode == "operation" then
  local base, n, tasks = arg[2], tonumber(arg[3]), tonumber(arg[4])
  local c = mx.connect{ base_urls = { v1 = base }, username = "bench", apikey = "bench", retry = false }
  run_tasks(n, tasks, function()
    local envs = c.v1.list_environments("app")
    assert(type(envs) == "table" and #envs > 0, "no environments decoded")
  end)
elseif mode == "download" then
  local url, out = arg[2], arg[3]
  local r = mx.request{ url = url, output = out, retry = false }
  assert(r.status == 200, "status " .. tostring(r.status))
elseif mode == "upload" then
  local url, file = arg[2], arg[3]
  local r = mx.request{ method = "POST", url = url, file = file, retry = false }
  assert(r.status < 300, "status " .. tostring(r.status))
else
  io.stderr:write("usage: mxdeploy bench/peers.lua request|operation|download|upload ARGS...\n")
  os.exit(2)
end
