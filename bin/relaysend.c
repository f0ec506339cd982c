/*
 * relaysend: deliver the relay spool to the cloud.  This part: images,
 * uploaded to the Manage API over HTTPS (PROTOCOL.md §5).
 *
 *   relaysend [--once] [--no-match wait|report] [--max-send-rate B]
 *   relaysend --retry-failed
 *
 * Only jobs of the kinds it handles are claimed: "image" (written by
 * dcmindex) and "image_failure" (its own failure reports); others
 * (study.image_received, mpps.status_update) stay in new/ untouched.  A
 * job is claimed by renaming new/NAME to cur/NAME after reading its body.
 *
 * Delivery is at least once.  A transient failure (no answer, 408, 429,
 * 5xx, and 401/403, which mean the token or the cloud's configuration is
 * wrong) re-enqueues the job under its own name with attempts= and
 * next_attempt_ms= (exponential back-off with jitter, capped, never
 * sooner than Retry-After), so the schedule survives a restart.  Any
 * other 4xx parks the job in failed/ with the reason and queues a
 * failure report (PATCH …/failure).  pacs.db mirrors every step in
 * instances.upload_status; the job file is what decides.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "config.h"
#include "db.h"
#include "fsutil.h"
#include "log.h"
#include "pacs.h"
#include "relay.h"
#include "spool.h"
#include "store.h"
#include "upload.h"
#include "worklist.h"

#define WAIT_MS			5000	/* rescan new/ at least this often */
#define RETRY_MAX_DEFAULT	600
#define TOKEN_COMMAND_SECONDS	30
#define TOKEN_MAX_AGE_SECONDS	300

static volatile sig_atomic_t stopping;

struct sender {
	struct config cfg;
	struct store store;
	struct spool relay;
	sqlite3 *db;
	struct worklist *worklist;
	struct upload *up;
	const char *endpoint;
	const char *token, *token_command;
	char authorization[RELAY_TOKEN_OUT];
	time_t token_at;		/* 0: none yet */
	long retry_max_seconds;
	int no_match_report;
	long uploaded, rejected, deferred;
	int remaining;			/* our jobs still queued (--once) */
	long long next_due_ms;		/* earliest not-yet-due job */
};

