/*
 * quarantine: files that passed the door but are not usable, each with
 * the record of why (see archive/archive.h).  The one writer and reader
 * of $GATEWAY_QUARANTINE_DIR.
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

#define REASON_SUFFIX	".reason"
#define RECORD_MAX	8192	/* a .reason file */
#define NAME_UID_MAX	96	/* of a UID in an entry's name */

int
quarantine_open(struct quarantine *q, const char *dir, struct err *e)
{
	if (snprintf(q->dir, sizeof q->dir, "%s", dir) >= (int)sizeof q->dir)
		return err_set(e, ENAMETOOLONG, "quarantine path too long");
	return 0;
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* An entry's name as an operator may give it: one plain file name. */
static int
valid_name(const char *name)
{
	return name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL &&
	    strlen(name) < QUARANTINE_NAME_MAX && !ends_with(name,
	    REASON_SUFFIX);
}

int
quarantine_path(const struct quarantine *q, const char *name, char *out,
    size_t outsz, struct err *e)
{
	if (!valid_name(name))
		return err_set(e, EINVAL, "not a quarantine entry: \"%.80s\" "
		    "(a file name as gatewayctl quarantine lists it)", name);
	if (snprintf(out, outsz, "%s/%s", q->dir, name) >= (int)outsz)
		return err_set(e, ENAMETOOLONG, "quarantine path too long");
	return 0;
}

static int
reason_path(const struct quarantine *q, const char *name, char *out,
    size_t outsz, struct err *e)
{
	if (snprintf(out, outsz, "%s/%s%s", q->dir, name, REASON_SUFFIX) >=
	    (int)outsz)
		return err_set(e, ENAMETOOLONG, "quarantine path too long");
	return 0;
}

/* --- the record: key=value lines --- */

/* Append "key=value\n", the value on one line (control characters as ?). */
static void
put_field(char *buf, size_t bufsz, size_t *used, const char *key,
    const char *value)
{
	size_t n = *used;
	int k;

	k = snprintf(buf + n, bufsz - n, "%s=", key);
	if (k < 0 || (size_t)k >= bufsz - n)
		return;
	n += (size_t)k;
	for (; *value != '\0' && n + 2 < bufsz; value++)
		buf[n++] = (unsigned char)*value < 0x20 || *value == 0x7f ?
		    '?' : *value;
	buf[n++] = '\n';
	buf[n] = '\0';
	*used = n;
}

static size_t
format_record(const struct quarantine_record *r, char *buf, size_t bufsz)
{
	char size[32];
	size_t n = 0;

	buf[0] = '\0';
	snprintf(size, sizeof size, "%lld", r->size);
	put_field(buf, bufsz, &n, "reason", r->reason);
	put_field(buf, bufsz, &n, "file", r->file);
	put_field(buf, bufsz, &n, "sop_instance_uid", r->sop_instance_uid);
	put_field(buf, bufsz, &n, "study_instance_uid", r->study_instance_uid);
	put_field(buf, bufsz, &n, "accession_number", r->accession_number);
	put_field(buf, bufsz, &n, "calling_aet", r->calling_aet);
	put_field(buf, bufsz, &n, "called_aet", r->called_aet);
	put_field(buf, bufsz, &n, "peer", r->peer);
	put_field(buf, bufsz, &n, "size", size);
	put_field(buf, bufsz, &n, "received_at", r->received_at);
	put_field(buf, bufsz, &n, "quarantined_at", r->quarantined_at);
	if (r->released_at[0] != '\0')
		put_field(buf, bufsz, &n, "released_at", r->released_at);
	return n;
}

static void
take_field(struct quarantine_record *r, const char *key, const char *value)
{
	static const struct {
		const char *key;
		size_t offset, size;
	} fields[] = {
#define FIELD(f) { #f, offsetof(struct quarantine_record, f), \
	sizeof(((struct quarantine_record *)0)->f) }
		FIELD(reason), FIELD(file), FIELD(sop_instance_uid),
		FIELD(study_instance_uid), FIELD(accession_number),
		FIELD(calling_aet), FIELD(called_aet), FIELD(peer),
		FIELD(received_at), FIELD(quarantined_at), FIELD(released_at),
#undef FIELD
	};

	if (strcmp(key, "size") == 0) {
		r->size = atoll(value);
		return;
	}
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		if (strcmp(key, fields[i].key) == 0)
			snprintf((char *)r + fields[i].offset, fields[i].size,
			    "%s", value);
}

