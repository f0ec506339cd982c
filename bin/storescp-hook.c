/*
 * storescp-hook: keep what dcmtk's storescp received.
 *
 *   storescp-hook --watch
 *   storescp-hook [--take] FILE [CALLING_AET [CALLED_AET [PEER]]]
 *   storescp-hook --sweep [--min-age SECONDS]
 *
 * --watch is how the gateway runs it: resident, it takes the files
 * storescp writes into each association's directory in incoming/ (lib/
 * archive incoming), each once it is whole, in batches.  One FILE is the
 * per-file form (storescp-front --hook, or by hand); --sweep takes what
 * is left.
 *
 * lib/archive/ingest does the work: each file is parsed whole, its UIDs
 * checked, hashed (streamed), linked into the content store durably, and
 * an index job is enqueued; only then is the incoming file removed.
 * Anything unusable, or from a sender off PACS_ALLOWED_AETS/_HOSTS, goes
 * to the quarantine with the reason.  A crash at any point leaves the
 * file in incoming/, where --watch when it starts again, and --sweep (run
 * by gatewayd at start and every GATEWAY_SWEEP_INTERVAL_SECONDS), find
 * it again.  A per-file hook storescp started leaves storage's process
 * group first, so stopping storage does not stop it (detach()).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/inotify.h>
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

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: storescp-hook --watch\n"
	    "       storescp-hook [--take] FILE [CALLING_AET [CALLED_AET [PEER]]]\n"
	    "       storescp-hook --sweep [--min-age SECONDS]\n"
	    "\n"
	    "Moves what storescp received into the content store and queues\n"
	    "it for indexing; quarantines what is not usable DICOM.\n"
	    "\n"
	    "  --watch          stay, and take each file storescp writes into\n"
	    "                   its association's directory in incoming/\n"
	    "  --sweep          process every file left in the incoming directory\n"
	    "  --min-age SECS   with --sweep, skip files younger than SECS\n"
	    "                   (default 0)\n"
	    "  --take           take FILE even outside the incoming directory\n"
	    "                   (it is moved into the store or the quarantine)\n"
	    "  -h, --help       this help\n"
	    "  --version        print the version\n"
	    "\n"
	    "Without CALLING_AET, CALLED_AET and PEER the sender comes from\n"
	    "STORESCP_FRONT_CALLING_AET, _CALLED_AET and _PEER (storescp-front\n"
	    "--hook sets them for each association); with --watch, from each\n"
	    "association's .sender.\n"
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

/* One file's outcome, logged; 0, or -1 for one left in place. */
static int
report(const struct ingest_arrival *a, const struct ingest_result *r)
{
	char q[1200], calling[40];

	log_quote(a->calling_aet, calling, sizeof calling);
	if (r->outcome == INGEST_FAILED) {
		log_error("store failed", "file=%s error=%s",
		    base_name(a->path), log_quote(r->err.msg, q, sizeof q));
		return -1;
	}
	if (r->outcome == INGEST_QUARANTINED)
		log_warn("quarantined", "file=%s entry=%s calling_aet=%s "
		    "peer=%s reason=%s", base_name(a->path), r->q.name,
		    calling, a->peer[0] ? a->peer : "-",
		    log_quote(r->q.reason, q, sizeof q));
	else
		log_info("stored", "sop_instance_uid=%s object=%.16s size=%lld "
		    "calling_aet=%s new_object=%d peak_rss_kb=%ld",
		    r->attrs.sop_instance_uid, r->hash, r->size, calling,
		    r->new_object, peak_rss_kb());
	return 0;
}

/*
 * The file at path from sender s, into a: the sender checked against
 * PACS_ALLOWED_AETS/_HOSTS here too (senders_refusal, why its words):
 * storescp-front refused anyone else at the association; this is the
 * second line, for files that come another way.
 */
static void
arrival(const struct hook *h, struct ingest_arrival *a, const char *path,
    const struct incoming_sender *s, char *why, size_t whysz)
{
	*a = (struct ingest_arrival){ path, s->calling_aet, s->called_aet,
	    s->peer, NULL, NULL };
	a->refused = senders_refusal(&h->senders, s->calling_aet, s->peer,
	    why, whysz);
}

