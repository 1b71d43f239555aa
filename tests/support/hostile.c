/*
 * A deliberately badly behaved HTTP/1.1 server on 127.0.0.1 for the transport's regression tests
 * (started by tests/support/hostile.lua).
 *
 *   mxdeploy-hostile PORTFILE LOGFILE
 *
 * Writes the port it listens on to PORTFILE, appends "METHOD /path?query" to LOGFILE for every
 * request it reads, and exits when its standard input closes (the spec that started it ended or
 * died), so it never outlives a test run. The first path segment chooses the behaviour; the rest
 * of the path is ignored, so a client's base URL can point at one behaviour:
 *
 *   /ok          200 {"ok":true}, kept alive
 *   /drop        reads the whole request, then closes the connection without answering
 *   /redirect    ?s=303&to=URL: a redirect (default: 303 to http://127.0.0.1:1/gone, a dead port)
 *   /loop        ?s=302: a redirect (status s) back to itself, forever
 *   /nolocation  302 without a Location header
 *   /bomb        200 gzip-encoded JSON that never ends (a few KB inflate to gigabytes)
 *   /endless     200 JSON that never ends
 *   /trickle     ?ms=500&size=1000000: 200, two bytes every ms milliseconds
 *   /quote       401 whose body quotes the Mendix-ApiKey and Authorization it was sent
 *   /control     400 whose JSON error holds escape sequences and a BEL
 *   /retryafter  ?v=VALUE: 503 with Retry-After: VALUE
 *   /slow        ?ms=1000: 200 {"ok":true} after ms milliseconds
 *   /big         ?size=N: 200 with N bytes at once
 *   /gzip        200 gzip-encoded JSON {"accept_encoding": ..., "user_agent": ...}: the request's
 *                Accept-Encoding and User-Agent headers, each as many times as sent, joined by " |
 * " /typed       ?ct=TYPE&s=STATUS&body=TEXT: TEXT (default {"ok":true}) with Content-Type TYPE
 *                (none when absent), X-Twice sent twice and X-Request-Id: typed-1
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static FILE *logf;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static int send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_str(int fd, const char *s) {
    return send_all(fd, s, strlen(s));
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Decodes %XX and '+' in place. */
static void url_decode(char *s) {
    char *o = s;
    for (; *s; s++) {
        if (*s == '%' && s[1] && s[2]) {
            char hex[3] = {s[1], s[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            s += 2;
        } else {
            *o++ = *s == '+' ? ' ' : *s;
        }
    }
    *o = '\0';
}

/* Value of query parameter name (decoded) into out, or dflt. */
static const char *param(const char *query, const char *name, char *out, size_t n,
                         const char *dflt) {
    size_t len = strlen(name);
    for (const char *p = query; p && *p;) {
        if (strncmp(p, name, len) == 0 && p[len] == '=') {
            size_t v = strcspn(p + len + 1, "&");
            if (v >= n) v = n - 1;
            memcpy(out, p + len + 1, v);
            out[v] = '\0';
            url_decode(out);
            return out;
        }
        p = strchr(p, '&');
        if (p) p++;
    }
    return dflt;
}

/* Value of request header name (case-insensitive), copied into out (empty when absent). */
static void header(const char *head, const char *name, char *out, size_t n) {
    size_t len = strlen(name);
    out[0] = '\0';
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, len) == 0 && line[len] == ':') {
            const char *v = line + len + 1;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r\n");
            if (vl >= n) vl = n - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return;
        }
    }
}

static int respond(int fd, const char *status, const char *extra, const char *body) {
    char head[1024];
    snprintf(head, sizeof head,
             "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n",
             status, strlen(body), extra);
    if (send_str(fd, head) != 0) return -1;
    return send_str(fd, body);
}

/* Endless gzip-encoded JSON array of zeros, until the client goes away. */
static void bomb(int fd) {
    send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                 "Connection: close\r\n\r\n");
    z_stream z = {0};
    if (deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 9, Z_DEFAULT_STRATEGY) != Z_OK) return;
    static unsigned char in[1 << 16], out[1 << 16];
    memset(in, '0', sizeof in);
    in[0] = '[';
    for (int first = 1;; first = 0) {
        z.next_in = in + (first ? 0 : 1);
        z.avail_in = sizeof in - (first ? 0 : 1);
        do {
            z.next_out = out;
            z.avail_out = sizeof out;
            deflate(&z, Z_NO_FLUSH);
            size_t have = sizeof out - z.avail_out;
            if (have && send_all(fd, out, have) != 0) {
                deflateEnd(&z);
                return;
            }
        } while (z.avail_out == 0);
    }
}

