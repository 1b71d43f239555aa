-- Writes the man page mxdeploy(1) from `mxdeploy --help`, so the two never disagree.
-- Run at build time (CMakeLists.txt) by the binary it documents:
--
--   mxdeploy tools/gen-manpage.lua BINARY OUT.1 VERSION
--
-- The help text's layout is the input format: "usage:" and the lines indented under it are the
-- synopsis; a line "Heading:" starts a subsection of OPTIONS; "  -x ARG   text" (two spaces before
-- the text) is an option; "Word: text..." starts a section named WORD (e.g. CREDENTIALS).
local bin, out, version = ...
assert(bin and out and version, "usage: mxdeploy tools/gen-manpage.lua BINARY OUT.1 VERSION")

local p = assert(io.popen(("'%s' --help"):format(bin:gsub("'", "'\\''"))))
local help = p:read("a")
local ok = p:close()
assert(ok and help:match("^usage: "), "`" .. bin .. " --help` failed")

-- roff text: escape backslashes, protect a leading dot or quote, hyphens in option names
local function text(s)
  s = s:gsub("\\", "\\e")
  if s:match("^[.']") then s = "\\&" .. s end
  return s
end
local function opt(s)
  return (text(s):gsub("%-", "\\-"))
end

local lines = {
  ('.TH MXDEPLOY 1 "" "mxdeploy %s" "User Commands"'):format(version),
  ".SH NAME",
  "mxdeploy \\- the Mendix Cloud deployment APIs in a Lua 5.4 interpreter",
  ".SH SYNOPSIS",
}
local in_options = false
for line in help:gmatch("([^\n]*)\n") do
  local usage = line:match("^usage:%s+(.*)$") or line:match("^%s%s%s%s%s%s%s(%S.*)$")
  local heading = line:match("^(%u[^:]*):$")
  local term, desc = line:match("^  (%S.-)%s%s+(%S.*)$")
  local word, rest = line:match("^(%u[%a ]-):%s+(.*)$")
  if usage then
    local cmd, args = usage:match("^(%S+)%s*(.*)$")
    lines[#lines + 1] = ".B " .. text(cmd)
    lines[#lines + 1] = opt(args)
    lines[#lines + 1] = ".br"
  elseif heading then
    if not in_options then
      lines[#lines + 1] = ".SH OPTIONS"
      in_options = true
    end
    lines[#lines + 1] = '.SS "' .. text(heading) .. '"'
  elseif term then
    local first, arg = term:match("^(%S+)%s*(.*)$")
    lines[#lines + 1] = ".TP"
    lines[#lines + 1] = "\\fB" .. opt(first) .. "\\fR" .. (arg ~= "" and (" \\fI" .. opt(arg) .. "\\fR") or "")
    lines[#lines + 1] = text(desc)
  elseif word then
    lines[#lines + 1] = ".SH " .. word:upper()
    lines[#lines + 1] = text(rest)
  elseif line:match("%S") then
    lines[#lines + 1] = text(line)
  end
end
lines[#lines + 1] = ".SH SEE ALSO"
lines[#lines + 1] = ".BR lua5.4 (1)"

local f = assert(io.open(out, "w"))
f:write(table.concat(lines, "\n"), "\n")
f:close()
