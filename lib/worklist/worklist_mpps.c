/*
 * worklist_mpps: Modality Performed Procedure Step N-CREATE and N-SET
 * (PS3.4 annex F) over the mpps table, with the worklist item's status
 * and the outbox event written in the same transaction.
 *
 * The state machine: N-CREATE makes an instance IN PROGRESS (any other
 * status is refused); N-SET may leave it IN PROGRESS or make it COMPLETED
 * or DISCONTINUED, after which it is final.  An MPPS whose accession
 * number names no worklist item is still kept (a modality may do
 * unscheduled work), but no event is sent for it: the cloud could not
 * place it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "base/base.h"
#include "worklist/worklist_int.h"

#define TAG_PPS_STATUS	DCM_TAG(0x0040, 0x0252)
#define TAG_SSA_SEQ	DCM_TAG(0x0040, 0x0270)
#define TAG_ACCESSION	DCM_TAG(0x0008, 0x0050)

#define ST_SUCCESS		0x0000
#define ST_INVALID_VALUE	0x0106
#define ST_PROCESSING_FAILURE	0x0110
#define ST_DUPLICATE		0x0111
#define ST_NO_SUCH_INSTANCE	0x0112

static int
status_err(struct err *e, int status, const char *fmt, const char *arg)
{
	err_set(e, status, fmt, arg);
	return status;
}

/* The Performed Procedure Step Status, "" when absent. */
static void
pps_status(const struct dcm *d, char *out, size_t outsz)
{
	if (dcm_get_string(d, NULL, TAG_PPS_STATUS, 0, out, outsz, NULL) < 0)
		out[0] = '\0';
}

/* Accession Number from the Scheduled Step Attributes Sequence, or the
 * top level. */
static void
mpps_accession(const struct dcm *d, char *out, size_t outsz)
{
	const struct dcm_elem *sq = dcm_find(d, NULL, TAG_SSA_SEQ);

	out[0] = '\0';
	if (sq != NULL && dcm_item_count(d, sq) > 0 &&
	    dcm_get_string(d, dcm_item_at(d, sq, 0), TAG_ACCESSION, 0, out,
	    outsz, NULL) > 0)
		return;
	if (dcm_get_string(d, NULL, TAG_ACCESSION, 0, out, outsz, NULL) < 0)
		out[0] = '\0';
}

/* Copy every top-level element of d into b (later copies replace). */
static int
copy_all(struct dcm_builder *b, const struct dcm *d, struct err *e)
{
	size_t n = dcm_elem_count(d, NULL);

	for (size_t i = 0; i < n; i++) {
		const struct dcm_elem *el = dcm_elem_at(d, NULL, i);

		if (DCM_GROUP(el->tag) <= 0x0002 ||
		    el->tag == DCM_TAG(0x0008, 0x0005))
			continue;
		if (dcm_build_copy(b, d, el, e) == -1)
			return -1;
	}
	return 0;
}

/* Encode old (may be NULL) updated by mod as explicit VR LE, UTF-8. */
static int
encode_dataset(const struct dcm *old, const struct dcm *mod, uint8_t **out,
    size_t *outlen, struct err *e)
{
	struct dcm_builder *b;
	int rc = 0;

	if ((b = dcm_build_new()) == NULL)
		return err_sys(e, "malloc");
	if (old != NULL)
		rc = copy_all(b, old, e);
	if (rc == 0)
		rc = copy_all(b, mod, e);
	if (rc == 0)
		rc = dcm_build_encode(b, DCM_TS_EXPLICIT_LE, "ISO_IR 192", out,
		    outlen, e);
	dcm_build_free(b);
	return rc;
}

static int
event_json(const char *action_id, const char *acc, const char *status,
    const char *uid, char **out, struct err *e)
{
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	json_t *j;

	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return err_set(e, EINVAL, "cannot format the time");
	j = json_pack("{s:i, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s}}",
	    "schema_version", 1, "event_type", "mpps.status_update",
	    "timestamp", ts, "source_system", "gateway-mwl", "data",
	    "action_id", action_id, "accession_number", acc,
	    "status", status, "mpps_instance_uid", uid);
	if (j == NULL)
		return err_set(e, EINVAL, "cannot build the event JSON");
	*out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (*out == NULL)
		return err_set(e, ENOMEM, "cannot encode the event JSON");
	return 0;
}

