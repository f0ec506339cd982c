/*
 * mwlsync: owns worklist.db writes from the cloud and by hand.
 *
 *   mwlsync apply              actions (JSON) on stdin, one reply per line
 *   mwlsync add --accession A --nhs-number N --name N --date D --time T ...
 *                              one item by hand, in the site's local time
 *   mwlsync import FILE.json   a clinic list {"worklist_items":[...]}
 *   mwlsync export-wl DIR      dcmtk wlmscpfs worklist files
 *   mwlsync backup [PATH]      SQLite online backup
 *   mwlsync reset [--today D]  drop finished and past items
 *
 * apply reads a stream of JSON documents (one per line, or pretty-printed
 * and concatenated: whitespace between documents is all that is needed)
 * and answers each on stdout with one line of JSON, in order.  add and
 * import make the same create actions and apply them the same way
 * (worklist_action_apply), answering one line per item: the accession
 * number, a tab, the status (and a tab and the reason for an error).
 * Each action is one transaction: an action that fails validation changes
 * nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <jansson.h>

#include "base/base.h"
#include "worklist/worklist.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mwlsync [--db PATH] apply\n"
	    "       mwlsync [--db PATH] add --accession A --nhs-number N "
	    "--name LAST^FIRST\n"
	    "               --date YYYY-MM-DD --time HH:MM [--birth-date "
	    "YYYY-MM-DD] [--sex F]\n"
	    "               [--modality MG] [--description TEXT] "
	    "[--station-aet AE]\n"
	    "               [--action-id ID] [--utc]\n"
	    "       mwlsync [--db PATH] import FILE.json\n"
	    "       mwlsync [--db PATH] export-wl DIR\n"
	    "       mwlsync [--db PATH] backup [PATH]\n"
	    "       mwlsync [--db PATH] reset [--today YYYYMMDD]\n"
	    "\n"
	    "Applies the cloud's worklist actions (JSON on stdin, replies on\n"
	    "stdout) to worklist.db; adds an item by hand (date and time in\n"
	    "the site's local time unless --utc) or imports a clinic list\n"
	    "({\"worklist_items\": [create_item actions]}) while the cloud is\n"
	    "out of reach; exports dcmtk wlmscpfs files, backs the database\n"
	    "up and clears finished and past items.\n"
	    "\n"
	    "  --db PATH    the database (default WORKLIST_DB_PATH)\n"
	    "  -h, --help   this help\n"
	    "  --version    print the version\n"
	    "\n"
	    "Example:\n"
	    "  mwlsync add --accession ACC1 --nhs-number 9990001112 --name "
	    "'DOE^JANE' \\\n"
	    "      --birth-date 1970-01-01 --date 2026-07-07 --time 08:30\n"
	    "\n"
	    "Environment: GATEWAY_DATA_DIR, WORKLIST_DB_PATH, "
	    "WORKLIST_TIMEZONE,\n"
	    "WORKLIST_SHOW_FINISHED, WORKLIST_STATION_AET, LOG_LEVEL.  See "
	    "mwlsync(1).\n");
}

struct ctx {
	struct worklist *w;
	int text;		/* answer "ACC<tab>status", not the JSON reply */
	int errors;		/* actions answered with an error */
	int failed;		/* internal errors */
	int created, processed;
};

