/*
 * worklist: items, status changes, outbox drain, export, backup, reset.
 * C-FIND matching is in worklist_match.c, MPPS in worklist_mpps.c.
 */
#include "worklist/worklist.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "base/base.h"
#include "worklist/worklist_int.h"

#define SQL_OFFERED "SELECT " WL_ITEM_COLUMNS " FROM worklist_items " \
	"WHERE status IN ('SCHEDULED', 'IN PROGRESS')"
#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

#define SOP_CLASS_MWL	"1.2.840.10008.5.1.4.31"

int
wl_sql_err(sqlite3 *db, struct err *e, const char *what)
{
	return err_set(e, EIO, "worklist.db: %s: %s", what,
	    sqlite3_errmsg(db));
}

static int
open_worklist(struct worklist **out, const char *path, int create,
    struct err *e)
{
	struct worklist *w;

	*out = NULL;
	if ((w = calloc(1, sizeof *w)) == NULL)
		return err_sys(e, "malloc");
	if ((create ? db_open(&w->db, path, e) :
	    db_open_existing(&w->db, path, e)) == -1) {
		free(w);
		return -1;
	}
	if (db_migrate(w->db, db_schema_worklist, e) == -1 ||
	    db_prepare(w->db, &w->st_offered, SQL_OFFERED
	    " ORDER BY scheduled_date, scheduled_time, accession_number",
	    e) == -1 ||
	    db_prepare(w->db, &w->st_offered_date, SQL_OFFERED
	    " AND scheduled_date = ?1 ORDER BY scheduled_time, "
	    "accession_number", e) == -1 ||
	    db_prepare(w->db, &w->st_get, "SELECT " WL_ITEM_COLUMNS
	    " FROM worklist_items WHERE accession_number = ?1", e) == -1) {
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
	sqlite3_finalize(w->st_offered);
	sqlite3_finalize(w->st_offered_date);
	sqlite3_finalize(w->st_get);
	db_close(w->db);
	free(w);
}

static void
column(sqlite3_stmt *st, int i, char *out)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	snprintf(out, WL_FIELD, "%s", s ? (const char *)s : "");
}

