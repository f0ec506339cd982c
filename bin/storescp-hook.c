/*
 * storescp-hook: take one file that dcmtk's storescp received, keep it.
 *
 *   storescp-hook [--take] FILE [CALLING_AET [CALLED_AET [PEER]]]
 *   storescp-hook --sweep [--min-age SECONDS]
 *
 * lib/archive/ingest does the work: the file is parsed whole, its UIDs
 * checked, hashed (streamed), linked into the content store durably, and
 * an index job is enqueued; only then is the incoming file removed.
 * Anything unusable, or from a sender off PACS_ALLOWED_AETS/_HOSTS, goes
 * to the quarantine with the reason.  A crash at any point leaves the
 * file in incoming/, where --sweep (run by gatewayd at start and every
 * GATEWAY_SWEEP_INTERVAL_SECONDS) finds it again; a hook storescp started
 * leaves storage's process group first, so stopping storage does not
 * stop it (detach()).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "dicom/dicom.h"
#include "dicomnet/dicomnet.h"
#include "archive/archive.h"
#include "queue/queue.h"

struct hook {
	struct config cfg;
	struct ingest ingest;
	struct senders senders;	/* PACS_ALLOWED_AETS, PACS_ALLOWED_HOSTS */
};

struct arrival {
	const char *path, *calling_aet, *called_aet, *peer;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: storescp-hook [--take] FILE [CALLING_AET [CALLED_AET [PEER]]]\n"
	    "       storescp-hook --sweep [--min-age SECONDS]\n"
	    "\n"
	    "Moves a file received by storescp into the content store and\n"
	    "queues it for indexing; quarantines what is not usable DICOM.\n"
	    "\n"
	    "  --sweep          process every file left in the incoming directory\n"
	    "  --min-age SECS   with --sweep, skip files younger than SECS (default 0)\n"
	    "  --take           take FILE even outside the incoming directory\n"
	    "                   (it is moved into the store or the quarantine)\n"
	    "  -h, --help       this help\n"
	    "  --version        print the version\n"
	    "\n"
	    "Without CALLING_AET, CALLED_AET and PEER the sender comes from\n"
	    "STORESCP_FRONT_CALLING_AET, _CALLED_AET and _PEER (storescp-front\n"
	    "sets them for each association).\n"
	    "Environment: GATEWAY_DATA_DIR, PACS_STORAGE_PATH, GATEWAY_SPOOL_DIR,\n"
	    "GATEWAY_INCOMING_DIR, GATEWAY_QUARANTINE_DIR, PACS_ALLOWED_AETS,\n"
	    "PACS_ALLOWED_HOSTS, LOG_LEVEL.  See storescp-hook(1).\n");
}

static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* The peak resident memory of this process so far, in KiB. */
static long
peak_rss_kb(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

/*
 * Store the file, or quarantine it; the sender is checked again here
 * (storescp-front refused anyone else at the association: this is the
 * second line, for files that come another way).  0 stored or
 * quarantined; -1 on a failure that leaves the file in place.
 */
static int
ingest(struct hook *h, const struct arrival *a)
{
	char why[200], q[1200], calling[40];
	struct ingest_arrival ia = { a->path, a->calling_aet, a->called_aet,
	    a->peer, NULL, NULL };
	struct ingest_result *r;
	struct err e = { 0 };
	int rc;

	if ((r = malloc(sizeof *r)) == NULL) {
		log_error("store failed", "file=%s error=\"out of memory\"",
		    base_name(a->path));
		return -1;
	}
	ia.refused = senders_refusal(&h->senders, a->calling_aet, a->peer,
	    why, sizeof why);
	log_quote(a->calling_aet, calling, sizeof calling);
	if ((rc = ingest_file(&h->ingest, &ia, r, &e)) == -1)
		log_error("store failed", "file=%s error=%s",
		    base_name(a->path), log_quote(e.msg, q, sizeof q));
	else if (r->outcome == INGEST_QUARANTINED)
		log_warn("quarantined", "file=%s entry=%s calling_aet=%s "
		    "peer=%s reason=%s", base_name(a->path), r->q.name,
		    calling, a->peer[0] ? a->peer : "-",
		    log_quote(r->q.reason, q, sizeof q));
	else
		log_info("stored", "sop_instance_uid=%s object=%.16s size=%lld "
		    "calling_aet=%s new_object=%d peak_rss_kb=%ld",
		    r->attrs.sop_instance_uid, r->hash, r->size, calling,
		    r->new_object, peak_rss_kb());
	free(r);
	return rc;
}

static int
sweep(struct hook *h, long min_age)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat sb;
	time_t now = time(NULL);
	int failed = 0, done = 0;
	DIR *d = opendir(h->cfg.incoming_dir);

	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		log_error("sweep failed", "dir=%s error=\"%s\"",
		    h->cfg.incoming_dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof path, "%s/%s", h->cfg.incoming_dir,
		    de->d_name) >= (int)sizeof path)
			continue;
		if (lstat(path, &sb) == -1 || S_ISDIR(sb.st_mode) ||
		    now - sb.st_mtime < min_age)
			continue;
		struct arrival a = { path, "", "", "" };
		if (ingest(h, &a) == -1)
			failed++;
		else
			done++;
	}
	closedir(d);
	log_info("sweep done", "files=%d failed=%d", done, failed);
	return failed ? -1 : 0;
}

