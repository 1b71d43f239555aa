-- Every one of the 72 operations in specs/operations.tsv is served by the sandbox: each
-- is called over HTTP with seeded IDs and must reach a route (no "no such endpoint" 404, no 405,
-- no 500 from a handler error) and answer with the API's JSON body shape.
local S = require("sandbox")
local prism = require("prism")

local PARAMS = {
  AppId = "calc", Mode = "Test", JobId = "00000000-0000-4000-8000-000000000000", Date = "2026-01-02",
  PackageId = S.PKG1, ProjectId = S.PROJECT, EnvironmentId = S.ENV_PROD,
  SnapshotId = "5deda9e2-f882-4925-830c-000000000001", ArchiveId = "00000000-0000-4000-8000-000000000000",
  RestoreId = "00000000-0000-4000-8000-000000000000", appId = S.PROJECT, environmentId = S.ENV_TEST,
  jobId = "00000000-0000-4000-8000-000000000000", clusterId = S.CLUSTER, namespaceId = S.NAMESPACE,
  cliVersionValue = "2.9.0", packageId = "905ba2c3-4424-48b8-b4b0-393eedd4cd1e",
  ["app-id"] = S.PROJECT, ["webhook-id"] = "mxep_mfiHo9gZw6RcGisubUfhyfuCllim5q",
  runId = "2868b153-2d92-4ec5-ab64-2e26a9e0f16e", branchName = "main",
}

local function operations()
  local ops = {}
  for _, name in ipairs({ "operations.tsv", "operations-newer.tsv" }) do
    local f = assert(io.open(prism.specs_dir() .. "/" .. name))
    for line in f:lines() do
      local api, method, path = line:match("^(%S+)\t(%u+)\t(%S+)\t")
      if api and api ~= "api" then ops[#ops + 1] = { api = api, method = method, path = path } end
    end
    f:close()
  end
  return ops
end

describe("sandbox serves every operation", function()
  it("answers all 83 operations of operations.tsv and operations-newer.tsv through a route", function()
    local sb = S.start{ time_scale = 0.001 }
    finally(function() sb:stop() end)
    local ops = operations()
    assert.are.equal(83, #ops)
    local file = S.tmpfile("sandbox mda")
    for _, op in ipairs(ops) do
      local path = op.path:gsub("^/api/1", ""):gsub("^/api/v2", "")
      local env_id = op.api == "pc-deploy" and "pcenv01" or nil
      path = path:gsub("{([%w%-]+)}", function(n)
        if n == "environmentId" and env_id then return env_id end
        return assert(PARAMS[n], "no value for " .. n)
      end)
      if op.path:find("/cli/", 1, true) then path = path .. "?os=linux&architecture=x86" end
      local token = op.api:match("^pc") or op.api == "deploy-v4" or op.api == "pipelines" or op.api == "webhooks"
        or op.api == "repository"
      local headers = token and { Authorization = "MxToken " .. sb.token }
        or { ["Mendix-Username"] = sb.username, ["Mendix-ApiKey"] = sb.apikey }
      local req = { method = op.method, url = sb.bases[op.api] .. path, headers = headers, max_redirects = 0 }
      if op.path:find("upload", 1, true) or (op.api == "pc-build" and op.method == "POST" and not path:find("build")) then
        req.file, req.form = file, { fileName = "x_1.0.0.1.mda" }
      elseif op.method ~= "GET" and op.method ~= "DELETE" then
        req.body = "{}"
        headers["Content-Type"] = "application/json"
      end
      local st, data, resp, err = S.request(req)
      local what = op.api .. " " .. op.method .. " " .. op.path
      assert.is_nil(err, what)
      assert.are_not.equal(405, st, what)
      assert.is_true(st ~= 500 or (data and data.errorCode ~= "SANDBOX_ERROR"), what .. ": " .. tostring(resp.body))
      if st == 404 then
        local msg = data and (data.errorMessage or (data.error and data.error.message)) or ""
        assert.is_nil(msg:find("No such endpoint", 1, true), what)
      end
      if st >= 400 then
        assert.is_table(data, what)
        if token and op.api ~= "repository" then assert.are.equal(st, data.error.code, what)
        else assert.is_string(data.errorCode, what) end
      end
    end
    os.remove(file)
    assert.are.equal(83, #sb:requests())
    -- none was answered by the router's fallback
    for _, r in ipairs(sb:requests()) do
      assert.are_not.equal(405, r.status)
      if os.getenv("SANDBOX_DEBUG") then print(r.status, r.method, r.path) end
    end
  end)
end)