void
wl_item_from_row(sqlite3_stmt *st, struct worklist_item *it, char *spsid)
{
	column(st, 0, it->accession_number);
	column(st, 1, it->patient_id);
	column(st, 2, it->patient_name);
	column(st, 3, it->birth_date);
	column(st, 4, it->sex);
	column(st, 5, it->scheduled_date);
	column(st, 6, it->scheduled_time);
	column(st, 7, it->modality);
	column(st, 8, it->study_description);
	column(st, 9, it->requested_procedure_id);
	column(st, 10, it->requested_procedure_description);
	column(st, 11, it->scheduled_station_aet);
	column(st, 12, it->scheduled_station_name);
	column(st, 13, it->study_instance_uid);
	column(st, 14, it->source_message_id);
	column(st, 15, it->status);
	if (spsid != NULL)
		column(st, 16, spsid);
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

/* 1 when an item has this accession number or source message id. */
static int
known(struct worklist *w, const struct worklist_item *it, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(w->db, &st, "SELECT 1 FROM worklist_items WHERE "
	    "accession_number = ?1 OR (?2 IS NOT NULL AND "
	    "source_message_id = ?2)", e) == -1)
		return -1;
	if (db_bind_text(st, 1, it->accession_number) != SQLITE_OK ||
	    db_bind_text(st, 2, it->source_message_id) != SQLITE_OK) {
		sqlite3_finalize(st);
		return wl_sql_err(w->db, e, "bind");
	}
	rc = sqlite3_step(st);
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
worklist_create(struct worklist *w, struct worklist_item *it, struct err *e)
{
	int k;

	if (it->accession_number[0] == '\0')
		return err_set(e, EINVAL, "worklist item without accession "
		    "number");
	if (begin(w, e) == -1)
		return -1;
	if ((k = known(w, it, e)) == -1)
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
	return WL_CREATED;
}

static int
valid_status(const char *s)
{
	return strcmp(s, WL_SCHEDULED) == 0 || strcmp(s, WL_IN_PROGRESS) == 0 ||
	    strcmp(s, WL_COMPLETED) == 0 || strcmp(s, WL_DISCONTINUED) == 0;
}

/* Run an UPDATE with (?1 accession, ?2 status): WL_UPDATED or WL_NOT_FOUND. */
static int
update(struct worklist *w, const char *sql, const char *acc,
    const char *status, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(w->db, &st, sql, e) == -1)
		return -1;
	if (sqlite3_bind_text(st, 1, acc, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC) != SQLITE_OK) {
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
worklist_set_status(struct worklist *w, const char *acc, const char *status,
    struct err *e)
{
	if (!valid_status(status))
		return err_set(e, EINVAL, "invalid status \"%s\"", status);
	return update(w, "UPDATE worklist_items SET status = ?2, updated_at = "
	    NOW_SQL " WHERE accession_number = ?1", acc, status, e);
}

int
worklist_start_by_image(struct worklist *w, const char *acc, struct err *e)
{
	return update(w, "UPDATE worklist_items SET status = ?2, updated_at = "
	    NOW_SQL " WHERE accession_number = ?1 AND status = 'SCHEDULED'",
	    acc, WL_IN_PROGRESS, e);
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
		wl_item_from_row(w->st_get, it, NULL);
	sqlite3_reset(w->st_get);
	sqlite3_clear_bindings(w->st_get);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return WL_NOT_FOUND;
	return wl_sql_err(w->db, e, "select");
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

/* A file name from an accession number: [A-Za-z0-9._-], others as _XX. */
static void
wl_file_name(const char *acc, char *out, size_t outsz)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)acc;
	    *p != '\0' && o + 4 < outsz; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.')
			out[o++] = (char)*p;
		else
			o += (size_t)snprintf(out + o, outsz - o, "_%02X", *p);
	}
	out[o] = '\0';
}

/* The .wl dataset of one item: every attribute the worklist knows. */
static int
build_wl(const struct worklist_item *it, const char *spsid,
    struct dcm_builder *b, struct err *e)
{
	static const uint32_t top[] = {
		DCM_TAG(0x0008, 0x0050), DCM_TAG(0x0008, 0x1030),
		DCM_TAG(0x0010, 0x0010), DCM_TAG(0x0010, 0x0020),
		DCM_TAG(0x0010, 0x0030), DCM_TAG(0x0010, 0x0040),
		DCM_TAG(0x0020, 0x000d), DCM_TAG(0x0032, 0x1060),
		DCM_TAG(0x0040, 0x1001),
	};
	static const uint32_t sps[] = {
		DCM_TAG(0x0008, 0x0060), DCM_TAG(0x0040, 0x0001),
		DCM_TAG(0x0040, 0x0002), DCM_TAG(0x0040, 0x0003),
		DCM_TAG(0x0040, 0x0007), DCM_TAG(0x0040, 0x0009),
		DCM_TAG(0x0040, 0x0010), DCM_TAG(0x0040, 0x0020),
	};

	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
		if (dcm_build_string(b, top[i], NULL,
		    wl_item_value(it, spsid, top[i], 0), e) == -1)
			return -1;
	if (dcm_build_sequence_begin(b, DCM_TAG(0x0040, 0x0100), e) == -1 ||
	    dcm_build_item_begin(b, e) == -1)
		return -1;
	for (size_t i = 0; i < sizeof sps / sizeof sps[0]; i++)
		if (dcm_build_string(b, sps[i], NULL,
		    wl_item_value(it, spsid, sps[i], 1), e) == -1)
			return -1;
	if (dcm_build_item_end(b, e) == -1 ||
	    dcm_build_sequence_end(b, e) == -1)
		return -1;
	return 0;
}

