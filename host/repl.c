/*
 * The REPL. Like lua.c: an expression line prints its value, a line whose syntax error ends at
 * <eof> continues, _PROMPT/_PROMPT2 set the prompts. Unlike lua.c: each line runs as a task, so
 * calls that wait work here, and spawned tasks keep running while the prompt waits for input
 * (readline's callback interface on the scheduler's poll). Ctrl-C cancels the running line, or
 * clears the input at the prompt.
 */
#include "repl.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <lauxlib.h>
#include <readline/history.h>
#include <readline/readline.h>

#include "run.h"
#include "scheduler.h"

#define HISTORY_LINES 1000

static lua_State *repl_L;
static char *pending_line;
static int got_line, got_eof;

static void history_path(char *out, size_t n) {
    const char *p = getenv("MXDEPLOY_HISTORY");
    const char *home = getenv("HOME");
    if (p)
        snprintf(out, n, "%s", p);
    else if (home)
        snprintf(out, n, "%s/.mxdeploy_history", home);
    else
        out[0] = '\0';
}

/* Only a regular file (or none yet) is read and rewritten: MXDEPLOY_HISTORY=/dev/null or a pipe
 * must stay what it is (readline truncates, rewrites and renames over the file). */
static int history_file_usable(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return 1;
    return S_ISREG(st.st_mode);
}

static const char *prompt(lua_State *L, int first) {
    lua_getglobal(L, first ? "_PROMPT" : "_PROMPT2");
    const char *p = lua_tostring(L, -1);
    static char buf[256];
    snprintf(buf, sizeof buf, "%s", p ? p : (first ? "> " : ">> "));
    lua_pop(L, 1);
    return buf;
}

/* ---- completion ---------------------------------------------------------------------------- */

static char **candidates;
static size_t ncandidates;

static char *next_candidate(const char *text, int state) {
    (void)text;
    static size_t i;
    if (state == 0) i = 0;
    return i < ncandidates ? strdup(candidates[i++]) : NULL;
}

/* Shows `hint` (an argument hint: the signature of the function being called) below the input
 * line, then redraws the prompt and the input under it. */
static void show_hint(const char *hint) {
    FILE *out = rl_outstream ? rl_outstream : stdout;
    fprintf(out, "\n%s\n", hint);
    fflush(out);
    rl_on_new_line();
    rl_redisplay();
}

static char **complete(const char *text, int start, int end) {
    (void)end;
    rl_attempted_completion_over = 1;
    rl_completion_append_character = '\0';
    for (size_t i = 0; i < ncandidates; i++)
        free(candidates[i]);
    free(candidates);
    candidates = NULL;
    ncandidates = 0;
    lua_State *L = repl_L;
    int top = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "mxdeploy.repl");
    lua_getfield(L, -1, "complete");
    lua_pushstring(L, text);
    lua_pushlstring(L, rl_line_buffer,
                    start > 0 ? (size_t)start : 0); /* the line before the word */
    if (lua_pcall(L, 2, 2, 0) == LUA_OK && lua_istable(L, -2)) {
        if (lua_type(L, -1) == LUA_TSTRING) show_hint(lua_tostring(L, -1));
        lua_pop(L, 1);
        size_t n = lua_rawlen(L, -1);
        candidates = calloc(n + 1, sizeof *candidates);
        for (size_t i = 0; candidates && i < n; i++) {
            lua_rawgeti(L, -1, (lua_Integer)i + 1);
            const char *c = lua_tostring(L, -1);
            if (c) candidates[ncandidates++] = strdup(c);
            lua_pop(L, 1);
        }
    }
    lua_settop(L, top);
    return rl_completion_matches(text, next_candidate);
}

/* ---- reading lines while the scheduler runs ------------------------------------------------- */

/* Set while readline shows a prompt and owns the input line (between handler install and
 * remove). Output of tasks that run meanwhile goes through repl_print below. */
static int prompt_active;

static void on_line(char *line);

static void install_handler(const char *p) {
    rl_callback_handler_install(p, on_line);
    prompt_active = 1;
}

