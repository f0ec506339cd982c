/*
 * dcmthumb: windowed, downscaled previews of DICOM images.
 *
 *   dcmthumb [options] IN.dcm OUT.png   render one file
 *   dcmthumb [--once] [options]         consume the thumb spool
 *
 * As a stage, each job (object=<sha256>, from dcmindex) becomes
 * <thumbs>/ab/cd/<sha256>.png, written atomically; pacs.db's instance
 * row (when the object is still the instance's current one) records
 * GENERATED, FAILED with the reason, or SKIP; and a study.image_received
 * job goes to the relay spool (lib/cloud/event decides: never for an
 * image not for the cloud, LOCAL; while the relay's events are off,
 * config_cloud_events, pacs.db marks it held back instead, for
 * gatewayctl resend --held).  Only then is the claim finished, so a
 * crash repeats a job and never loses one; every step is idempotent.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "dicom/dicom.h"
#include "archive/archive.h"
#include "cloud/cloud.h"
#include "image/image.h"
#include "queue/queue.h"

#define WAIT_MS		5000	/* rescan new/ at least this often */
#define DEFER_MAX_MS	60000	/* previews wait for storage at most this */
#define DEFER_STEP_MS	50
#define JPEG_QUALITY	85

enum format { FMT_PNG, FMT_JPEG, FMT_PNM };

static volatile sig_atomic_t stopping;

struct thumbs {
	struct config cfg;
	struct store store;
	struct spool thumb, relay;
	struct spool index;	/* dcmindex's: previews wait for it */
	char dir[PATH_MAX];	/* where previews go */
	sqlite3 *db;
	sqlite3_stmt *set_status;
	struct render_opts ro;
	enum format fmt;
	long generated, failed, skipped;
};

/* The outcome of one job. */
struct outcome {
	const char *status;	/* GENERATED, FAILED, SKIP */
	char reason[512];
	char relpath[128];
	size_t size;
	unsigned width, height;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: dcmthumb [options] IN.dcm OUT [IN.dcm OUT ...]\n"
	    "       dcmthumb [--once] [options]\n"
	    "       dcmthumb --retry-failed\n"
	    "\n"
	    "Renders a windowed, downscaled preview of a DICOM image; with no\n"
	    "file arguments, consumes the thumb spool as a pipeline stage.\n"
	    "\n"
	    "  --size N        longest side in pixels (default %d)\n"
	    "  --window N      use the N-th Window Center/Width (default 1)\n"
	    "  --min-max       ignore windows and VOI LUTs: stored min to max\n"
	    "  --frame N       render frame N, from 1 (default: the middle one)\n"
	    "  --square-pixels ignore Pixel Spacing\n"
	    "  --format F      png (default), jpeg or pnm (PGM/PPM); for OUT,\n"
	    "                  .jpg/.jpeg/.pgm/.ppm/.pnm also choose it\n"
	    "  --once          drain the spool and exit (default: follow it)\n"
	    "  --retry-failed  queue the failed previews again and exit\n"
	    "  -h, --help      this help\n"
	    "  --version       print the version\n"
	    "\n"
	    "Environment: GATEWAY_DATA_DIR, GATEWAY_THUMBS_DIR, PACS_DB_PATH,\n"
	    "PACS_STORAGE_PATH, GATEWAY_SPOOL_DIR, LOG_LEVEL, TMPDIR.  See\n"
	    "dcmthumb(1).\n", RENDER_SIZE_DEFAULT);
}

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static const char *
format_name(enum format f)
{
	return f == FMT_JPEG ? "jpeg" : f == FMT_PNM ? "pnm" : "png";
}

static int
encode(const struct render_image *im, enum format fmt, uint8_t **out,
    size_t *len, struct err *e)
{
	if (fmt == FMT_JPEG)
		return render_jpeg(im, JPEG_QUALITY, out, len, e);
	if (fmt == FMT_PNM)
		return render_pnm(im, out, len, e);
	return render_png(im, out, len, e);
}

