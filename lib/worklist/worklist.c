/*
 * worklist: items, status changes, the items in local time, outbox drain,
 * backup, reset.  C-FIND matching is in worklist_match.c, the dcmtk files
 * in worklist_export.c, MPPS in worklist_mpps.c; each calls in here, and
 * this file calls only worklist_time.c.
 */
#include "worklist/worklist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "worklist/worklist_int.h"

#define ITEM_COLUMNS "accession_number, patient_id, patient_name, " \
	"birth_date, sex, scheduled_date, scheduled_time, modality, " \
	"study_description, requested_procedure_id, " \
	"requested_procedure_description, scheduled_station_aet, " \
	"scheduled_station_name, study_instance_uid, source_message_id, " \
	"status, spsid, created_at"
/* ?1: every status, or only what C-FIND offers. */
#define SQL_ITEMS "SELECT " ITEM_COLUMNS " FROM worklist_items " \
	"WHERE (?1 = 1 OR status IN ('SCHEDULED', 'IN PROGRESS'))"
#define SQL_ORDER " ORDER BY scheduled_date, scheduled_time, accession_number"
#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

int
wl_sql_err(sqlite3 *db, struct err *e, const char *what)
{
	return err_set(e, EIO, "worklist.db: %s: %s", what,
	    sqlite3_errmsg(db));
}

/* SQL wl_local_date(date, time): the local date of a stored UTC date and
 * time (worklist_utc_to_local), for "a day" in the site's time. */
static void
sql_local_date(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	const unsigned char *d = sqlite3_value_text(argv[0]);
	const unsigned char *t = argc > 1 ? sqlite3_value_text(argv[1]) : NULL;
	char date[WL_FIELD], time[WL_FIELD];

	if (d == NULL || t == NULL) {
		sqlite3_result_null(cx);
		return;
	}
	worklist_utc_to_local((const char *)d, (const char *)t, date, time);
	sqlite3_result_text(cx, date, -1, SQLITE_TRANSIENT);
}

static int
open_worklist(struct worklist **out, const char *path, int create,
    struct err *e)
{
	struct worklist *w;
	int rc;

	*out = NULL;
	if ((w = calloc(1, sizeof *w)) == NULL)
		return err_sys(e, "malloc");
	snprintf(w->site.station_aet, sizeof w->site.station_aet, "ANY");
	if ((create ? db_open(&w->db, path, e) :
	    db_open_existing(&w->db, path, e)) == -1) {
		free(w);
		return -1;
	}
	rc = sqlite3_create_function(w->db, "wl_local_date", 2, SQLITE_UTF8,
	    NULL, sql_local_date, NULL, NULL) == SQLITE_OK ? 0 :
	    wl_sql_err(w->db, e, "create function wl_local_date");
	if (rc == 0 && (db_migrate(w->db, db_schema_worklist, e) == -1 ||
	    db_prepare(w->db, &w->st_each, SQL_ITEMS SQL_ORDER, e) == -1 ||
	    db_prepare(w->db, &w->st_each_day, SQL_ITEMS
	    " AND scheduled_date BETWEEN ?2 AND ?3 AND "
	    "wl_local_date(scheduled_date, scheduled_time) = ?4" SQL_ORDER,
	    e) == -1 ||
	    db_prepare(w->db, &w->st_get, "SELECT " ITEM_COLUMNS
	    " FROM worklist_items WHERE accession_number = ?1", e) == -1))
		rc = -1;
	if (rc == -1) {
		err_wrap(e, "%s", path);
		worklist_close(w);
		return -1;
	}
	*out = w;
	return 0;
}

int
worklist_open(struct worklist **out, const char *path, struct err *e)
{
	return open_worklist(out, path, 1, e);
}

int
worklist_open_existing(struct worklist **out, const char *path,
    struct err *e)
{
	return open_worklist(out, path, 0, e);
}

void
worklist_close(struct worklist *w)
{
	if (w == NULL)
		return;
	sqlite3_finalize(w->st_each);
	sqlite3_finalize(w->st_each_day);
	sqlite3_finalize(w->st_get);
	db_close(w->db);
	free(w);
}

void
worklist_set_site(struct worklist *w, const struct worklist_site *s)
{
	w->site = *s;
}

static void
column(sqlite3_stmt *st, int i, char *out)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	snprintf(out, WL_FIELD, "%s", s ? (const char *)s : "");
}

