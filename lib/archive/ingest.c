/*
 * ingest: one received file into the store and the index spool, or into
 * the quarantine (see archive/archive.h).  Linked by the per-image
 * storescp-hook: no SQLite here.
 */
#include "archive/archive.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "dicom/dicom.h"
#include "queue/queue.h"

#define UID_MAX_LEN	64	/* PS3.5 9.1 */

int
ingest_open(struct ingest *g, const struct config *c, struct err *e)
{
	char dir[PATH_MAX];
	struct stat a, b;

	if (store_open(&g->store, c->storage_path, 1, e) == -1 ||
	    quarantine_open(&g->quarantine, c->quarantine_dir, e) == -1 ||
	    config_spool_path(c, "index", dir, sizeof dir, e) == -1 ||
	    spool_open(&g->index, dir, 1, e) == -1)
		return -1;
	/* One flush serves both when they share a file system. */
	g->spool_apart = stat(c->storage_path, &a) == -1 ||
	    stat(dir, &b) == -1 || a.st_dev != b.st_dev;
	return 0;
}

void
ingest_close(struct ingest *g)
{
	spool_close(&g->index);
}

static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* What is wrong with a UID (PS3.5 9.1), or NULL. */
static const char *
uid_problem(const char *uid)
{
	size_t n = strlen(uid);

	if (n > UID_MAX_LEN)
		return "longer than 64 characters";
	if (strspn(uid, "0123456789.") != n)
		return "characters other than digits and dots";
	if (uid[0] == '.' || uid[n - 1] == '.' || strstr(uid, "..") != NULL)
		return "an empty component";
	return NULL;
}

/* The first invalid UID of the object, said in why: 1; else 0. */
static int
invalid_uid(const struct pacs_attrs *a, char *why, size_t whysz)
{
	const struct {
		const char *name, *value;
	} uids[] = {
		{ "SOP Instance UID", a->sop_instance_uid },
		{ "SOP Class UID", a->sop_class_uid },
		{ "Study Instance UID", a->study_instance_uid },
		{ "Series Instance UID", a->series_instance_uid },
	};
	const char *problem;

	for (size_t i = 0; i < sizeof uids / sizeof uids[0]; i++) {
		if (uids[i].value[0] == '\0' ||
		    (problem = uid_problem(uids[i].value)) == NULL)
			continue;
		snprintf(why, whysz, "invalid %s \"%.80s%s\": %s (%zu "
		    "characters)", uids[i].name, uids[i].value,
		    strlen(uids[i].value) > 80 ? "..." : "", problem,
		    strlen(uids[i].value));
		return 1;
	}
	return 0;
}

/* What the record says of the object: read from d. */
static void
identify(const struct dcm *d, struct quarantine_record *q)
{
	dcm_get_string(d, NULL, DCM_TAG(0x0008, 0x0018), 0,
	    q->sop_instance_uid, sizeof q->sop_instance_uid, NULL);
	dcm_get_string(d, NULL, DCM_TAG(0x0020, 0x000D), 0,
	    q->study_instance_uid, sizeof q->study_instance_uid, NULL);
	dcm_get_string(d, NULL, DCM_TAG(0x0008, 0x0050), 0,
	    q->accession_number, sizeof q->accession_number, NULL);
}

/*
 * Parse the file on fd: 0 when it can be stored (r->attrs filled), 1 when
 * it cannot (why says so), -1 on a fault.  Only the pages the parser
 * looks at are read: pixel data is stepped over.  What could be read goes
 * into r->q either way.
 */
static int
inspect(int fd, size_t size, struct ingest_result *r, char *why,
    size_t whysz, struct err *e)
{
	struct err pe = { 0 };
	struct dcm *d;
	void *map;
	int rc = 0;

	if (size == 0) {
		snprintf(why, whysz, "empty file");
		return 1;
	}
	if ((map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0)) ==
	    MAP_FAILED)
		return err_sys(e, "mmap");
	if (dcm_parse(map, size, DCM_MAPPED, &d, &pe) == -1) {
		snprintf(why, whysz, "%s", pe.msg);
		rc = 1;
		/* As far as it goes: enough for the UIDs, often. */
		if (dcm_parse(map, size, DCM_STOP_AT_PIXELS | DCM_MAPPED, &d,
		    NULL) == 0) {
			identify(d, &r->q);
			dcm_free(d);
		}
	} else {
		identify(d, &r->q);
		if (pacs_extract(d, &r->attrs, &pe) == -1) {
			snprintf(why, whysz, "%s", pe.msg);
			rc = 1;
		} else if (invalid_uid(&r->attrs, why, whysz))
			rc = 1;
		dcm_free(d);
	}
	munmap(map, size);
	return rc;
}

