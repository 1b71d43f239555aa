/* The host's side of the sandbox: see sandbox_host.h. */
#include "sandbox_host.h"

#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "server.h"
#include "embedded.h"
#include "json.h"

extern const struct mx_embedded mx_embedded_sandbox[];

/* The sandbox's Lua state: our JSON module and the embedded sandbox sources. */
static void open_sandbox_libs(lua_State *L) {
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_mxdeploy_json);
    lua_setfield(L, -2, "mxdeploy.json");
    lua_pop(L, 1);
    mx_embedded_install(L, mx_embedded_sandbox);
}

struct mx_sandbox {
    struct mx_sbserver *srv;
    char *username, *apikey, *token, *readonly_token;
};

static char *field_dup(lua_State *L, int idx, const char *name) {
    lua_getfield(L, idx, name);
    const char *v = lua_tostring(L, -1);
    char *r = strdup(v ? v : "");
    lua_pop(L, 1);
    return r;
}

static struct mx_sandbox *wrap(struct mx_sbserver *srv) {
    struct mx_sandbox *sb = calloc(1, sizeof *sb);
    sb->srv = srv;
    lua_State *L = luaL_newstate();
    if (L && mx_sbserver_call(srv, "credentials", NULL, 0, L) == 1 && lua_istable(L, -1)) {
        sb->username = field_dup(L, -1, "username");
        sb->apikey = field_dup(L, -1, "apikey");
        sb->token = field_dup(L, -1, "token");
        sb->readonly_token = field_dup(L, -1, "readonly_token");
    } else {
        sb->username = strdup("");
        sb->apikey = strdup("");
        sb->token = strdup("");
        sb->readonly_token = strdup("");
    }
    if (L) lua_close(L);
    return sb;
}

/* MXDEPLOY_SANDBOX_TIME_SCALE, or 0 (= the app's default, 1.0). */
static double env_time_scale(void) {
    const char *ts = getenv("MXDEPLOY_SANDBOX_TIME_SCALE");
    return ts && *ts ? atof(ts) : 0;
}

/* MXDEPLOY_SANDBOX_LOG: the request log of a sandbox started without an explicit log (so what a
 * `mxdeploy --sandbox` run did can be checked afterwards, e.g. that a dry run changed nothing). */
static const char *env_log(void) {
    const char *log = getenv("MXDEPLOY_SANDBOX_LOG");
    return log && *log ? log : NULL;
}

const char *mx_sandbox_url(const struct mx_sandbox *sb) {
    return mx_sbserver_url(sb->srv);
}
const char *mx_sandbox_files_url(const struct mx_sandbox *sb) {
    return mx_sbserver_files_url(sb->srv);
}
const char *mx_sandbox_username(const struct mx_sandbox *sb) {
    return sb->username;
}
const char *mx_sandbox_apikey(const struct mx_sandbox *sb) {
    return sb->apikey;
}
const char *mx_sandbox_token(const struct mx_sandbox *sb) {
    return sb->token;
}
const char *mx_sandbox_readonly_token(const struct mx_sandbox *sb) {
    return sb->readonly_token;
}

void mx_sandbox_stop(struct mx_sandbox *sb) {
    if (!sb) return;
    mx_sbserver_stop(sb->srv);
    free(sb->username);
    free(sb->apikey);
    free(sb->token);
    free(sb->readonly_token);
    free(sb);
}

/* ---------- mxdeploy.sandboxctl ---------- */

#define CTL_MT "mxdeploy.sandboxctl.handle"

struct ctl_handle {
    struct mx_sandbox *sb;
};

static struct ctl_handle *get_handle(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "_handle");
    struct ctl_handle *h = luaL_checkudata(L, -1, CTL_MT);
    lua_pop(L, 1);
    return h;
}

static struct ctl_handle *live_handle(lua_State *L) {
    struct ctl_handle *h = get_handle(L);
    if (!h->sb) luaL_error(L, "sandbox is stopped");
    return h;
}

static int handle_gc(lua_State *L) {
    struct ctl_handle *h = luaL_checkudata(L, 1, CTL_MT);
    mx_sandbox_stop(h->sb);
    h->sb = NULL;
    return 0;
}

static int ctl_call(lua_State *L, const char *method, int argidx) {
    struct ctl_handle *h = live_handle(L);
    if (mx_sbserver_call(h->sb->srv, method, L, argidx, L) < 0) return lua_error(L);
    return 1;
}

static int ctl_configure(lua_State *L) {
    luaL_checktype(L, 2, LUA_TTABLE);
    ctl_call(L, "configure", 2);
    lua_settop(L, 1);
    return 1;
}

static int ctl_requests(lua_State *L) {
    return ctl_call(L, "requests", 0);
}

