/*
 * metrics: the gateway's state in the Prometheus text format, for
 * node_exporter's textfile collector (see ops/ops.h).
 */
#include "ops/ops.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "archive/archive.h"
#include "cloud/cloud.h"
#include "queue/queue.h"
#include "worklist/worklist.h"


static const char *const stages[] = { "index", "thumb", "relay" };
static const char *const subs[] = { "new", "cur", "failed" };
/* The alerts always given, 0 when not open (gatewayctl alerts, gatewayd's
 * disk floor). */
static const char *const known_alerts[] = { "disk_floor", "failed_jobs",
    "low_disk", "quarantine" };

struct out {
	FILE *f;
	const struct config *c;
	time_t now;
};

/* ------------------------------------------------------------ writing */

static void
family(struct out *o, const char *name, const char *type, const char *help)
{
	fprintf(o->f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the format wants (\\, \", \n). */
static void
label_value(FILE *f, const char *v)
{
	for (; *v != '\0'; v++)
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
}

/* name{k1="v1",k2="v2"} value; k NULL ends the labels. */
static void
sample(struct out *o, const char *name, long long value, const char *k1,
    const char *v1, const char *k2, const char *v2)
{
	fputs(name, o->f);
	if (k1 != NULL) {
		fprintf(o->f, "{%s=\"", k1);
		label_value(o->f, v1);
		if (k2 != NULL) {
			fprintf(o->f, "\",%s=\"", k2);
			label_value(o->f, v2);
		}
		fputs("\"}", o->f);
	}
	fprintf(o->f, " %lld\n", value);
}

/* An ISO 8601 UTC time (2026-11-28T01:29:00[.123]Z) as Unix time; 0 when
 * it is not one. */
static time_t
utc_seconds(const char *s)
{
	struct tm tm = { 0 };

	if (*s == '\0' || strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
		return 0;
	return timegm(&tm);
}

static long long
age(const struct out *o, time_t t)
{
	return t == 0 || t > o->now ? 0 : (long long)(o->now - t);
}

/* ----------------------------------------------------- the supervisor */

/* gatewayd and its children, as gatewayd records them in run/ (ops
 * supervisor). */
static void
supervisor(struct out *o)
{
	struct sv_status *sv = malloc(sizeof *sv);
	struct err e = { 0 };

	if (sv == NULL || sv_status_read(o->c->data_dir, sv, &e) == -1) {
		free(sv);
		return;
	}
	family(o, "gateway_supervisor_up", "gauge",
	    "Whether gatewayd, the supervisor, runs (1) or not (0).");
	sample(o, "gateway_supervisor_up", sv->running, NULL, NULL, NULL,
	    NULL);
	family(o, "gateway_child_up", "gauge",
	    "Whether each child gatewayd supervises runs (1) or not (0).");
	for (int i = 0; i < sv->nchildren; i++)
		sample(o, "gateway_child_up", strcmp(sv->children[i].state,
		    "running") == 0, "child", sv->children[i].name, NULL, NULL);
	for (int i = 0; i < sv->ntimers; i++)	/* a timed job waits or runs */
		sample(o, "gateway_child_up", sv->running &&
		    strcmp(sv->timers[i].state, "stopped") != 0, "child",
		    sv->timers[i].name, NULL, NULL);
	family(o, "gateway_child_restarts_total", "counter",
	    "Restarts of each child since gatewayd started.");
	for (int i = 0; i < sv->nchildren; i++)
		sample(o, "gateway_child_restarts_total",
		    sv->children[i].restarts < 0 ? 0 : sv->children[i].restarts,
		    "child", sv->children[i].name, NULL, NULL);
	free(sv);
}

/* ------------------------------------------------------------ pacs.db */

static void
uploads(struct out *o)
{
	struct upload_state_count c;
	struct err e = { 0 };
	sqlite3 *db = NULL;
	long long received;
	const long long *v[UPLOAD_NSTATES];
	char state[32];

	if (db_open_existing(&db, o->c->pacs_db_path, &e) == -1)
		return;
	if (pacs_receipt_count(db, &received, &e) == 0) {
		family(o, "gateway_images_received_total", "counter",
		    "Images received, as pacs.db records each reception.");
		sample(o, "gateway_images_received_total", received, NULL,
		    NULL, NULL, NULL);
	}
	if (upload_state_count(db, NULL, &c, &e) == 0) {
		v[UPLOAD_PENDING] = &c.pending;
		v[UPLOAD_UPLOADING] = &c.uploading;
		v[UPLOAD_WAITING] = &c.waiting;
		v[UPLOAD_UNMATCHED] = &c.unmatched;
		v[UPLOAD_HELD] = &c.held;
		v[UPLOAD_LOCAL] = &c.local;
		v[UPLOAD_FAILED] = &c.failed;
		v[UPLOAD_REFUSED] = &c.refused;
		v[UPLOAD_RELEASED] = &c.released;
		v[UPLOAD_COMPLETE] = &c.complete;
		family(o, "gateway_upload_state", "gauge",
		    "Images per state of their way to the cloud.");
		for (int s = 0; s < UPLOAD_NSTATES; s++) {
			size_t i;

			for (i = 0; upload_state_name(s)[i] != '\0' &&
			    i + 1 < sizeof state; i++)
				state[i] = (char)tolower((unsigned char)
				    upload_state_name(s)[i]);
			state[i] = '\0';
			sample(o, "gateway_upload_state", *v[s], "state", state,
			    NULL, NULL);
		}
		family(o, "gateway_last_upload_timestamp_seconds", "gauge",
		    "When the newest upload to the cloud completed (0: none).");
		sample(o, "gateway_last_upload_timestamp_seconds",
		    (long long)utc_seconds(c.last_upload), NULL, NULL, NULL,
		    NULL);
	}
	db_close(db);
}

/* ------------------------------------------------------------- spools */

static void
spools(struct out *o)
{
	struct spool_census cs[3];
	char dir[PATH_MAX];
	struct err e = { 0 };

	for (int i = 0; i < 3; i++) {
		if (config_spool_path(o->c, stages[i], dir, sizeof dir,
		    &e) == 0)
			spool_census(dir, &cs[i]);
		else
			cs[i] = (struct spool_census){ { -1, -1, -1 }, { 0 },
			    0 };
	}
	family(o, "gateway_spool_jobs", "gauge",
	    "Jobs in each stage's spool: waiting (new), claimed (cur), "
	    "failed for good (failed).");
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			if (cs[i].count[j] >= 0)
				sample(o, "gateway_spool_jobs", cs[i].count[j],
				    "stage", stages[i], "dir", subs[j]);
	family(o, "gateway_spool_oldest_age_seconds", "gauge",
	    "Age of each stage's oldest job waiting or claimed (0: none).");
	for (int i = 0; i < 3; i++)
		sample(o, "gateway_spool_oldest_age_seconds", cs[i].oldest ?
		    age(o, cs[i].oldest) : 0, "stage", stages[i], NULL, NULL);
}

static void
relay_jobs(struct out *o)
{
	struct job_queue_kind k[JOB_NKINDS];
	struct err e = { 0 };

	if (job_queue_scan(o->c, k, &e) == -1)
		return;
	family(o, "gateway_relay_jobs", "gauge",
	    "Jobs for the cloud per kind: pending (waiting or being sent) "
	    "and failed (parked until relaysend --retry-failed).");
	for (int i = 0; i < JOB_NKINDS; i++) {
		sample(o, "gateway_relay_jobs", k[i].pending, "kind",
		    job_kind_name(i), "state", "pending");
		sample(o, "gateway_relay_jobs", k[i].failed, "kind",
		    job_kind_name(i), "state", "failed");
	}
	family(o, "gateway_relay_oldest_age_seconds", "gauge",
	    "Since when the oldest pending job of each kind was first queued "
	    "(0: none).");
	for (int i = 0; i < JOB_NKINDS; i++)
		sample(o, "gateway_relay_oldest_age_seconds", age(o,
		    k[i].oldest), "kind", job_kind_name(i), NULL, NULL);
}

/* ------------------------------------------ quarantine, disk, alerts */

static int
count_entry(const struct quarantine_record *r, void *arg)
{
	(void)r;
	(void)arg;
	return 0;
}

static void
quarantine(struct out *o)
{
	struct quarantine q;
	struct err e = { 0 };
	int n;

	if (quarantine_open(&q, o->c->quarantine_dir, &e) == -1 ||
	    (n = quarantine_list(&q, count_entry, NULL, &e)) == -1)
		return;
	family(o, "gateway_quarantine_files", "gauge",
	    "Files in quarantine (gatewayctl quarantine).");
	sample(o, "gateway_quarantine_files", n, NULL, NULL, NULL, NULL);
}

static void
disk(struct out *o)
{
	char wl[PATH_MAX], *slash;
	const char *paths[3];
	long long free_b[3], size_b[3];
	int ok[3];
	double pct;
	struct err e = { 0 };

	snprintf(wl, sizeof wl, "%s", o->c->worklist_db_path);
	if ((slash = strrchr(wl, '/')) != NULL && slash != wl)
		*slash = '\0';
	paths[0] = o->c->data_dir;
	paths[1] = o->c->storage_path;
	paths[2] = wl;
	for (int i = 0; i < 3; i++) {
		ok[i] = purge_free_space(paths[i], &pct, &free_b[i], &size_b[i],
		    &e) == 0;
		for (int j = 0; j < i; j++)	/* a path named twice once */
			ok[i] = ok[i] && strcmp(paths[i], paths[j]) != 0;
	}
	family(o, "gateway_disk_free_bytes", "gauge",
	    "Free bytes on the file system of the data directory, the store "
	    "and worklist.db (for this user: as the gateway sees it).");
	for (int i = 0; i < 3; i++)
		if (ok[i])
			sample(o, "gateway_disk_free_bytes", free_b[i], "path",
			    paths[i], NULL, NULL);
	family(o, "gateway_disk_size_bytes", "gauge",
	    "Size in bytes of the same file systems.");
	for (int i = 0; i < 3; i++)
		if (ok[i])
			sample(o, "gateway_disk_size_bytes", size_b[i], "path",
			    paths[i], NULL, NULL);
}

struct open_alerts {
	char names[32][64];
	size_t n;
};

static int
note_alert(const struct open_alert *a, void *arg)
{
	struct open_alerts *v = arg;

	if (v->n < sizeof v->names / sizeof v->names[0])
		snprintf(v->names[v->n++], sizeof v->names[0], "%s", a->name);
	return 0;
}

static int
is_open(const struct open_alerts *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->names[i], name) == 0)
			return 1;
	return 0;
}

static void
alerts(struct out *o)
{
	const size_t nknown = sizeof known_alerts / sizeof known_alerts[0];
	struct open_alerts v = { .n = 0 };
	struct err e = { 0 };
	size_t i, j;

	if (alertlist_each(o->c, note_alert, &v, &e) == -1)
		return;
	family(o, "gateway_alert_active", "gauge",
	    "Alerts open now (1) or not (0): gatewayctl alerts' and the "
	    "disk floor's.");
	for (i = 0; i < nknown; i++)
		sample(o, "gateway_alert_active", is_open(&v, known_alerts[i]),
		    "alert", known_alerts[i], NULL, NULL);
	for (i = 0; i < v.n; i++) {
		for (j = 0; j < nknown && strcmp(v.names[i],
		    known_alerts[j]) != 0; j++)
			;
		if (j == nknown)
			sample(o, "gateway_alert_active", 1, "alert",
			    v.names[i], NULL, NULL);
	}
}

/* ----------------------------------------------------------- worklist */

static int
count_item(void *arg, struct worklist_item *it, struct err *e)
{
	static const char *const states[] = { WL_SCHEDULED, WL_IN_PROGRESS,
	    WL_COMPLETED, WL_DISCONTINUED };
	long long *n = arg;

	(void)e;
	for (int i = 0; i < 4; i++)
		n[i] += strcmp(it->status, states[i]) == 0;
	return 0;
}

static void
worklist(struct out *o)
{
	static const char *const labels[] = { "scheduled", "in_progress",
	    "completed", "discontinued" };
	long long n[4] = { 0 };
	struct worklist *w;
	struct err e = { 0 };
	char day[9];
	int rc;

	if (worklist_open_existing(&w, o->c->worklist_db_path, &e) == -1)
		return;
	worklist_today(day);
	rc = worklist_each(w, day, 1, count_item, n, &e);
	worklist_close(w);
	if (rc == -1)
		return;
	family(o, "gateway_worklist_items", "gauge",
	    "Today's worklist items (the site's local day) per state.");
	for (int i = 0; i < 4; i++)
		sample(o, "gateway_worklist_items", n[i], "state", labels[i],
		    NULL, NULL);
}

/* --------------------------------------------------------------- text */

long
metrics_format(const struct config *c, char **out, struct err *e)
{
	struct out o = { .c = c, .now = time(NULL) };
	char *buf = NULL;
	size_t len = 0;

	*out = NULL;
	if ((o.f = open_memstream(&buf, &len)) == NULL)
		return err_sys(e, "metrics: open_memstream");
	family(&o, "gateway_info", "gauge",
	    "The gateway's version and storage AE title (always 1).");
	sample(&o, "gateway_info", 1, "version", GW_VERSION, "pacs_aet",
	    c->pacs_aet);
	supervisor(&o);
	uploads(&o);
	spools(&o);
	relay_jobs(&o);
	quarantine(&o);
	disk(&o);
	alerts(&o);
	worklist(&o);
	if (fclose(o.f) == EOF) {
		free(buf);
		return err_set(e, ENOMEM, "metrics: out of memory");
	}
	*out = buf;
	return (long)len;
}

int
metrics_write_textfile(const struct config *c, const char *dir,
    struct err *e)
{
	char path[PATH_MAX], *text;
	long len;
	int rc;

	if (snprintf(path, sizeof path, "%s/%s", dir, METRICS_TEXTFILE_NAME) >=
	    (int)sizeof path)
		return err_set(e, ENAMETOOLONG, "path too long: %s", dir);
	if ((len = metrics_format(c, &text, e)) == -1)
		return -1;
	/* Readable by the collector's user (the service's umask may be 027):
	 * the file holds no patient data. */
	mode_t old = umask(022);
	rc = fs_write_atomic(path, text, (size_t)len, e);
	umask(old);
	free(text);
	return rc;
}
