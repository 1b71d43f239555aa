-- The interactive REPL through a real terminal: mxdeploy (no arguments) runs in a tmux pane,
-- keys go in with send-keys, the screen comes back with capture-pane. Every wait is a bounded
-- poll of the screen; a failed wait reports what the screen showed.
local core = require("mxdeploy.core")

local BIN = os.getenv("MXDEPLOY_BIN")
local SLOW = os.getenv("MXDEPLOY_SANITIZED") == "ON" or os.getenv("MXDEPLOY_SANITIZED") == "1"
local WAIT = SLOW and 30 or 10 -- seconds any single expected screen change may take
-- what a Ctrl-C or Ctrl-D does shows within a second: a broken key fails its test in 5 s, not 10
local KEY_WAIT = SLOW and 15 or 5

local P = require("process")
local sh_quote = P.quote

local function have_tmux()
  return os.execute("command -v tmux >/dev/null 2>&1") == true
end

local Term = {}
Term.__index = Term

-- Starts mxdeploy on a fresh tmux server (own socket, no user config) in a 200x50 pane. The
-- pane's command prints "[exit N]" when mxdeploy ends, then stays so the screen can be read.
local function start(history)
  assert(have_tmux(), "tmux is not installed: the REPL terminal tests need it (run tools/install-deps)")
  local self = setmetatable({}, Term)
  self.socket = os.tmpname() -- a fresh path for the server's socket, removed by stop()
  os.remove(self.socket)
  local inner = table.concat({
    "env -u MENDIX_USERNAME -u MENDIX_APIKEY -u MENDIX_TOKEN",
    "MXDEPLOY_CREDENTIALS=/nonexistent INPUTRC=/dev/null TERM=screen",
    "MXDEPLOY_HISTORY=" .. sh_quote(history),
    sh_quote(BIN) .. "; echo \"[exit $?]\"; sleep 120",
  }, " ")
  self:tmux("new-session -d -s repl -x 200 -y 50 " .. sh_quote(inner))
  return self
end

function Term:tmux(args, want_output)
  local cmd = ("tmux -S %s -f /dev/null %s 2>&1"):format(sh_quote(self.socket), args)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  if not want_output then assert(ok, "tmux " .. args .. " failed: " .. out) end
  return out, ok
end

function Term:stop()
  -- End a REPL that is still running before the terminal goes away: killing the server hangs up
  -- its pane, and an orphaned ASan build then spins forever in LeakSanitizer's exit check
  -- (the hangup path itself is tested in signals_spec, without a terminal).
  local pane = self:tmux("display -p -t repl '#{pane_pid}'", true):match("%d+")
  if pane then os.execute("pkill -KILL -P " .. pane .. " 2>/dev/null") end
  self:tmux("kill-server", true)
  os.remove(self.socket)
end

--- Types text literally (no Enter).
function Term:type(text)
  self:tmux("send-keys -t repl -l -- " .. sh_quote(text))
end

--- Presses keys by tmux name: "Enter", "Tab", "C-c", "C-d", "C-u", "Up".
function Term:key(...)
  for _, k in ipairs({ ... }) do self:tmux("send-keys -t repl " .. k) end
end

--- Types a line and presses Enter.
function Term:line(text)
  self:type(text)
  self:key("Enter")
end

--- The whole pane (scrollback included), wrapped lines joined, trailing blank lines dropped.
function Term:screen()
  local out = self:tmux("capture-pane -p -J -S -1000 -t repl", true)
  return (out:gsub("%s+$", ""))
end