static int ctl_reset_log(lua_State *L) {
    ctl_call(L, "reset_log", 0);
    lua_settop(L, 1);
    return 1;
}

static int ctl_world(lua_State *L) {
    return ctl_call(L, "snapshot", 0);
}

static int ctl_stop(lua_State *L) {
    struct ctl_handle *h = get_handle(L);
    mx_sandbox_stop(h->sb);
    h->sb = NULL;
    return 0;
}

static int ctl_start(lua_State *L) {
    struct mx_sbserver_opts o;
    memset(&o, 0, sizeof o);
    o.open_libs = open_sandbox_libs;
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        o.from = L;
        o.from_idx = 1;
        lua_getfield(L, 1, "port");
        o.port = (int)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 1, "files_port");
        o.files_port = (int)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 1, "time_scale");
        int has_scale = !lua_isnil(L, -1);
        lua_getfield(L, 1, "tls_cert"); /* strings stay alive in the options table */
        o.tls_cert = lua_tostring(L, -1);
        lua_getfield(L, 1, "tls_key");
        o.tls_key = lua_tostring(L, -1);
        lua_pop(L, 5);
        if (!has_scale) o.time_scale = env_time_scale();
        lua_getfield(L, 1, "log");
        if (lua_isnil(L, -1)) o.log = env_log();
        lua_pop(L, 1);
    } else {
        o.time_scale = env_time_scale();
        o.log = env_log();
    }
    char err[512];
    struct mx_sbserver *srv = mx_sbserver_start(&o, err, sizeof err);
    if (!srv) return luaL_error(L, "%s", err);
    struct mx_sandbox *sb = wrap(srv);

    lua_createtable(L, 0, 12);
    struct ctl_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->sb = sb;
    luaL_setmetatable(L, CTL_MT);
    lua_setfield(L, -2, "_handle");
    lua_pushstring(L, mx_sandbox_url(sb));
    lua_setfield(L, -2, "url");
    lua_pushstring(L, mx_sandbox_files_url(sb));
    lua_setfield(L, -2, "files_url");
    lua_pushstring(L, sb->username);
    lua_setfield(L, -2, "username");
    lua_pushstring(L, sb->apikey);
    lua_setfield(L, -2, "apikey");
    lua_pushstring(L, sb->token);
    lua_setfield(L, -2, "token");
    lua_pushstring(L, sb->readonly_token);
    lua_setfield(L, -2, "readonly_token");
    /* every API family's base URL, from the sandbox's own registry (sandbox/families.lua) */
    if (mx_sbserver_call(sb->srv, "bases", NULL, 0, L) != 1) {
        lua_pop(L, 1); /* the error message */
        lua_newtable(L);
    }
    lua_setfield(L, -2, "bases");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setmetatable(L, -2);
    return 1;
}

static int ctl_close(lua_State *L) {
    return ctl_stop(L);
}

