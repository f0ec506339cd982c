#include "base/base.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>


#define ENV_FILE_DEFAULT	"/etc/screening-gateway/gateway.env"
#define ENV_FILE_LOCAL		"./gateway.env"
#define ENV_FILE_MAX		(1024 * 1024)

static int
set_path(char *out, const char *env, const char *data_dir,
    const char *leaf, struct err *e)
{
	const char *v = getenv(env);
	int n;

	if (v != NULL && *v != '\0')
		n = snprintf(out, PATH_MAX, "%s", v);
	else
		n = snprintf(out, PATH_MAX, "%s/%s", data_dir, leaf);
	if (n < 0 || n >= PATH_MAX)
		return err_set(e, ENAMETOOLONG, "%s: path too long", env);
	return 0;
}

static int
set_aet(char *out, const char *env, const char *dflt, struct err *e)
{
	const char *v = getenv(env);

	if (v == NULL || *v == '\0')
		v = dflt;
	if (strlen(v) > 16)
		return err_set(e, EINVAL,
		    "%s: AE title \"%s\" is longer than 16 characters", env, v);
	snprintf(out, 17, "%s", v);
	return 0;
}

static int
set_port(int *out, const char *env, int dflt, struct err *e)
{
	const char *v = getenv(env);
	char *end;
	long p;

	if (v == NULL || *v == '\0') {
		*out = dflt;
		return 0;
	}
	errno = 0;
	p = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || p < 1 || p > 65535)
		return err_set(e, EINVAL, "%s: \"%s\" is not a TCP port", env, v);
	*out = (int)p;
	return 0;
}

static int
is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int
config_env_file(char *out, size_t outsz)
{
	const char *named = getenv("GATEWAY_ENV_FILE");
	const char *path;

	if (named != NULL && *named != '\0')
		path = named;
	else if (is_file(ENV_FILE_DEFAULT))
		path = ENV_FILE_DEFAULT;
	else if (is_file(ENV_FILE_LOCAL))
		path = ENV_FILE_LOCAL;
	else {
		snprintf(out, outsz, "%s", "");
		return 1;
	}
	snprintf(out, outsz, "%s", path);
	return 0;
}

static int
valid_env_name(const char *s, size_t n)
{
	if (n == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' &&
		    s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

/* One line (without its newline) of gateway.env: 0, or the callback's. */
static int
env_line(const char *p, size_t n, int lineno,
    int (*on_value)(const char *, const char *, int, void *),
    void (*on_bad)(int, const char *, void *), void *arg)
{
	char key[256], *value;
	const char *eq;
	size_t klen, vlen;
	int rc;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	while (n > 0 && (*p == ' ' || *p == '\t'))
		p++, n--;
	if (n == 0 || *p == '#')
		return 0;
	if (n >= 7 && memcmp(p, "export ", 7) == 0)
		p += 7, n -= 7;
	if (memchr(p, '\0', n) != NULL) {
		if (on_bad)
			on_bad(lineno, "with a NUL byte", arg);
		return 0;
	}
	if ((eq = memchr(p, '=', n)) == NULL) {
		if (on_bad)
			on_bad(lineno, "without =", arg);
		return 0;
	}
	klen = (size_t)(eq - p);
	if (klen >= sizeof key || !valid_env_name(p, klen)) {
		if (on_bad)
			on_bad(lineno, "with a bad name", arg);
		return 0;
	}
	memcpy(key, p, klen);
	key[klen] = '\0';
	eq++;
	vlen = n - klen - 1;
	if (vlen >= 2 && (eq[0] == '"' || eq[0] == '\'') &&
	    eq[vlen - 1] == eq[0])
		eq++, vlen -= 2;
	if ((value = malloc(vlen + 1)) == NULL)
		return -1;
	memcpy(value, eq, vlen);
	value[vlen] = '\0';
	rc = on_value(key, value, lineno, arg);
	free(value);
	return rc;
}

int
config_env_parse(const char *text, size_t len,
    int (*on_value)(const char *, const char *, int, void *),
    void (*on_bad)(int, const char *, void *), void *arg)
{
	const char *p = text, *end = text + len, *eol;
	int lineno = 0, rc;

	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		rc = env_line(p, (size_t)(eol - p), ++lineno, on_value, on_bad,
		    arg);
		if (rc != 0)
			return rc;
		p = eol + 1;
	}
	return 0;
}

/* config_file_read's callback: one value, the last of its key wins. */
static int
file_value(const char *key, const char *value, int line, void *arg)
{
	struct config_file *f = arg;
	struct config_entry *x;

	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->v[i].key, key) == 0) {
			char *v = strdup(value);

			if (v == NULL)
				return -1;
			free(f->v[i].value);
			f->v[i].value = v;
			f->v[i].first_line = f->v[i].first_line ?
			    f->v[i].first_line : f->v[i].line;
			f->v[i].line = line;
			return 0;
		}
	if (f->n % 32 == 0) {
		x = realloc(f->v, (f->n + 32) * sizeof *x);
		if (x == NULL)
			return -1;
		f->v = x;
	}
	x = &f->v[f->n];
	memset(x, 0, sizeof *x);
	if ((x->key = strdup(key)) == NULL ||
	    (x->value = strdup(value)) == NULL) {
		free(x->key);
		return -1;
	}
	x->line = line;
	f->n++;
	return 0;
}

