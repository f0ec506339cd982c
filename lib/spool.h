/*
 * spool: the maildir-style job queue between stages (DESIGN.md).
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
 *
 * A job body is text, one key=value per line (spool_job_get reads one).
 * Deferred enqueues (SPOOL_DEFER) write tmp/ files without fsync and make
 * them visible together in spool_flush() with one syncfs(): that is how a
 * batch of N jobs costs one disk flush rather than N.
 *
 * Memory: struct spool is the caller's; it holds a small list of deferred
 * names, released by spool_close().
 */
#ifndef GW_SPOOL_H
#define GW_SPOOL_H

#include <limits.h>
#include <stddef.h>

#include "err.h"

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

/* Value of key in a job body into out.  0 found, -1 absent or too long. */
int spool_job_get(const char *body, const char *key, char *out,
    size_t outsz);

#endif
