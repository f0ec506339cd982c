/*
 * cloud_status: run/relay.state and run/delivery.state, each written and
 * read here, and the cloud as the status sees it (see cloud/cloud.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/base.h"
#include "cloud/cloud.h"

#define RELAY_STATE	"relay.state"
#define SEND_STATE	"delivery.state"
#define SEND_LOCK	"delivery.lock"

/* ------------------------------------------------------ run/relay.state */

int
relay_state_write(const char *data_dir, const struct relay_state *r,
    struct err *e)
{
	struct runstate s;

	runstate_init(&s);
	runstate_put(&s, "connection", "%s", r->connection);
	runstate_put_time(&s, "since", r->since);
	runstate_put_time(&s, "started", r->started);
	runstate_put(&s, "credential", "%s", r->credential);
	runstate_put_time(&s, "token_expires", r->token_expires);
	runstate_put_time(&s, "last_pong", r->last_pong);
	runstate_put_time(&s, "last_action", r->last_action);
	runstate_put(&s, "self_echo", "%s", r->self_echo);
	runstate_put_time(&s, "last_proof", r->last_proof);
	runstate_put(&s, "last_error", "%s", r->last_error);
	runstate_put_time(&s, "last_error_at", r->last_error_at);
	runstate_put(&s, "hybrid_connection", "%s", r->hybrid_connection);
	runstate_put(&s, "pid", "%ld", (long)getpid());
	return runstate_write(data_dir, RELAY_STATE, &s, e);
}

int
relay_state_read(const char *data_dir, struct relay_state *r, struct err *e)
{
	struct runstate s;
	int rc;

	memset(r, 0, sizeof *r);
	if ((rc = runstate_read(data_dir, RELAY_STATE, &s, e)) != 0)
		return rc;
	runstate_get(&s, "connection", r->connection, sizeof r->connection);
	r->since = runstate_get_time(&s, "since");
	r->started = runstate_get_time(&s, "started");
	runstate_get(&s, "credential", r->credential, sizeof r->credential);
	r->token_expires = runstate_get_time(&s, "token_expires");
	r->last_pong = runstate_get_time(&s, "last_pong");
	r->last_action = runstate_get_time(&s, "last_action");
	runstate_get(&s, "self_echo", r->self_echo, sizeof r->self_echo);
	r->last_proof = runstate_get_time(&s, "last_proof");
	runstate_get(&s, "last_error", r->last_error, sizeof r->last_error);
	r->last_error_at = runstate_get_time(&s, "last_error_at");
	runstate_get(&s, "hybrid_connection", r->hybrid_connection,
	    sizeof r->hybrid_connection);
	r->pid = (long)runstate_get_ll(&s, "pid", 0);
	return 0;
}

/* -------------------------------------------------- run/delivery.state */

static void
put_channel(struct runstate *s, const char *name,
    const struct send_channel *c)
{
	char key[32];

	snprintf(key, sizeof key, "%s_error", name);
	runstate_put(s, key, "%s", c->error);
	snprintf(key, sizeof key, "%s_error_at", name);
	runstate_put_time(s, key, c->error[0] ? c->at : 0);
	snprintf(key, sizeof key, "%s_failing_since", name);
	runstate_put_time(s, key, c->error[0] ? c->since : 0);
}

static void
get_channel(const struct runstate *s, const char *name,
    struct send_channel *c)
{
	char key[32];

	snprintf(key, sizeof key, "%s_error", name);
	runstate_get(s, key, c->error, sizeof c->error);
	snprintf(key, sizeof key, "%s_error_at", name);
	c->at = runstate_get_time(s, key);
	snprintf(key, sizeof key, "%s_failing_since", name);
	c->since = runstate_get_time(s, key);
}

int
send_state_read(const char *data_dir, struct send_state *st, struct err *e)
{
	struct runstate s;
	int rc;

	memset(st, 0, sizeof *st);
	if ((rc = runstate_read(data_dir, SEND_STATE, &s, e)) != 0)
		return rc;
	st->last_upload = runstate_get_time(&s, "last_upload");
	st->last_event = runstate_get_time(&s, "last_event");
	get_channel(&s, "api", &st->api);
	get_channel(&s, "relay", &st->relay);
	return 0;
}

void
send_state_seen(const struct job_ctx *o, struct send_state *seen)
{
	struct send_channel *ch[JOB_CHANNELS] = { &seen->api, &seen->relay };

	memset(seen, 0, sizeof *seen);
	seen->last_upload = (time_t)(o->reached_ms[JOB_TO_API] / 1000);
	seen->last_event = (time_t)(o->reached_ms[JOB_TO_RELAY] / 1000);
	for (int c = 0; c < JOB_CHANNELS; c++) {
		const struct job_outage *u = &o->outage[c];

		if (u->since_ms == 0)
			continue;
		snprintf(ch[c]->error, sizeof ch[c]->error, "%s",
		    u->last_error);
		ch[c]->since = (time_t)(u->since_ms / 1000);
		ch[c]->at = (time_t)(u->last_ms / 1000);
	}
}

static time_t
later(time_t a, time_t b)
{
	return a > b ? a : b;
}

/* The newer failure of two, failing since the earlier of them when both
 * are; cleared when the channel delivered since (delivered_at). */
