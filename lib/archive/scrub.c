/* scrub: re-hash the store's objects (see archive/archive.h for the contract). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "archive/archive.h"

#define PAGE	256

static const char select_page[] =
	"SELECT o.hash, o.size FROM objects o WHERE o.hash > ?1"
	" AND (EXISTS (SELECT 1 FROM instances i WHERE i.object_hash = o.hash"
	"   AND i.purged_at IS NULL)"
	"  OR NOT EXISTS (SELECT 1 FROM instances i"
	"   WHERE i.object_hash = o.hash))"
	" ORDER BY o.hash LIMIT ?2";

enum { Q_PAGE, Q_PROBLEM, Q_GOOD, Q_RUN_END, Q_N };

static const char *const queries[Q_N] = {
	[Q_PAGE] = select_page,
	[Q_PROBLEM] = "INSERT INTO verify_problems (object_hash, problem,"
	    " detail, found_at) VALUES (?1, ?2, ?3,"
	    " strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
	    " ON CONFLICT (object_hash) DO UPDATE SET problem = excluded.problem,"
	    " detail = excluded.detail, found_at = excluded.found_at",
	[Q_GOOD] = "DELETE FROM verify_problems WHERE object_hash = ?1",
	[Q_RUN_END] = "UPDATE verify_runs SET finished_at ="
	    " strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), objects = ?2, bytes = ?3,"
	    " failures = ?4 WHERE id = ?1",
};

struct result {
	char hash[STORE_HASH_LEN + 1];
	const char *problem;		/* NULL: good */
	char detail[sizeof ((struct err *)0)->msg];
};

struct scrub {
	sqlite3 *db;
	const struct store *st;
	sqlite3_stmt *q[Q_N];
	long max_mb_per_s;
	struct timespec start;
	struct scrub_stats *stats;
	scrub_report_fn *report;
	void *arg;
};

static double
since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) +
	    (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Sleep as long as reading faster than the limit would need. */
static void
throttle(struct scrub *s)
{
	double want, ahead;
	struct timespec t;

	if (s->max_mb_per_s <= 0)
		return;
	want = (double)s->stats->bytes / ((double)s->max_mb_per_s * 1e6);
	if ((ahead = want - since(&s->start)) <= 0)
		return;
	t.tv_sec = (time_t)ahead;
	t.tv_nsec = (long)((ahead - (double)t.tv_sec) * 1e9);
	nanosleep(&t, NULL);
}

static void
check_one(struct scrub *s, struct result *r, long long size)
{
	struct err e = { 0 };

	r->problem = NULL;
	r->detail[0] = '\0';
	s->stats->objects++;
	if (store_verify(s->st, r->hash, &e) == 0) {
		s->stats->bytes += size;
		throttle(s);
		return;
	}
	s->stats->bytes += size;
	if (e.code == ENOENT) {
		r->problem = "missing";
		s->stats->missing++;
	} else if (strstr(e.msg, "content hashes to") != NULL) {
		r->problem = "mismatch";
		s->stats->mismatch++;
	} else {
		r->problem = "unreadable";
		s->stats->unreadable++;
	}
	snprintf(r->detail, sizeof r->detail, "%s", e.msg);
	if (s->report != NULL)
		s->report(s->arg, r->hash, r->problem, r->detail);
	throttle(s);
}

/* Read one page of hashes after last (a short read), verify each. */
static int
verify_page(struct scrub *s, char last[STORE_HASH_LEN + 1],
    struct result *res, int *n, struct err *e)
{
	sqlite3_stmt *q = s->q[Q_PAGE];
	long long sizes[PAGE];
	int rc = SQLITE_DONE;

	*n = 0;
	sqlite3_bind_text(q, 1, last, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(q, 2, PAGE);
	while (*n < PAGE && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(q, 0);

		if (h == NULL || strlen(h) != STORE_HASH_LEN)
			continue;
		memcpy(res[*n].hash, h, STORE_HASH_LEN + 1);
		sizes[(*n)++] = sqlite3_column_int64(q, 1);
	}
	sqlite3_reset(q);
	if (*n < PAGE && rc != SQLITE_DONE)
		return err_set(e, db_errno(s->db), "sqlite: %s",
		    sqlite3_errmsg(s->db));
	for (int i = 0; i < *n; i++)
		check_one(s, &res[i], sizes[i]);
	if (*n > 0)
		memcpy(last, res[*n - 1].hash, STORE_HASH_LEN + 1);
	return 0;
}

/* Record a page's results in one short transaction. */
static int
record_page(struct scrub *s, const struct result *res, int n,
    struct err *e)
{
	int rc = 0;

	if (db_exec(s->db, "BEGIN IMMEDIATE", e) == -1)
		return -1;
	for (int i = 0; i < n && rc == 0; i++) {
		sqlite3_stmt *q = s->q[res[i].problem ? Q_PROBLEM : Q_GOOD];

		sqlite3_bind_text(q, 1, res[i].hash, -1, SQLITE_STATIC);
		if (res[i].problem != NULL) {
			sqlite3_bind_text(q, 2, res[i].problem, -1,
			    SQLITE_STATIC);
			sqlite3_bind_text(q, 3, res[i].detail, -1,
			    SQLITE_STATIC);
		}
		rc = db_step_done(s->db, q, e);
	}
	if (rc == 0)
		rc = db_exec(s->db, "COMMIT", e);
	if (rc == -1)
		db_exec(s->db, "ROLLBACK", NULL);
	return rc;
}

static int
scrub_all(struct scrub *s, sqlite3_int64 run, struct err *e)
{
	struct result res[PAGE];
	char last[STORE_HASH_LEN + 1] = "";
	struct scrub_stats *t = s->stats;
	int n;

	do {
		if (verify_page(s, last, res, &n, e) == -1 ||
		    record_page(s, res, n, e) == -1)
			return -1;
	} while (n == PAGE);
	sqlite3_bind_int64(s->q[Q_RUN_END], 1, run);
	sqlite3_bind_int64(s->q[Q_RUN_END], 2, t->objects);
	sqlite3_bind_int64(s->q[Q_RUN_END], 3, t->bytes);
	sqlite3_bind_int64(s->q[Q_RUN_END], 4, t->missing + t->mismatch +
	    t->unreadable);
	return db_step_done(s->db, s->q[Q_RUN_END], e);
}

int
scrub_run(sqlite3 *db, const struct store *st, long max_mb_per_s,
    scrub_report_fn *report, void *arg, struct scrub_stats *out,
    struct err *e)
{
	struct scrub s = { db, st, { NULL }, max_mb_per_s, { 0, 0 }, out,
	    report, arg };
	int rc = -1;

	memset(out, 0, sizeof *out);
	clock_gettime(CLOCK_MONOTONIC, &s.start);
	for (int i = 0; i < Q_N; i++)
		if (db_prepare(db, &s.q[i], queries[i], e) == -1)
			goto out;
	if (db_exec(db, "INSERT INTO verify_runs (started_at) VALUES"
	    " (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))", e) == -1)
		goto out;
	rc = scrub_all(&s, sqlite3_last_insert_rowid(db), e);
out:
	for (int i = 0; i < Q_N; i++)
		sqlite3_finalize(s.q[i]);
	out->seconds = since(&s.start);
	return rc;
}
