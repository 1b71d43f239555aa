-- Every string reachable from a value (keys and values, cycles followed once), for the specs'
-- secret checks:   local strings_of = require("strings_of");  strings_of(err) -> list
local function strings_of(v, out, seen)
  out, seen = out or {}, seen or {}
  if type(v) == "string" then out[#out + 1] = v
  elseif type(v) == "table" and not seen[v] then
    seen[v] = true
    for k, x in pairs(v) do strings_of(k, out, seen); strings_of(x, out, seen) end
  end
  return out
end

return strings_of
