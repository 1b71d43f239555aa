/*
 * What the scheduler's files share (not part of the core's interface, see scheduler.h):
 * scheduler.c runs the loop, timers, ops and waits; scheduler_tasks.c keeps tasks and joins;
 * scheduler_coroutines.c replaces coroutine.resume/wrap/yield so user coroutines can wait.
 */
#ifndef MX_SCHEDULER_INTERNAL_H
#define MX_SCHEDULER_INTERNAL_H

#include "scheduler.h"

#define TASK_MT "mxdeploy.task"
#define ERROR_MT_KEY "mxdeploy.error_mt"

/* The address yielded as the first value by a waiting call; nothing else can yield it. */
extern const char mx_sched_sentinel;
#define SENTINEL ((void *)&mx_sched_sentinel)

enum task_state { T_READY, T_WAITING, T_RUNNING, T_DONE, T_FAILED, T_CANCELLED };
enum resume_kind { R_START, R_OP, R_YIELD, R_ERROR };

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
    mx_task *ready_next, *ready_prev; /* the ready queue, while in_ready */
    int in_ready;
    mx_task *prev, *next;   /* live (unfinished or unobserved) tasks */
    struct waiter *waiters; /* join ops waiting for this task */
    int nwaiters, capwaiters;
};

/* A join op waiting for a task, and the task's place in that join's list. */
struct waiter {
    mx_op *op;
    int index;
};

struct watch {
    int fd;
    void (*cb)(void *);
    void *ud;
};

struct mx_sched {
    lua_State *L; /* main state */
    CURLM *multi; /* created with the first transfer (libcurl loads then): see mx_sched_multi */
    mx_op **heap;
    int nheap, capheap; /* capheap >= nops: arming a timer never allocates */
    int nops;           /* ops allocated and not yet freed */
    mx_task *ready_head, *ready_tail;
    mx_task *live;
    int nlive, next_id;
    mx_task *current;
    struct watch watch;
    struct watch extra[MX_SCHED_MAX_WATCH]; /* mx_sched_add_watch (webhook receivers) */
    int nextra;
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

/* scheduler.c */
void push_core_error(lua_State *L, const char *kind, const char *message);
int is_error_kind(lua_State *L, int idx, const char *kind);
void make_ready(mx_sched *s, mx_task *t, enum resume_kind how);
void ready_unlink(mx_sched *s, mx_task *t);
void op_free(mx_op *op);
void op_free_safely(mx_sched *s, mx_op *op);
int deliver(lua_State *L, mx_op *op);
int block_on(lua_State *L, mx_op *op);

/* scheduler_tasks.c */
void resume_task(mx_sched *s, mx_task *t);
void cancel_task_with(mx_sched *s, mx_task *t, const char *kind, const char *message);
void mx_sched_register_task_type(lua_State *L);
int l_spawn(lua_State *L);
int l_wait_any(lua_State *L);
int l_wait_all(lua_State *L);

#endif