struct job {
	char name[SPOOL_NAME_MAX];
	char kind[32];
	char object[STORE_HASH_LEN + 1];
	char sop_instance_uid[PACS_UI], study_instance_uid[PACS_UI];
	char accession_number[PACS_LO];
	char source_message_id[WL_FIELD];	/* image_failure */
	char error[512];		/* last error, or the reported one */
	int attempts;
	long long next_attempt_ms;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: relaysend [--once] [--no-match wait|report] "
	    "[--max-send-rate BYTES]\n"
	    "       relaysend --retry-failed\n"
	    "\n"
	    "Uploads stored images from the relay spool to the Manage API.\n"
	    "\n"
	    "  --once            send what is due and exit (default: follow)\n"
	    "  --no-match MODE   image without a worklist item: wait (default,\n"
	    "                    retried later) or report (parked in failed/)\n"
	    "  --max-send-rate B upload at most B bytes per second (0: no cap)\n"
	    "  --retry-failed    move failed jobs back to the queue and exit\n"
	    "  -h, --help        this help\n"
	    "  --version         print the version\n"
	    "\n"
	    "Environment: CLOUD_API_ENDPOINT, CLOUD_API_TOKEN or\n"
	    "CLOUD_API_TOKEN_COMMAND, GATEWAY_CA_FILE, RELAY_RETRY_MAX_SECONDS,\n"
	    "RELAY_NO_MATCH, RELAY_MAX_SEND_BYTES_PER_SECOND,\n"
	    "RELAY_CONNECT_TIMEOUT_SECONDS, RELAY_LOW_SPEED_SECONDS,\n"
	    "RELAY_UPLOAD_TIMEOUT_SECONDS, GATEWAY_DATA_DIR, PACS_DB_PATH,\n"
	    "WORKLIST_DB_PATH, GATEWAY_SPOOL_DIR, LOG_LEVEL.  See relaysend(1).\n");
}

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static long long
now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Copy src into dst, cut to fit (error texts may be long). */
static void
copy_cut(char *dst, size_t dstsz, const char *src)
{
	size_t n = strnlen(src, dstsz - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* One line, no control characters: safe in a job body and a log. */
static void
one_line(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

static void
get(const char *body, const char *key, char *out, size_t outsz)
{
	if (spool_job_get(body, key, out, outsz) == -1)
		out[0] = '\0';
}

static void
parse_job(const char *body, struct job *j)
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
	get(body, "error", j->error, sizeof j->error);
	get(body, "attempts", n, sizeof n);
	j->attempts = atoi(n);
	get(body, "next_attempt_ms", n, sizeof n);
	j->next_attempt_ms = atoll(n);
}

static int
ours(const struct job *j)
{
	return strcmp(j->kind, "image") == 0 ||
	    strcmp(j->kind, "image_failure") == 0;
}

static int
format_job(const struct job *j, char *out, size_t outsz)
{
	int n = snprintf(out, outsz,
	    "kind=%s\nobject=%s\nsop_instance_uid=%s\nstudy_instance_uid=%s\n"
	    "accession_number=%s\nsource_message_id=%s\nerror=%s\n"
	    "attempts=%d\nnext_attempt_ms=%lld\n", j->kind, j->object,
	    j->sop_instance_uid, j->study_instance_uid, j->accession_number,
	    j->source_message_id, j->error, j->attempts, j->next_attempt_ms);

	return n < 0 || (size_t)n >= outsz ? -1 : n;
}

/* Mirror a job's state in pacs.db.  A failure is returned: the caller
 * decides whether the step may count as done without it. */
static int
set_upload(struct sender *s, const struct job *j, const char *status,
    const char *error, long long next_ms)
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
	if (db_prepare(s->db, &st, sql, &e) == -1) {
		log_err("pacs.db update failed", &e);
		return -1;
	}
	sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, j->attempts);
	db_bind_text(st, 3, error);
	db_bind_text(st, 4, next);
	sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, j->sop_instance_uid, -1, SQLITE_STATIC);
	rc = db_step_done(s->db, st, &e);
	sqlite3_finalize(st);
	if (rc == -1)
		log_err("pacs.db update failed", &e);
	return rc;
}

/* <spool>/<sub>/<name>: 0, or -1 when it does not fit. */
static int
job_path(const struct sender *s, const char *sub, const char *name,
    char out[PATH_MAX])
{
	int n = snprintf(out, PATH_MAX, "%s/%s%s%s", s->relay.dir, sub,
	    name[0] ? "/" : "", name);

	return n < 0 || n >= PATH_MAX ? -1 : 0;
}

/* Put a claimed job back as it was (we are stopping mid-request). */
static void
unclaim(struct sender *s, const struct job *j)
{
	char from[PATH_MAX], to[PATH_MAX];

	if (job_path(s, "cur", j->name, from) == -1 ||
	    job_path(s, "new", j->name, to) == -1 || rename(from, to) == -1)
		log_warn("cannot put a job back; recovered at start",
		    "job=%s", j->name);
	s->remaining++;
}

/*
 * Try again later (the attempt is already counted): the new state, with
 * the next attempt time, goes into the job (re-enqueued under
 * its name, then the claim is dropped), so a restart keeps the schedule.
 */
