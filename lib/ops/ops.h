/*
 * ops: what an operator and the cloud are told: the health report, the
 * day's page and the metrics.
 *
 * Layer 5.  The one public header of lib/ops/; what its modules share
 * beyond it is static in its .c files.
 * Modules, each with its contract below: health, configview, alertlist,
 * report_html, metrics.
 */
#ifndef GW_OPS_H
#define GW_OPS_H

#include <jansson.h>
#include <stdio.h>
#include <time.h>

#include "base/base.h"

/*
 * health: the gateway's health report, for the cloud's "health" action
 * and for `relaylisten --health` / `relaylisten --status`.
 *
 * What it looks at, all under the configuration it is given:
 *   - run/gatewayd.pid, run/children and run/<name>.state, written by
 *     gatewayd (a "running" child whose pid is dead counts as "exited");
 *   - PACS_PORT and WORKLIST_PORT: a TCP connect to 127.0.0.1 (the worklist
 *     port at WORKLIST_BIND when that is a specific address), 0.5 s at
 *     most, as production checks them;
 *   - the index, thumb and relay spools (new/cur/failed; *.reason files
 *     are not jobs), and per job kind in the relay spool the number
 *     pending (new/ + cur/), failed and the age of the oldest, with its
 *     attempts= and error=; a job's age runs from when it was first
 *     queued: the time a generated job name starts with, or its stored
 *     object's arrival (object=), whichever is older than the file's
 *     mtime (a retry rewrites the file);
 *   - the quarantine, and free disk under the data directory and beside
 *     worklist.db (statvfs): enough is at least HEALTH_DISK_MIN_BYTES and
 *     HEALTH_DISK_MIN_PERCENT;
 *   - run/relay.state, key=value lines written by relaylisten (see
 *     relaylisten(8): connection=, since=, started=, credential=,
 *     token_expires=, last_pong=, last_action=, self_echo=, last_proof=,
 *     last_error=, last_error_at=, hybrid_connection=, pid=);
 *   - the cloud: CLOUD_API_ENDPOINT's host and port (a TCP connect, 1 s at
 *     most), run/relaysend.state when relaysend writes one (last_upload=,
 *     last_event=, last_error=: ISO 8601 times and one line of text), else
 *     the newest uploaded_at and upload_error in pacs.db (opened
 *     read-only, never created), the oldest pending relay job, the
 *     instances per upload state (lib/archive/upload_state) and the MPPS events still
 *     in worklist.db's outbox (read-only too).
 *
 * The report is healthy when gatewayd and every child it supervises run,
 * both ports answer, the disk has room, no job has failed, and the relay
 * listener (when run/relay.state exists) is connected.  Each reason it is
 * not is one short line in "problems".  It begins with the production
 * gateway's keys (PRODUCTION.md §5), so the cloud sees what it sees from
 * production; "healthy" is ours, stricter: whenever one of production's
 * checks fails, a problem says so.
 *
 * Never: exits, logs, prints anywhere but the FILE it is given, or writes
 * anything; it reads no patient data (job bodies only for their kind=,
 * object=, attempts= and error=; pacs.db only for upload times and
 * errors and the count per upload state).  An unreachable Manage API is
 * no problem of its own: it shows in "cloud", the jobs it holds up in the
 * queue.  Uploads are: a study whose images have waited for a worklist
 * item HEALTH_UNMATCHED_SECONDS or more, images still HELD once the
 * cloud takes images, and images the Manage API refused (REFUSED).
 * A missing file or directory is a finding in the report, not an error:
 * -1 means the report could not be made at all (memory, path too long).
 *
 * Memory: *out is a new jansson reference owned by the caller
 * (json_decref).
 */

#define HEALTH_DISK_MIN_BYTES	(1024LL * 1024 * 1024)	/* 1 GiB */
#define HEALTH_DISK_MIN_PERCENT	5.0
#define HEALTH_CONNECT_TIMEOUT_MS 1000	/* the Manage API's host */
#define HEALTH_PORT_TIMEOUT_MS	500	/* our own ports, as production */
#define HEALTH_ERROR_MAX	512	/* a job's error= as shown */
#define HEALTH_UNMATCHED_SECONDS 3600	/* a study waits for its item */

