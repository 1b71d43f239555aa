/*
 * mxdeploy.json on yajl (Debian's libyajl2): its callback parser builds Lua values in one pass and
 * its generator writes them; this file only maps between the two.
 *  - decoding: arrays get the metatable json.array_mt (so `[]` stays an array), integers in the
 *    text stay exact Lua integers (ids past 2^53 keep every digit), `null` is json.null;
 *  - encoding: array_mt tables are arrays (also when empty), integers are exact, floats use the
 *    shortest text that reads back as the same double, `/` is not escaped; a table inside itself
 *    is refused at once; options `indent` and `sort_keys` make output for people.
 * See ARCHITECTURE.md for why yajl and not lua-cjson.
 */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#define ARRAY_MT_KEY "mxdeploy.json.array_mt"
#define DECODE_MAX_DEPTH 1000
/* yajl's generator keeps its state in a fixed array of YAJL_MAX_DEPTH (128) levels. */
#define ENCODE_MAX_DEPTH YAJL_MAX_DEPTH

/* ---- allocation: a failure raises a Lua memory error instead of yajl's assert ------------- */

static void *raise_if_null(void *ctx, void *p) {
    if (!p) luaL_error((lua_State *)ctx, "not enough memory");
    return p;
}

static void *json_malloc(void *ctx, size_t n) {
    return raise_if_null(ctx, malloc(n));
}

static void *json_realloc(void *ctx, void *p, size_t n) {
    return raise_if_null(ctx, realloc(p, n));
}

static void json_free(void *ctx, void *p) {
    (void)ctx;
    free(p);
}

/* The yajl handles live in userdata, so a Lua error raised from a callback (or the allocator)
 * still frees them. */
struct handle_box {
    yajl_handle parser;
    yajl_gen gen;
};

static int box_gc(lua_State *L) {
    struct handle_box *b = lua_touserdata(L, 1);
    if (b->parser) yajl_free(b->parser);
    if (b->gen) yajl_gen_free(b->gen);
    b->parser = NULL;
    b->gen = NULL;
    return 0;
}

static struct handle_box *push_box(lua_State *L) {
    struct handle_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->parser = NULL;
    b->gen = NULL;
    if (luaL_newmetatable(L, "mxdeploy.json.handle")) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

/* ---- decoding ------------------------------------------------------------------------------ */

/*
 * Each open container is a slot on the Lua stack (a placeholder until its table is made) followed
 * by its pending items: values (array) or key, value pairs (object). A container's table is made
 * when it closes, at its final size, and filled from the stack: filling a table key by key grew
 * it 0, 1, 2, 4, 8 (a rehash each time), which was a third of decoding a typical answer. A large
 * container is flushed into its table every FLUSH_ITEMS stack slots, so the stack stays bounded.
 */
#define FLUSH_ITEMS 512

struct level {
    int slot;         /* stack index of the container (placeholder until made) */
    char array, made; /* an array; its table exists (after a flush) */
    lua_Integer next; /* an array's next index */
};

struct decoder {
    lua_State *L;
    int depth;
    struct level lv[DECODE_MAX_DEPTH + 1];
};

/* Moves the pending items of the innermost container into its table (made if need be). */
static void flush_level(struct decoder *d) {
    lua_State *L = d->L;
    struct level *l = &d->lv[d->depth];
    int top = lua_gettop(L), n = top - l->slot;
    if (!l->made) {
        lua_createtable(L, l->array ? n : 0, l->array ? 0 : n / 2);
        if (l->array) {
            lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT_KEY);
            lua_setmetatable(L, -2);
        }
        lua_replace(L, l->slot);
        l->made = 1;
    }
    if (l->array) {
        for (int k = n; k >= 1; k--) /* pops the top item each time */
            lua_rawseti(L, l->slot, l->next + k - 1);
        l->next += n;
    } else { /* in order, so a repeated key keeps its last value */
        for (int i = l->slot + 1; i < top; i += 2) {
            lua_pushvalue(L, i);
            lua_pushvalue(L, i + 1);
            lua_rawset(L, l->slot);
        }
        lua_settop(L, l->slot);
    }
}

/* A value was pushed: it is an item of the open container (at depth 0 it is the result). */
static int add_value(struct decoder *d) {
    if (d->depth == 0) return 1;
    struct level *l = &d->lv[d->depth];
    int pending = lua_gettop(d->L) - l->slot;
    if (pending >= FLUSH_ITEMS) flush_level(d); /* an object flushes after a value: pairs whole */
    return lua_checkstack(d->L, 4) ? 1 : 0;
}

