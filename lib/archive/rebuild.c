/*
 * rebuild: what a rebuilt pacs.db takes from a backup (see
 * archive/archive.h for the contract).
 *
 * The rows are copied with the column lists of this program's schema
 * (pragma_table_info), so a column added later is copied too; the backup
 * is first copied and migrated to that schema, so both sides have the
 * same columns.  Foreign keys are mapped by natural keys, since the
 * rebuilt database numbers its rows afresh.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "archive/archive.h"

#define COLS_MAX	8192	/* a table's column list, as text */
#define SQL_MAX		(3 * COLS_MAX)

/* The instances the backup has purged and the rebuilt database lacks. */
#define PURGED "(SELECT id FROM temp.rebuild_purged)"

static int
is_backup(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	return n > sizeof REBUILD_BACKUP_PREFIX + 2 &&
	    strncmp(de->d_name, REBUILD_BACKUP_PREFIX,
	    sizeof REBUILD_BACKUP_PREFIX - 1) == 0 &&
	    strcmp(de->d_name + n - 3, ".db") == 0;
}

int
rebuild_backups(const char *dir, char ***names, struct err *e)
{
	struct dirent **list;
	int n = scandir(dir, &list, is_backup, alphasort), bad = 0;

	*names = NULL;
	if (n == -1)
		return errno == ENOENT ? 0 : err_sys(e, "scandir %s", dir);
	if ((*names = calloc((size_t)n + 1, sizeof **names)) == NULL)
		bad = 1;
	for (int i = 0; i < n; i++) {
		if (!bad && ((*names)[i] = strdup(list[i]->d_name)) == NULL)
			bad = 1;
		free(list[i]);
	}
	free(list);
	if (!bad)
		return n;
	for (int i = 0; *names != NULL && (*names)[i] != NULL; i++)
		free((*names)[i]);
	free(*names);
	*names = NULL;
	return err_sys(e, "malloc");
}

/* The backup copied to copy (SQLite's backup API, the backup opened
 * read only), checked and brought to this program's schema. */
static int
copy_backup(const char *backup, const char *copy, struct err *e)
{
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_stmt *st;
	int rc;

	db_remove(copy);
	if (sqlite3_open_v2(backup, &src, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		err_set(e, EIO, "sqlite: open %s: %s", backup,
		    src ? sqlite3_errmsg(src) : "out of memory");
		sqlite3_close(src);
		return -1;
	}
	rc = db_backup(src, copy, e);
	sqlite3_close(src);
	if (rc == -1 || db_open_existing(&dst, copy, e) == -1)
		return err_wrap(e, "backup %s", backup);
	if (db_prepare(dst, &st, "PRAGMA quick_check", e) == 0) {
		rc = sqlite3_step(st) == SQLITE_ROW &&
		    strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0 ?
		    0 : err_set(e, EIO, "backup %s is damaged (quick_check)",
		    backup);
		sqlite3_finalize(st);
	} else
		rc = -1;
	if (rc == 0 && db_migrate(dst, db_schema_pacs, e) == -1)
		rc = err_wrap(e, "backup %s", backup);
	db_close(dst);
	if (rc == -1)
		db_remove(copy);
	return rc;
}

/*
 * The columns of main.table but id and skip (NULL: none), each with
 * prefix, comma-separated, into out.
 */
static int
columns(sqlite3 *db, const char *table, const char *skip,
    const char *prefix, char *out, size_t outsz, struct err *e)
{
	sqlite3_stmt *st;
	size_t len = 0;
	int rc;

	out[0] = '\0';
	if (db_prepare(db, &st, "SELECT name FROM pragma_table_info(?1, "
	    "'main') WHERE name <> 'id' AND name <> coalesce(?2, '') "
	    "ORDER BY cid", e) == -1)
		return -1;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	db_bind_text(st, 2, skip);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int n = snprintf(out + len, outsz - len, "%s%s\"%s\"",
		    len ? ", " : "", prefix, sqlite3_column_text(st, 0));

		if (n < 0 || (size_t)n >= outsz - len) {
			sqlite3_finalize(st);
			return err_set(e, ENAMETOOLONG, "%s: too many columns",
			    table);
		}
		len += (size_t)n;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || len == 0)
		return err_set(e, EIO, "sqlite: the columns of %s: %s", table,
		    sqlite3_errmsg(db));
	return 0;
}

/*
 * INSERT [OR IGNORE] INTO main.table (its columns[, ref]) SELECT b.<its
 * columns>[, ref_value] FROM bak.table b WHERE where.  ref (a foreign
 * key, NULL: none) is filled with ref_value, an expression over b.  The
 * rows added, or -1.
 */
static int
copy_rows(sqlite3 *db, const char *table, const char *ref,
    const char *ref_value, const char *where, int ignore, struct err *e)
{
	char cols[COLS_MAX], bcols[COLS_MAX], *sql;
	int rc = -1;

	if (columns(db, table, ref, "", cols, sizeof cols, e) == -1 ||
	    columns(db, table, ref, "b.", bcols, sizeof bcols, e) == -1)
		return -1;
	if ((sql = malloc(SQL_MAX)) == NULL)
		return err_sys(e, "malloc");
	if (snprintf(sql, SQL_MAX, "INSERT %sINTO main.\"%s\" (%s%s%s) "
	    "SELECT %s%s%s FROM bak.\"%s\" b WHERE %s", ignore ? "OR IGNORE " :
	    "", table, cols, ref ? ", " : "", ref ? ref : "", bcols,
	    ref ? ", " : "", ref ? ref_value : "", table, where) >= SQL_MAX)
		err_set(e, ENAMETOOLONG, "%s: statement too long", table);
	else if (db_exec(db, sql, e) == 0)
		rc = sqlite3_changes(db);
	free(sql);
	return rc;
}

