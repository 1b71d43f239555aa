/* The host's side of the sandbox: `mxdeploy sandbox ...` and the in-process sandbox. */
#ifndef MX_SANDBOX_HOST_H
#define MX_SANDBOX_HOST_H
#include <stddef.h>
#include <lua.h>

/* `mxdeploy sandbox [--port N] [--files-port N] [--state FILE] [--log FILE] [--seed FILE]
 * [--time-scale X]`; argv[0] is "sandbox". Serves until SIGINT/SIGTERM. Returns the exit code. */
int mx_sandbox_command(int argc, char **argv);

/* Opens `mxdeploy.sandboxctl` (start/stop an in-process sandbox from Lua):
 *   local sb = sandboxctl.start{seed=, state=, log=, time_scale=, faults=, durations=, port=,
 *                               files_port=}   (time_scale defaults to
 * $MXDEPLOY_SANDBOX_TIME_SCALE) sb.url, sb.files_url, sb.username, sb.apikey, sb.token,
 * sb.readonly_token, sb.bases = {["deploy-v1"]=, ["deploy-v2"]=, ["build-v1"]=, ["backups-v2"]=,
 *               ["deploy-v4"]=, ["pc-deploy"]=, ["pc-build"]=}
 *   sb:configure{faults=, time_scale=}; sb:requests() -> array of log records {seq, time,
 *   listener, method, path, query, status, faults, credentials, auth_ok, headers (lowercase
 *   names; secret-bearing values such as mendix-apikey/authorization/cookie are "<redacted>"),
 *   body_size, body (non-multipart, <= 64 KiB), parts (multipart names/filenames)}; see the
 *   comment at the top of sandbox/init.lua. No secret is ever stored in the log.
 *   sb:reset_log(); sb:world() -> copy of the simulated state; sb:stop() (also __gc/__close). */
int luaopen_mxdeploy_sandboxctl(lua_State *L);

/* ---- In-process sandbox for `mxdeploy --sandbox script.lua` ---- */
struct mx_sandbox;

/* Starts a sandbox on free 127.0.0.1 ports with the embedded seed. The time scale comes from
 * the environment variable MXDEPLOY_SANDBOX_TIME_SCALE (default 1.0). NULL + err on failure. */
struct mx_sandbox *mx_sandbox_start_default(char *err, size_t errlen);

/* "http://127.0.0.1:PORT" (api listener) and the files listener's URL. */
const char *mx_sandbox_url(const struct mx_sandbox *sb);
const char *mx_sandbox_files_url(const struct mx_sandbox *sb);

/* Base URL of one API, by the `api` column of operations.tsv: "deploy-v1" and "build-v1"
 * (URL/deploy/api/1), "deploy-v2" and "backups-v2" (URL/deploy/api/v2), "deploy-v4"
 * (URL/cloud/api/v4), "pc-deploy" and "pc-build" (URL/privatecloud/api/v4). NULL if unknown. */
const char *mx_sandbox_base(const struct mx_sandbox *sb, const char *api);

/* The seeded test credentials (API key user and read-write / read-only PATs). */
const char *mx_sandbox_username(const struct mx_sandbox *sb);
const char *mx_sandbox_apikey(const struct mx_sandbox *sb);
const char *mx_sandbox_token(const struct mx_sandbox *sb);
const char *mx_sandbox_readonly_token(const struct mx_sandbox *sb);

/* Stops the listeners (waits for in-flight requests) and frees sb. NULL is a no-op. */
void mx_sandbox_stop(struct mx_sandbox *sb);

#endif
