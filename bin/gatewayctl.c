/*
 * gatewayctl: what an operator asks of the gateway, without sqlite3.
 *
 *   gatewayctl studies [--date YYYY-MM-DD] [--names]
 *   gatewayctl show [--names] ACCESSION|STUDY_UID
 *   gatewayctl resend ACCESSION|STUDY_UID | --held
 *   gatewayctl waiting [--names]
 *   gatewayctl assign ACCESSION|STUDY_UID WORKLIST_ACCESSION
 *   gatewayctl release ACCESSION|STUDY_UID
 *   gatewayctl worklist [--date YYYY-MM-DD] [--names]
 *   gatewayctl retry
 *   gatewayctl check
 *   gatewayctl alerts
 *   gatewayctl config [--export | --check]
 *   gatewayctl quarantine [release NAME | delete [--yes] NAME]
 *   gatewayctl report --html FILE [--date YYYY-MM-DD] [--names]
 *   gatewayctl metrics [--textfile[=DIR]]
 *
 * gatewayd(8) runs it for `gatewayd today|studies|show|resend|waiting|
 * assign|release|worklist|quarantine|retry|check|alerts|status --check`, and every
 * GATEWAY_ALERT_INTERVAL_SECONDS for the alerts (GATEWAY_REPORT_INTERVAL_SECONDS
 * for the page, METRICS_INTERVAL_SECONDS for the metrics, when set).
 * It reads the configuration every program reads (lib/base/config) and never
 * creates pacs.db.  What touches uploads is lib/archive/upload_state.  Patient names
 * go to standard output only, and only when it is a terminal (or with
 * --names; the report's page, a file, only with --names); logs never
 * carry them.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "base/base.h"
#include "ops/ops.h"
#include "archive/archive.h"
#include "cloud/cloud.h"
#include "dicomnet/dicomnet.h"
#include "queue/queue.h"
#include "worklist/worklist.h"

/* Nagios plugin exit codes. */
#define NAGIOS_OK	0
#define NAGIOS_WARNING	1
#define NAGIOS_CRITICAL	2
#define NAGIOS_UNKNOWN	3

struct ctl {
	struct config cfg;
	sqlite3 *db;
	int names;		/* patient names may be shown */
	int yes;		/* quarantine delete: do not ask */
	int names_asked;	/* --names given */
	const char *html;	/* report --html FILE */
	const char *textfile;	/* metrics --textfile[=DIR]: DIR, or "" */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: gatewayctl studies [--date YYYY-MM-DD] [--names]\n"
	    "       gatewayctl show [--names] ACCESSION|STUDY_UID\n"
	    "       gatewayctl resend ACCESSION|STUDY_UID | --held\n"
	    "       gatewayctl waiting [--names]\n"
	    "       gatewayctl assign ACCESSION|STUDY_UID WORKLIST_ACCESSION\n"
	    "       gatewayctl release ACCESSION|STUDY_UID\n"
	    "       gatewayctl worklist [--date YYYY-MM-DD] [--names]\n"
	    "       gatewayctl quarantine [release NAME | delete [--yes] NAME]\n"
	    "       gatewayctl retry | check | alerts | --help | --version\n"
	    "       gatewayctl config [--export | --check]\n"
	    "       gatewayctl report --html FILE [--date YYYY-MM-DD] [--names]\n"
	    "       gatewayctl metrics [--textfile[=DIR]]\n"
	    "\n"
	    "  studies   what arrived on a day (default today, local time), per\n"
	    "            study: time, accession, patient, images, views, size,\n"
	    "            previews and uploads to the cloud\n"
	    "  show      one study: each instance and where it went (store,\n"
	    "            preview, cloud)\n"
	    "  resend    queue the study's uploads to the cloud again;\n"
	    "            --held: every HELD image (indexed while the cloud\n"
	    "            was off, or rebuilt by dcmindex --reindex) and every\n"
	    "            event held back while the relay's events were off\n"
	    "  waiting   the studies whose images wait for a worklist item\n"
	    "  assign    send a study's images under another worklist item\n"
	    "  release   stop a study's wait: not sent, kept in the store\n"
	    "  retry     after a fix: every relay job waiting to be tried\n"
	    "            again is due now (relaysend is woken); failed ones\n"
	    "            stay (relaysend --retry-failed)\n"
	    "  worklist  the day's worklist (default today, local time): each\n"
	    "            item's time, accession, state, modality, station,\n"
	    "            patient and when it arrived\n"
	    "  quarantine  the files in quarantine: name, when, sender, reason;\n"
	    "            release NAME: through the normal checks again (stored\n"
	    "            and indexed, or kept with the new reason); delete NAME:\n"
	    "            remove it for good (asks first; --yes does not)\n"
	    "  check     one line for monitoring; exit 0 OK, 1 WARNING,\n"
	    "            2 CRITICAL, 3 UNKNOWN (Nagios plugin codes)\n"
	    "  alerts    queue a gateway.alert event for each condition that\n"
	    "            started or ended: quarantine, failed jobs, low disk\n"
	    "  config    every setting, its value and where it came from;\n"
	    "            --check: warn of unknown or repeated names, refuse\n"
	    "            bad values (exit 78); --export: for gatewayd (sh)\n"
	    "  report    the day's page (default today): alerts, worklist,\n"
	    "            studies with previews and where each image went, the\n"
	    "            cloud queue, the quarantine; one self-contained HTML\n"
	    "            file, written atomically; names only with --names\n"
	    "  metrics   the gateway's state in the Prometheus text format;\n"
	    "            --textfile: into DIR/screening_gateway.prom (DIR\n"
	    "            default METRICS_TEXTFILE_DIR), atomically, for\n"
	    "            node_exporter's textfile collector\n"
	    "\n"
	    "  --date D  the day to list (YYYY-MM-DD)\n"
	    "  --names   show patient names even when output is not a terminal\n"
	    "            (report: on the page)\n"
	    "  --html FILE      report: the page to write\n"
	    "  --textfile[=DIR] metrics: write the textfile collector's file\n"
	    "  --yes     quarantine delete without asking\n"
	    "  -h, --help     this help\n"
	    "  --version      print the version\n"
	    "\n"
	    "Environment: GATEWAY_ENV_FILE, GATEWAY_DATA_DIR, PACS_DB_PATH,\n"
	    "PACS_STORAGE_PATH, WORKLIST_DB_PATH, WORKLIST_TIMEZONE,\n"
	    "GATEWAY_SPOOL_DIR, GATEWAY_QUARANTINE_DIR, PACS_ALLOWED_AETS,\n"
	    "PACS_ALLOWED_HOSTS, GATEWAY_THUMBS_DIR, METRICS_TEXTFILE_DIR,\n"
	    "LOG_LEVEL.  See gatewayctl(8).\n");
}

