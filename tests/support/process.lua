-- Child processes for the specs: run a command line to completion, or start one in the
-- background; read a file whole. Every wait is bounded: a child that hangs (a broken Ctrl-C, a
-- job that never ends) fails its test in seconds with its output, not at ctest's timeout.
--
--   local P = require("process")
--   local code, out, err = P.run("cmd args", { stdin = "text", merge = true, timeout = 30 })
--       -- raises "still running after 30 s" (with its output) when it did not finish in time
--   local pid, out_path = P.spawn("cmd args")      P.alive(pid)   P.kill(pid [, "TERM"])
--   local child = P.start{ argv = { BIN, "x.lua" }, dir = P.SOURCE, env = { X = "1" } }
--   child:wait_for("ready", 20)  child:signal("INT")  child:wait(P.AFTER_SIGNAL) -> code, out, err
--   P.slurp(path) -> text ("" when unreadable)      P.read(path) -> text or nil when unreadable
--   P.tmpfile(text) -> path    P.tmpdir() -> path of a fresh directory    P.quote(s)
local core = require("mxdeploy.core")

local P = {}

P.BIN = os.getenv("MXDEPLOY_BIN") or "mxdeploy"
P.SOURCE = os.getenv("MXDEPLOY_SOURCE_DIR") or "."
P.SLOW = os.getenv("MXDEPLOY_SANITIZED") == "ON" or os.getenv("MXDEPLOY_SANITIZED") == "1"
P.TIMEOUT = P.SLOW and 90 or 30 -- seconds P.run lets a command run unless told otherwise
P.AFTER_SIGNAL = P.SLOW and 15 or 5 -- seconds a child may take to end after SIGINT (it takes < 1)

function P.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- How many non-empty lines s has (an error message should be one).
function P.line_count(s)
  local n = 0
  for _ in s:gmatch("[^\n]+") do n = n + 1 end
  return n
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
-- stdout, in order, and the third result is ""). At most `opts.timeout` seconds (P.TIMEOUT):
-- then it is killed and the test fails with its output.
function P.run(cmdline, opts)
  opts = opts or {}
  local timeout = opts.timeout or P.TIMEOUT
  local out, err = os.tmpname(), os.tmpname()
  local input = opts.stdin and P.tmpfile(opts.stdin)
  local redirect = opts.merge and ("> %s 2>&1"):format(P.quote(out)) or ("> %s 2> %s"):format(P.quote(out), P.quote(err))
  local ok, how, code = os.execute(("timeout -k 2 %g sh -c %s %s < %s"):format(timeout, P.quote(cmdline), redirect,
    input and P.quote(input) or "/dev/null"))
  local o, e = P.slurp(out), P.slurp(err)
  os.remove(out); os.remove(err)
  if input then os.remove(input) end
  code = ok and 0 or (how == "exit" and code or 128 + code)
  if code == 124 or code == 137 then
    error(("killed: still running after %g s: %s\nstdout:\n%s\nstderr:\n%s"):format(timeout, cmdline,
      o:sub(-2000), e:sub(-2000)), 2)
  end
  return code, o, e
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

-- ---- a child whose end is waited for, bounded ----

local Child = {}
Child.__index = Child

--- Starts argv (exec'd, so the pid is the program's own) in `dir` with `env` added, stdout and
--- stderr to files of its own, in the background. Returns a child whose exit code can be waited
--- for (bounded).
function P.start(t)
  local c = setmetatable({ out = os.tmpname(), err = os.tmpname(), status = os.tmpname(),
    pidfile = os.tmpname(), argv = t.argv }, Child)
  os.remove(c.status)
  os.remove(c.pidfile)
  local words = {}
  for k, v in pairs(t.env or {}) do words[#words + 1] = k .. "=" .. P.quote(v) end
  for _, a in ipairs(t.argv) do words[#words + 1] = P.quote(a) end
  local inner = ("(%sexec env %s) > %s 2> %s < /dev/null & echo $! > %s.w; mv %s.w %s; wait $!; echo $? > %s.w; mv %s.w %s")
    :format(t.dir and ("cd " .. P.quote(t.dir) .. " && ") or "", table.concat(words, " "), c.out, c.err,
      c.pidfile, c.pidfile, c.pidfile, c.status, c.status, c.status)
  assert(os.execute("sh -c " .. P.quote(inner) .. " > /dev/null 2>&1 &"))
  local deadline = core.now() + 10
  while core.now() < deadline do
    c.pid = tonumber(P.slurp(c.pidfile):match("%d+"))
    if c.pid then break end
    core.sleep(0.01)
  end
  assert(c.pid, "the child did not start: " .. table.concat(t.argv, " "))
  return c
end

function Child:stdout() return P.slurp(self.out) end
function Child:stderr() return P.slurp(self.err) end

--- Waits until stdout or stderr contains `text` (plain); false when the child ended or `timeout`
--- passed first.
function Child:wait_for(text, timeout)
  local deadline = core.now() + (timeout or P.TIMEOUT)
  while core.now() < deadline do
    if self:stdout():find(text, 1, true) or self:stderr():find(text, 1, true) then return true end
    if self:done() then return false end
    core.sleep(0.05)
  end
  return false
end

function Child:done()
  return P.slurp(self.status):match("%d+") ~= nil
end

function Child:signal(name)
  os.execute(("kill -%s %d 2>/dev/null"):format(name, self.pid))
  self.last_signal = name
end

--- Waits for the child to end, at most `timeout` seconds (then kills it). Returns its exit code
--- (128 + signal number when a signal ended it), stdout, stderr; the code is nil and stderr ends
--- with a line saying so when it did not end in time.
function Child:wait(timeout)
  local deadline = core.now() + (timeout or P.TIMEOUT)
  while not self:done() and core.now() < deadline do core.sleep(0.05) end
  local late
  if not self:done() then
    late = ("\n[process] killed: still running %g s %s: %s\n"):format(timeout or P.TIMEOUT,
      self.last_signal and ("after SIG" .. self.last_signal) or "after it started", table.concat(self.argv, " "))
    self:signal("KILL")
    local grace = core.now() + 5
    while not self:done() and core.now() < grace do core.sleep(0.05) end
  end
  local code = tonumber(P.slurp(self.status):match("%d+"))
  local o, e = self:stdout(), self:stderr()
  for _, f in ipairs({ self.out, self.err, self.status, self.pidfile }) do os.remove(f) end
  if late then return nil, o, e .. late end
  return code, o, e
end

return P