static void
file_bad(int line, const char *why, void *arg)
{
	struct config_file *f = arg;

	if (f->nbad < sizeof f->bad / sizeof f->bad[0]) {
		f->bad[f->nbad].line = line;
		f->bad[f->nbad].why = why;
	}
	f->nbad++;
}

int
config_file_read(struct config_file *f, struct err *e)
{
	char *text;
	size_t len;
	int rc;

	memset(f, 0, sizeof *f);
	if (config_env_file(f->path, sizeof f->path) == 1)
		return 1;
	if (fs_read_small(f->path, ENV_FILE_MAX, &text, &len, e) == -1)
		return err_wrap(e, "cannot read configuration file");
	rc = config_env_parse(text, len, file_value, file_bad, f);
	free(text);
	if (rc != 0) {
		config_file_free(f);
		return err_sys(e, "%s: out of memory", f->path);
	}
	return 0;
}

void
config_file_free(struct config_file *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].key);
		free(f->v[i].value);
	}
	free(f->v);
	f->v = NULL;
	f->n = 0;
}

const struct config_entry *
config_file_get(const struct config_file *f, const char *key)
{
	if (f == NULL)
		return NULL;
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->v[i].key, key) == 0)
			return &f->v[i];
	return NULL;
}

/* A value that counts: set and not empty. */
static const char *
env_value(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

int
config_resolve(const struct config_file *f, const struct setting *s,
    struct config_value *out)
{
	const struct config_entry *x;
	const char *names[2] = { s->name, s->alias };

	memset(out, 0, sizeof *out);
	for (int i = 0; i < 2 && names[i] != NULL; i++) {
		out->as = i ? s->alias : NULL;
		if ((out->value = env_value(names[i])) != NULL) {
			out->from = CONFIG_FROM_ENV;
			return 0;
		}
		if ((x = config_file_get(f, names[i])) != NULL &&
		    *x->value != '\0') {
			out->value = x->value;
			out->from = CONFIG_FROM_FILE;
			out->line = x->line;
			return 0;
		}
	}
	out->as = NULL;
	out->from = CONFIG_FROM_DEFAULT;
	if (s->dflt != NULL && strcmp(s->name, "GATEWAY_DATA_DIR") != 0 &&
	    strchr(s->dflt, '$') != NULL) {
		struct config_value d;

		if (config_resolve(f, settings_find("GATEWAY_DATA_DIR"), &d) ==
		    -1 || settings_default(s, d.value, out->dflt,
		    sizeof out->dflt) == -1)
			return -1;
	} else if (settings_default(s, "", out->dflt, sizeof out->dflt) == -1)
		return -1;
	out->value = s->dflt != NULL ? out->dflt : NULL;
	return 0;
}

/* The environment wins over the file; our name over production's. */
int
config_env_load(struct err *e)
{
	struct config_file f;
	struct config_value v;
	const struct setting *s;
	char low[64];
	int rc;

	if ((rc = config_file_read(&f, e)) == -1)
		return -1;
	/* every setting from the file, known or not: the environment wins */
	for (size_t i = 0; i < f.n; i++)
		if (getenv(f.v[i].key) == NULL &&
		    setenv(f.v[i].key, f.v[i].value, 0) == -1)
			goto fail;
	/* production's names fill ours where ours are unset */
	for (size_t i = 0; (s = settings_at(i)) != NULL; i++) {
		if (s->alias == NULL || env_value(s->name) != NULL)
			continue;
		if (config_resolve(NULL, s, &v) == 0 && v.as != NULL &&
		    setenv(s->name, v.value, 1) == -1)
			goto fail;
	}
	/* choices in any case (production writes LOG_LEVEL=INFO) */
	for (size_t i = 0; (s = settings_at(i)) != NULL; i++) {
		const char *cur = env_value(s->name);
		size_t j;

		if (!(s->flags & SETTING_NOCASE) || cur == NULL ||
		    strlen(cur) >= sizeof low)
			continue;
		for (j = 0; cur[j] != '\0'; j++)
			low[j] = (char)tolower((unsigned char)cur[j]);
		low[j] = '\0';
		if (strcmp(low, cur) != 0 && setenv(s->name, low, 1) == -1)
			goto fail;
	}
	config_file_free(&f);
	log_level_from_env();	/* LOG_LEVEL may come from the file */
	return 0;
fail:
	config_file_free(&f);
	return err_sys(e, "setenv");
}

int
config_load(struct config *c, struct err *e)
{
	const char *d;

	memset(c, 0, sizeof *c);
	if (config_env_load(e) == -1)
		return -1;
	d = getenv("GATEWAY_DATA_DIR");
	if (d == NULL || *d == '\0')
		d = "./var";
	if (snprintf(c->data_dir, sizeof c->data_dir, "%s", d) >= PATH_MAX)
		return err_set(e, ENAMETOOLONG, "GATEWAY_DATA_DIR: path too long");
	if (set_path(c->storage_path, "PACS_STORAGE_PATH", d, "store", e) ||
	    set_path(c->pacs_db_path, "PACS_DB_PATH", d, "pacs.db", e) ||
	    set_path(c->worklist_db_path, "WORKLIST_DB_PATH", d, "worklist.db", e) ||
	    set_path(c->spool_dir, "GATEWAY_SPOOL_DIR", d, "spool", e) ||
	    set_path(c->incoming_dir, "GATEWAY_INCOMING_DIR", d, "incoming", e) ||
	    set_path(c->quarantine_dir, "GATEWAY_QUARANTINE_DIR", d,
	    "quarantine", e) ||
	    set_path(c->backup_dir, "GATEWAY_BACKUP_DIR", d, "backup", e) ||
	    set_path(c->thumbs_dir, "GATEWAY_THUMBS_DIR", d, "thumbs", e))
		return -1;
	if (set_aet(c->pacs_aet, "PACS_AET", "SCREENING_PACS", e) ||
	    set_aet(c->worklist_aet, "WORKLIST_AET", "SCREENING_MWL", e) ||
	    set_port(&c->pacs_port, "PACS_PORT", 4244, e) ||
	    set_port(&c->worklist_port, "WORKLIST_PORT", 4243, e) ||
	    set_aet(c->qr_aet, "QR_AET", "SCREENING_QR", e) ||
	    set_port(&c->qr_port, "QR_PORT", 4246, e))
		return -1;
	return 0;
}

static int
is_set(const char *name)
{
	return config_env(name) != NULL;
}

const char *
config_env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

int
config_cloud_images(void)
{
	return is_set("CLOUD_API_ENDPOINT");
}

int
config_cloud_events(void)
{
	return is_set("AZURE_RELAY_NAMESPACE") &&
	    is_set("AZURE_RELAY_EVENTS_HYBRID_CONNECTION");
}

int
config_cloud_actions(void)
{
	return is_set("AZURE_RELAY_NAMESPACE") &&
	    is_set("AZURE_RELAY_HYBRID_CONNECTION");
}

int
config_spool_path(const struct config *c, const char *stage, char *out,
    size_t outsz, struct err *e)
{
	int n = snprintf(out, outsz, "%s/%s", c->spool_dir, stage);

	if (n < 0 || (size_t)n >= outsz)
		return err_set(e, ENAMETOOLONG, "spool path too long");
	return 0;
}

int
config_parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

const char *
config_value(const char *name)
{
	const struct setting *s;
	const char *v = getenv(name);

	if (v != NULL && *v != '\0')
		return v;
	return (s = settings_find(name)) != NULL ? s->dflt : NULL;
}

/* The row of a setting the code reads; its absence is the code's bug. */
static const struct setting *
row(const char *name, struct err *e)
{
	const struct setting *s = settings_find(name);

	if (s == NULL)
		err_set(e, EINVAL, "%s: not in the settings table "
		    "(lib/base/settings.c)", name);
	return s;
}

int
config_long(const char *name, long *out, struct err *e)
{
	const struct setting *s;
	const char *v;
	long long n;

	if ((s = row(name, e)) == NULL)
		return -1;
	v = config_value(name);
	if (v == NULL || *v == '\0')
		return err_set(e, EINVAL, "%s: no value and no default", name);
	if (settings_check_value(s, v, e) == -1)
		return -1;
	switch (s->kind) {
	case SETTING_DURATION:
		if (settings_parse_duration(v, &n) == -1)
			return err_set(e, EINVAL, "%s: not a time", name);
		break;
	case SETTING_SIZE:
		if (settings_parse_size(v, &n) == -1)
			return err_set(e, EINVAL, "%s: not a size", name);
		break;
	case SETTING_INT:
	case SETTING_PORT:
	case SETTING_BOOL:
		n = strtoll(v, NULL, 10);
		break;
	default:
		return err_set(e, EINVAL, "%s: not a number setting", name);
	}
	*out = (long)n;
	return 0;
}

int
config_choice(const char *name, int *index, struct err *e)
{
	const struct setting *s;
	const char *v, *p;
	size_t n, len;
	int i = 0;

	if ((s = row(name, e)) == NULL)
		return -1;
	if (s->kind != SETTING_CHOICE)
		return err_set(e, EINVAL, "%s: not a choice setting", name);
	if ((v = config_value(name)) == NULL)
		return err_set(e, EINVAL, "%s: no value", name);
	if (settings_check_value(s, v, e) == -1)
		return -1;
	n = strlen(v);
	for (p = s->choices;; p += len + 1, i++) {
		len = strcspn(p, "|");
		if (len == n && strncasecmp(p, v, n) == 0)
			break;
		if (p[len] == '\0')
			return err_set(e, EINVAL, "%s: \"%s\" is not a "
			    "choice", name, v);
	}
	if (index != NULL)
		*index = i;
	return 0;
}
