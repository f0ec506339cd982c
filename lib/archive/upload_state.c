/*
 * upload_state: each image's way to the cloud in pacs.db (see
 * archive/archive.h).  The only writer of instances.upload_status,
 * upload_error, upload_attempt_count, upload_next_attempt_at and
 * uploaded_at, and of studies.upload_accession_number and
 * upload_released_at.
 *
 * The states, in the manner of qmail's INTERNALS: what each means, who
 * moves an image there, what may come next, whether dcmpurge frees its
 * store file (UPLOAD_STATE_FREEABLE in archive_int.h says it in SQL) and
 * whether gatewayd status and the health report count it as a problem.
 *
 * PENDING    Queued for the cloud, not tried yet.
 *            By: the row's default when indexed (pacs.c); indexed() when
 *              a HELD or LOCAL row arrives again for the cloud; queue()
 *              (gatewayctl resend, assign, resend --held); retry_failed()
 *              (relaysend --retry-failed).
 *            Next: UPLOADING; UNMATCHED; RELEASED; LOCAL (a job written
 *              before RELAY_UPLOAD_CLASSES said so); REFUSED and FAILED
 *              without a PUT (another image of its study was refused; a
 *              check before the PUT failed).
 *            Purged: no.  Problem: no (its job's age shows in status).
 *            Under RELAY_UPLOAD_POLICY=on_request dcmindex writes no job:
 *            it stays PENDING until images.request asks for it.
 * UPLOADING  A PUT in flight.
 *            By: relaysend (set()), just before the PUT.
 *            Next: COMPLETE, WAITING, FAILED, REFUSED.  After a crash its
 *              job is claimed again and the image sent again.
 *            Purged: no.  Problem: no.
 * WAITING    The last attempt failed transiently (no answer, 401, 408,
 *            429, 502, 503, 504; a 500 until MAX_UPLOAD_RETRIES):
 *            upload_error says why, upload_next_attempt_at when it goes.
 *            By: relaysend (set(), job_defer).
 *            Next: UPLOADING, FAILED (the last 500), RELEASED.
 *            Purged: no.  Problem: no (the job's age and error show).
 * UNMATCHED  No worklist item with a source message id has its accession
 *            number (nor the one assigned): looked for every minute, no
 *            attempt counted.  Listed by gatewayctl waiting.
 *            By: relaysend (set(), job_find_action).
 *            Next: UPLOADING (the item came), PENDING (assign),
 *              RELEASED, FAILED (RELAY_NO_MATCH=report).
 *            Purged: no.  Problem: once it waited STATUS_UNMATCHED_SECONDS (lib/ops).
 * HELD       No job: the cloud was off (no CLOUD_API_ENDPOINT) when it was
 *            indexed, or pacs.db was rebuilt.
 *            By: dcmindex (indexed(); reindexed() for --reindex: every
 *              row whose file is held; purged rows a backup gives back
 *              keep their state, lib/archive/rebuild).
 *            Next: PENDING (resend --held, resend, its arrival again with
 *              the cloud on).
 *            Purged: no.  Problem: yes, once the cloud takes images.
 * LOCAL      Not for the cloud (RELAY_UPLOAD_CLASSES=mammo and not an MG
 *            image: tomosynthesis, SR, SC, …): no upload job and no
 *            study.image_received event; kept for Query/Retrieve.
 *            resend and assign leave it; images.request may still ask.
 *            By: dcmindex (indexed(), reindexed()); relaysend for a job
 *              queued before the setting (keep_local()).
 *            Next: UPLOADING (asked for), PENDING (arrives again under
 *              RELAY_UPLOAD_CLASSES=all).
 *            Purged: by age only (PACS_RETENTION_DAYS): the cloud never
 *              confirms it, so without this it would fill the disk.
 *            Problem: no.
 * FAILED     Given up: a 400, 422 or other 4xx but 401, 403, 408 and 429;
 *            a 500 for the MAX_UPLOAD_RETRIES-th time; or a check before
 *            the PUT (check() below) failed.  upload_error says why; the
 *            job is in failed/; a failure report (PATCH …/failure) goes
 *            once no other image of the study is on its way, since it
 *            makes the cloud refuse the action's later uploads.
 *            By: relaysend (set(), job_park).
 *            Next: PENDING (relaysend --retry-failed, resend, assign).
 *            Purged: no.  Problem: yes (a failed job); one alert per study.
 * REFUSED    The Manage API answered 403 (the worklist item was not
 *            created today, is not SENT or CONFIRMED, or is not this
 *            gateway's), or did for another image of its study: no more
 *            PUTs, the job dropped, upload_error says why.  Listed by
 *            gatewayctl waiting.
 *            By: relaysend (set(), job_refuse).
 *            Next: PENDING (resend, assign), RELEASED.
 *            Purged: no.  Problem: yes; one alert per study.
 * RELEASED   Given up by hand: not sent, kept.
 *            By: gatewayctl release (release()); relaysend for a job of a
 *              released study (set()).
 *            Next: PENDING (resend).
 *            Purged: no.  Problem: no.
 * COMPLETE   The Manage API answered 201; uploaded_at says when.
 *            By: relaysend (set()).
 *            Next: UPLOADING (resend, images.request: the cloud asked).
 *            Purged: yes, past the retention period or below the disk
 *              watermark.  Problem: no.
 *
 * Apart from these states, event_held_at marks an image whose
 * study.image_received event was held back: the relay's events were off
 * when dcmthumb made its preview (lib/cloud/event marks it); gatewayctl
 * resend --held queues it once events are on, and clears the mark.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "archive/archive.h"
#include "archive/archive_int.h"

#define MG_FOR_PRESENTATION	"1.2.840.10008.5.1.4.1.1.1.2"
#define MG_FOR_PROCESSING	"1.2.840.10008.5.1.4.1.1.1.2.1"

#define KEY_STUDIES \
	"SELECT id FROM studies WHERE accession_number = ?1 " \
	"OR study_instance_uid = ?1"

/* The study of the instance ?1. */
#define ITS_STUDY \
	"(SELECT se2.study_ref FROM instances i2 " \
	"JOIN series se2 ON se2.id = i2.series_ref " \
	"WHERE i2.sop_instance_uid = ?1)"

