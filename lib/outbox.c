/*
 * outbox: one relay-spool job as relaysend handles it (see outbox.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "outbox.h"
#include "upload.h"

long long
outbox_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void
outbox_line(char *dst, size_t dstsz, const char *src)
{
	size_t n = strnlen(src, dstsz - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
	for (char *s = dst; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

int
outbox_is(const struct outbox_job *j, const char *kind)
{
	return strcmp(j->kind, kind) == 0;
}

static void
get(const char *body, const char *key, char *out, size_t outsz)
{
	if (spool_job_get(body, key, out, outsz) == -1)
		out[0] = '\0';
}

void
outbox_parse(const char *body, struct outbox_job *j)
{
	char n[32];

	get(body, "kind", j->kind, sizeof j->kind);
	get(body, "object", j->object, sizeof j->object);
	get(body, "sop_instance_uid", j->sop_instance_uid,
	    sizeof j->sop_instance_uid);
	get(body, "study_instance_uid", j->study_instance_uid,
	    sizeof j->study_instance_uid);
	get(body, "accession_number", j->accession_number,
	    sizeof j->accession_number);
	get(body, "source_message_id", j->source_message_id,
	    sizeof j->source_message_id);
	get(body, "message_id", j->message_id, sizeof j->message_id);
	get(body, "error", j->error, sizeof j->error);
	get(body, "attempts", n, sizeof n);
	j->attempts = atoi(n);
	get(body, "next_attempt_ms", n, sizeof n);
	j->next_attempt_ms = atoll(n);
	get(body, "priority", n, sizeof n);
	j->high = strcmp(n, "high") == 0;
	get(body, "requested", n, sizeof n);
	j->requested = strcmp(n, "1") == 0;
}

/* Keys outbox_format writes itself; any other line of the body is kept. */
static int
known_key(const char *line)
{
	static const char *const keys[] = { "kind", "object",
	    "sop_instance_uid", "study_instance_uid", "accession_number",
	    "source_message_id", "message_id", "error", "attempts",
	    "next_attempt_ms" };
	size_t n = strcspn(line, "=\n");

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strlen(keys[i]) == n && strncmp(line, keys[i], n) == 0)
			return 1;
	return 0;
}

int
outbox_format(const struct outbox_job *j, char **out)
{
	size_t len = 0;
	FILE *f = open_memstream(out, &len);
	const char *p, *eol;

	if (f == NULL)
		return -1;
	fprintf(f, "kind=%s\nobject=%s\nsop_instance_uid=%s\n"
	    "study_instance_uid=%s\naccession_number=%s\n"
	    "source_message_id=%s\nerror=%s\nattempts=%d\n"
	    "next_attempt_ms=%lld\n", j->kind, j->object, j->sop_instance_uid,
	    j->study_instance_uid, j->accession_number, j->source_message_id,
	    j->error, j->attempts, j->next_attempt_ms);
	if (j->message_id[0] != '\0')
		fprintf(f, "message_id=%s\n", j->message_id);
	for (p = j->body; p != NULL && *p != '\0'; p = eol ? eol + 1 : NULL) {
		eol = strchr(p, '\n');
		if (*p != '\n' && !known_key(p))
			fprintf(f, "%.*s\n", (int)(eol ? eol - p :
			    (ptrdiff_t)strlen(p)), p);
	}
	if (ferror(f)) {
		fclose(f);
		free(*out);
		*out = NULL;
		return -1;
	}
	if (fclose(f) != 0 || len > SPOOL_JOB_MAX) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return (int)len;
}

/* A failure is returned: the caller decides whether the step may count
 * as done without it. */
int
outbox_set_upload(struct outbox *o, const struct outbox_job *j,
    const char *status, const char *error, long long next_ms)
{
	static const char sql[] =
	    "UPDATE instances SET upload_status = ?1, "
	    "upload_attempt_count = ?2, upload_error = ?3, "
	    "upload_next_attempt_at = ?4, "
	    "uploaded_at = CASE WHEN ?1 = 'COMPLETE' THEN ?5 "
	    "ELSE uploaded_at END WHERE sop_instance_uid = ?6";
	char next[40] = "", now[32];
	sqlite3_stmt *st;
	struct err e = { 0 };
	int rc;

	if (j->sop_instance_uid[0] == '\0')
		return 0;
	if (next_ms > 0) {
		struct timespec at = { (time_t)(next_ms / 1000),
		    (long)(next_ms % 1000) * 1000000 };

		pacs_timestamp_at(&at, next);
	}
	pacs_timestamp(now);
	if (db_prepare(o->db, &st, sql, &e) == -1) {
		log_err("pacs.db update failed", &e);
		return -1;
	}
	sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, j->attempts);
	db_bind_text(st, 3, error);
	db_bind_text(st, 4, next);
	sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, j->sop_instance_uid, -1, SQLITE_STATIC);
	rc = db_step_done(o->db, st, &e);
	sqlite3_finalize(st);
	if (rc == -1)
		log_err("pacs.db update failed", &e);
	return rc;
}

