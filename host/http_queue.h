/*
 * Per-host admission of HTTP transfers: at most `cap` (the connection cap, mx.configure's
 * max_host_connections) transfers per origin are inside curl's multi at once; the others wait here
 * in a FIFO queue, each as a small op (no easy handle, no buffers). Before, every waiting request
 * held an easy handle inside the multi, and curl walked them all on each change (4,096 waiting
 * tasks: curl_multi_remove_handle was 26% of the time, and ~20 KB each).
 *
 * A queued wait is an ordinary scheduler op: cancel, Ctrl-C and mx.timeout end it like any wait,
 * and the request's own `timeout` covers the time queued (the transfer gets what is left).
 */
#ifndef MX_HTTP_QUEUE_H
#define MX_HTTP_QUEUE_H

#include <lua.h>

#include "scheduler.h"

typedef struct mx_host_slot mx_host_slot;

/* The slot of url's origin ("scheme://host:port" as the URL spells it, case-folded); created on
 * first use and kept for the process. */
mx_host_slot *mx_hostq_slot(const char *url);

/* Takes a place for a transfer when fewer than cap are running: 1, else 0. */
int mx_hostq_try_acquire(mx_host_slot *slot, long cap);

/* Queues the calling task for a place and waits (mx_await with continuation k; stack[1] is kept).
 * In k, after mx_await_results: (slot as a light userdata, seconds queued) = a place is now held
 * and must be released; (nil, error table) = `timeout` seconds (> 0; 0 = none) passed first.
 * method names the request in mx.pending() and the error, with the `url` field of the request
 * table at stack[1], which is pushed and held on the stack while queued and redacted only when
 * asked for; the `url` argument is not read. */
int mx_hostq_wait(lua_State *L, mx_sched *s, mx_host_slot *slot, double timeout, const char *method,
                  const char *url, lua_KFunction k);

/* Gives a place back: to the first request still queued, else frees it. */
void mx_hostq_release(mx_host_slot *slot);

/* The cap changed: admits queued requests up to the new cap. */
void mx_hostq_set_cap(long cap);

#endif
