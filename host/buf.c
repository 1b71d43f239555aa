#include "buf.h"

#include <stdlib.h>
#include <string.h>

void buf_add(struct buf *b, const void *data, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = malloc(cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        if (b->p) {
            memcpy(p, b->p, b->len);
            explicit_bzero(b->p, b->cap);
            free(b->p);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void buf_adds(struct buf *b, const char *s) {
    buf_add(b, s, strlen(s));
}

void buf_wipe_free(struct buf *b) {
    if (b->p) explicit_bzero(b->p, b->cap);
    buf_free(b);
}

void buf_free(struct buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
