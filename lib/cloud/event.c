/*
 * event: the study.image_received and gateway.alert messages.  See
 * cloud/cloud.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "base/base.h"
#include "cloud/cloud.h"
#include "archive/archive.h"

#define THUMB_READ_MAX	(8 * 1024 * 1024)

/* A pacs.db value as JSON: numbers stay numbers, NULL is null. */
static json_t *
column_json(sqlite3_stmt *st, int i)
{
	json_t *v;

	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		return json_integer(sqlite3_column_int64(st, i));
	case SQLITE_FLOAT:
		return json_real(sqlite3_column_double(st, i));
	case SQLITE_TEXT:
		v = json_string((const char *)sqlite3_column_text(st, i));
		return v ? v : json_null();	/* not UTF-8: unknown */
	default:
		return json_null();
	}
}

/* Where each column of IMAGE_SQL goes in the message. */
enum { G_PARTICIPANT, G_STUDY, G_SERIES, G_IMAGE, G_DIMENSIONS,
    G_ACQUISITION, G_DOSE, G_RECEIVED, G_COUNT };

static const struct { int group; const char *key; } image_fields[] = {
	{ G_PARTICIPANT, "nhs_number" }, { G_PARTICIPANT, "patient_name" },
	{ G_STUDY, "accession_number" }, { G_STUDY, "study_instance_uid" },
	{ G_STUDY, "modality" }, { G_STUDY, "study_date" },
	{ G_STUDY, "study_time" }, { G_STUDY, "study_description" },
	{ G_SERIES, "series_instance_uid" }, { G_SERIES, "series_number" },
	{ G_SERIES, "series_description" },
	{ G_IMAGE, "sop_instance_uid" }, { G_IMAGE, "instance_number" },
	{ G_DIMENSIONS, "rows" }, { G_DIMENSIONS, "columns" },
	{ G_ACQUISITION, "view_position" }, { G_ACQUISITION, "laterality" },
	{ G_DOSE, "organ_dose" }, { G_DOSE, "entrance_dose_in_mgy" },
	{ G_DOSE, "kvp" }, { G_DOSE, "exposure_in_uas" },
	{ G_DOSE, "anode_target_material" }, { G_DOSE, "filter_material" },
	{ G_DOSE, "filter_thickness" },
	{ G_RECEIVED, "received_at" },
};

static const char image_sql[] =
    "SELECT p.patient_id, p.patient_name, st.accession_number, "
    "st.study_instance_uid, se.modality, st.study_date, st.study_time, "
    "st.study_description, se.series_instance_uid, se.series_number, "
    "se.series_description, i.sop_instance_uid, i.instance_number, "
    "i.rows, i.columns, i.view_position, i.laterality, i.organ_dose, "
    "i.entrance_dose_in_mgy, i.kvp, i.exposure_in_uas, "
    "i.anode_target_material, i.filter_material, i.filter_thickness, "
    "i.received_at FROM instances i "
    "JOIN series se ON se.id = i.series_ref "
    "JOIN studies st ON st.id = se.study_ref "
    "JOIN patients p ON p.id = st.patient_ref "
    "WHERE i.sop_instance_uid = ?1";

static void
free_groups(json_t *g[G_COUNT])
{
	for (int i = 0; i < G_COUNT; i++)
		json_decref(g[i]);
}

/*
 * The instance's row as the message's groups (g[G_RECEIVED] holds
 * received_at as {"received_at":…}).  0; EVENT_NO_INSTANCE; -1 error.
 */
static int
image_groups(sqlite3 *db, const char *sop, json_t *g[G_COUNT],
    struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	for (int i = 0; i < G_COUNT; i++)
		if ((g[i] = json_object()) == NULL)
			return err_set(e, ENOMEM, "out of memory");
	if (db_prepare(db, &st, image_sql, e) == -1)
		return -1;
	sqlite3_bind_text(st, 1, sop, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		for (int i = 0; i < (int)(sizeof image_fields /
		    sizeof image_fields[0]); i++)
			json_object_set_new(g[image_fields[i].group],
			    image_fields[i].key, column_json(st, i));
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return EVENT_NO_INSTANCE;
	if (rc != SQLITE_ROW)
		return err_set(e, EIO, "pacs.db: %s", sqlite3_errmsg(db));
	return 0;
}

/*
 * The preview as {"data":base64,"format","width","height"}; json null
 * when there is none or it cannot be read (*thumb says which); NULL when
 * out of memory.
 */
static json_t *
thumbnail_json(const struct event_preview *p, int *thumb)
{
	char *data, *b64;
	size_t len;
	json_t *o;

	*thumb = EVENT_THUMB_NONE;
	if (p == NULL || p->path == NULL)
		return json_null();
	if (fs_read_small(p->path, THUMB_READ_MAX, &data, &len, NULL) == -1) {
		*thumb = EVENT_THUMB_UNREADABLE;
		return json_null();
	}
	if ((b64 = malloc(4 * ((len + 2) / 3) + 1)) == NULL) {
		free(data);
		return NULL;
	}
	EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)data,
	    (int)len);
	free(data);
	o = json_pack("{s:s, s:s, s:i, s:i}", "data", b64, "format",
	    p->format ? p->format : "png", "width", p->width, "height",
	    p->height);
	free(b64);
	if (o != NULL)
		*thumb = EVENT_THUMB_SENT;
	return o;
}

