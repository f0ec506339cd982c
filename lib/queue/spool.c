#include "queue/queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/base.h"

static const char *const subdirs[] = { "tmp", "new", "cur", "failed" };

static int
sub_path(const struct spool *s, const char *sub, const char *name,
    char *out, size_t outsz, struct err *e)
{
	int n = name ? snprintf(out, outsz, "%s/%s/%s", s->dir, sub, name)
	    : snprintf(out, outsz, "%s/%s", s->dir, sub);

	if (n < 0 || (size_t)n >= outsz)
		return err_set(e, ENAMETOOLONG, "spool path too long");
	return 0;
}

/* tmp/NAME.PID: two processes writing a job of the same name at once
 * (dcmindex and gatewayctl resend, say) never write the same file. */
static int
tmp_path(const struct spool *s, const char *name, char *out, size_t outsz,
    struct err *e)
{
	int n = snprintf(out, outsz, "%s/tmp/%s.%ld", s->dir, name,
	    (long)getpid());

	if (n < 0 || (size_t)n >= outsz)
		return err_set(e, ENAMETOOLONG, "spool path too long");
	return 0;
}

static int
wake_path(const struct spool *s, char *out, size_t outsz, struct err *e)
{
	int n = snprintf(out, outsz, "%s/wake", s->dir);

	if (n < 0 || (size_t)n >= outsz)
		return err_set(e, ENAMETOOLONG, "spool path too long");
	return 0;
}

static int
valid_name(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n < SPOOL_NAME_MAX && name[0] != '.' &&
	    strchr(name, '/') == NULL;
}

int
spool_open(struct spool *s, const char *dir, int create, struct err *e)
{
	char p[PATH_MAX];
	struct stat st;

	memset(s, 0, sizeof *s);
	s->wake_fd = s->wake_keep = -1;
	if (snprintf(s->dir, sizeof s->dir, "%s", dir) >= (int)sizeof s->dir)
		return err_set(e, ENAMETOOLONG, "spool path too long");
	for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
		if (sub_path(s, subdirs[i], NULL, p, sizeof p, e) == -1)
			return -1;
		if (create && fs_mkdirs(p, e) == -1)
			return -1;
		if (stat(p, &st) == -1 || !S_ISDIR(st.st_mode))
			return err_set(e, ENOENT, "spool %s: no directory %s/",
			    dir, subdirs[i]);
	}
	if (wake_path(s, p, sizeof p, e) == -1)
		return -1;
	if (create && mkfifo(p, 0620) == -1 && errno != EEXIST)
		return err_sys(e, "mkfifo %s", p);
	return 0;
}

void
spool_close(struct spool *s)
{
	if (s->wake_fd != -1)
		close(s->wake_fd);
	if (s->wake_keep != -1)
		close(s->wake_keep);
	s->wake_fd = s->wake_keep = -1;
	free(s->pending);
	s->pending = NULL;
	s->npending = s->cappending = 0;
}

void
spool_new_name(struct spool *s, char name[SPOOL_NAME_MAX])
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	snprintf(name, SPOOL_NAME_MAX, "%010lld.%06ld.%ld_%u",
	    (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(), s->seq++);
}

static int
remember_pending(struct spool *s, const char *name, struct err *e)
{
	/* The same name twice in one batch is one job (rewritten in tmp/). */
	for (size_t i = 0; i < s->npending; i++)
		if (strcmp(s->pending[i], name) == 0)
			return 0;
	if (s->npending == s->cappending) {
		size_t cap = s->cappending ? s->cappending * 2 : 64;
		void *p = realloc(s->pending, cap * sizeof *s->pending);
		if (p == NULL)
			return err_sys(e, "malloc");
		s->pending = p;
		s->cappending = cap;
	}
	snprintf(s->pending[s->npending++], SPOOL_NAME_MAX, "%s", name);
	return 0;
}

static int
write_tmp(struct spool *s, const char *name, const char *body, size_t len,
    int sync, struct err *e)
{
	char tmp[PATH_MAX];
	int fd;

	if (tmp_path(s, name, tmp, sizeof tmp, e) == -1)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		return err_sys(e, "spool %s: create %s", s->dir, tmp);
	if (fs_write_all(fd, body, len, e) == -1 ||
	    (sync && fsync(fd) == -1)) {
		if (e && e->code == 0)
			err_sys(e, "fsync");
		close(fd);
		unlink(tmp);
		return err_wrap(e, "spool %s: job %s", s->dir, name);
	}
	if (close(fd) == -1) {
		unlink(tmp);
		return err_sys(e, "spool %s: close %s", s->dir, tmp);
	}
	return 0;
}