static void remove_handler(void) {
    prompt_active = 0;
    rl_callback_handler_remove();
}

/* `print` and `io.write` at the REPL: a task printing while the prompt waits for input clears
 * the prompt line first and redraws it (with what was typed) below the output, instead of
 * writing into it. The wrapped function is upvalue 1; its results are returned. */
static int repl_print(lua_State *L) {
    int active = prompt_active && isatty(STDOUT_FILENO);
    if (active) {
        fflush(stdout);
        rl_clear_visible_line();
        fflush(rl_outstream ? rl_outstream : stdout);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    if (active) {
        fflush(stdout);
        rl_on_new_line();
        rl_redisplay();
    }
    if (status != LUA_OK) return lua_error(L);
    return lua_gettop(L);
}

static void on_line(char *line) {
    remove_handler();
    if (!line) {
        got_eof = 1;
        return;
    }
    pending_line = line;
    got_line = 1;
}

static void on_stdin(void *ud) {
    (void)ud;
    rl_callback_read_char();
}

/* Reads one line (NULL at end of input) while other tasks keep running. Sets *cleared when
 * Ctrl-C dropped the input meanwhile (the caller then drops a pending continuation too). */
static char *read_line(lua_State *L, int first, int *cleared) {
    *cleared = 0;
    got_line = got_eof = 0;
    pending_line = NULL;
    if (!isatty(STDIN_FILENO)) { /* plain input: no line editing */
        fputs(prompt(L, first), stdout);
        fflush(stdout);
        char buf[8192];
        if (!fgets(buf, sizeof buf, stdin)) return NULL;
        buf[strcspn(buf, "\n")] = '\0';
        return strdup(buf);
    }
    mx_sched_interrupt_cancels(0);
    install_handler(prompt(L, first));
    mx_sched_watch_fd(mx_sched_get(L), STDIN_FILENO, on_stdin, NULL);
    while (!got_line && !got_eof) {
        mx_sched_step(L, 1000);
        if (mx_sched_interrupted() && mx_sched_interrupted() != SIGINT) { /* TERM, HUP: end */
            got_eof = 1;
            break;
        }
        if (mx_sched_interrupted()) { /* Ctrl-C at the prompt: drop the input */
            mx_sched_clear_interrupt();
            rl_free_line_state();
            rl_callback_sigcleanup();
            remove_handler();
            fputs("^C\n", stdout);
            *cleared = 1;
            install_handler(prompt(L, 1));
        }
    }
    mx_sched_watch_fd(mx_sched_get(L), -1, NULL, NULL);
    mx_sched_interrupt_cancels(1);
    if (got_eof) {
        fputs("\n", stdout);
        return NULL;
    }
    return pending_line;
}

/* ---- while a line runs, and at the end ----------------------------------------------------------
 */

/* Keys typed while a line runs are neither echoed (arrow keys showed ^[[A) nor cooked: they wait
 * in the input queue and reach readline at the next prompt, as type-ahead (an arrow key then
 * recalls history). Ctrl-C still interrupts (ISIG stays on). Returns 1 when it changed the
 * terminal (restore *saved afterwards). */
static int quiet_terminal(struct termios *saved) {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, saved) != 0) return 0;
    struct termios t = *saved;
    t.c_lflag &= ~(tcflag_t)(ECHO | ICANON);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    return tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
}

/* The terminal as it was before the running line made it quiet (run_quiet set): reading stdin
 * from a line (`io.read()` for a confirmation) gets the normal, echoing terminal back meanwhile. */
static struct termios run_tty;
static int run_quiet;

/* io.read, and file:read on io.stdin, at the REPL: upvalue 1 is the wrapped function. */
static int repl_read(lua_State *L) {
    int is_stdin = 1;
    if (lua_isuserdata(L, 1)) { /* file:read(...): only stdin changes the terminal */
        lua_getglobal(L, "io");
        lua_getfield(L, -1, "stdin");
        is_stdin = lua_rawequal(L, 1, -1);
        lua_pop(L, 2);
    }
    int restore = run_quiet && is_stdin;
    if (restore) tcsetattr(STDIN_FILENO, TCSANOW, &run_tty);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    if (restore) {
        struct termios again;
        quiet_terminal(&again);
    }
    if (status != LUA_OK) return lua_error(L);
    return lua_gettop(L);
}