static int on_null(void *ctx) {
    struct decoder *d = ctx;
    lua_pushlightuserdata(d->L, NULL);
    return add_value(d);
}

static int on_boolean(void *ctx, int v) {
    struct decoder *d = ctx;
    lua_pushboolean(d->L, v);
    return add_value(d);
}

/* The literal as yajl validated it: an integer when it fits int64, else a float. */
static int on_number(void *ctx, const char *s, size_t n) {
    struct decoder *d = ctx;
    char buf[64];
    if (n < sizeof buf) {
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (lua_stringtonumber(d->L, buf) == 0) return 0;
    } else { /* a very long literal (many digits): let Lua read it from a string */
        lua_pushlstring(d->L, s, n);
        int ok = lua_stringtonumber(d->L, lua_tostring(d->L, -1)) != 0;
        lua_remove(d->L, ok ? -2 : -1);
        if (!ok) return 0;
    }
    return add_value(d);
}

static int on_string(void *ctx, const unsigned char *s, size_t n) {
    struct decoder *d = ctx;
    lua_pushlstring(d->L, (const char *)s, n);
    return add_value(d);
}

static int on_key(void *ctx, const unsigned char *s, size_t n) {
    struct decoder *d = ctx;
    lua_pushlstring(d->L, (const char *)s, n);
    return 1;
}

static int open_container(struct decoder *d, int array) {
    if (d->depth >= DECODE_MAX_DEPTH) return 0;
    if (!lua_checkstack(d->L, 4)) return 0;
    lua_pushboolean(d->L, 0); /* the placeholder */
    struct level *l = &d->lv[++d->depth];
    l->slot = lua_gettop(d->L);
    l->array = (char)array;
    l->made = 0;
    l->next = 1;
    return 1;
}

static int close_container(void *ctx) {
    struct decoder *d = ctx;
    flush_level(d);
    d->depth--;
    return add_value(d);
}

static int on_start_map(void *ctx) {
    return open_container(ctx, 0);
}

static int on_start_array(void *ctx) {
    return open_container(ctx, 1);
}

static const yajl_callbacks decode_callbacks = {
    on_null, on_boolean,      NULL,           NULL,           on_number, on_string, on_start_map,
    on_key,  close_container, on_start_array, close_container};

/* Raises "invalid JSON: <yajl's reason> at byte N" (or the depth error). */
static int raise_parse_error(lua_State *L, struct handle_box *b, struct decoder *d, const char *s,
                             size_t n, size_t at) {
    if (d->depth >= DECODE_MAX_DEPTH)
        return luaL_error(L, "invalid JSON: nesting deeper than %d levels", DECODE_MAX_DEPTH);
    unsigned char *msg = yajl_get_error(b->parser, 0, (const unsigned char *)s, n);
    char reason[160];
    snprintf(reason, sizeof reason, "%s", msg ? (const char *)msg : "parse error");
    if (msg) yajl_free_error(b->parser, msg);
    size_t nl = strcspn(reason, "\n");
    reason[nl] = '\0';
    return luaL_error(L, "invalid JSON: %s at byte %I", reason, (LUAI_UACINT)at);
}

static int json_decode(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    lua_settop(L, 1);
    struct handle_box *b = push_box(L);
    struct decoder dec; /* ~16 KB of C stack; no allocation per decode */
    struct decoder *d = &dec;
    d->L = L;
    d->depth = 0;
    yajl_alloc_funcs af = {json_malloc, json_realloc, json_free, L};
    b->parser = yajl_alloc(&decode_callbacks, &af, d);
    yajl_config(b->parser, yajl_dont_validate_strings, 1); /* bytes pass through, as with cjson */
    int base = lua_gettop(L);
    if (yajl_parse(b->parser, (const unsigned char *)s, n) != yajl_status_ok)
        return raise_parse_error(L, b, d, s, n, yajl_get_bytes_consumed(b->parser));
    if (yajl_complete_parse(b->parser) != yajl_status_ok)
        return raise_parse_error(L, b, d, s, n, n);
    if (lua_gettop(L) != base + 1) return luaL_error(L, "invalid JSON: no value");
    /* freed now, not when the box is collected: the GC does not see yajl's buffers, and 4,096
     * tasks' finished parsers waiting for it were 13 MB */
    yajl_free(b->parser);
    b->parser = NULL;
    return 1;
}

