/* The host's side of the sandbox: `mxdeploy sandbox ...` and the in-process sandbox. */
#ifndef MX_SANDBOX_HOST_H
#define MX_SANDBOX_HOST_H
#include <stddef.h>
#include <lua.h>

/* `mxdeploy sandbox [--port N] [--files-port N] [--state FILE] [--log FILE] [--seed FILE]
 * [--time-scale X] [--faults FILE] [--tls-cert PEM --tls-key PEM]`; argv[0] is "sandbox". Serves
 * until SIGINT/SIGTERM. Returns the exit code. */
int mx_sandbox_command(int argc, char **argv);

/* Opens `mxdeploy.sandboxctl` (start/stop an in-process sandbox from Lua):
 *   local sb = sandboxctl.start{seed=, state=, log=, time_scale=, faults=, durations=, port=,
 *                               files_port=}   (time_scale defaults to
 * $MXDEPLOY_SANDBOX_TIME_SCALE) sb.url, sb.files_url, sb.username, sb.apikey, sb.token,
 * sb.readonly_token, sb.bases = {["deploy-v1"]=URL, ...}: every family of sandbox/families.lua
 *   sb:configure{faults=, time_scale=}; sb:requests() -> array of log records {seq, time,
 *   listener, method, path, query, status, faults, credentials, auth_ok, headers (lowercase
 *   names; secret-bearing values such as mendix-apikey/authorization/cookie are "<redacted>"),
 *   body_size, body (non-multipart, <= 64 KiB), parts (multipart names/filenames)}; see the
 *   comment at the top of sandbox/init.lua. No secret is ever stored in the log.
 *   sb:reset_log(); sb:world() -> copy of the simulated state; sb:stop() (also __gc/__close). */
int luaopen_mxdeploy_sandboxctl(lua_State *L);

/* ---- The sandbox behind a sandboxctl handle ---- */
struct mx_sandbox;

/* "http://127.0.0.1:PORT" (api listener) and the files listener's URL. */
const char *mx_sandbox_url(const struct mx_sandbox *sb);
const char *mx_sandbox_files_url(const struct mx_sandbox *sb);

/* The seeded test credentials (API key user and read-write / read-only PATs). */
const char *mx_sandbox_username(const struct mx_sandbox *sb);
const char *mx_sandbox_apikey(const struct mx_sandbox *sb);
const char *mx_sandbox_token(const struct mx_sandbox *sb);
const char *mx_sandbox_readonly_token(const struct mx_sandbox *sb);

/* Stops the listeners (waits for in-flight requests) and frees sb. NULL is a no-op. */
void mx_sandbox_stop(struct mx_sandbox *sb);

#endif
