/*
 * archive_status: the disk floor's state (run/storage.state, written by
 * storescp-front through floor_watch) and the archive as the status sees
 * it (see archive/archive.h).
 */
#include "archive/archive.h"

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

#define FLOOR_STATE	"storage.state"

/* -------------------------------------------------------- the disk floor */

int
floor_min_free(long long *bytes, struct err *e)
{
	long v;

	if (config_long("PACS_DISK_MIN_FREE", &v, e) == -1)
		return -1;
	*bytes = v;
	return 0;
}

int
floor_check(const struct config *c, long long min_free, struct floor_check *f)
{
	const char *paths[] = { c->incoming_dir, c->storage_path };
	long long avail;

	memset(f, 0, sizeof *f);
	for (size_t i = 0; i < 2 && min_free > 0; i++) {
		if (purge_free_space(paths[i], NULL, &avail, NULL, NULL) == -1 ||
		    avail >= min_free)
			continue;
		f->below = 1;
		snprintf(f->path, sizeof f->path, "%s", paths[i]);
		f->free_bytes = avail;
		return 1;
	}
	return 0;
}

int
floor_state_write(const char *data_dir, const struct floor_state *fs,
    struct err *e)
{
	struct runstate s;

	runstate_init(&s);
	runstate_put(&s, "refusing", "%d", fs->refusing);
	runstate_put_time(&s, "since", fs->since);
	runstate_put(&s, "path", "%s", fs->path);
	runstate_put(&s, "free_bytes", "%lld", fs->free_bytes);
	runstate_put(&s, "min_free_bytes", "%lld", fs->min_free);
	return runstate_write(data_dir, FLOOR_STATE, &s, e);
}

int
floor_state_read(const char *data_dir, struct floor_state *fs, struct err *e)
{
	struct runstate s;
	int rc;

	memset(fs, 0, sizeof *fs);
	if ((rc = runstate_read(data_dir, FLOOR_STATE, &s, e)) != 0)
		return rc;
	fs->present = 1;
	fs->refusing = runstate_get_ll(&s, "refusing", 0) == 1;
	fs->since = runstate_get_time(&s, "since");
	runstate_get(&s, "path", fs->path, sizeof fs->path);
	fs->free_bytes = runstate_get_ll(&s, "free_bytes", 0);
	fs->min_free = runstate_get_ll(&s, "min_free_bytes", 0);
	return 0;
}

int
floor_watch(const struct config *c, long long min_free, struct floor_state *fs)
{
	struct floor_check now;
	int refusing = fs->refusing;

	floor_check(c, min_free, &now);
	if (now.below)
		refusing = 1;
	else if (fs->refusing) {
		/* back only with room to spare: a disk at the floor would
		 * say so at every check */
		struct floor_check margin;

		floor_check(c, min_free + min_free / 10, &margin);
		refusing = margin.below;
	}
	if (fs->present && refusing == fs->refusing)
		return 0;
	fs->present = 1;
	fs->refusing = refusing;
	fs->since = time(NULL);
	fs->min_free = min_free;
	snprintf(fs->path, sizeof fs->path, "%s", now.below ? now.path :
	    c->storage_path);
	if (now.below)
		fs->free_bytes = now.free_bytes;
	else if (purge_free_space(c->storage_path, NULL, &fs->free_bytes,
	    NULL, NULL) == -1)
		fs->free_bytes = 0;
	return 1;
}

/* ------------------------------------------------------------ the status */

/* Files in dir that are not .reason records, and in its association
 * directories (lib/archive incoming); with stale, those older than
 * stale_after too, and the oldest's time.  -1 when it cannot be read, 0
 * for one that does not exist. */
static long
count_files(const char *dir, time_t now, long stale_after, long *stale,
    time_t *oldest)
{
	char sub[PATH_MAX];
	struct dirent *de;
	struct stat st;
	size_t n;
	long count = 0, in;
	DIR *d = opendir(dir);

	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (de->d_name[0] == '.' || (n >= 7 && strcmp(de->d_name +
		    n - 7, ".reason") == 0) || fstatat(dirfd(d), de->d_name,
		    &st, AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		if (S_ISDIR(st.st_mode) && incoming_is_assoc(de->d_name) &&
		    snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name) <
		    (int)sizeof sub && (in = count_files(sub, now,
		    stale_after, stale, oldest)) > 0)
			count += in;
		if (!S_ISREG(st.st_mode))
			continue;
		count++;
		if (stale == NULL)
			continue;
		if (now - st.st_mtime >= stale_after)
			(*stale)++;
		if (*oldest == 0 || st.st_mtime < *oldest)
			*oldest = st.st_mtime;
	}
	closedir(d);
	return count;
}

static void
disk_of(const char *path, struct disk_status *d)
{
	struct stat st;

	memset(d, 0, sizeof *d);
	snprintf(d->path, sizeof d->path, "%s", path);
	if (stat(path, &st) == -1 || purge_free_space(path, &d->free_percent,
	    &d->free_bytes, &d->total_bytes, NULL) == -1) {
		d->error = errno;
		return;
	}
	d->dev = st.st_dev;
}

static void
place(struct place_status *p, const char *setting, const char *path,
    uid_t user)
{
	struct err e = { 0 };

	p->setting = setting;
	p->path = path;
	p->writable = fs_dir_writable_by(path, user, &e);
	snprintf(p->why, sizeof p->why, "%s", p->writable == 1 ? "" : e.msg);
}

/* pacs.db's counts, opened read-only (never created). */
static void
uploads(const struct config *c, struct archive_status *st)
{
	struct err e = { 0 };
	sqlite3 *db = NULL;

	if (access(c->pacs_db_path, R_OK) == 0 &&
	    sqlite3_open_v2(c->pacs_db_path, &db, SQLITE_OPEN_READONLY,
	    NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(db, 1000);
		st->uploads_known = upload_state_count(db, NULL, &st->uploads,
		    &e) == 0;
	}
	sqlite3_close(db);
}

void
archive_status_read(const struct config *c, uid_t user, time_t now,
    struct archive_status *st)
{
	struct err fe = { 0 };

	memset(st, 0, sizeof *st);
	st->quarantined = count_files(c->quarantine_dir, now, 0, NULL, NULL);
	st->incoming = count_files(c->incoming_dir, now,
	    ARCHIVE_INCOMING_STALE_SECONDS, &st->incoming_stale,
	    &st->incoming_oldest);
	disk_of(c->storage_path, &st->store_disk);
	disk_of(c->data_dir, &st->data_disk);
	st->data_disk_apart = st->store_disk.error == 0 &&
	    st->data_disk.error == 0 && st->store_disk.dev != st->data_disk.dev;
	place(&st->places[0], "PACS_STORAGE_PATH", c->storage_path, user);
	place(&st->places[1], "GATEWAY_INCOMING_DIR", c->incoming_dir, user);
	place(&st->places[2], "GATEWAY_DATA_DIR", c->data_dir, user);
	if (floor_min_free(&st->min_free, &fe) == -1)
		st->min_free = -1;
	else
		floor_check(c, st->min_free, &st->floor_now);
	floor_state_read(c->data_dir, &st->floor, &fe);
	uploads(c, st);
}
