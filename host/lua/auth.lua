-- `mxdeploy auth status [--check]`: placeholder replaced below.
local M = {}
function M.main() error("not yet", 0) end
return M
