-- Bench (d): streamed upload + download of a large sparse file through the sandbox.
-- Usage: mxdeploy bench/upload.lua [size, default 1000M]
-- The sandbox runs in this process; the client (bench/upload_client.lua) is a separate mxdeploy
-- process so that its peak RSS is the client's alone. 1000M (1000 MiB, over 1 GB decimal) stays
-- under the 1 GiB limit the sandbox applies to the whole multipart body.
local B = dofile((arg[0]:match("^(.*/)") or "./") .. "lib.lua")
local SIZE = arg[1] or "1000M"
local dir = (arg[0]:match("^(.*/)") or "./")

local sb = require("mxdeploy.sandboxctl").start{ time_scale = 0.001 }
assert(sb.url:match("^http://127%.0%.0%.1:"), sb.url)
local tmp = B.tmpdir()
local ok, err = pcall(function()
  local big, out = tmp .. "/big.mda", tmp .. "/out.mda"
  assert(os.execute(("truncate -s %s %q"):format(SIZE, big)))
  -- blocks this thread; the sandbox serves from its own thread meanwhile
  local cmd = ("SB_URL=%q SB_USER=%q SB_KEY=%q timeout 600 %q %q %q %q"):format(
    sb.url, sb.username, sb.apikey, B.bin(), dir .. "upload_client.lua", big, out)
  local p = assert(io.popen(cmd))
  local text = p:read("a")
  local closed, how, code = p:close()
  io.stdout:write(text)
  assert(closed, ("client failed (%s %s)"):format(how, code))
  local same = os.execute(("cmp -s %q %q"):format(big, out))
  local size = assert(io.open(big, "rb")):seek("end")
  B.row(("upload+download %.0f MiB"):format(size / 2 ^ 20), "downloaded bytes identical", same and "yes" or "no", "yes", same and true or false)
end)
B.rmdir(tmp)
sb:stop()
if not ok then error(err, 0) end
