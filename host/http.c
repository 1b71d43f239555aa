/*
 * core.http(req): one HTTP exchange as a scheduler op. libcurl does the transfer; this file adds
 * redirects that never carry credentials to another origin and never send a non-idempotent
 * request twice, streamed multipart uploads, atomic streamed downloads, a cap on answers held in
 * memory, progress, tracing with redaction, and errors that say whether the request provably
 * never reached the server (the only case where a POST may be retried). The request table is
 * read in http_request.c, the results built in http_response.c.
 */
#include "http.h"

#include "http_op.h"
#include "http_queue.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <lauxlib.h>

#include "buf.h"
#include "credentials.h"
#include "http_trace.h"
#include "redact.h"
#include "scheduler.h"

int mx_http_trace = 0;

static long max_host_connections = 64;

/* ---- curl callbacks (never call into Lua from here except the protected progress call) ----- */

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud) {
    struct http_op *h = ud;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new response (redirect hop, 100) */
        h->resp_headers.len = 0;
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon) return n;
    size_t at = h->resp_headers.len, name_len = (size_t)(colon - data);
    buf_add(&h->resp_headers, data, name_len); /* then lowercased in place */
    if (!h->resp_headers.failed)
        for (char *c = h->resp_headers.p + at; c < h->resp_headers.p + at + name_len; c++)
            *c = (char)tolower((unsigned char)*c);
    buf_add(&h->resp_headers, "", 1);
    const char *v = colon + 1, *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    buf_add(&h->resp_headers, v, (size_t)(end - v));
    buf_add(&h->resp_headers, "", 1);
    return h->resp_headers.failed ? 0 : n; /* out of memory: the transfer fails */
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
    struct http_op *h = ud;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
    if (h->out && status >= 200 && status < 300) return fwrite(data, 1, n, h->out);
    if (h->max_body && h->resp_body.len + n > h->max_body) {
        h->too_large = 1;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    buf_add(&h->resp_body, data, n);
    return h->resp_body.failed ? 0 : n; /* out of memory: the transfer fails */
}

static void report_progress(struct http_op *h, int final);

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    struct http_op *h = ud;
    int up = h->upload_path != NULL || h->body != NULL;
    if (up ? ulnow != h->up_now : dlnow != h->down_now) h->progress_dirty = 1;
    h->down_total = dltotal;
    h->down_now = dlnow;
    h->up_total = ultotal;
    h->up_now = ulnow;
    report_progress(h, 0);
    return 0;
}

/* Calls the Lua progress callback, protected, on the scheduler's idle callback thread (so a
 * raised error never long-jumps through libcurl), at most every 100 ms and once at the end. */
static void report_progress(struct http_op *h, int final) {
    if (h->progress_ref == LUA_NOREF || !h->progress_dirty) return;
    double now = mx_now();
    if (!final && now - h->last_progress < 0.1) return;
    lua_State *T = mx_sched_callback_thread(h->base.sched);
    if (!T) return; /* already inside a callback */
    h->last_progress = now;
    h->progress_dirty = 0;
    int up = h->upload_path != NULL || h->body != NULL; /* a request reports what it sends */
    lua_rawgeti(T, LUA_REGISTRYINDEX, h->progress_ref);
    lua_pushinteger(T, (lua_Integer)(up ? h->up_now : h->down_now));
    lua_pushinteger(T, (lua_Integer)(up ? h->up_total : h->down_total));
    lua_pushstring(T, up ? "up" : "down");
    if (mx_sched_callback(h->base.sched, 3) != LUA_OK) {
        fprintf(stderr, "mxdeploy: progress callback failed (disabled): %s\n",
                lua_tostring(T, -1) ? lua_tostring(T, -1) : "?");
        luaL_unref(T, LUA_REGISTRYINDEX, h->progress_ref);
        h->progress_ref = LUA_NOREF;
    }
    lua_settop(T, 0);
}

