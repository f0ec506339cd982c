/* purge: retention of the content store (see archive/archive.h for the contract). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "archive/archive.h"
#include "archive/archive_int.h"
#include "queue/queue.h"

#define LOCK_POLL_MS	50

/* Which spool directories hold jobs that keep a file. */
static const char *const held_subs[] = { "new", "cur", "failed" };
#define NHELD_SUBS	(sizeof held_subs / sizeof held_subs[0])

static const char temp_tables[] =
	"CREATE TEMP TABLE IF NOT EXISTS purge_held_hash (h TEXT PRIMARY KEY);"
	"CREATE TEMP TABLE IF NOT EXISTS purge_held_sop (u TEXT PRIMARY KEY);"
	"CREATE TEMP TABLE IF NOT EXISTS purge_held_study (u TEXT PRIMARY KEY);"
	"CREATE TEMP TABLE IF NOT EXISTS purge_held_commit (u TEXT PRIMARY KEY);"
	"CREATE TEMP TABLE IF NOT EXISTS purge_batch (h TEXT PRIMARY KEY);"
	"DELETE FROM purge_held_hash; DELETE FROM purge_held_sop;"
	"DELETE FROM purge_held_study; DELETE FROM purge_held_commit;"
	"DELETE FROM purge_batch;";

/*
 * The next candidates, oldest first, after (?1 received_at, ?2 id):
 * held, in a state that may be freed (confirmed, past the cutoff ?3
 * unless ?4, the watermark path; or LOCAL and past the cutoff), named by
 * no spool job and no pending commitment.
 */
static const char select_batch[] =
	"SELECT i.id, i.sop_instance_uid, i.object_hash, i.received_at, o.size"
	" FROM instances i INDEXED BY instances_held_by_age"
	" JOIN objects o ON o.hash = i.object_hash"
	" JOIN series se ON se.id = i.series_ref"
	" JOIN studies st ON st.id = se.study_ref"
	" WHERE i.purged_at IS NULL AND (i.received_at, i.id) > (?1, ?2)"
	"  AND " UPLOAD_STATE_FREEABLE
	"  AND i.object_hash NOT IN (SELECT h FROM temp.purge_held_hash)"
	"  AND i.sop_instance_uid NOT IN (SELECT u FROM temp.purge_held_sop)"
	"  AND i.sop_instance_uid NOT IN (SELECT u FROM temp.purge_held_commit)"
	"  AND st.study_instance_uid NOT IN (SELECT u FROM temp.purge_held_study)"
	" ORDER BY i.received_at, i.id LIMIT ?5";

enum { Q_SELECT, Q_MARK, Q_STILL_HELD, Q_PENDING, Q_HELD_HASH, Q_HELD_SOP,
    Q_HELD_STUDY, Q_BATCH_ADD, Q_UNPEND, Q_N };

static const char *const queries[Q_N] = {
	[Q_SELECT] = select_batch,
	[Q_MARK] = "UPDATE instances SET purged_at = ?2 WHERE id = ?1"
	    " AND purged_at IS NULL",
	[Q_STILL_HELD] = "SELECT 1 FROM instances WHERE object_hash = ?1"
	    " AND purged_at IS NULL LIMIT 1",
	[Q_PENDING] = "INSERT OR IGNORE INTO purge_pending (object_hash,"
	    " marked_at) VALUES (?1, ?2)",
	[Q_HELD_HASH] = "INSERT OR IGNORE INTO temp.purge_held_hash VALUES (?1)",
	[Q_HELD_SOP] = "INSERT OR IGNORE INTO temp.purge_held_sop VALUES (?1)",
	[Q_HELD_STUDY] = "INSERT OR IGNORE INTO temp.purge_held_study"
	    " VALUES (?1)",
	[Q_BATCH_ADD] = "INSERT OR IGNORE INTO temp.purge_batch VALUES (?1)",
	[Q_UNPEND] = "DELETE FROM purge_pending WHERE object_hash = ?1",
};

struct run {
	struct purge_ctx *c;
	const struct purge_policy *p;
	struct purge_stats *st;
	sqlite3_stmt *q[Q_N];
	int lock_fd;
	struct timespec spool_seen;	/* newest spool directory change */
	struct timespec newest;		/* while looking again */
	char now[32], cutoff[32];
};

