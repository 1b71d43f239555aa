/*
 * The scheduler (see scheduler.h). Tasks are Lua threads owned through registry references; the
 * task userdata keeps the outcome (results or error and traceback) in its user value.
 */
#include "scheduler.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#define TASK_MT "mxdeploy.task"
#define ERROR_MT_KEY "mxdeploy.error_mt"

/* The address yielded as the first value by a waiting call; nothing else can yield it. */
static const char sentinel_addr = 0;
#define SENTINEL ((void *)&sentinel_addr)

enum task_state { T_READY, T_WAITING, T_RUNNING, T_DONE, T_FAILED, T_CANCELLED };
enum resume_kind { R_START, R_OP, R_YIELD, R_ERROR };
static const char *const state_names[] = {"ready", "waiting", "running",
                                          "done",  "failed",  "cancelled"};

struct mx_task {
    int id;
    lua_State *co;
    int co_ref, self_ref;
    enum task_state state;
    enum resume_kind resume;
    int nargs;       /* R_START: arguments on co's stack */
    int error_ref;   /* R_ERROR: the error to raise in the task when it resumes */
    mx_op *op;       /* the op it waits on */
    int unobserved;  /* failed and nobody has waited for it yet */
    int plain_yield; /* suspended in coroutine.yield(), not in a wait */
    double created;
    mx_task *ready_next;
    mx_task *prev, *next; /* live (unfinished or unobserved) tasks */
    mx_op **waiters;      /* join ops waiting for this task */
    int nwaiters, capwaiters;
};

struct watch {
    int fd;
    void (*cb)(void *);
    void *ud;
};

struct mx_sched {
    lua_State *L; /* main state */
    CURLM *multi;
    mx_op **heap;
    int nheap, capheap;
    mx_task *ready_head, *ready_tail;
    mx_task *live;
    int nlive, next_id;
    mx_task *current;
    struct watch watch;
    int interrupt_handled;
    mx_task *interrupt_target;
    int interrupt_off;
    double interrupt_at;         /* when Ctrl-C was handled: older blocking waits are cancelled */
    int transfers;               /* running transfers after the last curl_multi_perform */
    lua_State *volatile running; /* the thread running Lua code now, for the SIGINT hook */
    int main_runs_script;        /* stock lua5.4: the main thread runs the script */
    lua_State *cb_thread;
    int cb_ref, in_callback;
    mx_op **deferred; /* ops cancelled inside a curl callback: freed once curl has returned */
    int ndeferred, capdeferred;
};

lua_State *mx_sched_state(mx_sched *s) {
    return s->L;
}

lua_State *mx_sched_callback_thread(mx_sched *s) {
    if (s->in_callback) return NULL;
    if (!s->cb_thread) {
        s->cb_thread = lua_newthread(s->L);
        s->cb_ref = luaL_ref(s->L, LUA_REGISTRYINDEX);
    }
    return s->cb_thread;
}

int mx_sched_callback(mx_sched *s, int nargs) {
    s->in_callback = 1;
    int status = lua_pcall(s->cb_thread, nargs, 0, 0);
    s->in_callback = 0;
    return status;
}

static mx_sched *the_sched;
static volatile sig_atomic_t interrupted;

double mx_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

CURLM *mx_sched_multi(mx_sched *s) {
    return s->multi;
}

/* ---- errors raised by the core itself ---------------------------------------------------- */

/* Pushes {kind=, message=} with the shared error metatable (set by the bindings). */
static void push_core_error(lua_State *L, const char *kind, const char *message) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    lua_getfield(L, LUA_REGISTRYINDEX, ERROR_MT_KEY);
    lua_setmetatable(L, -2);
}

static int error_tostring(lua_State *L) {
    lua_getfield(L, 1, "kind");
    lua_getfield(L, 1, "message");
    lua_pushfstring(L, "%s: %s", luaL_optstring(L, -2, "error"), luaL_optstring(L, -1, "?"));
    return 1;
}

/* Raw access: it runs in the loop, where an error object's __index must not raise. */
static int is_error_kind(lua_State *L, int idx, const char *kind) {
    if (!lua_istable(L, idx)) return 0;
    idx = lua_absindex(L, idx);
    lua_pushliteral(L, "kind");
    lua_rawget(L, idx);
    int yes = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), kind) == 0;
    lua_pop(L, 1);
    return yes;
}

