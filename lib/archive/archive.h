/*
 * archive: what was received: the content store, pacs.db (the index and
 * each image's upload state), the scrub and retention.
 *
 * Layer 2.  The one public header of lib/archive/; what its modules share
 * beyond it is static in its .c files.
 * Modules, each with its contract below: store, pacs, scrub, purge,
 * upload_state.
 */
#ifndef GW_ARCHIVE_H
#define GW_ARCHIVE_H

#include <limits.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/base.h"
#include "dicom/dicom.h"
#include "queue/queue.h"

/*
 * store: the content-addressed object store.
 *
 * An object's name is the SHA-256 of its bytes: <root>/ab/cd/<64 hex>.dcm.
 * Objects are written once and never modified, so `sha256sum` verifies
 * any of them.  store_adopt() moves a file in durably: the file is
 * fsynced, linked (or, across file systems, copied) under its final name,
 * and the directory fsynced before it returns; the source is left for
 * the caller to remove once it has recorded the object elsewhere.  Two
 * copies with the same bytes are one object.
 */

#define STORE_HASH_LEN	64
#define STORE_RELPATH_MAX (2 + 1 + 2 + 1 + STORE_HASH_LEN + 4 + 1)

struct store {
	char root[PATH_MAX];
};

/* Use the store at root, creating root if create is set. */
int store_open(struct store *st, const char *root, int create,
    struct err *e);

/* SHA-256 of len bytes at buf as 64 lowercase hex digits + NUL. */
int store_hash_buf(const void *buf, size_t len,
    char hex[STORE_HASH_LEN + 1], struct err *e);

/* 1 when hex is 64 lowercase hex digits. */
int store_valid_hash(const char *hex);

/* "ab/cd/<hash>.dcm" (relative to the root). */
void store_relpath(const char *hash, char out[STORE_RELPATH_MAX]);

/* The absolute path of an object. */
int store_path(const struct store *st, const char *hash, char *out,
    size_t outsz, struct err *e);

/*
 * Make src (whose hash the caller computed) the object hash, durably.
 * src is not removed.  Returns 1 when the object is new, 0 when the
 * store already had it, -1 on error.
 */
int store_adopt(struct store *st, const char *src, const char *hash,
    struct err *e);

/* Re-hash an object and compare with its name: 0 good, -1 bad/missing. */
int store_verify(const struct store *st, const char *hash, struct err *e);

/*
 * pacs: what the gateway records about a stored object in pacs.db.
 *
 * pacs_extract() reads the attributes the index keeps from a parsed
 * object and checks that it can be indexed at all (it has SOP Instance,
 * Study Instance and Series Instance UIDs): storescp-hook uses it to
 * decide what to quarantine, dcmindex to fill pacs.db.
 *
 * pacs_index_object() upserts one object inside the caller's transaction:
 * patient, study, series, object, receipt and instance rows.  It is
 * idempotent: the same object and receipt twice change nothing.  When a
 * SOP Instance UID arrives again with other bytes, both objects are
 * recorded and the most recently received becomes current (see
 * sql/pacs.sql).  A struct pacs_index holds prepared statements on one
 * connection; the caller owns the connection.
 */

#define PACS_UI	256	/* a UID: 64 characters, but longer ones exist */
#define PACS_LO	256	/* any other value, UTF-8, multi-values joined */

struct pacs_attrs {
	char sop_instance_uid[PACS_UI], sop_class_uid[PACS_UI];
	char study_instance_uid[PACS_UI], series_instance_uid[PACS_UI];
	char transfer_syntax_uid[PACS_UI];
	char patient_id[PACS_LO], patient_name[PACS_LO];
	char birth_date[PACS_LO], sex[PACS_LO];
	char accession_number[PACS_LO], study_id[PACS_LO];
	char study_date[PACS_LO], study_time[PACS_LO];
	char study_description[PACS_LO];
	char modality[PACS_LO], series_number[PACS_LO];
	char series_description[PACS_LO], body_part_examined[PACS_LO];
	char instance_number[PACS_LO], image_type[PACS_LO];
	char presentation_intent[PACS_LO];
	char view_position[PACS_LO], laterality[PACS_LO];
	char organ_dose[PACS_LO], entrance_dose_in_mgy[PACS_LO];
	char kvp[PACS_LO], exposure_in_uas[PACS_LO];
	char anode_target_material[PACS_LO], filter_material[PACS_LO];
	char filter_thickness[PACS_LO], manufacturer[PACS_LO];
	char rows[PACS_LO], columns[PACS_LO], number_of_frames[PACS_LO];
	char bits_allocated[PACS_LO], photometric_interpretation[PACS_LO];
};

/* How and when an object arrived. */
struct pacs_receipt {
	const char *hash;		/* object name (SHA-256 hex) */
	uint64_t size;
	const char *receipt_key;	/* unique per reception */
	const char *calling_aet, *called_aet, *peer_address;
	const char *received_at;	/* ISO 8601 UTC */
};

int pacs_extract(const struct dcm *d, struct pacs_attrs *a, struct err *e);

struct pacs_index;

