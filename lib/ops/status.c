/*
 * status: the gateway's status gathered from each owner and judged (see
 * ops/ops.h): the one place the problems' rules are written.
 */
#include "ops/ops.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "worklist/worklist.h"

const char *const status_stages[3] = { "index", "thumb", "relay" };

/* The thresholds (settings, gateway.env(5)). */
struct rules {
	long pending_warn, pending_crit;
	long loop_count, loop_seconds;
};

static int
read_rules(struct rules *r, struct err *e)
{
	return config_long("STATUS_PENDING_WARN_SECONDS", &r->pending_warn,
	    e) == -1 || config_long("STATUS_PENDING_CRIT_SECONDS",
	    &r->pending_crit, e) == -1 ||
	    config_long("STATUS_RESTART_LOOP_COUNT", &r->loop_count, e) == -1 ||
	    config_long("STATUS_RESTART_LOOP_SECONDS", &r->loop_seconds,
	    e) == -1 ? -1 : 0;
}

static void
problem(struct ops_status *st, enum status_severity sev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
problem(struct ops_status *st, enum status_severity sev, const char *fmt, ...)
{
	struct status_problem *p;
	va_list ap;

	if (st->nproblems == STATUS_PROBLEMS_MAX)
		return;
	p = &st->problems[st->nproblems++];
	p->severity = sev;
	va_start(ap, fmt);
	vsnprintf(p->text, sizeof p->text, fmt, ap);
	va_end(ap);
	if (sev > st->severity)
		st->severity = sev;
}

int
status_disk_low(const struct disk_status *d)
{
	return d->error == 0 && (d->free_bytes < STATUS_DISK_MIN_BYTES ||
	    d->free_percent < STATUS_DISK_MIN_PERCENT);
}

/* ------------------------------------------------------------ gather */

static void
port_probe(struct port_status *p, const char *host, int port)
{
	char text[16];

	p->port = port;
	snprintf(text, sizeof text, "%d", port);
	if (host == NULL || *host == '\0' || strcmp(host, "0.0.0.0") == 0)
		host = "127.0.0.1";
	else {
		struct in_addr a;

		if (inet_pton(AF_INET, host, &a) != 1)
			host = "127.0.0.1";	/* a name: as production */
	}
	p->why = probe_tcp(host, text, STATUS_PORT_MS);
}

static void
disk_beside(const char *file, struct disk_status *d)
{
	char dir[PATH_MAX], *slash;
	struct statvfs v;

	memset(d, 0, sizeof *d);
	snprintf(dir, sizeof dir, "%s", file);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof dir, ".");
	else
		slash[slash == dir] = '\0';
	snprintf(d->path, sizeof d->path, "%s", dir);
	if (statvfs(dir, &v) == -1) {
		d->error = errno;
		return;
	}
	d->free_bytes = (long long)v.f_bavail * (long long)v.f_frsize;
	d->total_bytes = (long long)v.f_blocks * (long long)v.f_frsize;
	d->free_percent = d->total_bytes > 0 ? 100.0 *
	    (double)d->free_bytes / (double)d->total_bytes : 0;
}

static int
gather(const struct config *c, struct ops_status *st, struct err *e)
{
	struct err fe = { 0 };
	time_t oldest;

	if (sv_status_read(c->data_dir, &st->sv, e) == -1)
		return -1;
	port_probe(&st->pacs, NULL, c->pacs_port);
	port_probe(&st->worklist, config_env("WORKLIST_BIND"),
	    c->worklist_port);
	for (int i = 0; i < 3; i++) {
		char dir[PATH_MAX];

		if (config_spool_path(c, status_stages[i], dir, sizeof dir,
		    e) == -1)
			return -1;
		spool_census(dir, &st->spools[i]);
		if (st->spools[i].count[2] > 0)
			st->failed_jobs += st->spools[i].count[2];
	}
	archive_status_read(c, st->sv.uid, st->now, &st->archive);
	if (qr_status_read(c, &st->qr, e) == -1)
		return -1;
	if (st->qr.running)
		port_probe(&st->qr_port, config_env("QR_BIND"), st->qr.port);
	if (cloud_status_read(c, st->now, &st->cloud, e) == -1)
		return -1;
	st->mpps_known = worklist_outbox_held(c->worklist_db_path,
	    &st->mpps_held, &oldest, &fe) == 0;
	disk_beside(c->worklist_db_path, &st->worklist_disk);
	return 0;
}