function Term:lines()
  local t = {}
  for l in (self:screen() .. "\n"):gmatch("(.-)\n") do t[#t + 1] = l end
  return t
end

--- Polls until check(screen) returns a true value (returned), or fails showing the screen.
function Term:wait(what, check, timeout)
  local deadline = core.now() + (timeout or WAIT)
  local s
  repeat
    s = self:screen()
    local v = check(s)
    if v then return v end
    core.sleep(0.05)
  until core.now() > deadline
  error(("timed out waiting for %s; the screen shows:\n%s"):format(what, s), 2)
end

--- Waits until the screen shows `text` (plain) on a line of its own.
function Term:wait_line(text, timeout)
  return self:wait("a line " .. ("%q"):format(text), function()
    for _, l in ipairs(self:lines()) do
      if l == text then return true end
    end
  end, timeout)
end

--- Waits until the last line of the screen is exactly `prompt` (trailing spaces are trimmed).
function Term:wait_prompt(prompt, timeout)
  prompt = prompt or ">"
  return self:wait("the prompt " .. ("%q"):format(prompt), function(s)
    return (s:match("[^\n]*$")) == prompt
  end, timeout)
end

--- The lines printed after the last line that reads `prefix .. input` (the echoed input).
function Term:output_after(input)
  local lines = self:lines()
  for i = #lines, 1, -1 do
    -- trailing blanks: what readline left when it redrew a shorter line over a longer one
    if lines[i]:gsub("%s+$", "") == ("> " .. input):gsub("%s+$", "") then return { table.unpack(lines, i + 1) } end
  end
  return nil
end

--- Types an expression, waits for the next prompt, returns the output lines in between.
function Term:eval(input, timeout)
  self:line(input)
  return self:wait("the output of " .. input, function()
    local out = self:output_after(input)
    if out and #out > 0 and out[#out] == ">" then
      table.remove(out)
      return out
    end
  end, timeout)
end

describe("REPL on a terminal", function()
  local term, history

  before_each(function()
    history = os.tmpname()
    os.remove(history)
    term = start(history)
  end)

  after_each(function()
    if term then term:stop() end
    term = nil
    os.remove(history)
  end)

  it("shows the version banner and the prompt, and an expression prints its value", function()
    term:wait_prompt()
    local first = term:lines()[1]
    assert.matches("^mxdeploy %d+%.%d+%.%d+ %(Lua 5%.4", first)
    assert.are.same({ "1234000" }, term:eval("1234 * 1000"))
    assert.are.same({ '"ab"' }, term:eval('"a" .. "b"'))
    assert.are.same({ "1", "nil", "3" }, term:eval("1, nil, 3"))
  end)

  it("continues an incomplete multi-line definition with the >> prompt", function()
    term:wait_prompt()
    term:line("function triple(x)")
    term:wait_prompt(">>")
    term:line("  return x * 3")
    term:wait_prompt(">>")
    term:line("end")
    term:wait_prompt(">")
    assert.are.same({ "4242" }, term:eval("triple(1414)"))
  end)

  it("completes mx.sp to mx.spawn with Tab, and mx. Tab Tab lists the module", function()
    term:wait_prompt()
    term:type("type(mx.sp")
    term:key("Tab")
    term:wait("mx.sp completed", function(s) return s:match("\n> type%(mx%.spawn$") end)
    term:type(")")
    term:key("Enter")
    term:wait_line('"function"')
    term:wait_prompt()

    term:type("mx.")
    term:key("Tab", "Tab")
    local listing = term:wait("the list of mx fields", function(s)
      return s:match("mx%.spawn") and s:match("mx%.wait_all") and s:match("mx%.connect") and s
    end)
    for _, name in ipairs({ "mx.sleep", "mx.v1", "mx.request", "mx.null", "mx.timeout" }) do
      assert.truthy(listing:find(name, 1, true), name .. " not listed")
    end
    -- the typed "mx." is still on the input line after the listing
    term:wait("the input line kept", function(s) return (s:match("[^\n]*$")) == "> mx." end)
    term:key("C-u")
    assert.are.same({ "true" }, term:eval("mx.spawn ~= nil"))
  end)

  it("pretty-prints tables with sorted keys, null and [] visible", function()
    term:wait_prompt()
    local out = term:eval('{zeta = {y = 2, x = 1}, b = mx.array(), a = mx.null, e = {}, [2] = "two", [1] = "one"}')
    assert.are.same({
      "{",
      '  "one",',
      '  "two",',
      "  a = null,",
      "  b = [],",
      "  e = {},",
      "  zeta = {",
      "    x = 1,",
      "    y = 2,",
      "  },",
      "}",
    }, out)
    assert.are.same({ "[", "  1,", "  [],", "  null,", "]" },
      term:eval('mx.json.decode("[1, [], null]")'))
  end)

  it("runs a waiting call at the prompt", function()
    term:wait_prompt()
    assert.are.same({ '"slept true"' },
      term:eval('local t0 = mx.now(); mx.sleep(0.1); return "slept " .. tostring(mx.now() - t0 >= 0.09)'))
    assert.are.same({}, term:eval("mx.sleep(0.1)"))
  end)

  it("Ctrl-C cancels the running line and the REPL stays alive", function()
    term:wait_prompt()
    -- a task spawned earlier is not the running line: Ctrl-C leaves it alone
    assert.are.same({}, term:eval('bg = mx.spawn(function() mx.sleep(1.5) return "bg" .. "done" end)'))
    local t0 = core.now()
    term:line("mx.sleep(30)")
    term:wait("the line to start", function() return term:output_after("mx.sleep(30)") end)
    core.sleep(0.3)
    assert.are_not.equal(">", (term:screen():match("[^\n]*$")), "mx.sleep(30) returned at once")
    term:key("C-c")
    term:wait_prompt(nil, KEY_WAIT)
    assert.is_true(core.now() - t0 < 15, "Ctrl-C did not end mx.sleep(30) promptly")
    local after = table.concat(term:output_after("mx.sleep(30)"), "\n")
    assert.matches("interrupted", after)
    assert.are.same({ '"alive"' }, term:eval('"al" .. "ive"'))
    -- and a second time: the interrupt state was reset
    term:line("mx.sleep(30)")
    core.sleep(0.3)
    term:key("C-c")
    term:wait_prompt()
    assert.are.same({ "99" }, term:eval("90 + 9"))
    assert.are.same({ '"bgdone"' }, term:eval("bg:wait()"))
  end)

  it("Ctrl-C at the prompt clears the input", function()
    term:wait_prompt()
    term:type('error("should never run")')
    term:wait("the typed input", function(s) return s:match("should never run\"%)$") end)
    term:key("C-c")
    term:wait_prompt()
    assert.are.same({ "8" }, term:eval("5 + 3"))
    assert.is_nil(term:screen():find("stdin:1: should never run", 1, true))
    -- a continuation is dropped too: back to the first prompt
    term:line("function unfinished()")
    term:wait_prompt(">>")
    term:key("C-c")
    term:wait_prompt(">")
    assert.are.same({ "12" }, term:eval("6 + 6"))
  end)

  it("finishes a spawned task while the prompt is idle", function()
    term:wait_prompt()
    assert.are.same({}, term:eval("t = mx.spawn(function() mx.sleep(0.2) return 7 end)"))
    core.sleep(0.8) -- the prompt waits for input meanwhile
    assert.are.same({ '"done"' }, term:eval("t:status()"))
    assert.are.same({ "7" }, term:eval("t:wait()"))
  end)

  it("redraws the prompt and the typed input below what a task prints meanwhile", function()
    term:wait_prompt()
    term:eval('mx.spawn(function() mx.sleep(0.5) print("from" .. "-task") end)')
    term:type("1 + ")
    term:wait_line("from-task")
    term:wait("the input redrawn below the output", function(s) return (s:match("[^\n]*$")) == "> 1 +" end)
    term:line("41")
    local out = term:wait("the value of 1 + 41", function()
      local o = term:output_after("1 + 41")
      if o and o[#o] == ">" then return o end
    end)
    assert.are.same({ "42", ">" }, out)
  end)

  it("does the same for io.write from a task", function()
    term:wait_prompt()
    term:eval('mx.spawn(function() mx.sleep(0.5) io.write("written" .. "-by-task\\n") end)')
    term:type("2 + ")
    term:wait_line("written-by-task")
    term:wait("the input redrawn below the output", function(s) return (s:match("[^\n]*$")) == "> 2 +" end)
    term:line("40")
    local out = term:wait("the value of 2 + 40", function()
      local o = term:output_after("2 + 40")
      if o and o[#o] == ">" then return o end
    end)
    assert.are.same({ "42", ">" }, out)
  end)

  it("help describes a namespace, an mx function and a search", function()
    term:wait_prompt()
    local ns = term:eval("help(mx.v1)")
    assert.matches("^mx%.v1: Deploy API v1", ns[1])
    assert.truthy(table.concat(ns, "\n"):find("  start_environment         [job] Starts a specific environment", 1, true))
    assert.are.same({ "mx.spawn(fn, ...) -> task", "  Runs fn(...) as a task of its own; it starts at the next wait." },
      term:eval("help(mx.spawn)"))
    local found = table.concat(term:eval('help("start")'), "\n")
    assert.matches("v1%.start_environment", found)
    assert.matches("v1%.get_start_status", found)
    assert.are.same({ '"v1.start_environment(AppId, Mode, [body {AutoSyncDb?=boolean}]) -> job"' },
      term:eval("mx.signature(mx.v1.start_environment)"))
  end)

  it("completes after a call expression from what the call returns, without calling it", function()
    term:wait_prompt()
    -- an operation that returns a job: its methods after ":"
    term:type('mx.v1.start_environment("calc", "Test"):')
    term:key("Tab", "Tab")
    local listing = term:wait("the job's methods", function(s) return s:match(":wait") and s end)
    for _, m in ipairs({ ":cancel", ":result", ":status", ":wait" }) do
      assert.truthy(listing:find(m, 1, true), m)
    end
    term:type("w")
    term:key("Tab")
    term:wait("completed to :wait", function(s) return s:match('Test"%):wait$') end)
    term:key("C-u")
    -- a call whose result is unknown until it runs: no globals, no keywords
    term:type('mx.v1.get_app("calc").')
    term:key("Tab", "Tab")
    core.sleep(0.5)
    local screen = term:screen()
    assert.is_nil(screen:find("_VERSION", 1, true), screen)
    assert.is_nil(screen:find("collectgarbage", 1, true), screen)
    assert.are.equal('> mx.v1.get_app("calc").', (screen:match("[^\n]*$")))
    term:key("C-u")
    -- methods of a value: only functions after ":"
    term:eval("t = mx.spawn(function() end)")
    term:type("t:")
    term:key("Tab", "Tab")
    local methods = term:wait("the task's methods", function(s) return s:match("t:cancel") and s end)
    assert.matches("t:status", methods)
    assert.matches("t:wait", methods)
    assert.is_nil(methods:find("t:id", 1, true))
    assert.is_nil(methods:find("__index", 1, true))
    term:key("C-u")
    assert.are.same({ "2" }, term:eval("1 + 1")) -- and no request was made on Tab (no credentials here)
  end)

  it("shows the signature as an argument hint when Tab is pressed after (", function()
    term:wait_prompt()
    term:type("mx.v1.get_environment(")
    term:key("Tab")
    term:wait_line("v1.get_environment(AppId, Mode) -> decoded JSON")
    term:wait("the input line redrawn", function(s) return (s:match("[^\n]*$")) == "> mx.v1.get_environment(" end)
    term:type('"calc", ')
    term:key("Tab")
    term:wait("the hint again and the input kept", function(s)
      return (s:match("[^\n]*$")) == '> mx.v1.get_environment("calc",' and
        select(2, s:gsub("v1%.get_environment%(AppId, Mode%) %-> decoded JSON", "")) == 2
    end)
    term:key("C-u")
    term:type("mx.wait_all(")
    term:key("Tab")
    term:wait_line("mx.wait_all(list [, {timeout=, interval=, on_progress=}]) -> {first result of each}")
  end)

  it("does not echo keys typed while a line runs (arrow keys showed ^[[A)", function()
    term:wait_prompt()
    term:line("mx.sleep(1.5)")
    term:wait("the line to start", function() return term:output_after("mx.sleep(1.5)") end)
    term:key("Up", "Left", "Down")
    core.sleep(0.3)
    assert.is_nil(term:screen():find("^[[", 1, true), term:screen())
    term:wait("the next prompt", function(s) return s:match("\n>[^\n]*$") end)
    assert.is_nil(term:screen():find("^[", 1, true), term:screen())
    term:key("C-u")
    assert.are.same({ "5" }, term:eval("2 + 3"))
  end)

  it("a line reading stdin (a confirmation) gets an echoing terminal meanwhile", function()
    term:wait_prompt()
    term:line("answer = io.read()")
    core.sleep(0.3)
    term:type("yes-typed")
    term:wait_line("yes-typed")
    term:key("Enter")
    term:wait_prompt()
    assert.are.same({ '"yes-typed"' }, term:eval("answer"))
    term:line('second = io.stdin:read("l")')
    core.sleep(0.3)
    term:type("again")
    term:wait_line("again")
    term:key("Enter")
    term:wait_prompt()
    assert.are.same({ '"again"' }, term:eval("second"))
  end)

  it("Ctrl-D with a running task says what it waits on; a second Ctrl-D ends it", function()
    term:wait_prompt()
    term:eval('bg = mx.spawn(function() mx.sleep(60, "the long " .. "nap") end)')
    local t0 = core.now()
    term:key("C-d")
    term:wait_line("1 task is still running:")
    local listed = term:wait("the waiting task listed", function(s) return s:match("\n  task %d+ waits on [^\n]*") end)
    assert.matches("^\n  task %d+ waits on the long nap %(for %d+%.%d s%)$", listed)
    term:wait_line("Waiting for them to finish: Ctrl-D again or Ctrl-C ends them.")
    term:key("C-d")
    term:wait("the REPL to end", function(s) return s:match("%[exit %d+%]") end, KEY_WAIT)
    assert.is_true(core.now() - t0 < 20, "the second Ctrl-D did not end the task")
    assert.matches("%[exit 130%]", term:screen())
  end)

  it("Ctrl-C after Ctrl-D ends the running tasks too, running their <close> handlers", function()
    term:wait_prompt()
    term:eval('bg = mx.spawn(function() local c <close> = setmetatable({}, {__close = function() print("clo" .. "sed") end}) mx.sleep(60) end)')
    term:key("C-d")
    term:wait_line("Waiting for them to finish: Ctrl-D again or Ctrl-C ends them.")
    term:key("C-c")
    term:wait_line("closed", KEY_WAIT)
    term:wait_line("[exit 130]", KEY_WAIT)
  end)

  it("Ctrl-D with a running task waits for it to finish, then ends", function()
    term:wait_prompt()
    term:eval("bg = mx.spawn(function() mx.sleep(1) end)")
    term:key("C-d")
    term:wait_line("1 task is still running:")
    term:wait_line("[exit 0]")
  end)

  it("keeps lines holding a literal credential out of the history file", function()
    term:wait_prompt()
    term:eval('ok = pcall(mx.connect, {username = "u", apikey = "SECRET-apikey-1"})')
    term:eval("x = mx.connect{ token = 'SECRET-token-2' } and 1")
    term:eval('"kept" .. "-line"')
    term:eval('p = {profile = "customer-b"}')
    term:eval('u = mx.errors.redact_url("https://someone:SECRET-pw-3@127.0.0.1:9/")')
    term:eval('v = mx.webhooks.verify("whsec_SECRETSECRETSECRETSECRETSECRET4", {}, "")')
    term:key("C-d")
    term:wait_line("[exit 0]")
    local text = P.slurp(history)
    assert.are_not.equal("", text, "no history file (or an empty one) at " .. history)
    assert.matches('"kept" %.%. "%-line"', text)
    assert.matches("customer%-b", text)
    assert.is_nil(text:find("SECRET", 1, true), text)
  end)

  it("keeps a 0600 history file written at Ctrl-D, read back by the next session", function()
    term:wait_prompt()
    term:eval("1 + 1")
    term:eval('"history-" .. "marker"')
    term:key("C-d")
    term:wait_line("[exit 0]")
    local text = P.slurp(history)
    assert.are_not.equal("", text, "no history file (or an empty one) at " .. history)
    assert.matches('"history%-" %.%. "marker"', text)
    assert.matches("1 %+ 1", text)
    local p = io.popen("stat -c %a " .. sh_quote(history))
    local mode = p:read("l")
    p:close()
    assert.are.equal("600", mode)

    term:stop()
    term = start(history)
    term:wait_prompt()
    term:key("Up")
    term:wait("the last line recalled with Up", function(s)
      return (s:match("[^\n]*$")) == '> "history-" .. "marker"'
    end)
    term:key("Enter")
    term:wait_line('"history-marker"')
  end)
end)
