/*
 * alertlist: the alerts open now, from the run directory (see
 * ops/ops.h).
 */
#include "ops/ops.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ALERT_PREFIX	"alert."

/* The alert's summary: the first line of the file, printable only. */
static void
read_summary(const char *path, struct open_alert *a)
{
	struct err fe = { 0 };
	char *text = NULL;
	size_t n = 0;

	a->summary[0] = '\0';
	if (fs_read_small(path, 4096, &text, NULL, &fe) == -1)
		return;
	for (const char *p = text; *p != '\0' && *p != '\n' &&
	    n + 1 < sizeof a->summary; p++)
		a->summary[n++] = (unsigned char)*p < 0x20 ? ' ' : *p;
	a->summary[n] = '\0';
	free(text);
}

static int
cmp_alerts(const void *x, const void *y)
{
	return strcmp(((const struct open_alert *)x)->name,
	    ((const struct open_alert *)y)->name);
}

/* Room for one more in *v (capacity *cap, n used); -1 (v freed) when
 * memory runs out. */
static int
grow(struct open_alert **v, size_t *cap, size_t n)
{
	struct open_alert *grown;

	if (n < *cap)
		return 0;
	*cap = *cap ? *cap * 2 : 8;
	if ((grown = realloc(*v, *cap * sizeof **v)) == NULL) {
		free(*v);
		*v = NULL;
		return -1;
	}
	*v = grown;
	return 0;
}

/* The alerts found in run/ into *out (malloc'd), their number in *n. */
static int
collect(const char *data_dir, const char *run, struct open_alert **out,
    size_t *n, struct err *e)
{
	struct open_alert *v = NULL;
	struct floor_state fs;
	struct err fe = { 0 };
	size_t cap = 0;
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(run);

	*out = NULL;
	*n = 0;
	if (d == NULL)
		return errno == ENOENT ? 0 : err_sys(e, "opendir %s", run);
	while ((de = readdir(d)) != NULL) {
		const char *name = NULL;

		if (strncmp(de->d_name, ALERT_PREFIX,
		    strlen(ALERT_PREFIX)) == 0)
			name = de->d_name + strlen(ALERT_PREFIX);
		if (name == NULL || *name == '\0' || strlen(name) >=
		    sizeof v->name || snprintf(path, sizeof path, "%s/%s", run,
		    de->d_name) >= (int)sizeof path ||
		    stat(path, &st) == -1 || !S_ISREG(st.st_mode))
			continue;
		if (grow(&v, &cap, *n) == -1) {
			closedir(d);
			return err_set(e, ENOMEM, "out of memory");
		}
		snprintf(v[*n].name, sizeof v[*n].name, "%s", name);
		v[*n].since = st.st_mtime;
		read_summary(path, &v[*n]);
		(*n)++;
	}
	closedir(d);
	/* storage refusing: storescp-front's run/storage.state */
	if (floor_state_read(data_dir, &fs, &fe) == 0 && fs.refusing) {
		if (grow(&v, &cap, *n) == -1)
			return err_set(e, ENOMEM, "out of memory");
		snprintf(v[*n].name, sizeof v[*n].name, "disk_floor");
		v[*n].since = fs.since;
		snprintf(v[*n].summary, sizeof v[*n].summary, "free space "
		    "below PACS_DISK_MIN_FREE: storage refuses new "
		    "associations");
		(*n)++;
	}
	if (*n > 1)
		qsort(v, *n, sizeof *v, cmp_alerts);
	*out = v;
	return 0;
}

int
alertlist_each(const struct config *c, open_alert_fn *fn, void *arg,
    struct err *e)
{
	struct open_alert *v;
	char run[PATH_MAX];
	size_t n, i;

	if (snprintf(run, sizeof run, "%s/run", c->data_dir) >= (int)sizeof run)
		return err_set(e, ENAMETOOLONG, "path too long: %s",
		    c->data_dir);
	if (collect(c->data_dir, run, &v, &n, e) == -1)
		return -1;
	for (i = 0; i < n && fn(&v[i], arg) == 0; i++)
		;
	free(v);
	return (int)n;
}
