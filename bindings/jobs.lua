-- mxdeploy.jobs: one interface for every operation that completes later.
--
--   job.id, job.kind ("v1.start_environment", ...), job.state ("pending"|"done"|"failed"|"cancelled"),
--   job.last (last status body), job.last_status (its status field), job.already_done
--   job:status()            one poll; returns the status string and the status body
--   job:wait{timeout=, interval=, max_interval=, on_progress=}
--                           polls with backoff (yielding between polls); returns the result
--                           (the final status body); raises a `job` error when the job failed
--                           or the deadline passed
--   job:cancel()            none of the Mendix APIs can cancel a job: stops local waiting and
--                           returns false plus the reason
--
-- How an operation's job is polled is described by its row in mxdeploy.operations (`job`):
-- poll (operation in the same namespace), prefix (how many of the start call's path arguments the
-- poll takes before the job id), id (field of the start response holding the id), status
-- (field holding the state), done / failed / pending (the documented states), reason (field with
-- the server's reason). A state the docs do not list fails the job (waiting on it could last
-- forever); a poll answer without a state is a `response` error (the job stays pending).

local core = require("mxdeploy.core")
local errors = require("mxdeploy.errors")
local json = require("mxdeploy.json")

local M = {}

local Job = {}
Job.__index = Job
M.Job = Job

function M.is_job(v) return getmetatable(v) == Job end

local function field(body, name)
  if type(body) ~= "table" then return nil end
  local v = body[name]
  if v == json.null then return nil end
  return v
end

local function reason_of(spec, body)
  if type(body) ~= "table" then return nil, nil end
  local code, message = errors.parse_body(body)
  if type(body.error) == "table" then
    code, message = body.error.code, field(body.error, "message")
  end
  if not message and spec.reason then message = field(body, spec.reason) end
  -- only text makes a reason: an object or array here (unexpected JSON) would break tostring(err)
  local function text(v) if type(v) == "string" or type(v) == "number" then return v end end
  return text(code), text(message)
end

-- Classifies a status body: "done", "failed" or "pending".
local function classify(spec, body)
  local s = field(body, spec.status)
  if spec.error_fails and type(field(body, "error")) == "table" then return "failed", s or "error" end
  if s ~= nil and spec.done[s] then return "done", s end
  if s ~= nil and spec.failed[s] then return "failed", s end
  if s ~= nil and spec.pending and not spec.pending[s] then return "unknown", s end
  return "pending", s
end

-- Records a classification on the job: "unknown" (a state the docs do not list) fails it.
local function settle(job, state, body)
  if state == "pending" then return end
  if state == "unknown" then
    job.state = "failed"
    local code, message = reason_of(job.spec, body)
    job.code, job.reason = code, "unknown job state '" .. tostring(job.last_status) .. "'"
      .. (message and (": " .. tostring(message)) or "")
    return
  end
  job.state = state
  if state == "failed" then job.code, job.reason = reason_of(job.spec, body) end
end

--- Creates a job. t = {ns = namespace table (functions), op = operation row, args = path
--- values of the start call, response = decoded start response, already_done = bool,
--- interval = default poll interval}
function M.new(t)
  local spec = t.op.job
  local body = t.response
  local job = setmetatable({
    kind = t.op.full_name, op = t.op, spec = spec, ns = t.ns, args = t.args,
    start_response = body, last = body, interval = t.interval or 1,
    id = field(body, spec.id), state = "pending", polls = 0,
  }, Job)
  if t.already_done then
    job.state, job.already_done = "done", true
    job.last_status = "already done"
    return job
  end
  local code = type(body) == "table" and field(body, "errorCode") or nil
  if code and spec.already_done_codes and spec.already_done_codes[code] then
    job.state, job.already_done, job.last_status = "done", true, code
    return job
  end
  if job.id == nil then
    errors.raise(errors.new("job", {
      job_kind = job.kind, message = "the response carries no job id (field " .. spec.id .. ")",
      body = body,
    }), 3)
  end
  local state, s = classify(spec, body)
  job.last_status = s
  settle(job, state, body)
  return job
end

--- A job of a call that dry-run mode did not send: done at once, its result says so.
--- t = {ns =, op =, args = path values, interval =, id = planned id}
function M.planned(t)
  local spec = t.op.job
  local body = { planned = true, [spec.id] = t.id, [spec.status] = "planned" }
  for _, k in ipairs(spec.keep or {}) do body[k] = body[k] or t.id end
  return setmetatable({
    kind = t.op.full_name, op = t.op, spec = spec, ns = t.ns, args = t.args,
    start_response = body, last = body, interval = t.interval or 1, id = t.id,
    state = "done", planned = true, last_status = "planned", polls = 0,
  }, Job)
end

function Job:__tostring()
  return ("job %s %s (%s%s)"):format(self.kind, tostring(self.id), self.state,
    self.last_status and (", " .. tostring(self.last_status)) or "")
end