/* An item from a row of ITEM_COLUMNS. */
static void
item_from_row(sqlite3_stmt *st, struct worklist_item *it)
{
	char *const fields[] = {
		it->accession_number, it->patient_id, it->patient_name,
		it->birth_date, it->sex, it->scheduled_date,
		it->scheduled_time, it->modality, it->study_description,
		it->requested_procedure_id, it->requested_procedure_description,
		it->scheduled_station_aet, it->scheduled_station_name,
		it->study_instance_uid, it->source_message_id, it->status,
		it->spsid, it->created_at,
	};

	for (int i = 0; i < (int)(sizeof fields / sizeof fields[0]); i++)
		column(st, i, fields[i]);
}

static int
begin(struct worklist *w, struct err *e)
{
	return db_exec(w->db, "BEGIN IMMEDIATE", e);
}

static int
commit(struct worklist *w, struct err *e)
{
	if (db_exec(w->db, "COMMIT", e) == -1) {
		db_exec(w->db, "ROLLBACK", NULL);
		return -1;
	}
	return 0;
}

static int
rollback(struct worklist *w)
{
	db_exec(w->db, "ROLLBACK", NULL);
	return -1;
}

/* The item with this accession number, else the one made by this source
 * message id, into stored (may be NULL): 1, or 0 when there is none. */
static int
known(struct worklist *w, const struct worklist_item *it,
    struct worklist_item *stored, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(w->db, &st, "SELECT " ITEM_COLUMNS " FROM "
	    "worklist_items WHERE accession_number = ?1 OR (?2 IS NOT NULL "
	    "AND source_message_id = ?2) ORDER BY accession_number = ?1 DESC "
	    "LIMIT 1", e) == -1)
		return -1;
	if (db_bind_text(st, 1, it->accession_number) != SQLITE_OK ||
	    db_bind_text(st, 2, it->source_message_id) != SQLITE_OK) {
		sqlite3_finalize(st);
		return wl_sql_err(w->db, e, "bind");
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && stored != NULL)
		item_from_row(st, stored);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE)
		return wl_sql_err(w->db, e, "select");
	return 0;
}

static int
insert(struct worklist *w, const struct worklist_item *it, struct err *e)
{
	sqlite3_stmt *st;
	const char *v[] = {
		it->accession_number, it->patient_id, it->patient_name,
		it->birth_date, it->sex, it->scheduled_date,
		it->scheduled_time, it->modality, it->study_description,
		it->requested_procedure_id, it->requested_procedure_description,
		it->scheduled_station_aet, it->scheduled_station_name,
		it->study_instance_uid, it->source_message_id,
	};
	int rc = 0;

	if (db_prepare(w->db, &st, "INSERT INTO worklist_items ("
	    "accession_number, patient_id, patient_name, birth_date, sex, "
	    "scheduled_date, scheduled_time, modality, study_description, "
	    "requested_procedure_id, requested_procedure_description, "
	    "scheduled_station_aet, scheduled_station_name, "
	    "study_instance_uid, source_message_id, spsid) VALUES (?1, "
	    "coalesce(?2, ''), coalesce(?3, ''), ?4, ?5, coalesce(?6, ''), "
	    "coalesce(?7, ''), coalesce(?8, ''), ?9, ?10, ?11, ?12, ?13, ?14, "
	    "?15, ?1)", e) == -1)
		return -1;
	for (int i = 0; i < (int)(sizeof v / sizeof v[0]); i++)
		rc |= db_bind_text(st, i + 1, v[i]);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		return wl_sql_err(w->db, e, "bind");
	}
	rc = db_step_done(w->db, st, e);
	sqlite3_finalize(st);
	return rc;
}

int
worklist_create(struct worklist *w, struct worklist_item *it,
    struct worklist_item *stored, struct err *e)
{
	int k;

	if (it->accession_number[0] == '\0')
		return err_set(e, EINVAL, "worklist item without accession "
		    "number");
	if (begin(w, e) == -1)
		return -1;
	if ((k = known(w, it, stored, e)) == -1)
		return rollback(w);
	if (k == 1) {
		rollback(w);
		return WL_EXISTS;
	}
	if (dcm_uid_new(it->study_instance_uid, e) == -1 ||
	    insert(w, it, e) == -1)
		return rollback(w);
	if (commit(w, e) == -1)
		return -1;
	snprintf(it->status, WL_FIELD, "%s", WL_SCHEDULED);
	snprintf(it->spsid, WL_FIELD, "%s", it->accession_number);
	return WL_CREATED;
}

/* Run an UPDATE whose parameters ?1.. are the n texts v (NULL or "" bind
 * NULL): WL_UPDATED when it changed a row, else WL_NOT_FOUND. */
