/*
 * db: SQLite the same way everywhere.
 *
 * db_open() sets WAL, synchronous=FULL (a committed transaction survives a
 * power cut: a spool job is finished only after its commit), a busy
 * timeout, and foreign keys.  db_migrate() brings a database's schema up
 * to date from an embedded schema text made of sections that each start
 * with a line "-- version: N"; each section runs once, in its own
 * transaction, and PRAGMA user_version records the last one applied.
 * A database newer than the program is refused, never touched.
 *
 * Schemas (sql/NAME.sql) are compiled in as strings: db_schema_pacs.
 */
#ifndef GW_DB_H
#define GW_DB_H

#include <sqlite3.h>

#include "err.h"

#define DB_BUSY_TIMEOUT_MS 10000

extern const char db_schema_pacs[];
extern const char db_schema_worklist[];

int db_open(sqlite3 **out, const char *path, struct err *e);

/*
 * As db_open(), for a database that must already exist (hand-run tools,
 * servers that only read it): never creates one.  -1 with e saying
 * "no pacs.db at PATH: run gatewayd or dcmindex --init" (the file's own
 * name) when path does not exist, or why it cannot be opened.
 */
int db_open_existing(sqlite3 **out, const char *path, struct err *e);
void db_close(sqlite3 *db);

/* Apply the schema's missing versions.  Returns the version now. */
int db_migrate(sqlite3 *db, const char *schema, struct err *e);

/* The highest "-- version: N" in a schema text. */
int db_schema_version(const char *schema);

/* The errno closest to the connection's last SQLite error: ENOSPC (full),
 * EBUSY (locked), ENOMEM, EROFS, EINVAL (constraint: the data is wrong),
 * else EIO.  Every db_ error carries it in struct err.code. */
int db_errno(sqlite3 *db);

int db_exec(sqlite3 *db, const char *sql, struct err *e);
int db_prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql,
    struct err *e);

/* Step a statement that returns no rows, then reset it. */
int db_step_done(sqlite3 *db, sqlite3_stmt *st, struct err *e);

/*
 * SQLite online backup of src's main database to path: written beside it
 * (path.tmp), fsynced, renamed into place, directory fsynced, so path is
 * either the old file or a whole new copy.
 */
int db_backup(sqlite3 *src, const char *path, struct err *e);

/* Bind text, or NULL when s is NULL or empty. */
int db_bind_text(sqlite3_stmt *st, int i, const char *s);

#endif