/* ---- setting up an exchange ------------------------------------------------------------------ */

/* While mx_http_build runs (under lua_pcall in l_http): the state where a failed allocation is
 * raised, so the call fails with "not enough memory". Elsewhere (a redirect hop) the process ends
 * with one line instead (mx_out_of_memory), never abort() and its core dump. */
static lua_State *raise_oom_in;

void mx_http_out_of_memory(void) {
    if (raise_oom_in) luaL_error(raise_oom_in, "not enough memory");
    mx_out_of_memory();
}

char *mx_http_dup(const char *s) {
    char *d = strdup(s ? s : "");
    if (!d) mx_http_out_of_memory();
    return d;
}

/* "scheme://host:port" of url (default ports filled in), newly allocated, by libcurl's parser. */
static char *parse_origin(const char *url) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        size_t n = strlen(scheme) + strlen(host) + strlen(port) + 8;
        out = malloc(n);
        if (!out) mx_http_out_of_memory();
        snprintf(out, n, "%s://%s:%s", scheme, host, port);
        for (char *c = out; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return out;
}

/* The origins of the last few "scheme://authority" prefixes (the text before the first /, ? or #
 * after "://", exactly as given), so a request to a host seen before skips libcurl's URL parser
 * (9K of ~250K instructions per request). Only a prefix without user info is kept (no secret
 * stays here), and only for a URL whose rest libcurl accepts whatever it holds: no control
 * character or space (which it refuses anywhere) and well under its 8 MB limit; any other URL is
 * parsed, so the answer is always the parser's. */
enum { ORIGIN_CACHE = 8, ORIGIN_KEY = 256 };
static struct {
    char key[ORIGIN_KEY];
    char *origin;
} origins[ORIGIN_CACHE];
static unsigned origins_next;
#define SCHEME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-."

char *mx_http_origin(const char *url) {
    const char *sep = strstr(url, "://");
    size_t key_len = sep ? (size_t)(sep + 3 - url) + strcspn(sep + 3, "/?#") : 0;
    int cacheable = sep && key_len < ORIGIN_KEY && !memchr(url, '@', key_len) &&
                    strspn(url, SCHEME_CHARS) == (size_t)(sep - url);
    for (const char *c = url + key_len; cacheable && *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f || c - url > (1 << 20)) cacheable = 0;
    if (cacheable)
        for (int i = 0; i < ORIGIN_CACHE; i++)
            if (origins[i].origin && strncmp(origins[i].key, url, key_len) == 0 &&
                origins[i].key[key_len] == '\0')
                return mx_http_dup(origins[i].origin);
    char *origin = parse_origin(url);
    if (origin && cacheable) {
        unsigned i = origins_next++ % ORIGIN_CACHE;
        char *kept = strdup(origin);
        if (kept) {
            free(origins[i].origin);
            origins[i].origin = kept;
            memcpy(origins[i].key, url, key_len);
            origins[i].key[key_len] = '\0';
        }
    }
    return origin;
}

int mx_http_credential_header(const char *line) {
    static const char *const names[] = {
        "authorization:", "mendix-username:", "mendix-apikey:", "cookie:", "proxy-authorization:"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strncasecmp(line, names[i], strlen(names[i])) == 0) return 1;
    return 0;
}