/* Render path into an encoded buffer.  Returns 0, or -1 with e set. */
static int
render_file(const char *path, const struct render_opts *ro, enum format fmt,
    uint8_t **out, size_t *len, struct render_image *im, struct err *e)
{
	struct dcm *d;
	int rc;

	*out = NULL;
	if (dcm_open(path, 0, &d, e) == -1)
		return -1;
	rc = render_dicom(d, path, ro, im, e);
	dcm_free(d);
	if (rc == -1)
		return -1;
	rc = encode(im, fmt, out, len, e);
	render_image_free(im);
	return rc;
}

/* Single-file mode. */

static enum format
format_of(const char *out, enum format given, int explicit)
{
	const char *dot = strrchr(out, '.');

	if (explicit || dot == NULL)
		return given;
	if (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0)
		return FMT_JPEG;
	if (strcasecmp(dot, ".pgm") == 0 || strcasecmp(dot, ".ppm") == 0 ||
	    strcasecmp(dot, ".pnm") == 0)
		return FMT_PNM;
	return given;
}

static int
one_file(const char *in, const char *out, const struct render_opts *ro,
    enum format fmt)
{
	struct render_image im;
	struct err e = { 0 };
	uint8_t *buf;
	size_t len;
	char q[600];

	if (render_file(in, ro, fmt, &buf, &len, &im, &e) == -1) {
		int skip = e.code == PIXEL_E_NO_PIXELS;
		char qf[600];
		log_msg(skip ? LOG_INFO : LOG_ERROR, skip ? "not an image" :
		    "cannot render", "file=%s status=%s reason=%s",
		    log_quote(in, qf, sizeof qf), skip ? "SKIP" : "FAILED",
		    log_quote(e.msg, q, sizeof q));
		return e.code == ENOENT || e.code == EACCES ? EX_NOINPUT :
		    EX_DATAERR;
	}
	if (strcmp(out, "-") == 0 ? fs_write_all(STDOUT_FILENO, buf, len,
	    &e) : fs_write_atomic(out, buf, len, &e)) {
		free(buf);
		log_err("cannot write the preview", &e);
		return EX_CANTCREAT;
	}
	free(buf);
	log_debug("rendered", "width=%u height=%u bytes=%zu", im.width,
	    im.height, len);
	return EX_OK;
}

/* Stage mode. */

static int
record(struct thumbs *t, const char *sop, const char *hash,
    const struct outcome *o, struct err *e)
{
	sqlite3_stmt *st = t->set_status;
	char when[32];
	int ok = 1;

	pacs_timestamp(when);
	ok &= sqlite3_bind_text(st, 1, o->status, -1, SQLITE_STATIC) ==
	    SQLITE_OK;
	ok &= db_bind_text(st, 2, o->relpath) == SQLITE_OK;
	if (o->size > 0)
		ok &= sqlite3_bind_int64(st, 3, (sqlite3_int64)o->size) ==
		    SQLITE_OK && sqlite3_bind_int(st, 4, (int)o->width) ==
		    SQLITE_OK && sqlite3_bind_int(st, 5, (int)o->height) ==
		    SQLITE_OK;
	else
		ok &= sqlite3_bind_null(st, 3) == SQLITE_OK &&
		    sqlite3_bind_null(st, 4) == SQLITE_OK &&
		    sqlite3_bind_null(st, 5) == SQLITE_OK;
	ok &= db_bind_text(st, 6, o->reason) == SQLITE_OK;
	ok &= sqlite3_bind_text(st, 7, when, -1, SQLITE_TRANSIENT) ==
	    SQLITE_OK;
	ok &= sqlite3_bind_text(st, 8, sop, -1, SQLITE_TRANSIENT) ==
	    SQLITE_OK;
	ok &= sqlite3_bind_text(st, 9, hash, -1, SQLITE_TRANSIENT) ==
	    SQLITE_OK;
	if (!ok) {
		sqlite3_reset(st);
		return err_set(e, EIO, "bind: %s", sqlite3_errmsg(t->db));
	}
	return db_step_done(t->db, st, e);
}

