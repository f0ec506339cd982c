/*
 * report: the health report (JSON) made from the gateway's status (see
 * ops/ops.h): production's keys first, then ours.
 */
#include "ops/ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int
oom(struct err *e)
{
	return err_set(e, ENOMEM, "health report: out of memory");
}

/* o[k] = v, taking v's reference; -1 when v is NULL or o refuses it. */
static int
put(json_t *o, const char *k, json_t *v)
{
	if (v == NULL)
		return -1;
	return json_object_set_new(o, k, v);
}

/* A JSON string; bytes that are not valid UTF-8 become '?'. */
static json_t *
jstr(const char *s)
{
	size_t n = strlen(s);
	json_t *j = json_stringn(s, n);
	char *copy;

	if (j != NULL || (copy = malloc(n + 1)) == NULL)
		return j;
	for (size_t i = 0; i < n; i++)
		copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
	j = json_stringn(copy, n);
	free(copy);
	return j;
}

/* A time as ISO 8601 text, "" for none. */
static json_t *
jtime(time_t t)
{
	char text[RUNSTATE_TIME];

	runstate_time_text(t, text);
	return jstr(text);
}

/* A count, null when this user may not read it. */
static json_t *
jcount(long long n)
{
	return n < 0 ? json_null() : json_integer(n);
}

/* ports.NAME and checks.CHECK (production's). */
static int
add_port(json_t *ports, json_t *checks, const char *name, const char *check,
    const struct port_status *p)
{
	json_t *o, *c;

	if (put(ports, name, o = json_pack("{s:i, s:b}", "port", p->port,
	    "answering", p->why == 0)) == -1 ||
	    put(checks, check, c = json_pack("{s:b}", "ok", p->why == 0)) == -1)
		return -1;
	if (p->why == 0)
		return 0;
	return put(o, "error", jstr(strerror(p->why))) == -1 ||
	    put(c, "error", jstr(strerror(p->why))) == -1 ? -1 : 0;
}

