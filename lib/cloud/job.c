/*
 * job: one relay-spool job as relaysend handles it (see cloud/cloud.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "cloud/cloud.h"

long long
job_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void
job_line(char *dst, size_t dstsz, const char *src)
{
	size_t n = strnlen(src, dstsz - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
	for (char *s = dst; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

int
job_is(const struct job *j, const char *kind)
{
	return strcmp(j->kind, kind) == 0;
}

static const char *const kinds[JOB_NKINDS] = { JOB_IMAGE, JOB_FAILURE,
    JOB_IMAGE_EVENT, JOB_MPPS_EVENT, JOB_ALERT_EVENT, "other" };

int
job_kind(const char *kind)
{
	for (int k = 0; k < JOB_NKINDS - 1; k++)
		if (strcmp(kind, kinds[k]) == 0)
			return k;
	return JOB_NKINDS - 1;
}

const char *
job_kind_name(int kind)
{
	return kinds[kind >= 0 && kind < JOB_NKINDS ? kind : JOB_NKINDS - 1];
}

enum job_channel
job_channel(int kind)
{
	return kind == 0 || kind == 1 ? JOB_TO_API : JOB_TO_RELAY;
}

static const char *
channel_name(enum job_channel c)
{
	return c == JOB_TO_API ? "the Manage API" : "the relay";
}

void
job_error_kind(const char *why, char *out, size_t outsz)
{
	const char *p = why, *sp = strchr(why, ' '), *colon;
	size_t n;

	/* "PUT https://host/api/v1/dicom/act-1: TCP connect: …" */
	if (sp != NULL && strncmp(sp + 1, "https://", 8) == 0 &&
	    (colon = strstr(sp, ": ")) != NULL)
		p = colon + 2;
	n = strcspn(p, ":{");
	if (n < 6 && p[n] == ':')
		n += 1 + strcspn(p + n + 1, ":{");
	while (n > 0 && p[n - 1] == ' ')
		n--;
	snprintf(out, outsz, "%.*s", (int)n, p);
}

static void
get(const char *body, const char *key, char *out, size_t outsz)
{
	if (spool_job_get(body, key, out, outsz) == -1)
		out[0] = '\0';
}

void
job_parse(const char *body, struct job *j)
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
	get(body, "server_errors", n, sizeof n);
	j->server_errors = atoi(n);
	get(body, "next_attempt_ms", n, sizeof n);
	j->next_attempt_ms = atoll(n);
	get(body, "priority", n, sizeof n);
	j->high = strcmp(n, "high") == 0;
	get(body, "requested", n, sizeof n);
	j->requested = strcmp(n, "1") == 0;
	get(body, "deferred_at_ms", n, sizeof n);
	j->deferred_at_ms = atoll(n);
	get(body, "failing_since_ms", n, sizeof n);
	j->failing_since_ms = atoll(n);
}

/* Keys job_format writes itself; any other line of the body is kept. */
static int
known_key(const char *line)
{
	static const char *const keys[] = { "kind", "object",
	    "sop_instance_uid", "study_instance_uid", "accession_number",
	    "source_message_id", "message_id", "error", "attempts",
	    "server_errors", "next_attempt_ms", "deferred_at_ms",
	    "failing_since_ms" };
	size_t n = strcspn(line, "=\n");

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strlen(keys[i]) == n && strncmp(line, keys[i], n) == 0)
			return 1;
	return 0;
}

int
job_format(const struct job *j, char **out)
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
	if (j->server_errors > 0)
		fprintf(f, "server_errors=%d\n", j->server_errors);
	if (j->deferred_at_ms > 0)
		fprintf(f, "deferred_at_ms=%lld\n", j->deferred_at_ms);
	if (j->failing_since_ms > 0)
		fprintf(f, "failing_since_ms=%lld\n", j->failing_since_ms);
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
job_set_upload(struct job_ctx *o, const struct job *j, enum upload_state s,
    const char *error, long long next_ms)
{
	struct err e = { 0 };
	int rc;

	if (j->sop_instance_uid[0] == '\0')
		return 0;
	rc = upload_state_set(o->db, j->sop_instance_uid, s, j->attempts,
	    error, next_ms, &e);
	if (rc == -1)
		log_err("pacs.db update failed", &e);
	return rc;
}

/*
 * The first image of a study to fail for good or be refused: said once
 * for the study, at error, and (with the cloud's events) as a
 * gateway.alert event about it, replacing a waiting one of the same name.
 */
