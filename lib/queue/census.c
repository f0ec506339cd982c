/*
 * census: what a spool holds, read only (see queue/queue.h).
 */
#include "queue/queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"

static const char *const subs[] = { "new", "cur", "failed" };

static int
is_job(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && !(n >= 7 && strcmp(name + n - 7,
	    ".reason") == 0);
}

/* When the job was first queued: its mtime (kept through rewrites), or
 * the time a generated name ("1733740000.123456.812_0") starts with. */
static time_t
queued_at(const char *name, time_t mtime)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(name, &end, 10);
	if (errno == 0 && end - name == 10 && *end == '.' && v > 0 &&
	    v < mtime)
		return (time_t)v;
	return mtime;
}

/* The start of a job's body, cut after its last whole line. */
static void
peek(int dirfd, const char *name, char *buf, size_t bufsz)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n = -1;
	char *eol;

	buf[0] = '\0';
	if (fd != -1) {
		n = read(fd, buf, bufsz - 1);
		close(fd);
	}
	if (n <= 0)
		return;
	buf[n] = '\0';
	if ((size_t)n == bufsz - 1 && (eol = strrchr(buf, '\n')) != NULL)
		eol[1] = '\0';
}

/* Every job in dir/sub: fn, or (fn NULL) counted; -1 when the directory
 * cannot be read (errno kept). */
static long
visit(const char *dir, int sub, spool_visit_fn *fn, void *arg,
    time_t *oldest, int *stopped)
{
	char path[PATH_MAX], head[SPOOL_PEEK];
	struct dirent *de;
	struct stat st;
	long n = 0;
	time_t t;
	DIR *d;

	if (snprintf(path, sizeof path, "%s/%s", dir, subs[sub]) >=
	    (int)sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL && *stopped == 0) {
		if (!is_job(de->d_name) || fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode))
			continue;
		n++;
		t = queued_at(de->d_name, st.st_mtime);
		if (sub < 2 && (*oldest == 0 || t < *oldest))
			*oldest = t;
		if (fn == NULL)
			continue;
		peek(dirfd(d), de->d_name, head, sizeof head);
		*stopped = fn(arg, de->d_name, t, head, sub == 2);
	}
	closedir(d);
	return n;
}

void
spool_census(const char *dir, struct spool_census *c)
{
	int stopped = 0;

	memset(c, 0, sizeof *c);
	for (int i = 0; i < 3; i++)
		if ((c->count[i] = visit(dir, i, NULL, NULL, &c->oldest,
		    &stopped)) == -1)
			c->error[i] = errno;
}

int
spool_scan(const char *dir, spool_visit_fn *fn, void *arg, struct err *e)
{
	time_t oldest = 0;
	int stopped = 0;

	for (int i = 0; i < 3 && stopped == 0; i++)
		if (visit(dir, i, fn, arg, &oldest, &stopped) == -1 &&
		    errno != ENOENT && errno != EACCES)
			return err_sys(e, "spool %s/%s", dir, subs[i]);
	return stopped;
}