static int
publish(struct spool *s, const char *name, struct err *e)
{
	char from[PATH_MAX], to[PATH_MAX];

	if (tmp_path(s, name, from, sizeof from, e) == -1 ||
	    sub_path(s, "new", name, to, sizeof to, e) == -1)
		return -1;
	if (rename(from, to) == -1)
		return err_sys(e, "spool: rename %s to new/", from);
	return 0;
}

int
spool_enqueue(struct spool *s, const char *name, const char *body,
    size_t len, unsigned flags, struct err *e)
{
	char gen[SPOOL_NAME_MAX], dir[PATH_MAX];

	if (name == NULL) {
		spool_new_name(s, gen);
		name = gen;
	} else if (!valid_name(name)) {
		return err_set(e, EINVAL, "spool: bad job name \"%s\"", name);
	}
	if (flags & SPOOL_DEFER) {
		if (write_tmp(s, name, body, len, 0, e) == -1)
			return -1;
		return remember_pending(s, name, e);
	}
	if (write_tmp(s, name, body, len, 1, e) == -1 ||
	    publish(s, name, e) == -1 ||
	    sub_path(s, "new", NULL, dir, sizeof dir, e) == -1 ||
	    fs_sync_dir(dir, e) == -1)
		return -1;
	spool_wake(s);
	return 0;
}

int
spool_flush(struct spool *s, struct err *e)
{
	char dir[PATH_MAX];

	if (s->npending == 0)
		return 0;
	if (sub_path(s, "tmp", NULL, dir, sizeof dir, e) == -1)
		return -1;
	/* One flush of the whole file system instead of one per job file. */
	if (fs_sync_fs(dir, e) == -1)
		return -1;
	return spool_publish(s, e);
}

