/* placeholder main: dispatches `mxdeploy sandbox`; the full CLI is being written. */
#include <string.h>
#include "sandbox_host.h"
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "sandbox") == 0) return mx_sandbox_command(argc - 1, argv + 1);
    return 2;
}
