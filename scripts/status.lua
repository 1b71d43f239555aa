-- Status of every environment of every app you can see, fetched concurrently.
--
--   mxdeploy run status                 a table on stdout; failures on stderr (exit 3)
--   mxdeploy --json run status          one JSON document
local steps = require("mxdeploy.steps")

steps.script{
  name = "status",
  description = "Status of every environment of every app, fetched concurrently",
  requires = ">= 0.2",
  epilog = "An app whose environments cannot be read is reported on stderr; the exit status is\n"
    .. "then 3 (the others are still shown).",
  arguments = function(p)
    p:option("--concurrency", "Apps read at the same time", "16"):convert(function(v)
      local n = math.tointeger(tonumber(v))
      if not n or n < 1 then return nil, "--concurrency needs a positive integer" end
      return n
    end)
  end,
  run = function(args, s)
    local started = mx.now()
    local apps = mx.v1.list_apps()
    if not mx.json.is_array(apps) then -- null or an object: not the list the API answers
      s.fail("unexpected answer to GET /apps (expected a JSON array, got %s)",
        (mx.json.encode(apps):sub(1, 80):gsub("%s+", " ")))
    end
    local results, failures = s.map(apps, function(app)
      local envs = mx.v1.list_environments(app.AppId)
      if not mx.json.is_array(envs) then error("unexpected answer (expected a JSON array of environments)", 0) end
      return envs
    end, { concurrency = args.concurrency })

    local out = {}
    if not s.json then
      s.print("%-12s %-12s %-10s %-14s %s", "APP", "ENVIRONMENT", "STATUS", "MODEL", "URL")
    end
    for i, app in ipairs(apps) do
      local envs = results[i]
      if envs then
        local list = mx.array()
        for _, e in ipairs(envs) do
          local model = e.ModelVersion
          if model == mx.null or model == nil then model = "-" end
          if not s.json then
            s.print("%-12s %-12s %-10s %-14s %s", app.AppId, tostring(e.Mode), tostring(e.Status), tostring(model), tostring(e.Url))
          end
          list[#list + 1] = { mode = e.Mode, status = e.Status, model_version = e.ModelVersion, url = e.Url }
        end
        out[#out + 1] = { app = app.AppId, environments = list }
      end
    end
    local failed = mx.array()
    for _, f in ipairs(failures) do
      s.warn("status: %s: %s", tostring(f.item.AppId), tostring(f.error))
      failed[#failed + 1] = { app = f.item.AppId, error = tostring(f.error) }
    end
    s.log("done", "%d apps in %.2fs%s", #apps, mx.now() - started,
      #failures > 0 and (", " .. #failures .. " could not be read") or "")
    return { apps = mx.array(out), failed = failed }, #failures > 0 and steps.EXIT.partial or 0
  end,
}