static const char *const names[UPLOAD_NSTATES] = {
	[UPLOAD_PENDING] = "PENDING", [UPLOAD_UPLOADING] = "UPLOADING",
	[UPLOAD_WAITING] = "WAITING", [UPLOAD_UNMATCHED] = "UNMATCHED",
	[UPLOAD_HELD] = "HELD", [UPLOAD_LOCAL] = "LOCAL",
	[UPLOAD_FAILED] = "FAILED", [UPLOAD_REFUSED] = "REFUSED",
	[UPLOAD_RELEASED] = "RELEASED", [UPLOAD_COMPLETE] = "COMPLETE",
};

const char *
upload_state_name(enum upload_state s)
{
	return (unsigned)s < UPLOAD_NSTATES ? names[s] : "PENDING";
}

/* The state named, PENDING for NULL or a name not known. */
static enum upload_state
by_name(const char *name)
{
	for (int i = 0; name != NULL && i < UPLOAD_NSTATES; i++)
		if (strcmp(name, names[i]) == 0)
			return (enum upload_state)i;
	return UPLOAD_PENDING;
}

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

/* Run sql with ?1 = a, ?2 = b, ?3 = c (each may be NULL); the rows it
 * changed, or -1. */
static int
change(sqlite3 *db, const char *sql, const char *a, const char *b,
    const char *c, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(db, &st, sql, e) == -1)
		return -1;
	db_bind_text(st, 1, a);
	db_bind_text(st, 2, b);
	db_bind_text(st, 3, c);
	rc = db_step_done(db, st, e);
	sqlite3_finalize(st);
	return rc == -1 ? -1 : sqlite3_changes(db);
}

/* The first column of sql's first row as an integer (?1 = a, ?2 = b,
 * ?3 = n), 0 when there is no row, or -1. */
