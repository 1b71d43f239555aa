/*
 * mxdeploy: a Lua 5.4 interpreter (command line compatible with lua5.4) whose chunks run as tasks
 * under the scheduler, with the `mxdeploy` module preloaded as the global `mx`.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "curl_api.h"
#include <lauxlib.h>
#include <lualib.h>

#include "core_module.h"
#include "embedded.h"
#include "http.h"
#include "http_trace.h"
#include "paths.h"
#include "repl.h"
#include "run.h"
#include "sandbox_host.h"
#include "scheduler.h"

#define EXIT_USAGE 2

static const char *progname = "mxdeploy";

static void usage(FILE *to) {
    fprintf(
        to,
        "usage: %s [options] [script [args]]\n"
        "       %s [options] run [NAME [args]]\n"
        "       %s [options] auth status [--check]\n"
        "       %s sandbox [sandbox options]\n"
        "Options of mxdeploy (before the script or `run`; refused after it):\n"
        "  --sandbox         run against a local simulated Mendix Cloud (no credentials needed)\n"
        "  --endpoint URL    send every API to one base URL, laid out as the sandbox serves them\n"
        "                    (also MXDEPLOY_ENDPOINT)\n"
        "  --profile NAME    use this profile of the credentials file (also MXDEPLOY_PROFILE)\n"
        "  --dry-run         send only reads; changes are printed as plan lines, not made\n"
        "  --json [=ndjson]  a workflow's result as one JSON document on stdout (or NDJSON\n"
        "                    events); human text goes to stderr\n"
        "  --yes             confirm changes to Production and deletes/restores/cleans\n"
        "                    (without a terminal they are refused otherwise)\n"
        "  --trace           log HTTP exchanges and retry decisions to stderr (credentials\n"
        "                    redacted); --trace=headers adds the headers, --trace=body the\n"
        "                    bodies too (cut at 4 KiB)\n"
        "  --version         show the version\n"
        "  --help            show this help\n"
        "Options as in lua5.4:\n"
        "  -e stat   execute string 'stat'\n"
        "  -i        enter interactive mode after executing 'script'\n"
        "  -l mod    require library 'mod' into global 'mod' (-l g=mod: into global 'g')\n"
        "  -v        show version information\n"
        "  -E        ignore environment variables (LUA_INIT, LUA_PATH, LUA_CPATH)\n"
        "  -W        turn warnings on\n"
        "  --        stop handling options\n"
        "  -         stop handling options and execute stdin\n"
        "Options of mxdeploy sandbox (serve the simulated Mendix Cloud on 127.0.0.1):\n"
        "  --port N          port of the APIs (default: a free one)\n"
        "  --files-port N    port of the files host (download URLs, redirects)\n"
        "  --time-scale X    multiply every job duration by X (0.05: a 90 s start takes 4.5 s)\n"
        "  --state FILE      keep the simulated world in FILE across restarts\n"
        "  --log FILE        write one JSON line per request (secrets redacted)\n"
        "  --seed FILE       start from this world instead of the built-in one\n"
        "  --faults FILE     fault rules (as sandboxctl:configure{faults=}): JSON or Lua\n"
        "  --tls-cert PEM    serve HTTPS with this certificate (needs --tls-key)\n"
        "  --tls-key PEM     the certificate's private key\n"
        "Credentials: MENDIX_USERNAME and MENDIX_APIKEY (Deploy v1/v2, Build, Backups),\n"
        "MENDIX_TOKEN (Deploy v4, Private Cloud), or profiles in ~/.config/mxdeploy/credentials\n"
        "(chmod 600; choose one with --profile). Never put them on the command line.\n"
        "Scripts: `mxdeploy run NAME` runs NAME.lua from the folders of MXDEPLOY_PATH (separated\n"
        "by ':'), then from the shipped scripts; `mxdeploy run` lists them; `mxdeploy auth status\n"
        "[--check]` shows which credentials each API family would use and where they come from.\n"
        "Exit status: 0 success, 1 failure, 2 usage error or refused confirmation,\n"
        "3 partial failure (some of many targets failed), 130 interrupted.\n",
        progname, progname, progname, progname);
}

/* -v names libcurl's version too, which loads it; the REPL's banner does not (startup). */
static void print_version(int with_libcurl) {
    if (!with_libcurl) {
        printf("mxdeploy %s (%s)\n", MX_VERSION, LUA_RELEASE);
        fflush(stdout);
        return;
    }
    /* curl_version_info, not curl_version(): the latter initialises LDAP and SASL (~5 ms) */
    printf("mxdeploy %s (%s, libcurl %s)\n", MX_VERSION, LUA_RELEASE,
           mx_curl_load() == 0 ? curl_version_info(CURLVERSION_NOW)->version : "not found");
    fflush(stdout);
}

