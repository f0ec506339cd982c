/*
 * qr_commit: Storage Commitment Push Model (PS3.4 annex J).
 *
 * An N-ACTION (action type 1) names a Transaction UID and the (SOP class,
 * SOP instance) pairs to commit.  The request is written to pacs.db
 * (commitment_requests, commitment_items) before the N-ACTION-RSP says
 * success, so a SIGKILL after the answer loses nothing.  The
 * N-EVENT-REPORT then goes on the same association when the requester is
 * still there, else on a new one (qr_commit_resume, the requester's
 * address from QR_DESTINATIONS), retried with back-off until it is
 * answered.
 *
 * "Committed" is decided when the report is built, never earlier: the
 * instance is indexed (storescp-hook fsyncs an object before it queues the
 * index job, so indexed implies durable), with the SOP class asked for,
 * and its current object is in the store and hashes to its name now.
 * Anything else fails: 0112 (not indexed, purged by retention, or its file
 * is gone), 0119 (the SOP class differs), 0110 (the file's bytes changed,
 * or cannot be read), 0131 (a reused Transaction UID; see sql/pacs.sql).
 *
 * The verification holds run/store.lock shared, as a retrieval does:
 * dcmpurge takes it exclusively around marking and unlinking a batch, so
 * a purge that chose an object before the request was recorded cannot
 * free it between "verified" and the report; one that starts later sees
 * the request pending (it stays so until the report is delivered) and
 * keeps its instances.
 *
 * Each request is claimed by one process at a time (the association that
 * received it, or one resumer), in a transaction, so a report is never
 * sent twice at once; a claim whose process died is taken over.
 */
#include "qr/qr.h"
#include "dicomnet/dicomnet.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"

#define COMMIT_MAX_ITEMS	10000	/* references in one request */
#define COMMIT_BATCH		16	/* requests a resumer claims at once */
#define COMMIT_CLAIM_SECONDS	900	/* a claim's ceiling if its pid lives */
#define COMMIT_ACTION_REQUEST	1	/* N-ACTION: Request Storage Commit. */
#define COMMIT_EVENT_SUCCESS	1	/* N-EVENT-REPORT: all committed */
#define COMMIT_EVENT_FAILURES	2	/* N-EVENT-REPORT: some failed */

#define TAG_RETRIEVE_AET	DCM_TAG(0x0008, 0x0054)
#define TAG_REF_SOP_CLASS	DCM_TAG(0x0008, 0x1150)
#define TAG_REF_SOP_INSTANCE	DCM_TAG(0x0008, 0x1155)
#define TAG_TRANSACTION_UID	DCM_TAG(0x0008, 0x1195)
#define TAG_FAILURE_REASON	DCM_TAG(0x0008, 0x1197)
#define TAG_FAILED_SOP_SEQ	DCM_TAG(0x0008, 0x1198)
#define TAG_REF_SOP_SEQ		DCM_TAG(0x0008, 0x1199)

/* Failure Reason (0008,1197) values, PS3.3 C.14.1.1. */
#define REASON_PROCESSING	0x0110
#define REASON_NO_SUCH_OBJECT	0x0112
#define REASON_CLASS_CONFLICT	0x0119
#define REASON_DUPLICATE_UID	0x0131

/* N-ACTION-RSP statuses, PS3.4 J.3.2 and PS3.7 10.1.4.1.10. */
#define STATUS_INVALID_ARGUMENT	0x0115
#define STATUS_INVALID_OBJECT	0x0117
#define STATUS_NO_SUCH_ACTION	0x0123
#define STATUS_RESOURCE_LIMIT	0x0213

static const char *const commit_ts[] = {
	DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE, NULL
};

struct commit_item {
	char sop_class[DIMSE_UID_MAX];
	char sop_instance[DIMSE_UID_MAX];
	uint16_t reason;		/* 0: committed */
};

struct commit_request {
	long long id;
	char transaction_uid[DIMSE_UID_MAX];
	char calling_aet[UL_AE_MAX];
	char called_aet[UL_AE_MAX];
	int duplicate;			/* a reused Transaction UID */
	int repeat;			/* the same request sent again */
	long attempts;
	struct commit_item *items;
	size_t nitems;
	size_t committed;		/* after evaluate() */
};

/* Settings read from the environment (see qrscp(8)). */
struct commit_settings {
	long delay_ms;			/* QR_COMMIT_REPORT_DELAY_MS */
	long retry_s;			/* QR_COMMIT_RETRY_SECONDS */
	long retry_max_s;		/* QR_COMMIT_RETRY_MAX_SECONDS */
};

static int
commit_settings(struct commit_settings *cs, struct err *e)
{
	if (config_long("QR_COMMIT_REPORT_DELAY_MS", &cs->delay_ms, e) == -1 ||
	    config_long("QR_COMMIT_RETRY_SECONDS", &cs->retry_s, e) == -1 ||
	    config_long("QR_COMMIT_RETRY_MAX_SECONDS", &cs->retry_max_s, e) == -1)
		return -1;
	return 0;
}

static void
request_free(struct commit_request *r)
{
	free(r->items);
	r->items = NULL;
	r->nitems = 0;
}

static const char *
q(const char *s, char *buf, unsigned sz)
{
	return log_quote(s, buf, sz);
}

