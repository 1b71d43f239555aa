-- Child processes for the specs: run a command line to completion, or start one in the
-- background; read a file whole.
--
--   local P = require("process")
--   local code, out, err = P.run("cmd args", { stdin = "text", merge = true })
--   local pid, out_path = P.spawn("cmd args")      P.alive(pid)   P.kill(pid [, "TERM"])
--   P.slurp(path) -> text ("" when unreadable)      P.read(path) -> text or nil when unreadable
--   P.tmpfile(text) -> path    P.tmpdir() -> path of a fresh directory    P.quote(s)
local P = {}

P.BIN = os.getenv("MXDEPLOY_BIN") or "mxdeploy"
P.SOURCE = os.getenv("MXDEPLOY_SOURCE_DIR") or "."

function P.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

function P.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function P.slurp(path)
  return P.read(path) or ""
end

function P.tmpfile(content)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

function P.tmpdir()
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute("mkdir " .. P.quote(path)))
  return path
end

-- Runs a shell command line with stdin from `opts.stdin` (else /dev/null); returns the exit
-- code (128 + the signal when one ended it), stdout and stderr (`merge`: stderr goes into
-- stdout, in order, and the third result is "").
function P.run(cmdline, opts)
  opts = opts or {}
  local out, err = os.tmpname(), os.tmpname()
  local input = opts.stdin and P.tmpfile(opts.stdin)
  local redirect = opts.merge and ("> %s 2>&1"):format(P.quote(out)) or ("> %s 2> %s"):format(P.quote(out), P.quote(err))
  local ok, how, code = os.execute(("{ %s ; } %s < %s"):format(cmdline, redirect, input and P.quote(input) or "/dev/null"))
  local o, e = P.slurp(out), P.slurp(err)
  os.remove(out); os.remove(err)
  if input then os.remove(input) end
  if ok then return 0, o, e end
  return (how == "exit" and code or 128 + code), o, e
end

-- Starts a simple command (one program and its arguments: the pid is the program's) in the
-- background with stdout and stderr in a fresh file; returns its pid and the file's path (the
-- caller removes it).
function P.spawn(cmdline)
  local out, pidfile = os.tmpname(), os.tmpname()
  assert(os.execute(("%s > %s 2>&1 < /dev/null & echo $! > %s"):format(cmdline, P.quote(out), P.quote(pidfile))))
  local pid = tonumber(P.slurp(pidfile):match("%d+"))
  os.remove(pidfile)
  return pid, out
end

function P.alive(pid)
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

function P.kill(pid, signal)
  os.execute(("kill -%s %d 2>/dev/null"):format(signal or "TERM", pid))
end

return P
