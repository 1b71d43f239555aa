/* An answer of the sandbox on its way from the Lua app to libmicrohttpd (answer.c). */
#ifndef MX_SANDBOX_ANSWER_H
#define MX_SANDBOX_ANSWER_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <lua.h>
#include <microhttpd.h>

struct hdr {
    char *name, *value;
};

struct answer {
    int status;
    struct hdr *hdrs;
    int nhdrs;
    char *body;
    size_t body_len;
    char *file;
    int64_t file_offset, file_size; /* a slice of the file; file_size < 0: to its end */
    double delay;
    char fault[16];
};

/* Frees what the answer holds (not the struct). */
void mx_sb_answer_free(struct answer *a);
/* A NUL-terminated copy of s[0..n), or NULL when out of memory. */
char *mx_sb_dupl(const char *s, size_t n);
/* Reads app:handle's answer (the table at t) into a; raises on a bad table or out of memory. */
void mx_sb_answer_read(lua_State *L, int t, struct answer *a);
/* Replaces a by a 500 with a JSON body (the app failed). */
void mx_sb_answer_internal_error(struct answer *a);
/* Queues the answer on c (MHD_NO when a response cannot be made). */
enum MHD_Result mx_sb_answer_send(struct MHD_Connection *c, struct answer *a);

#endif
