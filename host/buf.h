/* A growable byte buffer that never leaves a copy behind: it grows by copying and wiping the old
 * block (not realloc), since it may hold credential headers or response text with secrets. */
#ifndef MX_BUF_H
#define MX_BUF_H
#include <stddef.h>

struct buf {
    char *p;
    size_t len, cap;
    int failed; /* memory ran out: what did not fit was dropped (check it where it matters) */
};

/* Appends n bytes (always NUL-terminated after them); when memory runs out, drops them and sets
 * b->failed instead (never abort(): its core dump could hold the credentials). */
void buf_add(struct buf *b, const void *data, size_t n);
void buf_adds(struct buf *b, const char *s);
/* Wipes the bytes in use, then frees. */
void buf_wipe_free(struct buf *b);
void buf_free(struct buf *b);

#endif
