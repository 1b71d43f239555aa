#ifndef MX_PATHS_H
#define MX_PATHS_H

#include <lua.h>

/* The directory of the scripts mxdeploy ships (`mxdeploy run NAME` looks there after
 * MXDEPLOY_PATH): the source tree's scripts/ when this binary runs from its build directory, else
 * <directory of the binary>/MX_SCRIPTS_RELDIR when it exists (an installed or unpacked tree, moved
 * or not), else MX_SCRIPTS_DIR (the configured install location). */
const char *mx_shipped_scripts_dir(void);

/* require "mxdeploy.host.paths" -> { scripts = mx_shipped_scripts_dir() } */
int luaopen_mxdeploy_host_paths(lua_State *L);

#endif