static int
update_rows(struct worklist *w, const char *sql, const char *const *v, int n,
    struct err *e)
{
	sqlite3_stmt *st;
	int rc = SQLITE_OK;

	if (db_prepare(w->db, &st, sql, e) == -1)
		return -1;
	for (int i = 0; i < n; i++)
		rc |= db_bind_text(st, i + 1, v[i]);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		return wl_sql_err(w->db, e, "bind");
	}
	rc = db_step_done(w->db, st, e);
	sqlite3_finalize(st);
	if (rc == -1)
		return -1;
	return sqlite3_changes(w->db) > 0 ? WL_UPDATED : WL_NOT_FOUND;
}

int
worklist_adopt_action_id(struct worklist *w, const char *acc,
    const char *action_id, struct err *e)
{
	const char *v[] = { acc, action_id, WL_MANUAL_PREFIX };

	return update_rows(w, "UPDATE worklist_items SET source_message_id = "
	    "?2, updated_at = " NOW_SQL " WHERE accession_number = ?1 AND "
	    "substr(source_message_id, 1, length(?3)) = ?3 AND NOT EXISTS "
	    "(SELECT 1 FROM worklist_items WHERE source_message_id = ?2)", v,
	    3, e);
}

static int
valid_status(const char *s)
{
	return strcmp(s, WL_SCHEDULED) == 0 || strcmp(s, WL_IN_PROGRESS) == 0 ||
	    strcmp(s, WL_COMPLETED) == 0 || strcmp(s, WL_DISCONTINUED) == 0;
}

/* Set an item's status to status, from status from (NULL: any):
 * WL_UPDATED or WL_NOT_FOUND. */
static int
update(struct worklist *w, const char *acc, const char *status,
    const char *from, struct err *e)
{
	const char *v[] = { acc, status, from };

	return update_rows(w, "UPDATE worklist_items SET status = ?2, "
	    "updated_at = " NOW_SQL " WHERE accession_number = ?1 AND "
	    "(?3 IS NULL OR status = ?3)", v, 3, e);
}

int
worklist_set_status(struct worklist *w, const char *acc, const char *status,
    struct err *e)
{
	if (!valid_status(status))
		return err_set(e, EINVAL, "invalid status \"%s\"", status);
	return update(w, acc, status, NULL, e);
}

int
worklist_transition(struct worklist *w, const char *acc, const char *status,
    struct err *e)
{
	static const struct { const char *to, *from; } moves[] = {
		{ WL_IN_PROGRESS, WL_SCHEDULED },
		{ WL_COMPLETED, WL_IN_PROGRESS },
		{ WL_DISCONTINUED, WL_IN_PROGRESS },
	};

	for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++)
		if (strcmp(status, moves[i].to) == 0)
			return update(w, acc, moves[i].to, moves[i].from, e);
	return WL_REFUSED;
}

int
worklist_start_by_image(struct worklist *w, const char *acc, struct err *e)
{
	return worklist_transition(w, acc, WL_IN_PROGRESS, e);
}

int
worklist_get(struct worklist *w, const char *acc, struct worklist_item *it,
    struct err *e)
{
	int rc;

	if (sqlite3_bind_text(w->st_get, 1, acc, -1, SQLITE_STATIC) !=
	    SQLITE_OK)
		return wl_sql_err(w->db, e, "bind");
	rc = sqlite3_step(w->st_get);
	if (rc == SQLITE_ROW)
		item_from_row(w->st_get, it);
	sqlite3_reset(w->st_get);
	sqlite3_clear_bindings(w->st_get);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return WL_NOT_FOUND;
	return wl_sql_err(w->db, e, "select");
}

/* Bind the statement worklist_each() steps. */
static int
bind_each(struct worklist *w, sqlite3_stmt *st, const char *day, int all,
    struct err *e)
{
	char from[WL_FIELD], to[WL_FIELD];

