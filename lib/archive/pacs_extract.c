/*
 * pacs_extract: the attributes pacs.db keeps, read from a parsed object.
 * Kept apart from the SQLite code in pacs.c so that storescp-hook, which
 * runs once per image, links without SQLite; pacs_timestamp() with it.
 */
#include "archive/archive.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Which attribute fills which field.  all: every value, joined by '\'. */
struct attr_map {
	uint32_t tag;
	size_t offset, size;
	int all;
};

#define F(g, e, field, all) \
	{ DCM_TAG(g, e), offsetof(struct pacs_attrs, field), \
	  sizeof(((struct pacs_attrs *)0)->field), all }

static const struct attr_map attr_map[] = {
	F(0x0008, 0x0018, sop_instance_uid, 0),
	F(0x0008, 0x0016, sop_class_uid, 0),
	F(0x0020, 0x000D, study_instance_uid, 0),
	F(0x0020, 0x000E, series_instance_uid, 0),
	F(0x0010, 0x0020, patient_id, 0),
	F(0x0010, 0x0010, patient_name, 1),
	F(0x0010, 0x0030, birth_date, 0),
	F(0x0010, 0x0040, sex, 0),
	F(0x0008, 0x0050, accession_number, 0),
	F(0x0020, 0x0010, study_id, 0),
	F(0x0008, 0x0020, study_date, 0),
	F(0x0008, 0x0030, study_time, 0),
	F(0x0008, 0x1030, study_description, 0),
	F(0x0008, 0x0060, modality, 0),
	F(0x0020, 0x0011, series_number, 0),
	F(0x0008, 0x103E, series_description, 0),
	F(0x0018, 0x0015, body_part_examined, 0),
	F(0x0020, 0x0013, instance_number, 0),
	F(0x0008, 0x0008, image_type, 1),
	F(0x0008, 0x0068, presentation_intent, 0),
	F(0x0018, 0x5101, view_position, 0),
	F(0x0020, 0x0062, laterality, 0),	/* Image Laterality; else see
						 * laterality_and_view() */
	F(0x0040, 0x0316, organ_dose, 0),
	F(0x0040, 0x8302, entrance_dose_in_mgy, 0),
	F(0x0018, 0x0060, kvp, 0),
	F(0x0018, 0x1153, exposure_in_uas, 0),
	F(0x0018, 0x1191, anode_target_material, 0),
	F(0x0018, 0x7050, filter_material, 1),
	F(0x0018, 0x7052, filter_thickness, 0),	/* minimum */
	F(0x0018, 0x7054, filter_thickness, 0),	/* else maximum */
	F(0x0008, 0x0070, manufacturer, 0),
	F(0x0028, 0x0010, rows, 0),
	F(0x0028, 0x0011, columns, 0),
	F(0x0028, 0x0008, number_of_frames, 0),
	F(0x0028, 0x0100, bits_allocated, 0),
	F(0x0028, 0x0004, photometric_interpretation, 0),
};

/* All values of tag joined by '\' (the DICOM separator). */
static int
get_all(const struct dcm *d, uint32_t tag, char *out, size_t outsz,
    struct err *e)
{
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; ; i++) {
		if (i > 0) {
			if (used + 1 >= outsz)
				break;
			out[used++] = '\\';
			out[used] = '\0';
		}
		int n = dcm_get_string(d, NULL, tag, i, out + used,
		    outsz - used, e);
		if (n < 0) {
			if (i > 0)
				out[--used] = '\0';
			break;
		}
		used += (size_t)n;
		if (used >= outsz - 1)
			break;
	}
	return 0;
}

/* The first item of sequence tag in item (NULL: root), or NULL. */
static const struct dcm_item *
first_item(const struct dcm *d, const struct dcm_item *item, uint32_t tag)
{
	const struct dcm_elem *sq = dcm_find(d, item, tag);

	return sq != NULL && dcm_item_count(d, sq) > 0 ?
	    dcm_item_at(d, sq, 0) : NULL;
}