/* Migrate db to the current schema and prepare the statements. */
int pacs_index_open(struct pacs_index **out, sqlite3 *db, struct err *e);
void pacs_index_close(struct pacs_index *ix);

int pacs_index_object(struct pacs_index *ix, const struct pacs_attrs *a,
    const struct pacs_receipt *r, struct err *e);

/* ISO 8601 UTC with milliseconds for now, or for a time in seconds. */
void pacs_timestamp(char out[32]);
void pacs_timestamp_at(const struct timespec *t, char out[32]);

/*
 * scrub: re-hash the objects of the store against their names
 * (dcmindex --verify), at a bounded rate.
 *
 * Which objects: every objects row that a held instance row needs, or
 * that no instance points at (a kept older copy); files dcmpurge freed
 * are not expected.  Each run is a verify_runs row; each object that
 * fails is upserted into verify_problems (missing, mismatch or
 * unreadable) and one that verifies again leaves it.  Objects are read
 * in pages of short transactions, so a slow scrub never holds pacs.db.
 *
 * Never: changes, moves or deletes an object; logs or prints (problems
 * reach the caller through the report callback).
 */

struct scrub_stats {
	long objects;			/* verified, good or bad */
	long missing, mismatch, unreadable;
	long long bytes;		/* read */
	double seconds;
};

typedef void scrub_report_fn(void *arg, const char *hash,
    const char *problem, const char *detail);

/* max_mb_per_s 0: as fast as the disk goes.  0, or -1 with e set. */
int scrub_run(sqlite3 *db, const struct store *st, long max_mb_per_s,
    scrub_report_fn *report, void *arg, struct scrub_stats *out,
    struct err *e);

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

/*
 * upload_state: the images' way to the cloud, as an operator sees and steers
 * it (gatewayctl waiting, assign, release, resend; the uploads lines of
 * gatewayd status and the health report).  Over pacs.db only: the jobs
 * it queues go to the relay spool as dcmindex writes them (named by the
 * object, so a job already queued is replaced, not doubled).
 *
 * instances.upload_status (sql/pacs.sql versions 3 and 8): PENDING,
 * UPLOADING, WAITING (a transient failure: retried), UNMATCHED (no
 * worklist item yet), HELD (the cloud was off), FAILED, RELEASED,
 * COMPLETE.  A study's hand-made settings live in studies:
 * upload_accession_number (assign) and upload_released_at (release);
 * relaysend reads them for every job (lib/cloud/job).
 *
 * A KEY names studies by accession number or Study Instance UID.
 * Nothing here prints or logs; patient names leave only through
 * upload_state_waiting(), for the caller to show or not.
 */

struct upload_state_count {
	long long total;	/* instances */
	long long pending, uploading, waiting, unmatched, held, failed,
	    released, complete;
	long long unmatched_studies;
	char oldest_unmatched[40];	/* its received_at, or "" */
};

/* Instances per upload_status, and the studies waiting for an item. */
int upload_state_count(sqlite3 *db, struct upload_state_count *c, struct err *e);

/* Which of the instances upload_state_queue() queues. */
enum upload_state_which {
	UPLOAD_STATE_STUDY_ALL,	/* the KEY's studies, all (resend) */
	UPLOAD_STATE_STUDY_UNSENT,	/* the KEY's studies, not COMPLETE (assign) */
	UPLOAD_STATE_HELD		/* every HELD instance (resend --held) */
};

/*
 * Queue an image job for each chosen instance whose file is still in
 * the store (purged ones cannot go again), set their rows PENDING, and
 * (for a KEY) clear the studies' release; then make the jobs visible.
 * The count queued, or -1 with e set.
 */
int upload_state_queue(sqlite3 *db, struct spool *relay, enum upload_state_which w,
    const char *key, struct err *e);

/* The number of studies KEY names (0: none), or -1. */
int upload_state_studies(sqlite3 *db, const char *key, struct err *e);

/*
 * Name the worklist item (by its accession number) the KEY's studies go
 * under, then queue their unsent images (UPLOAD_STATE_STUDY_UNSENT).  The
 * caller checks that the item exists.  The count queued, or -1.
 */
int upload_state_assign(sqlite3 *db, struct spool *relay, const char *key,
    const char *accession, struct err *e);

/*
 * Give up the KEY's studies: released now; their images that are not
 * COMPLETE or UPLOADING become RELEASED (relaysend drops their jobs, and
 * any later ones, at its next look).  The count of images released, or
 * -1.
 */
int upload_state_release(sqlite3 *db, const char *key, struct err *e);

/* One study waiting for a worklist item (upload_state_waiting). */
struct upload_state_study {
	const char *accession_number, *study_instance_uid, *patient_name;
	const char *assigned;	/* upload_accession_number, or "" */
	const char *oldest;	/* received_at of its first waiting image */
	long long images;
};

/* Each study with UNMATCHED images, oldest first: fn(s, arg); a non-zero
 * return stops.  0, or -1 with e set. */
int upload_state_waiting(sqlite3 *db, int (*fn)(const struct upload_state_study *,
    void *), void *arg, struct err *e);

#endif