/* --- the N-ACTION's data set --- */

/* A UID of 1 to 64 characters at tag in item into out; else why. */
static int
get_uid(const struct dcm *d, const struct dcm_item *it, uint32_t tag,
    char out[DIMSE_UID_MAX], const char *name, char *why, size_t whysz)
{
	char buf[PACS_UI];
	int n;

	n = dcm_get_string(d, it, tag, 0, buf, sizeof buf, NULL);
	if (n <= 0) {
		snprintf(why, whysz, "%s %s", n == 0 ? "empty" : "no", name);
		return -1;
	}
	if (n >= DIMSE_UID_MAX) {
		snprintf(why, whysz, "%s longer than 64 characters", name);
		return -1;
	}
	memcpy(out, buf, (size_t)n + 1);
	return 0;
}

/* The Referenced SOP Sequence's items into r->items. */
static uint16_t
parse_items(const struct dcm *d, struct commit_request *r, char *why,
    size_t whysz)
{
	const struct dcm_elem *sq;
	const struct dcm_item *it;
	size_t i, n;

	sq = dcm_find(d, NULL, TAG_REF_SOP_SEQ);
	if (sq == NULL || strcmp(sq->vr, "SQ") != 0) {
		snprintf(why, whysz, "no Referenced SOP Sequence");
		return STATUS_INVALID_ARGUMENT;
	}
	if ((n = dcm_item_count(d, sq)) == 0) {
		snprintf(why, whysz, "empty Referenced SOP Sequence");
		return STATUS_INVALID_ARGUMENT;
	}
	if (n > COMMIT_MAX_ITEMS) {
		snprintf(why, whysz, "more than %d references",
		    COMMIT_MAX_ITEMS);
		return STATUS_RESOURCE_LIMIT;
	}
	if ((r->items = calloc(n, sizeof *r->items)) == NULL) {
		snprintf(why, whysz, "out of memory");
		return STATUS_RESOURCE_LIMIT;
	}
	for (i = 0; i < n; i++) {
		it = dcm_item_at(d, sq, i);
		if (get_uid(d, it, TAG_REF_SOP_CLASS, r->items[i].sop_class,
		    "Referenced SOP Class UID", why, whysz) == -1 ||
		    get_uid(d, it, TAG_REF_SOP_INSTANCE,
		    r->items[i].sop_instance, "Referenced SOP Instance UID",
		    why, whysz) == -1) {
			size_t l = strlen(why);

			snprintf(why + l, whysz - l, " in item %zu", i + 1);
			return STATUS_INVALID_ARGUMENT;
		}
	}
	r->nitems = n;
	return DIMSE_SUCCESS;
}

/* Check and read an N-ACTION: DIMSE_SUCCESS, or the status to refuse it
 * with and why. */
static uint16_t
parse_request(struct qr_session *x, const struct dimse_msg *m,
    struct commit_request *r, char *why, size_t whysz)
{
	const struct ul_context *c = ul_context(x->s->a, m->ctx_id);
	struct dcm *d = NULL;
	struct err e = { 0 };
	uint16_t st;

	if (m->cmd.action_type_id != COMMIT_ACTION_REQUEST) {
		snprintf(why, whysz, "no such action type %u",
		    m->cmd.action_type_id);
		return STATUS_NO_SUCH_ACTION;
	}
	if (strcmp(m->cmd.requested_sop_instance, QR_COMMITMENT_INSTANCE)) {
		snprintf(why, whysz, "requested SOP instance is not %s",
		    QR_COMMITMENT_INSTANCE);
		return STATUS_INVALID_OBJECT;
	}
	if (m->data == NULL) {
		snprintf(why, whysz, "no action information");
		return STATUS_INVALID_ARGUMENT;
	}
	if (dcm_parse_dataset(m->data, m->datalen, c != NULL ?
	    c->transfer_syntax : DCM_TS_IMPLICIT_LE, 0, &d, &e) == -1) {
		snprintf(why, whysz, "bad data set: %s", e.msg);
		return STATUS_INVALID_ARGUMENT;
	}
	st = STATUS_INVALID_ARGUMENT;
	if (get_uid(d, NULL, TAG_TRANSACTION_UID, r->transaction_uid,
	    "Transaction UID", why, whysz) == 0)
		st = parse_items(d, r, why, whysz);
	dcm_free(d);
	return st;
}

/* --- pacs.db --- */

static int
rollback(sqlite3 *db)
{
	db_exec(db, "ROLLBACK", NULL);
	return -1;
}

static int
step_error(sqlite3 *db, struct err *e, const char *what)
{
	return err_set(e, db_errno(db), "sqlite: %s: %s", what,
	    sqlite3_errmsg(db));
}

