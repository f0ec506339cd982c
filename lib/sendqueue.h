/*
 * sendqueue: which relay job relaysend sends next.
 *
 * A pass lists new/, reads the jobs it has not seen (and those whose
 * time has come), and sends every job that is this worker's (with
 * --jobs N a hash of the name picks one worker), of a kind it sends, and
 * due, in this order:
 *
 *   1. priority=high jobs (images the cloud asked for first), then all
 *      others;
 *   2. within a priority, round robin over studies (study_instance_uid):
 *      the first job of every study, then the second of every study, and
 *      so on, so one 200-image study cannot starve a 4-image one; a job
 *      without a study is a round of its own;
 *   3. within a study, the spool's order of names.
 *
 * Jobs read and left (not due yet, or of a kind switched off) are
 * remembered by name with their due time, priority and study, so waiting
 * jobs cost no I/O while new ones arrive.  A job replaced under the same
 * name meanwhile is read again when the old one would have been due (its
 * body is always read again just before it is claimed).
 *
 * When ops->woken says a producer wrote meanwhile, a pass ends after the
 * job in hand and returns 1: the next pass sees the new jobs (a request
 * for high-priority images does not wait behind a long pass).
 *
 * Memory: struct sendqueue is the caller's; sendqueue_free() releases
 * what it remembers.
 */
#ifndef GW_SENDQUEUE_H
#define GW_SENDQUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "outbox.h"

struct sendqueue_ops {
	/* Is this a kind the caller sends? */
	int (*ours)(void *arg, const struct outbox_job *j);
	/* Send a claimed job and settle it (lib/outbox). */
	void (*deliver)(void *arg, struct outbox_job *j);
	/* Did a producer write since the pass began?  NULL: never asked. */
	int (*woken)(void *arg);
	void *arg;
};

struct sendqueue_entry;

struct sendqueue {
	int worker, workers;		/* --jobs: this worker's share */
	long long next_due_ms;		/* earliest job not yet due, 0: none */
	struct sendqueue_entry *known;	/* by name */
	size_t nknown;
};

/* With --jobs N, is this job name this worker's? */
int sendqueue_mine(const struct sendqueue *q, const char *name);

/*
 * One pass: -1 when new/ cannot be read (logged), 0 when every due job
 * was sent, 1 when the pass ended early (ops->woken) with jobs due now.
 * ob->remaining counts what is still queued of ours afterwards.
 */
int sendqueue_pass(struct sendqueue *q, struct outbox *ob,
    const struct sendqueue_ops *ops);

void sendqueue_free(struct sendqueue *q);

#endif
