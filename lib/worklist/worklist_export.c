/*
 * worklist_export: the offered items as dcmtk wlmscpfs worklist files (see
 * worklist_export_wl() in worklist/worklist.h), in the site's local time.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "dicom/dicom.h"
#include "worklist/worklist_int.h"

#define SOP_CLASS_MWL	"1.2.840.10008.5.1.4.31"
#define NAME_MAX_WL	(WL_FIELD * 3 + 8)

/* A file name from an accession number: [A-Za-z0-9._-], others as _XX. */
static void
wl_file_name(const char *acc, char *out, size_t outsz)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)acc;
	    *p != '\0' && o + 4 < outsz; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.')
			out[o++] = (char)*p;
		else
			o += (size_t)snprintf(out + o, outsz - o, "_%02X", *p);
	}
	out[o] = '\0';
}

/* The .wl dataset of one item: every attribute the worklist knows. */
static int
build_wl(const struct worklist_item *it, struct dcm_builder *b,
    struct err *e)
{
	static const uint32_t top[] = {
		DCM_TAG(0x0008, 0x0050), DCM_TAG(0x0008, 0x1030),
		DCM_TAG(0x0010, 0x0010), DCM_TAG(0x0010, 0x0020),
		DCM_TAG(0x0010, 0x0030), DCM_TAG(0x0010, 0x0040),
		DCM_TAG(0x0020, 0x000d), DCM_TAG(0x0032, 0x1060),
		DCM_TAG(0x0040, 0x1001),
	};
	static const uint32_t sps[] = {
		DCM_TAG(0x0008, 0x0060), DCM_TAG(0x0040, 0x0001),
		DCM_TAG(0x0040, 0x0002), DCM_TAG(0x0040, 0x0003),
		DCM_TAG(0x0040, 0x0007), DCM_TAG(0x0040, 0x0009),
		DCM_TAG(0x0040, 0x0010), DCM_TAG(0x0040, 0x0020),
	};

	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
		if (dcm_build_string(b, top[i], NULL,
		    wl_item_value(it, top[i], 0), e) == -1)
			return -1;
	if (dcm_build_sequence_begin(b, DCM_TAG(0x0040, 0x0100), e) == -1 ||
	    dcm_build_item_begin(b, e) == -1)
		return -1;
	for (size_t i = 0; i < sizeof sps / sizeof sps[0]; i++)
		if (dcm_build_string(b, sps[i], NULL,
		    wl_item_value(it, sps[i], 1), e) == -1)
			return -1;
	if (dcm_build_item_end(b, e) == -1 ||
	    dcm_build_sequence_end(b, e) == -1)
		return -1;
	return 0;
}

static int
write_wl(const char *dir, const struct worklist_item *it, char *name,
    size_t namesz, struct err *e)
{
	struct dcm_builder *b;
	char path[PATH_MAX], base[WL_FIELD * 3 + 1], sop[WL_FIELD + 4];
	uint8_t *buf = NULL;
	size_t len;
	int rc;

	wl_file_name(it->accession_number, base, sizeof base);
	if ((size_t)snprintf(name, namesz, "%s.wl", base) >= namesz ||
	    (size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >=
	    sizeof path)
		return err_set(e, ENAMETOOLONG, "%s: name too long", dir);
	snprintf(sop, sizeof sop, "%s.1", it->study_instance_uid);
	if ((b = dcm_build_new()) == NULL)
		return err_sys(e, "malloc");
	rc = build_wl(it, b, e);
	if (rc == 0)
		rc = dcm_build_encode_file(b, SOP_CLASS_MWL, sop,
		    DCM_TS_EXPLICIT_LE, "ISO_IR 100", &buf, &len, e);
	dcm_build_free(b);
	if (rc == 0)
		rc = fs_write_atomic(path, buf, len, e);
	free(buf);
	return rc;
}

/* Remove the .wl files of items no longer offered. */
static int
prune_wl(const char *dir, char (*keep)[NAME_MAX_WL], int nkeep,
    struct err *e)
{
	DIR *d;
	struct dirent *de;
	char path[PATH_MAX];

	if ((d = opendir(dir)) == NULL)
		return err_sys(e, "opendir %s", dir);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		int kept = 0;

		if (l < 4 || strcmp(de->d_name + l - 3, ".wl") != 0)
			continue;
		for (int i = 0; i < nkeep && !kept; i++)
			kept = strcmp(keep[i], de->d_name) == 0;
		if (kept)
			continue;
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir,
		    de->d_name) < sizeof path && unlink(path) == -1 &&
		    errno != ENOENT) {
			closedir(d);
			return err_sys(e, "unlink %s", path);
		}
	}
	closedir(d);
	return 0;
}

static int
touch_lockfile(const char *dir, struct err *e)
{
	char path[PATH_MAX];
	FILE *f;

	if ((size_t)snprintf(path, sizeof path, "%s/lockfile", dir) >=
	    sizeof path)
		return err_set(e, ENAMETOOLONG, "%s: name too long", dir);
	if ((f = fopen(path, "a")) == NULL)
		return err_sys(e, "create %s", path);
	if (fclose(f) != 0)
		return err_sys(e, "close %s", path);
	return 0;
}

struct export {
	const char *dir;
	const char *station_aet;	/* for items with no station */
	char (*names)[NAME_MAX_WL];	/* the files written */
	int n, cap;
};

static int
export_one(void *arg, struct worklist_item *it, struct err *e)
{
	struct export *x = arg;
	char (*tmp)[NAME_MAX_WL];

	if (x->n == x->cap) {
		x->cap = x->cap ? x->cap * 2 : 64;
		if ((tmp = realloc(x->names, (size_t)x->cap *
		    sizeof *x->names)) == NULL)
			return err_sys(e, "malloc");
		x->names = tmp;
	}
	/* wlmscpfs serves no item without a station. */
	if (it->scheduled_station_aet[0] == '\0')
		snprintf(it->scheduled_station_aet, WL_FIELD, "%s",
		    x->station_aet);
	if (write_wl(x->dir, it, x->names[x->n], sizeof x->names[x->n],
	    e) == -1)
		return -1;
	x->n++;
	return 0;
}

int
worklist_export_wl(struct worklist *w, const char *dir, struct err *e)
{
	struct export x = { dir, w->site.station_aet, NULL, 0, 0 };
	int rc;

	if (fs_mkdirs(dir, e) == -1 || touch_lockfile(dir, e) == -1)
		return -1;
	rc = worklist_each(w, NULL, 0, export_one, &x, e);
	if (rc != -1)
		rc = prune_wl(dir, x.names, x.n, e);
	if (rc != -1)
		rc = fs_sync_dir(dir, e);
	free(x.names);
	return rc == -1 ? -1 : x.n;
}
