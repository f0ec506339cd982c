#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int
fs_mkdirs(const char *path, struct err *e)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof buf)
		return err_set(e, ENAMETOOLONG, "bad directory path");
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, 0755) == -1 && errno != EEXIST)
			return err_sys(e, "mkdir %s", buf);
		*p = c;
		if (c == '\0')
			break;
	}
	return 0;
}

/* open + fsync + close; what names the thing in messages. */
static int
sync_path(const char *path, int flags, const char *what, struct err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | flags);

	if (fd == -1)
		return err_sys(e, "open %s%s", what, path);
	if (fsync(fd) == -1) {
		err_sys(e, "fsync %s%s", what, path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
fs_sync_fs(const char *path, struct err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd == -1)
		return err_sys(e, "open %s", path);
	if (syncfs(fd) == -1) {
		err_sys(e, "syncfs %s", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
fs_sync_dir(const char *path, struct err *e)
{
	return sync_path(path, O_DIRECTORY, "directory ", e);
}

int
fs_sync_file(const char *path, struct err *e)
{
	return sync_path(path, 0, "", e);
}

int
fs_sync_parent(const char *path, struct err *e)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL)
		return fs_sync_dir(".", e);
	n = (size_t)(slash - path);
	if (n == 0)
		n = 1;
	if (n >= sizeof dir)
		return err_set(e, ENAMETOOLONG, "path too long: %s", path);
	memcpy(dir, path, n);
	dir[n] = '\0';
	return fs_sync_dir(dir, e);
}

int
fs_write_all(int fd, const void *buf, size_t len, struct err *e)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			return err_sys(e, "write");
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* tmp name beside path: "<dir>/.<base>.tmp.<pid>" */
static int
tmp_name(const char *path, char *out, size_t outsz, struct err *e)
{
	const char *slash = strrchr(path, '/');
	int n;

	if (slash == NULL)
		n = snprintf(out, outsz, ".%s.tmp.%ld", path, (long)getpid());
	else
		n = snprintf(out, outsz, "%.*s/.%s.tmp.%ld",
		    (int)(slash - path), path, slash + 1, (long)getpid());
	if (n < 0 || (size_t)n >= outsz)
		return err_set(e, ENAMETOOLONG, "path too long: %s", path);
	return 0;
}

int
fs_write_atomic(const char *path, const void *buf, size_t len, struct err *e)
{
	char tmp[PATH_MAX];
	int fd;

	if (tmp_name(path, tmp, sizeof tmp, e) == -1)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		return err_sys(e, "create %s", tmp);
	if (fs_write_all(fd, buf, len, e) == -1 || fsync(fd) == -1) {
		if (e && e->code == 0)
			err_sys(e, "fsync %s", tmp);
		close(fd);
		unlink(tmp);
		return err_wrap(e, "write %s", path);
	}
	if (close(fd) == -1) {
		unlink(tmp);
		return err_sys(e, "close %s", tmp);
	}
	if (rename(tmp, path) == -1) {
		err_sys(e, "rename %s to %s", tmp, path);
		unlink(tmp);
		return -1;
	}
	return fs_sync_parent(path, e);
}

int
fs_read_small(const char *path, size_t maxlen, char **out, size_t *len,
    struct err *e)
{
	struct stat st;
	char *buf;
	ssize_t r;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1)
		return err_sys(e, "open %s", path);
	if (fstat(fd, &st) == -1) {
		close(fd);
		return err_sys(e, "stat %s", path);
	}
	if ((size_t)st.st_size > maxlen) {
		close(fd);
		return err_set(e, EFBIG, "%s: %lld bytes, more than %zu",
		    path, (long long)st.st_size, maxlen);
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return err_sys(e, "malloc");
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	*out = buf;
	if (len)
		*len = got;
	return 0;
}

int
fs_copy_durable(const char *src, const char *dst, struct err *e)
{
	char tmp[PATH_MAX], buf[1 << 16];
	int in, out;
	ssize_t r;

	if (tmp_name(dst, tmp, sizeof tmp, e) == -1)
		return -1;
	if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1)
		return err_sys(e, "open %s", src);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out == -1) {
		close(in);
		return err_sys(e, "create %s", tmp);
	}
	while ((r = read(in, buf, sizeof buf)) != 0) {
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 || fs_write_all(out, buf, (size_t)r, e) == -1) {
			if (r == -1)
				err_sys(e, "read %s", src);
			goto fail;
		}
	}
	if (fsync(out) == -1) {
		err_sys(e, "fsync %s", tmp);
		goto fail;
	}
	close(in);
	if (close(out) == -1) {
		unlink(tmp);
		return err_sys(e, "close %s", tmp);
	}
	if (rename(tmp, dst) == -1) {
		err_sys(e, "rename %s", tmp);
		unlink(tmp);
		return -1;
	}
	return fs_sync_parent(dst, e);
fail:
	close(in);
	close(out);
	unlink(tmp);
	return -1;
}

/* uid (or its groups) may write and search a directory of mode st. */
static int
mode_allows(const struct stat *st, uid_t uid)
{
	struct passwd *pw = getpwuid(uid);
	gid_t groups[64];
	int n = 64;

	if (st->st_uid == uid)
		return (st->st_mode & (S_IWUSR | S_IXUSR)) == (S_IWUSR | S_IXUSR);
	if (pw != NULL && getgrouplist(pw->pw_name, pw->pw_gid, groups,
	    &n) != -1)
		for (int i = 0; i < n; i++)
			if (groups[i] == st->st_gid)
				return (st->st_mode & (S_IWGRP | S_IXGRP)) ==
				    (S_IWGRP | S_IXGRP);
	return (st->st_mode & (S_IWOTH | S_IXOTH)) == (S_IWOTH | S_IXOTH);
}

int
fs_dir_writable_by(const char *dir, uid_t uid, struct err *e)
{
	struct statvfs v;
	struct stat st;
	int why;

	if (stat(dir, &st) == -1) {
		why = errno;
		err_sys(e, "%s", dir);
		return why == ENOENT || why == ENOTDIR ? 0 : -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		err_set(e, ENOTDIR, "%s is not a directory", dir);
		return 0;
	}
	if (statvfs(dir, &v) == 0 && (v.f_flag & ST_RDONLY)) {
		err_set(e, EROFS, "%s is on a read-only file system", dir);
		return 0;
	}
	if (uid == geteuid()) {
		if (access(dir, W_OK | X_OK) == 0)
			return 1;
		why = errno;
		err_sys(e, "%s", dir);
		return why == EACCES || why == EROFS ? 0 : -1;
	}
	if (uid == 0 || mode_allows(&st, uid))
		return 1;
	err_set(e, EACCES, "%s: its permissions refuse user %ld", dir,
	    (long)uid);
	return 0;
}