/* Set the item's status and write the event; nothing when no item has
 * this accession number. */
static int
transition(struct worklist *w, const char *acc, const char *status,
    const char *uid, struct err *e)
{
	struct worklist_item it;
	sqlite3_stmt *st;
	char *ev;
	int rc;

	if (acc[0] == '\0' || (rc = worklist_get(w, acc, &it, e)) ==
	    WL_NOT_FOUND)
		return 0;
	if (rc == -1 || worklist_set_status(w, acc, status, e) == -1)
		return -1;
	if (event_json(it.source_message_id, acc, status, uid, &ev, e) == -1)
		return -1;
	if (db_prepare(w->db, &st, "INSERT INTO outbox (event) VALUES (?1)",
	    e) == -1) {
		free(ev);
		return -1;
	}
	rc = sqlite3_bind_text(st, 1, ev, -1, free) == SQLITE_OK ?
	    db_step_done(w->db, st, e) : wl_sql_err(w->db, e, "bind");
	sqlite3_finalize(st);
	return rc;
}

static int
insert_mpps(struct worklist *w, const char *uid, const char *acc,
    const uint8_t *ds, size_t len, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(w->db, &st, "INSERT INTO mpps (sop_instance_uid, "
	    "accession_number, status, dataset) VALUES (?1, ?2, "
	    "'IN PROGRESS', ?3)", e) == -1)
		return -1;
	if (sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC) != SQLITE_OK ||
	    db_bind_text(st, 2, acc) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 3, ds, (int)len, SQLITE_STATIC) !=
	    SQLITE_OK)
		rc = wl_sql_err(w->db, e, "bind");
	else
		rc = db_step_done(w->db, st, e);
	sqlite3_finalize(st);
	return rc;
}

static int
mpps_exists(struct worklist *w, const char *uid, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(w->db, &st, "SELECT 1 FROM mpps WHERE "
	    "sop_instance_uid = ?1", e) == -1)
		return -1;
	if (sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(st);
		return wl_sql_err(w->db, e, "bind");
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : wl_sql_err(w->db, e, "select");
}

static int
fail(struct worklist *w)
{
	db_exec(w->db, "ROLLBACK", NULL);
	return -1;
}

static int
done(struct worklist *w, struct err *e)
{
	if (db_exec(w->db, "COMMIT", e) == -1)
		return fail(w);
	return ST_SUCCESS;
}

int
worklist_mpps_create(struct worklist *w, const char *uid,
    const struct dcm *ds, struct err *e)
{
	char status[64], acc[WL_FIELD];
	uint8_t *buf = NULL;
	size_t len;
	int k;

	pps_status(ds, status, sizeof status);
	if (strcmp(status, WL_IN_PROGRESS) != 0)
		return status_err(e, ST_INVALID_VALUE, "N-CREATE: Performed "
		    "Procedure Step Status must be IN PROGRESS, not \"%s\"",
		    status);
	mpps_accession(ds, acc, sizeof acc);
	if (encode_dataset(NULL, ds, &buf, &len, e) == -1)
		return -1;
	if (db_exec(w->db, "BEGIN IMMEDIATE", e) == -1) {
		free(buf);
		return -1;
	}
	if ((k = mpps_exists(w, uid, e)) != 0) {
		free(buf);
		fail(w);
		return k == -1 ? -1 : status_err(e, ST_DUPLICATE,
		    "N-CREATE: SOP instance %s exists already", uid);
	}
	k = insert_mpps(w, uid, acc, buf, len, e);
	free(buf);
	if (k == -1 || transition(w, acc, WL_IN_PROGRESS, uid, e) == -1)
		return fail(w);
	return done(w, e);
}

struct mpps_row {
	char status[32], acc[WL_FIELD];
	uint8_t *dataset;
	size_t len;
};

