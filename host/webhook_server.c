/*
 * A small HTTP receiver for webhook deliveries, for `mxdeploy.core` (bindings/webhooks.lua builds
 * mx.webhooks.serve on it):
 *
 *   core.webhook_listen{address = "127.0.0.1", port = 0, max_body = 1 MiB} -> server
 *   server:next([timeout]) -> {id=, method=, path=, headers={lowercase=value}, body=, remote=}
 *                             or nil (timeout, or the server was closed); waits like core.sleep
 *   server:respond(id, status [, body])   answers delivery `id` (each exactly once)
 *   server:port(), server:close()
 *
 * libmicrohttpd serves each connection on its own thread. A complete request is queued, the
 * scheduler is woken through a pipe it watches (mx_sched_add_watch), and the connection thread
 * waits until Lua answers it (or 30 s pass: 503), so the verdict (e.g. 401 for a bad signature)
 * is the HTTP answer. Lua code runs only on the scheduler's thread.
 */
#define _GNU_SOURCE
#include "webhook_server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lauxlib.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mhd_api.h" /* libmicrohttpd, loaded when a server starts */
#include "scheduler.h"
#include "thread_signals.h"

#define SERVER_MT "mxdeploy.webhook_server"
#define ANSWER_TIMEOUT 30 /* seconds a connection waits for Lua's verdict */

struct delivery {
    struct delivery *next;
    long id;
    char method[16];
    char *path;
    char *headers; /* "name\0value\0" pairs, names lowercased */
    size_t headers_len;
    char *body;
    size_t body_len, body_cap;
    int too_large, refused_early, queued, answered, status;
    char *answer;
    size_t answer_len;
    char remote[64];
};

struct whsrv {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct MHD_Daemon *d;
    int pipe[2];
    int closing;
    size_t max_body;
    long next_id;
    struct delivery *pending, *pending_tail; /* complete, not yet taken by Lua */
    struct delivery *inflight;               /* taken by Lua, not yet answered */
    mx_sched *sched;
    mx_op *waiter;
    unsigned port;
};

struct box {
    struct whsrv *srv;
};

static void delivery_free(struct delivery *d) {
    if (!d) return;
    free(d->path);
    free(d->headers);
    free(d->body);
    free(d->answer);
    free(d);
}

static void wake(struct whsrv *s) {
    char c = 1;
    ssize_t r = write(s->pipe[1], &c, 1); /* a full pipe already wakes the loop */
    (void)r;
}

static int add_bytes(char **buf, size_t *len, size_t *cap, const char *p, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1)
            c *= 2;
        char *b = realloc(*buf, c);
        if (!b) return -1;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
    (void)kind;
    struct delivery *d = cls;
    size_t kl = strlen(key), vl = value ? strlen(value) : 0;
    char *k = malloc(kl + 1);
    if (!k) return MHD_NO;
    for (size_t i = 0; i <= kl; i++)
        k[i] = (char)tolower((unsigned char)key[i]);
    size_t needed = d->headers_len + kl + vl + 2;
    char *b = realloc(d->headers, needed);
    if (!b) {
        free(k);
        return MHD_NO;
    }
    d->headers = b;
    memcpy(b + d->headers_len, k, kl + 1);
    memcpy(b + d->headers_len + kl + 1, value ? value : "", vl + 1);
    d->headers_len = needed;
    free(k);
    return MHD_YES;
}

static enum MHD_Result answer(struct MHD_Connection *c, int status, const char *body, size_t len) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    if (len) MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result payload_too_large(struct MHD_Connection *c) {
    static const char m[] = "{\"error\":\"payload too large\"}";
    return answer(c, 413, m, sizeof m - 1);
}

/* Whether a Content-Length value says more than max bytes (digits only; anything else is
 * left to libmicrohttpd, which refuses a malformed length itself). */
static int body_over(const char *cl, size_t max) {
    unsigned long long n = 0;
    if (!*cl) return 0;
    for (const char *p = cl; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        if (n > (ULLONG_MAX - 9) / 10) return 1;
        n = n * 10 + (unsigned)(*p - '0');
    }
    return n > max;
}

