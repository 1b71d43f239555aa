/*
 * Tasks and joins (see scheduler_internal.h): a task is a Lua thread owned through registry
 * references; its userdata keeps the outcome (results or error and traceback) in its user value.
 * A join op waits for the first of several tasks to finish (task:wait, wait_any).
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "scheduler_internal.h"

static const char *const state_names[] = {"ready", "waiting", "running",
                                          "done",  "failed",  "cancelled"};

/* ---- tasks ------------------------------------------------------------------------------- */

static void live_link(mx_sched *s, mx_task *t) {
    t->prev = NULL;
    t->next = s->live;
    if (s->live) s->live->prev = t;
    s->live = t;
    s->nlive++;
}

static void live_unlink(mx_sched *s, mx_task *t) {
    if (t->prev)
        t->prev->next = t->next;
    else if (s->live == t)
        s->live = t->next;
    if (t->next) t->next->prev = t->prev;
    t->prev = t->next = NULL;
    s->nlive--;
}

static void join_notify(mx_op *op, int index, const mx_task *t);

/* The task's coroutine has ended (status from lua_resume); records the outcome in a table, the
 * task's user value, made now: a task that has not finished holds none. */
static void finish_task(mx_sched *s, mx_task *t, int status, int nres) {
    lua_State *L = s->L, *co = t->co;
    luaL_checkstack(L, nres + 8, "too many results");
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref);
    int ud = lua_gettop(L);
    lua_createtable(L, status == LUA_OK ? nres : 0, status == LUA_OK ? 1 : 2);
    int out = ud + 1;
    if (status == LUA_OK) {
        lua_xmove(co, L, nres);
        for (int i = nres; i >= 1; i--)
            lua_rawseti(L, out, i);
        lua_pushinteger(L, nres);
        lua_setfield(L, out, "n");
        t->state = T_DONE;
    } else {
        lua_xmove(co, L, 1); /* the error value */
        const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        luaL_traceback(L, co, msg, 0);
        lua_setfield(L, out, "traceback");
        t->state = is_error_kind(L, -1, "cancelled") || is_error_kind(L, -1, "interrupted")
                       ? T_CANCELLED
                       : T_FAILED;
        lua_setfield(L, out, "error");
    }
    /* Runs pending <close> handlers (after an error), and gives the stack the task grew back now
     * (1.4 KB for a task in mx.request) rather than when the collector finds the coroutine: a
     * fleet's finished tasks otherwise pile up as garbage until the next cycle. */
    lua_resetthread(co);
    lua_setiuservalue(L, ud, 1);
    lua_settop(L, ud - 1);
    if (t->error_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, t->error_ref);
    t->error_ref = LUA_NOREF;
    luaL_unref(L, LUA_REGISTRYINDEX, t->co_ref);
    t->co_ref = LUA_NOREF;
    t->co = NULL;
    int had_waiters = t->nwaiters > 0;
    while (t->nwaiters > 0) {
        struct waiter w = t->waiters[--t->nwaiters];
        join_notify(w.op, w.index, t);
    }
    if (t->state == T_FAILED && !had_waiters) {
        t->unobserved = 1; /* stays live so the failure is reported if nobody looks */
        return;
    }
    live_unlink(s, t);
    luaL_unref(L, LUA_REGISTRYINDEX, t->self_ref);
    t->self_ref = LUA_NOREF;
}

static int push_resume_args(mx_sched *s, mx_task *t) {
    lua_State *co = t->co;
    switch (t->resume) {
    case R_START:
        return t->nargs;
    case R_OP: {
        mx_op *op = t->op;
        t->op = NULL;
        return deliver(co, op);
    }
    case R_ERROR:
        /* a wait's continuation raises on false; coroutine.yield on the sentinel */
        if (t->plain_yield)
            lua_pushlightuserdata(co, SENTINEL);
        else
            lua_pushboolean(co, 0);
        lua_rawgeti(s->L, LUA_REGISTRYINDEX, t->error_ref);
        lua_xmove(s->L, co, 1);
        luaL_unref(s->L, LUA_REGISTRYINDEX, t->error_ref);
        t->error_ref = LUA_NOREF;
        return 2;
    case R_YIELD:
    default:
        return 0;
    }
}