/* Write the preview durably as <dir>/ab/cd/<hash>.<ext>. */
static int
save_preview(struct thumbs *t, const char *hash, const uint8_t *buf,
    size_t len, struct outcome *o, struct err *e)
{
	char path[PATH_MAX], sub[PATH_MAX];
	const char *ext = t->fmt == FMT_JPEG ? "jpg" : t->fmt == FMT_PNM ?
	    "pnm" : "png";

	snprintf(o->relpath, sizeof o->relpath, "%.2s/%.2s/%s.%s", hash,
	    hash + 2, hash, ext);
	if (snprintf(sub, sizeof sub, "%s/%.2s/%.2s", t->dir, hash,
	    hash + 2) >= (int)sizeof sub ||
	    snprintf(path, sizeof path, "%s/%s", t->dir, o->relpath) >=
	    (int)sizeof path)
		return err_set(e, ENAMETOOLONG, "thumbs path too long");
	if (fs_mkdirs(sub, e) == -1)
		return -1;
	return fs_write_atomic(path, buf, len, e);
}

/* The study.image_received job, or (events off) the mark that it was
 * held back: lib/cloud/event decides. */
static int
relay_event(struct thumbs *t, const char *body, const char *hash,
    const char *sop, const struct outcome *o, struct err *e)
{
	char study[128], acc[80], path[PATH_MAX];
	struct event_job j = { hash, sop, study, acc, o->status, NULL,
	    format_name(t->fmt), o->width, o->height };

	if (spool_job_get(body, "study_instance_uid", study, sizeof study))
		study[0] = '\0';
	if (spool_job_get(body, "accession_number", acc, sizeof acc))
		acc[0] = '\0';
	if (o->size > 0) {
		if (snprintf(path, sizeof path, "%s/%s", t->dir, o->relpath) >=
		    (int)sizeof path)
			return err_set(e, ENAMETOOLONG,
			    "thumbnail path too long");
		j.thumbnail = path;
	}
	return event_job_queue(t->db, &t->relay, &j, 0, e) == -1 ? -1 : 0;
}

/* Render one object.  Fills o; -1 only for transient trouble. */
static int
make_preview(struct thumbs *t, const char *hash, struct outcome *o,
    struct err *e)
{
	char path[PATH_MAX];
	struct render_image im;
	struct err re = { 0 };
	uint8_t *buf;
	size_t len;

	if (store_path(&t->store, hash, path, sizeof path, e) == -1)
		return -1;
	if (render_file(path, &t->ro, t->fmt, &buf, &len, &im, &re) == -1) {
		if (re.code == ENOMEM || re.code == EMFILE ||
		    re.code == ENFILE) {
			*e = re;
			return -1;
		}
		o->status = re.code == PIXEL_E_NO_PIXELS ? "SKIP" : "FAILED";
		snprintf(o->reason, sizeof o->reason, "%s", re.msg);
		return 0;
	}
	o->status = "GENERATED";
	o->size = len;
	o->width = im.width;
	o->height = im.height;
	if (save_preview(t, hash, buf, len, o, e) == -1) {
		free(buf);
		return -1;
	}
	free(buf);
	return 0;
}

/* One claimed job.  0 settled (done or failed for good), -1 retry later. */
static int
run_job(struct thumbs *t, const char *name)
{
	char hash[STORE_HASH_LEN + 1], sop[128], q[600];
	struct outcome o = { .status = "FAILED" };
	struct err e = { 0 };
	char *body = NULL;
	int rc = -1;

	if (spool_read(&t->thumb, name, &body, &e) == -1)
		goto out;
	if (spool_job_get(body, "object", hash, sizeof hash) == -1 ||
	    !store_valid_hash(hash) ||
	    spool_job_get(body, "sop_instance_uid", sop, sizeof sop) == -1) {
		rc = spool_fail(&t->thumb, name, "job has no valid object= "
		    "or sop_instance_uid=", &e);
		goto out;
	}
	if (make_preview(t, hash, &o, &e) == -1 ||
	    record(t, sop, hash, &o, &e) == -1 ||
	    (strcmp(o.status, "SKIP") != 0 &&
	    relay_event(t, body, hash, sop, &o, &e) == -1))
		goto out;
	if (strcmp(o.status, "FAILED") == 0) {
		t->failed++;
		log_warn("preview failed", "sop_instance_uid=%s object=%.16s "
		    "reason=%s", sop, hash, log_quote(o.reason, q, sizeof q));
		rc = spool_fail(&t->thumb, name, o.reason, &e);
		goto out;
	}
	if (strcmp(o.status, "SKIP") == 0) {
		t->skipped++;
		log_info("not an image", "sop_instance_uid=%s object=%.16s",
		    sop, hash);
	} else {
		t->generated++;
		log_info("preview", "sop_instance_uid=%s object=%.16s "
		    "width=%u height=%u bytes=%zu", sop, hash, o.width,
		    o.height, o.size);
	}
	rc = spool_finish(&t->thumb, name, &e);
out:
	if (rc == -1)
		log_err("job will be retried", &e);
	free(body);
	return rc;
}

