/*
 * mxdeploy.json: lua-cjson does the parsing, escaping and number formatting; this layer adds what
 * Debian's cjson 2.1.0 lacks:
 *  - decoded arrays get the metatable json.array_mt, so `[]` stays an array and never turns into
 * `{}`;
 *  - integers in the text stay Lua integers (cjson makes every number a double: 3 -> 3.0, and ids
 *    past 2^53 lose digits);
 *  - encoding honours array_mt (also for empty tables) and writes integers exactly.
 * Decoding walks the (already validated) text next to the decoded value. Encoding substitutes
 * placeholder strings for what cjson cannot write and splices the exact text back in afterwards.
 */
#include "json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua-cjson.h>

#define UV_DECODE lua_upvalueindex(1)
#define UV_ENCODE lua_upvalueindex(2)
#define UV_ARRAY_MT lua_upvalueindex(3)

/* A placeholder is the string "\1mx:<raw json>\1"; cjson writes it as "\u0001mx:<raw>\u0001". */
#define PH_PREFIX "\x01mx:"
#define PH_ENC_PREFIX "\"\\u0001mx:"
#define PH_ENC_SUFFIX "\\u0001\""

struct scan {
    const char *s;
    size_t n, i;
};

static void skip_ws(struct scan *sc) {
    while (sc->i < sc->n && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t' || sc->s[sc->i] == '\n' ||
                             sc->s[sc->i] == '\r'))
        sc->i++;
}

/* At '"': moves past the closing quote; returns 1 when the string holds an escape. */
static int skip_string(struct scan *sc) {
    int escaped = 0;
    sc->i++;
    while (sc->i < sc->n && sc->s[sc->i] != '"') {
        if (sc->s[sc->i] == '\\') {
            escaped = 1;
            sc->i++;
        }
        sc->i++;
    }
    sc->i++;
    return escaped;
}

/* At a scalar other than a string: moves past it; returns 1 if it is an integer literal. */
static int skip_scalar(struct scan *sc) {
    int integer = 1;
    size_t start = sc->i;
    while (sc->i < sc->n) {
        char c = sc->s[sc->i];
        if (c == ',' || c == ']' || c == '}' || c == ' ' || c == '\t' || c == '\n' || c == '\r')
            break;
        if (!((c >= '0' && c <= '9') || (c == '-' && sc->i == start))) integer = 0;
        sc->i++;
    }
    return integer && sc->i > start;
}

/* Pushes the exact integer for the literal s[start, end) if it fits int64; else returns 0. */
static int push_exact_integer(lua_State *L, const char *s, size_t start, size_t end) {
    char buf[32];
    size_t len = end - start;
    if (len >= sizeof buf) return 0;
    memcpy(buf, s + start, len);
    buf[len] = '\0';
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE) return 0;
    lua_pushinteger(L, (lua_Integer)v);
    return 1;
}

static void walk_value(lua_State *L, int container, struct scan *sc);

/* At '[' or '{': moves past the matching bracket. */
static void skip_container(struct scan *sc) {
    int depth = 0;
    do {
        char c = sc->s[sc->i];
        if (c == '"') {
            skip_string(sc);
            continue;
        }
        if (c == '[' || c == '{') depth++;
        if (c == ']' || c == '}') depth--;
        sc->i++;
    } while (depth > 0 && sc->i < sc->n);
}

/*
 * The decoded value of the member that starts at sc->i is at the stack top; `container` holds it
 * under the key at -2 (object) or is NULL-keyed (top level). Integers are written back as integers.
 */
static void walk_member(lua_State *L, int container, int key_index, struct scan *sc) {
    skip_ws(sc);
    char c = sc->s[sc->i];
    if (c == '[' || c == '{') {
        if (lua_istable(L, -1))
            walk_value(L, lua_gettop(L), sc);
        else /* a duplicate key kept a later, different value */
            skip_container(sc);
    } else if (c == '"') {
        skip_string(sc);
    } else {
        size_t start = sc->i;
        if (skip_scalar(sc) && container && push_exact_integer(L, sc->s, start, sc->i)) {
            lua_pushvalue(L, key_index);
            lua_insert(L, -2);
            lua_rawset(L, container);
        }
    }
}

/* At a value: moves past it. */
static void skip_value(struct scan *sc) {
    char c = sc->s[sc->i];
    if (c == '[' || c == '{')
        skip_container(sc);
    else if (c == '"')
        skip_string(sc);
    else
        skip_scalar(sc);
}

/* At the '"' of an object key: pushes the key and moves past it. */
static void push_key(lua_State *L, struct scan *sc) {
    size_t kstart = sc->i;
    if (skip_string(sc)) { /* escaped key: let cjson unescape it */
        lua_pushvalue(L, UV_DECODE);
        lua_pushlstring(L, sc->s + kstart, sc->i - kstart);
        lua_call(L, 1, 1);
    } else {
        lua_pushlstring(L, sc->s + kstart + 1, sc->i - kstart - 2);
    }
}

