#include "http_trace.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int mx_trace_level(const char *name) {
    static const char *const names[] = {"off", "exchanges", "headers", "body"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

/* body: text is a body, whose secret-named JSON values (a webhook's validationSecret, which the
 * request's own secrets cannot know) are replaced too. */
static void emit_as(const struct mx_trace *t, const char *prefix, const char *text, size_t n,
                    int body) {
    struct buf raw = {0}, out = {0};
    if (body)
        mx_redact_json_to(&raw, text, n);
    else
        buf_add(&raw, text, n);
    if (t->secrets) mx_secrets_scrub(t->secrets, raw.p, &raw.len);
    if (t->level > MX_TRACE_EXCHANGES) {
        char id[32];
        snprintf(id, sizeof id, "[http #%lu] ", t->id);
        buf_adds(&out, id);
    } else {
        buf_adds(&out, "[http] ");
    }
    buf_adds(&out, prefix);
    mx_escape_controls(&out, raw.p, raw.len);
    buf_add(&out, "\n", 1);
    fwrite(out.p, 1, out.len, stderr);
    buf_wipe_free(&raw);
    buf_wipe_free(&out);
}

static void emit(const struct mx_trace *t, const char *prefix, const char *text, size_t n) {
    emit_as(t, prefix, text, n, 0);
}

void mx_trace_line(const struct mx_trace *t, const char *text) {
    emit(t, "", text, strlen(text));
}

void mx_trace_body(const struct mx_trace *t, const char *dir, const char *data, size_t n) {
    char prefix[96];
    size_t shown = n > MX_TRACE_BODY_MAX ? MX_TRACE_BODY_MAX : n;
    snprintf(prefix, sizeof prefix, "%s body (%zu bytes%s): ", dir, n, shown < n ? ", cut" : "");
    emit_as(t, prefix, data ? data : "", data ? shown : 0, 1);
}

/* Header names whose values are credentials (request) or set them (response). */
static int secret_header(const char *line, size_t n) {
    static const char *const names[] = {
        "authorization:", "proxy-authorization:", "mendix-username:", "mendix-apikey:",
        "cookie:",        "set-cookie:"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t len = strlen(names[i]);
        if (n >= len && strncasecmp(line, names[i], len) == 0) return (int)len;
    }
    return 0;
}

/* Header names whose values are URLs: a redirect's Location may carry a signed URL's secrets
 * (X-Amz-Signature=, token=) that the request does not know yet. */
static int url_header(const char *line, size_t n) {
    static const char *const names[] = {"location:", "content-location:"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t len = strlen(names[i]);
        if (n >= len && strncasecmp(line, names[i], len) == 0) return (int)len;
    }
    return 0;
}

/* One header line, credential values replaced and URLs (the request target's, a Location)
 * redacted. */
static void header_line(const struct mx_trace *t, const char *prefix, const char *line, size_t n,
                        int first) {
    struct buf b = {0};
    int name = secret_header(line, n);
    if (name) {
        buf_add(&b, line, (size_t)name);
        buf_adds(&b, " ***");
    } else if ((name = url_header(line, n)) != 0) {
        struct buf url = {0};
        size_t v = (size_t)name;
        while (v < n && (line[v] == ' ' || line[v] == '\t'))
            v++;
        buf_add(&url, line + v, n - v);
        buf_add(&b, line, v);
        mx_redact_url_to(&b, url.p);
        buf_wipe_free(&url);
    } else if (first && prefix[0] == '>') { /* "GET /path?query HTTP/1.1" */
        const char *sp = memchr(line, ' ', n);
        const char *sp2 = sp ? memchr(sp + 1, ' ', (size_t)(line + n - sp - 1)) : NULL;
        if (sp && sp2) {
            struct buf target = {0};
            buf_add(&target, sp + 1, (size_t)(sp2 - sp - 1));
            buf_add(&b, line, (size_t)(sp + 1 - line));
            mx_redact_url_to(&b, target.p);
            buf_add(&b, sp2, (size_t)(line + n - sp2));
            buf_wipe_free(&target);
        } else {
            buf_add(&b, line, n);
        }
    } else {
        buf_add(&b, line, n);
    }
    emit(t, prefix, b.p, b.len);
    buf_wipe_free(&b);
}

int mx_trace_curl(CURL *e, curl_infotype type, char *data, size_t size, void *ud) {
    (void)e;
    struct mx_trace *t = ud;
    if (type == CURLINFO_HEADER_OUT) {
        const char *p = data, *end = data + size;
        for (int first = 1; p < end; first = 0) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *stop = nl ? nl : end;
            size_t n = (size_t)(stop - p);
            if (n && p[n - 1] == '\r') n--;
            if (n) header_line(t, "> ", p, n, first);
            p = stop + 1;
        }
    } else if (type == CURLINFO_HEADER_IN) {
        size_t n = size;
        while (n && (data[n - 1] == '\n' || data[n - 1] == '\r'))
            n--;
        if (n) header_line(t, "< ", data, n, 0);
    } else if (type == CURLINFO_DATA_OUT && t->level >= MX_TRACE_BODY) {
        if (t->body_out < MX_TRACE_BODY_MAX) {
            size_t n = size;
            if (n > MX_TRACE_BODY_MAX - t->body_out) n = MX_TRACE_BODY_MAX - t->body_out;
            emit_as(t, "> body: ", data, n, 1);
            t->body_out += n;
            if (t->body_out >= MX_TRACE_BODY_MAX) emit(t, "> body: ", "(cut)", 5);
        }
    }
    return 0;
}
