/*
 * archive: what was received: the content store, pacs.db (the index and
 * each image's upload state), the scrub and retention.
 *
 * Layer 2.  The one public header of lib/archive/; what its modules share
 * beyond it is static in its .c files.
 * Modules, each with its contract below: store, pacs, quarantine,
 * incoming, ingest, scrub, purge, upload_state, rebuild, archive_status,
 * pacs_day.
 */
#ifndef GW_ARCHIVE_H
#define GW_ARCHIVE_H

#include <limits.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
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

/* The same, of a whole file read from fd (from its start) through a
 * 1 MiB buffer: memory stays bounded whatever the file's size. */
int store_hash_fd(int fd, char hex[STORE_HASH_LEN + 1], struct err *e);

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
 * store already had it, -1 on error.  With STORE_BATCH the caller has
 * made src's bytes durable already (one fs_sync_fs for a batch of files)
 * and makes the new name durable with another after it: neither fsync
 * is done here.
 */
#define STORE_BATCH	0x01
int store_adopt(struct store *st, const char *src, const char *hash,
    unsigned flags, struct err *e);

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
 * quarantine: files that passed the door (storescp-front) but are not
 * usable, kept byte for byte with why, until an operator releases or
 * deletes them (gatewayctl quarantine).
 *
 * $GATEWAY_QUARANTINE_DIR/NAME is the file as received and NAME.reason
 * its record, key=value lines (struct quarantine_record): the reason; the
 * sender (calling and called AE title, peer address); the SOP Instance
 * UID, Study Instance UID and accession number when they could be read;
 * the file's name in incoming/, size, when it was received (its mtime)
 * and quarantined.  NAME is the SOP Instance UID + ".dcm" (characters
 * other than letters, digits, '.' and '-' as '_'), with "~2", "~3"...
 * when taken, or "unknown-<time>.dcm" when none could be read.  Entries
 * of older versions (<time>-<incoming name>) are listed and handled the
 * same way.
 *
 * quarantine_put() renames the file in under a name nobody has
 * (RENAME_NOREPLACE; across file systems a durable copy first), then
 * writes the record atomically and syncs the directory: a crash between
 * leaves the file listed as "no reason recorded", never lost.  Hidden
 * names (a leading '.') are work files, never entries.
 * Never: touches pacs.db, prints or logs.
 */

#define QUARANTINE_NAME_MAX	160

struct quarantine {
	char dir[PATH_MAX];
};

struct quarantine_record {
	char name[QUARANTINE_NAME_MAX];	/* the entry: its file name */
	char reason[1024];
	char file[256];			/* its name in incoming/ */
	char sop_instance_uid[PACS_UI], study_instance_uid[PACS_UI];
	char accession_number[PACS_LO];
	char calling_aet[64], called_aet[64], peer[64];
	long long size;
	char received_at[32], quarantined_at[32];
	char released_at[32];		/* a release that failed again */
};

int quarantine_open(struct quarantine *q, const char *dir, struct err *e);

/* Move src in, with record r (the caller fills the reason, the sender and
 * what it read; r->name, size, quarantined_at and, when empty,
 * received_at are set here).  0; -1 with src left where it was. */
int quarantine_put(struct quarantine *q, const char *src,
    struct quarantine_record *r, struct err *e);

/* Rewrite an entry's record (r->name names it). */
int quarantine_update(struct quarantine *q, const struct quarantine_record *r,
    struct err *e);

/* Entry name's record (reason "no reason recorded ..." when it has
 * none).  -1 with e->code ENOENT when there is no such entry, EINVAL
 * when name is not an entry's name (a path, a .reason file). */
int quarantine_read(const struct quarantine *q, const char *name,
    struct quarantine_record *r, struct err *e);

/* The path of entry name's file. */
int quarantine_path(const struct quarantine *q, const char *name, char *out,
    size_t outsz, struct err *e);

/* Remove entry name: its file, then its record. */
int quarantine_remove(struct quarantine *q, const char *name, struct err *e);

/* Each entry, oldest first: fn(r, arg) (r valid during the call); a
 * non-zero return stops.  The count listed, or -1 with e set. */