/* One file, from the sender given. */
static int
ingest(struct hook *h, const char *path, const struct incoming_sender *s)
{
	char why[200];
	struct ingest_arrival ia;
	struct ingest_result *r = malloc(sizeof *r);
	int rc;

	if (r == NULL) {
		log_error("store failed", "file=%s error=\"out of memory\"",
		    base_name(path));
		return -1;
	}
	arrival(h, &ia, path, s, why, sizeof why);
	ingest_files(&h->ingest, &ia, 1, r);
	rc = report(&ia, r);
	free(r);
	return rc;
}

/* Files to ingest together (lib/archive ingest_files): one flush of
 * the file system for all of them. */
#define BATCH_MAX	64

struct batch {
	struct ingest_arrival a[BATCH_MAX];
	struct ingest_result r[BATCH_MAX];
	char path[BATCH_MAX][PATH_MAX];
	char why[BATCH_MAX][200];
	size_t n;
};

/*
 * What takes batches: in line (the sweep), or (--watch) with a second
 * thread that flushes one batch (ingest_commit) while the first reads
 * the next (ingest_read): the disk's waits off the reading's path.
 */
struct taker {
	struct hook *h;
	struct batch *b[2];
	int cur;			/* the batch being filled */
	int threaded;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch *flushing;		/* the thread's, or NULL */
	int quit;
	int done, failed;		/* taken, left in place (under mu) */
};

/* A read batch stored, each file logged, the totals counted. */
static void
commit(struct taker *tk, struct batch *b)
{
	int failed = 0;

	ingest_commit(&tk->h->ingest, b->a, b->n, b->r);
	for (size_t i = 0; i < b->n; i++) {
		/* Gone before it was read: storescp removed a file it
		 * failed to receive, or another sweep took it. */
		if (b->r[i].outcome == INGEST_FAILED &&
		    b->r[i].err.code == ENOENT && access(b->a[i].path,
		    F_OK) == -1 && errno == ENOENT) {
			log_debug("gone before it was taken", "file=%s",
			    base_name(b->a[i].path));
			continue;
		}
		failed += report(&b->a[i], &b->r[i]) == -1;
	}
	pthread_mutex_lock(&tk->mu);
	tk->done += (int)b->n - failed;
	tk->failed += failed;
	pthread_mutex_unlock(&tk->mu);
	b->n = 0;
}

static void *
flusher(void *arg)
{
	struct taker *tk = arg;

	pthread_mutex_lock(&tk->mu);
	for (;;) {
		while (tk->flushing == NULL && !tk->quit)
			pthread_cond_wait(&tk->cv, &tk->mu);
		if (tk->flushing == NULL)
			break;
		pthread_mutex_unlock(&tk->mu);
		commit(tk, tk->flushing);
		pthread_mutex_lock(&tk->mu);
		tk->flushing = NULL;
		pthread_cond_broadcast(&tk->cv);
	}
	pthread_mutex_unlock(&tk->mu);
	return NULL;
}

