/* Idle connections of one listener: a connection is idle from when it opens, and again after
 * each answer, until its next request line arrives. At most `max` stay idle; beyond that the
 * oldest idle connection is shut down, so idle (or hostile, never-speaking) connections cannot
 * fill the listener's connection limit and lock real clients out. Thread-safe: MHD calls these
 * from the listener's pool threads. */
#ifndef MX_SANDBOX_IDLE_H
#define MX_SANDBOX_IDLE_H

struct mx_idle_conn;

struct mx_idle {
    void *mu;                         /* pthread_mutex_t, allocated by mx_idle_init */
    struct mx_idle_conn *head, *tail; /* idle connections, oldest first */
    int n, max;
    long evicted; /* how many were shut down */
};

int mx_idle_init(struct mx_idle *set, int max);
void mx_idle_destroy(struct mx_idle *set);

/* A new connection on socket fd (idle); NULL when out of memory (then it is not tracked). */
struct mx_idle_conn *mx_idle_open(struct mx_idle *set, int fd);
/* Its request line arrived / its answer was completed / it closed (frees it). */
void mx_idle_busy(struct mx_idle *set, struct mx_idle_conn *c);
void mx_idle_idle(struct mx_idle *set, struct mx_idle_conn *c);
void mx_idle_close(struct mx_idle *set, struct mx_idle_conn *c);

#endif