static void
alert_study(struct job_ctx *o, const struct job *j, const char *alert,
    const char *msg, const char *summary)
{
	char hash[STORE_HASH_LEN + 1], name[SPOOL_NAME_MAX], q[600];
	struct event_alert a = { alert, 1, "warning", summary, 1,
	    o->cfg ? o->cfg->pacs_aet : "", o->cfg ? o->cfg->pacs_port : 0,
	    j->accession_number, j->study_instance_uid };
	struct err e = { 0 };

	log_error(msg, "alert=%s accession_number=%s study_instance_uid=%s "
	    "reason=%s", alert, j->accession_number, j->study_instance_uid,
	    log_quote(j->error, q, sizeof q));
	if (!config_cloud_events())
		return;		/* status and the health report show it */
	if (store_hash_buf(j->study_instance_uid,
	    strlen(j->study_instance_uid), hash, &e) == -1 ||
	    snprintf(name, sizeof name, "alert-%s-%.24s", alert, hash) >=
	    (int)sizeof name || event_alert_queue(o->spool, name, &a, &e) == -1)
		log_err("alert not queued", &e);
	else
		o->remaining++;
}

/* Put a claimed job back as it was (we are stopping mid-request). */
void
job_unclaim(struct job_ctx *o, const struct job *j)
{
	struct err e = { 0 };

	if (spool_unclaim(o->spool, j->name, &e) == -1)
		log_warn("cannot put a job back; recovered at start",
		    "job=%s error=\"%s\"", j->name, e.msg);
	o->remaining++;
}

/* Did a producer queue a job of this name while we held the claim? */
static int
replaced(const struct job_ctx *o, const char *name)
{
	char path[PATH_MAX];

	return snprintf(path, sizeof path, "%s/new/%s", o->spool->dir,
	    name) < (int)sizeof path && access(path, F_OK) == 0;
}

/* Write the job again under its name for its next attempt (see
 * job_defer below), its claim dropped. */
static void
reschedule(struct job_ctx *o, struct job *j)
{
	char *body;
	struct err e = { 0 };
	int n;

	if (replaced(o, j->name)) {
		log_info("a newer job of the same name waits: it stands",
		    "job=%s", j->name);
		job_done(o, j);
		return;
	}
	j->deferred_at_ms = job_now_ms();
	if ((n = job_format(j, &body)) == -1) {
		log_error("cannot reschedule job: its body does not fit",
		    "job=%s", j->name);
		return;	/* the claim stays in cur/: recovered at start */
	}
	/* its first queueing time kept: the status counts its age from it */
	if (spool_requeue(o->spool, j->name, body, (size_t)n, &e) == -1) {
		/* The claim stays in cur/: recovered at the next start. */
		log_err("cannot reschedule job", &e);
	}
	free(body);
}

/* A kind of error not said yet in this outage: remembered, 1. */
static int
new_error_kind(struct job_outage *u, const char *kind)
{
	for (int i = 0; i < u->nsaid; i++)
		if (strcmp(u->said[i], kind) == 0)
			return 0;
	if (u->nsaid == JOB_OUTAGE_KINDS)
		return 0;	/* enough said: the summaries go on */
	snprintf(u->said[u->nsaid++], JOB_ERROR_KIND, "%s", kind);
	return 1;
}

/* A failed attempt: said when it begins an outage of the job's channel,
 * or is a kind of error the outage has not shown yet. */
static void
outage_failed(struct job_ctx *o, const struct job *j)
{
	enum job_channel c = job_channel(job_kind(j->kind));
	struct job_outage *u = &o->outage[c];
	char kind[JOB_ERROR_KIND], msg[160], note[100], q[600];
	int first = u->since_ms == 0;

	job_error_kind(j->error, kind, sizeof kind);
	job_line(u->last_error, sizeof u->last_error, j->error);
	u->failures++;
	u->last_ms = job_now_ms();
	if (first) {
		u->since_ms = u->summary_ms = job_now_ms();
		u->nsaid = 0;
	}
	if (!new_error_kind(u, kind))
		return;
	snprintf(msg, sizeof msg, first ? "cannot deliver to %s: its jobs "
	    "wait and are retried with back-off" : "%s fails another way "
	    "too", channel_name(c));
	if (o->summary_seconds > 0)
		snprintf(note, sizeof note, "each retry is logged at debug; a "
		    "summary every %lds while it lasts", o->summary_seconds);
	else
		snprintf(note, sizeof note, "each retry is logged at debug");
	log_warn(msg, "kind=%s queued=%d error=%s note=\"%s\"", j->kind,
	    o->census.queued[c], log_quote(j->error, q, sizeof q), note);
}