struct options {
    int sandbox, trace, interactive, version, banner, no_env, warnings, has_e;
    int dry_run, yes;
    const char *json, *profile, *endpoint; /* NULL when not given */
    int script;                            /* index of the script in argv, 0 if none */
    int command;                           /* index of `run` / `auth` in argv, 0 if none */
    int first_lua_arg;
};

/* Options of mxdeploy itself: given after a script name they would be the script's arguments
 * (and --sandbox after the name once sent a run to the real cloud), so they are refused there. */
static const char *const host_options[] = {"--sandbox", "--trace",   "--dry-run",  "--json",
                                           "--yes",     "--profile", "--endpoint", NULL};

static const char *host_option_name(const char *a) {
    for (const char *const *h = host_options; *h; h++) {
        size_t n = strlen(*h);
        if (strncmp(a, *h, n) == 0 && (a[n] == '\0' || a[n] == '=')) return *h;
    }
    return NULL;
}

/* Refuses host options among a script's arguments (argv[from..argc)), up to a `--`. --dry-run
 * is the exception: every script takes it (it puts the client in dry-run mode either way). */
static int check_script_args(int argc, char **argv, int from, struct options *o) {
    for (int i = from; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) return 0;
        const char *h = host_option_name(argv[i]);
        if (!h) continue;
        if (strcmp(argv[i], "--dry-run") == 0) {
            o->dry_run = 1;
            continue;
        }
        fprintf(stderr,
                "%s: %s is an option of mxdeploy: put it before the script name "
                "(mxdeploy %s ... SCRIPT ...)\n",
                progname, h, h);
        return -1;
    }
    return 0;
}

/* --name VALUE or --name=VALUE; advances *i. Returns NULL (after a message) when missing. */
static const char *option_value(int argc, char **argv, int *i, const char *name) {
    size_t n = strlen(name);
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (*i + 1 >= argc || argv[*i + 1][0] == '\0') {
        fprintf(stderr, "%s: %s needs a value (see --help)\n", progname, name);
        return NULL;
    }
    return argv[++*i];
}