static void unlink_from(struct delivery **list, struct delivery *d) {
    for (struct delivery **p = list; *p; p = &(*p)->next)
        if (*p == d) {
            *p = d->next;
            return;
        }
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls) {
    (void)version;
    struct whsrv *s = cls;
    struct delivery *d = *con_cls;
    if (!d) {
        d = calloc(1, sizeof *d);
        if (!d) return MHD_NO;
        snprintf(d->method, sizeof d->method, "%s", method);
        d->path = strdup(url ? url : "/");
        if (!d->path) {
            free(d);
            return MHD_NO;
        }
        MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, d);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            const struct sockaddr *sa = ci->client_addr;
            if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, d->remote,
                          sizeof d->remote);
            else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, d->remote,
                          sizeof d->remote);
        }
        *con_cls = d;
        /* a declared length over the cap is answered before its body is read: otherwise the
         * connection's thread reads (and drops) a body of any size until the client stops */
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && body_over(cl, s->max_body)) {
            d->too_large = d->refused_early = 1;
            return payload_too_large(c);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (d->body_len + *upload_data_size > s->max_body)
            d->too_large = 1;
        else if (add_bytes(&d->body, &d->body_len, &d->body_cap, upload_data, *upload_data_size))
            d->too_large = 1;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (d->refused_early) return MHD_YES; /* its answer is queued already */
    if (d->too_large) return payload_too_large(c);
    if (!d->body) d->body = strdup("");
    pthread_mutex_lock(&s->mu);
    if (s->closing) {
        pthread_mutex_unlock(&s->mu);
        return answer(c, 503, "", 0);
    }
    d->id = ++s->next_id;
    d->queued = 1;
    if (s->pending_tail)
        s->pending_tail->next = d;
    else
        s->pending = d;
    s->pending_tail = d;
    wake(s);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ANSWER_TIMEOUT;
    while (!d->answered && !s->closing)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT) break;
    int status = d->answered ? d->status : 503;
    /* unlink wherever it is now: still pending, or taken by Lua and unanswered */
    struct delivery *prev = NULL;
    for (struct delivery *p = s->pending; p; prev = p, p = p->next)
        if (p == d) {
            if (prev)
                prev->next = d->next;
            else
                s->pending = d->next;
            if (s->pending_tail == d) s->pending_tail = prev;
            break;
        }
    unlink_from(&s->inflight, d);
    char *body = d->answered ? d->answer : NULL;
    size_t len = d->answered ? d->answer_len : 0;
    d->answer = NULL;
    pthread_mutex_unlock(&s->mu);
    enum MHD_Result ret = answer(c, status, body ? body : "", len);
    free(body);
    return ret;
}

/* Frees a connection's delivery once MHD is done with it (also when the client went away). */
static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    delivery_free(*con_cls);
    *con_cls = NULL;
}

/* ---- scheduler side --------------------------------------------------------------------- */

struct recv_op {
    mx_op base;
    struct whsrv *srv;
};

static void on_wakeup(void *ud) {
    struct whsrv *s = ud;
    char buf[256];
    while (read(s->pipe[0], buf, sizeof buf) > 0) {
    }
    pthread_mutex_lock(&s->mu);
    int have = s->pending != NULL;
    pthread_mutex_unlock(&s->mu);
    if (have && s->waiter) mx_op_complete(s->waiter);
}

/* A delivery's request, copied out under the lock: the Lua table is built from it after the lock
 * is released (building it may raise a memory error, and the connection thread may free the
 * delivery once its answer times out). */
struct delivery_copy {
    long id;
    char method[16], remote[64];
    char *path, *headers, *body; /* all in `block` */
    size_t headers_len, body_len;
    char block[];
};

static struct delivery_copy *copy_delivery(const struct delivery *d) {
    size_t path_len = strlen(d->path) + 1;
    struct delivery_copy *c = malloc(sizeof *c + path_len + d->headers_len + d->body_len + 1);
    if (!c) return NULL;
    c->id = d->id;
    memcpy(c->method, d->method, sizeof c->method);
    memcpy(c->remote, d->remote, sizeof c->remote);
    c->path = c->block;
    memcpy(c->path, d->path, path_len);
    c->headers = c->path + path_len;
    if (d->headers_len) memcpy(c->headers, d->headers, d->headers_len);
    c->headers_len = d->headers_len;
    c->body = c->headers + d->headers_len;
    if (d->body_len) memcpy(c->body, d->body, d->body_len);
    c->body_len = d->body_len;
    return c;
}

