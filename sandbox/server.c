/* The sandbox HTTP server: see server.h. */
#include "server.h"
#include "idle.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <microhttpd.h>

#include "answer.h"
#include "buf.h"
#include "redact.h"
#include "thread_signals.h"
#include "webhook_delivery.h"

#define MEM_BODY_MAX (1024 * 1024) /* larger bodies (and every multipart body) go to a file */
#define STACK_SIZE (512 * 1024)
#define CONN_LIMIT 4096
#define MAX_IDLE 1024    /* idle connections kept per listener (a quarter of CONN_LIMIT) */
#define IDLE_TIMEOUT 30u /* seconds a connection may stay silent (opts.idle_timeout) */
#define MAX_DELAY 600.0
#define POOL_THREADS 4 /* per listener; the app runs one request at a time (its lock) anyway */

struct mx_sbserver;

struct listener {
    struct mx_sbserver *srv;
    const char *name; /* "api" | "files" */
    struct MHD_Daemon *d;
    struct mx_idle idle;
};

struct rq;

struct mx_sbserver {
    pthread_mutex_t mu;
    pthread_mutex_t stop_mu; /* guards stopping and sleepers; stop_cv wakes the waker */
    pthread_cond_t stop_cv;
    int stopping;
    struct rq *sleepers; /* suspended connections whose answer waits for its simulated delay */
    pthread_t waker;     /* resumes them when their time comes (and all of them on stop) */
    int waker_started;
    lua_State *L;
    int app_ref;
    struct listener api, files;
    char url[64], files_url[64];
    char *tls_cert, *tls_key;           /* PEM contents; MHD keeps pointers to them while it runs */
    struct mx_sbdeliveries *deliveries; /* webhook deliveries being sent */
    unsigned idle_timeout;              /* seconds */
};

/* Per-request state, created by the URI log callback. */
struct answer;

struct rq {
    char *uri; /* raw request target, path + "?" + query */
    int started;
    struct answer *held;      /* an answer waiting for its delay (connection suspended) */
    double wake;              /* when it is due (CLOCK_MONOTONIC seconds) */
    struct MHD_Connection *c; /* for the waker */
    struct rq *next_sleeper;  /* in srv->sleepers */
    char *mem;
    size_t mem_len, mem_cap;
    int fd; /* temp file or -1 */
    char tmppath[256];
    size_t size;
    int write_failed;
};

/* ---------- the sandbox's Lua state ---------- */

static int native_now(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + ts.tv_nsec / 1e9);
    return 1;
}

/* A member name the request log hides (sandbox/request_log.lua): lowercased and without "-" and
 * "_", it holds one of these words. */
static int log_secret_member(const char *name, size_t n) {
    static const char *const words[] = {"apikey",   "auth",   "token",  "secret",
                                        "password", "cookie", "session"};
    char small[256];
    char *norm = n < sizeof small ? small : malloc(n + 1);
    if (!norm) return 1; /* no memory to look: hide it */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (name[i] != '-' && name[i] != '_')
            norm[k++] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    norm[k] = '\0';
    int secret = 0;
    for (size_t w = 0; w < sizeof words / sizeof *words && !secret; w++)
        secret = strstr(norm, words[w]) != NULL;
    if (norm != small) free(norm);
    return secret;
}

/* native.redact_members(body): the request log's copy of a JSON body, with the values of
 * secret-named members and of a "headers" array's "value" members replaced by "<redacted>"
 * (host/redact.c's walk, which --trace=body uses with its own words and "***"). */
static int native_redact_members(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    struct buf out = {0};
    mx_redact_json_members(&out, s, n, log_secret_member, "<redacted>");
    if (out.failed) {
        buf_wipe_free(&out);
        return luaL_error(L, "not enough memory to redact a logged body");
    }
    lua_pushlstring(L, out.p ? out.p : "", out.len);
    buf_wipe_free(&out);
    return 1;
}