static long long
number(sqlite3 *db, const char *sql, const char *a, const char *b, int n,
    struct err *e)
{
	sqlite3_stmt *st;
	long long v = 0;
	int rc;

	if (db_prepare(db, &st, sql, e) == -1)
		return -1;
	db_bind_text(st, 1, a);
	db_bind_text(st, 2, b);
	sqlite3_bind_int(st, 3, n);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? v : sql_err(db, e);
}

/* ----------------------------------------------------------- classes */

int
upload_state_classes(enum upload_classes *out, struct err *e)
{
	int i;

	if (config_choice("RELAY_UPLOAD_CLASSES", &i, e) == -1)
		return -1;
	*out = i == 0 ? UPLOAD_CLASSES_MAMMO : UPLOAD_CLASSES_ALL;
	return 0;
}

const char *
upload_state_classes_name(enum upload_classes c)
{
	return c == UPLOAD_CLASSES_ALL ? "all" : "mammo";
}

int
upload_state_for_cloud(enum upload_classes c, const char *sop_class_uid)
{
	return c == UPLOAD_CLASSES_ALL ||
	    strcmp(sop_class_uid, MG_FOR_PRESENTATION) == 0 ||
	    strcmp(sop_class_uid, MG_FOR_PROCESSING) == 0;
}

/* ----------------------------------------------------------- writers */

int
upload_state_indexed(sqlite3 *db, const char *sop, const char *hash,
    const char *sop_class_uid, enum upload_classes c, int cloud,
    struct err *e)
{
	enum upload_state s = !upload_state_for_cloud(c, sop_class_uid) ?
	    UPLOAD_LOCAL : cloud ? UPLOAD_PENDING : UPLOAD_HELD;
	const char *sql = s == UPLOAD_PENDING ?
	    "UPDATE instances SET upload_status = ?3, upload_error = NULL, "
	    "upload_next_attempt_at = NULL WHERE sop_instance_uid = ?1 AND "
	    "object_hash = ?2 AND upload_status IN ('HELD', 'LOCAL')" :
	    "UPDATE instances SET upload_status = ?3 WHERE "
	    "sop_instance_uid = ?1 AND object_hash = ?2 AND "
	    "upload_status <> 'COMPLETE'";

	return change(db, sql, sop, hash, names[s], e) == -1 ? -1 : (int)s;
}

int
upload_state_reindexed(sqlite3 *db, enum upload_classes c, struct err *e)
{
	return change(db, "UPDATE instances SET upload_status = CASE "
	    "WHEN ?1 = 'all' OR sop_class_uid IN (?2, ?3) THEN 'HELD' "
	    "ELSE 'LOCAL' END WHERE purged_at IS NULL",
	    upload_state_classes_name(c),
	    MG_FOR_PRESENTATION, MG_FOR_PROCESSING, e) == -1 ? -1 : 0;
}

/* Is another image of the instance ?1's study in state ?2 (or, with ?3,
 * PENDING too)?  See upload_state_study_has and _busy. */
#define OTHER_IN_STUDY(cond) \
	"SELECT EXISTS (SELECT 1 FROM instances i " \
	"JOIN series se ON se.id = i.series_ref " \
	"WHERE se.study_ref = " ITS_STUDY " AND i.sop_instance_uid <> ?1 " \
	"AND (" cond "))"

int
upload_state_study_has(sqlite3 *db, const char *sop, enum upload_state s,
    struct err *e)
{
	return (int)number(db, OTHER_IN_STUDY("i.upload_status = ?2"), sop,
	    upload_state_name(s), 0, e);
}

int
upload_state_study_busy(sqlite3 *db, const char *sop, int pending_queued,
    struct err *e)
{
	return (int)number(db, OTHER_IN_STUDY("i.upload_status IN "
	    "('UPLOADING', 'WAITING') OR (?3 AND i.upload_status = "
	    "'PENDING')"), sop, NULL, pending_queued, e);
}