/* Apply one action (the one path of apply, add and import); answer it. */
static void
apply_one(struct ctx *c, const json_t *action)
{
	struct worklist_reply r;
	char q[WL_FIELD * 3], acc[64], id[WL_FIELD + 8], *json;

	worklist_action_apply(c->w, action, &r);
	snprintf(acc, sizeof acc, "-");
	snprintf(id, sizeof id, "-");
	if (r.accession_number[0] != '\0')
		log_quote(r.accession_number, acc, sizeof acc);
	if (r.action_id[0] != '\0')
		log_quote(r.action_id, id, sizeof id);
	if (strcmp(r.status, "error") != 0) {
		c->created += strcmp(r.status, "created") == 0;
		c->processed += strcmp(r.status, "processed") == 0;
		log_info(r.status, "action_id=%s accession_number=%s", id,
		    acc);
	} else if (r.internal) {
		c->failed++;
		log_error("worklist store failed", "action_id=%s "
		    "accession_number=%s error=%s", id, acc,
		    log_quote(r.message, q, sizeof q));
	} else {
		c->errors++;
		log_warn("rejected", "action_id=%s accession_number=%s "
		    "reason=%s", id, acc, log_quote(r.message, q, sizeof q));
	}
	if (c->text) {
		printf("%s\t%s%s%s\n", r.accession_number[0] ?
		    r.accession_number : "-", r.status,
		    strcmp(r.status, "error") == 0 ? "\t" : "",
		    strcmp(r.status, "error") == 0 ? r.message : "");
	} else if ((json = worklist_reply_json(&r)) != NULL) {
		printf("%s\n", json);
		free(json);
	} else
		printf("{\"status\":\"error\",\"message\":\"out of memory\"}\n");
	fflush(stdout);
}

static int
exit_status(const struct ctx *c)
{
	if (c->failed)
		return EX_IOERR;
	return c->errors ? EX_DATAERR : EX_OK;
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
	struct ctx c = { .w = w };
	struct worklist_reply r = { .status = "error" };
	json_error_t je;
	json_t *action;
	char *json;

	while (!at_end(stdin)) {
		if ((action = json_loadf(stdin, JSON_DISABLE_EOF_CHECK,
		    &je)) == NULL) {
			snprintf(r.message, sizeof r.message, "invalid JSON: "
			    "%s at line %d column %d", je.text, je.line,
			    je.column);
			log_warn("invalid JSON", "line=%d", je.line);
			if ((json = worklist_reply_json(&r)) != NULL)
				printf("%s\n", json);
			free(json);
			return EX_DATAERR;	/* no way to resynchronise */
		}
		apply_one(&c, action);
		json_decref(action);
	}
	return exit_status(&c);
}

/* --- add --- */

/* add's options: each sets a key of the create_item, below
 * parameters.worklist_item (action-id the action's own). */
enum {
	ADD_ACCESSION, ADD_NHS, ADD_NAME, ADD_BIRTH, ADD_SEX, ADD_DATE,
	ADD_TIME, ADD_STATION, ADD_MODALITY, ADD_DESCRIPTION, ADD_ACTION_ID,
	ADD_N
};

static const struct {
	const char *opt, *key;
	int needed;
} add_opts[ADD_N] = {
	[ADD_ACCESSION] = { "accession", "accession_number", 1 },
	[ADD_NHS] = { "nhs-number", "participant.nhs_number", 1 },
	[ADD_NAME] = { "name", "participant.name", 1 },
	[ADD_BIRTH] = { "birth-date", "participant.birth_date", 0 },
	[ADD_SEX] = { "sex", "participant.sex", 0 },
	[ADD_DATE] = { "date", "scheduled.date", 1 },
	[ADD_TIME] = { "time", "scheduled.time", 1 },
	[ADD_STATION] = { "station-aet", "scheduled.station_aet", 0 },
	[ADD_MODALITY] = { "modality", "procedure.modality", 0 },
	[ADD_DESCRIPTION] = { "description", "procedure.study_description",
	    0 },
	[ADD_ACTION_ID] = { "action-id", NULL, 0 },
};

/* getopt values: OPT_ADD + i is add_opts[i]. */
enum { OPT_ADD = 256, OPT_UTC = OPT_ADD + ADD_N, OPT_VERSION };

struct add {
	const char *v[ADD_N];	/* the options' values, NULL when not given */
	int utc, any;		/* any: an add option was given */
};

/* s without the separator sep, as people type dates and times
 * ("2026-07-07", "08:30"); what is left is checked as any action's. */
