/*
 * relaysend: deliver the relay spool to the cloud: images uploaded to the
 * Manage API over HTTPS (PROTOCOL.md §5, lib/cloud/imagesend), events sent over
 * Azure Relay as a WebSocket sender (§3-4, lib/cloud/eventsend).
 *
 *   relaysend [--once] [--jobs N] [--no-match wait|report]
 *             [--max-send-rate B] [--upload-mode M]
 *   relaysend --retry-failed
 *
 * Job kinds: "image" (written by dcmindex, or by relaylisten for an
 * images.request) and "image_failure" (its own failure reports) when
 * CLOUD_API_ENDPOINT is set; "study.image_received" (dcmthumb) and
 * "mpps.status_update" (mwlscp's outbox) when the events hybrid
 * connection is configured.  Kinds that are off stay in new/ untouched.
 * Which job goes next is lib/cloud/sendqueue's: priority=high first, then
 * round robin over studies.  With --jobs N, N worker processes
 * (lib/queue/workers) share the spool; each job name belongs to exactly one
 * worker, so two workers never hold the same job.
 *
 * Delivery is at least once; every step is settled by lib/cloud/job
 * (done, re-enqueued with back-off that survives a restart, parked in
 * failed/ with the reason, or refused), by the Manage API's answers as
 * production gives them (lib/cloud/imagesend), and pacs.db mirrors the
 * uploads in instances.upload_status (lib/archive/upload_state); the job
 * file is what decides.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/base.h"
#include "cloud/cloud.h"
#include "queue/queue.h"
#include "archive/archive.h"
#include "image/image.h"
#include "worklist/worklist.h"

#define WAIT_MS			5000	/* rescan new/ at least this often */

static volatile sig_atomic_t stopping;

struct sender {
	struct config cfg;
	struct store store;
	struct spool relay;
	struct job_ctx ob;
	struct imagesend img;
	struct eventsend ev;
	struct sendqueue queue;
	struct api_opts uo;
	struct identity_settings ids;	/* the credentials' settings */
	struct identity *identity;	/* this process's tokens */
	int images_on, events_on;	/* which kinds are configured */
	int mode_forced;		/* --upload-mode given */
	const char *ca_file;
	int workers;			/* --jobs */
	int once;
	int wake_fd;			/* from the parent; -1: the spool's */
	struct send_state told;		/* as last merged into run/ */
	int state_warned;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: relaysend [--once] [--jobs N] [--no-match wait|report] "
	    "[--max-send-rate BYTES]\n"
	    "                 [--upload-mode original|lossless|reduced]\n"
	    "       relaysend --retry-failed\n"
	    "\n"
	    "Delivers the relay spool: images to the Manage API (HTTPS),\n"
	    "study.image_received and mpps.status_update events over Azure "
	    "Relay.\n"
	    "Requested images (priority=high) go first; studies take turns.\n"
	    "\n"
	    "  --once            send what is due and exit (default: follow)\n"
	    "  --jobs N          N deliveries in flight (worker processes)\n"
	    "  --no-match MODE   image without a worklist item: wait (default,\n"
	    "                    retried later) or report (parked in failed/)\n"
	    "  --max-send-rate B upload at most B bytes per second (0: no cap)\n"
	    "  --upload-mode M   reduced (default: 400 px, JPEG 2000 lossy, as\n"
	    "                    production sends), original or lossless\n"
	    "  --retry-failed    move failed jobs back to the queue and exit\n"
	    "  -h, --help        this help\n"
	    "  --version         print the version\n"
	    "\n"
	    "Environment: CLOUD_API_ENDPOINT, CLOUD_API_RESOURCE, CLOUD_API_TOKEN\n"
	    "or CLOUD_API_TOKEN_COMMAND, ENVIRONMENT, IDENTITY_ENDPOINT,\n"
	    "AZURE_ARC_TOKENS_DIR, AZURE_IMDS_ENDPOINT, AZURE_TENANT_ID,\n"
	    "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH,\n"
	    "AZURE_AUTHORITY_HOST, GATEWAY_CA_FILE, RELAY_RETRY_MAX_SECONDS,\n"
	    "RELAY_NO_MATCH, RELAY_MAX_SEND_BYTES_PER_SECOND,\n"
	    "RELAY_CONNECT_TIMEOUT_SECONDS, RELAY_LOW_SPEED_SECONDS,\n"
	    "RELAY_UPLOAD_TIMEOUT_SECONDS, RELAY_JOBS, RELAY_UPLOAD_MODE,\n"
	    "DICOM_THUMBNAIL_SIZE, DICOM_COMPRESSION_RATIO, RELAY_UPLOAD_CLASSES,\n"
	    "RELAY_UPLOAD_POLICY, MAX_UPLOAD_RETRIES, RELAY_500_SPREAD_SECONDS,\n"
	    "RELAY_SUMMARY_SECONDS, "
	    "AZURE_RELAY_NAMESPACE,\n"
	    "AZURE_RELAY_EVENTS_HYBRID_CONNECTION, AZURE_RELAY_KEY_NAME,\n"
	    "AZURE_RELAY_SHARED_ACCESS_KEY, AZURE_RELAY_TOKEN_COMMAND,\n"
	    "AZURE_RELAY_ENDPOINT, RELAY_TOKEN_TTL_SECONDS, GATEWAY_DATA_DIR,\n"
	    "PACS_DB_PATH, WORKLIST_DB_PATH, GATEWAY_SPOOL_DIR, LOG_LEVEL.\n"
	    "See relaysend(1).\n");
}

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* A kind this process sends (the others stay queued). */
static int
ours(void *arg, const struct job *j)
{
	const struct sender *s = arg;

	if (job_is(j, JOB_IMAGE) || job_is(j, JOB_FAILURE))
		return s->images_on;
	if (job_is(j, JOB_IMAGE_EVENT) || job_is(j, JOB_MPPS_EVENT) ||
	    job_is(j, JOB_ALERT_EVENT))
		return s->events_on;
	return 0;
}

