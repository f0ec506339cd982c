/*
 * relaysend: deliver the relay spool to the cloud: images uploaded to the
 * Manage API over HTTPS (PROTOCOL.md §5), events sent over Azure Relay as
 * a WebSocket sender (§3-4).
 *
 *   relaysend [--once] [--jobs N] [--no-match wait|report]
 *             [--max-send-rate B]
 *   relaysend --retry-failed
 *
 * Job kinds: "image" (written by dcmindex) and "image_failure" (its own
 * failure reports) when CLOUD_API_ENDPOINT is set; "study.image_received"
 * (dcmthumb) and "mpps.status_update" (mwlscp's outbox) when the events
 * hybrid connection is configured.  Kinds that are off stay in new/
 * untouched.  A job is claimed by renaming new/NAME to cur/NAME after
 * reading its body.  With --jobs N, N worker processes share the spool;
 * each job name belongs to exactly one worker (a hash of the name), so
 * two workers never hold the same job, and the parent passes the spool's
 * wake-ups on to every worker.
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
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "config.h"
#include "db.h"
#include "event.h"
#include "fsutil.h"
#include "log.h"
#include "pacs.h"
#include "relay.h"
#include "spool.h"
#include "store.h"
#include "transcode.h"
#include "upload.h"
#include "worklist.h"
#include "ws.h"

#define WAIT_MS			5000	/* rescan new/ at least this often */
#define RETRY_MAX_DEFAULT	600
#define TOKEN_COMMAND_SECONDS	30
#define TOKEN_MAX_AGE_SECONDS	300
#define EVENT_REPLY_MS		10000	/* PROTOCOL.md §3: wait 10 s */
#define EVENT_REPLY_MAX		65536
#define JOBS_MAX		64

#define KIND_IMAGE		"image"
#define KIND_FAILURE		"image_failure"
#define KIND_IMAGE_EVENT	"study.image_received"
#define KIND_MPPS_EVENT		"mpps.status_update"

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
	long uploaded, rejected, deferred, events;
	int remaining;			/* our jobs still queued (--once) */
	long long next_due_ms;		/* earliest not-yet-due job */
	struct waiting *waiting;	/* jobs read and left, by name */
	size_t nwaiting;
	int images_on, events_on;	/* which kinds are configured */
	enum upload_mode mode;		/* RELAY_UPLOAD_MODE */
	int mode_forced;		/* --upload-mode given */
	char scratch[PATH_MAX];		/* where transcoded copies are made */
	/* events over Azure Relay (PROTOCOL.md §3) */
	struct relay_auth auth;
	const char *events_hc, *ca_file;
	char relay_token[RELAY_TOKEN_OUT];
	time_t relay_token_at;		/* 0: none yet */
	long open_timeout_seconds;
	struct ws_ctx *ws;
	char url[RELAY_URL_MAX];
	/* --jobs: this worker's share of the job names */
	int worker, workers;
	int wake_fd;			/* from the parent; -1: the spool's */
};

/*
 * A job read and left in new/ (not due yet, or of a kind switched off),
 * so that a pass does not read it again before it is due: waiting jobs
 * cost no I/O while new ones arrive.  A job replaced under the same name
 * meanwhile is read when the old one would have been due.
 */
struct waiting {
	char name[SPOOL_NAME_MAX];
	long long due_ms;		/* LLONG_MAX: not ours */
};

struct job {
	char name[SPOOL_NAME_MAX];
	char kind[32];
	char object[STORE_HASH_LEN + 1];
	char sop_instance_uid[PACS_UI], study_instance_uid[PACS_UI];
	char accession_number[PACS_LO];
	char source_message_id[WL_FIELD];	/* image_failure */
	char message_id[RELAY_UUID_LEN + 1];	/* study.image_received */
	char error[512];		/* last error, or the reported one */
	int attempts;
	long long next_attempt_ms;
	char *body;			/* as read: other keys are kept */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: relaysend [--once] [--jobs N] [--no-match wait|report] "
	    "[--max-send-rate BYTES]\n"
	    "                 [--upload-mode original|lossless|reduced]\n"
	    "       relaysend --retry-failed\n"
	    "\n"
	    "Delivers the relay spool: images to the Manage API (HTTPS),\n"
	    "study.image_received and mpps.status_update events over Azure "
	    "Relay.\n"
	    "\n"
	    "  --once            send what is due and exit (default: follow)\n"
	    "  --jobs N          N deliveries in flight (worker processes)\n"
	    "  --no-match MODE   image without a worklist item: wait (default,\n"
	    "                    retried later) or report (parked in failed/)\n"
	    "  --max-send-rate B upload at most B bytes per second (0: no cap)\n"
	    "  --upload-mode M   original (default), lossless (JPEG-LS) or\n"
	    "                    reduced (400 px, JPEG 2000 lossy)\n"
	    "  --retry-failed    move failed jobs back to the queue and exit\n"
	    "  -h, --help        this help\n"
	    "  --version         print the version\n"
	    "\n"
	    "Environment: CLOUD_API_ENDPOINT, CLOUD_API_TOKEN or\n"
	    "CLOUD_API_TOKEN_COMMAND, GATEWAY_CA_FILE, RELAY_RETRY_MAX_SECONDS,\n"
	    "RELAY_NO_MATCH, RELAY_MAX_SEND_BYTES_PER_SECOND,\n"
	    "RELAY_CONNECT_TIMEOUT_SECONDS, RELAY_LOW_SPEED_SECONDS,\n"
	    "RELAY_UPLOAD_TIMEOUT_SECONDS, RELAY_JOBS, RELAY_UPLOAD_MODE,\n"
	    "AZURE_RELAY_NAMESPACE,\n"
	    "AZURE_RELAY_EVENTS_HYBRID_CONNECTION, AZURE_RELAY_KEY_NAME,\n"
	    "AZURE_RELAY_SHARED_ACCESS_KEY, AZURE_RELAY_TOKEN_COMMAND,\n"
	    "AZURE_RELAY_ENDPOINT, GATEWAY_DATA_DIR, PACS_DB_PATH,\n"
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
	get(body, "message_id", j->message_id, sizeof j->message_id);
	get(body, "error", j->error, sizeof j->error);
	get(body, "attempts", n, sizeof n);
	j->attempts = atoi(n);
	get(body, "next_attempt_ms", n, sizeof n);
	j->next_attempt_ms = atoll(n);
}