/* Every value of request header name, joined by " | ", into out. */
static void header_all(const char *head, const char *name, char *out, size_t n) {
    size_t len = strlen(name), at = 0;
    out[0] = '\0';
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, len) != 0 || line[len] != ':') continue;
        const char *v = line + len + 1;
        while (*v == ' ')
            v++;
        int w = snprintf(out + at, n - at, "%s%.*s", at ? " | " : "", (int)strcspn(v, "\r\n"), v);
        if (w < 0 || (size_t)w >= n - at) return;
        at += (size_t)w;
    }
}

/* The request's Accept-Encoding and User-Agent, as gzip-encoded JSON (no escaping: tests send
 * plain values). */
static int gzip_echo(int fd, const char *head) {
    char ae[512], ua[512], json[1200];
    static __thread unsigned char out[4096];
    header_all(head, "Accept-Encoding", ae, sizeof ae);
    header_all(head, "User-Agent", ua, sizeof ua);
    snprintf(json, sizeof json, "{\"accept_encoding\":\"%s\",\"user_agent\":\"%s\"}", ae, ua);
    z_stream z = {0};
    if (deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 9, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    z.next_in = (unsigned char *)json;
    z.avail_in = (unsigned)strlen(json);
    z.next_out = out;
    z.avail_out = sizeof out;
    deflate(&z, Z_FINISH);
    size_t have = sizeof out - z.avail_out;
    deflateEnd(&z);
    char headers[256];
    snprintf(headers, sizeof headers,
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
             "Content-Length: %zu\r\n\r\n",
             have);
    if (send_str(fd, headers) != 0) return -1;
    return send_all(fd, out, have);
}

static void endless(int fd) {
    send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[");
    static char chunk[1 << 16];
    memset(chunk, '0', sizeof chunk);
    while (send_all(fd, chunk, sizeof chunk) == 0) {
    }
}

static void trickle(int fd, const char *query) {
    char v[32];
    long ms = atol(param(query, "ms", v, sizeof v, "500"));
    long size = atol(param(query, "size", v, sizeof v, "1000000"));
    char head[256];
    snprintf(
        head, sizeof head,
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %ld\r\n\r\n",
        size);
    if (send_str(fd, head) != 0) return;
    for (long sent = 0; sent < size; sent += 2) {
        if (send_all(fd, "[0", size - sent >= 2 ? 2 : 1) != 0) return;
        sleep_ms(ms);
    }
}

/* Answers one request; returns 0 to keep the connection, -1 to close it. */
static int answer(int fd, const char *method, const char *path, const char *query,
                  const char *head) {
    char v[1024], w[1024], body[4096];
    size_t seg = strcspn(path + 1, "/");
    char route[64];
    snprintf(route, sizeof route, "%.*s", (int)(seg < 63 ? seg : 63), path + 1);
    (void)method;
    if (strcmp(route, "ok") == 0) return respond(fd, "200 OK", "", "{\"ok\":true}");
    if (strcmp(route, "drop") == 0) return -1;
    if (strcmp(route, "redirect") == 0) {
        char extra[8400];
        const char *to = param(query, "to", w, sizeof w, "http://127.0.0.1:1/gone");
        snprintf(extra, sizeof extra, "Location: %s\r\n", to);
        snprintf(body, sizeof body, "%s Redirect", param(query, "s", v, sizeof v, "303"));
        return respond(fd, body, extra, "");
    }
    if (strcmp(route, "loop") == 0) {
        char extra[8400];
        snprintf(extra, sizeof extra, "Location: %s%s%s\r\n", path, *query ? "?" : "", query);
        snprintf(body, sizeof body, "%s Redirect", param(query, "s", v, sizeof v, "302"));
        return respond(fd, body, extra, "");
    }
    if (strcmp(route, "nolocation") == 0) return respond(fd, "302 Found", "", "");
    if (strcmp(route, "bomb") == 0) return bomb(fd), -1;
    if (strcmp(route, "endless") == 0) return endless(fd), -1;
    if (strcmp(route, "trickle") == 0) return trickle(fd, query), -1;
    if (strcmp(route, "quote") == 0) {
        header(head, "Mendix-ApiKey", v, sizeof v);
        header(head, "Authorization", w, sizeof w);
        snprintf(body, sizeof body,
                 "{\"errorCode\":\"INVALID_KEY\",\"errorMessage\":\"invalid key %s (auth %s)\"}", v,
                 w);
        char extra[8400];
        snprintf(extra, sizeof extra, "X-Seen-Key: %s\r\n", v);
        return respond(fd, "401 Unauthorized", extra, body);
    }
    if (strcmp(route, "control") == 0)
        return respond(fd, "400 Bad Request", "",
                       "{\"errorCode\":\"BAD\\u001b[2J\",\"errorMessage\":\"red \\u001b[31malert"
                       "\\u0007 \\u009b31m done\"}");
    if (strcmp(route, "retryafter") == 0) {
        char extra[8400];
        snprintf(extra, sizeof extra, "Retry-After: %s\r\n", param(query, "v", v, sizeof v, "1"));
        return respond(fd, "503 Service Unavailable", extra, "{\"errorMessage\":\"busy\"}");
    }
    if (strcmp(route, "slow") == 0) {
        sleep_ms(atol(param(query, "ms", v, sizeof v, "1000")));
        return respond(fd, "200 OK", "", "{\"ok\":true}");
    }
    if (strcmp(route, "big") == 0) {
        long size = atol(param(query, "size", v, sizeof v, "100000"));
        snprintf(body, sizeof body,
                 "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                 "Content-Length: %ld\r\n\r\n",
                 size);
        if (send_str(fd, body) != 0) return -1;
        static const char zeros[4096];
        for (long left = size; left > 0; left -= (long)sizeof zeros)
            if (send_all(fd, zeros, left < (long)sizeof zeros ? (size_t)left : sizeof zeros) != 0)
                return -1;
        return 0;
    }
    if (strcmp(route, "gzip") == 0) return gzip_echo(fd, head);
    if (strcmp(route, "folded") == 0)
        return send_str(fd, "HTTP/1.1 200 OK\r\n folded: x\r\nContent-Type: application/json\r\n"
                            "Content-Length: 2\r\n\r\n{}") == 0
                   ? 0
                   : -1;
    if (strcmp(route, "typed") == 0) {
        char ct[512], head_out[1024];
        const char *type = param(query, "ct", ct, sizeof ct, NULL);
        const char *text = param(query, "body", body, sizeof body, "{\"ok\":true}");
        snprintf(head_out, sizeof head_out,
                 "HTTP/1.1 %s\r\n%s%s%sContent-Length: %zu\r\nX-Twice: one\r\n"
                 "X-Twice: two\r\nX-Request-Id: typed-1\r\n\r\n",
                 param(query, "s", v, sizeof v, "200 OK"), type ? "Content-Type: " : "",
                 type ? type : "", type ? "\r\n" : "", strlen(text));
        if (send_str(fd, head_out) != 0) return -1;
        return send_str(fd, text);
    }
    return respond(fd, "404 Not Found", "", "{\"errorMessage\":\"no such behaviour\"}");
}

static void *serve(void *arg) {
    int fd = (int)(long)arg;
    static __thread char in[1 << 16];
    size_t have = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(in, have, "\r\n\r\n", 4))) {
            if (have == sizeof in) goto done;
            ssize_t r = recv(fd, in + have, sizeof in - have, 0);
            if (r <= 0) goto done;
            have += (size_t)r;
        }
        size_t head_len = (size_t)(end + 4 - in);
        char head[sizeof in];
        memcpy(head, in, head_len);
        head[head_len] = '\0';
        char cl[32];
        header(head, "Content-Length", cl, sizeof cl);
        size_t need = head_len + (size_t)atol(cl);
        while (have < need && have < sizeof in) {
            ssize_t r = recv(fd, in + have, sizeof in - have, 0);
            if (r <= 0) goto done;
            have += (size_t)r;
        }
        if (need > have) { /* a body larger than the buffer: drain the rest */
            size_t left = need - have;
            have = 0;
            while (left > 0) {
                ssize_t r = recv(fd, in, left < sizeof in ? left : sizeof in, 0);
                if (r <= 0) goto done;
                left -= (size_t)r;
            }
        } else {
            memmove(in, in + need, have - need);
            have -= need;
        }
        char method[16], target[4096];
        if (sscanf(head, "%15s %4095s", method, target) != 2) goto done;
        pthread_mutex_lock(&log_lock);
        fprintf(logf, "%s %s\n", method, target);
        fflush(logf);
        pthread_mutex_unlock(&log_lock);
        char *q = strchr(target, '?');
        if (q) *q++ = '\0';
        if (answer(fd, method, target, q ? q : "", head) != 0) goto done;
    }
done:
    close(fd);
    return NULL;
}

static void *watch_stdin(void *arg) {
    (void)arg;
    char b[256];
    while (read(0, b, sizeof b) > 0) {
    }
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORTFILE LOGFILE\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    logf = fopen(argv[2], "a");
    if (!logf) return 1;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 128) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &alen) != 0)
        return 1;
    pthread_t t;
    pthread_create(&t, NULL, watch_stdin, NULL);
    pthread_detach(t);
    FILE *pf = fopen(argv[1], "w");
    if (!pf) return 1;
    fprintf(pf, "%d\n", ntohs(a.sin_port));
    fclose(pf);
    for (;;) {
        int fd = accept(s, NULL, NULL);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (pthread_create(&t, NULL, serve, (void *)(long)fd) != 0) {
            close(fd);
            continue;
        }
        pthread_detach(t);
    }
}
