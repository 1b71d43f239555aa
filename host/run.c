#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "embedded.h"
#include "scheduler.h"

int mx_run_repl_mode = 0;
int mx_run_exit_code = 0;

/*
 * A structured error (a table with a `kind`: HTTP, network, credentials, argument, job, ...) is
 * an expected failure: one line. Anything else is a bug in a script: message and traceback.
 * MXDEPLOY_TRACEBACK=1 shows the traceback of structured errors too.
 */
void mx_report_error(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    int top = lua_gettop(L);
    if (lua_istable(L, idx) && luaL_getmetafield(L, idx, "__tostring") == LUA_TNIL) {
        /* a plain error table: say what it holds rather than its address */
        lua_getfield(L, idx, "kind");
        lua_getfield(L, idx, "message");
        if (lua_isstring(L, -1))
            lua_pushfstring(L, "%s%s%s", lua_isstring(L, -2) ? lua_tostring(L, -2) : "",
                            lua_isstring(L, -2) ? ": " : "", lua_tostring(L, -1));
        else
            lua_pushfstring(L, "error object (%s)", luaL_tolstring(L, idx, NULL));
        fprintf(stderr, "mxdeploy: %s\n", lua_tostring(L, -1));
        lua_settop(L, top);
    } else {
        if (lua_istable(L, idx)) lua_pop(L, 1); /* the __tostring pushed by getmetafield */
        const char *msg = luaL_tolstring(L, idx, NULL);
        fprintf(stderr, "mxdeploy: %s\n", msg);
        lua_pop(L, 1);
    }
    int structured = 0;
    if (lua_istable(L, idx)) {
        lua_getfield(L, idx, "kind");
        structured = lua_type(L, -1) == LUA_TSTRING;
        lua_pop(L, 1);
        lua_getfield(L, idx, "exit_code");
        if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0 && lua_tointeger(L, -1) < 126)
            mx_run_exit_code = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    const char *want = getenv("MXDEPLOY_TRACEBACK");
    if (structured && !(want && *want && strcmp(want, "0") != 0)) {
        fflush(stderr);
        return;
    }
    if (lua_istable(L, idx)) {
        lua_getfield(L, idx, "traceback");
        if (lua_type(L, -1) == LUA_TSTRING) fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    fflush(stderr);
}

static int push_outcome(lua_State *L) {
    return mx_task_push_outcome(L, 1);
}

int mx_run_task(lua_State *L, int nargs) {
    mx_task *t = mx_sched_spawn(L, nargs);
    int task = lua_gettop(L);
    if (mx_run_repl_mode) mx_sched_set_interrupt_target(t); /* Ctrl-C cancels the line only */
    mx_sched_run_until(L, t);
    mx_sched_set_interrupt_target(NULL);
    lua_pushcfunction(L, push_outcome);
    lua_pushvalue(L, task);
    if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
        mx_report_error(L, -1);
        lua_settop(L, task - 1);
        return 1;
    }
    int n = lua_gettop(L) - task;
    lua_createtable(L, n, 1);
    lua_insert(L, task + 1);
    for (int i = n; i >= 1; i--)
        lua_rawseti(L, task + 1, i);
    lua_pushinteger(L, n);
    lua_setfield(L, task + 1, "n");
    lua_remove(L, task);
    return 0;
}

int mx_run_loaded(lua_State *L, int status, int nargs) {
    if (status != LUA_OK) {
        fprintf(stderr, "mxdeploy: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return 1;
    }
    if (mx_run_task(L, nargs)) return 1;
    lua_pop(L, 1);
    return 0;
}

int mx_run_require(lua_State *L, const char *mod, const char *global) {
    lua_getglobal(L, "require");
    lua_pushstring(L, mod);
    if (mx_run_task(L, 1)) return 1;
    lua_rawgeti(L, -1, 1);
    lua_setglobal(L, global);
    lua_pop(L, 1);
    return 0;
}

int mx_run_drain(lua_State *L) {
    mx_sched_run(L);
    if (mx_sched_interrupted()) return 128 + mx_sched_interrupted();
    return mx_sched_report_unobserved(L) > 0 ? 1 : 0;
}
