/* The interactive prompt: lua.c semantics, each line run as a task. */
#ifndef MX_REPL_H
#define MX_REPL_H
#include <lua.h>

void mx_repl(lua_State *L);

#endif
