/*
 * request: images.request, and RELAY_UPLOAD_POLICY (cloud/cloud.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/base.h"
#include "cloud/cloud.h"

#define UID_MAX		64	/* a UID, PS3.5 9.1 */
#define VALUE_MAX	64	/* an accession number (SH: 16), generously */

int
request_upload_policy(enum request_policy *out, struct err *e)
{
	int i;

	if (config_choice("RELAY_UPLOAD_POLICY", &i, e) == -1)
		return -1;
	*out = i == 0 ? REQUEST_POLICY_ALL : REQUEST_POLICY_ON_REQUEST;
	return 0;
}

const char *
request_policy_name(enum request_policy p)
{
	return p == REQUEST_POLICY_ON_REQUEST ? "on_request" : "all";
}

/* What the action asks for. */
struct ask {
	const char *by;			/* the parameter's name */
	const char *value;		/* study_instance_uid, accession_number */
	const json_t *uids;		/* sop_instance_uids */
	int high;
};

/* A non-empty string of at most max bytes, printable. */
static int
good_string(const json_t *v, size_t max)
{
	const char *s = json_string_value(v);
	size_t n = s != NULL ? json_string_length(v) : 0;

	if (n == 0 || n > max || strlen(s) != n)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static int
check_uids(const json_t *a, char *msg, size_t msgsz)
{
	size_t i, n = json_array_size(a);

	if (!json_is_array(a) || n == 0)
		return snprintf(msg, msgsz, "sop_instance_uids must be a "
		    "non-empty array of UIDs"), -1;
	if (n > REQUEST_UIDS_MAX)
		return snprintf(msg, msgsz, "sop_instance_uids has %zu "
		    "entries, more than %d", n, REQUEST_UIDS_MAX), -1;
	for (i = 0; i < n; i++)
		if (!good_string(json_array_get(a, i), UID_MAX))
			return snprintf(msg, msgsz, "sop_instance_uids[%zu] is "
			    "not a UID (a string of 1 to %d characters)", i,
			    UID_MAX), -1;
	return 0;
}

static int
check_priority(const json_t *p, struct ask *a, char *msg, size_t msgsz)
{
	const char *v = json_string_value(p);

	if (p == NULL || (v != NULL && strcmp(v, "normal") == 0))
		a->high = 0;
	else if (v != NULL && strcmp(v, "high") == 0)
		a->high = 1;
	else
		return snprintf(msg, msgsz, "priority must be \"high\" or "
		    "\"normal\""), -1;
	return 0;
}

/* The parameters, checked: 0, or -1 with msg saying what is wrong. */
static int
parse_ask(const json_t *action, struct ask *a, char *msg, size_t msgsz)
{
	static const char *const keys[] = { "study_instance_uid",
	    "accession_number", "sop_instance_uids" };
	const json_t *p = json_object_get(action, "parameters"), *v = NULL;
	int given = 0;

	memset(a, 0, sizeof *a);
	if (!json_is_object(p))
		return snprintf(msg, msgsz, "parameters must be an object"), -1;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if (json_object_get(p, keys[i]) == NULL)
			continue;
		given++;
		a->by = keys[i];
		v = json_object_get(p, keys[i]);
	}
	if (given != 1)
		return snprintf(msg, msgsz, "give exactly one of "
		    "study_instance_uid, accession_number or sop_instance_uids "
		    "(%d given)", given), -1;
	if (check_priority(json_object_get(p, "priority"), a, msg, msgsz) == -1)
		return -1;
	if (strcmp(a->by, "sop_instance_uids") == 0) {
		a->uids = v;
		return check_uids(v, msg, msgsz);
	}
	if (!good_string(v, strcmp(a->by, "study_instance_uid") == 0 ?
	    UID_MAX : VALUE_MAX))
		return snprintf(msg, msgsz, "%s must be a string of 1 to %d "
		    "characters", a->by, strcmp(a->by, "study_instance_uid") ==
		    0 ? UID_MAX : VALUE_MAX), -1;
	a->value = json_string_value(v);
	return 0;
}

/* The matching instances, in study, series and instance order. */
static int
query(sqlite3 *db, const struct ask *a, sqlite3_stmt **st, struct err *e)
{
	static const char base[] =
	    "SELECT i.sop_instance_uid, i.object_hash, st.study_instance_uid, "
	    "coalesce(st.accession_number, ''), i.purged_at IS NOT NULL "
	    "FROM instances i JOIN series se ON se.id = i.series_ref "
	    "JOIN studies st ON st.id = se.study_ref WHERE %s "
	    "ORDER BY st.study_instance_uid, se.series_number, "
	    "i.instance_number, i.sop_instance_uid";
	char sql[sizeof base + 80], *uids;
	const char *where = a->uids != NULL ?
	    "i.sop_instance_uid IN (SELECT value FROM json_each(?1))" :
	    strcmp(a->by, "study_instance_uid") == 0 ?
	    "st.study_instance_uid = ?1" : "st.accession_number = ?1";

	snprintf(sql, sizeof sql, base, where);
	if (db_prepare(db, st, sql, e) == -1)
		return -1;
	if (a->uids == NULL) {
		sqlite3_bind_text(*st, 1, a->value, -1, SQLITE_TRANSIENT);
		return 0;
	}
	if ((uids = json_dumps(a->uids, JSON_COMPACT)) == NULL) {
		sqlite3_finalize(*st);
		return err_set(e, ENOMEM, "out of memory");
	}
	sqlite3_bind_text(*st, 1, uids, -1, free);
	return 0;
}