/* ------------------------------------------------------------- judge */

static void
judge_supervisor(struct ops_status *st, const struct rules *r)
{
	const struct sv_status *sv = &st->sv;

	if (!sv->running) {
		problem(st, STATUS_CRITICAL, "gatewayd not running");
		return;
	}
	for (int i = 0; i < sv->nchildren; i++) {
		const struct sv_job *j = &sv->children[i];
		int n = sv_recent_exits(j, st->now, r->loop_seconds);

		if (strcmp(j->state, "running") != 0)
			problem(st, STATUS_CRITICAL, "%s not running (%s)",
			    j->name, j->state[0] ? j->state : "no state");
		else if (n >= r->loop_count)
			problem(st, STATUS_CRITICAL, "%s restarting in a loop "
			    "(%d exits in %lds, last %s)", j->name, n,
			    r->loop_seconds, j->last_exit[0] ? j->last_exit :
			    "?");
	}
	for (int i = 0; i < sv->ntimers; i++) {
		const struct sv_job *j = &sv->timers[i];

		if (sv_recent_exits(j, st->now, r->loop_seconds) >=
		    r->loop_count)
			problem(st, STATUS_WARNING, "%s failing (last %s)",
			    j->name, j->last_exit);
	}
}

static void
judge_port(struct ops_status *st, const char *name,
    const struct port_status *p)
{
	if (p->why != 0)
		problem(st, STATUS_CRITICAL, "%s port %d not answering",
		    name, p->port);
}

static void
judge_spools(struct ops_status *st)
{
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 3; k++)
			if (st->spools[i].count[k] == -1 &&
			    st->spools[i].error[k] != ENOENT) {
				problem(st, STATUS_WARNING, "spool %s: %s",
				    status_stages[i],
				    strerror(st->spools[i].error[k]));
				break;
			}
	if (st->failed_jobs > 0)
		problem(st, STATUS_WARNING, "%ld failed job%s", st->failed_jobs,
		    st->failed_jobs == 1 ? "" : "s");
}

static void
judge_disk(struct ops_status *st, const struct disk_status *d)
{
	const double gib = 1024.0 * 1024 * 1024;

	if (d->error != 0) {
		problem(st, STATUS_CRITICAL, "disk: cannot check %s: %s",
		    d->path, strerror(d->error));
		return;
	}
	if (d->free_bytes < STATUS_DISK_MIN_BYTES)
		problem(st, STATUS_CRITICAL, "disk: %.1f GiB free < %.0f GiB "
		    "(%s)", d->free_bytes / gib, STATUS_DISK_MIN_BYTES / gib,
		    d->path);
	if (d->free_percent < STATUS_DISK_MIN_PERCENT)
		problem(st, STATUS_CRITICAL, "disk: %.1f %% free < %.0f %% "
		    "(%s)", d->free_percent, STATUS_DISK_MIN_PERCENT, d->path);
}