/* The references recorded for request id, in order, into r. */
static int
load_items(sqlite3 *db, struct commit_request *r, struct err *e)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc;

	request_free(r);
	if (db_prepare(db, &st, "SELECT sop_class_uid, sop_instance_uid "
	    "FROM commitment_items WHERE request_ref = ? ORDER BY seq",
	    e) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, r->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (r->nitems == cap) {
			struct commit_item *n;

			cap = cap ? 2 * cap : 16;
			if ((n = realloc(r->items, cap * sizeof *n)) == NULL) {
				sqlite3_finalize(st);
				return err_set(e, ENOMEM, "out of memory");
			}
			r->items = n;
		}
		memset(&r->items[r->nitems], 0, sizeof r->items[0]);
		snprintf(r->items[r->nitems].sop_class, DIMSE_UID_MAX, "%s",
		    (const char *)sqlite3_column_text(st, 0));
		snprintf(r->items[r->nitems].sop_instance, DIMSE_UID_MAX, "%s",
		    (const char *)sqlite3_column_text(st, 1));
		r->nitems++;
	}
	if (rc != SQLITE_DONE)
		step_error(db, e, "commitment items");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* 1 when the earlier request old has the same references as r. */
static int
same_items(sqlite3 *db, long long old, const struct commit_request *r,
    struct err *e)
{
	struct commit_request o = { 0 };
	size_t i;
	int same;

	o.id = old;
	if (load_items(db, &o, e) == -1)
		return -1;
	same = o.nitems == r->nitems;
	for (i = 0; same && i < r->nitems; i++)
		same = strcmp(o.items[i].sop_class, r->items[i].sop_class) ==
		    0 && strcmp(o.items[i].sop_instance,
		    r->items[i].sop_instance) == 0;
	request_free(&o);
	return same;
}

/* A claim is held when its process lives and its time has not run out. */
static int
claim_held(sqlite3_stmt *st, int pid_col, time_t now)
{
	pid_t pid;

	if (sqlite3_column_type(st, pid_col) == SQLITE_NULL)
		return 0;
	pid = (pid_t)sqlite3_column_int64(st, pid_col);
	if (sqlite3_column_int64(st, pid_col + 1) < (sqlite3_int64)now)
		return 0;
	return pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH;
}

/*
 * The request sent again (same Transaction UID, same AE, same references):
 * make it pending again and claim it unless another live process holds
 * it.  1 claimed, 0 left to its holder, -1 error.
 */
