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

#include "webhook_delivery.h"

#define MEM_BODY_MAX (1024 * 1024) /* larger bodies (and every multipart body) go to a file */
#define STACK_SIZE (512 * 1024)
#define CONN_LIMIT 4096
#define MAX_IDLE 1024    /* idle connections kept per listener (a quarter of CONN_LIMIT) */
#define IDLE_TIMEOUT 30u /* seconds a connection may stay silent (opts.idle_timeout) */
#define MAX_DELAY 600.0

struct mx_sbserver;

struct listener {
    struct mx_sbserver *srv;
    const char *name; /* "api" | "files" */
    struct MHD_Daemon *d;
    struct mx_idle idle;
};

struct mx_sbserver {
    pthread_mutex_t mu;
    pthread_mutex_t stop_mu; /* guards stopping; stop_cv wakes delayed answers on stop */
    pthread_cond_t stop_cv;
    int stopping;
    lua_State *L;
    int app_ref;
    struct listener api, files;
    char url[64], files_url[64];
    char *tls_cert, *tls_key;           /* PEM contents; MHD keeps pointers to them while it runs */
    struct mx_sbdeliveries *deliveries; /* webhook deliveries being sent */
    unsigned idle_timeout;              /* seconds */
};

/* Per-request state, created by the URI log callback. */
struct rq {
    char *uri; /* raw request target, path + "?" + query */
    int started;
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

static int luaopen_native(lua_State *L) {
    lua_newtable(L);
    lua_pushcfunction(L, native_now);
    lua_setfield(L, -2, "now");
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

/* ---------- responses ---------- */

struct faulty_body {
    char *buf;
    size_t len;   /* bytes we will send */
    size_t limit; /* after this many bytes: END_WITH_ERROR */
};

static ssize_t faulty_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    struct faulty_body *fb = cls;
    if (pos >= fb->limit || pos >= fb->len) return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = fb->limit - (size_t)pos;
    if (n > max) n = max;
    memcpy(buf, fb->buf + pos, n);
    return (ssize_t)n;
}

static void faulty_free(void *cls) {
    struct faulty_body *fb = cls;
    free(fb->buf);
    free(fb);
}

/* Sleeps a simulated latency; returns early when the server stops (so stop never waits for it). */
static void sleep_seconds(struct mx_sbserver *srv, double s) {
    if (s <= 0) return;
    if (s > MAX_DELAY) s = MAX_DELAY;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double end = (double)until.tv_sec + (double)until.tv_nsec / 1e9 + s;
    until.tv_sec = (time_t)end;
    until.tv_nsec = (long)((end - (double)(time_t)end) * 1e9);
    pthread_mutex_lock(&srv->stop_mu);
    while (!srv->stopping && pthread_cond_timedwait(&srv->stop_cv, &srv->stop_mu, &until) == 0) {
    }
    pthread_mutex_unlock(&srv->stop_mu);
}

struct hdr {
    char *name, *value;
};

struct answer {
    int status;
    struct hdr *hdrs;
    int nhdrs;
    char *body;
    size_t body_len;
    char *file;
    int64_t file_offset, file_size; /* a slice of the file; file_size < 0: to its end */
    double delay;
    char fault[16];
};

static void answer_free(struct answer *a) {
    for (int i = 0; i < a->nhdrs; i++) {
        free(a->hdrs[i].name);
        free(a->hdrs[i].value);
    }
    free(a->hdrs);
    free(a->body);
    free(a->file);
}

/* A NUL-terminated copy of s[0..n), or NULL when out of memory. */
static char *dupl(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* dupl inside a protected call: out of memory raises (the caller's pcall answers 500). */
static char *dupl_or_raise(lua_State *L, const char *s, size_t n) {
    char *p = dupl(s, n);
    if (!p) luaL_error(L, "out of memory copying the answer");
    return p;
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

/* The answer's headers (a table at t) into a->hdrs; a->nhdrs counts the complete entries, so
 * answer_free frees what was copied when an allocation fails half-way. */
static void read_headers(lua_State *L, int t, struct answer *a) {
    int cap = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_isstring(L, -1)) {
            if (a->nhdrs == cap) {
                int ncap = cap ? cap * 2 : 8;
                struct hdr *h = realloc(a->hdrs, (size_t)ncap * sizeof *h);
                if (!h) luaL_error(L, "out of memory copying the answer's headers");
                a->hdrs = h;
                cap = ncap;
            }
            size_t kn, vn;
            const char *k = lua_tolstring(L, -2, &kn);
            lua_pushvalue(L, -1); /* tolstring on a copy: never convert a key lua_next walks */
            const char *v = lua_tolstring(L, -1, &vn);
            char *name = dupl_or_raise(L, k, kn);
            char *value = dupl(v, vn);
            if (!value) {
                free(name);
                luaL_error(L, "out of memory copying the answer's headers");
            }
            a->hdrs[a->nhdrs].name = name;
            a->hdrs[a->nhdrs].value = value;
            a->nhdrs++;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
}

/* Reads app:handle's answer (the table at t) into a. */
static void read_answer(lua_State *L, int t, struct answer *a) {
    if (!lua_istable(L, t)) luaL_error(L, "handler returned no table");
    luaL_checkstack(L, 16, "reading the answer");
    lua_getfield(L, t, "status");
    int isint = 0;
    lua_Integer status = lua_tointegerx(L, -1, &isint);
    a->status = lua_isnil(L, -1)                          ? 200
                : isint && status >= 100 && status <= 999 ? (int)status
                                                          : 500;
    lua_getfield(L, t, "body");
    if (lua_isstring(L, -1)) {
        size_t n;
        const char *b = lua_tolstring(L, -1, &n);
        a->body = dupl_or_raise(L, b, n);
        a->body_len = n;
    }
    lua_getfield(L, t, "file");
    if (lua_isstring(L, -1)) {
        size_t n;
        const char *f = lua_tolstring(L, -1, &n);
        a->file = dupl_or_raise(L, f, n);
    }
    lua_getfield(L, t, "file_offset");
    a->file_offset = lua_isinteger(L, -1) ? (int64_t)lua_tointeger(L, -1) : 0;
    lua_getfield(L, t, "file_size");
    a->file_size = lua_isinteger(L, -1) ? (int64_t)lua_tointeger(L, -1) : -1;
    lua_getfield(L, t, "delay");
    a->delay = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 0;
    lua_getfield(L, t, "fault");
    if (lua_isstring(L, -1)) snprintf(a->fault, sizeof a->fault, "%s", lua_tostring(L, -1));
    lua_getfield(L, t, "headers");
    if (lua_istable(L, -1)) read_headers(L, lua_gettop(L), a);
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
    read_answer(L, t, x->a);
    mx_sbdeliveries_take(x->srv->deliveries, L, t); /* webhook deliveries to post */
    return 0;
}

/* The answer when the app failed: 500 with a JSON body (as far as memory allows). */
static void internal_error(struct answer *a) {
    static const char body[] =
        "{\"errorCode\":\"SANDBOX_ERROR\",\"errorMessage\":\"internal sandbox "
        "error (see the sandbox's stderr)\"}";
    answer_free(a);
    memset(a, 0, sizeof *a);
    a->status = 500;
    a->body = dupl(body, sizeof body - 1);
    a->body_len = a->body ? sizeof body - 1 : 0;
    a->hdrs = calloc(1, sizeof *a->hdrs);
    if (a->hdrs) {
        a->hdrs[0].name = dupl("Content-Type", 12);
        a->hdrs[0].value = dupl("application/json", 16);
        a->nhdrs = a->hdrs[0].name && a->hdrs[0].value ? 1 : 0;
        if (!a->nhdrs) {
            free(a->hdrs[0].name);
            free(a->hdrs[0].value);
        }
    }
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
        internal_error(a);
    }
    lua_settop(L, top);
    pthread_mutex_unlock(&s->mu);
}

static enum MHD_Result respond(struct MHD_Connection *c, struct answer *a) {
    struct MHD_Response *resp = NULL;
    if (a->file) {
        int fd = open(a->file, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && a->file_offset >= 0 &&
            a->file_offset <= (int64_t)st.st_size) {
            int64_t size = a->file_size >= 0 ? a->file_size : (int64_t)st.st_size - a->file_offset;
            if (a->file_offset + size > (int64_t)st.st_size) size = st.st_size - a->file_offset;
            resp = MHD_create_response_from_fd_at_offset64((uint64_t)size, fd,
                                                           (uint64_t)a->file_offset);
        } else {
            if (fd >= 0) close(fd);
            static const char msg[] = "{\"errorCode\":\"FILE_NOT_FOUND\",\"errorMessage\":\"File "
                                      "not found\"}";
            a->status = 404;
            resp = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg,
                                                   MHD_RESPMEM_PERSISTENT);
        }
    } else if (strcmp(a->fault, "drop") == 0 || strcmp(a->fault, "truncate") == 0) {
        struct faulty_body *fb = calloc(1, sizeof *fb);
        if (!fb) return MHD_NO;
        fb->buf = a->body ? a->body : dupl("", 0);
        if (!fb->buf) {
            free(fb);
            return MHD_NO;
        }
        fb->len = a->body ? a->body_len : 0;
        a->body = NULL;
        if (a->fault[0] == 'd') { /* chunked; half the body, then the connection closes */
            fb->limit = fb->len / 2;
            resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, faulty_reader, fb,
                                                     faulty_free);
        } else { /* Content-Length promises more than is sent */
            fb->limit = fb->len;
            resp = MHD_create_response_from_callback(fb->len + 1024, 4096, faulty_reader, fb,
                                                     faulty_free);
        }
    } else {
        resp = MHD_create_response_from_buffer(a->body_len, a->body ? a->body : (void *)"",
                                               MHD_RESPMEM_MUST_COPY);
    }
    if (!resp) return MHD_NO;
    for (int i = 0; i < a->nhdrs; i++)
        MHD_add_response_header(resp, a->hdrs[i].name, a->hdrs[i].value);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)a->status, resp);
    MHD_destroy_response(resp);
    return ret;
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
        a.body = dupl(m, strlen(m));
        a.body_len = a.body ? strlen(m) : 0;
    } else {
        if (r->fd >= 0) fsync(r->fd);
        run_app(li, c, method, r, &a);
    }
    if (a.delay > 0) /* a simulated latency is not silence: keep the connection that long */
        MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
                                  li->srv->idle_timeout +
                                      (unsigned)(a.delay < MAX_DELAY ? a.delay : MAX_DELAY));
    sleep_seconds(li->srv, a.delay); /* outside the lock */
    enum MHD_Result ret = respond(c, &a);
    answer_free(&a);
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
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    if (tls) flags |= MHD_USE_TLS;
    /* The listener's threads inherit a mask without SIGINT/SIGTERM/SIGHUP: in `sandboxctl.start`
     * the server runs inside the mxdeploy process, whose signal handler must run on the main
     * thread (it wakes that thread's poll and arms a hook on its Lua state). A Ctrl-C delivered
     * to a sandbox thread instead was sometimes lost. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    li->d = MHD_start_daemon(
        flags, 0, NULL, NULL, handler, li, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT, MHD_OPTION_THREAD_STACK_SIZE,
        (size_t)STACK_SIZE, MHD_OPTION_CONNECTION_TIMEOUT, s->idle_timeout,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_URI_LOG_CALLBACK, uri_logger, li,
        MHD_OPTION_NOTIFY_COMPLETED, completed, li, MHD_OPTION_NOTIFY_CONNECTION, on_connection, li,
        MHD_OPTION_ARRAY, tls ? tls_opts : tls_opts + 2, MHD_OPTION_END);
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
    pthread_cond_init(&s->stop_cv, NULL);
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
