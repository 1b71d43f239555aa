-- mxdeploy.help: `help(x)` / `mx.describe(x)` / `mx.signature(x)`, made from the operations table
-- (mxdeploy.operations) and the Lua API table (mxdeploy.api_docs), the same two tables that
-- scripts/gen-reference.lua writes docs/REFERENCE.md from.
--
-- x may be: nothing or mx (an overview), a namespace table (mx.v1, client.pc), an operation
-- function (mx.v1.start_environment) or its name ("v1.start_environment", "start_environment"),
-- an mx function (mx.spawn) or its name ("mx.spawn", "spawn", "job:wait"), a job, or any other
-- word, which is searched for in the names, paths and summaries ("start").

local operations = require("mxdeploy.operations")
local api_docs = require("mxdeploy.api_docs")
local errors = require("mxdeploy.errors")

local M = {}

local mx -- the module table, for the function -> entry map (set by M.attach)
local function_ops -- client.function_ops: operation function -> operation row
local helper_names -- client.helper_names: v1.download_app_logs and the like -> name

function M.attach(module, client)
  mx, function_ops, helper_names = module, client.function_ops, client.helper_names
end

-- Public docs -----------------------------------------------------------------------------------

local DOCS = "https://docs.mendix.com/apidocs-mxsdk/apidocs/deployment/"
-- The OpenAPI documents: the guide page that shows them, and where docs.mendix.com serves them
-- (static/openapi-spec/X of mendix/docs is served at /openapi-spec/X).
local OPENAPI = {
  ["deploy-api-v4.openapi.yaml"] = { page = DOCS .. "deploy-api-4/", spec = "https://docs.mendix.com/openapi-spec/cloud-portal-v4.yaml" },
  ["private-cloud-deploy-api.openapi.yaml"] = { page = DOCS .. "private-cloud-deploy-api/",
    spec = "https://docs.mendix.com/openapi-spec/private-cloud-deploy-api.yaml" },
  ["private-cloud-build-api.openapi.yaml"] = { page = DOCS .. "private-cloud-build-api/",
    spec = "https://docs.mendix.com/openapi-spec/private-cloud-build-api.yaml" },
  -- these two pages set their own url (front matter): /apidocs-mxsdk/apidocs/X/
  ["pipelines-api.openapi.yaml"] = { page = "https://docs.mendix.com/apidocs-mxsdk/apidocs/pipelines-api/",
    spec = "https://docs.mendix.com/openapi-spec/pipelines.yaml" },
  ["webhooks-api.openapi.yaml"] = { page = "https://docs.mendix.com/apidocs-mxsdk/apidocs/webhooks-api/",
    spec = "https://docs.mendix.com/openapi-spec/webhooks.yaml" },
}
-- Guide pages outside deployment/ (content/en/docs/apidocs-mxsdk/apidocs/apps/X.md), by their url.
local PAGES = { ["app-repository-api"] = "https://docs.mendix.com/apidocs-mxsdk/apidocs/app-repository-api/" }

--- Where the public docs describe an operation: {url =, spec =, operation =}. A guide page
--- (content/en/docs/apidocs-mxsdk/apidocs/deployment/X.md in mendix/docs) is served at
--- https://docs.mendix.com/apidocs-mxsdk/apidocs/deployment/X/, with its section anchor; an
--- operation of an OpenAPI document links the guide page that renders it, plus its operationId.
function M.docs(op)
  local page, anchor = op.source:match("^docs/([%w-]+)%.md#?(.*)$")
  if page then
    return { url = (PAGES[page] or (DOCS .. page .. "/")) .. (anchor ~= "" and ("#" .. anchor) or "") }
  end
  local file, id = op.source:match("^(%S+)%s+(%S+)$")
  local o = OPENAPI[file]
  if o then return { url = o.page, spec = o.spec, operation = id } end
  error("operation " .. op.full_name .. " has a source with no public page: " .. op.source)
end

--- One line: the docs URL (and the OpenAPI operation).
function M.docs_line(op)
  local d = M.docs(op)
  if d.operation then return ("%s (OpenAPI operation %s)"):format(d.url, d.operation) end
  return d.url
end

-- Signatures ------------------------------------------------------------------------------------