static int
taker_open(struct taker *tk, struct hook *h, int threaded)
{
	memset(tk, 0, sizeof *tk);
	tk->h = h;
	if ((tk->b[0] = calloc(1, sizeof *tk->b[0])) == NULL ||
	    (tk->b[1] = calloc(1, sizeof *tk->b[1])) == NULL) {
		free(tk->b[0]);
		return -1;
	}
	pthread_mutex_init(&tk->mu, NULL);
	pthread_cond_init(&tk->cv, NULL);
	if (threaded) {
		/* TERM must reach the reading thread (its poll). */
		sigset_t block, old;

		sigemptyset(&block);
		sigaddset(&block, SIGTERM);
		sigaddset(&block, SIGINT);
		sigaddset(&block, SIGHUP);
		pthread_sigmask(SIG_BLOCK, &block, &old);
		tk->threaded = pthread_create(&tk->thread, NULL, flusher,
		    tk) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	return 0;
}

/* Until the thread has flushed what it was given. */
static void
drain(struct taker *tk)
{
	pthread_mutex_lock(&tk->mu);
	while (tk->flushing != NULL)
		pthread_cond_wait(&tk->cv, &tk->mu);
	pthread_mutex_unlock(&tk->mu);
}

/* The batch being filled: read, then stored (by the thread, or here). */
static void
batch_run(struct taker *tk)
{
	struct batch *b = tk->b[tk->cur];

	if (b->n == 0)
		return;
	ingest_read(&tk->h->ingest, b->a, b->n, b->r);
	if (!tk->threaded) {
		commit(tk, b);
		return;
	}
	drain(tk);
	pthread_mutex_lock(&tk->mu);
	tk->flushing = b;
	pthread_cond_broadcast(&tk->cv);
	pthread_mutex_unlock(&tk->mu);
	tk->cur ^= 1;
}

/* Everything given, stored: the totals final. */
static void
taker_sync(struct taker *tk)
{
	batch_run(tk);
	drain(tk);
}

static void
taker_close(struct taker *tk)
{
	taker_sync(tk);
	if (tk->threaded) {
		pthread_mutex_lock(&tk->mu);
		tk->quit = 1;
		pthread_cond_broadcast(&tk->cv);
		pthread_mutex_unlock(&tk->mu);
		pthread_join(tk->thread, NULL);
	}
	pthread_mutex_destroy(&tk->mu);
	pthread_cond_destroy(&tk->cv);
	free(tk->b[0]);
	free(tk->b[1]);
}

/* dir/name from sender s (NULL: not known), run when the batch is full. */
static void
batch_add(struct taker *tk, const char *dir, const char *name,
    const struct incoming_sender *s)
{
	static const struct incoming_sender unknown;
	struct batch *b = tk->b[tk->cur];
	struct ingest_arrival *a = &b->a[b->n];

	if (s == NULL)
		s = &unknown;
	if (snprintf(b->path[b->n], PATH_MAX, "%s/%s", dir, name) >=
	    PATH_MAX)
		return;
	arrival(tk->h, a, b->path[b->n], s, b->why[b->n], sizeof b->why[b->n]);
	if (++b->n == BATCH_MAX)
		batch_run(tk);
}

/*
 * An association directory (lib/archive incoming) whose association is
 * over: every file in it taken, then the directory removed.  One that
 * still lasts is left alone: 0.  -1 when something stays.
 */
static int
take_assoc(struct taker *tk, const char *dir)
{
	struct incoming_sender s;
	struct err e = { 0 };
	struct dirent *de;
	DIR *d;
	int fd, rc, failed;

	if ((rc = incoming_claim(dir, &fd, &e)) != 1) {
		if (rc == -1)
			log_error("cannot take an association's files",
			    "dir=%s error=\"%s\"", base_name(dir), e.msg);
		return rc;
	}
	if (incoming_sender(dir, &s, &e) == -1)
		memset(&s, 0, sizeof s);	/* the sweep: not known */
	taker_sync(tk);
	failed = tk->failed;
	if ((d = opendir(dir)) == NULL) {
		rc = errno == ENOENT ? 0 : -1;
		if (rc == -1)
			log_error("cannot take an association's files",
			    "dir=%s error=\"%s\"", base_name(dir),
			    strerror(errno));
		if (fd != -1)
			close(fd);
		return rc;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			batch_add(tk, dir, de->d_name, &s);
	closedir(d);
	taker_sync(tk);
	rc = 0;
	if (tk->failed > failed || incoming_end(dir, &e) == -1) {
		if (e.code != 0)
			log_error("cannot remove an association's directory",
			    "dir=%s error=\"%s\"", base_name(dir), e.msg);
		rc = -1;
	}
	if (fd != -1)
		close(fd);
	return rc;
}

#define ABANDONED_S	60

/*
 * Everything left in incoming/: the files of associations that are over
 * (their directories), and files put there straight that are at least
 * min_age seconds old.
 */
static int
sweep(struct hook *h, long min_age)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat sb;
	struct taker tk;
	time_t now = time(NULL);
	int failed = 0, dirs = 0;
	DIR *d;

	if (taker_open(&tk, h, 0) == -1) {
		log_error("sweep failed", "error=\"out of memory\"");
		return -1;
	}
	if ((d = opendir(h->cfg.incoming_dir)) == NULL) {
		taker_close(&tk);
		if (errno == ENOENT)
			return 0;
		log_error("sweep failed", "dir=%s error=\"%s\"",
		    h->cfg.incoming_dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    snprintf(path, sizeof path, "%s/%s", h->cfg.incoming_dir,
		    de->d_name) >= (int)sizeof path ||
		    lstat(path, &sb) == -1)
			continue;
		if (de->d_name[0] == '.') {
			/* A front killed while it made its directory: only
			 * its .sender is in it. */
			if (S_ISDIR(sb.st_mode) &&
			    incoming_is_assoc(de->d_name + 1) &&
			    now - sb.st_mtime >= ABANDONED_S)
				(void)incoming_end(path, NULL);
			continue;
		}
		if (S_ISDIR(sb.st_mode)) {
			if (incoming_is_assoc(de->d_name)) {
				failed += take_assoc(&tk, path) == -1;
				dirs++;
			}
			continue;
		}
		if (now - sb.st_mtime >= min_age)
			batch_add(&tk, h->cfg.incoming_dir, de->d_name, NULL);
	}
	closedir(d);
	taker_close(&tk);
	failed += tk.failed;
	log_info("sweep done", "files=%d associations=%d failed=%d", tk.done,
	    dirs, failed);
	return failed ? -1 : 0;
}

/* ------------------------------------------------------------ --watch */

/*
 * An association directory being watched.  names: the files seen
 * created (IN_CREATE), in order, not taken yet; the first nready of them
 * are whole (a later one was created: storescp is past them).  Files
 * made before the watch began are not in names: they wait for the end.
 *
 * The newest file is whole too once storescp has closed it and QUIET_MS
 * have passed with no new file: storescp deletes a file it failed to
 * receive as soon as it has closed it, so one still there that long
 * after is whole.  That bounds how long the last image of an association
 * a modality holds open waits.
 */
#define QUIET_MS	5000

struct adir {
	int wd;
	char path[PATH_MAX];
	int ended;		/* .sender's last writer closed it */
	int have_sender;
	struct incoming_sender s;
	char (*names)[NAME_MAX + 1];
	size_t n, cap, nready;
	long long closed_at;	/* the newest file closed (mono_ms), or 0 */
};

struct watch {
	struct hook *h;
	int ifd, wd_incoming;
	struct adir *dirs;
	size_t ndirs, cap;
	struct taker tk;
	int rescan;		/* look at every directory again */
};

static volatile sig_atomic_t stopping;

static void
on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static struct adir *
adir_by_wd(struct watch *w, int wd)
{
	for (size_t i = 0; i < w->ndirs; i++)
		if (w->dirs[i].wd == wd)
			return &w->dirs[i];
	return NULL;
}

static void
adir_forget(struct watch *w, struct adir *d)
{
	free(d->names);
	*d = w->dirs[--w->ndirs];
}

/* Watch the association directory incoming/name (again: a no-op), and
 * see whether its association is over already. */
static void
adir_add(struct watch *w, const char *name)
{
	struct adir *d;
	struct err e = { 0 };
	char path[PATH_MAX];
	int wd, fd;

	if (snprintf(path, sizeof path, "%s/%s", w->h->cfg.incoming_dir,
	    name) >= (int)sizeof path)
		return;
	wd = inotify_add_watch(w->ifd, path, IN_CREATE | IN_CLOSE_WRITE |
	    IN_ONLYDIR | IN_DONT_FOLLOW);
	if (wd == -1) {
		if (errno != ENOENT)
			log_error("cannot watch an association's directory",
			    "dir=%s error=\"%s\"", name, strerror(errno));
		return;
	}
	if ((d = adir_by_wd(w, wd)) == NULL) {
		if (w->ndirs == w->cap) {
			size_t cap = w->cap ? 2 * w->cap : 16;
			void *p = realloc(w->dirs, cap * sizeof *w->dirs);

			if (p == NULL) {
				inotify_rm_watch(w->ifd, wd);
				return;
			}
			w->dirs = p;
			w->cap = cap;
		}
		d = &w->dirs[w->ndirs++];
		memset(d, 0, sizeof *d);
		d->wd = wd;
		snprintf(d->path, sizeof d->path, "%s", path);
	}
	/* Added before this look, so an end after it is an event. */
	if (incoming_claim(path, &fd, &e) == 1)
		d->ended = 1;
	if (fd != -1)
		close(fd);
}

static void
adir_created(struct adir *d, const char *name)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 16;
		void *p = realloc(d->names, cap * sizeof *d->names);

		if (p == NULL)
			return;		/* taken at the end instead */
		d->names = p;
		d->cap = cap;
	}
	d->nready = d->n;	/* storescp is past every earlier one */
	d->closed_at = 0;
	snprintf(d->names[d->n++], sizeof d->names[0], "%s", name);
}

