-- Webhook deliveries (issue 11): mx.webhooks.verify against the docs' worked example, and
-- mx.webhooks.serve receiving real HTTP deliveries on 127.0.0.1.

local mx = require("mxdeploy")
local core = require("mxdeploy.core")

-- The docs' example values (docs/webhooks.md): the webhook-id and webhook-timestamp of "Webhook
-- Headers", the validationSecret of the Webhooks API's create example, the package.uploaded payload.
local ID = "msg_2M605iBQRge9hTgpYg7fKXQubaw"
local TS = "1677072542"
local SECRET = "PMJhiGo1nTL6wlNyZVFh5v9rLZdcLsG2O"
local PAYLOAD = '{"eventType":"package.uploaded","modelVersion":"0.0.19.62e3d711","name":"main-0.0.19.62e3d711.mda",'
  .. '"projectId":"f60650eb-230a-4419-a6af-b3668fc82d5d","runtimeVersion":"9.18.1.54902",'
  .. '"uploadTime":"2023-02-23T10:25:21.3896Z","uploaderId":"4bcafd1c-dac8-4335-b401-06ebe86f7851"}'
-- What the docs' recipe prints for these values:
--   printf '%s.%s.%s' "$WEBHOOK_ID" "$WEBHOOK_TIMESTAMP" "$PAYLOAD" \
--     | openssl dgst -sha256 -binary -hmac "$VALIDATION_SECRET" | openssl base64
local SIGNATURE = "2gvwNnoFFy3HDyQVBl0nGbSE7oHYRlKxyX1VbzgKsc0="

local function headers(sig, id, ts)
  return { ["webhook-id"] = id or ID, ["webhook-timestamp"] = ts or TS, ["webhook-signature"] = sig }
end

describe("mx.webhooks.verify", function()
  local at = { now = tonumber(TS) + 10 }

  it("accepts the docs' worked example", function()
    assert.is_true(mx.webhooks.verify(SECRET, headers("v1," .. SIGNATURE), PAYLOAD, at))
  end)

  it("agrees with the docs' openssl recipe", function()
    local tmp = os.tmpname()
    local f = assert(io.open(tmp, "wb"))
    f:write(ID .. "." .. TS .. "." .. PAYLOAD)
    f:close()
    local p = assert(io.popen("openssl dgst -sha256 -binary -hmac '" .. SECRET .. "' < " .. tmp .. " | openssl base64"))
    local out = p:read("a")
    p:close()
    os.remove(tmp)
    assert.are.equal(SIGNATURE, out:match("%S+"))
    assert.are.equal(SIGNATURE, core.base64(core.hmac_sha256(SECRET, ID .. "." .. TS .. "." .. PAYLOAD)))
  end)

  it("takes the first of several signatures, header names in any case", function()
    local h = { ["Webhook-Id"] = ID, ["WEBHOOK-TIMESTAMP"] = TS,
                ["Webhook-Signature"] = "v1," .. SIGNATURE .. " v1,b2xkLXNlY3JldC1zaWduYXR1cmU=" }
    assert.is_true(mx.webhooks.verify(SECRET, h, PAYLOAD, at))
    local ok, why = mx.webhooks.verify(SECRET, headers("v1,b2xkLXNlY3JldC1zaWduYXR1cmU= v1," .. SIGNATURE), PAYLOAD, at)
    assert.is_nil(ok)
    assert.are.equal("signature mismatch", why)
  end)

  it("refuses a tampered body, id or timestamp, and another secret", function()
    local function refused(...)
      local ok, why = mx.webhooks.verify(...)
      assert.is_nil(ok)
      return why
    end
    assert.are.equal("signature mismatch", refused(SECRET, headers("v1," .. SIGNATURE), PAYLOAD:gsub("main", "evil"), at))
    assert.are.equal("signature mismatch", refused(SECRET, headers("v1," .. SIGNATURE, "msg_other"), PAYLOAD, at))
    assert.are.equal("signature mismatch", refused(SECRET, headers("v1," .. SIGNATURE, nil, "1677072543"), PAYLOAD,
      { now = 1677072543 }))
    assert.are.equal("signature mismatch", refused(SECRET .. "x", headers("v1," .. SIGNATURE), PAYLOAD, at))
    assert.matches("version", refused(SECRET, headers("v2," .. SIGNATURE), PAYLOAD, at))
    assert.matches("missing webhook%-signature", refused(SECRET, headers(nil), PAYLOAD, at))
    assert.matches("missing webhook%-id", refused(SECRET, { ["webhook-timestamp"] = TS, ["webhook-signature"] = "v1,x" }, PAYLOAD, at))
  end)

  it("bounds the timestamp's age both ways (default 300 s)", function()
    local sig = headers("v1," .. SIGNATURE)
    assert.is_true(mx.webhooks.verify(SECRET, sig, PAYLOAD, { now = tonumber(TS) + 300 }))
    local ok, why = mx.webhooks.verify(SECRET, sig, PAYLOAD, { now = tonumber(TS) + 301 })
    assert.is_nil(ok)
    assert.matches("old by 301 s", why)
    ok, why = mx.webhooks.verify(SECRET, sig, PAYLOAD, { now = tonumber(TS) - 301 })
    assert.matches("in the future", why)
    assert.is_true(mx.webhooks.verify(SECRET, sig, PAYLOAD, { now = tonumber(TS) + 3000, tolerance = 3600 }))
    ok, why = mx.webhooks.verify(SECRET, sig, PAYLOAD) -- now: 2023's delivery is stale
    assert.is_nil(ok)
    assert.matches("outside the tolerance", why)
  end)

  it("raises argument errors for misuse", function()
    local ok, e = pcall(mx.webhooks.verify, nil, {}, "")
    assert.are.equal("argument", e.kind)
    ok, e = pcall(mx.webhooks.verify, SECRET, {}, {})
    assert.matches("raw request body", e.message)
    ok, e = pcall(mx.webhooks.verify, SECRET, {}, "", { tolerence = 5 })
    assert.matches("unknown option 'tolerence'", e.message)
  end)
end)

