/*
 * eventsend: events to the cloud over Azure Relay (cloud/cloud.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cloud/cloud.h"
#include "base/base.h"

#define EVENT_REPLY_MS		10000	/* PROTOCOL.md §3: wait 10 s */

/* The relay token for the events hybrid connection (lib/cloud/identity),
 * or NULL with e set. */
static const char *
relay_authorization(struct eventsend *s, struct err *e)
{
	const struct identity_token *t;
	char resource[1024], q[400];

	if (relay_resource(s->ns, s->events_hc, resource, sizeof resource,
	    e) == -1 || identity_token(s->identity, &s->src, resource, &t,
	    e) == -1)
		return NULL;
	/* said once per failure, not at every event */
	if (t->renew_error[0] != '\0' && strncmp(s->renew_said,
	    t->renew_error, sizeof s->renew_said - 1) != 0)
		log_warn("cannot renew the relay token: using the current one",
		    "credential=%s reason=%s", identity_kind_name(s->src.kind),
		    log_quote(t->renew_error, q, sizeof q));
	snprintf(s->renew_said, sizeof s->renew_said, "%s", t->renew_error);
	return t->value;
}

static void
get(const char *body, const char *key, char *out, size_t outsz)
{
	if (spool_job_get(body, key, out, outsz) == -1)
		out[0] = '\0';
}

/*
 * The study.image_received message (lib/cloud/event) in *msg; an event over
 * the cloud's 1 MiB goes without its preview.  0; 1 the job was deferred
 * or parked.
 */
