/*
 * dcmindex: index stored objects into pacs.db.
 *
 *   dcmindex [--once] [--batch N]   drain the index spool (follow by default)
 *   dcmindex --init                 create or migrate pacs.db, then exit
 *   dcmindex --reindex              rebuild pacs.db from the store (and the
 *                                   newest backup: purged rows, commitments)
 *   dcmindex --verify               re-hash every object (the scrub)
 *   dcmindex --backup               online backup of pacs.db, keep N
 *
 * Jobs are claimed in batches; each batch is one transaction (a savepoint
 * per job, so one bad object fails alone).  After the commit each object
 * is fanned out to the thumb and relay spools (jobs named by the object,
 * so a repeat replaces rather than duplicates), and only then are the
 * claims finished: a crash repeats a batch, never loses one.  With
 * RELAY_UPLOAD_POLICY=on_request no image upload job is written: the
 * cloud asks for the images it wants (images.request, lib/cloud/request),
 * while the previews and their events still flow through dcmthumb.
 * What becomes of each instance's upload is lib/archive/upload_state's:
 * an image whose class is not for the cloud (RELAY_UPLOAD_CLASSES, by
 * default MG images only) is LOCAL, with no job (kept for Query/Retrieve,
 * freed by age); without CLOUD_API_ENDPOINT (the cloud off,
 * config_cloud_images) none is written either: the instance is HELD in
 * pacs.db, kept until `gatewayctl resend --held` queues it.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "dicom/dicom.h"
#include "archive/archive.h"
#include "cloud/cloud.h"
#include "queue/queue.h"
#include "worklist/worklist.h"

#define BATCH_DEFAULT	256
#define BATCH_MAX	4096
#define WAIT_MS		5000	/* rescan new/ at least this often */

static volatile sig_atomic_t stopping;

struct indexer {
	struct config cfg;
	struct store store;
	struct spool index, thumb, relay;
	sqlite3 *db;
	struct pacs_index *ix;
	struct worklist *worklist;	/* NULL: no worklist to update */
	enum request_policy policy;	/* RELAY_UPLOAD_POLICY */
	enum upload_classes classes;	/* RELAY_UPLOAD_CLASSES */
	int cloud;			/* CLOUD_API_ENDPOINT set */
	int batch;
	long indexed, failed;
};