#define TAG_SHARED_GROUPS	DCM_TAG(0x5200, 0x9229)
#define TAG_PER_FRAME_GROUPS	DCM_TAG(0x5200, 0x9230)
#define TAG_FRAME_ANATOMY	DCM_TAG(0x0020, 0x9071)
#define TAG_FRAME_LATERALITY	DCM_TAG(0x0020, 0x9072)
#define TAG_VIEW_CODE		DCM_TAG(0x0054, 0x0220)
#define TAG_CODE_VALUE		DCM_TAG(0x0008, 0x0100)

/*
 * View for Mammography (PS3.16 CID 4014): each code in SNOMED CT and in
 * the older SNOMED RT (SRT, SNM3), with its ACR MQCM 1999 equivalent,
 * which is what View Position holds.  Y-X1770 and Y-X1771 are the codes
 * an earlier version of the context group gave XCCL and XCCM (deprecated,
 * still sent).  A tissue specimen (127457009, G-8310) has no view and
 * none is indexed.
 */
static const struct {
	const char *code, *view;
} view_codes[] = {
	{ "399162004", "CC" }, { "R-10242", "CC" },
	{ "399368009", "MLO" }, { "R-10226", "MLO" },
	{ "399260004", "ML" }, { "R-10224", "ML" },
	{ "399352003", "LM" }, { "R-10228", "LM" },
	{ "399099002", "LMO" }, { "R-10230", "LMO" },
	{ "399196006", "FB" }, { "R-10244", "FB" },
	{ "399188001", "SIO" }, { "R-102D0", "SIO" },
	{ "441555000", "ISO" }, { "R-40AAA", "ISO" },
	{ "399192008", "XCCL" }, { "R-1024A", "XCCL" }, { "Y-X1770", "XCCL" },
	{ "399101009", "XCCM" }, { "R-1024B", "XCCM" }, { "Y-X1771", "XCCM" },
};

/* The View Position term for the first item of a View Code Sequence in
 * item (NULL: root): 0, or -1 when absent or not a CID 4014 view. */
static int
view_of_code(const struct dcm *d, const struct dcm_item *item, char *out,
    size_t outsz)
{
	const struct dcm_item *it = first_item(d, item, TAG_VIEW_CODE);
	char code[64];

	if (it == NULL || dcm_get_string(d, it, TAG_CODE_VALUE, 0, code,
	    sizeof code, NULL) < 1)
		return -1;
	for (size_t i = 0; i < sizeof view_codes / sizeof view_codes[0]; i++)
		if (strcmp(code, view_codes[i].code) == 0) {
			snprintf(out, outsz, "%s", view_codes[i].view);
			return 0;
		}
	return -1;
}

/* Frame Laterality in a functional group item's Frame Anatomy. */
static int
frame_laterality(const struct dcm *d, const struct dcm_item *group,
    char *out, size_t outsz)
{
	const struct dcm_item *it = first_item(d, group, TAG_FRAME_ANATOMY);

	return it != NULL && dcm_get_string(d, it, TAG_FRAME_LATERALITY, 0,
	    out, outsz, NULL) > 0 ? 0 : -1;
}

/*
 * A value of an enhanced (multi-frame functional groups) object: from
 * the shared group, else from the per-frame groups when every frame says
 * the same (frames that differ give no value for the image as a whole).
 */
static int
from_groups(const struct dcm *d, int (*get)(const struct dcm *,
    const struct dcm_item *, char *, size_t), char *out, size_t outsz)
{
	const struct dcm_elem *pf = dcm_find(d, NULL, TAG_PER_FRAME_GROUPS);
	const struct dcm_item *shared = first_item(d, NULL,
	    TAG_SHARED_GROUPS);
	char v[PACS_LO];
	size_t n = pf != NULL ? dcm_item_count(d, pf) : 0;

	if (shared != NULL && get(d, shared, out, outsz) == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (get(d, dcm_item_at(d, pf, i), v, sizeof v) == -1 ||
		    (i > 0 && strcmp(v, out) != 0)) {
			out[0] = '\0';
			return -1;
		}
		if (i == 0)
			snprintf(out, outsz, "%s", v);
	}
	return n > 0 ? 0 : -1;
}

