/* qr_dest: the QR_DESTINATIONS file, "AE host port [tls]" per line. */
#include "qr/qr.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static int
parse_line(struct qr_destination *d, char *line, struct err *e,
    const char *path, int lineno)
{
	char *tok[5], *save = NULL, *t;
	int n = 0;

	for (t = strtok_r(line, " \t\r", &save); t != NULL && n < 5;
	    t = strtok_r(NULL, " \t\r", &save))
		tok[n++] = t;
	if (n != 3 && n != 4)
		return err_set(e, EINVAL, "%s:%d: want \"AE host port "
		    "[tls]\"", path, lineno);
	if (strlen(tok[0]) > 16)
		return err_set(e, EINVAL, "%s:%d: AE title longer than 16 "
		    "characters", path, lineno);
	if (strlen(tok[1]) >= sizeof d->host)
		return err_set(e, EINVAL, "%s:%d: host name too long", path,
		    lineno);
	if (config_parse_int(tok[2], 1, 65535, &d->port) == -1)
		return err_set(e, EINVAL, "%s:%d: \"%s\" is not a TCP port",
		    path, lineno, tok[2]);
	if (n == 4 && strcmp(tok[3], "tls") != 0)
		return err_set(e, EINVAL, "%s:%d: unknown word \"%s\" (only "
		    "\"tls\")", path, lineno, tok[3]);
	snprintf(d->aet, sizeof d->aet, "%s", tok[0]);
	snprintf(d->host, sizeof d->host, "%s", tok[1]);
	d->tls = n == 4;
	return 0;
}

int
qr_destinations_load(struct qr_destinations *ds, const char *path,
    struct err *e)
{
	char line[1024], *p;
	FILE *f;
	int lineno = 0, rc = 0;

	ds->n = 0;
	if (path == NULL || *path == '\0')
		return 0;
	if ((f = fopen(path, "r")) == NULL)
		return err_sys(e, "QR_DESTINATIONS %s", path);
	while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			rc = err_set(e, EINVAL, "%s:%d: line too long", path,
			    lineno);
			break;
		}
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		line[strcspn(line, "\n")] = '\0';
		for (p = line; isspace((unsigned char)*p); p++)
			;
		if (*p == '\0')
			continue;
		if (ds->n >= QR_MAX_DESTINATIONS)
			rc = err_set(e, EINVAL, "%s: more than %d destinations",
			    path, QR_MAX_DESTINATIONS);
		else if ((rc = parse_line(&ds->d[ds->n], p, e, path,
		    lineno)) == 0) {
			if (qr_destination_find(ds, ds->d[ds->n].aet) != NULL)
				rc = err_set(e, EINVAL, "%s:%d: %s is listed "
				    "twice", path, lineno, ds->d[ds->n].aet);
			else
				ds->n++;
		}
	}
	if (rc == 0 && ferror(f))
		rc = err_sys(e, "read %s", path);
	fclose(f);
	return rc;
}

const struct qr_destination *
qr_destination_find(const struct qr_destinations *ds, const char *aet)
{
	int i;

	for (i = 0; i < ds->n; i++)
		if (strcmp(ds->d[i].aet, aet) == 0)
			return &ds->d[i];
	return NULL;
}