/*
 * The report as a JSON object, production's keys first:
 *
 *   {"healthy":false, "version":"0.1.0", "listener_uptime_seconds":3600,
 *    "checks":{"mwl_port":{"ok":true},
 *              "pacs_port":{"ok":false,"error":"Connection refused"},
 *              "disk":{"ok":true,"free_bytes":…,"free_percent":30.8},
 *              "services":{"ok":false,
 *                          "services":{"gatewayd":{"ok":true,
 *                                                  "state":"running"},
 *                                      "storescp":{"ok":false,
 *                                                  "state":"exited"},…}}},
 *    "problems":["2 failed jobs"],
 *    "gatewayd":{"running":true, "pid":812},
 *    "ports":{"pacs":{"port":4244,"answering":false,
 *                     "error":"Connection refused"},
 *             "worklist":{"port":4243,"answering":true}},
 *    "children":{"storescp":{"state":"running","pid":820,"restarts":0,
 *                "since":"…","last_exit":""}, …},
 *    "spools":{"index":{"new":0,"cur":0,"failed":0}, "thumb":{…},
 *              "relay":{"new":3,"cur":0,"failed":2,
 *                       "kinds":{"image":{"pending":3,"failed":2,
 *                                         "oldest_seconds":192,
 *                                         "oldest_attempts":4,
 *                                         "oldest_error":"HTTP 503"},
 *                                …}}},
 *    "failed_jobs":2, "quarantine":0,
 *    "disk":{"path":"/var/lib/…","free_bytes":…,"total_bytes":…,
 *            "free_percent":41.5,"ok":true},
 *    "relay":{"connection":"connected","since":"…","started":"…",
 *             "credential":"managed-identity-arc","token_expires":"…",
 *             "last_pong":"…","last_action":"…","self_echo":"off",
 *             "last_proof":"","last_error":"","last_error_at":"",
 *             "hybrid_connection":"…","pid":"901",
 *             "listener_running":true},
 *    "cloud":{"configured":{"images":true,"events":true,"actions":true},
 *             "api":{"host":"…","port":443,"reachable":true} or null,
 *             "last_upload":"…","last_event":"","last_error":"…",
 *             "oldest_job":{"kind":"image","age_seconds":192,
 *                           "attempts":4,"error":"HTTP 503"} or null,
 *             "uploads":{"total":52,"complete":40,"pending":0,
 *                        "uploading":0,"waiting":0,"unmatched":3,
 *                        "unmatched_studies":1,"held":9,"failed":0,
 *                        "released":0,"refused":0,"refused_studies":0,
 *                        "local":0,"oldest_unmatched_seconds":7500}
 *                       or null (pacs.db not readable),
 *             "mpps_events_held":0}}
 *
 * "checks" are computed as production computes them: mwl_port and
 * pacs_port from "ports"; disk beside worklist.db (free_percent to one
 * decimal); services from gatewayd's run files.  listener_uptime_seconds
 * counts from relay.state's started= while relaylisten runs, else null.
 * "configured" is lib/base/config's config_cloud_images/events/actions;
 * "uploads" counts instances per upload_status (lib/archive/upload_state);
 * "mpps_events_held" the MPPS events not yet copied out of worklist.db's
 * outbox (they wait there while the relay's events are off).
 * "kinds" always has image, image_failure, study.image_received and
 * mpps.status_update (oldest_seconds null when none is pending), and any
 * other kind found.  Without run/relay.state, "relay" is
 * {"connection":"not running"}, or "not configured" when the relay's
 * actions are not (AZURE_RELAY_NAMESPACE, AZURE_RELAY_HYBRID_CONNECTION).
 */
int health_report(const struct config *c, json_t **out, struct err *e);

