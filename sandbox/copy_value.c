/* Deep copies between the host's and the sandbox's Lua states: see mx_sb_copy_value in
 * server.h. */
#include "server.h"

#include <lauxlib.h>

void mx_sb_copy_value(lua_State *from, int idx, lua_State *to, int depth) {
    idx = lua_absindex(from, idx);
    luaL_checkstack(to, 4, "sandbox copy");
    switch (lua_type(from, idx)) {
    case LUA_TBOOLEAN:
        lua_pushboolean(to, lua_toboolean(from, idx));
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(from, idx))
            lua_pushinteger(to, lua_tointeger(from, idx));
        else
            lua_pushnumber(to, lua_tonumber(from, idx));
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(from, idx, &n);
        lua_pushlstring(to, s, n);
        break;
    }
    case LUA_TLIGHTUSERDATA:
        lua_pushlightuserdata(to, lua_touserdata(from, idx));
        break;
    case LUA_TTABLE:
        /* a level takes a key and a value on `from` (lua_next) while its items are copied */
        if (depth > 32 || !lua_checkstack(from, 3)) {
            lua_pushnil(to);
            break;
        }
        lua_newtable(to);
        lua_pushnil(from);
        while (lua_next(from, idx)) {
            int kt = lua_type(from, -2);
            if (kt == LUA_TSTRING || kt == LUA_TNUMBER || kt == LUA_TBOOLEAN) {
                mx_sb_copy_value(from, -2, to, depth + 1);
                mx_sb_copy_value(from, -1, to, depth + 1);
                if (lua_isnil(to, -1) || lua_isnil(to, -2))
                    lua_pop(to, 2);
                else
                    lua_rawset(to, -3);
            }
            lua_pop(from, 1);
        }
        break;
    default:
        lua_pushnil(to);
    }
}