static json_t *
job_entry(const struct sv_job *j, int timer)
{
	json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o}", "state",
	    jstr(j->state), "pid", j->pid > 0 ? json_integer(j->pid) :
	    json_null(), "restarts", j->restarts >= 0 ?
	    json_integer(j->restarts) : json_null(), "since", jstr(j->since),
	    "last_exit", jstr(j->last_exit));

	if (o != NULL && timer && (put(o, "schedule", jstr(j->schedule)) ==
	    -1 || put(o, "last_run", jstr(j->last_run)) == -1 ||
	    put(o, "next_run", jstr(j->next_run)) == -1)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int
add_supervisor(json_t *root, json_t *checks, const struct sv_status *sv)
{
	json_t *children = json_object(), *timers = json_object();
	json_t *services = json_object();
	int all = sv->running;

	if (put(root, "gatewayd", json_pack("{s:b, s:o}", "running",
	    sv->running, "pid", sv->running ? json_integer(sv->pid) :
	    json_null())) == -1 || put(root, "children", children) == -1 ||
	    put(root, "timers", timers) == -1 || services == NULL ||
	    put(services, "gatewayd", json_pack("{s:b, s:s}", "ok",
	    sv->running, "state", sv->running ? "running" : "not running")) ==
	    -1) {
		json_decref(services);
		return -1;
	}
	for (int i = 0; i < sv->nchildren; i++) {
		const struct sv_job *j = &sv->children[i];
		int ok = strcmp(j->state, "running") == 0;

		all &= ok;
		if (put(children, j->name, job_entry(j, 0)) == -1 ||
		    put(services, j->name, json_pack("{s:b, s:s}", "ok", ok,
		    "state", j->state)) == -1) {
			json_decref(services);
			return -1;
		}
	}
	for (int i = 0; i < sv->ntimers; i++)
		if (put(timers, sv->timers[i].name, job_entry(&sv->timers[i],
		    1)) == -1) {
			json_decref(services);
			return -1;
		}
	return put(checks, "services", json_pack("{s:b, s:o}", "ok", all,
	    "services", services));
}

static json_t *
disk_entry(const struct disk_status *d)
{
	if (d->error != 0)
		return json_pack("{s:o, s:b, s:o}", "path", jstr(d->path), "ok",
		    0, "error", jstr(strerror(d->error)));
	return json_pack("{s:o, s:I, s:I, s:f, s:b}", "path", jstr(d->path),
	    "free_bytes", (json_int_t)d->free_bytes, "total_bytes",
	    (json_int_t)d->total_bytes, "free_percent", d->free_percent, "ok",
	    !status_disk_low(d));
}

/* checks.disk: beside worklist.db, as production measures it. */
static json_t *
check_disk(const struct disk_status *d)
{
	if (d->error != 0)
		return json_pack("{s:b, s:s}", "ok", 0, "error",
		    strerror(d->error));
	return json_pack("{s:b, s:I, s:f}", "ok", !status_disk_low(d),
	    "free_bytes", (json_int_t)d->free_bytes, "free_percent",
	    (double)(long long)(d->free_percent * 10 + 0.5) / 10);
}

static int
add_spools(json_t *root, const struct ops_status *st)
{
	json_t *spools = json_object(), *kinds = json_object();
	const struct cloud_status *cl = &st->cloud;

	if (put(root, "spools", spools) == -1 || kinds == NULL)
		return -1;
	for (int i = 0; i < 3; i++) {
		const struct spool_census *s = &st->spools[i];

		if (put(spools, status_stages[i], json_pack("{s:o, s:o, s:o}",
		    "new", jcount(s->count[0]), "cur", jcount(s->count[1]),
		    "failed", jcount(s->count[2]))) == -1) {
			json_decref(kinds);
			return -1;
		}
	}
	if (put(json_object_get(spools, "relay"), "kinds", kinds) == -1)
		return -1;
	for (int i = 0; i < cl->nkinds; i++) {
		const struct cloud_kind *k = &cl->kinds[i];
		json_t *o = json_pack("{s:I, s:I, s:o}", "pending",
		    (json_int_t)k->pending, "failed", (json_int_t)k->failed,
		    "oldest_seconds", k->oldest_seconds >= 0 ?
		    json_integer(k->oldest_seconds) : json_null());

		if (put(kinds, k->kind, o) == -1)
			return -1;
		if (k->oldest_seconds >= 0 && (put(o, "oldest_attempts",
		    json_integer(k->oldest_attempts)) == -1 ||
		    put(o, "oldest_error", jstr(k->oldest_error)) == -1))
			return -1;
	}
	return 0;
}

static int
add_archive(json_t *root, const struct ops_status *st)
{
	const struct archive_status *a = &st->archive;

	return put(root, "failed_jobs", json_integer(st->failed_jobs)) == -1 ||
	    put(root, "quarantine", jcount(a->quarantined)) == -1 ||
	    put(root, "incoming", json_pack("{s:o, s:I}", "files",
	    jcount(a->incoming), "stale", (json_int_t)a->incoming_stale)) ==
	    -1 || put(root, "disk", disk_entry(&a->store_disk)) == -1 ||
	    (a->data_disk_apart && put(root, "data_disk",
	    disk_entry(&a->data_disk)) == -1) ||
	    put(root, "storage", json_pack("{s:b, s:I, s:o}", "accepting",
	    !a->floor_now.below, "floor_bytes", (json_int_t)a->min_free,
	    "refusing_since", a->floor.present && a->floor.refusing ?
	    jtime(a->floor.since) : json_null())) == -1 ? -1 : 0;
}

static json_t *
relay_entry(const struct cloud_status *cl)
{
	const struct relay_state *r = &cl->relay;
	char pid[32] = "";

	if (!cl->relay_present)
		return json_pack("{s:s}", "connection", cl->actions_on ?
		    "not running" : "not configured");
	if (r->pid > 0)
		snprintf(pid, sizeof pid, "%ld", r->pid);
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
	    "s:o, s:o, s:o, s:b}",
	    "connection", jstr(r->connection), "since", jtime(r->since),
	    "started", jtime(r->started), "credential", jstr(r->credential),
	    "token_expires", jtime(r->token_expires), "last_pong",
	    jtime(r->last_pong), "last_action", jtime(r->last_action),
	    "self_echo", jstr(r->self_echo), "last_proof", jtime(r->last_proof),
	    "last_error", jstr(r->last_error), "last_error_at",
	    jtime(r->last_error_at), "hybrid_connection",
	    jstr(r->hybrid_connection), "pid", jstr(pid), "listener_running",
	    cl->listener_running);
}

static json_t *
uploads_entry(const struct ops_status *st)
{
	const struct upload_state_count *n = &st->archive.uploads;
	json_t *oldest = json_null();
	time_t t;

	if (!st->archive.uploads_known)
		return json_null();
	if (runstate_time_parse(n->oldest_unmatched, &t) == 0 &&
	    n->oldest_unmatched[0] != '\0')
		oldest = json_integer(st->now > t ? (json_int_t)(st->now - t) :
		    0);
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:I, s:I, s:o}", "total", (json_int_t)n->total,
	    "complete", (json_int_t)n->complete, "pending",
	    (json_int_t)n->pending, "uploading", (json_int_t)n->uploading,
	    "waiting", (json_int_t)n->waiting, "unmatched",
	    (json_int_t)n->unmatched, "unmatched_studies",
	    (json_int_t)n->unmatched_studies, "held", (json_int_t)n->held,
	    "failed", (json_int_t)n->failed, "released",
	    (json_int_t)n->released, "refused", (json_int_t)n->refused,
	    "refused_studies", (json_int_t)n->refused_studies, "local",
	    (json_int_t)n->local, "events_held", (json_int_t)n->events_held,
	    "oldest_unmatched_seconds", oldest);
}

