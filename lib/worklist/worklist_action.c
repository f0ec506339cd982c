/*
 * worklist_action: the cloud's worklist actions, checked, applied and
 * answered (see worklist/worklist.h).
 *
 * The replies are the production gateway's where it has them ("Missing
 * key: 'action_id'", "Unsupported action: ...", "Cannot transition to
 * 'S'", "Worklist item 'X' not found"), with two deliberate changes: a
 * repeat of a known item answers "processed" (the cloud records the
 * production gateway's "exists" as FAILED), and a missing or bad field
 * answers an error naming it (where production stores NULL and says
 * "exists").
 */
#include "worklist/worklist.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITEM_OF(f)	offsetof(struct worklist_item, f)

/* The number of UTF-8 characters in s. */
static size_t
chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

struct field {
	const char *name;	/* below parameters.worklist_item, dotted */
	int required;
	size_t max;		/* characters (per component group for PN) */
	char kind;		/* 's' string, 'p' PN, 'd' DA, 't' TM */
	size_t off;		/* in struct worklist_item */
};

/* What a worklist.create_item sets: the content of an item. */
static const struct field create_fields[] = {
	{ "accession_number", 1, 16, 's', ITEM_OF(accession_number) },
	{ "participant.nhs_number", 1, 64, 's', ITEM_OF(patient_id) },
	{ "participant.name", 1, 64, 'p', ITEM_OF(patient_name) },
	{ "participant.birth_date", 0, 8, 'd', ITEM_OF(birth_date) },
	{ "participant.sex", 0, 16, 's', ITEM_OF(sex) },
	{ "scheduled.date", 1, 8, 'd', ITEM_OF(scheduled_date) },
	{ "scheduled.time", 1, 16, 't', ITEM_OF(scheduled_time) },
	{ "scheduled.station_aet", 0, 16, 's',
	    ITEM_OF(scheduled_station_aet) },
	{ "scheduled.station_name", 0, 16, 's',
	    ITEM_OF(scheduled_station_name) },
	{ "procedure.modality", 0, 16, 's', ITEM_OF(modality) },
	{ "procedure.study_description", 0, 64, 's',
	    ITEM_OF(study_description) },
	{ "procedure.requested_procedure_id", 0, 16, 's',
	    ITEM_OF(requested_procedure_id) },
	{ "procedure.requested_procedure_description", 0, 64, 's',
	    ITEM_OF(requested_procedure_description) },
};

static const struct field update_fields[] = {
	{ "accession_number", 1, 16, 's', ITEM_OF(accession_number) },
	{ "status", 1, 16, 's', ITEM_OF(status) },
};

#define NFIELDS(a)	(sizeof (a) / sizeof (a)[0])

static char *
slot(struct worklist_item *it, const struct field *f)
{
	return (char *)it + f->off;
}

static const char *
cslot(const struct worklist_item *it, const struct field *f)
{
	return (const char *)it + f->off;
}

/* The value at a dotted path below parameters.worklist_item. */
static const json_t *
walk(const json_t *action, const char *path)
{
	const json_t *j = json_object_get(json_object_get(action,
	    "parameters"), "worklist_item");
	char part[64];
	const char *p = path, *dot;

	while (j != NULL && (dot = strchr(p, '.')) != NULL) {
		snprintf(part, sizeof part, "%.*s", (int)(dot - p), p);
		j = json_object_get(j, part);
		p = dot + 1;
	}
	return j != NULL ? json_object_get(j, p) : NULL;
}

static int
too_long(const struct field *f, const char *v)
{
	char buf[WL_FIELD], *p, *save = NULL;

	if (f->kind != 'p')
		return chars(v) > f->max;
	snprintf(buf, sizeof buf, "%s", v);
	for (p = strtok_r(buf, "=", &save); p != NULL;
	    p = strtok_r(NULL, "=", &save))
		if (chars(p) > f->max)
			return 1;
	return 0;
}

/* Check and copy one field; fills msg and returns -1 when it is bad. */
static int
get_field(const json_t *action, const struct field *f,
    struct worklist_item *it, char *msg, size_t msgsz)
{
	const json_t *j = walk(action, f->name);
	char *out = slot(it, f);
	const char *v;