-- A signed delivery to url (now = the current time unless ts is given).
local function deliver(url, body, opts)
  opts = opts or {}
  local ts = opts.ts or tostring(os.time())
  local id = opts.id or ("msg_" .. tostring(math.random(1, 1e9)))
  local sig = opts.sig or ("v1," .. core.base64(core.hmac_sha256(opts.secret or SECRET, id .. "." .. ts .. "." .. body)))
  local resp, err = core.http{ method = opts.method or "POST", url = url, body = body, timeout = 20,
    headers = { ["Content-Type"] = "application/json", ["webhook-id"] = id, ["webhook-timestamp"] = ts,
                ["webhook-signature"] = sig } }
  assert(resp, err and err.message)
  return resp.status, resp
end

describe("mx.webhooks.serve", function()
  it("runs verified deliveries as tasks while others arrive, answers 401 to the rest", function()
    local lines, events = {}, {}
    local srv = mx.webhooks.serve{ secret = SECRET, log = function(l) lines[#lines + 1] = l end,
      on_event = function(event, delivery)
        mx.sleep(0.3) -- waits like a handler waiting on a job; other deliveries go on
        events[#events + 1] = { event.name, delivery.id }
      end }
    assert.matches("^http://127%.0%.0%.1:%d+/$", srv.url)
    local t0 = mx.now()
    local senders = {}
    for i = 1, 5 do
      senders[i] = mx.spawn(deliver, srv.url, ('{"name":"pkg-%d.mda"}'):format(i), { id = "msg_" .. i })
    end
    for i = 1, 5 do assert.are.equal(204, senders[i]:wait()) end
    srv:settle()
    assert.is_true(mx.now() - t0 < 1.2, "handlers ran one after another")
    assert.are.equal(5, #events)
    -- tampered, stale, unsigned, another secret: 401, logged without the body
    assert.are.equal(401, (deliver(srv.url, '{"name":"x"}', { sig = "v1," .. SIGNATURE })))
    assert.are.equal(401, (deliver(srv.url, '{"name":"secret-body"}', { ts = tostring(os.time() - 600) })))
    assert.are.equal(401, (deliver(srv.url, '{"name":"x"}', { secret = "another-secret-of-enough-length-000" })))
    assert.are.equal(405, (deliver(srv.url, "", { method = "PUT" })))
    assert.are.equal(5, #events) -- nothing more ran
    assert.are.equal(3, srv.stats.refused)
    assert.are.equal(3, #lines)
    for _, l in ipairs(lines) do
      assert.matches("^webhook: refused delivery msg_%d+ from 127%.0%.0%.1: ", l)
      assert.is_nil(l:find("secret-body", 1, true))
    end
    assert.matches("old by", lines[2])
    -- a retried delivery (same webhook-id) is answered but not run again
    assert.are.equal(204, (deliver(srv.url, '{"name":"pkg-1.mda"}', { id = "msg_1" })))
    srv:settle()
    assert.are.equal(5, #events)
    assert.are.equal(1, srv.stats.duplicates)
    srv:close()
    srv:wait()
    local ok = core.http{ method = "POST", url = srv.url, body = "{}", timeout = 2, retry = false }
    assert.is_nil(ok) -- nothing listens any more
  end)

  it("logs a failing handler and keeps serving", function()
    local lines = {}
    local srv = mx.webhooks.serve{ secret = SECRET, log = function(l) lines[#lines + 1] = l end,
      on_event = function(event) if event.fail then error("handler broke") end end }
    assert.are.equal(204, (deliver(srv.url, '{"fail":true}', { id = "msg_fail" })))
    srv:settle()
    assert.are.equal(204, (deliver(srv.url, '{"fail":false}')))
    srv:settle()
    assert.are.equal(1, srv.stats.failed)
    assert.matches("handler for delivery msg_fail failed: .*handler broke", lines[1])
    srv:close()
  end)

  it("refuses bad options with argument errors", function()
    local ok, e = pcall(mx.webhooks.serve, { on_event = print })
    assert.are.equal("argument", e.kind)
    ok, e = pcall(mx.webhooks.serve, { secret = SECRET, on_event = print, prot = 1 })
    assert.matches("unknown option 'prot'", e.message)
    ok, e = pcall(mx.webhooks.serve, { secret = SECRET, on_event = print, port = 70000 })
    assert.matches("port", e.message)
  end)
end)