static json_t *
oldest_entry(const struct cloud_status *cl)
{
	const struct cloud_kind *k;

	if (cl->oldest < 0)
		return json_null();
	k = &cl->kinds[cl->oldest];
	return json_pack("{s:s, s:I, s:i, s:o}", "kind", k->kind,
	    "age_seconds", (json_int_t)k->oldest_seconds, "attempts",
	    k->oldest_attempts, "error", jstr(k->oldest_error));
}

static int
add_cloud(json_t *root, const struct ops_status *st)
{
	const struct cloud_status *cl = &st->cloud;
	char last_upload[RUNSTATE_TIME];
	const char *error;
	time_t at;
	json_t *api = json_null();

	if (cl->images_on && cl->api.valid)
		api = json_pack("{s:o, s:i, s:b}", "host", jstr(cl->api.host),
		    "port", cl->api.port, "reachable", cl->api.reachable);
	else if (cl->images_on)
		api = json_pack("{s:n, s:n, s:b, s:s}", "host", "port",
		    "reachable", 0, "error", "CLOUD_API_ENDPOINT is not a URL");
	status_cloud_error(st, &error, &at);
	status_last_upload(st, last_upload);
	return put(root, "relay", relay_entry(cl)) == -1 ||
	    put(root, "cloud", json_pack("{s:{s:b, s:b, s:b}, s:o, s:o, s:o, "
	    "s:o, s:o, s:o, s:o, s:o}",
	    "configured", "images", cl->images_on, "events", cl->events_on,
	    "actions", cl->actions_on, "api", api,
	    "last_upload", jstr(last_upload),
	    "last_event", jtime(cl->send.last_event),
	    "last_error", jstr(error), "last_error_at", jtime(at),
	    "oldest_job", oldest_entry(cl), "uploads", uploads_entry(st),
	    "mpps_events_held", st->mpps_known ? json_integer(st->mpps_held) :
	    json_null())) == -1 ? -1 : 0;
}

static int
add_qr(json_t *root, const struct ops_status *st)
{
	const struct qr_status *q = &st->qr;

	return put(root, "qr", json_pack("{s:b, s:s, s:i, s:b, s:i, s:i, "
	    "s:o}", "running", q->running, "aet", q->aet, "port", q->port,
	    "answering", q->running && st->qr_port.why == 0, "associations",
	    q->associations, "moves_in_progress", q->moves,
	    "pending_commitments", q->pending_commitments >= 0 ?
	    json_integer(q->pending_commitments) : json_null()));
}

static json_t *
listener_uptime(const struct ops_status *st)
{
	const struct cloud_status *cl = &st->cloud;

	if (!cl->relay_present || !cl->listener_running ||
	    cl->relay.started == 0)
		return json_null();
	return json_integer(st->now > cl->relay.started ?
	    (json_int_t)(st->now - cl->relay.started) : 0);
}

static int
build(json_t *root, const struct ops_status *st)
{
	json_t *checks = json_object(), *problems = json_array(), *ports;

	if (put(root, "healthy", json_boolean(st->nproblems == 0)) == -1 ||
	    put(root, "version", json_string(GW_VERSION)) == -1 ||
	    put(root, "listener_uptime_seconds", st->data_dir_missing ?
	    json_null() : listener_uptime(st)) == -1 ||
	    put(root, "checks", checks) == -1 ||
	    put(root, "problems", problems) == -1)
		return -1;
	for (int i = 0; i < st->nproblems; i++)
		if (json_array_append_new(problems,
		    jstr(st->problems[i].text)) == -1)
			return -1;
	if (st->data_dir_missing)
		return 0;
	if (put(root, "ports", ports = json_object()) == -1 ||
	    add_port(ports, checks, "pacs", "pacs_port", &st->pacs) == -1 ||
	    add_port(ports, checks, "worklist", "mwl_port",
	    &st->worklist) == -1 ||
	    put(checks, "disk", check_disk(&st->worklist_disk)) == -1 ||
	    add_supervisor(root, checks, &st->sv) == -1)
		return -1;
	return add_spools(root, st) == -1 || add_archive(root, st) == -1 ||
	    add_cloud(root, st) == -1 || add_qr(root, st) == -1 ? -1 : 0;
}

int
report_json(const struct ops_status *st, json_t **out, struct err *e)
{
	json_t *root = json_object();

	*out = NULL;
	if (root == NULL || build(root, st) == -1) {
		json_decref(root);
		return oom(e);
	}
	*out = root;
	return 0;
}

int
health_report(const struct config *c, json_t **out, struct err *e)
{
	struct ops_status *st = malloc(sizeof *st);
	int rc;

	*out = NULL;
	if (st == NULL)
		return oom(e);
	rc = ops_status_read(c, st, e) == -1 ? -1 : report_json(st, out, e);
	free(st);
	return rc;
}
