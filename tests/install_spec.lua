-- `cmake --install` of this build into a temporary prefix: the binary, the Lua module where lua5.4
-- looks, the shipped scripts (found by the installed binary, also after the tree moves), the man
-- page made from --help, and the bash and zsh completion run against the installed binary.
local BIN = os.getenv("MXDEPLOY_BIN")
local BUILD = BIN:match("^(.*)/[^/]+$")
local SOURCE = os.getenv("MXDEPLOY_SOURCE_DIR") or "."

local P = require("process")
local q, slurp, run = P.quote, P.read, P.run

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

local function has(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end

describe("cmake --install", function()
  local root, prefix

  setup(function()
    root = os.tmpname()
    os.remove(root)
    assert(os.execute("mkdir -m 700 " .. q(root)))
    prefix = root .. "/usr"
    local code, out, err = run(("cmake --install %s --prefix %s"):format(q(BUILD), q(prefix)))
    assert(code == 0, "cmake --install failed:\n" .. out .. err)
  end)

  teardown(function()
    if root then os.execute("rm -rf " .. q(root)) end
  end)

  it("installs the binary, the shipped scripts (not the maintainer's gen-reference), man page and completions", function()
    for _, f in ipairs({ "bin/mxdeploy", "share/mxdeploy/scripts/deploy.lua", "share/mxdeploy/scripts/promote.lua",
                         "share/mxdeploy/scripts/backup.lua", "share/mxdeploy/scripts/status.lua",
                         "share/man/man1/mxdeploy.1", "share/bash-completion/completions/mxdeploy" }) do
      assert.is_string(slurp(prefix .. "/" .. f), f .. " not installed")
    end
    assert.is_nil(slurp(prefix .. "/share/mxdeploy/scripts/gen-reference.lua"))
    local code, out = run("ls " .. q(prefix .. "/share/zsh") .. "/*/_mxdeploy")
    assert.are.equal(0, code, "no zsh completion")
    assert.are.equal(1, #lines(out))
  end)

  it("the installed binary finds its scripts beside it, also once the tree has moved, and runs status.lua", function()
    local code, out, err = run(q(prefix .. "/bin/mxdeploy") .. " -e 'print(require(\"mxdeploy.host.paths\").scripts)'")
    assert.are.equal(0, code, err)
    assert.are.equal(prefix .. "/bin/../share/mxdeploy/scripts\n", out)
    local moved = root .. "/moved"
    assert(os.execute(("mv %s %s"):format(q(prefix), q(moved))))
    code, out, err = run(q(moved .. "/bin/mxdeploy") .. " -e 'print(require(\"mxdeploy.host.paths\").scripts)'")
    assert(os.execute(("mv %s %s"):format(q(moved), q(prefix))))
    assert.are.equal(0, code, err)
    assert.are.equal(moved .. "/bin/../share/mxdeploy/scripts\n", out)
    -- the build's binary uses the source tree's scripts
    code, out = run(q(BIN) .. " -e 'print(require(\"mxdeploy.host.paths\").scripts)'")
    assert.are.equal(0, code)
    assert.are.equal(io.popen("cd " .. q(SOURCE .. "/scripts") .. " && pwd -P"):read("l") .. "\n", out)
    code, out, err = run(("MXDEPLOY_SANDBOX_TIME_SCALE=0.001 %s --sandbox %s"):format(
      q(prefix .. "/bin/mxdeploy"), q(prefix .. "/share/mxdeploy/scripts/status.lua")))
    assert.are.equal(0, code, err)
    assert.matches("calc%s+Production%s+Running", out)
  end)

  it("puts the Lua module in a directory on lua5.4's default package.cpath, and lua5.4 loads it from there", function()
    local code, out = run("ls " .. q(prefix) .. "/lib*/*/lua/5.4/mxdeploy.so " .. q(prefix) .. "/lib*/lua/5.4/mxdeploy.so 2>/dev/null")
    local so = lines(out)
    assert.are.equal(1, #so, "mxdeploy.so: " .. out)
    local rel = so[1]:sub(#prefix + 2):gsub("/mxdeploy%.so$", "")
    local _, cpath = run("lua5.4 -e 'print(package.cpath)'")
    -- with the prefix cmake's default (/usr/local) or Debian's (/usr) in place of ours
    assert.is_true(cpath:find("/usr/local/" .. rel .. "/?.so", 1, true) ~= nil
      or cpath:find("/usr/" .. rel .. "/?.so", 1, true) ~= nil, rel .. " is not on " .. cpath)
    if os.getenv("MXDEPLOY_SANITIZED") == "ON" then return end -- ASan's module cannot load into lua5.4
    local err
    code, out, err = run(("LUA_CPATH=%s lua5.4 -e 'print(type(require(\"mxdeploy\").v1.list_apps))'"):format(
      q(prefix .. "/" .. rel .. "/?.so;;")))
    assert.are.equal(0, code, err)
    assert.are.equal("function\n", out)
  end)

  it("writes mxdeploy(1) from --help: every option of --help is in it, and groff reads it without warnings", function()
    local page = slurp(prefix .. "/share/man/man1/mxdeploy.1")
    assert.matches('^%.TH MXDEPLOY 1 "" "mxdeploy %d+%.%d+%.%d+"', page)
    local _, help = run(q(BIN) .. " --help")
    local n = 0
    for opt in help:gmatch("\n  (%-[%w-]*)") do
      n = n + 1
      assert.truthy(page:find("\\fB" .. opt:gsub("%-", "\\-") .. "\\fR", 1, true), opt .. " missing from the man page")
    end
    assert.is_true(n >= 20, "only " .. n .. " options in --help")
    assert.truthy(page:find("\\-\\-time\\-scale", 1, true))
    local code, out, err = run("groff -man -Tutf8 -ww -z " .. q(prefix .. "/share/man/man1/mxdeploy.1"))
    assert.are.equal(0, code, err)
    assert.are.equal("", out .. err)
  end)

  -- Sorted names of the *.lua files in the given directories.
  local function script_names(...)
    local set, names = {}, {}
    for _, d in ipairs({ ... }) do
      local _, out = run("ls " .. q(d))
      for _, f in ipairs(lines(out)) do
        local name = f:match("^(.+)%.lua$")
        if name and not set[name] then set[name] = true; names[#names + 1] = name end
      end
    end
    table.sort(names)
    return names
  end

  -- Candidates the completion offers for the words of a command line (the last one being
  -- completed), computed by the installed completion file with the installed binary on PATH.
  local function bash_candidates(words, env)
    local cmd = ("%s bash -c %s"):format(env or "", q(("PATH=%s:$PATH; source %s; _mxdeploy_candidates %s"):format(
      q(prefix .. "/bin"), q(prefix .. "/share/bash-completion/completions/mxdeploy"), words)))
    local code, out, err = run(cmd)
    assert.are.equal(0, code, err)
    return lines(out)
  end

  local function zsh_candidates(words, env)
    local code, out = run("ls " .. q(prefix) .. "/share/zsh/*/_mxdeploy")
    assert.are.equal(0, code)
    local file = lines(out)[1]
    local script = ("autoload -Uz compinit && compinit -u -D && PATH=%s:$PATH && source %s && _mxdeploy_candidates %s")
      :format(q(prefix .. "/bin"), q(file), words)
    local err
    code, out, err = run(("%s HOME=%s zsh -f -c %s"):format(env or "", q(root), q(script)))
    assert.are.equal(0, code, err)
    return lines(out)
  end

  for shell, candidates in pairs({ bash = bash_candidates, zsh = zsh_candidates }) do
    it(shell .. " completion offers the options, the sandbox's options and the scripts `run` finds", function()
      if shell == "zsh" and not os.execute("command -v zsh >/dev/null") then
        error("zsh is not installed (tools/install-deps installs it)")
      end
      local c = candidates("mxdeploy --")
      for _, o in ipairs({ "--sandbox", "--trace", "--version", "--help", "-e", "-l", "-i", "-v", "-E", "-W" }) do
        assert.is_true(has(c, o), shell .. ": " .. o .. " not offered")
      end
      assert.is_false(has(c, "--time-scale"))
      c = candidates("mxdeploy ''")
      assert.is_true(has(c, "sandbox") and has(c, "run") and has(c, "<files>"))
      c = candidates("mxdeploy sandbox --port 8080 ''")
      assert.are.same({ "--port", "--files-port", "--time-scale", "--state", "--log", "--seed", "--faults", "--tls-cert", "--tls-key" }, c)
      assert.are.same({ "<files>" }, candidates("mxdeploy sandbox --faults ''"))
      assert.are.same({ "<files>" }, candidates("mxdeploy sandbox --seed ''"))
      assert.are.same({}, candidates("mxdeploy sandbox --time-scale ''"))
      -- scripts: the shipped ones and those in MXDEPLOY_PATH, by name
      local installed = script_names(prefix .. "/share/mxdeploy/scripts")
      assert.is_true(has(installed, "status") and has(installed, "deploy"))
      assert.are.same(installed, candidates("mxdeploy --sandbox run ''"))
      local dir = root .. "/my-scripts"
      assert(os.execute("mkdir -p " .. q(dir) .. " && touch " .. q(dir .. "/rollout.lua")))
      local with_mine = script_names(prefix .. "/share/mxdeploy/scripts", dir)
      assert.is_true(has(with_mine, "rollout"))
      assert.are.same(with_mine, candidates("mxdeploy run ''", "MXDEPLOY_PATH=" .. q(dir .. ":/nonexistent")))
      -- asked of the binary: the build's binary runs the source tree's scripts (gen-reference too)
      local source = script_names(SOURCE .. "/scripts")
      assert.is_true(has(source, "gen-reference"))
      assert.are.same(source, candidates(q(BIN) .. " run ''"))
      assert.are.same({ "<files>" }, candidates("mxdeploy --sandbox run deploy ''"))
      assert.are.same({ "<files>" }, candidates("mxdeploy script.lua ''"))
    end)
  end
end)
