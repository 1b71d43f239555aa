/*
 * core.http's results: the response table (its headers built when first read, a JSON body decoded
 * when asked for) or the error table of a failed exchange.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "http_op.h"
#include "json.h"

static void set_field_str(lua_State *L, const char *k, const char *v) {
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

static void set_field_num(lua_State *L, const char *k, lua_Number v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

/* ---- the response's headers, built when first asked for ------------------------------------ */

/* Registry keys: the metatable of every response, and the weak-keyed table response -> its header
 * block ("name\0value\0" pairs, secrets scrubbed) until resp.headers is first read. Building the
 * headers table for every answer was about 12K of ~266K instructions per request, and most callers
 * never look at it. */
static const char RESP_MT_KEY = 'r', PENDING_HEADERS_KEY = 'h';

/* mx_http_push's second result when the answer is JSON to be decoded (mx_http_decode_json). */
static const char JSON_BODY = 'j';

/* Pushes a table {lowercase-name = value} of a header block; a repeated header's values are joined
 * with ", ". */
static void push_headers_table(lua_State *L, const char *p, size_t len) {
    const char *end = p + len;
    int nheaders = 0;
    for (const char *c = p; c < end; c++)
        nheaders += *c == '\0';
    lua_createtable(L, 0, nheaders / 2);
    while (p < end) {
        const char *name = p;
        const char *value = name + strlen(name) + 1;
        lua_getfield(L, -1, name);
        if (lua_isstring(L, -1))
            lua_pushfstring(L, "%s, %s", lua_tostring(L, -1), value);
        else
            lua_pushstring(L, value);
        lua_setfield(L, -3, name);
        lua_pop(L, 1);
        p = value + strlen(value) + 1;
    }
}

/* Sets resp.headers (resp at index 1) from its pending block, if it still has one. */
static void materialize_headers(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &PENDING_HEADERS_KEY);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) == LUA_TSTRING) {
        size_t len;
        const char *block = lua_tolstring(L, -1, &len);
        lua_pushliteral(L, "headers");
        push_headers_table(L, block, len);
        lua_rawset(L, 1);
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        lua_rawset(L, -4); /* no longer pending */
    }
    lua_pop(L, 2);
}

/* resp.__index: "headers" is built on first read and kept as an ordinary field. */
static int resp_index(lua_State *L) {
    if (lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), "headers") != 0) return 0;
    materialize_headers(L);
    lua_pushliteral(L, "headers");
    lua_rawget(L, 1);
    return 1;
}

static int resp_next(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_next(L, 1)) return 2;
    lua_pushnil(L);
    return 1;
}