/* Frees a header list, zeroing it first: it may hold credentials. */
static void free_headers(struct curl_slist *list) {
    for (struct curl_slist *p = list; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(list);
}

/* POST, PUT and PATCH: setup_hop gives them an empty body when they have none. */
static int empty_post(const char *method) {
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

/* Our User-Agent and the Accept-Encoding libcurl would send for CURLOPT_ACCEPT_ENCODING "" (the
 * encodings this libcurl decodes; the option stays set, so it still decodes them) go out as lines
 * of our header list: given as options, libcurl formats both anew for every request
 * (curl_maprintf, ~4.4K instructions each). A caller's own header of either name replaces ours. */
#define USER_AGENT "User-Agent: mxdeploy/0.1 (+libcurl)"

static const char *accept_encoding(void) {
    static char line[80];
    if (!line[0]) {
        const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
        int z = (v->features & CURL_VERSION_LIBZ) != 0,
            br = (v->features & CURL_VERSION_BROTLI) != 0,
            zstd = (v->features & CURL_VERSION_ZSTD) != 0;
        snprintf(line, sizeof line, "Accept-Encoding: %s%s%s%s%s", z ? "deflate, gzip" : "",
                 z && br ? ", " : "", br ? "br" : "", (z || br) && zstd ? ", " : "",
                 zstd        ? "zstd"
                 : !z && !br ? "identity"
                             : "");
    }
    return line;
}

/* Builds the header list for this hop; credential headers only while on the original origin.
 * A hop without a body carries no Content-Type to another origin, and never libcurl's default
 * (application/x-www-form-urlencoded for an empty POST). */
static void build_headers(struct http_op *h, int same_origin) {
    free_headers(h->headers);
    h->headers = NULL;
    int bodyless = !h->body && !h->mime, has_type = 0, has_agent = 0, has_encoding = 0;
    char *p = h->user_headers.p;
    while (p && *p) {
        char *nl = strchr(p, '\n');
        *nl = '\0';
        int is_type = strncasecmp(p, "content-type:", 13) == 0;
        if ((same_origin || !mx_http_credential_header(p)) &&
            !(is_type && bodyless && !same_origin)) {
            h->headers = curl_slist_append(h->headers, p);
            has_type |= is_type;
        }
        has_agent |= strncasecmp(p, "user-agent:", 11) == 0;
        has_encoding |= strncasecmp(p, "accept-encoding:", 16) == 0;
        *nl = '\n';
        p = nl + 1;
    }
    /* only where libcurl would add one: the empty body setup_hop gives a bodyless POST/PUT/PATCH */
    if (bodyless && !has_type && empty_post(h->method))
        h->headers = curl_slist_append(h->headers, "Content-Type:");
    if (!has_agent) h->headers = curl_slist_append(h->headers, USER_AGENT);
    if (!has_encoding) h->headers = curl_slist_append(h->headers, accept_encoding());
    for (int i = 0; i < 2; i++)
        if (h->auth_lines[i] && same_origin)
            h->headers = curl_slist_append(h->headers, h->auth_lines[i]);
    /* libcurl asks for 100-continue only before a body (large or of unknown size) */
    if (!bodyless) h->headers = curl_slist_append(h->headers, "Expect:");
}

/* GET, HEAD and OPTIONS: the methods libcurl may send again on a new connection. */
static int safe_method(const char *method) {
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
           strcmp(method, "OPTIONS") == 0;
}

static void setup_hop(struct http_op *h) {
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_URL, h->url);
    /* libcurl silently sends a request again on a new connection when a kept-alive one closes
     * before any answer; a request that is not safe gets a connection of its own instead, so it
     * is sent once and a lost answer is an error saying it may have been applied */
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, safe_method(h->method) ? 0L : 1L);
    if (!safe_method(h->method)) {
        buf_adds(&h->sent_to, h->url);
        buf_add(&h->sent_to, "\n", 1);
    }
    h->tr.body_out = 0;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    if (strcmp(h->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (h->mime) {
        curl_easy_setopt(e, CURLOPT_MIMEPOST, h->mime);
    } else if (h->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, h->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->body_len);
    } else if (empty_post(h->method)) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    if (strcmp(h->method, "GET") != 0 && strcmp(h->method, "HEAD") != 0 &&
        strcmp(h->method, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, h->method);
    h->resp_body.len = 0;
    h->resp_headers.len = 0;
}

/* ---- easy handles ---------------------------------------------------------------------------- */

/* One easy handle per exchange. A pool of curl_easy_reset handles saved 6% per request (~8K of
 * ~210K instructions), but libcurl before 8.1.0 (Debian 12 has 7.88.1) keeps a pointer to the last
 * stored response header across transfers of one handle (state.prevhead; curl/curl#11101, fixed by
 * #11103): an answer whose first header line is folded (starts with a space or tab) then appends
 * to freed memory. fuzz_response under ASan finds it within a minute even when only the handles
 * of clean exchanges are reused: the answer that triggers it is the next one, not the last. */

void mx_http_setup_easy(struct http_op *h) {
    CURL *e = h->easy = curl_easy_init();
    if (!e) mx_http_out_of_memory();
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)h);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* over TLS (where HTTP/2 may be offered) wait to share a connection rather than open more;
     * plain http is HTTP/1.1 here, where waiting would serialise the first requests */
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, strncmp(h->url, "https:", 6) == 0 ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, h->low_speed_time);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, h->insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, h->insecure ? 0L : 2L);
    if (h->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, h);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    if (h->tr.level >= MX_TRACE_HEADERS) {
        curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, mx_trace_curl);
        curl_easy_setopt(e, CURLOPT_DEBUGDATA, &h->tr);
        curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    }
}

