/* Credentials: from explicit options, the environment, or a profile in the credentials file.
 * Secrets live only in C memory (zeroed when freed); Lua sees an opaque handle. */
#ifndef MX_CREDENTIALS_H
#define MX_CREDENTIALS_H
#include <lua.h>

struct mx_creds {
    char *username, *apikey, *token;
    char profile[64];
    /* where each value came from ("MENDIX_APIKEY", "FILE [profile]", "mx.connect"); never a
     * secret. Empty when the value is missing. */
    char src_username[320], src_apikey[320], src_token[320];
    /* why a value may be missing (MXDEPLOY_CREDENTIALS names no file), for error messages */
    char note[320];
};

/* Returns the credentials userdata at idx, or NULL. */
struct mx_creds *mx_creds_test(lua_State *L, int idx);
/* core.credentials{profile=, username=, apikey=, token=, file=}; creds:has(what),
 * creds:source(what) (where a value came from, or nil), creds:note(), creds:profile() */
int mx_creds_new(lua_State *L);
void mx_creds_open(lua_State *L);

#endif