/* storescp closed name: the newest file's quiet time starts. */
static void
adir_closed(struct adir *d, const char *name)
{
	if (d->n > d->nready && strcmp(d->names[d->n - 1], name) == 0)
		d->closed_at = mono_ms();
}

/* The newest files that have been closed and quiet for QUIET_MS, made
 * ready; how long until the next one is (-1: none waits). */
static int
quiet(struct watch *w)
{
	long long now = mono_ms(), next = -1;

	for (size_t i = 0; i < w->ndirs; i++) {
		struct adir *d = &w->dirs[i];
		long long left;

		if (d->closed_at == 0 || d->n == d->nready)
			continue;
		if ((left = d->closed_at + QUIET_MS - now) <= 0) {
			d->nready = d->n;
			d->closed_at = 0;
		} else if (next == -1 || left < next)
			next = left;
	}
	return (int)next;
}

/* Every association directory in incoming/, watched. */
static void
scan(struct watch *w)
{
	struct dirent *de;
	DIR *dd = opendir(w->h->cfg.incoming_dir);

	w->rescan = 0;
	if (dd == NULL) {
		log_error("cannot read incoming/", "dir=%s error=\"%s\"",
		    w->h->cfg.incoming_dir, strerror(errno));
		return;
	}
	while ((de = readdir(dd)) != NULL)
		if (incoming_is_assoc(de->d_name))
			adir_add(w, de->d_name);
	closedir(dd);
}