	out[0] = '\0';
	if (j == NULL || json_is_null(j)) {
		if (!f->required)
			return 0;
		snprintf(msg, msgsz, "Missing key: '%s'", f->name);
		return -1;
	}
	if (!json_is_string(j)) {
		snprintf(msg, msgsz, "Invalid value: '%s' (not a string)",
		    f->name);
		return -1;
	}
	v = json_string_value(j);
	if (*v == '\0') {
		if (!f->required)
			return 0;
		snprintf(msg, msgsz, "Empty value: '%s'", f->name);
		return -1;
	}
	if (strlen(v) >= WL_FIELD || too_long(f, v)) {
		snprintf(msg, msgsz, "Value too long: '%s' (at most %zu "
		    "characters)", f->name, f->max);
		return -1;
	}
	for (const char *p = v; *p != '\0'; p++)
		if (*p == '\\' || ((unsigned char)*p < 0x20)) {
			snprintf(msg, msgsz, "Invalid value: '%s' (backslash "
			    "or control character)", f->name);
			return -1;
		}
	if ((f->kind == 'd' && !worklist_valid_date(v)) ||
	    (f->kind == 't' && !worklist_valid_time(v))) {
		snprintf(msg, msgsz, "Invalid value: '%s' (%s)", f->name,
		    f->kind == 'd' ? "a date is YYYYMMDD, a day of the "
		    "calendar" : "a time is HHMMSS, HHMM or HH within a day, "
		    "with an optional fraction");
		return -1;
	}
	snprintf(out, WL_FIELD, "%s", v);
	return 0;
}

static int
get_fields(const json_t *action, const struct field *fs, size_t n,
    struct worklist_item *it, char *msg, size_t msgsz)
{
	for (size_t i = 0; i < n; i++)
		if (get_field(action, &fs[i], it, msg, msgsz) == -1)
			return -1;
	return 0;
}

int
worklist_action_parse(const json_t *action, struct worklist_action *a,
    char *msg, size_t msgsz)
{
	const json_t *id = json_object_get(action, "action_id");
	const json_t *type = json_object_get(action, "action_type");
	const char *action_id = json_is_string(id) ? json_string_value(id) :
	    NULL;
	const char *t = json_is_string(type) ? json_string_value(type) :
	    "no-op";

	memset(a, 0, sizeof *a);
	if (!json_is_object(action)) {
		snprintf(msg, msgsz, "Invalid action: not a JSON object");
		return -1;
	}
	if (strcmp(t, "worklist.create_item") != 0 &&
	    strcmp(t, "worklist.update_status") != 0) {
		snprintf(msg, msgsz, "Unsupported action: %.200s", t);
		return -1;
	}
	if (action_id != NULL && *action_id != '\0' &&
	    strlen(action_id) < WL_FIELD)
		snprintf(a->action_id, sizeof a->action_id, "%s", action_id);
	if (strcmp(t, "worklist.update_status") == 0) {
		/* The production gateway reads no action_id here. */
		a->type = WL_ACTION_UPDATE_STATUS;
		if (get_fields(action, update_fields, NFIELDS(update_fields),
		    &a->item, msg, msgsz) == -1)
			return -1;
		for (char *p = a->item.status; *p != '\0'; p++)
			*p = (char)toupper((unsigned char)*p);
		return 0;
	}
	if (a->action_id[0] == '\0') {
		snprintf(msg, msgsz, id == NULL || json_is_null(id) ?
		    "Missing key: 'action_id'" : !json_is_string(id) ?
		    "Invalid value: 'action_id' (not a string)" :
		    *action_id == '\0' ? "Empty value: 'action_id'" :
		    "Value too long: 'action_id' (at most 255 bytes)");
		return -1;
	}
	a->type = WL_ACTION_CREATE_ITEM;
	snprintf(a->item.source_message_id, WL_FIELD, "%s", a->action_id);
	if (get_fields(action, create_fields, NFIELDS(create_fields), &a->item,
	    msg, msgsz) == -1)
		return -1;
	if (a->item.modality[0] == '\0')
		snprintf(a->item.modality, WL_FIELD, "MG");
	return 0;
}

/* 1 when two values of field f are the same: times by value ("0830" is
 * "083000"), everything else letter for letter. */
static int
same_value(const struct field *f, const char *a, const char *b)
{
	if (f->kind == 't' && worklist_valid_time(a) &&
	    worklist_valid_time(b))
		return match_time(a, strlen(a)) == match_time(b, strlen(b));
	return strcmp(a, b) == 0;
}