/* Pushes a copied delivery as a table (the caller holds no lock and frees the copy). */
static int push_copy(lua_State *L) {
    const struct delivery_copy *d = lua_touserdata(L, 1);
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, d->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, d->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, d->path);
    lua_setfield(L, -2, "path");
    lua_pushlstring(L, d->body, d->body_len);
    lua_setfield(L, -2, "body");
    lua_pushstring(L, d->remote);
    lua_setfield(L, -2, "remote");
    lua_newtable(L);
    for (size_t off = 0; off < d->headers_len;) {
        const char *k = d->headers + off;
        const char *v = k + strlen(k) + 1;
        lua_getfield(L, -1, k);
        if (lua_isstring(L, -1)) { /* a repeated header: comma-joined, as HTTP defines */
            lua_pushliteral(L, ", ");
            lua_pushstring(L, v);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushstring(L, v);
        }
        lua_setfield(L, -2, k);
        off += strlen(k) + strlen(v) + 2;
    }
    lua_setfield(L, -2, "headers");
    return 1;
}

/* Moves the first pending delivery to the in-flight list and pushes it as a table (or nil). */
static int push_next(struct whsrv *s, lua_State *L) {
    pthread_mutex_lock(&s->mu);
    struct delivery *d = s->pending;
    if (!d) {
        pthread_mutex_unlock(&s->mu);
        lua_pushnil(L);
        return 1;
    }
    s->pending = d->next;
    if (!s->pending) s->pending_tail = NULL;
    d->next = s->inflight;
    s->inflight = d;
    struct delivery_copy *c = copy_delivery(d);
    pthread_mutex_unlock(&s->mu);
    /* without memory it stays in flight unanswered: its sender gets the timeout's 503 */
    if (!c) return luaL_error(L, "not enough memory for a webhook delivery");
    lua_pushcfunction(L, push_copy);
    lua_pushlightuserdata(L, c);
    int rc = lua_pcall(L, 1, 1, 0);
    free(c);
    if (rc != LUA_OK) return lua_error(L);
    return 1;
}

static int recv_push(mx_op *op, lua_State *L) {
    struct recv_op *r = (struct recv_op *)op;
    if (!r->srv) {
        lua_pushnil(L);
        return 1;
    }
    if (r->srv->waiter == op) r->srv->waiter = NULL;
    return push_next(r->srv, L);
}

static void recv_cancel(mx_op *op) {
    struct recv_op *r = (struct recv_op *)op;
    if (r->srv && r->srv->waiter == op) r->srv->waiter = NULL;
}

static const struct mx_op_vtable recv_vt = {"webhook", recv_push, recv_cancel, recv_cancel, NULL};

static struct whsrv *check_open(lua_State *L) {
    struct box *b = luaL_checkudata(L, 1, SERVER_MT);
    if (!b->srv) luaL_error(L, "webhook receiver is closed");
    return b->srv;
}

static int next_k(lua_State *L, int status, lua_KContext base) {
    (void)status;
    return mx_await_results(L, base);
}

static int l_next(lua_State *L) {
    struct box *b = luaL_checkudata(L, 1, SERVER_MT);
    double timeout = luaL_optnumber(L, 2, -1);
    if (!b->srv) {
        lua_pushnil(L);
        return 1;
    }
    struct whsrv *s = b->srv;
    pthread_mutex_lock(&s->mu);
    int have = s->pending != NULL;
    pthread_mutex_unlock(&s->mu);
    if (have) return push_next(s, L);
    if (s->waiter) return luaL_error(L, "another task already waits on this webhook receiver");
    struct recv_op *r = (struct recv_op *)mx_op_new(L, &recv_vt, sizeof *r);
    r->srv = s;
    s->waiter = &r->base;
    snprintf(r->base.what, sizeof r->base.what, "webhook delivery on port %u", s->port);
    if (timeout >= 0) mx_op_set_timer(&r->base, r->base.started + timeout);
    lua_settop(L, 0);
    return mx_await(L, &r->base, next_k);
}