/* Deliver a claimed job by its kind. */
static void
deliver(void *arg, struct job *j)
{
	struct sender *s = arg;

	if (job_is(j, JOB_IMAGE))
		imagesend_image(&s->img, j);
	else if (job_is(j, JOB_FAILURE))
		imagesend_failure_report(&s->img, j);
	else if (job_is(j, JOB_IMAGE_EVENT))
		eventsend_image_event(&s->ev, j);
	else	/* mpps.status_update, gateway.alert: the JSON is in event= */
		eventsend_prepared_event(&s->ev, j);
}

/* Sleep until woken (a producer, or the parent with --jobs) or ms. */
static int
wait_wake(struct sender *s, int ms, struct err *e)
{
	struct pollfd pfd = { s->wake_fd, POLLIN, 0 };
	char buf[64];
	int r;

	if (s->wake_fd < 0)
		return spool_wait(&s->relay, ms, e);
	if ((r = poll(&pfd, 1, ms)) == -1)
		return errno == EINTR ? 0 : err_sys(e, "poll");
	if (r == 0)
		return 0;
	while (read(s->wake_fd, buf, sizeof buf) > 0)
		;
	return 1;
}

/* Between two jobs of a pass: did a producer write? */
static int
woken(void *arg)
{
	struct err e = { 0 };

	return wait_wake(arg, 0, &e) == 1;
}

/*
 * run/delivery.state (lib/cloud cloud_status): the last deliveries and
 * the errors they fail with now, for gatewayctl status; written when
 * they change.  Without run/ (run by hand elsewhere) there is no one to
 * tell.
 */
static void
tell_state(struct sender *s)
{
	struct send_state seen;
	struct err e = { 0 };

	send_state_seen(&s->ob, &seen);
	if (memcmp(&seen, &s->told, sizeof seen) == 0)
		return;
	if (send_state_update(s->cfg.data_dir, &seen, &e) == 0)
		s->told = seen;
	else if (e.code != ENOENT && !s->state_warned) {
		log_warn("cannot write run/delivery.state", "error=\"%s\"",
		    e.msg);
		s->state_warned = 1;	/* said once */
	}
}

