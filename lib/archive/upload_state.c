/*
 * upload_state: the operator's hand on the images' way to the cloud (see
 * archive/archive.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "archive/archive.h"

#define KEY_STUDIES \
	"SELECT id FROM studies WHERE accession_number = ?1 " \
	"OR study_instance_uid = ?1"

static const char *
col(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	return v ? (const char *)v : "";
}

static int
sql_err(sqlite3 *db, struct err *e)
{
	return err_set(e, db_errno(db), "pacs.db: %s", sqlite3_errmsg(db));
}

/* Run sql with ?1 = a (may be NULL), ?2 = b (may be NULL); the rows it
 * changed, or -1. */
static int
change(sqlite3 *db, const char *sql, const char *a, const char *b,
    struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(db, &st, sql, e) == -1)
		return -1;
	db_bind_text(st, 1, a);
	db_bind_text(st, 2, b);
	rc = db_step_done(db, st, e);
	sqlite3_finalize(st);
	return rc == -1 ? -1 : sqlite3_changes(db);
}

int
upload_state_count(sqlite3 *db, struct upload_state_count *c, struct err *e)
{
	static const struct { const char *status; size_t off; } by[] = {
		{ "PENDING", offsetof(struct upload_state_count, pending) },
		{ "UPLOADING", offsetof(struct upload_state_count, uploading) },
		{ "WAITING", offsetof(struct upload_state_count, waiting) },
		{ "UNMATCHED", offsetof(struct upload_state_count, unmatched) },
		{ "HELD", offsetof(struct upload_state_count, held) },
		{ "FAILED", offsetof(struct upload_state_count, failed) },
		{ "RELEASED", offsetof(struct upload_state_count, released) },
	};
	sqlite3_stmt *st;
	long long unsent = 0;
	int rc;

	memset(c, 0, sizeof *c);
	/* instances_unsent (schema v8) holds every row not COMPLETE. */
	if (db_prepare(db, &st, "SELECT coalesce(upload_status, 'PENDING'), "
	    "count(*) FROM instances WHERE upload_status <> 'COMPLETE' "
	    "GROUP BY 1", e) == -1)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		long long n = sqlite3_column_int64(st, 1);

		unsent += n;
		for (size_t i = 0; i < sizeof by / sizeof by[0]; i++)
			if (strcmp(col(st, 0), by[i].status) == 0)
				*(long long *)((char *)c + by[i].off) += n;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_err(db, e);
	if (db_prepare(db, &st, "SELECT (SELECT count(*) FROM instances), "
	    "count(DISTINCT se.study_ref), coalesce(min(i.received_at), '') "
	    "FROM instances i JOIN series se ON se.id = i.series_ref "
	    "WHERE i.upload_status = 'UNMATCHED'", e) == -1)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		c->total = sqlite3_column_int64(st, 0);
		c->unmatched_studies = sqlite3_column_int64(st, 1);
		snprintf(c->oldest_unmatched, sizeof c->oldest_unmatched, "%s",
		    col(st, 2));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return sql_err(db, e);
	c->complete = c->total - unsent;
	return 0;
}

/* ------------------------------------------------------------ queue */

/* ?1 the KEY (NULL for every HELD row), ?2 1: COMPLETE ones too. */
#define CHOSEN \
	" FROM instances i JOIN series se ON se.id = i.series_ref" \
	" JOIN studies st ON st.id = se.study_ref" \
	" WHERE i.purged_at IS NULL AND CASE WHEN ?1 IS NULL" \
	"  THEN i.upload_status = 'HELD'" \
	"  ELSE (st.accession_number = ?1 OR st.study_instance_uid = ?1)" \
	"   AND (?2 OR i.upload_status <> 'COMPLETE') END"

/* One image job, as dcmindex fans them out: named by the object. */
static int
queue_one(struct spool *relay, sqlite3_stmt *st, struct err *e)
{
	char body[1024];
	int n = snprintf(body, sizeof body, "object=%s\nsop_instance_uid=%s\n"
	    "study_instance_uid=%s\naccession_number=%s\nkind=image\n",
	    col(st, 0), col(st, 1), col(st, 2), col(st, 3));

	if (n < 0 || (size_t)n >= sizeof body)
		return err_set(e, EINVAL, "job for %s too long", col(st, 1));
	return spool_enqueue(relay, col(st, 0), body, (size_t)n, SPOOL_DEFER,
	    e);
}

static int
queue_chosen(sqlite3 *db, struct spool *relay, const char *key, int all,
    struct err *e)
{
	sqlite3_stmt *st;
	int rc, n = 0;