int
worklist_action_diff(const struct worklist_item *a,
    const struct worklist_item *b, char *out, size_t outsz)
{
	size_t len = 0;
	int n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < NFIELDS(create_fields); i++) {
		const struct field *f = &create_fields[i];

		if (same_value(f, cslot(a, f), cslot(b, f)))
			continue;
		if (len < outsz)
			len += (size_t)snprintf(out + len, outsz - len, "%s%s",
			    n > 0 ? ", " : "", f->name);
		n++;
	}
	return n;
}

static void error_reply(struct worklist_reply *r, int internal,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
error_reply(struct worklist_reply *r, int internal, const char *fmt, ...)
{
	va_list ap;

	r->status = "error";
	r->internal = internal;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof r->message, fmt, ap);
	va_end(ap);
}

static void
apply_create(struct worklist *w, struct worklist_action *a,
    struct worklist_reply *r)
{
	struct worklist_item stored;
	struct err e = { 0 };
	char fields[WL_FIELD];
	int rc;

	if ((rc = worklist_create(w, &a->item, &stored, &e)) == -1)
		error_reply(r, 1, "Worklist store failed: %s", e.msg);
	else if (rc == WL_CREATED)
		r->status = "created";
	else if (strcmp(stored.accession_number,
	    a->item.accession_number) != 0)
		error_reply(r, 0, "Action '%s' created worklist item '%s' "
		    "already", a->action_id, stored.accession_number);
	else if (worklist_action_diff(&a->item, &stored, fields,
	    sizeof fields) > 0)
		error_reply(r, 0, "Worklist item '%s' exists with different "
		    "%s", a->item.accession_number, fields);
	else if (strncmp(stored.source_message_id, WL_MANUAL_PREFIX,
	    strlen(WL_MANUAL_PREFIX)) == 0 &&
	    strncmp(a->action_id, WL_MANUAL_PREFIX,
	    strlen(WL_MANUAL_PREFIX)) != 0 &&
	    worklist_adopt_action_id(w, a->item.accession_number,
	    a->action_id, &e) == -1)
		error_reply(r, 1, "Worklist store failed: %s", e.msg);
	else
		r->status = "processed";
}

static void
apply_update(struct worklist *w, struct worklist_action *a,
    struct worklist_reply *r)
{
	const char *acc = a->item.accession_number;
	struct err e = { 0 };
	int rc;

	rc = worklist_transition(w, acc, a->item.status, &e);
	if (rc == -1)
		error_reply(r, 1, "Worklist store failed: %s", e.msg);
	else if (rc == WL_REFUSED)
		error_reply(r, 0, "Cannot transition to '%s'",
		    a->item.status);
	else if (rc == WL_NOT_FOUND)
		error_reply(r, 0, "Worklist item '%s' not found", acc);
	else
		r->status = "updated";
}

void
worklist_action_apply(struct worklist *w, const json_t *action,
    struct worklist_reply *r)
{
	struct worklist_action a;

	memset(r, 0, sizeof *r);
	r->status = "error";
	if (worklist_action_parse(action, &a, r->message,
	    sizeof r->message) == 0) {
		if (a.type == WL_ACTION_CREATE_ITEM)
			apply_create(w, &a, r);
		else
			apply_update(w, &a, r);
	}
	r->type = a.type;
	snprintf(r->action_id, sizeof r->action_id, "%s", a.action_id);
	snprintf(r->accession_number, sizeof r->accession_number, "%s",
	    a.item.accession_number);
}

char *
worklist_reply_json(const struct worklist_reply *r)
{
	json_t *j = json_object();
	char *s;

	if (j == NULL)
		return NULL;
	if (strcmp(r->status, "updated") == 0)
		json_object_set_new(j, "accession_number",
		    json_string(r->accession_number));
	json_object_set_new(j, "status", json_string(r->status));
	if (r->action_id[0] != '\0' && strcmp(r->status, "updated") != 0)
		json_object_set_new(j, "action_id", json_string(r->action_id));
	if (strcmp(r->status, "error") == 0) {
		json_t *m = json_string(r->message);
		char ascii[sizeof r->message];

		/* Not UTF-8 (a cut character, a path): said in ASCII. */
		if (m == NULL) {
			for (size_t i = 0; i < sizeof ascii; i++)
				ascii[i] = (r->message[i] & 0x80) ? '?' :
				    r->message[i];
			ascii[sizeof ascii - 1] = '\0';
			m = json_string(ascii);
		}
		json_object_set_new(j, "message", m);
	}
	s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return s;
}