local function op_signature(op)
  local parts = { table.unpack(op.params) }
  local fields = {}
  for _, f in ipairs(op.fields or {}) do
    fields[#fields + 1] = f.name .. (f.required and "" or "?") .. "=" .. f.type
  end
  local opts = "{" .. table.concat(fields, ", ") .. "}"
  if op.input == "upload" then
    parts[#parts + 1] = "file"
    parts[#parts + 1] = "[" .. opts .. "]"
  elseif op.input == "download" then
    parts[#parts + 1] = "[output]"
    if #fields > 0 then parts[#parts + 1] = opts end
  elseif op.input == "body" then
    parts[#parts + 1] = "[body " .. opts .. "]"
  elseif op.input == "query" then
    parts[#parts + 1] = "[query " .. opts .. "]"
  end
  local returns = op.completes == "job" and "job" or (op.input == "download" and "output path" or "decoded JSON")
  return ("%s(%s) -> %s"):format(op.full_name, table.concat(parts, ", "), returns)
end

-- mx function values -> their api_docs entry, found by walking the names of the entries.
local function entry_of_function(fn)
  if helper_names and helper_names[fn] then return api_docs.by_name[helper_names[fn]] end
  if not mx then return nil end
  for name, e in pairs(api_docs.by_name) do
    local path = name:match("^mx%.(.+)$")
    if path then
      local v = mx
      for part in path:gmatch("[^.]+") do
        v = type(v) == "table" and rawget(v, part) or nil
      end
      if v == fn then return e end
    end
  end
  return nil
end

-- An entry by name: "mx.spawn", "spawn", "json.encode", "job:wait".
local function entry_of_name(s)
  return api_docs.by_name[s] or api_docs.by_name["mx." .. s]
end

local function op_of(x)
  if type(x) == "function" then return function_ops and function_ops[x] end
  -- rawget: a namespace table (mx.v1) raises on an unknown name
  if type(x) == "table" and type(rawget(x, "full_name")) == "string" then return operations.by_name[rawget(x, "full_name")] end
  if type(x) == "string" then return operations.by_name[x] end
  return nil
end

--- The call signature of an operation (function, name or record) or of an mx function.
function M.signature(x)
  local op = op_of(x)
  if op then return op_signature(op) end
  local e = type(x) == "function" and entry_of_function(x) or (type(x) == "string" and entry_of_name(x))
  if e then return e.call end
  errors.raise(errors.argument("signature", 1, "operation or mx function expected, got "
    .. (type(x) == "string" and ("'" .. x .. "'") or errors.typename(x))), 2)
end

-- Describing -----------------------------------------------------------------------------------

local function describe_op(op, out)
  out[#out + 1] = op_signature(op)
  out[#out + 1] = ("  %s %s   (%s)"):format(op.method, op.path, op.completes == "job" and "returns a job" or "completes now")
  out[#out + 1] = "  " .. op.summary
  for _, f in ipairs(op.fields or {}) do
    out[#out + 1] = ("    %s (%s%s)%s"):format(f.name, f.type, f.required and ", required" or "",
      f.doc and (": " .. f.doc) or "")
  end
  if op.note then out[#out + 1] = "  " .. op.note end
  if op.each then out[#out + 1] = "  Iterator: for item in " .. op.ns .. "." .. op.each .. "(...) do ... end" end
  out[#out + 1] = "  Docs: " .. M.docs_line(op)
end

local function describe_entry(e, out)
  out[#out + 1] = e.call
  out[#out + 1] = "  " .. e.summary
  for _, l in ipairs(e.details or {}) do out[#out + 1] = "  " .. l end
end

local function ops_in(ns)
  local list = {}
  for _, op in ipairs(operations.list) do if op.ns == ns then list[#list + 1] = op end end
  return list
end

local function describe_namespace(ns, out)
  local n = operations.namespace[ns]
  local list = ops_in(ns)
  out[#out + 1] = ("mx.%s: %s, %s (%s), %d operations"):format(ns, n.title, n.base,
    n.auth == "apikey" and "MENDIX_USERNAME/MENDIX_APIKEY" or "MENDIX_TOKEN", #list)
  local width = 0
  for _, op in ipairs(list) do width = math.max(width, #op.name) end
  for _, op in ipairs(list) do
    out[#out + 1] = ("  %-" .. width .. "s  %s%s"):format(op.name, op.completes == "job" and "[job] " or "", op.summary)
  end
  local extra = {}
  for _, op in ipairs(list) do
    if op.each then extra[#extra + 1] = op.each .. " (iterates " .. op.name .. ")" end
  end
  for name, e in pairs(api_docs.by_name) do
    if name:match("^" .. ns .. "%.") then extra[#extra + 1] = name:sub(#ns + 2) .. ": " .. e.summary end
  end
  table.sort(extra)
  for _, l in ipairs(extra) do out[#out + 1] = "  + " .. l end
  out[#out + 1] = ("help(mx.%s.NAME) describes one; Docs: %s"):format(ns,
    M.docs(list[1]).url:gsub("#.*$", ""))
end

-- The namespace a table is (mx.v1, client.pc...): its operation functions say so.
local function namespace_of(t)
  if not function_ops then return nil end
  for _, v in pairs(t) do
    local op = type(v) == "function" and function_ops[v]
    if op then return op.ns end
  end
  return nil
end

local function overview(out)
  out[#out + 1] = "mxdeploy " .. ((mx and mx.version) or "") .. ": help(x) describes a namespace (help(mx.v1)), an operation"
  out[#out + 1] = "(help(mx.v1.start_environment)), an mx function (help(mx.spawn)), or searches (help(\"start\"))."
  out[#out + 1] = "Namespaces (" .. #operations.list .. " operations):"
  for _, n in ipairs(operations.namespaces) do
    out[#out + 1] = ("  mx.%-8s %s (%d operations, %s)"):format(n.ns, n.title, #ops_in(n.ns),
      n.auth == "apikey" and "MENDIX_USERNAME/MENDIX_APIKEY" or "MENDIX_TOKEN")
  end
  for _, s in ipairs(api_docs.sections) do
    local names = {}
    for _, e in ipairs(s.entries) do names[#names + 1] = e.name end
    out[#out + 1] = s.title .. ": " .. table.concat(names, ", ")
  end
end

local function search(word, out)
  local w = word:lower()
  local function has(s) return type(s) == "string" and s:lower():find(w, 1, true) ~= nil end
  local rows = {}
  for _, op in ipairs(operations.list) do
    if has(op.full_name) or has(op.path) or has(op.summary) then
      rows[#rows + 1] = { op.full_name, op.method .. " " .. op.path .. "  " .. op.summary }
    end
  end
  for _, s in ipairs(api_docs.sections) do
    for _, e in ipairs(s.entries) do
      if has(e.name) or has(e.summary) then rows[#rows + 1] = { e.name, e.summary } end
    end
  end
  if #rows == 0 then return false end
  out[#out + 1] = ("%d matches for %q:"):format(#rows, word)
  local width = 0
  for _, r in ipairs(rows) do width = math.max(width, #r[1]) end
  for _, r in ipairs(rows) do out[#out + 1] = ("  %-" .. width .. "s  %s"):format(r[1], r[2]) end
  return true
end

-- The text describe(v, out) writes.
local function render(describe, v)
  local out = {}
  describe(v, out)
  return table.concat(out, "\n")
end

--- Help text for x (see the module comment).
function M.describe(x)
  local out = {}
  if x == nil or (mx and x == mx) then
    overview(out)
    return table.concat(out, "\n")
  end
  local op = op_of(x)
  if op then return render(describe_op, op) end
  if type(x) == "function" then
    local e = entry_of_function(x)
    if e then return render(describe_entry, e) end
    return "no help for this function: it is not an operation or an mx function"
  end
  if type(x) == "table" then
    local require_jobs = package.loaded["mxdeploy.jobs"]
    if require_jobs and require_jobs.is_job(x) then x = "job"
    else
      local ns = namespace_of(x)
      if ns then return render(describe_namespace, ns) end
      return "no help for this table: help(mx.v1) describes a namespace, help() lists them"
    end
  end
  local mt = type(x) == "userdata" and getmetatable(x)
  if type(mt) == "table" and mt.__name == "mxdeploy.task" then x = "task" end
  if type(x) ~= "string" then
    return "no help for a " .. errors.typename(x) .. ": help() lists what there is"
  end
  local s = x:gsub("^mx%.", "")
  if operations.namespace[s] then return render(describe_namespace, s) end
  local e = entry_of_name(x)
  if e then return render(describe_entry, e) end
  if s == "job" or s == "task" or s == "client" or s == "sandbox" then -- an object's methods
    for name, entry in pairs(api_docs.by_name) do
      if name:match("^" .. s .. "[:.]") then out[#out + 1] = entry end
    end
    table.sort(out, function(a, b) return a.name < b.name end)
    local text = {}
    for _, entry in ipairs(out) do describe_entry(entry, text) end
    return table.concat(text, "\n")
  end
  local named = {}
  for _, o in ipairs(operations.list) do if o.name == s or o.path == s then named[#named + 1] = o end end
  if #named > 0 then
    for _, o in ipairs(named) do describe_op(o, out) end
    return table.concat(out, "\n")
  end
  if search(s, out) then return table.concat(out, "\n") end
  return ("nothing matches %q: help() lists the namespaces and functions"):format(x)
end

--- Prints M.describe(x).
function M.help(x)
  print(M.describe(x))
end

--- The argument hint shown at the prompt after `f(`: the signature, or nil.
function M.hint(x)
  local ok, s = pcall(M.signature, x)
  return ok and s or nil
end

-- Loaded on first use (mx.help, the REPL's hint): by then the module is complete.
if type(package.loaded["mxdeploy"]) == "table" then M.attach(package.loaded["mxdeploy"], require("mxdeploy.client")) end

return M
