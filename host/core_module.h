/* `mxdeploy.core`: the host's primitives for the bindings (see ARCHITECTURE.md). */
#ifndef MX_CORE_MODULE_H
#define MX_CORE_MODULE_H
#include <lua.h>

int luaopen_mxdeploy_core(lua_State *L);
/* Creates the scheduler (with the coroutine overrides and the Ctrl-C handler), preloads
 * mxdeploy.core and mxdeploy.json and installs the embedded bindings searcher. */
void mx_core_install(lua_State *L);

#endif
