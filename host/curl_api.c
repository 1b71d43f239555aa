/* libcurl loaded on first use: see curl_api.h. */
#define MX_CURL_API_IMPL
#include "curl_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#ifndef MX_LIBCURL_SONAME
#define MX_LIBCURL_SONAME "libcurl.so.4"
#endif

struct mx_curl_api mx_curl;

volatile int mx_curl_loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];

static void load(void) {
    void *lib = dlopen(MX_LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(load_error, sizeof load_error, "cannot load %s: %s", MX_LIBCURL_SONAME, dlerror());
        return;
    }
    struct mx_curl_api api;
    void *sym;
#define MX_CURL_RESOLVE(f)                                                                         \
    sym = dlsym(lib, #f);                                                                          \
    if (!sym) {                                                                                    \
        snprintf(load_error, sizeof load_error, "%s has no %s (libcurl too old?)",                 \
                 MX_LIBCURL_SONAME, #f);                                                           \
        return;                                                                                    \
    }                                                                                              \
    memcpy(&api.f, &sym, sizeof sym);
    MX_CURL_FUNCTIONS(MX_CURL_RESOLVE)
#undef MX_CURL_RESOLVE
    mx_curl = api;
    mx_curl_loaded = 1;
}

int mx_curl_load(void) {
    pthread_once(&once, load);
    return mx_curl_loaded ? 0 : -1;
}

const char *mx_curl_error(void) {
    return load_error;
}