int mx_json_decode(lua_State *L) {
    return json_decode(L);
}

/* ---- encoding ------------------------------------------------------------------------------ */

struct encoder {
    lua_State *L;
    yajl_gen g;
    int sort_keys;
    int visiting; /* stack index of the set of tables being encoded (cycle check) */
};

static void encode_value(struct encoder *e, int idx, int depth);

/* Shortest "%.Ng" (N = 15..17) that reads back as the same double: floats round-trip. */
static void format_float(char *buf, size_t size, double v) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static void check_gen(struct encoder *e, yajl_gen_status st) {
    if (st == yajl_gen_status_ok) return;
    luaL_error(e->L, "cannot encode JSON (yajl status %d)", (int)st);
}

static void encode_number(struct encoder *e, int idx) {
    lua_State *L = e->L;
    if (lua_isinteger(L, idx)) {
        check_gen(e, yajl_gen_integer(e->g, (long long)lua_tointeger(L, idx)));
        return;
    }
    double v = (double)lua_tonumber(L, idx);
    if (!isfinite(v)) luaL_error(L, "cannot encode %s as JSON", isnan(v) ? "nan" : "inf");
    char buf[40];
    format_float(buf, sizeof buf, v);
    /* -0.0 prints as "-0", which reads back as the integer 0: keep it a float */
    if (v == 0 && signbit(v)) snprintf(buf, sizeof buf, "-0.0");
    check_gen(e, yajl_gen_number(e->g, buf, strlen(buf)));
}

static void encode_string(struct encoder *e, int idx) {
    size_t n;
    const char *s = lua_tolstring(e->L, idx, &n);
    check_gen(e, yajl_gen_string(e->g, (const unsigned char *)s, n));
}

/* A key as JSON text: strings as they are, numbers written as numbers are. */
static void encode_key(struct encoder *e, int idx) {
    lua_State *L = e->L;
    int t = lua_type(L, idx);
    if (t == LUA_TSTRING) {
        encode_string(e, idx);
        return;
    }
    if (t != LUA_TNUMBER)
        luaL_error(L, "cannot encode a table key of type %s as JSON", luaL_typename(L, idx));
    char buf[40];
    if (lua_isinteger(L, idx))
        snprintf(buf, sizeof buf, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
    else
        format_float(buf, sizeof buf, (double)lua_tonumber(L, idx));
    check_gen(e, yajl_gen_string(e->g, (const unsigned char *)buf, strlen(buf)));
}

/*
 * As lua-cjson decides: a table whose keys are all positive integers is an array of length max
 * key (holes are null) unless it is excessively sparse; an empty table is an object unless it
 * carries array_mt. Returns the array length, or -1 for an object.
 */
static lua_Integer array_length(lua_State *L, int idx, int marked) {
    lua_Integer max = 0, items = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        lua_Integer k;
        if (lua_isinteger(L, -1))
            k = lua_tointeger(L, -1);
        else if (lua_type(L, -1) == LUA_TNUMBER && lua_numbertointeger(lua_tonumber(L, -1), &k))
            ;
        else
            k = 0;
        if (k <= 0) {
            lua_pop(L, 1);
            return -1;
        }
        if (k > max) max = k;
        items++;
    }
    if (max == 0) return marked ? 0 : -1;
    if (max > 10 && max > items * 2)
        luaL_error(L, "cannot encode an excessively sparse array as JSON (max index %I, %I items)",
                   (LUAI_UACINT)max, (LUAI_UACINT)items);
    return max;
}

static void encode_array(struct encoder *e, int idx, lua_Integer len, int depth) {
    if (len == 0) { /* as raw text: beautified, yajl would open and close it on two lines */
        check_gen(e, yajl_gen_number(e->g, "[]", 2));
        return;
    }
    check_gen(e, yajl_gen_array_open(e->g));
    for (lua_Integer i = 1; i <= len; i++) {
        lua_rawgeti(e->L, idx, i);
        encode_value(e, lua_gettop(e->L), depth + 1);
        lua_pop(e->L, 1);
    }
    check_gen(e, yajl_gen_array_close(e->g));
}

static int key_order(const void *a, const void *b) {
    const struct {
        const char *s;
        size_t n;
    } *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
    return c != 0 ? c : (x->n > y->n) - (x->n < y->n);
}