/* Parses mxdeploy's own long options, then lua5.4's. Returns -1 on bad usage. */
static int parse_args(int argc, char **argv, struct options *o) {
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0'; i++) {
        if (strcmp(argv[i], "--sandbox") == 0)
            o->sandbox = 1;
        else if (strcmp(argv[i], "--trace") == 0)
            o->trace = MX_TRACE_EXCHANGES;
        else if (strncmp(argv[i], "--trace=", 8) == 0 && mx_trace_level(argv[i] + 8) > 0)
            o->trace = mx_trace_level(argv[i] + 8);
        else if (strcmp(argv[i], "--version") == 0)
            o->version = 1;
        else if (strcmp(argv[i], "--dry-run") == 0)
            o->dry_run = 1;
        else if (strcmp(argv[i], "--yes") == 0)
            o->yes = 1;
        else if (strcmp(argv[i], "--json") == 0)
            o->json = "document";
        else if (strncmp(argv[i], "--json=", 7) == 0) {
            const char *v = argv[i] + 7;
            if (strcmp(v, "ndjson") != 0 && strcmp(v, "document") != 0) {
                fprintf(stderr, "%s: --json takes 'document' or 'ndjson', not '%s'\n", progname, v);
                return -1;
            }
            o->json = v;
        } else if (strncmp(argv[i], "--profile", 9) == 0 &&
                   (argv[i][9] == '\0' || argv[i][9] == '=')) {
            if (!(o->profile = option_value(argc, argv, &i, "--profile"))) return -1;
        } else if (strncmp(argv[i], "--endpoint", 10) == 0 &&
                   (argv[i][10] == '\0' || argv[i][10] == '=')) {
            if (!(o->endpoint = option_value(argc, argv, &i, "--endpoint"))) return -1;
            if (strncmp(o->endpoint, "http://", 7) != 0 &&
                strncmp(o->endpoint, "https://", 8) != 0) {
                fprintf(stderr, "%s: --endpoint needs an http(s) URL, not '%s'\n", progname,
                        o->endpoint);
                return -1;
            }
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            exit(0);
        } else {
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", progname, argv[i]);
            return -1;
        }
    }
    o->first_lua_arg = i;
    if (i < argc && (strcmp(argv[i], "run") == 0 || strcmp(argv[i], "auth") == 0)) {
        o->command = i;
        return check_script_args(argc, argv, i + 1, o);
    }
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "run") == 0) { /* after -e/-l: `mxdeploy -e SETUP run NAME` */
            o->command = i;
            return check_script_args(argc, argv, i + 1, o);
        }
        if (a[0] != '-') {
            o->script = i;
            return check_script_args(argc, argv, i + 1, o);
        }
        if (strcmp(a, "--") == 0) {
            if (i + 1 < argc) o->script = i + 1;
            return 0; /* `--`: everything after the script name is its own, taken literally */
        }
        if (strcmp(a, "-") == 0) {
            o->script = i;
            return 0;
        }
        switch (a[1]) {
        case 'i':
            o->interactive = 1;
            o->banner = 1;
            if (a[2]) goto bad;
            break;
        case 'v':
            o->version = 1;
            if (a[2]) goto bad;
            break;
        case 'E':
            o->no_env = 1;
            if (a[2]) goto bad;
            break;
        case 'W':
            o->warnings = 1;
            if (a[2]) goto bad;
            break;
        case 'e':
            o->has_e = 1;
            /* fall through */
        case 'l':
            if (a[2] == '\0') {
                if (++i >= argc || argv[i][0] == '-') {
                    fprintf(stderr, "%s: '%s' needs an argument (see --help)\n", progname, a);
                    return -1;
                }
            }
            break;
        default:
        bad:
            fprintf(stderr, "%s: unrecognized option '%s' (see --help)\n", progname, a);
            return -1;
        }
    }
    return 0;
}

/* arg table as lua5.4 builds it: script at 0, interpreter and options at negative indices. */
static void create_arg_table(lua_State *L, int argc, char **argv, int script) {
    int base = script ? script : argc;
    lua_createtable(L, argc - base, base + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - base);
    }
    lua_setglobal(L, "arg");
}

/* Runs LUA_INIT_5_4 or LUA_INIT (a chunk, or @file) as lua5.4 does. */
static int run_lua_init(lua_State *L) {
    const char *name = "=LUA_INIT_5_4";
    const char *init = getenv("LUA_INIT_5_4");
    if (!init) {
        name = "=LUA_INIT";
        init = getenv("LUA_INIT");
    }
    if (!init) return 0;
    int status =
        init[0] == '@' ? luaL_loadfile(L, init + 1) : luaL_loadbuffer(L, init, strlen(init), name);
    return mx_run_loaded(L, status, 0);
}