struct batch_job {
	char name[SPOOL_NAME_MAX];
	char hash[STORE_HASH_LEN + 1];
	char reason[512];	/* empty: indexed */
	enum upload_state upload;	/* PENDING: an upload job goes */
	struct pacs_attrs attrs;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: dcmindex [--once] [--batch N]\n"
	    "       dcmindex --init | --reindex | --retry-failed | --verify |"
	    " --backup\n"
	    "\n"
	    "Indexes objects from the index spool into pacs.db and queues them\n"
	    "for the thumbnail and relay stages.\n"
	    "\n"
	    "  --once       drain the spool and exit (default: follow it)\n"
	    "  --batch N    jobs per transaction (default %d)\n"
	    "  --init       create or migrate pacs.db and exit\n"
	    "  --reindex    rebuild pacs.db from the object store; purged\n"
	    "               instances and commitments from the newest backup\n"
	    "  --retry-failed  move failed index jobs back to the queue, exit\n"
	    "  --verify     re-hash every object; report missing and changed\n"
	    "               ones (PACS_VERIFY_MAX_MB_PER_SECOND, default 50)\n"
	    "  --backup     online backup of pacs.db into GATEWAY_BACKUP_DIR,\n"
	    "               keeping the newest PACS_DB_BACKUPS (default 7)\n"
	    "  -h, --help   this help\n"
	    "  --version    print the version\n"
	    "\n"
	    "Environment: GATEWAY_DATA_DIR, PACS_DB_PATH, PACS_STORAGE_PATH,\n"
	    "GATEWAY_SPOOL_DIR, RELAY_UPLOAD_POLICY, RELAY_UPLOAD_CLASSES,\n"
	    "CLOUD_API_ENDPOINT, LOG_LEVEL.  See "
	    "dcmindex(1).\n", BATCH_DEFAULT);
}

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* Index one claimed job inside the open transaction. */
static int
index_job(struct indexer *x, struct batch_job *j, struct err *e)
{
	char *body = NULL, path[PATH_MAX], key[256], size[32];
	char calling[64], called[64], peer[256], when[40];
	struct pacs_receipt r;
	struct dcm *d = NULL;
	int rc = -1;

	if (spool_read(&x->index, j->name, &body, e) == -1)
		return -1;
	if (spool_job_get(body, "object", j->hash, sizeof j->hash) == -1 ||
	    !store_valid_hash(j->hash)) {
		err_set(e, EINVAL, "job has no valid object=");
		goto done;
	}
	if (spool_job_get(body, "receipt", key, sizeof key) == -1)
		snprintf(key, sizeof key, "%s", j->name);
	if (spool_job_get(body, "size", size, sizeof size) == -1)
		size[0] = '\0';
	if (spool_job_get(body, "calling_aet", calling, sizeof calling) == -1)
		calling[0] = '\0';
	if (spool_job_get(body, "called_aet", called, sizeof called) == -1)
		called[0] = '\0';
	if (spool_job_get(body, "peer", peer, sizeof peer) == -1)
		peer[0] = '\0';
	if (spool_job_get(body, "received_at", when, sizeof when) == -1)
		pacs_timestamp(when);
	if (store_path(&x->store, j->hash, path, sizeof path, e) == -1 ||
	    dcm_open(path, DCM_STOP_AT_PIXELS, &d, e) == -1 ||
	    pacs_extract(d, &j->attrs, e) == -1)
		goto done;
	r = (struct pacs_receipt){ j->hash, strtoull(size, NULL, 10), key,
	    calling, called, peer, when };
	rc = pacs_index_object(x->ix, &j->attrs, &r, e);
	if (rc == 0 && (rc = upload_state_indexed(x->db,
	    j->attrs.sop_instance_uid, j->hash, j->attrs.sop_class_uid,
	    x->classes, x->cloud, e)) >= 0) {
		j->upload = (enum upload_state)rc;
		rc = 0;
	}
done:
	if (d != NULL)
		dcm_free(d);
	free(body);
	return rc;
}

static int
savepoint(struct indexer *x, const char *sql)
{
	struct err e = { 0 };

	if (db_exec(x->db, sql, &e) == -1) {
		log_err("savepoint failed", &e);
		return -1;
	}
	return 0;
}

/* Hand an indexed object to the next stages (deferred until flush). */
static int
fan_out(struct indexer *x, const struct batch_job *j, struct err *e)
{
	char body[1024];
	int n = snprintf(body, sizeof body,
	    "object=%s\nsop_instance_uid=%s\nstudy_instance_uid=%s\n"
	    "accession_number=%s\nkind=image\n", j->hash,
	    j->attrs.sop_instance_uid, j->attrs.study_instance_uid,
	    j->attrs.accession_number);

	if (n < 0 || (size_t)n >= sizeof body)
		return err_set(e, EINVAL, "fan-out job too long");
	if (spool_enqueue(&x->thumb, j->hash, body, (size_t)n, SPOOL_DEFER,
	    e) == -1)
		return -1;
	if (x->policy == REQUEST_POLICY_ON_REQUEST ||
	    j->upload != UPLOAD_PENDING)
		return 0;	/* LOCAL, HELD: no upload job */
	return spool_enqueue(&x->relay, j->hash, body, (size_t)n, SPOOL_DEFER,
	    e);
}

/*
 * Some modalities send no MPPS: the first image whose accession number
 * matches a SCHEDULED worklist item moves it to IN PROGRESS, as the
 * production gateway does.  Done after the commit, once per accession
 * number in the batch; it only ever moves SCHEDULED items, so a repeated
 * batch changes nothing.  A failure is logged: the index comes first.
 */
