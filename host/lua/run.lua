-- `mxdeploy run [NAME [args]]`: finds NAME.lua in each folder of MXDEPLOY_PATH (a team's scripts
-- first), then among the shipped scripts, and runs it with its folder first on package.path.
-- Without NAME it lists every script found with its one-line description and where it lives
-- (`--names`: only the names, for shell completion).
local M = {}

--- Puts the folder of the script at `path` first on package.path (its `lib/x.lua` loads as
--- require "lib.x" from any working directory).
function M.add_script_folder(path)
  local dir = path:match("^(.*)/[^/]*$") or "."
  if dir == "" then dir = "/" end
  local entry = dir .. "/?.lua;" .. dir .. "/?/init.lua;"
  if package.path:sub(1, #entry) ~= entry then package.path = entry .. package.path end
end

local function is_dir(path)
  local ok, _, code = os.rename(path, path)
  return ok or code == 13 -- EACCES: there but not ours to rename
end

--- The folders searched, in order: MXDEPLOY_PATH's, then the shipped scripts' (when present).
function M.folders(shipped)
  local out = {}
  for dir in (os.getenv("MXDEPLOY_PATH") or ""):gmatch("[^:]+") do out[#out + 1] = { dir = dir, team = true } end
  if shipped and shipped ~= "" and is_dir(shipped) then out[#out + 1] = { dir = shipped, shipped = true } end
  return out
end

local function readable(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local ok = f:read(0) ~= nil or f:seek("end") == 0
  f:close()
  return ok
end

local function scripts_in(dir)
  local names = {}
  local p = io.popen(("ls -1 -- '%s' 2>/dev/null"):format(dir:gsub("'", "'\\''")))
  if not p then return names end
  for line in p:lines() do
    local name = line:match("^([%w_.-]+)%.lua$")
    if name then names[#names + 1] = name end
  end
  p:close()
  table.sort(names)
  return names
end

--- The path of script `name`, or nil and the folders searched.
function M.find(shipped, name)
  local searched = {}
  for _, f in ipairs(M.folders(shipped)) do
    local path = f.dir .. "/" .. name .. ".lua"
    if readable(path) then return path end
    searched[#searched + 1] = f.dir
  end
  return nil, searched
end

--- The declaration of a script (name, description, parser) without running it: the file is
--- loaded and run until its steps.script{...} call, which reports the declaration instead of
--- running. A file that does not call steps.script is not run: its first comment line is the
--- description.
function M.describe(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local first_comment = text:match("^%-%-%s*([^\n]*)") or text:match("\n%-%-%s*([^\n]*)") or ""
  if not text:find("%.script%s*[{(]") then
    return { description = first_comment, contract = false }
  end
  local chunk = load(text, "@" .. path, "t")
  if not chunk then return { description = first_comment, contract = false } end
  local steps = require("mxdeploy.steps")
  local saved_arg, saved_path = arg, package.path
  M.add_script_folder(path) -- its own lib/ modules load as when it runs
  steps.describing = true
  local ok, err = pcall(chunk)
  steps.describing = false
  arg, package.path = saved_arg, saved_path
  if not ok and type(err) == "table" and err[steps.DESCRIBE] then
    local d = err.declaration
    return { description = d.description, name = d.name, declaration = d, contract = true }
  end
  return { description = first_comment, contract = false }
end

local function list(shipped, names_only)
  local seen, rows = {}, {}
  for _, f in ipairs(M.folders(shipped)) do
    for _, name in ipairs(scripts_in(f.dir)) do
      if not seen[name] then
        seen[name] = true
        local path = f.dir .. "/" .. name .. ".lua"
        rows[#rows + 1] = { name = name, path = path, info = not names_only and M.describe(path) or nil }
      end
    end
  end
  if names_only then
    table.sort(rows, function(a, b) return a.name < b.name end)
    for _, r in ipairs(rows) do print(r.name) end
    return
  end
  if #rows == 0 then
    io.stderr:write("run: no scripts found (MXDEPLOY_PATH is empty and no shipped scripts)\n")
    return
  end
  local width = 8
  for _, r in ipairs(rows) do width = math.max(width, #r.name) end
  local mx = package.loaded["mxdeploy"]
  if mx and mx.options.json then
    local out = {}
    for i, r in ipairs(rows) do out[i] = { name = r.name, description = r.info.description, path = r.path } end
    print(mx.json.encode(mx.array(out)))
    return
  end
  for _, r in ipairs(rows) do
    print(("%-" .. width .. "s  %s\n%-" .. width .. "s  (%s)"):format(r.name, r.info.description, "", r.path))
  end
end

function M.main(shipped, name, ...)
  if name == nil or name == "--list" then return list(shipped, false) end
  if name == "--names" then return list(shipped, true) end
  if name == "-h" or name == "--help" then
    print("usage: mxdeploy [options] run [NAME [args]]\n"
      .. "Runs NAME.lua from the folders of MXDEPLOY_PATH (separated by ':'), then the shipped scripts.\n"
      .. "Without NAME: lists every script found. `mxdeploy run NAME --help` shows a script's usage.")
    return
  end
  local path, searched = M.find(shipped, name)
  if not path then
    local names = {}
    for _, f in ipairs(M.folders(shipped)) do
      for _, n in ipairs(scripts_in(f.dir)) do names[#names + 1] = n end
    end
    local errors = require("mxdeploy.errors")
    local hint = errors.did_you_mean(name, names)
    errors.raise(errors.new("usage", { exit_code = 2, message = ("run: no script '%s' in %s%s"):format(name,
      #searched > 0 and table.concat(searched, ":") or "(MXDEPLOY_PATH is empty)", hint and ("; did you mean " .. hint .. "?") or "") }), 0)
  end
  local chunk, err = loadfile(path)
  if not chunk then error(err, 0) end
  local args = table.pack(...)
  _G.arg = { [0] = path, [-1] = "run" }
  for i = 1, args.n do _G.arg[i] = args[i] end
  M.add_script_folder(path)
  return chunk(...)
end

return M
