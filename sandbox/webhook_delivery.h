/*
 * Webhook deliveries of the sandbox: an answer's `deliveries` ({url, headers, body, delay} each,
 * signed by sandbox/webhooks.lua) are copied out of the sandbox's Lua state under its lock and
 * POSTed by a thread of their own after their delay, so a receiver in the same process (or one
 * that is slow) never holds up the sandbox. Stopping waits for posts in progress.
 */
#ifndef MX_SB_WEBHOOK_DELIVERY_H
#define MX_SB_WEBHOOK_DELIVERY_H

#include <lua.h>

struct mx_sbdeliveries;

struct mx_sbdeliveries *mx_sbdeliveries_new(void);
/* Takes resp.deliveries of the answer table at index `resp` (call under the sandbox's lock). */
void mx_sbdeliveries_take(struct mx_sbdeliveries *d, lua_State *L, int resp);
/* Cancels waiting deliveries, waits for posts in progress, frees d. */
void mx_sbdeliveries_stop(struct mx_sbdeliveries *d);
/* Adds hmac_sha256(key, data) and base64(bytes) to the table at the stack top (the sandbox's
 * `native` module), for signing deliveries: the ones of mxdeploy.core (host/hmac.c). */
void mx_sbdeliveries_open_crypto(lua_State *L);

#endif
