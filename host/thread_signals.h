/* Threads of ours (the sandbox's listeners and waker, webhook receivers and senders) never take
 * the process's SIGINT/SIGTERM/SIGHUP: the scheduler's handler must run on the main thread (it
 * wakes that thread's poll and arms a hook on its Lua state), and a Ctrl-C delivered to another
 * thread was sometimes lost. A thread inherits its creator's mask, so creators wrap the creation:
 *
 *   sigset_t old;
 *   mx_block_process_signals(&old);
 *   ... pthread_create / MHD_start_daemon ...
 *   pthread_sigmask(SIG_SETMASK, &old, NULL);
 */
#ifndef MX_THREAD_SIGNALS_H
#define MX_THREAD_SIGNALS_H

#include <signal.h>

/* Blocks SIGINT, SIGTERM and SIGHUP in the calling thread; the mask before goes to *old. */
void mx_block_process_signals(sigset_t *old);

#endif
