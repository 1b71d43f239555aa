/*
 * libFuzzer target for the response-handling paths: the input is sent as the raw bytes of an
 * HTTP response by a server on 127.0.0.1 (a thread here), to mx.request through the whole
 * runtime (curl, host/http.c's header and body callbacks, the scheduler, the bindings' JSON
 * decoding, error objects and their one-line text). Any outcome but a crash or a raw Lua error
 * (a bug, not a structured error) is fine. See tests/fuzz/README.md.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "core_module.h"
#include "embedded.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *answer; /* the harness's own copy: a connection may outlive its input */
static size_t answer_len;
static int listener;

/* Answers every connection with the current input once its request head has arrived. */
static void *serve(void *arg) {
    (void)arg;
    for (;;) {
        int c = accept(listener, NULL, NULL);
        if (c < 0) continue;
        struct timeval tv = {2, 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[8192];
        size_t got = 0;
        while (got < sizeof buf - 1) {
            ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
            if (n <= 0) break;
            got += (size_t)n;
            buf[got] = '\0';
            if (strstr(buf, "\r\n\r\n")) break;
        }
        pthread_mutex_lock(&lock);
        size_t len = answer_len;
        uint8_t *out = malloc(len ? len : 1);
        if (out && len) memcpy(out, answer, len);
        pthread_mutex_unlock(&lock);
        size_t off = 0;
        while (out && off < len) {
            ssize_t n = send(c, out + off, len - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += (size_t)n;
        }
        free(out);
        close(c);
    }
    return NULL;
}

static const char exercise[] =
    "local mx, url = ...\n"
    "local function outcome(ok, v)\n"
    "  if ok then return end\n"
    "  assert(type(v) == 'table' and type(v.kind) == 'string', 'raw error: ' .. tostring(v))\n"
    "  local line = tostring(v)\n"
    "  assert(not line:find('\\n'), 'error text has a line break: ' .. line)\n"
    "end\n"
    "outcome(pcall(mx.request, {url = url, retry = false, timeout = 5}))\n"
    "local ok, resp = pcall(mx.request, {url = url, retry = false, timeout = 5, raw = true})\n"
    "outcome(ok, resp)\n"
    "if ok and resp then local _ = resp.json, resp.status, resp.headers end\n";

static lua_State *L;
static char url[64];

static void setup(void) {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(listener, (struct sockaddr *)&a, sizeof a) != 0 || listen(listener, 64) != 0 ||
        getsockname(listener, (struct sockaddr *)&a, &len) != 0)
        abort();
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/1/apps", ntohs(a.sin_port));
    pthread_t t;
    pthread_create(&t, NULL, serve, NULL);
    L = luaL_newstate();
    luaL_openlibs(L);
    mx_core_install(L);
    lua_getglobal(L, "require");
    lua_pushstring(L, "mxdeploy");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) abort();
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.mx");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!L) setup();
    pthread_mutex_lock(&lock);
    free(answer);
    answer = malloc(size ? size : 1);
    if (!answer) abort();
    memcpy(answer, data, size);
    answer_len = size;
    pthread_mutex_unlock(&lock);
    if (luaL_loadbuffer(L, exercise, sizeof exercise - 1, "=fuzz_response") != LUA_OK) abort();
    lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.mx");
    lua_pushstring(L, url);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        fprintf(stderr, "fuzz_response: %s\n", lua_tostring(L, -1));
        abort();
    }
    return 0;
}
