-- The webhook receiver (mx.webhooks.serve over core.webhook_listen) and the sandbox's deliveries
-- against hostile input: malformed headers, bodies over the cap, many deliveries at once, and a
-- webhook URL that only looks like loopback. Real HTTP on 127.0.0.1; raw requests are written by
-- a background shell (bash /dev/tcp) so the receiver's scheduler keeps running meanwhile.
local mx = require("mxdeploy")
local core = require("mxdeploy.core")
local P = require("process")
local S = require("sandbox")

local SECRET = "PMJhiGo1nTL6wlNyZVFh5v9rLZdcLsG2O"

-- Sends `request` (printf %b escapes) to 127.0.0.1:port from a background shell; returns the raw
-- answer, or nil when none came within `seconds`.
local function raw(port, request, seconds)
  local out = os.tmpname()
  os.execute(("timeout %d bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d; printf \"%%b\" \"$0\" >&3; cat <&3' %s > %s 2>&1 &")
    :format(seconds + 2, port, P.quote(request), P.quote(out)))
  local deadline = mx.now() + seconds
  while mx.now() < deadline do
    local s = P.slurp(out)
    local head_end = s:find("\r\n\r\n", 1, true)
    local len = tonumber(s:match("[Cc]ontent%-[Ll]ength: (%d+)") or "")
    if head_end and len and #s >= head_end + 3 + len then
      os.remove(out)
      return s
    end
    mx.sleep(0.05)
  end
  os.remove(out)
  return nil
end

local function status_of(answer) return answer and tonumber(answer:match("^HTTP/1%.%d (%d+)")) end

-- A signed delivery through core.http; returns the status.
local function deliver(url, body, id)
  local ts = tostring(os.time())
  local sig = "v1," .. core.base64(core.hmac_sha256(SECRET, id .. "." .. ts .. "." .. body))
  local resp, err = core.http{ method = "POST", url = url, body = body, timeout = 20,
    headers = { ["Content-Type"] = "application/json", ["webhook-id"] = id, ["webhook-timestamp"] = ts,
                ["webhook-signature"] = sig } }
  assert(resp, err and err.message)
  return resp.status
end

describe("webhook receiver", function()
  local srv, lines, events
  before_each(function()
    lines, events = {}, {}
    srv = mx.webhooks.serve{ secret = SECRET, log = function(l) lines[#lines + 1] = l end,
      on_event = function(event) events[#events + 1] = event.n end }
  end)
  after_each(function() srv:close() end)

  it("refuses a signature header of only whitespace and keeps serving", function()
    -- \f and \v survive libmicrohttpd's trimming; verify raised on them, which ended the
    -- receiver's dispatcher: every later delivery waited 30 s for a 503
    local answer = raw(srv.port, ("POST / HTTP/1.1\\r\\nHost: x\\r\\nwebhook-id: msg_ws\\r\\nwebhook-timestamp: %d\\r\\n"
      .. "webhook-signature: \\f\\v\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{}"):format(os.time()), 10)
    assert.are.equal(401, status_of(answer))
    assert.matches("missing webhook%-signature", lines[1])
    local t0 = mx.now()
    assert.are.equal(204, deliver(srv.url, '{"n":1}', "msg_after"))
    assert.is_true(mx.now() - t0 < 5)
    srv:settle()
    assert.are.same({ 1 }, events)
  end)

  it("answers 413 at once to a declared body over the cap, without reading it", function()
    local t0 = mx.now()
    local answer = raw(srv.port, "POST / HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 1000000000000\\r\\n\\r\\n{", 10)
    assert.are.equal(413, status_of(answer))
    assert.is_true(mx.now() - t0 < 5, "the receiver waited for a body of 1 TB")
    -- a body over the cap that is sent is refused too; an ordinary one still goes through
    local resp = assert(core.http{ method = "POST", url = srv.url, body = ("x"):rep(2 * 1024 * 1024), timeout = 20 })
    assert.are.equal(413, resp.status)
    assert.are.equal(204, deliver(srv.url, '{"n":2}', "msg_small"))
  end)

  it("answers every one of many deliveries at once", function()
    local senders = {}
    for i = 1, 40 do senders[i] = mx.spawn(deliver, srv.url, ('{"n":%d}'):format(i), "msg_many_" .. i) end
    for i = 1, 40 do assert.are.equal(204, senders[i]:wait()) end
    srv:settle()
    assert.are.equal(40, #events)
  end)
end)

describe("sandbox webhook deliveries", function()
  it("go to loopback only: user info before the host does not pass for it", function()
    local sb = S.start()
    local got = { good = 0, bad = 0 }
    local good = mx.webhooks.serve{ secret = SECRET, on_event = function() got.good = got.good + 1 end }
    local bad = mx.webhooks.serve{ secret = SECRET, on_event = function() got.bad = got.bad + 1 end }
    local ok, err = pcall(function()
      local c = mx.sandbox_client(sb, { retry = false })
      local function hook(name, url)
        c.webhooks.create_webhook(S.PROJECT, { name = name, url = url, eventTypes = { "package.uploaded" },
          isActive = true, validationSecret = SECRET })
      end
      -- libcurl's host here is 2130706433 (127.0.0.1 written as a number, so the test stays
      -- local); the check read "127.0.0.1" before the '@' as the host
      hook("disguised", ("http://127.0.0.1:1@2130706433:%d/"):format(bad.port))
      hook("with user info", ("http://someone:pw@127.0.0.1:%d/"):format(good.port))
      local file = S.tmpfile("PK sandbox package")
      c.v2.upload_package("calc", file, { name = "calc_7.7.7.7.mda" }):wait{ timeout = 30 }
      os.remove(file)
      S.eventually(function() return got.good + got.bad > 0 end, 10)
      mx.sleep(0.5) -- both would have been posted by now (one batch)
      assert.are.equal(0, got.bad)
      assert.are.equal(1, got.good) -- a loopback receiver with user info in its URL still gets it
    end)
    good:close()
    bad:close()
    sb:stop()
    assert(ok, err)
  end)
end)