/* ---------------------------------------------------------- helpers */

static const char *
col(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	return v ? (const char *)v : "";
}

static void
human_size(long long bytes, char *out, size_t outsz)
{
	static const char units[] = "BKMGT";
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, outsz, u == 0 ? "%.0f%c" : v < 10 ? "%.1f%c" :
	    "%.0f%c", v, units[u]);
}

static int
open_db(struct ctl *x)
{
	struct err e = { 0 };

	if (db_open_existing(&x->db, x->cfg.pacs_db_path, &e) == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		return e.code == ENOENT ? EX_NOINPUT : EX_UNAVAILABLE;
	}
	return 0;
}

static int
prepare(struct ctl *x, sqlite3_stmt **st, const char *sql)
{
	struct err e = { 0 };

	if (db_prepare(x->db, st, sql, &e) == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int
step_failed(struct ctl *x, int rc)
{
	if (rc == SQLITE_DONE)
		return 0;
	fprintf(stderr, "gatewayctl: sqlite: %s\n", sqlite3_errmsg(x->db));
	return -1;
}

/* ---------------------------------------------------------- studies */

#define STUDIES_SQL \
	"SELECT st.accession_number, p.patient_name, " \
	"strftime('%H:%M:%S', min(i.received_at), 'localtime'), count(*), " \
	"sum(o.size), " \
	"group_concat(DISTINCT nullif(trim(coalesce(i.laterality, '') || " \
	"coalesce(i.view_position, '')), '')), " \
	"sum(i.thumbnail_status = 'GENERATED'), " \
	"sum(i.thumbnail_status = 'FAILED'), st.study_instance_uid " \
	"FROM instances i JOIN objects o ON o.hash = i.object_hash " \
	"JOIN series se ON se.id = i.series_ref " \
	"JOIN studies st ON st.id = se.study_ref " \
	"JOIN patients p ON p.id = st.patient_ref " \
	"WHERE date(i.received_at, 'localtime') = ?1 " \
	"GROUP BY st.id ORDER BY min(i.received_at)"

/* "4/4 sent", "2/4 sent, 1 failed, 1 retrying, 1 no worklist item",
 * from the study's counts per upload state (lib/archive/upload_state). */
static void
upload_text(const struct upload_state_count *c, int n, char *out,
    size_t outsz)
{
	const struct { long long k; const char *what; } parts[] = {
		{ c->failed, "failed" }, { c->waiting, "retrying" },
		{ c->unmatched, "no worklist item" }, { c->held, "held" },
		{ c->released, "released" }, { c->refused, "refused" },
		{ c->local, "local" },
	};
	int len = snprintf(out, outsz, "%lld/%d sent", c->complete, n);

	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
		if (parts[i].k > 0 && len > 0 && (size_t)len < outsz)
			len += snprintf(out + len, outsz - (size_t)len,
			    ", %lld %s", parts[i].k, parts[i].what);
}

static int
print_study_row(const struct ctl *x, sqlite3_stmt *st)
{
	char size[16], previews[32], upload[128], views[64];
	int n = sqlite3_column_int(st, 3);
	struct upload_state_count c;
	struct err e = { 0 };

	human_size(sqlite3_column_int64(st, 4), size, sizeof size);
	snprintf(previews, sizeof previews, "%d/%d%s",
	    sqlite3_column_int(st, 6), n, sqlite3_column_int(st, 7) > 0 ?
	    " (failed)" : "");
	if (upload_state_count(x->db, col(st, 8), &c, &e) == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		return -1;
	}
	upload_text(&c, n, upload, sizeof upload);
	snprintf(views, sizeof views, "%s", *col(st, 5) ? col(st, 5) : "-");
	for (char *p = views; *p; p++)
		if (*p == ',')
			*p = ' ';
	/* A study without an accession number is named by its UID, which
	 * gatewayctl show and resend take as well. */
	printf("%-8s  %-16s  %-24s %6d  %-20s %7s  %-13s %s\n", col(st, 2),
	    *col(st, 0) ? col(st, 0) : col(st, 8),
	    x->names && *col(st, 1) ? col(st, 1) : "-", n, views, size,
	    previews, upload);
	return 0;
}

static int
cmd_studies(struct ctl *x, const char *date)
{
	sqlite3_stmt *st;
	char today[16];
	time_t now = time(NULL);
	struct tm tm;
	int rc, count = 0, bad = 0;

	if (date == NULL) {
		localtime_r(&now, &tm);
		strftime(today, sizeof today, "%Y-%m-%d", &tm);
		date = today;
	}
	if (prepare(x, &st, STUDIES_SQL) == -1)
		return EX_SOFTWARE;
	sqlite3_bind_text(st, 1, date, -1, SQLITE_TRANSIENT);
	printf("studies received on %s (local time)\n\n", date);
	printf("%-8s  %-16s  %-24s %6s  %-20s %7s  %-13s %s\n", "TIME",
	    "ACCESSION", "PATIENT", "IMAGES", "VIEWS", "SIZE", "PREVIEWS",
	    "UPLOAD");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (print_study_row(x, st) == -1)
			bad = 1;
		count++;
	}
	sqlite3_finalize(st);
	if (step_failed(x, rc) == -1 || bad)
		return EX_SOFTWARE;
	printf("\n%d stud%s\n", count, count == 1 ? "y" : "ies");
	return EX_OK;
}

/* ------------------------------------------------------------- show */


#define STUDY_KEY_SQL \
	"SELECT st.id, st.study_instance_uid, st.accession_number, " \
	"p.patient_name, st.study_date, st.study_time, " \
	"st.study_description, st.upload_accession_number, " \
	"st.upload_released_at FROM studies st " \
	"JOIN patients p ON p.id = st.patient_ref " \
	"WHERE st.accession_number = ?1 OR st.study_instance_uid = ?1 " \
	"ORDER BY st.id"

#define INSTANCES_SQL \
	"SELECT i.sop_instance_uid, se.series_number, i.instance_number, " \
	"trim(coalesce(i.laterality, '') || ' ' || " \
	"coalesce(i.view_position, '')), o.size, i.received_at, " \
	"i.source_aet, o.storage_path, i.thumbnail_status, " \
	"i.thumbnail_path, i.upload_status, i.upload_attempt_count, " \
	"i.uploaded_at, i.upload_error, i.upload_next_attempt_at, " \
	"i.sop_class_uid, i.presentation_intent, i.number_of_frames, " \
	"i.rows, i.columns " \
	"FROM instances i JOIN objects o ON o.hash = i.object_hash " \
	"JOIN series se ON se.id = i.series_ref " \
	"WHERE se.study_ref = ?1 " \
	"ORDER BY se.series_number + 0, i.instance_number + 0, " \
	"i.sop_instance_uid"

/* The mammography classes in words; the others by their UID. */
static const struct {
	const char *uid, *words;
} image_classes[] = {
	{ "1.2.840.10008.5.1.4.1.1.1.2", "mammogram, for presentation" },
	{ "1.2.840.10008.5.1.4.1.1.1.2.1", "mammogram, for processing" },
	{ "1.2.840.10008.5.1.4.1.1.13.1.3", "tomosynthesis" },
	{ "1.2.840.10008.5.1.4.1.1.13.1.4",
	    "breast projection, for presentation" },
	{ "1.2.840.10008.5.1.4.1.1.13.1.5",
	    "breast projection, for processing" },
};

/* "    image:   tomosynthesis, 60 frames of 2457x1890" */
static void
print_image_line(sqlite3_stmt *st)
{
	const char *uid = col(st, 15), *words = NULL;
	int frames = sqlite3_column_int(st, 17);

	for (size_t i = 0; i < sizeof image_classes / sizeof image_classes[0];
	    i++)
		if (strcmp(uid, image_classes[i].uid) == 0)
			words = image_classes[i].words;
	if (words != NULL)
		printf("    image:   %s", words);
	else
		printf("    image:   SOP class %s%s%s", *uid ? uid : "-",
		    *col(st, 16) ? ", " : "", col(st, 16));
	printf(", %d frame%s", frames > 1 ? frames : 1, frames > 1 ? "s" : "");
	if (sqlite3_column_int(st, 18) > 0)
		printf(" of %dx%d", sqlite3_column_int(st, 18),
		    sqlite3_column_int(st, 19));	/* rows x columns */
	printf("\n");
}

static void
print_instance(const struct ctl *x, sqlite3_stmt *st)
{
	char size[16];

	human_size(sqlite3_column_int64(st, 4), size, sizeof size);
	printf("\n  instance %s\n", col(st, 0));
	printf("    series %s, number %s, view %s, %s, received %s from %s\n",
	    *col(st, 1) ? col(st, 1) : "-", *col(st, 2) ? col(st, 2) : "-",
	    *col(st, 3) ? col(st, 3) : "-", size, col(st, 5),
	    *col(st, 6) ? col(st, 6) : "-");
	print_image_line(st);
	printf("    store:   %s/%s\n", x->cfg.storage_path, col(st, 7));
	printf("    preview: %s", col(st, 8));
	if (*col(st, 9))
		printf(" %s/%s", x->cfg.thumbs_dir,
		    col(st, 9));
	printf("\n");
	printf("    cloud:   %s, %d attempt%s", *col(st, 10) ? col(st, 10) :
	    "PENDING", sqlite3_column_int(st, 11),
	    sqlite3_column_int(st, 11) == 1 ? "" : "s");
	if (*col(st, 12))
		printf(", uploaded %s", col(st, 12));
	if (*col(st, 14))
		printf(", next attempt %s", col(st, 14));
	if (*col(st, 13))
		printf(", error: %s", col(st, 13));
	printf("\n");
}

static int
show_study(struct ctl *x, sqlite3_stmt *study)
{
	sqlite3_stmt *st;
	int rc;

	printf("study %s\n", col(study, 1));
	printf("  accession %s, patient %s, date %s %s, %s\n",
	    *col(study, 2) ? col(study, 2) : "-",
	    x->names && *col(study, 3) ? col(study, 3) : "-",
	    *col(study, 4) ? col(study, 4) : "-", col(study, 5),
	    *col(study, 6) ? col(study, 6) : "-");
	if (*col(study, 7))
		printf("  sent under worklist item %s (assigned by hand)\n",
		    col(study, 7));
	if (*col(study, 8))
		printf("  released by hand %s: not sent\n", col(study, 8));
	if (prepare(x, &st, INSTANCES_SQL) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, sqlite3_column_int64(study, 0));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		print_instance(x, st);
	sqlite3_finalize(st);
	return step_failed(x, rc);
}

static int
cmd_show(struct ctl *x, const char *key)
{
	sqlite3_stmt *st;
	int rc, found = 0, bad = 0;

	if (prepare(x, &st, STUDY_KEY_SQL) == -1)
		return EX_SOFTWARE;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (found++)
			printf("\n");
		if (show_study(x, st) == -1)
			bad = 1;
	}
	sqlite3_finalize(st);
	if (step_failed(x, rc) == -1 || bad)
		return EX_SOFTWARE;
	if (!found) {
		fprintf(stderr, "gatewayctl: no study with accession number "
		    "or Study Instance UID %s\n", key);
		return EX_NOINPUT;
	}
	return EX_OK;
}

