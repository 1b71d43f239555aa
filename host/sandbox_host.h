/* The host's side of the sandbox: `mxdeploy sandbox ...` and the in-process sandbox. */
#ifndef MX_SANDBOX_HOST_H
#define MX_SANDBOX_HOST_H
#include <lua.h>

/* `mxdeploy sandbox [--port N] [--state FILE] [--log FILE] [--seed FILE]`; argv[0] is "sandbox".
 * Returns the process exit code. */
int mx_sandbox_command(int argc, char **argv);

/* Opens `mxdeploy.sandboxctl` (start/stop an in-process sandbox from Lua). */
int luaopen_mxdeploy_sandboxctl(lua_State *L);

#endif
