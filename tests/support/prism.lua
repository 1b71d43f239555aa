-- Stoplight Prism in proxy mode (`prism proxy --errors SPEC UPSTREAM`) on 127.0.0.1: every
-- request and the upstream's response are validated against the OpenAPI spec; with --errors a
-- violation turns into a 500 application/problem+json (type .../prism/errors#VIOLATIONS) and a
-- `sl-violations` header. Used to prove the sandbox's v4 and Private Cloud answers conform.
--
--   local prism = require("prism")
--   local p = prism.proxy("deploy-api-v4.openapi.yaml", sb.url .. "/cloud/api/v4")
--   p.url ... p:log() ... p:stop()
local core = require("mxdeploy.core")

local M = {}

function M.specs_dir()
  return os.getenv("MXDEPLOY_SPECS_DIR") or ((os.getenv("MXDEPLOY_SOURCE_DIR") or ".") .. "/../shared/specs")
end

local function read(path)
  local f = io.open(path, "r")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local Proxy = {}
Proxy.__index = Proxy

-- Starts the proxy and returns once it listens (bounded: 60 s). upstream must be 127.0.0.1.
function M.proxy(spec, upstream)
  assert(upstream:match("^http://127%.0%.0%.1:%d+"), "prism upstream must be on 127.0.0.1")
  local path = M.specs_dir() .. "/" .. spec
  assert(io.open(path, "r"), "spec not found: " .. path):close()
  local bin = os.getenv("PRISM") or "/usr/bin/prism"
  local tmp = os.tmpname()
  for attempt = 1, 5 do
    local port = math.random(20000, 45000)
    local log, pidfile = tmp .. "." .. port .. ".log", tmp .. "." .. port .. ".pid"
    -- setsid: prism (node) gets its own process group, stopped as a whole by its own id.
    assert(os.execute(("setsid %s proxy --errors -h 127.0.0.1 -p %d %s %s > %s 2>&1 < /dev/null & echo $! > %s")
      :format(q(bin), port, q(path), q(upstream), q(log), q(pidfile))))
    local pid = tonumber(read(pidfile):match("%d+"))
    os.remove(pidfile)
    local deadline = core.now() + 60
    while core.now() < deadline do
      local text = read(log)
      if text:find("Prism is listening", 1, true) then
        os.remove(tmp)
        return setmetatable({ url = "http://127.0.0.1:" .. port, pid = pid, log_path = log }, Proxy)
      end
      if text:find("EADDRINUSE", 1, true) or not os.execute("kill -0 " .. pid .. " 2>/dev/null") then break end
      core.sleep(0.1)
    end
    os.execute("kill -TERM -" .. pid .. " 2>/dev/null")
    if attempt == 5 then error("prism proxy did not start for " .. spec .. ":\n" .. read(log)) end
  end
end

function Proxy:log()
  return read(self.log_path)
end

function Proxy:stop()
  if self.pid then
    local pid = self.pid
    os.execute("kill -TERM -" .. pid .. " 2>/dev/null")
    local deadline = core.now() + 5
    while core.now() < deadline and os.execute("kill -0 " .. pid .. " 2>/dev/null") do core.sleep(0.05) end
    os.execute("kill -KILL -" .. pid .. " 2>/dev/null")
    self.pid = nil
  end
  os.remove(self.log_path)
end

-- Whether a response passed through the proxy shows a spec violation (request or response).
function M.violations(resp)
  if not resp then return "no response" end
  local v = resp.headers and resp.headers["sl-violations"]
  if v then return v end
  if (resp.headers["content-type"] or ""):find("problem+json", 1, true) and resp.body
    and (resp.body:find("prism/errors", 1, true)) then
    return resp.body
  end
  return nil
end

return M
