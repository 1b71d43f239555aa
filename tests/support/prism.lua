-- Stoplight Prism on 127.0.0.1, for conformance tests against the official OpenAPI specs
-- (specs/*.openapi.yaml: their machine-readable content, see specs/README.md).
--
--   local prism = require("prism")
--   local m = prism.mock("deploy-api-v4.openapi.yaml")           -- validates our requests
--   local p = prism.proxy("deploy-api-v4.openapi.yaml", upstream) -- validates the sandbox's answers
--   m.url, p:log(), prism.violations(resp), m:stop()
--
-- Mock mode answers 4xx/422 to a request that violates the spec; proxy mode with --errors turns
-- a violation (request or upstream response) into a 500 application/problem+json with an
-- `sl-violations` header.
local core = require("mxdeploy.core")

local M = {}

--- Directory of the spec data (specs/ in the repository, made by tools/derive-spec-data);
--- $MXDEPLOY_SPECS_DIR names another one (e.g. the unreduced originals).
function M.specs_dir()
  return os.getenv("MXDEPLOY_SPECS_DIR") or ((os.getenv("MXDEPLOY_SOURCE_DIR") or ".") .. "/specs")
end

local P = require("process")
local read, q = P.slurp, P.quote

local Prism = {}
Prism.__index = Prism

-- Starts `prism <mode> --errors -h 127.0.0.1 -p PORT <args...>` and returns once it listens
-- (bounded: 60 s per attempt, 5 attempts on a port clash).
local function launch(mode, spec, ...)
  local path = M.specs_dir() .. "/" .. spec
  assert(io.open(path, "r"), "spec not found: " .. path):close()
  local args = { q(path) }
  for _, a in ipairs({ ... }) do args[#args + 1] = q(a) end
  local bin = os.getenv("PRISM") or "prism"
  local tmp = os.tmpname()
  for attempt = 1, 5 do
    local port = math.random(20000, 45000)
    local log, pidfile = tmp .. "." .. port .. ".log", tmp .. "." .. port .. ".pid"
    -- setsid: prism (node) gets its own process group, stopped as a whole by its id
    assert(os.execute(("setsid %s %s --errors -h 127.0.0.1 -p %d %s > %s 2>&1 < /dev/null & echo $! > %s")
      :format(q(bin), mode, port, table.concat(args, " "), q(log), q(pidfile))))
    local pid = tonumber(read(pidfile):match("%d+"))
    os.remove(pidfile)
    local deadline = core.now() + 60
    while core.now() < deadline do
      local text = read(log)
      if text:find("Prism is listening", 1, true) then
        os.remove(tmp)
        return setmetatable({ url = "http://127.0.0.1:" .. port, port = port, pid = pid, log_path = log,
                              spec = spec }, Prism)
      end
      if text:find("EADDRINUSE", 1, true) or not os.execute("kill -0 " .. pid .. " 2>/dev/null") then break end
      core.sleep(0.1)
    end
    os.execute("kill -TERM -" .. pid .. " 2>/dev/null")
    if attempt == 5 then error("prism " .. mode .. " did not start for " .. spec .. ":\n" .. read(log)) end
  end
end

--- A mock server for `spec` (a file name inside specs_dir()).
function M.mock(spec)
  return launch("mock", spec)
end

--- A validating proxy for `spec` in front of `upstream` (which must be on 127.0.0.1).
function M.proxy(spec, upstream)
  assert(upstream:match("^http://127%.0%.0%.1:%d+"), "prism upstream must be on 127.0.0.1")
  return launch("proxy", spec, upstream)
end

--- Lines prism logged (requests it served and the violations it found).
function Prism:log()
  return read(self.log_path)
end

function Prism:stop()
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

--- The violations a response passed through a proxy reports, or nil.
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