static int luaopen_native(lua_State *L) {
    lua_newtable(L);
    lua_pushcfunction(L, native_now);
    lua_setfield(L, -2, "now");
    lua_pushcfunction(L, native_redact_members);
    lua_setfield(L, -2, "redact_members");
    mx_sbdeliveries_open_crypto(L);
    return 1;
}

static void preload(lua_State *L, const char *name, lua_CFunction f) {
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, f);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

static int traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
    (void)kind;
    lua_State *L = cls;
    char lower[256];
    size_t n = strlen(key);
    if (n >= sizeof lower) return MHD_YES;
    for (size_t i = 0; i <= n; i++) {
        char ch = key[i];
        lower[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    lua_pushstring(L, value ? value : "");
    lua_setfield(L, -2, lower);
    return MHD_YES;
}

/* One request on its way into the app and its answer on the way out (see run_app). */
struct exchange {
    struct mx_sbserver *srv;
    struct listener *li;
    struct MHD_Connection *c;
    const char *method;
    struct rq *r;
    struct answer *a;
};

/* Pushes the request table app:handle takes (see sandbox/init.lua). */
static void push_request(lua_State *L, const struct exchange *x) {
    lua_createtable(L, 0, 10);
    lua_pushstring(L, x->li->name);
    lua_setfield(L, -2, "listener");
    lua_pushstring(L, x->method);
    lua_setfield(L, -2, "method");
    const char *uri = x->r->uri ? x->r->uri : "/";
    const char *q = strchr(uri, '?');
    lua_pushlstring(L, uri, q ? (size_t)(q - uri) : strlen(uri));
    lua_setfield(L, -2, "path");
    lua_pushstring(L, q ? q + 1 : "");
    lua_setfield(L, -2, "query");
    lua_newtable(L);
    MHD_get_connection_values(x->c, MHD_HEADER_KIND, collect_header, L);
    lua_setfield(L, -2, "headers");
    if (x->r->fd >= 0) {
        lua_pushstring(L, x->r->tmppath);
        lua_setfield(L, -2, "body_file");
    } else if (x->r->mem) {
        lua_pushlstring(L, x->r->mem, x->r->mem_len);
        lua_setfield(L, -2, "body");
    }
    lua_pushinteger(L, (lua_Integer)x->r->size);
    lua_setfield(L, -2, "body_size");
}

/* Protected: app:handle(request) and its answer into x->a. */
static int handle_exchange(lua_State *L) {
    struct exchange *x = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, x->srv->app_ref);
    lua_getfield(L, -1, "handle");
    lua_insert(L, -2);
    push_request(L, x);
    lua_call(L, 2, 1);
    int t = lua_gettop(L);
    mx_sb_answer_read(L, t, x->a);
    mx_sbdeliveries_take(x->srv->deliveries, L, t); /* webhook deliveries to post */
    return 0;
}

/* Runs app:handle(req) under the lock and fills `a`: every Lua call, from building the request
 * to copying the answer, runs inside one lua_pcall, so an error (or a failed allocation) is a
 * 500 answer, never a panic while the lock is held. */
static void run_app(struct listener *li, struct MHD_Connection *c, const char *method, struct rq *r,
                    struct answer *a) {
    struct mx_sbserver *s = li->srv;
    struct exchange x = {s, li, c, method, r, a};
    memset(a, 0, sizeof *a);
    pthread_mutex_lock(&s->mu);
    lua_State *L = s->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, traceback);
    lua_pushcfunction(L, handle_exchange);
    lua_pushlightuserdata(L, &x);
    if (lua_pcall(L, 1, 0, top + 1) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "sandbox: handler error: %s\n", msg ? msg : "(no message)");
        mx_sb_answer_internal_error(a);
    }
    lua_settop(L, top);
    pthread_mutex_unlock(&s->mu);
}

/* ---------- simulated latency ---------- */

