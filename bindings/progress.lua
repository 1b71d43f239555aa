-- mxdeploy.progress: renders transfer progress for scripts and the CLI.
--
--   local bar = mx.progress("upload app.mda")
--   mx.v2.upload_package(app, file, {on_progress = bar})
--
-- On a terminal (stderr) it redraws one line with a bar; elsewhere (logs, CI) it prints a line
-- at every quarter, so logs stay short.

local M = {}

--- Bytes as people read them, binary units: "512 B", "9.4 KB", "12.0 MB", "1.02 GB". The one size
--- formatter of the module (progress lines, scripts' logs through mx.format_size).
function M.format_size(n)
  if n >= 2 ^ 30 then return ("%.2f GB"):format(n / 2 ^ 30) end
  if n >= 2 ^ 20 then return ("%.1f MB"):format(n / 2 ^ 20) end
  if n >= 2 ^ 10 then return ("%.1f KB"):format(n / 2 ^ 10) end
  return ("%d B"):format(math.floor(n))
end
local human = M.format_size

local function stderr_is_tty()
  local ok, term = pcall(os.getenv, "TERM")
  if not ok or not term or term == "dumb" then return false end
  return os.execute("test -t 2") == true
end

--- Returns a callback on_progress(done, total, direction) that renders under `label`.
function M.new(label, opts)
  opts = opts or {}
  local out = opts.stream or io.stderr
  local tty = opts.tty
  if tty == nil then tty = stderr_is_tty() end
  local last_quarter = -1
  return function(done, total)
    if not total or total <= 0 then return end
    local share = math.min(done / total, 1)
    if tty then
      local width = 30
      local filled = math.floor(share * width + 0.5)
      out:write(("\r%s [%s%s] %3d%% %s / %s"):format(label, ("#"):rep(filled), ("."):rep(width - filled),
        math.floor(share * 100), human(done), human(total)))
      if share >= 1 then out:write("\n") end
    else
      local quarter = math.floor(share * 4)
      if quarter > last_quarter then
        last_quarter = quarter
        out:write(("%s: %d%% of %s\n"):format(label, quarter * 25, human(total)))
      end
    end
    out:flush()
  end
end

--- A step log for workflow scripts: log(step, fmt, ...) writes "[  12.3s] step      message"
--- (seconds since the logger was made) to stdout, flushed, so a long run shows where it is.
function M.logger(opts)
  opts = opts or {}
  local out = opts.stream or io.stdout
  local core = require("mxdeploy.core")
  local now = core.now
  local started = now()
  return function(step, fmt, ...)
    -- server text (a job's failure reason) reaches a terminal: control characters escaped
    local text = core.printable(fmt:format(...))
    out:write(("[%6.1fs] %-9s %s\n"):format(now() - started, step, text))
    out:flush()
  end
end

return M
