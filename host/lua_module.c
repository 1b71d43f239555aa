/*
 * `require "mxdeploy"` from stock lua5.4 (mxdeploy.so on LUA_CPATH). The main chunk is not a task
 * there, so waiting calls block (driving the scheduler) instead of yielding; spawned tasks run
 * whenever something waits.
 */
#include <lauxlib.h>

#include "core_module.h"
#include "embedded.h"
#include "scheduler.h"

int luaopen_mxdeploy(lua_State *L);

int luaopen_mxdeploy(lua_State *L) {
    mx_core_install(L);
    mx_sched_main_runs_script(L);
    lua_settop(L, 0);
    if (mx_embedded_load(L, mx_embedded_bindings, "mxdeploy") != LUA_OK) return lua_error(L);
    lua_pushstring(L, "mxdeploy");
    lua_call(L, 1, 1);
    return 1;
}
