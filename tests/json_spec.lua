-- mxdeploy.json (host/json.c on yajl): one pass from text to Lua values with exact integers and
-- array markers; encoding that refuses cycles at once, stays linear, round-trips floats, never
-- escapes "/", and writes indented, key-sorted text for people.
local json = require("mxdeploy.json")
local core = require("mxdeploy.core")
local mx = require("mxdeploy")
-- time bounds: far below what the quadratic/exponential code took, with room for the sanitizers
local slow = os.getenv("MXDEPLOY_SANITIZED") == "ON" and 4 or 1

describe("json decoding", function()
  it("keeps integers past 2^53 exact and arrays marked, in one pass", function()
    local v = json.decode('{"id": 9007199254740993, "list": [], "n": null, "f": 1.5, "neg": -12}')
    assert.are.equal(9007199254740993, v.id)
    assert.are.equal("integer", math.type(v.id))
    assert.is_true(json.is_array(v.list))
    assert.are.equal(json.null, v.n)
    assert.are.equal("float", math.type(v.f))
    assert.are.equal(-12, v.neg)
    assert.are.equal("float", math.type(json.decode("123456789012345678901234")))
  end)

  it("decodes 4 MB nested 998 deep in well under a second, and refuses 1001 levels", function()
    local inner = string.rep("x", 4 * 1024 * 1024)
    local text = string.rep('{"a":[', 499) .. '"' .. inner .. '"' .. string.rep("]}", 499)
    local t0 = core.now()
    local v = json.decode(text)
    local took = core.now() - t0
    for _ = 1, 499 do v = v.a[1] end
    assert.are.equal(#inner, #v)
    assert.is_true(took < 1.0 * slow, ("decode took %.2f s"):format(took))
    local ok, err = pcall(json.decode, string.rep("[", 1001) .. string.rep("]", 1001))
    assert.is_false(ok)
    assert.matches("nesting deeper than 1000", err)
  end)

  it("says where the text is broken", function()
    local ok, err = pcall(json.decode, '{"a": [1, 2,]}')
    assert.is_false(ok)
    assert.matches("^invalid JSON: .* at byte %d+$", err)
    assert.is_false((pcall(json.decode, "")))
    assert.is_false((pcall(json.decode, "1 2")))
    assert.is_false((pcall(json.decode, "NaN")))
  end)
end)

  -- yajl's parser was freed by the collector, which does not see its buffers: 4,096 tasks
  -- decoding answers held 13 MB of finished parsers (issue 9). Under ASan freed memory sits in
  -- its quarantine, so the resident size says nothing there.
  local sanitized = os.getenv("MXDEPLOY_SANITIZED") == "ON"
  ;(sanitized and pending or it)("frees its parser when a decode ends, not when the GC gets to it", function()
    local function rss_kb()
      local f = assert(io.open("/proc/self/status"))
      local kb = tonumber(f:read("a"):match("VmRSS:%s*(%d+)"))
      f:close()
      return kb
    end
    local text = "[" .. string.rep('{"a":1,"b":"x"},', 20) .. "{}]"
    collectgarbage("collect")
    collectgarbage("stop")
    local keep = {}
    for i = 1, 50 do keep[i] = json.decode(text) end -- warm up malloc's arenas
    local rss0, heap0 = rss_kb(), collectgarbage("count")
    for i = 1, 6000 do keep[i % 100 + 1] = json.decode(text) end
    local c_growth = math.floor((rss_kb() - rss0) - (collectgarbage("count") - heap0))
    collectgarbage("restart")
    -- a parser and its buffers are ~3 KB: 6,000 left to the GC were ~18 MB
    assert.is_true(c_growth < 4096, ("memory outside the Lua heap grew %d KB"):format(c_growth))
  end)

  -- tables are made when their container closes, and large ones flushed every 512 stack slots
  it("decodes containers of any size, nested inside large ones, repeated keys keeping the last", function()
    for _, n in ipairs({ 0, 1, 255, 256, 257, 511, 512, 513, 1024, 1500, 100000 }) do
      local items, pairs_ = {}, {}
      for i = 1, n do
        items[i] = (i % 7 == 0) and ('{"i":' .. i .. ',"l":[' .. i .. ',null,true]}') or tostring(i)
        pairs_[i] = ('"k%d":%d'):format(i, i)
      end
      local arr = json.decode("[" .. table.concat(items, ",") .. "]")
      assert.are.equal(n, #arr)
      assert.is_true(json.is_array(arr))
      for i = 1, n do
        if i % 7 == 0 then
          assert.are.equal(i, arr[i].i)
          assert.are.equal(i, arr[i].l[1])
          assert.are.equal(json.null, arr[i].l[2])
          assert.is_true(json.is_array(arr[i].l))
        else
          assert.are.equal(i, arr[i])
        end
      end
      local obj = json.decode("{" .. table.concat(pairs_, ",") .. (n > 0 and "," or "") .. '"k1":"last"}')
      local count = 0
      for _ in pairs(obj) do count = count + 1 end
      assert.are.equal(math.max(n, 1), count)
      assert.are.equal("last", obj.k1)
      if n >= 2 then assert.are.equal(n, obj["k" .. n]) end
    end
    -- a repeated key across a flush keeps its last value too
    local many = {}
    for i = 1, 600 do many[i] = ('"k%d":%d'):format(i, i) end
    local v = json.decode('{"dup":1,' .. table.concat(many, ",") .. ',"dup":2}')
    assert.are.equal(2, v.dup)
    assert.are.same({ { {} }, {} }, json.decode("[[[]],{}]"))
  end)

describe("json encoding", function()
  it("refuses a table that contains itself at once (it ran for minutes)", function()
    local t = {}
    t.a = t
    t.b = t
    local t0 = core.now()
    local ok, err = pcall(json.encode, t)
    assert.is_false(ok)
    assert.matches("cycle", err)
    assert.is_true(core.now() - t0 < 0.5 * slow)
    local shared = { 1 } -- the same table twice is no cycle
    assert.are.equal('{"x":[1],"y":[1]}', json.encode({ x = shared, y = shared }, { sort_keys = true }))
  end)

  it("stays linear on a large value", function()
    local list = {}
    for i = 1, 100000 do list[i] = { id = i, name = "env-" .. i, on = true } end
    local t0 = core.now()
    local text = json.encode(list)
    local took = core.now() - t0
    assert.is_true(took < 2.0 * slow, ("encode took %.2f s"):format(took))
    assert.are.equal(100000, #json.decode(text))
  end)

  it("round-trips floats with the shortest exact text", function()
    for _, x in ipairs({ 0.1, 0.1 + 0.2, 1 / 3, 2 ^ -1074, 1.7976931348623157e308, -2.5e-8, 123456.789 }) do
      local text = json.encode(x)
      assert.are.equal(x, json.decode(text), text)
    end
    assert.are.equal("0.30000000000000004", json.encode(0.1 + 0.2))
    assert.are.equal("0.1", json.encode(0.1))
    assert.are.equal("9007199254740993", json.encode(9007199254740993))
    assert.has_error(function() json.encode(0 / 0) end)
    assert.has_error(function() json.encode(math.huge) end)
  end)

  it("keeps -0.0 a float, so encoding what it decoded is a fixed point (found by fuzz_json)", function()
    local text = json.encode(json.decode("[-0.0e0]"))
    assert.are.equal("[-0.0]", text)
    assert.are.equal(text, json.encode(json.decode(text)))
    assert.is_true(math.type(json.decode(text)[1]) == "float" and 1 / json.decode(text)[1] < 0)
  end)

  it("never escapes /", function()
    assert.are.equal('{"url":"https://calc.mendixcloud.com/a/b"}',
      json.encode({ url = "https://calc.mendixcloud.com/a/b" }))
  end)

  it("writes indented, key-sorted text with {indent = true, sort_keys = true}", function()
    local v = { b = 1, a = { 3, { z = json.null, y = "s" } }, c = {}, d = json.array() }
    assert.are.equal(table.concat({
      "{",
      '  "a": [',
      "    3,",
      "    {",
      '      "y": "s",',
      '      "z": null',
      "    }",
      "  ],",
      '  "b": 1,',
      '  "c": {},',
      '  "d": []',
      "}" }, "\n"), json.encode(v, { indent = true, sort_keys = true }))
    assert.are.equal('{"a":[3,{"y":"s","z":null}],"b":1,"c":{},"d":[]}', json.encode(v, { sort_keys = true }))
    assert.are.equal('{\n    "k": 1\n}', json.encode({ k = 1 }, { indent = 4 }))
    local ok, err = pcall(json.encode, {}, { indnet = true })
    assert.is_false(ok)
    assert.matches("unknown option 'indnet'", err)
  end)

  it("keeps lua-cjson's choices for plain tables", function()
    assert.are.equal("[1,null,3]", json.encode({ 1, nil, 3 }))
    assert.are.equal('{"1":"a","x":1}', json.encode({ [1] = "a", x = 1 }, { sort_keys = true }))
    assert.has_error(function() json.encode({ [1] = 1, [1000] = 2 }) end) -- excessively sparse
    assert.has_error(function() json.encode({ [true] = 1 }) end)
    assert.has_error(function() json.encode({ f = print }) end)
  end)
end)

describe("request bodies", function()
  it("go out without \\/ (the sandbox logs what it received)", function()
    local sb = require("mxdeploy.sandboxctl").start{ time_scale = 0.001 }
    finally(function() sb:stop() end)
    local c = mx.sandbox_client(sb)
    local resp = mx.request{ method = "POST", url = sb.url .. "/deploy/api/1/apps/calc/environments/Test/start",
                             json = { AutoSyncDb = true, Note = "https://example.com/a/b" }, raw = true,
                             retry = false, auth = c:credentials(), auth_scheme = "apikey" }
    assert.is_number(resp.status)
    local seen
    for _, r in ipairs(sb:requests()) do
      if r.method == "POST" and r.body then seen = r.body end
    end
    assert.is_string(seen)
    assert.truthy(seen:find('"https://example.com/a/b"', 1, true))
    assert.is_nil(seen:find("\\/", 1, true))
  end)
end)
