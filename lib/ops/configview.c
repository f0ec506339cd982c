/*
 * configview: the settings table as an operator and gatewayd see it:
 * every value and where it came from, the checks made before anything
 * starts, and the values exported to gatewayd (see ops/ops.h).
 */
#include "ops/ops.h"
#include "dicomnet/dicomnet.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Is name a setting, or production's name for one? */
static int
known(const char *name)
{
	return settings_find(name) != NULL ||
	    settings_find_alias(name) != NULL;
}

/* The names gatewayd does not know but someone meant for it: a name of
 * the file, or of the environment that looks like ours. */
static int
looks_ours(const char *name)
{
	static const char *const prefixes[] = {
		"PACS_", "WORKLIST_", "QR_", "RELAY_", "GATEWAY_", "CLOUD_API",
		"AZURE_RELAY_", "MWL_", NULL
	};

	for (int i = 0; prefixes[i] != NULL; i++)
		if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

static int
absolute(const char *path, char *out, size_t outsz)
{
	char cwd[PATH_MAX];
	int n;

	if (path[0] == '/')
		n = snprintf(out, outsz, "%s", path);
	else if (getcwd(cwd, sizeof cwd) == NULL)
		return -1;
	else
		n = snprintf(out, outsz, "%s/%s", cwd,
		    strncmp(path, "./", 2) == 0 ? path + 2 : path);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

/* value as the programs see it: a path made absolute, a case-blind
 * choice lower-cased; in buf when changed. */
static const char *
effective(const struct setting *s, const char *value, char *buf,
    size_t bufsz)
{
	size_t i;

	if (value == NULL || *value == '\0')
		return value;
	if ((s->kind == SETTING_PATH || s->kind == SETTING_FILE) &&
	    absolute(value, buf, bufsz) == 0)
		return buf;
	if ((s->flags & SETTING_NOCASE) && strlen(value) < bufsz) {
		for (i = 0; value[i] != '\0'; i++)
			buf[i] = (char)tolower((unsigned char)value[i]);
		buf[i] = '\0';
		return buf;
	}
	return value;
}

static void
print_value(FILE *out, const struct setting *s, const char *value)
{
	char buf[PATH_MAX];

	if ((s->flags & SETTING_SECRET) && value != NULL && *value != '\0')
		value = "(set, not shown)";
	else
		value = effective(s, value, buf, sizeof buf);
	fprintf(out, "%s=%s\n", s->name, value ? value : "");
}

/* One group of the listing: the settings whose value came from `from`,
 * set as `as` (NULL: under their own name). */
static void
print_group(FILE *out, const struct config_file *f, enum config_from from,
    const char *as, const char *heading, int *first)
{
	struct config_value v;
	const struct setting *s;
	int shown = 0;

	for (size_t i = 0; (s = settings_at(i)) != NULL; i++) {
		/* the file itself is named at the end of the listing */
		if ((s->flags & SETTING_IGNORED) ||
		    strcmp(s->name, "GATEWAY_ENV_FILE") == 0)
			continue;
		if (config_resolve(f, s, &v) == -1 || v.from != from)
			continue;
		if ((as == NULL) != (v.as == NULL) ||
		    (as != NULL && strcmp(as, v.as) != 0))
			continue;
		if (!shown++) {
			fprintf(out, "%s%s\n", *first ? "" : "\n", heading);
			*first = 0;
		}
		print_value(out, s, v.value);
	}
}

/* The file's lines no setting came from, by number (never by value:
 * a line may hold a key). */
static void
log_bad_lines(const struct config_file *f)
{
	char msg[128];

	for (size_t i = 0; i < f->nbad && i < 16; i++) {
		snprintf(msg, sizeof msg, "ignoring a configuration line %s",
		    f->bad[i].why);
		log_warn(msg, "file=%s line=%d", f->path, f->bad[i].line);
	}
	if (f->nbad > 16)
		log_warn("more configuration lines ignored", "file=%s count=%zu",
		    f->path, f->nbad - 16);
}

int
configview_print(FILE *out, struct err *e)
{
	struct config_file f;
	const struct setting *s;
	char heading[PATH_MAX + 128];
	int rc, first = 1;

	if ((rc = config_file_read(&f, e)) == -1)
		return -1;
	log_bad_lines(&f);
	print_group(out, &f, CONFIG_FROM_ENV, NULL, "# from the environment",
	    &first);
	snprintf(heading, sizeof heading, "# from %s",
	    rc == 1 ? "(no configuration file)" : f.path);
	print_group(out, &f, CONFIG_FROM_FILE, NULL, heading, &first);
	for (size_t i = 0; (s = settings_at(i)) != NULL; i++) {
		if (s->alias == NULL)
			continue;
		snprintf(heading, sizeof heading, "# from the environment, "
		    "as production's %s", s->alias);
		print_group(out, &f, CONFIG_FROM_ENV, s->alias, heading, &first);
		snprintf(heading, sizeof heading, "# from %s, as production's %s",
		    f.path, s->alias);
		print_group(out, &f, CONFIG_FROM_FILE, s->alias, heading, &first);
	}
	print_group(out, &f, CONFIG_FROM_DEFAULT, NULL, "# defaults", &first);

	/* what the file says that no program reads: commented out, so the
	 * listing stays a gateway.env that gives the same values */
	for (size_t i = 0, n = 0; i < f.n; i++) {
		const struct config_entry *x = &f.v[i];
		const struct setting *near;

		if ((s = settings_find(x->key)) != NULL &&
		    !(s->flags & SETTING_IGNORED))
			continue;
		if (settings_find_alias(x->key) != NULL)
			continue;
		if (!n++)
			fprintf(out, "\n# in %s, not used by the gateway\n",
			    f.path);
		if (s != NULL)
			fprintf(out, "# %s: production's; %s\n", x->key, s->doc);
		else if ((near = settings_nearest(x->key)) != NULL)
			fprintf(out, "# %s (line %d): not a setting; %s?\n",
			    x->key, x->line, near->name);
		else
			fprintf(out, "# %s (line %d): not a setting\n", x->key,
			    x->line);
	}
	fprintf(out, "\n# configuration file: %s\n", rc == 1 ? "(none)" :
	    f.path);
	config_file_free(&f);
	return 0;
}

/* 'value' for sh, single quotes escaped. */
static void
sh_quote(FILE *out, const char *v)
{
	fputc('\'', out);
	for (; *v != '\0'; v++) {
		if (*v == '\'')
			fputs("'\\''", out);
		else
			fputc(*v, out);
	}
	fputc('\'', out);
}

int
configview_export(FILE *out, struct err *e)
{
	struct config_file f;
	struct config_value v;
	const struct setting *s;
	char path[PATH_MAX];
	int rc;

	/* the file once more, for the names no setting has: children may
	 * read them (config_env_load put them in our environment) */
	if ((rc = config_file_read(&f, e)) == -1)
		return -1;
	for (size_t i = 0; (s = settings_at(i)) != NULL; i++) {
		const char *value;

		if (s->flags & SETTING_IGNORED)
			continue;
		if (config_resolve(NULL, s, &v) == -1 || v.value == NULL ||
		    *v.value == '\0')
			continue;
		value = effective(s, v.value, path, sizeof path);
		fprintf(out, "%s=", s->name);
		sh_quote(out, value);
		fprintf(out, "\nexport %s\n", s->name);
	}
	for (size_t i = 0; i < f.n; i++) {
		const char *value = getenv(f.v[i].key);

		if (known(f.v[i].key) || value == NULL)
			continue;
		fprintf(out, "%s=", f.v[i].key);
		sh_quote(out, value);
		fprintf(out, "\nexport %s\n", f.v[i].key);
	}
	config_file_free(&f);
	(void)rc;
	return ferror(out) ? err_set(e, EIO, "cannot write the settings") : 0;
}

/* Every check that needs more than one value. */
static int
check_together(void)
{
	static const char *const ports[] = {
		"PACS_PORT", "WORKLIST_PORT", "QR_PORT", "PACS_TLS_PORT",
		"WORKLIST_TLS_PORT", "QR_TLS_PORT"
	};
	struct config_value v[6];
	int errors = 0, tls = 0;

	for (int i = 0; i < 6; i++) {
		config_resolve(NULL, settings_find(ports[i]), &v[i]);
		if (v[i].value == NULL)
			continue;
		if (i >= 3)
			tls = 1;
		for (int j = 0; j < i; j++)
			if (v[j].value != NULL &&
			    strcmp(v[i].value, v[j].value) == 0) {
				log_error("two ports of the gateway are the same",
				    "setting=%s other=%s port=%s", ports[i],
				    ports[j], v[i].value);
				errors++;
			}
	}
	if (tls) {
		static const char *const pem[] = {
			"GATEWAY_TLS_CERT", "GATEWAY_TLS_KEY"
		};

		for (int i = 0; i < 2; i++) {
			const char *p = getenv(pem[i]);

			if (p == NULL || *p == '\0') {
				log_error("a TLS port is set: this must name a "
				    "PEM file", "setting=%s", pem[i]);
				errors++;
			}
		}
	}
	return errors;
}

/* A FILE setting names a file this user can read. */
static int
check_file(const struct setting *s, const char *value)
{
	char q[PATH_MAX + 16];

	if (s->kind != SETTING_FILE || access(value, R_OK) == 0)
		return 0;
	log_error("cannot read the file a setting names", "setting=%s "
	    "path=%s error=\"%s\"", s->name, log_quote(value, q, sizeof q),
	    strerror(errno));
	return 1;
}

int
configview_check(struct err *e)
{
	struct config_file f;
	struct config_value v;
	const struct setting *s, *near;
	struct err bad;
	struct netallow hosts;
	char q[1100];
	extern char **environ;
	int errors = 0, rc;

	if ((rc = config_file_read(&f, e)) == -1)
		return -1;
	log_bad_lines(&f);
	for (size_t i = 0; i < f.n; i++) {
		const struct config_entry *x = &f.v[i];

		if (x->first_line)
			log_warn("a setting is given twice: the last wins",
			    "setting=%s file=%s line=%d earlier_line=%d",
			    x->key, f.path, x->line, x->first_line);
		if (known(x->key))
			continue;
		if ((near = settings_nearest(x->key)) != NULL)
			log_warn("not a setting of the gateway", "setting=%s "
			    "file=%s line=%d did_you_mean=%s", x->key, f.path,
			    x->line, near->name);
		else
			log_warn("not a setting of the gateway", "setting=%s "
			    "file=%s line=%d", x->key, f.path, x->line);
	}
	for (char **p = environ; *p != NULL; p++) {
		char name[128];
		const char *eq = strchr(*p, '=');

		if (eq == NULL || (size_t)(eq - *p) >= sizeof name)
			continue;
		memcpy(name, *p, (size_t)(eq - *p));
		name[eq - *p] = '\0';
		if (!looks_ours(name) || known(name) ||
		    config_file_get(&f, name) != NULL)
			continue;
		near = settings_nearest(name);
		log_warn("not a setting of the gateway", "setting=%s "
		    "source=environment did_you_mean=%s", name,
		    near ? near->name : "");
	}
	config_file_free(&f);

	for (size_t i = 0; (s = settings_at(i)) != NULL; i++) {
		if (config_resolve(NULL, s, &v) == -1 || v.value == NULL ||
		    *v.value == '\0' || v.from == CONFIG_FROM_DEFAULT)
			continue;
		if (settings_check_value(s, v.value, &bad) == -1) {
			log_error("a setting has a value it cannot take",
			    "setting=%s error=%s", s->name,
			    log_quote(bad.msg, q, sizeof q));
			errors++;
			continue;
		}
		if (s->kind == SETTING_HOSTS && netallow_parse(&hosts,
		    v.value) == -1) {
			log_error("a setting has a value it cannot take",
			    "setting=%s error=\"%s: not a list of addresses and "
			    "CIDR networks\"", s->name, s->name);
			errors++;
		}
		errors += check_file(s, v.value);
	}
	return errors + check_together();
}