static void
iso_time(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

int
purge_free_space(const char *path, double *pct, long long *free_bytes,
    long long *total_bytes, struct err *e)
{
	struct statvfs sv;
	long long total, avail;

	if (statvfs(path, &sv) == -1)
		return err_sys(e, "statvfs %s", path);
	total = (long long)sv.f_blocks * (long long)sv.f_frsize;
	avail = (long long)sv.f_bavail * (long long)sv.f_frsize;
	if (pct != NULL)
		*pct = total > 0 ? 100.0 * (double)avail / (double)total : 100.0;
	if (free_bytes != NULL)
		*free_bytes = avail;
	if (total_bytes != NULL)
		*total_bytes = total;
	return 0;
}

static int
prepare_all(struct run *r, struct err *e)
{
	if (db_exec(r->c->db, temp_tables, e) == -1)
		return -1;
	for (int i = 0; i < Q_N; i++)
		if (db_prepare(r->c->db, &r->q[i], queries[i], e) == -1)
			return -1;
	return 0;
}

static void
finalize_all(struct run *r)
{
	for (int i = 0; i < Q_N; i++) {
		sqlite3_finalize(r->q[i]);
		r->q[i] = NULL;
	}
}

/* ------------------------------------------------------------ the lock */

/* The store lock, exclusive, waiting at most lock_wait_ms: 1 held,
 * 0 busy (qrscp is serving from the store), -1 error. */
static int
lock_store(struct run *r, int wait_ms, struct err *e)
{
	struct timespec pause = { 0, LOCK_POLL_MS * 1000000L };
	int waited = 0;

	if (r->c->lock_path == NULL)
		return 1;
	if (r->lock_fd == -1 && (r->lock_fd = open(r->c->lock_path,
	    O_RDWR | O_CREAT | O_CLOEXEC, 0644)) == -1)
		return err_sys(e, "open %s", r->c->lock_path);
	for (;;) {
		if (flock(r->lock_fd, LOCK_EX | LOCK_NB) == 0)
			return 1;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return err_sys(e, "flock %s", r->c->lock_path);
		if (waited >= wait_ms)
			return 0;
		nanosleep(&pause, NULL);
		waited += LOCK_POLL_MS;
	}
}

static void
unlock_store(struct run *r)
{
	if (r->lock_fd != -1)
		flock(r->lock_fd, LOCK_UN);
}

/* ------------------------------------------------------ what is held */

static int
bind_step(struct run *r, int q, const char *value, struct err *e)
{
	sqlite3_bind_text(r->q[q], 1, value, -1, SQLITE_TRANSIENT);
	return db_step_done(r->c->db, r->q[q], e);
}

/* One job file: its object, its instance, and a requested study. */
static int
hold_job(struct run *r, const char *path, struct err *e)
{
	char *body = NULL, v[256], req[8];
	size_t len;
	int rc = 0;

	if (fs_read_small(path, SPOOL_JOB_MAX, &body, &len, e) == -1)
		return e->code == ENOENT ? 0 : -1;	/* finished meanwhile */
	if ((spool_job_get(body, "object", v, sizeof v) == 0 ||
	    spool_job_get(body, "hash", v, sizeof v) == 0) &&
	    bind_step(r, Q_HELD_HASH, v, e) == -1)
		rc = -1;
	if (rc == 0 && spool_job_get(body, "sop_instance_uid", v,
	    sizeof v) == 0 && bind_step(r, Q_HELD_SOP, v, e) == -1)
		rc = -1;
	if (rc == 0 && spool_job_get(body, "requested", req, sizeof req) == 0 &&
	    strcmp(req, "0") != 0 && spool_job_get(body, "study_instance_uid",
	    v, sizeof v) == 0 && bind_step(r, Q_HELD_STUDY, v, e) == -1)
		rc = -1;
	free(body);
	return rc;
}

/* Every job in dir (a stage's new/, cur/ or failed/). */
static int
hold_dir(struct run *r, const char *dir, struct err *e)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(dir);
	int rc = 0;

	if (d == NULL)
		return errno == ENOENT ? 0 : err_sys(e, "opendir %s", dir);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		if (de->d_name[0] == '.' || (n > 7 &&
		    strcmp(de->d_name + n - 7, ".reason") == 0))
			continue;
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir,
		    de->d_name) >= sizeof path)
			continue;
		rc = hold_job(r, path, e);
	}
	closedir(d);
	return rc;
}

