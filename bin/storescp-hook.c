/*
 * storescp-hook: take one file that dcmtk's storescp received, keep it.
 *
 *   storescp-hook [--take] FILE [CALLING_AET [CALLED_AET [PEER]]]
 *   storescp-hook --sweep [--min-age SECONDS]
 *
 * The file is parsed (enough to know it is DICOM we can index), hashed,
 * linked into the content store durably, and an index job is enqueued;
 * only then is the incoming file removed.  Anything unreadable goes to
 * the quarantine with a reason.  A crash at any point leaves the file in
 * incoming/, where --sweep (run by gatewayd at start) finds it again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
	struct store store;
	struct spool index;
	const char *allowed_aets;	/* PACS_ALLOWED_AETS, or NULL */
	struct netallow allowed_hosts;	/* PACS_ALLOWED_HOSTS */
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
	    "Environment: GATEWAY_DATA_DIR, PACS_STORAGE_PATH, GATEWAY_SPOOL_DIR,\n"
	    "GATEWAY_INCOMING_DIR, GATEWAY_QUARANTINE_DIR, LOG_LEVEL.\n"
	    "See storescp-hook(1).\n");
}

static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* Move path into the quarantine with a reason file beside it. */
static int
quarantine(struct hook *h, const struct arrival *a, const char *reason)
{
	char dst[PATH_MAX], rpath[PATH_MAX], now[32], text[2048], q[600];
	struct err e = { 0 };
	int n;

	pacs_timestamp(now);
	n = snprintf(dst, sizeof dst, "%s/%s-%s", h->cfg.quarantine_dir, now,
	    base_name(a->path));
	if (n < 0 || (size_t)n >= sizeof dst - 8)
		return -1;
	if (snprintf(rpath, sizeof rpath, "%s.reason", dst) >= (int)sizeof rpath)
		return -1;
	n = snprintf(text, sizeof text,
	    "reason=%s\nfile=%s\ncalling_aet=%s\ncalled_aet=%s\npeer=%s\n"
	    "quarantined_at=%s\n", reason, base_name(a->path),
	    a->calling_aet, a->called_aet, a->peer, now);
	if (fs_mkdirs(h->cfg.quarantine_dir, &e) == -1 ||
	    fs_write_atomic(rpath, text, (size_t)n, &e) == -1)
		goto fail;
	if (rename(a->path, dst) == -1) {
		if (errno != EXDEV) {
			err_sys(&e, "rename %s", a->path);
			goto fail;
		}
		if (fs_copy_durable(a->path, dst, &e) == -1)
			goto fail;
		unlink(a->path);
	}
	if (fs_sync_dir(h->cfg.quarantine_dir, &e) == -1)
		goto fail;
	log_warn("quarantined", "file=%s calling_aet=%s reason=%s",
	    base_name(a->path), a->calling_aet, log_quote(reason, q, sizeof q));
	return 0;
fail:
	log_error("quarantine failed", "file=%s error=%s", base_name(a->path),
	    log_quote(e.msg, q, sizeof q));
	return -1;
}

/* Parse and hash the mapped file; fills attrs and hash. */
static int
inspect(const void *map, size_t size, struct pacs_attrs *attrs,
    char hash[STORE_HASH_LEN + 1], struct err *e)
{
	struct dcm *d;
	int r;

	if (size == 0)
		return err_set(e, DCM_E_NOT_DICOM, "empty file");
	if (dcm_parse(map, size, 0, &d, e) == -1)
		return -1;
	r = pacs_extract(d, attrs, e);
	dcm_free(d);
	if (r == -1)
		return -1;
	return store_hash_buf(map, size, hash, e);
}

static int
enqueue_index(struct hook *h, const struct arrival *a,
    const struct pacs_attrs *attrs, const char *hash, const struct stat *sb,
    struct err *e)
{
	char body[2048], when[32];
	int n;

	pacs_timestamp_at(&sb->st_mtim, when);	/* when storescp wrote it */
	n = snprintf(body, sizeof body,
	    "object=%s\nsize=%lld\nsop_instance_uid=%s\nreceipt=%s:%s\n"
	    "calling_aet=%s\ncalled_aet=%s\npeer=%s\nreceived_at=%s\n",
	    hash, (long long)sb->st_size, attrs->sop_instance_uid,
	    base_name(a->path), hash, a->calling_aet, a->called_aet, a->peer,
	    when);
	if (n < 0 || (size_t)n >= sizeof body)
		return err_set(e, EINVAL, "index job too long");
	return spool_enqueue(&h->index, NULL, body, (size_t)n, 0, e);
}

/* 1 when ae is in the comma-separated list (blanks around names). */
static int
ae_listed(const char *list, const char *ae)
{
	char buf[2048], *tok, *save = NULL;
	size_t n;

	snprintf(buf, sizeof buf, "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		tok += strspn(tok, " ");
		for (n = strlen(tok); n > 0 && tok[n - 1] == ' '; n--)
			tok[n - 1] = '\0';
		if (*tok != '\0' && strcmp(tok, ae) == 0)
			return 1;
	}
	return 0;
}

