/*
 * imagesend: images and failure reports to the Manage API (cloud/cloud.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cloud/cloud.h"
#include "base/base.h"


/* The Manage API's outage is under way (lib/cloud/job): its lines say
 * what fails; an attempt's own line is debug. */
static int
quiet(const struct imagesend *s)
{
	return s->ob->outage[JOB_TO_API].since_ms != 0;
}

/* 401: the token is forgotten, so the next one is made again; 403: this
 * identity may not do it (the cloud's configuration).  Said at error
 * when the Manage API's outage begins, then at debug: the outage's own
 * lines (lib/cloud/job) go on saying it, not one line per attempt. */
static void
token_refused(struct imagesend *s, long status)
{
	log_msg(quiet(s) ? LOG_DEBUG : LOG_ERROR,
	    "the Manage API refuses the token", "status=%ld "
	    "credential=%s note=\"%s\"", status,
	    identity_kind_name(s->src.kind), status == 401 ?
	    "a new token is made for the next request" :
	    "this identity is not allowed: check the cloud's configuration");
	if (status == 401)
		identity_forget(s->identity, &s->src);
}

/* The Authorization for a request (lib/cloud/identity) in s->auth: 0,
 * or the job deferred (1) with the credential's failure logged. */
static int
need_authorization(struct imagesend *s, struct job *j)
{
	const struct identity_token *t;
	struct err e = { 0 };
	char q[600], why[700];

	if (identity_token(s->identity, &s->src, NULL, &t, &e) == 0) {
		/* said once per failure, not at every request */
		if (t->renew_error[0] != '\0' && strncmp(s->renew_said,
		    t->renew_error, sizeof s->renew_said - 1) != 0)
			log_warn("cannot renew the Manage API token: using the "
			    "current one", "credential=%s reason=%s",
			    identity_kind_name(s->src.kind),
			    log_quote(t->renew_error, q, sizeof q));
		snprintf(s->renew_said, sizeof s->renew_said, "%s",
		    t->renew_error);
		s->auth = t->value;
		return 0;
	}
	log_msg(quiet(s) ? LOG_DEBUG : LOG_ERROR,
	    "no token for the Manage API", "credential=%s reason=%s",
	    identity_kind_name(s->src.kind), log_quote(e.msg, q, sizeof q));
	snprintf(why, sizeof why, "no token for the Manage API: %s", e.msg);
	job_defer(s->ob, j, "will retry", why, -1);
	return 1;
}