/* One instance's upload job, deferred until the flush. */
static int
enqueue(struct spool *relay, sqlite3_stmt *st, const struct ask *a,
    const char *action_id, struct err *e)
{
	const char *hash = (const char *)sqlite3_column_text(st, 1);
	char body[1024];
	int n;

	n = snprintf(body, sizeof body, "object=%s\nsop_instance_uid=%s\n"
	    "study_instance_uid=%s\naccession_number=%s\nkind=image\n"
	    "priority=%s\nrequested=1\nrequest_action_id=%s\n", hash,
	    sqlite3_column_text(st, 0), sqlite3_column_text(st, 2),
	    sqlite3_column_text(st, 3), a->high ? "high" : "normal",
	    action_id != NULL ? action_id : "");
	if (n < 0 || (size_t)n >= sizeof body)
		return err_set(e, EINVAL, "upload job too long");
	return spool_enqueue(relay, hash, body, (size_t)n, SPOOL_DEFER, e);
}

/* Serialise requests on the spool's tmp/: the lock's fd, or -1. */
static int
lock_spool(struct spool *relay, struct err *e)
{
	char dir[PATH_MAX];
	int fd;

	if (snprintf(dir, sizeof dir, "%s/tmp", relay->dir) >= (int)sizeof dir)
		return err_set(e, ENAMETOOLONG, "spool path too long");
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return err_sys(e, "open %s", dir);
	if (flock(fd, LOCK_EX) == -1) {
		close(fd);
		return err_sys(e, "flock %s", dir);
	}
	return fd;
}

/* Queue what is held: counts into *queued and *purged. */
static int
queue_matches(sqlite3 *db, struct spool *relay, const struct ask *a,
    const char *action_id, long *queued, long *purged, struct err *e)
{
	sqlite3_stmt *st;
	int r, lock;

	*queued = *purged = 0;
	if ((lock = lock_spool(relay, e)) == -1)
		return -1;
	if (query(db, a, &st, e) == -1) {
		close(lock);
		return -1;
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_int(st, 4)) {
			(*purged)++;
			continue;
		}
		if (enqueue(relay, st, a, action_id, e) == -1)
			break;
		(*queued)++;
	}
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		err_set(e, db_errno(db), "pacs.db: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	r = r == SQLITE_DONE ? spool_flush(relay, e) : -1;
	close(lock);
	return r;
}

static char *
reply(const char *status, const char *action_id, long count,
    const char *message)
{
	json_t *j = json_pack("{s:s, s:s?}", "status", status, "action_id",
	    action_id);
	char *out;

	if (j == NULL)
		return NULL;
	if (count >= 0)
		json_object_set_new(j, "count", json_integer(count));
	if (message != NULL)
		json_object_set_new(j, "message", json_string(message));
	out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return out;
}

char *
request_images(sqlite3 *db, struct spool *relay, const json_t *action,
    struct request_outcome *out)
{
	const char *id = json_string_value(json_object_get(action,
	    "action_id"));
	char msg[600];
	struct err e = { 0 };
	struct ask a;
	long queued, purged;

	*out = (struct request_outcome){ "error", NULL, 0, 0 };
	if (id != NULL && !good_string(json_object_get(action, "action_id"),
	    VALUE_MAX))
		return reply("error", NULL, -1, "action_id must be a string of "
		    "1 to 64 characters");
	if (parse_ask(action, &a, msg, sizeof msg) == -1)
		return reply("error", id, -1, msg);
	if (!config_cloud_images())	/* nothing would send the jobs */
		return reply("error", id, -1, "no Manage API is configured "
		    "(CLOUD_API_ENDPOINT): images cannot be sent");
	out->by = a.by;
	out->high = a.high;
	if (queue_matches(db, relay, &a, id, &queued, &purged, &e) == -1) {
		snprintf(msg, sizeof msg, "nothing queued: %s", e.msg);
		return reply("error", id, -1, msg);
	}
	out->count = queued > 0 ? queued : purged;
	out->status = queued > 0 ? "queued" : purged > 0 ? "purged" :
	    "not_found";
	return reply(out->status, id, queued > 0 || purged > 0 ? out->count :
	    -1, NULL);
}