/* The file goes to (or, when it is an entry already, stays in) the
 * quarantine with why. */
static int
quarantine(struct ingest *g, const struct ingest_arrival *a,
    struct ingest_result *r, const char *why, struct err *e)
{
	struct quarantine_record *q = &r->q;
	struct quarantine_record was;

	r->outcome = INGEST_QUARANTINED;
	if (a->quarantine_name != NULL) {
		if (quarantine_read(&g->quarantine, a->quarantine_name, &was,
		    e) == -1)
			return -1;
		snprintf(was.reason, sizeof was.reason, "%s", why);
		pacs_timestamp(was.released_at);
		*q = was;
		return quarantine_update(&g->quarantine, q, e);
	}
	snprintf(q->reason, sizeof q->reason, "%s", why);
	snprintf(q->file, sizeof q->file, "%s", base_name(a->path));
	snprintf(q->calling_aet, sizeof q->calling_aet, "%s", a->calling_aet);
	snprintf(q->called_aet, sizeof q->called_aet, "%s", a->called_aet);
	snprintf(q->peer, sizeof q->peer, "%s", a->peer);
	return quarantine_put(&g->quarantine, a->path, q, e);
}

/* The object's index job, written (SPOOL_DEFER) for the batch's flush. */
static int
enqueue_index(struct ingest *g, const struct ingest_arrival *a,
    const struct ingest_result *r, const struct stat *sb, struct err *e)
{
	char body[2048], when[32];
	int n;

	pacs_timestamp_at(&sb->st_mtim, when);	/* when storescp wrote it */
	n = snprintf(body, sizeof body,
	    "object=%s\nsize=%lld\nsop_instance_uid=%s\nreceipt=%s:%s\n"
	    "calling_aet=%s\ncalled_aet=%s\npeer=%s\nreceived_at=%s\n",
	    r->hash, (long long)sb->st_size, r->attrs.sop_instance_uid,
	    base_name(a->path), r->hash, a->calling_aet, a->called_aet,
	    a->peer, when);
	if (n < 0 || (size_t)n >= sizeof body)
		return err_set(e, EINVAL, "index job too long");
	return spool_enqueue(&g->index, NULL, body, (size_t)n, SPOOL_DEFER, e);
}

/* Into the quarantine with why, or a fault (r->err set). */
static void
quarantine_now(struct ingest *g, const struct ingest_arrival *a,
    struct ingest_result *r, const char *why)
{
	if (quarantine(g, a, r, why, &r->err) == -1)
		r->outcome = INGEST_FAILED;
}

/*
 * One file's first half: parsed, checked and hashed (INGEST_PENDING), or
 * quarantined now, or a fault (r->err set).
 */