/* sort_keys: the keys as text, sorted bytewise, each followed by its value. */
static void encode_sorted_members(struct encoder *e, int idx, int depth) {
    lua_State *L = e->L;
    struct member {
        const char *s;
        size_t n;
    };
    lua_newtable(L); /* text -> original key; keeps the texts alive */
    int keys = lua_gettop(L);
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        if (lua_type(L, -1) == LUA_TNUMBER) { /* as encode_key writes it */
            char buf[40];
            if (lua_isinteger(L, -1))
                snprintf(buf, sizeof buf, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, -1));
            else
                format_float(buf, sizeof buf, (double)lua_tonumber(L, -1));
            lua_pop(L, 1);
            lua_pushstring(L, buf);
        } else if (lua_type(L, -1) != LUA_TSTRING) {
            luaL_error(L, "cannot encode a table key of type %s as JSON", luaL_typename(L, -1));
        }
        lua_pushvalue(L, -2);
        lua_rawset(L, keys);
        count++;
    }
    struct member *m = lua_newuserdatauv(L, (count ? count : 1) * sizeof *m, 0);
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, keys)) {
        lua_pop(L, 1);
        m[i].s = lua_tolstring(L, -1, &m[i].n);
        i++;
    }
    qsort(m, count, sizeof *m, key_order);
    for (i = 0; i < count; i++) {
        check_gen(e, yajl_gen_string(e->g, (const unsigned char *)m[i].s, m[i].n));
        lua_pushlstring(L, m[i].s, m[i].n);
        lua_rawget(L, keys);
        lua_rawget(L, idx);
        encode_value(e, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
}

static void encode_object(struct encoder *e, int idx, int depth) {
    lua_State *L = e->L;
    lua_pushnil(L);
    if (!lua_next(L, idx)) { /* empty: raw text, as for [] */
        check_gen(e, yajl_gen_number(e->g, "{}", 2));
        return;
    }
    lua_pop(L, 2);
    check_gen(e, yajl_gen_map_open(e->g));
    if (e->sort_keys) {
        encode_sorted_members(e, idx, depth);
    } else {
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            encode_key(e, -2);
            encode_value(e, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
        }
    }
    check_gen(e, yajl_gen_map_close(e->g));
}

/* A table whose metatable has __pairs (a response, whose headers are built when first asked for) is
 * encoded as what pairs() walks: with its __pairs function at the top of the stack, replaces it by
 * a plain table of those members and returns that table's index. */
static int pairs_copy(lua_State *L, int idx) {
    lua_pushvalue(L, idx);
    lua_call(L, 1, 3); /* iterator, state, control */
    int f = lua_gettop(L) - 2;
    lua_newtable(L);
    for (;;) {
        lua_pushvalue(L, f);
        lua_pushvalue(L, f + 1);
        lua_pushvalue(L, f + 2);
        lua_call(L, 2, 2);
        if (lua_isnil(L, -2)) {
            lua_pop(L, 2);
            break;
        }
        lua_pushvalue(L, -2);
        lua_replace(L, f + 2); /* the key is the next control value */
        lua_rawset(L, f + 3);
    }
    lua_replace(L, f); /* the copy where the iterator was */
    lua_pop(L, 2);
    return f;
}

static void encode_table(struct encoder *e, int idx, int depth) {
    lua_State *L = e->L;
    if (depth >= ENCODE_MAX_DEPTH)
        luaL_error(L, "cannot encode JSON nested deeper than %d levels", ENCODE_MAX_DEPTH);
    luaL_checkstack(L, 8, "JSON nesting too deep");
    lua_pushvalue(L, idx);
    if (lua_rawget(L, e->visiting) != LUA_TNIL)
        luaL_error(L, "cannot encode a table that contains itself (a cycle) as JSON");
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, e->visiting);
    int marked = 0, members = idx;
    if (lua_getmetatable(L, idx)) {
        lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT_KEY);
        marked = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (!marked && luaL_getmetafield(L, idx, "__pairs") != LUA_TNIL)
            members = pairs_copy(L, idx);
    }
    lua_Integer len = array_length(L, members, marked);
    if (len >= 0)
        encode_array(e, members, len, depth);
    else
        encode_object(e, members, depth);
    if (members != idx) lua_remove(L, members);
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, e->visiting);
}