int
spool_publish(struct spool *s, struct err *e)
{
	char dir[PATH_MAX];

	if (s->npending == 0)
		return 0;
	for (size_t i = 0; i < s->npending; i++)
		if (publish(s, s->pending[i], e) == -1)
			return -1;
	s->npending = 0;
	if (sub_path(s, "new", NULL, dir, sizeof dir, e) == -1 ||
	    fs_sync_dir(dir, e) == -1)
		return -1;
	spool_wake(s);
	return 0;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* Names in sub/, sorted; *out malloc'd. */
static int
list_dir(struct spool *s, const char *sub, char (**out)[SPOOL_NAME_MAX],
    size_t *count, struct err *e)
{
	char path[PATH_MAX];
	char (*names)[SPOOL_NAME_MAX] = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	if (sub_path(s, sub, NULL, path, sizeof path, e) == -1)
		return -1;
	if ((d = opendir(path)) == NULL)
		return err_sys(e, "spool: opendir %s", path);
	while ((de = readdir(d)) != NULL) {
		if (!valid_name(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			void *p = realloc(names, cap * sizeof *names);
			if (p == NULL) {
				free(names);
				closedir(d);
				return err_sys(e, "malloc");
			}
			names = p;
		}
		memcpy(names[n++], de->d_name, strlen(de->d_name) + 1);
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof *names, cmp_names);
	*out = names;
	*count = n;
	return 0;
}

static int
move(struct spool *s, const char *from_sub, const char *to_sub,
    const char *name, struct err *e)
{
	char from[PATH_MAX], to[PATH_MAX];

	if (sub_path(s, from_sub, name, from, sizeof from, e) == -1 ||
	    sub_path(s, to_sub, name, to, sizeof to, e) == -1)
		return -1;
	if (rename(from, to) == -1)
		return errno == ENOENT ? 0 :
		    err_sys(e, "spool: rename %s to %s/", from, to_sub);
	return 1;
}

static int
move_all(struct spool *s, const char *from_sub, const char *to_sub,
    int (*keep)(const char *), struct err *e)
{
	char (*names)[SPOOL_NAME_MAX];
	char dir[PATH_MAX];
	size_t n;
	int moved = 0, r;

	if (list_dir(s, from_sub, &names, &n, e) == -1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (keep != NULL && keep(names[i]))
			continue;
		if ((r = move(s, from_sub, to_sub, names[i], e)) == -1) {
			free(names);
			return -1;
		}
		moved += r;
	}
	free(names);
	if (moved && (sub_path(s, to_sub, NULL, dir, sizeof dir, e) == -1 ||
	    fs_sync_dir(dir, e) == -1))
		return -1;
	return moved;
}

/* tmp/NAME.PID files of writers that died before their rename: never
 * visible, so nobody waits for them; best effort. */
static void
sweep_tmp(struct spool *s)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	const char *dot;
	char *end;
	long pid;
	DIR *d;

	if (sub_path(s, "tmp", NULL, dir, sizeof dir, NULL) == -1 ||
	    (d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if ((dot = strrchr(de->d_name, '.')) == NULL || dot[1] == '\0')
			continue;
		pid = strtol(dot + 1, &end, 10);
		if (*end != '\0' || pid <= 0 || pid == (long)getpid() ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) <
		    (int)sizeof path)
			(void)unlink(path);
	}
	closedir(d);
}

int
spool_recover(struct spool *s, struct err *e)
{
	sweep_tmp(s);
	return move_all(s, "cur", "new", NULL, e);
}

int
spool_claim(struct spool *s, char (*out)[SPOOL_NAME_MAX], int max,
    struct err *e)
{
	char (*names)[SPOOL_NAME_MAX];
	size_t n;
	int got = 0, r;

	if (list_dir(s, "new", &names, &n, e) == -1)
		return -1;
	for (size_t i = 0; i < n && got < max; i++) {
		if ((r = move(s, "new", "cur", names[i], e)) == -1) {
			free(names);
			return -1;
		}
		if (r == 1)
			memcpy(out[got++], names[i], SPOOL_NAME_MAX);
	}
	free(names);
	return got;
}

int
spool_list(struct spool *s, char (**names)[SPOOL_NAME_MAX], size_t *n,
    struct err *e)
{
	return list_dir(s, "new", names, n, e);
}

int
spool_claim_name(struct spool *s, const char *name, struct err *e)
{
	return move(s, "new", "cur", name, e);
}

int
spool_unclaim(struct spool *s, const char *name, struct err *e)
{
	return move(s, "cur", "new", name, e);
}

/* The tmp/ file of name takes the times of its claim, cur/NAME: a job
 * keeps the time it was first queued through its rewrites. */
static int
keep_queued_time(struct spool *s, const char *name, struct err *e)
{
	char tmp[PATH_MAX], claim[PATH_MAX];
	struct timespec times[2];
	struct stat st;

	if (tmp_path(s, name, tmp, sizeof tmp, e) == -1 ||
	    sub_path(s, "cur", name, claim, sizeof claim, e) == -1)
		return -1;
	if (stat(claim, &st) == -1)
		return 0;	/* no claim (a test's hand): the time is now */
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	if (utimensat(AT_FDCWD, tmp, times, 0) == -1)
		return err_sys(e, "spool: utimensat %s", tmp);
	return 0;
}

int
spool_rewrite(struct spool *s, const char *name, const char *body,
    size_t len, struct err *e)
{
	char from[PATH_MAX], to[PATH_MAX];

	if (tmp_path(s, name, from, sizeof from, e) == -1 ||
	    sub_path(s, "cur", name, to, sizeof to, e) == -1 ||
	    write_tmp(s, name, body, len, 1, e) == -1)
		return -1;
	if (keep_queued_time(s, name, e) == -1) {
		unlink(from);
		return -1;
	}
	if (rename(from, to) == -1) {
		err_sys(e, "spool: rename %s to cur/", from);
		unlink(from);
		return -1;
	}
	return fs_sync_parent(to, e);
}

int
spool_requeue(struct spool *s, const char *name, const char *body,
    size_t len, struct err *e)
{
	char tmp[PATH_MAX], dir[PATH_MAX];

	if (tmp_path(s, name, tmp, sizeof tmp, e) == -1 ||
	    write_tmp(s, name, body, len, 1, e) == -1)
		return -1;
	if (keep_queued_time(s, name, e) == -1 || publish(s, name, e) == -1) {
		unlink(tmp);
		return -1;
	}
	if (sub_path(s, "new", NULL, dir, sizeof dir, e) == -1 ||
	    fs_sync_dir(dir, e) == -1 || spool_finish(s, name, e) == -1)
		return -1;
	spool_wake(s);
	return 0;
}

int
spool_read(struct spool *s, const char *name, char **body, struct err *e)
{
	char path[PATH_MAX];

	if (sub_path(s, "cur", name, path, sizeof path, e) == -1)
		return -1;
	return fs_read_small(path, SPOOL_JOB_MAX, body, NULL, e);
}

int
spool_finish(struct spool *s, const char *name, struct err *e)
{
	char path[PATH_MAX];

	if (sub_path(s, "cur", name, path, sizeof path, e) == -1)
		return -1;
	if (unlink(path) == -1 && errno != ENOENT)
		return err_sys(e, "spool: unlink %s", path);
	return 0;
}

int
spool_fail(struct spool *s, const char *name, const char *reason,
    struct err *e)
{
	char path[PATH_MAX], text[4096];
	int n;

	if (sub_path(s, "failed", name, path, sizeof path, e) == -1)
		return -1;
	if (strlen(path) + 8 >= sizeof path)
		return err_set(e, ENAMETOOLONG, "spool path too long");
	strcat(path, ".reason");
	n = snprintf(text, sizeof text, "%s\n", reason);
	if (n < 0 || (size_t)n >= sizeof text)
		n = sizeof text - 1;
	if (fs_write_atomic(path, text, (size_t)n, e) == -1)
		return -1;
	if (move(s, "cur", "failed", name, e) == -1)
		return -1;
	if (sub_path(s, "failed", NULL, path, sizeof path, e) == -1)
		return -1;
	return fs_sync_dir(path, e);
}

static int
is_reason(const char *name)
{
	size_t n = strlen(name);

	return n > 7 && strcmp(name + n - 7, ".reason") == 0;
}

int
spool_retry_failed(struct spool *s, struct err *e)
{
	char (*names)[SPOOL_NAME_MAX];
	char path[PATH_MAX];
	size_t n;
	int moved = move_all(s, "failed", "new", is_reason, e);

	if (moved == -1 || list_dir(s, "failed", &names, &n, e) == -1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!is_reason(names[i]) ||
		    sub_path(s, "failed", names[i], path, sizeof path, e) == -1)
			continue;
		unlink(path);
	}
	free(names);
	if (moved > 0)
		spool_wake(s);
	return moved;
}

