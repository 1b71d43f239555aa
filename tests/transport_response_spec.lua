-- The response table of core.http and mx.request (issue 9): its headers are built when first
-- asked for, yet every way of reading them works; JSON answers are decoded by the transport
-- (decode_json), exactly where request.lua's Content-Type test decoded them before.
-- Real HTTP against tests/support/hostile.c on 127.0.0.1.
local core = require("mxdeploy.core")
local json = require("mxdeploy.json")
local hostile = require("hostile")
local escape = require("mxdeploy.request").escape

local h
setup(function() h = hostile.start() end)
teardown(function() h:stop() end)

local function typed(ct, body, status)
  local q = {}
  if ct then q[#q + 1] = "ct=" .. escape(ct) end
  if body then q[#q + 1] = "body=" .. escape(body) end
  if status then q[#q + 1] = "s=" .. escape(status) end
  return h.url .. "/typed" .. (#q > 0 and ("?" .. table.concat(q, "&")) or "")
end

describe("resp.headers", function()
  it("is an ordinary table once read: indexing, a repeated header joined, next and pairs", function()
    local resp = assert(core.http{ url = typed("application/json") })
    assert.is_nil(rawget(resp, "headers")) -- not built by the transport
    local headers = resp.headers
    assert.are.equal("table", type(headers))
    assert.is_nil(getmetatable(headers))
    assert.are.equal("application/json", headers["content-type"])
    assert.are.equal("one, two", headers["x-twice"])
    assert.are.equal("typed-1", headers["x-request-id"])
    assert.are.equal(headers, rawget(resp, "headers")) -- kept: the same table every time
    assert.are.equal(headers, resp.headers)
    local names = {}
    for k in next, headers do names[#names + 1] = k end
    table.sort(names)
    assert.are.same({ "content-length", "content-type", "x-request-id", "x-twice" }, names)
  end)

  it("is there for pairs() over the response, and for json.encode, before anything read it", function()
    local resp = assert(core.http{ url = typed("text/plain") })
    local seen
    for k, v in pairs(resp) do if k == "headers" then seen = v end end
    assert.are.equal("text/plain", seen and seen["content-type"])
    local again = assert(core.http{ url = typed("text/plain") })
    local decoded = json.decode(json.encode(again))
    assert.are.equal("one, two", decoded.headers["x-twice"])
    assert.are.equal(200, decoded.status)
  end)

  it("prints in the REPL with its headers", function()
    local pretty = require("mxdeploy.host.repl").pretty
    local resp = assert(core.http{ url = typed("text/plain") })
    local text = pretty(resp)
    assert.matches('%["x%-request%-id"%] = "typed%-1"', text)
    assert.matches("status = 200", text)
  end)

  it("can be replaced or removed by the caller like any field", function()
    local resp = assert(core.http{ url = typed("text/plain") })
    resp.headers = { mine = "yes" }
    assert.are.same({ mine = "yes" }, resp.headers)
    local other = assert(core.http{ url = typed("text/plain") })
    assert.is_nil(other.missing) -- other fields: nil as before
  end)

  it("feed errors: request id, Retry-After, a redirect's Location", function()
    local ok, e = pcall(mx.request, { url = typed("application/json", '{"errorMessage":"nope"}', "409 Conflict"), retry = false })
    assert.is_false(ok)
    assert.are.same({ "http", 409, "typed-1", "nope" }, { e.kind, e.status, e.request_id, e.message })
    assert.are.equal("one, two", e.headers["x-twice"])
    ok, e = pcall(mx.request, { url = h.url .. "/retryafter?v=4000", retry = { max_retry_after = 5 } })
    assert.is_false(ok)
    assert.are.same({ 503, "4000" }, { e.status, e.retry_after })
    local resp = mx.request{ url = h.url .. "/redirect?s=302&to=/ok/there", max_redirects = 0 }
    assert.are.equal("/ok/there", resp.headers.location)
    ok, e = pcall(mx.request, { url = h.url .. "/loop/x", retry = false, max_redirects = 2 })
    assert.is_false(ok)
    assert.matches("last Location: /loop/x", e.message, 1, true)
  end)
end)

describe("decode_json", function()
  it("decodes a JSON answer into resp.json as request.lua's Content-Type test did", function()
    local cases = {
      { "application/json", true },
      { "application/json; charset=utf-8", true },
      { "application/problem+json", true },
      { "application/vnd.mendix.v2+json", true },
      { "text/x-whatever+json", true },
      { "application/x-json-stream", true },
      { "application/jsonlines", true },
      { "text/json", false },
      { "Application/JSON", false }, -- as before: the test was case-sensitive
      { "text/plain", false },
      { "application/octet-stream, application/json", true }, -- a repeated header, joined
      { nil, false },
    }
    for _, c in ipairs(cases) do
      local resp = assert(core.http{ url = typed(c[1], '{"n":[1,2]}'), decode_json = true })
      if c[2] then
        assert.are.same({ n = { 1, 2 } }, resp.json, tostring(c[1]))
        assert.is_true(json.is_array(resp.json.n))
      else
        assert.is_nil(resp.json, tostring(c[1]))
      end
      assert.is_nil(resp.json_error)
      assert.are.equal('{"n":[1,2]}', resp.body)
    end
  end)

  it("is off unless asked for, and skips an empty body", function()
    local resp = assert(core.http{ url = typed("application/json", '{"n":1}') })
    assert.is_nil(resp.json)
    resp = assert(core.http{ url = typed("application/json", ""), decode_json = true })
    assert.are.same({ "", nil, nil }, { resp.body, resp.json, resp.json_error })
  end)

  it("says why a malformed JSON answer could not be read, and mx.request still answers", function()
    local resp = assert(core.http{ url = typed("application/json", '{"n":'), decode_json = true })
    assert.is_nil(resp.json)
    assert.matches("^invalid JSON", resp.json_error)
    local r = mx.request{ url = typed("application/json", "[1,"), retry = false }
    assert.are.same({ 200, nil }, { r.status, r.json })
    assert.matches("invalid JSON", r.json_error)
  end)

  it("decodes an error answer for the error's message (mx.request)", function()
    local ok, e = pcall(mx.request, { url = typed("application/problem+json", '{"errorCode":"X","errorMessage":"why"}', "400 Bad Request"), retry = false })
    assert.is_false(ok)
    assert.are.same({ "X", "why" }, { e.code, e.message })
    assert.are.equal("X", e.body.errorCode)
  end)

  it("decodes in a task and when blocking outside one", function()
    local t = core.spawn(function() return core.http{ url = typed("application/json", "[7]"), decode_json = true } end)
    assert.are.same({ 7 }, t:wait().json)
    local blocked = { ("x"):gsub("x", function()
      return tostring(core.http{ url = typed("application/json", "[8]"), decode_json = true }.json[1])
    end) }
    assert.are.equal("8", blocked[1])
  end)

  it("does not decode a download written to a file", function()
    local out = os.tmpname()
    local resp = assert(core.http{ url = typed("application/json", '{"n":1}'), output = out, decode_json = true })
    assert.are.same({ out, nil, nil }, { resp.file, resp.body, resp.json })
    local f = assert(io.open(out))
    assert.are.equal('{"n":1}', f:read("a"))
    f:close()
    os.remove(out)
  end)
end)


describe("User-Agent and Accept-Encoding (sent from the header list, issue 9)", function()
  it("go out once each, and a compressed answer is decoded", function()
    local resp = assert(core.http{ url = h.url .. "/gzip", decode_json = true })
    assert.are.equal("gzip", resp.headers["content-encoding"])
    assert.are.equal("mxdeploy/0.1 (+libcurl)", resp.json.user_agent)
    local offered = {}
    for enc in resp.json.accept_encoding:gmatch("[^, ]+") do offered[#offered + 1] = enc end
    assert.is_truthy(resp.json.accept_encoding:find("gzip", 1, true))
    assert.is_falsy(resp.json.accept_encoding:find("|", 1, true))
    assert.are.equal(#offered, #resp.json.accept_encoding:gsub("[^,]", "") + 1)
  end)

  it("are replaced, not doubled, by a caller's own (any case)", function()
    local resp = assert(core.http{ url = h.url .. "/gzip", decode_json = true,
      headers = { ["user-agent"] = "mine/1", ["ACCEPT-ENCODING"] = "gzip" } })
    assert.are.same({ "mine/1", "gzip" }, { resp.json.user_agent, resp.json.accept_encoding })
  end)

  it("go to every hop of a redirect", function()
    local resp = assert(core.http{ url = h.url .. "/redirect?s=302&to=/gzip/after", decode_json = true })
    assert.are.same({ 1, "mxdeploy/0.1 (+libcurl)" }, { resp.redirects, resp.json.user_agent })
    assert.is_truthy(resp.json.accept_encoding:find("gzip", 1, true))
  end)
end)