/* ---- timer heap ------------------------------------------------------------------------------ */

static void heap_swap(mx_sched *s, int a, int b) {
    mx_op *t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
    s->heap[a]->heap_index = a;
    s->heap[b]->heap_index = b;
}

static void heap_up(mx_sched *s, int i) {
    while (i > 0 && s->heap[(i - 1) / 2]->due > s->heap[i]->due) {
        heap_swap(s, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(mx_sched *s, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && s->heap[l]->due < s->heap[m]->due) m = l;
        if (r < s->nheap && s->heap[r]->due < s->heap[m]->due) m = r;
        if (m == i) return;
        heap_swap(s, i, m);
        i = m;
    }
}

void mx_op_set_timer(mx_op *op, double due) {
    mx_sched *s = op->sched;
    mx_op_clear_timer(op);
    if (s->nheap == s->capheap) {
        s->capheap = s->capheap ? s->capheap * 2 : 64;
        s->heap = realloc(s->heap, (size_t)s->capheap * sizeof *s->heap);
        if (!s->heap) abort();
    }
    op->due = due;
    op->heap_index = s->nheap;
    s->heap[s->nheap++] = op;
    heap_up(s, op->heap_index);
}

void mx_op_clear_timer(mx_op *op) {
    mx_sched *s = op->sched;
    int i = op->heap_index;
    if (i < 0) return;
    op->heap_index = -1;
    s->nheap--;
    if (i == s->nheap) return;
    s->heap[i] = s->heap[s->nheap];
    s->heap[i]->heap_index = i;
    heap_up(s, i);
    heap_down(s, s->heap[i]->heap_index);
}

/* ---- operations ------------------------------------------------------------------------------ */

mx_op *mx_op_new(mx_sched *s, const struct mx_op_vtable *vt, size_t size) {
    mx_op *op = calloc(1, size);
    if (!op) abort();
    op->vt = vt;
    op->sched = s;
    op->state = MX_OP_PENDING;
    op->heap_index = -1;
    op->started = mx_now();
    return op;
}

static void make_ready(mx_sched *s, mx_task *t, enum resume_kind how) {
    t->state = T_READY;
    t->resume = how;
    t->ready_next = NULL;
    if (s->ready_tail)
        s->ready_tail->ready_next = t;
    else
        s->ready_head = t;
    s->ready_tail = t;
}

void mx_op_complete(mx_op *op) {
    if (op->state == MX_OP_DONE) return;
    op->state = MX_OP_DONE;
    mx_op_clear_timer(op);
    mx_task *t = op->task;
    if (t && t->state == T_WAITING && t->op == op) make_ready(op->sched, t, R_OP);
}

/* Frees an op; a pending one is cancelled first (its cleanup hook always runs). */
static void op_free(mx_op *op) {
    if (op->state == MX_OP_PENDING && op->vt->cancel) op->vt->cancel(op);
    mx_op_clear_timer(op);
    if (op->vt->destroy) op->vt->destroy(op);
    free(op);
}

/* Frees `op` now, or, inside a (progress) callback, once curl_multi_perform has returned: curl
 * refuses curl_multi_remove_handle from its callbacks, and the op may be the one whose callback is
 * running. */
static void op_free_safely(mx_sched *s, mx_op *op) {
    if (!s->in_callback) {
        op_free(op);
        return;
    }
    op->task = NULL;
    if (s->ndeferred == s->capdeferred) {
        s->capdeferred = s->capdeferred ? s->capdeferred * 2 : 8;
        s->deferred = realloc(s->deferred, (size_t)s->capdeferred * sizeof *s->deferred);
        if (!s->deferred) abort();
    }
    s->deferred[s->ndeferred++] = op;
}

/* ---- the loop ---------------------------------------------------------------------------- */

static void resume_task(mx_sched *s, mx_task *t);

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    push_core_error(L, "interrupted", "interrupted");
    lua_error(L);
}