/* ------------------------------------------ resend, assign, release */

static int
no_study(const char *key)
{
	fprintf(stderr, "gatewayctl: no study with accession number or Study "
	    "Instance UID %s\n", key);
	return EX_NOINPUT;
}

/* The relay spool as it is (never created). */
static int
relay_spool(struct ctl *x, struct spool *relay)
{
	char dir[PATH_MAX];
	struct err e = { 0 };

	if (config_spool_path(&x->cfg, "relay", dir, sizeof dir, &e) == -1 ||
	    spool_open(relay, dir, 0, &e) == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		return EX_UNAVAILABLE;
	}
	return 0;
}

/* The relay spool, for commands that queue uploads: only when the cloud
 * takes images (else nothing would ever send them). */
static int
open_relay(struct ctl *x, struct spool *relay)
{
	if (!config_cloud_images()) {
		fprintf(stderr, "gatewayctl: the cloud is not configured "
		    "(CLOUD_API_ENDPOINT): nothing would send the images; "
		    "they stay in the store\n");
		return EX_CONFIG;
	}
	return relay_spool(x, relay);
}

static int
failed(const char *what, const char *key, const struct err *e)
{
	char q[600];

	log_error(what, "key=%s error=%s", log_quote(key ? key : "", q, 128),
	    log_quote(e->msg, q + 128, 472));
	fprintf(stderr, "gatewayctl: %s: %s\n", what, e->msg);
	return EX_SOFTWARE;
}