static void
parse_record(struct quarantine_record *r, char *text)
{
	char *line, *save = NULL, *eq;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		if ((eq = strchr(line, '=')) != NULL) {
			*eq = '\0';
			take_field(r, line, eq + 1);
		}
}

static int
write_record(const struct quarantine *q, const struct quarantine_record *r,
    struct err *e)
{
	char path[PATH_MAX], text[RECORD_MAX];
	size_t n;

	if (reason_path(q, r->name, path, sizeof path, e) == -1)
		return -1;
	n = format_record(r, text, sizeof text);
	return fs_write_atomic(path, text, n, e);
}

int
quarantine_read(const struct quarantine *q, const char *name,
    struct quarantine_record *r, struct err *e)
{
	char path[PATH_MAX], *text = NULL;
	struct err re = { 0 };
	struct stat sb;
	size_t len;

	memset(r, 0, sizeof *r);
	if (quarantine_path(q, name, path, sizeof path, e) == -1)
		return -1;
	if (lstat(path, &sb) == -1 || S_ISDIR(sb.st_mode))
		return err_set(e, ENOENT, "no quarantine entry \"%s\" in %s",
		    name, q->dir);
	snprintf(r->name, sizeof r->name, "%s", name);
	r->size = (long long)sb.st_size;
	pacs_timestamp_at(&sb.st_mtim, r->received_at);
	if (reason_path(q, name, path, sizeof path, e) == -1)
		return -1;
	if (fs_read_small(path, RECORD_MAX, &text, &len, &re) == -1) {
		if (re.code != ENOENT)
			return err_set(e, re.code, "%s", re.msg);
		snprintf(r->reason, sizeof r->reason, "no reason recorded "
		    "(no %s%s file)", name, REASON_SUFFIX);
		return 0;
	}
	parse_record(r, text);
	free(text);
	if (r->size == 0)
		r->size = (long long)sb.st_size;
	return 0;
}

/* --- putting a file in --- */

/* The entry name a record asks for: the SOP Instance UID, as a file
 * name ("unknown-<time>" without one), and "~N" when that is taken. */
static void
entry_name(const struct quarantine_record *r, int attempt, char *out,
    size_t outsz)
{
	char base[NAME_UID_MAX + 1];
	const char *uid = r->sop_instance_uid;
	size_t i, n = 0;

	if (uid[0] == '\0') {
		snprintf(base, sizeof base, "unknown-%s", r->quarantined_at);
		uid = base;
	}
	for (i = 0; uid[i] != '\0' && n < NAME_UID_MAX; i++) {
		char c = uid[i];

		base[n++] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || c == '.' || c == '-' ? c : '_';
	}
	base[n] = '\0';
	if (base[0] == '.')
		base[0] = '_';
	if (attempt <= 1)
		snprintf(out, outsz, "%s.dcm", base);
	else
		snprintf(out, outsz, "%s~%d.dcm", base, attempt);
}

/* rename(2) that never replaces dst: 0, -1 (errno EEXIST when taken). */
static int
rename_new(const char *src, const char *dst)
{
	return renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE);
}

/*
 * Move src to dst, never over an existing dst: renamed, or across file
 * systems copied durably beside dst first.  0; 1 when dst is taken; -1.
 */
static int
move_in(const struct quarantine *q, const char *src, const char *dst,
    struct err *e)
{
	char tmp[PATH_MAX];

	if (rename_new(src, dst) == 0)
		return 0;
	if (errno == EEXIST)
		return 1;
	if (errno != EXDEV)
		return err_sys(e, "rename %s to %s", src, dst);
	if (snprintf(tmp, sizeof tmp, "%s/.copy.%ld", q->dir,
	    (long)getpid()) >= (int)sizeof tmp)
		return err_set(e, ENAMETOOLONG, "quarantine path too long");
	if (fs_copy_durable(src, tmp, e) == -1)
		return -1;
	if (rename_new(tmp, dst) == -1) {
		int taken = errno == EEXIST;

		unlink(tmp);
		return taken ? 1 : err_sys(e, "rename %s to %s", tmp, dst);
	}
	if (unlink(src) == -1 && errno != ENOENT)
		return err_sys(e, "unlink %s", src);
	return 0;
}

