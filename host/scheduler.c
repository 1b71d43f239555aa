/*
 * The scheduler's loop (see scheduler.h): timers, ops, awaiting, the Lua API that is not about
 * tasks, and setup. Tasks and joins are in scheduler_tasks.c, the coroutine overrides in
 * scheduler_coroutines.c.
 */
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "scheduler_internal.h"

const char mx_sched_sentinel = 0;

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
static volatile sig_atomic_t interrupted; /* the signal that interrupted (0: none) */

/* The message of the "interrupted" error for the signal that came. */
static const char *interrupt_message(void) {
    switch (interrupted) {
    case SIGTERM:
        return "terminated (SIGTERM)";
    case SIGHUP:
        return "hung up (SIGHUP)";
    default:
        return "interrupted";
    }
}

double mx_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

CURLM *mx_sched_multi(mx_sched *s) {
    if (s->multi) return s->multi;
    int loaded = mx_curl_load() == 0;
    if (!loaded) return NULL;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s->multi = curl_multi_init();
    if (!s->multi) mx_out_of_memory();
    curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
    return s->multi;
}

CURLM *mx_sched_multi_loaded(mx_sched *s) {
    return s->multi;
}

/* ---- errors raised by the core itself ---------------------------------------------------- */

/* Pushes {kind=, message=} with the shared error metatable (set by the bindings). */
void push_core_error(lua_State *L, const char *kind, const char *message) {
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
int is_error_kind(lua_State *L, int idx, const char *kind) {
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

/* Makes sure `*arr` holds at least `need` pointers; 0 when memory ran out (it is unchanged). */
static int reserve(mx_op ***arr, int *cap, int need) {
    if (need <= *cap) return 1;
    int n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    mx_op **p = realloc(*arr, (size_t)n * sizeof **arr);
    if (!p) return 0;
    *arr = p;
    *cap = n;
    return 1;
}

mx_op *mx_op_new(lua_State *L, const struct mx_op_vtable *vt, size_t size) {
    mx_sched *s = mx_sched_get(L);
    /* The timer heap and the deferred list have room for every op, so arming a timer or
     * deferring a free never needs memory where no Lua error could report its lack. */
    if (!reserve(&s->heap, &s->capheap, s->nops + 1) ||
        !reserve(&s->deferred, &s->capdeferred, s->nops + 1))
        luaL_error(L, "not enough memory");
    mx_op *op = calloc(1, size);
    if (!op) luaL_error(L, "not enough memory");
    s->nops++;
    op->vt = vt;
    op->sched = s;
    op->state = MX_OP_PENDING;
    op->heap_index = -1;
    op->started = mx_now();
    return op;
}

/* Takes t out of the ready queue: O(1), so cancelling many ready tasks (Ctrl-C over a fleet whose
 * waits all ended in one turn) does not walk the queue for each. */
void ready_unlink(mx_sched *s, mx_task *t) {
    if (!t->in_ready) return;
    if (t->ready_prev)
        t->ready_prev->ready_next = t->ready_next;
    else
        s->ready_head = t->ready_next;
    if (t->ready_next)
        t->ready_next->ready_prev = t->ready_prev;
    else
        s->ready_tail = t->ready_prev;
    t->ready_next = t->ready_prev = NULL;
    t->in_ready = 0;
}

void make_ready(mx_sched *s, mx_task *t, enum resume_kind how) {
    ready_unlink(s, t);
    t->state = T_READY;
    t->resume = how;
    t->ready_next = NULL;
    t->ready_prev = s->ready_tail;
    if (s->ready_tail)
        s->ready_tail->ready_next = t;
    else
        s->ready_head = t;
    s->ready_tail = t;
    t->in_ready = 1;
}

void mx_op_complete(mx_op *op) {
    if (op->state == MX_OP_DONE) return;
    op->state = MX_OP_DONE;
    mx_op_clear_timer(op);
    mx_task *t = op->task;
    if (t && t->state == T_WAITING && t->op == op) make_ready(op->sched, t, R_OP);
}

/* Frees an op; a pending one is cancelled first (its cleanup hook always runs). */
void op_free(mx_op *op) {
    if (op->state == MX_OP_PENDING && op->vt->cancel) op->vt->cancel(op);
    mx_op_clear_timer(op);
    if (op->vt->destroy) op->vt->destroy(op);
    op->sched->nops--;
    free(op);
}

/* Frees `op` now, or, inside a (progress) callback, once curl_multi_perform has returned: curl
 * refuses curl_multi_remove_handle from its callbacks, and the op may be the one whose callback is
 * running. */
void op_free_safely(mx_sched *s, mx_op *op) {
    if (!s->in_callback) {
        op_free(op);
        return;
    }
    op->task = NULL;
    s->deferred[s->ndeferred++] = op;
}

/* ---- the loop ---------------------------------------------------------------------------- */

static void handle_interrupt(mx_sched *s);

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    /* The interrupt is handled here and now: the other waiting tasks are cancelled, and waits
     * that start after this (the <close> handlers this error runs) proceed. Left to the loop, a
     * Ctrl-C that came while C code ran inside a task (setting up a request, loading libcurl)
     * raised here first and was handled only at the cleanup's own wait, which it then cancelled
     * as older than the interrupt. */
    if (the_sched) handle_interrupt(the_sched);
    push_core_error(L, "interrupted", interrupt_message());
    lua_error(L);
}

/* lua_sethook is safe to call from a signal handler (lua.c does the same). */
static void arm_interrupt_hook(lua_State *L) {
    lua_sethook(L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static mx_task *pop_ready(mx_sched *s) {
    mx_task *t = s->ready_head;
    if (t) ready_unlink(s, t);
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
    if (!s->multi) return;
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

/* Cancels what waits when Ctrl-C came (only the REPL's line when it has a target). Waits that
 * start afterwards (a <close> handler releasing a lock) proceed; a second Ctrl-C exits. */
static void handle_interrupt(mx_sched *s) {
    if (!interrupted || s->interrupt_handled || s->interrupt_off) return;
    s->interrupt_handled = 1;
    s->interrupt_at = mx_now();
    for (mx_task *t = s->live; t; t = t->next)
        if ((t->state == T_WAITING || t->state == T_READY) &&
            (!s->interrupt_target || s->interrupt_target == t || interrupted != SIGINT))
            cancel_task_with(s, t, "interrupted", interrupt_message());
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
    if (s->multi) curl_multi_timeout(s->multi, &curl_ms);
    if (curl_ms >= 0 && (timeout < 0 || curl_ms < timeout)) timeout = curl_ms;
    if (timeout < 0 || timeout > 1000) timeout = 1000;
    struct curl_waitfd wfd[1 + MX_SCHED_MAX_WATCH];
    struct watch fired[1 + MX_SCHED_MAX_WATCH];
    struct watch *from[1 + MX_SCHED_MAX_WATCH];
    unsigned nfds = 0;
    if (s->watch.cb) from[nfds++] = &s->watch;
    for (int i = 0; i < s->nextra; i++)
        from[nfds++] = &s->extra[i];
    for (unsigned i = 0; i < nfds; i++)
        wfd[i] = (struct curl_waitfd){.fd = from[i]->fd, .events = CURL_WAIT_POLLIN, .revents = 0};
    if (!interrupted || s->interrupt_handled || s->interrupt_off) {
        if (s->multi) {
            curl_multi_poll(s->multi, nfds ? wfd : NULL, nfds, (int)timeout, NULL);
        } else {
            /* no transfer yet, so libcurl is not loaded: plain poll(); SIGINT interrupts it */
            struct pollfd pfd[1 + MX_SCHED_MAX_WATCH];
            for (unsigned i = 0; i < nfds; i++)
                pfd[i] = (struct pollfd){.fd = wfd[i].fd, .events = POLLIN, .revents = 0};
            if (poll(pfd, nfds, (int)timeout) > 0)
                for (unsigned i = 0; i < nfds; i++)
                    wfd[i].revents = (pfd[i].revents & POLLIN) ? CURL_WAIT_POLLIN : 0;
        }
    }
    collect_transfers(s);
    fire_timers(s);
    handle_interrupt(s);
    /* callbacks may add or remove watches: copy the ready ones first */
    unsigned nfired = 0;
    for (unsigned i = 0; i < nfds; i++)
        if (wfd[i].revents & CURL_WAIT_POLLIN) fired[nfired++] = *from[i];
    for (unsigned i = 0; i < nfired; i++)
        fired[i].cb(fired[i].ud);
}

/*
 * When nothing can ever wake a waiting task (no ready task, timer, transfer or watched fd), those
 * tasks fail with a "deadlock" error instead of hanging. Returns 1 when nothing is left to run.
 */
static int cancel_deadlocked(mx_sched *s) {
    if (s->ready_head || s->nheap > 0 || s->watch.cb || s->nextra > 0) return 0;
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
        if (s->nlive == 0 || cancel_deadlocked(s)) break;
        poll_once(s, -1);
    }
    return interrupted ? 1 : 0;
}

void mx_sched_run_until(lua_State *L, mx_task *t) {
    mx_sched *s = mx_sched_get(L);
    for (;;) {
        run_ready(s);
        if (mx_task_finished(t) || cancel_deadlocked(s)) break;
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

/* Delivers a finished op to L as (true, results...) and frees it. */
int deliver(lua_State *L, mx_op *op) {
    luaL_checkstack(L, 8, NULL);
    lua_pushboolean(L, 1);
    int n = op->vt->push ? op->vt->push(op, L) : 0;
    op_free(op);
    return n + 1;
}

/* Drives the loop until op is done, then pushes (flag, results...); returns their count. */
int block_on(lua_State *L, mx_op *op) {
    mx_sched *s = op->sched;
    op->blocking = 1;
    while (op->state == MX_OP_PENDING) {
        handle_interrupt(s);
        if (interrupted && s->interrupt_handled && op->started <= s->interrupt_at &&
            (!s->interrupt_target || s->current == s->interrupt_target || interrupted != SIGINT)) {
            op_free(op);
            lua_pushboolean(L, 0);
            push_core_error(L, "interrupted", interrupt_message());
            return 2;
        }
        run_ready(s);
        if (op->state != MX_OP_PENDING) break;
        if (cancel_deadlocked(s) && op->state == MX_OP_PENDING) {
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
    mx_op *op = mx_op_new(L, &sleep_vt, sizeof(struct sleep_op));
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
        if (t->op->describe) t->op->describe(t->op);
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

/* ---- setup ------------------------------------------------------------------------------- */

/*
 * SIGINT, SIGTERM, SIGHUP: a flag for the loop (waits end with an "interrupted" error, so
 * <close> handlers and cleanups run) and, like lua.c, a hook that raises in Lua code that is busy
 * computing. The process then exits with 128 + the signal.
 */
static void on_signal(int sig) {
    if (interrupted && the_sched && the_sched->interrupt_handled && !the_sched->interrupt_off) {
        /* a second signal while cleanups run: stop now */
        static const char msg[] = "\nmxdeploy: interrupted again, exiting without cleanup\n";
        ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)n;
        _exit(128 + sig);
    }
    if (!interrupted || sig != SIGINT) interrupted = sig; /* TERM/HUP outrank a Ctrl-C */
    if (!the_sched) return;
    if (the_sched->multi) curl_multi_wakeup(the_sched->multi);
    lua_State *running = the_sched->running;
    mx_task *target = the_sched->interrupt_target, *current = the_sched->current;
    if (sig != SIGINT) target = NULL; /* termination ends every task, not only the REPL's line */
    if (running && !the_sched->interrupt_off &&
        (!target || (current == target && running == target->co)))
        arm_interrupt_hook(running);
}

_Noreturn void mx_out_of_memory(void) {
    static const char msg[] = "mxdeploy: out of memory\n";
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    _exit(1);
}

void mx_sched_main_runs_script(lua_State *L) {
    mx_sched *s = mx_sched_get(L);
    s->main_runs_script = 1;
    s->running = s->L;
}

void mx_sched_interrupt(void) {
    on_signal(SIGINT);
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

int mx_sched_add_watch(mx_sched *s, int fd, void (*cb)(void *), void *ud) {
    if (s->nextra >= MX_SCHED_MAX_WATCH) return -1;
    s->extra[s->nextra++] = (struct watch){.fd = fd, .cb = cb, .ud = ud};
    return 0;
}

void mx_sched_remove_watch(mx_sched *s, int fd) {
    for (int i = 0; i < s->nextra; i++)
        if (s->extra[i].fd == fd) {
            s->extra[i] = s->extra[--s->nextra];
            return;
        }
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
    if (s->multi) curl_multi_cleanup(s->multi);
    if (the_sched == s) the_sched = NULL;
    free(s);
    *box = NULL;
    return 0;
}

mx_sched *mx_sched_create(lua_State *L) {
    if (the_sched) return the_sched;
    mx_sched *s = calloc(1, sizeof *s);
    if (!s) luaL_error(L, "not enough memory");
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    s->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    the_sched = s;
    /* Closed with the state: the box's __gc frees the scheduler. */
    mx_sched **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = s;
    lua_newtable(L);
    lua_pushcfunction(L, sched_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "mxdeploy.scheduler");
    mx_sched_register_task_type(L);
    lua_newtable(L);
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_setfield(L, LUA_REGISTRYINDEX, ERROR_MT_KEY);
    return s;
}

mx_sched *mx_sched_get(lua_State *L) {
    if (!the_sched) luaL_error(L, "mxdeploy: the scheduler was not created (mx_core_install)");
    return the_sched;
}

void mx_sched_handle_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* past `ulimit -f` a write fails with EFBIG (the download fails and its temporary file is
     * removed) instead of the signal killing the process with the file left behind */
    signal(SIGXFSZ, SIG_IGN);
}

void mx_sched_open(lua_State *L) {
    luaL_Reg funcs[] = {{"sleep", l_sleep},
                        {"now", l_now},
                        {"spawn", l_spawn},
                        {"wait_any", l_wait_any},
                        {"wait_all", l_wait_all},
                        {"current", l_current},
                        {"pending", l_pending},
                        {"set_error_metatable", l_set_error_mt},
                        {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