static int l_respond(lua_State *L) {
    struct whsrv *s = check_open(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    lua_Integer status = luaL_checkinteger(L, 3);
    luaL_argcheck(L, status >= 100 && status <= 599, 3, "HTTP status expected");
    size_t len = 0;
    const char *body = luaL_optlstring(L, 4, "", &len);
    char *copy = malloc(len + 1);
    if (!copy) return luaL_error(L, "out of memory");
    memcpy(copy, body, len + 1);
    pthread_mutex_lock(&s->mu);
    struct delivery *d = s->inflight;
    while (d && d->id != id)
        d = d->next;
    if (d && !d->answered) {
        d->answered = 1;
        d->status = (int)status;
        d->answer = copy;
        d->answer_len = len;
        copy = NULL;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    lua_pushboolean(L, copy == NULL);
    free(copy);
    return 1;
}

static int l_port(lua_State *L) {
    struct whsrv *s = check_open(L);
    lua_pushinteger(L, s->port);
    return 1;
}

static void server_close(struct box *b) {
    struct whsrv *s = b->srv;
    if (!s) return;
    b->srv = NULL;
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->d); /* joins the connection threads */
    mx_sched_remove_watch(s->sched, s->pipe[0]);
    if (s->waiter) {
        ((struct recv_op *)s->waiter)->srv = NULL;
        mx_op_complete(s->waiter); /* wakes the waiting task with nil */
        s->waiter = NULL;
    }
    close(s->pipe[0]);
    close(s->pipe[1]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

static int l_close(lua_State *L) {
    server_close(luaL_checkudata(L, 1, SERVER_MT));
    return 0;
}

static int l_listen(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "address");
    const char *address = luaL_optstring(L, -1, "127.0.0.1");
    lua_getfield(L, 1, "port");
    lua_Integer port = luaL_optinteger(L, -1, 0);
    lua_getfield(L, 1, "max_body");
    lua_Integer max_body = luaL_optinteger(L, -1, 1024 * 1024);
    luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port must be 0 to 65535");
    luaL_argcheck(L, max_body > 0, 1, "max_body must be positive");
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, address, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, address, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        return luaL_error(L,
                          "bad argument #1 to 'webhook_listen' (address: IP address "
                          "expected, got '%s')",
                          address);
    }
    struct box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->srv = NULL;
    luaL_setmetatable(L, SERVER_MT);
    struct whsrv *s = calloc(1, sizeof *s);
    if (!s) return luaL_error(L, "out of memory");
    if (pipe2(s->pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        free(s);
        return luaL_error(L, "webhook receiver: pipe: %s", strerror(errno));
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->max_body = (size_t)max_body;
    s->sched = mx_sched_get(L);
    sigset_t old; /* the server's threads never take the process's signals (thread_signals.h) */
    mx_block_process_signals(&old);
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_NOTIFY_COMPLETED,
                            completed, NULL, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!s->d || mx_sched_add_watch(s->sched, s->pipe[0], on_wakeup, s) != 0) {
        int err = errno;
        if (s->d) MHD_stop_daemon(s->d);
        close(s->pipe[0]);
        close(s->pipe[1]);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return luaL_error(L, "webhook receiver: cannot listen on %s:%d%s%s", address, (int)port,
                          err ? ": " : "", err ? strerror(err) : "");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : (unsigned)port;
    b->srv = s;
    return 1;
}

static int l_gc(lua_State *L) {
    server_close(luaL_checkudata(L, 1, SERVER_MT));
    return 0;
}

void mx_webhook_open(lua_State *L) {
    if (luaL_newmetatable(L, SERVER_MT)) {
        static const luaL_Reg methods[] = {{"next", l_next},
                                           {"respond", l_respond},
                                           {"port", l_port},
                                           {"close", l_close},
                                           {NULL, NULL}};
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_listen);
    lua_setfield(L, -2, "webhook_listen");
}
