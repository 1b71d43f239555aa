/* Idle connections of a listener: see idle.h. */
#include "idle.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

struct mx_idle_conn {
    struct mx_idle_conn *prev, *next;
    int fd;
    int idle; /* in the list */
};

int mx_idle_init(struct mx_idle *set, int max) {
    pthread_mutex_t *mu = malloc(sizeof *mu);
    if (!mu) return -1;
    pthread_mutex_init(mu, NULL);
    set->mu = mu;
    set->head = set->tail = NULL;
    set->n = 0;
    set->max = max;
    set->evicted = 0;
    return 0;
}

void mx_idle_destroy(struct mx_idle *set) {
    if (!set->mu) return;
    pthread_mutex_destroy(set->mu);
    free(set->mu);
    set->mu = NULL;
}

static void unlink_conn(struct mx_idle *set, struct mx_idle_conn *c) {
    if (!c->idle) return;
    if (c->prev)
        c->prev->next = c->next;
    else
        set->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        set->tail = c->prev;
    c->prev = c->next = NULL;
    c->idle = 0;
    set->n--;
}

/* Appends c (locked); sheds the oldest beyond max. shutdown() makes libmicrohttpd (the listener's
 * pool thread that polls it) see the end of its input and close it; MHD reports the close
 * (mx_idle_close) before it closes the socket, so the descriptor shut down here is never one reused
 * by another connection. */
static void append_locked(struct mx_idle *set, struct mx_idle_conn *c) {
    if (c->idle) return;
    c->prev = set->tail;
    c->next = NULL;
    if (set->tail)
        set->tail->next = c;
    else
        set->head = c;
    set->tail = c;
    c->idle = 1;
    set->n++;
    while (set->n > set->max) {
        struct mx_idle_conn *old = set->head;
        unlink_conn(set, old);
        shutdown(old->fd, SHUT_RDWR);
        set->evicted++;
    }
}

struct mx_idle_conn *mx_idle_open(struct mx_idle *set, int fd) {
    struct mx_idle_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = fd;
    pthread_mutex_lock(set->mu);
    append_locked(set, c);
    pthread_mutex_unlock(set->mu);
    return c;
}

void mx_idle_busy(struct mx_idle *set, struct mx_idle_conn *c) {
    if (!c) return;
    pthread_mutex_lock(set->mu);
    unlink_conn(set, c);
    pthread_mutex_unlock(set->mu);
}

void mx_idle_idle(struct mx_idle *set, struct mx_idle_conn *c) {
    if (!c) return;
    pthread_mutex_lock(set->mu);
    append_locked(set, c);
    pthread_mutex_unlock(set->mu);
}

void mx_idle_close(struct mx_idle *set, struct mx_idle_conn *c) {
    if (!c) return;
    pthread_mutex_lock(set->mu);
    unlink_conn(set, c);
    pthread_mutex_unlock(set->mu);
    free(c);
}
