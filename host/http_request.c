/*
 * core.http(req), the request side: checks the request table and turns it into an http op
 * (headers, credentials and the secrets they carry, upload, download file, limits, trace level).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "credentials.h"
#include "http.h"
#include "http_op.h"

/* Default cap of a response body held in memory (decompressed); a download to a file has none. */
#define DEFAULT_MAX_RESPONSE_SIZE (16.0 * 1024 * 1024)

static unsigned long trace_ids;

static const char *opt_string(lua_State *L, const char *field) {
    lua_getfield(L, 1, field);
    const char *v = NULL;
    if (lua_type(L, -1) == LUA_TSTRING)
        v = lua_tostring(L, -1);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "bad argument #1 to 'http' (field '%s' must be a string)", field);
    lua_pop(L, 1); /* the string stays alive: it is referenced by the request table */
    return v;
}

static double opt_number(lua_State *L, const char *field, double dflt) {
    lua_getfield(L, 1, field);
    double v = dflt;
    if (lua_type(L, -1) == LUA_TNUMBER)
        v = lua_tonumber(L, -1);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "bad argument #1 to 'http' (field '%s' must be a number)", field);
    lua_pop(L, 1);
    if (!(v >= 0)) /* also NaN */
        luaL_error(L, "bad argument #1 to 'http' (field '%s' must not be negative)", field);
    if (v > 1e9) v = 1e9; /* math.huge: converted below to a long (ms) or an int (redirects) */
    return v;
}