/* resp.__pairs: the headers are there for whoever walks the response (the REPL, json.encode). */
static int resp_pairs(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    materialize_headers(L);
    lua_pushcfunction(L, resp_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* ---- the response, or the error ------------------------------------------------------------ */

/* Whether a Content-Type value names JSON, as request.lua decided: "application/" followed by a run
 * of [A-Za-z0-9.+-] that contains "json", or "+json" anywhere (case as sent). */
static int json_type(const char *v) {
    if (strstr(v, "+json")) return 1;
    for (const char *a = strstr(v, "application/"); a; a = strstr(a + 1, "application/")) {
        const char *run = a + 12, *end = run;
        while (isalnum((unsigned char)*end) || *end == '.' || *end == '+' || *end == '-')
            end++;
        for (const char *j = run; j + 4 <= end; j++)
            if (memcmp(j, "json", 4) == 0) return 1;
    }
    return 0;
}

/* Whether the response's headers (a "name\0value\0" block) say its body is JSON. */
static int json_response(const struct buf *headers) {
    const char *p = headers->p, *end = p ? p + headers->len : NULL;
    while (p && p < end) {
        const char *value = p + strlen(p) + 1;
        if (strcmp(p, "content-type") == 0 && json_type(value)) return 1;
        p = value + strlen(value) + 1;
    }
    return 0;
}

/* Results: resp, or nil and an error table. */
int mx_http_push(mx_op *op, lua_State *L) {
    struct http_op *h = (struct http_op *)op;
    const char *shown = h->shown; /* h->url redacted, by start_transfer */
    if (h->result != CURLE_OK) {
        lua_pushnil(L);
        lua_createtable(L, 0, 6);
        int timeout = h->result == CURLE_OPERATION_TIMEDOUT;
        int tls = h->result == CURLE_PEER_FAILED_VERIFICATION ||
                  h->result == CURLE_SSL_CACERT_BADFILE || h->result == CURLE_SSL_CERTPROBLEM ||
                  h->result == CURLE_SSL_ISSUER_ERROR;
        set_field_str(L, "kind",
                      h->too_large ? "response"
                      : timeout    ? "timeout"
                      : tls        ? "tls"
                                   : "network");
        struct buf msg = {0};
        if (h->too_large) {
            char text[160];
            snprintf(text, sizeof text,
                     "response body larger than %zu bytes, the limit for an answer held in memory "
                     "(max_response_size)",
                     h->max_body);
            buf_adds(&msg, text);
        } else if (h->resp_body.failed || h->resp_headers.failed) {
            buf_adds(&msg, "not enough memory for the response");
        } else {
            buf_adds(&msg, h->errbuf[0] ? h->errbuf : curl_easy_strerror(h->result));
        }
        mx_secrets_scrub(&h->secrets, msg.p, &msg.len);
        lua_pushlstring(L, msg.p, msg.len);
        lua_setfield(L, -2, "message");
        buf_wipe_free(&msg);
        lua_pushinteger(L, h->result);
        lua_setfield(L, -2, "curl_code");
        /* Provably never reached: no hop got an answer and no byte of this hop was sent. */
        long sent = 0;
        curl_easy_getinfo(h->easy, CURLINFO_REQUEST_SIZE, &sent);
        lua_pushboolean(L, h->answered > 0 || sent > 0);
        lua_setfield(L, -2, "reached");
        set_field_str(L, "method", h->method);
        set_field_str(L, "url", shown);
        return 2;
    }
    /* sized for the fields here and the two mx.request adds (retries, json): growing a table
     * rehashes it, which was half of building the response */
    lua_createtable(L, 0, 16);
    lua_pushinteger(L, h->status);
    lua_setfield(L, -2, "status");
    if (h->redirect_stop) set_field_str(L, "redirect_stop", h->redirect_stop);
    /* a server that echoes a secret it was sent does not get it into Lua (errors, output) */
    mx_secrets_scrub(&h->secrets, h->resp_headers.p, &h->resp_headers.len);
    mx_secrets_scrub(&h->secrets, h->resp_body.p, &h->resp_body.len);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &RESP_MT_KEY);
    lua_setmetatable(L, -2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &PENDING_HEADERS_KEY);
    lua_pushvalue(L, -2);
    lua_pushlstring(L, h->resp_headers.p ? h->resp_headers.p : "", h->resp_headers.len);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    int to_file = h->output && h->status >= 200 && h->status < 300;
    if (!to_file) {
        lua_pushlstring(L, h->resp_body.p ? h->resp_body.p : "", h->resp_body.len);
        lua_setfield(L, -2, "body");
    } else {
        set_field_str(L, "file", h->output);
    }
    /* decoded by mx_http_decode_json in the task (this may run on a suspended one) */
    int decode =
        h->decode_json && h->resp_body.len > 0 && !to_file && json_response(&h->resp_headers);
    set_field_str(L, "url", shown);
    set_field_str(L, "method", h->method);
    set_field_num(L, "time", mx_now() - h->base.started);
    curl_off_t up = 0, down = 0;
    curl_easy_getinfo(h->easy, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(h->easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
    lua_pushinteger(L, (lua_Integer)up);
    lua_setfield(L, -2, "size_up");
    lua_pushinteger(L, (lua_Integer)down);
    lua_setfield(L, -2, "size_down");
    lua_pushinteger(L, h->redirects);
    lua_setfield(L, -2, "redirects");
    long connects = 0; /* new connections this exchange opened: 0 when one was reused */
    curl_easy_getinfo(h->easy, CURLINFO_NUM_CONNECTS, &connects);
    lua_pushinteger(L, connects);
    lua_setfield(L, -2, "new_connections");
    long version = 0;
    curl_easy_getinfo(h->easy, CURLINFO_HTTP_VERSION, &version);
    set_field_str(L, "http_version",
                  version == CURL_HTTP_VERSION_2_0   ? "2"
                  : version == CURL_HTTP_VERSION_1_0 ? "1.0"
                  : version == CURL_HTTP_VERSION_3   ? "3"
                                                     : "1.1");
    if (!decode) return 1;
    lua_pushlightuserdata(L, (void *)&JSON_BODY);
    return 2;
}

int mx_http_decode_json(lua_State *L, int n) {
    if (n != 2 || lua_touserdata(L, -1) != &JSON_BODY) return n;
    lua_pop(L, 1);
    lua_pushcfunction(L, mx_json_decode);
    lua_getfield(L, -2, "body");
    int ok = lua_pcall(L, 1, 1, 0) == LUA_OK;
    lua_setfield(L, -2, ok ? "json" : "json_error");
    return 1;
}

void mx_http_response_open(lua_State *L) {
    lua_createtable(L, 0, 2); /* every response's metatable */
    lua_pushcfunction(L, resp_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, resp_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &RESP_MT_KEY);
    lua_createtable(L, 0, 0); /* response -> its header block, until resp.headers is read */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &PENDING_HEADERS_KEY);
}