/* A delayed answer does not hold a thread: the connection is suspended with its answer and this
 * thread resumes it when the delay has passed (libmicrohttpd then calls the handler again, which
 * sends the held answer). On stop every sleeper is resumed at once. */
static void *waker_main(void *arg) {
    struct mx_sbserver *s = arg;
    pthread_mutex_lock(&s->stop_mu);
    for (;;) {
        double now = mono_now(), next = 0;
        struct rq *due = NULL, **pp = &s->sleepers;
        while (*pp) {
            struct rq *r = *pp;
            if (s->stopping || r->wake <= now) {
                *pp = r->next_sleeper;
                r->next_sleeper = due;
                due = r;
            } else {
                if (next == 0 || r->wake < next) next = r->wake;
                pp = &r->next_sleeper;
            }
        }
        if (due) { /* resumed outside the lock; a suspended connection cannot go away meanwhile */
            pthread_mutex_unlock(&s->stop_mu);
            while (due) {
                struct rq *r = due;
                due = r->next_sleeper;
                r->next_sleeper = NULL;
                MHD_resume_connection(r->c);
            }
            pthread_mutex_lock(&s->stop_mu);
            continue;
        }
        if (s->stopping) break;
        if (next == 0) {
            pthread_cond_wait(&s->stop_cv, &s->stop_mu);
        } else {
            struct timespec until;
            until.tv_sec = (time_t)next;
            until.tv_nsec = (long)((next - (double)until.tv_sec) * 1e9);
            pthread_cond_timedwait(&s->stop_cv, &s->stop_mu, &until);
        }
    }
    pthread_mutex_unlock(&s->stop_mu);
    return NULL;
}

/* Holds `a` for `delay` seconds: 1 when the connection is now suspended (a now belongs to r),
 * 0 when the answer should go at once (stopping, or out of memory). */
static int hold_answer(struct mx_sbserver *s, struct MHD_Connection *c, struct rq *r,
                       struct answer *a) {
    struct answer *held = malloc(sizeof *held);
    if (!held) return 0;
    pthread_mutex_lock(&s->stop_mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->stop_mu);
        free(held);
        return 0;
    }
    *held = *a;
    r->held = held;
    r->wake = mono_now() + (a->delay < MAX_DELAY ? a->delay : MAX_DELAY);
    r->c = c;
    r->next_sleeper = s->sleepers;
    s->sleepers = r;
    MHD_suspend_connection(c); /* under the lock: the waker cannot resume it before this */
    pthread_cond_signal(&s->stop_cv);
    pthread_mutex_unlock(&s->stop_mu);
    return 1;
}

/* ---------- MHD callbacks ---------- */

/* The connection's idle-set entry (its MHD socket context), or NULL. */
static struct mx_idle_conn *idle_entry(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    struct listener *li = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? mx_idle_open(&li->idle, ci->connect_fd) : NULL;
    } else {
        mx_idle_close(&li->idle, *socket_context);
        *socket_context = NULL;
    }
}

/* A request line arrived: the connection is busy until its answer is complete. */
static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *c) {
    struct listener *li = cls;
    mx_idle_busy(&li->idle, idle_entry(c));
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, li->srv->idle_timeout);
    struct rq *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->uri = strdup(uri ? uri : "/");
    if (!r->uri) {
        free(r);
        return NULL;
    }
    r->fd = -1;
    return r;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    struct listener *li = cls;
    (void)toe;
    mx_idle_idle(&li->idle, idle_entry(c));
    struct rq *r = *con_cls;
    if (!r) return;
    if (r->held) { /* the connection ended before its delayed answer went out */
        mx_sb_answer_free(r->held);
        free(r->held);
    }
    if (r->fd >= 0) {
        close(r->fd);
        unlink(r->tmppath);
    }
    free(r->mem);
    free(r->uri);
    free(r);
    *con_cls = NULL;
}

