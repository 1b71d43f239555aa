/*
 * Small crypto primitives for `mxdeploy.core`, over OpenSSL's libcrypto (webhook signatures):
 *   core.hmac_sha256(key, data) -> 32 raw bytes
 *   core.base64(bytes)          -> standard base64 text (with padding)
 *   core.equal_ct(a, b)         -> whether two strings are equal, in time independent of where
 *                                  they differ (CRYPTO_memcmp; the length is not secret)
 * The policy (what is signed, tolerance, several signatures) is Lua: bindings/webhooks.lua.
 * The sandbox signs its webhook deliveries with the same hmac_sha256 and base64.
 */
#include "hmac.h"

#include <lauxlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

int mx_crypto_hmac_sha256(lua_State *L) {
    size_t klen, dlen;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *data = luaL_checklstring(L, 2, &dlen);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int outlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)data, dlen, out, &outlen))
        return luaL_error(L, "hmac_sha256 failed");
    lua_pushlstring(L, (const char *)out, outlen);
    OPENSSL_cleanse(out, sizeof out);
    return 1;
}

int mx_crypto_base64(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    if (n > (size_t)1 << 28) return luaL_error(L, "base64: input too large");
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, 4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    luaL_pushresultsize(&b, (size_t)len);
    return 1;
}

static int l_equal_ct(lua_State *L) {
    size_t an, bn;
    const char *a = luaL_checklstring(L, 1, &an);
    const char *b = luaL_checklstring(L, 2, &bn);
    lua_pushboolean(L, an == bn && CRYPTO_memcmp(a, b, an) == 0);
    return 1;
}

void mx_crypto_open(lua_State *L) {
    static const luaL_Reg funcs[] = {{"hmac_sha256", mx_crypto_hmac_sha256},
                                     {"base64", mx_crypto_base64},
                                     {"equal_ct", l_equal_ct},
                                     {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
