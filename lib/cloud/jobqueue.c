/*
 * jobqueue: the relay spool per job kind, as an operator sees it (see
 * cloud/cloud.h).
 */
#include "cloud/cloud.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/archive.h"
#include "queue/queue.h"

#define PEEK	4096	/* the keys shown are at a job's start */

/* The job at path's keys, from its first PEEK bytes: 0, -1 unreadable. */
static int
peek(const char *path, struct job *j)
{
	char buf[PEEK], *eol;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	memset(j, 0, sizeof *j);
	if (fd == -1)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	/* A line cut at the end of what was read is no whole value. */
	if ((size_t)n == sizeof buf - 1 && (eol = strrchr(buf, '\n')) != NULL)
		eol[1] = '\0';
	job_parse(buf, j);
	return 0;
}

/* When the job was first queued (see cloud.h). */
static time_t
first_queued(const struct config *c, const char *name, const struct job *j,
    time_t mtime)
{
	char path[PATH_MAX], rel[STORE_RELPATH_MAX];
	struct stat st;
	time_t t = spool_queued_at(name, mtime);

	if (store_valid_hash(j->object)) {
		store_relpath(j->object, rel);
		if (snprintf(path, sizeof path, "%s/%s", c->storage_path, rel) <
		    (int)sizeof path && stat(path, &st) == 0 && st.st_mtime < t)
			t = st.st_mtime;
	}
	if (j->failing_since_ms > 0 && j->failing_since_ms / 1000 < t)
		t = (time_t)(j->failing_since_ms / 1000);
	return t;
}

static void
tally(const struct config *c, struct job_queue_kind *k, const char *name,
    const struct job *j, int failed, time_t mtime)
{
	time_t t;

	if (failed) {
		k->failed++;
		return;
	}
	k->pending++;
	t = first_queued(c, name, j, mtime);
	if (k->oldest != 0 && k->oldest <= t)
		return;
	k->oldest = t;
	k->oldest_attempts = j->attempts;
	job_line(k->oldest_error, sizeof k->oldest_error, j->error);
}

static int
scan_dir(const struct config *c, struct job_queue_kind k[JOB_NKINDS],
    const char *dir, int failed, struct err *e)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	struct job j;
	DIR *d = opendir(dir);
	size_t len;

	if (d == NULL)
		return errno == ENOENT ? 0 : err_sys(e, "opendir %s", dir);
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || (len > 7 &&
		    strcmp(de->d_name + len - 7, ".reason") == 0))
			continue;
		if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >=
		    (int)sizeof path || lstat(path, &st) == -1 ||
		    !S_ISREG(st.st_mode) || peek(path, &j) == -1)
			continue;	/* gone meanwhile: sent */
		tally(c, &k[job_kind(j.kind)], de->d_name, &j, failed,
		    st.st_mtime);
	}
	closedir(d);
	return 0;
}

int
job_queue_scan(const struct config *c, struct job_queue_kind k[JOB_NKINDS],
    struct err *e)
{
	static const char *const subs[] = { "new", "cur", "failed" };
	char spool[PATH_MAX], dir[PATH_MAX];

	memset(k, 0, JOB_NKINDS * sizeof *k);
	if (config_spool_path(c, "relay", spool, sizeof spool, e) == -1)
		return -1;
	for (int i = 0; i < 3; i++) {
		if (snprintf(dir, sizeof dir, "%s/%s", spool, subs[i]) >=
		    (int)sizeof dir)
			return err_set(e, ENAMETOOLONG, "path too long: %s",
			    spool);
		if (scan_dir(c, k, dir, i == 2, e) == -1)
			return -1;
	}
	return 0;
}
