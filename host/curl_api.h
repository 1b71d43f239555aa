/*
 * libcurl, loaded on first use. The binary does not link libcurl: startup (`mxdeploy -e ''`, the
 * REPL prompt, --help) would otherwise spend most of its time having the dynamic loader map and
 * bind libcurl's ~30 shared libraries (TLS, Kerberos, LDAP, ...). mx_curl_load() dlopens it
 * (once) and fills a table of the functions we call; below, each curl_* name is redirected to its
 * table entry, so code using curl reads as usual. The calls that can come first (creating an easy
 * or multi handle, a header list, a URL handle) load libcurl themselves and fail as curl does
 * (NULL) when it cannot be loaded; the scheduler loads it when it creates its multi handle
 * (mx_sched_multi), which reports why.
 */
#ifndef MX_CURL_API_H
#define MX_CURL_API_H

#define CURL_DISABLE_TYPECHECK /* the type-checking macros would call the functions directly */
#include <curl/curl.h>

/* Every libcurl function mxdeploy uses. */
#define MX_CURL_FUNCTIONS(X)                                                                       \
    X(curl_global_init)                                                                            \
    X(curl_version_info)                                                                           \
    X(curl_easy_init)                                                                              \
    X(curl_easy_cleanup)                                                                           \
    X(curl_easy_reset)                                                                             \
    X(curl_easy_setopt)                                                                            \
    X(curl_easy_perform)                                                                           \
    X(curl_easy_getinfo)                                                                           \
    X(curl_easy_strerror)                                                                          \
    X(curl_free)                                                                                   \
    X(curl_mime_init)                                                                              \
    X(curl_mime_addpart)                                                                           \
    X(curl_mime_data)                                                                              \
    X(curl_mime_filedata)                                                                          \
    X(curl_mime_name)                                                                              \
    X(curl_mime_free)                                                                              \
    X(curl_multi_init)                                                                             \
    X(curl_multi_cleanup)                                                                          \
    X(curl_multi_setopt)                                                                           \
    X(curl_multi_add_handle)                                                                       \
    X(curl_multi_remove_handle)                                                                    \
    X(curl_multi_perform)                                                                          \
    X(curl_multi_info_read)                                                                        \
    X(curl_multi_poll)                                                                             \
    X(curl_multi_timeout)                                                                          \
    X(curl_multi_wakeup)                                                                           \
    X(curl_slist_append)                                                                           \
    X(curl_slist_free_all)                                                                         \
    X(curl_url)                                                                                    \
    X(curl_url_cleanup)                                                                            \
    X(curl_url_get)                                                                                \
    X(curl_url_set)

struct mx_curl_api {
#define MX_CURL_MEMBER(f) __typeof__(f) *f;
    MX_CURL_FUNCTIONS(MX_CURL_MEMBER)
#undef MX_CURL_MEMBER
};
extern struct mx_curl_api mx_curl;

/* Loads libcurl and fills mx_curl (once, from any thread). Returns 0, or -1 when libcurl cannot be
 * loaded; mx_curl_error() then says why. */
int mx_curl_load(void);
const char *mx_curl_error(void);
extern volatile int mx_curl_loaded; /* 1 once mx_curl is filled */
#define MX_CURL_READY() (mx_curl_loaded || mx_curl_load() == 0)

#ifndef MX_CURL_API_IMPL
#undef curl_easy_setopt /* curl.h's pass-through macros */
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init (mx_curl.curl_global_init)
#define curl_version_info (mx_curl.curl_version_info)
#define curl_easy_init() (MX_CURL_READY() ? mx_curl.curl_easy_init() : NULL)
#define curl_easy_cleanup (mx_curl.curl_easy_cleanup)
#define curl_easy_reset (mx_curl.curl_easy_reset)
#define curl_easy_setopt (mx_curl.curl_easy_setopt)
#define curl_easy_perform (mx_curl.curl_easy_perform)
#define curl_easy_getinfo (mx_curl.curl_easy_getinfo)
#define curl_easy_strerror (mx_curl.curl_easy_strerror)
#define curl_free (mx_curl.curl_free)
#define curl_mime_init (mx_curl.curl_mime_init)
#define curl_mime_addpart (mx_curl.curl_mime_addpart)
#define curl_mime_data (mx_curl.curl_mime_data)
#define curl_mime_filedata (mx_curl.curl_mime_filedata)
#define curl_mime_name (mx_curl.curl_mime_name)
#define curl_mime_free (mx_curl.curl_mime_free)
#define curl_multi_init() (MX_CURL_READY() ? mx_curl.curl_multi_init() : NULL)
#define curl_multi_cleanup (mx_curl.curl_multi_cleanup)
#define curl_multi_setopt (mx_curl.curl_multi_setopt)
#define curl_multi_add_handle (mx_curl.curl_multi_add_handle)
#define curl_multi_remove_handle (mx_curl.curl_multi_remove_handle)
#define curl_multi_perform (mx_curl.curl_multi_perform)
#define curl_multi_info_read (mx_curl.curl_multi_info_read)
#define curl_multi_poll (mx_curl.curl_multi_poll)
#define curl_multi_timeout (mx_curl.curl_multi_timeout)
#define curl_multi_wakeup (mx_curl.curl_multi_wakeup)
#define curl_slist_append(l, s) (MX_CURL_READY() ? mx_curl.curl_slist_append(l, s) : NULL)
#define curl_slist_free_all (mx_curl.curl_slist_free_all)
#define curl_url() (MX_CURL_READY() ? mx_curl.curl_url() : NULL)
#define curl_url_cleanup (mx_curl.curl_url_cleanup)
#define curl_url_get (mx_curl.curl_url_get)
#define curl_url_set (mx_curl.curl_url_set)
#endif

#endif
