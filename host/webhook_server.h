/* A libmicrohttpd receiver of webhook deliveries, integrated with the scheduler. */
#ifndef MX_WEBHOOK_SERVER_H
#define MX_WEBHOOK_SERVER_H

#include <lua.h>

/* Adds webhook_listen to the table at the stack top. */
void mx_webhook_open(lua_State *L);

#endif