	if (db_prepare(db, &st, "SELECT i.object_hash, i.sop_instance_uid, "
	    "st.study_instance_uid, coalesce(st.accession_number, '')" CHOSEN,
	    e) == -1)
		return -1;
	db_bind_text(st, 1, key);
	sqlite3_bind_int(st, 2, all);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n >= 0)
		n = queue_one(relay, st, e) == -1 ? -1 : n + 1;
	if (n >= 0 && rc != SQLITE_DONE)
		n = sql_err(db, e);
	sqlite3_finalize(st);
	return n;
}

/* The chosen rows PENDING; a KEY's studies no longer released. */
static int
reset_chosen(sqlite3 *db, const char *key, int all, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(db, &st, "UPDATE instances SET upload_status = "
	    "'PENDING', upload_error = NULL, upload_next_attempt_at = NULL, "
	    "upload_attempt_count = 0 WHERE id IN (SELECT i.id" CHOSEN ")",
	    e) == -1)
		return -1;
	db_bind_text(st, 1, key);
	sqlite3_bind_int(st, 2, all);
	rc = db_step_done(db, st, e);
	sqlite3_finalize(st);
	if (rc == 0 && key != NULL && change(db, "UPDATE studies SET "
	    "upload_released_at = NULL WHERE id IN (" KEY_STUDIES ")", key,
	    NULL, e) == -1)
		rc = -1;
	return rc;
}

int
upload_state_queue(sqlite3 *db, struct spool *relay, enum upload_state_which w,
    const char *key, struct err *e)
{
	int all = w == UPLOAD_STATE_STUDY_ALL, n;

	if (w == UPLOAD_STATE_HELD)
		key = NULL;
	else if (key == NULL)
		return err_set(e, EINVAL, "no study named");
	/* The jobs appear (spool_flush) only once the rows say PENDING,
	 * so relaysend never sees a job whose row it would overwrite. */
	if ((n = queue_chosen(db, relay, key, all, e)) > 0 &&
	    (reset_chosen(db, key, all, e) == -1 ||
	    spool_flush(relay, e) == -1))
		n = -1;
	return n;
}

/* ------------------------------------------------ assign and release */

int
upload_state_studies(sqlite3 *db, const char *key, struct err *e)
{
	sqlite3_stmt *st;
	int n = 0, rc;

	if (db_prepare(db, &st, KEY_STUDIES, e) == -1)
		return -1;
	db_bind_text(st, 1, key);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		n++;
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? n : sql_err(db, e);
}

int
upload_state_assign(sqlite3 *db, struct spool *relay, const char *key,
    const char *accession, struct err *e)
{
	if (change(db, "UPDATE studies SET upload_accession_number = ?2 "
	    "WHERE id IN (" KEY_STUDIES ")", key, accession, e) == -1)
		return -1;
	return upload_state_queue(db, relay, UPLOAD_STATE_STUDY_UNSENT, key, e);
}

int
upload_state_release(sqlite3 *db, const char *key, struct err *e)
{
	char now[32];
	int n;

	pacs_timestamp(now);
	if (db_exec(db, "BEGIN IMMEDIATE", e) == -1)
		return -1;
	if (change(db, "UPDATE studies SET upload_released_at = ?2 "
	    "WHERE id IN (" KEY_STUDIES ")", key, now, e) == -1 ||
	    (n = change(db, "UPDATE instances SET upload_status = 'RELEASED', "
	    "upload_error = 'released by hand (gatewayctl release): not sent',"
	    " upload_next_attempt_at = NULL WHERE upload_status NOT IN "
	    "('COMPLETE', 'UPLOADING', 'RELEASED') AND series_ref IN "
	    "(SELECT id FROM series WHERE study_ref IN (" KEY_STUDIES "))",
	    key, NULL, e)) == -1 || db_exec(db, "COMMIT", e) == -1) {
		db_exec(db, "ROLLBACK", NULL);
		return -1;
	}
	return n;
}

/* ---------------------------------------------------------- waiting */

int
upload_state_waiting(sqlite3 *db, int (*fn)(const struct upload_state_study *,
    void *), void *arg, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(db, &st, "SELECT coalesce(st.accession_number, ''), "
	    "st.study_instance_uid, coalesce(p.patient_name, ''), "
	    "coalesce(st.upload_accession_number, ''), min(i.received_at), "
	    "count(*) FROM instances i JOIN series se ON se.id = i.series_ref "
	    "JOIN studies st ON st.id = se.study_ref "
	    "JOIN patients p ON p.id = st.patient_ref "
	    "WHERE i.upload_status = 'UNMATCHED' GROUP BY st.id "
	    "ORDER BY min(i.received_at), st.id", e) == -1)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct upload_state_study s = { col(st, 0), col(st, 1), col(st, 2),
		    col(st, 3), col(st, 4), sqlite3_column_int64(st, 5) };

		if (fn(&s, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sql_err(db, e);
}