static void
on_event(struct watch *w, const struct inotify_event *ev)
{
	struct adir *d;

	if (ev->mask & IN_Q_OVERFLOW) {
		/* Events lost: what each directory holds is not known in
		 * order any more; its files wait for its end. */
		for (size_t i = 0; i < w->ndirs; i++)
			w->dirs[i].n = w->dirs[i].nready = 0;
		w->rescan = 1;
		return;
	}
	if (ev->wd == w->wd_incoming) {
		if ((ev->mask & IN_ISDIR) && ev->len > 0 &&
		    incoming_is_assoc(ev->name))
			adir_add(w, ev->name);
		return;
	}
	if ((d = adir_by_wd(w, ev->wd)) == NULL)
		return;
	if (ev->mask & IN_IGNORED) {		/* removed */
		adir_forget(w, d);
		return;
	}
	if (ev->len == 0 || (ev->mask & IN_ISDIR))
		return;
	if ((ev->mask & IN_CREATE) && ev->name[0] != '.')
		adir_created(d, ev->name);
	else if ((ev->mask & IN_CLOSE_WRITE) && strcmp(ev->name,
	    ".sender") == 0)
		d->ended = 1;
	else if (ev->mask & IN_CLOSE_WRITE)
		adir_closed(d, ev->name);
}

/* The whole files of the associations that last, then the associations
 * that are over, as batches. */
static void
work(struct watch *w)
{
	for (size_t i = 0; i < w->ndirs; i++) {
		struct adir *d = &w->dirs[i];
		struct err e = { 0 };

		if (d->nready == 0)
			continue;
		if (!d->have_sender && incoming_sender(d->path, &d->s,
		    &e) == 0)
			d->have_sender = 1;
		for (size_t j = 0; j < d->nready; j++)
			batch_add(&w->tk, d->path, d->names[j],
			    d->have_sender ? &d->s : NULL);
		memmove(d->names, d->names + d->nready,
		    (d->n - d->nready) * sizeof d->names[0]);
		d->n -= d->nready;
		d->nready = 0;
	}
	batch_run(&w->tk);
	for (size_t i = 0; i < w->ndirs; i++) {
		struct adir *d = &w->dirs[i];

		if (!d->ended)
			continue;
		d->ended = 0;
		/* What failed stays: the next look (or the sweep) again. */
		if (take_assoc(&w->tk, d->path) == -1)
			w->rescan = 1;
	}
}

#define WATCH_RETRY_MS	(60 * 1000)

/*
 * Resident: each association's files as storescp writes them, without an
 * exec per file.  A file is taken once the next one of its association
 * is created, or the association is over (lib/archive incoming); what
 * arrives together is one batch (one flush).  Until TERM.
 */