/* Call fn for each stage's new/, cur/, failed/ under the spool dir. */
static int
each_spool_dir(struct run *r, int (*fn)(struct run *, const char *,
    struct err *), struct err *e)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (r->c->spool_dir == NULL)
		return 0;
	if ((d = opendir(r->c->spool_dir)) == NULL)
		return errno == ENOENT ? 0 : err_sys(e, "opendir %s",
		    r->c->spool_dir);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		for (size_t i = 0; rc == 0 && i < NHELD_SUBS; i++)
			if ((size_t)snprintf(dir, sizeof dir, "%s/%s/%s",
			    r->c->spool_dir, de->d_name, held_subs[i]) <
			    sizeof dir)
				rc = fn(r, dir, e);
	}
	closedir(d);
	return rc;
}

static int
note_mtime(struct run *r, const char *dir, struct err *e)
{
	struct timespec *n = &r->newest;
	struct stat sb;

	(void)e;
	if (stat(dir, &sb) == 0 && (sb.st_mtim.tv_sec > n->tv_sec ||
	    (sb.st_mtim.tv_sec == n->tv_sec && sb.st_mtim.tv_nsec > n->tv_nsec)))
		*n = sb.st_mtim;
	return 0;
}

/*
 * Commitment requests qrscp has not reported yet keep their instances
 * (commitment_requests / commitment_items, sql/pacs.sql): a modality is
 * waiting to hear whether they are safe.
 */
static int
hold_commitments(struct run *r, struct err *e)
{
	return db_exec(r->c->db, "INSERT OR IGNORE INTO temp.purge_held_commit"
	    " SELECT ci.sop_instance_uid FROM commitment_items ci"
	    " JOIN commitment_requests cr ON cr.id = ci.request_ref"
	    " WHERE cr.state = 'PENDING'", e);
}

/* Refill the held sets: commitments always, spool jobs when a spool
 * changed since the last look. */
static int
refresh_held(struct run *r, struct err *e)
{
	if (db_exec(r->c->db, "DELETE FROM temp.purge_held_commit", e) == -1 ||
	    hold_commitments(r, e) == -1)
		return -1;
	r->newest = (struct timespec){ 0, 0 };
	each_spool_dir(r, note_mtime, e);
	if (r->spool_seen.tv_sec != 0 &&
	    r->newest.tv_sec == r->spool_seen.tv_sec &&
	    r->newest.tv_nsec == r->spool_seen.tv_nsec)
		return 0;
	r->spool_seen = r->newest;
	if (db_exec(r->c->db, "DELETE FROM temp.purge_held_hash;"
	    "DELETE FROM temp.purge_held_sop;"
	    "DELETE FROM temp.purge_held_study", e) == -1 ||
	    each_spool_dir(r, hold_dir, e) == -1)
		return -1;
	return 0;
}

/* ------------------------------------------------------- the unlinks */

/* Unlink one object if no held row needs it: 1 unlinked, 0 not. */
static int
unlink_object(struct run *r, const char *hash, long long *bytes,
    struct err *e)
{
	char path[PATH_MAX];
	struct stat sb;
	int s;

	sqlite3_bind_text(r->q[Q_STILL_HELD], 1, hash, -1, SQLITE_TRANSIENT);
	s = sqlite3_step(r->q[Q_STILL_HELD]);
	sqlite3_reset(r->q[Q_STILL_HELD]);
	if (s == SQLITE_ROW)
		return 0;
	if (s != SQLITE_DONE)
		return err_set(e, db_errno(r->c->db), "sqlite: %s",
		    sqlite3_errmsg(r->c->db));
	if (store_path(r->c->store, hash, path, sizeof path, e) == -1)
		return -1;
	if (lstat(path, &sb) == -1)
		return errno == ENOENT ? 0 : err_sys(e, "stat %s", path);
	if (unlink(path) == -1)
		return errno == ENOENT ? 0 : err_sys(e, "unlink %s", path);
	*bytes = (long long)sb.st_size;
	return 1;
}

