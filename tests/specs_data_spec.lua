-- specs/ (tools/derive-spec-data): the reference data is complete where the tests rely on it,
-- carries no prose, and Prism still validates requests against the reduced OpenAPI documents
-- (checked here for Pipelines and Webhooks, whose schemas the reduction must keep).
local json = require("mxdeploy.json")
local yaml = require("lyaml") -- lua-yaml (tools/install-deps)
local S = require("sandbox")
local prism = require("prism")

local DIR = prism.specs_dir()

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function tsv(name)
  local rows, header = {}, nil
  for line in slurp(DIR .. "/" .. name):gmatch("[^\n]+") do
    local cols = {}
    for c in (line .. "\t"):gmatch("([^\t]*)\t") do cols[#cols + 1] = c end
    if not header then header = cols else rows[#rows + 1] = cols end
  end
  return header, rows
end

describe("specs/ operations lists", function()
  it("operations.tsv has the 72 operations and operations-newer.tsv the 11 of the newer APIs, same columns", function()
    local h1, rows = tsv("operations.tsv")
    local h2, newer = tsv("operations-newer.tsv")
    assert.are.same({ "api", "method", "path", "completes", "source" }, h1)
    assert.are.same(h1, h2)
    assert.are.equal(72, #rows)
    assert.are.equal(11, #newer)
    local apis = {}
    for _, r in ipairs(newer) do
      apis[r[1]] = (apis[r[1]] or 0) + 1
      assert.matches("^[A-Z]+$", r[2])
      assert.matches("^/", r[3])
    end
    assert.are.same({ "pipelines", "repository", "webhooks" }, (function()
      local t = {}
      for k in pairs(apis) do t[#t + 1] = k end
      table.sort(t)
      return t
    end)())
  end)
end)

describe("specs/docs/*.json", function()
  local function page(name) return json.decode(slurp(DIR .. "/docs/" .. name .. ".json")) end

  it("hold every API call of the v1, v2, Build, Backups and App Repository pages with its example request", function()
    for name, calls in pairs({ ["deploy-api-1"] = 20, ["deploy-api-2"] = 2, ["build-api"] = 5,
                               ["backups-api-v2"] = 9, ["app-repository-api"] = 4 }) do
      local n = 0
      for _, sec in ipairs(page(name).sections) do
        if sec.method then
          n = n + 1
          assert.matches("^https://", sec.url, name .. " " .. sec.title)
          assert.is_true(#sec.requests >= 1, name .. " " .. sec.title .. ": no example request")
          for _, r in ipairs(sec.requests) do
            assert.are.equal(sec.method, r.method, name .. " " .. sec.title)
            for _, h in ipairs(r.headers) do assert.matches("^[%w-]+$", h[1]) end
          end
        end
      end
      assert.are.equal(calls, n, name)
    end
  end)

  it("keep the error tables (status, code, message) and the example bodies verbatim", function()
    local rows = 0
    for _, sec in ipairs(page("deploy-api-1").sections) do
      for _, e in ipairs(sec.errors) do
        rows = rows + 1
        assert.is_true(math.type(e.status) == "integer" and e.status >= 200 and e.status < 600)
        assert.matches("%S", e.code)
        assert.is_string(e.message)
      end
      if sec.title == "Start Environment" then
        assert.are.same({ AutoSyncDb = true }, json.decode(sec.requests[1].body))
        assert.are.equal("/api/1/apps/calc/environments/Acceptance/start", sec.requests[1].target)
      end
    end
    assert.is_true(rows >= 70, rows .. " error rows")
    local repo = page("app-repository-api")
    local statuses = {}
    for _, sec in ipairs(repo.sections) do
      for _, e in ipairs(sec.errors) do statuses[#statuses + 1] = e.status end
    end
    assert.are.same({ 400, 401, 403, 404, 500 }, statuses)
  end)
end)

describe("specs/*.openapi.yaml", function()
  local FILES = { "deploy-api-v4", "private-cloud-deploy-api", "private-cloud-build-api", "pipelines-api", "webhooks-api" }
  local DATA = { example = true, default = true, enum = true, value = true, ["x-examples"] = true }

  -- Paths (as strings) of prose left in an OpenAPI document: a non-empty description or any
  -- summary outside example data and outside the names of properties.
  local function prose(node, path, found, in_names)
    if type(node) ~= "table" then return found end
    for k, v in pairs(node) do
      local p = path .. "/" .. tostring(k)
      if in_names then
        prose(v, p, found, false)
      elseif not DATA[k] then
        if (k == "description" and v ~= "") or k == "summary" or k == "externalDocs" then
          found[#found + 1] = p
        end
        prose(v, p, found, k == "properties")
      end
    end
    return found
  end

  it("carry paths, operations, parameters, schemas and examples, and no prose", function()
    for _, f in ipairs(FILES) do
      local doc = yaml.load(slurp(DIR .. "/" .. f .. ".openapi.yaml"))
      assert.matches("^3%.", doc.openapi, f)
      assert.is_string(doc.info.title, f)
      local ops = 0
      for _, item in pairs(doc.paths) do
        for m, op in pairs(item) do
          if m == "get" or m == "post" or m == "put" or m == "patch" or m == "delete" then
            ops = ops + 1
            assert.is_table(op.responses, f)
          end
        end
      end
      assert.is_true(ops >= 2, f)
      assert.is_table(doc.components.schemas, f)
      assert.are.same({}, prose(doc, f, {}, false))
    end
  end)

  it("Prism validates requests against the reduced Pipelines and Webhooks documents", function()
    local P, W
    local ok, err = pcall(function()
      P = S.core.spawn(prism.mock, "pipelines-api.openapi.yaml")
      W = S.core.spawn(prism.mock, "webhooks-api.openapi.yaml")
      P, W = P:wait(), W:wait()
      local auth = { Authorization = "MxToken sandbox-pat-rw", ["Content-Type"] = "application/json" }
      local APP, RUN = S.PROJECT, "3fa85f64-5717-4562-b3fc-2c963f66afa6"
      -- pipelines: path parameters are UUIDs, the run request needs a UUID pipelineId
      local st, data = S.request{ method = "GET", url = P.url .. "/apps/" .. APP .. "/runs/" .. RUN .. "/status", headers = auth }
      assert.are.equal(200, st)
      assert.is_string(data.status)
      st = S.request{ method = "GET", url = P.url .. "/apps/calc/runs/" .. RUN .. "/status", headers = auth }
      assert.is_true(st == 400 or st == 422, "a non-UUID appId passed: " .. tostring(st))
      st, data = S.request{ method = "POST", url = P.url .. "/apps/" .. APP .. "/runs", headers = auth,
                            body = json.encode{ pipelineId = RUN } }
      assert.are.equal(201, st)
      assert.is_string(data.id)
      st = S.request{ method = "POST", url = P.url .. "/apps/" .. APP .. "/runs", headers = auth,
                      body = json.encode{ pipelineId = 42 } }
      assert.is_true(st == 400 or st == 422, "a numeric pipelineId passed: " .. tostring(st))
      -- webhooks: the list, and validationSecret's pattern on create
      st, data = S.request{ method = "GET", url = W.url .. "/apps/" .. APP .. "/webhooks?limit=2", headers = auth }
      assert.are.equal(200, st)
      assert.is_table(data.webhooks)
      local hook = { name = "ci", url = "https://ci.example.com/hook", eventTypes = json.array{ "teamserver.push" },
                     isActive = true, validationSecret = ("a"):rep(32) }
      st = S.request{ method = "POST", url = W.url .. "/apps/" .. APP .. "/webhooks", headers = auth, body = json.encode(hook) }
      assert.are.equal(200, st)
      hook.validationSecret = "short"
      st = S.request{ method = "POST", url = W.url .. "/apps/" .. APP .. "/webhooks", headers = auth, body = json.encode(hook) }
      assert.is_true(st == 400 or st == 422, "a short validationSecret passed: " .. tostring(st))
    end)
    for _, m in ipairs({ P, W }) do
      if type(m) == "table" and m.stop then m:stop() end
    end
    assert(ok, err)
  end)
end)
