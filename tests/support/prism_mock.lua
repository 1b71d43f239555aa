-- Starts Stoplight Prism (`prism mock --errors SPEC`) on 127.0.0.1 for conformance tests and
-- stops it again. Prism validates every request against the OpenAPI spec and answers 4xx/422
-- to a request that violates it, so a test passing through it proves the request conforms.
--
--   local prism = require("prism_mock")
--   local p = prism.start("deploy-api-v4.openapi.yaml")   -- p.url, p.log_path, p.pid
--   ...
--   p:stop()

local core = require("mxdeploy.core")

local M = {}

--- Directory of the shared specs: $MXDEPLOY_SPECS_DIR, else $MXDEPLOY_SOURCE_DIR/../shared/specs.
function M.specs_dir()
  return os.getenv("MXDEPLOY_SPECS_DIR")
    or ((os.getenv("MXDEPLOY_SOURCE_DIR") or ".") .. "/../shared/specs")
end

local function read(path)
  local f = io.open(path, "r")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local Prism = {}
Prism.__index = Prism

--- Starts prism for `spec` (file name inside specs_dir()); waits until it listens (up to 60 s).
function M.start(spec, opts)
  opts = opts or {}
  local prism_bin = os.getenv("PRISM") or "/usr/bin/prism"
  local path = M.specs_dir() .. "/" .. spec
  assert(io.open(path, "r"), "spec not found: " .. path):close()
  local tmp = os.tmpname()
  for attempt = 1, 5 do
    local port = opts.port or math.random(20000, 45000)
    local log = tmp .. "." .. port .. ".log"
    local pidfile = tmp .. "." .. port .. ".pid"
    local cmd = ("%s mock -h 127.0.0.1 -p %d --errors %s > %s 2>&1 & echo $! > %s"):format(
      shell_quote(prism_bin), port, shell_quote(path), shell_quote(log), shell_quote(pidfile))
    assert(os.execute(cmd))
    local pid = tonumber(read(pidfile):match("%d+"))
    os.remove(pidfile)
    local deadline = core.now() + 60
    while core.now() < deadline do
      local text = read(log)
      if text:find("Prism is listening", 1, true) then
        os.remove(tmp)
        return setmetatable({ url = "http://127.0.0.1:" .. port, port = port, pid = pid,
                              log_path = log, spec = spec }, Prism)
      end
      if text:find("EADDRINUSE", 1, true) or not os.execute("kill -0 " .. pid .. " 2>/dev/null") then
        break
      end
      core.sleep(0.2)
    end
    os.execute("kill " .. pid .. " 2>/dev/null")
    if attempt == 5 then error("prism did not start for " .. spec .. ":\n" .. read(log)) end
  end
end

--- Lines prism logged (requests it served and the violations it found).
function Prism:log()
  return read(self.log_path)
end

function Prism:stop()
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pid = nil
  end
  os.remove(self.log_path)
end

return M
