#define _GNU_SOURCE /* memmem */
#include "redact.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>

#include "scheduler.h"

/* ---- URLs -------------------------------------------------------------------------------- */

/* Whether name[0..n) holds one of the words, in any case, anywhere (however long the name). */
static int holds_word(const char *name, size_t n, const char *const *words, size_t count) {
    for (size_t i = 0; i < count; i++) {
        size_t w = strlen(words[i]);
        for (size_t at = 0; at + w <= n; at++)
            if (strncasecmp(name + at, words[i], w) == 0) return 1;
    }
    return 0;
}

/* A query parameter whose name holds one of these words carries a secret (sessionkey,
 * client_secret, passphrase, X-Amz-Signature, access_token, ...). */
static int secret_param(const char *name, size_t n) {
    static const char *const words[] = {"key",  "token",     "secret", "password",  "pass",
                                        "auth", "signature", "sig",    "credential"};
    return holds_word(name, n, words, sizeof words / sizeof *words);
}

/* The parts of a URL that may hold secrets. Any of them may be absent (NULL). */
struct url_parts {
    const char *userinfo, *at; /* user info [userinfo, at) */
    const char *query, *hash;  /* after '?' up to '#' (or the end); after '#' */
};

static struct url_parts split_url(const char *url) {
    struct url_parts u = {0};
    const char *p = url;
    const char *scheme_end = strstr(url, "://");
    if (scheme_end && strcspn(url, "?#") < (size_t)(scheme_end - url)) scheme_end = NULL;
    if (scheme_end) {
        const char *host = scheme_end + 3;
        const char *end = host + strcspn(host, "/?#");
        const char *at = NULL;
        for (const char *c = host; c < end; c++) /* the last '@' ends the user info */
            if (*c == '@') at = c;
        if (at) u.userinfo = host, u.at = at;
        p = end;
    }
    u.hash = strchr(p, '#');
    const char *q = strchr(p, '?');
    if (q && (!u.hash || q < u.hash)) u.query = q + 1;
    if (u.hash) u.hash++;
    return u;
}

void mx_redact_url_to(struct buf *b, const char *url) {
    struct url_parts u = split_url(url);
    const char *p = url;
    if (u.userinfo) {
        buf_add(b, url, (size_t)(u.userinfo - url));
        buf_add(b, "***", 3);
        p = u.at;
    }
    const char *stop = u.query ? u.query : u.hash ? u.hash - 1 : p + strlen(p);
    buf_add(b, p, (size_t)(stop - p));
    if (u.query) {
        const char *s = u.query;
        while (*s && *s != '#') {
            size_t len = strcspn(s, "&#");
            const char *eq = memchr(s, '=', len);
            if (eq && secret_param(s, (size_t)(eq - s))) {
                buf_add(b, s, (size_t)(eq + 1 - s));
                buf_add(b, "***", 3);
            } else {
                buf_add(b, s, len);
            }
            s += len;
            if (*s == '&') buf_add(b, s++, 1);
        }
    }
    if (u.hash) buf_add(b, *u.hash ? "#***" : "#", *u.hash ? 4 : 1);
    if (!b->p) buf_add(b, "", 0);
}

void mx_redact_url(const char *url, char *out, size_t n) {
    struct buf b = {0};
    mx_redact_url_to(&b, url);
    snprintf(out, n, "%s", b.p);
    buf_wipe_free(&b);
}

/* ---- secrets ----------------------------------------------------------------------------- */

void mx_secrets_add(struct mx_secrets *s, const char *p, size_t len) {
    if (len < 4) return;
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->v[i]) == len && memcmp(s->v[i], p, len) == 0) return;
    char **v = malloc((s->n + 1) * sizeof *v);
    char *copy = malloc(len + 1);
    if (!v || !copy) mx_out_of_memory();
    memcpy(copy, p, len);
    copy[len] = '\0';
    if (s->n) memcpy(v, s->v, s->n * sizeof *v);
    free(s->v);
    v[s->n++] = copy;
    s->v = v;
}

/* libcurl sends URL user info as "Authorization: Basic base64(user:password)": a server that
 * echoes that header back must not reveal it either. */
static void add_basic(struct mx_secrets *s, const char *userinfo, size_t n) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    struct buf out = {0};
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)userinfo[i] << 16;
        if (i + 1 < n) v |= (unsigned char)userinfo[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)userinfo[i + 2];
        char q[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
                     i + 2 < n ? b64[v & 63] : '='};
        buf_add(&out, q, 4);
    }
    if (out.p) mx_secrets_add(s, out.p, out.len);
    buf_wipe_free(&out);
}

void mx_secrets_add_url(struct mx_secrets *s, const char *url) {
    struct url_parts u = split_url(url);
    if (u.userinfo) {
        const char *colon = memchr(u.userinfo, ':', (size_t)(u.at - u.userinfo));
        if (colon) mx_secrets_add(s, colon + 1, (size_t)(u.at - colon - 1));
        add_basic(s, u.userinfo, (size_t)(u.at - u.userinfo));
    }
    /* secret-named values of the query and of a fragment written as one (#access_token=...);
     * not a whole fragment: scrubbing a word like "details" would mangle answers */
    const char *parts[2] = {u.query, u.hash};
    for (int i = 0; i < 2; i++) {
        const char *q = parts[i];
        while (q && *q && *q != '#') {
            size_t len = strcspn(q, "&#");
            const char *eq = memchr(q, '=', len);
            if (eq && secret_param(q, (size_t)(eq - q)))
                mx_secrets_add(s, eq + 1, (size_t)(q + len - eq - 1));
            q += len;
            if (*q == '&') q++;
        }
    }
}