static void start_transfer(struct http_op *h) {
    /* "METHOD url" for mx.pending(), cut to fit: only a description */
    char shown[2048];
    mx_redact_url(h->url, shown, sizeof shown);
    free(h->shown);
    h->shown = mx_http_dup(shown); /* the response's url */
    size_t cap = sizeof h->base.what - 1, m = strlen(h->method), u = strlen(shown);
    if (m > cap) m = cap;
    memcpy(h->base.what, h->method, m);
    size_t at = m;
    if (at < cap) h->base.what[at++] = ' ';
    if (u > cap - at) u = cap - at;
    memcpy(h->base.what + at, shown, u);
    h->base.what[at + u] = '\0';
    h->t0 = mx_now();
    curl_multi_add_handle(mx_sched_multi(h->base.sched), h->easy);
}

/* ---- completion ---------------------------------------------------------------------------- */

static void trace_exchange(struct http_op *h, CURLcode rc) {
    if (!h->tr.level) return;
    struct buf line = {0};
    char num[160];
    buf_adds(&line, h->method);
    buf_add(&line, " ", 1);
    mx_redact_url_to(&line, h->url);
    curl_off_t up = 0, down = 0;
    curl_easy_getinfo(h->easy, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(h->easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
    double ms = (mx_now() - h->t0) * 1000.0;
    if (rc == CURLE_OK)
        snprintf(num, sizeof num, " -> %ld in %.1f ms (sent %ld B, received %ld B)", h->status, ms,
                 (long)up, (long)down);
    else
        snprintf(num, sizeof num, " -> failed after %.1f ms: ", ms);
    buf_adds(&line, num);
    if (rc != CURLE_OK)
        buf_adds(&line, h->too_large   ? "response body over the size limit"
                        : h->errbuf[0] ? h->errbuf
                                       : curl_easy_strerror(rc));
    if (h->tr.level >= MX_TRACE_BODY) {
        if (h->out && h->status >= 200 && h->status < 300)
            mx_trace_body(&h->tr, "<", "(written to the output file)", 28);
        else if (h->resp_body.len)
            mx_trace_body(&h->tr, "<", h->resp_body.p, h->resp_body.len);
    }
    mx_trace_line(&h->tr, line.p);
    buf_wipe_free(&line);
}

static int is_redirect(long status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* Whether a non-idempotent hop of this request already went to url. */
static int sent_before(const struct http_op *h, const char *url) {
    size_t n = strlen(url);
    for (const char *p = h->sent_to.p; p && *p; p = strchr(p, '\n') + 1)
        if (strncmp(p, url, n) == 0 && p[n] == '\n') return 1;
    return 0;
}

/* A new easy handle for the next hop, set up as the first: libcurl before 8.1.0 keeps a pointer to
 * the last response header it stored across the transfers of one handle (state.prevhead,
 * curl/curl#11101), so a hop whose answer starts its headers with a folded line appended it to
 * freed memory (heap-use-after-free under ASan; a server chose it). An upload's multipart body is
 * built again for the new handle (libcurl does not rewind one made for another). */
static void fresh_easy(struct http_op *h) {
    int upload = h->mime != NULL;
    if (upload) {
        curl_easy_setopt(h->easy, CURLOPT_MIMEPOST, NULL);
        curl_mime_free(h->mime);
        h->mime = NULL;
    }
    curl_easy_cleanup(h->easy);
    mx_http_setup_easy(h);
    if (upload) mx_http_build_mime(h);
    if (h->out) curl_easy_setopt(h->easy, CURLOPT_BUFFERSIZE, (long)MX_DOWNLOAD_READ_SIZE);
}

/* Follows a redirect as a new hop; returns 1 when a new hop was started. */
static int follow_redirect(struct http_op *h) {
    char *location = NULL;
    curl_easy_getinfo(h->easy, CURLINFO_REDIRECT_URL, &location);
    if (h->max_redirects == 0) return 0; /* the caller wants the redirect itself */
    if (!location) {
        h->redirect_stop = "no_location";
        return 0;
    }
    if (h->redirects >= h->max_redirects) {
        h->redirect_stop = "limit";
        return 0;
    }
    int keeps_method = h->status == 307 || h->status == 308;
    if (keeps_method && !safe_method(h->method) && sent_before(h, location)) {
        h->redirect_stop = "loop"; /* never the same non-idempotent request twice */
        return 0;
    }
    mx_secrets_add_url(&h->secrets, location);
    char *next = mx_http_dup(location);
    free(h->url);
    h->url = next;
    h->redirects++;
    if (h->status == 303 ||
        ((h->status == 301 || h->status == 302) && strcmp(h->method, "POST") == 0)) {
        if (strcmp(h->method, "HEAD") != 0) {
            free(h->method);
            h->method = mx_http_dup("GET");
        }
        free(h->body);
        h->body = NULL;
        h->body_len = 0;
        if (h->mime) {
            curl_easy_setopt(h->easy, CURLOPT_MIMEPOST, NULL);
            curl_mime_free(h->mime);
            h->mime = NULL;
        }
    }
    char *origin = mx_http_origin(h->url);
    int same = origin && h->origin && strcmp(origin, h->origin) == 0;
    free(origin);
    if (!same) /* credentials never follow to another origin, not even back again */
        for (int i = 0; i < 2; i++) {
            if (h->auth_lines[i]) explicit_bzero(h->auth_lines[i], strlen(h->auth_lines[i]));
            free(h->auth_lines[i]);
            h->auth_lines[i] = NULL;
        }
    if (!same) { /* user-given credential headers dropped too, for good */
        struct buf kept = {0};
        char *p = h->user_headers.p;
        while (p && *p) {
            char *nl = strchr(p, '\n');
            if (!mx_http_credential_header(p)) buf_add(&kept, p, (size_t)(nl + 1 - p));
            p = nl + 1;
        }
        if (kept.failed) mx_http_out_of_memory();
        if (h->user_headers.p) /* it held the credential headers */
            explicit_bzero(h->user_headers.p, h->user_headers.len);
        buf_free(&h->user_headers);
        h->user_headers = kept;
    }
    build_headers(h, same);
    fresh_easy(h);
    setup_hop(h);
    start_transfer(h);
    return 1;
}

/* Closes the download file and frees its buffer; fclose's result. */
static int close_output(struct http_op *h) {
    int rc = fclose(h->out);
    h->out = NULL;
    free(h->out_buf);
    h->out_buf = NULL;
    return rc;
}

/* Gives the host's place back (to the next queued request) once the transfer is out of the multi.
 */
static void release_slot(struct http_op *h) {
    if (!h->slot) return;
    mx_hostq_release(h->slot);
    h->slot = NULL;
}

static void http_curl_done(mx_op *op, CURLcode rc) {
    struct http_op *h = (struct http_op *)op;
    curl_multi_remove_handle(mx_sched_multi(op->sched), h->easy);
    h->result = rc;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &h->status);
    if (rc == CURLE_OK) h->answered++;
    trace_exchange(h, rc);
    report_progress(h, 1);
    if (rc == CURLE_OK && is_redirect(h->status) && follow_redirect(h)) return;
    if (h->out) {
        int ok = rc == CURLE_OK && h->status >= 200 && h->status < 300;
        /* with a 1 MiB buffer a write error (EFBIG past ulimit -f, ENOSPC) may show only here */
        if (close_output(h) != 0 || (ok && rename(h->tmp_path, h->output) != 0)) {
            if (ok) h->result = CURLE_WRITE_ERROR;
            ok = 0;
        }
        if (!ok) unlink(h->tmp_path);
    }
    release_slot(h);
    mx_op_complete(op);
}

static void http_cancel(mx_op *op) {
    struct http_op *h = (struct http_op *)op;
    if (h->easy) curl_multi_remove_handle(mx_sched_multi(op->sched), h->easy);
    release_slot(h);
    if (h->out) {
        close_output(h);
        unlink(h->tmp_path);
    }
}

static void http_destroy(mx_op *op) {
    struct http_op *h = (struct http_op *)op;
    if (h->out) {
        close_output(h);
        unlink(h->tmp_path);
    }
    release_slot(h);
    if (h->easy) curl_easy_cleanup(h->easy);
    free_headers(h->headers);
    curl_mime_free(h->mime);
    for (int i = 0; i < 2; i++) {
        if (h->auth_lines[i]) explicit_bzero(h->auth_lines[i], strlen(h->auth_lines[i]));
        free(h->auth_lines[i]);
    }
    if (h->user_headers.p) explicit_bzero(h->user_headers.p, h->user_headers.len);
    buf_free(&h->user_headers);
    buf_wipe_free(&h->resp_body);
    buf_wipe_free(&h->resp_headers);
    buf_wipe_free(&h->sent_to);
    mx_secrets_free(&h->secrets);
    free(h->method);
    free(h->url);
    free(h->shown);
    free(h->origin);
    free(h->body);
    free(h->upload_path);
    free(h->file_field);
    buf_wipe_free(&h->form);
    free(h->output);
    free(h->tmp_path);
    free(h->ca_file);
    if (h->progress_ref != LUA_NOREF)
        luaL_unref(mx_sched_state(op->sched), LUA_REGISTRYINDEX, h->progress_ref);
}

static const struct mx_op_vtable http_vt = {"http", mx_http_push, http_cancel, http_destroy,
                                            http_curl_done};

/* ---- core.http(req) -------------------------------------------------------------------------- */

static int http_k(lua_State *L, int status, lua_KContext base) {
    (void)status;
    return mx_http_decode_json(L, mx_await_results(L, base));
}

/* Starts the transfer of the request at stack[1], holding `slot` (a place among its host's,
 * possibly NULL), after `queued` seconds in its host's queue. */
static int http_start(lua_State *L, mx_sched *s, mx_host_slot *slot, double queued) {
    (void)s;
    struct http_op *h = (struct http_op *)mx_op_new(L, &http_vt, sizeof *h);
    h->progress_ref = LUA_NOREF;
    h->slot = slot;
    h->queued = queued;
    lua_pushcfunction(L, mx_http_build);
    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, h);
    raise_oom_in = L;
    int status = lua_pcall(L, 2, 0, 0);
    raise_oom_in = NULL;
    if (status != LUA_OK) {
        http_destroy(&h->base); /* gives the place back */
        free(h);
        return lua_error(L);
    }
    build_headers(h, 1);
    setup_hop(h);
    start_transfer(h);
    lua_settop(L, 0);
    return mx_await(L, &h->base, http_k);
}

/* After a wait in the host's queue: (slot, seconds queued) = a place is held, go; (nil, error) =
 * the request's timeout passed first. */
static int http_admitted_k(lua_State *L, int status, lua_KContext base) {
    (void)status;
    int n = mx_await_results(L, base);
    mx_host_slot *slot =
        lua_islightuserdata(L, (int)base + 1) ? lua_touserdata(L, (int)base + 1) : NULL;
    if (!slot) return n;
    double queued = lua_tonumber(L, (int)base + 2);
    lua_settop(L, 1);
    return http_start(L, mx_sched_get(L), slot, queued);
}

static int l_http(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    mx_sched *s = mx_sched_get(L);
    if (!mx_sched_multi_loaded(s)) { /* the first transfer: libcurl loads now */
        CURLM *multi = mx_sched_multi(s);
        if (!multi) return luaL_error(L, "mxdeploy: no HTTP transport: %s", mx_curl_error());
        curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_connections);
    }
    lua_getfield(L, 1, "url");
    const char *url = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* the string stays alive: the request table holds it */
    if (!url) return http_start(L, s, NULL, 0); /* raises the argument error */
    mx_host_slot *slot = mx_hostq_slot(url);
    if (mx_hostq_try_acquire(slot, max_host_connections)) return http_start(L, s, slot, 0);
    /* every place is taken: wait in the host's queue, holding nothing but a small op */
    lua_getfield(L, 1, "timeout");
    double timeout = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
    lua_getfield(L, 1, "method");
    const char *method = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "GET";
    char m[16];
    snprintf(m, sizeof m, "%s", method);
    for (char *c = m; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    lua_settop(L, 1);
    return mx_hostq_wait(L, s, slot, timeout, m, url, http_admitted_k);
}

/* http_config{max_host_connections=, trace=} */
static int l_http_config(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    mx_sched *s = mx_sched_get(L);
    lua_getfield(L, 1, "max_host_connections");
    if (!lua_isnil(L, -1)) {
        max_host_connections = (long)luaL_checkinteger(L, -1);
        CURLM *multi = mx_sched_multi_loaded(s); /* else applied when the first transfer loads it */
        if (multi) curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_connections);
        mx_hostq_set_cap(max_host_connections);
    }
    lua_getfield(L, 1, "trace");
    if (lua_type(L, -1) == LUA_TSTRING) {
        int level = mx_trace_level(lua_tostring(L, -1));
        if (level < 0)
            luaL_error(L, "bad argument #1 to 'http_config' (trace must be a boolean, "
                          "'exchanges', 'headers' or 'body')");
        mx_http_trace = level;
    } else if (!lua_isnil(L, -1)) {
        mx_http_trace = lua_toboolean(L, -1) ? MX_TRACE_EXCHANGES : MX_TRACE_OFF;
    }
    lua_pushinteger(L, max_host_connections);
    return 1;
}

/* core.http_trace(text [, force]): a line of the trace (a retry decision), when tracing. */
static int l_http_trace(lua_State *L) {
    const char *text = luaL_checkstring(L, 1);
    if (mx_http_trace || lua_toboolean(L, 2)) {
        struct mx_trace t = {MX_TRACE_EXCHANGES, 0, NULL, 0};
        mx_trace_line(&t, text);
    }
    lua_pushboolean(L, mx_http_trace || lua_toboolean(L, 2));
    return 1;
}

void mx_http_open(lua_State *L) {
    luaL_Reg funcs[] = {{"http", l_http},
                        {"http_config", l_http_config},
                        {"http_trace", l_http_trace},
                        {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
    mx_http_response_open(L);
}
