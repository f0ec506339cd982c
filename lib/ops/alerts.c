/*
 * alerts: gateway.alert events for the conditions an operator must hear
 * of without watching (see ops/ops.h); run/alert.NAME marks a raised one.
 */
#include "ops/ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALERTS	3

struct alert {
	const char *name;	/* gateway.alert data.alert */
	const char *severity;
	int active;
	long long value;
	char summary[128];
};

static void
find_alerts(const struct ops_status *st, struct alert a[ALERTS])
{
	long q = st->archive.quarantined < 0 ? 0 : st->archive.quarantined;
	long f = st->failed_jobs;
	const struct disk_status *d = &st->archive.store_disk;

	a[0] = (struct alert){ "quarantine", "warning", q > 0, q, "" };
	snprintf(a[0].summary, sizeof a[0].summary,
	    "%ld file%s in quarantine", q, q == 1 ? "" : "s");
	a[1] = (struct alert){ "failed_jobs", "warning", f > 0, f, "" };
	snprintf(a[1].summary, sizeof a[1].summary, "%ld failed job%s", f,
	    f == 1 ? "" : "s");
	a[2] = (struct alert){ "low_disk", "critical", status_disk_low(d),
	    d->free_bytes, "" };
	snprintf(a[2].summary, sizeof a[2].summary, "%.1f %% disk free",
	    d->free_percent);
}

/* Queue alert-NAME (a waiting one of the same name is replaced; none
 * while the cloud's events are off), then record the new state. */
static int
send_alert(const struct config *c, struct spool *relay, const struct alert *a,
    const char *marker, struct err *e)
{
	struct event_alert ev = { a->name, a->active, a->severity,
	    a->summary, a->value, c->pacs_aet, c->pacs_port, NULL, NULL };
	char name[SPOOL_NAME_MAX];

	snprintf(name, sizeof name, "alert-%s", a->name);
	if (config_cloud_events() &&
	    event_alert_queue(relay, name, &ev, e) == -1)
		return -1;
	if (a->active ? fs_write_atomic(marker, a->summary, strlen(a->summary),
	    e) : unlink(marker) == -1 && errno != ENOENT ?
	    err_sys(e, "unlink %s", marker) : 0)
		return -1;
	log_msg(a->active ? LOG_WARN : LOG_INFO, a->active ? "alert raised" :
	    "alert cleared", "alert=%s value=%lld", a->name, a->value);
	return 0;
}

int
alerts_run(const struct config *c, struct err *e)
{
	char dir[PATH_MAX], file[64], marker[PATH_MAX];
	struct ops_status *st;
	struct alert a[ALERTS];
	struct spool relay;
	struct err ae = { 0 };
	int failed = 0;

	if (config_spool_path(c, "relay", dir, sizeof dir, e) == -1 ||
	    spool_open(&relay, dir, 0, e) == -1)
		return -1;
	if ((st = malloc(sizeof *st)) == NULL) {
		spool_close(&relay);
		return err_set(e, ENOMEM, "alerts: out of memory");
	}
	if (ops_status_read(c, st, e) == -1) {
		free(st);
		spool_close(&relay);
		return -1;
	}
	find_alerts(st, a);
	free(st);
	for (int i = 0; i < ALERTS; i++) {
		snprintf(file, sizeof file, "alert.%s", a[i].name);
		if (runstate_path(c->data_dir, file, marker, sizeof marker,
		    e) == -1) {
			failed = 1;
			break;
		}
		if (a[i].active == (access(marker, F_OK) == 0))
			continue;
		if (send_alert(c, &relay, &a[i], marker, &ae) == -1) {
			log_err("alert not queued", &ae);
			failed = 1;
			*e = ae;
		}
	}
	spool_close(&relay);
	return failed ? -1 : 0;
}