static void
judge_archive(struct ops_status *st)
{
	const struct archive_status *a = &st->archive;
	char age[32];

	for (int i = 0; i < ARCHIVE_PLACES; i++)
		if (a->places[i].writable == 0)
			problem(st, STATUS_CRITICAL, "%s not writable by the "
			    "gateway's user: %s", a->places[i].setting,
			    a->places[i].why);
	if (a->floor_now.below)	/* the rule each association meets, now */
		problem(st, STATUS_CRITICAL, "storage refusing new "
		    "associations: free space below PACS_DISK_MIN_FREE on %s",
		    a->floor_now.path);
	judge_disk(st, &a->store_disk);
	if (a->data_disk_apart)
		judge_disk(st, &a->data_disk);
	if (a->quarantined > 0)
		problem(st, STATUS_WARNING, "%ld file%s in quarantine "
		    "(gatewayctl quarantine)", a->quarantined,
		    a->quarantined == 1 ? "" : "s");
	if (a->incoming_stale > 0) {
		screen_age((long long)(st->now - a->incoming_oldest), age,
		    sizeof age);
		problem(st, STATUS_WARNING, "%ld file%s left in incoming/, "
		    "the oldest %s (storescp-hook --sweep)", a->incoming_stale,
		    a->incoming_stale == 1 ? "" : "s", age);
	}
	if (!status_disk_low(&a->store_disk) && status_disk_low(
	    &st->worklist_disk))
		problem(st, STATUS_WARNING, "disk beside worklist.db: %.1f %% "
		    "free, %lld bytes", st->worklist_disk.free_percent,
		    st->worklist_disk.free_bytes);
}

static void
judge_uploads(struct ops_status *st)
{
	const struct upload_state_count *n = &st->archive.uploads;
	time_t t;
	char age[32];

	if (!st->archive.uploads_known)
		return;
	if (n->unmatched > 0 && runstate_time_parse(n->oldest_unmatched,
	    &t) == 0 && st->now - t >= STATUS_UNMATCHED_SECONDS) {
		screen_age((long long)(st->now - t), age, sizeof age);
		problem(st, STATUS_WARNING, "uploads: %lld image%s of %lld "
		    "stud%s wait for a worklist item, the oldest for %s "
		    "(gatewayctl waiting)", n->unmatched, n->unmatched == 1 ?
		    "" : "s", n->unmatched_studies, n->unmatched_studies == 1 ?
		    "y" : "ies", age);
	}
	if (n->held > 0 && st->cloud.images_on)
		problem(st, STATUS_WARNING, "uploads: %lld image%s held, not "
		    "queued for the cloud (gatewayctl resend --held)", n->held,
		    n->held == 1 ? "" : "s");
	if (n->events_held > 0 && st->cloud.events_on)
		problem(st, STATUS_WARNING, "events: %lld image event%s held "
		    "back, not queued for the relay (gatewayctl resend "
		    "--held)", n->events_held, n->events_held == 1 ? "" : "s");
	if (n->refused > 0)
		problem(st, STATUS_WARNING, "uploads: %lld image%s of %lld "
		    "stud%s refused by the Manage API (403; gatewayctl "
		    "waiting)", n->refused, n->refused == 1 ? "" : "s",
		    n->refused_studies, n->refused_studies == 1 ? "y" : "ies");
}

static void
judge_channel(struct ops_status *st, const char *what,
    const struct send_channel *ch)
{
	char since[RUNSTATE_TIME];

	if (ch->error[0] == '\0')
		return;
	runstate_time_text(ch->since ? ch->since : ch->at, since);
	if (send_channel_refused(ch))
		problem(st, STATUS_CRITICAL, "%s refuses the gateway since %s: "
		    "%s", what, since, ch->error);
	else
		problem(st, STATUS_WARNING, "deliveries to %s failing since "
		    "%s: %s", what, since, ch->error);
}

