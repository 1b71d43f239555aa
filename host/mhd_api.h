/*
 * libmicrohttpd, loaded when a server (the sandbox, mx.webhooks.serve) starts: like libcurl
 * (curl_api.h), so that startup does not map it and the TLS stack it links (GnuTLS, nettle, gmp,
 * p11-kit, ...). The C files that call it are compiled with this header force-included (-include,
 * see CMakeLists.txt), which redirects each MHD_* function to a table filled by dlopen on the
 * first MHD_start_daemon.
 */
#ifndef MX_MHD_API_H
#define MX_MHD_API_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <microhttpd.h>

/* Every libmicrohttpd function the sandbox uses. */
#define MX_MHD_FUNCTIONS(X)                                                                        \
    X(MHD_start_daemon)                                                                            \
    X(MHD_stop_daemon)                                                                             \
    X(MHD_get_daemon_info)                                                                         \
    X(MHD_get_connection_values)                                                                   \
    X(MHD_get_connection_info)                                                                     \
    X(MHD_set_connection_option)                                                                   \
    X(MHD_lookup_connection_value)                                                                 \
    X(MHD_create_response_from_buffer)                                                             \
    X(MHD_create_response_from_callback)                                                           \
    X(MHD_create_response_from_fd_at_offset64)                                                     \
    X(MHD_add_response_header)                                                                     \
    X(MHD_queue_response)                                                                          \
    X(MHD_destroy_response)                                                                        \
    X(MHD_suspend_connection)                                                                      \
    X(MHD_resume_connection)

struct mx_mhd_api {
#define MX_MHD_MEMBER(f) __typeof__(f) *f;
    MX_MHD_FUNCTIONS(MX_MHD_MEMBER)
#undef MX_MHD_MEMBER
};
extern struct mx_mhd_api mx_mhd;

/* Loads libmicrohttpd (the first call) and returns mx_mhd.MHD_start_daemon, or, when it cannot be
 * loaded, a stand-in that says why on stderr and returns NULL (no daemon), as a failed start does.
 */
__typeof__(MHD_start_daemon) *mx_mhd_start_daemon(void);

#ifndef MX_MHD_API_IMPL
#define MHD_start_daemon (mx_mhd_start_daemon())
#define MHD_stop_daemon (mx_mhd.MHD_stop_daemon)
#define MHD_get_daemon_info (mx_mhd.MHD_get_daemon_info)
#define MHD_get_connection_values (mx_mhd.MHD_get_connection_values)
#define MHD_get_connection_info (mx_mhd.MHD_get_connection_info)
#define MHD_set_connection_option (mx_mhd.MHD_set_connection_option)
#define MHD_lookup_connection_value (mx_mhd.MHD_lookup_connection_value)
#define MHD_create_response_from_buffer (mx_mhd.MHD_create_response_from_buffer)
#define MHD_create_response_from_callback (mx_mhd.MHD_create_response_from_callback)
#define MHD_create_response_from_fd_at_offset64 (mx_mhd.MHD_create_response_from_fd_at_offset64)
#define MHD_add_response_header (mx_mhd.MHD_add_response_header)
#define MHD_queue_response (mx_mhd.MHD_queue_response)
#define MHD_destroy_response (mx_mhd.MHD_destroy_response)
#define MHD_suspend_connection (mx_mhd.MHD_suspend_connection)
#define MHD_resume_connection (mx_mhd.MHD_resume_connection)
#endif

#endif