/* Drain the spool.  0 when empty or stopping, -1 on trouble. */
static int
drain(struct thumbs *t)
{
	char names[16][SPOOL_NAME_MAX];
	struct err e = { 0 };
	int n;

	while (!stopping) {
		if ((n = spool_claim(&t->thumb, names, 16, &e)) == -1) {
			log_err("claim failed", &e);
			return -1;
		}
		if (n == 0)
			return 0;
		for (int i = 0; i < n; i++) {
			if (stopping || run_job(t, names[i]) == -1) {
				/* Unsettled claims go back to new/. */
				spool_recover(&t->thumb, NULL);
				return stopping ? 0 : -1;
			}
		}
	}
	return 0;
}

/*
 * Previews are made when no images are arriving (incoming/ has no
 * association directory) and every image that arrived is indexed (the
 * index spool is empty), or after DEFER_MAX_MS: decoding a full-size
 * image takes the CPU a transfer and the index need, and nothing waits
 * on a preview the way a modality waits on its C-STORE.
 */
static int
busy(struct thumbs *t)
{
	return incoming_busy(t->cfg.incoming_dir) ||
	    spool_count(&t->index, "new", NULL) > 0 ||
	    spool_count(&t->index, "cur", NULL) > 0;
}

static void
defer(struct thumbs *t)
{
	long long until = mono_ms() + DEFER_MAX_MS;

	while (!stopping && mono_ms() < until &&
	    spool_count(&t->thumb, "new", NULL) > 0 && busy(t)) {
		struct timespec ts = { 0, DEFER_STEP_MS * 1000000L };

		nanosleep(&ts, NULL);
	}
}

static int
follow(struct thumbs *t, int once)
{
	struct err e = { 0 };
	int rc = 0, recovered;

	if ((recovered = spool_recover(&t->thumb, &e)) == -1) {
		log_err("recover failed", &e);
		return -1;
	}
	log_info("started", "recovered=%d once=%d", recovered, once);
	while (!stopping) {
		if (!once)
			defer(t);
		if (drain(t) == -1) {
			if (once) {
				rc = -1;
				break;
			}
			sleep(1);
			continue;
		}
		if (once)
			break;
		if (spool_wait(&t->thumb, WAIT_MS, &e) == -1) {
			log_err("wait failed", &e);
			rc = -1;
			break;
		}
	}
	log_info("stopped", "generated=%ld failed=%ld skipped=%ld",
	    t->generated, t->failed, t->skipped);
	return rc;
}

static int
open_stage(struct thumbs *t, struct err *e)
{
	char dir[PATH_MAX];

	/* pacs.db first: a run in the wrong place creates nothing. */
	if (config_load(&t->cfg, e) == -1 ||
	    db_open_existing(&t->db, t->cfg.pacs_db_path, e) == -1 ||
	    store_open(&t->store, t->cfg.storage_path, 1, e) == -1)
		return -1;
	log_init("dcmthumb");	/* LOG_LEVEL may come from gateway.env */
	if (snprintf(t->dir, sizeof t->dir, "%s", t->cfg.thumbs_dir) >=
	    (int)sizeof t->dir)
		return err_set(e, ENAMETOOLONG, "thumbs directory too long");
	if (fs_mkdirs(t->dir, e) == -1 ||
	    config_spool_path(&t->cfg, "thumb", dir, sizeof dir, e) == -1 ||
	    spool_open(&t->thumb, dir, 1, e) == -1 ||
	    config_spool_path(&t->cfg, "relay", dir, sizeof dir, e) == -1 ||
	    spool_open(&t->relay, dir, 1, e) == -1 ||
	    config_spool_path(&t->cfg, "index", dir, sizeof dir, e) == -1 ||
	    spool_open(&t->index, dir, 1, e) == -1)
		return -1;
	if (db_migrate(t->db, db_schema_pacs, e) == -1)
		return -1;
	return db_prepare(t->db, &t->set_status, "UPDATE instances SET "
	    "thumbnail_status = ?1, thumbnail_path = ?2, thumbnail_size = ?3, "
	    "thumbnail_width = ?4, thumbnail_height = ?5, "
	    "thumbnail_error = ?6, thumbnail_at = ?7 "
	    "WHERE sop_instance_uid = ?8 AND object_hash = ?9", e);
}