/* Drop hashes from purge_pending, PAGE_UNPEND to a transaction. */
#define PAGE_UNPEND	1000
static int
unpend(struct run *r, char (*hashes)[STORE_HASH_LEN + 1], size_t n,
    struct err *e)
{
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i += PAGE_UNPEND) {
		if (db_exec(r->c->db, "BEGIN IMMEDIATE", e) == -1)
			return -1;
		for (size_t k = i; k < n && k < i + PAGE_UNPEND && rc == 0; k++)
			rc = bind_step(r, Q_UNPEND, hashes[k], e);
		if (rc == 0)
			rc = db_exec(r->c->db, "COMMIT", e);
		if (rc == -1)
			db_exec(r->c->db, "ROLLBACK", NULL);
	}
	return rc;
}

/*
 * Unlink the objects of sql's rows (hashes).  With settle, then sync the
 * store and drop them from purge_pending; without, they stay listed
 * until a settling call (one sync per round, not one per batch).
 * Counts go to *objects and *bytes.
 */
static int
unlink_listed(struct run *r, const char *sql, int settle, long *objects,
    long long *bytes, struct err *e)
{
	sqlite3_stmt *t = NULL;
	char (*hashes)[STORE_HASH_LEN + 1] = NULL;
	size_t n = 0, cap = 0;
	int rc = 0, s;

	if (db_prepare(r->c->db, &t, sql, e) == -1)
		return -1;
	while ((s = sqlite3_step(t)) == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(t, 0);

		if (h == NULL || !store_valid_hash(h))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			void *p = realloc(hashes, nc * sizeof *hashes);
			if (p == NULL) {
				rc = err_sys(e, "malloc");
				goto out;
			}
			hashes = p;
			cap = nc;
		}
		memcpy(hashes[n++], h, STORE_HASH_LEN + 1);
	}
	if (s != SQLITE_DONE) {
		rc = err_set(e, db_errno(r->c->db), "sqlite: %s",
		    sqlite3_errmsg(r->c->db));
		goto out;
	}
	sqlite3_finalize(t);
	t = NULL;
	for (size_t i = 0; i < n; i++) {
		long long b = 0;
		int u = unlink_object(r, hashes[i], &b, e);

		if (u == -1) {
			rc = -1;
			goto out;
		}
		*objects += u;
		*bytes += b;
	}
	if (n == 0 || !settle)
		goto out;
	/* A durable end to the unlinks: one sync of the store's file
	 * system. */
	if (fs_sync_fs(r->c->store->root, e) == -1 ||
	    unpend(r, hashes, n, e) == -1)
		rc = -1;
out:
	sqlite3_finalize(t);
	free(hashes);
	return rc;
}

/* Unlink what purge_pending lists; count it as finished when asked. */
static int
finish_pending(struct run *r, int count_finished, struct err *e)
{
	long before = r->st->objects;
	int rc;

	rc = unlink_listed(r, "SELECT object_hash FROM purge_pending", 1,
	    &r->st->objects, &r->st->bytes, e);
	if (count_finished)
		r->st->finished += r->st->objects - before;
	return rc;
}

/* An earlier run's half-done work, under the lock: 0 (lock_busy set
 * when the store was in use), -1 error. */
static int
finish_locked(struct run *r, int wait_ms, int count_finished, struct err *e)
{
	int l, rc;

	if ((l = lock_store(r, wait_ms, e)) <= 0) {
		r->st->lock_busy = l == 0;
		return l;
	}
	rc = finish_pending(r, count_finished, e);
	unlock_store(r);
	return rc;
}

int
purge_finish(struct purge_ctx *c, struct purge_stats *st, struct err *e)
{
	struct run r = { .c = c, .st = st, .lock_fd = -1 };
	int rc = -1;

	if (prepare_all(&r, e) == 0)
		rc = finish_locked(&r, 0, 1, e);
	finalize_all(&r);
	if (r.lock_fd != -1)
		close(r.lock_fd);
	return rc;
}

/* ----------------------------------------------------------- a batch */

/* Space the watermark path still has to free, in bytes (<= 0: none). */
static long long
still_to_free(struct run *r, long long freed_unsynced, struct err *e)
{
	long long avail = 0, total = 0;

	if (purge_free_space(r->c->store->root, NULL, &avail, &total, e) == -1)
		return -1;
	return (long long)((double)total * (r->p->low_watermark_pct +
	    r->p->margin_pct) / 100.0) - avail - freed_unsynced;
}

