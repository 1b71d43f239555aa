/* Per-host admission of HTTP transfers: see http_queue.h. */
#include "http_queue.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "redact.h"

struct gate;

struct mx_host_slot {
    struct mx_host_slot *next; /* all slots */
    char *origin;
    long running;             /* places held: transfers, and requests admitted not yet resumed */
    struct gate *head, *tail; /* queued requests, oldest first */
};

/* A queued request. It holds no copy of its URL: the string stays on the waiting task's stack
 * (pushed by mx_hostq_wait) while the request is queued, and is redacted into `what` only if asked
 * (mx.pending(), a timeout): at 4,096 queued tasks, redacting and formatting every request as it
 * queued was ~2.5K instructions each, for a text nobody read. */
struct gate {
    mx_op base;
    mx_host_slot *slot;
    struct gate *prev, *next;
    int queued;      /* in slot's queue */
    int admitted;    /* holds a place (handed over by mx_hostq_release) */
    int consumed;    /* the place went on to the transfer */
    const char *url; /* the request's URL, on the waiting task's stack */
    char method[16];
};

static void admit(mx_host_slot *s);

static mx_host_slot *slots;
static long current_cap = 64;

mx_host_slot *mx_hostq_slot(const char *url) {
    const char *sep = strstr(url, "://");
    const char *host = sep ? sep + 3 : url;
    size_t len = strcspn(host, "/?#");
    const char *at = memchr(host, '@', len); /* user info is not part of the origin */
    char key[512];
    size_t n = 0;
    for (const char *c = url; c < host && n < sizeof key - 1; c++)
        key[n++] = (char)tolower((unsigned char)*c);
    if (at) {
        len -= (size_t)(at + 1 - host);
        host = at + 1;
    }
    for (size_t i = 0; i < len && n < sizeof key - 1; i++)
        key[n++] = (char)tolower((unsigned char)host[i]);
    key[n] = '\0';
    for (mx_host_slot *s = slots; s; s = s->next)
        if (strcmp(s->origin, key) == 0) return s;
    mx_host_slot *s = calloc(1, sizeof *s);
    if (!s) mx_out_of_memory();
    s->origin = strdup(key);
    if (!s->origin) mx_out_of_memory();
    s->next = slots;
    slots = s;
    return s;
}

int mx_hostq_try_acquire(mx_host_slot *slot, long cap) {
    current_cap = cap;
    if (slot->head) admit(slot);                      /* drops requests whose wait already ended */
    if (slot->running >= cap || slot->head) return 0; /* first come, first served */
    slot->running++;
    return 1;
}

static void unlink_gate(struct gate *g) {
    if (!g->queued) return;
    mx_host_slot *s = g->slot;
    if (g->prev)
        g->prev->next = g->next;
    else
        s->head = g->next;
    if (g->next)
        g->next->prev = g->prev;
    else
        s->tail = g->prev;
    g->prev = g->next = NULL;
    g->queued = 0;
}

/* Hands free places to queued requests, oldest first; requests whose wait already ended (their
 * timer fired) are skipped. */
static void admit(mx_host_slot *s) {
    while (s->head && s->running < current_cap) {
        struct gate *g = s->head;
        unlink_gate(g);
        if (g->base.state != MX_OP_PENDING) continue;
        g->admitted = 1;
        s->running++;
        mx_op_complete(&g->base);
    }
}

void mx_hostq_release(mx_host_slot *slot) {
    slot->running--;
    admit(slot);
}

void mx_hostq_set_cap(long cap) {
    current_cap = cap;
    for (mx_host_slot *s = slots; s; s = s->next)
        admit(s);
}

/* "METHOD redacted-url" (cut to fit) into `what`, once. */
static void gate_describe(mx_op *op) {
    struct gate *g = (struct gate *)op;
    if (op->what[0]) return;
    char shown[2048];
    mx_redact_url(g->url, shown, sizeof shown);
    snprintf(op->what, sizeof op->what, "%s %.140s", g->method, shown); /* cut to fit */
}

static int gate_push(mx_op *op, lua_State *L) {
    struct gate *g = (struct gate *)op;
    if (g->admitted) {
        g->consumed = 1; /* the continuation starts the transfer, which releases the place */
        lua_pushlightuserdata(L, g->slot);
        lua_pushnumber(L, mx_now() - op->started);
        return 2;
    }
    /* the request's timeout passed while it waited for a place: like a transfer timing out,
     * but it provably never reached the server */
    gate_describe(op);
    char msg[640];
    snprintf(msg, sizeof msg,
             "timed out after %.1f s waiting for one of the %ld connections to %s (never sent)",
             mx_now() - op->started, current_cap, g->slot->origin);
    lua_pushnil(L);
    lua_createtable(L, 0, 5);
    lua_pushstring(L, "timeout");
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "reached");
    lua_pushstring(L, g->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, op->what + strlen(g->method) + 1); /* the redacted URL (may be cut) */
    lua_setfield(L, -2, "url");
    return 2;
}

static void gate_cancel(mx_op *op) {
    unlink_gate((struct gate *)op);
}

static void gate_destroy(mx_op *op) {
    struct gate *g = (struct gate *)op;
    unlink_gate(g);
    if (g->admitted && !g->consumed) mx_hostq_release(g->slot); /* cancelled once admitted */
}

static const struct mx_op_vtable gate_vt = {"http", gate_push, gate_cancel, gate_destroy, NULL};

int mx_hostq_wait(lua_State *L, mx_sched *s, mx_host_slot *slot, double timeout, const char *method,
                  const char *url, lua_KFunction k) {
    (void)s;
    (void)url;
    struct gate *g = (struct gate *)mx_op_new(L, &gate_vt, sizeof *g);
    g->slot = slot;
    g->base.describe = gate_describe;
    size_t m = strlen(method);
    if (m >= sizeof g->method) m = sizeof g->method - 1;
    memcpy(g->method, method, m);
    g->method[m] = '\0';
    /* the URL string itself, kept on this stack for the wait (the request table at stack[1] may be
     * changed meanwhile by other tasks; the string on the stack cannot) */
    lua_getfield(L, 1, "url");
    g->url = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
    g->prev = slot->tail;
    if (slot->tail)
        slot->tail->next = g;
    else
        slot->head = g;
    slot->tail = g;
    g->queued = 1;
    if (timeout > 0) mx_op_set_timer(&g->base, g->base.started + timeout);
    return mx_await(L, &g->base, k);
}
