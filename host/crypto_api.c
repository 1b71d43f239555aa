/* libcrypto loaded on first use: see crypto_api.h. */
#define MX_CRYPTO_API_IMPL
#include "crypto_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MX_LIBCRYPTO_SONAME
#define MX_LIBCRYPTO_SONAME "libcrypto.so.3"
#endif

static struct mx_crypto_api api;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    void *lib = dlopen(MX_LIBCRYPTO_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "mxdeploy: cannot load %s: %s\n", MX_LIBCRYPTO_SONAME, dlerror());
        exit(1);
    }
    void *sym;
#define MX_CRYPTO_RESOLVE(f)                                                                       \
    sym = dlsym(lib, #f);                                                                          \
    if (!sym) {                                                                                    \
        fprintf(stderr, "mxdeploy: %s has no %s\n", MX_LIBCRYPTO_SONAME, #f);                      \
        exit(1);                                                                                   \
    }                                                                                              \
    memcpy(&api.f, &sym, sizeof sym);
    MX_CRYPTO_FUNCTIONS(MX_CRYPTO_RESOLVE)
#undef MX_CRYPTO_RESOLVE
}

const struct mx_crypto_api *mx_crypto(void) {
    pthread_once(&once, load);
    return &api;
}
