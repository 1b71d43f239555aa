/* libmicrohttpd loaded when the sandbox starts: see mhd_api.h. */
#define MX_MHD_API_IMPL
#include "mhd_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#ifndef MX_LIBMHD_SONAME
#define MX_LIBMHD_SONAME "libmicrohttpd.so.12"
#endif

struct mx_mhd_api mx_mhd;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];

static void load(void) {
    void *lib = dlopen(MX_LIBMHD_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(load_error, sizeof load_error, "cannot load %s: %s", MX_LIBMHD_SONAME, dlerror());
        return;
    }
    struct mx_mhd_api api;
    void *sym;
#define MX_MHD_RESOLVE(f)                                                                          \
    sym = dlsym(lib, #f);                                                                          \
    if (!sym) {                                                                                    \
        snprintf(load_error, sizeof load_error, "%s has no %s", MX_LIBMHD_SONAME, #f);             \
        return;                                                                                    \
    }                                                                                              \
    memcpy(&api.f, &sym, sizeof sym);
    MX_MHD_FUNCTIONS(MX_MHD_RESOLVE)
#undef MX_MHD_RESOLVE
    mx_mhd = api;
}

static struct MHD_Daemon *unavailable(unsigned int flags, uint16_t port,
                                      MHD_AcceptPolicyCallback apc, void *apc_cls,
                                      MHD_AccessHandlerCallback dh, void *dh_cls, ...) {
    (void)flags, (void)port, (void)apc, (void)apc_cls, (void)dh, (void)dh_cls;
    fprintf(stderr, "mxdeploy: the sandbox cannot start: %s\n", load_error);
    return NULL;
}

__typeof__(MHD_start_daemon) *mx_mhd_start_daemon(void) {
    pthread_once(&once, load);
    return mx_mhd.MHD_start_daemon ? mx_mhd.MHD_start_daemon : unavailable;
}
