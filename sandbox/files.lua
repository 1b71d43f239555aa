-- The files listener (another origin than the API): the targets of DownloadUrls (logs, backup
-- archives), package downloads, the mxpc-cli downloads and `redirect = "files"` faults. It must
-- never receive credentials: a request carrying any is refused, as a storage host would.
local U = require("mxdeploy.sandbox.util")
local packages = require("mxdeploy.sandbox.packages")
local has_credentials = require("mxdeploy.sandbox.request_log").has_credentials

local M = {}

function M.handle(ctx)
  local req = ctx.req
  if has_credentials(req.headers) then
    return { status = 400, headers = { ["Content-Type"] = "application/xml" },
      body = "<Error><Code>InvalidRequest</Code><Message>Credentials must not be sent to the file host " ..
        "(they leaked across origins)</Message></Error>" }
  end
  local p = req.path
  local kind, env, date = p:match("^/files/([%a%-]+)/([%w%-]+)/(%d%d%d%d%-%d%d%-%d%d)$")
  if kind == "logs" or kind == "access-logs" then
    local lines = {}
    for i = 1, 5 do
      lines[i] = string.format("%sT%02d:00:00.000Z INFO - %s - sandbox %s line %d", date, i, env, kind, i)
    end
    return { status = 200, headers = { ["Content-Type"] = "text/plain" }, body = table.concat(lines, "\n") .. "\n" }
  end
  local id = p:match("^/files/packages/([%w%-]+)%.mda$") or p:match("^/files/pcpackages/([%w%-]+)%.mda$")
  if id then
    return packages.response(ctx.ix:get("pkg", id) or { PackageId = id, Name = id .. ".mda" })
  end
  local bid = p:match("^/files/backups/([%w%-]+)%.tar%.gz$")
  if bid then
    return { status = 200, headers = { ["Content-Type"] = "application/gzip" }, body = "SANDBOX-BACKUP " .. bid .. "\n" }
  end
  local v, os_, arch = p:match("^/files/cli/([%w%.]+)/(%a+)/(%w+)/mxpc%-cli$")
  if v then
    return { status = 200, headers = { ["Content-Type"] = "application/octet-stream" },
      body = "#!/bin/sh\necho mxpc-cli " .. v .. " " .. os_ .. " " .. arch .. " (sandbox)\n" }
  end
  local redirected = p:match("^/files/redirected(/.*)$")
  if redirected then -- the target of a `redirect = "files"` fault
    return U.ok({ redirected = true, path = redirected })
  end
  return { status = 404, headers = { ["Content-Type"] = "text/plain" }, body = "not found\n" }
end

return M