static int
follow(struct sender *s)
{
	struct sendqueue_ops ops = { ours, deliver, s->once ? NULL : woken,
	    s };
	struct err e = { 0 };
	long long wait;
	int r;

	while (!stopping) {
		if ((r = sendqueue_pass(&s->queue, &s->ob, &ops)) == -1)
			return EX_SOFTWARE;
		job_summary(&s->ob);	/* while the cloud cannot be reached */
		tell_state(s);
		if (s->once || stopping)
			break;
		if (r == 1)
			continue;
		wait = s->queue.next_due_ms ? s->queue.next_due_ms -
		    job_now_ms() : WAIT_MS;
		wait = wait < 20 ? 20 : wait > WAIT_MS ? WAIT_MS : wait;
		if (wait_wake(s, (int)wait, &e) == -1) {
			log_err("wait failed", &e);
			return EX_SOFTWARE;
		}
	}
	log_info("stopped", "worker=%d uploaded=%ld events=%ld failed=%ld "
	    "deferred=%ld queued=%d", s->queue.worker, s->ob.uploaded,
	    s->ob.events, s->ob.rejected, s->ob.deferred, s->ob.remaining);
	if (stopping)
		return EX_OK;
	return s->once && s->ob.remaining > 0 ? EX_TEMPFAIL : EX_OK;
}

static int
no_match_mode(const char *v, int *report)
{
	if (strcmp(v, "wait") == 0)
		*report = 0;
	else if (strcmp(v, "report") == 0)
		*report = 1;
	else
		return -1;
	return 0;
}

/* Image uploads: on when CLOUD_API_ENDPOINT is set. */
static int
configure_images(struct sender *s)
{
	struct err e = { 0 };

	s->img.endpoint = config_env("CLOUD_API_ENDPOINT");
	if (s->img.endpoint == NULL)
		return 0;
	if (strncmp(s->img.endpoint, "https://", 8) != 0) {
		log_error("CLOUD_API_ENDPOINT must be an https:// URL", "%s", "");
		return -1;
	}
	if (identity_choose(&s->ids, IDENTITY_FOR_API, &s->img.src,
	    &e) == -1) {
		log_err("no credential for the Manage API", &e);
		return -1;
	}
	s->images_on = 1;
	return 0;
}

/* Events: on when the namespace and the events hybrid connection are. */
static int
configure_events(struct sender *s)
{
	struct err e = { 0 };

	s->ev.events_hc = config_env("AZURE_RELAY_EVENTS_HYBRID_CONNECTION");
	s->ev.ns = config_env("AZURE_RELAY_NAMESPACE");
	s->ev.endpoint = config_env("AZURE_RELAY_ENDPOINT");
	if (s->ev.ns == NULL || s->ev.events_hc == NULL)
		return 0;
	if (identity_choose(&s->ids, IDENTITY_FOR_RELAY, &s->ev.src,
	    &e) == -1) {
		log_err("no credential for the relay", &e);
		return -1;
	}
	s->events_on = 1;
	return 0;
}

/*
 * What goes up: RELAY_UPLOAD_MODE (default reduced), its size and ratio
 * (DICOM_THUMBNAIL_SIZE, DICOM_COMPRESSION_RATIO: production's names and
 * defaults), RELAY_UPLOAD_CLASSES, and the scratch directory for
 * transcoded copies.
 */
static int
configure_mode(struct sender *s)
{
	long side, ratio;
	struct err e = { 0 };

	if (!s->mode_forced && (config_choice("RELAY_UPLOAD_MODE", NULL, &e) ==
	    -1 || transcode_mode_parse(config_value("RELAY_UPLOAD_MODE"),
	    &s->img.mode) == -1)) {
		log_err("bad setting", &e);
		return -1;
	}
	if (config_long("DICOM_THUMBNAIL_SIZE", &side, &e) == -1 ||
	    config_long("DICOM_COMPRESSION_RATIO", &ratio, &e) == -1 ||
	    upload_state_classes(&s->img.classes, &e) == -1) {
		log_err("bad setting", &e);
		return -1;
	}
	s->img.topts = (struct transcode_opts){ (unsigned)side,
	    (double)ratio };
	if (snprintf(s->img.scratch, sizeof s->img.scratch, "%s/tmp",
	    s->cfg.data_dir) >= (int)sizeof s->img.scratch) {
		log_error("scratch directory path too long", "dir=%s",
		    s->cfg.data_dir);
		return -1;
	}
	return 0;
}