static int
is_kind(const struct job *j, const char *kind)
{
	return strcmp(j->kind, kind) == 0;
}

/* A kind this process sends (the others stay queued). */
static int
ours(const struct sender *s, const struct job *j)
{
	if (is_kind(j, KIND_IMAGE) || is_kind(j, KIND_FAILURE))
		return s->images_on;
	if (is_kind(j, KIND_IMAGE_EVENT) || is_kind(j, KIND_MPPS_EVENT))
		return s->events_on;
	return 0;
}

/* With --jobs N, is this job name this worker's?  (FNV-1a.) */
static int
mine(const struct sender *s, const char *name)
{
	uint32_t h = 2166136261u;

	if (s->workers <= 1)
		return 1;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	return (int)(h % (uint32_t)s->workers) == s->worker;
}

/* Keys format_job writes itself; any other line of the body is kept. */
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

/* The job's body as it is now, in *out (malloc'd): its length or -1. */
static int
format_job(const struct job *j, char **out)
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
	struct err e = { 0 };

	if (spool_unclaim(&s->relay, j->name, &e) == -1)
		log_warn("cannot put a job back; recovered at start",
		    "job=%s error=\"%s\"", j->name, e.msg);
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
	char *body, q[600];
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
	if (is_kind(j, KIND_IMAGE))
		set_upload(s, j, "WAITING", j->error, j->next_attempt_ms);
	if ((n = format_job(j, &body)) == -1) {
		log_error("cannot reschedule job: its body does not fit",
		    "job=%s", j->name);
		return;	/* the claim stays in cur/: recovered at start */
	}
	if (spool_enqueue(&s->relay, j->name, body, (size_t)n, 0, &e) == -1 ||
	    spool_finish(&s->relay, j->name, &e) == -1) {
		/* The claim stays in cur/: recovered at the next start. */
		log_err("cannot reschedule job", &e);
	}
	free(body);
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
	if (is_kind(j, KIND_IMAGE))
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

/* The token for a request, or the job deferred (1) with the command's
 * failure logged as such. */