-- The result of a finished job: its last status body plus fields kept from the start response.
function Job:result()
  local r = self.last
  if type(r) ~= "table" then r = {} end
  for _, k in ipairs(self.spec.keep or {}) do
    if r[k] == nil and type(self.start_response) == "table" then r[k] = self.start_response[k] end
  end
  if self.already_done then r.already_done = true end
  if self.planned then r.planned = true end
  return r
end

-- Poll answers that say nothing about the job (credentials, rate limit, an unavailable gateway):
-- raised to the caller, never taken for the job's failure.
local NOT_THE_JOB = { [401] = true, [403] = true, [408] = true, [429] = true, [502] = true, [503] = true, [504] = true }

--- One poll. Returns the status string (or "already done") and the status body.
function Job:status()
  if self.state == "done" and (self.already_done or self.planned) then return self.last_status, self.last end
  local spec = self.spec
  local args = {}
  for i = 1, spec.prefix do args[i] = self.args[i] end
  args[#args + 1] = self.id
  local poll = self.ns[spec.poll]
  local ok, body = pcall(poll, table.unpack(args, 1, spec.prefix + 1))
  self.polls = self.polls + 1
  if not ok then
    local e = body
    if errors.is(e, "http") and spec.already_done_codes and spec.already_done_codes[e.code] then
      self.state, self.already_done, self.last_status = "done", true, e.code
      return self.last_status, self.last
    end
    if errors.is(e, "http") and spec.poll_error_fails and e.status >= 400
        and not NOT_THE_JOB[e.status] then
      self.state, self.code, self.reason = "failed", e.code, e.message
      self.last_status, self.last = e.code or ("HTTP " .. e.status), e.body
      return self.last_status, self.last
    end
    error(e, 0)
  end
  local state, s = classify(spec, body)
  if s == nil then
    errors.raise(errors.new("response", {
      message = ("malformed status of job %s %s: no %s in the answer"):format(self.kind, tostring(self.id), spec.status),
      body = body }), 2)
  end
  self.last = body
  self.last_status = s
  settle(self, state, body)
  return s, body
end

local function job_error(job, reason, extra)
  local e = errors.new("job", {
    job_kind = job.kind, job_id = job.id, reason = reason, last_status = job.last_status,
    code = job.code, message = job.reason, body = job.last, polls = job.polls,
  })
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

local WAIT_OPTIONS = { timeout = true, interval = true, max_interval = true, on_progress = true }

--- Waits until the job is done (returns its result) or failed / past the deadline (raises).
function Job:wait(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    errors.raise(errors.argument("job:wait", 1, "table expected, got " .. errors.typename(opts)), 2)
  end
  for k in pairs(opts) do
    if not WAIT_OPTIONS[k] then
      local hint = errors.did_you_mean(tostring(k), { "timeout", "interval", "max_interval", "on_progress" })
      errors.raise(errors.argument("job:wait", 1, "unknown option '" .. tostring(k) .. "'"
        .. (hint and ("; did you mean " .. hint .. "?") or " (expected timeout, interval, max_interval, on_progress)")), 2)
    end
  end
  -- a zero or negative interval would poll the API without pause
  for _, k in ipairs({ "interval", "max_interval", "timeout" }) do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or v ~= v or (k == "timeout" and v < 0) or (k ~= "timeout" and v <= 0)) then
      errors.raise(errors.argument("job:wait", 1, k .. ": " .. (k == "timeout" and "non-negative" or "positive")
        .. " number of seconds expected, got " .. (type(v) == "number" and tostring(v) or errors.typename(v))), 2)
    end
  end
  if opts.on_progress ~= nil and type(opts.on_progress) ~= "function" then
    errors.raise(errors.argument("job:wait", 1, "on_progress: function expected, got " .. errors.typename(opts.on_progress)), 2)
  end
  local interval = opts.interval or self.interval
  local max_interval = opts.max_interval or math.max(interval, math.min(interval * 16, 15))
  local deadline = opts.timeout and (core.now() + opts.timeout)
  local on_progress = opts.on_progress
  local reported
  while true do
    if self.state == "done" then return self:result() end
    if self.state == "failed" then errors.raise(job_error(self, "failed"), 2) end
    if self.state == "cancelled" then
      errors.raise(errors.new("cancelled", { message = "stopped waiting for " .. tostring(self) }), 2)
    end
    local pause = interval
    if deadline then
      local left = deadline - core.now()
      if left <= 0 then
        errors.raise(job_error(self, "deadline", { timeout = opts.timeout }), 2)
      end
      pause = math.min(pause, left)
    end
    core.sleep(pause, ("%s, next poll in %.1f s"):format(tostring(self), pause))
    interval = math.min(interval * 1.5, max_interval)
    if self.state == "pending" then
      local s = self:status()
      if on_progress and s ~= reported then
        reported = s
        on_progress(self, s, self.last)
      end
    end
  end
end

function Job:cancel()
  if self.state == "pending" then self.state = "cancelled" end
  return false, "the " .. self.op.ns .. " API cannot cancel " .. self.kind .. " jobs; stopped waiting locally"
end

return M
