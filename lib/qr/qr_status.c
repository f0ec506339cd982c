/*
 * qr_status: qrscp as others see it, and the one writer of what they
 * read: run/qr.state (written by qrscp's parent through
 * qr_status_write), a run/qr-move.PID file per retrieval in progress
 * (qr_move.c), and the commitment requests pacs.db still holds.  The
 * readers only read: this file links none of the Q/R server.
 */
#include "qr/qr.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

#define QR_STATE	"qr.state"

int
qr_status_write(const char *data_dir, const char *aet, int port,
    int associations, struct err *e)
{
	struct runstate s;

	runstate_init(&s);
	runstate_put(&s, "aet", "%s", aet);
	runstate_put(&s, "port", "%d", port);
	runstate_put(&s, "associations", "%d", associations);
	runstate_put(&s, "pid", "%ld", (long)getpid());
	return runstate_write(data_dir, QR_STATE, &s, e);
}

static int
count_moves(const char *data_dir)
{
	char run[PATH_MAX];
	struct dirent *de;
	char *end;
	long pid;
	int n = 0;
	DIR *d;

	if (snprintf(run, sizeof run, "%s/run", data_dir) >= (int)sizeof run ||
	    (d = opendir(run)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "qr-move.", 8) != 0)
			continue;
		pid = strtol(de->d_name + 8, &end, 10);
		if (*end == '\0' && runstate_pid_alive(pid))
			n++;
	}
	closedir(d);
	return n;
}

int
qr_commit_pending(sqlite3 *db, long *pending, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	*pending = 0;
	if (db_prepare(db, &st, "SELECT count(*) FROM commitment_requests "
	    "WHERE state = 'PENDING'", e) == -1)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*pending = (long)sqlite3_column_int64(st, 0);
	else
		err_set(e, EIO, "commitment requests: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Pending commitment requests, pacs.db opened read-only; -1 unknown. */
static long
pending_commitments(const struct config *c)
{
	struct err e = { 0 };
	sqlite3 *db;
	long n = -1;

	if (access(c->pacs_db_path, R_OK) == -1)
		return -1;
	if (sqlite3_open_v2(c->pacs_db_path, &db, SQLITE_OPEN_READONLY,
	    NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(db, 1000);
		if (qr_commit_pending(db, &n, &e) == -1)
			n = -1;
	}
	sqlite3_close(db);
	return n;
}

int
qr_status_read(const struct config *c, struct qr_status *st, struct err *e)
{
	struct runstate s;
	struct err re = { 0 };
	int rc;

	memset(st, 0, sizeof *st);
	st->port = c->qr_port;
	snprintf(st->aet, sizeof st->aet, "%s", c->qr_aet);
	/* run/ closed to this user: not known to run (the status says why) */
	if ((rc = runstate_read(c->data_dir, QR_STATE, &s, &re)) == -1 &&
	    re.code != EACCES) {
		if (e != NULL)
			*e = re;
		return -1;
	}
	if (rc == 0) {
		st->present = 1;
		runstate_get(&s, "aet", st->aet, sizeof st->aet);
		st->port = (int)runstate_get_ll(&s, "port", c->qr_port);
		st->associations = (int)runstate_get_ll(&s, "associations",
		    0);
		st->pid = (long)runstate_get_ll(&s, "pid", 0);
		st->running = runstate_pid_alive(st->pid);
	}
	st->moves = st->running ? count_moves(c->data_dir) : 0;
	st->pending_commitments = pending_commitments(c);
	return 0;
}

void
qr_status_line(const struct qr_status *st, char *out, size_t outsz)
{
	char pending[32];

	if (!st->running) {
		snprintf(out, outsz, "%s (AE %s, port %d)", st->present ?
		    "not running" : "not started", st->aet, st->port);
		return;
	}
	if (st->pending_commitments < 0)
		snprintf(pending, sizeof pending, "unknown");
	else
		snprintf(pending, sizeof pending, "%ld",
		    st->pending_commitments);
	snprintf(out, outsz, "running (pid %ld) AE %s port %d, %d "
	    "association%s, %d retrieval%s in progress, commitments "
	    "pending: %s", st->pid, st->aet, st->port, st->associations,
	    st->associations == 1 ? "" : "s", st->moves,
	    st->moves == 1 ? "" : "s", pending);
}
