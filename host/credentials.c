#include "credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

#include "scheduler.h"

#define CREDS_MT "mxdeploy.credentials"

static void wipe(char **p) {
    if (*p) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

static char *dup_or_die(const char *s) {
    char *d = strdup(s);
    if (!d) mx_out_of_memory();
    return d;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

/* A value holding a control character (CR LF would inject a header) is refused when read. */
static int has_control(const char *v) {
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return 1;
    return 0;
}

/* Removes one pair of matching quotes around a value, as INI readers do ("a b" -> a b). */
static char *unquote(char *v) {
    size_t n = strlen(v);
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
        v[n - 1] = '\0';
        return v + 1;
    }
    return v;
}

/* Where the credentials file is; empty when no location can be derived. `*from_env` says
 * whether MXDEPLOY_CREDENTIALS named it. */
static void default_path(char *out, size_t n, int *from_env) {
    const char *p = getenv("MXDEPLOY_CREDENTIALS");
    *from_env = 0;
    if (p && *p) {
        snprintf(out, n, "%s", p);
        *from_env = 1;
        return;
    }
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(out, n, "%s/mxdeploy/credentials", xdg);
    else if (home && *home)
        snprintf(out, n, "%s/.config/mxdeploy/credentials", home);
    else
        out[0] = '\0';
}

/*
 * Reads `profile` from the INI-style file into the fields still empty in c. Returns 0 when fine
 * (file missing counts as fine unless `required`), or pushes an error message and returns -1.
 */
static int read_profile(lua_State *L, struct mx_creds *c, const char *path, const char *profile,
                        int required, int from_env) {
    /* O_NONBLOCK: a FIFO opens at once (and is refused below) instead of waiting for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT && !required) {
            if (from_env)
                snprintf(c->note, sizeof c->note,
                         "MXDEPLOY_CREDENTIALS names %s, which does not exist", path);
            return 0;
        }
        lua_pushfstring(L, "credentials file %s%s: %s", path,
                        from_env ? " (MXDEPLOY_CREDENTIALS)" : "", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        lua_pushfstring(L, "credentials file %s%s is not a regular file", path,
                        from_env ? " (MXDEPLOY_CREDENTIALS)" : "");
        return -1;
    }
    if (st.st_uid != getuid() && st.st_uid != 0) {
        close(fd);
        lua_pushfstring(L, "credentials file %s belongs to another user (uid %d); it must be yours",
                        path, (int)st.st_uid);
        return -1;
    }
    if (st.st_mode & 077) {
        close(fd);
        char mode[8];
        snprintf(mode, sizeof mode, "%03o", (unsigned)(st.st_mode & 0777));
        lua_pushfstring(L, "credentials file %s is readable by others (mode %s); run: chmod 600 %s",
                        path, mode, path);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        lua_pushfstring(L, "credentials file %s: %s", path, strerror(errno));
        return -1;
    }
    char iobuf[4096]; /* stdio's own buffer (the whole file: every profile's secrets) would be
                         freed unzeroed */
    setvbuf(f, iobuf, _IOFBF, sizeof iobuf);
    char line[4096];
    int in_profile = 0, found = 0, lineno = 0;
    const char *problem = NULL;
    char key_shown[64] = "";
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#' || *s == ';') continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e || *trim(e + 1) != '\0') {
                problem = "expected [profile]";
                break;
            }
            *e = '\0';
            in_profile = strcmp(trim(s + 1), profile) == 0;
            found |= in_profile;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            problem = "expected key = value";
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = unquote(trim(eq + 1));
        char **slot = strcmp(key, "username") == 0 ? &c->username
                      : strcmp(key, "apikey") == 0 ? &c->apikey
                      : strcmp(key, "token") == 0  ? &c->token
                                                   : NULL;
        if (!slot) {
            snprintf(key_shown, sizeof key_shown, "%s", key);
            for (char *k = key_shown; *k; k++)
                if ((unsigned char)*k < 0x20 || *k == 0x7f) *k = '?';
            problem = "unknown key";
            break;
        }
        if (has_control(val)) {
            snprintf(key_shown, sizeof key_shown, "%s", key);
            problem = "control character in the value of";
            break;
        }
        if (in_profile && !*slot && *val) {
            *slot = dup_or_die(val);
            char *src = slot == &c->username ? c->src_username
                        : slot == &c->apikey ? c->src_apikey
                                             : c->src_token;
            snprintf(src, sizeof c->src_apikey, "%s [%s]", path, profile);
        }
        explicit_bzero(line, sizeof line);
    }
    fclose(f);
    explicit_bzero(iobuf, sizeof iobuf);
    explicit_bzero(line, sizeof line);
    if (problem) {
        if (strcmp(problem, "unknown key") == 0)
            lua_pushfstring(
                L, "credentials file %s:%d: unknown key '%s' (expected username, apikey, token)",
                path, lineno, key_shown);
        else if (key_shown[0])
            lua_pushfstring(L, "credentials file %s:%d: %s %s", path, lineno, problem, key_shown);
        else
            lua_pushfstring(L, "credentials file %s:%d: %s", path, lineno, problem);
        return -1;
    }
    if (!found && required) {
        lua_pushfstring(L, "credentials file %s has no profile [%s]", path, profile);
        return -1;
    }
    return 0;
}