void resume_task(mx_sched *s, mx_task *t) {
    lua_State *co = t->co;
    int nargs = push_resume_args(s, t);
    mx_task *outer = s->current;
    s->current = t;
    t->state = T_RUNNING;
    lua_State *was_running = s->running;
    s->running = co;
    int nres = 0;
    int status = lua_resume(co, outer ? outer->co : NULL, nargs, &nres);
    s->running = was_running;
    s->current = outer;
    if (status == LUA_YIELD) {
        if (nres >= 2 && lua_touserdata(co, -nres) == SENTINEL) {
            mx_op *op = lua_touserdata(co, -nres + 1);
            lua_pop(co, nres);
            t->plain_yield = 0;
            t->op = op;
            op->task = t;
            t->state = T_WAITING;
            if (op->state == MX_OP_DONE) make_ready(s, t, R_OP);
        } else { /* a plain coroutine.yield() in a task: let the others run */
            lua_pop(co, nres);
            t->plain_yield = 1;
            make_ready(s, t, R_YIELD);
        }
        return;
    }
    finish_task(s, t, status, nres);
}

/* Makes a waiting or ready task resume with an error (cancel, interrupt, deadlock). */
void cancel_task_with(mx_sched *s, mx_task *t, const char *kind, const char *message) {
    lua_State *L = s->L;
    if (t->state == T_READY) {
        ready_unlink(s, t);
        if (t->resume == R_START) { /* never ran: it ends here */
            lua_settop(t->co, 0);
            push_core_error(t->co, kind, message);
            finish_task(s, t, LUA_ERRRUN, 0);
            return;
        }
    }
    if (t->op) {
        op_free_safely(s, t->op);
        t->op = NULL;
    }
    push_core_error(L, kind, message);
    if (t->error_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, t->error_ref);
    t->error_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    make_ready(s, t, R_ERROR);
}

