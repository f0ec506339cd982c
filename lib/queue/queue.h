/*
 * queue: the spool directories between the stages (maildir-style jobs)
 * and the worker processes that share one spool.
 *
 * Layer 1.  The one public header of lib/queue/; what its modules share
 * beyond it is static in its .c files.
 * Modules, each with its contract below: spool, census, workers.
 */
#ifndef GW_QUEUE_H
#define GW_QUEUE_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <time.h>

#include "base/base.h"

/*
 * spool: the maildir-style job queue between stages (screening-gateway(7)).
 *
 *   <dir>/tmp/     jobs being written
 *   <dir>/new/     jobs waiting (a rename from tmp/ makes one visible)
 *   <dir>/cur/     jobs claimed by the consumer
 *   <dir>/failed/  jobs that failed for good, each with <name>.reason
 *   <dir>/wake     a FIFO: producers write a byte after each enqueue
 *
 * Guarantees: a job in new/ is complete and on disk (written in
 * tmp/NAME.PID, so writers of one name in two processes never meet;
 * fsynced, renamed, directory fsynced).  A claimed job stays in cur/ until
 * spool_finish() or spool_fail(); spool_recover() returns cur/ to new/
 * (and removes the tmp/ files of writers that died before renaming), so
 * a crash repeats work and never loses it: consumers must be idempotent.
 * Job order is the order of names; generated names start with the time.
 * A job file's mtime is when it was first queued: spool_rewrite() and
 * spool_requeue() keep it, so a job retried for an hour is an hour old
 * (a producer that replaces a waiting job queues it anew).
 *
 * A job body is text, one key=value per line (spool_job_get reads one).
 * Deferred enqueues (SPOOL_DEFER) write tmp/ files without fsync and make
 * them visible together in spool_flush() with one syncfs(): that is how a
 * batch of N jobs costs one disk flush rather than N.
 *
 * Memory: struct spool is the caller's; it holds a small list of deferred
 * names, released by spool_close().
 */

#define SPOOL_NAME_MAX	128
#define SPOOL_JOB_MAX	65536	/* largest job body read */
#define SPOOL_DEFER	0x01

struct spool {
	char dir[PATH_MAX];
	int wake_fd;		/* consumer side of the FIFO, -1 until waited */
	int wake_keep;		/* our own writer, so poll never sees POLLHUP */
	unsigned seq;		/* for unique names within this process */
	char (*pending)[SPOOL_NAME_MAX];
	size_t npending, cappending;
};

/* Open the spool at dir; with create, make its directories and FIFO. */
int spool_open(struct spool *s, const char *dir, int create, struct err *e);
void spool_close(struct spool *s);

/* Make a unique, time-ordered job name. */
void spool_new_name(struct spool *s, char name[SPOOL_NAME_MAX]);

/*
 * Enqueue a job.  name NULL: a generated one.  A given name replaces a
 * waiting job of the same name (so a producer can make repeats harmless).
 * flags SPOOL_DEFER: not visible until spool_flush().
 */
int spool_enqueue(struct spool *s, const char *name, const char *body,
    size_t len, unsigned flags, struct err *e);

/* Make all deferred jobs durable and visible, then wake the consumer. */
int spool_flush(struct spool *s, struct err *e);

/* The same for a caller that has flushed the spool's file system itself
 * (fs_sync_fs) since the deferred jobs were written: only made visible. */
int spool_publish(struct spool *s, struct err *e);

/* Move everything in cur/ back to new/ (consumer start-up). Returns count. */
int spool_recover(struct spool *s, struct err *e);

/* Claim up to max oldest jobs: names into names[].  Returns count. */
int spool_claim(struct spool *s, char (*names)[SPOOL_NAME_MAX], int max,
    struct err *e);

/*
 * For a consumer that picks its jobs by name (relaysend): the names
 * waiting in new/, oldest first (*names malloc'd; free()); claim one by
 * name (1 claimed, 0 no longer waiting); give a claim back unchanged
 * (1, 0 gone); and replace a claimed job's body durably (written and
 * fsynced in tmp/, renamed over cur/NAME; not while a job of the same
 * name is being enqueued).
 */
int spool_list(struct spool *s, char (**names)[SPOOL_NAME_MAX], size_t *n,
    struct err *e);
int spool_claim_name(struct spool *s, const char *name, struct err *e);
int spool_unclaim(struct spool *s, const char *name, struct err *e);
int spool_rewrite(struct spool *s, const char *name, const char *body,
    size_t len, struct err *e);

/* Put a claimed job back into new/ with a new body (its next attempt),
 * durably, keeping the time it was first queued; then drop the claim.
 * The caller makes sure no job of that name waits in new/. */
int spool_requeue(struct spool *s, const char *name, const char *body,
    size_t len, struct err *e);

/* Read a claimed job's body (malloc'd, NUL-terminated). */
int spool_read(struct spool *s, const char *name, char **body,
    struct err *e);

/* The job is done: remove the claim. */
int spool_finish(struct spool *s, const char *name, struct err *e);

/* The job failed for good: move it to failed/ with reason beside it. */
int spool_fail(struct spool *s, const char *name, const char *reason,
    struct err *e);

/* Move failed jobs back to new/ (for a retry after a fix).  Returns count. */
int spool_retry_failed(struct spool *s, struct err *e);

/* Wait up to timeout_ms for a wake-up byte.  1 woken, 0 timeout. */
int spool_wait(struct spool *s, int timeout_ms, struct err *e);

/* Write one byte to the FIFO if a consumer listens; never blocks. */
void spool_wake(struct spool *s);

/* Number of jobs in sub ("new", "cur", "failed"; reasons not counted). */
int spool_count(struct spool *s, const char *sub, struct err *e);

/*
 * When a job was first queued: the time its generated name starts with
 * (spool_new_name), or its file's mtime, whichever is earlier (a named
 * job, or one rewritten by a retry, counts from its last write).
 */
time_t spool_queued_at(const char *name, time_t mtime);

/* Value of key in a job body into out.  0 found, -1 absent or too long. */
int spool_job_get(const char *body, const char *key, char *out,
    size_t outsz);

/*
 * census: what a spool holds, for the status (lib/ops), read without
 * opening the spool as a consumer: the jobs in new/, cur/ and failed/
 * (.reason files are not jobs) and how long the oldest waiting one
 * (new/ or cur/) has waited since it was first queued
 * (spool_queued_at).  Nothing is written, created or claimed.
 */

struct spool_census {
	long count[3];		/* new, cur, failed; -1: cannot be read */
	int error[3];		/* its errno when -1 */
	time_t oldest;		/* the oldest waiting job's; 0: none */
};

void spool_census(const char *dir, struct spool_census *c);

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

#define WORKERS_MAX	64

typedef int workers_fn(void *arg, int worker, int wake_fd);

int workers_run(int n, int once, const char *spool_dir,
    volatile sig_atomic_t *stop, workers_fn *fn, void *arg);

#endif