typedef int quarantine_fn(const struct quarantine_record *r, void *arg);
int quarantine_list(const struct quarantine *q, quarantine_fn *fn, void *arg,
    struct err *e);

/*
 * incoming: the layout of incoming/ that storescp-front and storescp-hook
 * share.  Each association the front hands to storescp gets a directory
 * of its own, incoming/assoc-<UTC time>-<pid>-<n>, that storescp writes
 * into (-od); in it, .sender says who sends (calling_aet, called_aet,
 * peer: key=value lines).  It appears whole (made as .assoc-..., then
 * renamed).  The front holds an flock on .sender, open for writing, and
 * gives the descriptor to storescp, so:
 *  - the association is over when the lock can be taken
 *    (incoming_claim), and inotify reports IN_CLOSE_WRITE on .sender as
 *    the last of the two exits, however it ends (SIGKILL included);
 *  - while it lasts, storescp writes one file at a time, each under a new
 *    name (+uf), and deletes one it failed to receive before it reads the
 *    next request: when a new file appears, every earlier one is whole.
 * Files put straight into incoming/ (by hand, or by storescp-front
 * --hook) are anyone's: the sweep takes them.
 */

struct incoming_sender {
	char calling_aet[64], called_aet[64], peer[80];
};

/* 1 for the name of an association directory (not its path). */
int incoming_is_assoc(const char *name);

/* 1 while incoming_dir has an association directory: images arriving,
 * or arrived and not taken yet (dcmthumb waits for the end). */
int incoming_busy(const char *incoming_dir);

/* A new association directory in incoming_dir for s, its path in dir:
 * returns the descriptor of its .sender, locked (-1 with e set). */
int incoming_begin(const char *incoming_dir, const struct incoming_sender *s,
    char *dir, size_t dirsz, struct err *e);

/* Who sent what dir holds (its .sender). */
int incoming_sender(const char *dir, struct incoming_sender *s,
    struct err *e);

/* 1 when dir's association is over, with its lock now held on *fd (-1
 * when .sender is gone already); 0 while it lasts; -1 with e set. */
int incoming_claim(const char *dir, int *fd, struct err *e);

/* dir removed (1) if only .sender is left in it; 0 if files are. */
int incoming_end(const char *dir, struct err *e);

/*
 * ingest: received files kept: into the store and the index spool, or
 * into the quarantine with why.  storescp-hook runs it on what storescp
 * wrote (its --watch in batches, one file by hand, and its sweep);
 * gatewayctl quarantine release runs it on an entry again, through the
 * same checks.
 *
 * ingest_files() takes a batch: each file is parsed whole (lib/dicom);
 * checked that it can be indexed (pacs_extract) and that its SOP
 * Instance, SOP Class, Study and Series Instance UIDs are valid (at most
 * 64 characters, only digits and dots, no empty component); hashed
 * streamed, so memory stays bounded whatever its size.  Then one syncfs
 * per file system makes the batch's bytes durable; each is linked into
 * the store (store_adopt, STORE_BATCH) and its index job written (object,
 * size, SOP Instance UID, receipt key <file name>:<hash>, the sender,
 * received_at its mtime); one more flush makes the names and jobs
 * durable and the jobs visible (spool_flush); and only then are the
 * sources removed.  Two flushes for the batch, not three fsyncs a file.
 * A file that fails a check, or whose sender the caller refused
 * (a->refused, see lib/dicomnet senders), is quarantined at once with
 * the reason and what could be read of it.  A source that is a
 * quarantine entry already (a->quarantine_name) stays where it is when
 * it fails again (its record gets the new reason) and leaves the
 * quarantine once stored.  A fault of the machine (I/O, full disk)
 * leaves the source where it was (r->err says what): the sweep, or a
 * release, tries again; a job already written for it is harmless (the
 * receipt key).
 * Never: touches pacs.db, prints or logs (the caller logs the results).
 */

struct ingest {
	struct store store;
	struct spool index;
	struct quarantine quarantine;
	int spool_apart;		/* the index spool on another fs */
};

