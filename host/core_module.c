#include "core_module.h"

#include <lauxlib.h>

#include "credentials.h"
#include "embedded.h"
#include "hmac.h"
#include "http.h"
#include "json.h"
#include "redact.h"
#include "scheduler.h"
#include "webhook_server.h"

int luaopen_mxdeploy_core(lua_State *L) {
    lua_newtable(L);
    mx_sched_open(L);
    mx_http_open(L);
    mx_redact_open(L);
    mx_creds_open(L);
    mx_crypto_open(L);
    mx_webhook_open(L);
    return 1;
}

void mx_core_install(lua_State *L) {
    mx_sched_create(L);
    mx_sched_install_coroutine_overrides(L);
    mx_sched_handle_signals();
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_mxdeploy_core);
    lua_setfield(L, -2, "mxdeploy.core");
    lua_pushcfunction(L, luaopen_mxdeploy_json);
    lua_setfield(L, -2, "mxdeploy.json");
    lua_pop(L, 1);
    mx_embedded_install(L, mx_embedded_bindings);
}
