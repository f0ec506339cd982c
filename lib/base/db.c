#include "base/base.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


int
db_errno(sqlite3 *db)
{
	switch (sqlite3_errcode(db) & 0xff) {
	case SQLITE_FULL:
		return ENOSPC;
	case SQLITE_BUSY: case SQLITE_LOCKED:
		return EBUSY;
	case SQLITE_NOMEM:
		return ENOMEM;
	case SQLITE_READONLY:
		return EROFS;
	case SQLITE_CONSTRAINT: case SQLITE_MISMATCH: case SQLITE_TOOBIG:
	case SQLITE_RANGE:
		return EINVAL;
	}
	return EIO;
}

static int
db_err(sqlite3 *db, struct err *e, const char *what)
{
	return err_set(e, db_errno(db), "sqlite: %s: %s", what,
	    sqlite3_errmsg(db));
}

static int
open_flags(sqlite3 **out, const char *path, int flags, struct err *e)
{
	sqlite3 *db = NULL;

	*out = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | flags |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		err_set(e, EIO, "sqlite: open %s: %s", path,
		    db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);
	if (db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	    "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;", e) == -1) {
		err_wrap(e, "%s", path);
		sqlite3_close(db);
		return -1;
	}
	*out = db;
	return 0;
}

int
db_open(sqlite3 **out, const char *path, struct err *e)
{
	return open_flags(out, path, SQLITE_OPEN_CREATE, e);
}

int
db_open_existing(sqlite3 **out, const char *path, struct err *e)
{
	const char *base = strrchr(path, '/');
	struct stat st;

	*out = NULL;
	if (stat(path, &st) == -1) {
		if (errno == ENOENT)
			return err_set(e, ENOENT, "no %s at %s: run gatewayd "
			    "or dcmindex --init", base ? base + 1 : path, path);
		return err_sys(e, "%s", path);
	}
	if (!S_ISREG(st.st_mode))
		return err_set(e, EINVAL, "%s is not a database file", path);
	return open_flags(out, path, 0, e);
}

void
db_close(sqlite3 *db)
{
	sqlite3_close(db);
}

void
db_remove(const char *path)
{
	char p[PATH_MAX + 8];

	snprintf(p, sizeof p, "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", path);
	unlink(p);
	unlink(path);
}

int
db_exec(sqlite3 *db, const char *sql, struct err *e)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		err_set(e, db_errno(db), "sqlite: %s",
		    msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int
db_prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql, struct err *e)
{
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
	    NULL) != SQLITE_OK)
		return db_err(db, e, "prepare");
	return 0;
}

int
db_step_done(sqlite3 *db, sqlite3_stmt *st, struct err *e)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_err(db, e, "step");
	return 0;
}

int
db_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL || *s == '\0')
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

static const char marker[] = "-- version: ";
static const char views_marker[] = "\n-- views\n";

/* Where the versions end: the views section, else the end. */
static const char *
versions_end(const char *schema)
{
	const char *v = strstr(schema, views_marker);

	return v != NULL ? v + 1 : schema + strlen(schema);
}

/* The section for version v: pointer to its text, length in *len. */
static const char *
section(const char *schema, int v, size_t *len)
{
	const char *p = schema, *start = NULL, *end = versions_end(schema);

	while ((p = strstr(p, marker)) != NULL && p < end) {
		if (p != schema && p[-1] != '\n') {
			p++;
			continue;
		}
		int n = atoi(p + sizeof marker - 1);
		if (start != NULL) {
			*len = (size_t)(p - start);
			return start;
		}
		if (n == v)
			start = p;
		p++;
	}
	if (start != NULL)
		*len = (size_t)(end - start);
	return start;
}

int
db_schema_version(const char *schema)
{
	const char *p = schema;
	int max = 0;

	while ((p = strstr(p, marker)) != NULL) {
		int n = atoi(p + sizeof marker - 1);
		if (n > max)
			max = n;
		p++;
	}
	return max;
}

static int
user_version(sqlite3 *db, int *v, struct err *e)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_err(db, e, "user_version");
	*v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return 0;
}

/* Apply section v unless another process did it first. */
static int
apply_version(sqlite3 *db, const char *schema, int v, struct err *e)
{
	char pragma[64], *sql;
	const char *text;
	size_t len;
	int have;

	if ((text = section(schema, v, &len)) == NULL)
		return err_set(e, EINVAL, "schema has no version %d", v);
	if (db_exec(db, "BEGIN IMMEDIATE", e) == -1)
		return -1;
	if (user_version(db, &have, e) == -1)
		goto fail;
	if (have >= v)
		return db_exec(db, "COMMIT", e);
	if ((sql = strndup(text, len)) == NULL) {
		err_sys(e, "malloc");
		goto fail;
	}
	snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d;", v);
	if (db_exec(db, sql, e) == -1 || db_exec(db, pragma, e) == -1 ||
	    (v == db_schema_version(schema) &&
	    db_exec(db, versions_end(schema), e) == -1)) {
		free(sql);
		goto fail;
	}
	free(sql);
	return db_exec(db, "COMMIT", e);
fail:
	db_exec(db, "ROLLBACK", NULL);
	return err_wrap(e, "schema version %d", v);
}

int
db_migrate(sqlite3 *db, const char *schema, struct err *e)
{
	int have, want = db_schema_version(schema);

	if (user_version(db, &have, e) == -1)
		return -1;
	if (have > want)
		return err_set(e, EINVAL, "database schema version %d is newer "
		    "than this program's %d: refusing to touch it", have, want);
	for (int v = have + 1; v <= want; v++)
		if (apply_version(db, schema, v, e) == -1)
			return -1;
	return want;
}

int
db_backup(sqlite3 *src, const char *path, struct err *e)
{
	sqlite3 *dst = NULL;
	sqlite3_backup *bk;
	char tmp[PATH_MAX];
	int rc;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
		return err_set(e, ENAMETOOLONG, "%s: path too long", path);
	unlink(tmp);
	if (sqlite3_open(tmp, &dst) != SQLITE_OK) {
		err_set(e, EIO, "sqlite: open %s: %s", tmp,
		    dst ? sqlite3_errmsg(dst) : "out of memory");
		sqlite3_close(dst);
		return -1;
	}
	if ((bk = sqlite3_backup_init(dst, "main", src, "main")) == NULL) {
		err_set(e, EIO, "sqlite: backup to %s: %s", tmp,
		    sqlite3_errmsg(dst));
		sqlite3_close(dst);
		unlink(tmp);
		return -1;
	}
	rc = sqlite3_backup_step(bk, -1);
	sqlite3_backup_finish(bk);
	if (rc != SQLITE_DONE) {
		err_set(e, rc == SQLITE_FULL ? ENOSPC : EIO,
		    "sqlite: backup to %s: %s", tmp, sqlite3_errstr(rc));
		sqlite3_close(dst);
		unlink(tmp);
		return -1;
	}
	if (sqlite3_close(dst) != SQLITE_OK)
		return err_set(e, EIO, "sqlite: close %s", tmp);
	if (fs_sync_file(tmp, e) == -1) {
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) == -1) {
		err_sys(e, "rename %s", tmp);
		unlink(tmp);
		return -1;
	}
	return fs_sync_parent(path, e);
}