static void take_field(lua_State *L, int opts, const char *name, char **slot, char *src) {
    if (opts == 0) return;
    lua_getfield(L, opts, name);
    if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) > 0) {
        if (has_control(lua_tostring(L, -1)))
            luaL_error(L, "bad argument #1 to 'credentials' (%s contains a control character)",
                       name);
        *slot = dup_or_die(lua_tostring(L, -1));
        snprintf(src, 320, "mx.connect{%s=}", name);
    } else if (!lua_isnil(L, -1))
        luaL_error(L, "bad argument #1 to 'credentials' (%s must be a string)", name);
    lua_pop(L, 1);
}

static void take_env(lua_State *L, const char *var, char **slot, char *src) {
    const char *v = getenv(var);
    if (*slot || !v || !*v) return;
    if (has_control(v)) luaL_error(L, "%s contains a control character; refused", var);
    *slot = dup_or_die(v);
    snprintf(src, 320, "%s", var);
}

/* From the first credentials on, the process writes no core dump (it would hold the secrets) and
 * other processes of the user cannot read its memory (ptrace, /proc/PID/mem). */
static void protect_secrets(void) {
    static int done;
    if (done) return;
    done = 1;
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int mx_creds_new(lua_State *L) {
    protect_secrets();
    int opts = lua_istable(L, 1) ? 1 : 0;
    if (!opts && !lua_isnoneornil(L, 1)) luaL_typeerror(L, 1, "table or nil");
    struct mx_creds *c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CREDS_MT);
    int ud = lua_gettop(L);
    take_field(L, opts, "username", &c->username, c->src_username);
    take_field(L, opts, "apikey", &c->apikey, c->src_apikey);
    take_field(L, opts, "token", &c->token, c->src_token);
    const char *profile = NULL, *file = NULL;
    if (opts) {
        lua_getfield(L, opts, "profile");
        profile = lua_tostring(L, -1);
        lua_getfield(L, opts, "file");
        file = lua_tostring(L, -1);
    }
    int explicit_profile = profile != NULL;
    if (!profile) profile = getenv("MXDEPLOY_PROFILE");
    explicit_profile |= profile != NULL;
    if (!profile) profile = "default";
    snprintf(c->profile, sizeof c->profile, "%s", profile);
    if (!explicit_profile) {
        take_env(L, "MENDIX_USERNAME", &c->username, c->src_username);
        take_env(L, "MENDIX_APIKEY", &c->apikey, c->src_apikey);
        take_env(L, "MENDIX_TOKEN", &c->token, c->src_token);
    }
    char path[4096];
    int from_env = 0;
    if (file)
        snprintf(path, sizeof path, "%s", file);
    else
        default_path(path, sizeof path, &from_env);
    if (path[0] &&
        read_profile(L, c, path, profile, explicit_profile || file != NULL, from_env) != 0)
        return lua_error(L);
    lua_settop(L, ud);
    return 1;
}

struct mx_creds *mx_creds_test(lua_State *L, int idx) {
    return luaL_testudata(L, idx, CREDS_MT);
}

static int creds_has(lua_State *L) {
    struct mx_creds *c = luaL_checkudata(L, 1, CREDS_MT);
    const char *what = luaL_checkstring(L, 2);
    int yes = strcmp(what, "apikey") == 0     ? c->username && c->apikey
              : strcmp(what, "token") == 0    ? c->token != NULL
              : strcmp(what, "username") == 0 ? c->username != NULL
                                              : luaL_argerror(L, 2, "expected 'apikey' or 'token'");
    lua_pushboolean(L, yes);
    return 1;
}

static int creds_source(lua_State *L) {
    struct mx_creds *c = luaL_checkudata(L, 1, CREDS_MT);
    const char *what = luaL_checkstring(L, 2);
    const char *src = strcmp(what, "username") == 0 ? c->src_username
                      : strcmp(what, "apikey") == 0 ? c->src_apikey
                      : strcmp(what, "token") == 0
                          ? c->src_token
                          : (luaL_argerror(L, 2, "expected 'username', 'apikey' or 'token'"), "");
    if (src[0])
        lua_pushstring(L, src);
    else
        lua_pushnil(L);
    return 1;
}

static int creds_note(lua_State *L) {
    struct mx_creds *c = luaL_checkudata(L, 1, CREDS_MT);
    if (c->note[0])
        lua_pushstring(L, c->note);
    else
        lua_pushnil(L);
    return 1;
}

static int creds_profile(lua_State *L) {
    struct mx_creds *c = luaL_checkudata(L, 1, CREDS_MT);
    lua_pushstring(L, c->profile);
    return 1;
}

static int creds_tostring(lua_State *L) {
    struct mx_creds *c = luaL_checkudata(L, 1, CREDS_MT);
    lua_pushfstring(L, "credentials (profile %s; api key %s; token %s)", c->profile,
                    c->username && c->apikey ? "set" : "missing", c->token ? "set" : "missing");
    return 1;
}

static int creds_gc(lua_State *L) {
    struct mx_creds *c = luaL_checkudata(L, 1, CREDS_MT);
    wipe(&c->username);
    wipe(&c->apikey);
    wipe(&c->token);
    return 0;
}

void mx_creds_open(lua_State *L) {
    luaL_Reg methods[] = {
        {"has", creds_has},   {"profile", creds_profile},     {"source", creds_source},
        {"note", creds_note}, {"__tostring", creds_tostring}, {"__gc", creds_gc},
        {NULL, NULL}};
    if (luaL_newmetatable(L, CREDS_MT)) {
        luaL_setfuncs(L, methods, 0);
        lua_pushvalue(L, -1);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "credentials");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, mx_creds_new);
    lua_setfield(L, -2, "credentials");
}
