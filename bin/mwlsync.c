/*
 * mwlsync: owns worklist.db writes from the cloud.
 *
 *   mwlsync apply              actions (JSON) on stdin, one reply per line
 *   mwlsync export-wl DIR      dcmtk wlmscpfs worklist files
 *   mwlsync backup [PATH]      SQLite online backup
 *   mwlsync reset [--today D]  drop finished and past items
 *
 * apply reads a stream of JSON documents (one per line, or pretty-printed
 * and concatenated: whitespace between documents is all that is needed)
 * and answers each on stdout with one line of JSON, in order.  Each action
 * is one transaction: an action that fails validation changes nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "worklist.h"

#define ITEM	"parameters.worklist_item."
#define STATION_AET_DEFAULT	"ANY"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mwlsync [--db PATH] apply\n"
	    "       mwlsync [--db PATH] export-wl DIR\n"
	    "       mwlsync [--db PATH] backup [PATH]\n"
	    "       mwlsync [--db PATH] reset [--today YYYYMMDD]\n"
	    "\n"
	    "Applies the cloud's worklist actions (JSON on stdin, replies on\n"
	    "stdout) to worklist.db, exports dcmtk wlmscpfs files, backs the\n"
	    "database up and clears finished and past items.\n"
	    "\n"
	    "  --db PATH    the database (default WORKLIST_DB_PATH)\n"
	    "  -h, --help   this help\n"
	    "  --version    print the version\n"
	    "\n"
	    "Environment: GATEWAY_DATA_DIR, WORKLIST_DB_PATH,\n"
	    "WORKLIST_STATION_AET (default ANY), LOG_LEVEL.  See mwlsync(1).\n");
}

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

static json_t *
walk(json_t *root, const char *path)
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
get_field(json_t *action, const struct field *f, char *msg, size_t msgsz)
{
	json_t *j = walk(action, f->path);
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
get_fields(json_t *action, const struct field *fs, size_t n, char *msg,
    size_t msgsz)
{
	for (size_t i = 0; i < n; i++)
		if (get_field(action, &fs[i], msg, msgsz) == -1)
			return -1;
	return 0;
}

static void
reply(const char *status, const char *action_id, const char *message)
{
	json_t *j = json_object();
	char *s;

	json_object_set_new(j, "status", json_string(status));
	if (action_id != NULL)
		json_object_set_new(j, "action_id", json_string(action_id));
	if (message != NULL)
		json_object_set_new(j, "message", json_string(message));
	if ((s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)) != NULL) {
		printf("%s\n", s);
		free(s);
	}
	fflush(stdout);
	json_decref(j);
}

struct ctx {
	struct worklist *w;
	int errors;		/* actions answered with an error */
	int failed;		/* internal errors */
};

static void
create_item(struct ctx *c, json_t *action, const char *action_id)
{
	struct worklist_item it = { 0 };
	struct err e = { 0 };
	char msg[300], q[64];
	const char *aet = getenv("WORKLIST_STATION_AET");
	const struct field fs[] = {
		{ ITEM "accession_number", 1, 16, 's', it.accession_number },
		{ ITEM "participant.nhs_number", 1, 64, 's', it.patient_id },
		{ ITEM "participant.name", 1, 64, 'p', it.patient_name },
		{ ITEM "participant.birth_date", 0, 8, 'd', it.birth_date },
		{ ITEM "participant.sex", 0, 16, 's', it.sex },
		{ ITEM "scheduled.date", 1, 8, 'd', it.scheduled_date },
		{ ITEM "scheduled.time", 1, 16, 't', it.scheduled_time },
		{ ITEM "scheduled.station_aet", 0, 16, 's',
		    it.scheduled_station_aet },
		{ ITEM "scheduled.station_name", 0, 16, 's',
		    it.scheduled_station_name },
		{ ITEM "procedure.modality", 0, 16, 's', it.modality },
		{ ITEM "procedure.study_description", 0, 64, 's',
		    it.study_description },
		{ ITEM "procedure.requested_procedure_id", 0, 16, 's',
		    it.requested_procedure_id },
		{ ITEM "procedure.requested_procedure_description", 0, 64, 's',
		    it.requested_procedure_description },
	};
	int rc;

	if (get_fields(action, fs, sizeof fs / sizeof fs[0], msg,
	    sizeof msg) == -1) {
		c->errors++;
		log_warn("rejected", "action_id=%s reason=%s", action_id,
		    log_quote(msg, (char[320]){ 0 }, 320));
		reply("error", action_id, msg);
		return;
	}
	if (it.modality[0] == '\0')
		snprintf(it.modality, WL_FIELD, "MG");
	if (it.scheduled_station_aet[0] == '\0')
		snprintf(it.scheduled_station_aet, WL_FIELD, "%s",
		    aet != NULL && *aet != '\0' ? aet : STATION_AET_DEFAULT);
	snprintf(it.source_message_id, WL_FIELD, "%s", action_id);
	if ((rc = worklist_create(c->w, &it, &e)) == -1) {
		c->failed++;
		log_err("create failed", &e);
		reply("error", action_id, e.msg);
		return;
	}
	log_info(rc == WL_CREATED ? "created" : "exists",
	    "action_id=%s accession_number=%s", action_id,
	    log_quote(it.accession_number, q, sizeof q));
	reply(rc == WL_CREATED ? "created" : "exists", action_id, NULL);
}