static void
start_worklist_items(struct indexer *x, const struct batch_job *jobs, int n)
{
	struct err e = { 0 };

	if (x->worklist == NULL)
		return;
	for (int i = 0; i < n; i++) {
		const char *acc = jobs[i].attrs.accession_number;
		int seen = 0;

		if (jobs[i].reason[0] != '\0' || acc[0] == '\0')
			continue;
		for (int k = 0; k < i && !seen; k++)
			seen = strcmp(jobs[k].attrs.accession_number, acc) == 0;
		if (seen)
			continue;
		int r = worklist_start_by_image(x->worklist, acc, &e);
		if (r == WL_UPDATED)
			log_info("worklist item started by image",
			    "accession_number=%s", acc);
		else if (r == -1)
			log_err("worklist update failed", &e);
	}
}

/* Commit the batch, fan out, then settle every claim.  -1: retry later. */
static int
settle(struct indexer *x, struct batch_job *jobs, int n)
{
	struct err e = { 0 };

	if (db_exec(x->db, "COMMIT", &e) == -1) {
		log_err("commit failed", &e);
		db_exec(x->db, "ROLLBACK", NULL);
		return -1;
	}
	start_worklist_items(x, jobs, n);
	for (int i = 0; i < n; i++)
		if (jobs[i].reason[0] == '\0' && fan_out(x, &jobs[i], &e) == -1)
			goto fail;
	if (spool_flush(&x->thumb, &e) == -1 || spool_flush(&x->relay, &e) == -1)
		goto fail;
	for (int i = 0; i < n; i++) {
		struct batch_job *j = &jobs[i];
		int r = j->reason[0] ? spool_fail(&x->index, j->name, j->reason,
		    &e) : spool_finish(&x->index, j->name, &e);
		if (r == -1)
			goto fail;
		if (j->reason[0] == '\0') {
			x->indexed++;
			log_debug("indexed", "sop_instance_uid=%s object=%.16s",
			    j->attrs.sop_instance_uid, j->hash);
		} else {
			char q[600];
			x->failed++;
			log_warn("index failed", "job=%s object=%.16s reason=%s",
			    j->name, j->hash, log_quote(j->reason, q, sizeof q));
		}
	}
	return 0;
fail:
	log_err("fan-out failed", &e);
	return -1;
}

/*
 * A job fails for good when the object itself is the problem (unreadable,
 * missing UIDs, gone).  When the machine is the problem (database error,
 * full disk, out of file descriptors) the whole batch is retried later.
 */
static int
transient(int code)
{
	switch (code) {
	case EIO: case ENOSPC: case EDQUOT: case EMFILE: case ENFILE:
	case ENOMEM: case EAGAIN: case EBUSY: case EROFS:
		return 1;
	}
	return 0;
}

static int
run_batch(struct indexer *x, struct batch_job *jobs, int n)
{
	struct err e = { 0 };

	if (db_exec(x->db, "BEGIN IMMEDIATE", &e) == -1) {
		log_err("begin failed", &e);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct batch_job *j = &jobs[i];

		j->reason[0] = j->hash[0] = '\0';
		memset(&e, 0, sizeof e);
		if (savepoint(x, "SAVEPOINT job") == -1)
			goto abort;
		if (index_job(x, j, &e) == 0) {
			if (savepoint(x, "RELEASE job") == -1)
				goto abort;
			continue;
		}
		if (transient(e.code)) {
			log_err("index failed, will retry", &e);
			goto abort;
		}
		snprintf(j->reason, sizeof j->reason, "%s",
		    e.msg[0] ? e.msg : "unknown error");
		if (savepoint(x, "ROLLBACK TO job") == -1 ||
		    savepoint(x, "RELEASE job") == -1)
			goto abort;
	}
	return settle(x, jobs, n);
abort:
	db_exec(x->db, "ROLLBACK", NULL);
	return -1;
}

/* Drain the spool.  Returns 0 when empty (or stopping), -1 on error. */
static int
drain(struct indexer *x, struct batch_job *jobs, char (*names)[SPOOL_NAME_MAX])
{
	struct err e = { 0 };
	int n;

	while (!stopping) {
		if ((n = spool_claim(&x->index, names, x->batch, &e)) == -1) {
			log_err("claim failed", &e);
			return -1;
		}
		if (n == 0)
			return 0;
		for (int i = 0; i < n; i++)
			memcpy(jobs[i].name, names[i], SPOOL_NAME_MAX);
		if (run_batch(x, jobs, n) == -1) {
			/* Put the claims back; the next pass retries them. */
			spool_recover(&x->index, NULL);
			return -1;
		}
	}
	return 0;
}

