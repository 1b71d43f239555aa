/*
 * coroutine.resume / wrap / yield that pass scheduler waits through (see scheduler_internal.h).
 */
#include <lauxlib.h>

#include "scheduler_internal.h"

/*
 * A waiting call inside a user coroutine yields the sentinel to whoever resumed it. These
 * replacements of coroutine.resume/wrap catch that, wait for the op themselves (yielding further
 * out when they can, blocking when they cannot) and resume the coroutine with the results, so user
 * coroutines and scheduler waits mix freely.
 */
static int drive(lua_State *L, lua_State *co, int nargs, int wrapped);

/* coroutine.wrap semantics on top of drive's (ok, values...) at stack[base+1...]. */
static int wrap_finish(lua_State *L, int base) {
    if (lua_toboolean(L, base + 1)) return lua_gettop(L) - base - 1;
    lua_resetthread(lua_tothread(L, 1));
    lua_pushvalue(L, base + 2);
    return lua_error(L);
}

static int drive_continue(lua_State *L, lua_KContext base, int wrapped) {
    lua_State *co = lua_tothread(L, 1);
    int n = lua_gettop(L) - (int)base;
    lua_xmove(L, co, n);
    return drive(L, co, n, wrapped);
}

static int drive_k(lua_State *L, int status, lua_KContext base) {
    (void)status;
    return drive_continue(L, base, 0);
}

static int drive_wrap_k(lua_State *L, int status, lua_KContext base) {
    (void)status;
    return drive_continue(L, base, 1);
}

/* Resumes co (at stack index 1) with nargs values already on its stack; returns (ok, values...). */
static int drive(lua_State *L, lua_State *co, int nargs, int wrapped) {
    for (;;) {
        int nres = 0;
        int status = lua_resume(co, L, nargs, &nres);
        int base = lua_gettop(L);
        if (status == LUA_YIELD && nres >= 2 && lua_touserdata(co, -nres) == SENTINEL) {
            mx_op *op = lua_touserdata(co, -nres + 1);
            lua_pop(co, nres);
            if (lua_isyieldable(L)) {
                lua_pushlightuserdata(L, SENTINEL);
                lua_pushlightuserdata(L, op);
                return lua_yieldk(L, 2, (lua_KContext)base, wrapped ? drive_wrap_k : drive_k);
            }
            nargs = block_on(L, op);
            lua_xmove(L, co, nargs);
            continue;
        }
        if (status == LUA_OK || status == LUA_YIELD) {
            luaL_checkstack(L, nres + 1, "too many results to resume");
            lua_pushboolean(L, 1);
            lua_xmove(co, L, nres);
        } else {
            lua_pushboolean(L, 0);
            lua_xmove(co, L, 1);
        }
        return wrapped ? wrap_finish(L, base) : lua_gettop(L) - base;
    }
}

static int dead(lua_State *L, lua_State *co) {
    return co == L || (lua_status(co) == LUA_OK && lua_gettop(co) == 0) ||
           (lua_status(co) != LUA_OK && lua_status(co) != LUA_YIELD);
}

static int coroutine_resume(lua_State *L) {
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    if (dead(L, co)) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, "cannot resume dead coroutine");
        return 2;
    }
    int nargs = lua_gettop(L) - 1;
    luaL_checkstack(co, nargs, "too many arguments to resume");
    lua_xmove(L, co, nargs);
    return drive(L, co, nargs, 0);
}

static int wrap_call(lua_State *L) {
    int nargs = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_State *co = lua_tothread(L, 1);
    if (dead(L, co)) return luaL_error(L, "cannot resume dead coroutine");
    luaL_checkstack(co, nargs, "too many arguments to resume");
    lua_xmove(L, co, nargs);
    return drive(L, co, nargs, 1);
}

static int coroutine_wrap(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, wrap_call, 1);
    return 1;
}

/* coroutine.yield, so that a task suspended in a plain yield (letting others run) can still be
 * cancelled or interrupted: the scheduler resumes it with (sentinel, error) and this raises. */
static int yield_k(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    (void)ctx;
    if (lua_gettop(L) >= 2 && lua_touserdata(L, 1) == SENTINEL) {
        lua_pushvalue(L, 2);
        return lua_error(L);
    }
    return lua_gettop(L);
}

static int coroutine_yield(lua_State *L) {
    return lua_yieldk(L, lua_gettop(L), 0, yield_k);
}

void mx_sched_install_coroutine_overrides(lua_State *L) {
    lua_getglobal(L, "coroutine");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_pushcfunction(L, coroutine_resume);
    lua_setfield(L, -2, "resume");
    lua_pushcfunction(L, coroutine_wrap);
    lua_setfield(L, -2, "wrap");
    lua_pushcfunction(L, coroutine_yield);
    lua_setfield(L, -2, "yield");
    lua_pop(L, 1);
}