/*
 * Mark one candidate (the current row of Q_SELECT): purged_at, and its
 * object into purge_pending when no held row needs it any more.
 */
static int
mark_one(struct run *r, sqlite3_stmt *sel, const char *reason,
    long long *freed, struct err *e)
{
	struct purge_item it = { 0 };
	int s;

	it.sop_instance_uid = (const char *)sqlite3_column_text(sel, 1);
	it.object_hash = (const char *)sqlite3_column_text(sel, 2);
	it.received_at = (const char *)sqlite3_column_text(sel, 3);
	it.size = sqlite3_column_int64(sel, 4);
	it.reason = reason;
	sqlite3_bind_int64(r->q[Q_MARK], 1, sqlite3_column_int64(sel, 0));
	sqlite3_bind_text(r->q[Q_MARK], 2, r->now, -1, SQLITE_STATIC);
	if (db_step_done(r->c->db, r->q[Q_MARK], e) == -1)
		return -1;
	sqlite3_bind_text(r->q[Q_STILL_HELD], 1, it.object_hash, -1,
	    SQLITE_TRANSIENT);
	s = sqlite3_step(r->q[Q_STILL_HELD]);
	sqlite3_reset(r->q[Q_STILL_HELD]);
	if (s != SQLITE_ROW && s != SQLITE_DONE)
		return err_set(e, db_errno(r->c->db), "sqlite: %s",
		    sqlite3_errmsg(r->c->db));
	if (s == SQLITE_DONE) {
		/* A second row of the same object in this batch: once. */
		if (bind_step(r, Q_BATCH_ADD, it.object_hash, e) == -1)
			return -1;
		it.unlinks = sqlite3_changes(r->c->db) > 0;
		sqlite3_bind_text(r->q[Q_PENDING], 1, it.object_hash, -1,
		    SQLITE_TRANSIENT);
		sqlite3_bind_text(r->q[Q_PENDING], 2, r->now, -1,
		    SQLITE_STATIC);
		if (db_step_done(r->c->db, r->q[Q_PENDING], e) == -1)
			return -1;
		if (it.unlinks)
			*freed += it.size;
	}
	r->st->instances++;
	if (r->c->report != NULL)
		r->c->report(r->c->arg, &it);
	return 0;
}

/*
 * Select and mark one batch inside the open transaction.  *last_* is the
 * keyset position; *to_free the watermark path's remaining bytes.
 * Returns the number of rows marked, 0 when the round is over.
 */
