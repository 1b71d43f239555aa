-- List the releases of an environment recorded in the release ledger (mxdeploy.steps.ledger):
-- who deployed, promoted or rolled back which package when, what ran before, the snapshot taken
-- and the result. Reads only the ledger file: no API call.
--
--   mxdeploy run releases APP MODE [--ledger FILE] [--last N]
--   mxdeploy --json run releases calc Production
local steps = require("mxdeploy.steps")
local ledger = require("mxdeploy.steps.ledger")

steps.script{
  name = "releases",
  description = "List the releases of an environment recorded in the release ledger",
  requires = ">= 0.2",
  epilog = "The ledger is --ledger FILE, else $MXDEPLOY_LEDGER, else $XDG_STATE_HOME/mxdeploy/releases.jsonl\n"
    .. "(~/.local/state/mxdeploy/releases.jsonl). A corrupt line is an error naming its line number.",
  arguments = function(p)
    p:argument("app", "App ID (the subdomain)")
    p:argument("mode", "Environment (Test, Acceptance, Production, ...)")
    p:option("--ledger", "Release ledger file"):argname("FILE")
    p:option("--last", "Only the newest N releases"):argname("N"):convert(function(v)
      local n = math.tointeger(tonumber(v))
      if not n or n < 1 then return nil, "--last must be a positive integer" end
      return n
    end)
  end,
  run = function(args, s)
    local path = ledger.path(args.ledger)
    local list = ledger.read(path, { app = args.app, environment = args.mode })
    local from = args.last and math.max(1, #list - args.last + 1) or 1
    local out = mx.array()
    for i = from, #list do out[#out + 1] = list[i] end
    if #out == 0 then
      s.print("no releases of %s/%s in %s", args.app, args.mode, path)
    else
      s.print("%-20s  %-10s  %-8s  %-28s  %-14s  %-28s  %s", "TIME", "USER", "ACTION", "PACKAGE", "MODEL", "BEFORE", "RESULT")
      for _, r in ipairs(out) do
        local snap = (r.snapshot and r.snapshot ~= mx.null) and (" (snapshot " .. tostring(r.snapshot) .. ")") or ""
        s.print("%-20s  %-10s  %-8s  %-28s  %-14s  %-28s  %s%s", tostring(r.time), tostring(r.user), tostring(r.action),
          tostring(r.package_name or r.package_id), tostring(r.model_version or "-"),
          tostring(r.previous_package_name or r.previous_package_id or "-"), tostring(r.result), snap)
      end
    end
    return { ledger = path, app = args.app, environment = args.mode, releases = out }
  end,
}