static void
defer(struct sender *s, struct job *j, const char *msg, const char *why,
    long retry_after)
{
	char body[4096], q[600];
	struct err e = { 0 };
	long long delay;
	int n;

	delay = upload_backoff_ms(j->attempts, s->retry_max_seconds,
	    retry_after, arc4random());
	j->next_attempt_ms = now_ms() + delay;
	copy_cut(j->error, sizeof j->error, why);
	one_line(j->error);
	s->deferred++;
	s->remaining++;
	log_warn(msg, "job=%s kind=%s accession_number=%s "
	    "sop_instance_uid=%s attempts=%d retry_in_ms=%lld error=%s",
	    j->name, j->kind, j->accession_number, j->sop_instance_uid,
	    j->attempts, delay, log_quote(j->error, q, sizeof q));
	if (strcmp(j->kind, "image") == 0)
		set_upload(s, j, "WAITING", j->error, j->next_attempt_ms);
	if ((n = format_job(j, body, sizeof body)) == -1 ||
	    spool_enqueue(&s->relay, j->name, body, (size_t)n, 0, &e) == -1 ||
	    spool_finish(&s->relay, j->name, &e) == -1) {
		/* The claim stays in cur/: recovered at the next start. */
		log_err("cannot reschedule job", &e);
	}
}

/* Park a job in failed/ with the reason. */
static int
park(struct sender *s, struct job *j, const char *reason)
{
	char q[600];
	struct err e = { 0 };

	copy_cut(j->error, sizeof j->error, reason);
	one_line(j->error);
	s->rejected++;
	log_error("job failed for good", "job=%s kind=%s accession_number=%s "
	    "sop_instance_uid=%s reason=%s", j->name, j->kind,
	    j->accession_number, j->sop_instance_uid,
	    log_quote(j->error, q, sizeof q));
	if (strcmp(j->kind, "image") == 0)
		set_upload(s, j, "FAILED", j->error, 0);
	if (spool_fail(&s->relay, j->name, j->error, &e) == -1) {
		log_err("cannot park job", &e);
		return -1;
	}
	return 0;
}

/* The token, from CLOUD_API_TOKEN or (fresh every few minutes) the
 * command.  -1 with e set when the command fails. */
static int
authorization(struct sender *s, struct err *e)
{
	time_t now = time(NULL);

	if (s->token != NULL) {
		if (snprintf(s->authorization, sizeof s->authorization, "%s%s",
		    strncmp(s->token, "Bearer ", 7) == 0 ? "" : "Bearer ",
		    s->token) >= (int)sizeof s->authorization)
			return err_set(e, EINVAL, "CLOUD_API_TOKEN too long");
		return 0;
	}
	if (s->token_at != 0 && now - s->token_at < TOKEN_MAX_AGE_SECONDS)
		return 0;
	if (relay_token_from_command(s->token_command, s->authorization,
	    sizeof s->authorization, TOKEN_COMMAND_SECONDS, e) == -1)
		return -1;
	s->token_at = now;
	return 0;
}

/* {CLOUD_API_ENDPOINT}/{source_message_id}[suffix] */
static int
api_url(struct sender *s, const char *id, const char *suffix, char *out,
    size_t outsz, struct err *e)
{
	char enc[3 * WL_FIELD + 1];
	size_t n = strlen(s->endpoint);

	if (relay_percent_encode(id, enc, sizeof enc, e) == -1)
		return -1;
	while (n > 0 && s->endpoint[n - 1] == '/')
		n--;
	if (snprintf(out, outsz, "%.*s/%s%s", (int)n, s->endpoint, enc,
	    suffix) >= (int)outsz)
		return err_set(e, ENAMETOOLONG, "API URL too long");
	return 0;
}

/* The permanent rejection is reported to the cloud by its own job. */
static int
queue_failure_report(struct sender *s, const struct job *image,
    const char *reason)
{
	struct job r = { 0 };
	char body[4096];
	struct err e = { 0 };
	int n;

	snprintf(r.kind, sizeof r.kind, "image_failure");
	memcpy(r.sop_instance_uid, image->sop_instance_uid,
	    sizeof r.sop_instance_uid);
	memcpy(r.accession_number, image->accession_number,
	    sizeof r.accession_number);
	memcpy(r.source_message_id, image->source_message_id,
	    sizeof r.source_message_id);
	copy_cut(r.error, sizeof r.error, reason);
	one_line(r.error);
	if ((n = format_job(&r, body, sizeof body)) == -1 ||
	    spool_enqueue(&s->relay, NULL, body, (size_t)n, 0, &e) == -1) {
		log_err("cannot queue the failure report", &e);
		return -1;
	}
	s->remaining++;
	return 0;
}