static int
need_authorization(struct sender *s, struct job *j)
{
	struct err e = { 0 };
	char q[600];

	if (authorization(s, &e) == 0)
		return 0;
	log_error("CLOUD_API_TOKEN_COMMAND failed: no token for the Manage "
	    "API", "reason=%s", log_quote(e.msg, q, sizeof q));
	defer(s, j, "will retry", e.msg, -1);
	return 1;
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
	char *body = NULL;
	struct err e = { 0 };
	int n, rc;

	snprintf(r.kind, sizeof r.kind, KIND_FAILURE);
	memcpy(r.sop_instance_uid, image->sop_instance_uid,
	    sizeof r.sop_instance_uid);
	memcpy(r.accession_number, image->accession_number,
	    sizeof r.accession_number);
	memcpy(r.source_message_id, image->source_message_id,
	    sizeof r.source_message_id);
	copy_cut(r.error, sizeof r.error, reason);
	one_line(r.error);
	if ((n = format_job(&r, &body)) == -1)
		err_set(&e, ENOMEM, "failure report too long");
	rc = n == -1 ? -1 :
	    spool_enqueue(&s->relay, NULL, body, (size_t)n, 0, &e);
	free(body);
	if (rc == -1) {
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

/*
 * The file to upload in the configured mode: path itself, or a
 * transcoded copy made in copy (the caller removes it).  An image that
 * cannot be transcoded is sent as it is; NULL when the machine is short
 * of something (the job is deferred).
 */
static const char *
upload_copy(struct sender *s, struct job *j, const char *path, char *copy,
    size_t copysz)
{
	struct transcode_result tr;
	struct err e = { 0 };
	int rc;

	if (s->mode == UPLOAD_ORIGINAL)
		return path;
	if (snprintf(copy, copysz, "%s/upload-%ld-%s.dcm", s->scratch,
	    (long)getpid(), j->object) >= (int)copysz)
		return path;
	rc = transcode_file(path, copy, s->mode, &tr, &e);
	if (rc == 0) {
		log_debug("transcoded", "sop_instance_uid=%s mode=%s "
		    "bytes_in=%zu bytes_out=%zu seconds=%.3f", j->sop_instance_uid,
		    upload_mode_name(s->mode), tr.in_bytes, tr.out_bytes,
		    tr.seconds);
		return copy;
	}
	unlink(copy);
	if (rc == 1)
		return path;
	if (e.code == ENOMEM || e.code == ENOSPC || e.code == EIO ||
	    e.code == EMFILE) {
		defer(s, j, "will retry", e.msg, -1);
		return NULL;
	}
	log_warn("cannot transcode: sending the original", "sop_instance_uid=%s "
	    "mode=%s error=\"%s\"", j->sop_instance_uid,
	    upload_mode_name(s->mode), e.msg);
	return path;
}

static void
send_image(struct sender *s, struct job *j, const char *path)
{
	char url[2048], name[PACS_UI + 8], why[700], copy[PATH_MAX];
	struct upload_result r;
	struct err e = { 0 };
	int rc;

	snprintf(name, sizeof name, "%s.dcm", j->sop_instance_uid);
	if (api_url(s, j->source_message_id, "", url, sizeof url, &e) == -1)
		{ park(s, j, e.msg); return; }
	if (need_authorization(s, j))
		return;
	if (set_upload(s, j, "UPLOADING", NULL, 0) == -1)
		{ defer(s, j, "will retry", "pacs.db unavailable", -1); return; }
	if ((path = upload_copy(s, j, path, copy, sizeof copy)) == NULL)
		return;
	rc = upload_put_file(s->up, url, s->authorization, path, name, &r,
	    &e);
	if (path == copy)
		unlink(copy);
	if (rc == -1) {
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

/*
 * The worklist item's action_id for the job's accession number into
 * j->source_message_id: 0, or 1 when there is none and the job was
 * deferred or parked (RELAY_NO_MATCH), or worklist.db failed.
 */
static int
find_action(struct sender *s, struct job *j)
{
	struct worklist_item item;
	char why[600];
	struct err e = { 0 };
	int r;

	r = j->accession_number[0] == '\0' ? WL_NOT_FOUND :
	    worklist_get(s->worklist, j->accession_number, &item, &e);
	if (r == -1)
		{ defer(s, j, "will retry", e.msg, -1); return 1; }
	if (r == WL_NOT_FOUND || item.source_message_id[0] == '\0') {
		snprintf(why, sizeof why, "no worklist item with a source "
		    "message id for accession number \"%s\"",
		    j->accession_number);
		if (s->no_match_report)
			{ park(s, j, why); return 1; }
		{ defer(s, j, "waits for a worklist item", why, -1); return 1; }
	}
	memcpy(j->source_message_id, item.source_message_id,
	    sizeof j->source_message_id);
	return 0;
}

static void
do_image(struct sender *s, struct job *j)
{
	char path[PATH_MAX], why[600];
	struct err e = { 0 };
	struct stat sb;

	j->attempts = (j->attempts < 0 ? 0 : j->attempts) + 1;
	if (!store_valid_hash(j->object) || j->sop_instance_uid[0] == '\0')
		{ park(s, j, "job has no valid object= or "
		    "sop_instance_uid="); return; }
	if (find_action(s, j) != 0)
		return;
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
	if (need_authorization(s, j))
		return;
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

/* ---- events over Azure Relay (PROTOCOL.md §3-4) ---- */

/* The relay token (lib/relay): made again every few minutes, and after
 * a 401/403. */
static int
relay_authorization(struct sender *s, struct err *e)
{
	time_t now = time(NULL);
	int64_t expiry;

	if (s->relay_token_at != 0 &&
	    now - s->relay_token_at < TOKEN_MAX_AGE_SECONDS)
		return 0;
	if (relay_auth_token(&s->auth, s->events_hc, s->relay_token,
	    sizeof s->relay_token, &expiry, e) == -1)
		return s->auth.token_command != NULL ?
		    err_wrap(e, "AZURE_RELAY_TOKEN_COMMAND") : -1;
	s->relay_token_at = now;
	return 0;
}

/* Rewrite a claimed job in place, so what was decided before a send
 * (its message_id) survives a crash. */
static int
save_claimed(struct sender *s, const struct job *j, struct err *e)
{
	char *body;
	int n, rc;

	if ((n = format_job(j, &body)) == -1)
		return err_set(e, ENOMEM, "job body too long");
	rc = spool_rewrite(&s->relay, j->name, body, (size_t)n, e);
	free(body);
	return rc;
}

/*
 * The study.image_received message (lib/event) in *msg; an event over
 * the cloud's 1 MiB goes without its preview.  0; 1 the job was deferred
 * or parked.
 */
static int
image_message(struct sender *s, struct job *j, char **msg, size_t *len)
{
	char path[PATH_MAX], status[32], fmt[16], w[16], h[16];
	struct event_preview p = { 0 };
	struct event_message m;
	struct err e = { 0 };
	int r;

	if (spool_job_get(j->body, "thumbnail", path, sizeof path) == 0 &&
	    spool_job_get(j->body, "thumbnail_status", status,
	    sizeof status) == 0 && strcmp(status, "GENERATED") == 0) {
		get(j->body, "format", fmt, sizeof fmt);
		get(j->body, "width", w, sizeof w);
		get(j->body, "height", h, sizeof h);
		p = (struct event_preview){ path, fmt, atoi(w), atoi(h) };
	}
	r = event_image_received(s->db, j->sop_instance_uid, j->message_id,
	    j->source_message_id, &p, &m, &e);
	if (m.thumb == EVENT_THUMB_UNREADABLE)
		log_warn("preview unreadable: the event goes without it",
		    "sop_instance_uid=%s", j->sop_instance_uid);
	else if (m.thumb == EVENT_THUMB_DROPPED)
		log_warn("event over 1 MiB: its thumbnail is dropped",
		    "sop_instance_uid=%s bytes=%zu limit=%d",
		    j->sop_instance_uid, m.full_len, EVENT_MAX);
	if (r == 0) {
		*msg = m.text;
		*len = m.len;
		return 0;
	}
	if (r == EVENT_TOO_BIG)
		park(s, j, e.msg);
	else
		defer(s, j, "will retry", r == EVENT_NO_INSTANCE ?
		    "instance not in pacs.db (yet)" : e.msg, -1);
	return 1;
}

static int
in_list(const char *v, const char *const *list)
{
	for (; v != NULL && *list != NULL; list++)
		if (strcmp(v, *list) == 0)
			return 1;
	return 0;
}

/* The cloud's reply: done, parked (it will never take it) or later. */
static void
event_reply(struct sender *s, struct job *j, const char *reply,
    size_t bytes)
{
	static const char *const done[] = { "created", "already_exists",
	    "updated", "processed", NULL };
	static const char *const never[] = { "action_not_found",
	    "appointment_not_found", "unknown_status", NULL };
	char why[600];
	struct err e = { 0 };
	json_t *o = json_loads(reply, 0, NULL);
	const char *status = json_string_value(json_object_get(o, "status"));

	snprintf(why, sizeof why, "reply %s", reply);
	one_line(why);
	if (in_list(status, done)) {
		if (spool_finish(&s->relay, j->name, &e) == -1)
			log_err("cannot finish job", &e);
		s->events++;
		log_info("event delivered", "kind=%s job=%s "
		    "accession_number=%s sop_instance_uid=%s message_id=%s "
		    "status=%s bytes=%zu attempts=%d", j->kind, j->name,
		    j->accession_number, j->sop_instance_uid, j->message_id,
		    status, bytes, j->attempts);
	} else if (in_list(status, never)) {
		park(s, j, why);
	} else {
		defer(s, j, "will retry", why, -1);
	}
	json_decref(o);
}

/* Why a relay call failed, for the job's error and the log. */
static void
ws_why(const struct ws_status *st, const struct err *e, char *out,
    size_t outsz)
{
	if (st->phase == WS_HANDSHAKE && st->http_status != 0)
		snprintf(out, outsz, "relay handshake HTTP %d%s: %s",
		    st->http_status, st->http_status == 404 ?
		    " (no listener on the events hybrid connection now)" : "",
		    e->msg);
	else if (st->phase == WS_CLOSED)
		snprintf(out, outsz, "relay closed %d %s: %s", st->close_code,
		    st->close_reason, e->msg);
	else
		snprintf(out, outsz, "relay %s: %s", ws_phase_name(st->phase),
		    e->msg);
	one_line(out);
}

/* A failed relay call: the job waits (a close 1009 parks it). */
static void
ws_failed(struct sender *s, struct job *j, const struct ws_status *st,
    const struct err *e)
{
	char why[700];

	ws_why(st, e, why, sizeof why);
	if (stopping) {
		unclaim(s, j);
		return;
	}
	if (st->phase == WS_HANDSHAKE && (st->http_status == 401 ||
	    st->http_status == 403)) {
		log_error("the relay refuses the token: check "
		    "AZURE_RELAY_KEY_NAME and AZURE_RELAY_SHARED_ACCESS_KEY, "
		    "or AZURE_RELAY_TOKEN_COMMAND", "status=%d "
		    "hybrid_connection=%s", st->http_status, s->events_hc);
		s->relay_token_at = 0;
	}
	if (st->phase == WS_CLOSED && st->close_code == 1009) {
		park(s, j, why);
		return;
	}
	defer(s, j, "will retry", why, -1);
}

/* Connect as a sender, send msg, wait for the JSON reply, close. */
static void
send_event(struct sender *s, struct job *j, const char *msg, size_t len)
{
	struct ws_status st = { 0 };
	struct err e = { 0 };
	char *reply = NULL, q[600];
	int r;

	if (relay_authorization(s, &e) == -1) {
		log_error("no token for the relay", "reason=%s",
		    log_quote(e.msg, q, sizeof q));
		defer(s, j, "will retry", e.msg, -1);
		return;
	}
	if (relay_connect_url(s->auth.ns, s->events_hc, s->relay_token,
	    s->auth.endpoint, s->url, sizeof s->url, &e) == -1)
		{ park(s, j, e.msg); return; }
	r = ws_request(s->ws, s->url, NULL, NULL, msg, len,
	    (int)s->open_timeout_seconds * 1000, EVENT_REPLY_MS, &reply, &st,
	    &e);
	if (r == -1)
		{ ws_failed(s, j, &st, &e); return; }
	if (r == 0) {
		if (stopping)
			{ unclaim(s, j); return; }
		defer(s, j, "will retry", "relay: no reply within 10 s", -1);
		return;
	}
	event_reply(s, j, reply, len);
	free(reply);
}

/* study.image_received: built from pacs.db, the worklist and the
 * preview; its message_id is kept in the job from the first attempt. */
static void
do_image_event(struct sender *s, struct job *j)
{
	struct err e = { 0 };
	char *msg;
	size_t len;

	j->attempts = (j->attempts < 0 ? 0 : j->attempts) + 1;
	if (j->sop_instance_uid[0] == '\0')
		{ park(s, j, "job has no sop_instance_uid="); return; }
	if (find_action(s, j) != 0)
		return;
	if (j->message_id[0] == '\0') {
		if (relay_uuid(j->message_id, &e) == -1 ||
		    save_claimed(s, j, &e) == -1) {
			j->message_id[0] = '\0';
			defer(s, j, "will retry", e.msg, -1);
			return;
		}
	}
	if (image_message(s, j, &msg, &len) != 0)
		return;
	send_event(s, j, msg, len);
	free(msg);
}

/* mpps.status_update: the outbox's event, sent as it is. */
static void
do_mpps_event(struct sender *s, struct job *j)
{
	size_t cap = strlen(j->body) + 1;
	char *ev = malloc(cap), why[200];
	const char *acc;
	json_t *o;

	j->attempts = (j->attempts < 0 ? 0 : j->attempts) + 1;
	if (ev == NULL)
		{ defer(s, j, "will retry", "out of memory", -1); return; }
	if (spool_job_get(j->body, "event", ev, cap) == -1 ||
	    (o = json_loads(ev, 0, NULL)) == NULL) {
		free(ev);
		park(s, j, "job has no event= with a JSON object");
		return;
	}
	/* For the logs only. */
	acc = json_string_value(json_object_get(json_object_get(o, "data"),
	    "accession_number"));
	if (j->accession_number[0] == '\0' && acc != NULL)
		copy_cut(j->accession_number, sizeof j->accession_number, acc);
	json_decref(o);
	if (strlen(ev) > EVENT_MAX) {
		snprintf(why, sizeof why, "event of %zu bytes is over the "
		    "cloud's 1 MiB limit", strlen(ev));
		free(ev);
		park(s, j, why);
		return;
	}
	send_event(s, j, ev, strlen(ev));
	free(ev);
}

static int
by_waiting_name(const void *key, const void *elem)
{
	return strcmp(key, ((const struct waiting *)elem)->name);
}

/* A job left waiting: counted, and kept for the next pass. */
static void
remember(struct sender *s, struct waiting *w, const char *name, long long due)
{
	snprintf(w->name, sizeof w->name, "%s", name);
	w->due_ms = due;
	if (due == LLONG_MAX)
		return;
	s->remaining++;
	if (s->next_due_ms == 0 || due < s->next_due_ms)
		s->next_due_ms = due;
}

/* Deliver a claimed job by its kind. */
static void
deliver(struct sender *s, struct job *j)
{
	if (is_kind(j, KIND_IMAGE))
		do_image(s, j);
	else if (is_kind(j, KIND_FAILURE))
		do_failure_report(s, j);
	else if (is_kind(j, KIND_IMAGE_EVENT))
		do_image_event(s, j);
	else
		do_mpps_event(s, j);
	free(j->body);
}

/*
 * Read a waiting job; claim it when it is ours and due.  1 claimed;
 * 0 left, with *due_ms when it is to be remembered (else 0).
 */
static int
claim(struct sender *s, const char *name, struct job *j, long long *due_ms)
{
	char from[PATH_MAX], *body = NULL;
	struct err e = { 0 };

	*due_ms = 0;
	memset(j, 0, sizeof *j);
	snprintf(j->name, sizeof j->name, "%s", name);
	if (job_path(s, "new", name, from) == -1)
		return 0;
	if (!mine(s, name) ||
	    fs_read_small(from, SPOOL_JOB_MAX, &body, NULL, &e) == -1)
		return 0;	/* gone meanwhile, or replaced: next pass */
	parse_job(body, j);
	j->body = body;
	if (!ours(s, j)) {
		*due_ms = LLONG_MAX;
		goto no;
	}
	if (j->next_attempt_ms > now_ms()) {
		*due_ms = j->next_attempt_ms;
		goto no;
	}
	if (spool_claim_name(&s->relay, name, &e) != 1)
		goto no;
	return 1;
no:
	free(j->body);
	j->body = NULL;
	return 0;
}


/* One pass over new/: send every job of ours that is due. */
static int
pass(struct sender *s)
{
	char (*names)[SPOOL_NAME_MAX];
	struct waiting *next, *w;
	struct err e = { 0 };
	size_t n, nnext = 0;
	long long due;
	struct job j;

	s->remaining = 0;
	s->next_due_ms = 0;
	if (spool_list(&s->relay, &names, &n, &e) == -1) {
		log_err("cannot read the spool", &e);
		return -1;
	}
	if ((next = calloc(n ? n : 1, sizeof *next)) == NULL) {
		free(names);
		log_error("out of memory", "jobs=%zu", n);
		return -1;
	}
	for (size_t i = 0; i < n && !stopping; i++) {
		w = s->nwaiting == 0 ? NULL : bsearch(names[i], s->waiting,
		    s->nwaiting, sizeof *w, by_waiting_name);
		if (w != NULL && w->due_ms > now_ms())
			due = w->due_ms;
		else if (claim(s, names[i], &j, &due)) {
			deliver(s, &j);
			continue;
		}
		if (due == 0)
			continue;
		remember(s, &next[nnext++], names[i], due);
	}
	free(names);
	free(s->waiting);
	s->waiting = next;
	s->nwaiting = nnext;
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

/* Sleep until woken (a producer, or the parent with --jobs) or ms. */
static int
wait_wake(struct sender *s, int ms, struct err *e)
{
	struct pollfd pfd = { s->wake_fd, POLLIN, 0 };
	char buf[64];
	int r;

	if (s->wake_fd < 0)
		return spool_wait(&s->relay, ms, e);
	if ((r = poll(&pfd, 1, ms)) == -1)
		return errno == EINTR ? 0 : err_sys(e, "poll");
	if (r == 0)
		return 0;
	while (read(s->wake_fd, buf, sizeof buf) > 0)
		;
	return 1;
}

static int
follow(struct sender *s, int once)
{
	struct err e = { 0 };
	long long wait;

	while (!stopping) {
		if (pass(s) == -1)
			return EX_SOFTWARE;
		if (once || stopping)
			break;
		wait = s->next_due_ms ? s->next_due_ms - now_ms() : WAIT_MS;
		wait = wait < 20 ? 20 : wait > WAIT_MS ? WAIT_MS : wait;
		if (wait_wake(s, (int)wait, &e) == -1) {
			log_err("wait failed", &e);
			return EX_SOFTWARE;
		}
	}
	log_info("stopped", "worker=%d uploaded=%ld events=%ld failed=%ld "
	    "deferred=%ld queued=%d", s->worker, s->uploaded, s->events,
	    s->rejected, s->deferred, s->remaining);
	if (stopping)
		return EX_OK;
	return once && s->remaining > 0 ? EX_TEMPFAIL : EX_OK;
}

/* A whole number from the environment, or def when unset. */
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

/* A set, non-empty environment variable, else NULL. */
static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* Image uploads: on when CLOUD_API_ENDPOINT is set. */
static int
configure_images(struct sender *s)
{
	s->endpoint = env("CLOUD_API_ENDPOINT");
	s->token = env("CLOUD_API_TOKEN");
	s->token_command = env("CLOUD_API_TOKEN_COMMAND");
	if (s->endpoint == NULL)
		return 0;
	if (strncmp(s->endpoint, "https://", 8) != 0) {
		log_error("CLOUD_API_ENDPOINT must be an https:// URL", "%s", "");
		return -1;
	}
	if (s->token == NULL && s->token_command == NULL) {
		log_error("set CLOUD_API_TOKEN or CLOUD_API_TOKEN_COMMAND", "%s",
		    "");
		return -1;
	}
	s->images_on = 1;
	return 0;
}

/* Events: on when the namespace and the events hybrid connection are. */
static int
configure_events(struct sender *s)
{
	struct err e = { 0 };

	s->events_hc = env("AZURE_RELAY_EVENTS_HYBRID_CONNECTION");
	if (env("AZURE_RELAY_NAMESPACE") == NULL || s->events_hc == NULL)
		return 0;
	if (relay_auth_load(&s->auth, &e) == -1) {
		log_error("bad relay configuration", "error=\"%s\"", e.msg);
		return -1;
	}
	s->events_on = 1;
	return 0;
}

/* RELAY_UPLOAD_MODE, and the scratch directory for transcoded copies. */
static int
configure_mode(struct sender *s)
{
	const char *m = getenv("RELAY_UPLOAD_MODE");
	struct err e = { 0 };

	if (!s->mode_forced && m != NULL && *m != '\0' &&
	    upload_mode_parse(m, &s->mode) == -1) {
		log_error("RELAY_UPLOAD_MODE is original, lossless or reduced",
		    "%s", "");
		return -1;
	}
	if (snprintf(s->scratch, sizeof s->scratch, "%s/tmp",
	    s->cfg.data_dir) >= (int)sizeof s->scratch ||
	    (s->mode != UPLOAD_ORIGINAL && fs_mkdirs(s->scratch, &e) == -1)) {
		log_error("cannot make the scratch directory", "dir=%s",
		    s->scratch);
		return -1;
	}
	return 0;
}

static int
configure(struct sender *s, struct upload_opts *o)
{
	const char *nm = getenv("RELAY_NO_MATCH");
	long connect, low, total, rate, jobs;
	struct err e = { 0 };

	if (configure_images(s) == -1 || configure_events(s) == -1)
		return -1;
	if (!s->images_on && !s->events_on) {
		log_error("nothing to send: set CLOUD_API_ENDPOINT, or "
		    "AZURE_RELAY_NAMESPACE and "
		    "AZURE_RELAY_EVENTS_HYBRID_CONNECTION", "%s", "");
		return -1;
	}
	if (nm != NULL && *nm != '\0' && no_match_mode(nm,
	    &s->no_match_report) == -1) {
		log_error("RELAY_NO_MATCH is wait or report", "%s", "");
		return -1;
	}
	if (config_env_long("RELAY_RETRY_MAX_SECONDS", 1, 86400,
	    RETRY_MAX_DEFAULT, &s->retry_max_seconds, &e) == -1 ||
	    config_env_long("RELAY_CONNECT_TIMEOUT_SECONDS", 1, 3600, 15,
	    &connect, &e) == -1 ||
	    config_env_long("RELAY_LOW_SPEED_SECONDS", 1, 3600, 60, &low,
	    &e) == -1 ||
	    config_env_long("RELAY_UPLOAD_TIMEOUT_SECONDS", 0, 86400, 1800,
	    &total, &e) == -1 ||
	    config_env_long("RELAY_MAX_SEND_BYTES_PER_SECOND", 0, 2000000000,
	    0, &rate, &e) == -1 ||
	    config_env_long("RELAY_JOBS", 1, JOBS_MAX, 1, &jobs, &e) == -1) {
		log_err("bad setting", &e);
		return -1;
	}
	s->ca_file = env("GATEWAY_CA_FILE");
	if (configure_mode(s) == -1)
		return -1;
	s->open_timeout_seconds = connect;
	s->workers = (int)jobs;
	*o = (struct upload_opts){ s->ca_file, connect, low, 1024, total, rate,
	    &stopping };
	return 0;
}

/* Said once at start: what is sent, and what stays queued. */
static void
log_kinds(const struct sender *s)
{
	if (!s->images_on)
		log_warn("image uploads are off (CLOUD_API_ENDPOINT is not "
		    "set): image jobs stay queued", "%s", "");
	if (!s->events_on)
		log_warn("events are off (AZURE_RELAY_NAMESPACE and "
		    "AZURE_RELAY_EVENTS_HYBRID_CONNECTION are not both set): "
		    "study.image_received and mpps.status_update jobs stay "
		    "queued", "%s", "");
	if (s->events_on)
		log_info("events go over the relay", "namespace=%s "
		    "hybrid_connection=%s endpoint=%s auth=%s", s->auth.ns,
		    s->events_hc, s->auth.endpoint ? s->auth.endpoint : s->auth.ns,
		    s->auth.token_command ? "command" : "sas");
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
	    upload_open(&s->up, o, &e) == -1 ||
	    (s->events_on && ws_ctx_new(&s->ws, s->ca_file, EVENT_REPLY_MAX,
	    &e) == -1)) {
		log_err("cannot start", &e);
		return -1;
	}
	if (s->ws != NULL)
		ws_ctx_stop_flag(s->ws, &stopping);
	return 0;
}

/* Close everything (the struct may be opened again, e.g. after fork). */
static void
close_all(struct sender *s)
{
	free(s->waiting);
	s->waiting = NULL;
	s->nwaiting = 0;
	ws_ctx_free(s->ws);
	upload_close(s->up);
	worklist_close(s->worklist);
	if (s->db != NULL)
		db_close(s->db);
	spool_close(&s->relay);
	s->ws = NULL;
	s->up = NULL;
	s->worklist = NULL;
	s->db = NULL;
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

/* Claims a crash left in cur/ go back to new/ (before any worker runs). */
static int
recover(struct sender *s)
{
	struct err e = { 0 };
	int recovered;

	if ((recovered = spool_recover(&s->relay, &e)) == -1) {
		log_err("recover failed", &e);
		return -1;
	}
	log_resumed(s, recovered);
	log_kinds(s);
	return 0;
}

/* One worker (a child): its own connections, its share of the names. */
static int
worker_main(struct sender *s, const struct upload_opts *o, int i, int fd,
    int once)
{
	int rc;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	s->worker = i;
	s->wake_fd = fd;
	if (open_all(s, o) == -1) {
		close_all(s);
		return EX_CANTCREAT;
	}
	rc = follow(s, once);
	close_all(s);
	return rc;
}

/* A worker's exit status as relaysend's (75 wins over 0). */
static int
merge_status(int rc, int status)
{
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : EX_SOFTWARE;

	if (rc != EX_OK && rc != EX_TEMPFAIL)
		return rc;
	return code == EX_OK ? rc : code;
}

/* Stop the workers still running and collect every status into rc. */
static int
reap_all(pid_t *pids, int n, int rc)
{
	int status;

	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	for (int i = 0; i < n; i++) {
		if (pids[i] <= 0)
			continue;
		while (waitpid(pids[i], &status, 0) == -1) {
			if (errno != EINTR) {
				status = EX_SOFTWARE << 8;
				break;
			}
		}
		rc = merge_status(rc, status);
		pids[i] = 0;
	}
	return rc;
}

/* Any worker gone?  Its status into *rc; 1 when one has stopped. */
static int
reap_some(pid_t *pids, int n, int *rc)
{
	int status, gone = 0;

	for (int i = 0; i < n; i++) {
		if (pids[i] > 0 && waitpid(pids[i], &status, WNOHANG) ==
		    pids[i]) {
			*rc = merge_status(*rc, status);
			pids[i] = 0;
			gone = 1;
		}
	}
	return gone;
}

/* --once: wait for every worker (a signal stops them all). */
static int
wait_workers(pid_t *pids, int n)
{
	int rc = EX_OK, status;

	for (int i = 0; i < n; i++) {
		while (pids[i] > 0) {
			if (waitpid(pids[i], &status, 0) == pids[i]) {
				rc = merge_status(rc, status);
				pids[i] = 0;
			} else if (errno != EINTR) {
				pids[i] = 0;
				rc = EX_SOFTWARE;
			} else if (stopping) {
				return reap_all(pids, n, rc);
			}
		}
	}
	return rc;
}

/* Following: pass the spool's wake-ups on to every worker; a worker
 * that stops on its own stops them all (gatewayd restarts relaysend). */
static int
supervise(struct sender *s, pid_t *pids, const int *wake, int n)
{
	char dir[PATH_MAX];
	struct err e = { 0 };
	int rc = EX_OK, r;

	if (config_spool_path(&s->cfg, "relay", dir, sizeof dir, &e) == -1 ||
	    spool_open(&s->relay, dir, 1, &e) == -1) {
		log_err("cannot open the spool", &e);
		return reap_all(pids, n, EX_CANTCREAT);
	}
	while (!stopping) {
		if ((r = spool_wait(&s->relay, 500, &e)) == -1) {
			log_err("wait failed", &e);
			rc = EX_SOFTWARE;
			break;
		}
		for (int i = 0; r == 1 && i < n; i++)
			if (write(wake[i], "w", 1) == -1 && errno != EAGAIN)
				log_warn("cannot wake a worker", "worker=%d", i);
		if (reap_some(pids, n, &rc)) {
			if (!stopping) {
				log_error("a worker stopped: stopping the others",
				    "status=%d", rc);
				if (rc == EX_OK)
					rc = EX_SOFTWARE;
			}
			break;
		}
	}
	spool_close(&s->relay);
	return reap_all(pids, n, rc);
}

/*
 * --jobs N: fork N workers.  Returns the parent's exit status, or in a
 * worker (which returns through main) its own.
 */
static int
run_workers(struct sender *s, const struct upload_opts *o, int once)
{
	pid_t pids[JOBS_MAX] = { 0 };
	int wake[JOBS_MAX], p[2], n = s->workers, rc;

	for (int i = 0; i < n; i++) {
		if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == -1 ||
		    (pids[i] = fork()) == -1) {
			log_error("cannot start a worker", "worker=%d error=%s",
			    i, strerror(errno));
			pids[i] = 0;
			rc = reap_all(pids, i, EX_OSERR);
			for (int k = 0; k < i; k++)
				close(wake[k]);
			return rc;
		}
		if (pids[i] == 0) {
			for (int k = 0; k < i; k++)
				close(wake[k]);
			close(p[1]);
			rc = worker_main(s, o, i, p[0], once);
			close(p[0]);
			return rc;
		}
		close(p[0]);
		wake[i] = p[1];
	}
	log_info("workers started", "jobs=%d", n);
	rc = once ? wait_workers(pids, n) : supervise(s, pids, wake, n);
	for (int i = 0; i < n; i++)
		close(wake[i]);
	return rc;
}

static int
run(struct sender *s, int once, int retry, long rate, int no_match,
    int jobs)
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
	if (jobs > 0)
		s->workers = jobs;
	if (open_all(s, &o) == -1) {
		close_all(s);
		return EX_CANTCREAT;
	}
	if (retry)
		rc = retry_failed(s);
	else if (recover(s) == -1)
		rc = EX_SOFTWARE;
	else if (s->workers <= 1)
		rc = follow(s, once);
	else {
		close_all(s);
		return run_workers(s, &o, once);
	}
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
		{ "jobs", required_argument, NULL, 'j' },
		{ "upload-mode", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct sender s = { .wake_fd = -1 };
	struct sigaction sa = { 0 };
	int c, once = 0, retry = 0, no_match = -1, jobs = 0, r, rc;
	enum upload_mode mode;
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
		case 'm':
			if (upload_mode_parse(optarg, &mode) == -1) {
				fprintf(stderr, "relaysend: --upload-mode takes "
				    "original, lossless or reduced\n");
				return EX_USAGE;
			}
			s.mode_forced = 1;
			s.mode = mode;
			break;
		case 'j':
			if (config_parse_int(optarg, 1, JOBS_MAX, &jobs) == -1) {
				fprintf(stderr, "relaysend: --jobs takes 1 to "
				    "%d\n", JOBS_MAX);
				return EX_USAGE;
			}
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
	rc = run(&s, once, retry, rate, no_match, jobs);
	curl_global_cleanup();
	return rc;
}
