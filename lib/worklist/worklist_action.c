/*
 * worklist_action: checking the cloud's worklist actions (see
 * worklist/worklist.h).
 */
#include "worklist/worklist.h"

#include <stdio.h>
#include <string.h>

#define ITEM	"parameters.worklist_item."

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
	const char *path;	/* below the action, dotted */
	int required;
	size_t max;		/* characters (per component group for PN) */
	char kind;		/* 's' string, 'p' PN, 'd' DA, 't' TM */
	char *out;
};

static const json_t *
walk(const json_t *root, const char *path)
{
	char part[64];
	const char *p = path, *dot;

	while (root != NULL && (dot = strchr(p, '.')) != NULL) {
		snprintf(part, sizeof part, "%.*s", (int)(dot - p), p);
		root = json_object_get(root, part);
		p = dot + 1;
	}
	return root != NULL ? json_object_get(root, p) : NULL;
}

static int
valid_tm(const char *s)
{
	size_t n = strspn(s, "0123456789");

	if (n < 2 || n > 6 || n % 2 != 0)
		return 0;
	if (s[n] == '\0')
		return 1;
	return s[n] == '.' && n == 6 && strlen(s + n + 1) >= 1 &&
	    strlen(s + n + 1) <= 6 &&
	    strspn(s + n + 1, "0123456789") == strlen(s + n + 1);
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
get_field(const json_t *action, const struct field *f, char *msg,
    size_t msgsz)
{
	const json_t *j = walk(action, f->path);
	const char *v;

	f->out[0] = '\0';
	if (j == NULL || json_is_null(j)) {
		if (!f->required)
			return 0;
		snprintf(msg, msgsz, "missing field: %s", f->path);
		return -1;
	}
	if (!json_is_string(j)) {
		snprintf(msg, msgsz, "invalid field: %s (not a string)",
		    f->path);
		return -1;
	}
	v = json_string_value(j);
	if (*v == '\0' && f->required) {
		snprintf(msg, msgsz, "missing field: %s (empty)", f->path);
		return -1;
	}
	if (strlen(v) >= WL_FIELD || too_long(f, v)) {
		snprintf(msg, msgsz, "field too long: %s (at most %zu "
		    "characters)", f->path, f->max);
		return -1;
	}
	for (const char *p = v; *p != '\0'; p++)
		if (*p == '\\' || ((unsigned char)*p < 0x20)) {
			snprintf(msg, msgsz, "invalid field: %s (backslash or "
			    "control character)", f->path);
			return -1;
		}
	if ((f->kind == 'd' && *v != '\0' && (strlen(v) != 8 ||
	    strspn(v, "0123456789") != 8)) ||
	    (f->kind == 't' && *v != '\0' && !valid_tm(v))) {
		snprintf(msg, msgsz, "invalid field: %s (%s)", f->path,
		    f->kind == 'd' ? "a date is 8 digits, YYYYMMDD" :
		    "a time is HHMMSS, HHMM or HH, with an optional fraction");
		return -1;
	}
	snprintf(f->out, WL_FIELD, "%s", v);
	return 0;
}

static int
get_fields(const json_t *action, const struct field *fs, size_t n,
    char *msg, size_t msgsz)
{
	for (size_t i = 0; i < n; i++)
		if (get_field(action, &fs[i], msg, msgsz) == -1)
			return -1;
	return 0;
}

static int
create_item(const json_t *action, struct worklist_item *it, char *msg,
    size_t msgsz)
{
	const struct field fs[] = {
		{ ITEM "accession_number", 1, 16, 's', it->accession_number },
		{ ITEM "participant.nhs_number", 1, 64, 's', it->patient_id },
		{ ITEM "participant.name", 1, 64, 'p', it->patient_name },
		{ ITEM "participant.birth_date", 0, 8, 'd', it->birth_date },
		{ ITEM "participant.sex", 0, 16, 's', it->sex },
		{ ITEM "scheduled.date", 1, 8, 'd', it->scheduled_date },
		{ ITEM "scheduled.time", 1, 16, 't', it->scheduled_time },
		{ ITEM "scheduled.station_aet", 0, 16, 's',
		    it->scheduled_station_aet },
		{ ITEM "scheduled.station_name", 0, 16, 's',
		    it->scheduled_station_name },
		{ ITEM "procedure.modality", 0, 16, 's', it->modality },
		{ ITEM "procedure.study_description", 0, 64, 's',
		    it->study_description },
		{ ITEM "procedure.requested_procedure_id", 0, 16, 's',
		    it->requested_procedure_id },
		{ ITEM "procedure.requested_procedure_description", 0, 64, 's',
		    it->requested_procedure_description },
	};

	if (get_fields(action, fs, sizeof fs / sizeof fs[0], msg,
	    msgsz) == -1)
		return -1;
	if (it->modality[0] == '\0')
		snprintf(it->modality, WL_FIELD, "MG");
	return 0;
}

static int
update_status(const json_t *action, struct worklist_item *it, char *msg,
    size_t msgsz)
{
	const struct field fs[] = {
		{ ITEM "accession_number", 1, 16, 's', it->accession_number },
		{ ITEM "status", 1, 16, 's', it->status },
	};

	if (get_fields(action, fs, 2, msg, msgsz) == -1)
		return -1;
	if (strcmp(it->status, WL_SCHEDULED) != 0 &&
	    strcmp(it->status, WL_IN_PROGRESS) != 0 &&
	    strcmp(it->status, WL_COMPLETED) != 0 &&
	    strcmp(it->status, WL_DISCONTINUED) != 0) {
		snprintf(msg, msgsz, "invalid field: " ITEM "status "
		    "(SCHEDULED, IN PROGRESS, COMPLETED or DISCONTINUED)");
		return -1;
	}
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
	const char *t = json_is_string(type) ? json_string_value(type) : "";

	memset(a, 0, sizeof *a);
	if (!json_is_object(action)) {
		snprintf(msg, msgsz, "invalid action: not a JSON object");
		return -1;
	}
	if (action_id == NULL || *action_id == '\0' ||
	    strlen(action_id) >= WL_FIELD) {
		snprintf(msg, msgsz, "missing field: action_id");
		return -1;
	}
	snprintf(a->action_id, sizeof a->action_id, "%s", action_id);
	if (strcmp(t, "worklist.create_item") == 0) {
		a->type = WL_ACTION_CREATE_ITEM;
		snprintf(a->item.source_message_id, WL_FIELD, "%s", action_id);
		return create_item(action, &a->item, msg, msgsz);
	}
	if (strcmp(t, "worklist.update_status") == 0) {
		a->type = WL_ACTION_UPDATE_STATUS;
		return update_status(action, &a->item, msg, msgsz);
	}
	snprintf(msg, msgsz, "Unsupported action: %.200s", t);
	return -1;
}