static int
renew(sqlite3 *db, long long id, time_t until, struct err *e)
{
	sqlite3_stmt *st;
	int held;

	if (db_prepare(db, &st, "SELECT claimed_by, claimed_until FROM "
	    "commitment_requests WHERE id = ? AND state = 'PENDING'",
	    e) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	held = sqlite3_step(st) == SQLITE_ROW && claim_held(st, 0, time(NULL));
	sqlite3_finalize(st);
	if (held)
		return 0;
	if (db_prepare(db, &st, "UPDATE commitment_requests SET "
	    "state = 'PENDING', claimed_by = ?, claimed_until = ?, "
	    "next_attempt_at = 0 WHERE id = ?", e) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, getpid());
	sqlite3_bind_int64(st, 2, until);
	sqlite3_bind_int64(st, 3, id);
	if (db_step_done(db, st, e) == -1) {
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 1;
}

/* The first request with r's Transaction UID: its id and calling AE. */
static int
find_earlier(sqlite3 *db, const struct commit_request *r, long long *id,
    char aet[UL_AE_MAX], struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	*id = 0;
	if (db_prepare(db, &st, "SELECT id, calling_aet FROM "
	    "commitment_requests WHERE transaction_uid = ? AND duplicate_of "
	    "IS NULL ORDER BY id LIMIT 1", e) == -1)
		return -1;
	sqlite3_bind_text(st, 1, r->transaction_uid, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		snprintf(aet, UL_AE_MAX, "%s",
		    (const char *)sqlite3_column_text(st, 1));
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		step_error(db, e, "commitment requests");
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int
insert_items(sqlite3 *db, const struct commit_request *r, struct err *e)
{
	sqlite3_stmt *st;
	size_t i;
	int rc = 0;

	if (db_prepare(db, &st, "INSERT INTO commitment_items (request_ref, "
	    "seq, sop_class_uid, sop_instance_uid) VALUES (?, ?, ?, ?)",
	    e) == -1)
		return -1;
	for (i = 0; rc == 0 && i < r->nitems; i++) {
		sqlite3_bind_int64(st, 1, r->id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
		sqlite3_bind_text(st, 3, r->items[i].sop_class, -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(st, 4, r->items[i].sop_instance, -1,
		    SQLITE_STATIC);
		rc = db_step_done(db, st, e);
	}
	sqlite3_finalize(st);
	return rc;
}

static int
insert_request(sqlite3 *db, struct commit_request *r, const char *peer,
    long long duplicate_of, time_t until, struct err *e)
{
	sqlite3_stmt *st;
	char now[32];

	pacs_timestamp(now);
	if (db_prepare(db, &st, "INSERT INTO commitment_requests "
	    "(transaction_uid, calling_aet, called_aet, peer_address, "
	    "received_at, duplicate_of, claimed_by, claimed_until) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", e) == -1)
		return -1;
	sqlite3_bind_text(st, 1, r->transaction_uid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->calling_aet, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->called_aet, -1, SQLITE_STATIC);
	db_bind_text(st, 4, peer);
	sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
	if (duplicate_of > 0)
		sqlite3_bind_int64(st, 6, duplicate_of);
	sqlite3_bind_int64(st, 7, getpid());
	sqlite3_bind_int64(st, 8, until);
	if (db_step_done(db, st, e) == -1) {
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	r->id = sqlite3_last_insert_rowid(db);
	r->duplicate = duplicate_of > 0;
	return insert_items(db, r, e);
}

/*
 * Record r durably, claimed by this process until `until`.  Returns 1
 * (recorded and ours to report), 0 (the same request sent again while
 * another process is reporting it), -1 on error (nothing recorded).
 */
static int
persist(sqlite3 *db, struct commit_request *r, const char *peer,
    time_t until, struct err *e)
{
	char aet[UL_AE_MAX] = "";
	long long old;
	int rc, same = 0;

	if (db_exec(db, "BEGIN IMMEDIATE", e) == -1)
		return -1;
	if (find_earlier(db, r, &old, aet, e) == -1)
		return rollback(db);
	if (old > 0 && strcmp(aet, r->calling_aet) == 0 &&
	    (same = same_items(db, old, r, e)) == -1)
		return rollback(db);
	if (same) {
		r->id = old;
		r->repeat = 1;
		rc = renew(db, old, until, e);
	} else
		rc = insert_request(db, r, peer, old, until, e) == -1 ? -1 : 1;
	if (rc == -1 || db_exec(db, "COMMIT", e) == -1)
		return rollback(db);
	return rc;
}

static int
report_event(const struct commit_request *r)
{
	return r->committed == r->nitems ? COMMIT_EVENT_SUCCESS :
	    COMMIT_EVENT_FAILURES;
}

/* The report was delivered: record what it said, drop the claim. */
static int
mark_reported(sqlite3 *db, const struct commit_request *r, int attempted,
    struct err *e)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	size_t i;
	int rc = 0;

	pacs_timestamp(now);
	if (db_exec(db, "BEGIN IMMEDIATE", e) == -1)
		return -1;
	if (db_prepare(db, &st, "UPDATE commitment_items SET "
	    "failure_reason = ? WHERE request_ref = ? AND seq = ?", e) == -1)
		return rollback(db);
	for (i = 0; rc == 0 && i < r->nitems; i++) {
		if (r->items[i].reason)
			sqlite3_bind_int(st, 1, r->items[i].reason);
		else
			sqlite3_bind_null(st, 1);
		sqlite3_bind_int64(st, 2, r->id);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)i);
		rc = db_step_done(db, st, e);
	}
	sqlite3_finalize(st);
	if (rc == -1 || db_prepare(db, &st, "UPDATE commitment_requests SET "
	    "state = 'REPORTED', event_type = ?, reported_at = ?, "
	    "attempts = attempts + ?, claimed_by = NULL, "
	    "claimed_until = NULL, last_error = NULL WHERE id = ?", e) == -1)
		return rollback(db);
	sqlite3_bind_int(st, 1, report_event(r));
	sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, attempted);
	sqlite3_bind_int64(st, 4, r->id);
	rc = db_step_done(db, st, e);
	sqlite3_finalize(st);
	if (rc == -1 || db_exec(db, "COMMIT", e) == -1)
		return rollback(db);
	return 0;
}

/*
 * Not delivered: drop the claim and say when to try again.  attempted is
 * 1 when a report was tried (it counts, and backs off), 0 when it was
 * only left for a new association (due at once).
 */
static void
release(sqlite3 *db, const struct commit_request *r, int attempted,
    const char *error, const struct commit_settings *cs)
{
	sqlite3_stmt *st;
	struct err e = { 0 };
	long delay = 0;
	int i;

	if (attempted) {
		delay = cs->retry_s;
		for (i = 1; i < r->attempts + 1 && delay < cs->retry_max_s; i++)
			delay *= 2;
		if (delay > cs->retry_max_s)
			delay = cs->retry_max_s;
	}
	if (db_prepare(db, &st, "UPDATE commitment_requests SET "
	    "attempts = attempts + ?, last_error = ?, next_attempt_at = ?, "
	    "claimed_by = NULL, claimed_until = NULL WHERE id = ? AND "
	    "state = 'PENDING'", &e) == 0) {
		sqlite3_bind_int(st, 1, attempted);
		db_bind_text(st, 2, error);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)(time(NULL) + delay));
		sqlite3_bind_int64(st, 4, r->id);
		db_step_done(db, st, &e);
		sqlite3_finalize(st);
	}
	if (e.code != 0)	/* the claim runs out by itself */
		log_warn("cannot record a commitment attempt", "id=%lld "
		    "error=\"%s\"", r->id, e.msg);
}

/* --- deciding what is committed --- */

#define REASON_UNKNOWN	0xFFFF	/* the index could not be read */

static uint16_t
item_reason(sqlite3_stmt *st, const struct store *store,
    const struct commit_item *it, char *why, size_t whysz)
{
	const char *cls, *hash;
	struct err e = { 0 };
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, it->sop_instance, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_DONE)
		return REASON_NO_SUCH_OBJECT;
	if (rc != SQLITE_ROW)
		return REASON_UNKNOWN;
	cls = (const char *)sqlite3_column_text(st, 0);
	hash = (const char *)sqlite3_column_text(st, 1);
	if (cls == NULL || strcmp(cls, it->sop_class) != 0)
		return REASON_CLASS_CONFLICT;
	if (hash == NULL || store_verify(store, hash, &e) == -1) {
		snprintf(why, whysz, "%s", hash == NULL ? "no object" : e.msg);
		return e.code == ENOENT ? REASON_NO_SUCH_OBJECT :
		    REASON_PROCESSING;
	}
	return 0;
}

