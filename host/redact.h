/* Keeping secrets and hostile bytes out of what mxdeploy prints: the one URL redactor (used by
 * the transport, traces, mx.pending() and, through core.redact_url, every Lua error), scrubbing
 * of the secrets a request carries from the text that comes back, and escaping of control
 * characters from servers before they reach a terminal. */
#ifndef MX_REDACT_H
#define MX_REDACT_H
#include <stddef.h>

#include <lua.h>

#include "buf.h"

/* Appends url with user info, the values of secret-looking query parameters and the whole
 * fragment replaced by "***". */
void mx_redact_url_to(struct buf *out, const char *url);
/* The same into a fixed buffer (cut to fit). */
void mx_redact_url(const char *url, char *out, size_t n);

/* Secrets a request carries (credential header values, URL user info and secret query values). */
struct mx_secrets {
    char **v;
    size_t n;
};
/* Adds a copy of s[0..len) (secrets shorter than 4 bytes are not kept: scrubbing them would
 * mangle ordinary text). */
void mx_secrets_add(struct mx_secrets *s, const char *p, size_t len);
/* Adds the secrets inside a URL: the user info's password, secret-named query values (and such
 * values in a fragment written as a query). */
void mx_secrets_add_url(struct mx_secrets *s, const char *url);
/* Replaces every occurrence of a secret in text[0..*len) by "***", in place. */
void mx_secrets_scrub(const struct mx_secrets *s, char *text, size_t *len);
/* Appends JSON text s[0..n) with the string value of every member whose name says it is a
 * secret (validationSecret, password, accessToken, apiKey, ...), and of every "value" member
 * inside a "headers" array (a webhook's custom headers), replaced by "***"; the rest as is.
 * A value cut off at the end of s is replaced up to the end. */
void mx_redact_json_to(struct buf *out, const char *s, size_t n);
/* The same walk with another test of member names and another marker (the sandbox's request
 * log: its own secret words, "<redacted>"). is_secret gets the name as written, unescaped. */
typedef int (*mx_member_test)(const char *name, size_t n);
void mx_redact_json_members(struct buf *out, const char *s, size_t n, mx_member_test is_secret,
                            const char *marker);
/* Wipes and frees. */
void mx_secrets_free(struct mx_secrets *s);

/* Appends s[0..n) with control characters escaped: \n \r \t and \xHH for the other C0 bytes and
 * DEL, \u0080..\u009F for the C1 controls (UTF-8 C2 80..C2 9F); the rest as is. */
void mx_escape_controls(struct buf *out, const char *s, size_t n);

/* Opens core.redact_url(url) and core.printable(s) into the table at the stack top. */
void mx_redact_open(lua_State *L);

#endif
