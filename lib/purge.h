/*
 * purge: retention of the content store (dcmpurge(1)).
 *
 * An instance's store file may go only when every condition holds: the
 * cloud confirmed it (upload_status COMPLETE), it is older than the
 * retention period or free space is below the low watermark (then the
 * oldest confirmed go first, until free space is back above the
 * watermark plus a margin), no spool job names its object, its SOP
 * Instance UID or (for a requested job, requested=1) its study, and no
 * pending storage commitment names it.  Anything PENDING, UPLOADING,
 * WAITING or FAILED stays.  An object is unlinked only when no held row
 * (purged_at NULL) still points at it; stale copies (objects no instance
 * points at) are never touched.
 *
 * Order, for crash safety: under an exclusive flock(2) on the store lock
 * (qrscp holds it shared during each C-MOVE/C-GET), one transaction sets
 * purged_at for a batch and records the objects to unlink in
 * purge_pending; after the commit the files are unlinked.  At the end
 * of a round the file system is synced once and purge_pending emptied.
 * Each round (and purge_finish()) first completes what purge_pending
 * lists.  So no held row ever points at a missing file, and every store
 * file keeps its objects row.
 *
 * Never: deletes rows, logs or prints (the caller gets each instance
 * through the report callback and the totals in struct purge_stats).
 * Memory: all the module's, released before each call returns.
 */
#ifndef GW_PURGE_H
#define GW_PURGE_H

#include <time.h>

#include <sqlite3.h>

#include "err.h"
#include "store.h"

#define PURGE_BATCH_DEFAULT	1000
#define PURGE_MARGIN_PERCENT	5	/* above the watermark when it ends */
#define PURGE_PAUSE_PERCENT	50	/* leaves the disk to ingest */

struct purge_policy {
	long retention_days;		/* past this age a confirmed file goes */
	int low_watermark_pct;		/* free below this: the watermark path */
	int margin_pct;			/* ...until free >= watermark + margin */
	int batch;			/* instances per transaction */
	int lock_wait_ms;		/* for the store lock, then skip */
	int pause_pct;			/* rest this % of each batch's time */
	int dry_run;			/* decide and report, change nothing */
	time_t now;
};

/* One instance whose file goes (or would go, in a dry run). */
struct purge_item {
	const char *sop_instance_uid;
	const char *object_hash;
	const char *received_at;
	long long size;
	const char *reason;		/* "age" or "watermark" */
	int unlinks;			/* 0: another held row keeps the file */
};

struct purge_stats {
	long instances;			/* rows marked purged */
	long objects;			/* files unlinked */
	long finished;			/* of those, left by an earlier run */
	long long bytes;		/* bytes of the files unlinked */
	int watermark;			/* the watermark path ran */
	int lock_busy;			/* the store was in use: round skipped */
	double free_pct_before, free_pct_after;
};

typedef void purge_report_fn(void *arg, const struct purge_item *it);

struct purge_ctx {
	sqlite3 *db;
	const struct store *store;
	const char *spool_dir;		/* every stage under it is looked at */
	const char *lock_path;		/* $GATEWAY_DATA_DIR/run/store.lock */
	purge_report_fn *report;	/* may be NULL */
	void *arg;
};

/* Unlink what purge_pending still lists (a crash's half-done work). */
int purge_finish(struct purge_ctx *c, struct purge_stats *st, struct err *e);

/* One round: finish, then purge by the policy.  0, or -1 with e set. */
int purge_run(struct purge_ctx *c, const struct purge_policy *p,
    struct purge_stats *st, struct err *e);

/* Free space of the file system holding path, in percent and bytes. */
int purge_free_space(const char *path, double *pct, long long *free_bytes,
    long long *total_bytes, struct err *e);

#endif