int
upload_state_set(sqlite3 *db, const char *sop, enum upload_state s,
    int attempts, const char *error, long long next_ms, struct err *e)
{
	static const char sql[] =
	    "UPDATE instances SET upload_status = ?1, "
	    "upload_attempt_count = ?2, upload_error = ?3, "
	    "upload_next_attempt_at = ?4, "
	    "uploaded_at = CASE WHEN ?1 = 'COMPLETE' THEN ?5 "
	    "ELSE uploaded_at END WHERE sop_instance_uid = ?6";
	char next[40] = "", now[32];
	sqlite3_stmt *st = NULL;
	int had, rc = -1;

	if (next_ms > 0) {
		struct timespec at = { (time_t)(next_ms / 1000),
		    (long)(next_ms % 1000) * 1000000 };

		pacs_timestamp_at(&at, next);
	}
	pacs_timestamp(now);
	if (db_exec(db, "BEGIN IMMEDIATE", e) == -1)
		return -1;
	if ((had = upload_state_study_has(db, sop, s, e)) == -1 ||
	    db_prepare(db, &st, sql, e) == -1)
		goto out;
	sqlite3_bind_text(st, 1, upload_state_name(s), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, attempts);
	db_bind_text(st, 3, error);
	db_bind_text(st, 4, next);
	sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, sop, -1, SQLITE_STATIC);
	if (db_step_done(db, st, e) == -1)
		goto out;
	rc = sqlite3_changes(db) > 0 && !had;
	if (db_exec(db, "COMMIT", e) == -1)
		rc = -1;
out:
	sqlite3_finalize(st);
	if (rc == -1)
		db_exec(db, "ROLLBACK", NULL);
	return rc;
}

int
upload_state_keep_local(sqlite3 *db, const char *sop, enum upload_classes c,
    struct err *e)
{
	sqlite3_stmt *st;
	int rc, local = 0;

	if (db_prepare(db, &st, "SELECT sop_class_uid FROM instances WHERE "
	    "sop_instance_uid = ?1", e) == -1)
		return -1;
	sqlite3_bind_text(st, 1, sop, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		local = !upload_state_for_cloud(c, col(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_err(db, e);
	if (!local)
		return 0;
	return change(db, "UPDATE instances SET upload_status = 'LOCAL', "
	    "upload_error = NULL, upload_next_attempt_at = NULL "
	    "WHERE sop_instance_uid = ?1", sop, NULL, NULL, e) == -1 ? -1 : 1;
}

int
upload_state_retry_failed(sqlite3 *db, struct err *e)
{
	return change(db, "UPDATE instances SET upload_status = 'PENDING', "
	    "upload_next_attempt_at = NULL WHERE upload_status = 'FAILED'",
	    NULL, NULL, NULL, e);
}

/* ------------------------------------------------------------ queue */

/* ?1 the KEY (NULL for every HELD row), ?2 1: COMPLETE ones too. */
#define CHOSEN \
	" FROM instances i JOIN series se ON se.id = i.series_ref" \
	" JOIN studies st ON st.id = se.study_ref" \
	" WHERE i.purged_at IS NULL AND CASE WHEN ?1 IS NULL" \
	"  THEN i.upload_status = 'HELD'" \
	"  ELSE (st.accession_number = ?1 OR st.study_instance_uid = ?1)" \
	"   AND i.upload_status <> 'LOCAL'" \
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
	    NULL, NULL, e) == -1)
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
	return (int)number(db, "SELECT count(*) FROM (" KEY_STUDIES ")", key,
	    NULL, 0, e);
}

