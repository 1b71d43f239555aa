-- Exact on the wire (issue 11): what goes out for the cases a capture of all 72 operations found
-- different from the docs. Each check reads the sandbox's request log of a real exchange.

local mx = require("mxdeploy")
local sandboxctl = require("mxdeploy.sandboxctl")
local S = require("sandbox")

local APP = S.PROJECT
local NS = S.NAMESPACE

local last = S.last_request

describe("wire", function()
  local sb, c
  setup(function()
    sb = sandboxctl.start{ time_scale = 0.001 }
    c = mx.sandbox_client(sb, { poll_interval = 0.01, retry = false })
  end)
  teardown(function() sb:stop() end)
  before_each(function() sb:reset_log() end)

  describe("declared arrays", function()
    it("go out as [] when empty in a v1 settings body", function()
      c.v1.set_environment_settings("calc", "Acceptance", { Constants = {}, CustomSettings = {} })
      local r = last(sb)
      assert.matches('"Constants":%[%]', r.body)
      assert.matches('"CustomSettings":%[%]', r.body)
    end)

    it("go out as [] in v4 permissions, and the caller's table is not changed", function()
      local body = { permissions = {} }
      pcall(c.v4.update_environment_permissions, APP, S.ENV_TEST, body)
      assert.are.equal('{"permissions":[]}', last(sb).body)
      assert.is_nil(getmetatable(body.permissions))
    end)

    it("go out as [] in the list fields of a Private Cloud manifest", function()
      local m = c.pc.get_namespace_environment(APP, NS, "pcenv01")
      -- a manifest built by hand: plain empty Lua tables where the spec has arrays
      m.environment.services = {}
      m.environment.annotations = {}
      m.environment.deployment.constants = {}
      sb:reset_log()
      c.pc.update_namespace_environment(APP, NS, "pcenv01", m):wait{ timeout = 30 }
      local put = last(sb, function(r) return r.method == "PUT" end)
      assert.matches('"services":%[%]', put.body)
      assert.matches('"annotations":%[%]', put.body)
      assert.matches('"constants":%[%]', put.body)
      assert.is_nil(getmetatable(m.environment.services))
    end)
  end)

  describe("a Private Cloud job answer with an error object", function()
    it("is a failed job with the error's code and message, not a pending one", function()
      sb:configure{ faults = { { route = "GET /privatecloud/api/v4/jobs/*",
        body = '{"id":"db6ed4d3-8b6d-4c2b-ad2b-2a69d0f7afe0","status":"created",'
          .. '"details":"Request to create cluster.","error":{"message":"Request validation errors"}}' } } }
      local job = c.pc.update_namespace_environment(APP, NS, "pcenv01", c.pc.get_namespace_environment(APP, NS, "pcenv01"))
      local ok, e = pcall(job.wait, job, { timeout = 20 })
      sb:configure{ faults = {} }
      assert.is_false(ok)
      assert.are.equal("job", e.kind)
      assert.are.equal("failed", e.reason)
      assert.are.equal("Request validation errors", e.message)
      assert.are.equal(1, job.polls)
    end)

    it("keeps the error's code", function()
      sb:configure{ faults = { { route = "GET /privatecloud/api/v4/jobs/*",
        body = '{"id":"x","status":"failed","error":{"code":400,"message":"The job failed"}}' } } }
      local job = c.pc.update_namespace_environment(APP, NS, "pcenv01", c.pc.get_namespace_environment(APP, NS, "pcenv01"))
      local ok, e = pcall(job.wait, job, { timeout = 20 })
      sb:configure{ faults = {} }
      assert.is_false(ok)
      assert.are.same({ 400, "The job failed" }, { e.code, e.message })
    end)
  end)

  describe("Private Cloud IDs", function()
    it("take any environment ID of at most 8 characters, and a plain namespaceId where the spec has one", function()
      -- the spec: environmentId is a string of at most 8 characters; namespaceId under
      -- /apps/{appId}/namespaces is a plain string
      local ok, e = pcall(c.pc.get_namespace_environment, APP, "my-namespace", "Env_01")
      assert.is_false(ok)
      assert.are.equal("http", e.kind) -- it reached the server
      local r = last(sb)
      assert.are.equal("/privatecloud/api/v4/apps/" .. APP .. "/namespaces/my-namespace/environments/Env_01", r.path)
      ok, e = pcall(c.pc.get_environment, APP, "UPPER1")
      assert.are.equal("http", e.kind)
    end)

    it("still refuse what the spec refuses", function()
      local ok, e = pcall(c.pc.get_environment, APP, "ninechars")
      assert.is_false(ok)
      assert.are.equal("argument", e.kind)
      assert.matches("at most 8", e.message)
      ok, e = pcall(c.pc.get_namespace, S.CLUSTER, "my-namespace") -- a UUID under /clusters
      assert.are.equal("argument", e.kind)
      ok, e = pcall(c.pc.create_environment, APP, { environment = { id = "ninechars" } })
      assert.are.equal("argument", e.kind)
    end)
  end)

  describe("Content-Type", function()
    it("is not sent on a POST without a body (no libcurl form default)", function()
      c.pc.download_cli("2.9.0", { os = "linux", architecture = "x86" })
      local post = last(sb, function(r) return r.method == "POST" end)
      assert.is_not_nil(post)
      assert.is_nil(post.headers["content-type"])
    end)

    it("is not carried to another origin on a redirect", function()
      sb:configure{ faults = { { route = "GET /deploy/api/1/apps/calc/packages/*/download", redirect = "files" } } }
      local out = os.tmpname()
      c.build.download_package("calc", S.PKG1, out)
      sb:configure{ faults = {} }
      os.remove(out)
      local api = last(sb, function(r) return r.listener == "api" end)
      local files = last(sb, function(r) return r.listener == "files" end)
      assert.are.equal("application/json", api.headers["content-type"]) -- documented for v1/Build
      assert.is_not_nil(files)
      assert.is_nil(files.headers["content-type"])
    end)
  end)

  describe("uploads", function()
    it("are named after the file when no name is given (v1 and v2)", function()
      local dir = os.tmpname()
      os.remove(dir)
      os.execute("mkdir -p " .. dir)
      local file = dir .. "/calc_1.2.3.mda"
      local f = assert(io.open(file, "wb"))
      f:write("PK sandbox package")
      f:close()
      c.v1.upload_package("calc", file)
      assert.are.equal("name=calc_1.2.3.mda", last(sb).query)
      c.v2.upload_package("calc", file):wait{ timeout = 30 }
      local up = last(sb, function(r) return r.method == "POST" end)
      assert.are.equal("name=calc_1.2.3.mda", up.query)
      c.v1.upload_package("calc", file, { name = "given.mda" })
      assert.are.equal("name=given.mda", last(sb).query)
      os.remove(file)
      os.remove(dir)
    end)
  end)

  describe("v4 sort", function()
    it("sends + and - as %2b and %2d, as the docs require", function()
      local r = c.v4.list_environments(APP, { sort = "-name" })
      assert.are.equal("sort=%2dname", last(sb).query)
      local names = {}
      for _, e in ipairs(r.environments) do names[#names + 1] = e.name end
      local sorted = { table.unpack(names) }
      table.sort(sorted, function(a, b) return a > b end)
      assert.are.same(sorted, names)
      c.v4.list_environments(APP, { sort = "+index" })
      assert.are.equal("sort=%2bindex", last(sb).query)
      c.v4.list_environments(APP, { sort = "%2Dname" }) -- already encoded: not encoded twice
      assert.are.equal("sort=%2dname", last(sb).query)
      c.v4.list_environments(APP, { sort = "name" })
      assert.are.equal("sort=name", last(sb).query)
    end)
  end)
end)
