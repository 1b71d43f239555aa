-- The transport against a hostile server (tests/support/hostile.c): nothing is sent twice that
-- must not be, no answer is unbounded, every call ends, and nothing a server sends (an echoed
-- secret, escape sequences) reaches the output raw. Issue 12 rows 1, 2, 3, 5, 7, 10, 11, 13.
local core = require("mxdeploy.core")
local errors = require("mxdeploy.errors")
local request = require("mxdeploy.request")
local hostile = require("hostile")
local P = require("process")
local slurp = P.slurp

local BIN = os.getenv("MXDEPLOY_BIN")
local APIKEY, TOKEN = "SECRET-APIKEY-1234", "SECRET-TOKEN-5678"

local strings_of = require("strings_of")


-- Runs `mxdeploy ARGS script` with a bounded time (60 s); returns exit code and stdout..stderr.
local function run_script(args, source, env)
  local script = P.tmpfile(source)
  local code, text = P.run(("%s timeout 60 %s %s %s"):format(env or "", P.quote(BIN), args, P.quote(script)), { merge = true })
  os.remove(script)
  return code, text
end

-- A task's outcome within `seconds` (so a broken fix fails here, not at ctest's timeout).
local function within(seconds, fn)
  local t = core.spawn(fn)
  if not core.wait_any({ t }, seconds) then
    t:cancel()
    error(("did not finish within %g s"):format(seconds), 2)
  end
  return pcall(t.wait, t)
end

local function client(h, ns, behaviour, extra)
  local opts = { username = "someone@example.com", apikey = APIKEY, token = TOKEN, retry = false,
                 base_urls = { [ns] = h.url .. "/" .. behaviour } }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return mx.connect(opts)
end

describe("never twice", function()
  local h
  setup(function() h = hostile.start() end)
  teardown(function() h:stop() end)

  it("a POST redirected (303) to a dead port reached the server: sent once, never retried (row 1)", function()
    local c = client(h, "v1", "redirect", { retry = { base_delay = 0.01 } })
    local ok, e = within(20, function() return c.v1.start_environment("calc", "Test", { AutoSyncDb = true }) end)
    assert.is_false(ok)
    assert.are.equal("network", e.kind)
    assert.is_true(e.reached)
    assert.are.equal(0, e.retries)
    assert.are.equal(1, h:count("POST", "/redirect/apps/calc/environments/Test/start"))
    assert.matches("may have been applied", tostring(e))
  end)

  it("a POST on a kept-alive connection that the server drops is not sent again (row 2)", function()
    for _, method in ipairs({ "POST", "PATCH", "PUT", "DELETE" }) do
      local path = "/drop/" .. method:lower()
      assert.are.equal(200, core.http({ url = h.url .. "/ok/warm" }).status) -- leaves a connection open
      local resp, err = core.http({ method = method, url = h.url .. path, body = "{}" })
      assert.is_nil(resp)
      assert.is_true(err.reached, method)
      assert.are.equal(1, h:count(method, path), method .. " was sent twice")
    end
    local ok, e = pcall(mx.request, { method = "POST", url = h.url .. "/drop/again", json = {}, retry = { base_delay = 0.01 } })
    assert.is_false(ok)
    assert.are.equal(1, h:count("POST", "/drop/again"))
    assert.matches("^network error: .*%(POST /drop/again%); it was sent and may have been applied$", tostring(e))
    -- a GET keeps sharing connections
    local first = core.http({ url = h.url .. "/ok/1" })
    local second = core.http({ url = h.url .. "/ok/2" })
    assert.are.equal(0, second.new_connections, "GETs no longer reuse connections")
    assert.is_not_nil(first)
  end)

  it("a POST redirected back to itself (307) is not sent again (row 1)", function()
    local ok, e = within(20, function()
      return mx.request({ method = "POST", url = h.url .. "/loop/post?s=307", json = {}, retry = { base_delay = 0.01 } })
    end)
    assert.is_false(ok)
    assert.are.equal("http", e.kind)
    assert.are.equal(307, e.status)
    assert.matches("never sent twice", tostring(e))
    assert.are.equal(1, h:count("POST", "/loop/post"))
  end)
end)