/* 0 when KEY names a study, else the exit status (said on stderr). */
static int
find_study(struct ctl *x, const char *key, const char *what)
{
	struct err e = { 0 };
	int n = upload_state_studies(x->db, key, &e);

	return n > 0 ? 0 : n == 0 ? no_study(key) : failed(what, key, &e);
}

/*
 * resend --held: every HELD image's upload when the Manage API is
 * configured, and every event held back while the relay's events were
 * off when they are.
 */
static int
resend_held(struct ctl *x)
{
	struct spool relay;
	struct err e = { 0 };
	int images = config_cloud_images(), events = config_cloud_events();
	int n = 0, ev = 0, rc;

	if (!images && !events) {
		fprintf(stderr, "gatewayctl: the cloud is not configured "
		    "(CLOUD_API_ENDPOINT, AZURE_RELAY_*): nothing would send "
		    "the images or their events; they stay in the store\n");
		return EX_CONFIG;
	}
	if ((rc = relay_spool(x, &relay)) != 0)
		return rc;
	if (images)
		n = upload_state_queue(x->db, &relay, UPLOAD_STATE_HELD, NULL,
		    &e);
	if (n != -1 && events)
		ev = event_queue_held(x->db, &relay,
		    x->cfg.thumbs_dir, &e);
	spool_close(&relay);
	if (n == -1 || ev == -1)
		return failed("resend failed", NULL, &e);
	log_info("held uploads and events queued", "instances=%d events=%d",
	    n, ev);
	if (images)
		printf("%d upload%s queued (every HELD image)\n", n,
		    n == 1 ? "" : "s");
	else
		printf("no upload queued: CLOUD_API_ENDPOINT is not set (HELD "
		    "images stay held)\n");
	if (events)
		printf("%d event%s queued (held back while the relay's events "
		    "were off)\n", ev, ev == 1 ? "" : "s");
	return EX_OK;
}

/* resend KEY | --held */
static int
cmd_resend(struct ctl *x, const char *key)
{
	struct spool relay;
	struct err e = { 0 };
	char q[600];
	int n, rc;

	if (key == NULL)
		return resend_held(x);
	if ((rc = find_study(x, key, "resend failed")) != 0)
		return rc;
	if ((rc = open_relay(x, &relay)) != 0)
		return rc;
	n = upload_state_queue(x->db, &relay, UPLOAD_STATE_STUDY_ALL, key, &e);
	spool_close(&relay);
	if (n == -1)
		return failed("resend failed", key, &e);
	log_info("uploads queued again", "key=%s instances=%d",
	    log_quote(key, q, sizeof q), n);
	printf("%d upload%s queued again for %s\n", n, n == 1 ? "" : "s",
	    key);
	return EX_OK;
}

/* assign KEY ACCESSION: upload under that worklist item. */
static int
cmd_assign(struct ctl *x, const char *key, const char *accession)
{
	struct worklist *w;
	struct worklist_item item;
	struct spool relay;
	struct err e = { 0 };
	char q[600];
	int n, rc;

	if ((rc = find_study(x, key, "assign failed")) != 0)
		return rc;
	if (worklist_open_existing(&w, x->cfg.worklist_db_path, &e) == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		return e.code == ENOENT ? EX_NOINPUT : EX_UNAVAILABLE;
	}
	rc = worklist_get(w, accession, &item, &e);
	worklist_close(w);
	if (rc == -1)
		return failed("assign failed", key, &e);
	if (rc == WL_NOT_FOUND || item.source_message_id[0] == '\0') {
		fprintf(stderr, "gatewayctl: no worklist item with a source "
		    "message id has accession number %s\n", accession);
		return EX_NOINPUT;
	}
	if ((rc = open_relay(x, &relay)) != 0)
		return rc;
	n = upload_state_assign(x->db, &relay, key, accession, &e);
	spool_close(&relay);
	if (n == -1)
		return failed("assign failed", key, &e);
	log_info("study assigned to a worklist item by hand", "key=%s "
	    "accession_number=%s instances=%d", log_quote(key, q, 300),
	    log_quote(accession, q + 300, 300), n);
	printf("%s goes under worklist item %s: %d upload%s queued\n", key,
	    accession, n, n == 1 ? "" : "s");
	return EX_OK;
}

/* release KEY: stop waiting; not sent, kept. */
static int
cmd_release(struct ctl *x, const char *key)
{
	struct err e = { 0 };
	char q[600];
	int n;

	if ((n = find_study(x, key, "release failed")) != 0)
		return n;
	if ((n = upload_state_release(x->db, key, &e)) == -1)
		return failed("release failed", key, &e);
	log_info("study released by hand: not sent", "key=%s instances=%d",
	    log_quote(key, q, sizeof q), n);
	printf("%s released: %d image%s not sent (kept in the store; "
	    "gatewayctl resend %s sends them)\n", key, n, n == 1 ? "" : "s",
	    key);
	return EX_OK;
}

/* ------------------------------------------------------------ retry */

/* retry: every relay job waiting for a later attempt is due now, and
 * relaysend is woken (lib/cloud/job); failed jobs stay failed. */
static int
cmd_retry(struct ctl *x)
{
	struct spool relay;
	struct err e = { 0 };
	int waiting = 0, failed_jobs, rc;

	if (!config_cloud_images() && !config_cloud_events()) {
		fprintf(stderr, "gatewayctl: the cloud is not configured "
		    "(CLOUD_API_ENDPOINT, AZURE_RELAY_*): nothing sends the "
		    "relay's jobs\n");
		return EX_CONFIG;
	}
	if ((rc = relay_spool(x, &relay)) != 0)
		return rc;
	rc = job_retry_now(&relay, &waiting, &e);
	failed_jobs = rc == 0 ? spool_count(&relay, "failed", &e) : -1;
	spool_close(&relay);
	if (rc == -1 || failed_jobs == -1)
		return failed("retry failed", NULL, &e);
	log_info("retry asked: every waiting relay job is due now",
	    "waiting=%d failed=%d", waiting, failed_jobs);
	printf("%d waiting job%s due now: relaysend woken\n", waiting,
	    waiting == 1 ? "" : "s");
	if (failed_jobs > 0)
		printf("%d failed job%s left as %s (gatewayd exec relaysend "
		    "--retry-failed queues them again)\n", failed_jobs,
		    failed_jobs == 1 ? "" : "s", failed_jobs == 1 ? "it is" :
		    "they are");
	return EX_OK;
}