void
job_reached(struct job_ctx *o, const struct job *j)
{
	enum job_channel c = job_channel(job_kind(j->kind));
	struct job_outage *u = &o->outage[c];
	char msg[120];

	o->reached_ms[c] = job_now_ms();	/* run/delivery.state */
	if (u->since_ms == 0)
		return;
	snprintf(msg, sizeof msg, "delivering to %s again", channel_name(c));
	log_info(msg, "kind=%s out_seconds=%lld failed_attempts=%ld",
	    j->kind, (job_now_ms() - u->since_ms) / 1000, u->failures);
	memset(u, 0, sizeof *u);
}

void
job_census_retrying(struct job_census *c, int kind, long long failing_ms)
{
	long long *oldest = &c->oldest_ms[job_channel(kind)];

	c->retrying[kind]++;
	if (failing_ms > 0 && (*oldest == 0 || failing_ms < *oldest))
		*oldest = failing_ms;
}

/* "image:25,image_failure:1", the channel's retrying jobs by kind, and
 * their number. */
static int
retrying_text(const struct job_census *c, enum job_channel ch, char *out,
    size_t outsz)
{
	int total = 0;
	size_t len = 0;

	out[0] = '\0';
	for (int k = 0; k < JOB_NKINDS; k++) {
		if (job_channel(k) != ch || c->retrying[k] == 0)
			continue;
		total += c->retrying[k];
		if (len < outsz)
			len += (size_t)snprintf(out + len, outsz - len, "%s%s:%d",
			    len ? "," : "", job_kind_name(k), c->retrying[k]);
	}
	return total;
}

void
job_summary(struct job_ctx *o)
{
	long long now = job_now_ms();
	char msg[120], by_kind[200], q[600];

	for (int c = 0; c < JOB_CHANNELS; c++) {
		struct job_outage *u = &o->outage[c];
		long long oldest = o->census.oldest_ms[c];
		int n;

		if (u->since_ms == 0)
			continue;
		n = retrying_text(&o->census, (enum job_channel)c, by_kind,
		    sizeof by_kind);
		if (n == 0) {	/* settled otherwise: refused, parked, … */
			snprintf(msg, sizeof msg, "no job waits for %s any "
			    "more", channel_name((enum job_channel)c));
			log_info(msg, "out_seconds=%lld failed_attempts=%ld",
			    (now - u->since_ms) / 1000, u->failures);
			memset(u, 0, sizeof *u);
			continue;
		}
		if (o->summary_seconds <= 0 ||
		    now - u->summary_ms < o->summary_seconds * 1000LL)
			continue;
		u->summary_ms = now;
		snprintf(msg, sizeof msg, "still cannot deliver to %s",
		    channel_name((enum job_channel)c));
		log_warn(msg, "for_seconds=%lld failed_attempts=%ld "
		    "retrying=%d kinds=%s oldest_seconds=%lld last_error=%s",
		    (now - u->since_ms) / 1000, u->failures, n,
		    by_kind[0] ? by_kind : "-",
		    oldest > 0 ? (now - oldest) / 1000 : 0,
		    log_quote(u->last_error, q, sizeof q));
	}
}

/*
 * Try again later (the attempt is already counted): the new state, with
 * the next attempt time, goes into the job (re-enqueued under its name,
 * then the claim is dropped), so a restart keeps the schedule.  A job a
 * producer queued under the same name meanwhile (an images.request for
 * the same object) is newer: it stands, and the claim is dropped.
 */
void
job_defer(struct job_ctx *o, struct job *j, const char *msg,
    const char *why, long retry_after)
{
	char q[600];
	long long delay, now = job_now_ms();

	delay = api_backoff_ms(j->attempts, o->retry_max_seconds,
	    retry_after, arc4random());
	j->next_attempt_ms = now + delay;
	if (j->failing_since_ms == 0)
		j->failing_since_ms = now;
	job_line(j->error, sizeof j->error, why);
	o->deferred++;
	o->remaining++;
	job_census_retrying(&o->census, job_kind(j->kind), j->failing_since_ms);
	outage_failed(o, j);
	log_debug(msg, "job=%s kind=%s accession_number=%s "
	    "sop_instance_uid=%s attempts=%d retry_in_ms=%lld error=%s",
	    j->name, j->kind, j->accession_number, j->sop_instance_uid,
	    j->attempts, delay, log_quote(j->error, q, sizeof q));
	if (job_is(j, JOB_IMAGE))
		job_set_upload(o, j, UPLOAD_WAITING, j->error,
		    j->next_attempt_ms);
	reschedule(o, j);
}

