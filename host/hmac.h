/* HMAC-SHA256, base64 and constant-time comparison for `mxdeploy.core` (libcrypto). */
#ifndef MX_HMAC_H
#define MX_HMAC_H

#include <lua.h>

/* hmac_sha256(key, data) -> 32 raw bytes; base64(bytes) -> standard base64 text. */
int mx_crypto_hmac_sha256(lua_State *L);
int mx_crypto_base64(lua_State *L);

/* Adds hmac_sha256, base64 and equal_ct to the table at the stack top. */
void mx_crypto_open(lua_State *L);

#endif