/* Decide each reference's fate now.  -1 when the index cannot say. */
static int
evaluate(sqlite3 *db, const struct store *store, struct commit_request *r,
    struct err *e)
{
	sqlite3_stmt *st;
	char why[512], quid[80];
	size_t i;

	r->committed = 0;
	/* A row retention marked purged holds no object (its file is gone,
	 * or listed in purge_pending to go). */
	if (db_prepare(db, &st, "SELECT sop_class_uid, object_hash FROM "
	    "instances WHERE sop_instance_uid = ? AND purged_at IS NULL",
	    e) == -1)
		return -1;
	for (i = 0; i < r->nitems; i++) {
		struct commit_item *it = &r->items[i];

		why[0] = '\0';
		it->reason = r->duplicate ? REASON_DUPLICATE_UID :
		    item_reason(st, store, it, why, sizeof why);
		if (it->reason == REASON_UNKNOWN) {
			step_error(db, e, "instances");
			sqlite3_finalize(st);
			return -1;
		}
		if (it->reason == 0)
			r->committed++;
		else if (why[0] != '\0')
			log_warn("stored object fails verification",
			    "sop_instance_uid=%s reason=0x%04X error=\"%s\"",
			    q(it->sop_instance, quid, sizeof quid),
			    it->reason, why);
	}
	sqlite3_finalize(st);
	return 0;
}

/*
 * run/store.lock, shared (dcmpurge takes it exclusively around each
 * batch's marks and unlinks; see the top of this file): the descriptor
 * to close, or -1 with e set.  Waits while a purge batch runs.
 */
static int
lock_store_shared(const struct config *cfg, struct err *e)
{
	char run[PATH_MAX], path[PATH_MAX];
	int fd;

	if (snprintf(run, sizeof run, "%s/run", cfg->data_dir) >=
	    (int)sizeof run || snprintf(path, sizeof path, "%s/store.lock",
	    run) >= (int)sizeof path)
		return err_set(e, ENAMETOOLONG, "GATEWAY_DATA_DIR too long");
	if (fs_mkdirs(run, e) == -1)
		return -1;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) == -1)
		return err_sys(e, "open %s", path);
	while (flock(fd, LOCK_SH) == -1)
		if (errno != EINTR) {
			err_sys(e, "flock %s", path);
			close(fd);
			return -1;
		}
	return fd;
}

/* evaluate(), under the store lock. */
static int
evaluate_locked(sqlite3 *db, const struct store *store,
    const struct config *cfg, struct commit_request *r, struct err *e)
{
	int fd, rc;

	if ((fd = lock_store_shared(cfg, e)) == -1)
		return -1;
	rc = evaluate(db, store, r, e);
	close(fd);
	return rc;
}

/* The N-EVENT-REPORT's data set (PS3.4 J.3.3.1) in ts. */
static int
build_report(const struct commit_request *r, const char *ts, uint8_t **out,
    size_t *outlen, struct err *e)
{
	struct dcm_builder *b;
	size_t i;
	int pass, rc;

	if ((b = dcm_build_new()) == NULL)
		return err_set(e, ENOMEM, "out of memory");
	rc = dcm_build_string(b, TAG_TRANSACTION_UID, NULL,
	    r->transaction_uid, e);
	if (rc == 0 && r->called_aet[0] != '\0' && r->committed > 0)
		rc = dcm_build_string(b, TAG_RETRIEVE_AET, NULL,
		    r->called_aet, e);
	/* pass 0: Referenced SOP Sequence (committed), 1: Failed SOP
	 * Sequence; each only when it has an item (type 1C). */
	for (pass = 0; rc == 0 && pass < 2; pass++) {
		if ((pass == 0 ? r->committed : r->nitems - r->committed) == 0)
			continue;
		rc = dcm_build_sequence_begin(b, pass == 0 ? TAG_REF_SOP_SEQ :
		    TAG_FAILED_SOP_SEQ, e);
		for (i = 0; rc == 0 && i < r->nitems; i++) {
			const struct commit_item *it = &r->items[i];

			if ((it->reason != 0) != pass)
				continue;
			if (dcm_build_item_begin(b, e) == -1 ||
			    dcm_build_string(b, TAG_REF_SOP_CLASS, NULL,
			    it->sop_class, e) == -1 ||
			    dcm_build_string(b, TAG_REF_SOP_INSTANCE, NULL,
			    it->sop_instance, e) == -1 ||
			    (pass == 1 && dcm_build_u16(b, TAG_FAILURE_REASON,
			    it->reason, e) == -1) ||
			    dcm_build_item_end(b, e) == -1)
				rc = -1;
		}
		if (rc == 0)
			rc = dcm_build_sequence_end(b, e);
	}
	if (rc == 0)
		rc = dcm_build_encode(b, ts, NULL, out, outlen, e);
	dcm_build_free(b);
	return rc;
}

/* --- sending the report --- */

/*
 * Send r's N-EVENT-REPORT-RQ on context ctx_id of a and wait for its
 * response.  0 when the requester answered success; -1 otherwise, with
 * *gone set when the association is over (released, aborted, closed).
 */