static int
configure(struct sender *s)
{
	long connect, low, total, rate, jobs, retries, max_mb;
	enum request_policy policy;
	struct err e = { 0 };

	if (identity_settings_load(&s->ids, &e) == -1) {
		log_err("bad setting", &e);
		return -1;
	}
	if (configure_images(s) == -1 || configure_events(s) == -1)
		return -1;
	if (!s->images_on && !s->events_on) {
		log_error("nothing to send: set CLOUD_API_ENDPOINT, or "
		    "AZURE_RELAY_NAMESPACE and "
		    "AZURE_RELAY_EVENTS_HYBRID_CONNECTION", "%s", "");
		return -1;
	}
	if (config_choice("RELAY_NO_MATCH", &s->ob.no_match_report, &e) ==
	    -1) {	/* wait (0) or report (1) */
		log_err("bad setting", &e);
		return -1;
	}
	if (config_long("RELAY_RETRY_MAX_SECONDS", &s->ob.retry_max_seconds,
	    &e) == -1 ||
	    config_long("RELAY_CONNECT_TIMEOUT_SECONDS", &connect, &e) == -1 ||
	    config_long("RELAY_LOW_SPEED_SECONDS", &low, &e) == -1 ||
	    config_long("RELAY_UPLOAD_TIMEOUT_SECONDS", &total, &e) == -1 ||
	    config_long("RELAY_MAX_SEND_BYTES_PER_SECOND", &rate, &e) == -1 ||
	    config_long("RELAY_JOBS", &jobs, &e) == -1 ||
	    config_long("MAX_UPLOAD_RETRIES", &retries, &e) == -1 ||
	    config_long("RELAY_500_SPREAD_SECONDS", &s->img.spread_seconds,
	    &e) == -1 ||
	    config_long("RELAY_SUMMARY_SECONDS", &s->ob.summary_seconds,
	    &e) == -1 ||
	    config_long("CLOUD_API_MAX_MB", &max_mb, &e) == -1 ||
	    request_upload_policy(&policy, &e) == -1) {
		log_err("bad setting", &e);
		return -1;
	}
	s->img.max_retries = (int)retries;
	s->img.max_bytes = (long long)max_mb * 1024 * 1024;
	s->ob.pending_queued = policy == REQUEST_POLICY_ALL;
	s->ca_file = config_env("GATEWAY_CA_FILE");
	if (configure_mode(s) == -1)
		return -1;
	s->ev.open_timeout_seconds = connect;
	s->workers = (int)jobs;
	s->uo = (struct api_opts){ s->ca_file, connect, low, 1024, total,
	    rate, &stopping };
	return 0;
}

/* Said once at start: which credential, and what it ignores. */
static void
log_credential(const char *what, const struct identity_source *src)
{
	log_info("credential", "for=%s credential=%s resource=%s", what,
	    identity_kind_name(src->kind), identity_kind_entra(src->kind) ?
	    src->resource : "-");
	if (src->ignored[0] != '\0')
		log_warn("settings ignored by the credential rule", "for=%s "
		    "credential=%s ignored=\"%s\"", what,
		    identity_kind_name(src->kind), src->ignored);
}

/* Said once at start: what is sent, and what stays queued. */
static void
log_kinds(const struct sender *s)
{
	if (!s->images_on)
		log_warn("image uploads are off (CLOUD_API_ENDPOINT is not "
		    "set): image jobs stay queued", "%s", "");
	if (!s->events_on)
		log_warn("events are off (AZURE_RELAY_NAMESPACE and "
		    "AZURE_RELAY_EVENTS_HYBRID_CONNECTION are not both set): "
		    "study.image_received and mpps.status_update jobs stay "
		    "queued", "%s", "");
	if (s->images_on)
		log_credential("api", &s->img.src);
	if (s->events_on) {
		log_info("events go over the relay", "namespace=%s "
		    "hybrid_connection=%s endpoint=%s", s->ev.ns,
		    s->ev.events_hc, s->ev.endpoint ? s->ev.endpoint :
		    s->ev.ns);
		log_credential("relay", &s->ev.src);
	}
}

