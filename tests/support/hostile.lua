-- The hostile HTTP server (tests/support/hostile.c) from a spec:
--
--   local hostile = require("hostile")
--   local h = hostile.start()            -- listening on 127.0.0.1, h.url = "http://127.0.0.1:PORT"
--   core.http{url = h.url .. "/drop/x"}  -- the first path segment picks the behaviour
--   h:count("POST", "/drop")             -- requests it read, by method and path prefix
--   h:stop()                             -- also stopped when the spec's process ends
local core = require("mxdeploy.core")
local P = require("process")

local M = {}
local Hostile = {}
Hostile.__index = Hostile


local q, read = P.quote, P.slurp

--- Starts a server (bounded: fails after 10 s without a port).
function M.start()
  local bin = os.getenv("MXDEPLOY_HOSTILE")
  assert(bin, "MXDEPLOY_HOSTILE is not set (run the specs through ctest)")
  local base = os.tmpname()
  local portfile, logfile = base .. ".port", base .. ".log"
  os.remove(base)
  -- it exits when this pipe closes: it never outlives the spec
  local pipe = assert(io.popen(("exec %s %s %s"):format(q(bin), q(portfile), q(logfile)), "w"))
  local deadline = core.now() + 10
  local port
  while not port do
    port = tonumber(read(portfile):match("^(%d+)\n"))
    if not port then
      assert(core.now() < deadline, "the hostile server did not start")
      core.sleep(0.01)
    end
  end
  os.remove(portfile)
  return setmetatable({ url = "http://127.0.0.1:" .. port, port = port, pipe = pipe, logfile = logfile }, Hostile)
end

--- Requests read so far: { {method=, target=}, ... }.
function Hostile:requests()
  local out = {}
  for method, target in read(self.logfile):gmatch("(%S+) (%S+)\n") do
    out[#out + 1] = { method = method, target = target }
  end
  return out
end

--- How many requests with this method had a target starting with prefix.
function Hostile:count(method, prefix)
  local n = 0
  for _, r in ipairs(self:requests()) do
    if r.method == method and r.target:sub(1, #prefix) == prefix then n = n + 1 end
  end
  return n
end

function Hostile:stop()
  if self.pipe then
    self.pipe:close()
    self.pipe = nil
  end
  os.remove(self.logfile)
end
Hostile.__close = Hostile.stop

return M
