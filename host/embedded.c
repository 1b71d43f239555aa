#include "embedded.h"

#include <string.h>

#include <lauxlib.h>
#include <lua.h>

int mx_embedded_load(lua_State *L, const struct mx_embedded *modules, const char *name) {
    for (const struct mx_embedded *m = modules; m->name; m++) {
        if (strcmp(m->name, name) == 0)
            return luaL_loadbufferx(L, (const char *)m->source, m->len, m->chunkname, "bt");
    }
    return -1;
}

/* package.searchers entry: upvalue 1 is the light pointer to the module table. */
static int embedded_searcher(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    const struct mx_embedded *modules = lua_touserdata(L, lua_upvalueindex(1));
    int status = mx_embedded_load(L, modules, name);
    if (status == -1) {
        lua_pushfstring(L, "no embedded module '%s'", name);
        return 1;
    }
    if (status != LUA_OK) return lua_error(L);
    lua_pushstring(L, ":embedded:");
    return 2;
}

void mx_embedded_install(lua_State *L, const struct mx_embedded *modules) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchers");
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = n; i >= 2; i--) { /* shift to make room at index 2 */
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushlightuserdata(L, (void *)modules);
    lua_pushcclosure(L, embedded_searcher, 1);
    lua_rawseti(L, -2, 2);
    lua_pop(L, 2);
}