static void
describe(const struct upload_result *r, char *out, size_t outsz)
{
	snprintf(out, outsz, "HTTP %ld: %s", r->status, r->body);
	one_line(out);
}

static void
send_image(struct sender *s, struct job *j, const char *path)
{
	char url[2048], name[PACS_UI + 8], why[700];
	struct upload_result r;
	struct err e = { 0 };

	snprintf(name, sizeof name, "%s.dcm", j->sop_instance_uid);
	if (api_url(s, j->source_message_id, "", url, sizeof url, &e) == -1)
		{ park(s, j, e.msg); return; }
	if (authorization(s, &e) == -1)
		{ defer(s, j, "will retry", e.msg, -1); return; }
	if (set_upload(s, j, "UPLOADING", NULL, 0) == -1)
		{ defer(s, j, "will retry", "pacs.db unavailable", -1); return; }
	if (upload_put_file(s->up, url, s->authorization, path, name, &r,
	    &e) == -1) {
		if (stopping)
			{ unclaim(s, j); return; }
		{ defer(s, j, "will retry", e.msg, -1); return; }
	}
	describe(&r, why, sizeof why);
	if (r.status >= 200 && r.status < 300) {
		j->error[0] = '\0';
		if (set_upload(s, j, "COMPLETE", NULL, 0) == -1)
			{ defer(s, j, "will retry", "pacs.db unavailable "
			    "after the upload", -1); return; }
		if (spool_finish(&s->relay, j->name, &e) == -1)
			log_err("cannot finish job", &e);
		s->uploaded++;
		log_info("uploaded", "accession_number=%s sop_instance_uid=%s "
		    "source_message_id=%s status=%ld bytes=%lld seconds=%.3f",
		    j->accession_number, j->sop_instance_uid,
		    j->source_message_id, r.status, r.bytes_sent, r.seconds);
		return;
	}
	if (upload_status_transient(r.status)) {
		if (r.status == 401 || r.status == 403)
			log_error("the Manage API refuses the token: check "
			    "CLOUD_API_TOKEN or CLOUD_API_TOKEN_COMMAND",
			    "status=%ld", r.status);
		s->token_at = 0;
		{ defer(s, j, "will retry", why, r.retry_after_seconds); return; }
	}
	if (queue_failure_report(s, j, why) == -1)
		{ defer(s, j, "will retry", why, -1); return; }
	park(s, j, why);
}

static void
do_image(struct sender *s, struct job *j)
{
	struct worklist_item item;
	char path[PATH_MAX], why[600];
	struct err e = { 0 };
	struct stat sb;
	int r;

	j->attempts = (j->attempts < 0 ? 0 : j->attempts) + 1;
	if (!store_valid_hash(j->object) || j->sop_instance_uid[0] == '\0')
		{ park(s, j, "job has no valid object= or "
		    "sop_instance_uid="); return; }
	r = j->accession_number[0] == '\0' ? WL_NOT_FOUND :
	    worklist_get(s->worklist, j->accession_number, &item, &e);
	if (r == -1)
		{ defer(s, j, "will retry", e.msg, -1); return; }
	if (r == WL_NOT_FOUND || item.source_message_id[0] == '\0') {
		snprintf(why, sizeof why, "no worklist item with a source "
		    "message id for accession number \"%s\"",
		    j->accession_number);
		if (s->no_match_report)
			{ park(s, j, why); return; }
		{ defer(s, j, "waits for a worklist item", why, -1); return; }
	}
	memcpy(j->source_message_id, item.source_message_id,
	    sizeof j->source_message_id);
	if (store_path(&s->store, j->object, path, sizeof path, &e) == -1)
		{ park(s, j, e.msg); return; }
	if (stat(path, &sb) == -1) {
		snprintf(why, sizeof why, "object %s is not in the store",
		    j->object);
		{ park(s, j, why); return; }
	}
	send_image(s, j, path);
}