/* lua_sethook is safe to call from a signal handler (lua.c does the same). */
static void arm_interrupt_hook(lua_State *L) {
    lua_sethook(L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static mx_task *pop_ready(mx_sched *s) {
    mx_task *t = s->ready_head;
    if (t) {
        s->ready_head = t->ready_next;
        if (!s->ready_head) s->ready_tail = NULL;
    }
    return t;
}

static void run_ready(mx_sched *s) {
    /* Only the tasks ready now: a task that yields again runs in the next round. */
    mx_task *last = s->ready_tail, *t;
    while ((t = pop_ready(s)) != NULL) {
        resume_task(s, t);
        if (t == last) break;
    }
}

static void fire_timers(mx_sched *s) {
    double now = mx_now();
    while (s->nheap > 0 && s->heap[0]->due <= now)
        mx_op_complete(s->heap[0]); /* also removes it from the heap */
}

/* Drives curl and hands finished transfers to their ops; repeats while a finished transfer
 * started another (a redirect), so s->transfers is the true number still running. */
static void collect_transfers(mx_sched *s) {
    int left, finished;
    do {
        finished = 0;
        curl_multi_perform(s->multi, &s->transfers);
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE) continue;
            mx_op *op = NULL;
            CURL *easy = msg->easy_handle;
            CURLcode result = msg->data.result;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&op);
            if (op && op->vt->curl_done) op->vt->curl_done(op, result);
            finished++;
        }
    } while (finished > 0);
    while (s->ndeferred > 0)
        op_free(s->deferred[--s->ndeferred]);
}

static void cancel_task_with(mx_sched *s, mx_task *t, const char *kind, const char *message);

/* Cancels what waits when Ctrl-C came (only the REPL's line when it has a target). Waits that
 * start afterwards (a <close> handler releasing a lock) proceed; a second Ctrl-C exits. */
static void handle_interrupt(mx_sched *s) {
    if (!interrupted || s->interrupt_handled || s->interrupt_off) return;
    s->interrupt_handled = 1;
    s->interrupt_at = mx_now();
    for (mx_task *t = s->live; t; t = t->next)
        if ((t->state == T_WAITING || t->state == T_READY) &&
            (!s->interrupt_target || s->interrupt_target == t))
            cancel_task_with(s, t, "interrupted", "interrupted");
}

/* Waits for I/O or timers (at most `max_ms`, -1 = until something happens) and completes ops. */
static void poll_once(mx_sched *s, long max_ms) {
    long timeout = max_ms;
    if (s->ready_head) timeout = 0;
    if (s->nheap > 0) {
        double ms = ceil((s->heap[0]->due - mx_now()) * 1000.0);
        long t = ms < 0 ? 0 : ms > 1000 ? 1000 : (long)ms; /* a sleep may be math.huge */
        if (timeout < 0 || t < timeout) timeout = t;
    }
    long curl_ms = -1;
    curl_multi_timeout(s->multi, &curl_ms);
    if (curl_ms >= 0 && (timeout < 0 || curl_ms < timeout)) timeout = curl_ms;
    if (timeout < 0 || timeout > 1000) timeout = 1000;
    struct curl_waitfd wfd = {0};
    unsigned nfds = 0;
    if (s->watch.cb) {
        wfd.fd = s->watch.fd;
        wfd.events = CURL_WAIT_POLLIN;
        nfds = 1;
    }
    if (!interrupted || s->interrupt_handled || s->interrupt_off)
        curl_multi_poll(s->multi, nfds ? &wfd : NULL, nfds, (int)timeout, NULL);
    collect_transfers(s);
    fire_timers(s);
    handle_interrupt(s);
    if (nfds && (wfd.revents & CURL_WAIT_POLLIN)) s->watch.cb(s->watch.ud);
}

/*
 * When nothing can ever wake a waiting task (no ready task, timer, transfer or watched fd), those
 * tasks fail with a "deadlock" error instead of hanging. Returns 1 when nothing is left to run.
 */