/* The purged instances' rows, parents first (foreign keys by natural
 * keys); their number, or -1. */
static long
copy_purged(sqlite3 *db, struct err *e)
{
	long n;

	if (db_exec(db, "DROP TABLE IF EXISTS temp.rebuild_purged;"
	    "CREATE TEMP TABLE rebuild_purged AS SELECT b.id FROM "
	    "bak.instances b WHERE b.purged_at IS NOT NULL AND "
	    "b.sop_instance_uid NOT IN (SELECT sop_instance_uid FROM "
	    "main.instances)", e) == -1 ||
	    copy_rows(db, "patients", NULL, NULL, "b.id IN (SELECT "
	    "st.patient_ref FROM bak.studies st JOIN bak.series se ON "
	    "se.study_ref = st.id JOIN bak.instances i ON i.series_ref = "
	    "se.id WHERE i.id IN " PURGED ")", 1, e) == -1 ||
	    copy_rows(db, "studies", "patient_ref", "(SELECT m.id FROM "
	    "main.patients m JOIN bak.patients p ON p.patient_id = "
	    "m.patient_id AND p.patient_name = m.patient_name WHERE p.id = "
	    "b.patient_ref)", "b.id IN (SELECT se.study_ref FROM bak.series se "
	    "JOIN bak.instances i ON i.series_ref = se.id WHERE i.id IN "
	    PURGED ")", 1, e) == -1 ||
	    copy_rows(db, "series", "study_ref", "(SELECT m.id FROM "
	    "main.studies m JOIN bak.studies s ON s.study_instance_uid = "
	    "m.study_instance_uid WHERE s.id = b.study_ref)", "b.id IN (SELECT "
	    "series_ref FROM bak.instances WHERE id IN " PURGED ")", 1,
	    e) == -1 ||
	    copy_rows(db, "objects", NULL, NULL, "b.hash IN (SELECT "
	    "object_hash FROM bak.instances WHERE id IN " PURGED ")", 1,
	    e) == -1 ||
	    (n = copy_rows(db, "instances", "series_ref", "(SELECT m.id FROM "
	    "main.series m JOIN bak.series s ON s.series_instance_uid = "
	    "m.series_instance_uid WHERE s.id = b.series_ref)", "b.id IN "
	    PURGED, 0, e)) == -1 ||
	    copy_rows(db, "receipts", NULL, NULL, "b.object_hash IN (SELECT "
	    "object_hash FROM bak.instances WHERE id IN " PURGED ")", 1,
	    e) == -1 ||
	    db_exec(db, "DROP TABLE temp.rebuild_purged", e) == -1)
		return -1;
	return n;
}

/* The commitment tables as they are (ids kept: items and duplicate_of
 * point at them), claims dropped; the requests added, or -1. */
static long
copy_commitments(sqlite3 *db, struct err *e)
{
	long n;

	if ((n = copy_rows(db, "commitment_requests", "id", "b.id",
	    "1 ORDER BY b.id", 1, e)) == -1 ||
	    copy_rows(db, "commitment_items", NULL, NULL, "b.request_ref IN "
	    "(SELECT id FROM main.commitment_requests)", 1, e) == -1 ||
	    db_exec(db, "UPDATE main.commitment_requests SET claimed_by = "
	    "NULL, claimed_until = NULL", e) == -1)
		return -1;
	return n;
}

/* Instances the backup holds that the store no longer has. */
static long
missing(sqlite3 *db, struct err *e)
{
	sqlite3_stmt *st;
	long n = -1;

	if (db_prepare(db, &st, "SELECT count(*) FROM bak.instances WHERE "
	    "purged_at IS NULL AND sop_instance_uid NOT IN (SELECT "
	    "sop_instance_uid FROM main.instances)", e) == -1)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = (long)sqlite3_column_int64(st, 0);
	else
		err_set(e, db_errno(db), "sqlite: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return n;
}

static int
attach(sqlite3 *db, const char *path, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_prepare(db, &st, "ATTACH DATABASE ?1 AS bak", e) == -1)
		return -1;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	rc = db_step_done(db, st, e);
	sqlite3_finalize(st);
	return rc;
}

int
rebuild_from_backup(sqlite3 *db, const char *backup, const char *scratch,
    struct rebuild_stats *out, struct err *e)
{
	struct rebuild_stats st = { 0 };
	int rc = -1;

	memset(out, 0, sizeof *out);
	if (copy_backup(backup, scratch, e) == -1)
		return -1;
	if (attach(db, scratch, e) == -1) {
		db_remove(scratch);
		return -1;
	}
	if (db_exec(db, "BEGIN IMMEDIATE", e) == 0) {
		if ((st.missing = missing(db, e)) >= 0 &&
		    (st.purged = copy_purged(db, e)) >= 0 &&
		    (st.commitments = copy_commitments(db, e)) >= 0 &&
		    db_exec(db, "COMMIT", e) == 0)
			rc = 0;
		else
			db_exec(db, "ROLLBACK", NULL);
	}
	db_exec(db, "DETACH DATABASE bak", NULL);
	db_remove(scratch);
	if (rc == 0)
		*out = st;
	return rc;
}
