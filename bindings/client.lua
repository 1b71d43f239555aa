-- mxdeploy.client: `mx.connect{...}` and the per-API namespaces of a client, whose functions
-- are generated from mxdeploy.operations.
--
--   local c = mx.connect{profile=, username=, apikey=, token=, base_urls={v1=, ...}, endpoint=,
--                        retry=, timeout=, max_response_size=, insecure=, ca_file=, poll_interval=,
--                        rate={requests=, per=},   (a quota per API host, where a gateway has one)
--                        dry_run=, yes=, on_plan=}
--   timeout: the deadline of each call (retries included; default 120 s, none for file transfers);
--   max_response_size: the largest answer held in memory, decompressed (default 16 MiB).
--   c.v1, c.v2, c.v4, c.build, c.backups, c.pc, c.pcbuild, c.pipelines, c.webhooks, c.repository
--
-- Credentials are resolved (through core.credentials) at the first call that needs them, so a
-- client can be created with nothing configured; a missing credential is a one-line
-- `credentials` error naming what to set.

local core = require("mxdeploy.core")
local json = require("mxdeploy.json")
local errors = require("mxdeploy.errors")
local operations = require("mxdeploy.operations")
local arguments = require("mxdeploy.arguments")
local request = require("mxdeploy.request")
local retry_policy = require("mxdeploy.retry_policy")
local jobs = require("mxdeploy.jobs")
local webhooks = require("mxdeploy.webhooks")
local rate_budget = require("mxdeploy.rate_budget")

local M = {}

local Client = {}
Client.__index = Client
M.Client = Client

-- function -> operation row, for help() and introspection
M.function_ops = setmetatable({}, { __mode = "k" })
M.helper_names = setmetatable({}, { __mode = "k" }) -- v1.download_app_logs and the like -> their name

local CONNECT_OPTIONS = {
  profile = "string", username = "string", apikey = "string", token = "string",
  base_urls = "table", retry = "table|boolean", timeout = "number", insecure = "boolean", ca_file = "string",
  max_response_size = "number",
  poll_interval = "number", credentials = "userdata|table", rate = "table",
  endpoint = "string", dry_run = "boolean", yes = "boolean", on_plan = "function",
}

--- Base URLs of every API under one endpoint, laid out as the sandbox serves them (a standalone
--- `mxdeploy sandbox`, or a gateway that routes these prefixes).
function M.endpoint_urls(url)
  url = url:gsub("/+$", "")
  return {
    v1 = url .. "/deploy/api/1", build = url .. "/deploy/api/1",
    v2 = url .. "/deploy/api/v2", backups = url .. "/deploy/api/v2",
    v4 = url .. "/cloud/api/v4",
    pc = url .. "/privatecloud/api/v4", pcbuild = url .. "/privatecloud/api/v4",
    pipelines = url .. "/pipelines/api/v1", webhooks = url .. "/webhooks/api/v1",
    repository = url .. "/repository/v1",
  }
end