static int stalled(mx_sched *s) {
    if (s->ready_head || s->nheap > 0 || s->watch.cb) return 0;
    collect_transfers(s); /* finished transfers may be waiting to be read */
    if (s->ready_head || s->transfers > 0) return 0;
    int waiting = 0;
    for (mx_task *t = s->live; t; t = t->next) {
        if (t->state != T_WAITING) continue;
        waiting++;
        cancel_task_with(s, t, "deadlock", "every task is waiting for another task");
    }
    return waiting == 0;
}

int mx_sched_run(lua_State *L) {
    mx_sched *s = mx_sched_get(L);
    for (;;) {
        run_ready(s);
        if (s->nlive == 0 || stalled(s)) break;
        poll_once(s, -1);
    }
    return interrupted ? 1 : 0;
}

void mx_sched_run_until(lua_State *L, mx_task *t) {
    mx_sched *s = mx_sched_get(L);
    for (;;) {
        run_ready(s);
        if (mx_task_finished(t) || stalled(s)) break;
        poll_once(s, -1);
    }
}

void mx_sched_step(lua_State *L, long max_ms) {
    mx_sched *s = mx_sched_get(L);
    run_ready(s);
    poll_once(s, max_ms);
}

void mx_sched_interrupt_cancels(int yes) {
    if (the_sched) the_sched->interrupt_off = !yes;
}

void mx_sched_set_interrupt_target(mx_task *t) {
    if (the_sched) the_sched->interrupt_target = t;
}

/* ---- awaiting ---------------------------------------------------------------------------- */

int mx_await_results(lua_State *L, lua_KContext base) {
    int b = (int)base;
    if (!lua_toboolean(L, b + 1)) {
        lua_pushvalue(L, b + 2);
        return lua_error(L);
    }
    lua_remove(L, b + 1);
    return lua_gettop(L) - b;
}

static int stalled(mx_sched *s);

/* Delivers a finished op to L as (true, results...) and frees it. */
static int deliver(lua_State *L, mx_op *op) {
    luaL_checkstack(L, 8, NULL);
    lua_pushboolean(L, 1);
    int n = op->vt->push ? op->vt->push(op, L) : 0;
    op_free(op);
    return n + 1;
}

/* Drives the loop until op is done, then pushes (flag, results...); returns their count. */
static int block_on(lua_State *L, mx_op *op) {
    mx_sched *s = op->sched;
    op->blocking = 1;
    while (op->state == MX_OP_PENDING) {
        handle_interrupt(s);
        if (interrupted && s->interrupt_handled && op->started <= s->interrupt_at &&
            (!s->interrupt_target || s->current == s->interrupt_target)) {
            op_free(op);
            lua_pushboolean(L, 0);
            push_core_error(L, "interrupted", "interrupted");
            return 2;
        }
        run_ready(s);
        if (op->state != MX_OP_PENDING) break;
        if (stalled(s) && op->state == MX_OP_PENDING) {
            op_free(op);
            lua_pushboolean(L, 0);
            push_core_error(L, "deadlock", "waiting for something that can never happen");
            return 2;
        }
        poll_once(s, -1);
    }
    return deliver(L, op);
}

int mx_await(lua_State *L, mx_op *op, lua_KFunction k) {
    int base = lua_gettop(L);
    if (op->sched->in_callback) {
        op_free(op);
        return luaL_error(L, "cannot wait inside a progress callback");
    }
    if (lua_isyieldable(L)) {
        lua_pushlightuserdata(L, SENTINEL);
        lua_pushlightuserdata(L, op);
        return lua_yieldk(L, 2, (lua_KContext)base, k);
    }
    block_on(L, op);
    return k(L, LUA_OK, (lua_KContext)base);
}

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

static void remove_waiter(mx_task *t, mx_op *op) {
    for (int i = 0; i < t->nwaiters; i++) {
        if (t->waiters[i] == op) {
            t->waiters[i] = t->waiters[--t->nwaiters];
            return;
        }
    }
}

/* Pushes the task's user value (its outcome table), creating it if needed. */
static void push_outcome_table(lua_State *L, mx_task *t) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref);
    lua_getiuservalue(L, -1, 1);
    lua_remove(L, -2);
}

