-- mxdeploy.retry_policy: when a failed exchange is tried again, and after how long.
--
-- The default policy is the table `mx.retry_policy`; change its fields to change every
-- client, give a client `retry = {...}` (overrides on top of the default), or a call
-- `retry = {...}` / `retry = false`.
--
-- Rules:
--  * idempotent methods (GET, PUT, DELETE, HEAD, OPTIONS) are retried after a network failure
--    or timeout, and on a status in `statuses` (429, 502, 503, 504);
--  * other methods (POST, PATCH) are retried only when the request provably never left
--    (core.http's err.reached == false); a status answer means it arrived: never retried;
--  * 500 is never retried (Mendix reports permanent failures such as NO_MDA_HAS_BEEN_DEPLOYED
--    with 500);
--  * a cancelled request, one whose TLS certificate check failed, or one whose answer was over
--    the size limit (a `response` error) is never retried;
--  * the delay is exponential (base_delay * 2^(n-1), capped at max_delay) with jitter, or the
--    server's Retry-After (digits: seconds, or an HTTP date; anything else there, such as 0x10,
--    -5 or 1e-300, is ignored for our own backoff) or X-RateLimit-Reset (epoch seconds) when it
--    sent one; a wait longer than max_retry_after is not waited for: the error is raised with
--    `retry_after` set.

local M = {}

M.default = {
  max_retries = 4,          -- attempts after the first
  base_delay = 0.5,         -- seconds before the first retry
  max_delay = 30,           -- cap of the exponential delay
  jitter = 0.5,             -- fraction of the delay that is randomised (0 = none)
  max_retry_after = 120,    -- longest Retry-After honoured, seconds
  statuses = { [429] = true, [502] = true, [503] = true, [504] = true },
  idempotent = { GET = true, PUT = true, DELETE = true, HEAD = true, OPTIONS = true },
}

--- A policy made of `overrides` over `base` (both optional); `false` disables retries.
-- base policy -> the same without retries (retry = false is common: made once per base)
local without_retries = setmetatable({}, { __mode = "k" })

function M.resolve(base, overrides)
  base = base or M.default
  if overrides == false then
    local p = without_retries[base]
    if not p then
      p = setmetatable({ max_retries = 0 }, { __index = base })
      without_retries[base] = p
    end
    return p
  end
  if overrides == nil or overrides == true then return base end
  if type(overrides) ~= "table" then
    error("retry policy must be a table or false, got " .. type(overrides), 2)
  end
  return setmetatable(overrides, { __index = base })
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                 Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- Days since 1970-01-01 of a civil date (proleptic Gregorian).
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

--- Epoch seconds of an HTTP-date, or nil: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") and the
--- two obsolete forms a recipient must also accept (RFC 9110 5.6.7): RFC 850
--- ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37 1994").
function M.parse_http_date(s)
  local d, mon, y, hh, mm, ss = s:match("^%a+,%s+(%d+)%s+(%a+)%s+(%d+)%s+(%d+):(%d+):(%d+)%s+GMT$")
  if not d then
    d, mon, y, hh, mm, ss = s:match("^%a+,%s+(%d%d?)%-(%a+)%-(%d%d)%s+(%d+):(%d+):(%d+)%s+GMT$")
    if y then y = tonumber(y) < 70 and 2000 + tonumber(y) or 1900 + tonumber(y) end
  end
  if not d then
    mon, d, hh, mm, ss, y = s:match("^%a+%s+(%a+)%s+(%d+)%s+(%d+):(%d+):(%d+)%s+(%d+)$")
  end
  if not d or not MONTHS[mon] then return nil end
  return days_from_civil(tonumber(y), MONTHS[mon], tonumber(d)) * 86400
    + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
end

--- Seconds to wait from a Retry-After header value, or nil when absent or unreadable.
--- `now` (epoch seconds) defaults to os.time().
function M.retry_after_seconds(value, now)
  if value == nil then return nil end
  value = tostring(value):match("^%s*(.-)%s*$")
  if value:match("^%d+$") then -- delay-seconds = 1*DIGIT (RFC 9110 10.2.3): no sign, hex, exponent
    return tonumber(value) or math.huge
  end
  local at = M.parse_http_date(value)
  if not at then return nil end
  return math.max(0, at - (now or os.time()))
end

--- Seconds to wait from an X-RateLimit-Reset header (the Webhooks API: epoch seconds of the
--- window's end; a small number is taken as seconds from now), or nil.
function M.rate_limit_reset_seconds(value, now)
  local digits = value ~= nil and tostring(value):match("^%s*(%d+)%s*$") or nil -- as Retry-After
  local n = digits and tonumber(digits)
  if not n then return nil end
  if n > 1e9 then return math.max(0, n - (now or os.time())) end
  return math.max(0, n)
end

--- How long a 429/503 answer asks to wait: Retry-After, else X-RateLimit-Reset; nil when neither.
function M.server_wait(resp)
  local h = resp.headers or {}
  return M.retry_after_seconds(h["retry-after"]) or M.rate_limit_reset_seconds(h["x-ratelimit-reset"])
end

--- Exponential delay with jitter before retry number `n` (1-based).
function M.backoff(policy, n)
  local d = math.min(policy.max_delay, policy.base_delay * 2 ^ (n - 1))
  local j = policy.jitter or 0
  return d * (1 - j) + d * j * math.random()
end

--- Decides whether to retry. `retries` = retries already made. Exactly one of resp / err is set.
--- Returns the delay in seconds, or nil and the reason it is not retried.
function M.decide(policy, method, resp, err, retries)
  if retries >= (policy.max_retries or 0) then return nil, "retries exhausted" end
  local idempotent = policy.idempotent[method] == true
  if err then
    if err.kind == "cancelled" then return nil, "cancelled" end
    if err.kind == "tls" then return nil, "TLS verification failed: retrying cannot help" end
    if err.kind == "response" then return nil, "the answer was malformed: retrying cannot help" end
    if idempotent or err.reached == false then
      return M.backoff(policy, retries + 1)
    end
    return nil, "non-idempotent request may have reached the server"
  end
  if not policy.statuses[resp.status] then return nil, "status not retryable" end
  if not idempotent then return nil, "non-idempotent request reached the server" end
  local ra = M.server_wait(resp)
  if ra then
    if ra > policy.max_retry_after then return nil, "Retry-After too long" end
    return ra
  end
  return M.backoff(policy, retries + 1)
end

return M