mx_task *mx_sched_spawn(lua_State *L, int nargs) {
    mx_sched *s = mx_sched_get(L);
    luaL_checktype(L, -nargs - 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    int co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_xmove(L, co, nargs + 1);
    mx_task *t = lua_newuserdatauv(L, sizeof *t, 1);
    memset(t, 0, sizeof *t); /* its outcome table comes when it finishes (finish_task) */
    luaL_setmetatable(L, TASK_MT);
    t->id = ++s->next_id;
    t->co = co;
    t->co_ref = co_ref;
    t->error_ref = LUA_NOREF;
    t->nargs = nargs;
    t->created = mx_now();
    lua_pushvalue(L, -1);
    t->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    live_link(s, t);
    make_ready(s, t, R_START);
    return t;
}

int mx_task_finished(const mx_task *t) {
    return t->state >= T_DONE;
}

static void mark_observed(lua_State *L, mx_task *t) {
    if (!t->unobserved) return;
    t->unobserved = 0;
    live_unlink(mx_sched_get(L), t);
    luaL_unref(L, LUA_REGISTRYINDEX, t->self_ref);
    t->self_ref = LUA_NOREF;
}

static mx_task *check_task(lua_State *L, int idx);

/* Expects the task userdata at stack index `idx`. */
static int push_outcome(lua_State *L, int idx, mx_task *t) {
    lua_getiuservalue(L, idx, 1);
    int out = lua_gettop(L);
    mark_observed(L, t);
    if (t->state == T_DONE) {
        lua_getfield(L, out, "n");
        int n = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        luaL_checkstack(L, n, "too many results");
        for (int i = 1; i <= n; i++)
            lua_rawgeti(L, out, i);
        return n;
    }
    lua_getfield(L, out, "error");
    if (lua_istable(L, -1)) { /* raw: a metatable of the error object must not replace it */
        lua_pushliteral(L, "traceback");
        lua_rawget(L, -2);
        if (lua_isnil(L, -1)) {
            lua_pushliteral(L, "traceback");
            lua_getfield(L, out, "traceback");
            lua_rawset(L, -4);
        }
        lua_pop(L, 1);
    } else if (lua_type(L, -1) == LUA_TSTRING &&
               strcmp(lua_tostring(L, -1), "not enough memory") != 0) { /* that is no bug */
        lua_getfield(L, out, "traceback"); /* message plus the task's own traceback */
        lua_pushfstring(L, "%s\n(in task %d)", lua_tostring(L, -1), t->id);
    }
    return lua_error(L);
}

int mx_task_push_outcome(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    return push_outcome(L, idx, check_task(L, idx));
}

/* ---- join: waiting for tasks (task:wait, wait_any, wait_all) ------------------------------ */

/*
 * A join op is a waiter of each task of its list that has not finished. The join keeps no
 * reference to them: a task is kept alive by its own registry reference until it has finished,
 * and a finished task drops out of the join (finish_task notifies it, which forgets the task), so
 * the join only ever touches live tasks. wait_all's join is a few bytes per task, where a watcher
 * task per entry was a coroutine each (~2 KB).
 */
struct join_op {
    mx_op base;
    int n;
    int all;         /* wait_all: done when every task has finished or one has failed */
    int remaining;   /* all: tasks of the list not finished yet */
    mx_task **tasks; /* NULL where the task has finished */
    int winner; /* any: 1-based index of the first finished task, 0 on timeout; all: of the first
                   that failed or was cancelled, 0 when none did */
};

/* The task at `index` of join `op` has finished. */
static void join_notify(mx_op *op, int index, const mx_task *t) {
    struct join_op *j = (struct join_op *)op;
    j->tasks[index] = NULL;
    if (!j->all) {
        if (!j->winner) j->winner = index + 1;
        mx_op_complete(op);
        return;
    }
    j->remaining--;
    if (t->state != T_DONE && !j->winner) j->winner = index + 1;
    if (j->winner || j->remaining == 0) mx_op_complete(op);
}

static int join_push(mx_op *op, lua_State *L) {
    struct join_op *j = (struct join_op *)op;
    if (j->winner)
        lua_pushinteger(L, j->winner);
    else
        lua_pushnil(L);
    return 1;
}

static void remove_waiter(mx_task *t, mx_op *op) {
    for (int i = 0; i < t->nwaiters; i++) {
        if (t->waiters[i].op == op) {
            t->waiters[i] = t->waiters[--t->nwaiters];
            i--; /* the same task may stand in the list more than once */
        }
    }
}

static void join_destroy(mx_op *op) {
    struct join_op *j = (struct join_op *)op;
    for (int i = 0; i < j->n; i++)
        if (j->tasks[i]) remove_waiter(j->tasks[i], op);
    free(j->tasks);
}

static const struct mx_op_vtable join_vt = {"join", join_push, NULL, join_destroy, NULL};

/* Registers join j as a waiter of task t, the one at `index` of its list. */
static void join_add(lua_State *L, struct join_op *j, int index, mx_task *t) {
    if (t->nwaiters == t->capwaiters) {
        int cap = t->capwaiters ? t->capwaiters * 2 : 2;
        struct waiter *w = realloc(t->waiters, (size_t)cap * sizeof *t->waiters);
        if (!w) {
            op_free(&j->base); /* unregisters from the tasks so far */
            luaL_error(L, "not enough memory");
        }
        t->waiters = w;
        t->capwaiters = cap;
    }
    t->waiters[t->nwaiters++] = (struct waiter){&j->base, index};
    j->tasks[index] = t;
    j->remaining++;
}

/* Creates a join op over the n unfinished tasks in the array at stack index `first` (in_table) or
 * the one task there; `all`: wait_all's join. */
static struct join_op *join_new(lua_State *L, int first, int n, int in_table, int all) {
    struct join_op *j = (struct join_op *)mx_op_new(L, &join_vt, sizeof *j);
    size_t count = n > 0 ? (size_t)n : 1; /* n >= 1 always; gcc -O3 cannot tell and warns */
    j->tasks = calloc(count, sizeof *j->tasks);
    if (!j->tasks) {
        op_free(&j->base);
        luaL_error(L, "not enough memory");
    }
    j->n = n;
    j->all = all;
    mx_task *t = NULL;
    for (int i = 0; i < n; i++) {
        if (in_table) {
            lua_rawgeti(L, first, i + 1);
            t = lua_touserdata(L, -1); /* checked by the caller */
            lua_pop(L, 1);
        } else {
            t = lua_touserdata(L, first);
        }
        if (!mx_task_finished(t)) join_add(L, j, i, t);
    }
    if (n == 1)
        snprintf(j->base.what, sizeof j->base.what, "task %d", t->id);
    else
        snprintf(j->base.what, sizeof j->base.what, all ? "all of %d tasks" : "any of %d tasks", n);
    return j;
}

static mx_task *check_task(lua_State *L, int idx) {
    return luaL_checkudata(L, idx, TASK_MT);
}

static int task_wait_k(lua_State *L, int status, lua_KContext base) {
    (void)status;
    mx_await_results(L, base);
    return push_outcome(L, 1, check_task(L, 1));
}

static int task_wait(lua_State *L) {
    mx_task *t = check_task(L, 1);
    lua_settop(L, 1);
    if (mx_task_finished(t)) return push_outcome(L, 1, t);
    if (t == mx_sched_get(L)->current) return luaL_error(L, "a task cannot wait for itself");
    return mx_await(L, &join_new(L, 1, 1, 0, 0)->base, task_wait_k);
}

static int task_cancel(lua_State *L) {
    mx_task *t = check_task(L, 1);
    if (mx_task_finished(t)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (t == mx_sched_get(L)->current) { /* cancelling oneself: unwind now */
        push_core_error(L, "cancelled", "task cancelled");
        return lua_error(L);
    }
    if (t->state == T_RUNNING)
        return luaL_error(L, "cannot cancel a task that is resuming another");
    cancel_task_with(mx_sched_get(L), t, "cancelled", "task cancelled");
    lua_pushboolean(L, 1);
    return 1;
}

static int task_status(lua_State *L) {
    lua_pushstring(L, state_names[check_task(L, 1)->state]);
    return 1;
}

static int task_index(lua_State *L) {
    mx_task *t = check_task(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "id") == 0) {
        lua_pushinteger(L, t->id);
        return 1;
    }
    luaL_getmetatable(L, TASK_MT);
    lua_getfield(L, -1, k);
    return 1;
}

static int task_tostring(lua_State *L) {
    mx_task *t = check_task(L, 1);
    lua_pushfstring(L, "task %d (%s)", t->id, state_names[t->state]);
    return 1;
}

static int task_gc(lua_State *L) {
    mx_task *t = check_task(L, 1);
    free(t->waiters);
    t->waiters = NULL;
    return 0;
}
int l_spawn(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    mx_sched_spawn(L, lua_gettop(L) - 1);
    return 1;
}

static int wait_any_k(lua_State *L, int status, lua_KContext base) {
    (void)status;
    return mx_await_results(L, base);
}

/* wait_any(tasks [, timeout]) -> index of the first finished task, or nil on timeout */
int l_wait_any(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    double timeout = luaL_optnumber(L, 2, -1);
    lua_settop(L, 1);
    int n = (int)luaL_len(L, 1);
    luaL_argcheck(L, n > 0, 1, "empty list of tasks");
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        mx_task *t = luaL_testudata(L, -1, TASK_MT);
        if (!t) return luaL_error(L, "bad argument #1 to 'wait_any' (item %d is not a task)", i);
        lua_pop(L, 1);
        if (mx_task_finished(t)) {
            lua_pushinteger(L, i);
            return 1;
        }
    }
    mx_op *op = &join_new(L, 1, n, 1, 0)->base;
    if (timeout >= 0) mx_op_set_timer(op, op->started + timeout);
    return mx_await(L, op, wait_any_k);
}

