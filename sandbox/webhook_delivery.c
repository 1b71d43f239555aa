/* Webhook deliveries of the sandbox: see webhook_delivery.h. */
#include "webhook_delivery.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <lauxlib.h>

#include "hmac.h"
#include "thread_signals.h"

#define MAX_DELAY 60.0
#define SEND_TIMEOUT 15L

struct post {
    struct post *next;
    char *url, *body;
    size_t body_len;
    struct curl_slist *headers;
    double delay;
};

struct mx_sbdeliveries {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running; /* sender threads alive */
    int stopping;
};

struct batch {
    struct mx_sbdeliveries *d;
    struct post *posts;
};

static char *dup_n(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void post_free(struct post *p) {
    if (!p) return;
    free(p->url);
    free(p->body);
    curl_slist_free_all(p->headers);
    free(p);
}

static size_t discard(char *ptr, size_t size, size_t n, void *ud) {
    (void)ptr;
    (void)ud;
    return size * n;
}

/* Appends a header line; 0 when out of memory (the list so far stays in p). */
static int add_header(struct post *p, const char *line) {
    struct curl_slist *l = curl_slist_append(p->headers, line);
    if (!l) return 0;
    p->headers = l;
    return 1;
}

/* Waits `seconds`, or less when the sandbox stops. Returns 0 when it stops. */
static int pause_for(struct mx_sbdeliveries *d, double seconds) {
    if (seconds > MAX_DELAY) seconds = MAX_DELAY;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = until.tv_nsec + (long long)(seconds * 1e9);
    until.tv_sec += (time_t)(ns / 1000000000LL);
    until.tv_nsec = (long)(ns % 1000000000LL);
    pthread_mutex_lock(&d->mu);
    while (!d->stopping)
        if (pthread_cond_timedwait(&d->cv, &d->mu, &until) == ETIMEDOUT) break;
    int go = !d->stopping;
    pthread_mutex_unlock(&d->mu);
    return go;
}

static void *sender(void *arg) {
    struct batch *b = arg;
    struct mx_sbdeliveries *d = b->d;
    for (struct post *p = b->posts, *next; p; p = next) {
        next = p->next;
        if (pause_for(d, p->delay)) {
            CURL *e = curl_easy_init();
            if (e) {
                curl_easy_setopt(e, CURLOPT_URL, p->url);
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, p->body);
                curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->body_len);
                curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->headers);
                curl_easy_setopt(e, CURLOPT_TIMEOUT, SEND_TIMEOUT);
                curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
                curl_easy_perform(e); /* the receiver's answer is its business */
                curl_easy_cleanup(e);
            }
        }
        post_free(p);
    }
    free(b);
    pthread_mutex_lock(&d->mu);
    d->running--;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

struct mx_sbdeliveries *mx_sbdeliveries_new(void) {
    struct mx_sbdeliveries *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    return d;
}

void mx_sbdeliveries_take(struct mx_sbdeliveries *d, lua_State *L, int resp) {
    if (!d) return;
    lua_getfield(L, resp, "deliveries");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    struct post *head = NULL, **tail = &head;
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, -1, i);
        lua_getfield(L, -1, "url");
        lua_getfield(L, -2, "body");
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
            size_t un, bn;
            const char *u = lua_tolstring(L, -2, &un);
            const char *body = lua_tolstring(L, -1, &bn);
            /* out of memory: this delivery is dropped (noted), the sandbox goes on */
            int ok = 1;
            struct post *p = calloc(1, sizeof *p);
            if (p) {
                p->url = dup_n(u, un);
                p->body = dup_n(body, bn);
                p->body_len = bn;
                ok = p->url && p->body;
            }
            lua_getfield(L, -3, "delay");
            if (p) p->delay = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 0;
            lua_pop(L, 1);
            lua_getfield(L, -3, "headers");
            if (lua_istable(L, -1)) {
                lua_pushnil(L);
                while (lua_next(L, -2)) {
                    if (p && lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
                        lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
                        ok = ok && add_header(p, lua_tostring(L, -1));
                        lua_pop(L, 1);
                    }
                    lua_pop(L, 1);
                }
            }
            lua_pop(L, 1);
            if (p && ok) ok = add_header(p, "Expect:");
            if (p && ok) {
                *tail = p;
                tail = &p->next;
            } else {
                post_free(p);
                fprintf(stderr, "sandbox: out of memory: a webhook delivery is not sent\n");
            }
        }
        lua_pop(L, 3);
    }
    lua_pop(L, 1);
    if (!head) return;
    struct batch *b = malloc(sizeof *b);
    if (!b) {
        for (struct post *p = head, *next; p; p = next) {
            next = p->next;
            post_free(p);
        }
        fprintf(stderr, "sandbox: out of memory: webhook deliveries are not sent\n");
        return;
    }
    b->d = d;
    b->posts = head;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    pthread_mutex_lock(&d->mu);
    d->running++;
    pthread_mutex_unlock(&d->mu);
    sigset_t old; /* the sender never takes the process's signals (thread_signals.h) */
    mx_block_process_signals(&old);
    int failed = pthread_create(&t, &attr, sender, b) != 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (failed) {
        pthread_mutex_lock(&d->mu);
        d->running--;
        pthread_mutex_unlock(&d->mu);
        for (struct post *p = head, *next; p; p = next) {
            next = p->next;
            post_free(p);
        }
        free(b);
    }
    pthread_attr_destroy(&attr);
}

void mx_sbdeliveries_stop(struct mx_sbdeliveries *d) {
    if (!d) return;
    pthread_mutex_lock(&d->mu);
    d->stopping = 1;
    pthread_cond_broadcast(&d->cv);
    while (d->running > 0) /* a post in progress ends within SEND_TIMEOUT */
        pthread_cond_wait(&d->cv, &d->mu);
    pthread_mutex_unlock(&d->mu);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d);
}

void mx_sbdeliveries_open_crypto(lua_State *L) {
    lua_pushcfunction(L, mx_crypto_hmac_sha256);
    lua_setfield(L, -2, "hmac_sha256");
    lua_pushcfunction(L, mx_crypto_base64);
    lua_setfield(L, -2, "base64");
}