static int
image_message(struct eventsend *s, struct job *j, char **msg,
    size_t *len)
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
	r = event_image_received(s->ob->db, j->sop_instance_uid,
	    j->message_id, j->source_message_id, &p, &m, &e);
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
		job_park(s->ob, j, e.msg);
	else
		job_defer(s->ob, j, "will retry", r == EVENT_NO_INSTANCE ?
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
event_reply(struct eventsend *s, struct job *j, const char *reply,
    size_t bytes)
{
	static const char *const done[] = { "created", "already_exists",
	    "updated", "processed", NULL };
	static const char *const never[] = { "action_not_found",
	    "appointment_not_found", "unknown_status", NULL };
	char why[600], text[600];
	json_t *o = json_loads(reply, 0, NULL);
	const char *status = json_string_value(json_object_get(o, "status"));

	snprintf(text, sizeof text, "reply %s", reply);
	job_line(why, sizeof why, text);
	if (in_list(status, done)) {
		job_done(s->ob, j);
		s->ob->events++;
		log_info("event delivered", "kind=%s job=%s "
		    "accession_number=%s sop_instance_uid=%s message_id=%s "
		    "status=%s bytes=%zu attempts=%d", j->kind, j->name,
		    j->accession_number, j->sop_instance_uid, j->message_id,
		    status, bytes, j->attempts);
	} else if (in_list(status, never)) {
		job_park(s->ob, j, why);
	} else {
		job_defer(s->ob, j, "will retry", why, -1);
	}
	json_decref(o);
}

/* Why a relay call failed, for the job's error and the log. */
static void
ws_why(const struct ws_status *st, const struct err *e, char *out,
    size_t outsz)
{
	char s[700];

	if (st->phase == WS_HANDSHAKE && st->http_status != 0)
		snprintf(s, sizeof s, "relay handshake HTTP %d%s: %s",
		    st->http_status, st->http_status == 404 ?
		    " (no listener on the events hybrid connection now)" : "",
		    e->msg);
	else if (st->phase == WS_CLOSED)
		snprintf(s, sizeof s, "relay closed %d %s: %s", st->close_code,
		    st->close_reason, e->msg);
	else
		snprintf(s, sizeof s, "relay %s: %s", ws_phase_name(st->phase),
		    e->msg);
	job_line(out, outsz, s);
}

/* A failed relay call: the job waits (a close 1009 parks it). */
static void
ws_failed(struct eventsend *s, struct job *j,
    const struct ws_status *st, const struct err *e)
{
	char why[700];

	ws_why(st, e, why, sizeof why);
	if (*s->ob->stop) {
		job_unclaim(s->ob, j);
		return;
	}
	if (st->phase == WS_HANDSHAKE && (st->http_status == 401 ||
	    st->http_status == 403)) {
		/* at error when the outage begins, then the outage's
		 * own lines (lib/cloud/job) say it */
		log_msg(s->ob->outage[JOB_TO_RELAY].since_ms != 0 ?
		    LOG_DEBUG : LOG_ERROR, "the relay refuses the token",
		    "status=%d "
		    "hybrid_connection=%s credential=%s note=\"%s\"",
		    st->http_status, s->events_hc,
		    identity_kind_name(s->src.kind), st->http_status == 401 ?
		    "a new token is made for the next event" :
		    "the credential lacks the Send right");
		if (st->http_status == 401)
			identity_forget(s->identity, &s->src);
	}
	if (st->phase == WS_CLOSED && st->close_code == 1009) {
		job_park(s->ob, j, why);
		return;
	}
	job_defer(s->ob, j, "will retry", why, -1);
}

/* Connect as a sender, send msg, wait for the JSON reply, close. */
static void
send_event(struct eventsend *s, struct job *j, const char *msg,
    size_t len)
{
	struct ws_status st = { 0 };
	struct err e = { 0 };
	char *reply = NULL, q[600], why[700];
	const char *token;
	int r;

	if ((token = relay_authorization(s, &e)) == NULL) {
		log_msg(s->ob->outage[JOB_TO_RELAY].since_ms != 0 ?
		    LOG_DEBUG : LOG_ERROR, "no token for the relay",
		    "credential=%s reason=%s",
		    identity_kind_name(s->src.kind),
		    log_quote(e.msg, q, sizeof q));
		snprintf(why, sizeof why, "no token for the relay: %s", e.msg);
		job_defer(s->ob, j, "will retry", why, -1);
		return;
	}
	if (relay_connect_url(s->ns, s->events_hc, token, s->endpoint, s->url,
	    sizeof s->url, &e) == -1)
		{ job_park(s->ob, j, e.msg); return; }
	r = ws_request(s->ws, s->url, NULL, NULL, msg, len,
	    (int)s->open_timeout_seconds * 1000, EVENT_REPLY_MS, &reply, &st,
	    &e);
	if (r == -1)
		ws_failed(s, j, &st, &e);
	else if (r == 0 && *s->ob->stop)
		job_unclaim(s->ob, j);
	else if (r == 0)
		job_defer(s->ob, j, "will retry", "relay: no reply within "
		    "10 s", -1);
	else
		event_reply(s, j, reply, len);
	free(reply);
}

void
eventsend_image_event(struct eventsend *s, struct job *j)
{
	struct err e = { 0 };
	char *msg;
	size_t len;

	if (j->sop_instance_uid[0] == '\0')
		{ job_park(s->ob, j, "job has no sop_instance_uid="); return; }
	if (job_find_action(s->ob, j) != 0)
		return;		/* waiting for a worklist item is no attempt */
	j->attempts = (j->attempts < 0 ? 0 : j->attempts) + 1;
	if (j->message_id[0] == '\0') {
		if (relay_uuid(j->message_id, &e) == -1 ||
		    job_save_claimed(s->ob, j, &e) == -1) {
			j->message_id[0] = '\0';
			job_defer(s->ob, j, "will retry", e.msg, -1);
			return;
		}
	}
	if (image_message(s, j, &msg, &len) != 0)
		return;
	send_event(s, j, msg, len);
	free(msg);
}

/* The outbox's event= (malloc'd), its accession number into the job for
 * the logs; NULL with the job parked or deferred. */
static char *
prepared_event(struct eventsend *s, struct job *j)
{
	size_t cap = strlen(j->body) + 1;
	char *ev = malloc(cap);
	const char *acc;
	json_t *o;

	if (ev == NULL)
		{ job_defer(s->ob, j, "will retry", "out of memory", -1);
		  return NULL; }
	if (spool_job_get(j->body, "event", ev, cap) == -1 ||
	    (o = json_loads(ev, 0, NULL)) == NULL) {
		free(ev);
		job_park(s->ob, j, "job has no event= with a JSON object");
		return NULL;
	}
	acc = json_string_value(json_object_get(json_object_get(o, "data"),
	    "accession_number"));
	if (j->accession_number[0] == '\0' && acc != NULL)
		job_line(j->accession_number, sizeof j->accession_number,
		    acc);
	json_decref(o);
	return ev;
}

void
eventsend_prepared_event(struct eventsend *s, struct job *j)
{
	char why[200], *ev;

	j->attempts = (j->attempts < 0 ? 0 : j->attempts) + 1;
	if ((ev = prepared_event(s, j)) == NULL)
		return;
	if (strlen(ev) > EVENT_MAX) {
		snprintf(why, sizeof why, "event of %zu bytes is over the "
		    "cloud's 1 MiB limit", strlen(ev));
		free(ev);
		job_park(s->ob, j, why);
		return;
	}
	send_event(s, j, ev, strlen(ev));
	free(ev);
}
