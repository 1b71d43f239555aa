/*
 * libcrypto (OpenSSL), loaded on first use like libcurl (curl_api.h): mapping and relocating it
 * was 3.5 M of the 12 M instructions of `mxdeploy -e ''`, for webhook signatures most runs never
 * check. The C files that call it get this header force-included (CMakeLists.txt); each call
 * goes through a table that the first one fills by dlopen. libcrypto is what libcurl links too,
 * so a system without it cannot run mxdeploy at all: failing to load it aborts with a message.
 */
#ifndef MX_CRYPTO_API_H
#define MX_CRYPTO_API_H

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MX_CRYPTO_FUNCTIONS(X)                                                                     \
    X(HMAC) X(EVP_sha256) X(EVP_EncodeBlock) X(CRYPTO_memcmp) X(OPENSSL_cleanse)

struct mx_crypto_api {
#define MX_CRYPTO_MEMBER(f) __typeof__(f) *f;
    MX_CRYPTO_FUNCTIONS(MX_CRYPTO_MEMBER)
#undef MX_CRYPTO_MEMBER
};

/* The table, libcrypto loaded on the first call (from any thread). */
const struct mx_crypto_api *mx_crypto(void);

#ifndef MX_CRYPTO_API_IMPL
#define HMAC (mx_crypto()->HMAC)
#define EVP_sha256 (mx_crypto()->EVP_sha256)
#define EVP_EncodeBlock (mx_crypto()->EVP_EncodeBlock)
#define CRYPTO_memcmp (mx_crypto()->CRYPTO_memcmp)
#undef OPENSSL_cleanse
#define OPENSSL_cleanse (mx_crypto()->OPENSSL_cleanse)
#endif

#endif
