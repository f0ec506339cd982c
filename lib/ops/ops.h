/*
 * ops: what an operator and the cloud are told: the status each subsystem
 * reports of itself, composed here into the health report (JSON), the
 * status screen, the monitoring line and the gateway.alert events; and the
 * settings table as gatewayctl shows it.
 *
 * Layer 5.  The one public header of lib/ops/; what its modules share
 * beyond it is static in its .c files.
 * Modules, each with its contract below: supervisor, status, report,
 * screen, alerts, configview, alertlist, report_html, metrics.
 *
 * ops reads no other program's files itself but gatewayd's: each
 * subsystem reads its own (lib/base runstate has the table of run/ files
 * and their owners).  Nothing here writes, but alerts (run/alert.NAME and
 * the relay jobs it queues).
 */
#ifndef GW_OPS_H
#define GW_OPS_H

#include <jansson.h>
#include <stdio.h>
#include <time.h>

#include "base/base.h"
#include "queue/queue.h"
#include "archive/archive.h"
#include "qr/qr.h"
#include "cloud/cloud.h"

/*
 * supervisor: gatewayd's files, as it writes them in sh (pipeline/
 * gatewayd: write_state): run/gatewayd.pid; run/children and run/timers
 * (names, in start order); run/NAME.state per child and timed job:
 * name=, state= (running, backoff, stopped; a timed job waiting, running),
 * pid=, restarts=, since=, last_exit= (status=N or signal=NAME), exits=
 * (the Unix times of its last exits, oldest first), and for a timed job
 * schedule=, last_run=, next_run=.  A child "running" whose pid is dead is
 * "exited".  A gatewayd is running when the pid file's process is alive
 * and (where /proc tells) a gatewayd; one of another user counts.
 */

#define SV_MAX		24	/* children, timed jobs */
#define SV_EXITS_MAX	8	/* exits= kept */

struct sv_job {
	char name[64];
	char state[16];		/* as above; "stopped" when gatewayd is not */
	long pid;		/* 0: none */
	long restarts;		/* -1: not known */
	char since[RUNSTATE_TIME];
	char last_exit[40];
	time_t exits[SV_EXITS_MAX];
	int nexits;
	char schedule[48];	/* timed: "every 600s", "daily 00:30", ... */
	char last_run[RUNSTATE_TIME], next_run[RUNSTATE_TIME];
};

struct sv_status {
	int running;
	long pid;
	uid_t uid;		/* who runs it: the pid file's owner */
	struct sv_job children[SV_MAX], timers[SV_MAX];
	int nchildren, ntimers;
};

/* Read gatewayd's run files.  What is missing is a finding: 0 always,
 * but -1 for a data directory path too long. */
int sv_status_read(const char *data_dir, struct sv_status *sv,
    struct err *e);

/* Restarts of j within window seconds before now. */
int sv_recent_exits(const struct sv_job *j, time_t now, long window);

/* Some process of this machine is a "gatewayd run" (of any user): its
 * pid, else 0 (for "cannot tell" when run/ is closed to this user). */
long sv_find_gatewayd(void);

/*
 * status: the gateway's status, each part from its owner: gatewayd's
 * files (supervisor), our ports (a TCP connect to 127.0.0.1, or
 * WORKLIST_BIND when that is an address, STATUS_PORT_MS at most, as
 * production checks them), each spool's census (lib/queue), the archive
 * (lib/archive archive_status), qrscp (lib/qr qr_status), the cloud
 * (lib/cloud cloud_status), the MPPS events held in worklist.db's outbox
 * (lib/worklist), and free space beside worklist.db (production's disk
 * check).
 *
 * And the problems, each one line with its severity; the rules (the
 * thresholds are settings, gateway.env(5)):
 *
 *   CRITICAL  the data directory does not exist; gatewayd not running;
 *             a child not running, or restarting in a loop
 *             (STATUS_RESTART_LOOP_COUNT exits within
 *             STATUS_RESTART_LOOP_SECONDS); a port not answering; the
 *             store, incoming/ or the data directory not writable by the
 *             gateway's user; storage refusing new associations (the
 *             disk floor); low disk (STATUS_DISK_MIN_BYTES and _PERCENT
 *             free on the store's file system, and the data directory's
 *             when apart); qrscp not running or its port not answering;
 *             the Manage API refusing the gateway (HTTP 401 or 403, no
 *             token) or the relay refusing the events' token; a job
 *             waiting for the cloud longer than STATUS_PENDING_CRIT_
 *             SECONDS; relaylisten not running while its relay.state
 *             says it should.
 *   WARNING   failed jobs; files in the quarantine; files left in
 *             incoming/ the hook never took (ARCHIVE_INCOMING_STALE_
 *             SECONDS); a job waiting longer than STATUS_PENDING_WARN_
 *             SECONDS; deliveries to the Manage API or over the relay
 *             failing otherwise, or its host not reachable; the relay
 *             not connected; images waiting an hour for a worklist item,
 *             HELD or image events held back with the cloud on, or
 *             REFUSED; a spool that cannot be read; little room beside
 *             worklist.db.
 *
 * A job's age runs from when it was first queued (lib/queue: retries
 * keep it) or its object's arrival, whichever is older; only the kinds
 * whose way out is configured count (the others wait for a
 * configuration, and the status shows them).  The problems of a gateway
 * whose data directory does not exist are that one alone.
 *
 * Never: exits, logs, prints, writes; reads no patient data.
 */

