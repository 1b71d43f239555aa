-- Status of every environment of every app you can see, fetched concurrently (one task per app).
--
--   mxdeploy scripts/status.lua            (MENDIX_USERNAME / MENDIX_APIKEY)
--   mxdeploy --sandbox scripts/status.lua

local mx = mx or require("mxdeploy")

local started = mx.now()
local apps = mx.v1.list_apps()
if not mx.json.is_array(apps) then -- null or an object: not the list the API answers
  io.stderr:write("status failed: unexpected answer to GET /apps (expected a JSON array, got ",
    (mx.json.encode(apps):sub(1, 80):gsub("%s+", " ")), ")\n")
  os.exit(1)
end

-- one task per app; they all wait on the network at the same time
local tasks = {}
for i, app in ipairs(apps) do
  tasks[i] = mx.spawn(function()
    local ok, envs = pcall(mx.v1.list_environments, app.AppId)
    if ok and not mx.json.is_array(envs) then
      ok, envs = false, "unexpected answer (expected a JSON array of environments)"
    end
    return { app = app, envs = ok and envs or nil, err = not ok and tostring(envs) or nil }
  end)
end
local results = mx.wait_all(tasks)

print(("%-12s %-12s %-10s %-14s %s"):format("APP", "ENVIRONMENT", "STATUS", "MODEL", "URL"))
for _, r in ipairs(results) do
  if r.err then
    print(("%-12s %s"):format(r.app.AppId, r.err))
  else
    for _, e in ipairs(r.envs) do
      local model = e.ModelVersion
      if model == mx.null or model == nil then model = "-" end
      print(("%-12s %-12s %-10s %-14s %s"):format(r.app.AppId, e.Mode, e.Status, model, e.Url))
    end
  end
end
print(("%d apps in %.2fs"):format(#apps, mx.now() - started))
