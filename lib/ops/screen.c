/*
 * screen: the gateway's status as text: the status screen, the cloud's
 * part of it, and the monitoring line (see ops/ops.h).
 */
#include "ops/ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void
screen_age(long long s, char *out, size_t outsz)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(out, outsz, "%llds", s);
	else if (s < 3600)
		snprintf(out, outsz, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, outsz, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(out, outsz, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

void
screen_size(long long bytes, char *out, size_t outsz)
{
	static const char units[] = "KMGT";
	double k = (double)(bytes < 0 ? 0 : bytes) / 1024;
	int i = 0;

	while (k >= 1024 && i < 3) {
		k /= 1024;
		i++;
	}
	snprintf(out, outsz, k < 10 ? "%.1f%c" : "%.0f%c", k, units[i]);
}

/* "what: 2026-…Z (3m12s ago)", or "what: none". */
static void
print_when(FILE *f, const char *what, time_t t, time_t now)
{
	char text[RUNSTATE_TIME], age[32];

	if (t == 0) {
		fprintf(f, "%s: none", what);
		return;
	}
	runstate_time_text(t, text);
	screen_age((long long)(now - t), age, sizeof age);
	fprintf(f, "%s: %s (%s ago)", what, text, age);
}

static int
flushed(FILE *f, struct err *e)
{
	return fflush(f) == EOF || ferror(f) ? err_sys(e, "writing the status")
	    : 0;
}

/* ------------------------------------------------------------- cloud */

static void
print_relay(FILE *f, const struct cloud_status *cl, int installed,
    time_t now)
{
	const struct relay_state *r = &cl->relay;
	char text[RUNSTATE_TIME];

	if (!installed) {
		fprintf(f, "relay: relaylisten not installed\n");
		return;
	}
	if (!cl->relay_present) {
		fprintf(f, "relay: %s\n", cl->actions_on ? "not running" :
		    "not configured");
		return;
	}
	fprintf(f, "relay: %s", r->connection);
	if (r->since != 0) {
		runstate_time_text(r->since, text);
		fprintf(f, " since %s", text);
	}
	if (r->pid > 0 || r->hybrid_connection[0] != '\0') {
		fprintf(f, " (pid ");
		if (r->pid > 0)
			fprintf(f, "%ld", r->pid);
		else
			fprintf(f, "-");
		fprintf(f, ", hybrid connection %s%s%s)",
		    r->hybrid_connection[0] ? r->hybrid_connection : "-",
		    r->credential[0] ? ", credential " : "", r->credential);
	}
	if (r->pid > 0 && !cl->listener_running)
		fprintf(f, "; relaylisten pid %ld is not running", r->pid);
	fprintf(f, "\n");
	print_when(f, "last PONG", r->last_pong, now);
	print_when(f, "; last action", r->last_action, now);
	fprintf(f, "\n");
	if (strcmp(r->self_echo, "off") == 0)
		fprintf(f, "traffic proof: off (the credential cannot send to "
		    "itself; PONGs and actions are the proof)\n");
	else {
		print_when(f, "last traffic proof", r->last_proof, now);
		fprintf(f, "\n");
	}
	if (r->token_expires != 0) {
		runstate_time_text(r->token_expires, text);
		fprintf(f, "token expires: %s\n", text);
	}
	fprintf(f, "last error: %s", r->last_error[0] ? r->last_error : "-");
	if (r->last_error[0] && r->last_error_at != 0) {
		runstate_time_text(r->last_error_at, text);
		fprintf(f, " (at %s)", text);
	}
	fprintf(f, "\n");
}

static void
print_kinds(FILE *f, const struct cloud_status *cl)
{
	char age[32];

	fprintf(f, "\n%-22s %7s %6s %s\n", "KIND", "PENDING", "FAILED",
	    "OLDEST");
	for (int i = 0; i < cl->nkinds; i++) {
		const struct cloud_kind *k = &cl->kinds[i];

		snprintf(age, sizeof age, "-");
		if (k->oldest_seconds >= 0)
			screen_age(k->oldest_seconds, age, sizeof age);
		fprintf(f, "%-22s %7ld %6ld %s\n", k->kind, k->pending,
		    k->failed, age);
	}
}

/* "uploads: 40 sent, 3 waiting for a worklist item (1 study, oldest
 * 2h05m: gatewayctl waiting), 12 held", the states with none left out. */
static void
print_uploads(FILE *f, const struct ops_status *st)
{
	const struct upload_state_count *n = &st->archive.uploads;
	const struct { long long v; const char *what; } parts[] = {
		{ n->pending, "queued" }, { n->uploading, "uploading" },
		{ n->waiting, "retrying" },
		{ n->unmatched, "waiting for a worklist item" },
		{ n->held, "held" }, { n->failed, "failed" },
		{ n->released, "released" },
		{ n->refused, "refused by the Manage API" },
		{ n->local, "kept local (not for the cloud)" },
	};
	char age[32];
	time_t t;

	if (!st->archive.uploads_known) {
		fprintf(f, "uploads: pacs.db not readable\n");
		return;
	}
	fprintf(f, "uploads: %lld sent", n->complete);
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		if (parts[i].v == 0)
			continue;
		fprintf(f, ", %lld %s", parts[i].v, parts[i].what);
		if (&parts[i].v != &parts[3].v || n->oldest_unmatched[0] ==
		    '\0' || runstate_time_parse(n->oldest_unmatched, &t) == -1)
			continue;
		screen_age((long long)(st->now - t), age, sizeof age);
		fprintf(f, " (%lld stud%s, oldest %s: gatewayctl waiting)",
		    n->unmatched_studies, n->unmatched_studies == 1 ? "y" :
		    "ies", age);
	}
	fprintf(f, "\n");
	if (n->events_held > 0)
		fprintf(f, "image events held: %lld (in pacs.db, %s)\n",
		    n->events_held, st->cloud.events_on ? "gatewayctl resend "
		    "--held queues them" : "sent once the relay's events are "
		    "configured");
}

static void
print_cloud(FILE *f, const struct ops_status *st)
{
	const struct cloud_status *cl = &st->cloud;
	char last_upload[RUNSTATE_TIME], at[RUNSTATE_TIME], age[32];
	const char *error;
	time_t t;

	if (cl->images_on && cl->api.valid)
		fprintf(f, "\ncloud: Manage API %s:%d %s\n", cl->api.host,
		    cl->api.port, cl->api.reachable ? "reachable" :
		    "NOT reachable");
	else if (cl->images_on)
		fprintf(f, "\ncloud: CLOUD_API_ENDPOINT is not a URL\n");
	else if (cl->events_on)
		fprintf(f, "\ncloud: no Manage API configured "
		    "(CLOUD_API_ENDPOINT): images are kept, HELD, not sent\n");
	else
		fprintf(f, "\ncloud: not configured (CLOUD_API_ENDPOINT, "
		    "AZURE_RELAY_*): nothing is queued for it; images are kept, "
		    "HELD\n");
	print_uploads(f, st);
	if (st->mpps_held > 0)
		fprintf(f, "mpps events held: %ld (in worklist.db, sent once "
		    "the relay's events are configured)\n", st->mpps_held);
	status_last_upload(st, last_upload);
	if (last_upload[0] != '\0' && runstate_time_parse(last_upload, &t) ==
	    -1)
		fprintf(f, "last upload: %s", last_upload);	/* as recorded */
	else
		print_when(f, "last upload", last_upload[0] ? t : 0, st->now);
	fprintf(f, "; ");
	print_when(f, "last event", cl->send.last_event, st->now);
	status_cloud_error(st, &error, &t);
	fprintf(f, "\ncloud last error: %s", *error ? error : "-");
	if (*error && t != 0) {
		runstate_time_text(t, at);
		fprintf(f, " (at %s)", at);
	}
	fprintf(f, "\n");
	if (cl->oldest < 0) {
		fprintf(f, "oldest job: none waiting\n");
		return;
	}
	screen_age(cl->kinds[cl->oldest].oldest_seconds, age, sizeof age);
	fprintf(f, "oldest job: %s, queued %s ago, %d attempt%s%s%s\n",
	    cl->kinds[cl->oldest].kind, age,
	    cl->kinds[cl->oldest].oldest_attempts,
	    cl->kinds[cl->oldest].oldest_attempts == 1 ? "" : "s",
	    cl->kinds[cl->oldest].oldest_error[0] ? ", last error: " : "",
	    cl->kinds[cl->oldest].oldest_error);
}

int
screen_print_cloud(const struct ops_status *st, int relaylisten_installed,
    FILE *f, struct err *e)
{
	print_relay(f, &st->cloud, relaylisten_installed, st->now);
	print_kinds(f, &st->cloud);
	print_cloud(f, st);
	return flushed(f, e);
}

/* ------------------------------------------------------------ screen */

static const char *
dash(const char *s)
{
	return s[0] ? s : "-";
}

static void
print_jobs(FILE *f, const struct sv_status *sv)
{
	char pid[24], restarts[24];

	fprintf(f, "%-12s %-9s %-8s %-9s %-21s %s\n", "CHILD", "STATE", "PID",
	    "RESTARTS", "SINCE", "LAST_EXIT");
	for (int i = 0; i < sv->nchildren; i++) {
		const struct sv_job *j = &sv->children[i];

		snprintf(pid, sizeof pid, "%ld", j->pid);
		snprintf(restarts, sizeof restarts, "%ld", j->restarts);
		fprintf(f, "%-12s %-9s %-8s %-9s %-21s %s\n", j->name,
		    j->state, j->pid > 0 ? pid : "-", j->restarts >= 0 ?
		    restarts : "-", dash(j->since), dash(j->last_exit));
	}
	if (sv->ntimers == 0)
		return;
	fprintf(f, "\n%-12s %-17s %-9s %-21s %-12s %s\n", "TIMER", "SCHEDULE",
	    "STATE", "LAST_RUN", "LAST_EXIT", "NEXT_RUN");
	for (int i = 0; i < sv->ntimers; i++) {
		const struct sv_job *j = &sv->timers[i];

		fprintf(f, "%-12s %-17s %-9s %-21s %-12s %s\n", j->name,
		    dash(j->schedule), j->state, dash(j->last_run),
		    dash(j->last_exit), dash(j->next_run));
	}
}

static void
count_text(long n, char *out, size_t outsz)
{
	if (n < 0)
		snprintf(out, outsz, "?");
	else
		snprintf(out, outsz, "%ld", n);
}

static void
print_disk(FILE *f, const struct disk_status *d)
{
	char label[PATH_MAX + 16], avail[16], total[16];

	snprintf(label, sizeof label, "disk (%s):", d->path);
	if (d->error != 0) {
		fprintf(f, "%-22s cannot be measured: %s\n", label,
		    strerror(d->error));
		return;
	}
	screen_size(d->free_bytes, avail, sizeof avail);
	screen_size(d->total_bytes, total, sizeof total);
	fprintf(f, "%-22s %s free of %s (%.0f%% used)\n", label, avail, total,
	    ceil(100.0 - d->free_percent));
}

static void
print_storage(FILE *f, const struct ops_status *st)
{
	const struct archive_status *a = &st->archive;
	char avail[16], floor[16], since[RUNSTATE_TIME] = "";

	if (!st->sv.running) {
		fprintf(f, "%-22s %s\n", "storage:", "not running (gatewayd "
		    "is not)");
		return;
	}
	/* the rule storescp-front applies to each association, now; its
	 * run/storage.state (with a margin, for the alert) says since when */
	if (!a->floor_now.below) {
		fprintf(f, "%-22s %s\n", "storage:", "accepting images");
		return;
	}
	screen_size(a->floor_now.free_bytes, avail, sizeof avail);
	screen_size(a->min_free, floor, sizeof floor);
	if (a->floor.present && a->floor.refusing)
		runstate_time_text(a->floor.since, since);
	fprintf(f, "%-22s refusing new associations: free space below "
	    "PACS_DISK_MIN_FREE (%s free, floor %s)%s%s\n", "storage:", avail,
	    floor, since[0] ? " since " : "", since);
}

int
screen_print(const struct ops_status *st, int relaylisten_installed,
    FILE *f, struct err *e)
{
	const struct archive_status *a = &st->archive;
	char n[3][24], qr[256];

	if (st->data_dir_missing) {
		fprintf(f, "gatewayd: %s\n", st->problems[0].text);
		return flushed(f, e);
	}
	if (st->sv.running)
		fprintf(f, "gatewayd: running (pid %ld) data=%s\n\n", st->sv.pid,
		    st->c->data_dir);
	else
		fprintf(f, "gatewayd: not running data=%s\n\n", st->c->data_dir);
	print_jobs(f, &st->sv);
	fprintf(f, "\n%-10s %6s %6s %7s\n", "SPOOL", "NEW", "CUR", "FAILED");
	for (int i = 0; i < 3; i++) {
		for (int k = 0; k < 3; k++)
			count_text(st->spools[i].count[k], n[k], sizeof n[k]);
		fprintf(f, "%-10s %6s %6s %7s\n", status_stages[i], n[0], n[1],
		    n[2]);
	}
	count_text(a->quarantined, n[0], sizeof n[0]);
	count_text(a->incoming, n[1], sizeof n[1]);
	fprintf(f, "\n%-22s %s\n%-22s %s\n", "quarantined files:", n[0],
	    "incoming (unhooked):", n[1]);
	print_disk(f, &a->store_disk);
	if (a->data_disk_apart)
		print_disk(f, &a->data_disk);
	print_storage(f, st);
	qr_status_line(&st->qr, qr, sizeof qr);
	fprintf(f, "\nqrscp: %s\n", qr);
	if (st->nproblems > 0) {
		fprintf(f, "\nproblems:\n");
		for (int i = 0; i < st->nproblems; i++)
			fprintf(f, "  %s: %s\n", st->problems[i].severity ==
			    STATUS_CRITICAL ? "CRITICAL" : "WARNING",
			    st->problems[i].text);
	}
	fprintf(f, "\n");
	return screen_print_cloud(st, relaylisten_installed, f, e);
}

int
screen_check(const struct ops_status *st, FILE *f)
{
	static const char *const names[] = { "OK", "WARNING", "CRITICAL" };

	fprintf(f, "GATEWAY %s - ", names[st->severity]);
	if (st->nproblems == 0)
		fprintf(f, "running");
	/* the worst first, each in the order found */
	for (int sev = STATUS_CRITICAL, first = 1; sev > STATUS_OK; sev--)
		for (int i = 0; i < st->nproblems; i++)
			if ((int)st->problems[i].severity == sev) {
				fprintf(f, "%s%s", first ? "" : "; ",
				    st->problems[i].text);
				first = 0;
			}
	fprintf(f, " | failed_jobs=%ld quarantine=%ld\n", st->failed_jobs,
	    st->archive.quarantined < 0 ? 0 : st->archive.quarantined);
	return (int)st->severity;
}
