/*
 * libFuzzer target for mxdeploy.json (host/json.c): decode any bytes; whatever decodes must encode
 * (plain, sorted, indented), and encoding is a fixed point: encode(decode(encode(v))) ==
 * encode(v), so no value is lost or changed on the way (see tests/fuzz/README.md).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "json.h"

static const char check[] =
    "local json, text = ...\n"
    "local ok, v = pcall(json.decode, text)\n"
    "if not ok then assert(type(v) == 'string' and v:find('JSON', 1, true), v) return end\n"
    "local ok1, once = pcall(json.encode, v, {sort_keys = true})\n"
    "if not ok1 then\n" /* only nesting past the encoder's 128 levels and numbers past the double
                         * range (decoded as inf, which JSON cannot write) may refuse */
    "  assert(once:find('deeper than', 1, true) or once:find('encode inf', 1, true), once)\n"
    "  return\n"
    "end\n"
    "local twice = json.encode(json.decode(once), {sort_keys = true})\n"
    "assert(once == twice, 'not a fixed point:\\n' .. once .. '\\n' .. twice)\n"
    "local pretty = json.encode(v, {indent = true, sort_keys = true})\n"
    "assert(json.encode(json.decode(pretty), {sort_keys = true}) == once, 'indent changed the "
    "value')\n"
    "json.encode(v)\n";

/* A fresh state per input, closed after it: every allocation is freed, so libFuzzer's leak
 * check means something. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    if (luaL_loadbuffer(L, check, sizeof check - 1, "=fuzz_json") != LUA_OK) abort();
    luaopen_mxdeploy_json(L);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        fprintf(stderr, "fuzz_json: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_close(L);
    return 0;
}