int
spool_wait(struct spool *s, int timeout_ms, struct err *e)
{
	char path[PATH_MAX], buf[256];
	struct pollfd pfd;
	int r;

	if (s->wake_fd == -1) {
		if (wake_path(s, path, sizeof path, e) == -1)
			return -1;
		s->wake_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (s->wake_fd == -1)
			return err_sys(e, "spool: open %s", path);
		s->wake_keep = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	}
	pfd.fd = s->wake_fd;
	pfd.events = POLLIN;
	r = poll(&pfd, 1, timeout_ms);
	if (r == -1)
		return errno == EINTR ? 0 : err_sys(e, "spool: poll");
	if (r == 0)
		return 0;
	while (read(s->wake_fd, buf, sizeof buf) > 0)
		;
	return 1;
}

void
spool_wake(struct spool *s)
{
	char path[PATH_MAX];
	int fd;

	if (wake_path(s, path, sizeof path, NULL) == -1)
		return;
	fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return;		/* ENXIO: nobody listens; fine */
	(void)!write(fd, "", 1);
	close(fd);
}

int
spool_count(struct spool *s, const char *sub, struct err *e)
{
	char (*names)[SPOOL_NAME_MAX];
	size_t n;
	int count = 0;

	if (list_dir(s, sub, &names, &n, e) == -1)
		return -1;
	for (size_t i = 0; i < n; i++)
		count += !is_reason(names[i]);
	free(names);
	return count;
}

int
spool_job_get(const char *body, const char *key, char *out, size_t outsz)
{
	size_t klen = strlen(key);
	const char *p = body;

	while (p != NULL && *p != '\0') {
		const char *eol = strchr(p, '\n');
		size_t linelen = eol ? (size_t)(eol - p) : strlen(p);
		if (linelen > klen && strncmp(p, key, klen) == 0 &&
		    p[klen] == '=') {
			size_t vlen = linelen - klen - 1;
			if (vlen >= outsz)
				return -1;
			memcpy(out, p + klen + 1, vlen);
			out[vlen] = '\0';
			return 0;
		}
		p = eol ? eol + 1 : NULL;
	}
	return -1;
}

time_t
spool_queued_at(const char *name, time_t mtime)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(name, &end, 10);
	if (errno == 0 && end - name == 10 && *end == '.' && v > 0 &&
	    v < (long long)mtime)
		return (time_t)v;
	return mtime;
}