/*
 * Laterality and view.  Laterality: Image Laterality (0020,0062) at the
 * top (Digital Mammography); else Frame Laterality (0020,9072) of the
 * Frame Anatomy functional group (Breast Tomosynthesis, Breast
 * Projection), shared or the same in every frame; else the series'
 * Laterality (0020,0060).  View: View Position (0018,5101) at the top;
 * else the View Code Sequence (0054,0220) at the top (the Breast View
 * module of the enhanced classes), else in the shared or every
 * per-frame functional group item, mapped to its View Position term.
 */
static void
laterality_and_view(const struct dcm *d, struct pacs_attrs *a)
{
	if (a->laterality[0] == '\0' && from_groups(d, frame_laterality,
	    a->laterality, sizeof a->laterality) == -1 &&
	    dcm_get_string(d, NULL, DCM_TAG(0x0020, 0x0060), 0, a->laterality,
	    sizeof a->laterality, NULL) < 0)
		a->laterality[0] = '\0';
	if (a->view_position[0] == '\0' && view_of_code(d, NULL,
	    a->view_position, sizeof a->view_position) == -1 &&
	    from_groups(d, view_of_code, a->view_position,
	    sizeof a->view_position) == -1)
		a->view_position[0] = '\0';
}

int
pacs_extract(const struct dcm *d, struct pacs_attrs *a, struct err *e)
{
	struct err ignored;
	const char *ts;

	memset(a, 0, sizeof *a);
	for (size_t i = 0; i < sizeof attr_map / sizeof attr_map[0]; i++) {
		const struct attr_map *m = &attr_map[i];
		char *field = (char *)a + m->offset;

		if (field[0] != '\0')	/* filled by an earlier, preferred tag */
			continue;
		if (dcm_find(d, NULL, m->tag) == NULL)
			continue;
		if (m->all)
			get_all(d, m->tag, field, m->size, &ignored);
		else if (dcm_get_string(d, NULL, m->tag, 0, field, m->size,
		    &ignored) < 0)
			field[0] = '\0';
	}
	if (a->sop_instance_uid[0] == '\0' &&
	    dcm_get_string(d, NULL, DCM_TAG(0x0002, 0x0003), 0,
	    a->sop_instance_uid, sizeof a->sop_instance_uid, &ignored) < 0)
		a->sop_instance_uid[0] = '\0';
	if (a->sop_class_uid[0] == '\0' &&
	    dcm_get_string(d, NULL, DCM_TAG(0x0002, 0x0002), 0,
	    a->sop_class_uid, sizeof a->sop_class_uid, &ignored) < 0)
		a->sop_class_uid[0] = '\0';
	laterality_and_view(d, a);
	ts = dcm_transfer_syntax(d);
	snprintf(a->transfer_syntax_uid, sizeof a->transfer_syntax_uid, "%s",
	    ts ? ts : "");
	if (a->sop_instance_uid[0] == '\0')
		return err_set(e, EINVAL, "no SOP Instance UID (0008,0018)");
	if (a->study_instance_uid[0] == '\0')
		return err_set(e, EINVAL, "no Study Instance UID (0020,000D)");
	if (a->series_instance_uid[0] == '\0')
		return err_set(e, EINVAL, "no Series Instance UID (0020,000E)");
	return 0;
}

void
pacs_timestamp_at(const struct timespec *t, char out[32])
{
	struct tm tm;

	gmtime_r(&t->tv_sec, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	if (snprintf(out + 19, 32 - 19, ".%03dZ",
	    (int)(t->tv_nsec / 1000000)) < 0)
		out[19] = '\0';
}

void
pacs_timestamp(char out[32])
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	pacs_timestamp_at(&now, out);
}
