/*
 * workers: --jobs N, N worker processes sharing one spool (relaysend).
 *
 * workers_run() forks n workers; each runs fn(arg, i, wake_fd) with its
 * number i (0..n-1) and the read end of a non-blocking pipe on which the
 * parent passes on the spool's wake-ups (the spool's FIFO has one
 * reader).  Which jobs are whose is the caller's business (a hash of the
 * name, say).  Each worker dies with the parent (PR_SET_PDEATHSIG).
 *
 * Following (once 0), the parent waits on the spool and wakes every
 * worker after each wake-up; a worker that stops on its own stops them
 * all (the supervisor, gatewayd, restarts the program).  With once, the
 * parent waits for all of them.  *stop (set by a signal handler) stops
 * them all.  The exit status: the first failure, else 75 (EX_TEMPFAIL:
 * jobs left) if any worker said so, else 0.
 *
 * Never: exits.  In a worker, workers_run returns fn's status, and the
 * caller returns from main with it as the parent does with its own.
 */
#ifndef GW_WORKERS_H
#define GW_WORKERS_H

#include <signal.h>

#define WORKERS_MAX	64

typedef int workers_fn(void *arg, int worker, int wake_fd);

int workers_run(int n, int once, const char *spool_dir,
    volatile sig_atomic_t *stop, workers_fn *fn, void *arg);

#endif