/*
 * The relay section of `gatewayd status`, as text on f: the listener's
 * connection state and since when, its credential, the last PONG and the
 * last action and how long ago, the last traffic proof (or "off" when the
 * credential cannot send), when the token expires, the last error and
 * when, then the relay queue per job kind:
 *
 *   relay: connected since 2026-11-28T01:00:00Z (pid 901, hybrid connection gw, credential sas)
 *   last PONG: 2026-11-28T01:30:01Z (11s ago); last action: none
 *   last traffic proof: 2026-11-28T01:29:00Z (1m12s ago)
 *   token expires: 2026-11-28T02:00:00Z
 *   last error: -
 *
 *   KIND                  PENDING FAILED OLDEST
 *   image                       3      2 3m12s
 *   image_failure               0      0 -
 * then the cloud (see health_report's "cloud"), with the images per
 * upload state (the states with none left out):
 *
 *   cloud: Manage API gw.example:443 reachable
 *   uploads: 40 sent, 3 waiting for a worklist item (1 study, oldest 2h05m: gatewayctl waiting)
 *   last upload: 2026-11-28T01:29:00Z (1m12s ago); last event: none
 *   cloud last error: -
 *   oldest job: image, queued 3m12s ago, 4 attempts, last error: HTTP 503
 *
 * Without the cloud: "relay: not configured" and "cloud: not configured
 * (…): nothing is queued for it; images are kept, HELD".
 * -1 with e set when f cannot be written.
 */
int health_print_status(const struct config *c, FILE *f, struct err *e);

/* An age as the status shows it: "45s", "3m12s", "2h05m", "3d04h". */
void health_format_age(long long seconds, char *out, size_t outsz);

/*
 * configview: the settings table (lib/base settings) as gatewayctl
 * config shows it to an operator and hands it to gatewayd.
 *
 * configview_print(): every setting once, NAME=value, grouped under a
 * "# from ..." heading by where its value came from (the environment,
 * the file, production's name for it in either, the default); secrets
 * as "(set, not shown)"; names in the file that no program reads as
 * comments naming the likely intended setting.  The listing is itself a
 * gateway.env that gives the same values.
 *
 * configview_export(): NAME='value' and export lines for sh, every
 * setting with a value (defaults included, paths made absolute, secrets
 * too: this is for gatewayd's eval, never for a terminal), then the
 * file's other names.  Call after config_load().
 *
 * configview_check(): logs a warning for each bad line, each name given
 * twice (the last wins) and each name that is not a setting (with the
 * nearest one), and an error for each value a setting cannot take, each
 * file setting that cannot be read, ports given twice and a TLS port
 * without certificate or key; returns the number of errors.  Call after
 * config_load().
 *
 * Each returns -1 with e set when the configuration file cannot be read.
 */
int configview_print(FILE *out, struct err *e);
int configview_export(FILE *out, struct err *e);
int configview_check(struct err *e);

/*
 * alertlist: the alerts open now, as the gateway's own checks leave them
 * in the run directory: run/alert.NAME while gatewayctl alerts has
 * raised NAME (its content the summary), and run/disk_floor while
 * gatewayd's disk floor refuses storage (alert disk_floor, since=).
 * fn(a, arg) for each, by name; a non-zero return stops.  The number
 * given, or -1 with e set (a run directory that does not exist has
 * none).  Never writes, logs or prints.
 */
struct open_alert {
	char name[64];
	char summary[256];		/* one line */
	time_t since;			/* when it was raised (file's mtime) */
};

typedef int open_alert_fn(const struct open_alert *a, void *arg);
int alertlist_each(const struct config *c, open_alert_fn *fn, void *arg,
    struct err *e);

