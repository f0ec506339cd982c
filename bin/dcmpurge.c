/*
 * dcmpurge: retention of the content store (lib/archive/archive.h).
 *
 *   dcmpurge              a round every PACS_PURGE_INTERVAL (gatewayd)
 *   dcmpurge --once       one round, then exit
 *   dcmpurge --dry-run    print what one round would remove and why
 *
 * Each round first finishes what a killed run left half-done, then frees
 * the files of instances the cloud confirmed that are past
 * PACS_RETENTION_DAYS, and, below PACS_DISK_LOW_WATERMARK percent free,
 * the oldest confirmed ones until free space is back above the
 * watermark plus PURGE_MARGIN_PERCENT.  Logs counts and bytes, never
 * patient data.
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
#include "archive/archive.h"

#define LOCK_WAIT_MS		5000

static volatile sig_atomic_t stopping;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: dcmpurge [--once | --dry-run] [--batch N]\n"
	    "\n"
	    "Frees the store files of instances the cloud confirmed, past the\n"
	    "retention period or below the disk low watermark; keeps the rows.\n"
	    "\n"
	    "  --once       one round, then exit (default: a round every\n"
	    "               PACS_PURGE_INTERVAL)\n"
	    "  --dry-run    print what a round would remove and why; change\n"
	    "               nothing\n"
	    "  --batch N    instances per transaction (default %d)\n"
	    "  -h, --help   this help\n"
	    "  --version    print the version\n"
	    "\n"
	    "Environment: PACS_RETENTION_DAYS (30), PACS_DISK_LOW_WATERMARK\n"
	    "(15, percent free), PACS_PURGE_INTERVAL (3600 s; 30m, 1h, 1d),\n"
	    "GATEWAY_DATA_DIR, PACS_DB_PATH, PACS_STORAGE_PATH,\n"
	    "GATEWAY_SPOOL_DIR, LOG_LEVEL.  See dcmpurge(1).\n",
	    PURGE_BATCH_DEFAULT);
}

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* PACS_PURGE_INTERVAL: seconds, or a number with s, m, h or d. */
static int
read_interval(long *out, struct err *e)
{
	return config_long("PACS_PURGE_INTERVAL", out, e);
}

static int
read_policy(struct purge_policy *p, struct err *e)
{
	long days, low;

	if (config_long("PACS_RETENTION_DAYS", &days, e) == -1 ||
	    config_long("PACS_DISK_LOW_WATERMARK", &low, e) == -1)
		return -1;
	p->retention_days = days;
	p->low_watermark_pct = (int)low;
	p->margin_pct = PURGE_MARGIN_PERCENT;
	p->lock_wait_ms = LOCK_WAIT_MS;
	p->pause_pct = PURGE_PAUSE_PERCENT;
	return 0;
}

/* --dry-run: one line per instance whose file would go. */
static void
print_item(void *arg, const struct purge_item *it)
{
	(void)arg;
	printf("would purge sop_instance_uid=%s object=%s size=%lld "
	    "received_at=%s reason=%s file=%s\n", it->sop_instance_uid,
	    it->object_hash, it->size, it->received_at, it->reason,
	    it->unlinks ? "removed" : "kept_shared");
}

static void
log_item(void *arg, const struct purge_item *it)
{
	(void)arg;
	log_debug("purged", "sop_instance_uid=%s object=%.16s size=%lld "
	    "reason=%s", it->sop_instance_uid, it->object_hash, it->size,
	    it->reason);
}

/* One round.  0 done, 1 store in use (skipped), -1 error. */
static int
round_once(struct purge_ctx *c, struct purge_policy *p)
{
	struct purge_stats st;
	struct err e = { 0 };

	p->now = time(NULL);
	if (purge_run(c, p, &st, &e) == -1) {
		log_err("purge failed", &e);
		return -1;
	}
	if (st.lock_busy)
		log_warn("store in use by a C-MOVE/C-GET: round skipped",
		    "instances=%ld objects=%ld", st.instances, st.objects);
	if (p->dry_run) {
		printf("dry run: instances=%ld bytes_estimate=%lld "
		    "watermark=%d free_percent=%.1f\n", st.instances,
		    st.bytes, st.watermark, st.free_pct_before);
		return 0;
	}
	log_info("purge round", "instances=%ld objects=%ld bytes=%lld "
	    "finished=%ld watermark=%d free_percent_before=%.1f "
	    "free_percent_after=%.1f", st.instances, st.objects, st.bytes,
	    st.finished, st.watermark, st.free_pct_before, st.free_pct_after);
	return st.lock_busy ? 1 : 0;
}