static int
mark_batch(struct run *r, char last_at[32], long long *last_id,
    long long *to_free, struct err *e)
{
	sqlite3_stmt *sel = r->q[Q_SELECT];
	long long freed = 0;
	int n = 0, s;

	sqlite3_bind_text(sel, 1, last_at, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(sel, 2, *last_id);
	sqlite3_bind_text(sel, 3, r->cutoff, -1, SQLITE_STATIC);
	sqlite3_bind_int(sel, 4, *to_free > 0);
	sqlite3_bind_int(sel, 5, r->p->batch);
	while ((s = sqlite3_step(sel)) == SQLITE_ROW) {
		const char *at = (const char *)sqlite3_column_text(sel, 3);
		int by_age = at != NULL && strcmp(at, r->cutoff) < 0;

		if (!by_age && *to_free - freed <= 0)
			break;	/* the watermark path is done */
		snprintf(last_at, 32, "%s", at ? at : "");
		*last_id = sqlite3_column_int64(sel, 0);
		if (mark_one(r, sel, by_age ? "age" : "watermark", &freed,
		    e) == -1) {
			sqlite3_reset(sel);
			return -1;
		}
		if (!by_age)
			r->st->watermark = 1;
		n++;
	}
	sqlite3_reset(sel);
	if (s != SQLITE_ROW && s != SQLITE_DONE)
		return err_set(e, db_errno(r->c->db), "sqlite: %s",
		    sqlite3_errmsg(r->c->db));
	*to_free -= freed;
	return n;
}

/* One batch for real: lock, mark and commit, unlink, unlock.
 * Returns rows marked, 0 at the end, -1 error; sets lock_busy. */
static int
purge_batch(struct run *r, char last_at[32], long long *last_id,
    long long *to_free, struct err *e)
{
	int n, l;

	if ((l = lock_store(r, r->p->lock_wait_ms, e)) <= 0) {
		r->st->lock_busy = l == 0;
		return l;
	}
	if (refresh_held(r, e) == -1 ||
	    db_exec(r->c->db, "BEGIN IMMEDIATE", e) == -1) {
		unlock_store(r);
		return -1;
	}
	if ((n = mark_batch(r, last_at, last_id, to_free, e)) == -1 ||
	    db_exec(r->c->db, "COMMIT", e) == -1) {
		db_exec(r->c->db, "ROLLBACK", NULL);
		unlock_store(r);
		return -1;
	}
	if (n > 0 && unlink_listed(r, "SELECT h FROM temp.purge_batch", 0,
	    &r->st->objects, &r->st->bytes, e) == -1)
		n = -1;
	db_exec(r->c->db, "DELETE FROM temp.purge_batch", NULL);
	unlock_store(r);
	return n;
}

/* Sleep pct % of the time since t0: a purge leaves the write lock and
 * the file system's journal to the ingest between its batches. */
static void
rest_after(const struct timespec *t0, int pct)
{
	struct timespec now, d;
	long long ns;

	if (pct <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = ((long long)(now.tv_sec - t0->tv_sec) * 1000000000LL +
	    (now.tv_nsec - t0->tv_nsec)) * pct / 100;
	d.tv_sec = (time_t)(ns / 1000000000LL);
	d.tv_nsec = (long)(ns % 1000000000LL);
	nanosleep(&d, NULL);
}

/* A dry run: the same selection and marking, rolled back. */
static int
dry_run(struct run *r, long long to_free, struct err *e)
{
	char last_at[32] = "";
	long long last_id = 0;
	int n, rc = 0;

	if (refresh_held(r, e) == -1 || db_exec(r->c->db, "BEGIN", e) == -1)
		return -1;
	while ((n = mark_batch(r, last_at, &last_id, &to_free, e)) > 0)
		;
	if (n == -1)
		rc = -1;
	db_exec(r->c->db, "ROLLBACK", NULL);
	return rc;
}

static int
run_round(struct run *r, struct err *e)
{
	char last_at[32] = "";
	long long last_id = 0, to_free;
	int n;

	iso_time(r->p->now, r->now);
	iso_time(r->p->now - r->p->retention_days * 86400L, r->cutoff);
	if (purge_free_space(r->c->store->root, &r->st->free_pct_before, NULL,
	    NULL, e) == -1)
		return -1;
	/* The watermark path starts below the watermark only. */
	to_free = 0;
	if (r->st->free_pct_before < r->p->low_watermark_pct &&
	    (to_free = still_to_free(r, 0, e)) == -1)
		return -1;
	if (r->p->dry_run)
		return dry_run(r, to_free, e);
	if (finish_locked(r, r->p->lock_wait_ms, 1, e) == -1)
		return -1;
	if (r->st->lock_busy)
		return 0;
	for (;;) {
		struct timespec t0;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		if ((n = purge_batch(r, last_at, &last_id, &to_free, e)) <= 0)
			break;
		/* Measure again: hard links elsewhere free nothing. */
		if (to_free > 0 && (to_free = still_to_free(r, 0, e)) == -1)
			return -1;
		rest_after(&t0, r->p->pause_pct);
	}
	/* One sync for the round, then purge_pending is emptied. */
	if (n == -1 || finish_locked(r, r->p->lock_wait_ms, 0, e) == -1)
		return -1;
	return purge_free_space(r->c->store->root, &r->st->free_pct_after,
	    NULL, NULL, e);
}

int
purge_run(struct purge_ctx *c, const struct purge_policy *p,
    struct purge_stats *st, struct err *e)
{
	struct run r = { .c = c, .p = p, .st = st, .lock_fd = -1 };
	int rc = -1;

	memset(st, 0, sizeof *st);
	if (p->batch < 1 || p->retention_days < 0)
		return err_set(e, EINVAL, "purge: bad policy");
	if (prepare_all(&r, e) == 0)
		rc = run_round(&r, e);
	finalize_all(&r);
	if (r.lock_fd != -1)
		close(r.lock_fd);
	st->free_pct_after = rc == 0 && p->dry_run ? st->free_pct_before :
	    st->free_pct_after;
	return rc;
}
