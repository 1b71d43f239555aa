-- Shared helpers for the bench scripts (not a bench itself). Every result is one line
--   ROW <tab> bench <tab> metric <tab> value <tab> goal <tab> PASS|FAIL|-
-- on stdout, which bench/run collects into its table; anything else a bench prints is ignored.
local B = {}

--- A field of /proc/self/status in kB (VmRSS, VmHWM, ...).
function B.status_kb(field)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)"))
end

--- CPU seconds (user + system) of this process (`/proc/self/stat`, exited threads included) and of
--- its main thread (`/proc/self/task/PID/stat`): the rest ran on other threads (the sandbox's).
function B.cpu_seconds()
  local function ticks(path)
    local f = assert(io.open(path))
    local s = f:read("a")
    f:close()
    local rest = s:match("%) (.*)$") -- after the command name, which may hold spaces
    local fields = {}
    for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
    return tonumber(fields[12]) + tonumber(fields[13]), tonumber(s:match("^(%d+)")) -- utime, stime; pid
  end
  local total, pid = ticks("/proc/self/stat")
  local main = ticks("/proc/self/task/" .. pid .. "/stat")
  local hz = 100 -- USER_HZ on Linux
  return total / hz, main / hz
end

function B.mb(kb) return ("%.1f MB"):format(kb / 1024) end

function B.row(bench, metric, value, goal, ok)
  local verdict = "-"
  if ok ~= nil then verdict = ok and "PASS" or "FAIL" end
  io.stdout:write(table.concat({ "ROW", bench, metric, tostring(value), goal or "-", verdict }, "\t"), "\n")
  io.stdout:flush()
end

--- A fresh temporary directory (removed by B.rmdir).
function B.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -m 700 " .. p))
  return p
end

function B.rmdir(p)
  if p and p:match("^/tmp/") then os.execute("rm -rf '" .. p .. "'") end
end

--- The mxdeploy binary running this script.
function B.bin()
  local i, b = -1, nil
  while arg[i] do b = arg[i]; i = i - 1 end
  return os.getenv("MXDEPLOY_BIN") or b
end

return B