static void
compact(const char *s, char sep, char *out, size_t outsz)
{
	size_t o = 0;

	for (; *s != '\0' && o + 1 < outsz; s++)
		if (*s != sep)
			out[o++] = *s;
	out[o] = '\0';
}

static int
set_string(json_t *obj, const char *path, const char *v)
{
	char part[64];
	const char *dot;
	json_t *o = obj, *next;

	if (v == NULL)
		return 0;
	while ((dot = strchr(path, '.')) != NULL) {
		snprintf(part, sizeof part, "%.*s", (int)(dot - path), path);
		if ((next = json_object_get(o, part)) == NULL) {
			if ((next = json_object()) == NULL ||
			    json_object_set_new(o, part, next) == -1)
				return -1;
		}
		o = next;
		path = dot + 1;
	}
	return json_object_set_new(o, path, json_string(v));
}

/* The worklist.create_item action of these values. */
static json_t *
add_action(const char *const *v, const char *action_id)
{
	json_t *item = json_object();

	for (int i = 0; i < ADD_N && item != NULL; i++)
		if (add_opts[i].key != NULL &&
		    set_string(item, add_opts[i].key, v[i]) == -1) {
			json_decref(item);
			item = NULL;
		}
	if (item == NULL)
		return NULL;
	return json_pack("{s:i, s:s, s:s, s:s, s:{s:o}}", "schema_version", 1,
	    "action_id", action_id, "action_type", "worklist.create_item",
	    "source_system", "mwlsync add", "parameters", "worklist_item",
	    item);
}

static int
cmd_add(struct worklist *w, const struct add *a)
{
	struct ctx c = { .w = w, .text = 1 };
	struct err e = { 0 };
	const char *v[ADD_N];
	char date[WL_FIELD], time[WL_FIELD], birth[WL_FIELD], id[WL_FIELD];
	char udate[WL_FIELD], utime[WL_FIELD];
	json_t *action;

	for (int i = 0; i < ADD_N; i++) {
		if (add_opts[i].needed && a->v[i] == NULL) {
			fprintf(stderr, "mwlsync: add needs --%s\n",
			    add_opts[i].opt);
			return EX_USAGE;
		}
		v[i] = a->v[i];
	}
	compact(a->v[ADD_DATE], '-', date, sizeof date);
	compact(a->v[ADD_TIME], ':', time, sizeof time);
	/* HHMMSS, as Manage sends times, so its create_item of the same
	 * appointment reads as the same item. */
	if ((strlen(time) == 2 || strlen(time) == 4) &&
	    strspn(time, "0123456789") == strlen(time))
		strcat(time, strlen(time) == 2 ? "0000" : "00");
	if (a->utc) {
		snprintf(udate, sizeof udate, "%s", date);
		snprintf(utime, sizeof utime, "%s", time);
	} else if (worklist_local_to_utc(date, time, udate, utime, &e) == -1) {
		fprintf(stderr, "mwlsync: add: %s\n", e.msg);
		return EX_DATAERR;
	}
	v[ADD_DATE] = udate;
	v[ADD_TIME] = utime;
	if (a->v[ADD_BIRTH] != NULL) {
		compact(a->v[ADD_BIRTH], '-', birth, sizeof birth);
		v[ADD_BIRTH] = birth;
	}
	snprintf(id, sizeof id, WL_MANUAL_PREFIX "%s", a->v[ADD_ACCESSION]);
	if ((action = add_action(v, a->v[ADD_ACTION_ID] ?
	    a->v[ADD_ACTION_ID] : id)) == NULL) {
		log_error("add failed", "error=%s", "out of memory");
		return EX_OSERR;
	}
	apply_one(&c, action);
	json_decref(action);
	return exit_status(&c);
}

/* --- import --- */

/* Every problem of the clinic list, on stderr: the count (0: usable).
 * Items without an action_type are made worklist.create_item ones. */