static int
watch(struct hook *h)
{
	static union {
		struct inotify_event ev;
		char buf[64 * 1024];
	} u;
	struct watch w = { .h = h, .ifd = -1, .wd_incoming = -1, .rescan = 1 };
	struct sigaction sa = { 0 };
	int rc = 0;

	sa.sa_handler = on_stop;	/* no SA_RESTART: poll returns */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if ((w.ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) == -1 ||
	    (w.wd_incoming = inotify_add_watch(w.ifd, h->cfg.incoming_dir,
	    IN_MOVED_TO | IN_CREATE | IN_ONLYDIR)) == -1) {
		log_error("cannot watch incoming/", "dir=%s error=\"%s\"",
		    h->cfg.incoming_dir, strerror(errno));
		if (w.ifd != -1)
			close(w.ifd);
		return -1;
	}
	if (taker_open(&w.tk, h, 1) == -1) {
		log_error("cannot watch incoming/", "error=\"out of memory\"");
		close(w.ifd);
		return -1;
	}
	log_info("watching", "dir=%s", h->cfg.incoming_dir);
	while (!stopping) {
		struct pollfd p = { w.ifd, POLLIN, 0 };
		ssize_t n;
		int wait_ms;

		if (w.rescan)
			scan(&w);
		wait_ms = quiet(&w);
		work(&w);
		if (stopping)
			break;
		if (w.rescan && (wait_ms == -1 || wait_ms > WATCH_RETRY_MS))
			wait_ms = WATCH_RETRY_MS;
		if (poll(&p, 1, wait_ms) == 0)
			continue;
		while ((n = read(w.ifd, u.buf, sizeof u.buf)) > 0)
			for (char *c = u.buf; c < u.buf + n;) {
				const struct inotify_event *ev = (void *)c;

				on_event(&w, ev);
				c += sizeof *ev + ev->len;
			}
		if (n == -1 && errno != EAGAIN && errno != EINTR) {
			log_error("cannot watch incoming/", "error=\"%s\"",
			    strerror(errno));
			rc = -1;
			break;
		}
	}
	for (size_t i = 0; i < w.ndirs; i++)
		free(w.dirs[i].names);
	free(w.dirs);
	taker_close(&w.tk);
	close(w.ifd);
	return rc;
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
sender_of(int argc, char **argv, int i, const char *env)
{
	const char *v;

	if (argc > i)
		return argv[i];
	return argc == 1 && (v = getenv(env)) != NULL ? v : "";
}

static void
sender(int argc, char **argv, struct incoming_sender *s)
{
	snprintf(s->calling_aet, sizeof s->calling_aet, "%s",
	    sender_of(argc, argv, 1, "STORESCP_FRONT_CALLING_AET"));
	snprintf(s->called_aet, sizeof s->called_aet, "%s",
	    sender_of(argc, argv, 2, "STORESCP_FRONT_CALLED_AET"));
	snprintf(s->peer, sizeof s->peer, "%s",
	    sender_of(argc, argv, 3, "STORESCP_FRONT_PEER"));
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sweep", no_argument, NULL, 's' },
		{ "watch", no_argument, NULL, 'w' },
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
	int c, do_sweep = 0, do_watch = 0, take = 0, rc;
	char *end;

	log_init("storescp-hook");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			do_sweep = 1;
			break;
		case 'w':
			do_watch = 1;
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
	if (do_sweep + do_watch > 1 || (do_sweep || do_watch ? argc != 0 ||
	    take : (argc < 1 || argc > 4))) {
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
	if (!do_sweep && !do_watch && !take && !in_incoming(&h, argv[0])) {
		log_error("refused: not in the incoming directory (the hook "
		    "moves the file it takes; use --take to give it anyway)",
		    "file=%s incoming=%s", base_name(argv[0]),
		    h.cfg.incoming_dir);
		return EX_NOPERM;
	}
	if (!do_sweep && !do_watch && !take)
		detach();
	if (hook_open(&h) == -1)
		return EX_CANTCREAT;
	if (do_watch) {
		rc = fs_mkdirs(h.cfg.incoming_dir, &e) == -1 || watch(&h) == -1 ?
		    EX_IOERR : EX_OK;
	} else if (do_sweep) {
		rc = sweep(&h, min_age) == 0 ? EX_OK : EX_IOERR;
	} else {
		struct incoming_sender s;

		sender(argc, argv, &s);
		rc = ingest(&h, argv[0], &s) == 0 ? EX_OK : EX_IOERR;
	}
	ingest_close(&h.ingest);
	return rc;
}