#define STATUS_PORT_MS		500	/* our own ports, as production */
#define STATUS_DISK_MIN_BYTES	(1024LL * 1024 * 1024)	/* 1 GiB */
#define STATUS_DISK_MIN_PERCENT	5.0
#define STATUS_UNMATCHED_SECONDS 3600	/* a study waits for its item */
#define STATUS_PROBLEMS_MAX	48
#define STATUS_PROBLEM_LEN	320

enum status_severity { STATUS_OK, STATUS_WARNING, STATUS_CRITICAL };

struct status_problem {
	enum status_severity severity;
	char text[STATUS_PROBLEM_LEN];
};

struct port_status {
	int port;
	int why;		/* 0: answering, else the connect's errno */
};

struct ops_status {
	const struct config *c;
	time_t now;
	int data_dir_missing;
	struct sv_status sv;
	struct port_status pacs, worklist, qr_port;
	struct spool_census spools[3];	/* index, thumb, relay */
	long failed_jobs;	/* in every spool's failed/ */
	struct archive_status archive;
	struct qr_status qr;
	struct cloud_status cloud;
	int mpps_known;		/* worklist.db read */
	long mpps_held;
	struct disk_status worklist_disk;	/* beside worklist.db */
	struct status_problem problems[STATUS_PROBLEMS_MAX];
	int nproblems;
	enum status_severity severity;	/* the worst */
};

extern const char *const status_stages[3];

/* Gather it all and judge it; -1 (e set) only when the settings are bad
 * or a path does not fit.  The caller frees nothing. */
int ops_status_read(const struct config *c, struct ops_status *st,
    struct err *e);

/* The cloud's last delivery error and when (0: not known), "" once
 * deliveries succeed: relaysend's own (run/delivery.state), else the
 * newest in pacs.db. */
void status_cloud_error(const struct ops_status *st, const char **error,
    time_t *at);

/* The last upload (ISO 8601, "" for none): relaysend's, else pacs.db's
 * newest uploaded_at. */
void status_last_upload(const struct ops_status *st,
    char out[RUNSTATE_TIME]);

/* A disk is short of room: less than STATUS_DISK_MIN_BYTES or _PERCENT
 * free (one that cannot be measured is not). */
int status_disk_low(const struct disk_status *d);

/*
 * report: the health report, for the cloud's "health" action and
 * `relaylisten --health`, as a JSON object, production's keys first
 * (PRODUCTION.md §5):
 *
 *   {"healthy":false, "version":"0.1.0", "listener_uptime_seconds":3600,
 *    "checks":{"pacs_port":{"ok":false,"error":"Connection refused"},
 *              "mwl_port":{"ok":true},
 *              "disk":{"ok":true,"free_bytes":…,"free_percent":30.8},
 *              "services":{"ok":false,
 *                          "services":{"gatewayd":{"ok":true,
 *                                                  "state":"running"},
 *                                      "storescp-front":{"ok":false,
 *                                                  "state":"exited"},…}}},
 *    "problems":["2 failed jobs"],
 *    "gatewayd":{"running":true, "pid":812},
 *    "ports":{"pacs":{"port":4244,"answering":false,
 *                     "error":"Connection refused"},
 *             "worklist":{"port":4243,"answering":true}},
 *    "children":{"storescp-front":{"state":"running","pid":820,
 *                "restarts":0,"since":"…","last_exit":""}, …},
 *    "timers":{"sweep":{"schedule":"every 600s","state":"waiting",
 *              "last_run":"…","last_exit":"status=0","next_run":"…"},…},
 *    "spools":{"index":{"new":0,"cur":0,"failed":0}, "thumb":{…},
 *              "relay":{"new":3,"cur":0,"failed":2,
 *                       "kinds":{"image":{"pending":3,"failed":2,
 *                                         "oldest_seconds":192,
 *                                         "oldest_attempts":4,
 *                                         "oldest_error":"HTTP 503"},
 *                                …}}},
 *    "failed_jobs":2, "quarantine":0,
 *    "incoming":{"files":0,"stale":0},
 *    "disk":{"path":"/var/lib/…/store","free_bytes":…,"total_bytes":…,
 *            "free_percent":41.5,"ok":true},
 *    "storage":{"accepting":true,"floor_bytes":2147483648,
 *               "refusing_since":null},
 *    "relay":{"connection":"connected","since":"…","started":"…",
 *             "credential":"managed-identity-arc","token_expires":"…",
 *             "last_pong":"…","last_action":"…","self_echo":"off",
 *             "last_proof":"","last_error":"","last_error_at":"",
 *             "hybrid_connection":"…","pid":"901",
 *             "listener_running":true},
 *    "cloud":{"configured":{"images":true,"events":true,"actions":true},
 *             "api":{"host":"…","port":443,"reachable":true} or null,
 *             "last_upload":"…","last_event":"","last_error":"…",
 *             "last_error_at":"…",
 *             "oldest_job":{"kind":"image","age_seconds":192,
 *                           "attempts":4,"error":"HTTP 503"} or null,
 *             "uploads":{"total":52,"complete":40,"pending":0,
 *                        "uploading":0,"waiting":0,"unmatched":3,
 *                        "unmatched_studies":1,"held":9,"failed":0,
 *                        "released":0,"refused":0,"refused_studies":0,
 *                        "local":0,"events_held":0,
 *                        "oldest_unmatched_seconds":7500}
 *                       or null (pacs.db not readable),
 *             "mpps_events_held":0},
 *    "qr":{"running":true,"aet":"SCREENING_QR","port":4246,
 *          "answering":true,"associations":0,"moves_in_progress":0,
 *          "pending_commitments":0}}
 *
 * "healthy" is ours, stricter than production's: no problem at all
 * (whenever one of production's checks fails, a problem says so).
 * "checks" are computed as production computes them: the ports, free
 * space beside worklist.db (free_percent to one decimal), the services
 * from gatewayd's run files.  listener_uptime_seconds counts from
 * relay.state's started= while relaylisten runs, else null.  A count
 * this user cannot read is null.  "disk" is the store's file system.
 * Without run/relay.state, "relay" is {"connection":"not running"}, or
 * "not configured" when the relay's actions are not.
 *
 * Memory: *out is a new jansson reference owned by the caller.
 */
