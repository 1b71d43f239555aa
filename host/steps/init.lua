-- mxdeploy.steps: the library workflow scripts are written on (the shipped ones and a team's).
--
--   local steps = require("mxdeploy.steps")
--   steps.script{
--     name = "deploy",                                  -- as `mxdeploy run deploy`
--     description = "Deploy a package to an environment",  -- one line: --help, the listing
--     epilog = "More text for --help",                  -- optional
--     requires = ">= 0.2",                              -- optional: mx.require_version
--     arguments = function(p)                           -- lua-argparse parser: p:argument,
--       p:argument("app", "App ID")                     -- p:option, p:flag, p:command, ...
--       p:flag("--backup", "Take a snapshot first")
--     end,
--     run = function(args, s)                           -- args: the parsed command line
--       s.log("step", "format %s", x)                   -- [  1.2s] step  message
--       return result, exit_code                        -- result: the --json document's result
--     end,
--   }
--
-- The declaration is the one source of --help, usage errors (exit 2, nothing sent), the listing
-- of `mxdeploy run` and shell completion (`--completion bash|zsh|fish`). Every script also takes
-- `--dry-run` (the same as `mxdeploy --dry-run`). The context `s` has:
--   s.args               the parsed arguments
--   s.dry_run            true in dry-run mode (mutating calls are planned, not sent)
--   s.json               false, "document" or "ndjson" (mxdeploy --json / --json=ndjson)
--   s.log(step, fmt, ...)  progress line (stdout; stderr with --json; an event with ndjson)
--   s.plan(fmt, ...)     a plan line of the script itself (step "plan")
--   s.print(fmt, ...)    human output (stdout; stderr with --json)
--   s.warn(fmt, ...)     a line on stderr
--   s.event(name, fields)  an NDJSON event (ignored unless --json=ndjson)
--   s.confirm(question)  asks once on a terminal; without one refuses unless --yes (exit 2);
--                        one yes covers every Production change of the run
--   s.confirm_change(app, mode, what)  s.confirm when `mode` is Production
--   s.fail(fmt, ...)     ends the script with one line and exit status 1
--   s.usage(fmt, ...)    a usage error found after parsing: usage, one line, exit status 2
--   s.map(list, fn, {concurrency = 8})  mx.map: results, failures ({index, item, error})
--   s.sandbox            the in-process sandbox of `mxdeploy --sandbox` (nil otherwise)
--
-- Exit status: 0 success, 1 failure, 2 usage error or refused confirmation, 3 partial failure
-- (run returned exit code 3: some of many targets failed), 130 interrupted.

local json = require("mxdeploy.json")
local argparse = require("mxdeploy.argparse")

local M = {}

M.EXIT = { ok = 0, failure = 1, usage = 2, partial = 3, interrupted = 130 }

M.EXIT_CODES = [[
Exit status: 0 success, 1 failure, 2 usage error or refused confirmation,
3 partial failure (some of many targets failed), 130 interrupted.]]

M.HOST_OPTIONS = [==[
Options of mxdeploy itself go before the script name:
  mxdeploy [--sandbox] [--endpoint URL] [--profile NAME] [--dry-run] [--json[=ndjson]] [--yes]
           [--trace] run NAME [args]]==]

-- Set by `mxdeploy run` while it lists scripts: steps.script then reports the declaration
-- (raised as a DESCRIBE error) instead of running anything.
M.describing = false
local DESCRIBE = {}
M.DESCRIBE = DESCRIBE

local function mx() return package.loaded["mxdeploy"] or require("mxdeploy") end

local DECL_FIELDS = { name = "string", description = "string", epilog = "string", requires = "string",
  arguments = "function", run = "function" }

local function check_declaration(decl)
  if type(decl) ~= "table" then
    error(("bad argument #1 to 'steps.script' (table expected, got %s)"):format(type(decl)), 3)
  end
  for k, v in pairs(decl) do
    if not DECL_FIELDS[k] then
      error(("bad argument #1 to 'steps.script' (unknown field '%s')"):format(tostring(k)), 3)
    end
    if type(v) ~= DECL_FIELDS[k] then
      error(("bad argument #1 to 'steps.script' (%s: %s expected, got %s)"):format(k, DECL_FIELDS[k], type(v)), 3)
    end
  end
  for _, k in ipairs({ "name", "description", "run" }) do
    if decl[k] == nil then error(("bad argument #1 to 'steps.script' (%s is required)"):format(k), 3) end
  end
end

--- The argparse parser of a declaration (what --help, usage errors and completion come from).
function M.parser(decl)
  local epilog = (decl.epilog and (decl.epilog .. "\n\n") or "") .. M.HOST_OPTIONS .. "\n\n" .. M.EXIT_CODES
  local p = argparse(decl.name, decl.description, epilog)
  p:usage_margin(2)
  if decl.arguments then decl.arguments(p) end
  p:flag("--dry-run", "Send only reads; print the changes instead of making them (as mxdeploy --dry-run).")
  p:add_complete()
  -- the usage line shows how the script is run; the completion functions keep the bare name
  -- (a shell function cannot be called "mxdeploy run deploy")
  p:name("mxdeploy run " .. decl.name)
  p:usage(p:get_usage())
  p:name(decl.name)
  return p
end

local function json_line(v)
  local ok, text = pcall(json.encode, v)
  if ok then return text end
  return json.encode({ event = "error", message = "result is not JSON: " .. tostring(text) })
end

local function error_record(err)
  local errors = mx().errors
  if errors.is(err) then
    return { kind = err.kind, message = tostring(err), status = err.status, code = err.code }
  end
  return { kind = "error", message = tostring(err) }
end

--- Runs the script a declaration describes (see the top of this file). Does not return.
function M.script(decl)
  check_declaration(decl)
  if M.describing then error({ [DESCRIBE] = true, declaration = decl }, 0) end
  local m = mx()
  if decl.requires then m.require_version(decl.requires) end
  local parser = M.parser(decl)
  local argv = {}
  for i = 1, #(arg or {}) do argv[i] = arg[i] end
  local ok, args = parser:pparse(argv)
  if not ok then
    io.stderr:write(parser:get_usage(), "\n", decl.name, ": ", args, " (see --help)\n")
    io.stderr:flush()
    os.exit(2)
  end
  if args.dry_run then m.set_dry_run(true) end

  local mode = m.options.json
  local human = mode and io.stderr or io.stdout
  local s = { args = args, dry_run = m.options.dry_run, json = mode, name = decl.name }
  local logger = m.logger({ stream = human })
  local function emit(event)
    if mode == "ndjson" then
      io.stdout:write(json_line(event), "\n")
      io.stdout:flush()
    end
  end
  function s.event(name, fields)
    local e = { event = name }
    for k, v in pairs(fields or {}) do e[k] = v end
    emit(e)
  end
  function s.log(step, fmt, ...)
    local message = fmt:format(...)
    logger(step, "%s", message)
    emit({ event = "log", step = step, message = message, time = m.now() })
  end
  function s.plan(fmt, ...) s.log("plan", fmt, ...) end
  function s.print(fmt, ...)
    human:write(fmt:format(...), "\n")
    human:flush()
  end
  function s.warn(fmt, ...)
    io.stderr:write(fmt:format(...), "\n")
    io.stderr:flush()
  end
  function s.fail(fmt, ...)
    error(m.errors.new("failure", { message = fmt:format(...) }), 2)
  end
  function s.usage(fmt, ...)
    io.stderr:write(parser:get_usage(), "\n", decl.name, ": ", fmt:format(...), " (see --help)\n")
    io.stderr:flush()
    os.exit(2)
  end
  function s.confirm(question) return m.confirm(question, "production") end
  function s.confirm_change(app, env_mode, what)
    if env_mode == "Production" then
      return m.confirm(("%s on the Production environment %s/%s"):format(what, app, env_mode), "production")
    end
    return true
  end
  s.map = m.map
  s.sandbox = package.loaded["mxdeploy.active_sandbox"]
  m.default_client.on_plan = function(entry)
    logger("plan", "%s", entry.line)
    emit({ event = "plan", method = entry.method, path = entry.path, output = entry.output, operation = entry.operation })
  end

  -- a plain (string) error is a bug in the script: keep its traceback to show it
  local traceback
  local results = table.pack(xpcall(decl.run, function(e)
    if type(e) ~= "table" then traceback = debug.traceback(tostring(e), 2) end
    return e
  end, args, s))
  local plan = {}
  for i, entry in ipairs(m.plan()) do plan[i] = entry.line end
  local code, err, result = 0, nil, nil
  if results[1] then
    result = results[2]
    code = math.tointeger(results[3]) or 0
  else
    err = results[2]
    if m.errors.is(err, "interrupted") or m.errors.is(err, "cancelled") then error(err, 0) end
    code = (type(err) == "table" and math.tointeger(err.exit_code)) or 1
  end
  if m.options.dry_run and code == 0 then logger("dry-run", "nothing was changed (%d planned changes)", #plan) end
  if mode == "document" then
    io.stdout:write(json_line({ script = decl.name, ok = code == 0, exit_code = code, dry_run = m.options.dry_run,
      result = result, plan = m.array(plan), error = err ~= nil and error_record(err) or nil }), "\n")
  elseif mode == "ndjson" then
    emit({ event = "result", script = decl.name, ok = code == 0, exit_code = code, result = result,
      error = err ~= nil and error_record(err) or nil })
  end
  io.stdout:flush()
  if err ~= nil then
    io.stderr:write(decl.name, (code == 2 and ": " or " failed: "), tostring(err), "\n")
    if traceback then io.stderr:write(traceback, "\n") end
    io.stderr:flush()
  end
  if code ~= 0 then os.exit(code) end
  return result
end

return M