	if (sqlite3_bind_int(st, 1, all || w->site.show_finished) !=
	    SQLITE_OK)
		return wl_sql_err(w->db, e, "bind");
	if (day == NULL)
		return 0;
	/* A local day is within a day of the UTC one (offsets are less). */
	if (wl_day_add(day, -1, from) == -1 || wl_day_add(day, 1, to) == -1)
		return err_set(e, EINVAL, "not a date (YYYYMMDD): %.64s", day);
	if (sqlite3_bind_text(st, 2, from, -1, SQLITE_TRANSIENT) !=
	    SQLITE_OK ||
	    sqlite3_bind_text(st, 3, to, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
	    sqlite3_bind_text(st, 4, day, -1, SQLITE_TRANSIENT) != SQLITE_OK)
		return wl_sql_err(w->db, e, "bind");
	return 0;
}

int
worklist_each(struct worklist *w, const char *day, int all,
    worklist_item_fn fn, void *arg, struct err *e)
{
	sqlite3_stmt *st = day != NULL ? w->st_each_day : w->st_each;
	struct worklist_item it;
	char date[WL_FIELD], time[WL_FIELD];
	int n = 0, rc, step = SQLITE_DONE;

	if ((rc = bind_each(w, st, day, all, e)) == 0)
		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			item_from_row(st, &it);
			worklist_utc_to_local(it.scheduled_date,
			    it.scheduled_time, date, time);
			memcpy(it.scheduled_date, date, WL_FIELD);
			memcpy(it.scheduled_time, time, WL_FIELD);
			n++;
			if ((rc = fn(arg, &it, e)) != 0)
				break;
		}
	if (rc == 0 && step != SQLITE_DONE)
		rc = wl_sql_err(w->db, e, "select");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == -1 ? -1 : n;
}

int
worklist_outbox_held(const char *db_path, long *count, time_t *oldest,
    struct err *e)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	const char *t;
	int rc = -1;

	*count = 0;
	*oldest = 0;
	if (access(db_path, R_OK) == -1)
		return err_sys(e, "%s", db_path);
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK && sqlite3_busy_timeout(db, 1000) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*), min(created_at) FROM "
	    "outbox WHERE sent_at IS NULL", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*count = (long)sqlite3_column_int64(st, 0);
		if ((t = (const char *)sqlite3_column_text(st, 1)) != NULL &&
		    runstate_time_parse(t, oldest) == -1)
			*oldest = 0;
		rc = 0;
	} else
		err_set(e, EIO, "%s: %s", db_path, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* Outbox rows into the relay spool, then marked sent. */
int
worklist_outbox_drain(struct worklist *w, struct spool *relay, struct err *e)
{
	sqlite3_stmt *st;
	char name[SPOOL_NAME_MAX], *body;
	int n = 0, rc;

	if (db_prepare(w->db, &st, "SELECT id, event FROM outbox WHERE "
	    "sent_at IS NULL ORDER BY id", e) == -1)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		long long id = sqlite3_column_int64(st, 0);
		const char *ev = (const char *)sqlite3_column_text(st, 1);

		snprintf(name, sizeof name, "mpps-%lld", id);
		if (asprintf(&body, "kind=mpps.status_update\nevent=%s\n",
		    ev ? ev : "{}") == -1) {
			sqlite3_finalize(st);
			return err_sys(e, "malloc");
		}
		rc = spool_enqueue(relay, name, body, strlen(body),
		    SPOOL_DEFER, e);
		free(body);
		if (rc == -1) {
			sqlite3_finalize(st);
			return -1;
		}
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return wl_sql_err(w->db, e, "outbox");
	if (n == 0)
		return 0;
	if (spool_flush(relay, e) == -1)
		return -1;
	if (db_exec(w->db, "UPDATE outbox SET sent_at = " NOW_SQL
	    " WHERE sent_at IS NULL", e) == -1)
		return -1;
	return n;
}

int
worklist_backup(struct worklist *w, const char *path, struct err *e)
{
	return db_backup(w->db, path, e);
}

int
worklist_reset(struct worklist *w, const char *today, struct err *e)
{
	sqlite3_stmt *st;
	int n;

	if (begin(w, e) == -1)
		return -1;
	if (db_prepare(w->db, &st, "DELETE FROM worklist_items WHERE status "
	    "IN ('COMPLETED', 'DISCONTINUED') OR "
	    "wl_local_date(scheduled_date, scheduled_time) < ?1", e) == -1)
		return rollback(w);
	if (sqlite3_bind_text(st, 1, today, -1, SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(st);
		wl_sql_err(w->db, e, "bind");
		return rollback(w);
	}
	if (db_step_done(w->db, st, e) == -1) {
		sqlite3_finalize(st);
		return rollback(w);
	}
	sqlite3_finalize(st);
	n = sqlite3_changes(w->db);
	/* Finished MPPS steps of removed items, and events already sent. */
	if (db_exec(w->db, "DELETE FROM mpps WHERE status <> 'IN PROGRESS' "
	    "AND accession_number NOT IN (SELECT accession_number FROM "
	    "worklist_items); DELETE FROM outbox WHERE sent_at IS NOT NULL",
	    e) == -1)
		return rollback(w);
	if (commit(w, e) == -1)
		return -1;
	return n;
}
