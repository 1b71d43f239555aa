-- The client side of bench/upload.lua: uploads arg[1] with v2.upload_package, waits for the
-- job, downloads the package to arg[2] with build.download_package, prints ROW lines.
local B = dofile((arg[0]:match("^(.*/)") or "./") .. "lib.lua")
local file, out = arg[1], arg[2]
local size = assert(io.open(file, "rb")):seek("end")
local url = os.getenv("SB_URL")
assert(url:match("^http://127%.0%.0%.1:"), url)
local c = mx.connect{ username = os.getenv("SB_USER"), apikey = os.getenv("SB_KEY"),
  base_urls = { v2 = url .. "/deploy/api/v2", build = url .. "/deploy/api/1" } }

local t0 = mx.now()
local done = c.v2.upload_package("calc", file, { name = "bench-1.0.0.0.mda" }):wait{ timeout = 300 }
local t_up = mx.now() - t0
local hwm_up = B.status_kb("VmHWM")
local t1 = mx.now()
c.build.download_package("calc", done.PackageId, out)
local t_down = mx.now() - t1
local hwm = B.status_kb("VmHWM")

local mib = size / 2 ^ 20
local name = ("upload+download %.0f MiB"):format(mib)
B.row(name, "upload throughput (incl. job)", ("%.0f MiB/s (%.2f s)"):format(mib / t_up, t_up), nil, nil)
B.row(name, "download throughput", ("%.0f MiB/s (%.2f s)"):format(mib / t_down, t_down), nil, nil)
B.row(name, "client peak RSS after upload", B.mb(hwm_up), "< 64 MB", hwm_up < 64 * 1024)
B.row(name, "client peak RSS after download", B.mb(hwm), "< 64 MB", hwm < 64 * 1024)