static int
follow(struct indexer *x, int once)
{
	struct err e = { 0 };
	struct batch_job *jobs = calloc((size_t)x->batch, sizeof *jobs);
	char (*names)[SPOOL_NAME_MAX] = calloc((size_t)x->batch,
	    sizeof *names);
	int rc = 0, recovered, pause = 1;

	if (jobs == NULL || names == NULL) {
		free(jobs);
		free(names);
		log_error("out of memory", "batch=%d", x->batch);
		return -1;
	}
	if ((recovered = spool_recover(&x->index, &e)) == -1) {
		log_err("recover failed", &e);
		rc = -1;
		goto out;
	}
	log_info("started", "recovered=%d batch=%d once=%d upload_policy=%s "
	    "upload_classes=%s cloud=%s", recovered, x->batch, once,
	    request_policy_name(x->policy),
	    upload_state_classes_name(x->classes), x->cloud ? "on" : "off");
	while (!stopping) {
		if (drain(x, jobs, names) == -1) {
			if (once) {
				rc = -1;
				break;
			}
			/* e.g. database locked or disk full: try again, less
			 * and less often, up to once a minute. */
			sleep((unsigned)pause);
			pause = pause < 60 ? pause * 2 : 60;
			continue;
		}
		pause = 1;
		if (once)
			break;
		if (spool_wait(&x->index, WAIT_MS, &e) == -1) {
			log_err("wait failed", &e);
			rc = -1;
			break;
		}
	}
	log_info("stopped", "indexed=%ld failed=%ld", x->indexed, x->failed);
out:
	free(jobs);
	free(names);
	return rc;
}

/* Only --init and the pipeline stage may create pacs.db: a hand-run
 * --retry-failed in the wrong place must not make an empty one. */
static int
open_db(struct indexer *x, const char *path, int create, struct err *e)
{
	if ((create ? db_open(&x->db, path, e) :
	    db_open_existing(&x->db, path, e)) == -1)
		return -1;
	if (pacs_index_open(&x->ix, x->db, e) == -1) {
		db_close(x->db);
		x->db = NULL;
		return -1;
	}
	return 0;
}

static void
close_db(struct indexer *x)
{
	pacs_index_close(x->ix);
	db_close(x->db);
	x->ix = NULL;
	x->db = NULL;
}

/* --reindex: one object file found in the store. */
static int
reindex_object(struct indexer *x, const char *path, const char *hash,
    struct err *e)
{
	struct pacs_attrs attrs;
	struct pacs_receipt r;
	struct dcm *d;
	struct stat sb;
	char when[32], key[80];
	int rc;

	if (store_verify(&x->store, hash, e) == -1 || stat(path, &sb) == -1)
		return e->msg[0] ? -1 : err_sys(e, "stat %s", path);
	if (dcm_open(path, DCM_STOP_AT_PIXELS, &d, e) == -1)
		return -1;
	rc = pacs_extract(d, &attrs, e);
	dcm_free(d);
	if (rc == -1)
		return -1;
	pacs_timestamp_at(&sb.st_mtim, when);	/* as storescp-hook does */
	snprintf(key, sizeof key, "reindex:%s", hash);
	r = (struct pacs_receipt){ hash, (uint64_t)sb.st_size, key, "", "",
	    "", when };
	return pacs_index_object(x->ix, &attrs, &r, e);
}

