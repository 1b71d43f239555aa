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