/* Runs -e and -l options in order; returns nonzero on failure. */
static int run_options(lua_State *L, char **argv, int from, int to) {
    for (int i = from; i < to; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l')) continue;
        const char *val = a[2] ? a + 2 : argv[++i];
        int rc;
        if (a[1] == 'e') {
            rc = mx_run_loaded(L, luaL_loadbuffer(L, val, strlen(val), "=(command line)"), 0);
        } else {
            const char *eq = strchr(val, '=');
            char global[256];
            const char *mod = eq ? eq + 1 : val;
            snprintf(global, sizeof global, "%.*s", eq ? (int)(eq - val) : (int)strlen(val), val);
            if (!eq) { /* lua5.4: the global is the name up to the first '-' */
                char *dash = strchr(global, '-');
                if (dash) *dash = '\0';
            }
            rc = mx_run_require(L, mod, global);
        }
        if (rc) return rc;
    }
    return 0;
}

/* The folder of the running script goes first on package.path, so that a team's `lib/` modules
 * load from any working directory. */
static int add_script_folder(lua_State *L, const char *fname) {
    static const char code[] = "return require('mxdeploy.host.run').add_script_folder(...)";
    if (luaL_loadbuffer(L, code, sizeof code - 1, "=(script folder)") != LUA_OK)
        return mx_run_loaded(L, LUA_ERRSYNTAX, 0);
    lua_pushstring(L, fname);
    return mx_run_loaded(L, LUA_OK, 1);
}

static int run_script(lua_State *L, int argc, char **argv, int script) {
    const char *fname = argv[script];
    if (strcmp(fname, "-") == 0 && strcmp(argv[script - 1], "--") != 0) fname = NULL;
    int nargs = argc - script - 1;
    if (fname && add_script_folder(L, fname)) return 1;
    int status = luaL_loadfile(L, fname);
    if (status == LUA_OK) {
        luaL_checkstack(L, nargs, "too many arguments to script");
        for (int i = script + 1; i < argc; i++)
            lua_pushstring(L, argv[i]);
    }
    return mx_run_loaded(L, status, status == LUA_OK ? nargs : 0);
}

/* Lets thousands of concurrent transfers (and an in-process sandbox) have their sockets. */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* --sandbox: an in-process simulated cloud behind the default client, stopped at exit. */
static int attach_sandbox(lua_State *L) {
    static const char code[] =
        "local sb = require('mxdeploy.sandboxctl').start{}\n"
        "package.loaded['mxdeploy.active_sandbox'] = sb\n"
        "mx.use_sandbox(sb)\n"
        "io.stderr:write('[sandbox] simulated Mendix Cloud at ', sb.url, '\\n')\n";
    return mx_run_loaded(L, luaL_loadbuffer(L, code, sizeof code - 1, "=(sandbox)"), 0);
}

/* The run options (--dry-run, --yes, --json, --profile, --endpoint) reach the `mxdeploy` module
 * through mx.setup: the default client and the step library read them from mx.options. */
static int apply_run_options(lua_State *L, const struct options *o) {
    if (!o->dry_run && !o->yes && !o->json && !o->profile && !o->endpoint) return 0;
    static const char code[] =
        "local dry_run, yes, json, profile, endpoint = ...\n"
        "mx.setup{dry_run = dry_run, yes = yes, json = json or false, profile = profile, "
        "endpoint = endpoint}\n";
    if (luaL_loadbuffer(L, code, sizeof code - 1, "=(options)") != LUA_OK)
        return mx_run_loaded(L, LUA_ERRSYNTAX, 0);
    lua_pushboolean(L, o->dry_run);
    lua_pushboolean(L, o->yes);
    if (o->json)
        lua_pushstring(L, o->json);
    else
        lua_pushnil(L);
    if (o->profile)
        lua_pushstring(L, o->profile);
    else
        lua_pushnil(L);
    if (o->endpoint)
        lua_pushstring(L, o->endpoint);
    else
        lua_pushnil(L);
    return mx_run_loaded(L, LUA_OK, 5);
}