/*
 * Who may store (PACS_ALLOWED_AETS, PACS_ALLOWED_HOSTS): storescp cannot
 * refuse by calling AE title or address, so a file from anyone else is
 * quarantined with the reason, never indexed or sent on.  A file the
 * sweep finds has lost its sender and is taken (see storescp-hook(1)).
 */
static const char *
refusal(const struct hook *h, const struct arrival *a, char *why,
    size_t whysz)
{
	if (a->calling_aet[0] == '\0' && a->peer[0] == '\0')
		return NULL;	/* the sweep: the sender is not known */
	if (h->allowed_aets != NULL && !ae_listed(h->allowed_aets,
	    a->calling_aet)) {
		snprintf(why, whysz, "calling AE title \"%s\" is not in "
		    "PACS_ALLOWED_AETS", a->calling_aet);
		return why;
	}
	if (!netallow_text(&h->allowed_hosts, a->peer)) {
		snprintf(why, whysz, "peer address %s is not in "
		    "PACS_ALLOWED_HOSTS", a->peer);
		return why;
	}
	return NULL;
}

/* 0 stored or quarantined; -1 on a failure that leaves the file in place. */
static int
ingest(struct hook *h, const struct arrival *a)
{
	char why[200];
	const char *refused;
	char hash[STORE_HASH_LEN + 1], q[600];
	struct pacs_attrs attrs;
	struct err e = { 0 };
	struct stat sb;
	void *map = NULL;
	int fd, r, added;

	if ((refused = refusal(h, a, why, sizeof why)) != NULL)
		return quarantine(h, a, refused);
	if ((fd = open(a->path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &sb) == -1) {
		err_sys(&e, "open %s", a->path);
		if (fd != -1)
			close(fd);
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return quarantine(h, a, "not a regular file");
	}
	if (sb.st_size > 0 && (map = mmap(NULL, (size_t)sb.st_size, PROT_READ,
	    MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
		err_sys(&e, "mmap %s", a->path);
		close(fd);
		goto fail;
	}
	close(fd);
	r = inspect(map, (size_t)sb.st_size, &attrs, hash, &e);
	if (map != NULL)
		munmap(map, (size_t)sb.st_size);
	if (r == -1)
		return quarantine(h, a, e.msg);
	if ((added = store_adopt(&h->store, a->path, hash, &e)) == -1 ||
	    enqueue_index(h, a, &attrs, hash, &sb, &e) == -1)
		goto fail;
	if (unlink(a->path) == -1 && errno != ENOENT) {
		err_sys(&e, "unlink %s", a->path);
		goto fail;
	}
	/* No fsync of incoming/ here: if the unlink is lost in a crash, the
	 * sweep finds the file again and its receipt key makes that harmless. */
	log_info("stored", "sop_instance_uid=%s object=%.16s size=%lld "
	    "calling_aet=%s new_object=%d", attrs.sop_instance_uid, hash,
	    (long long)sb.st_size, a->calling_aet, added);
	return 0;
fail:
	log_error("store failed", "file=%s error=%s", base_name(a->path),
	    log_quote(e.msg, q, sizeof q));
	return -1;
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
allow_lists(struct hook *h)
{
	const char *v = getenv("PACS_ALLOWED_AETS");

	h->allowed_aets = v != NULL && *v != '\0' ? v : NULL;
	h->allowed_hosts.n = 0;
	if ((v = getenv("PACS_ALLOWED_HOSTS")) != NULL && *v != '\0' &&
	    netallow_parse(&h->allowed_hosts, v) == -1) {
		log_error("bad configuration", "error=\"bad PACS_ALLOWED_HOSTS: "
		    "comma-separated addresses or networks (10.0.0.0/8, "
		    "fd00::/8)\"");
		return -1;
	}
	return 0;
}

static int
hook_open(struct hook *h)
{
	char dir[PATH_MAX], q[600];
	struct err e = { 0 };

	if (store_open(&h->store, h->cfg.storage_path, 1, &e) == -1 ||
	    config_spool_path(&h->cfg, "index", dir, sizeof dir, &e) == -1 ||
	    spool_open(&h->index, dir, 1, &e) == -1) {
		log_error("cannot start", "error=%s",
		    log_quote(e.msg, q, sizeof q));
		return -1;
	}
	return 0;
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
	if (allow_lists(&h) == -1)
		return EX_CONFIG;
	if (!do_sweep && !take && !in_incoming(&h, argv[0])) {
		log_error("refused: not in the incoming directory (the hook "
		    "moves the file it takes; use --take to give it anyway)",
		    "file=%s incoming=%s", base_name(argv[0]),
		    h.cfg.incoming_dir);
		return EX_NOPERM;
	}
	if (hook_open(&h) == -1)
		return EX_CANTCREAT;
	if (do_sweep) {
		rc = sweep(&h, min_age) == 0 ? EX_OK : EX_IOERR;
	} else {
		struct arrival a = { argv[0], argc > 1 ? argv[1] : "",
		    argc > 2 ? argv[2] : "", argc > 3 ? argv[3] : "" };
		rc = ingest(&h, &a) == 0 ? EX_OK : EX_IOERR;
	}
	spool_close(&h.index);
	return rc;
}
