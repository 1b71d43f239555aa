/* mxdeploy.json: JSON for Lua on yajl, keeping arrays, null and integers exact (see json.c). */
#ifndef MX_JSON_H
#define MX_JSON_H
#include <lua.h>

/* Opens the `mxdeploy.json` module (also used by the sandbox's own Lua state). */
int luaopen_mxdeploy_json(lua_State *L);

/* json.decode(s) as a lua_CFunction (for the transport's decode_json); needs the module opened. */
int mx_json_decode(lua_State *L);

#endif
