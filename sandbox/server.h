/* The sandbox HTTP server: two libmicrohttpd listeners on 127.0.0.1 (api and files) whose
 * requests are answered by the Lua app `require("mxdeploy.sandbox").new(opts)` running in the
 * server's own lua_State, guarded by a mutex. */
#ifndef MX_SANDBOX_SERVER_H
#define MX_SANDBOX_SERVER_H
#include <stddef.h>
#include <lua.h>

struct mx_sbserver;

struct mx_sbserver_opts {
    int port;          /* api listener port; 0 = pick a free one */
    int files_port;    /* files listener port; 0 = pick a free one */
    const char *seed;  /* seed file path or NULL for the embedded seed */
    const char *state; /* state file (loaded if present, saved after mutations) or NULL */
    const char *log;   /* request log file (JSON lines) or NULL */
    double time_scale; /* <= 0 means "not set" (the app's default 1.0) */
    /* fault rules file, read by the app (new{faults_file=}, sandbox/faults.lua) or NULL */
    const char *faults_file;
    /* Optional: a Lua table at index `from_idx` of `from` whose plain fields (strings, numbers,
     * booleans, nested tables) are copied into the app's opts first; the fields above override. */
    lua_State *from;
    int from_idx;
    /* Makes `require` find what the app needs: mxdeploy.json and the mxdeploy.sandbox.* modules
     * (the host embeds them). Called once on the sandbox's own Lua state. */
    void (*open_libs)(lua_State *L);
    /* PEM files: when both are set the api listener speaks HTTPS (for testing TLS checks). */
    const char *tls_cert, *tls_key;
};

/* Starts both listeners and the app. NULL on failure with a message in err. */
struct mx_sbserver *mx_sbserver_start(const struct mx_sbserver_opts *opts, char *err,
                                      size_t errlen);

/* "http://127.0.0.1:PORT" of the api and the files listener (valid until stop). */
const char *mx_sbserver_url(const struct mx_sbserver *s);
const char *mx_sbserver_files_url(const struct mx_sbserver *s);

/* Calls `app:<method>(arg)` under the sandbox mutex, where arg is a deep copy of the value at
 * `idx` in `from` (idx 0 = no argument). Pushes the call's first result (deep-copied) onto
 * `to` and returns 1, or pushes an error message and returns -1. */
int mx_sbserver_call(struct mx_sbserver *s, const char *method, lua_State *from, int idx,
                     lua_State *to);

/* Stops the listeners (waiting for in-flight requests) and frees everything. */
void mx_sbserver_stop(struct mx_sbserver *s);

/* Deep-copies the value at idx of `from` onto `to` (nil, booleans, numbers, strings, light
 * userdata such as json.null, and tables; cycles and other types become nil). */
void mx_sb_copy_value(lua_State *from, int idx, lua_State *to, int depth);

#endif
