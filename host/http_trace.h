/* --trace for the HTTP transport: one line per exchange, and at the "headers" and "body" levels
 * the headers and (cut) bodies of each hop. Everything printed is redacted: credential header
 * values, URL secrets, the request's own secrets wherever a server echoes them, and control
 * characters escaped. */
#ifndef MX_HTTP_TRACE_H
#define MX_HTTP_TRACE_H
#include <stddef.h>

#include "curl_api.h" /* libcurl, loaded on the first transfer */

#include "redact.h"

enum { MX_TRACE_OFF, MX_TRACE_EXCHANGES, MX_TRACE_HEADERS, MX_TRACE_BODY };

/* Bodies are cut after this many bytes. */
#define MX_TRACE_BODY_MAX 4096

struct mx_trace {
    int level;
    unsigned long id; /* numbers the lines of one exchange (levels above "exchanges") */
    const struct mx_secrets *secrets;
    size_t body_out; /* request body bytes printed on this hop */
};

/* The level a name stands for ("exchanges"/"headers"/"body"), or -1. */
int mx_trace_level(const char *name);
/* "[http] text" (or "[http #id] text"), escaped and scrubbed, to stderr. */
void mx_trace_line(const struct mx_trace *t, const char *text);
/* "[http #id] dir body (n bytes): text" cut at MX_TRACE_BODY_MAX. */
void mx_trace_body(const struct mx_trace *t, const char *dir, const char *data, size_t n);
/* CURLOPT_DEBUGFUNCTION (data: struct mx_trace *): request and response headers, request body. */
int mx_trace_curl(CURL *e, curl_infotype type, char *data, size_t size, void *ud);

#endif