/* sc->i is at '[' or '{' of the table at stack index `t`. */
static void walk_value(lua_State *L, int t, struct scan *sc) {
    luaL_checkstack(L, 8, "JSON nesting too deep");
    char open = sc->s[sc->i++];
    if (open == '[') {
        lua_pushvalue(L, UV_ARRAY_MT);
        lua_setmetatable(L, t);
        for (lua_Integer k = 1;; k++) {
            skip_ws(sc);
            if (sc->s[sc->i] == ']') break;
            lua_pushinteger(L, k);
            lua_rawgeti(L, t, k);
            walk_member(L, t, lua_gettop(L) - 1, sc);
            lua_pop(L, 2);
            skip_ws(sc);
            if (sc->s[sc->i] == ',') sc->i++;
        }
    } else {
        /* cjson keeps the last of duplicate keys: only that member is walked (walking an earlier
         * one would write its integers or array marker into the later value) */
        size_t first = sc->i;
        lua_newtable(L); /* key -> offset of the value of its last occurrence */
        int last = lua_gettop(L);
        for (int pass = 0; pass < 2; pass++) {
            sc->i = first;
            for (;;) {
                skip_ws(sc);
                if (sc->s[sc->i] == '}') break;
                push_key(L, sc);
                skip_ws(sc);
                sc->i++; /* ':' */
                skip_ws(sc);
                if (pass == 0) {
                    lua_pushinteger(L, (lua_Integer)sc->i);
                    lua_rawset(L, last);
                    skip_value(sc);
                } else {
                    lua_pushvalue(L, -1);
                    lua_rawget(L, last);
                    int is_last = lua_tointeger(L, -1) == (lua_Integer)sc->i;
                    lua_pop(L, 1);
                    if (is_last) {
                        lua_pushvalue(L, -1);
                        lua_rawget(L, t);
                        walk_member(L, t, lua_gettop(L) - 1, sc);
                        lua_pop(L, 1);
                    } else {
                        skip_value(sc);
                    }
                    lua_pop(L, 1);
                }
                skip_ws(sc);
                if (sc->s[sc->i] == ',') sc->i++;
            }
        }
        lua_pop(L, 1);
    }
    sc->i++; /* closing bracket */
}

static int json_decode(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    lua_settop(L, 1);
    lua_pushvalue(L, UV_DECODE);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1); /* validates the whole text or raises */
    struct scan sc = {s, n, 0};
    skip_ws(&sc);
    if (lua_istable(L, 2)) {
        walk_value(L, 2, &sc);
    } else if (lua_type(L, 2) == LUA_TNUMBER) {
        size_t start = sc.i;
        if (skip_scalar(&sc) && push_exact_integer(L, s, start, sc.i)) return 1;
    }
    lua_settop(L, 2);
    return 1;
}

/* True when `v` (at idx) needs placeholders to be encoded exactly. */
static int needs_rewrite(lua_State *L, int idx, int depth) {
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        return lua_isinteger(L, idx);
    case LUA_TSTRING:
        return strncmp(lua_tostring(L, idx), PH_PREFIX, strlen(PH_PREFIX)) == 0;
    case LUA_TTABLE:
        if (depth > 1000) return 0; /* cjson reports the depth error itself */
        if (lua_getmetatable(L, idx)) {
            int arr = lua_rawequal(L, -1, UV_ARRAY_MT);
            lua_pop(L, 1);
            if (arr) {
                lua_pushnil(L);
                if (!lua_next(L, idx)) return 1; /* empty array */
                lua_pop(L, 2);
            }
        }
        luaL_checkstack(L, 4, "JSON nesting too deep");
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (needs_rewrite(L, -1, depth + 1)) {
                lua_pop(L, 2);
                return 1;
            }
            lua_pop(L, 1);
        }
        return 0;
    default:
        return 0;
    }
}

static int is_placeholder(lua_State *L, int idx) {
    return lua_type(L, idx) == LUA_TSTRING &&
           strncmp(lua_tostring(L, idx), PH_PREFIX, strlen(PH_PREFIX)) == 0;
}

/* Pushes a copy of the value at idx with placeholders for empty arrays and integers. */
static void rewrite(lua_State *L, int idx, int depth) {
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            lua_pushfstring(L, PH_PREFIX "%I\x01", (LUAI_UACINT)lua_tointeger(L, idx));
        else
            lua_pushvalue(L, idx);
        return;
    case LUA_TSTRING:
        if (is_placeholder(L, idx))
            luaL_error(L, "cannot encode a string that starts with the reserved bytes \\1mx:");
        lua_pushvalue(L, idx);
        return;
    case LUA_TTABLE: {
        if (depth > 1000) { /* too deep (or a cycle): cjson reports the depth error itself */
            lua_pushvalue(L, idx);
            return;
        }
        int arr = 0;
        if (lua_getmetatable(L, idx)) {
            arr = lua_rawequal(L, -1, UV_ARRAY_MT);
            lua_pop(L, 1);
        }
        luaL_checkstack(L, 4, "JSON nesting too deep");
        if (arr) {
            lua_pushnil(L);
            if (!lua_next(L, idx)) {
                lua_pushstring(L, PH_PREFIX "[]\x01");
                return;
            }
            lua_pop(L, 2);
        }
        lua_newtable(L);
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (is_placeholder(L, -2)) /* a key is written as it is: it would be spliced */
                luaL_error(L, "cannot encode a string that starts with the reserved bytes \\1mx:");
            rewrite(L, -1, depth + 1);
            lua_remove(L, -2);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        }
        return;
    }
    default:
        lua_pushvalue(L, idx);
        return;
    }
}