static void
update_status(struct ctx *c, json_t *action, const char *action_id)
{
	char acc[WL_FIELD], status[WL_FIELD], msg[300], q[64];
	struct err e = { 0 };
	const struct field fs[] = {
		{ ITEM "accession_number", 1, 16, 's', acc },
		{ ITEM "status", 1, 16, 's', status },
	};
	int rc;

	if (get_fields(action, fs, 2, msg, sizeof msg) == -1) {
		c->errors++;
		reply("error", action_id, msg);
		return;
	}
	if (strcmp(status, WL_SCHEDULED) != 0 &&
	    strcmp(status, WL_IN_PROGRESS) != 0 &&
	    strcmp(status, WL_COMPLETED) != 0 &&
	    strcmp(status, WL_DISCONTINUED) != 0) {
		c->errors++;
		reply("error", action_id, "invalid field: " ITEM "status "
		    "(SCHEDULED, IN PROGRESS, COMPLETED or DISCONTINUED)");
		return;
	}
	if ((rc = worklist_set_status(c->w, acc, status, &e)) == -1) {
		c->failed++;
		log_err("update failed", &e);
		reply("error", action_id, e.msg);
		return;
	}
	log_quote(acc, q, sizeof q);
	if (rc == WL_NOT_FOUND) {
		c->errors++;
		snprintf(msg, sizeof msg, "no worklist item with "
		    "accession_number %s", acc);
		log_warn("not found", "action_id=%s accession_number=%s",
		    action_id, q);
		reply("error", action_id, msg);
		return;
	}
	log_info("updated", "action_id=%s accession_number=%s status=%s",
	    action_id, q, log_quote(status, (char[32]){ 0 }, 32));
	reply("updated", action_id, NULL);
}

static void
apply_one(struct ctx *c, json_t *action)
{
	json_t *id = json_object_get(action, "action_id");
	json_t *type = json_object_get(action, "action_type");
	const char *action_id = json_is_string(id) ? json_string_value(id) :
	    NULL;
	const char *t = json_is_string(type) ? json_string_value(type) : "";
	char msg[300];

	if (!json_is_object(action)) {
		c->errors++;
		reply("error", NULL, "invalid action: not a JSON object");
		return;
	}
	if (action_id == NULL || *action_id == '\0' ||
	    strlen(action_id) >= WL_FIELD) {
		c->errors++;
		reply("error", NULL, "missing field: action_id");
		return;
	}
	if (strcmp(t, "worklist.create_item") == 0)
		create_item(c, action, action_id);
	else if (strcmp(t, "worklist.update_status") == 0)
		update_status(c, action, action_id);
	else {
		c->errors++;
		snprintf(msg, sizeof msg, "Unsupported action: %.200s", t);
		reply("error", NULL, msg);
	}
}

/* 1 when only whitespace is left on f. */
static int
at_end(FILE *f)
{
	int ch;

	while ((ch = getc(f)) != EOF)
		if (!isspace(ch)) {
			ungetc(ch, f);
			return 0;
		}
	return 1;
}

static int
cmd_apply(struct worklist *w)
{
	struct ctx c = { w, 0, 0 };
	json_error_t je;
	json_t *action;
	char msg[400];

	while (!at_end(stdin)) {
		if ((action = json_loadf(stdin, JSON_DISABLE_EOF_CHECK,
		    &je)) == NULL) {
			snprintf(msg, sizeof msg, "invalid JSON: %s at line %d "
			    "column %d", je.text, je.line, je.column);
			log_warn("invalid JSON", "line=%d", je.line);
			reply("error", NULL, msg);
			return EX_DATAERR;	/* no way to resynchronise */
		}
		apply_one(&c, action);
		json_decref(action);
	}
	if (c.failed)
		return EX_IOERR;
	return c.errors ? EX_DATAERR : EX_OK;
}