static int
check_clinic_list(const char *path, json_t *items)
{
	struct worklist_action a;
	char msg[WL_FIELD * 2];
	size_t i;
	json_t *it;
	int bad = 0;

	json_array_foreach(items, i, it) {
		const json_t *type = json_object_get(it, "action_type");

		if (!json_is_object(it)) {
			fprintf(stderr, "mwlsync: %s: item %zu: not a JSON "
			    "object\n", path, i + 1);
			bad++;
			continue;
		}
		if (type == NULL)
			json_object_set_new(it, "action_type",
			    json_string("worklist.create_item"));
		else if (!json_is_string(type) || strcmp(json_string_value(
		    type), "worklist.create_item") != 0) {
			fprintf(stderr, "mwlsync: %s: item %zu: action_type "
			    "must be worklist.create_item\n", path, i + 1);
			bad++;
			continue;
		}
		if (worklist_action_parse(it, &a, msg, sizeof msg) == -1) {
			fprintf(stderr, "mwlsync: %s: item %zu%s%s%s: %s\n",
			    path, i + 1, a.item.accession_number[0] ? " (" :
			    "", a.item.accession_number,
			    a.item.accession_number[0] ? ")" : "", msg);
			bad++;
		}
	}
	return bad;
}

static int
cmd_import(struct worklist *w, const char *path)
{
	struct ctx c = { .w = w, .text = 1 };
	json_error_t je;
	json_t *root, *items, *it;
	char q[PATH_MAX + 8];
	size_t i;
	int bad;

	log_quote(path, q, sizeof q);
	if ((root = json_load_file(path, 0, &je)) == NULL) {
		if (access(path, R_OK) == -1) {
			fprintf(stderr, "mwlsync: cannot read %s: %s\n", path,
			    strerror(errno));
			return EX_NOINPUT;
		}
		fprintf(stderr, "mwlsync: %s: invalid JSON: %s at line %d "
		    "column %d; nothing imported\n", path, je.text, je.line,
		    je.column);
		log_warn("import refused", "file=%s reason=\"invalid JSON\"",
		    q);
		return EX_DATAERR;
	}
	items = json_object_get(root, "worklist_items");
	if (!json_is_array(items)) {
		fprintf(stderr, "mwlsync: %s: not a clinic list: no "
		    "\"worklist_items\" array; nothing imported\n", path);
		log_warn("import refused", "file=%s reason=\"no worklist_items "
		    "array\"", q);
		json_decref(root);
		return EX_DATAERR;
	}
	if ((bad = check_clinic_list(path, items)) > 0) {
		fprintf(stderr, "mwlsync: %s: %d of %zu items cannot be "
		    "used; nothing imported\n", path, bad,
		    json_array_size(items));
		log_warn("import refused", "file=%s items=%zu bad=%d", q,
		    json_array_size(items), bad);
		json_decref(root);
		return EX_DATAERR;
	}
	json_array_foreach(items, i, it)
		apply_one(&c, it);
	log_info("imported", "file=%s items=%zu created=%d processed=%d "
	    "errors=%d failed=%d", q, json_array_size(items), c.created,
	    c.processed, c.errors, c.failed);
	json_decref(root);
	return exit_status(&c);
}

/* --- export, backup, reset --- */

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

static int
cmd_backup(struct worklist *w, const struct config *cfg, const char *path)
{
	struct err e = { 0 };
	char dflt[PATH_MAX], dir[PATH_MAX], day[9];

	if (path == NULL) {
		worklist_today(day);
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
		worklist_today(d);
		day = d;
	}
	if ((n = worklist_reset(w, day, &e)) == -1) {
		log_err("reset failed", &e);
		return EX_IOERR;
	}
	log_info("reset", "today=%s removed=%d", day, n);
	return EX_OK;
}

/* --- main --- */