int health_report(const struct config *c, json_t **out, struct err *e);
int report_json(const struct ops_status *st, json_t **out, struct err *e);

/*
 * screen: the status as text.
 *
 * screen_print(): what `gatewayctl status` (and `gatewayd status`)
 * prints: the supervisor; the children (state, pid, restarts, since,
 * last exit) and the timed jobs (schedule, state, last run and exit,
 * next run); each spool's jobs; the quarantine, incoming/, the store's
 * file system (and the data directory's when apart) and whether storage
 * accepts images; qrscp; then screen_print_cloud().  A count this user
 * may not read is "?".
 *
 * screen_print_cloud(): the relay listener (connection, since, pid,
 * hybrid connection, credential; the last PONG, action and traffic
 * proof; the token's expiry; the last error and when), the relay spool
 * per job kind, and the cloud: the Manage API and whether it answers,
 * the images per upload state, the MPPS events held, the last upload
 * and event, the last error and when (cleared once deliveries succeed),
 * and the oldest job waiting (what `relaylisten --status` prints).
 * Without relaylisten installed (relaylisten_installed 0) the relay's
 * line says so.
 *
 * screen_check(): one line for monitoring, in the manner of a Nagios
 * plugin: "GATEWAY OK - running | failed_jobs=0 quarantine=0", or
 * WARNING / CRITICAL and the problems, "; "-separated; returns the
 * plugin's exit code (0, 1, 2).
 *
 * -1 with e set when f cannot be written.
 */
int screen_print(const struct ops_status *st, int relaylisten_installed,
    FILE *f, struct err *e);
int screen_print_cloud(const struct ops_status *st,
    int relaylisten_installed, FILE *f, struct err *e);
int screen_check(const struct ops_status *st, FILE *f);

/* An age as the status shows it: "45s", "3m12s", "2h05m", "3d04h". */
void screen_age(long long seconds, char *out, size_t outsz);

/* bytes as df -h would: "1.2G", "16M", "512K". */
void screen_size(long long bytes, char *out, size_t outsz);

/*
 * alerts: gateway.alert events for the conditions an operator must hear
 * of without watching: quarantine (files in it; warning), failed_jobs
 * (warning), low_disk (critical; the store's file system short of room,
 * status_disk_low).  (disk_floor, storage refusing new associations, is
 * storescp-front's to raise and clear: it sees the change.)
 * alerts_run()
 * compares them with the last run (run/alert.NAME exists while one is
 * raised) and for each that started or ended queues the relay job
 * alert-NAME (a waiting one of the same name is replaced), when the
 * relay's events are configured, and logs it.  -1 with e when the relay
 * spool cannot be opened; a job that cannot be queued is logged, the
 * rest go on, and -1 is returned at the end.
 */
int alerts_run(const struct config *c, struct err *e);

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
 * raised NAME (its content the summary), and disk_floor while
 * storescp-front's run/storage.state says storage refuses (lib/archive
 * floor_state_read; since its since=).
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
