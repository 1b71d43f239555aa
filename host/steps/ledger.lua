-- mxdeploy.steps.ledger: the release ledger, one JSON line per release in a file the team controls.
--
--   local ledger = require("mxdeploy.steps.ledger")
--   local path = ledger.path(args.ledger)       -- --ledger FILE, else MXDEPLOY_LEDGER, else
--                                               -- $XDG_STATE_HOME/mxdeploy/releases.jsonl, else
--                                               -- ~/.local/state/mxdeploy/releases.jsonl
--   ledger.append(path, record)                 -- one line, appended atomically
--   local list = ledger.read(path [, {app =, environment =}])   -- oldest first
--   local last = ledger.last(path, app, environment [, filter])
--
-- A record's fields, in this order on the line: time (UTC, ISO 8601), user (the local user name:
-- MXDEPLOY_USER, USER or LOGNAME; never a credential), action (deploy, promote, rollback), app,
-- environment, package_id, package_name, model_version, previous_package_id,
-- previous_package_name, snapshot (the snapshot taken first, or null), result ("succeeded",
-- "failed", "rolled back"), error (the one-line failure, or absent), source (promote: the
-- environment the package came from).
--
-- A line that is not a JSON object is an error naming the file and the line number: a ledger is
-- never read past a corrupt line silently.
local json = require("mxdeploy.json")

local M = {}

M.FIELDS = { "time", "user", "action", "app", "environment", "package_id", "package_name", "model_version",
  "previous_package_id", "previous_package_name", "snapshot", "result", "error", "source" }

-- An expected failure: one line, exit status 1, no traceback.
local function fail(message)
  local mx = package.loaded["mxdeploy"] or require("mxdeploy")
  error(mx.errors.new("failure", { message = message }), 0)
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- The ledger file: `explicit` (--ledger), MXDEPLOY_LEDGER, then the XDG state folder. A run
--- against the in-process sandbox (`mxdeploy --sandbox`) defaults to sandbox-releases.jsonl there:
--- a rehearsal must not add releases that a later rollback on the real cloud would read.
function M.path(explicit)
  if explicit and explicit ~= "" then return explicit end
  local env = os.getenv("MXDEPLOY_LEDGER")
  if env and env ~= "" then return env end
  local state = os.getenv("XDG_STATE_HOME")
  if not state or state == "" then
    local home = os.getenv("HOME")
    if not home or home == "" then fail("no ledger: HOME is not set (give --ledger FILE or MXDEPLOY_LEDGER)") end
    state = home .. "/.local/state"
  end
  local name = package.loaded["mxdeploy.active_sandbox"] and "sandbox-releases.jsonl" or "releases.jsonl"
  return state .. "/mxdeploy/" .. name
end

--- The name recorded as who made a release (never a secret: the local account's name).
function M.user()
  for _, k in ipairs({ "MXDEPLOY_USER", "USER", "LOGNAME" }) do
    local v = os.getenv(k)
    if v and v ~= "" then return v end
  end
  local p = io.popen("id -un 2>/dev/null")
  local name = p and p:read("l")
  if p then p:close() end
  return (name and name ~= "") and name or "unknown"
end

--- One record as a JSON line with the fields in M.FIELDS order (then any others, sorted).
function M.encode(record)
  local parts, seen = {}, {}
  local function add(k)
    local v = record[k]
    seen[k] = true
    if v ~= nil then parts[#parts + 1] = json.encode(k) .. ":" .. json.encode(v) end
  end
  for _, k in ipairs(M.FIELDS) do add(k) end
  local rest = {}
  for k in pairs(record) do if not seen[k] then rest[#rest + 1] = k end end
  table.sort(rest)
  for _, k in ipairs(rest) do add(k) end
  return "{" .. table.concat(parts, ",") .. "}"
end

--- Appends `record` (time and user filled in when absent) as one line. The line goes out in a
--- single write to a file opened for appending (O_APPEND), so concurrent releases never
--- interleave. Creates the folder when needed. Returns the record.
function M.append(path, record)
  record.time = record.time or os.date("!%Y-%m-%dT%H:%M:%SZ")
  record.user = record.user or M.user()
  local line = M.encode(record) .. "\n"
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then os.execute("mkdir -p " .. q(dir) .. " 2>/dev/null") end
  local f, err = io.open(path, "a")
  if not f then fail("cannot write the ledger " .. tostring(err)) end
  f:setvbuf("full", #line + 1024)
  local ok, werr = f:write(line)
  if ok then ok, werr = f:flush() end
  f:close()
  if not ok then fail("cannot write the ledger " .. path .. ": " .. tostring(werr)) end
  return record
end

--- Every record (oldest first), optionally only those of `filter.app` / `filter.environment`.
--- A missing file is an empty ledger; a corrupt line raises "ledger FILE:N: ...".
function M.read(path, filter)
  local f = io.open(path, "rb")
  local out = {}
  if not f then return out end
  local n = 0
  for line in f:lines() do
    n = n + 1
    if line:match("%S") then
      local ok, v = pcall(json.decode, line)
      if not ok or type(v) ~= "table" or json.is_array(v) then
        f:close()
        fail(("ledger %s:%d: not a release record (%s)"):format(path, n,
          ok and "not a JSON object" or (tostring(v):gsub("^.-:%d+: ", ""))))
      end
      v.line = n
      if (not filter or ((not filter.app or v.app == filter.app)
        and (not filter.environment or v.environment == filter.environment))) then
        out[#out + 1] = v
      end
    end
  end
  f:close()
  return out
end

--- The newest record of app/environment for which `filter(record)` (default: any) is true.
function M.last(path, app, environment, filter)
  local list = M.read(path, { app = app, environment = environment })
  for i = #list, 1, -1 do
    if not filter or filter(list[i]) then return list[i] end
  end
end

return M