int
quarantine_put(struct quarantine *q, const char *src,
    struct quarantine_record *r, struct err *e)
{
	char dst[PATH_MAX];
	struct stat sb;
	int attempt, rc;

	if (fs_mkdirs(q->dir, e) == -1)
		return -1;
	if (lstat(src, &sb) == -1)
		return err_sys(e, "stat %s", src);
	r->size = (long long)sb.st_size;
	if (r->received_at[0] == '\0')
		pacs_timestamp_at(&sb.st_mtim, r->received_at);
	pacs_timestamp(r->quarantined_at);
	for (attempt = 1; attempt <= 1000; attempt++) {
		entry_name(r, attempt, r->name, sizeof r->name);
		if (snprintf(dst, sizeof dst, "%s/%s", q->dir, r->name) >=
		    (int)sizeof dst)
			return err_set(e, ENAMETOOLONG, "quarantine path too "
			    "long");
		if ((rc = move_in(q, src, dst, e)) == -1)
			return -1;
		if (rc == 0)
			break;
	}
	if (attempt > 1000)
		return err_set(e, EEXIST, "quarantine: 1000 entries named "
		    "after %s already", r->sop_instance_uid);
	/* A crash before the record is written leaves the file listed
	 * with "no reason recorded": never lost. */
	if (write_record(q, r, e) == -1)
		return -1;
	return fs_sync_dir(q->dir, e);
}

int
quarantine_update(struct quarantine *q, const struct quarantine_record *r,
    struct err *e)
{
	return write_record(q, r, e);
}

int
quarantine_remove(struct quarantine *q, const char *name, struct err *e)
{
	char path[PATH_MAX];

	if (quarantine_path(q, name, path, sizeof path, e) == -1)
		return -1;
	if (unlink(path) == -1 && errno != ENOENT)
		return err_sys(e, "unlink %s", path);
	if (reason_path(q, name, path, sizeof path, e) == -1)
		return -1;
	if (unlink(path) == -1 && errno != ENOENT)
		return err_sys(e, "unlink %s", path);
	return fs_sync_dir(q->dir, e);
}

/* --- listing --- */

struct entry {
	char name[QUARANTINE_NAME_MAX];
	struct timespec mtime;
};

static int
by_time(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Every entry's name and time, sorted oldest first, into *out. */
static int
collect(const struct quarantine *q, struct entry **out, size_t *count,
    struct err *e)
{
	struct entry *v = NULL, *nv;
	size_t n = 0, cap = 0;
	char path[PATH_MAX];
	struct dirent *de;
	struct stat sb;
	DIR *d;

	*out = NULL;
	*count = 0;
	if ((d = opendir(q->dir)) == NULL)
		return errno == ENOENT ? 0 : err_sys(e, "open %s", q->dir);
	while ((de = readdir(d)) != NULL) {
		if (!valid_name(de->d_name) ||
		    snprintf(path, sizeof path, "%s/%s", q->dir, de->d_name) >=
		    (int)sizeof path || lstat(path, &sb) == -1 ||
		    S_ISDIR(sb.st_mode))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if ((nv = realloc(v, cap * sizeof *v)) == NULL) {
				free(v);
				closedir(d);
				return err_set(e, ENOMEM, "out of memory");
			}
			v = nv;
		}
		memcpy(v[n].name, de->d_name, strlen(de->d_name) + 1);
		v[n].mtime = sb.st_mtim;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof *v, by_time);
	*out = v;
	*count = n;
	return 0;
}

int
quarantine_list(const struct quarantine *q, quarantine_fn *fn, void *arg,
    struct err *e)
{
	struct quarantine_record *r;
	struct err re;
	struct entry *v;
	size_t n, i;
	int listed = 0;

	if (collect(q, &v, &n, e) == -1)
		return -1;
	if ((r = malloc(sizeof *r)) == NULL) {
		free(v);
		return err_set(e, ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		memset(&re, 0, sizeof re);
		if (quarantine_read(q, v[i].name, r, &re) == -1) {
			if (re.code == ENOENT)
				continue;	/* gone meanwhile */
			listed = err_set(e, re.code, "%s", re.msg);
			break;
		}
		listed++;
		if (fn(r, arg) != 0)
			break;
	}
	free(r);
	free(v);
	return listed;
}