/* Walk <store>/ab/cd/<hash>.dcm, calling reindex_object for each. */
static int
reindex_walk(struct indexer *x, const char *dir, int depth, long *count,
    long *bad)
{
	char path[PATH_MAX], hash[STORE_HASH_LEN + 1], q[600];
	struct err e = { 0 };
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL) {
		log_error("reindex: cannot read", "dir=%s", dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (depth < 2) {
			if (len == 2 && reindex_walk(x, path, depth + 1, count,
			    bad) == -1) {
				closedir(d);
				return -1;
			}
			continue;
		}
		if (len != STORE_HASH_LEN + 4 ||
		    strcmp(de->d_name + STORE_HASH_LEN, ".dcm") != 0)
			continue;
		snprintf(hash, sizeof hash, "%.*s", STORE_HASH_LEN, de->d_name);
		memset(&e, 0, sizeof e);
		if (reindex_object(x, path, hash, &e) == -1) {
			(*bad)++;
			log_warn("reindex: object skipped", "object=%.16s "
			    "reason=%s", hash, log_quote(e.msg, q, sizeof q));
			continue;
		}
		if (++*count % 500 == 0 &&
		    (db_exec(x->db, "COMMIT; BEGIN IMMEDIATE", &e) == -1)) {
			log_err("reindex: commit failed", &e);
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

/*
 * --reindex: the rows the store cannot give back (purged instances, the
 * commitment tables) from the newest backup that can be read
 * (lib/archive/rebuild).  0 taken, or there is no backup; 1 there are
 * backups and none could be read.
 */
static int
reindex_from_backup(struct indexer *x, const char *scratch)
{
	char path[PATH_MAX], **names, q[600];
	struct rebuild_stats st;
	struct err e = { 0 };
	int n = rebuild_backups(x->cfg.backup_dir, &names, &e), rc = 1;

	if (n <= 0) {
		if (n == -1)
			log_err("reindex: cannot list the backups", &e);
		else
			log_warn("reindex: no backup: purged instances and "
			    "commitment requests are not recovered", "dir=%s",
			    x->cfg.backup_dir);
		return n == -1;
	}
	for (int i = n - 1; i >= 0 && rc == 1; i--) {
		memset(&e, 0, sizeof e);
		if (snprintf(path, sizeof path, "%s/%s", x->cfg.backup_dir,
		    names[i]) >= (int)sizeof path)
			continue;
		if (rebuild_from_backup(x->db, path, scratch, &st, &e) == -1) {
			log_warn("reindex: backup not usable", "backup=%s "
			    "error=%s", path, log_quote(e.msg, q, sizeof q));
			continue;
		}
		log_info("reindex: rows taken from the backup", "backup=%s "
		    "purged_instances=%ld commitment_requests=%ld", path,
		    st.purged, st.commitments);
		if (st.missing > 0)
			log_warn("reindex: instances the backup holds are not "
			    "in the store (purged since the backup, or lost): "
			    "not recovered", "backup=%s instances=%ld", path,
			    st.missing);
		rc = 0;
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (rc == 1)
		log_error("reindex: no backup could be read: purged instances "
		    "and commitment requests are not recovered", "dir=%s "
		    "backups=%d", x->cfg.backup_dir, n);
	return rc;
}

/*
 * Build a new database beside the old one from the store alone, then put
 * it in place.  Receipts are lost (the store does not keep them); each
 * object's file time stands in for its reception time.  Then the newest
 * backup gives back what the store cannot.  0, 1 when no backup could be
 * read (the database is in place all the same), -1.
 */
static int
reindex_store(struct indexer *x)
{
	char tmp[PATH_MAX], scratch[PATH_MAX];
	struct err e = { 0 };
	long count = 0, bad = 0;
	int rc, unread = 0;

	if (snprintf(tmp, sizeof tmp, "%s.reindex", x->cfg.pacs_db_path) >=
	    (int)sizeof tmp || snprintf(scratch, sizeof scratch,
	    "%s.reindex-backup", x->cfg.pacs_db_path) >= (int)sizeof scratch)
		return -1;
	db_remove(tmp);
	if (open_db(x, tmp, 1, &e) == -1) {
		log_err("reindex: cannot create database", &e);
		return -1;
	}
	rc = db_exec(x->db, "BEGIN IMMEDIATE", &e);
	if (rc == 0)
		rc = reindex_walk(x, x->cfg.storage_path, 0, &count, &bad);
	/* What the cloud has is not known any more: every instance is
	 * HELD, kept, until `gatewayctl resend --held` sends it again (or
	 * LOCAL: not for the cloud). */
	if (rc == 0 && upload_state_reindexed(x->db, x->classes, &e) == -1) {
		log_err("reindex: cannot mark the uploads held", &e);
		rc = -1;
	}
	if (rc == 0 && db_exec(x->db, "COMMIT", &e) == -1) {
		log_err("reindex: commit failed", &e);
		rc = -1;
	}
	if (rc == 0)
		unread = reindex_from_backup(x, scratch);
	if (rc == 0)
		db_exec(x->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL);
	close_db(x);
	if (rc == -1) {
		db_remove(tmp);
		return -1;
	}
	db_remove(x->cfg.pacs_db_path);
	if (rename(tmp, x->cfg.pacs_db_path) == -1) {
		log_error("reindex: cannot install database", "path=%s",
		    x->cfg.pacs_db_path);
		return -1;
	}
	db_remove(tmp);
	log_info("reindexed", "objects=%ld skipped=%ld", count, bad);
	return unread;
}

/* --verify: one problem found by the scrub. */
static void
verify_problem(void *arg, const char *hash, const char *problem,
    const char *detail)
{
	char q[600];

	(void)arg;
	log_warn("verify: object bad", "object=%s problem=%s detail=%s", hash,
	    problem, log_quote(detail, q, sizeof q));
}

/* Re-hash every object; never changes one.  EX_DATAERR when any is bad. */
static int
verify_store(struct indexer *x)
{
	struct scrub_stats st;
	struct err e = { 0 };
	long rate;

	if (config_long("PACS_VERIFY_MAX_MB_PER_SECOND", &rate, &e) == -1) {
		log_err("cannot verify", &e);
		return EX_CONFIG;
	}
	if (scrub_run(x->db, &x->store, rate, verify_problem, NULL, &st,
	    &e) == -1) {
		log_err("verify failed", &e);
		return EX_SOFTWARE;
	}
	log_info("verified", "objects=%ld bytes=%lld missing=%ld mismatch=%ld "
	    "unreadable=%ld seconds=%.1f", st.objects, st.bytes, st.missing,
	    st.mismatch, st.unreadable, st.seconds);
	return st.missing + st.mismatch + st.unreadable ? EX_DATAERR : EX_OK;
}

/* Remove the oldest pacs-*.db in dir beyond the newest keep. */
static void
prune_backups(const char *dir, long keep)
{
	char path[PATH_MAX], **names;
	struct err e = { 0 };
	int n = rebuild_backups(dir, &names, &e);

	if (n == -1) {
		log_err("backup: cannot list", &e);
		return;
	}
	for (int i = 0; i < n; i++) {
		if (i < n - keep && (size_t)snprintf(path, sizeof path, "%s/%s",
		    dir, names[i]) < sizeof path && unlink(path) == 0)
			log_info("backup removed", "path=%s", path);
		free(names[i]);
	}
	free(names);
}

/* --backup: GATEWAY_BACKUP_DIR/pacs-<UTC time>.db, keep the newest. */
static int
backup_db(struct indexer *x)
{
	char dir[PATH_MAX], path[PATH_MAX], when[32];
	struct err e = { 0 };
	struct timespec now;
	struct tm tm;
	long keep;

	if (config_long("PACS_DB_BACKUPS", &keep, &e) == -1) {
		log_err("cannot back up", &e);
		return EX_CONFIG;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(when, sizeof when, "%Y%m%dT%H%M%S", &tm);
	if ((size_t)snprintf(dir, sizeof dir, "%s", x->cfg.backup_dir) >=
	    sizeof dir || (size_t)snprintf(path, sizeof path,
	    "%s/" REBUILD_BACKUP_PREFIX "%s.%06ldZ.db", dir, when,
	    now.tv_nsec / 1000) >= sizeof path) {
		log_error("backup failed", "error=%s", "path too long");
		return EX_USAGE;
	}
	if (fs_mkdirs(dir, &e) == -1 || db_backup(x->db, path, &e) == -1) {
		log_err("backup failed", &e);
		return EX_IOERR;
	}
	log_info("backed up", "path=%s", path);
	prune_backups(dir, keep);
	return EX_OK;
}

static int
open_spools(struct indexer *x, struct err *e)
{
	char dir[PATH_MAX];
	struct spool *sp[] = { &x->index, &x->thumb, &x->relay };
	const char *names[] = { "index", "thumb", "relay" };

	for (int i = 0; i < 3; i++)
		if (config_spool_path(&x->cfg, names[i], dir, sizeof dir, e) ==
		    -1 || spool_open(sp[i], dir, 1, e) == -1)
			return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "batch", required_argument, NULL, 'b' },
		{ "init", no_argument, NULL, 'i' },
		{ "reindex", no_argument, NULL, 'r' },
		{ "retry-failed", no_argument, NULL, 'R' },
		{ "verify", no_argument, NULL, 'v' },
		{ "backup", no_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct indexer x = { .batch = BATCH_DEFAULT };
	struct err e = { 0 };
	int c, once = 0, init = 0, reindex = 0, retry = 0, verify = 0;
	int backup = 0, rc;
	char *end;

	log_init("dcmindex");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': once = 1; break;
		case 'i': init = 1; break;
		case 'r': reindex = 1; break;
		case 'R': retry = 1; break;
		case 'v': verify = 1; break;
		case 'B': backup = 1; break;
		case 'b':
			x.batch = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || x.batch < 1 || x.batch > BATCH_MAX) {
				fprintf(stderr, "dcmindex: --batch takes 1 to %d\n",
				    BATCH_MAX);
				return EX_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("dcmindex %s\n", GW_VERSION);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc ||
	    init + reindex + once + retry + verify + backup > 1) {
		usage(stderr);
		return EX_USAGE;
	}
	proc_on_stop(on_signal);
	if (config_load(&x.cfg, &e) == -1 ||
	    request_upload_policy(&x.policy, &e) == -1 ||
	    upload_state_classes(&x.classes, &e) == -1) {
		log_err("cannot start", &e);
		return EX_CONFIG;
	}
	log_init("dcmindex");	/* LOG_LEVEL may come from gateway.env */
	x.cloud = config_cloud_images();
	/* --retry-failed looks for pacs.db before it creates anything. */
	if (retry && open_db(&x, x.cfg.pacs_db_path, 0, &e) == -1) {
		log_err("cannot open database", &e);
		return e.code == ENOENT ? EX_NOINPUT : EX_CANTCREAT;
	}
	if (store_open(&x.store, x.cfg.storage_path, 1, &e) == -1) {
		log_err("cannot start", &e);
		close_db(&x);
		return EX_CONFIG;
	}
	if (reindex) {
		rc = reindex_store(&x);
		return rc == 0 ? EX_OK : rc == 1 ? EX_DATAERR : EX_SOFTWARE;
	}
	if (!retry && open_db(&x, x.cfg.pacs_db_path, 1, &e) == -1) {
		log_err("cannot open database", &e);
		return EX_CANTCREAT;
	}
	if (init) {
		close_db(&x);
		log_info("database ready", "path=%s", x.cfg.pacs_db_path);
		return EX_OK;
	}
	if (verify || backup) {
		rc = verify ? verify_store(&x) : backup_db(&x);
		close_db(&x);
		return rc;
	}
	if (open_spools(&x, &e) == -1) {
		log_err("cannot open spools", &e);
		close_db(&x);
		return EX_CANTCREAT;
	}
	if (retry) {
		rc = spool_retry_failed(&x.index, &e);
		if (rc == -1)
			log_err("retry failed", &e);
		else
			log_info("failed jobs queued again", "jobs=%d", rc);
		rc = rc == -1 ? -1 : 0;
	} else {
		if (worklist_open(&x.worklist, x.cfg.worklist_db_path, &e) == -1) {
			log_err("worklist.db unavailable: items will not be "
			    "started by images", &e);
			x.worklist = NULL;
		}
		rc = follow(&x, once);
		worklist_close(x.worklist);
	}
	spool_close(&x.index);
	spool_close(&x.thumb);
	spool_close(&x.relay);
	close_db(&x);
	return rc == 0 ? EX_OK : EX_SOFTWARE;
}