static void
close_stage(struct thumbs *t)
{
	sqlite3_finalize(t->set_status);
	if (t->db != NULL)
		db_close(t->db);
	spool_close(&t->thumb);
	spool_close(&t->relay);
	spool_close(&t->index);
}

/* --retry-failed: the failed previews go back to the spool. */
static int
retry_failed(struct thumbs *t)
{
	struct err e = { 0 };
	int n = spool_retry_failed(&t->thumb, &e);

	if (n == -1) {
		log_err("retry failed", &e);
		return -1;
	}
	log_info("failed jobs queued again", "jobs=%d", n);
	return 0;
}

static int
stage(struct thumbs *t, int once, int retry)
{
	struct err e = { 0 };
	int rc;

	proc_on_stop(on_signal);
	if (open_stage(t, &e) == -1) {
		log_err("cannot start", &e);
		close_stage(t);
		return EX_CONFIG;
	}
	rc = retry ? retry_failed(t) : follow(t, once);
	close_stage(t);
	return rc == 0 ? EX_OK : EX_SOFTWARE;
}

static int
number(const char *s, long lo, long hi, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && *out >= lo &&
	    *out <= hi ? 0 : -1;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "window", required_argument, NULL, 'w' },
		{ "frame", required_argument, NULL, 'f' },
		{ "min-max", no_argument, NULL, 'm' },
		{ "square-pixels", no_argument, NULL, 'q' },
		{ "format", required_argument, NULL, 'F' },
		{ "once", no_argument, NULL, 'o' },
		{ "retry-failed", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct thumbs t = { .ro = { .frame = -1 }, .fmt = FMT_PNG,
	    .thumb = { .wake_fd = -1, .wake_keep = -1 },
	    .relay = { .wake_fd = -1, .wake_keep = -1 },
	    .index = { .wake_fd = -1, .wake_keep = -1 } };
	int c, once = 0, retry = 0, fmt_given = 0;
	long v;

	log_init("dcmthumb");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (number(optarg, 1, 65535, &v) == -1)
				goto bad;
			t.ro.size = (unsigned)v;
			break;
		case 'w':
			if (number(optarg, 1, 1000, &v) == -1)
				goto bad;
			t.ro.window = (int)v - 1;
			break;
		case 'f':
			if (number(optarg, 1, LONG_MAX, &v) == -1)
				goto bad;
			t.ro.frame = v - 1;
			break;
		case 'm': t.ro.min_max = 1; break;
		case 'q': t.ro.square_pixels = 1; break;
		case 'o': once = 1; break;
		case 'R': retry = 1; break;
		case 'F':
			fmt_given = 1;
			if (strcmp(optarg, "png") == 0)
				t.fmt = FMT_PNG;
			else if (strcmp(optarg, "jpeg") == 0)
				t.fmt = FMT_JPEG;
			else if (strcmp(optarg, "pnm") == 0)
				t.fmt = FMT_PNM;
			else
				goto bad;
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("dcmthumb %s\n", GW_VERSION);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (argc - optind >= 2 && (argc - optind) % 2 == 0 && !once &&
	    !retry) {
		int rc = EX_OK, r;
		for (int i = optind; i < argc; i += 2)
			if ((r = one_file(argv[i], argv[i + 1], &t.ro,
			    format_of(argv[i + 1], t.fmt, fmt_given))) != EX_OK)
				rc = r;
		return rc;
	}
	if (argc != optind || once + retry > 1) {
		usage(stderr);
		return EX_USAGE;
	}
	return stage(&t, once, retry);
bad:
	fprintf(stderr, "dcmthumb: bad value for an option: %s\n", optarg);
	return EX_USAGE;
}