/* The command's argument count is right, and its options are its own. */
static int
valid_command(const char *cmd, int argc, const char *day,
    const struct add *a)
{
	static const struct { const char *name; int lo, hi; } cmds[] = {
		{ "apply", 1, 1 }, { "add", 1, 1 }, { "import", 2, 2 },
		{ "export-wl", 2, 2 }, { "backup", 1, 2 }, { "reset", 1, 1 },
	};

	if (day != NULL && (strcmp(cmd, "reset") != 0 ||
	    !worklist_valid_date(day)))
		return 0;
	if (a->any && strcmp(cmd, "add") != 0)
		return 0;
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(cmd, cmds[i].name) == 0)
			return argc >= cmds[i].lo && argc <= cmds[i].hi;
	return 0;
}

/* The add option c, into a: 1, or 0 when c is none. */
static int
add_option(struct add *a, int c, const char *v)
{
	if (c == OPT_UTC)
		a->utc = 1;
	else if (c >= OPT_ADD && c < OPT_ADD + ADD_N)
		a->v[c - OPT_ADD] = v;
	else
		return 0;
	a->any = 1;
	return 1;
}

/* Commands that read or write what the site sees need its settings. */
static int
needs_site(const char *cmd)
{
	return strcmp(cmd, "apply") != 0 && strcmp(cmd, "import") != 0;
}

int
main(int argc, char **argv)
{
	static const struct option common[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "today", required_argument, NULL, 't' },
		{ "utc", no_argument, NULL, OPT_UTC },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
	};
	struct option opts[sizeof common / sizeof common[0] + ADD_N + 1];
	struct config cfg;
	struct worklist_site site;
	struct worklist *w;
	struct err e = { 0 };
	struct add add = { 0 };
	const char *db = NULL, *day = NULL, *cmd;
	int c, rc;

	memcpy(opts, common, sizeof common);
	for (int i = 0; i < ADD_N; i++)
		opts[sizeof common / sizeof common[0] + i] = (struct option){
		    add_opts[i].opt, required_argument, NULL, OPT_ADD + i };
	memset(&opts[sizeof common / sizeof common[0] + ADD_N], 0,
	    sizeof opts[0]);
	log_init("mwlsync");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': db = optarg; break;
		case 't': day = optarg; break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case OPT_VERSION:
			printf("mwlsync %s\n", GW_VERSION);
			return EX_OK;
		default:
			if (add_option(&add, c, optarg))
				break;
			usage(stderr);
			return EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || !valid_command(argv[0], argc, day, &add)) {
		usage(stderr);
		return EX_USAGE;
	}
	cmd = argv[0];
	if (config_load(&cfg, &e) == -1) {
		log_err("bad configuration", &e);
		return EX_CONFIG;
	}
	log_init("mwlsync");	/* LOG_LEVEL may come from gateway.env */
	if (needs_site(cmd) && worklist_site_init(&site, &e) == -1) {
		log_err("bad configuration", &e);
		return EX_CONFIG;
	}
	if (db == NULL)
		db = cfg.worklist_db_path;
	/* Only apply may start a worklist (mwlscp, under gatewayd, creates
	 * it too): anything else run by hand in the wrong place must not
	 * make an empty one. */
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
	if (needs_site(cmd))
		worklist_set_site(w, &site);
	if (strcmp(cmd, "apply") == 0)
		rc = cmd_apply(w);
	else if (strcmp(cmd, "add") == 0)
		rc = cmd_add(w, &add);
	else if (strcmp(cmd, "import") == 0)
		rc = cmd_import(w, argv[1]);
	else if (strcmp(cmd, "export-wl") == 0)
		rc = cmd_export(w, argv[1]);
	else if (strcmp(cmd, "backup") == 0)
		rc = cmd_backup(w, &cfg, argc > 1 ? argv[1] : NULL);
	else
		rc = cmd_reset(w, day);
	worklist_close(w);
	return rc;
}
