#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int
config_load(struct config *c, struct err *e)
{
	const char *d = getenv("GATEWAY_DATA_DIR");

	memset(c, 0, sizeof *c);
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
	    "quarantine", e))
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

int
config_env_long(const char *name, long lo, long hi, long def, long *out,
    struct err *e)
{
	const char *v = getenv(name);
	char *end;
	long n;

	*out = def;
	if (v == NULL || *v == '\0')
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi)
		return err_set(e, EINVAL, "%s: \"%s\" is not a whole number "
		    "from %ld to %ld", name, v, lo, hi);
	*out = n;
	return 0;
}