/* Put a claimed job back as it was (we are stopping mid-request). */
void
outbox_unclaim(struct outbox *o, const struct outbox_job *j)
{
	struct err e = { 0 };

	if (spool_unclaim(o->spool, j->name, &e) == -1)
		log_warn("cannot put a job back; recovered at start",
		    "job=%s error=\"%s\"", j->name, e.msg);
	o->remaining++;
}

/* Did a producer queue a job of this name while we held the claim? */
static int
replaced(const struct outbox *o, const char *name)
{
	char path[PATH_MAX];

	return snprintf(path, sizeof path, "%s/new/%s", o->spool->dir,
	    name) < (int)sizeof path && access(path, F_OK) == 0;
}

/*
 * Try again later (the attempt is already counted): the new state, with
 * the next attempt time, goes into the job (re-enqueued under its name,
 * then the claim is dropped), so a restart keeps the schedule.  A job a
 * producer queued under the same name meanwhile (an images.request for
 * the same object) is newer: it stands, and the claim is dropped.
 */
void
outbox_defer(struct outbox *o, struct outbox_job *j, const char *msg,
    const char *why, long retry_after)
{
	char *body, q[600];
	struct err e = { 0 };
	long long delay;
	int n;

	delay = upload_backoff_ms(j->attempts, o->retry_max_seconds,
	    retry_after, arc4random());
	j->next_attempt_ms = outbox_now_ms() + delay;
	outbox_line(j->error, sizeof j->error, why);
	o->deferred++;
	o->remaining++;
	log_warn(msg, "job=%s kind=%s accession_number=%s "
	    "sop_instance_uid=%s attempts=%d retry_in_ms=%lld error=%s",
	    j->name, j->kind, j->accession_number, j->sop_instance_uid,
	    j->attempts, delay, log_quote(j->error, q, sizeof q));
	if (outbox_is(j, OUTBOX_IMAGE))
		outbox_set_upload(o, j, "WAITING", j->error, j->next_attempt_ms);
	if (replaced(o, j->name)) {
		log_info("a newer job of the same name waits: it stands",
		    "job=%s", j->name);
		outbox_done(o, j);
		return;
	}
	if ((n = outbox_format(j, &body)) == -1) {
		log_error("cannot reschedule job: its body does not fit",
		    "job=%s", j->name);
		return;	/* the claim stays in cur/: recovered at start */
	}
	if (spool_enqueue(o->spool, j->name, body, (size_t)n, 0, &e) == -1 ||
	    spool_finish(o->spool, j->name, &e) == -1) {
		/* The claim stays in cur/: recovered at the next start. */
		log_err("cannot reschedule job", &e);
	}
	free(body);
}

int
outbox_park(struct outbox *o, struct outbox_job *j, const char *reason)
{
	char q[600];
	struct err e = { 0 };

	outbox_line(j->error, sizeof j->error, reason);
	o->rejected++;
	log_error("job failed for good", "job=%s kind=%s accession_number=%s "
	    "sop_instance_uid=%s reason=%s", j->name, j->kind,
	    j->accession_number, j->sop_instance_uid,
	    log_quote(j->error, q, sizeof q));
	if (outbox_is(j, OUTBOX_IMAGE))
		outbox_set_upload(o, j, "FAILED", j->error, 0);
	if (spool_fail(o->spool, j->name, j->error, &e) == -1) {
		log_err("cannot park job", &e);
		return -1;
	}
	return 0;
}

void
outbox_done(struct outbox *o, const struct outbox_job *j)
{
	struct err e = { 0 };

	if (spool_finish(o->spool, j->name, &e) == -1)
		log_err("cannot finish job", &e);
}

int
outbox_save_claimed(struct outbox *o, const struct outbox_job *j,
    struct err *e)
{
	char *body;
	int n, rc;

	if ((n = outbox_format(j, &body)) == -1)
		return err_set(e, ENOMEM, "job body too long");
	rc = spool_rewrite(o->spool, j->name, body, (size_t)n, e);
	free(body);
	return rc;
}

int
outbox_find_action(struct outbox *o, struct outbox_job *j)
{
	struct worklist_item item;
	char why[600];
	struct err e = { 0 };
	int r;

	r = j->accession_number[0] == '\0' ? WL_NOT_FOUND :
	    worklist_get(o->worklist, j->accession_number, &item, &e);
	if (r == -1)
		{ outbox_defer(o, j, "will retry", e.msg, -1); return 1; }
	if (r == WL_NOT_FOUND || item.source_message_id[0] == '\0') {
		snprintf(why, sizeof why, "no worklist item with a source "
		    "message id for accession number \"%s\"",
		    j->accession_number);
		if (o->no_match_report)
			{ outbox_park(o, j, why); return 1; }
		{ outbox_defer(o, j, "waits for a worklist item", why, -1);
		  return 1; }
	}
	memcpy(j->source_message_id, item.source_message_id,
	    sizeof j->source_message_id);
	return 0;
}
