/* The HTTP op shared by the transport's files: http.c (the exchange, its hops and results) and
 * http_request.c (reading core.http's request table into an op). */
#ifndef MX_HTTP_OP_H
#define MX_HTTP_OP_H
#include <stdio.h>

#include "curl_api.h" /* libcurl, loaded on the first transfer */
#include <lua.h>

#include "buf.h"
#include "http_trace.h"
#include "redact.h"
#include "scheduler.h"

/* Downloads and uploads of files move in large blocks: libcurl's default 16 KiB socket reads and
 * 64 KiB upload reads, and glibc's 4 KiB stdio buffer, made a 1 GiB download 65k reads and 131k
 * writes. Set per transfer (never for small requests: the read buffer is per handle). */
enum {
    MX_DOWNLOAD_READ_SIZE = 512 * 1024,
    MX_UPLOAD_READ_SIZE = 512 * 1024,
    MX_OUTPUT_BUFFER = 1 << 20
};

struct http_op {
    mx_op base;
    CURL *easy;
    struct curl_slist *headers; /* user headers as sent on this hop */
    struct buf user_headers;    /* "Name: value\n" lines as given */
    char *auth_lines[2];        /* credential header lines; NULL once dropped */
    curl_mime *mime;
    char *method, *url, *origin;
    char *shown; /* url redacted (for the response and mx.pending), set as each hop starts */
    char *body;
    size_t body_len;
    char *upload_path, *file_field;
    struct buf form; /* req.form: "name\0", a size_t length, the value; for each field */
    char *output, *tmp_path;
    char *ca_file; /* trust these CA certificates (PEM) instead of the system's */
    FILE *out;
    char *out_buf;             /* out's stdio buffer (MX_OUTPUT_BUFFER bytes) */
    struct mx_host_slot *slot; /* the place it holds among its host's transfers (http_queue.h) */
    double queued;             /* seconds it waited for that place (taken from its timeout) */
    struct buf resp_body, resp_headers; /* headers: "name\0value\0" pairs of the last response */
    size_t max_body;                    /* cap of resp_body (0: none) */
    int too_large;                      /* the body passed max_body: transfer aborted */
    long status;
    int redirects, max_redirects;
    const char
        *redirect_stop; /* why a final 3xx was not followed: "limit", "no_location", "loop" */
    int answered;       /* hops that got an answer: the request was sent */
    struct buf sent_to; /* "url\n" of each hop that sent a non-idempotent request */
    struct mx_secrets secrets; /* credentials and URL secrets this request carries */
    struct mx_trace tr;
    int insecure;
    int decode_json; /* req.decode_json: a JSON answer gets resp.json (http_k) */
    long timeout_ms, connect_timeout_ms, low_speed_time;
    CURLcode result;
    char errbuf[CURL_ERROR_SIZE];
    int progress_ref;
    double last_progress;
    curl_off_t up_now, up_total, down_now, down_total;
    int progress_dirty;
    double t0;
};

/* Memory ran out: inside mx_http_build a Lua error ("not enough memory"), elsewhere one line and
 * exit 1 (mx_out_of_memory). */
void mx_http_out_of_memory(void);
/* strdup that calls mx_http_out_of_memory when memory runs out. */
char *mx_http_dup(const char *s);
/* "scheme://host:port" of url (default ports filled in), newly allocated; NULL when unparsable. */
char *mx_http_origin(const char *url);
/* Whether a "Name: value" line is a credential header (Authorization, Mendix-ApiKey, ...). */
int mx_http_credential_header(const char *line);
/* Creates h->easy with every option of the exchange (the first hop is set up separately). */
void mx_http_setup_easy(struct http_op *h);
/* The op's results: resp, or nil and an error table (http_response.c). */
int mx_http_push(mx_op *op, lua_State *L);
/* In the task after the wait, with the `n` results mx_http_push gave: decodes a JSON body it
 * marked into resp.json (or resp.json_error); returns the count of results left. */
int mx_http_decode_json(lua_State *L, int n);
/* Creates the responses' metatable and the table of headers not yet built (mx_http_open). */
void mx_http_response_open(lua_State *L);
/* The upload's multipart body (h->mime) for h->easy, from the file and the form fields kept. */
void mx_http_build_mime(struct http_op *h);
/* Protected call: reads the request table at index 1 into the op (light userdata at index 2);
 * raises an argument error for a bad field (the caller frees the half-built op). */
int mx_http_build(lua_State *L);

#endif