/* The task's coroutine has ended (status from lua_resume); records the outcome. */
static void finish_task(mx_sched *s, mx_task *t, int status, int nres) {
    lua_State *L = s->L, *co = t->co;
    luaL_checkstack(L, nres + 8, "too many results");
    push_outcome_table(L, t);
    int out = lua_gettop(L);
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
        lua_resetthread(co); /* runs pending <close> handlers */
    }
    lua_settop(L, out - 1);
    if (t->error_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, t->error_ref);
    t->error_ref = LUA_NOREF;
    luaL_unref(L, LUA_REGISTRYINDEX, t->co_ref);
    t->co_ref = LUA_NOREF;
    t->co = NULL;
    int had_waiters = t->nwaiters > 0;
    while (t->nwaiters > 0) {
        mx_op *w = t->waiters[--t->nwaiters];
        mx_op_complete(w);
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
        /* a wait's continuation raises on false; coroutine.yield (co_yield) on the sentinel */
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

static void resume_task(mx_sched *s, mx_task *t) {
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
static void cancel_task_with(mx_sched *s, mx_task *t, const char *kind, const char *message) {
    lua_State *L = s->L;
    if (t->state == T_READY) { /* unlink from the ready queue */
        mx_task **pp = &s->ready_head, *prev = NULL;
        while (*pp && *pp != t) {
            prev = *pp;
            pp = &(*pp)->ready_next;
        }
        if (*pp) {
            *pp = t->ready_next;
            if (s->ready_tail == t) s->ready_tail = prev;
        }
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
    memset(t, 0, sizeof *t);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 1);
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
    live_unlink(the_sched, t);
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
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        lua_getfield(L, out, "traceback"); /* message plus the task's own traceback */
        lua_pushfstring(L, "%s\n(in task %d)", lua_tostring(L, -1), t->id);
    }
    return lua_error(L);
}

int mx_task_push_outcome(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    return push_outcome(L, idx, check_task(L, idx));
}

/* ---- join: waiting for one of several tasks (task:wait, wait_any) ------------------------- */

struct join_op {
    mx_op base;
    int n;
    mx_task **tasks;
    int *refs;
    int winner; /* 1-based index of the first finished task, 0 on timeout */
};

static int join_push(mx_op *op, lua_State *L) {
    struct join_op *j = (struct join_op *)op;
    for (int i = 0; i < j->n; i++)
        if (j->winner == 0 && mx_task_finished(j->tasks[i])) j->winner = i + 1;
    if (j->winner)
        lua_pushinteger(L, j->winner);
    else
        lua_pushnil(L);
    return 1;
}

static void join_destroy(mx_op *op) {
    struct join_op *j = (struct join_op *)op;
    for (int i = 0; i < j->n; i++) {
        remove_waiter(j->tasks[i], op);
        luaL_unref(op->sched->L, LUA_REGISTRYINDEX, j->refs[i]);
    }
    free(j->tasks);
    free(j->refs);
}

static const struct mx_op_vtable join_vt = {"join", join_push, NULL, join_destroy, NULL};

/* Creates a join op over the task userdatas in the array at stack index `arr` (or one task). */
static mx_op *join_new(lua_State *L, int first, int n, int in_table) {
    mx_sched *s = mx_sched_get(L);
    struct join_op *j = (struct join_op *)mx_op_new(s, &join_vt, sizeof *j);
    size_t count = n > 0 ? (size_t)n : 1; /* n >= 1 always; gcc -O3 cannot tell and warns */
    j->tasks = calloc(count, sizeof *j->tasks);
    j->refs = calloc(count, sizeof *j->refs);
    if (!j->tasks || !j->refs) abort();
    for (int i = 0; i < n; i++) {
        if (in_table)
            lua_rawgeti(L, first, i + 1);
        else
            lua_pushvalue(L, first);
        mx_task *t = luaL_testudata(L, -1, TASK_MT);
        j->tasks[i] = t;
        j->refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
        j->n = i + 1;
        if (t->nwaiters == t->capwaiters) {
            t->capwaiters = t->capwaiters ? t->capwaiters * 2 : 4;
            t->waiters = realloc(t->waiters, (size_t)t->capwaiters * sizeof *t->waiters);
            if (!t->waiters) abort();
        }
        t->waiters[t->nwaiters++] = &j->base;
    }
    snprintf(j->base.what, sizeof j->base.what, n == 1 ? "task %d" : "any of %d tasks",
             n == 1 ? j->tasks[0]->id : n);
    return &j->base;
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
    if (t == the_sched->current) return luaL_error(L, "a task cannot wait for itself");
    return mx_await(L, join_new(L, 1, 1, 0), task_wait_k);
}

static int task_cancel(lua_State *L) {
    mx_task *t = check_task(L, 1);
    if (mx_task_finished(t)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (t == the_sched->current) { /* cancelling oneself: unwind now */
        push_core_error(L, "cancelled", "task cancelled");
        return lua_error(L);
    }
    if (t->state == T_RUNNING)
        return luaL_error(L, "cannot cancel a task that is resuming another");
    cancel_task_with(the_sched, t, "cancelled", "task cancelled");
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

/* ---- Lua API ----------------------------------------------------------------------------- */

struct sleep_op {
    mx_op base;
};

static const struct mx_op_vtable sleep_vt = {"sleep", NULL, NULL, NULL, NULL};

static int sleep_k(lua_State *L, int status, lua_KContext base) {
    (void)status;
    mx_await_results(L, base);
    return 0;
}

static int l_sleep(lua_State *L) {
    lua_Number secs = luaL_checknumber(L, 1);
    luaL_argcheck(L, secs >= 0 && secs == secs, 1, "seconds must be a non-negative number");
    const char *label = luaL_optstring(L, 2, NULL); /* what mx.pending() shows, e.g. a job */
    mx_op *op = mx_op_new(mx_sched_get(L), &sleep_vt, sizeof(struct sleep_op));
    if (label)
        snprintf(op->what, sizeof op->what, "%s", label);
    else
        snprintf(op->what, sizeof op->what, "sleep %.3f s", (double)secs);
    lua_settop(L, 0);
    mx_op_set_timer(op, op->started + secs);
    return mx_await(L, op, sleep_k);
}

static int l_now(lua_State *L) {
    lua_pushnumber(L, mx_now());
    return 1;
}

static int l_spawn(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    mx_sched_spawn(L, lua_gettop(L) - 1);
    return 1;
}

static int wait_any_k(lua_State *L, int status, lua_KContext base) {
    (void)status;
    return mx_await_results(L, base);
}

/* wait_any(tasks [, timeout]) -> index of the first finished task, or nil on timeout */
static int l_wait_any(lua_State *L) {
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
    mx_op *op = join_new(L, 1, n, 1);
    if (timeout >= 0) mx_op_set_timer(op, op->started + timeout);
    return mx_await(L, op, wait_any_k);
}

static int l_current(lua_State *L) {
    mx_sched *s = mx_sched_get(L);
    if (s->current && s->current->self_ref != LUA_NOREF)
        lua_rawgeti(L, LUA_REGISTRYINDEX, s->current->self_ref);
    else
        lua_pushnil(L);
    return 1;
}

/* pending() -> { {task=, kind=, what=, waited=}, ... } for every waiting task */
static int l_pending(lua_State *L) {
    mx_sched *s = mx_sched_get(L);
    double now = mx_now();
    lua_newtable(L);
    int i = 0;
    for (mx_task *t = s->live; t; t = t->next) {
        if (t->state != T_WAITING || !t->op) continue;
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, t->id);
        lua_setfield(L, -2, "task");
        lua_pushstring(L, t->op->vt->kind);
        lua_setfield(L, -2, "kind");
        lua_pushstring(L, t->op->what);
        lua_setfield(L, -2, "what");
        lua_pushnumber(L, now - t->op->started);
        lua_setfield(L, -2, "waited");
        lua_rawseti(L, -2, ++i);
    }
    return 1;
}

static int l_set_error_mt(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, ERROR_MT_KEY);
    return 0;
}

/* ---- coroutine.resume / wrap that pass scheduler waits through ---------------------------- */

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

static int co_resume(lua_State *L) {
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

static int co_wrap(lua_State *L) {
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

static int co_yield (lua_State *L) {
    return lua_yieldk(L, lua_gettop(L), 0, yield_k);
}

static void install_coroutine_overrides(lua_State *L) {
    lua_getglobal(L, "coroutine");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_pushcfunction(L, co_resume);
    lua_setfield(L, -2, "resume");
    lua_pushcfunction(L, co_wrap);
    lua_setfield(L, -2, "wrap");
    lua_pushcfunction(L, co_yield );
    lua_setfield(L, -2, "yield");
    lua_pop(L, 1);
}

/* ---- setup ------------------------------------------------------------------------------- */

/* SIGINT: a flag for the loop (waits end with an "interrupted" error) and, like lua.c, a hook
 * that raises in Lua code that is busy computing. */
static void on_sigint(int sig) {
    (void)sig;
    if (interrupted && the_sched && the_sched->interrupt_handled && !the_sched->interrupt_off) {
        /* a second Ctrl-C while cleanups run: stop now */
        static const char msg[] = "\nmxdeploy: interrupted again, exiting without cleanup\n";
        ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)n;
        _exit(130);
    }
    interrupted = 1;
    if (!the_sched) return;
    curl_multi_wakeup(the_sched->multi);
    lua_State *running = the_sched->running;
    mx_task *target = the_sched->interrupt_target, *current = the_sched->current;
    if (running && !the_sched->interrupt_off &&
        (!target || (current == target && running == target->co)))
        arm_interrupt_hook(running);
}

void mx_sched_main_runs_script(lua_State *L) {
    mx_sched *s = mx_sched_get(L);
    s->main_runs_script = 1;
    s->running = s->L;
}

void mx_sched_interrupt(void) {
    on_sigint(SIGINT);
}

int mx_sched_interrupted(void) {
    return interrupted;
}

void mx_sched_clear_interrupt(void) {
    interrupted = 0;
    if (the_sched) the_sched->interrupt_handled = 0;
}

void mx_sched_watch_fd(mx_sched *s, int fd, void (*cb)(void *), void *ud) {
    s->watch.fd = fd;
    s->watch.cb = cb;
    s->watch.ud = ud;
}

int mx_sched_report_unobserved(lua_State *L) {
    mx_sched *s = mx_sched_get(L);
    int n = 0;
    for (mx_task *t = s->live; t; t = t->next) {
        if (!t->unobserved) continue;
        n++;
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref);
        lua_getiuservalue(L, -1, 1);
        lua_getfield(L, -1, "error");
        const char *msg = luaL_tolstring(L, -1, NULL);
        fprintf(stderr, "mxdeploy: task %d failed and nobody waited for it: %s\n", t->id, msg);
        lua_pop(L, 4);
    }
    return n;
}

static int sched_gc(lua_State *L) {
    mx_sched **box = lua_touserdata(L, 1);
    mx_sched *s = *box;
    if (!s) return 0;
    while (s->nheap > 0)
        mx_op_clear_timer(s->heap[0]);
    free(s->heap);
    while (s->ndeferred > 0)
        op_free(s->deferred[--s->ndeferred]);
    free(s->deferred);
    curl_multi_cleanup(s->multi);
    if (the_sched == s) the_sched = NULL;
    free(s);
    *box = NULL;
    return 0;
}

mx_sched *mx_sched_get(lua_State *L) {
    if (the_sched) return the_sched;
    mx_sched *s = calloc(1, sizeof *s);
    if (!s) abort();
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    s->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s->multi = curl_multi_init();
    curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
    the_sched = s;
    /* Closed with the state: the box's __gc frees the scheduler. */
    mx_sched **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = s;
    lua_newtable(L);
    lua_pushcfunction(L, sched_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "mxdeploy.scheduler");

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
    lua_newtable(L);
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_setfield(L, LUA_REGISTRYINDEX, ERROR_MT_KEY);
    install_coroutine_overrides(L);
    signal(SIGINT, on_sigint);
    return s;
}

void mx_sched_open(lua_State *L) {
    mx_sched_get(L);
    luaL_Reg funcs[] = {{"sleep", l_sleep},
                        {"now", l_now},
                        {"spawn", l_spawn},
                        {"wait_any", l_wait_any},
                        {"current", l_current},
                        {"pending", l_pending},
                        {"set_error_metatable", l_set_error_mt},
                        {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
