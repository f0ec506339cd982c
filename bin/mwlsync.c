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

#include "base/base.h"
#include "worklist/worklist.h"

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
create_item(struct ctx *c, struct worklist_action *a)
{
	struct worklist_item *it = &a->item;
	struct err e = { 0 };
	char q[64];
	const char *aet = getenv("WORKLIST_STATION_AET");
	int rc;

	if (it->scheduled_station_aet[0] == '\0')
		snprintf(it->scheduled_station_aet, WL_FIELD, "%s",
		    aet != NULL && *aet != '\0' ? aet : STATION_AET_DEFAULT);
	if ((rc = worklist_create(c->w, it, &e)) == -1) {
		c->failed++;
		log_err("create failed", &e);
		reply("error", a->action_id, e.msg);
		return;
	}
	log_info(rc == WL_CREATED ? "created" : "exists",
	    "action_id=%s accession_number=%s", a->action_id,
	    log_quote(it->accession_number, q, sizeof q));
	reply(rc == WL_CREATED ? "created" : "exists", a->action_id, NULL);
}

static void
update_status(struct ctx *c, struct worklist_action *a)
{
	const char *acc = a->item.accession_number, *status = a->item.status;
	char msg[300], q[64];
	struct err e = { 0 };
	int rc;

	if ((rc = worklist_set_status(c->w, acc, status, &e)) == -1) {
		c->failed++;
		log_err("update failed", &e);
		reply("error", a->action_id, e.msg);
		return;
	}
	log_quote(acc, q, sizeof q);
	if (rc == WL_NOT_FOUND) {
		c->errors++;
		snprintf(msg, sizeof msg, "no worklist item with "
		    "accession_number %s", acc);
		log_warn("not found", "action_id=%s accession_number=%s",
		    a->action_id, q);
		reply("error", a->action_id, msg);
		return;
	}
	log_info("updated", "action_id=%s accession_number=%s status=%s",
	    a->action_id, q, log_quote(status, (char[32]){ 0 }, 32));
	reply("updated", a->action_id, NULL);
}

static void
apply_one(struct ctx *c, json_t *action)
{
	struct worklist_action a;
	char msg[300];

	if (worklist_action_parse(action, &a, msg, sizeof msg) == -1) {
		c->errors++;
		if (a.type == WL_ACTION_CREATE_ITEM)
			log_warn("rejected", "action_id=%s reason=%s",
			    a.action_id, log_quote(msg, (char[320]){ 0 }, 320));
		reply("error", a.type != WL_ACTION_NONE ? a.action_id : NULL,
		    msg);
		return;
	}
	if (a.type == WL_ACTION_CREATE_ITEM)
		create_item(c, &a);
	else
		update_status(c, &a);
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
		if ((size_t)snprintf(dir, sizeof dir, "%s",
		    cfg->backup_dir) >= sizeof dir ||
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
