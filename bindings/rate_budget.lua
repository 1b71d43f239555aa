-- mxdeploy.rate_budget: one request budget per API host, shared by every task of a client.
--
--   local b = rate_budget.new{requests = 60, per = 60}   -- or rate_budget.new() (no quota)
--   b:acquire(url)          waits while the host is paused, or while `requests` were sent to it
--                           in the last `per` seconds; then counts this request
--   b:pause(url, seconds)   a 429 answered: no task of the client sends to that host until then
--
-- Without a shared budget each task finds out about a 429 alone, and 20 tasks retry 20 times
-- into a limit the first one already hit. Hosts are origins (scheme://host:port).

local core = require("mxdeploy.core")

local M = {}

local Budget = {}
Budget.__index = Budget

--- The origin of a URL, the key of its budget. Without user info: the key is shown in what a
--- waiting task waits for (mx.pending(), Ctrl-C), and a password must not be.
function M.origin(url)
  local scheme, authority = tostring(url):match("^(%a[%w+.-]*://)([^/?#]+)")
  if not scheme then return (core.redact_url(tostring(url))):lower() end
  return (scheme .. authority:gsub("^.*@", "")):lower()
end

-- paused_until: the end of the latest pause of any host. Without a quota a request waits only
-- while its host is paused, so until a pause is in force acquire needs no host at all (working
-- out the origin of every request's URL was ~9K instructions).
function M.new(rate)
  return setmetatable({ rate = rate, hosts = {}, paused_until = 0 }, Budget)
end

function Budget:host(url)
  local key = M.origin(url)
  local h = self.hosts[key]
  if not h then
    h = { key = key, sent = {}, first = 1, paused_until = 0, pauses = 0 }
    self.hosts[key] = h
  end
  return h
end

function Budget:acquire(url)
  if not self.rate and core.now() >= self.paused_until then return end
  local h = self:host(url)
  while true do
    local now = core.now()
    if now < h.paused_until then
      core.sleep(h.paused_until - now, ("rate limit of %s: paused for %.1f s"):format(h.key, h.paused_until - now))
    elseif self.rate then
      local per, limit = self.rate.per, self.rate.requests
      while h.first <= #h.sent and h.sent[h.first] <= now - per do
        h.sent[h.first] = false
        h.first = h.first + 1
      end
      if h.first > 256 then -- compact the log of send times
        table.move(h.sent, h.first, #h.sent, 1)
        for i = #h.sent - h.first + 2, #h.sent do h.sent[i] = nil end
        h.first = 1
      end
      if #h.sent - h.first + 1 < limit then
        h.sent[#h.sent + 1] = now
        return
      end
      local wait = h.sent[h.first] + per - now
      core.sleep(math.max(wait, 0.001), ("rate budget of %s: %d requests per %g s"):format(h.key, limit, per))
    else
      return
    end
  end
end

function Budget:pause(url, seconds)
  local h = self:host(url)
  local untl = core.now() + seconds
  if untl > h.paused_until then
    h.paused_until = untl
    h.pauses = h.pauses + 1
  end
  if untl > self.paused_until then self.paused_until = untl end
end

--- Seconds until `url`'s host may be asked again (0 when it may now).
function Budget:paused_for(url)
  return math.max(0, self:host(url).paused_until - core.now())
end

return M