void mx_secrets_scrub(const struct mx_secrets *s, char *text, size_t *len) {
    if (!text || !s->n) return;
    /* Every byte inside an occurrence of any secret is marked first, then each marked run becomes
     * one "***": replacing secret by secret let a shorter secret found inside a longer one (or
     * overlapping it) cut it in two and leave the rest of the longer one in the text. */
    unsigned char *mark = NULL;
    for (size_t i = 0; i < s->n; i++) {
        size_t n = strlen(s->v[i]), at = 0;
        char *hit;
        while (at < *len && (hit = memmem(text + at, *len - at, s->v[i], n)) != NULL) {
            if (!mark && !(mark = calloc(*len, 1))) mx_out_of_memory();
            memset(mark + (hit - text), 1, n);
            at = (size_t)(hit - text) + 1;
        }
    }
    if (!mark) return;
    size_t w = 0; /* a run is at least 4 bytes (mx_secrets_add) and becomes 3: w stays behind */
    for (size_t r = 0; r < *len; r++) {
        if (!mark[r])
            text[w++] = text[r];
        else if (r == 0 || !mark[r - 1]) {
            memcpy(text + w, "***", 3);
            w += 3;
        }
    }
    *len = w;
    free(mark);
}

void mx_secrets_free(struct mx_secrets *s) {
    for (size_t i = 0; i < s->n; i++) {
        explicit_bzero(s->v[i], strlen(s->v[i]));
        free(s->v[i]);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* ---- JSON bodies ------------------------------------------------------------------------- */

/* A JSON member name that holds a secret (a webhook's validationSecret, a password, a token). */
static int secret_member(const char *name, size_t n) {
    static const char *const words[] = {"secret",     "password",    "passphrase",
                                        "token",      "apikey",      "api_key",
                                        "privatekey", "private_key", "credential"};
    return holds_word(name, n, words, sizeof words / sizeof *words);
}

/* The end of the JSON string whose opening quote is at s[i]: the index just past its closing
 * quote, or n when it is cut off. */
static size_t string_end(const char *s, size_t n, size_t i) {
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

static int is_name(const char *s, size_t i, size_t name_end, const char *name) {
    size_t n = strlen(name);
    return name_end - i - 2 == n && memcmp(s + i + 1, name, n) == 0;
}

void mx_redact_json_to(struct buf *out, const char *s, size_t n) {
    mx_redact_json_members(out, s, n, secret_member, "***");
}

void mx_redact_json_members(struct buf *out, const char *s, size_t n, mx_member_test is_secret,
                            const char *marker) {
    size_t from = 0, i = 0;
    /* Nesting depth, and the depth of the outermost open "headers" array (a webhook's custom
     * headers, [{"key": "Authorization", "value": "..."}]): every "value" member inside it is a
     * secret too. A "headers" array nested in it does not replace it: when that one closed, the
     * values after it went out readable. */
    int depth = 0, headers_opening = -1, headers_depth = -1;
    while (i < n) {
        char c = s[i];
        if (c == '[' || c == '{') {
            depth++;
            if (c == '[' && depth == headers_opening && headers_depth < 0) headers_depth = depth;
            headers_opening = -1;
            i++;
            continue;
        }
        if (c == ']' || c == '}') {
            if (depth == headers_depth) headers_depth = -1;
            depth--;
            i++;
            continue;
        }
        if (c != '"') {
            i++;
            continue;
        }
        size_t name_end = string_end(s, n, i);
        size_t j = name_end;
        while (j < n && isspace((unsigned char)s[j]))
            j++;
        if (j >= n || s[j] != ':') {
            i = name_end;
            continue;
        }
        for (j++; j < n && isspace((unsigned char)s[j]);)
            j++;
        int secret =
            is_secret(s + i + 1, name_end - i - 2) ||
            (headers_depth >= 0 && depth > headers_depth && is_name(s, i, name_end, "value"));
        if (j < n && s[j] == '"' && secret) {
            buf_add(out, s + from, j + 1 - from);
            buf_adds(out, marker);
            size_t v_end = string_end(s, n, j);
            from = s[v_end - 1] == '"' && v_end > j + 1 ? v_end - 1 : v_end;
            i = v_end;
        } else {
            if (j < n && s[j] == '[' && is_name(s, i, name_end, "headers"))
                headers_opening = depth + 1;
            i = j;
        }
    }
    buf_add(out, s + from, n - from);
}

/* ---- control characters ------------------------------------------------------------------ */

void mx_escape_controls(struct buf *out, const char *s, size_t n) {
    char esc[8];
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int c1 = c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
                 (unsigned char)s[i + 1] <= 0x9F;
        if (c >= 0x20 && c != 0x7F && !c1) continue;
        buf_add(out, s + from, i - from);
        if (c1)
            snprintf(esc, sizeof esc, "\\u%04X", (unsigned char)s[++i]);
        else if (c == '\n' || c == '\r' || c == '\t')
            snprintf(esc, sizeof esc, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        else
            snprintf(esc, sizeof esc, "\\x%02X", c);
        buf_adds(out, esc);
        from = i + 1;
    }
    buf_add(out, s + from, n - from);
}

/* ---- Lua ---------------------------------------------------------------------------------- */

static int l_redact_url(lua_State *L) {
    struct buf b = {0};
    mx_redact_url_to(&b, luaL_checkstring(L, 1));
    lua_pushlstring(L, b.p, b.len);
    buf_wipe_free(&b);
    return 1;
}

static int l_printable(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    struct buf b = {0};
    mx_escape_controls(&b, s, n);
    lua_pushlstring(L, b.p ? b.p : "", b.len);
    buf_free(&b);
    return 1;
}

void mx_redact_open(lua_State *L) {
    luaL_Reg funcs[] = {{"redact_url", l_redact_url}, {"printable", l_printable}, {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