struct ingest_arrival {
	const char *path;
	const char *calling_aet, *called_aet, *peer;	/* "" when unknown */
	const char *refused;		/* the sender may not store: why */
	const char *quarantine_name;	/* the source is this entry */
};

enum { INGEST_FAILED = 0, INGEST_STORED, INGEST_QUARANTINED,
    INGEST_PENDING };

struct ingest_result {
	int outcome;			/* INGEST_* */
	char hash[STORE_HASH_LEN + 1];	/* stored: the object */
	int new_object;			/* stored: the store had no copy */
	long long size;
	struct pacs_attrs attrs;	/* stored: what was read */
	struct quarantine_record q;	/* quarantined: the record */
	struct err err;			/* failed: why (the source stays) */
	struct stat st;			/* the source, as read */
};

/* Open the store, the index spool and the quarantine of c. */
int ingest_open(struct ingest *g, const struct config *c, struct err *e);
void ingest_close(struct ingest *g);

/* The n files of a as one batch, each one's outcome in r[i]; returns
 * how many were stored or quarantined. */
int ingest_files(struct ingest *g, const struct ingest_arrival *a, size_t n,
    struct ingest_result *r);

/* ingest_files in two halves, for a caller that reads the next batch
 * while this one is flushed (storescp-hook --watch): ingest_read parses,
 * checks and hashes (r[i].outcome INGEST_PENDING for each to be stored;
 * quarantines at once); ingest_commit stores the pending ones (the
 * flushes).  The two may run at once in two threads on one struct
 * ingest (read uses only the quarantine, commit the store and the index
 * spool) when no source is a quarantine entry. */
void ingest_read(struct ingest *g, const struct ingest_arrival *a, size_t n,
    struct ingest_result *r);
void ingest_commit(struct ingest *g, const struct ingest_arrival *a,
    size_t n, struct ingest_result *r);

/* One file: 0 with r->outcome saying where it went; -1 with e set (the
 * source left in place). */