static int opt_bool(lua_State *L, const char *field) {
    lua_getfield(L, 1, field);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static int has_crlf(const char *s) {
    return strpbrk(s, "\r\n") != NULL;
}

/* Reads req.headers into h->user_headers as "Name: value\n" lines. */
static void read_headers(lua_State *L, struct http_op *h) {
    lua_getfield(L, 1, "headers");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1)) luaL_error(L, "bad argument #1 to 'http' (headers must be a table)");
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
            luaL_error(L, "bad argument #1 to 'http' (headers must map names to strings)");
        const char *name = lua_tostring(L, -2), *value = lua_tostring(L, -1);
        if (has_crlf(name) || has_crlf(value) || strchr(name, ':') || !*name)
            luaL_error(L, "bad argument #1 to 'http' (invalid header '%s')", name);
        size_t at = h->user_headers.len;
        buf_add(&h->user_headers, name, strlen(name));
        buf_add(&h->user_headers, ": ", 2);
        buf_add(&h->user_headers, value, strlen(value));
        buf_add(&h->user_headers, "\n", 1);
        if (h->user_headers.failed) luaL_error(L, "not enough memory");
        if (mx_http_credential_header(h->user_headers.p +
                                      at)) { /* its value, and after a scheme word */
            mx_secrets_add(&h->secrets, value, strlen(value));
            const char *sp = strchr(value, ' ');
            if (sp) mx_secrets_add(&h->secrets, sp + 1, strlen(sp + 1));
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* "Name: value" in a new block of exactly the right size (a secret of any length, no copies). */
static char *header_line(const char *name, const char *value) {
    size_t n = strlen(name), v = strlen(value);
    char *line = malloc(n + v + 1);
    if (!line) mx_http_out_of_memory();
    memcpy(line, name, n);
    memcpy(line + n, value, v + 1);
    return line;
}

static void read_auth(lua_State *L, struct http_op *h) {
    lua_getfield(L, 1, "auth");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    struct mx_creds *c = mx_creds_test(L, -1);
    if (!c)
        luaL_error(L, "bad argument #1 to 'http' (auth must be credentials from core.credentials)");
    const char *scheme = opt_string(L, "auth_scheme");
    if (!scheme) scheme = "apikey";
    if (strcmp(scheme, "apikey") == 0) {
        if (!c->username || !c->apikey)
            luaL_error(L,
                       "no API key: set MENDIX_USERNAME and MENDIX_APIKEY, or username and "
                       "apikey in profile [%s] of the credentials file",
                       c->profile);
        h->auth_lines[0] = header_line("Mendix-Username: ", c->username);
        h->auth_lines[1] = header_line("Mendix-ApiKey: ", c->apikey);
        mx_secrets_add(&h->secrets, c->apikey, strlen(c->apikey));
    } else if (strcmp(scheme, "token") == 0) {
        if (!c->token)
            luaL_error(L,
                       "no personal access token: set MENDIX_TOKEN, or token in profile [%s] "
                       "of the credentials file",
                       c->profile);
        h->auth_lines[0] = header_line("Authorization: MxToken ", c->token);
        mx_secrets_add(&h->secrets, c->token, strlen(c->token));
    } else {
        luaL_error(L, "bad argument #1 to 'http' (auth_scheme must be 'apikey' or 'token')");
    }
    lua_pop(L, 1);
}

void mx_http_build_mime(struct http_op *h) {
    h->mime = curl_mime_init(h->easy);
    if (!h->mime) mx_http_out_of_memory();
    curl_mimepart *part = curl_mime_addpart(h->mime);
    curl_mime_name(part, h->file_field ? h->file_field : "file");
    curl_mime_filedata(part, h->upload_path); /* streamed from disk by libcurl */
    for (size_t at = 0; at < h->form.len;) {  /* "name\0", the value's length, the value */
        const char *name = h->form.p + at;
        size_t n;
        at += strlen(name) + 1;
        memcpy(&n, h->form.p + at, sizeof n);
        at += sizeof n;
        curl_mimepart *p = curl_mime_addpart(h->mime);
        curl_mime_name(p, name);
        curl_mime_data(p, h->form.p + at, n);
        at += n;
    }
    curl_easy_setopt(h->easy, CURLOPT_UPLOAD_BUFFERSIZE, (long)MX_UPLOAD_READ_SIZE);
}

static void read_upload(lua_State *L, struct http_op *h) {
    const char *file = opt_string(L, "file");
    if (!file) return;
    FILE *f = fopen(file, "rb");
    if (!f) luaL_error(L, "cannot read upload file %s", file);
    fclose(f);
    h->upload_path = mx_http_dup(file);
    const char *field = opt_string(L, "file_field");
    if (field) h->file_field = mx_http_dup(field);
    lua_getfield(L, 1, "form"); /* kept: a redirect's hop builds the body again */
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
                luaL_error(L, "bad argument #1 to 'http' (form must map names to strings)");
            size_t n;
            const char *name = lua_tostring(L, -2), *v = lua_tolstring(L, -1, &n);
            buf_add(&h->form, name, strlen(name) + 1);
            buf_add(&h->form, &n, sizeof n);
            buf_add(&h->form, v, n);
            if (h->form.failed) luaL_error(L, "not enough memory");
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    mx_http_build_mime(h);
}

static void read_output(lua_State *L, struct http_op *h) {
    const char *output = opt_string(L, "output");
    if (!output) return;
    size_t n = strlen(output) + 16;
    h->output = mx_http_dup(output);
    h->tmp_path = malloc(n);
    if (!h->tmp_path) luaL_error(L, "not enough memory");
    snprintf(h->tmp_path, n, "%s.partXXXXXX", output);
    int fd = mkstemp(h->tmp_path);
    if (fd < 0) luaL_error(L, "cannot write download file %s", output);
    h->out = fdopen(fd, "wb");
    if (!h->out) {
        close(fd);
        unlink(h->tmp_path);
        luaL_error(L, "cannot write download file %s", output);
    }
    /* a buffer of our own: given none, glibc's setvbuf keeps its 4 KiB whatever the size */
    h->out_buf = malloc(MX_OUTPUT_BUFFER);
    if (!h->out_buf) mx_http_out_of_memory();
    setvbuf(h->out, h->out_buf, _IOFBF, MX_OUTPUT_BUFFER);
    curl_easy_setopt(h->easy, CURLOPT_BUFFERSIZE, (long)MX_DOWNLOAD_READ_SIZE);
}

/* req.trace: true (one line per exchange), "exchanges", "headers" or "body". */
static int read_trace_level(lua_State *L) {
    lua_getfield(L, 1, "trace");
    int level = lua_toboolean(L, -1) ? MX_TRACE_EXCHANGES : MX_TRACE_OFF;
    if (lua_type(L, -1) == LUA_TSTRING) {
        level = mx_trace_level(lua_tostring(L, -1));
        if (level < 0)
            luaL_error(L, "bad argument #1 to 'http' (trace must be a boolean, 'exchanges', "
                          "'headers' or 'body')");
    }
    lua_pop(L, 1);
    return level;
}

int mx_http_build(lua_State *L) {
    struct http_op *h = lua_touserdata(L, 2);
    const char *url = opt_string(L, "url");
    if (!url) luaL_error(L, "bad argument #1 to 'http' (field 'url' is required)");
    h->origin = mx_http_origin(url);
    if (!h->origin || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        luaL_error(L, "bad argument #1 to 'http' (not an http(s) URL)");
    h->url = mx_http_dup(url);
    const char *method = opt_string(L, "method");
    h->method = mx_http_dup(method ? method : "GET");
    for (char *c = h->method; *c; c++) {
        if (!isalpha((unsigned char)*c)) luaL_error(L, "bad argument #1 to 'http' (bad method)");
        *c = (char)toupper((unsigned char)*c);
    }
    size_t blen = 0;
    lua_getfield(L, 1, "body");
    if (lua_type(L, -1) == LUA_TSTRING) {
        const char *b = lua_tolstring(L, -1, &blen);
        h->body = malloc(blen + 1);
        if (!h->body) luaL_error(L, "not enough memory for the request body");
        memcpy(h->body, b, blen + 1);
        h->body_len = blen;
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "bad argument #1 to 'http' (field 'body' must be a string)");
    }
    lua_pop(L, 1);
    h->timeout_ms = (long)(opt_number(L, "timeout", 0) * 1000.0);
    if (h->timeout_ms > 0 && h->queued > 0) { /* the timeout counts the time queued */
        long left = h->timeout_ms - (long)(h->queued * 1000.0);
        h->timeout_ms = left > 1 ? left : 1;
    }
    h->connect_timeout_ms = (long)(opt_number(L, "connect_timeout", 30) * 1000.0);
    h->low_speed_time = (long)opt_number(L, "low_speed_time", 60);
    h->max_redirects = (int)opt_number(L, "max_redirects", 5);
    h->insecure = opt_bool(L, "insecure");
    h->decode_json = opt_bool(L, "decode_json");
    const char *ca_file = opt_string(L, "ca_file");
    if (ca_file) h->ca_file = mx_http_dup(ca_file);
    h->max_body = (size_t)opt_number(L, "max_response_size", DEFAULT_MAX_RESPONSE_SIZE);
    h->tr.level = read_trace_level(L);
    if (mx_http_trace > h->tr.level) h->tr.level = mx_http_trace;
    h->tr.id = ++trace_ids;
    h->tr.secrets = &h->secrets;
    mx_secrets_add_url(&h->secrets, url);
    read_headers(L, h);
    read_auth(L, h);
    mx_http_setup_easy(h);
    read_upload(L, h);
    if (h->mime && h->body)
        luaL_error(L, "bad argument #1 to 'http' (body and file exclude each other)");
    read_output(L, h);
    lua_getfield(L, 1, "on_progress");
    if (lua_isfunction(L, -1))
        h->progress_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "bad argument #1 to 'http' (on_progress must be a function)");
    return 0;
}
