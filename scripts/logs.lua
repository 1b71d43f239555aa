-- Download an environment's app logs (or access logs) for a range of days: one file per day in
-- DIR, several days at once, each written atomically (a temporary file renamed when complete),
-- days already in DIR skipped, so a rerun after an interruption resumes where it stopped.
--
--   mxdeploy run logs APP MODE --from 2026-11-01 --to 2026-11-30 --dir logs/ [--access]
local steps = require("mxdeploy.steps")

local function q(p) return "'" .. p:gsub("'", "'\\''") .. "'" end

local function day(s, text, what)
  local y, m, d = (text or ""):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if not y then s.usage("%s must be a date YYYY-MM-DD, got '%s'", what, tostring(text)) end
  local t = os.time({ year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 12 })
  if os.date("%Y-%m-%d", t) ~= text then s.usage("%s is not a date: %s", what, text) end
  return t
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

steps.script{
  name = "logs",
  description = "Download app or access logs, one file per day, concurrently; a rerun resumes",
  requires = ">= 0.2",
  epilog = "Files are DIR/APP-MODE-YYYY-MM-DD.log (access logs: ...-access.log). A day the API has no\n"
    .. "logs for (404) is reported and skipped; exit 3 when some days failed.",
  arguments = function(p)
    p:argument("app", "App ID (the subdomain)")
    p:argument("mode", "Environment")
    p:option("--from", "First day (YYYY-MM-DD)"):argname("DATE"):args(1)
    p:option("--to", "Last day (YYYY-MM-DD, default --from)"):argname("DATE")
    p:option("--dir", "Folder for the files (created when missing)"):argname("DIR"):args(1)
    p:flag("--access", "Access logs instead of app logs")
    p:option("--concurrency", "Days downloaded at once (default 4)"):argname("N"):convert(function(v)
      local n = math.tointeger(tonumber(v))
      if not n or n < 1 then return nil, "--concurrency must be a positive integer" end
      return n
    end)
  end,
  run = function(args, s)
    if not args.from then s.usage("--from DATE is required") end
    if not args.dir then s.usage("--dir DIR is required") end
    local first, last = day(s, args.from, "--from"), day(s, args.to or args.from, "--to")
    if last < first then s.usage("--to (%s) is before --from (%s)", args.to, args.from) end
    local days = {}
    for t = first, last, 86400 do days[#days + 1] = os.date("%Y-%m-%d", t) end
    if #days > 400 then s.usage("%d days: at most 400 at once", #days) end
    local app, mode = args.app, args.mode
    local suffix = args.access and "-access.log" or ".log"
    mx.v1.get_environment(app, mode) -- exists and is readable: checked before anything is written
    if not s.dry_run then
      os.execute("mkdir -p " .. q(args.dir))
      local probe = args.dir .. "/.mxdeploy-write-test"
      local f = io.open(probe, "wb")
      if not f then s.fail("cannot write in %s", args.dir) end
      f:close()
      os.remove(probe)
    end
    local todo, skipped = {}, 0
    for _, d in ipairs(days) do
      local path = ("%s/%s-%s-%s%s"):format(args.dir, app, mode, d, suffix)
      if exists(path) then skipped = skipped + 1 else todo[#todo + 1] = { date = d, path = path } end
    end
    s.log("logs", "%s/%s %s: %d day%s, %d already in %s, %d to download", app, mode, args.access and "access logs" or "app logs",
      #days, #days == 1 and "" or "s", skipped, args.dir, #todo)
    local get = args.access and mx.v1.get_access_logs or mx.v1.get_app_logs
    local results, failures = s.map(todo, function(t)
      local ok, link = pcall(get, app, mode, t.date)
      if not ok then
        if mx.errors.is(link, "http") and link.status == 404 then
          s.log("none", "%s: no logs", t.date)
          return { date = t.date, status = "none" }
        end
        error(link, 0)
      end
      mx.download(link.DownloadUrl, t.path)
      s.log("saved", "%s", t.path)
      return { date = t.date, status = s.dry_run and "planned" or "saved", file = t.path }
    end, { concurrency = args.concurrency or 4 })
    local out = mx.array()
    for i, t in ipairs(todo) do out[i] = results[i] or { date = t.date, status = "failed" } end
    for _, f in ipairs(failures) do
      out[f.index].error = tostring(f.error)
      s.warn("logs: %s: %s", todo[f.index].date, tostring(f.error))
    end
    local result = { app = app, mode = mode, dir = args.dir, skipped = skipped, days = out }
    if #failures > 0 then
      if #failures == #todo then s.fail("no day was downloaded (%d failed)", #failures) end
      return result, steps.EXIT.partial
    end
    return result
  end,
}