int ingest_file(struct ingest *g, const struct ingest_arrival *a,
    struct ingest_result *r, struct err *e);

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
 * cloud confirmed it (upload_status COMPLETE) and it is older than the
 * retention period or free space is below the low watermark (then the
 * oldest confirmed go first, until free space is back above the
 * watermark plus a margin), or it is LOCAL (not for the cloud, which
 * will never confirm it) and older than the retention period; no spool
 * job names its object, its SOP Instance UID or (for a requested job,
 * requested=1) its study; and no pending storage commitment names it.
 * Every other upload state stays (upload_state.c's table).  An object is unlinked only when no held row
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
 * upload_state: each image's way to the cloud in pacs.db.  The only
 * writer of instances.upload_status, upload_error, upload_attempt_count,
 * upload_next_attempt_at, uploaded_at and event_held_at, and of the
 * studies' hand-made
 * settings (upload_accession_number: gatewayctl assign;
 * upload_released_at: gatewayctl release), with their readers beside
 * them: the counts of gatewayd status and the health report, gatewayctl's
 * waiting lists, and what relaysend checks before a PUT.
 *
 * The states, what moves an image into each, what may come next, whether
 * dcmpurge frees its file and whether it is a problem: the table at the
 * top of upload_state.c.  In short: PENDING, UPLOADING, WAITING (a
 * transient failure: retried), UNMATCHED (no worklist item yet), HELD
 * (the cloud was off), LOCAL (not for the cloud: kept for Query/Retrieve),
 * FAILED (given up: reported to the cloud), REFUSED (the Manage API
 * answered 403), RELEASED (given up by hand), COMPLETE.
 *
 * Which images are for the cloud (RELAY_UPLOAD_CLASSES): "mammo" (the
 * default, as the production gateway) takes MG For Presentation
 * (1.2.840.10008.5.1.4.1.1.1.2) and For Processing (…1.2.1) only; "all"
 * takes every class.  The others are LOCAL when indexed: no upload job,
 * no study.image_received event.
 *
 * A KEY names studies by accession number or Study Instance UID.
 * The jobs it queues go to the relay spool as dcmindex writes them (named
 * by the object, so a job already queued is replaced, not doubled).
 * Nothing here prints or logs; patient names leave only through
 * upload_state_waiting(), for the caller to show or not.
 */

enum upload_state {
	UPLOAD_PENDING, UPLOAD_UPLOADING, UPLOAD_WAITING, UPLOAD_UNMATCHED,
	UPLOAD_HELD, UPLOAD_LOCAL, UPLOAD_FAILED, UPLOAD_REFUSED,
	UPLOAD_RELEASED, UPLOAD_COMPLETE
};
#define UPLOAD_NSTATES	(UPLOAD_COMPLETE + 1)

/* "PENDING", … as stored in upload_status. */
const char *upload_state_name(enum upload_state s);

/* RELAY_UPLOAD_CLASSES: which images go to the cloud. */
enum upload_classes { UPLOAD_CLASSES_MAMMO, UPLOAD_CLASSES_ALL };

/* RELAY_UPLOAD_CLASSES (mammo, all; unset or empty: mammo).  -1 with e
 * naming the variable on any other value. */
int upload_state_classes(enum upload_classes *out, struct err *e);
const char *upload_state_classes_name(enum upload_classes c);

/* Is an image of this SOP class for the cloud under c? */
int upload_state_for_cloud(enum upload_classes c, const char *sop_class_uid);

/* ------------------------------------------------------------ writers */

/*
 * dcmindex, inside its transaction, for an instance just indexed with
 * object hash as its current one: LOCAL when its class is not for the
 * cloud, else HELD when the cloud is off (cloud 0), else PENDING (a HELD
 * or LOCAL row is queued again; the caller writes its job).  A row
 * already COMPLETE keeps that state.  The state decided, or -1.
 */
int upload_state_indexed(sqlite3 *db, const char *sop, const char *hash,
    const char *sop_class_uid, enum upload_classes c, int cloud,
    struct err *e);

/* dcmindex --reindex: what the cloud has is not known any more: every
 * instance whose file is held HELD, or LOCAL when its class is not for
 * the cloud (a row purged by retention keeps its state). */
int upload_state_reindexed(sqlite3 *db, enum upload_classes c,
    struct err *e);

/*
 * relaysend: the instance sop's upload moves to state s, with its attempt
 * count, error (NULL: none) and next attempt time (ms since the epoch, 0:
 * none); uploaded_at is set when s is COMPLETE.  One transaction.
 * Returns 1 when no other image of its study was in state s before (the
 * study's first: report it once), 0 when one was, -1 with e set.  An
 * unknown sop changes nothing and returns 0.
 */
int upload_state_set(sqlite3 *db, const char *sop, enum upload_state s,
    int attempts, const char *error, long long next_ms, struct err *e);

/*
 * relaysend: an image queued for the cloud whose class is not (a job
 * written before RELAY_UPLOAD_CLASSES said so): its row becomes LOCAL and
 * 1 is returned (drop the job); 0 when it is for the cloud (or unknown),
 * -1 on error.
 */
int upload_state_keep_local(sqlite3 *db, const char *sop,
    enum upload_classes c, struct err *e);

/* relaysend --retry-failed: every FAILED row PENDING again.  The count,
 * or -1. */
int upload_state_retry_failed(sqlite3 *db, struct err *e);

/* Which of the instances upload_state_queue() queues. */
enum upload_state_which {
	UPLOAD_STATE_STUDY_ALL,	/* the KEY's studies, all (resend) */
	UPLOAD_STATE_STUDY_UNSENT,	/* the KEY's studies, not COMPLETE (assign) */
	UPLOAD_STATE_HELD		/* every HELD instance (resend --held) */
};

/*
 * Queue an image job for each chosen instance whose file is still in
 * the store (purged ones cannot go again) and that is for the cloud (a
 * LOCAL one is not: images.request may still ask for it), set their rows
 * PENDING, and (for a KEY) clear the studies' release; then make the
 * jobs visible.  The count queued, or -1 with e set.
 */
int upload_state_queue(sqlite3 *db, struct spool *relay, enum upload_state_which w,
    const char *key, struct err *e);

/*
 * Name the worklist item (by its accession number) the KEY's studies go
 * under, then queue their unsent images (UPLOAD_STATE_STUDY_UNSENT).  The
 * caller checks that the item exists.  The count queued, or -1.
 */
int upload_state_assign(sqlite3 *db, struct spool *relay, const char *key,
    const char *accession, struct err *e);

/*
 * Give up the KEY's studies: released now; their images that are not
 * COMPLETE, UPLOADING or LOCAL become RELEASED (relaysend drops their
 * jobs, and any later ones, at its next look).  The count of images
 * released, or -1.
 */
int upload_state_release(sqlite3 *db, const char *key, struct err *e);

/*
 * The study.image_received event of an image held back because the
 * relay's events were off when its preview was made (dcmthumb, through
 * lib/cloud/event): marked in instances.event_held_at (sop's current
 * object hash only).  upload_state_events_held() calls fn for each held
 * back (not LOCAL) with what its job needs, oldest first (non-zero from
 * fn stops); upload_state_events_sent() clears the mark of the rows
 * whose jobs are queued.  0 (or the rows marked or cleared), -1 with e.
 */
struct upload_state_event {
	long long id;
	const char *object, *sop_instance_uid, *study_instance_uid;
	const char *accession_number;
	const char *thumbnail_status;	/* GENERATED, FAILED */
	const char *thumbnail_path;	/* relative to the thumbs dir, or "" */
	int width, height;
};

int upload_state_event_held(sqlite3 *db, const char *sop, const char *hash,
    struct err *e);
int upload_state_events_held(sqlite3 *db,
    int (*fn)(const struct upload_state_event *, void *), void *arg,
    struct err *e);
int upload_state_events_sent(sqlite3 *db, const long long *ids, size_t n,
    struct err *e);

/* ------------------------------------------------------------ readers */

struct upload_state_count {
	long long total;	/* instances */
	long long pending, uploading, waiting, unmatched, held, local, failed,
	    refused, released, complete;
	long long unmatched_studies, refused_studies;
	long long events_held;	/* study.image_received held back (not LOCAL) */
	char oldest_unmatched[40];	/* its received_at, or "" */
	char last_upload[40];		/* the newest uploaded_at, or "" */
	char last_error[512];		/* of the newest FAILED or WAITING */
};

/* Instances per upload_status, the studies waiting for an item and those
 * refused: every instance (key NULL) or the KEY's studies'; with key
 * NULL also the image events held back (event_held_at). */
int upload_state_count(sqlite3 *db, const char *key,
    struct upload_state_count *c, struct err *e);

/* The instance's state: 0, 1 when pacs.db has no such instance, -1. */
int upload_state_get(sqlite3 *db, const char *sop, enum upload_state *s,
    struct err *e);

/* The number of studies KEY names (0: none), or -1. */
int upload_state_studies(sqlite3 *db, const char *key, struct err *e);

/*
 * The hand-made settings of the instance's study: the accession number
 * assigned (into acc, "" for none) and whether it was released.  0, or
 * -1 with e set.
 */
int upload_state_by_hand(sqlite3 *db, const char *sop, char *acc,
    size_t accsz, int *released, struct err *e);

/* Is another image of the instance's study in state s?  1, 0, or -1. */
int upload_state_study_has(sqlite3 *db, const char *sop,
    enum upload_state s, struct err *e);

/*
 * Is another image of the instance's study still on its way: UPLOADING,
 * WAITING, or PENDING (counted only when pending means a job is queued:
 * pending_queued 0 under RELAY_UPLOAD_POLICY=on_request)?  1, 0, or -1.
 */
int upload_state_study_busy(sqlite3 *db, const char *sop,
    int pending_queued, struct err *e);

/*
 * What the Manage API reads of an image, checked before it is sent
 * (../shared/relay/PRODUCTION.md §4): ImageLaterality and ViewPosition
 * present (pacs.db's laterality and view_position), and the same as the
 * series' first image: the first the cloud has (COMPLETE, by
 * uploaded_at), else the first received that has both.  0 when it may
 * go; 1 when not, with why saying what (for upload_error); -1 with e.
 */
int upload_state_check(sqlite3 *db, const char *sop, char *why,
    size_t whysz, struct err *e);

/* One study with images in the state listed (upload_state_waiting). */
struct upload_state_study {
	const char *accession_number, *study_instance_uid, *patient_name;
	const char *assigned;	/* upload_accession_number, or "" */
	const char *oldest;	/* received_at of its first such image */
	long long images;
	const char *error;	/* upload_error of its newest such image (one
				 * with the API's answer first) */
};

/* Each study with images in state s (UNMATCHED: waiting for a worklist
 * item; REFUSED: refused by the Manage API), oldest first: fn(s, arg); a
 * non-zero return stops.  0, or -1 with e set. */
int upload_state_waiting(sqlite3 *db, enum upload_state s,
    int (*fn)(const struct upload_state_study *, void *), void *arg,
    struct err *e);

/*
 * rebuild: what a pacs.db rebuilt from the store alone (dcmindex
 * --reindex) takes from a backup of the old one (dcmindex --backup):
 * the rows the store cannot give back.
 *
 * Backups are GATEWAY_BACKUP_DIR/pacs-<UTC time>.db, so their names sort
 * by age; rebuild_backups() lists them oldest first.
 *
 * rebuild_from_backup() works on a copy of the backup (made at scratch,
 * brought to this program's schema, removed after; the backup itself is
 * never written) attached to db, in one transaction of its own (the
 * caller's is committed), and adds:
 *   - every instance the backup records as purged by retention
 *     (purged_at set) that db does not have (the store kept no file of
 *     it), with its patient, study, series, object and receipt rows as
 *     the backup has them, matched to db's rows by their natural keys
 *     (patient ID and name, Study, Series and SOP Instance UIDs, object
 *     hash, receipt key); its upload state and purged_at are kept;
 *   - the Storage Commitment tables (commitment_requests,
 *     commitment_items) as they are, claims dropped: a request pending
 *     in the backup is answered again by qrscp.
 * An instance the backup holds (purged_at NULL) whose file is not in the
 * store is not added (purged since the backup, or lost): counted.
 * Nothing else (receipts of held instances, upload states, gatewayctl
 * assign and release, the scrub's findings) is taken: the store's rows
 * are as rebuilt.
 *
 * Never: logs, prints, changes the backup.
 */

#define REBUILD_BACKUP_PREFIX	"pacs-"

struct rebuild_stats {
	long purged;			/* purged instances' rows added */
	long missing;			/* held in the backup, not in the store */
	long commitments;		/* commitment requests added */
};

/* The backups in dir, oldest first: their names in *names (malloc'd,
 * free each and the array), their number returned; 0 when dir does not
 * exist; -1 with e set. */
int rebuild_backups(const char *dir, char ***names, struct err *e);

int rebuild_from_backup(sqlite3 *db, const char *backup,
    const char *scratch, struct rebuild_stats *st, struct err *e);

/*
 * archive_status: the archive as gatewayctl status and the health report
 * see it, and the disk floor's state: run/storage.state, written by
 * storescp-front and read here (lib/base runstate; refusing=0|1, since=,
 * path=, free_bytes=, min_free_bytes=).
 *
 * The disk floor: floor_check() is the rule storescp-front applies to
 * every new association: free space on the file system of the incoming
 * directory, then of the store, against min_free bytes
 * (PACS_DISK_MIN_FREE, floor_min_free(); 0: no floor).  floor_watch() is
 * what its tick does: the rule with a margin (it refuses below the
 * floor, and says it accepts again only once free space is back above
 * the floor plus 10 %): 1 when the state in fs changed (or was not yet
 * known), for the front to write (floor_state_write) and log; else 0.
 *
 * archive_status_read(): files in the quarantine (not their .reason
 * records) and in incoming/ (those older than ARCHIVE_INCOMING_STALE_
 * SECONDS: files the hook never took), the store's file system (and the
 * data directory's when it is another), whether the store, incoming/
 * and the data directory are writable by user (the gateway's user, not
 * necessarily the caller: fs_dir_writable_by), the disk floor now and
 * since when, and the instances per upload state (pacs.db opened
 * read-only, never created).  Counts are -1 where this user may not
 * look: what cannot be read is a finding, never a failure.  Reads only.
 */

#define ARCHIVE_INCOMING_STALE_SECONDS	300

struct floor_check {
	int below;		/* new associations are refused */
	char path[PATH_MAX];	/* the file system that is short */
	long long free_bytes;
};

struct floor_state {
	int present;		/* run/storage.state exists */
	int refusing;
	time_t since;
	char path[PATH_MAX];
	long long free_bytes, min_free;
};

/* PACS_DISK_MIN_FREE in bytes (the settings table); -1 with e on a bad
 * value. */
int floor_min_free(long long *bytes, struct err *e);
int floor_check(const struct config *c, long long min_free,
    struct floor_check *f);
int floor_watch(const struct config *c, long long min_free,
    struct floor_state *fs);
int floor_state_write(const char *data_dir, const struct floor_state *fs,
    struct err *e);
/* 0, 1 when there is none, -1 when it cannot be read. */
int floor_state_read(const char *data_dir, struct floor_state *fs,
    struct err *e);

struct disk_status {
	char path[PATH_MAX];
	int error;		/* statvfs's errno; 0: the figures hold */
	long long free_bytes, total_bytes;
	double free_percent;
	dev_t dev;
};

struct place_status {
	const char *setting;	/* PACS_STORAGE_PATH, ... */
	const char *path;	/* into the config */
	int writable;		/* 1, 0 (why says why), -1 cannot tell */
	char why[600];
};

#define ARCHIVE_PLACES	3	/* the store, incoming/, the data directory */

struct archive_status {
	long quarantined;	/* -1: cannot be read */
	long incoming;		/* -1: cannot be read */
	long incoming_stale;
	time_t incoming_oldest;	/* 0: none */
	struct disk_status store_disk, data_disk;
	int data_disk_apart;	/* the data directory is on another one */
	struct place_status places[ARCHIVE_PLACES];
	long long min_free;	/* the floor; -1: PACS_DISK_MIN_FREE is bad */
	struct floor_check floor_now;
	struct floor_state floor;
	int uploads_known;	/* pacs.db was read */
	struct upload_state_count uploads;
};

void archive_status_read(const struct config *c, uid_t user, time_t now,
    struct archive_status *st);

/*
 * pacs_day: what arrived on a day, study by study and image by image,
 * with where each image went (gatewayctl report): its object in the
 * store (or when retention freed it), its preview, its upload to the
 * cloud, and the newest Storage Commitment that reported it committed.
 *
 * The day is a local date (YYYY-MM-DD, the process's zone, as SQLite's
 * 'localtime'); an image belongs to it by its received_at.  Studies come
 * in the order of their first image that day, images by series and
 * instance number.  Times are local, "YYYY-MM-DD HH:MM:SS".  Reads
 * pacs.db only; strings are "" when NULL and
 * valid during the call only.  patient_name is patient data: the caller
 * decides whether to show it.
 */
struct pacs_day_image {
	long long study_id;		/* changes with each new study */
	const char *study_instance_uid, *accession_number, *patient_name;
	const char *study_description;
	const char *sop_instance_uid, *sop_class_uid;
	const char *series_number, *instance_number;
	const char *laterality, *view_position;
	const char *received_at, *source_aet;
	const char *object_hash, *storage_path;	/* relative to the store */
	long long size;
	const char *purged_at;		/* "" while the file is held */
	const char *thumbnail_status, *thumbnail_path;	/* relative to the
					 * thumbs dir, "" when none */
	const char *upload_status, *uploaded_at, *upload_error;
	const char *upload_next_attempt_at;
	int upload_attempts;
	int rows, columns, frames;
	const char *committed_to, *committed_at;	/* "" when none */
};

typedef int pacs_day_fn(const struct pacs_day_image *im, void *arg);

/* fn for each image of the day, in order; a non-zero return stops.  The
 * number of images, or -1 with e set. */
int pacs_day_each(sqlite3 *db, const char *date, pacs_day_fn *fn, void *arg,
    struct err *e);

/* Every reception pacs.db records, ever (receipts: an object sent again
 * counts again), into *n: 0, or -1 with e set. */
int pacs_receipt_count(sqlite3 *db, long long *n, struct err *e);

#endif
