/*
 * qr_status: qrscp as others see it: run/qr.state (written by its
 * parent), a run/qr-move.PID file per retrieval in progress, and the
 * commitment requests pacs.db still holds.  Reads only.
 */
#include "qr/qr.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

static int
alive(long pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static void
parse_state(struct qr_status *st, char *text)
{
	char *line, *save = NULL, *eq;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((eq = strchr(line, '=')) == NULL)
			continue;
		*eq++ = '\0';
		if (strcmp(line, "aet") == 0)
			snprintf(st->aet, sizeof st->aet, "%s", eq);
		else if (strcmp(line, "port") == 0)
			st->port = atoi(eq);
		else if (strcmp(line, "associations") == 0)
			st->associations = atoi(eq);
		else if (strcmp(line, "pid") == 0)
			st->pid = atol(eq);
	}
}

static int
count_moves(const char *run_dir)
{
	DIR *d = opendir(run_dir);
	struct dirent *de;
	char *end;
	long pid;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "qr-move.", 8) != 0)
			continue;
		pid = strtol(de->d_name + 8, &end, 10);
		if (*end == '\0' && alive(pid))
			n++;
	}
	closedir(d);
	return n;
}

static long
pending_commitments(const struct config *c)
{
	struct err e = { 0 };
	sqlite3 *db;
	long n = -1;

	if (access(c->pacs_db_path, R_OK) == -1 ||
	    sqlite3_open_v2(c->pacs_db_path, &db, SQLITE_OPEN_READONLY,
	    NULL) != SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(db, 1000);
	if (qr_commit_pending(db, &n, &e) == -1)
		n = -1;
	sqlite3_close(db);
	return n;
}

int
qr_status_read(const struct config *c, struct qr_status *st, struct err *e)
{
	char path[PATH_MAX], run[PATH_MAX], *text = NULL;
	struct err fe = { 0 };

	memset(st, 0, sizeof *st);
	st->port = c->qr_port;
	snprintf(st->aet, sizeof st->aet, "%s", c->qr_aet);
	if (snprintf(run, sizeof run, "%s/run", c->data_dir) >=
	    (int)sizeof run || snprintf(path, sizeof path, "%s/qr.state",
	    run) >= (int)sizeof path)
		return err_set(e, ENAMETOOLONG, "data directory path too long");
	if (fs_read_small(path, 4096, &text, NULL, &fe) == 0) {
		st->present = 1;
		parse_state(st, text);
		free(text);
		st->running = alive(st->pid);
	}
	st->moves = st->running ? count_moves(run) : 0;
	st->pending_commitments = pending_commitments(c);
	return 0;
}