/* Replaces the function t[name] of the table at the stack top by `wrapper` holding it as its
 * upvalue (print, io.write, io.read and file:read go through the prompt); a missing or
 * replaced-by-a-non-function field is left as it is. */
static void wrap_field(lua_State *L, const char *name, lua_CFunction wrapper) {
    lua_getfield(L, -1, name);
    if (lua_isfunction(L, -1)) {
        lua_pushcclosure(L, wrapper, 1);
        lua_setfield(L, -2, name);
    } else {
        lua_pop(L, 1);
    }
}

/* Lua's verdict (host/lua/repl.lua keep_in_history): a line giving a credential a literal value
 * is not added to the history, so it never reaches the history file. */
static int keep_in_history(lua_State *L, const char *line) {
    int top = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "mxdeploy.repl");
    lua_getfield(L, -1, "keep_in_history");
    lua_pushstring(L, line);
    int keep = lua_pcall(L, 1, 1, 0) != LUA_OK || lua_toboolean(L, -1);
    lua_settop(L, top);
    return keep;
}

static volatile int eof_again;

static void on_stdin_key(void *ud) {
    (void)ud;
    unsigned char c;
    ssize_t n = read(STDIN_FILENO, &c, 1);
    if (n == 0 || (n == 1 && c == 4)) eof_again = 1; /* Ctrl-D (or the terminal went away) */
}

/* Ctrl-D at the prompt while tasks still wait: say what they wait on, then wait for them; a
 * second Ctrl-D, or Ctrl-C, ends them (an interrupt: their <close> handlers run). Without this
 * the REPL ended silently into a wait for every task (a start job: a minute). */
static void wait_for_tasks(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, "mxdeploy.repl");
    lua_getfield(L, -1, "pending_lines");
    const char *text = NULL;
    if (lua_pcall(L, 0, 1, 0) == LUA_OK) text = lua_tostring(L, -1);
    if (!text) {
        lua_pop(L, 2);
        return;
    }
    fprintf(stdout, "%s\n", text);
    fflush(stdout);
    lua_pop(L, 2);
    struct termios saved;
    int quiet = quiet_terminal(&saved);
    eof_again = 0;
    mx_sched_watch_fd(mx_sched_get(L), STDIN_FILENO, on_stdin_key, NULL);
    for (;;) {
        if (eof_again) {
            mx_sched_interrupt(); /* ends every task as Ctrl-C does */
            break;
        }
        if (mx_sched_interrupted()) break;
        lua_getfield(L, LUA_REGISTRYINDEX, "mxdeploy.repl");
        lua_getfield(L, -1, "pending_lines");
        int running = lua_pcall(L, 0, 1, 0) == LUA_OK && lua_isstring(L, -1);
        lua_pop(L, 2);
        if (!running) break;
        mx_sched_step(L, 200);
    }
    mx_sched_watch_fd(mx_sched_get(L), -1, NULL, NULL);
    if (quiet) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
}

/* ---- compiling and running a line ------------------------------------------------------------ */

static int incomplete(lua_State *L, int status) {
    if (status != LUA_ERRSYNTAX) return 0;
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    return len >= 5 && strcmp(msg + len - 5, "<eof>") == 0;
}

/* Compiles the chunk in `code`: "return <code>" first, then as statements. Returns the
 * luaL_load status with the function (or message) on the stack; -1 when more input is needed. */
static int compile(lua_State *L, const char *code) {
    lua_pushfstring(L, "return %s;", code);
    int status = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=stdin");
    lua_remove(L, -2);
    if (status == LUA_OK) return status;
    lua_pop(L, 1);
    status = luaL_loadbuffer(L, code, strlen(code), "=stdin");
    if (incomplete(L, status)) {
        lua_pop(L, 1);
        return -1;
    }
    return status;
}