static int open_tmp(struct rq *r) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    snprintf(r->tmppath, sizeof r->tmppath, "%s/mxsandbox-upload-XXXXXX", dir);
    r->fd = mkstemp(r->tmppath);
    if (r->fd < 0) return -1;
    if (r->mem_len && write(r->fd, r->mem, r->mem_len) != (ssize_t)r->mem_len) return -1;
    free(r->mem);
    r->mem = NULL;
    r->mem_len = r->mem_cap = 0;
    return 0;
}

static int append_body(struct rq *r, const char *data, size_t n) {
    r->size += n;
    if (r->fd < 0 && r->mem_len + n > MEM_BODY_MAX && open_tmp(r) != 0) return -1;
    if (r->fd >= 0) {
        while (n) {
            ssize_t w = write(r->fd, data, n);
            if (w < 0) {
                if (errno == EINTR) continue;
                return -1;
            }
            data += w;
            n -= (size_t)w;
        }
        return 0;
    }
    if (r->mem_len + n > r->mem_cap) {
        size_t cap = r->mem_cap ? r->mem_cap : 4096;
        while (cap < r->mem_len + n)
            cap *= 2;
        char *m = realloc(r->mem, cap);
        if (!m) return -1;
        r->mem = m;
        r->mem_cap = cap;
    }
    memcpy(r->mem + r->mem_len, data, n);
    r->mem_len += n;
    return 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls) {
    (void)url;
    (void)version;
    struct listener *li = cls;
    struct rq *r = *con_cls;
    if (!r) return MHD_NO;
    if (r->held) { /* resumed: its delay has passed (or the server stops) */
        enum MHD_Result ret = mx_sb_answer_send(c, r->held);
        mx_sb_answer_free(r->held);
        free(r->held);
        r->held = NULL;
        return ret;
    }
    if (!r->started) {
        r->started = 1;
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        if (ct && strncasecmp(ct, "multipart/", 10) == 0 && open_tmp(r) != 0) r->write_failed = 1;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!r->write_failed && append_body(r, upload_data, *upload_data_size) != 0)
            r->write_failed = 1;
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct answer a;
    if (r->write_failed) {
        memset(&a, 0, sizeof a);
        a.status = 500;
        const char *m = "{\"errorCode\":\"UPLOAD_COPY_FAILED\",\"errorMessage\":\"Failed to store "
                        "the request body.\"}";
        a.body = mx_sb_dupl(m, strlen(m));
        a.body_len = a.body ? strlen(m) : 0;
    } else {
        if (r->fd >= 0) fsync(r->fd);
        run_app(li, c, method, r, &a);
    }
    if (a.delay > 0) { /* a simulated latency is not silence: keep the connection that long */
        MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
                                  li->srv->idle_timeout +
                                      (unsigned)(a.delay < MAX_DELAY ? a.delay : MAX_DELAY));
        if (hold_answer(li->srv, c, r, &a)) return MHD_YES;
    }
    enum MHD_Result ret = mx_sb_answer_send(c, &a);
    mx_sb_answer_free(&a);
    return ret;
}

