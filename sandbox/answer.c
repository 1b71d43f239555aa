/* The sandbox's answers: read from the table app:handle returns, and sent through libmicrohttpd
 * (a body, a slice of a file, or a fault: a body cut off half-way or shorter than promised). */
#include "answer.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

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

void mx_sb_answer_free(struct answer *a) {
    for (int i = 0; i < a->nhdrs; i++) {
        free(a->hdrs[i].name);
        free(a->hdrs[i].value);
    }
    free(a->hdrs);
    free(a->body);
    free(a->file);
}

/* A NUL-terminated copy of s[0..n), or NULL when out of memory. */
char *mx_sb_dupl(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* dupl inside a protected call: out of memory raises (the caller's pcall answers 500). */
static char *dupl_or_raise(lua_State *L, const char *s, size_t n) {
    char *p = mx_sb_dupl(s, n);
    if (!p) luaL_error(L, "out of memory copying the answer");
    return p;
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
            char *value = mx_sb_dupl(v, vn);
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
void mx_sb_answer_read(lua_State *L, int t, struct answer *a) {
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

/* The answer when the app failed: 500 with a JSON body (as far as memory allows). */
void mx_sb_answer_internal_error(struct answer *a) {
    static const char body[] =
        "{\"errorCode\":\"SANDBOX_ERROR\",\"errorMessage\":\"internal sandbox "
        "error (see the sandbox's stderr)\"}";
    mx_sb_answer_free(a);
    memset(a, 0, sizeof *a);
    a->status = 500;
    a->body = mx_sb_dupl(body, sizeof body - 1);
    a->body_len = a->body ? sizeof body - 1 : 0;
    a->hdrs = calloc(1, sizeof *a->hdrs);
    if (a->hdrs) {
        a->hdrs[0].name = mx_sb_dupl("Content-Type", 12);
        a->hdrs[0].value = mx_sb_dupl("application/json", 16);
        a->nhdrs = a->hdrs[0].name && a->hdrs[0].value ? 1 : 0;
        if (!a->nhdrs) {
            free(a->hdrs[0].name);
            free(a->hdrs[0].value);
        }
    }
}

enum MHD_Result mx_sb_answer_send(struct MHD_Connection *c, struct answer *a) {
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
        fb->buf = a->body ? a->body : mx_sb_dupl("", 0);
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