int luaopen_mxdeploy_sandboxctl(lua_State *L) {
    if (luaL_newmetatable(L, CTL_MT)) {
        lua_pushcfunction(L, handle_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    /* metatable of sandbox objects */
    lua_newtable(L);
    lua_newtable(L);
    static const luaL_Reg methods[] = {{"configure", ctl_configure}, {"requests", ctl_requests},
                                       {"reset_log", ctl_reset_log}, {"world", ctl_world},
                                       {"stop", ctl_stop},           {NULL, NULL}};
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ctl_close);
    lua_setfield(L, -2, "__close");
    int mt = lua_gettop(L);

    lua_newtable(L);
    lua_pushvalue(L, mt);
    lua_pushcclosure(L, ctl_start, 1);
    lua_setfield(L, -2, "start");
    lua_remove(L, mt);
    return 1;
}

/* ---------- mxdeploy sandbox ---------- */

static void usage(void) {
    printf("usage: mxdeploy sandbox [--port N] [--files-port N] [--state FILE] [--log FILE] "
           "[--seed FILE] [--time-scale X] [--faults FILE] [--tls-cert PEM --tls-key PEM]\n");
}

/* What `mxdeploy sandbox` serves: every API family of sandbox/families.lua (app:families()), the
 * families sharing a base URL on one line, so a new family shows without an edit here. */
static void print_banner(struct mx_sandbox *sb) {
    printf("mxdeploy sandbox: a simulated Mendix Cloud on 127.0.0.1 (Ctrl-C stops it)\n\n");
    lua_State *L = luaL_newstate();
    char try_base[256] = "";
    if (L && mx_sbserver_call(sb->srv, "families", NULL, 0, L) == 1 && lua_istable(L, -1)) {
        int width = (int)strlen(mx_sandbox_files_url(sb)) + (int)strlen("/files/");
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, -1, i);
            lua_getfield(L, -1, "base");
            int w = (int)luaL_len(L, -1);
            if (w > width) width = w;
            lua_pop(L, 2);
        }
        for (lua_Integer i = 1; i <= n;) {
            lua_geti(L, -1, i);
            lua_getfield(L, -1, "base");
            char base[256];
            snprintf(base, sizeof base, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
            lua_getfield(L, -2, "auth");
            if (!try_base[0] && lua_tostring(L, -1) && !strcmp(lua_tostring(L, -1), "apikey"))
                snprintf(try_base, sizeof try_base, "%s", base);
            lua_pop(L, 1);
            printf("  %-*s ", width, base);
            for (const char *sep = "";; sep = ", ") { /* the titles of the families at `base` */
                lua_getfield(L, -2, "title");
                printf("%s%s", sep, lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
                lua_pop(L, 3); /* title, base, family */
                if (++i > n) break;
                lua_geti(L, -1, i);
                lua_getfield(L, -1, "base");
                if (!lua_tostring(L, -1) || strcmp(lua_tostring(L, -1), base)) {
                    lua_pop(L, 2);
                    break;
                }
            }
            printf("\n");
        }
        printf("  %s/files/%*s files (log downloads, CLI)\n\n", mx_sandbox_files_url(sb),
               width - (int)strlen(mx_sandbox_files_url(sb)) - (int)strlen("/files/"), "");
    }
    if (L) lua_close(L);
    printf("  Mendix-Username: %s\n", sb->username);
    printf("  Mendix-ApiKey:   %s\n", sb->apikey);
    printf("  Authorization:   MxToken %s   (read-only: MxToken %s)\n\n", sb->token,
           sb->readonly_token);
    if (try_base[0])
        printf("  try: curl -H 'Mendix-Username: %s' -H 'Mendix-ApiKey: %s' %s/apps\n",
               sb->username, sb->apikey, try_base);
}

/* Bad usage: one line on stderr, exit code 2. */
static int bad_usage(const char *what, const char *option) {
    fprintf(stderr, "mxdeploy sandbox: %s '%s' (see --help)\n", what, option);
    return 2;
}

int mx_sandbox_command(int argc, char **argv) {
    struct mx_sbserver_opts o;
    memset(&o, 0, sizeof o);
    o.open_libs = open_sandbox_libs;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (i + 1 >= argc)
            return bad_usage(strncmp(a, "--", 2) == 0 ? "missing value for" : "unknown option", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--port") || !strcmp(a, "--files-port")) {
            char *end;
            long port = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || port < 0 || port > 65535) {
                fprintf(stderr, "mxdeploy sandbox: %s needs a port number from 0 to 65535\n", a);
                return 2;
            }
            *(!strcmp(a, "--port") ? &o.port : &o.files_port) = (int)port;
        } else if (!strcmp(a, "--state"))
            o.state = v;
        else if (!strcmp(a, "--log"))
            o.log = v;
        else if (!strcmp(a, "--seed"))
            o.seed = v;
        else if (!strcmp(a, "--faults"))
            o.faults_file = v; /* read by the sandbox's own loader (sandbox/faults.lua) */
        else if (!strcmp(a, "--time-scale")) {
            char *end;
            o.time_scale = strtod(v, &end);
            if (*v == '\0' || *end != '\0' || !(o.time_scale > 0)) {
                fprintf(stderr, "mxdeploy sandbox: --time-scale needs a positive number\n");
                return 2;
            }
        } else if (!strcmp(a, "--tls-cert"))
            o.tls_cert = v;
        else if (!strcmp(a, "--tls-key"))
            o.tls_key = v;
        else
            return bad_usage("unknown option", a);
    }
    /* Block the signals before any thread starts so that only sigwait sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512];
    struct mx_sbserver *srv = mx_sbserver_start(&o, err, sizeof err);
    if (!srv) {
        /* a bad --faults file is a usage error: faults.load's one line, "faults PATH: ..." */
        const char *bad = o.faults_file ? strstr(err, "faults ") : NULL;
        if (bad && !strncmp(bad + 7, o.faults_file, strlen(o.faults_file))) {
            fprintf(stderr, "mxdeploy sandbox: --%s\n", bad);
            return 2;
        }
        fprintf(stderr, "mxdeploy: %s\n", err);
        return 1;
    }
    if (o.faults_file) fprintf(stderr, "mxdeploy sandbox: fault rules from %s\n", o.faults_file);
    struct mx_sandbox *sb = wrap(srv);
    print_banner(sb);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "mxdeploy sandbox: stopping\n");
    mx_sandbox_stop(sb);
    return 0;
}