describe("final redirects (row 5)", function()
  local h
  setup(function() h = hostile.start() end)
  teardown(function() h:stop() end)

  it("a redirect loop past the limit is an error, not success", function()
    local c = client(h, "v1", "loop")
    local ok, e = within(20, function() return c.v1.stop_environment("calc", "Test") end)
    assert.is_false(ok)
    assert.are.equal("http", e.kind)
    assert.are.equal(302, e.status)
    assert.matches("^HTTP 302: stopped after 5 redirects %(the limit, max_redirects%), last Location: /loop/apps/calc/environments/Test/stop %(POST /loop/apps/calc/environments/Test/stop%)$", tostring(e))
    local before = h:count("GET", "/loop/apps")
    ok, e = within(20, function() return c.v1.list_apps() end)
    assert.is_false(ok)
    assert.are.equal(302, e.status)
    assert.are.equal(6, h:count("GET", "/loop/apps") - before) -- the request and 5 redirects
  end)

  it("a 302 without Location is an error", function()
    local c = client(h, "v1", "nolocation")
    local ok, e = pcall(c.v1.list_apps)
    assert.is_false(ok)
    assert.are.equal(302, e.status)
    assert.matches("^HTTP 302: redirect without a Location header %(GET /nolocation/apps%)$", tostring(e))
  end)

  it("a caller that asks for the redirect itself (max_redirects = 0) gets it", function()
    local resp = mx.request({ url = h.url .. "/redirect/x?s=302&to=/ok/there", max_redirects = 0 })
    assert.are.equal(302, resp.status)
    assert.are.equal("/ok/there", resp.headers.location)
  end)
end)