static int
send_report(struct ul_assoc *a, uint8_t ctx_id, const struct commit_request *r,
    int *gone, struct err *e)
{
	const struct ul_context *c = ul_context(a, ctx_id);
	struct dimse_cmd rq = { 0 };
	struct dimse_msg rsp;
	uint8_t *data;
	size_t len;
	int k, rc;

	*gone = 0;
	if (build_report(r, c != NULL ? c->transfer_syntax :
	    DCM_TS_IMPLICIT_LE, &data, &len, e) == -1)
		return -1;
	rq.command_field = DIMSE_N_EVENT_REPORT_RQ;
	rq.message_id = (uint16_t)(r->id % 65535 + 1);
	rq.event_type_id = (uint16_t)report_event(r);
	snprintf(rq.affected_sop_class, DIMSE_UID_MAX, "%s",
	    QR_SOP_COMMITMENT);
	snprintf(rq.affected_sop_instance, DIMSE_UID_MAX, "%s",
	    QR_COMMITMENT_INSTANCE);
	rc = dimse_send(a, ctx_id, &rq, data, len, e);
	free(data);
	if (rc == -1) {
		*gone = 1;
		return -1;
	}
	if ((k = dimse_recv(a, &rsp, e)) != UL_MESSAGE) {
		*gone = 1;
		if (k == UL_RELEASED)
			ul_linger(a);
		if (k != -1)
			err_set(e, UL_E_CLOSED, "the requester %s before "
			    "answering", k == UL_RELEASED ? "released" :
			    k == UL_ABORTED ? "aborted" : "closed");
		return -1;
	}
	rc = 0;
	if (rsp.cmd.command_field != DIMSE_N_EVENT_REPORT_RSP ||
	    rsp.cmd.message_id_responded != rq.message_id) {
		ul_abort(a, 2, 2);
		*gone = 1;
		rc = err_set(e, UL_E_PROTOCOL, "%s instead of the "
		    "N-EVENT-REPORT-RSP (aborted)",
		    dimse_command_name(rsp.cmd.command_field));
	} else if (rsp.cmd.status != DIMSE_SUCCESS)
		rc = err_set(e, EPROTO, "the requester answered the report "
		    "with status 0x%04X", rsp.cmd.status);
	dimse_msg_free(&rsp);
	return rc;
}

static void
log_reported(const struct commit_request *r, const char *how)
{
	char quid[80], qaet[40];

	log_info("commitment reported", "transaction_uid=%s calling_aet=%s "
	    "committed=%zu failed=%zu association=%s attempts=%ld",
	    q(r->transaction_uid, quid, sizeof quid),
	    q(r->calling_aet, qaet, sizeof qaet), r->committed,
	    r->nitems - r->committed, how, r->attempts);
}

/* Open pacs.db with the schema that has the commitment tables. */
static int
commit_db(struct qr_session *x, struct err *e)
{
	if (qr_session_open(x, e) == -1 ||
	    db_migrate(x->db, db_schema_pacs, e) == -1)
		return -1;
	return 0;
}

/* Hold the report back up to ms (QR_COMMIT_REPORT_DELAY_MS), ending
 * early when the requester sends something (a release, a request). */
static void
hold_report(struct ul_assoc *a, long ms)
{
	struct pollfd p = { .fd = a->fd, .events = POLLIN };
	struct timespec now, end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += ms / 1000;
	end.tv_nsec += (ms % 1000) * 1000000L;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (end.tv_sec - now.tv_sec) * 1000 +
		    (end.tv_nsec - now.tv_nsec) / 1000000L;
		if (ms <= 0 || poll(&p, 1, ms > 1000 ? 1000 : (int)ms) > 0)
			return;
	}
}

/* After the N-ACTION-RSP: the report on the same association. */
static int
report_here(struct qr_session *x, const struct dimse_msg *m,
    struct commit_request *r, const struct commit_settings *cs)
{
	struct err e = { 0 };
	int gone;

	if (cs->delay_ms > 0)
		hold_report(x->s->a, cs->delay_ms);
	if (ul_pending(x->s->a)) {
		/* the requester spoke first (a release, another request):
		 * leave the report for a new association */
		release(x->db, r, 0, "the requester did not wait for the "
		    "report", cs);
		log_info("commitment report left for a new association",
		    "peer=%s id=%lld", x->s->peer, r->id);
		return 0;
	}
	if (evaluate_locked(x->db, &x->store, &x->set->cfg, r, &e) == -1) {
		release(x->db, r, 0, e.msg, cs);
		log_warn("cannot decide a commitment now", "id=%lld "
		    "error=\"%s\"", r->id, e.msg);
		return 0;
	}
	if (send_report(x->s->a, m->ctx_id, r, &gone, &e) == 0) {
		if (mark_reported(x->db, r, 0, &e) == -1)
			log_warn("cannot record a delivered report", "id=%lld "
			    "error=\"%s\" note=\"it will be sent again\"",
			    r->id, e.msg);
		log_reported(r, "same");
		return 0;
	}
	release(x->db, r, !gone, e.msg, cs);
	log_info("commitment report not delivered on the same association",
	    "peer=%s id=%lld error=\"%s\" note=\"sent on a new association\"",
	    x->s->peer, r->id, e.msg);
	return gone ? -1 : 0;
}

