-- mxdeploy.client: `mx.connect{...}` and the per-API namespaces of a client, whose functions
-- are generated from mxdeploy.operations.
--
--   local c = mx.connect{profile=, username=, apikey=, token=, base_urls={v1=, ...},
--                        retry=, timeout=, max_response_size=, insecure=, ca_file=, poll_interval=,
--                        rate={requests=, per=}}   (a quota per API host, where a gateway has one)
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
}

local function check_options(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    errors.raise(errors.argument("connect", 1, "table expected, got " .. errors.typename(opts)), 3)
  end
  for k, v in pairs(opts) do
    local want = CONNECT_OPTIONS[k]
    if not want then
      errors.raise(errors.argument("connect", 1, "unknown option '" .. tostring(k) .. "'"), 3)
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
    if nsinfo.auth == "apikey" then
      errors.raise(errors.credentials(("%s needs an API key: set MENDIX_USERNAME and MENDIX_APIKEY, "
        .. "or username and apikey in profile '%s' of the credentials file"):format(nsinfo.title, profile)), 0)
    else
      errors.raise(errors.credentials(("%s needs a personal access token (scope %s): set MENDIX_TOKEN, "
        .. "or token in profile '%s' of the credentials file"):format(nsinfo.title, nsinfo.scopes, profile)), 0)
    end
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

--- URL of an operation with its path values.
function Client:url_of(op, path_values)
  local bases = self._bases
  local base = bases[op.ns]
  if not base then
    base = self:base_url(op.ns)
    bases[op.ns] = base
  end
  local pieces = pieces_of(op)
  if #pieces == 1 then return base .. pieces[1] end
  local parts = { base, pieces[1] }
  for i = 2, #pieces do
    parts[#parts + 1] = request.escape(path_values[i - 1])
    parts[#parts + 1] = pieces[i]
  end
  return table.concat(parts)
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

--- Sends an operation's request. `a` = output of arguments.check. Returns the response.
function Client:send(op, a)
  local nsinfo = operations.namespace[op.ns]
  local headers = {}
  local req = {
    method = op.method, url = self:url_of(op, a.path), headers = headers,
    auth = self:auth_for(nsinfo), auth_scheme = nsinfo.auth,
    policy = self.policy, defaults = self.defaults, insecure = self.options.insecure,
    ca_file = self.options.ca_file, budget = self.budget,
  }
  if nsinfo.auth == "apikey" and op.input ~= "upload" then
    -- the v1/v2/Build/Backups docs send it on every call except uploads
    headers["Content-Type"] = "application/json"
  end
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
  local resp = request.request(req)
  self._last[core.current() or "main"] = resp
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
        local args = { table.unpack(path) }
        args[#args + 1] = query
        local body = list_fn(table.unpack(args, 1, #path + 1))
        local items = type(body) == "table" and body[op.pages.items] or nil
        if type(items) ~= "table" then items = {} end
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
        local args = { table.unpack(path) }
        args[#args + 1] = query
        local body = list_fn(table.unpack(args, 1, #path + 1))
        local items = type(body) == "table" and body[pages.items] or nil
        if type(items) ~= "table" then items = {} end
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
function M.download(url, output, opts)
  opts = opts or {}
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
  local self = setmetatable({ options = opts, _last = setmetatable({}, { __mode = "k" }), _bases = {} }, Client)
  self.policy = retry_policy.resolve(request.policy, opts.retry)
  self.defaults = { timeout = opts.timeout, max_response_size = opts.max_response_size }
  self.poll_interval = opts.poll_interval or 1
  -- one budget per API host for every task of this client (429 pauses; `rate` quota if given)
  self.budget = rate_budget.new(opts.rate)
  local namespaces = {}
  for _, n in ipairs(operations.namespaces) do namespaces[n.ns] = {} end
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