/* wait_all(tasks) -> nil once every task has finished, or the index of the first one that failed
 * or was cancelled, as soon as it does (the others go on running). */
int l_wait_all(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    int n = (int)luaL_len(L, 1);
    mx_task *current = mx_sched_get(L)->current;
    int left = 0;
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        mx_task *t = luaL_testudata(L, -1, TASK_MT);
        if (!t) return luaL_error(L, "bad argument #1 to 'wait_all' (item %d is not a task)", i);
        lua_pop(L, 1);
        if (t->state == T_FAILED || t->state == T_CANCELLED) {
            lua_pushinteger(L, i);
            return 1;
        }
        if (t == current) return luaL_error(L, "a task cannot wait for itself");
        left += !mx_task_finished(t);
    }
    if (left == 0) {
        lua_pushnil(L);
        return 1;
    }
    return mx_await(L, &join_new(L, 1, n, 1, 1)->base, wait_any_k);
}

/* The task userdata's metatable (task:wait, task:cancel, task:status, task.id). */
void mx_sched_register_task_type(lua_State *L) {
    luaL_Reg task_methods[] = {{"wait", task_wait},
                               {"cancel", task_cancel},
                               {"status", task_status},
                               {"__index", task_index},
                               {"__tostring", task_tostring},
                               {"__gc", task_gc},
                               {NULL, NULL}};
    luaL_newmetatable(L, TASK_MT);
    luaL_setfuncs(L, task_methods, 0);
    lua_pop(L, 1);
}