static int
write_wl(const char *dir, const struct worklist_item *it, const char *spsid,
    char *name, size_t namesz, struct err *e)
{
	struct dcm_builder *b;
	char path[PATH_MAX], base[WL_FIELD * 3 + 1], sop[WL_FIELD + 4];
	uint8_t *buf = NULL;
	size_t len;
	int rc;

	wl_file_name(it->accession_number, base, sizeof base);
	if ((size_t)snprintf(name, namesz, "%s.wl", base) >= namesz ||
	    (size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >=
	    sizeof path)
		return err_set(e, ENAMETOOLONG, "%s: name too long", dir);
	snprintf(sop, sizeof sop, "%s.1", it->study_instance_uid);
	if ((b = dcm_build_new()) == NULL)
		return err_sys(e, "malloc");
	rc = build_wl(it, spsid, b, e);
	if (rc == 0)
		rc = dcm_build_encode_file(b, SOP_CLASS_MWL, sop,
		    DCM_TS_EXPLICIT_LE, "ISO_IR 100", &buf, &len, e);
	dcm_build_free(b);
	if (rc == 0)
		rc = fs_write_atomic(path, buf, len, e);
	free(buf);
	return rc;
}

/* Remove the .wl files of items no longer offered. */
static int
prune_wl(const char *dir, char (*keep)[WL_FIELD * 3 + 8], int nkeep,
    struct err *e)
{
	DIR *d;
	struct dirent *de;
	char path[PATH_MAX];

	if ((d = opendir(dir)) == NULL)
		return err_sys(e, "opendir %s", dir);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		int kept = 0;

		if (l < 4 || strcmp(de->d_name + l - 3, ".wl") != 0)
			continue;
		for (int i = 0; i < nkeep && !kept; i++)
			kept = strcmp(keep[i], de->d_name) == 0;
		if (kept)
			continue;
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir,
		    de->d_name) < sizeof path && unlink(path) == -1 &&
		    errno != ENOENT) {
			closedir(d);
			return err_sys(e, "unlink %s", path);
		}
	}
	closedir(d);
	return 0;
}

static int
touch_lockfile(const char *dir, struct err *e)
{
	char path[PATH_MAX];
	FILE *f;

	if ((size_t)snprintf(path, sizeof path, "%s/lockfile", dir) >=
	    sizeof path)
		return err_set(e, ENAMETOOLONG, "%s: name too long", dir);
	if ((f = fopen(path, "a")) == NULL)
		return err_sys(e, "create %s", path);
	if (fclose(f) != 0)
		return err_sys(e, "close %s", path);
	return 0;
}

int
worklist_export_wl(struct worklist *w, const char *dir, struct err *e)
{
	struct worklist_item it;
	char spsid[WL_FIELD], (*names)[WL_FIELD * 3 + 8] = NULL, (*tmp)[WL_FIELD * 3 + 8];
	int n = 0, cap = 0, rc;

	if (fs_mkdirs(dir, e) == -1 || touch_lockfile(dir, e) == -1)
		return -1;
	while ((rc = sqlite3_step(w->st_offered)) == SQLITE_ROW) {
		wl_item_from_row(w->st_offered, &it, spsid);
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((tmp = realloc(names, (size_t)cap *
			    sizeof *names)) == NULL) {
				rc = err_sys(e, "malloc");
				break;
			}
			names = tmp;
		}
		if (write_wl(dir, &it, spsid, names[n], sizeof names[n],
		    e) == -1) {
			rc = -1;
			break;
		}
		n++;
	}
	sqlite3_reset(w->st_offered);
	if (rc == SQLITE_DONE) {
		rc = prune_wl(dir, names, n, e);
		if (rc == 0)
			rc = fs_sync_dir(dir, e);
	} else if (rc != -1)
		rc = wl_sql_err(w->db, e, "select");
	free(names);
	return rc == -1 ? -1 : n;
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
	    "IN ('COMPLETED', 'DISCONTINUED') OR scheduled_date < ?1",
	    e) == -1)
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