static void encode_value(struct encoder *e, int idx, int depth) {
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        check_gen(e, yajl_gen_null(e->g));
        return;
    case LUA_TBOOLEAN:
        check_gen(e, yajl_gen_bool(e->g, lua_toboolean(L, idx)));
        return;
    case LUA_TNUMBER:
        encode_number(e, idx);
        return;
    case LUA_TSTRING:
        encode_string(e, idx);
        return;
    case LUA_TTABLE:
        encode_table(e, idx, depth);
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) { /* json.null */
            check_gen(e, yajl_gen_null(e->g));
            return;
        }
        /* fallthrough */
    default:
        luaL_error(L, "cannot encode a %s value as JSON", luaL_typename(L, idx));
    }
}

/* The `indent` option: true (two spaces), a number of spaces (0..16) or a string of them. */
static void indent_option(lua_State *L, int opts, char *indent, size_t size) {
    indent[0] = '\0';
    lua_getfield(L, opts, "indent");
    if (lua_isboolean(L, -1) || lua_isnil(L, -1)) {
        if (lua_toboolean(L, -1)) snprintf(indent, size, "  ");
    } else if (lua_isinteger(L, -1)) {
        lua_Integer n = lua_tointeger(L, -1);
        luaL_argcheck(L, n >= 0 && n <= 16, 2, "indent must be true, 0..16 or a string of spaces");
        memset(indent, ' ', (size_t)n);
        indent[n] = '\0';
    } else if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) < size &&
               strspn(lua_tostring(L, -1), " \t") == lua_rawlen(L, -1)) {
        snprintf(indent, size, "%s", lua_tostring(L, -1));
    } else {
        luaL_argerror(L, 2, "indent must be true, 0..16 or a string of spaces");
    }
    lua_pop(L, 1);
}

/* encode(value [, {indent = true|n|"  ", sort_keys = true}]) -> JSON text */
static int json_encode(lua_State *L) {
    luaL_checkany(L, 1);
    lua_settop(L, 2);
    char indent[20] = "";
    int sort_keys = 0;
    if (!lua_isnil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            lua_pop(L, 1);
            const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
            if (strcmp(k, "indent") != 0 && strcmp(k, "sort_keys") != 0)
                return luaL_argerror(
                    L, 2, lua_pushfstring(L, "unknown option '%s' (indent, sort_keys)", k));
        }
        indent_option(L, 2, indent, sizeof indent);
        lua_getfield(L, 2, "sort_keys");
        sort_keys = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    struct handle_box *b = push_box(L);
    yajl_alloc_funcs af = {json_malloc, json_realloc, json_free, L};
    b->gen = yajl_gen_alloc(&af);
    if (indent[0]) {
        yajl_gen_config(b->gen, yajl_gen_beautify, 1);
        yajl_gen_config(b->gen, yajl_gen_indent_string, indent);
    }
    lua_newtable(L);
    struct encoder e = {L, b->gen, sort_keys, lua_gettop(L)};
    encode_value(&e, 1, 0);
    const unsigned char *out;
    size_t n;
    yajl_gen_get_buf(b->gen, &out, &n);
    if (indent[0] && n > 0 && out[n - 1] == '\n') n--; /* yajl ends beautified text with one */
    lua_pushlstring(L, (const char *)out, n);
    yajl_gen_free(b->gen); /* now: its buffer is outside what the GC counts (see json_decode) */
    b->gen = NULL;
    return 1;
}

/* ---- markers ------------------------------------------------------------------------------- */

/* json.array([t]) -> t marked as a JSON array (a new empty one without argument). */
static int json_array(lua_State *L) {
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
    }
    lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT_KEY);
    lua_setmetatable(L, 1);
    return 1;
}

static int json_is_array(lua_State *L) {
    int yes = 0;
    if (lua_istable(L, 1) && lua_getmetatable(L, 1)) {
        lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT_KEY);
        yes = lua_rawequal(L, -1, -2);
    }
    lua_pushboolean(L, yes);
    return 1;
}

int luaopen_mxdeploy_json(lua_State *L) {
    luaL_Reg funcs[] = {{"decode", json_decode},
                        {"encode", json_encode},
                        {"array", json_array},
                        {"is_array", json_is_array},
                        {NULL, NULL}};
    luaL_newlib(L, funcs);
    lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT_KEY); /* one marker per state */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushstring(L, "array");
        lua_setfield(L, -2, "__name");
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, ARRAY_MT_KEY);
    }
    lua_setfield(L, -2, "array_mt");
    lua_pushlightuserdata(L, NULL); /* the same value as cjson.null */
    lua_setfield(L, -2, "null");
    return 1;
}
