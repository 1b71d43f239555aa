-- mxdeploy.tasks: waiting on many things at once. Tasks come from core.spawn; jobs from
-- mxdeploy.jobs. `wait_all` and `wait_any` accept a list mixing both.

local core = require("mxdeploy.core")
local errors = require("mxdeploy.errors")
local jobs = require("mxdeploy.jobs")
local request = require("mxdeploy.request")

local M = {}

local function check_list(fname, list)
  if type(list) ~= "table" then
    errors.raise(errors.argument(fname, 1, "list of tasks or jobs expected, got " .. errors.typename(list)), 3)
  end
  for i, v in ipairs(list) do -- tasks are userdata (core.spawn)
    if not jobs.is_job(v) and type(v) ~= "userdata" then
      errors.raise(errors.argument(fname, 1, ("item %d is not a task or job, got %s"):format(i, errors.typename(v))), 3)
    end
  end
end

-- Tasks for a list: tasks as they are, a job becomes a helper task running job:wait(opts).
local function as_tasks(list, opts)
  local tasks, helpers = {}, {}
  for i, v in ipairs(list) do
    if jobs.is_job(v) then
      tasks[i] = core.spawn(function() return v:wait(opts) end)
      helpers[#helpers + 1] = tasks[i]
    else
      tasks[i] = v
    end
  end
  return tasks, helpers
end

local function cancel_all(helpers)
  for _, t in ipairs(helpers) do
    local s = t:status()
    if s == "ready" or s == "waiting" then t:cancel() end
  end
end

--- Waits for every task / job. Returns an array of their first results (a job's result).
--- The first failure is raised as soon as it happens, whatever its place in the list (jobs'
--- helper tasks are then cancelled); `opts` is passed to job:wait (timeout=, interval=, on_progress=).
function M.wait_all(list, opts)
  check_list("wait_all", list)
  local tasks, helpers = as_tasks(list, opts)
  local cleanup <close> = setmetatable({}, { __close = function() cancel_all(helpers) end })
  -- one wait in C for the whole list (core.wait_all): it ends when all have finished or at the
  -- first failure; a watcher task per entry cost a coroutine each (10,000 tasks: ~20 MB)
  local failed = core.wait_all(tasks)
  if failed then
    local _, err = pcall(tasks[failed].wait, tasks[failed])
    error(err, 0)
  end
  local results = {}
  for i, t in ipairs(tasks) do
    local ok, r = pcall(t.wait, t)
    if not ok then error(r, 0) end
    results[i] = r
  end
  return results
end

--- Waits for the first task / job to finish: returns its index and results, or nil on timeout.
function M.wait_any(list, timeout, opts)
  check_list("wait_any", list)
  if #list == 0 then return nil end
  local tasks, helpers = as_tasks(list, opts)
  local ok, idx = pcall(core.wait_any, tasks, timeout)
  if not ok or not idx then
    cancel_all(helpers)
    if not ok then error(idx, 0) end
    return nil
  end
  local others = {}
  for _, h in ipairs(helpers) do if h ~= tasks[idx] then others[#others + 1] = h end end
  cancel_all(others)
  return idx, tasks[idx]:wait()
end

--- Calls fn(item, i) for every item of `list` in tasks, at most `opts.concurrency` (default 8)
--- at a time. Returns `results` (results[i] = fn's first result; nil where it failed) and
--- `failures`, an array of {index =, item =, error =} in list order (empty when all succeeded).
--- Interruption (Ctrl-C) and cancellation are raised, never collected as failures.
function M.map(list, fn, opts)
  if type(list) ~= "table" then
    errors.raise(errors.argument("map", 1, "table expected, got " .. errors.typename(list)), 2)
  end
  if type(fn) ~= "function" then
    errors.raise(errors.argument("map", 2, "function expected, got " .. errors.typename(fn)), 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then
    errors.raise(errors.argument("map", 3, "table expected, got " .. errors.typename(opts)), 2)
  end
  for k in pairs(opts) do
    if k ~= "concurrency" then
      errors.raise(errors.argument("map", 3, "unknown option '" .. tostring(k) .. "' (expected concurrency)"), 2)
    end
  end
  local limit = opts.concurrency or 8
  if math.type(limit) ~= "integer" or limit < 1 then
    errors.raise(errors.argument("map", 3, "concurrency: positive integer expected, got " .. tostring(limit)), 2)
  end
  local n = #list
  local results, errs = {}, {}
  local next_index = 0
  local function worker()
    while next_index < n do
      next_index = next_index + 1
      local i = next_index
      local ok, r = pcall(fn, list[i], i)
      if ok then
        results[i] = r
      elseif errors.is(r, "interrupted") or errors.is(r, "cancelled") then
        error(r, 0)
      else
        errs[i] = r
      end
    end
  end
  local workers = {}
  for w = 1, math.min(limit, n) do workers[w] = core.spawn(worker) end
  M.wait_all(workers)
  local failures = {}
  for i = 1, n do
    if errs[i] ~= nil then failures[#failures + 1] = { index = i, item = list[i], error = errs[i] } end
  end
  return results, failures
end

--- Runs fn(...) in a child task; when it has not finished within `seconds` it is cancelled and
--- a `timeout` error is raised. Otherwise returns fn's results (or re-raises its error). The API
--- calls fn's task makes get this deadline in place of their default one (longer or shorter).
function M.timeout(seconds, fn, ...)
  if type(seconds) ~= "number" or seconds < 0 then
    errors.raise(errors.argument("timeout", 1, "seconds expected, got " .. errors.typename(seconds)), 2)
  end
  if type(fn) ~= "function" then
    errors.raise(errors.argument("timeout", 2, "function expected, got " .. errors.typename(fn)), 2)
  end
  local t = core.spawn(fn, ...)
  -- the API calls fn makes have this deadline instead of their default (mxdeploy.request)
  request.call_deadlines[t] = core.now() + seconds
  local ok, idx = pcall(core.wait_any, { t }, seconds)
  if not ok then
    t:cancel()
    pcall(t.wait, t) -- let the work unwind (<close> handlers, aborted transfers) first
    error(idx, 0)
  end
  if not idx then
    t:cancel()
    pcall(t.wait, t)
    errors.raise(errors.timeout(("no result within %gs"):format(seconds), seconds), 2)
  end
  return t:wait()
end

return M