/*
 * The hook removes the file it takes (into the store or the quarantine):
 * a file elsewhere than the incoming directory is somebody's own, taken
 * only with --take.
 */
static int
in_incoming(const struct hook *h, const char *path)
{
	char dir[PATH_MAX], real_dir[PATH_MAX], real_in[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) + 
	    (slash == path), path) >= (int)sizeof dir)
		return 0;
	if (realpath(dir, real_dir) == NULL ||
	    realpath(h->cfg.incoming_dir, real_in) == NULL)
		return 0;
	return strcmp(real_dir, real_in) == 0;
}

static int
hook_open(struct hook *h)
{
	char q[600];
	struct err e = { 0 };

	if (ingest_open(&h->ingest, &h->cfg, &e) == -1) {
		log_error("cannot start", "error=%s",
		    log_quote(e.msg, q, sizeof q));
		return -1;
	}
	return 0;
}

/*
 * An acknowledged file must reach the index spool whatever stops
 * storage: storescp-front and gatewayd stop storescp by signalling its
 * process group, which a hook storescp started is in.  So the hook
 * leaves it for a session of its own (no group TERM or KILL reaches it)
 * and blocks TERM, INT and HUP while it works.  storescp-front runs
 * storescp with those ignored, which covers the moment between
 * storescp's fork and this point (an ignored signal stays ignored across
 * exec).  The descriptors storescp leaves open (storescp-front's log
 * pipe) are closed, so that nobody waits for the hook; a closed log
 * reader does not kill it either (SIGPIPE ignored).
 */
static void
detach(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	(void)setsid();		/* fails only for a group leader: fine */
	(void)close_range(3, ~0u, 0);
}

/* The sender: the arguments, else what storescp-front put in the
 * environment for this association. */
static const char *
sender(int argc, char **argv, int i, const char *env)
{
	const char *v;

	if (argc > i)
		return argv[i];
	return argc == 1 && (v = getenv(env)) != NULL ? v : "";
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sweep", no_argument, NULL, 's' },
		{ "min-age", required_argument, NULL, 'm' },
		{ "take", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct hook h;
	struct err e = { 0 };
	char q[600];
	long min_age = 0;
	int c, do_sweep = 0, take = 0, rc;
	char *end;

	log_init("storescp-hook");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			do_sweep = 1;
			break;
		case 't':
			take = 1;
			break;
		case 'm':
			min_age = strtol(optarg, &end, 10);
			if (*end != '\0' || min_age < 0) {
				fprintf(stderr, "storescp-hook: bad --min-age\n");
				return EX_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("storescp-hook %s\n", GW_VERSION);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (do_sweep ? argc != 0 || take : (argc < 1 || argc > 4)) {
		usage(stderr);
		return EX_USAGE;
	}
	if (config_load(&h.cfg, &e) == -1) {
		log_error("bad configuration", "error=%s",
		    log_quote(e.msg, q, sizeof q));
		return EX_CONFIG;
	}
	log_init("storescp-hook");	/* LOG_LEVEL may come from gateway.env */
	if (senders_from_env(&h.senders, &e) == -1) {
		log_error("bad configuration", "error=%s",
		    log_quote(e.msg, q, sizeof q));
		return EX_CONFIG;
	}
	if (!do_sweep && !take && !in_incoming(&h, argv[0])) {
		log_error("refused: not in the incoming directory (the hook "
		    "moves the file it takes; use --take to give it anyway)",
		    "file=%s incoming=%s", base_name(argv[0]),
		    h.cfg.incoming_dir);
		return EX_NOPERM;
	}
	if (!do_sweep && !take)
		detach();
	if (hook_open(&h) == -1)
		return EX_CANTCREAT;
	if (do_sweep) {
		rc = sweep(&h, min_age) == 0 ? EX_OK : EX_IOERR;
	} else {
		struct arrival a = { argv[0],
		    sender(argc, argv, 1, "STORESCP_FRONT_CALLING_AET"),
		    sender(argc, argv, 2, "STORESCP_FRONT_CALLED_AET"),
		    sender(argc, argv, 3, "STORESCP_FRONT_PEER") };
		rc = ingest(&h, &a) == 0 ? EX_OK : EX_IOERR;
	}
	ingest_close(&h.ingest);
	return rc;
}