/* 1 found, 0 not found, -1 error. */
static int
load_mpps(struct worklist *w, const char *uid, struct mpps_row *r,
    struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	memset(r, 0, sizeof *r);
	if (db_prepare(w->db, &st, "SELECT status, accession_number, dataset "
	    "FROM mpps WHERE sop_instance_uid = ?1", e) == -1)
		return -1;
	if (sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(st);
		return wl_sql_err(w->db, e, "bind");
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *b = sqlite3_column_blob(st, 2);
		int n = sqlite3_column_bytes(st, 2);
		const unsigned char *s0 = sqlite3_column_text(st, 0);
		const unsigned char *s1 = sqlite3_column_text(st, 1);

		snprintf(r->status, sizeof r->status, "%s", s0 ? (const char *)s0 : "");
		snprintf(r->acc, sizeof r->acc, "%s", s1 ? (const char *)s1 : "");
		if (n > 0 && (r->dataset = malloc((size_t)n)) == NULL) {
			sqlite3_finalize(st);
			return err_sys(e, "malloc");
		}
		if (n > 0)
			memcpy(r->dataset, b, (size_t)n);
		r->len = (size_t)n;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : wl_sql_err(w->db, e, "select");
}

static int
update_mpps(struct worklist *w, const char *uid, const char *status,
    const struct mpps_row *r, const struct dcm *mod, struct err *e)
{
	struct dcm *old = NULL;
	sqlite3_stmt *st;
	uint8_t *buf = NULL;
	size_t len;
	int rc;

	if (r->len > 0 && dcm_parse_dataset(r->dataset, r->len,
	    DCM_TS_EXPLICIT_LE, 0, &old, e) == -1)
		return err_wrap(e, "stored MPPS %s", uid);
	rc = encode_dataset(old, mod, &buf, &len, e);
	dcm_free(old);
	if (rc == -1)
		return -1;
	if (db_prepare(w->db, &st, "UPDATE mpps SET status = ?2, dataset = ?3,"
	    " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
	    "WHERE sop_instance_uid = ?1", e) == -1) {
		free(buf);
		return -1;
	}
	if (sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 3, buf, (int)len, SQLITE_STATIC) != SQLITE_OK)
		rc = wl_sql_err(w->db, e, "bind");
	else
		rc = db_step_done(w->db, st, e);
	sqlite3_finalize(st);
	free(buf);
	return rc;
}

static int
set_locked(struct worklist *w, const char *uid, const struct dcm *mod,
    struct mpps_row *r, struct err *e)
{
	char status[64];
	int k;

	if ((k = load_mpps(w, uid, r, e)) != 1)
		return k == -1 ? -1 : status_err(e, ST_NO_SUCH_INSTANCE,
		    "N-SET: no such SOP instance %s", uid);
	if (strcmp(r->status, WL_IN_PROGRESS) != 0)
		return status_err(e, ST_PROCESSING_FAILURE, "N-SET: "
		    "Performed Procedure Step is %s already and may no longer "
		    "be updated", r->status);
	pps_status(mod, status, sizeof status);
	if (status[0] == '\0')
		snprintf(status, sizeof status, "%s", r->status);
	if (strcmp(status, WL_IN_PROGRESS) != 0 &&
	    strcmp(status, WL_COMPLETED) != 0 &&
	    strcmp(status, WL_DISCONTINUED) != 0)
		return status_err(e, ST_INVALID_VALUE, "N-SET: invalid "
		    "Performed Procedure Step Status \"%s\"", status);
	if (update_mpps(w, uid, status, r, mod, e) == -1)
		return -1;
	if (strcmp(status, r->status) != 0 &&
	    transition(w, r->acc, status, uid, e) == -1)
		return -1;
	return ST_SUCCESS;
}

int
worklist_mpps_set(struct worklist *w, const char *uid, const struct dcm *mod,
    struct err *e)
{
	struct mpps_row r;
	int rc;

	if (db_exec(w->db, "BEGIN IMMEDIATE", e) == -1)
		return -1;
	rc = set_locked(w, uid, mod, &r, e);
	free(r.dataset);
	if (rc != ST_SUCCESS) {
		fail(w);
		return rc;
	}
	return done(w, e);
}