/*
 * report_html: the day's page for the clinic's staff (gatewayctl report
 * --html FILE, and gatewayd every GATEWAY_REPORT_INTERVAL_SECONDS into
 * GATEWAY_REPORT_HTML): one self-contained HTML file with the open
 * alerts, the day's worklist (with the images received for each item),
 * each study received that day with every image's preview and where it
 * went (the store: object hash and path, or when retention freed it;
 * the preview; the cloud: upload state, attempts, when, the last error;
 * Query/Retrieve: held for retrieval, and the newest Storage Commitment
 * that reported it committed), the cloud queue per job kind (pending,
 * failed, the oldest and its last error) with the images per upload
 * state, and the quarantine with each entry's reason.
 *
 * Self-contained: previews are the PNG files dcmthumb wrote
 * (o->thumbs_dir), embedded as data: URIs; the style sheet is inline;
 * there is no script, and a Content-Security-Policy allows nothing else,
 * so the page loads from a file with no server and no network.  The page
 * asks the browser to read it again every minute.  Every text from the
 * data is escaped as HTML.  The day and times are local (the process's
 * zone: the caller runs worklist_site_init() first, so they are
 * WORKLIST_TIMEZONE's).  Patient names appear only with o->names.
 * Missing pacs.db or worklist.db, or an unreadable quarantine or spool,
 * are said on the page, not errors.
 *
 * Written atomically (a temporary file beside path, fsync, rename): a
 * browser never reads half a page.  0, or -1 with e set (path cannot be
 * written, memory).  Never logs or prints.
 */
struct report_html_opts {
	const char *date;		/* YYYY-MM-DD, local; NULL: today */
	int names;			/* show patient names */
	const char *thumbs_dir;		/* GATEWAY_THUMBS_DIR as resolved */
};

int report_html_write(const struct config *c,
    const struct report_html_opts *o, const char *path, struct err *e);

/*
 * metrics: the gateway's state in the Prometheus text exposition format
 * (version 0.0.4), for node_exporter's textfile collector (gatewayctl
 * metrics; gatewayd every METRICS_INTERVAL_SECONDS into
 * METRICS_TEXTFILE_DIR).  Each family has # HELP and # TYPE; labels
 * carry no patient data (stages, states, job kinds, child and alert
 * names, paths of the gateway's own directories):
 *
 *   gateway_info{version,pacs_aet}            1
 *   gateway_supervisor_up                     gatewayd runs (1/0)
 *   gateway_child_up{child}                   each supervised child runs
 *   gateway_child_restarts_total{child}       restarts since gatewayd
 *                                             started (a counter)
 *   gateway_images_received_total             receptions recorded in
 *                                             pacs.db (repeats included)
 *   gateway_upload_state{state}               images per upload state
 *                                             (pending ... complete)
 *   gateway_last_upload_timestamp_seconds     the newest upload
 *   gateway_spool_jobs{stage,dir}             index, thumb, relay x new,
 *                                             cur, failed
 *   gateway_spool_oldest_age_seconds{stage}   the oldest job waiting or
 *                                             claimed (0: none)
 *   gateway_relay_jobs{kind,state}            pending, failed per job kind
 *   gateway_relay_oldest_age_seconds{kind}    (lib/cloud/jobqueue; 0: none)
 *   gateway_quarantine_files
 *   gateway_disk_free_bytes{path}             for the data directory,
 *   gateway_disk_size_bytes{path}             the store, worklist.db's
 *   gateway_alert_active{alert}               quarantine, failed_jobs,
 *                                             low_disk, disk_floor, and
 *                                             any other open (1/0)
 *   gateway_worklist_items{state}             today's items per state
 *
 * Families whose source cannot be read (no pacs.db, no worklist.db) are
 * left out rather than given as 0.  metrics_format(): the text in *out
 * (malloc'd, NUL-terminated; free()), its length returned.
 * metrics_write_textfile(): that text as dir/METRICS_TEXTFILE_NAME,
 * atomically (a hidden temporary file in dir, which the collector does
 * not read, fsync, rename), mode 0644 whatever the umask (the collector
 * runs as another user; the file holds no patient data).  Each returns -1 with e set.  Never logs or
 * prints.
 */
#define METRICS_TEXTFILE_NAME	"screening_gateway.prom"

long metrics_format(const struct config *c, char **out, struct err *e);
int metrics_write_textfile(const struct config *c, const char *dir,
    struct err *e);

#endif
