/* HMAC-SHA256, base64 and constant-time comparison for `mxdeploy.core` (libcrypto). */
#ifndef MX_HMAC_H
#define MX_HMAC_H

#include <lua.h>

/* Adds hmac_sha256, base64 and equal_ct to the table at the stack top. */
void mx_crypto_open(lua_State *L);

#endif