int
upload_state_assign(sqlite3 *db, struct spool *relay, const char *key,
    const char *accession, struct err *e)
{
	if (change(db, "UPDATE studies SET upload_accession_number = ?2 "
	    "WHERE id IN (" KEY_STUDIES ")", key, accession, NULL, e) == -1)
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
	    "WHERE id IN (" KEY_STUDIES ")", key, now, NULL, e) == -1 ||
	    (n = change(db, "UPDATE instances SET upload_status = 'RELEASED', "
	    "upload_error = 'released by hand (gatewayctl release): not sent',"
	    " upload_next_attempt_at = NULL WHERE upload_status NOT IN "
	    "('COMPLETE', 'UPLOADING', 'RELEASED', 'LOCAL') AND series_ref IN "
	    "(SELECT id FROM series WHERE study_ref IN (" KEY_STUDIES "))",
	    key, NULL, NULL, e)) == -1 || db_exec(db, "COMMIT", e) == -1) {
		db_exec(db, "ROLLBACK", NULL);
		return -1;
	}
	return n;
}

/* ------------------------------------------------------ held events */

int
upload_state_event_held(sqlite3 *db, const char *sop, const char *hash,
    struct err *e)
{
	char now[32];

	pacs_timestamp(now);
	return change(db, "UPDATE instances SET event_held_at = ?3 WHERE "
	    "sop_instance_uid = ?1 AND object_hash = ?2 AND upload_status <> "
	    "'LOCAL'", sop, hash, now, e);
}

int
upload_state_events_held(sqlite3 *db,
    int (*fn)(const struct upload_state_event *, void *), void *arg,
    struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(db, &st, "SELECT i.id, i.object_hash, "
	    "i.sop_instance_uid, st.study_instance_uid, "
	    "coalesce(st.accession_number, ''), i.thumbnail_status, "
	    "coalesce(i.thumbnail_path, ''), coalesce(i.thumbnail_width, 0), "
	    "coalesce(i.thumbnail_height, 0) FROM instances i "
	    "JOIN series se ON se.id = i.series_ref "
	    "JOIN studies st ON st.id = se.study_ref "
	    "WHERE i.event_held_at IS NOT NULL AND i.upload_status <> 'LOCAL' "
	    "ORDER BY i.event_held_at, i.id", e) == -1)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct upload_state_event ev = { sqlite3_column_int64(st, 0),
		    col(st, 1), col(st, 2), col(st, 3), col(st, 4), col(st, 5),
		    col(st, 6), sqlite3_column_int(st, 7),
		    sqlite3_column_int(st, 8) };

		if (fn(&ev, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sql_err(db, e);
}

int
upload_state_events_sent(sqlite3 *db, const long long *ids, size_t n,
    struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (n == 0)
		return 0;
	if (db_exec(db, "BEGIN IMMEDIATE", e) == -1)
		return -1;
	if (db_prepare(db, &st, "UPDATE instances SET event_held_at = NULL "
	    "WHERE id = ?1", e) == -1)
		rc = -1;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		rc = db_step_done(db, st, e);
	}
	sqlite3_finalize(st);
	if (rc == 0 && db_exec(db, "COMMIT", e) == 0)
		return (int)n;
	db_exec(db, "ROLLBACK", NULL);
	return -1;
}

/* ----------------------------------------------------------- readers */

static long long *
counter(struct upload_state_count *c, enum upload_state s)
{
	long long *const by[UPLOAD_NSTATES] = {
		[UPLOAD_PENDING] = &c->pending,
		[UPLOAD_UPLOADING] = &c->uploading,
		[UPLOAD_WAITING] = &c->waiting,
		[UPLOAD_UNMATCHED] = &c->unmatched, [UPLOAD_HELD] = &c->held,
		[UPLOAD_LOCAL] = &c->local, [UPLOAD_FAILED] = &c->failed,
		[UPLOAD_REFUSED] = &c->refused,
		[UPLOAD_RELEASED] = &c->released,
		[UPLOAD_COMPLETE] = &c->complete,
	};

	return by[s];
}

/* Instances per state: every one (key NULL: instances_unsent, schema
 * v8, holds every row not COMPLETE, and COMPLETE is what is left) or the
 * KEY's studies'. */
static int
per_state(sqlite3 *db, const char *key, struct upload_state_count *c,
    struct err *e)
{
	sqlite3_stmt *st;
	long long counted = 0;
	int rc;

