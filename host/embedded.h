/* Lua sources compiled into the binary, and the package searcher that finds them. */
#ifndef MX_EMBEDDED_H
#define MX_EMBEDDED_H
#include <stddef.h>

struct lua_State;

struct mx_embedded {
    const char *name;      /* module name, e.g. "mxdeploy.client" */
    const char *chunkname; /* "@bindings/client.lua" */
    const unsigned char *source;
    size_t len;
};

extern const struct mx_embedded mx_embedded_bindings[];
extern const struct mx_embedded mx_embedded_host[];

/* Adds a searcher for `modules` to package.searchers (after preload). Safe to call per table. */
void mx_embedded_install(struct lua_State *L, const struct mx_embedded *modules);

/* Loads the module's chunk onto the stack; returns a lua_load status or -1 if unknown. */
int mx_embedded_load(struct lua_State *L, const struct mx_embedded *modules, const char *name);

#endif
