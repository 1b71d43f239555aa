-- The progress output of a workflow script on a real terminal: `mxdeploy --sandbox run deploy`
-- runs in a tmux pane (own server and socket, no user config); the screen comes back with
-- capture-pane and every wait is a bounded poll of it.
local core = require("mxdeploy.core")

local BIN = os.getenv("MXDEPLOY_BIN")
local SOURCE = os.getenv("MXDEPLOY_SOURCE_DIR") or "."
local SLOW = os.getenv("MXDEPLOY_SANITIZED") == "ON" or os.getenv("MXDEPLOY_SANITIZED") == "1"
local WAIT = SLOW and 60 or 20

local q = require("process").quote

describe("workflow progress on a terminal", function()
  local socket
  local function tmux(args)
    local p = assert(io.popen(("tmux -S %s -f /dev/null %s 2>&1"):format(q(socket), args)))
    local out = p:read("a")
    p:close()
    return out
  end
  local function screen() return (tmux("capture-pane -p -J -S -1000 -t wf"):gsub("%s+$", "")) end
  local function wait_for(pattern)
    local deadline = core.now() + WAIT
    local s
    repeat
      s = screen()
      if s:find(pattern) then return s end
      core.sleep(0.1)
    until core.now() > deadline
    error(("timed out waiting for %q; the screen shows:\n%s"):format(pattern, s), 2)
  end

  before_each(function()
    assert(os.execute("command -v tmux >/dev/null 2>&1") == true, "tmux is not installed (run tools/install-deps)")
    socket = os.tmpname()
    os.remove(socket)
  end)
  after_each(function()
    tmux("kill-server")
    os.remove(socket)
  end)

  it("deploy shows the upload bar, one line per step with elapsed time, and the result", function()
    local ledger = os.tmpname()
    local inner = table.concat({
      "cd " .. q(SOURCE) .. " &&",
      "env -u MENDIX_USERNAME -u MENDIX_APIKEY -u MENDIX_TOKEN MXDEPLOY_CREDENTIALS=/nonexistent TERM=screen",
      "MXDEPLOY_SANDBOX_TIME_SCALE=0.01 MXDEPLOY_LEDGER=" .. q(ledger),
      q(BIN) .. " --sandbox run deploy calc Test; echo \"[exit $?]\"; sleep 120",
    }, " ")
    tmux("new-session -d -s wf -x 160 -y 50 " .. q(inner))
    local s = wait_for("%[exit %d+%]")
    os.remove(ledger)
    assert.matches("%[exit 0%]", s)
    -- the upload bar, drawn in place: its last state stays on the screen
    assert.matches("upload demo_1%.0%.0%.%d+%.mda[^\n]*100%%", s)
    -- every step a line of its own, with the elapsed time
    for _, step in ipairs({ "check", "upload", "transport", "start", "ledger", "done" }) do
      assert.matches("%[%s*%d+%.%ds%] " .. step, s)
    end
    assert.matches("start%s+job [%x%-]+: Starting", s)
    assert.matches("done%s+calc/Test is Running with model version 1%.0%.0%.%d+", s)
    -- the bar redraws in place: only one line of it
    local _, bars = s:gsub("upload demo_[^\n]*%%", "")
    assert.are.equal(1, bars, s)
  end)
end)