	if (db_prepare(db, &st, key == NULL ?
	    "SELECT upload_status, count(*) FROM instances "
	    "WHERE upload_status <> 'COMPLETE' GROUP BY 1" :
	    "SELECT i.upload_status, count(*) FROM instances i "
	    "JOIN series se ON se.id = i.series_ref "
	    "WHERE se.study_ref IN (" KEY_STUDIES ") GROUP BY 1", e) == -1)
		return -1;
	db_bind_text(st, 1, key);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		long long n = sqlite3_column_int64(st, 1);

		counted += n;
		*counter(c, by_name(col(st, 0))) += n;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_err(db, e);
	if (key != NULL) {
		c->total = counted;
		return 0;
	}
	if ((c->total = number(db, "SELECT count(*) FROM instances", NULL,
	    NULL, 0, e)) == -1)
		return -1;
	c->complete = c->total - counted;
	return 0;
}

int
upload_state_count(sqlite3 *db, const char *key,
    struct upload_state_count *c, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	memset(c, 0, sizeof *c);
	if (per_state(db, key, c, e) == -1)
		return -1;
	if (key != NULL)
		return 0;
	if (db_prepare(db, &st, "SELECT "
	    "(SELECT count(DISTINCT se.study_ref) FROM instances i "
	    " JOIN series se ON se.id = i.series_ref "
	    " WHERE i.upload_status = 'UNMATCHED'), "
	    "(SELECT coalesce(min(received_at), '') FROM instances "
	    " WHERE upload_status = 'UNMATCHED'), "
	    "(SELECT count(DISTINCT se.study_ref) FROM instances i "
	    " JOIN series se ON se.id = i.series_ref "
	    " WHERE i.upload_status = 'REFUSED'), "
	    "(SELECT coalesce(max(uploaded_at), '') FROM instances), "
	    "(SELECT upload_error FROM instances WHERE upload_status IN "
	    " ('FAILED', 'WAITING') AND upload_error IS NOT NULL "
	    " ORDER BY id DESC LIMIT 1), "
	    "(SELECT count(*) FROM instances WHERE event_held_at IS NOT NULL "
	    " AND upload_status <> 'LOCAL')", e) == -1)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		c->unmatched_studies = sqlite3_column_int64(st, 0);
		snprintf(c->oldest_unmatched, sizeof c->oldest_unmatched, "%s",
		    col(st, 1));
		c->refused_studies = sqlite3_column_int64(st, 2);
		snprintf(c->last_upload, sizeof c->last_upload, "%s",
		    col(st, 3));
		snprintf(c->last_error, sizeof c->last_error, "%s",
		    col(st, 4));
		c->events_held = sqlite3_column_int64(st, 5);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : sql_err(db, e);
}