/* Due again in about a minute (capped by retry_max_seconds): a wait that
 * is no upload attempt. */
static void
later(struct job_ctx *o, struct job *j)
{
	long cap = o->retry_max_seconds < JOB_WORKLIST_POLL_SECONDS ?
	    o->retry_max_seconds : JOB_WORKLIST_POLL_SECONDS;

	j->next_attempt_ms = job_now_ms() + api_backoff_ms(64, cap, -1,
	    arc4random());
	o->deferred++;
	o->remaining++;
}

/* The job's error= stays (a failure report's is what it reports). */
void
job_later(struct job_ctx *o, struct job *j, const char *why)
{
	char q[600];

	later(o, j);
	log_debug("waits", "job=%s kind=%s accession_number=%s "
	    "sop_instance_uid=%s why=%s", j->name, j->kind,
	    j->accession_number, j->sop_instance_uid,
	    log_quote(why, q, sizeof q));
	reschedule(o, j);
}

int
job_park(struct job_ctx *o, struct job *j, const char *reason)
{
	char q[600];
	struct err e = { 0 };

	job_line(j->error, sizeof j->error, reason);
	o->rejected++;
	log_error("job failed for good", "job=%s kind=%s accession_number=%s "
	    "sop_instance_uid=%s reason=%s", j->name, j->kind,
	    j->accession_number, j->sop_instance_uid,
	    log_quote(j->error, q, sizeof q));
	if (job_is(j, JOB_IMAGE) &&
	    job_set_upload(o, j, UPLOAD_FAILED, j->error, 0) == 1)
		alert_study(o, j, "upload_failed", "a study's image failed for "
		    "good: not sent (gatewayctl show; relaysend --retry-failed)",
		    "an image of the study failed for good");
	if (spool_fail(o->spool, j->name, j->error, &e) == -1) {
		log_err("cannot park job", &e);
		return -1;
	}
	return 0;
}

void
job_refuse(struct job_ctx *o, struct job *j, const char *reason)
{
	char q[600];
	int r;

	job_line(j->error, sizeof j->error, reason);
	if ((r = job_set_upload(o, j, UPLOAD_REFUSED, j->error, 0)) == -1) {
		job_defer(o, j, "will retry", "pacs.db unavailable", -1);
		return;
	}
	o->rejected++;
	log_warn("refused by the Manage API: not sent", "job=%s "
	    "accession_number=%s sop_instance_uid=%s reason=%s", j->name,
	    j->accession_number, j->sop_instance_uid,
	    log_quote(j->error, q, sizeof q));
	if (r == 1)
		alert_study(o, j, "upload_refused", "the Manage API refuses a "
		    "study's uploads (403): not sent (gatewayctl waiting, "
		    "resend, assign)", "the Manage API refuses the study's "
		    "uploads (403)");
	job_done(o, j);
}

void
job_done(struct job_ctx *o, const struct job *j)
{
	struct err e = { 0 };

	if (spool_finish(o->spool, j->name, &e) == -1)
		log_err("cannot finish job", &e);
}

int
job_save_claimed(struct job_ctx *o, const struct job *j,
    struct err *e)
{
	char *body;
	int n, rc;

	if ((n = job_format(j, &body)) == -1)
		return err_set(e, ENOMEM, "job body too long");
	rc = spool_rewrite(o->spool, j->name, body, (size_t)n, e);
	free(body);
	return rc;
}

/*
 * No worklist item yet: look again in about a minute (a local lookup,
 * not an upload: no attempt is counted).  Reported once, at warn, when
 * the first image of a study begins to wait; every later look is debug.
 */
static void
wait_for_item(struct job_ctx *o, struct job *j, const char *acc,
    const char *why)
{
	int image = job_is(j, JOB_IMAGE);
	int again = strncmp(j->error, JOB_NO_ITEM,
	    sizeof JOB_NO_ITEM - 1) == 0;
	int first;

	later(o, j);
	job_line(j->error, sizeof j->error, why);
	first = image ? job_set_upload(o, j, UPLOAD_UNMATCHED, j->error,
	    j->next_attempt_ms) : 0;
	if (first == 1 && !again)
		log_warn("a study waits for a worklist item", "kind=%s "
		    "accession_number=%s study_instance_uid=%s "
		    "note=\"looked for again every minute; see gatewayctl "
		    "waiting, assign, release\"", j->kind, acc,
		    j->study_instance_uid);
	else
		log_debug("waits for a worklist item", "job=%s kind=%s "
		    "accession_number=%s sop_instance_uid=%s", j->name,
		    j->kind, acc, j->sop_instance_uid);
	reschedule(o, j);
}

