/*
 * The scheduler: one thread, one curl multi handle, one timer heap, and one loop that is the only
 * place tasks are resumed.
 *
 * A C function that waits creates an operation (mx_op), then calls mx_await(). Inside a task (and
 * wherever yielding is possible) that yields the private sentinel and the op to the scheduler,
 * which resumes the task when the op completes. Where yielding is impossible (a metamethod called
 * from C, a sort comparator, a require'd chunk, plain lua5.4) mx_await drives the loop until the op
 * is done, so the call blocks correctly instead of failing. Every op has a cancel hook that runs
 * however the wait ends (done, timeout, error, cancel, interrupt).
 */
#ifndef MX_SCHEDULER_H
#define MX_SCHEDULER_H

#include "curl_api.h"
#include <lua.h>

typedef struct mx_sched mx_sched;
typedef struct mx_op mx_op;
typedef struct mx_task mx_task;

enum mx_op_state { MX_OP_PENDING, MX_OP_DONE };

struct mx_op_vtable {
    const char *kind;
    /* Pushes the results (after the scheduler's `true`); returns how many. */
    int (*push)(mx_op *op, lua_State *L);
    /* Stops the underlying work (remove transfer, timer, ...) before the op is freed. */
    void (*cancel)(mx_op *op);
    /* Frees what the op owns (not the op struct itself). */
    void (*destroy)(mx_op *op);
    /* A finished curl transfer owned by this op (only for ops that added an easy handle). */
    void (*curl_done)(mx_op *op, CURLcode result);
};

struct mx_op {
    const struct mx_op_vtable *vt;
    mx_sched *sched;
    enum mx_op_state state;
    mx_task *task;  /* the task waiting on it, once it is awaited from a task */
    int blocking;   /* awaited by a blocking (non-yielding) call */
    double started; /* mx_now() at creation */
    double due;     /* timers: when it fires */
    int heap_index; /* timers: position in the heap, -1 when not in it */
    char what[160]; /* for mx.pending(): URL, "2.0 s", ... */
    /* Optional: fills `what` when it is asked for (mx.pending()), for ops that would spend more
     * writing it at creation than is ever read (a request queued for a connection). */
    void (*describe)(mx_op *op);
};

/* Creates the scheduler of this Lua state (one per process; owned by the state, freed when it
 * closes). It installs nothing: see the two calls below. */
mx_sched *mx_sched_create(lua_State *L);
/* Replaces coroutine.resume/wrap/yield with versions that pass scheduler waits through. */
void mx_sched_install_coroutine_overrides(lua_State *L);
/* Handles SIGINT, SIGTERM and SIGHUP (see mx_sched_interrupt) and ignores SIGXFSZ. */
void mx_sched_handle_signals(void);
/* The scheduler created by mx_sched_create (raises a Lua error when there is none). */
mx_sched *mx_sched_get(lua_State *L);
/* The curl multi handle, created on the first call, which loads libcurl (mx_curl_load); NULL when
 * libcurl cannot be loaded (mx_curl_error() says why). */
CURLM *mx_sched_multi(mx_sched *s);
/* The multi handle if a transfer ever started, else NULL (libcurl possibly not loaded). */
CURLM *mx_sched_multi_loaded(mx_sched *s);
double mx_now(void);

/* Allocates a zeroed op of `size` bytes (>= sizeof(mx_op)) for the scheduler of L; raises a Lua
 * error in L when memory runs out. */
mx_op *mx_op_new(lua_State *L, const struct mx_op_vtable *vt, size_t size);
/* Marks an op done and wakes whoever waits on it. */
void mx_op_complete(mx_op *op);
/* Arms a timer: the op completes at `due` (timer ops). */
void mx_op_set_timer(mx_op *op, double due);
void mx_op_clear_timer(mx_op *op);

/*
 * Waits for `op`. Results reach the continuation `k` as: stack[base+1] = ok flag,
 * then results (ok) or the error object (not ok). Call mx_await_results(L, base) in `k`.
 * `ctx` must be the stack top at the call (base).
 */
int mx_await(lua_State *L, mx_op *op, lua_KFunction k);
/* In a continuation: raises the error or returns the number of results left on the stack. */
int mx_await_results(lua_State *L, lua_KContext base);

/* Runs the loop until every task has finished. Returns 0, or 1 when interrupted. */
int mx_sched_run(lua_State *L);

/* Runs the loop until task t has finished (other tasks progress meanwhile). */
void mx_sched_run_until(lua_State *L, mx_task *t);
/* One turn of the loop: resume ready tasks, then wait (at most max_ms) for I/O and timers. */
void mx_sched_step(lua_State *L, long max_ms);
/* Whether Ctrl-C cancels tasks at all (the REPL's prompt turns it off: it clears the line). */
void mx_sched_interrupt_cancels(int yes);
/* Limits what Ctrl-C cancels to one task (the REPL's running line); NULL = every task. */
void mx_sched_set_interrupt_target(mx_task *t);

/* Spawns a task running the function at stack[-nargs-1] with nargs arguments; pushes the task. */
mx_task *mx_sched_spawn(lua_State *L, int nargs);
/* With the finished task's userdata at idx: pushes its results and returns their count, or
 * raises its error (with the task's traceback). */
int mx_task_push_outcome(lua_State *L, int idx);
int mx_task_finished(const mx_task *t);

/* The main Lua state of the scheduler. */
lua_State *mx_sched_state(mx_sched *s);
/* An idle thread for protected callbacks from C (progress); NULL while one is running. */
lua_State *mx_sched_callback_thread(mx_sched *s);
/* lua_pcall on the callback thread (function and nargs pushed on it); waits inside fail. */
int mx_sched_callback(mx_sched *s, int nargs);

/* Extra file descriptor the loop watches (the REPL's stdin). cb runs on the main Lua state. */
void mx_sched_watch_fd(mx_sched *s, int fd, void (*cb)(void *ud), void *ud);
/* More watched descriptors (a webhook receiver's wakeup pipe): at most MX_SCHED_MAX_WATCH;
 * returns -1 when full. While any is watched, waiting tasks are not a deadlock. */
#define MX_SCHED_MAX_WATCH 8
int mx_sched_add_watch(mx_sched *s, int fd, void (*cb)(void *ud), void *ud);
void mx_sched_remove_watch(mx_sched *s, int fd);

/* As Ctrl-C: cancel every task with an "interrupted" error (SIGTERM and SIGHUP do the same). */
void mx_sched_interrupt(void);
/* The signal that interrupted (SIGINT, SIGTERM, SIGHUP), 0 when none: exit with 128 + it. */
int mx_sched_interrupted(void);
/* For stock lua5.4: the main thread runs the script, so Ctrl-C may interrupt it there. */
void mx_sched_main_runs_script(lua_State *L);
void mx_sched_clear_interrupt(void);

/* Where no Lua error can report a failed allocation: one line on stderr, exit 1 (never abort(),
 * whose core dump would hold the credentials). */
_Noreturn void mx_out_of_memory(void);

/* Tasks that failed with nobody waiting: prints them to stderr, returns how many. */
int mx_sched_report_unobserved(lua_State *L);

/* Opens the scheduler part of `mxdeploy.core` into the table at the stack top. */
void mx_sched_open(lua_State *L);

#endif
