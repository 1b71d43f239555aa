/* HTTP transport: one exchange per call over the scheduler's curl multi handle. */
#ifndef MX_HTTP_H
#define MX_HTTP_H
#include <stddef.h>
#include <lua.h>

/* Log every exchange to stderr (method, redacted URL, status, time, sizes). */
extern int mx_http_trace;

/* Opens core.http and core.http_config into the table at the stack top. */
void mx_http_open(lua_State *L);

#endif