static int start_listener(struct mx_sbserver *s, struct listener *li, const char *name, int port,
                          int tls, char *url, size_t urllen, char *err, size_t errlen) {
    li->srv = s;
    li->name = name;
    if (mx_idle_init(&li->idle, MAX_IDLE) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert},
        {MHD_OPTION_END, 0, NULL},
    };
    /* A pool of threads over epoll, not a thread per connection: a fleet of jobs opens a fresh
     * connection for every POST, and creating and ending a thread for each made the sandbox use
     * more CPU than the client it serves (bench/jobs). Delays suspend the connection instead of
     * sleeping on a thread (hold_answer). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if (tls) flags |= MHD_USE_TLS;
    /* In `sandboxctl.start` the server runs inside the mxdeploy process: its threads must not
     * take the process's signals (thread_signals.h). */
    sigset_t old;
    mx_block_process_signals(&old);
    li->d = MHD_start_daemon(
        flags, 0, NULL, NULL, handler, li, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)POOL_THREADS, MHD_OPTION_THREAD_STACK_SIZE, (size_t)STACK_SIZE,
        MHD_OPTION_CONNECTION_TIMEOUT, s->idle_timeout, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)1024, MHD_OPTION_URI_LOG_CALLBACK, uri_logger, li, MHD_OPTION_NOTIFY_COMPLETED,
        completed, li, MHD_OPTION_NOTIFY_CONNECTION, on_connection, li, MHD_OPTION_ARRAY,
        tls ? tls_opts : tls_opts + 2, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!li->d) {
        snprintf(err, errlen, "cannot listen on 127.0.0.1:%d (%s listener%s)", port, name,
                 tls ? ", TLS: check the certificate and key" : "");
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(li->d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(url, urllen, "%s://127.0.0.1:%u", tls ? "https" : "http",
             info ? (unsigned)info->port : (unsigned)port);
    return 0;
}

/* Reads a whole (small) file into a new NUL-terminated buffer, or NULL. */
static char *read_pem(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(65537);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    fclose(f);
    if (!buf) return NULL;
    buf[n] = '\0';
    return buf;
}

struct mx_sbserver *mx_sbserver_start(const struct mx_sbserver_opts *o, char *err, size_t errlen) {
    struct mx_sbserver *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->stop_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->stop_cv, &ca);
    pthread_condattr_destroy(&ca);
    s->deliveries = mx_sbdeliveries_new();
    s->app_ref = LUA_NOREF;
    s->idle_timeout = IDLE_TIMEOUT;
    if (o->from && lua_istable(o->from, o->from_idx)) { /* idle_timeout = seconds (tests) */
        lua_getfield(o->from, o->from_idx, "idle_timeout");
        lua_Integer t = lua_tointeger(o->from, -1);
        if (t > 0 && t <= 86400) s->idle_timeout = (unsigned)t;
        lua_pop(o->from, 1);
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        snprintf(err, errlen, "cannot create a Lua state");
        free(s);
        return NULL;
    }
    s->L = L;
    luaL_openlibs(L);
    preload(L, "mxdeploy.sandbox.native", luaopen_native);
    if (o->open_libs) o->open_libs(L);

    { /* the waker, with the signal mask of the listeners' threads (thread_signals.h) */
        sigset_t old;
        mx_block_process_signals(&old);
        s->waker_started = pthread_create(&s->waker, NULL, waker_main, s) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (!s->waker_started) {
            snprintf(err, errlen, "cannot start a thread");
            mx_sbserver_stop(s);
            return NULL;
        }
    }
    /* Hold the lock until the app exists: early requests wait for it. */
    pthread_mutex_lock(&s->mu);
    int tls = o->tls_cert && o->tls_key;
    if (tls) {
        s->tls_cert = read_pem(o->tls_cert);
        s->tls_key = read_pem(o->tls_key);
    }
    if ((tls && (!s->tls_cert || !s->tls_key) &&
         snprintf(err, errlen, "cannot read the TLS certificate or key") > 0) ||
        start_listener(s, &s->api, "api", o->port, tls, s->url, sizeof s->url, err, errlen) != 0 ||
        start_listener(s, &s->files, "files", o->files_port, 0, s->files_url, sizeof s->files_url,
                       err, errlen) != 0) {
        pthread_mutex_unlock(&s->mu);
        mx_sbserver_stop(s);
        return NULL;
    }
    lua_pushcfunction(L, traceback);
    lua_getglobal(L, "require");
    lua_pushstring(L, "mxdeploy.sandbox");
    if (lua_pcall(L, 1, 1, -3) != LUA_OK) goto lua_fail;
    lua_getfield(L, -1, "new");
    if (o->from && lua_istable(o->from, o->from_idx))
        mx_sb_copy_value(o->from, o->from_idx, L, 0);
    else
        lua_newtable(L);
    if (o->seed) {
        lua_pushstring(L, o->seed);
        lua_setfield(L, -2, "seed");
    }
    if (o->state) {
        lua_pushstring(L, o->state);
        lua_setfield(L, -2, "state");
    }
    if (o->log) {
        lua_pushstring(L, o->log);
        lua_setfield(L, -2, "log");
    }
    if (o->faults_file) {
        lua_pushstring(L, o->faults_file);
        lua_setfield(L, -2, "faults_file");
    }
    if (o->time_scale > 0) {
        lua_pushnumber(L, o->time_scale);
        lua_setfield(L, -2, "time_scale");
    }
    lua_pushstring(L, s->url);
    lua_setfield(L, -2, "api_url");
    lua_pushstring(L, s->files_url);
    lua_setfield(L, -2, "files_url");
    if (lua_pcall(L, 1, 1, 1) != LUA_OK) goto lua_fail;
    s->app_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    pthread_mutex_unlock(&s->mu);
    return s;
lua_fail:
    /* one line (a missing seed file is a usage error, not a crash): the message without the
     * traceback the handler appended */
    snprintf(err, errlen, "sandbox: %s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    err[strcspn(err, "\n")] = '\0';
    lua_settop(L, 0);
    pthread_mutex_unlock(&s->mu);
    mx_sbserver_stop(s);
    return NULL;
}

const char *mx_sbserver_url(const struct mx_sbserver *s) {
    return s->url;
}

const char *mx_sbserver_files_url(const struct mx_sbserver *s) {
    return s->files_url;
}

int mx_sbserver_call(struct mx_sbserver *s, const char *method, lua_State *from, int idx,
                     lua_State *to) {
    if (from && idx) idx = lua_absindex(from, idx);
    pthread_mutex_lock(&s->mu);
    lua_State *L = s->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->app_ref);
    lua_getfield(L, -1, method);
    lua_insert(L, -2);
    if (from && idx)
        mx_sb_copy_value(from, idx, L, 0);
    else
        lua_pushnil(L);
    int rc = 1;
    if (lua_pcall(L, 2, 1, top + 1) != LUA_OK) {
        lua_pushstring(to, lua_tostring(L, -1) ? lua_tostring(L, -1) : "sandbox control error");
        rc = -1;
    } else {
        mx_sb_copy_value(L, -1, to, 0);
    }
    lua_settop(L, top);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void mx_sbserver_stop(struct mx_sbserver *s) {
    if (!s) return;
    pthread_mutex_lock(&s->stop_mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->stop_cv);
    pthread_mutex_unlock(&s->stop_mu);
    if (s->waker_started) pthread_join(s->waker, NULL); /* every delayed answer resumed */
    s->waker_started = 0;
    if (s->api.d) MHD_stop_daemon(s->api.d);
    if (s->files.d) MHD_stop_daemon(s->files.d);
    s->api.d = s->files.d = NULL;
    mx_sbdeliveries_stop(s->deliveries);
    s->deliveries = NULL;
    mx_idle_destroy(&s->api.idle);
    mx_idle_destroy(&s->files.idle);
    pthread_mutex_lock(&s->mu);
    if (s->L) {
        if (s->app_ref != LUA_NOREF) {
            lua_rawgeti(s->L, LUA_REGISTRYINDEX, s->app_ref);
            lua_getfield(s->L, -1, "close");
            if (lua_isfunction(s->L, -1)) {
                lua_insert(s->L, -2);
                lua_pcall(s->L, 1, 0, 0);
            }
            lua_settop(s->L, 0);
        }
        lua_close(s->L);
        s->L = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    free(s->tls_cert);
    free(s->tls_key);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->stop_mu);
    pthread_cond_destroy(&s->stop_cv);
    free(s);
}