/* Replaces every "\u0001mx:RAW\u0001" in s with RAW. */
static void splice_placeholders(lua_State *L, const char *s, size_t n) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t plen = strlen(PH_ENC_PREFIX), slen = strlen(PH_ENC_SUFFIX);
    const char *p = s, *end = s + n;
    for (;;) {
        const char *hit = NULL;
        for (const char *q = p; q + plen <= end; q++) {
            q = memchr(q, '"', (size_t)(end - q));
            if (!q || q + plen > end) break;
            const char *bs = q; /* an escaped quote is inside a string, not a placeholder */
            while (bs > s && bs[-1] == '\\')
                bs--;
            if ((q - bs) % 2 == 0 && memcmp(q, PH_ENC_PREFIX, plen) == 0) {
                hit = q;
                break;
            }
        }
        if (!hit) break;
        luaL_addlstring(&b, p, (size_t)(hit - p));
        const char *raw = hit + plen, *close = raw;
        while (close + slen <= end && memcmp(close, PH_ENC_SUFFIX, slen) != 0)
            close++;
        luaL_addlstring(&b, raw, (size_t)(close - raw));
        p = close + slen;
    }
    luaL_addlstring(&b, p, (size_t)(end - p));
    luaL_pushresult(&b);
}

static int json_encode(lua_State *L) {
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    int rewritten = needs_rewrite(L, 1, 0);
    lua_pushvalue(L, UV_ENCODE);
    if (rewritten)
        rewrite(L, 1, 0);
    else
        lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    if (!rewritten) return 1;
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    splice_placeholders(L, s, n);
    return 1;
}

/* json.array([t]) -> t marked as a JSON array (a new empty one without argument). */
static int json_array(lua_State *L) {
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
    }
    lua_pushvalue(L, UV_ARRAY_MT);
    lua_setmetatable(L, 1);
    return 1;
}

static int json_is_array(lua_State *L) {
    int yes = 0;
    if (lua_istable(L, 1) && lua_getmetatable(L, 1)) yes = lua_rawequal(L, -1, UV_ARRAY_MT);
    lua_pushboolean(L, yes);
    return 1;
}

static void configure(lua_State *L, int cjson, const char *fn, int arg) {
    lua_getfield(L, cjson, fn);
    lua_pushinteger(L, arg);
    lua_call(L, 1, 0);
}

/* Pushes a fresh cjson instance with its own configuration. */
static void push_cjson(lua_State *L) {
#ifdef MX_CJSON_FROM_REQUIRE /* the loadable module: the static cjson is not PIC; use cjson.so */
    lua_getglobal(L, "require");
    lua_pushstring(L, "cjson");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "new");
    lua_remove(L, -2);
    lua_call(L, 0, 1);
#else
    luaopen_cjson(L);
#endif
}

int luaopen_mxdeploy_json(lua_State *L) {
    push_cjson(L);
    int cjson = lua_gettop(L);
    configure(L, cjson, "encode_number_precision", 14);
    configure(L, cjson, "encode_max_depth", 1000);
    configure(L, cjson, "decode_max_depth", 1000);
    lua_getfield(L, cjson, "decode_invalid_numbers");
    lua_pushboolean(L, 0);
    lua_call(L, 1, 0);
    lua_getfield(L, cjson, "encode_invalid_numbers");
    lua_pushboolean(L, 0);
    lua_call(L, 1, 0);

    luaL_Reg funcs[] = {{"decode", json_decode},
                        {"encode", json_encode},
                        {"array", json_array},
                        {"is_array", json_is_array},
                        {NULL, NULL}};
    lua_newtable(L); /* module */
    int mod = lua_gettop(L);
    lua_newtable(L); /* array_mt */
    lua_pushstring(L, "array");
    lua_setfield(L, -2, "__name");
    lua_pushvalue(L, -1);
    lua_setfield(L, mod, "array_mt");
    int mt = lua_gettop(L);
    for (luaL_Reg *r = funcs; r->name; r++) {
        lua_getfield(L, cjson, "decode");
        lua_getfield(L, cjson, "encode");
        lua_pushvalue(L, mt);
        lua_pushcclosure(L, r->func, 3);
        lua_setfield(L, mod, r->name);
    }
    lua_pop(L, 1);
    lua_getfield(L, cjson, "null");
    lua_setfield(L, mod, "null");
    return 1;
}