/* Released by hand: not sent, the job dropped, the image kept. */
static void
release(struct job_ctx *o, struct job *j)
{
	job_line(j->error, sizeof j->error, "released by hand "
	    "(gatewayctl release): not sent");
	log_info("released by hand: not sent", "job=%s kind=%s "
	    "accession_number=%s sop_instance_uid=%s", j->name, j->kind,
	    j->accession_number, j->sop_instance_uid);
	if (job_is(j, JOB_IMAGE) &&
	    job_set_upload(o, j, UPLOAD_RELEASED, j->error, 0) == -1)
		{ job_defer(o, j, "will retry", "pacs.db unavailable", -1);
		  return; }
	job_done(o, j);
}

int
job_find_action(struct job_ctx *o, struct job *j)
{
	struct worklist_item item;
	char why[600], assigned[PACS_LO];
	const char *acc;
	struct err e = { 0 };
	int r, released;

	if (upload_state_by_hand(o->db, j->sop_instance_uid, assigned,
	    sizeof assigned, &released, &e) == -1)
		{ job_defer(o, j, "will retry", e.msg, -1); return 1; }
	if (released)
		{ release(o, j); return 1; }
	acc = assigned[0] != '\0' ? assigned : j->accession_number;
	r = acc[0] == '\0' ? WL_NOT_FOUND :
	    worklist_get(o->worklist, acc, &item, &e);
	if (r == -1)
		{ job_defer(o, j, "will retry", e.msg, -1); return 1; }
	if (r == WL_NOT_FOUND || item.source_message_id[0] == '\0') {
		snprintf(why, sizeof why, JOB_NO_ITEM " with a source "
		    "message id for accession number \"%s\"", acc);
		if (o->no_match_report)
			{ job_park(o, j, why); return 1; }
		wait_for_item(o, j, acc, why);
		return 1;
	}
	if (strncmp(j->error, JOB_NO_ITEM, sizeof JOB_NO_ITEM - 1) == 0)
		log_info("the worklist item is there: sending", "job=%s "
		    "kind=%s accession_number=%s sop_instance_uid=%s%s",
		    j->name, j->kind, acc, j->sop_instance_uid,
		    assigned[0] ? " assigned=1" : "");
	memcpy(j->source_message_id, item.source_message_id,
	    sizeof j->source_message_id);
	return 0;
}

/* ------------------------------------------------------- retry now */

static int
retry_path(const struct spool *relay, char *out, size_t outsz)
{
	return snprintf(out, outsz, "%s/retry", relay->dir) < (int)outsz ?
	    0 : -1;
}

/* new/NAME is waiting for a later time (its next_attempt_ms). */
static int
waits(const struct spool *relay, const char *name, long long now)
{
	char path[PATH_MAX], *body = NULL;
	struct job j = { 0 };
	struct err e = { 0 };

	if (snprintf(path, sizeof path, "%s/new/%s", relay->dir, name) >=
	    (int)sizeof path ||
	    fs_read_small(path, SPOOL_JOB_MAX, &body, NULL, &e) == -1)
		return 0;	/* gone meanwhile: claimed, or done */
	job_parse(body, &j);
	free(body);
	return j.next_attempt_ms > now;
}

int
job_retry_now(struct spool *relay, int *waiting, struct err *e)
{
	char (*names)[SPOOL_NAME_MAX], path[PATH_MAX], stamp[32];
	long long now = job_now_ms();
	size_t n;
	int w = 0;

	if (retry_path(relay, path, sizeof path) == -1)
		return err_set(e, ENAMETOOLONG, "relay spool path too long");
	if (spool_list(relay, &names, &n, e) == -1)
		return -1;
	for (size_t i = 0; i < n; i++)
		w += waits(relay, names[i], now);
	free(names);
	snprintf(stamp, sizeof stamp, "%lld\n", now);
	if (fs_write_atomic(path, stamp, strlen(stamp), e) == -1)
		return -1;
	spool_wake(relay);
	if (waiting != NULL)
		*waiting = w;
	return 0;
}

long long
job_retry_asked(const struct spool *relay)
{
	char path[PATH_MAX], *body = NULL;
	struct err e = { 0 };
	long long t;

	if (retry_path(relay, path, sizeof path) == -1 ||
	    fs_read_small(path, 64, &body, NULL, &e) == -1)
		return 0;
	t = atoll(body);
	free(body);
	return t > 0 ? t : 0;
}