int
upload_state_get(sqlite3 *db, const char *sop, enum upload_state *s,
    struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(db, &st, "SELECT upload_status FROM instances "
	    "WHERE sop_instance_uid = ?1", e) == -1)
		return -1;
	sqlite3_bind_text(st, 1, sop, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*s = by_name((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_err(db, e);
	return rc == SQLITE_ROW ? 0 : 1;
}

int
upload_state_by_hand(sqlite3 *db, const char *sop, char *acc, size_t accsz,
    int *released, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	acc[0] = '\0';
	*released = 0;
	if (db_prepare(db, &st, "SELECT coalesce(st.upload_accession_number, "
	    "''), st.upload_released_at IS NOT NULL FROM instances i "
	    "JOIN series se ON se.id = i.series_ref "
	    "JOIN studies st ON st.id = se.study_ref "
	    "WHERE i.sop_instance_uid = ?1", e) == -1)
		return -1;
	sqlite3_bind_text(st, 1, sop, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		snprintf(acc, accsz, "%s", col(st, 0));
		*released = sqlite3_column_int(st, 1);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sql_err(db, e);
}

/* ----------------------------------------------------------- checks */

/*
 * The series' first image for the cloud: the first it has (COMPLETE, by
 * uploaded_at), else the first received with laterality and view.
 * LOCAL images never go, so they are no reference.
 */
#define SERIES_FIRST \
	"SELECT coalesce(laterality, ''), coalesce(view_position, '') " \
	"FROM instances WHERE series_ref = ?1 AND upload_status <> 'LOCAL' " \
	"AND (upload_status = 'COMPLETE' OR (coalesce(laterality, '') <> '' " \
	"AND coalesce(view_position, '') <> '')) " \
	"ORDER BY upload_status = 'COMPLETE' DESC, " \
	"CASE WHEN upload_status = 'COMPLETE' THEN uploaded_at END, " \
	"received_at, id LIMIT 1"

/* The reference for series ser into lat and view; 0 none, 1 found. */
static int
series_first(sqlite3 *db, sqlite3_int64 ser, char *lat, char *view,
    size_t sz, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(db, &st, SERIES_FIRST, e) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, ser);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		snprintf(lat, sz, "%s", col(st, 0));
		snprintf(view, sz, "%s", col(st, 1));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_err(db, e);
	return rc == SQLITE_ROW;
}

int
upload_state_check(sqlite3 *db, const char *sop, char *why, size_t whysz,
    struct err *e)
{
	char lat[PACS_LO], view[PACS_LO], rlat[PACS_LO], rview[PACS_LO];
	sqlite3_int64 ser = 0;
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(db, &st, "SELECT coalesce(laterality, ''), "
	    "coalesce(view_position, ''), series_ref FROM instances "
	    "WHERE sop_instance_uid = ?1", e) == -1)
		return -1;
	sqlite3_bind_text(st, 1, sop, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		snprintf(lat, sizeof lat, "%s", col(st, 0));
		snprintf(view, sizeof view, "%s", col(st, 1));
		ser = sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return 0;	/* not indexed: nothing to check against */
	if (rc != SQLITE_ROW)
		return sql_err(db, e);
	if (lat[0] == '\0' || view[0] == '\0') {
		snprintf(why, whysz, "not sent: %s missing (the cloud reads "
		    "it)", lat[0] == '\0' && view[0] == '\0' ? "ImageLaterality "
		    "and ViewPosition are" : lat[0] == '\0' ?
		    "ImageLaterality is" : "ViewPosition is");
		return 1;
	}
	if ((rc = series_first(db, ser, rlat, rview, sizeof rlat, e)) <= 0)
		return rc;
	if (strcmp(lat, rlat) == 0 && strcmp(view, rview) == 0)
		return 0;
	snprintf(why, whysz, "not sent: laterality and view %s %s differ "
	    "from the series' first image (%s %s): the Manage API refuses "
	    "such an image (500)", lat, view, rlat, rview);
	return 1;
}

/* ---------------------------------------------------------- waiting */

int
upload_state_waiting(sqlite3 *db, enum upload_state s,
    int (*fn)(const struct upload_state_study *, void *), void *arg,
    struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(db, &st, "SELECT coalesce(st.accession_number, ''), "
	    "st.study_instance_uid, coalesce(p.patient_name, ''), "
	    "coalesce(st.upload_accession_number, ''), min(i.received_at), "
	    "count(*), (SELECT i3.upload_error FROM instances i3 "
	    " JOIN series se3 ON se3.id = i3.series_ref "
	    " WHERE se3.study_ref = st.id AND i3.upload_status = ?1 "
	    " ORDER BY i3.upload_error LIKE 'HTTP %' DESC, i3.id DESC LIMIT 1) "
	    "FROM instances i JOIN series se ON se.id = i.series_ref "
	    "JOIN studies st ON st.id = se.study_ref "
	    "JOIN patients p ON p.id = st.patient_ref "
	    "WHERE i.upload_status = ?1 GROUP BY st.id "
	    "ORDER BY min(i.received_at), st.id", e) == -1)
		return -1;
	sqlite3_bind_text(st, 1, upload_state_name(s), -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct upload_state_study u = { col(st, 0), col(st, 1),
		    col(st, 2), col(st, 3), col(st, 4),
		    sqlite3_column_int64(st, 5), col(st, 6) };

		if (fn(&u, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sql_err(db, e);
}