/* ---------------------------------------------------------- waiting */

static int
print_waiting(const struct upload_state_study *s, void *arg)
{
	const struct ctl *x = arg;

	printf("%-24s  %-16s  %-24s %6lld  %s%s%s\n", s->oldest,
	    *s->accession_number ? s->accession_number : "-",
	    x->names && *s->patient_name ? s->patient_name : "-", s->images,
	    s->study_instance_uid, *s->assigned ? "  assigned " : "",
	    s->assigned);
	return 0;
}

/* A refused study: as print_waiting, then why. */
static int
print_refused(const struct upload_state_study *s, void *arg)
{
	print_waiting(s, arg);
	printf("%-24s  %s\n", "", s->error);
	return 0;
}

/* The studies in state s: the heading, one line each, the totals. */
static int
list_studies(struct ctl *x, enum upload_state s, const char *heading,
    long long images, long long studies, struct err *e)
{
	printf("%s\n\n", heading);
	printf("%-24s  %-16s  %-24s %6s  %s\n", "SINCE", "ACCESSION",
	    "PATIENT", "IMAGES", "STUDY");
	if (upload_state_waiting(x->db, s, s == UPLOAD_REFUSED ?
	    print_refused : print_waiting, x, e) == -1)
		return -1;
	printf("\n%lld image%s in %lld stud%s\n", images,
	    images == 1 ? "" : "s", studies, studies == 1 ? "y" : "ies");
	return 0;
}

/* The studies waiting for a worklist item, then (when there are any)
 * those the Manage API refused. */
static int
cmd_waiting(struct ctl *x)
{
	struct upload_state_count c;
	struct err e = { 0 };

	if (upload_state_count(x->db, NULL, &c, &e) == -1 ||
	    list_studies(x, UPLOAD_UNMATCHED, "studies whose images wait for "
	    "a worklist item", c.unmatched, c.unmatched_studies, &e) == -1)
		return failed("waiting failed", NULL, &e);
	if (c.unmatched > 0)
		printf("gatewayctl assign ACCESSION|STUDY_UID "
		    "WORKLIST_ACCESSION sends a study under that worklist "
		    "item;\ngatewayctl release ACCESSION|STUDY_UID stops its "
		    "wait (kept, not sent).\n");
	if (c.refused == 0)
		return EX_OK;
	printf("\n");
	if (list_studies(x, UPLOAD_REFUSED, "studies whose images the Manage "
	    "API refused (403: the worklist item is not today's, not sent or "
	    "confirmed, or not this gateway's)", c.refused, c.refused_studies,
	    &e) == -1)
		return failed("waiting failed", NULL, &e);
	printf("gatewayctl resend ACCESSION|STUDY_UID sends a study again "
	    "once the cloud takes it;\ngatewayctl assign ACCESSION|STUDY_UID "
	    "WORKLIST_ACCESSION sends it under another worklist item;\n"
	    "gatewayctl release ACCESSION|STUDY_UID gives it up (kept, not "
	    "sent).\n");
	return EX_OK;
}

/* --------------------------------------------------------- worklist */

struct wl_list {
	const struct ctl *x;
	int n[4];		/* scheduled, in progress, completed, discont. */
};

