/*
 * incoming: incoming/'s association directories, the one read/write pair
 * of that layout (see archive/archive.h).
 */
#include "archive/archive.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"

#define SENDER		".sender"
#define PREFIX		"assoc-"

int
incoming_is_assoc(const char *name)
{
	return strncmp(name, PREFIX, strlen(PREFIX)) == 0;
}

int
incoming_busy(const char *incoming_dir)
{
	struct dirent *de;
	DIR *d = opendir(incoming_dir);
	int busy = 0;

	if (d == NULL)
		return 0;
	while (!busy && (de = readdir(d)) != NULL)
		busy = incoming_is_assoc(de->d_name);
	closedir(d);
	return busy;
}

/* A value for .sender: one line, whatever the peer put in it. */
static void
one_line(const char *in, char *out, size_t outsz)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < outsz; i++)
		out[i] = (unsigned char)in[i] < 0x20 || in[i] == 0x7f ? '?' :
		    in[i];
	out[i] = '\0';
}

int
incoming_begin(const char *incoming_dir, const struct incoming_sender *s,
    char *dir, size_t dirsz, struct err *e)
{
	char tmp[PATH_MAX], path[PATH_MAX], stamp[32], v[80];
	struct runstate text;
	time_t now = time(NULL);
	struct tm tm;
	int fd = -1;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	for (unsigned n = 0; ; n++) {
		if (snprintf(dir, dirsz, "%s/" PREFIX "%s-%ld-%u", incoming_dir,
		    stamp, (long)getpid(), n) >= (int)dirsz ||
		    snprintf(tmp, sizeof tmp, "%s/.%s", incoming_dir,
		    strrchr(dir, '/') + 1) >= (int)sizeof tmp)
			return err_set(e, ENAMETOOLONG, "incoming path too long");
		if (access(dir, F_OK) == 0)
			continue;	/* a pid seen again within a second */
		if (mkdir(tmp, 0755) == 0)
			break;
		if (errno != EEXIST || n > 100)
			return err_sys(e, "mkdir %s", tmp);
	}
	runstate_init(&text);
	one_line(s->calling_aet, v, sizeof v);
	runstate_put(&text, "calling_aet", "%s", v);
	one_line(s->called_aet, v, sizeof v);
	runstate_put(&text, "called_aet", "%s", v);
	one_line(s->peer, v, sizeof v);
	runstate_put(&text, "peer", "%s", v);
	if (snprintf(path, sizeof path, "%s/" SENDER, tmp) >= (int)sizeof path) {
		rmdir(tmp);
		return err_set(e, ENAMETOOLONG, "incoming path too long");
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0644)) == -1 || flock(fd, LOCK_EX | LOCK_NB) == -1 ||
	    fs_write_all(fd, text.text, text.len, NULL) == -1 ||
	    rename(tmp, dir) == -1) {
		err_sys(e, "association directory %s", tmp);
		if (fd != -1)
			close(fd);
		unlink(path);
		rmdir(tmp);
		return -1;
	}
	return fd;
}

int
incoming_sender(const char *dir, struct incoming_sender *s, struct err *e)
{
	char path[PATH_MAX];
	struct runstate r;
	int rc;

	memset(s, 0, sizeof *s);
	if (snprintf(path, sizeof path, "%s/" SENDER, dir) >= (int)sizeof path)
		return err_set(e, ENAMETOOLONG, "incoming path too long");
	if ((rc = runstate_read_path(path, &r, e)) != 0)
		return rc == 1 ? err_set(e, ENOENT, "%s: no such file", path) :
		    -1;
	runstate_get(&r, "calling_aet", s->calling_aet, sizeof s->calling_aet);
	runstate_get(&r, "called_aet", s->called_aet, sizeof s->called_aet);
	runstate_get(&r, "peer", s->peer, sizeof s->peer);
	return 0;
}

int
incoming_claim(const char *dir, int *fd, struct err *e)
{
	char path[PATH_MAX];

	*fd = -1;
	if (snprintf(path, sizeof path, "%s/" SENDER, dir) >= (int)sizeof path)
		return err_set(e, ENAMETOOLONG, "incoming path too long");
	if ((*fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno == ENOENT)
			return 1;	/* being cleared away: nobody's */
		return err_sys(e, "open %s", path);
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
		return 1;
	close(*fd);
	*fd = -1;
	if (errno == EWOULDBLOCK)
		return 0;
	return err_sys(e, "flock %s", path);
}

int
incoming_end(const char *dir, struct err *e)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(dir);
	int left = 0;

	if (d == NULL)
		return errno == ENOENT ? 0 : err_sys(e, "open %s", dir);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			left++;
	closedir(d);
	if (left > 0)
		return 0;
	if (snprintf(path, sizeof path, "%s/" SENDER, dir) >= (int)sizeof path)
		return err_set(e, ENAMETOOLONG, "incoming path too long");
	if ((unlink(path) == -1 && errno != ENOENT) ||
	    (rmdir(dir) == -1 && errno != ENOENT))
		return err_sys(e, "remove %s", dir);
	return 1;
}
