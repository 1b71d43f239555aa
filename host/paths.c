/* Where the binary finds the files installed beside it (see paths.h and CMakeLists.txt). */
#include "paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *mx_shipped_scripts_dir(void) {
    static char dir[PATH_MAX];
    char exe[PATH_MAX], build[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        if (realpath(MX_BUILD_DIR, build) && strcmp(exe, build) == 0 &&
            is_dir(MX_SOURCE_SCRIPTS_DIR))
            return MX_SOURCE_SCRIPTS_DIR;
        int len = snprintf(dir, sizeof dir, "%s/%s", exe, MX_SCRIPTS_RELDIR);
        if (len > 0 && (size_t)len < sizeof dir && is_dir(dir)) return dir;
    }
    return MX_SCRIPTS_DIR;
}

int luaopen_mxdeploy_host_paths(lua_State *L) {
    lua_createtable(L, 0, 1);
    lua_pushstring(L, mx_shipped_scripts_dir());
    lua_setfield(L, -2, "scripts");
    return 1;
}