static int
cmd_export(struct worklist *w, const char *dir)
{
	struct err e = { 0 };
	int n;

	if ((n = worklist_export_wl(w, dir, &e)) == -1) {
		log_err("export failed", &e);
		return EX_IOERR;
	}
	log_info("exported", "items=%d", n);
	return EX_OK;
}

static void
today(char out[9])
{
	time_t now = time(NULL);
	struct tm tm;

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(out, 9, "%Y%m%d", &tm) == 0)
		snprintf(out, 9, "19700101");
}

static int
cmd_backup(struct worklist *w, const struct config *cfg, const char *path)
{
	struct err e = { 0 };
	char dflt[PATH_MAX], dir[PATH_MAX], day[9];

	if (path == NULL) {
		today(day);
		if ((size_t)snprintf(dir, sizeof dir, "%s/backup",
		    cfg->data_dir) >= sizeof dir ||
		    (size_t)snprintf(dflt, sizeof dflt, "%s/worklist-%s.db",
		    dir, day) >= sizeof dflt) {
			log_error("backup failed", "error=%s", "path too long");
			return EX_USAGE;
		}
		if (fs_mkdirs(dir, &e) == -1) {
			log_err("backup failed", &e);
			return EX_CANTCREAT;
		}
		path = dflt;
	}
	if (worklist_backup(w, path, &e) == -1) {
		log_err("backup failed", &e);
		return EX_IOERR;
	}
	log_info("backed up", "path=%s", log_quote(path, dir, sizeof dir));
	return EX_OK;
}

static int
cmd_reset(struct worklist *w, const char *day)
{
	struct err e = { 0 };
	char d[9];
	int n;

	if (day == NULL) {
		today(d);
		day = d;
	}
	if ((n = worklist_reset(w, day, &e)) == -1) {
		log_err("reset failed", &e);
		return EX_IOERR;
	}
	log_info("reset", "today=%s removed=%d", day, n);
	return EX_OK;
}

static int
valid_day(const char *s)
{
	return strlen(s) == 8 && strspn(s, "0123456789") == 8;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "today", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct config cfg;
	struct worklist *w;
	struct err e = { 0 };
	const char *db = NULL, *day = NULL, *cmd;
	int c, rc;

	log_init("mwlsync");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': db = optarg; break;
		case 't': day = optarg; break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("mwlsync %s\n", GW_VERSION);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return EX_USAGE;
	}
	cmd = argv[0];
	if ((strcmp(cmd, "apply") == 0 && argc != 1) ||
	    (strcmp(cmd, "export-wl") == 0 && argc != 2) ||
	    (strcmp(cmd, "backup") == 0 && argc > 2) ||
	    (strcmp(cmd, "reset") == 0 && argc != 1) ||
	    (day != NULL && (strcmp(cmd, "reset") != 0 || !valid_day(day))) ||
	    (strcmp(cmd, "apply") != 0 && strcmp(cmd, "export-wl") != 0 &&
	    strcmp(cmd, "backup") != 0 && strcmp(cmd, "reset") != 0)) {
		usage(stderr);
		return EX_USAGE;
	}
	if (config_load(&cfg, &e) == -1) {
		log_err("bad configuration", &e);
		return EX_CONFIG;
	}
	log_init("mwlsync");	/* LOG_LEVEL may come from gateway.env */
	if (db == NULL)
		db = cfg.worklist_db_path;
	/* Only apply may start a worklist (mwlscp, under gatewayd, creates
	 * it too): a backup, export or reset run by hand in the wrong place
	 * must not make an empty one. */
	if (strcmp(cmd, "apply") != 0 && access(db, F_OK) == -1 &&
	    errno == ENOENT) {
		log_error("cannot open worklist.db", "error=\"no worklist.db at "
		    "%s: run gatewayd (mwlscp creates it) or mwlsync apply\"",
		    db);
		return EX_NOINPUT;
	}
	if (worklist_open(&w, db, &e) == -1) {
		log_err("cannot open worklist.db", &e);
		return EX_IOERR;
	}
	if (strcmp(cmd, "apply") == 0)
		rc = cmd_apply(w);
	else if (strcmp(cmd, "export-wl") == 0)
		rc = cmd_export(w, argv[1]);
	else if (strcmp(cmd, "backup") == 0)
		rc = cmd_backup(w, &cfg, argc > 1 ? argv[1] : NULL);
	else
		rc = cmd_reset(w, day);
	worklist_close(w);
	return rc;
}
