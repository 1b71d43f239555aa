/* HTTP transport: one exchange per call over the scheduler's curl multi handle. */
#ifndef MX_HTTP_H
#define MX_HTTP_H
#include <stddef.h>
#include <lua.h>

/* Log every exchange to stderr (method, redacted URL, status, time, sizes). */
extern int mx_http_trace;

/* Copies url into out with userinfo and secret-looking query values replaced by "***". */
void mx_redact_url(const char *url, char *out, size_t n);

/* Opens core.http and core.http_config into the table at the stack top. */
void mx_http_open(lua_State *L);

#endif
