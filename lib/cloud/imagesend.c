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

/* The Authorization for a request (lib/cloud/identity), or NULL with the
 * job deferred and the credential's failure logged. */
static const char *
need_authorization(struct imagesend *s, struct job *j)
{
	const struct identity_token *t;
	struct err e = { 0 };
	char q[600];

	if (identity_token(s->identity, &s->src, NULL, &t, &e) == 0) {
		if (t->renew_error[0] != '\0')
			log_warn("cannot renew the Manage API token: using the "
			    "current one", "credential=%s reason=%s",
			    identity_kind_name(s->src.kind),
			    log_quote(t->renew_error, q, sizeof q));
		return t->value;
	}
	log_error("no token for the Manage API", "credential=%s reason=%s",
	    identity_kind_name(s->src.kind), log_quote(e.msg, q, sizeof q));
	job_defer(s->ob, j, "will retry", e.msg, -1);
	return NULL;
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
	rc = transcode_file(path, copy, s->mode, &tr, &e);
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

/* 401: the token is made again for the next request; 403: this
 * identity may not do it (the cloud's configuration). */
static void
token_refused(struct imagesend *s, long status)
{
	log_error("the Manage API refuses the token", "status=%ld "
	    "credential=%s note=\"%s\"", status,
	    identity_kind_name(s->src.kind), status == 401 ?
	    "a new token is made for the next request" :
	    "this identity is not allowed: check the cloud's configuration");
	if (status == 401)
		identity_forget(s->identity, &s->src);
}

/* The Manage API answered r: settle the job by the status. */
static void
uploaded(struct imagesend *s, struct job *j,
    const struct api_result *r)
{
	char why[700];

	describe(r, why, sizeof why);
	if (r->status >= 200 && r->status < 300) {
		j->error[0] = '\0';
		if (job_set_upload(s->ob, j, "COMPLETE", NULL, 0) == -1)
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
	}
	if (api_status_transient(r->status)) {
		if (r->status == 401 || r->status == 403)
			token_refused(s, r->status);
		job_defer(s->ob, j, "will retry", why, r->retry_after_seconds);
		return;
	}
	if (queue_failure_report(s, j, why) == -1)
		{ job_defer(s->ob, j, "will retry", why, -1); return; }
	job_park(s->ob, j, why);
}

static void
send_image(struct imagesend *s, struct job *j, const char *path)
{
	char url[2048], name[PACS_UI + 8], copy[PATH_MAX];
	const char *authorization;
	struct api_result r;
	struct err e = { 0 };
	int rc;

	snprintf(name, sizeof name, "%s.dcm", j->sop_instance_uid);
	if (api_url(s, j->source_message_id, "", url, sizeof url, &e) == -1)
		{ job_park(s->ob, j, e.msg); return; }
	if ((authorization = need_authorization(s, j)) == NULL)
		return;
	if (job_set_upload(s->ob, j, "UPLOADING", NULL, 0) == -1)
		{ job_defer(s->ob, j, "will retry", "pacs.db unavailable",
		    -1); return; }
	if ((path = upload_copy(s, j, path, copy, sizeof copy)) == NULL)
		return;
	rc = api_put_file(s->up, url, authorization, path, name, &r, &e);
	if (path == copy)
		unlink(copy);
	if (rc == 0)
		uploaded(s, j, &r);
	else if (*s->ob->stop)
		job_unclaim(s->ob, j);
	else
		job_defer(s->ob, j, "will retry", e.msg, -1);
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
	if (job_find_action(s->ob, j) != 0)
		return;		/* waiting for a worklist item is no attempt */
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
	const char *authorization;
	struct api_result r = { 0 };
	struct err e = { 0 };
	int rc;

	j->attempts++;
	if (api_url(s, j->source_message_id, "/failure", url, sizeof url,
	    &e) == -1)
		{ job_park(s->ob, j, e.msg); return; }
	if ((authorization = need_authorization(s, j)) == NULL)
		return;
	if ((json = failure_json(j->error)) == NULL)
		{ job_defer(s->ob, j, "will retry", "out of memory", -1);
		  return; }
	rc = api_patch_json(s->up, url, authorization, json, &r, &e);
	free(json);
	if (rc == -1) {
		if (*s->ob->stop)
			job_unclaim(s->ob, j);
		else
			job_defer(s->ob, j, "will retry", e.msg, -1);
		return;
	}
	describe(&r, why, sizeof why);
	if (r.status >= 200 && r.status < 300) {
		job_done(s->ob, j);
		log_info("failure reported", "accession_number=%s "
		    "sop_instance_uid=%s source_message_id=%s status=%ld",
		    j->accession_number, j->sop_instance_uid,
		    j->source_message_id, r.status);
		return;
	}
	if (api_status_transient(r.status)) {
		if (r.status == 401)
			token_refused(s, r.status);
		job_defer(s->ob, j, "will retry", why, r.retry_after_seconds);
		return;
	}
	job_park(s->ob, j, why);
}