/* json_dumps with its length; NULL when out of memory. */
static char *
dump(json_t *o, size_t *len)
{
	char *t = json_dumps(o, JSON_COMPACT);

	*len = t ? strlen(t) : 0;
	return t;
}

/* The message around the instance's groups; NULL when out of memory. */
static json_t *
message(json_t *g[G_COUNT], const char *message_id, const char *action_id,
    json_t *thumb)
{
	json_t *image = g[G_IMAGE];
	char ts[32];

	pacs_timestamp(ts);
	json_object_set(image, "dimensions", g[G_DIMENSIONS]);
	json_object_set(image, "acquisition", g[G_ACQUISITION]);
	json_object_set(image, "dose", g[G_DOSE]);
	json_object_set_new(image, "thumbnail", thumb);
	json_object_update(image, g[G_RECEIVED]);
	return json_pack("{s:i, s:s, s:s, s:s, s:s, s:{s:s}, s:{s:O, s:O, "
	    "s:O, s:O}}", "schema_version", 1, "message_id", message_id,
	    "message_type", "study.image_received", "timestamp", ts,
	    "source_system", "gateway-pacs", "source_reference", "action_id",
	    action_id, "parameters", "participant", g[G_PARTICIPANT], "study",
	    g[G_STUDY], "series", g[G_SERIES], "image", image);
}

int
event_image_received(sqlite3 *db, const char *sop, const char *message_id,
    const char *action_id, const struct event_preview *p,
    struct event_message *m, struct err *e)
{
	json_t *g[G_COUNT] = { 0 }, *o, *t;
	int r;

	memset(m, 0, sizeof *m);
	if ((r = image_groups(db, sop, g, e)) != 0) {
		free_groups(g);
		return r;
	}
	if ((t = thumbnail_json(p, &m->thumb)) == NULL) {
		free_groups(g);
		return err_set(e, ENOMEM, "out of memory");
	}
	o = message(g, message_id, action_id, t);
	free_groups(g);
	if (o == NULL || (m->text = dump(o, &m->len)) == NULL) {
		json_decref(o);
		return err_set(e, ENOMEM, "out of memory");
	}
	if (m->len > EVENT_MAX && m->thumb == EVENT_THUMB_SENT) {
		m->thumb = EVENT_THUMB_DROPPED;
		m->full_len = m->len;
		free(m->text);
		json_object_set_new(json_object_get(json_object_get(o,
		    "parameters"), "image"), "thumbnail", json_null());
		if ((m->text = dump(o, &m->len)) == NULL) {
			json_decref(o);
			return err_set(e, ENOMEM, "out of memory");
		}
	}
	json_decref(o);
	if (m->len > EVENT_MAX) {
		err_set(e, EFBIG, "event of %zu bytes is over the cloud's "
		    "1 MiB limit even without its thumbnail", m->len);
		free(m->text);
		m->text = NULL;
		return EVENT_TOO_BIG;
	}
	return 0;
}

/* ------------------------------------------- study.image_received jobs */

/* The job's body (as dcmthumb has always written it) into relay. */
static int
image_job(struct spool *relay, const struct event_job *j, unsigned flags,
    struct err *e)
{
	char ev[2048], name[SPOOL_NAME_MAX];
	int n;

	n = snprintf(ev, sizeof ev, "kind=%s\nobject=%s\nsop_instance_uid=%s\n"
	    "study_instance_uid=%s\naccession_number=%s\nthumbnail_status=%s\n",
	    JOB_IMAGE_EVENT, j->object, j->sop_instance_uid,
	    j->study_instance_uid, j->accession_number, j->thumbnail_status);
	if (n > 0 && (size_t)n < sizeof ev && j->thumbnail != NULL)
		n += snprintf(ev + n, sizeof ev - (size_t)n, "thumbnail=%s\n"
		    "format=%s\nwidth=%u\nheight=%u\n", j->thumbnail, j->format,
		    j->width, j->height);
	if (n < 0 || (size_t)n >= sizeof ev)
		return err_set(e, EINVAL, "relay job too long");
	snprintf(name, sizeof name, "image-%s", j->object);
	return spool_enqueue(relay, name, ev, (size_t)n, flags, e);
}

int
event_job_queue(sqlite3 *db, struct spool *relay, const struct event_job *j,
    unsigned flags, struct err *e)
{
	enum upload_state up;
	int n;

	if ((n = upload_state_get(db, j->sop_instance_uid, &up, e)) == -1)
		return -1;
	if (n == 0 && up == UPLOAD_LOCAL)
		return 0;	/* not for the cloud: it hears nothing of it */
	if (!config_cloud_events())	/* nothing would send it */
		return upload_state_event_held(db, j->sop_instance_uid,
		    j->object, e) == -1 ? -1 : 0;
	return image_job(relay, j, flags, e) == -1 ? -1 : 1;
}