static void
do_failure_report(struct sender *s, struct job *j)
{
	char url[2048], why[700], *json;
	struct upload_result r;
	struct err e = { 0 };
	json_t *o;

	j->attempts++;
	if (api_url(s, j->source_message_id, "/failure", url, sizeof url,
	    &e) == -1)
		{ park(s, j, e.msg); return; }
	if (authorization(s, &e) == -1)
		{ defer(s, j, "will retry", e.msg, -1); return; }
	if ((o = json_pack("{s:s}", "error", j->error)) == NULL ||
	    (json = json_dumps(o, JSON_COMPACT)) == NULL) {
		json_decref(o);
		{ defer(s, j, "will retry", "out of memory", -1); return; }
	}
	json_decref(o);
	r.status = 0;
	if (upload_patch_json(s->up, url, s->authorization, json, &r,
	    &e) == -1) {
		free(json);
		if (stopping)
			{ unclaim(s, j); return; }
		{ defer(s, j, "will retry", e.msg, -1); return; }
	}
	free(json);
	describe(&r, why, sizeof why);
	if (r.status >= 200 && r.status < 300) {
		if (spool_finish(&s->relay, j->name, &e) == -1)
			log_err("cannot finish job", &e);
		log_info("failure reported", "accession_number=%s "
		    "sop_instance_uid=%s source_message_id=%s status=%ld",
		    j->accession_number, j->sop_instance_uid,
		    j->source_message_id, r.status);
		return;
	}
	if (upload_status_transient(r.status)) {
		s->token_at = 0;
		{ defer(s, j, "will retry", why, r.retry_after_seconds); return; }
	}
	park(s, j, why);
}

/* Read a waiting job; claim it when it is ours and due.  1 claimed. */
static int
claim(struct sender *s, const char *name, struct job *j)
{
	char from[PATH_MAX], to[PATH_MAX], *body = NULL;
	struct err e = { 0 };

	memset(j, 0, sizeof *j);
	snprintf(j->name, sizeof j->name, "%s", name);
	if (job_path(s, "new", name, from) == -1 ||
	    job_path(s, "cur", name, to) == -1)
		return 0;
	if (fs_read_small(from, SPOOL_JOB_MAX, &body, NULL, &e) == -1)
		return 0;	/* gone meanwhile, or replaced: next pass */
	parse_job(body, j);
	free(body);
	if (!ours(j))
		return 0;
	if (j->next_attempt_ms > now_ms()) {
		s->remaining++;
		if (s->next_due_ms == 0 || j->next_attempt_ms < s->next_due_ms)
			s->next_due_ms = j->next_attempt_ms;
		return 0;
	}
	if (rename(from, to) == -1)
		return 0;
	return 1;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in new/, oldest first (malloc'd array of malloc'd names). */
static int
list_new(struct sender *s, char ***out, size_t *count)
{
	char dir[PATH_MAX], **names = NULL, **t;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	if (job_path(s, "new", "", dir) == -1 || (d = opendir(dir)) == NULL) {
		log_error("cannot read the spool", "dir=%s", dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((t = reallocarray(names, cap, sizeof *t)) == NULL)
				goto oom;
			names = t;
		}
		if ((names[n] = strdup(de->d_name)) == NULL)
			goto oom;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof *names, by_name);
	*out = names;
	*count = n;
	return 0;
oom:
	closedir(d);
	while (n > 0)
		free(names[--n]);
	free(names);
	log_error("out of memory", "dir=%s", dir);
	return -1;
}

/* One pass over new/: send every job of ours that is due. */
static int
pass(struct sender *s)
{
	char **names;
	size_t n;
	struct job j;

	s->remaining = 0;
	s->next_due_ms = 0;
	if (list_new(s, &names, &n) == -1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!stopping && claim(s, names[i], &j)) {
			if (strcmp(j.kind, "image") == 0)
				do_image(s, &j);
			else
				do_failure_report(s, &j);
		}
		free(names[i]);
	}
	free(names);
	return 0;
}