int
qr_serve_commit(struct qr_session *x, const struct dimse_msg *m)
{
	struct commit_request r = { 0 };
	struct commit_settings cs;
	struct err e = { 0 };
	char why[600], quid[80], qaet[40];
	uint16_t st;
	time_t until;
	int rc;

	if (commit_settings(&cs, &e) == -1) {
		log_error("bad configuration", "error=\"%s\"", e.msg);
		return scp_respond(x->s, m, DIMSE_PROCESSING_FAILURE,
		    "storage commitment is misconfigured");
	}
	if ((st = parse_request(x, m, &r, why, sizeof why)) != DIMSE_SUCCESS) {
		log_warn("commitment request refused", "peer=%s status=0x%04X "
		    "error=%s", x->s->peer, st, q(why, quid, sizeof quid));
		request_free(&r);
		return scp_respond(x->s, m, st, why);
	}
	snprintf(r.calling_aet, sizeof r.calling_aet, "%s",
	    x->s->a->calling_aet);
	snprintf(r.called_aet, sizeof r.called_aet, "%s", x->s->a->called_aet);
	until = time(NULL) + cs.delay_ms / 1000 + x->s->a->idle_ms / 1000 +
	    x->s->a->dimse_ms / 1000 + 60;
	if (commit_db(x, &e) == -1 ||
	    (rc = persist(x->db, &r, x->s->peer, until, &e)) == -1) {
		log_error("cannot record a commitment request", "peer=%s "
		    "transaction_uid=%s error=\"%s\"", x->s->peer,
		    q(r.transaction_uid, quid, sizeof quid), e.msg);
		request_free(&r);
		return scp_respond(x->s, m, e.code == ENOSPC ?
		    STATUS_RESOURCE_LIMIT : DIMSE_PROCESSING_FAILURE,
		    "cannot record the request");
	}
	log_info("commitment requested", "peer=%s calling_aet=%s "
	    "transaction_uid=%s id=%lld references=%zu%s", x->s->peer,
	    q(r.calling_aet, qaet, sizeof qaet),
	    q(r.transaction_uid, quid, sizeof quid), r.id, r.nitems,
	    r.duplicate ? " duplicate=true" : r.repeat ? " repeat=true" : "");
	if (scp_respond(x->s, m, DIMSE_SUCCESS, NULL) == -1) {
		if (rc == 1)
			release(x->db, &r, 0, "the association ended before "
			    "the N-ACTION-RSP", &cs);
		request_free(&r);
		return -1;
	}
	if (rc == 1)
		rc = report_here(x, m, &r, &cs);
	request_free(&r);
	return rc == -1 ? -1 : 0;
}

/* --- reports on a new association --- */

/* Claim up to COMMIT_BATCH pending requests due by now; their ids. */
static int
claim_batch(sqlite3 *db, time_t now, long long *ids, struct err *e)
{
	sqlite3_stmt *sel, *upd;
	int n = 0, rc;

	if (db_exec(db, "BEGIN IMMEDIATE", e) == -1)
		return -1;
	if (db_prepare(db, &sel, "SELECT id, claimed_by, claimed_until FROM "
	    "commitment_requests WHERE state = 'PENDING' AND "
	    "next_attempt_at <= ? ORDER BY next_attempt_at, id", e) == -1)
		return rollback(db);
	if (db_prepare(db, &upd, "UPDATE commitment_requests SET "
	    "claimed_by = ?, claimed_until = ? WHERE id = ?", e) == -1) {
		sqlite3_finalize(sel);
		return rollback(db);
	}
	sqlite3_bind_int64(sel, 1, now);
	while (n < COMMIT_BATCH && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
		if (claim_held(sel, 1, now))
			continue;
		ids[n] = sqlite3_column_int64(sel, 0);
		sqlite3_bind_int64(upd, 1, getpid());
		sqlite3_bind_int64(upd, 2, now + COMMIT_CLAIM_SECONDS);
		sqlite3_bind_int64(upd, 3, ids[n]);
		if (db_step_done(db, upd, e) == -1) {
			n = -1;
			break;
		}
		n++;
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	if (n == -1 || db_exec(db, "COMMIT", e) == -1)
		return rollback(db);
	return n;
}

static int
load_request(sqlite3 *db, struct commit_request *r, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(db, &st, "SELECT transaction_uid, calling_aet, "
	    "called_aet, duplicate_of IS NOT NULL, attempts FROM "
	    "commitment_requests WHERE id = ?", e) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, r->id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		snprintf(r->transaction_uid, DIMSE_UID_MAX, "%s",
		    (const char *)sqlite3_column_text(st, 0));
		snprintf(r->calling_aet, UL_AE_MAX, "%s",
		    (const char *)sqlite3_column_text(st, 1));
		snprintf(r->called_aet, UL_AE_MAX, "%s",
		    (const char *)sqlite3_column_text(st, 2));
		r->duplicate = sqlite3_column_int(st, 3);
		r->attempts = sqlite3_column_int(st, 4);
	} else
		step_error(db, e, "commitment request");
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return -1;
	return load_items(db, r, e);
}

