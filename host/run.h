/* Running chunks as tasks and reporting their errors the way lua5.4 does. */
#ifndef MX_RUN_H
#define MX_RUN_H
#include <lua.h>

/* Set by the REPL: Ctrl-C then cancels only the running line; a script's Ctrl-C cancels every
 * task. */
extern int mx_run_repl_mode;
/* Set when a reported error carries an `exit_code` (a refused confirmation: 2); 0 otherwise. */
extern int mx_run_exit_code;

/* With `status` from a luaL_load* call and the chunk plus nargs arguments on the stack: runs the
 * chunk as a task until it finishes. Reports any error on stderr; returns 0 or 1. */
int mx_run_loaded(lua_State *L, int status, int nargs);
/* Runs the chunk (plus nargs) as a task; on success leaves its results table on the stack
 * ({n=, ...}) and returns 0; else reports the error and returns 1 (stack unchanged). */
int mx_run_task(lua_State *L, int nargs);
/* require(mod) as a task, storing the result in global `global`. */
int mx_run_require(lua_State *L, const char *mod, const char *global);
/* Runs the remaining tasks to the end; returns the exit code (1 if any failed unobserved). */
int mx_run_drain(lua_State *L);
/* Prints `mxdeploy: <message>` and the traceback of the error value at idx to stderr. */
void mx_report_error(lua_State *L, int idx);

#endif