static int
open_all(struct sender *s)
{
	char dir[PATH_MAX];
	struct err e = { 0 };

	s->ob.spool = &s->relay;
	s->ob.cfg = &s->cfg;
	s->ob.stop = &stopping;
	s->img.ob = s->ev.ob = &s->ob;
	s->img.store = &s->store;
	if (identity_new(&s->identity, &s->ids, &stopping, &e) == -1) {
		log_err("cannot start", &e);
		return EX_SOFTWARE;
	}
	s->img.identity = s->ev.identity = s->identity;
	/* pacs.db first, and never created (gatewayd's dcmindex --init
	 * does that): run by hand in the wrong place, nothing is made. */
	if (db_open_existing(&s->ob.db, s->cfg.pacs_db_path, &e) == -1) {
		log_err("cannot start", &e);
		return e.code == ENOENT ? EX_NOINPUT : EX_CANTCREAT;
	}
	/* where transcoded copies are made, once pacs.db said this is
	 * the place */
	if ((s->img.mode != TRANSCODE_ORIGINAL &&
	    fs_mkdirs(s->img.scratch, &e) == -1) ||
	    config_spool_path(&s->cfg, "relay", dir, sizeof dir, &e) == -1 ||
	    spool_open(&s->relay, dir, 1, &e) == -1 ||
	    store_open(&s->store, s->cfg.storage_path, 1, &e) == -1 ||
	    db_migrate(s->ob.db, db_schema_pacs, &e) == -1 ||
	    worklist_open(&s->ob.worklist, s->cfg.worklist_db_path,
	    &e) == -1 ||
	    api_open(&s->img.up, &s->uo, &e) == -1 ||
	    (s->events_on && ws_ctx_new(&s->ev.ws, s->ca_file,
	    EVENTSEND_REPLY_MAX, &e) == -1)) {
		log_err("cannot start", &e);
		return EX_CANTCREAT;
	}
	if (s->ev.ws != NULL)
		ws_ctx_stop_flag(s->ev.ws, &stopping);
	return 0;
}

/* Close everything (the struct may be opened again, e.g. after fork). */
static void
close_all(struct sender *s)
{
	sendqueue_free(&s->queue);
	identity_free(s->identity);
	s->identity = s->img.identity = s->ev.identity = NULL;
	ws_ctx_free(s->ev.ws);
	api_close(s->img.up);
	worklist_close(s->ob.worklist);
	if (s->ob.db != NULL)
		db_close(s->ob.db);
	spool_close(&s->relay);
	s->ev.ws = NULL;
	s->img.up = NULL;
	s->ob.worklist = NULL;
	s->ob.db = NULL;
}

/* --retry-failed: failed jobs back to new/, their rows back to PENDING. */
static int
retry_failed(struct sender *s)
{
	struct err e = { 0 };
	int n = spool_retry_failed(&s->relay, &e);

	if (n == -1) {
		log_err("retry failed", &e);
		return EX_SOFTWARE;
	}
	if (upload_state_retry_failed(s->ob.db, &e) == -1)
		log_err("pacs.db update failed", &e);
	log_info("failed jobs queued again", "jobs=%d", n);
	return EX_OK;
}

/* Rows left UPLOADING by a crash: their jobs were just recovered. */
static void
log_resumed(struct sender *s, int recovered)
{
	struct upload_state_count c;
	struct err e = { 0 };

	if (upload_state_count(s->ob.db, NULL, &c, &e) == -1) {
		log_err("pacs.db query failed", &e);
		return;
	}
	log_info("started", "recovered_jobs=%d resumed_uploads=%lld "
	    "upload_mode=%s upload_classes=%s", recovered, c.uploading,
	    transcode_mode_name(s->img.mode),
	    upload_state_classes_name(s->img.classes));
}