/* What event_queue_held collects: the rows queued, for their marks. */
struct held {
	struct spool *relay;
	const char *thumbs_dir;
	long long *ids;
	size_t n, cap;
	int failed;
	struct err *e;
};

static const char *
format_of(const char *path)
{
	const char *dot = strrchr(path, '.');

	return dot == NULL ? "png" : strcmp(dot, ".jpg") == 0 ? "jpeg" :
	    strcmp(dot, ".pnm") == 0 ? "pnm" : "png";
}

/* Room for one more id in h. */
static int
grow(struct held *h)
{
	size_t cap = h->cap ? 2 * h->cap : 64;
	long long *ids;

	if (h->n < h->cap)
		return 0;
	if ((ids = realloc(h->ids, cap * sizeof *ids)) == NULL)
		return err_sys(h->e, "malloc");
	h->ids = ids;
	h->cap = cap;
	return 0;
}

/* One event held back: its job, deferred; non-zero stops the walk. */
static int
queue_held(const struct upload_state_event *ev, void *arg)
{
	struct held *h = arg;
	char path[PATH_MAX];
	int preview = strcmp(ev->thumbnail_status, "GENERATED") == 0 &&
	    ev->thumbnail_path[0] != '\0';
	struct event_job j = { ev->object, ev->sop_instance_uid,
	    ev->study_instance_uid, ev->accession_number,
	    ev->thumbnail_status, preview ? path : NULL,
	    format_of(ev->thumbnail_path), (unsigned)ev->width,
	    (unsigned)ev->height };

	if (preview && snprintf(path, sizeof path, "%s/%s", h->thumbs_dir,
	    ev->thumbnail_path) >= (int)sizeof path)
		err_set(h->e, ENAMETOOLONG, "thumbnail path too long");
	else if (grow(h) == 0 &&
	    image_job(h->relay, &j, SPOOL_DEFER, h->e) == 0) {
		h->ids[h->n++] = ev->id;
		return 0;
	}
	h->failed = 1;
	return -1;
}

int
event_queue_held(sqlite3 *db, struct spool *relay, const char *thumbs_dir,
    struct err *e)
{
	struct held h = { relay, thumbs_dir, NULL, 0, 0, 0, e };
	int rc;

	/* The jobs are on disk before the marks go: a crash between queues
	 * them again (a repeat replaces a job of the same name). */
	rc = upload_state_events_held(db, queue_held, &h, e);
	if (h.failed)
		rc = -1;
	if (rc == 0 && h.n > 0 && (spool_flush(relay, e) == -1 ||
	    upload_state_events_sent(db, h.ids, h.n, e) == -1))
		rc = -1;
	free(h.ids);
	return rc == -1 ? -1 : (int)h.n;
}

/* ------------------------------------------------------ gateway.alert */

char *
event_alert(const struct event_alert *a, struct err *e)
{
	char id[RELAY_UUID_LEN + 1], ts[32];
	json_t *ev, *data;
	char *text;

	if (relay_uuid(id, e) == -1)
		return NULL;
	pacs_timestamp(ts);
	data = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:i}", "alert",
	    a->alert, "state", a->raised ? "raised" : "cleared", "severity",
	    a->raised ? a->severity : "ok", "summary", a->summary, "value",
	    (json_int_t)a->value, "pacs_aet", a->pacs_aet, "pacs_port",
	    a->pacs_port);
	if (data != NULL && a->study_instance_uid != NULL &&
	    (json_object_set_new(data, "accession_number",
	    json_string(a->accession_number ? a->accession_number : "")) ||
	    json_object_set_new(data, "study_instance_uid",
	    json_string(a->study_instance_uid)))) {
		json_decref(data);
		data = NULL;
	}
	ev = data == NULL ? NULL : json_pack("{s:i, s:s, s:s, s:s, s:s, s:o}",
	    "schema_version", 1, "message_id", id, "event_type",
	    JOB_ALERT_EVENT, "timestamp", ts, "source_system", "gateway",
	    "data", data);
	text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	json_decref(ev);
	if (text == NULL)
		err_set(e, ENOMEM, "out of memory");
	return text;
}

int
event_alert_queue(struct spool *relay, const char *name,
    const struct event_alert *a, struct err *e)
{
	char *ev, *body;
	int rc;

	if ((ev = event_alert(a, e)) == NULL)
		return -1;
	rc = asprintf(&body, "kind=%s\nalert=%s\nevent=%s\n", JOB_ALERT_EVENT,
	    a->alert, ev);
	free(ev);
	if (rc == -1)
		return err_sys(e, "malloc");
	rc = spool_enqueue(relay, name, body, strlen(body), 0, e);
	free(body);
	return rc;
}