/* {CLOUD_API_ENDPOINT}/{source_message_id}[suffix] */
static int
api_url(struct imagesend *s, const char *id, const char *suffix, char *out,
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
queue_failure_report(struct imagesend *s, const struct job *image,
    const char *reason)
{
	struct job r = { 0 };
	char *body = NULL;
	struct err e = { 0 };
	int n, rc;

	snprintf(r.kind, sizeof r.kind, JOB_FAILURE);
	memcpy(r.sop_instance_uid, image->sop_instance_uid,
	    sizeof r.sop_instance_uid);
	memcpy(r.accession_number, image->accession_number,
	    sizeof r.accession_number);
	memcpy(r.source_message_id, image->source_message_id,
	    sizeof r.source_message_id);
	job_line(r.error, sizeof r.error, reason);
	if ((n = job_format(&r, &body)) == -1)
		err_set(&e, ENOMEM, "failure report too long");
	rc = n == -1 ? -1 :
	    spool_enqueue(s->ob->spool, NULL, body, (size_t)n, 0, &e);
	free(body);
	if (rc == -1) {
		log_err("cannot queue the failure report", &e);
		return -1;
	}
	s->ob->remaining++;
	return 0;
}

static void
describe(const struct api_result *r, char *out, size_t outsz)
{
	char s[API_BODY_MAX + 32];

	snprintf(s, sizeof s, "HTTP %ld: %s", r->status, r->body);
	job_line(out, outsz, s);
}

/*
 * The file to upload in the configured mode: path itself, or a
 * transcoded copy made in copy (the caller removes it).  An image that
 * cannot be transcoded is sent as it is; NULL when the machine is short
 * of something (the job is deferred).
 */
static const char *
upload_copy(struct imagesend *s, struct job *j, const char *path,
    char *copy, size_t copysz)
{
	struct transcode_result tr;
	struct err e = { 0 };
	int rc;

	if (s->mode == TRANSCODE_ORIGINAL)
		return path;
	if (snprintf(copy, copysz, "%s/upload-%ld-%s.dcm", s->scratch,
	    (long)getpid(), j->object) >= (int)copysz)
		return path;
	rc = transcode_file_opts(path, copy, s->mode, &s->topts, &tr, &e);
	if (rc == 0) {
		log_debug("transcoded", "sop_instance_uid=%s mode=%s "
		    "bytes_in=%zu bytes_out=%zu seconds=%.3f", j->sop_instance_uid,
		    transcode_mode_name(s->mode), tr.in_bytes, tr.out_bytes,
		    tr.seconds);
		return copy;
	}
	unlink(copy);
	if (rc == 1)
		return path;
	if (e.code == ENOMEM || e.code == ENOSPC || e.code == EIO ||
	    e.code == EMFILE) {
		job_defer(s->ob, j, "will retry", e.msg, -1);
		return NULL;
	}
	log_warn("cannot transcode: sending the original", "sop_instance_uid=%s "
	    "mode=%s error=\"%s\"", j->sop_instance_uid,
	    transcode_mode_name(s->mode), e.msg);
	return path;
}

/*
 * Given up for good: FAILED, parked, reported to the cloud (once no
 * other image of its study is on its way: imagesend_failure_report).
 * The parked job counts no 500s, so relaysend --retry-failed gives it
 * MAX_UPLOAD_RETRIES tries again.
 */
static void
give_up(struct imagesend *s, struct job *j, const char *why)
{
	struct err e = { 0 };

	if (queue_failure_report(s, j, why) == -1)
		{ job_defer(s->ob, j, "will retry", why, -1); return; }
	if (j->server_errors > 0) {
		j->server_errors = 0;
		if (job_save_claimed(s->ob, j, &e) == -1)
			log_err("cannot reset the job's count of 500s", &e);
	}
	job_park(s->ob, j, why);
}

/*
 * A 500, as production answers permanent errors: tried again, at least
 * spread_seconds / (max_retries - 1) apart, until the max_retries-th,
 * which gives the image up.
 */
static void
server_error(struct imagesend *s, struct job *j, const struct api_result *r,
    const char *why)
{
	char last[800];
	long gap = s->max_retries > 1 ? s->spread_seconds /
	    (s->max_retries - 1) : 0;

	j->server_errors++;
	if (j->server_errors < s->max_retries) {
		job_defer(s->ob, j, "will retry", why,
		    r->retry_after_seconds > gap ? r->retry_after_seconds : gap);
		return;
	}
	snprintf(last, sizeof last, "%s (answered 500 %d time%s: "
	    "MAX_UPLOAD_RETRIES)", why, j->server_errors,
	    j->server_errors == 1 ? "" : "s");
	give_up(s, j, last);
}

/* The Manage API answered r: settle the job by what it means. */
static void
uploaded(struct imagesend *s, struct job *j,
    const struct api_result *r)
{
	char why[700];

	describe(r, why, sizeof why);
	switch (api_outcome(r->status)) {
	case API_DONE:
		j->error[0] = '\0';
		if (job_set_upload(s->ob, j, UPLOAD_COMPLETE, NULL, 0) == -1)
			{ job_defer(s->ob, j, "will retry", "pacs.db "
			    "unavailable after the upload", -1); return; }
		job_done(s->ob, j);
		s->ob->uploaded++;
		log_info("uploaded", "accession_number=%s sop_instance_uid=%s "
		    "source_message_id=%s status=%ld bytes=%lld seconds=%.3f "
		    "priority=%s requested=%d", j->accession_number,
		    j->sop_instance_uid, j->source_message_id, r->status,
		    r->bytes_sent, r->seconds, j->high ? "high" : "normal",
		    j->requested);
		return;
	case API_TOKEN:
		token_refused(s, r->status);
		job_defer(s->ob, j, "will retry", why, r->retry_after_seconds);
		return;
	case API_REFUSED:
		job_refuse(s->ob, j, why);
		return;
	case API_REJECTED:
		give_up(s, j, why);
		return;
	case API_SERVER_ERROR:
		server_error(s, j, r, why);
		return;
	case API_TRANSIENT:
		job_defer(s->ob, j, "will retry", why, r->retry_after_seconds);
		return;
	}
}

/* The file the Manage API would refuse for its size (over its limit,
 * CLOUD_API_MAX_MB): given up here, no PUT.  1 when it was. */
static int
too_big(struct imagesend *s, struct job *j, const char *path)
{
	char why[300];
	struct stat sb;

	if (stat(path, &sb) == -1 || s->max_bytes <= 0 ||
	    sb.st_size <= s->max_bytes)
		return 0;
	snprintf(why, sizeof why, "not sent: %lld bytes, over the Manage "
	    "API's limit of %lld MiB (CLOUD_API_MAX_MB)",
	    (long long)sb.st_size, s->max_bytes / (1024 * 1024));
	give_up(s, j, why);
	return 1;
}

/* PUT, and once more at once with a new token after a 401. */
static int
put(struct imagesend *s, struct job *j, const char *url, const char *path,
    const char *name, struct api_result *r, struct err *e)
{
	int rc = api_put_file(s->up, url, s->auth, path, name, r, e);

	if (rc == 0 && api_outcome(r->status) == API_TOKEN) {
		log_msg(quiet(s) ? LOG_DEBUG : LOG_INFO,
		    "the Manage API refused the token: making a new one",
		    "sop_instance_uid=%s status=%ld credential=%s",
		    j->sop_instance_uid, r->status,
		    identity_kind_name(s->src.kind));
		identity_forget(s->identity, &s->src);
		if (need_authorization(s, j))
			return 1;	/* deferred */
		rc = api_put_file(s->up, url, s->auth, path, name, r, e);
	}
	return rc;
}

static void
send_image(struct imagesend *s, struct job *j, const char *path)
{
	char url[2048], name[PACS_UI + 8], copy[PATH_MAX];
	struct api_result r;
	struct err e = { 0 };
	int rc;

	snprintf(name, sizeof name, "%s.dcm", j->sop_instance_uid);
	if (api_url(s, j->source_message_id, "", url, sizeof url, &e) == -1)
		{ job_park(s->ob, j, e.msg); return; }
	if (need_authorization(s, j))
		return;
	if (job_set_upload(s->ob, j, UPLOAD_UPLOADING, NULL, 0) == -1)
		{ job_defer(s->ob, j, "will retry", "pacs.db unavailable",
		    -1); return; }
	if ((path = upload_copy(s, j, path, copy, sizeof copy)) == NULL)
		return;
	rc = too_big(s, j, path) ? 1 : put(s, j, url, path, name, &r, &e);
	if (path == copy)
		unlink(copy);
	if (rc == 1)
		return;		/* settled already */
	if (rc == 0)
		uploaded(s, j, &r);
	else if (*s->ob->stop)
		job_unclaim(s->ob, j);
	else
		job_defer(s->ob, j, "will retry", e.msg, -1);
}

/*
 * A routine job for an image not for the cloud (queued before
 * RELAY_UPLOAD_CLASSES said so): the image becomes LOCAL, the job is
 * dropped (1).  An image the cloud asked for (requested=1) goes whatever
 * its class (0).
 */
static int
not_for_cloud(struct imagesend *s, struct job *j)
{
	struct err e = { 0 };
	int r;

	if (j->requested || (r = upload_state_keep_local(s->ob->db,
	    j->sop_instance_uid, s->classes, &e)) == 0)
		return 0;
	if (r == -1)
		{ job_defer(s->ob, j, "will retry", e.msg, -1); return 1; }
	log_info("not for the cloud (RELAY_UPLOAD_CLASSES): kept LOCAL",
	    "job=%s sop_instance_uid=%s", j->name, j->sop_instance_uid);
	job_done(s->ob, j);
	return 1;
}

/*
 * Before the PUT, what pacs.db says: an image whose study the Manage API
 * refused is refused too (no PUT: it would be), unless the cloud asked
 * for it (requested=1); one the cloud would refuse for what it reads
 * fails here.  0: send it; 1: settled here.
 */
static int
checked(struct imagesend *s, struct job *j)
{
	char why[600];
	struct err e = { 0 };
	int r;

	if (!j->requested && (r = upload_state_study_has(s->ob->db,
	    j->sop_instance_uid, UPLOAD_REFUSED, &e)) != 0) {
		if (r == -1)
			{ job_defer(s->ob, j, "will retry", e.msg, -1); return 1; }
		job_refuse(s->ob, j, "not sent: the Manage API refused another "
		    "image of the study (403)");
		return 1;
	}
	if ((r = upload_state_check(s->ob->db, j->sop_instance_uid, why,
	    sizeof why, &e)) == 0)
		return 0;
	if (r == -1)
		job_defer(s->ob, j, "will retry", e.msg, -1);
	else
		give_up(s, j, why);
	return 1;
}

void
imagesend_image(struct imagesend *s, struct job *j)
{
	char path[PATH_MAX], why[600];
	struct err e = { 0 };
	struct stat sb;

	if (!store_valid_hash(j->object) || j->sop_instance_uid[0] == '\0')
		{ job_park(s->ob, j, "job has no valid object= or "
		    "sop_instance_uid="); return; }
	if (not_for_cloud(s, j) || job_find_action(s->ob, j) != 0)
		return;		/* waiting for a worklist item is no attempt */
	if (checked(s, j) != 0)
		return;		/* settled without a PUT: no attempt either */
	j->attempts = (j->attempts < 0 ? 0 : j->attempts) + 1;
	if (store_path(s->store, j->object, path, sizeof path, &e) == -1)
		{ job_park(s->ob, j, e.msg); return; }
	if (stat(path, &sb) == -1) {
		snprintf(why, sizeof why, "object %s is not in the store",
		    j->object);
		job_park(s->ob, j, why);
		return;
	}
	send_image(s, j, path);
}

/* The JSON body of a failure report: {"error": …} (malloc'd), or NULL. */
static char *
failure_json(const char *error)
{
	json_t *o = json_pack("{s:s}", "error", error);
	char *json = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return json;
}

void
imagesend_failure_report(struct imagesend *s, struct job *j)
{
	char url[2048], why[700], *json;
	struct api_result r = { 0 };
	struct err e = { 0 };
	int rc;

	if ((rc = upload_state_study_busy(s->ob->db, j->sop_instance_uid,
	    s->ob->pending_queued, &e)) != 0) {
		if (rc == -1)
			job_defer(s->ob, j, "will retry", e.msg, -1);
		else
			job_later(s->ob, j, "the study's other images are on "
			    "their way: a failure report would make the cloud "
			    "refuse them");
		return;
	}
	j->attempts++;
	if (api_url(s, j->source_message_id, "/failure", url, sizeof url,
	    &e) == -1)
		{ job_park(s->ob, j, e.msg); return; }
	if (need_authorization(s, j))
		return;
	if ((json = failure_json(j->error)) == NULL)
		{ job_defer(s->ob, j, "will retry", "out of memory", -1);
		  return; }
	rc = api_patch_json(s->up, url, s->auth, json, &r, &e);
	free(json);
	if (rc == -1) {
		if (*s->ob->stop)
			job_unclaim(s->ob, j);
		else
			job_defer(s->ob, j, "will retry", e.msg, -1);
		return;
	}
	describe(&r, why, sizeof why);
	switch (api_outcome(r.status)) {
	case API_DONE:
		job_done(s->ob, j);
		log_info("failure reported", "accession_number=%s "
		    "sop_instance_uid=%s source_message_id=%s status=%ld",
		    j->accession_number, j->sop_instance_uid,
		    j->source_message_id, r.status);
		return;
	case API_TOKEN:
		token_refused(s, r.status);
		/* FALLTHROUGH */
	case API_SERVER_ERROR:
	case API_TRANSIENT:
		job_defer(s->ob, j, "will retry", why, r.retry_after_seconds);
		return;
	case API_REFUSED:
	case API_REJECTED:
		job_park(s->ob, j, why);
		return;
	}
}