static void
take(struct ingest *g, const struct ingest_arrival *a, struct ingest_result *r)
{
	char why[1024];
	struct stat *sb = &r->st;
	struct err *e = &r->err;
	int fd, rc;

	if (lstat(a->path, sb) == -1) {
		err_sys(e, "stat %s", a->path);
		return;
	}
	r->size = (long long)sb->st_size;
	if (!S_ISREG(sb->st_mode)) {
		quarantine_now(g, a, r, "not a regular file");
		return;
	}
	if ((fd = open(a->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		err_sys(e, "open %s", a->path);
		return;
	}
	if (fstat(fd, sb) == -1) {
		err_sys(e, "stat %s", a->path);
		close(fd);
		return;
	}
	r->size = (long long)sb->st_size;
	/* The disk starts on its bytes while they are parsed and hashed:
	 * the batch's flush then waits for less. */
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	rc = inspect(fd, (size_t)sb->st_size, r, why, sizeof why, e);
	if (rc == 0 && a->refused == NULL) {
		if (store_hash_fd(fd, r->hash, e) == 0)
			r->outcome = INGEST_PENDING;
	} else if (rc != -1) {	/* unusable, or its sender refused */
		quarantine_now(g, a, r, a->refused != NULL ? a->refused : why);
	}
	close(fd);
}

void
ingest_read(struct ingest *g, const struct ingest_arrival *a, size_t n,
    struct ingest_result *r)
{
	for (size_t i = 0; i < n; i++) {
		memset(&r[i], 0, sizeof r[i]);
		take(g, &a[i], &r[i]);
	}
}

/* The source of a stored file, removed: it is in the store now. */
static int
remove_source(struct ingest *g, const struct ingest_arrival *a,
    struct err *e)
{
	if (a->quarantine_name != NULL)
		return quarantine_remove(&g->quarantine, a->quarantine_name,
		    e);
	if (unlink(a->path) == -1 && errno != ENOENT)
		return err_sys(e, "unlink %s", a->path);
	return 0;
}

/* Every file still pending fails with why (each left in place). */
static void
fail_pending(struct ingest_result *r, size_t n, const struct err *why)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].outcome == INGEST_PENDING) {
			r[i].outcome = INGEST_FAILED;
			r[i].err = *why;
		}
}

/* Each distinct file system the pending sources are on, flushed. */
static int
sync_sources(const struct ingest_arrival *a, const struct ingest_result *r,
    size_t n, struct err *e)
{
	for (size_t i = 0; i < n; i++) {
		size_t j;

		if (r[i].outcome != INGEST_PENDING)
			continue;
		for (j = 0; j < i; j++)
			if (r[j].outcome == INGEST_PENDING &&
			    r[j].st.st_dev == r[i].st.st_dev)
				break;
		if (j == i && fs_sync_fs(a[i].path, e) == -1)
			return -1;
	}
	return 0;
}

static size_t
count_pending(const struct ingest_result *r, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += r[i].outcome == INGEST_PENDING;
	return k;
}

void
ingest_commit(struct ingest *g, const struct ingest_arrival *a, size_t n,
    struct ingest_result *r)
{
	struct err e = { 0 };
	size_t i;

	if (count_pending(r, n) == 0)
		return;
	/* The bytes durable, one flush per file system; then each linked
	 * into the store and its index job written; one flush more makes
	 * the names and the jobs durable, and the jobs are published. */
	if (sync_sources(a, r, n, &e) == -1) {
		fail_pending(r, n, &e);
		return;
	}
	for (i = 0; i < n; i++) {
		if (r[i].outcome != INGEST_PENDING)
			continue;
		if ((r[i].new_object = store_adopt(&g->store, a[i].path,
		    r[i].hash, STORE_BATCH, &r[i].err)) == -1 ||
		    enqueue_index(g, &a[i], &r[i], &r[i].st, &r[i].err) == -1)
			r[i].outcome = INGEST_FAILED;
	}
	if (count_pending(r, n) > 0 && (fs_sync_fs(g->store.root, &e) == -1 ||
	    (g->spool_apart ? spool_flush(&g->index, &e) :
	    spool_publish(&g->index, &e)) == -1)) {
		fail_pending(r, n, &e);
		return;
	}
	/* Only now the sources go.  No fsync of their directory: if a
	 * removal is lost in a crash, the file is found again and its
	 * receipt key makes that harmless. */
	for (i = 0; i < n; i++)
		if (r[i].outcome == INGEST_PENDING)
			r[i].outcome = remove_source(g, &a[i], &r[i].err) == 0 ?
			    INGEST_STORED : INGEST_FAILED;
}

int
ingest_files(struct ingest *g, const struct ingest_arrival *a, size_t n,
    struct ingest_result *r)
{
	int done = 0;

	ingest_read(g, a, n, r);
	ingest_commit(g, a, n, r);
	for (size_t i = 0; i < n; i++)
		done += r[i].outcome != INGEST_FAILED;
	return done;
}

int
ingest_file(struct ingest *g, const struct ingest_arrival *a,
    struct ingest_result *r, struct err *e)
{
	if (ingest_files(g, a, 1, r) == 1)
		return 0;
	if (e != NULL)
		*e = r->err;
	return -1;
}