static void
pause_seconds(long s)
{
	struct timespec t = { 1, 0 };

	while (!stopping && s-- > 0)
		nanosleep(&t, NULL);
}

static int
open_all(struct config *cfg, struct store *store, sqlite3 **db,
    char *lock, size_t locksz, struct err *e)
{
	char run[PATH_MAX];

	if ((size_t)snprintf(run, sizeof run, "%s/run", cfg->data_dir) >=
	    sizeof run || (size_t)snprintf(lock, locksz, "%s/store.lock",
	    run) >= locksz)
		return err_set(e, ENAMETOOLONG, "GATEWAY_DATA_DIR too long");
	/* Nothing is created here but run/: never an empty pacs.db. */
	if (store_open(store, cfg->storage_path, 0, e) == -1 ||
	    db_open_existing(db, cfg->pacs_db_path, e) == -1)
		return -1;
	if (fs_mkdirs(run, e) == -1) {
		db_close(*db);
		*db = NULL;
		return -1;
	}
	/* 8 MB of page cache: a round reads the instances index once. */
	if (db_migrate(*db, db_schema_pacs, e) == -1 ||
	    db_exec(*db, "PRAGMA cache_size = -8192", e) == -1) {
		db_close(*db);
		*db = NULL;
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct purge_policy p = { .batch = PURGE_BATCH_DEFAULT };
	struct purge_ctx ctx = { 0 };
	struct config cfg;
	struct store store;
	struct err e = { 0 };
	char lock[PATH_MAX];
	sqlite3 *db = NULL;
	long interval;
	int c, once = 0, rc;

	log_init("dcmpurge");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': once = 1; break;
		case 'n': p.dry_run = 1; break;
		case 'b':
			if (config_parse_int(optarg, 1, 100000, &p.batch) == -1) {
				fprintf(stderr, "dcmpurge: --batch takes 1 to "
				    "100000\n");
				return EX_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("dcmpurge %s\n", GW_VERSION);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc || (once && p.dry_run)) {
		usage(stderr);
		return EX_USAGE;
	}
	if (config_load(&cfg, &e) == -1 || read_policy(&p, &e) == -1 ||
	    read_interval(&interval, &e) == -1) {
		log_err("cannot start", &e);
		return EX_CONFIG;
	}
	if (open_all(&cfg, &store, &db, lock, sizeof lock, &e) == -1) {
		log_err("cannot open the store or pacs.db", &e);
		return e.code == ENOENT ? EX_NOINPUT : EX_CANTCREAT;
	}
	/* Background work: the ingest comes first. */
	errno = 0;
	if (nice(10) == -1 && errno != 0)
		log_warn("cannot lower the priority", "errno=%d", errno);
	ctx = (struct purge_ctx){ db, &store, cfg.spool_dir, lock,
	    p.dry_run ? print_item : log_item, NULL };
	if (p.dry_run || once) {
		rc = round_once(&ctx, &p);
		db_close(db);
		return rc == 0 ? EX_OK : rc == 1 ? EX_TEMPFAIL : EX_SOFTWARE;
	}
	proc_on_stop(on_signal);
	log_info("started", "interval_seconds=%ld retention_days=%ld "
	    "low_watermark_percent=%d", interval, p.retention_days,
	    p.low_watermark_pct);
	while (!stopping) {
		round_once(&ctx, &p);
		pause_seconds(interval);
	}
	log_info("stopped", "reason=%s", "signal");
	db_close(db);
	return EX_OK;
}