local function check_options(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    errors.raise(errors.argument("connect", 1, "table expected, got " .. errors.typename(opts)), 3)
  end
  for k, v in pairs(opts) do
    local want = CONNECT_OPTIONS[k]
    if not want then
      local names = {}
      for name in pairs(CONNECT_OPTIONS) do names[#names + 1] = name end
      table.sort(names)
      local hint = errors.did_you_mean(tostring(k), names)
      errors.raise(errors.argument("connect", 1, "unknown option '" .. tostring(k) .. "'"
        .. (hint and ("; did you mean " .. hint .. "?") or "")), 3)
    end
    if not want:find(type(v), 1, true) then
      errors.raise(errors.argument("connect", 1, k .. ": " .. want .. " expected, got " .. errors.typename(v)), 3)
    end
  end
  for _, k in ipairs({ "poll_interval", "timeout", "max_response_size" }) do
    local v = opts[k]
    if v ~= nil and not (v > 0) then -- also refuses nan; 0 would poll (or time out) at once
      errors.raise(errors.argument("connect", 1, k .. ": positive number of seconds expected, got " .. tostring(v)), 3)
    end
  end
  if opts.rate ~= nil then
    local r = opts.rate
    for k in pairs(r) do
      if k ~= "requests" and k ~= "per" then
        errors.raise(errors.argument("connect", 1, "rate: unknown field '" .. tostring(k) .. "' (expected requests, per)"), 3)
      end
    end
    if math.type(r.requests) ~= "integer" or r.requests < 1 then
      errors.raise(errors.argument("connect", 1, "rate.requests: positive integer expected"), 3)
    end
    if type(r.per) ~= "number" or not (r.per > 0) or r.per == math.huge then
      errors.raise(errors.argument("connect", 1, "rate.per: positive number of seconds expected"), 3)
    end
  end
  if opts.endpoint ~= nil and not opts.endpoint:match("^https?://[^/]") then
    errors.raise(errors.argument("connect", 1, "endpoint: http(s) URL expected, got '" .. opts.endpoint .. "'"), 3)
  end
  if opts.endpoint and opts.base_urls then
    errors.raise(errors.argument("connect", 1, "endpoint and base_urls exclude each other"), 3)
  end
  for k, v in pairs(opts.base_urls or {}) do
    if not operations.namespace[k] then
      errors.raise(errors.argument("connect", 1, "base_urls: unknown API '" .. tostring(k)
        .. "' (expected v1, v2, v4, build, backups, pc, pcbuild, pipelines, webhooks, repository)"), 3)
    end
    if type(v) ~= "string" or not v:match("^https?://") then
      errors.raise(errors.argument("connect", 1, "base_urls." .. k .. ": http(s) URL expected"), 3)
    end
  end
  return opts
end

--- The credentials of this client (resolved once).
function Client:credentials()
  if self._creds then return self._creds end
  local o = self.options
  if o.credentials then self._creds = o.credentials return self._creds end
  local ok, creds = pcall(core.credentials, {
    profile = o.profile, username = o.username, apikey = o.apikey, token = o.token,
  })
  if not ok then
    local msg = errors.is(creds) and creds.message or tostring(creds)
    errors.raise(errors.credentials(msg), 0)
  end
  self._creds = creds
  return creds
end

local function where_to_set(self)
  local profile = self.options.profile or os.getenv("MXDEPLOY_PROFILE") or "default"
  return profile
end

function Client:auth_for(nsinfo)
  local creds = self:credentials()
  local has = creds.has and creds:has(nsinfo.auth)
  if not has then
    local profile = where_to_set(self)
    local source = type(creds.source) == "function" and function(k) return creds:source(k) end or function() return nil end
    local note = type(creds.note) == "function" and creds:note() or nil
    local msg
    if nsinfo.auth == "apikey" then
      local user, key = source("username"), source("apikey")
      if user and not key then
        msg = ("%s needs an API key: the username comes from %s but no API key is set: set MENDIX_APIKEY, "
          .. "or apikey in profile '%s' of the credentials file"):format(nsinfo.title, user, profile)
      elseif key and not user then
        msg = ("%s needs an API key: the API key comes from %s but no username is set: set MENDIX_USERNAME, "
          .. "or username in profile '%s' of the credentials file"):format(nsinfo.title, key, profile)
      else
        msg = ("%s needs an API key: set MENDIX_USERNAME and MENDIX_APIKEY, "
          .. "or username and apikey in profile '%s' of the credentials file"):format(nsinfo.title, profile)
      end
    else
      msg = ("%s needs a personal access token (scope %s): set MENDIX_TOKEN, "
        .. "or token in profile '%s' of the credentials file"):format(nsinfo.title, nsinfo.scopes, profile)
    end
    if note then msg = msg .. " (" .. note .. ")" end
    errors.raise(errors.credentials(msg), 0)
  end
  return creds
end

function Client:base_url(ns)
  local b = (self.options.base_urls or {})[ns] or operations.namespace[ns].base
  return (b:gsub("/+$", ""))
end

-- An operation's route cut at its parameters: {"/apps/", "/environments"} for
-- "/apps/{AppId}/environments" (made once per operation, not on every call).
local route_pieces = setmetatable({}, { __mode = "k" })
local function pieces_of(op)
  local pieces = route_pieces[op]
  if not pieces then
    pieces = {}
    local at = 1
    for s, e in op.route:gmatch("(){[%w%-]+}()") do
      pieces[#pieces + 1] = op.route:sub(at, s - 1)
      at = e
    end
    pieces[#pieces + 1] = op.route:sub(at)
    route_pieces[op] = pieces
  end
  return pieces
end

-- Path values as they go into URLs (IDs, mostly the same few again and again: escaping one was
-- 2-9K instructions), at most 256 kept.
local escaped_segments, escaped_count = {}, 0
local function segment(v)
  local e = escaped_segments[v]
  if e then return e end
  e = request.escape(v)
  if type(v) ~= "string" then return e end
  if escaped_count >= 256 then escaped_segments, escaped_count = {}, 0 end
  escaped_segments[v], escaped_count = e, escaped_count + 1
  return e
end

--- URL of an operation with its path values.
function Client:url_of(op, path_values)
  local bases = self._bases
  local base = bases[op.ns]
  if not base then
    base = self:base_url(op.ns)
    bases[op.ns] = base
  end
  local pieces = pieces_of(op)
  local url = base .. pieces[1]
  for i = 2, #pieces do -- at most a few: cheaper than a table and table.concat
    url = url .. segment(path_values[i - 1]) .. pieces[i]
  end
  return url
end

-- The documented names of an operation's fields, in the docs' order (query strings follow it).
local field_order = setmetatable({}, { __mode = "k" })
local function fields_of(op)
  local names = field_order[op]
  if not names then
    names = {}
    for _, f in ipairs(op.fields or {}) do names[#names + 1] = f[1] end
    field_order[op] = names
  end
  return names
end

-- Dry-run and confirmation -------------------------------------------------------------------

-- A plan line shows a body's top-level fields; nested values (constants, manifests) only as
-- their size, so a setting's value never reaches a log through a plan.
local function short_body(v)
  if v == nil or (type(v) == "table" and next(v) == nil) then return "" end
  if type(v) == "table" then
    local shallow = {}
    for k, x in pairs(v) do
      if type(x) == "table" then
        local n = 0
        for _ in pairs(x) do n = n + 1 end
        shallow[k] = ("<%d %s>"):format(n, n == 1 and "item" or "items")
      else
        shallow[k] = x
      end
    end
    v = shallow
  end
  local ok, text = pcall(json.encode, v)
  if not ok then return "" end
  if #text > 100 then text = text:sub(1, 97) .. "..." end
  return " " .. text
end

--- Records a call that dry-run mode does not send, and reports it (on_plan, or a line on
--- stderr). Returns the plan entry {method =, path =, body =, output =, operation =}.
function Client:record_plan(entry)
  self.plan[#self.plan + 1] = entry
  entry.line = ("%s %s%s%s"):format(entry.method, entry.path, short_body(entry.body),
    entry.output and (" -> " .. entry.output) or "")
  if self.on_plan then
    self.on_plan(entry)
  else
    io.stderr:write("[plan] ", entry.line, "\n")
    io.stderr:flush()
  end
  return entry
end

-- A call changes something: every method but GET, and every download to a file.
local function mutates(op, a)
  return op.method ~= "GET" or (a and a.output ~= nil)
end
M.mutates = mutates

local function stdin_is_tty()
  return os.execute("test -t 0") == true
end

--- Asks once per `key` (on a terminal) whether to go on with `question`; without a terminal
--- refuses unless the client was made with yes = true. Raises a `refused` error (exit status
--- 2) when the answer is no. Returns true.
function Client:confirm(key, question)
  if self.yes or self.dry_run or self._approved[key] then return true end
  if not (self.ask or stdin_is_tty)() then
    errors.raise(errors.new("refused", { exit_code = 2, message = question
      .. ": needs confirmation and there is no terminal to ask on; rerun with --yes (mx.connect{yes = true})" }), 0)
  end
  io.stderr:write(question, "? [y/N] ")
  io.stderr:flush()
  local answer = io.stdin:read("l")
  if not (answer and answer:match("^%s*[yY]")) then
    errors.raise(errors.new("refused", { exit_code = 2, message = question .. ": not confirmed" }), 0)
  end
  self._approved[key] = true
  return true
end

-- Production environments this client has seen (EnvironmentId -> true), learned from v1
-- environment answers, so a Backups call naming one by its ID is known to touch Production.
local function learn_environments(self, op, body)
  if op.ns ~= "v1" or (op.name ~= "get_environment" and op.name ~= "list_environments") then return end
  local list = op.name == "get_environment" and { body } or body
  if type(list) ~= "table" then return end
  for _, e in ipairs(list) do
    if type(e) == "table" and type(e.EnvironmentId) == "string" and e.Mode == "Production" then
      self._production[e.EnvironmentId] = true
    end
  end
end

-- What a mutating call must be confirmed for, or nil: every delete, restore and clean, and any
-- change to a Production environment.
local function needs_confirmation(self, op, a)
  local what = op.full_name .. " " .. table.concat(a.path, "/")
  if op.method == "DELETE" or op.name:find("restore") or op.name:find("clean") then
    return "destructive:" .. what, "This will run " .. what .. " (" .. op.method .. " " .. op.path .. ")"
  end
  for i, p in ipairs(op.params) do
    local v = a.path[i]
    if (p == "Mode" and v == "Production") or ((p == "EnvironmentId" or p == "environmentId") and self._production[v]) then
      local target = table.concat(a.path, "/", 1, i)
      -- one yes covers every Production change of the run (a script asks once, up front)
      return "production", "This changes the Production environment " .. target .. " (" .. op.full_name .. ")"
    end
  end
  return nil
end

-- The headers of a v1/v2/Build/Backups call: one table for all, only read (mx.request copies
-- headers before it adds one).
local JSON_CONTENT = { ["Content-Type"] = "application/json" }

--- Sends an operation's request. `a` = output of arguments.check. Returns the response.
function Client:send(op, a)
  local nsinfo = operations.namespace[op.ns]
  if mutates(op, a) then
    if self.dry_run then
      local url = self:url_of(op, a.path)
      self:record_plan({ method = op.method, path = errors.url_path(url), body = a.body or (op.input ~= "upload" and a.query) or nil,
        file = a.file, output = a.output, operation = op.full_name })
      return { status = 0, planned = true, headers = {}, json = { planned = true }, url = url }
    end
    local key, question = needs_confirmation(self, op, a)
    if key then self:confirm(key, question) end
  end
  local req = {
    method = op.method, url = self:url_of(op, a.path),
    -- the v1/v2/Build/Backups docs send it on every call except uploads
    headers = nsinfo.auth == "apikey" and op.input ~= "upload" and JSON_CONTENT or nil,
    auth = self:auth_for(nsinfo), auth_scheme = nsinfo.auth,
    policy = self.policy, defaults = self.defaults, insecure = self.options.insecure,
    ca_file = self.options.ca_file, budget = self.budget,
  }
  if op.input == "body" then
    req.json = a.body or {}
  elseif op.input == "query" then
    req.query = a.query
  elseif op.input == "upload" then
    req.file = a.file
    req.on_progress = a.on_progress and M.file_progress(a.on_progress, a.size)
    local basename = a.file:match("([^/]+)$") or a.file
    if op.ns == "pcbuild" then
      local name = a.query and a.query.fileName or basename
      req.form = { fileName = name }
    else
      -- without a name the package is called default.mda: the file's name, as pcbuild does
      req.query = {}
      for k, v in pairs(a.query or {}) do req.query[k] = v end
      if req.query.name == nil then req.query.name = basename end
    end
  elseif op.input == "download" then
    req.query = a.query
    req.output = a.output
    req.on_progress = a.on_progress
    if op.redirect and not a.output then req.max_redirects = 0 end
  end
  if req.query then
    req.query_order = fields_of(op)
    if op.ns == "v4" and type(req.query.sort) == "string" then
      -- the docs: a leading + or - must be sent as %2b / %2d (already encoded forms pass as given)
      local sort = req.query.sort
      local sign, rest = sort:match("^([+-])(.*)$")
      local copy = {}
      for k, v in pairs(req.query) do copy[k] = v end
      if sign then
        copy.sort = (sign == "+" and "%2b" or "%2d") .. request.escape(rest)
      elseif sort:match("^%%2[bdBD]") then
        copy.sort = sort:sub(1, 3):lower() .. request.escape(sort:sub(4))
      else
        copy.sort = request.escape(sort)
      end
      req.query, req.query_raw = copy, { sort = true }
    end
  end
  local resp = request.perform(req) -- every field of req comes from checked arguments and options
  self._last[core.current() or "main"] = resp
  if op.method == "GET" then learn_environments(self, op, resp.json) end
  if op.input ~= "download" and resp.json == nil and resp.body and resp.body:find("%S") then
    -- every API answers JSON (or nothing): anything else is a malformed answer, not a result
    local shown = resp.body:sub(1, 80):gsub("%s+", " ")
    errors.raise(errors.new("response", {
      status = resp.status, method = req.method, url = core.redact_url(resp.url or req.url),
      message = "malformed response: expected JSON, got " .. (resp.json_error and "invalid JSON" or
        ("content-type " .. tostring(resp.headers and resp.headers["content-type"]))) .. ": " .. shown,
    }), 0)
  end
  return resp
end

--- The response (status, headers, body, json) of the last call this task made on this client.
--- Operation functions return only their result, so that `c.pc.update_namespace(c, n,
--- c.pc.get_namespace(c, n))` works; this is where the status and headers are.
function Client:last_response()
  return self._last[core.current() or "main"]
end

--- An upload's on_progress in bytes of the file: the transport counts the multipart body (the
--- file plus its framing), so a 9.4 KB package would report "of 9.6 KB". The framing before the
--- file part is subtracted; 100% is reported once the whole body has left.
function M.file_progress(on_progress, size)
  return function(done, total, direction)
    if not total or total <= 0 or not size then return on_progress(done, total, direction) end
    local framing = math.max(total - size, 0)
    local sent = math.min(math.max(done - framing, 0), size)
    if done >= total then sent = size end
    return on_progress(sent, size, direction)
  end
end

local function result_of(resp)
  if resp.json ~= nil then return resp.json end
  if resp.body and #resp.body > 0 then return resp.body end
  return true
end

local function make_operation(self, ns_table, op)
  local fn
  if op.completes == "job" then
    local spec = op.job
    fn = function(...)
      local a = arguments.check(op, ...)
      local ok, resp = pcall(self.send, self, op, a)
      if not ok then
        local e = resp
        if errors.is(e, "http") and spec.already_done_codes and spec.already_done_codes[e.code] then
          return jobs.new{ ns = ns_table, op = op, args = a.path, response = e.body,
                           already_done = true, interval = self.poll_interval }
        end
        error(e, 0)
      end
      if resp.planned then
        self._planned_ids = self._planned_ids + 1
        return jobs.planned{ ns = ns_table, op = op, args = a.path, interval = self.poll_interval,
                             id = "planned-" .. self._planned_ids }
      end
      local job = jobs.new{ ns = ns_table, op = op, args = a.path, response = resp.json,
                            interval = self.poll_interval }
      job.response = resp
      if op.ns == "pipelines" then job.run = resp.json end -- the run's name, who triggered it
      return job
    end
  elseif op.input == "download" then
    fn = function(...)
      local a = arguments.check(op, ...)
      local resp = self:send(op, a)
      if a.output then return a.output end
      if resp.planned then return result_of(resp) end
      if op.redirect then return resp.headers.location end
      return result_of(resp)
    end
  else
    fn = function(...)
      local a = arguments.check(op, ...)
      local resp = self:send(op, a)
      return result_of(resp)
    end
  end
  M.function_ops[fn] = op
  return fn
end

-- One page of a list: its items (the field `key` of the body; {} when absent) and the body.
local function fetch_page(list_fn, path, query, key)
  local args = { table.unpack(path) }
  args[#args + 1] = query
  local body = list_fn(table.unpack(args, 1, #path + 1))
  local items = type(body) == "table" and body[key] or nil
  if type(items) ~= "table" then items = {} end
  return items, body
end

-- Lazy iterator over a cursor-paginated list (Webhooks, App Repository): each page names the
-- next one in cursors.next, absent on the last page.
local function make_cursor_iterator(list_fn, op)
  local fn = function(...)
    local a = arguments.check(op, ...)
    local query = {}
    for k, v in pairs(a.query or {}) do query[k] = v end
    local path = a.path
    local page, i, done, seen = nil, 0, false, {}
    return function()
      while true do
        if page and i < #page then
          i = i + 1
          return page[i]
        end
        if done then return nil end
        local items, body = fetch_page(list_fn, path, query, op.pages.items)
        page, i = items, 0
        local cursors = type(body) == "table" and body.cursors or nil
        local nxt = type(cursors) == "table" and cursors.next or nil
        if type(nxt) ~= "string" or nxt == "" or #items == 0 then
          done = true
        elseif seen[nxt] then
          -- a server handing out a cursor again would make the iteration endless
          errors.raise(errors.new("response", { message = ("malformed page of %s: cursor '%s' came back")
            :format(op.full_name, nxt) }), 2)
        else
          seen[nxt] = true
          query.cursor = nxt
        end
      end
    end
  end
  M.function_ops[fn] = op
  return fn
end

-- Lazy iterator over every item of a paginated list operation.
local function make_iterator(list_fn, op)
  local pages = op.pages
  if pages.style == "cursor" then return make_cursor_iterator(list_fn, op) end
  local default_limit = op.ns == "pcbuild" and 50 or 100
  local fn = function(...)
    local a = arguments.check(op, ...)
    local query = {}
    for k, v in pairs(a.query or {}) do query[k] = v end
    local offset = query.offset or 0
    local limit = query.limit or default_limit
    local path = a.path
    local page, i, done, page_count = nil, 0, false, 0
    return function()
      while true do
        if page and i < #page then
          i = i + 1
          return page[i]
        end
        if done then return nil end
        query.offset, query.limit = offset, limit
        local items, body = fetch_page(list_fn, path, query, pages.items)
        page, i, page_count = items, 0, page_count + 1
        local n = #items
        -- a server that ignores offset would serve the first page forever (the first page is
        -- taken as served: mock servers answer their documented example there)
        local served_offset = type(body) == "table" and (type(body.pagination) == "table"
          and tonumber(body.pagination.offset) or tonumber(body.offset)) or nil
        if n > 0 and page_count > 1 and served_offset and served_offset ~= offset then
          errors.raise(errors.new("response", { message = ("malformed page of %s: asked for offset %s, got offset %s")
            :format(op.full_name, tostring(offset), tostring(served_offset)) }), 2)
        end
        offset = offset + n
        local total = type(body) == "table" and tonumber(body.total) or nil
        local served_limit = type(body) == "table" and type(body.pagination) == "table"
          and tonumber(body.pagination.limit) or nil
        -- with a total (Backups) it alone says when the list ends: a server that serves fewer
        -- items than asked for (a capped limit) has not reached the end
        if n == 0 or (total and offset >= total) or (not total and n < (served_limit or limit)) then
          done = true
        end
      end
    end
  end
  M.function_ops[fn] = op
  return fn
end

--- Fetches `url` WITHOUT credentials (signed log / archive / package URLs) into `output`
--- (atomic), or returns the body when no output is given.
local DOWNLOAD_OPTIONS = { timeout = true, on_progress = true, retry = true, policy = true, insecure = true, ca_file = true,
  defaults = true }

function M.download(url, output, opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    errors.raise(errors.argument("download", 3, "table expected, got " .. errors.typename(opts)), 2)
  end
  for k in pairs(opts) do
    if not DOWNLOAD_OPTIONS[k] then
      errors.raise(errors.argument("download", 3, "unknown option '" .. tostring(k)
        .. "' (expected timeout, on_progress, retry, insecure, ca_file)"), 2)
    end
  end
  local resp = request.request{ method = "GET", url = url, output = output, timeout = opts.timeout,
    defaults = opts.defaults,
    on_progress = opts.on_progress, retry = opts.retry, policy = opts.policy, insecure = opts.insecure,
    ca_file = opts.ca_file }
  if output then return output end
  return resp.body
end

local function add_helpers(self, namespaces)
  local v1 = namespaces.v1
  local function logs(getter, fname)
    return function(app, mode, date, output)
      if output ~= nil and type(output) ~= "string" then
        errors.raise(errors.argument("v1." .. fname, 4, "output: file path expected, got " .. errors.typename(output)), 2)
      end
      if self.dry_run and output then
        self:record_plan({ method = "GET", path = "(" .. fname .. " " .. tostring(app) .. "/" .. tostring(mode) .. "/" .. tostring(date) .. ")",
          output = output, operation = "v1." .. fname })
        return output
      end
      local info = getter(app, mode, date)
      local url = type(info) == "table" and info.DownloadUrl
      if type(url) ~= "string" then
        local last = self:last_response()
        errors.raise(errors.new("response", { status = last and last.status,
          message = "malformed response: no DownloadUrl in the answer", method = "GET",
          url = last and core.redact_url(last.url) }), 2)
      end
      return M.download(url, output, { policy = self.policy, insecure = self.options.insecure,
        ca_file = self.options.ca_file, defaults = self.defaults })
    end
  end
  v1.download_app_logs = logs(v1.get_app_logs, "download_app_logs")
  v1.download_access_logs = logs(v1.get_access_logs, "download_access_logs")
  M.helper_names[v1.download_app_logs] = "v1.download_app_logs"
  M.helper_names[v1.download_access_logs] = "v1.download_access_logs"
  namespaces.webhooks.verify = webhooks.verify
  namespaces.webhooks.serve = webhooks.serve
  M.helper_names[webhooks.verify] = "webhooks.verify"
  M.helper_names[webhooks.serve] = "webhooks.serve"
  namespaces.backups.download_archive = function(archive, output)
    local url = type(archive) == "table" and archive.url or archive
    if self.dry_run and output ~= nil then
      self:record_plan({ method = "GET", path = "(archive " .. tostring(type(archive) == "table" and archive.archive_id or "?") .. ")",
        output = output, operation = "backups.download_archive" })
      return output
    end
    if type(url) ~= "string" then
      errors.raise(errors.argument("backups.download_archive", 1, "archive (with url) or URL expected, got " .. errors.typename(url)), 2)
    end
    return M.download(url, output, { policy = self.policy, insecure = self.options.insecure,
      ca_file = self.options.ca_file, defaults = self.defaults })
  end
  M.helper_names[namespaces.backups.download_archive] = "backups.download_archive"
end

--- Creates a client (see module comment).
function M.connect(opts)
  opts = check_options(opts)
  -- Secrets given here go straight into C memory; the client keeps no copy a REPL could print.
  local kept = {}
  for k, v in pairs(opts) do kept[k] = v end
  if opts.username or opts.apikey or opts.token then
    kept.username, kept.apikey, kept.token = nil, nil, nil
    if not opts.credentials then
      local ok, creds = pcall(core.credentials, {
        profile = opts.profile, username = opts.username, apikey = opts.apikey, token = opts.token,
      })
      if not ok then
        errors.raise(errors.credentials(errors.is(creds) and creds.message or tostring(creds)), 2)
      end
      kept.credentials = creds
    end
  end
  opts = kept
  if not opts.base_urls then
    local endpoint = opts.endpoint or os.getenv("MXDEPLOY_ENDPOINT")
    if endpoint and endpoint ~= "" then
      if not endpoint:match("^https?://[^/]") then
        errors.raise(errors.argument("connect", 1, "MXDEPLOY_ENDPOINT: http(s) URL expected, got '" .. endpoint .. "'"), 2)
      end
      opts.base_urls = M.endpoint_urls(endpoint)
    end
  end
  local self = setmetatable({ options = opts, _last = setmetatable({}, { __mode = "k" }), _bases = {},
    dry_run = opts.dry_run == true, yes = opts.yes == true, on_plan = opts.on_plan, plan = {},
    _approved = {}, _production = {}, _planned_ids = 0 }, Client)
  self.policy = retry_policy.resolve(request.policy, opts.retry)
  self.defaults = { timeout = opts.timeout, max_response_size = opts.max_response_size }
  self.poll_interval = opts.poll_interval or 1
  -- one budget per API host for every task of this client (429 pauses; `rate` quota if given)
  self.budget = rate_budget.new(opts.rate)
  local namespaces = {}
  for _, n in ipairs(operations.namespaces) do
    -- an unknown name is a one-line argument error with a hint, not "attempt to call a nil value"
    namespaces[n.ns] = setmetatable({}, { __index = function(t, k)
      if type(k) ~= "string" or k:match("^__") then return nil end
      local names = {}
      for name in pairs(t) do names[#names + 1] = name end
      table.sort(names)
      local hint = errors.did_you_mean(k, names)
      errors.raise(errors.new("argument", { message = ("no operation '%s' in mx.%s%s"):format(k, n.ns,
        hint and ("; did you mean " .. hint .. "?") or "") }), 2)
    end })
  end
  for _, op in ipairs(operations.list) do
    local ns_table = namespaces[op.ns]
    ns_table[op.name] = make_operation(self, ns_table, op)
  end
  for _, op in ipairs(operations.list) do
    if op.each then
      namespaces[op.ns][op.each] = make_iterator(namespaces[op.ns][op.name], op)
    end
  end
  add_helpers(self, namespaces)
  for ns, t in pairs(namespaces) do self[ns] = t end
  return self
end

function Client:__tostring()
  local bases = {}
  for _, n in ipairs(operations.namespaces) do bases[#bases + 1] = n.ns .. "=" .. errors.redact_url(self:base_url(n.ns)) end
  return "mxdeploy client (" .. table.concat(bases, " ") .. ")"
end

return M