/* Claims a crash left in cur/ go back to new/ (before any worker runs). */
static int
recover(struct sender *s)
{
	struct err e = { 0 };
	int recovered;

	if ((recovered = spool_recover(&s->relay, &e)) == -1) {
		log_err("recover failed", &e);
		return -1;
	}
	log_resumed(s, recovered);
	log_kinds(s);
	return 0;
}

/* One worker (a child): its own connections, its share of the names. */
static int
worker_main(void *arg, int i, int fd)
{
	struct sender *s = arg;
	int rc;

	s->queue.worker = i;
	s->queue.workers = s->workers;
	s->wake_fd = fd;
	if ((rc = open_all(s)) != 0) {
		close_all(s);
		return rc;
	}
	rc = follow(s);
	close_all(s);
	return rc;
}

/* --jobs N: fork N workers (a worker returns through main, too). */
static int
run_workers(struct sender *s)
{
	char dir[PATH_MAX];
	struct err e = { 0 };

	if (config_spool_path(&s->cfg, "relay", dir, sizeof dir, &e) == -1) {
		log_err("cannot open the spool", &e);
		return EX_CANTCREAT;
	}
	return workers_run(s->workers, s->once, dir, &stopping, worker_main,
	    s);
}

static int
run(struct sender *s, int retry, long rate, int no_match, int jobs)
{
	struct err e = { 0 };
	int rc;

	if (config_load(&s->cfg, &e) == -1) {
		log_err("bad configuration", &e);
		return EX_CONFIG;
	}
	if (configure(s) == -1)
		return EX_CONFIG;
	if (rate >= 0)
		s->uo.max_send_bytes_per_second = rate;
	if (no_match >= 0)
		s->ob.no_match_report = no_match;
	if (jobs > 0)
		s->workers = jobs;
	if ((rc = open_all(s)) != 0) {
		close_all(s);
		return rc;
	}
	if (retry)
		rc = retry_failed(s);
	else if (recover(s) == -1)
		rc = EX_SOFTWARE;
	else if (s->workers <= 1)
		rc = follow(s);
	else {
		close_all(s);
		return run_workers(s);
	}
	close_all(s);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "retry-failed", no_argument, NULL, 'R' },
		{ "no-match", required_argument, NULL, 'n' },
		{ "max-send-rate", required_argument, NULL, 'r' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "upload-mode", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct sender s = { .wake_fd = -1, .img.mode = TRANSCODE_REDUCED };
	int c, retry = 0, no_match = -1, jobs = 0, r, rc;
	enum transcode_mode mode;
	long rate = -1;

	log_init("relaysend");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': s.once = 1; break;
		case 'R': retry = 1; break;
		case 'n':
			if (no_match_mode(optarg, &no_match) == -1) {
				fprintf(stderr, "relaysend: --no-match takes "
				    "wait or report\n");
				return EX_USAGE;
			}
			break;
		case 'r':
			if (config_parse_int(optarg, 0, 2000000000, &r) == -1) {
				fprintf(stderr, "relaysend: --max-send-rate "
				    "takes bytes per second\n");
				return EX_USAGE;
			}
			rate = r;
			break;
		case 'm':
			if (transcode_mode_parse(optarg, &mode) == -1) {
				fprintf(stderr, "relaysend: --upload-mode takes "
				    "original, lossless or reduced\n");
				return EX_USAGE;
			}
			s.mode_forced = 1;
			s.img.mode = mode;
			break;
		case 'j':
			if (config_parse_int(optarg, 1, WORKERS_MAX,
			    &jobs) == -1) {
				fprintf(stderr, "relaysend: --jobs takes 1 to "
				    "%d\n", WORKERS_MAX);
				return EX_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("relaysend %s\n", GW_VERSION);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc || s.once + retry > 1) {
		usage(stderr);
		return EX_USAGE;
	}
	proc_on_stop(on_signal);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialise libcurl", "%s", "");
		return EX_SOFTWARE;
	}
	rc = run(&s, retry, rate, no_match, jobs);
	curl_global_cleanup();
	return rc;
}