describe("bounded answers (row 3)", function()
  local h
  setup(function() h = hostile.start() end)
  teardown(function() h:stop() end)

  it("a gzip bomb and an endless body stop at the cap with a response error; memory stays small", function()
    local code, out = run_script("", ([[
      local url = %q
      for _, path in ipairs({ "/bomb/x", "/endless/x" }) do
        local ok, e = pcall(mx.request, { url = url .. path, timeout = 20, retry = { base_delay = 0.01 } })
        print(path, ok and "ok" or e.kind, ok and "" or tostring(e))
      end
      local ok, e = pcall(mx.request, { url = url .. "/endless/small", max_response_size = 100000, timeout = 20 })
      print("/endless/small", ok and "ok" or e.kind, ok and "" or tostring(e))
      print("peak_kb", io.open("/proc/self/status"):read("a"):match("VmHWM:%%s*(%%d+)"))
    ]]):format(h.url))
    assert.are.equal(0, code, out)
    assert.matches("/bomb/x\tresponse\tresponse body larger than 16777216 bytes, the limit for an answer held in memory %(max_response_size%) %(GET /bomb/x%)\n", out)
    assert.matches("/endless/x\tresponse\tresponse body larger than 16777216 bytes", out)
    assert.matches("/endless/small\tresponse\tresponse body larger than 100000 bytes", out)
    assert.are.equal(1, h:count("GET", "/bomb/x"), "a response error was retried")
    local peak = tonumber(out:match("peak_kb%s+(%d+)"))
    assert.is_true(peak < 200 * 1024, "peak memory " .. tostring(peak) .. " kB")
  end)

  it("a download to a file is not capped; a client's cap applies to its calls", function()
    local out = os.tmpname()
    local resp = mx.request({ url = h.url .. "/big/x?size=300000", output = out, max_response_size = 1000 })
    assert.are.equal(200, resp.status)
    assert.are.equal(300000, #slurp(out))
    os.remove(out)
    local c = client(h, "v1", "big", { max_response_size = 1000 })
    local ok, e = pcall(c.v1.list_apps)
    assert.is_false(ok)
    assert.are.equal("response", e.kind)
    assert.matches("larger than 1000 bytes", e.message)
  end)
end)

describe("deadlines (row 7)", function()
  local h
  setup(function() h = hostile.start() end)
  teardown(function() h:stop() end)

  it("an API call has a default deadline: a trickling server does not hold it for hours", function()
    assert.are.equal(120, request.default_timeout)
    request.default_timeout = 1
    local c = client(h, "v1", "trickle")
    local t0 = core.now()
    local ok, e = within(20, c.v1.list_apps)
    request.default_timeout = 120
    assert.is_false(ok)
    assert.are.equal("timeout", e.kind)
    assert.are.equal(1, e.deadline)
    assert.matches("^timeout: no complete answer within the call's deadline of 1 s", tostring(e))
    assert.is_true(core.now() - t0 < 5)
  end)

  it("a client's deadline bounds the whole call, retries included", function()
    local c = client(h, "v1", "trickle", { timeout = 1, retry = { base_delay = 0.01, max_retries = 4 } })
    local t0 = core.now()
    local ok, e = within(20, c.v1.list_apps)
    assert.is_false(ok)
    assert.are.equal("timeout", e.kind)
    assert.is_true(core.now() - t0 < 2.5, "each retry got a deadline of its own")
  end)

  it("a call's own deadline, or mx.timeout's, replaces the default (longer or shorter)", function()
    request.default_timeout = 0.3
    local ok, resp = within(20, function()
      return mx.timeout(5, mx.request, { url = h.url .. "/slow/x?ms=800" })
    end)
    local ok2, resp2 = within(20, function()
      return mx.request({ url = h.url .. "/slow/y?ms=800", timeout = 5 })
    end)
    local ok3, e3 = within(20, function() return mx.request({ url = h.url .. "/slow/z?ms=800", retry = false }) end)
    local out = os.tmpname()
    local ok4 = within(20, function() return mx.request({ url = h.url .. "/slow/file?ms=800", output = out }) end)
    os.remove(out)
    request.default_timeout = 120
    assert.is_true(ok, tostring(resp))
    assert.are.equal(200, resp.status)
    assert.is_true(ok2, tostring(resp2))
    assert.is_false(ok3)
    assert.are.equal("timeout", e3.kind)
    assert.is_true(ok4, "a download to a file got the default deadline")
  end)
end)

describe("what servers send back (rows 10, 11, 13)", function()
  local h
  setup(function() h = hostile.start() end)
  teardown(function() h:stop() end)

  it("an API key or token the server quotes back never reaches an error", function()
    for _, ns in ipairs({ "v1", "v4" }) do
      local c = client(h, ns, "quote")
      local ok, e = pcall(ns == "v1" and c.v1.list_apps or c.v4.list_apps)
      assert.is_false(ok)
      assert.are.equal(401, e.status)
      local all = table.concat(strings_of(e), "\n") .. tostring(e)
      assert.is_nil(all:find(APIKEY, 1, true), "API key in the error")
      assert.is_nil(all:find(TOKEN, 1, true), "token in the error")
      assert.matches("invalid key", tostring(e))
      assert.matches("%*%*%*", tostring(e))
    end
    -- user info in a URL goes out as Basic authorization: echoed back, it is scrubbed too
    local ok, e = pcall(mx.request, { url = "http://someone:s3cret-pw@127.0.0.1:" .. h.port .. "/quote/basic", retry = false })
    assert.is_false(ok)
    local all = table.concat(strings_of(e), "\n") .. tostring(e)
    assert.is_nil(all:find("c29tZW9uZTpzM2NyZXQtcHc=", 1, true), "base64 of the user info in the error: " .. all)
    assert.is_nil(all:find("s3cret-pw", 1, true))
    assert.matches("auth Basic %*%*%*", e.message)
    -- a secret inside a longer one (a URL password that is the tail of the API key): scrubbed
    -- one after the other, the shorter cut the longer in two and its head stayed in the text
    local key = "prefix-of-the-key-K3Y-1234"
    ok, e = pcall(mx.request, { url = h.url .. "/quote/nested?password=K3Y-1234",
      headers = { ["Mendix-ApiKey"] = key }, retry = false })
    assert.is_false(ok)
    all = table.concat(strings_of(e), "\n") .. tostring(e)
    assert.is_nil(all:find("prefix-of", 1, true), "part of the API key in the error: " .. all)
    assert.matches("invalid key %*%*%* ", e.message)
  end)

  it("control characters from a server are escaped in errors and logs", function()
    local c = client(h, "v1", "control")
    local ok, e = pcall(c.v1.list_apps)
    assert.is_false(ok)
    local text = tostring(e)
    assert.is_nil(text:find("[%c\127]"), text)
    assert.is_nil(text:find("\194[\128-\159]"), text)
    assert.is_nil(e.message:find("%c"), e.message)
    assert.are.equal("HTTP 400 BAD\\x1B[2J: red \\x1B[31malert\\x07 \\u009B31m done (GET /control/apps)", text)
    local lines = {}
    local log = mx.logger({ stream = { write = function(_, s) lines[#lines + 1] = s end, flush = function() end } })
    log("step", "job failed: %s", "\27]0;pwned\7")
    assert.matches("job failed: \\x1B%]0;pwned\\x07\n$", lines[1])
  end)

  it("Retry-After counts only as digits or an HTTP date (row 13)", function()
    for _, v in ipairs({ "0x10", "-5", "1e-300" }) do
      local t0 = core.now()
      local ok, e = within(20, function()
        return mx.request({ url = h.url .. "/retryafter/x?v=" .. request.escape(v),
          retry = { max_retries = 1, base_delay = 0.3, jitter = 0, max_retry_after = 5 } })
      end)
      assert.is_false(ok)
      assert.are.equal(503, e.status)
      assert.are.equal(1, e.retries, v .. " was taken as a wait too long to honour")
      local waited = core.now() - t0
      assert.is_true(waited >= 0.3 and waited < 3, ("%s: waited %.2f s instead of our own backoff"):format(v, waited))
    end
  end)
end)

-- Issue 10 item 7 and issue 14 test 1: --trace at every level, retry decisions, no secret.
describe("an answer whose headers start with a folded line", function()
  local h
  setup(function() h = hostile.start() end)
  teardown(function() h:stop() end)

  -- libcurl 7.88 kept a pointer to the previous hop's last header and appended the folded line to
  -- freed memory (caught by the ASan build); each hop now has its own handle
  it("is a network error on the first hop and after a redirect, also for an upload", function()
    local file = P.tmpfile(("u"):rep(3000))
    for _, req in ipairs({
      { url = h.url .. "/folded" },
      { url = h.url .. "/redirect?s=302&to=/folded" },
      { url = h.url .. "/redirect?s=307&to=/folded/again", method = "POST", file = file },
      { url = h.url .. "/redirect?s=303&to=/folded/get", method = "POST", file = file },
    }) do
      local resp, err = core.http(req)
      assert.is_nil(resp, req.url)
      assert.are.same({ "network", true }, { err.kind, err.reached }, req.url)
    end
    os.remove(file)
    assert.are.equal(1, h:count("POST", "/folded/again")) -- the upload went on to the second hop
    assert.are.equal(1, h:count("GET", "/folded/get"))
    assert.are.equal(200, assert(core.http{ url = h.url .. "/redirect?s=302&to=/ok/fine" }).status)
    -- an upload with form fields follows a 307 whole: its body is built again for the new hop
    local up = P.tmpfile(("v"):rep(5000))
    local resp = assert(core.http{ url = h.url .. "/redirect?s=307&to=/ok/upload", method = "POST", file = up,
      form = { fileName = "p.mda", note = "x" }, timeout = 10 })
    os.remove(up)
    assert.are.same({ 200, 1 }, { resp.status, resp.redirects })
    assert.are.equal(1, h:count("POST", "/ok/upload"))
  end)
end)

describe("origins remembered by their scheme://authority text (issue 9)", function()
  local h
  setup(function() h = hostile.start() end)
  teardown(function() h:stop() end)

  it("a URL libcurl refuses is refused even when its origin was seen before", function()
    assert.are.equal(200, core.http{ url = h.url .. "/ok/seen" }.status)
    for _, bad in ipairs({ "/ok/a space", "/ok/tab\there", "/ok?q=line\nbreak", "/ok/del\127" }) do
      local ok, err = pcall(core.http, { url = h.url .. bad })
      assert.is_false(ok, bad)
      assert.matches("not an http%(s%) URL", err, 1, false)
    end
    assert.are.equal(200, core.http{ url = h.url .. "/ok/again?x=1#f" }.status)
  end)

  it("user info in the URL is not part of the origin: a same-origin redirect still counts as one", function()
    local userinfo = h.url:gsub("^http://", "http://someone:pw@")
    for _ = 1, 2 do -- the second time the origin of the plain prefix is remembered
      local resp = assert(core.http{ url = userinfo .. "/redirect?s=302&to=" .. h.url .. "/ok/back" })
      assert.are.same({ 200, 1 }, { resp.status, resp.redirects })
    end
    -- on the same origin the credentials a request carries follow the redirect, to another they do not
    local creds = core.credentials{ username = "u@example.com", apikey = APIKEY }
    local other = h.url:gsub("127%.0%.0%.1", "localhost")
    local same = assert(core.http{ url = h.url .. "/redirect?s=307&to=" .. h.url .. "/quote/same", auth = creds })
    local away = assert(core.http{ url = h.url .. "/redirect?s=307&to=" .. other .. "/quote/away", auth = creds })
    assert.matches("invalid key %*%*%*", same.body) -- the key arrived (and was scrubbed on the way back)
    assert.matches("invalid key  %(auth %)", away.body) -- nothing arrived
  end)
end)

describe("--trace", function()
  local h
  setup(function() h = hostile.start() end)
  teardown(function() h:stop() end)

  local function traced(level)
    local port = h.port
    return run_script(level, ([[
      local base = "http://someone:s3cret-pw@127.0.0.1:%d"
      local t = mx.spawn(function()
        return mx.request({ url = base .. "/slow/x?ms=400&token=tok-secret&page=2#frag-secret" })
      end)
      mx.sleep(0.2)
      for _, p in ipairs(mx.pending()) do print("pending", p.kind, p.what) end
      t:wait()
      local c = mx.connect({ username = "someone@example.com", apikey = %q, token = %q, retry = false,
        base_urls = { v1 = "http://127.0.0.1:%d/quote", v4 = "http://127.0.0.1:%d/quote" } })
      print("v1", pcall(c.v1.list_apps))
      print("v4", pcall(c.v4.list_apps))
      pcall(mx.request, { url = "http://127.0.0.1:%d/retryafter/x?v=0", retry = { max_retries = 2 } })
      pcall(mx.request, { method = "POST", url = "http://127.0.0.1:%d/retryafter/y?v=0", json = { apikey = %q },
        auth = c:credentials() })
    ]]):format(port, APIKEY, TOKEN, port, port, port, port, APIKEY))
  end

  local function assert_clean(out)
    local basic = "c29tZW9uZTpzM2NyZXQtcHc=" -- base64("someone:s3cret-pw"), curl's Basic auth
    for _, secret in ipairs({ "s3cret-pw", basic, "tok-secret", "frag-secret", APIKEY, TOKEN }) do
      assert.is_nil(out:find(secret, 1, true), secret .. " in the output:\n" .. out)
    end
    assert.is_nil(out:find("[\0-\8\11-\31\127]"), "raw control characters in the output")
  end

  it("one line per exchange and every retry decision, no secret", function()
    local code, out = traced("--trace")
    assert.are.equal(0, code, out)
    assert_clean(out)
    assert.matches("pending\thttp\tGET http://%*%*%*@127%.0%.0%.1:%d+/slow/x%?ms=400&token=%*%*%*&page=2#%*%*%*\n", out)
    assert.matches("%[http%] GET http://%*%*%*@127%.0%.0%.1:%d+/slow/x%?ms=400&token=%*%*%*&page=2#%*%*%* %-> 200 in", out)
    assert.matches("%[http%] retrying GET /retryafter/x in 0%.0 s after 503 %(attempt 2 of 3%)\n", out)
    assert.matches("%[http%] retrying GET /retryafter/x in 0%.0 s after 503 %(attempt 3 of 3%)\n", out)
    assert.matches("%[http%] not retrying GET /retryafter/x after 503: retries exhausted\n", out)
    assert.matches("%[http%] not retrying POST /retryafter/y after 503: non%-idempotent request reached the server\n", out)
    assert.is_nil(out:find("] > ", 1, true), "headers at the default level")
  end)

  it("--trace=headers shows headers with credentials redacted", function()
    local code, out = traced("--trace=headers")
    assert.are.equal(0, code, out)
    assert_clean(out)
    assert.matches("%[http #%d+%] > GET /slow/x%?ms=400&token=%*%*%*&page=2 HTTP/1%.1\n", out)
    assert.matches("%[http #%d+%] > Authorization: %*%*%*\n", out)
    assert.matches("%[http #%d+%] > Mendix%-ApiKey: %*%*%*\n", out)
    assert.matches("%[http #%d+%] > Mendix%-Username: %*%*%*\n", out)
    assert.matches("%[http #%d+%] < HTTP/1%.1 401 Unauthorized\n", out)
    assert.matches("%[http #%d+%] < X%-Seen%-Key: %*%*%*\n", out)
    assert.is_nil(out:find("body (", 1, true), "bodies at the headers level")
  end)

  it("refuses an unknown level", function()
    local code, out = run_script("--trace=everything", "print('ran')")
    assert.are.equal(2, code)
    assert.matches("unknown option '%-%-trace=everything'", out)
    local ok, e = pcall(mx.configure, { trace = "verbose" })
    assert.is_false(ok)
    assert.are.equal("bad argument #1 to 'configure' (trace must be a boolean, 'headers' or 'body', got 'verbose')", e.message)
  end)

  it("--trace=body adds the bodies, cut, with secrets scrubbed", function()
    local code, out = traced("--trace=body")
    assert.are.equal(0, code, out)
    assert_clean(out)
    assert.matches("%[http #%d+%] < body %(%d+ bytes%): {\"errorCode\":\"INVALID_KEY\",\"errorMessage\":\"invalid key %*%*%*", out)
    assert.matches("%[http #%d+%] > body: {\"apikey\":\"%*%*%*\"}", out)
    local big = os.tmpname()
    local code2, out2 = run_script("--trace=body", ([[
      print(pcall(mx.request, { url = "http://127.0.0.1:%d/endless/x", max_response_size = 100000 }))
    ]]):format(h.port))
    os.remove(big)
    assert.are.equal(0, code2, out2)
    assert.is_true(#out2 < 12000, "a body was not cut: " .. #out2 .. " bytes of trace")
  end)
end)

-- Issue 14 test 3: a cancelled download leaves the old file and no temporary file.
describe("cancelling a download in flight", function()
  local h, dir, out
  setup(function()
    h = hostile.start()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 " .. dir))
    out = dir .. "/pkg.mda"
  end)
  teardown(function()
    h:stop()
    os.execute("rm -rf " .. dir)
  end)
  before_each(function()
    local f = assert(io.open(out, "wb"))
    f:write("OLD CONTENT")
    f:close()
  end)

  local function listing()
    local p = io.popen("ls -A " .. dir)
    local names = p:read("a")
    p:close()
    return names
  end

  local function assert_untouched()
    assert.are.equal("OLD CONTENT", slurp(out), "the old file was changed")
    assert.are.equal("pkg.mda\n", listing(), "a temporary file was left behind")
  end

  local function wait_for_part()
    local deadline = core.now() + 10
    while not listing():find(".part", 1, true) do
      assert.is_true(core.now() < deadline, "the download did not start")
      core.sleep(0.02)
    end
  end

  local function slow_download()
    return mx.request({ url = h.url .. "/trickle/pkg?ms=50", output = out })
  end

  it("by task:cancel()", function()
    local t = core.spawn(slow_download)
    wait_for_part()
    core.sleep(0.2) -- some bytes are in the temporary file
    assert.is_true(t:cancel())
    assert.is_false(pcall(t.wait, t))
    assert_untouched()
  end)

  it("by mx.timeout", function()
    local ok, e = pcall(mx.timeout, 0.5, slow_download)
    assert.is_false(ok)
    assert.are.equal("timeout", e.kind)
    assert_untouched()
  end)

  it("by Ctrl-C through the command line", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(("mx.request({ url = %q, output = %q })\n"):format(h.url .. "/trickle/cli?ms=50", out))
    f:close()
    -- start it, wait (bounded) until the .part file exists, then SIGINT; a broken Ctrl-C fails
    -- within P.AFTER_SIGNAL seconds instead of trickling on
    local P = require("process")
    local child = P.start{ argv = { BIN, script } }
    wait_for_part()
    core.sleep(0.2)
    child:signal("INT")
    local code, _, err = child:wait(P.AFTER_SIGNAL)
    os.remove(script)
    assert.are.equal(130, code, err)
    assert_untouched()
  end)
end)
