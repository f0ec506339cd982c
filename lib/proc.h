/*
 * proc: run a helper program with a deadline and take what it prints
 * (the token command, mwlsync apply for relaylisten).
 *
 * Guarantees: the child runs in its own process group; when it overruns
 * the deadline or prints too much, the whole group is killed and reaped.
 * Input is fed through a pipe and output read through another, both
 * polled, so neither side can block the other; nothing touches the disk.
 *
 * Never: prints, logs, exits, or reaps children other than its own (the
 * caller must not ignore SIGCHLD, and ignores SIGPIPE when it gives
 * input: a child may exit without reading it).
 */
#ifndef GW_PROC_H
#define GW_PROC_H

#include <stddef.h>

#include "err.h"

/*
 * Run argv (argv[0] found in $PATH) with in (inlen bytes; NULL: stdin is
 * /dev/null) on its stdin, its stdout NUL-terminated in buf (less than
 * bufsz bytes), stderr inherited.  0 when it ended in time, with its
 * wait status in *status; -1 with e set (cannot start, timed out, output
 * of bufsz - 1 bytes or more).
 */
int proc_run(char *const argv[], const char *in, size_t inlen, char *buf,
    size_t bufsz, int timeout_ms, int *status, struct err *e);

/* 0 for a wait status of exit 0; else -1 with e saying how it ended. */
int proc_exit_ok(int status, struct err *e);

#endif
