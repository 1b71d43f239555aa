-- scripts/deploy.lua --branch: the newest commit of a branch (App Repository API, the branch name
-- URL-encoded in the path) is built (Build API) and deployed, proven by the sandbox's request log.

local json = require("mxdeploy.json")

local source = os.getenv("MXDEPLOY_SOURCE_DIR") or "."
local bin = os.getenv("MXDEPLOY_BIN") or "mxdeploy"

local function run(args)
  local log = os.tmpname()
  -- bounded (tests/support/process.lua): a script that hangs fails the test in seconds
  local code, text = require("process").run(("cd %q && MXDEPLOY_SANDBOX_TIME_SCALE=0.001 MXDEPLOY_SANDBOX_LOG=%q %q --sandbox scripts/deploy.lua %s 2>&1")
    :format(source, log, bin, args))
  local requests = {}
  for line in io.lines(log) do requests[#requests + 1] = json.decode(line) end
  os.remove(log)
  return code, text, requests
end

describe("deploy.lua --branch", function()
  it("builds the newest commit of the branch and deploys it", function()
    local code, out, log = run("--branch branches/development --version 2.1.0 calc Test")
    assert.are.equal(0, code, out)
    local head, build
    for _, r in ipairs(log) do
      if r.path:find("/repository/v1/", 1, true) then head = r end
      if r.method == "POST" and r.path == "/deploy/api/1/apps/calc/packages" then build = json.decode(r.body) end
    end
    assert.are.equal("/repository/v1/repositories/c533ee0b-f7db-4e62-868b-1192d392ccec/branches/branches%2Fdevelopment", head.path)
    local commit = out:match("build%s+branches/development at (%x+)")
    assert.is_string(commit)
    assert.are.same({ "branches/development", commit, "2.1.0" }, { build.Branch, build.Revision, build.Version })
    assert.matches("done%s+calc/Test is Running with model version 2%.1%.0%." .. commit, out)
  end)

  it("--dry-run plans the build and sends only GET requests", function()
    local code, out, log = run("--dry-run --branch main calc Test")
    assert.are.equal(0, code, out)
    assert.matches("plan%s+build main at %x+", out)
    for _, r in ipairs(log) do assert.are.equal("GET", r.method) end
  end)
end)
