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

/* The jobs in dir/sub, and the oldest waiting one's first queueing
 * (lib/queue spool_queued_at) into *oldest; -1 when the directory
 * cannot be read (errno kept). */
static long
visit(const char *dir, int sub, time_t *oldest)
{
	char path[PATH_MAX];
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
	while ((de = readdir(d)) != NULL) {
		if (!is_job(de->d_name) || fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode))
			continue;
		n++;
		t = spool_queued_at(de->d_name, st.st_mtime);
		if (sub < 2 && (*oldest == 0 || t < *oldest))
			*oldest = t;
	}
	closedir(d);
	return n;
}

void
spool_census(const char *dir, struct spool_census *c)
{
	memset(c, 0, sizeof *c);
	for (int i = 0; i < 3; i++)
		if ((c->count[i] = visit(dir, i, &c->oldest)) == -1)
			c->error[i] = errno;
}
