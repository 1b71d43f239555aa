/* Credentials: from explicit options, the environment, or a profile in the credentials file.
 * Secrets live only in C memory (zeroed when freed); Lua sees an opaque handle. */
#ifndef MX_CREDENTIALS_H
#define MX_CREDENTIALS_H
#include <lua.h>

struct mx_creds {
    char *username, *apikey, *token;
    char profile[64];
};

/* Returns the credentials userdata at idx, or NULL. */
struct mx_creds *mx_creds_test(lua_State *L, int idx);
/* core.credentials{profile=, username=, apikey=, token=, file=} */
int mx_creds_new(lua_State *L);
void mx_creds_open(lua_State *L);

#endif