/* `mxdeploy run ...` and `mxdeploy auth ...`: host/lua/run.lua and host/lua/auth.lua. */
static int run_command(lua_State *L, int argc, char **argv, int command) {
    static const char code[] = "local module, shipped = ...\n"
                               "return require('mxdeploy.host.' .. module).main(shipped, "
                               "select(3, ...))\n";
    if (luaL_loadbuffer(L, code, sizeof code - 1, "=(command)") != LUA_OK)
        return mx_run_loaded(L, LUA_ERRSYNTAX, 0);
    lua_pushstring(L, argv[command]);
    lua_pushstring(L, mx_shipped_scripts_dir());
    int nargs = argc - command - 1;
    luaL_checkstack(L, nargs, "too many arguments");
    for (int i = command + 1; i < argc; i++)
        lua_pushstring(L, argv[i]);
    return mx_run_loaded(L, LUA_OK, 2 + nargs);
}

struct pmain {
    int argc;
    char **argv;
    struct options *o;
    int rc;
};

static int pmain(lua_State *L) {
    struct pmain *pm = lua_touserdata(L, 1);
    struct options *o = pm->o;
    int argc = pm->argc;
    char **argv = pm->argv;
    luaL_checkversion(L);
    if (o->no_env) {
        lua_pushboolean(L, 1);
        lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
    }
    luaL_openlibs(L);
    mx_core_install(L);
    mx_embedded_install(L, mx_embedded_host);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_mxdeploy_sandboxctl);
    lua_setfield(L, -2, "mxdeploy.sandboxctl");
    lua_pushcfunction(L, luaopen_mxdeploy_host_paths);
    lua_setfield(L, -2, "mxdeploy.host.paths");
    lua_pop(L, 1);
    create_arg_table(L, argc, argv, o->script);
    if (o->warnings) lua_warning(L, "@on", 0);
    if (o->trace) mx_http_trace = o->trace;
    pm->rc = 1;
    if (mx_run_require(L, "mxdeploy", "mx")) return 0;
    if (apply_run_options(L, o)) return 0;
    if (o->sandbox && attach_sandbox(L) != 0) return 0;
    if (!o->no_env && run_lua_init(L)) return 0;
    if (o->command) {
        if (run_options(L, argv, o->first_lua_arg, o->command)) return 0;
        if (run_command(L, argc, argv, o->command)) return 0;
        pm->rc = mx_run_drain(L);
        return 0;
    }
    int stop = o->script ? o->script : argc;
    if (run_options(L, argv, o->first_lua_arg, stop)) return 0;
    if (o->script && run_script(L, argc, argv, o->script)) return 0;
    if (o->interactive) {
        mx_repl(L);
    } else if (!o->script && !o->has_e && !o->version) {
        if (isatty(STDIN_FILENO)) {
            print_version(0);
            mx_repl(L);
        } else if (mx_run_loaded(L, luaL_loadfile(L, NULL), 0)) {
            return 0;
        }
    }
    pm->rc = mx_run_drain(L);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "sandbox") == 0) return mx_sandbox_command(argc - 1, argv + 1);
    struct options o = {0};
    if (parse_args(argc, argv, &o) != 0) return EXIT_USAGE; /* the one-line reason is out */
    if (o.version)
        print_version(1);
    else if (o.banner)
        print_version(0);
    raise_fd_limit();
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
        return 1;
    }
    struct pmain pm = {argc, argv, &o, 1};
    lua_pushcfunction(L, pmain);
    lua_pushlightuserdata(L, &pm);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "%s: %s\n", progname, luaL_tolstring(L, -1, NULL));
        pm.rc = 1;
    }
    int interrupted = mx_sched_interrupted(); /* 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP */
    lua_close(L);
    if (interrupted) return 128 + interrupted;
    /* an error that says how the run ends (a refused confirmation: 2) */
    return pm.rc == 1 && mx_run_exit_code ? mx_run_exit_code : pm.rc;
}