/* Rows left UPLOADING by a crash: their jobs were just recovered. */
static void
log_resumed(struct sender *s, int recovered)
{
	sqlite3_stmt *st;
	struct err e = { 0 };
	int rows = 0;

	if (db_prepare(s->db, &st, "SELECT count(*) FROM instances WHERE "
	    "upload_status = 'UPLOADING'", &e) == -1) {
		log_err("pacs.db query failed", &e);
		return;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		rows = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	log_info("started", "recovered_jobs=%d resumed_uploads=%d",
	    recovered, rows);
}

static int
follow(struct sender *s, int once)
{
	struct err e = { 0 };
	int recovered;
	long long wait;

	if ((recovered = spool_recover(&s->relay, &e)) == -1) {
		log_err("recover failed", &e);
		return EX_SOFTWARE;
	}
	log_resumed(s, recovered);
	while (!stopping) {
		if (pass(s) == -1)
			return EX_SOFTWARE;
		if (once || stopping)
			break;
		wait = s->next_due_ms ? s->next_due_ms - now_ms() : WAIT_MS;
		wait = wait < 20 ? 20 : wait > WAIT_MS ? WAIT_MS : wait;
		if (spool_wait(&s->relay, (int)wait, &e) == -1) {
			log_err("wait failed", &e);
			return EX_SOFTWARE;
		}
	}
	log_info("stopped", "uploaded=%ld failed=%ld deferred=%ld "
	    "queued=%d", s->uploaded, s->rejected, s->deferred, s->remaining);
	if (stopping)
		return EX_OK;
	return once && s->remaining > 0 ? EX_TEMPFAIL : EX_OK;
}

/* A whole number from the environment, or def when unset. */
static int
env_long(const char *name, long lo, long hi, long def, long *out)
{
	const char *v = getenv(name);
	int n;

	*out = def;
	if (v == NULL || *v == '\0')
		return 0;
	if (config_parse_int(v, (int)lo, (int)hi, &n) == -1) {
		log_error("bad setting", "name=%s want=%ld..%ld", name, lo, hi);
		return -1;
	}
	*out = n;
	return 0;
}

static int
no_match_mode(const char *v, int *report)
{
	if (strcmp(v, "wait") == 0)
		*report = 0;
	else if (strcmp(v, "report") == 0)
		*report = 1;
	else
		return -1;
	return 0;
}

static int
configure(struct sender *s, struct upload_opts *o)
{
	const char *nm = getenv("RELAY_NO_MATCH");
	long connect, low, total, rate;

	s->endpoint = getenv("CLOUD_API_ENDPOINT");
	s->token = getenv("CLOUD_API_TOKEN");
	s->token_command = getenv("CLOUD_API_TOKEN_COMMAND");
	if (s->token != NULL && *s->token == '\0')
		s->token = NULL;
	if (s->endpoint == NULL || strncmp(s->endpoint, "https://", 8) != 0) {
		log_error("CLOUD_API_ENDPOINT must be an https:// URL", "%s", "");
		return -1;
	}
	if (s->token == NULL && (s->token_command == NULL ||
	    *s->token_command == '\0')) {
		log_error("set CLOUD_API_TOKEN or CLOUD_API_TOKEN_COMMAND", "%s",
		    "");
		return -1;
	}
	if (nm != NULL && *nm != '\0' && no_match_mode(nm,
	    &s->no_match_report) == -1) {
		log_error("RELAY_NO_MATCH is wait or report", "%s", "");
		return -1;
	}
	if (env_long("RELAY_RETRY_MAX_SECONDS", 1, 86400, RETRY_MAX_DEFAULT,
	    &s->retry_max_seconds) == -1 ||
	    env_long("RELAY_CONNECT_TIMEOUT_SECONDS", 1, 3600, 15,
	    &connect) == -1 ||
	    env_long("RELAY_LOW_SPEED_SECONDS", 1, 3600, 60, &low) == -1 ||
	    env_long("RELAY_UPLOAD_TIMEOUT_SECONDS", 0, 86400, 1800,
	    &total) == -1 ||
	    env_long("RELAY_MAX_SEND_BYTES_PER_SECOND", 0, 2000000000, 0,
	    &rate) == -1)
		return -1;
	*o = (struct upload_opts){ getenv("GATEWAY_CA_FILE"), connect, low,
	    1024, total, rate, &stopping };
	return 0;
}

static int
open_all(struct sender *s, const struct upload_opts *o)
{
	char dir[PATH_MAX];
	struct err e = { 0 };

	if (config_spool_path(&s->cfg, "relay", dir, sizeof dir, &e) == -1 ||
	    spool_open(&s->relay, dir, 1, &e) == -1 ||
	    store_open(&s->store, s->cfg.storage_path, 1, &e) == -1 ||
	    db_open(&s->db, s->cfg.pacs_db_path, &e) == -1 ||
	    db_migrate(s->db, db_schema_pacs, &e) == -1 ||
	    worklist_open(&s->worklist, s->cfg.worklist_db_path, &e) == -1 ||
	    upload_open(&s->up, o, &e) == -1) {
		log_err("cannot start", &e);
		return -1;
	}
	return 0;
}

static void
close_all(struct sender *s)
{
	upload_close(s->up);
	worklist_close(s->worklist);
	if (s->db != NULL)
		db_close(s->db);
	spool_close(&s->relay);
}

/* --retry-failed: failed jobs back to new/, their rows back to PENDING. */
static int
retry_failed(struct sender *s)
{
	struct err e = { 0 };
	int n = spool_retry_failed(&s->relay, &e);

	if (n == -1) {
		log_err("retry failed", &e);
		return EX_SOFTWARE;
	}
	if (db_exec(s->db, "UPDATE instances SET upload_status = 'PENDING', "
	    "upload_next_attempt_at = NULL WHERE upload_status = 'FAILED'",
	    &e) == -1)
		log_err("pacs.db update failed", &e);
	log_info("failed jobs queued again", "jobs=%d", n);
	return EX_OK;
}

static int
run(struct sender *s, int once, int retry, long rate, int no_match)
{
	struct upload_opts o;
	struct err e = { 0 };
	int rc;

	if (config_load(&s->cfg, &e) == -1) {
		log_err("bad configuration", &e);
		return EX_CONFIG;
	}
	if (configure(s, &o) == -1)
		return EX_CONFIG;
	if (rate >= 0)
		o.max_send_bytes_per_second = rate;
	if (no_match >= 0)
		s->no_match_report = no_match;
	if (open_all(s, &o) == -1) {
		close_all(s);
		return EX_CANTCREAT;
	}
	rc = retry ? retry_failed(s) : follow(s, once);
	close_all(s);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "retry-failed", no_argument, NULL, 'R' },
		{ "no-match", required_argument, NULL, 'n' },
		{ "max-send-rate", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct sender s = { 0 };
	struct sigaction sa = { 0 };
	int c, once = 0, retry = 0, no_match = -1, r, rc;
	long rate = -1;

	log_init("relaysend");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': once = 1; break;
		case 'R': retry = 1; break;
		case 'n':
			if (no_match_mode(optarg, &no_match) == -1) {
				fprintf(stderr, "relaysend: --no-match takes "
				    "wait or report\n");
				return EX_USAGE;
			}
			break;
		case 'r':
			if (config_parse_int(optarg, 0, 2000000000, &r) == -1) {
				fprintf(stderr, "relaysend: --max-send-rate "
				    "takes bytes per second\n");
				return EX_USAGE;
			}
			rate = r;
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("relaysend %s\n", GW_VERSION);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc || once + retry > 1) {
		usage(stderr);
		return EX_USAGE;
	}
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialise libcurl", "%s", "");
		return EX_SOFTWARE;
	}
	rc = run(&s, once, retry, rate, no_match);
	curl_global_cleanup();
	return rc;
}