static void
judge_cloud(struct ops_status *st, const struct rules *r)
{
	const struct cloud_status *cl = &st->cloud;
	const struct relay_state *rs = &cl->relay;

	if (cl->relay_present) {
		if (!cl->listener_running)
			problem(st, STATUS_CRITICAL, "relay: relaylisten "
			    "(pid %ld) not running", rs->pid);
		else if (strcmp(rs->connection, "connected") != 0)
			problem(st, STATUS_WARNING, "relay not connected (%s)",
			    rs->connection[0] ? rs->connection : "?");
	}
	if (cl->send_present) {
		judge_channel(st, "the Manage API", &cl->send.api);
		judge_channel(st, "the relay", &cl->send.relay);
	}
	if (cl->images_on && cl->api.valid && !cl->api.reachable)
		problem(st, STATUS_WARNING, "the Manage API %s:%d not "
		    "reachable", cl->api.host, cl->api.port);
	if (cl->oldest_sent >= 0) {
		const struct cloud_kind *k = &cl->kinds[cl->oldest_sent];
		char age[32];

		screen_age(k->oldest_seconds, age, sizeof age);
		if (k->oldest_seconds >= r->pending_crit)
			problem(st, STATUS_CRITICAL, "%s job waiting for the "
			    "cloud for %s (%d attempts%s%s)", k->kind, age,
			    k->oldest_attempts, k->oldest_error[0] ?
			    ", last error: " : "", k->oldest_error);
		else if (k->oldest_seconds >= r->pending_warn)
			problem(st, STATUS_WARNING, "%s job waiting for the "
			    "cloud for %s (%d attempts%s%s)", k->kind, age,
			    k->oldest_attempts, k->oldest_error[0] ?
			    ", last error: " : "", k->oldest_error);
	}
}

static void
judge_qr(struct ops_status *st)
{
	if (st->qr.present && !st->qr.running)
		problem(st, STATUS_CRITICAL, "qrscp (pid %ld) not running",
		    st->qr.pid);
	else if (st->qr.running && st->qr_port.why != 0)
		problem(st, STATUS_CRITICAL, "qr port %d not answering",
		    st->qr.port);
}

/* The last error of the cloud's deliveries and when, "" when they
 * succeed: relaysend's own (run/delivery.state), else pacs.db's. */
void
status_cloud_error(const struct ops_status *st, const char **error,
    time_t *at)
{
	const struct send_state *s = &st->cloud.send;

	*at = 0;
	*error = "";
	if (s->api.error[0] != '\0') {
		*error = s->api.error;
		*at = s->api.at;
	}
	if (s->relay.error[0] != '\0' && s->relay.at >= *at) {
		*error = s->relay.error;
		*at = s->relay.at;
	}
	if (!st->cloud.send_present && st->archive.uploads_known)
		*error = st->archive.uploads.last_error;
}

/* The last upload: relaysend's, else pacs.db's newest uploaded_at. */
void
status_last_upload(const struct ops_status *st, char out[RUNSTATE_TIME])
{
	if (st->cloud.send.last_upload != 0 || !st->archive.uploads_known)
		runstate_time_text(st->cloud.send.last_upload, out);
	else
		snprintf(out, RUNSTATE_TIME, "%.*s", RUNSTATE_TIME - 1,
		    st->archive.uploads.last_upload);
}

int
ops_status_read(const struct config *c, struct ops_status *st,
    struct err *e)
{
	struct rules r;
	struct stat sb;

	memset(st, 0, sizeof *st);
	st->c = c;
	st->now = time(NULL);
	if (read_rules(&r, e) == -1)
		return -1;
	if (stat(c->data_dir, &sb) == -1 && (errno == ENOENT ||
	    errno == ENOTDIR)) {
		st->data_dir_missing = 1;
		problem(st, STATUS_CRITICAL, "the data directory %s does not "
		    "exist (GATEWAY_DATA_DIR)", c->data_dir);
		return 0;
	}
	if (gather(c, st, e) == -1)
		return -1;
	judge_supervisor(st, &r);
	judge_port(st, "pacs", &st->pacs);
	judge_port(st, "worklist", &st->worklist);
	judge_spools(st);
	judge_archive(st);
	judge_cloud(st, &r);
	judge_uploads(st);
	judge_qr(st);
	return 0;
}