/* Open an association to the requester proposing Storage Commitment
 * with us as its SCP; the context's id in *ctx_id. */
static int
connect_requester(const struct qr_settings *set,
    const struct commit_request *r, struct ul_assoc **a, uint8_t *ctx_id,
    struct err *e)
{
	const struct qr_destination *d;
	struct ul_proposal p = { QR_SOP_COMMITMENT, commit_ts, 1 };
	struct ul_config cfg = { .artim_ms = 30000, .idle_ms = 60000,
	    .dimse_ms = 600000 };
	int rc;

	*a = NULL;
	if ((d = qr_destination_find(&set->dests, r->calling_aet)) == NULL)
		return err_set(e, ENOENT, "requester %s is not in "
		    "QR_DESTINATIONS", r->calling_aet);
	if (d->tls && tls_client_ctx(&cfg.tls_client, set->tls_ca,
	    set->tls_cert, set->tls_key, e) == -1)
		return err_wrap(e, "requester %s", r->calling_aet);
	rc = ul_connect(a, d->host, d->port, r->called_aet[0] ? r->called_aet :
	    set->cfg.qr_aet, d->aet, &p, 1, &cfg, e);
	tls_ctx_free(cfg.tls_client);	/* the connection holds its own */
	if (rc == -1) {
		if (*a != NULL && e->code == UL_E_REJECTED)
			err_set(e, UL_E_REJECTED, "%s:%d rejected the "
			    "association (result %d source %d reason %d)",
			    d->host, d->port, (*a)->reject.result,
			    (*a)->reject.source, (*a)->reject.reason);
		else
			err_wrap(e, "%s:%d", d->host, d->port);
		ul_free(*a);
		*a = NULL;
		return -1;
	}
	if ((*a)->ctx[0].result != UL_CTX_ACCEPTED) {
		err_set(e, EPROTO, "%s:%d refused Storage Commitment "
		    "(context result %d)", d->host, d->port,
		    (*a)->ctx[0].result);
		ul_abort(*a, 0, 0);
		ul_free(*a);
		*a = NULL;
		return -1;
	}
	if (!(*a)->ctx[0].scp_role)
		log_info("requester did not grant us the SCP role", "aet=%s "
		    "note=\"sending the report anyway\"", d->aet);
	*ctx_id = (*a)->ctx[0].id;
	return 0;
}

/* One claimed request: 1 reported, 0 not (recorded for later), -1 error
 * in pacs.db. */
static int
resume_one(const struct qr_settings *set, sqlite3 *db,
    const struct store *store, long long id,
    const struct commit_settings *cs)
{
	struct commit_request r = { 0 };
	struct ul_assoc *a = NULL;
	struct err e = { 0 }, re = { 0 };
	char quid[80], qaet[40];
	uint8_t ctx = 0;
	int gone = 1, rc = 0;

	r.id = id;
	if (load_request(db, &r, &e) == -1 ||
	    evaluate_locked(db, store, &set->cfg, &r, &e) == -1) {
		release(db, &r, 1, e.msg, cs);	/* backs off: not this pass */
		request_free(&r);
		log_warn("cannot read a commitment request", "id=%lld "
		    "error=\"%s\"", id, e.msg);
		return -1;
	}
	if (connect_requester(set, &r, &a, &ctx, &e) == 0 &&
	    send_report(a, ctx, &r, &gone, &e) == 0) {
		r.attempts++;
		if (mark_reported(db, &r, 1, &e) == -1)
			log_warn("cannot record a delivered report", "id=%lld "
			    "error=\"%s\" note=\"it will be sent again\"",
			    id, e.msg);
		log_reported(&r, "new");
		rc = 1;
	} else {
		release(db, &r, 1, e.msg, cs);
		log_warn("cannot deliver a commitment report", "id=%lld "
		    "transaction_uid=%s calling_aet=%s attempts=%ld "
		    "error=\"%s\" note=\"kept; tried again later\"", id,
		    q(r.transaction_uid, quid, sizeof quid),
		    q(r.calling_aet, qaet, sizeof qaet), r.attempts + 1,
		    e.msg);
	}
	if (a != NULL && !gone && ul_release(a, &re) == -1)
		log_debug("release failed", "error=\"%s\"", re.msg);
	ul_free(a);
	request_free(&r);
	return rc;
}

int
qr_commit_resume(const struct qr_settings *set, struct err *e)
{
	struct qr_session x = { 0 };
	struct commit_settings cs;
	long long ids[COMMIT_BATCH];
	time_t start = time(NULL);
	int i, n = 0, answered = 0, rounds = 0;

	if (commit_settings(&cs, e) == -1)
		return -1;
	if (access(set->cfg.pacs_db_path, F_OK) == -1)
		return 0;	/* no index yet: nothing can be pending */
	x.set = set;
	if (commit_db(&x, e) == -1) {
		qr_session_close(&x);
		return -1;
	}
	/* what is due when the pass starts; bounded so a pass ends */
	while (rounds++ < 1000 && (n = claim_batch(x.db, start, ids, e)) > 0)
		for (i = 0; i < n; i++)
			if (resume_one(set, x.db, &x.store, ids[i], &cs) == 1)
				answered++;
	qr_session_close(&x);
	return n == -1 ? -1 : answered;
}