/* When an item arrived (created_at, UTC) as local "YYYY-MM-DD HH:MM". */
static void
arrived(const char *created_at, char *out, size_t outsz)
{
	struct tm tm = { 0 };
	time_t t;

	if (strptime(created_at, "%Y-%m-%dT%H:%M:%S", &tm) == NULL ||
	    (t = timegm(&tm)) == (time_t)-1 || localtime_r(&t, &tm) == NULL ||
	    strftime(out, outsz, "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(out, outsz, "-");
}

static int
print_item(void *arg, struct worklist_item *it, struct err *e)
{
	static const char *const states[] = { WL_SCHEDULED, WL_IN_PROGRESS,
	    WL_COMPLETED, WL_DISCONTINUED };
	struct wl_list *l = arg;
	const char *t = it->scheduled_time;
	char when[8], received[32];

	(void)e;
	for (int i = 0; i < 4; i++)
		l->n[i] += strcmp(it->status, states[i]) == 0;
	snprintf(when, sizeof when, "%.2s:%.2s", t, strlen(t) >= 4 ? t + 2 :
	    "00");
	arrived(it->created_at, received, sizeof received);
	printf("%-5s  %-16s  %-12s  %-8s  %-16s  %-24s  %s\n", when,
	    it->accession_number, it->status, it->modality,
	    *it->scheduled_station_aet ? it->scheduled_station_aet : "any",
	    l->x->names && *it->patient_name ? it->patient_name : "-",
	    received);
	return 0;
}

/* worklist [--date D]: the day's items and their states. */
static int
cmd_worklist(struct ctl *x, const char *date)
{
	struct worklist_site site;
	struct wl_list l = { x, { 0 } };
	struct worklist *w;
	struct err e = { 0 };
	char day[9];
	int n;

	if (worklist_site_init(&site, &e) == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		return EX_CONFIG;
	}
	if (date != NULL)
		snprintf(day, sizeof day, "%.4s%.2s%.2s", date, date + 5,
		    date + 8);
	else
		worklist_today(day);
	if (worklist_open_existing(&w, x->cfg.worklist_db_path, &e) == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		return e.code == ENOENT ? EX_NOINPUT : EX_UNAVAILABLE;
	}
	worklist_set_site(w, &site);
	printf("worklist for %.4s-%.2s-%.2s (%s)\n\n", day, day + 4, day + 6,
	    site.timezone[0] ? site.timezone : "local time");
	printf("%-5s  %-16s  %-12s  %-8s  %-16s  %-24s  %s\n", "TIME",
	    "ACCESSION", "STATE", "MODALITY", "STATION", "PATIENT",
	    "ARRIVED");
	n = worklist_each(w, day, 1, print_item, &l, &e);
	worklist_close(w);
	if (n == -1)
		return failed("worklist failed", NULL, &e);
	if (n == 0)
		printf("\nno worklist item is scheduled on this day: has the "
		    "clinic's list arrived?\n(gatewayd status shows the "
		    "relay; mwlsync import or mwlsync add enter items by "
		    "hand)\n");
	else
		printf("\n%d item%s: %d scheduled, %d in progress, %d "
		    "completed, %d discontinued\n", n, n == 1 ? "" : "s",
		    l.n[0], l.n[1], l.n[2], l.n[3]);
	return EX_OK;
}

/* ------------------------------------------------------------ check */

/* Problems that mean the gateway is not doing its job now. */
static int
is_critical(const char *problem)
{
	return strstr(problem, "not running") != NULL ||
	    strstr(problem, "not answering") != NULL ||
	    strncmp(problem, "disk:", 5) == 0;
}

static int
cmd_check(struct ctl *x)
{
	static const char *const names[] = { "OK", "WARNING", "CRITICAL",
	    "UNKNOWN" };
	json_t *r, *p;
	struct err e = { 0 };
	size_t i;
	int code = NAGIOS_OK;

	if (access(x->cfg.data_dir, R_OK | X_OK) == -1) {
		printf("GATEWAY UNKNOWN - cannot read %s: %s\n",
		    x->cfg.data_dir, strerror(errno));
		return NAGIOS_UNKNOWN;
	}
	if (health_report(&x->cfg, &r, &e) == -1) {
		printf("GATEWAY UNKNOWN - %s\n", e.msg);
		return NAGIOS_UNKNOWN;
	}
	json_array_foreach(json_object_get(r, "problems"), i, p) {
		int c = is_critical(json_string_value(p)) ? NAGIOS_CRITICAL :
		    NAGIOS_WARNING;
		code = c > code ? c : code;
	}
	printf("GATEWAY %s - ", names[code]);
	if (code == NAGIOS_OK)
		printf("running");
	json_array_foreach(json_object_get(r, "problems"), i, p)
		printf("%s%s", i ? "; " : "", json_string_value(p));
	printf(" | failed_jobs=%lld quarantine=%lld\n",
	    (long long)json_integer_value(json_object_get(r, "failed_jobs")),
	    (long long)json_integer_value(json_object_get(r, "quarantine")));
	json_decref(r);
	return code;
}

/* ----------------------------------------------------------- alerts */

struct alert {
	const char *name;	/* gateway.alert data.alert */
	const char *severity;
	int active;
	long long value;
	char summary[128];
};

static void
find_alerts(json_t *r, struct alert a[3])
{
	long long q = json_integer_value(json_object_get(r, "quarantine"));
	long long f = json_integer_value(json_object_get(r, "failed_jobs"));
	json_t *disk = json_object_get(r, "disk");

	a[0] = (struct alert){ "quarantine", "warning", q > 0, q, "" };
	snprintf(a[0].summary, sizeof a[0].summary,
	    "%lld file%s in quarantine", q, q == 1 ? "" : "s");
	a[1] = (struct alert){ "failed_jobs", "warning", f > 0, f, "" };
	snprintf(a[1].summary, sizeof a[1].summary, "%lld failed job%s", f,
	    f == 1 ? "" : "s");
	a[2] = (struct alert){ "low_disk", "critical",
	    json_is_false(json_object_get(disk, "ok")),
	    json_integer_value(json_object_get(disk, "free_bytes")), "" };
	snprintf(a[2].summary, sizeof a[2].summary, "%.1f %% disk free",
	    json_real_value(json_object_get(disk, "free_percent")));
}

/* run/alert.NAME exists while the condition is raised. */
static int
marker_path(const struct ctl *x, const char *name, char *out, size_t outsz)
{
	return snprintf(out, outsz, "%s/run/alert.%s", x->cfg.data_dir, name) <
	    (int)outsz ? 0 : -1;
}

/* Queue alert-NAME (a waiting one of the same name is replaced; none
 * while the cloud's events are off), then record the new state. */
static int
send_alert(struct ctl *x, struct spool *relay, const struct alert *a,
    const char *marker, struct err *e)
{
	struct event_alert ev = { a->name, a->active, a->severity,
	    a->summary, a->value, x->cfg.pacs_aet, x->cfg.pacs_port, NULL,
	    NULL };
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

static int
alerts_changed(struct ctl *x, struct spool *relay, json_t *r)
{
	char marker[PATH_MAX];
	struct alert a[3];
	struct err e = { 0 };
	int failed = 0;

	find_alerts(r, a);
	for (int i = 0; i < 3; i++) {
		if (marker_path(x, a[i].name, marker, sizeof marker) == -1)
			return -1;
		if (a[i].active == (access(marker, F_OK) == 0))
			continue;
		if (send_alert(x, relay, &a[i], marker, &e) == -1) {
			log_err("alert not queued", &e);
			failed = 1;
		}
	}
	return failed ? -1 : 0;
}

static int
cmd_alerts(struct ctl *x)
{
	char dir[PATH_MAX];
	struct spool relay;
	struct err e = { 0 };
	json_t *r;
	int rc;

	if (config_spool_path(&x->cfg, "relay", dir, sizeof dir, &e) == -1 ||
	    spool_open(&relay, dir, 0, &e) == -1) {
		log_err("cannot open the relay spool", &e);
		return EX_UNAVAILABLE;
	}
	if (health_report(&x->cfg, &r, &e) == -1) {
		log_err("no health report", &e);
		spool_close(&relay);
		return EX_SOFTWARE;
	}
	rc = alerts_changed(x, &relay, r);
	json_decref(r);
	spool_close(&relay);
	return rc == 0 ? EX_OK : EX_IOERR;
}

/* ------------------------------------------------------- quarantine */

static int
show_entry(const struct quarantine_record *r, void *arg)
{
	char size[16];

	(void)arg;
	human_size(r->size, size, sizeof size);
	printf("%s  (%s, received %s from %s at %s)\n  reason: %s\n",
	    r->name, size, r->received_at[0] ? r->received_at : "?",
	    r->calling_aet[0] ? r->calling_aet : "?",
	    r->peer[0] ? r->peer : "?", r->reason);
	if (r->study_instance_uid[0] || r->accession_number[0])
		printf("  study %s, accession %s\n",
		    r->study_instance_uid[0] ? r->study_instance_uid : "?",
		    r->accession_number[0] ? r->accession_number : "?");
	if (r->released_at[0])
		printf("  released %s, quarantined again\n", r->released_at);
	return 0;
}

static int
quarantine_list_all(struct ctl *x)
{
	struct quarantine q;
	struct err e = { 0 };
	int n;

	if (quarantine_open(&q, x->cfg.quarantine_dir, &e) == -1 ||
	    (n = quarantine_list(&q, show_entry, NULL, &e)) == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		return EX_IOERR;
	}
	if (n == 0)
		printf("quarantine: empty (%s)\n", x->cfg.quarantine_dir);
	else
		printf("%d file%s in quarantine (%s)\n", n, n == 1 ? "" : "s",
		    x->cfg.quarantine_dir);
	return EX_OK;
}

/* The entry's record, or an exit code (and a message). */
static int
find_entry(const struct quarantine *q, const char *name,
    struct quarantine_record *r)
{
	struct err e = { 0 };

	if (quarantine_read(q, name, r, &e) == 0)
		return 0;
	fprintf(stderr, "gatewayctl: %s\n", e.msg);
	return e.code == ENOENT ? EX_NOINPUT : e.code == EINVAL ? EX_USAGE :
	    EX_IOERR;
}

/* An entry through the normal path again: the sender against
 * PACS_ALLOWED_AETS/_HOSTS as they are now, then lib/archive/ingest. */
static int
quarantine_release(struct ctl *x, const char *name)
{
	struct ingest g;
	struct ingest_result *r = NULL;
	struct quarantine_record rec;
	struct senders senders;
	struct err e = { 0 };
	char path[PATH_MAX], why[200], q[1200];
	int rc;

	if (ingest_open(&g, &x->cfg, &e) == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		return EX_CANTCREAT;
	}
	if ((rc = find_entry(&g.quarantine, name, &rec)) != 0)
		goto out;
	if (senders_from_env(&senders, &e) == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		rc = EX_CONFIG;
		goto out;
	}
	struct ingest_arrival a = { path, rec.calling_aet, rec.called_aet,
	    rec.peer, senders_refusal(&senders, rec.calling_aet, rec.peer,
	    why, sizeof why), name };
	if (quarantine_path(&g.quarantine, name, path, sizeof path, &e) == -1 ||
	    (r = malloc(sizeof *r)) == NULL ||
	    ingest_file(&g, &a, r, &e) == -1) {
		fprintf(stderr, "gatewayctl: %s: %s\n", name,
		    r == NULL ? "out of memory" : e.msg);
		rc = EX_IOERR;
		goto out;
	}
	if (r->outcome == INGEST_STORED) {
		log_info("released from quarantine", "entry=%s "
		    "sop_instance_uid=%s object=%.16s calling_aet=%s", name,
		    r->attrs.sop_instance_uid, r->hash,
		    log_quote(rec.calling_aet, why, sizeof why));
		printf("%s: stored (object %s), queued for indexing\n", name,
		    r->hash);
	} else {
		log_warn("release refused: kept in quarantine", "entry=%s "
		    "reason=%s", name, log_quote(r->q.reason, q, sizeof q));
		printf("%s: still refused, kept in quarantine: %s\n", name,
		    r->q.reason);
		rc = EX_DATAERR;
	}
out:
	free(r);
	ingest_close(&g);
	return rc;
}

/* 1 when the operator answers yes on stdin. */
static int
confirmed(const char *name)
{
	char line[32];

	fprintf(stderr, "Delete %s and its record for good? [y/N] ", name);
	fflush(stderr);
	if (fgets(line, sizeof line, stdin) == NULL) {
		fputc('\n', stderr);
		return 0;
	}
	line[strcspn(line, "\r\n")] = '\0';
	return strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
}

static int
quarantine_delete(struct ctl *x, const char *name)
{
	struct quarantine q;
	struct quarantine_record rec;
	struct err e = { 0 };
	char why[1200];
	int rc;

	if (quarantine_open(&q, x->cfg.quarantine_dir, &e) == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		return EX_IOERR;
	}
	if ((rc = find_entry(&q, name, &rec)) != 0)
		return rc;
	show_entry(&rec, NULL);
	if (!x->yes && !confirmed(name)) {
		fprintf(stderr, "gatewayctl: nothing deleted\n");
		return EX_NOPERM;
	}
	if (quarantine_remove(&q, name, &e) == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		return EX_IOERR;
	}
	log_info("deleted from quarantine", "entry=%s reason=%s", name,
	    log_quote(rec.reason, why, sizeof why));
	printf("%s: deleted\n", name);
	return EX_OK;
}

static int
cmd_quarantine(struct ctl *x, int argc, char **argv)
{
	if (argc == 0)
		return quarantine_list_all(x);
	if (argc == 2 && strcmp(argv[0], "release") == 0)
		return quarantine_release(x, argv[1]);
	if (argc == 2 && strcmp(argv[0], "delete") == 0)
		return quarantine_delete(x, argv[1]);
	usage(stderr);
	return EX_USAGE;
}

/* ----------------------------------------------------------- report */

/* report --html FILE: the day's page (lib/ops report_html), names only
 * with --names: a file is no terminal. */
static int
cmd_report(struct ctl *x, const char *date)
{
	struct worklist_site site;
	struct report_html_opts o = { date, x->names_asked,
	    x->cfg.thumbs_dir };
	struct err e = { 0 };

	if (x->html == NULL || *x->html == '\0') {
		fprintf(stderr, "gatewayctl: report needs --html FILE\n");
		return EX_USAGE;
	}
	/* The site's zone: the day and every time on the page. */
	if (worklist_site_init(&site, &e) == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		return EX_CONFIG;
	}
	if (report_html_write(&x->cfg, &o, x->html, &e) == -1) {
		log_err("report not written", &e);
		return e.code == ENOMEM ? EX_OSERR : EX_CANTCREAT;
	}
	return EX_OK;
}

/* ---------------------------------------------------------- metrics */

/* metrics [--textfile[=DIR]]: on stdout, or into DIR (default
 * METRICS_TEXTFILE_DIR) for node_exporter's textfile collector. */
static int
cmd_metrics(struct ctl *x)
{
	const char *dir = x->textfile;
	struct worklist_site site;
	struct err e = { 0 };
	char *text;
	long len;

	/* Today's worklist is the site's day. */
	if (worklist_site_init(&site, &e) == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		return EX_CONFIG;
	}
	if (dir == NULL) {
		if ((len = metrics_format(&x->cfg, &text, &e)) == -1) {
			fprintf(stderr, "gatewayctl: %s\n", e.msg);
			return EX_OSERR;
		}
		len = (long)fwrite(text, 1, (size_t)len, stdout) == len &&
		    fflush(stdout) != EOF ? 0 : -1;
		free(text);
		return len == 0 ? EX_OK : EX_IOERR;
	}
	if (*dir == '\0' && (dir = config_env("METRICS_TEXTFILE_DIR")) == NULL) {
		fprintf(stderr, "gatewayctl: metrics --textfile needs a "
		    "directory: --textfile=DIR or METRICS_TEXTFILE_DIR\n");
		return EX_USAGE;
	}
	if (metrics_write_textfile(&x->cfg, dir, &e) == -1) {
		log_err("metrics not written", &e);
		return EX_CANTCREAT;
	}
	return EX_OK;
}

/* ------------------------------------------------------------- main */

static int
valid_date(const char *s)
{
	struct tm tm = { 0 };
	const char *end = strptime(s, "%Y-%m-%d", &tm);

	return end != NULL && *end == '\0' && strlen(s) == 10;
}

/* Commands over pacs.db: the name, its arguments, the handler. */
static int
run_db(struct ctl *x, const char *cmd, int argc, char **argv,
    const char *date)
{
	int rc;

	if ((rc = open_db(x)) != 0)
		return rc;
	if (strcmp(cmd, "studies") == 0)
		rc = cmd_studies(x, date);
	else if (strcmp(cmd, "show") == 0)
		rc = cmd_show(x, argv[0]);
	else if (strcmp(cmd, "resend") == 0)
		rc = cmd_resend(x, argc ? argv[0] : NULL);
	else if (strcmp(cmd, "waiting") == 0)
		rc = cmd_waiting(x);
	else if (strcmp(cmd, "assign") == 0)
		rc = cmd_assign(x, argv[0], argv[1]);
	else
		rc = cmd_release(x, argv[0]);
	db_close(x->db);
	return rc;
}

static int
run(struct ctl *x, const char *cmd, int argc, char **argv,
    const char *date, int held)
{
	static const struct { const char *name; int argc; } db_cmds[] = {
		{ "studies", 0 }, { "show", 1 }, { "resend", 1 },
		{ "waiting", 0 }, { "assign", 2 }, { "release", 1 },
	};

	if ((x->html != NULL && strcmp(cmd, "report") != 0) ||
	    (x->textfile != NULL && strcmp(cmd, "metrics") != 0)) {
		fprintf(stderr, "gatewayctl: --html goes with report, "
		    "--textfile with metrics\n");
		return EX_USAGE;
	}
	if (held && !(strcmp(cmd, "resend") == 0 && argc == 0)) {
		fprintf(stderr, "gatewayctl: --held goes with resend alone\n");
		return EX_USAGE;
	}
	if (strcmp(cmd, "check") == 0 && argc == 0)
		return cmd_check(x);
	if (strcmp(cmd, "alerts") == 0 && argc == 0)
		return cmd_alerts(x);
	if (strcmp(cmd, "retry") == 0 && argc == 0)
		return cmd_retry(x);
	if (strcmp(cmd, "worklist") == 0 && argc == 0)
		return cmd_worklist(x, date);
	if (strcmp(cmd, "quarantine") == 0)
		return cmd_quarantine(x, argc, argv);
	if (strcmp(cmd, "report") == 0 && argc == 0)
		return cmd_report(x, date);
	if (strcmp(cmd, "metrics") == 0 && argc == 0)
		return cmd_metrics(x);
	for (size_t i = 0; i < sizeof db_cmds / sizeof db_cmds[0]; i++)
		if (strcmp(cmd, db_cmds[i].name) == 0 &&
		    argc == db_cmds[i].argc - held)
			return run_db(x, cmd, argc, argv, date);
	usage(stderr);
	return EX_USAGE;
}

/* config: the settings table (lib/ops configview).  Before config_load():
 * what the environment holds is told apart from what the file adds. */
static int
cmd_config(const char *mode)
{
	struct err e = { 0 };
	int rc;

	if (mode == NULL)
		rc = configview_print(stdout, &e);
	else if (config_env_load(&e) == -1)
		rc = -1;
	else {
		log_init("gatewayctl");	/* LOG_LEVEL may come from the file */
		rc = strcmp(mode, "export") == 0 ?
		    configview_export(stdout, &e) : configview_check(&e);
	}
	if (rc == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		return e.code == EACCES ? EX_NOPERM : EX_CONFIG;
	}
	if (fflush(stdout) == EOF)
		return EX_IOERR;
	return rc > 0 ? EX_CONFIG : EX_OK;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "date", required_argument, NULL, 'd' },
		{ "names", no_argument, NULL, 'n' },
		{ "held", no_argument, NULL, 'H' },
		{ "export", no_argument, NULL, 'E' },
		{ "check", no_argument, NULL, 'C' },
		{ "yes", no_argument, NULL, 'y' },
		{ "html", required_argument, NULL, 'R' },
		{ "textfile", optional_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl x = { .names = isatty(STDOUT_FILENO) };
	struct err e = { 0 };
	const char *date = NULL, *config_mode = NULL;
	int c, held = 0;

	log_init("gatewayctl");
	/* GNU getopt permutes: options may follow the command. */
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (!valid_date(optarg)) {
				fprintf(stderr, "gatewayctl: --date takes "
				    "YYYY-MM-DD, not %s\n", optarg);
				return EX_USAGE;
			}
			date = optarg;
			break;
		case 'n': x.names = x.names_asked = 1; break;
		case 'R': x.html = optarg; break;
		case 'T': x.textfile = optarg ? optarg : ""; break;
		case 'H': held = 1; break;
		case 'E': config_mode = "export"; break;
		case 'C': config_mode = "check"; break;
		case 'y': x.yes = 1; break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("gatewayctl %s\n", GW_VERSION);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (strcmp(argv[optind], "config") == 0) {
		if (optind + 1 < argc) {
			fprintf(stderr, "gatewayctl: config takes no "
			    "arguments\n");
			return EX_USAGE;
		}
		return cmd_config(config_mode);
	}
	if (config_load(&x.cfg, &e) == -1) {
		fprintf(stderr, "gatewayctl: %s\n", e.msg);
		return EX_CONFIG;
	}
	log_init("gatewayctl");	/* LOG_LEVEL may come from gateway.env */
	return run(&x, argv[optind], argc - optind - 1, argv + optind + 1,
	    date, held);
}