static void print_results(lua_State *L) {
    lua_getfield(L, -1, "n");
    int n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    for (int i = 1; i <= n; i++) {
        lua_getfield(L, LUA_REGISTRYINDEX, "mxdeploy.repl");
        lua_getfield(L, -1, "pretty");
        lua_rawgeti(L, -3, i);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
            lua_pop(L, 1);
            lua_rawgeti(L, -2, i);
            luaL_tolstring(L, -1, NULL);
            lua_remove(L, -2);
        }
        printf("%s\n", lua_tostring(L, -1));
        lua_pop(L, 2);
    }
    fflush(stdout);
}

static void run_chunk(lua_State *L, const char *code) {
    int status = compile(L, code);
    if (status != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return;
    }
    if (mx_run_task(L, 0) == 0) {
        print_results(L);
        lua_pop(L, 1);
    }
    if (mx_sched_interrupted() == SIGINT) mx_sched_clear_interrupt();
}

void mx_repl(lua_State *L) {
    repl_L = L;
    mx_run_repl_mode = 1;
    lua_getglobal(L, "require");
    lua_pushstring(L, "mxdeploy.host.repl");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        mx_report_error(L, -1);
        lua_pop(L, 1);
        return;
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "mxdeploy.repl");
    lua_getglobal(L, "help"); /* help(fn) at the prompt, unless a script defined its own */
    if (lua_isnil(L, -1)) {
        lua_getglobal(L, "mx");
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "help");
            lua_setglobal(L, "help");
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushglobaltable(L);
    wrap_field(L, "print", repl_print);
    lua_pop(L, 1);
    lua_getglobal(L, "io");
    if (lua_istable(L, -1)) {
        wrap_field(L, "write", repl_print);
        wrap_field(L, "read", repl_read);
    }
    lua_pop(L, 1);
    if (luaL_getmetatable(L, LUA_FILEHANDLE) == LUA_TTABLE) { /* io.stdin:read() */
        lua_getfield(L, -1, "__index");
        if (lua_istable(L, -1)) wrap_field(L, "read", repl_read);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    char hist[4096];
    history_path(hist, sizeof hist);
    rl_readline_name = "mxdeploy";
    rl_catch_signals = 0;
    rl_attempted_completion_function = complete;
    rl_basic_word_break_characters = " \t\n\"\\'`><=;+-*/%^~#&|{}()[],";
    if (hist[0] && history_file_usable(hist)) read_history(hist);
    char *chunk = NULL;
    for (;;) {
        int cleared;
        char *line = read_line(L, chunk == NULL, &cleared);
        if (cleared && chunk) { /* Ctrl-C at the ">>" prompt: drop the whole statement */
            free(chunk);
            chunk = NULL;
        }
        if (!line) {
            if (isatty(STDIN_FILENO)) wait_for_tasks(L);
            break;
        }
        if (chunk) {
            size_t n = strlen(chunk) + strlen(line) + 2;
            char *joined = malloc(n);
            snprintf(joined, n, "%s\n%s", chunk, line);
            free(chunk);
            free(line);
            chunk = joined;
        } else {
            chunk = line;
            if (chunk[0] == '=') chunk[0] = ' '; /* lua 5.1 habit: "=expr" */
        }
        int status = compile(L, chunk);
        if (status == -1) continue; /* incomplete: read more */
        lua_pop(L, 1);
        if (chunk[strspn(chunk, " \t")] != '\0' && keep_in_history(L, chunk)) add_history(chunk);
        run_quiet = quiet_terminal(&run_tty);
        run_chunk(L, chunk);
        if (run_quiet) tcsetattr(STDIN_FILENO, TCSANOW, &run_tty);
        run_quiet = 0;
        free(chunk);
        chunk = NULL;
    }
    free(chunk);
    if (hist[0] && history_file_usable(hist)) {
        write_history(hist); /* readline creates it 0600 */
        history_truncate_file(hist, HISTORY_LINES);
        chmod(hist, 0600); /* an older file may have been readable by others */
    }
}
