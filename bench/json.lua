-- JSON decode cost: a 667-byte Deploy v1 environments answer and a large list (10,000 of its
-- environments, about 1.6 MB), decoded in a loop by mxdeploy.json; prints microseconds per decode.
-- usage: mxdeploy bench/json.lua [rounds-scale [small|large]]     (not part of ctest)
-- Instruction counts of json_decode alone (the command in bench/README.md):
--   valgrind --tool=callgrind --toggle-collect=json_decode mxdeploy bench/json.lua 0.01 small
local json = require("mxdeploy.json")
local scale = tonumber(arg and arg[1]) or 1
local only = arg and arg[2]

local function env(i, mode)
  return string.format('{"Status":"Running","Mode":"%s","Url":"https://calc-app-%s.mendixcloud.com",'
    .. '"ModelVersion":"1.2.%d.%d","MendixVersion":"10.6.1.%d","Production":%s,'
    .. '"EnvironmentId":"%08x-4d1b-4c5a-9f3e-0c5f%08x"}', mode, mode:lower(), i % 10, 1000 + i,
    24000 + i, mode == "Production" and "true" or "false", i, i * 7919)
end
local small = "[" .. table.concat({ env(1, "Test"), env(2, "Acceptance"), env(3, "Production") }, ",") .. "]\n"
local parts = {}
for i = 1, 10000 do parts[i] = env(i, ({ "Test", "Acceptance", "Production" })[i % 3 + 1]) end
local large = "[" .. table.concat(parts, ",") .. "]"

local function per_decode(text, n)
  for _ = 1, math.max(1, n // 10) do json.decode(text) end -- warm up
  local t0 = os.clock()
  for _ = 1, n do json.decode(text) end
  return (os.clock() - t0) / n * 1e6
end

if only ~= "large" then print(string.format("small %d bytes: %.2f us/decode", #small, per_decode(small, math.floor(200000 * scale)))) end
if only ~= "small" then print(string.format("large %d bytes: %.0f us/decode", #large, per_decode(large, math.max(1, math.floor(20 * scale))))) end
