-- `mxdeploy [--profile NAME] auth status [--check]`: which credentials each API family would use
-- and where each value comes from (never the value); --check makes one read-only call per family.
local M = {}

local FAMILIES = {
  { auth = "apikey", title = "API key (Deploy API v1/v2, Build API, Backups API)", keys = { "username", "apikey" },
    check = function(c) local apps = c.v1.list_apps() return ("%d apps visible"):format(type(apps) == "table" and #apps or 0) end },
  { auth = "token", title = "Personal access token (Deploy API v4, Private Cloud)", keys = { "token" },
    check = function(c)
      local r = c.v4.list_apps({ limit = 1 })
      return type(r) == "table" and type(r.apps) == "table" and "apps readable" or "answered"
    end },
}

local function usage(out)
  out:write("usage: mxdeploy [--profile NAME] [--sandbox|--endpoint URL] [--json] auth status [--check]\n")
end

function M.main(_, command, ...)
  local errors = mx.errors
  local check = false
  for _, a in ipairs({ ... }) do
    if a == "--check" then check = true
    elseif a == "-h" or a == "--help" then usage(io.stdout) return
    else
      usage(io.stderr)
      errors.raise(errors.new("usage", { exit_code = 2, message = "auth: unknown argument '" .. a .. "'" }), 0)
    end
  end
  if command == "-h" or command == "--help" then usage(io.stdout) return end
  if command ~= "status" then
    usage(io.stderr)
    errors.raise(errors.new("usage", { exit_code = 2, message = "auth: unknown command '" .. tostring(command) .. "' (expected status)" }), 0)
  end
  local c = mx.default_client
  local creds = c:credentials() -- a broken credentials file is a one-line error here
  local profile = c.options.profile or os.getenv("MXDEPLOY_PROFILE") or "default"
  local report = { profile = profile, families = {} }
  local lines = { ("profile: %s"):format(profile) }
  if type(creds.note) == "function" and creds:note() then lines[#lines + 1] = "note: " .. creds:note() end
  local worked, failed = 0, 0
  for _, fam in ipairs(FAMILIES) do
    local entry = { title = fam.title, configured = creds:has(fam.auth), sources = {} }
    lines[#lines + 1] = fam.title .. ":"
    for _, k in ipairs(fam.keys) do
      local src = type(creds.source) == "function" and creds:source(k) or nil
      entry.sources[k] = src or mx.null
      lines[#lines + 1] = ("  %-9s %s"):format(k, src and ("from " .. src) or "missing")
    end
    local nsinfo = fam.auth == "apikey" and "v1" or "v4"
    lines[#lines + 1] = ("  %-9s %s"):format("endpoint", c:base_url(nsinfo))
    if check then
      if not entry.configured then
        entry.check = "missing"
        failed = failed + 1
        lines[#lines + 1] = "  check     not configured"
      else
        local ok, r = pcall(fam.check, c)
        if not ok and (errors.is(r, "interrupted") or errors.is(r, "cancelled")) then error(r, 0) end
        entry.check = ok and "ok" or tostring(r)
        if ok then worked = worked + 1 else failed = failed + 1 end
        lines[#lines + 1] = "  check     " .. (ok and ("ok (" .. r .. ")") or ("failed: " .. tostring(r)))
      end
    end
    report.families[#report.families + 1] = entry
  end
  if mx.options.json then
    io.stderr:write(table.concat(lines, "\n"), "\n")
    print(mx.json.encode(report))
  else
    print(table.concat(lines, "\n"))
  end
  if check and failed > 0 then
    errors.raise(errors.new("failure", { exit_code = worked > 0 and 3 or 1,
      message = ("auth check: %d of %d API families do not work"):format(failed, failed + worked) }), 0)
  end
end

return M