static void
merge_channel(struct send_channel *m, const struct send_channel *seen,
    time_t delivered_at)
{
	if (seen->error[0] != '\0' && seen->at >= m->at) {
		time_t since = m->error[0] != '\0' && m->since > 0 &&
		    m->since < seen->since ? m->since : seen->since;

		*m = *seen;
		m->since = since;
	}
	if (m->error[0] != '\0' && delivered_at >= m->at)
		memset(m, 0, sizeof *m);
}

int
send_state_update(const char *data_dir, const struct send_state *seen,
    struct err *e)
{
	char lock[PATH_MAX];
	struct send_state m;
	struct runstate s;
	int fd, rc;

	if (runstate_path(data_dir, SEND_LOCK, lock, sizeof lock, e) == -1)
		return -1;
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) == -1)
		return err_sys(e, "open %s", lock);
	if (flock(fd, LOCK_EX) == -1) {
		close(fd);
		return err_sys(e, "lock %s", lock);
	}
	if ((rc = send_state_read(data_dir, &m, e)) != -1) {
		m.last_upload = later(m.last_upload, seen->last_upload);
		m.last_event = later(m.last_event, seen->last_event);
		merge_channel(&m.api, &seen->api, m.last_upload);
		merge_channel(&m.relay, &seen->relay, m.last_event);
		runstate_init(&s);
		runstate_put_time(&s, "last_upload", m.last_upload);
		runstate_put_time(&s, "last_event", m.last_event);
		put_channel(&s, "api", &m.api);
		put_channel(&s, "relay", &m.relay);
		rc = runstate_write(data_dir, SEND_STATE, &s, e);
	}
	close(fd);	/* the lock goes with it */
	return rc == -1 ? -1 : 0;
}

int
send_channel_refused(const struct send_channel *c)
{
	return strncmp(c->error, "HTTP 401", 8) == 0 ||
	    strncmp(c->error, "HTTP 403", 8) == 0 ||
	    strncmp(c->error, "no token", 8) == 0;
}

/* ------------------------------------------------- the relay spool */

/* The relay spool per kind: lib/cloud jobqueue's scan, the one reader
 * of what waits there. */
static int
relay_kinds(const struct config *c, time_t now, struct cloud_status *st,
    struct err *e)
{
	struct job_queue_kind q[JOB_NKINDS];
	struct err qe = { 0 };

	/* a spool this user may not read: its counts show as unknown */
	if (job_queue_scan(c, q, &qe) == -1) {
		if (qe.code != EACCES) {
			*e = qe;
			return -1;
		}
		memset(q, 0, sizeof q);
	}
	st->oldest = st->oldest_sent = -1;
	st->nkinds = JOB_NKINDS;
	for (int i = 0; i < JOB_NKINDS; i++) {
		struct cloud_kind *k = &st->kinds[i];

		snprintf(k->kind, sizeof k->kind, "%s", job_kind_name(i));
		k->pending = q[i].pending;
		k->failed = q[i].failed;
		k->oldest_seconds = q[i].oldest == 0 ? -1 : now > q[i].oldest ?
		    (long long)(now - q[i].oldest) : 0;
		k->oldest_attempts = q[i].oldest_attempts;
		snprintf(k->oldest_error, sizeof k->oldest_error, "%s",
		    q[i].oldest_error);
		k->configured = job_channel(i) == JOB_TO_API ? st->images_on :
		    st->events_on;
		if (i == JOB_NKINDS - 1)
			k->configured = 0;	/* nothing sends those */
		if (k->oldest_seconds < 0)
			continue;
		if (st->oldest == -1 || k->oldest_seconds >
		    st->kinds[st->oldest].oldest_seconds)
			st->oldest = i;
		if (k->configured && (st->oldest_sent == -1 ||
		    k->oldest_seconds > st->kinds[st->oldest_sent].oldest_seconds))
			st->oldest_sent = i;
	}
	return 0;
}

/* ------------------------------------------------------- the Manage API */

static void
api_probe(struct cloud_status *st)
{
	const char *url = config_env("CLOUD_API_ENDPOINT");
	char *host = NULL, *port = NULL;
	CURLU *u;

	if (url == NULL || (u = curl_url()) == NULL)
		return;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ==
	    CURLUE_OK) {
		st->api.valid = 1;
		snprintf(st->api.host, sizeof st->api.host, "%s", host);
		st->api.port = atoi(port);
		st->api.reachable = probe_tcp(host, port,
		    CLOUD_STATUS_CONNECT_MS) == 0;
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}

int
cloud_status_read(const struct config *c, time_t now, struct cloud_status *st,
    struct err *e)
{
	struct err fe = { 0 };

	memset(st, 0, sizeof *st);
	st->images_on = config_cloud_images();
	st->events_on = config_cloud_events();
	st->actions_on = config_cloud_actions();
	/* a file this user may not read is no finding of the cloud's */
	if (relay_state_read(c->data_dir, &st->relay, &fe) == 0) {
		st->relay_present = 1;
		st->listener_running = runstate_pid_alive(st->relay.pid);
	}
	if (send_state_read(c->data_dir, &st->send, &fe) == 0)
		st->send_present = 1;
	if (st->images_on)
		api_probe(st);
	return relay_kinds(c, now, st, e);
}
