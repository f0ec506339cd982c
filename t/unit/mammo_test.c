/*
 * mammo_test: the synthetic mammogram against our own reader.  Each of
 * the four views is built, encoded as a Part 10 file, parsed back and
 * checked (laterality, view, size, chest wall on the right side).  With a
 * directory argument the files are also written there, for dciodvfy and
 * dcmdump in the shell tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom.h"
#include "emu/emu.h"
#include "tap.h"

#define T_LAT	DCM_TAG(0x0020, 0x0062)
#define T_VIEW	DCM_TAG(0x0018, 0x5101)
#define T_ROWS	DCM_TAG(0x0028, 0x0010)
#define T_PIX	DCM_TAG(0x7fe0, 0x0010)
#define T_PN	DCM_TAG(0x0010, 0x0010)
#define T_CLASS	DCM_TAG(0x0008, 0x0016)
#define T_NFR	DCM_TAG(0x0028, 0x0008)
#define T_PFG	DCM_TAG(0x5200, 0x9230)
#define T_SFG	DCM_TAG(0x5200, 0x9229)
#define T_DIM	DCM_TAG(0x0020, 0x9222)
#define T_FANAT	DCM_TAG(0x0020, 0x9071)
#define T_FLAT	DCM_TAG(0x0020, 0x9072)
#define T_INTENT	DCM_TAG(0x0008, 0x0068)

static const char *views[] = { "RCC", "LCC", "RMLO", "LMLO" };

static const struct mammo_exam exam = {
	.patient_name = "M\xc3\xbcller^Zo\xc3\xab",
	.patient_id = "9990001112", .birth_date = "19700101", .sex = "F",
	.accession_number = "ACCUNIT1", .study_instance_uid = "2.25.1",
	.study_id = "1", .study_description = "Screening mammography",
	.requested_procedure_id = "RP1", .study_date = "20261128",
	.study_time = "093000", .series_instance_uid = "2.25.2",
	.mpps_sop_instance_uid = "2.25.3", .station_name = "EMU",
};

/* Mean of a column of 16-bit pixels. */
static double
column_mean(const uint8_t *px, int rows, int cols, int x)
{
	double sum = 0;

	for (int y = 0; y < rows; y++) {
		size_t i = ((size_t)y * (size_t)cols + (size_t)x) * 2;

		sum += px[i] | px[i + 1] << 8;
	}
	return sum / rows;
}

static void
check_view(const char *view, int n, const char *dir)
{
	struct mammo_image img = { .exam = &exam, .rows = 64, .cols = 48,
	    .frames = 1, .instance_number = n + 1, .seed = (unsigned)n };
	struct dcm_builder *b;
	struct dcm *d;
	struct err e = { 0 };
	const struct dcm_elem *px;
	char uid[MAMMO_UID_MAX], lat[8], pos[8], name[64], path[4096];
	uint8_t *buf;
	size_t len;
	long rows;
	int right;

	if (!ok(mammo_view_parse(view, &img.view, &e) == 0, "%s parses", view))
		return;
	ok(dcm_uid_new(uid, &e) == 0 && strncmp(uid, "2.25.", 5) == 0 &&
	    strlen(uid) <= 64, "%s: a 2.25 UID", view);
	img.sop_instance_uid = uid;
	if (!ok(mammo_build(&img, &b, &e) == 0, "%s builds: %s", view, e.msg))
		return;
	ok(dcm_build_encode_file(b, MAMMO_SOP_CLASS, uid, DCM_TS_EXPLICIT_LE,
	    "ISO_IR 100", &buf, &len, &e) == 0, "%s encodes", view);
	dcm_build_free(b);
	if (!ok(dcm_parse(buf, len, 0, &d, &e) == 0, "%s parses back", view)) {
		free(buf);
		return;
	}
	right = view[0] == 'R';
	ok(dcm_get_string(d, NULL, T_LAT, 0, lat, sizeof lat, &e) >= 0 &&
	    strcmp(lat, right ? "R" : "L") == 0, "%s: Image Laterality", view);
	ok(dcm_get_string(d, NULL, T_VIEW, 0, pos, sizeof pos, &e) >= 0 &&
	    strcmp(pos, view + 1) == 0, "%s: View Position", view);
	ok(dcm_get_string(d, NULL, T_PN, 0, name, sizeof name, &e) >= 0 &&
	    strcmp(name, exam.patient_name) == 0, "%s: Patient Name", view);
	ok(dcm_get_long(d, NULL, T_ROWS, 0, &rows, &e) == 0 && rows == 64,
	    "%s: Rows", view);
	px = dcm_find(d, NULL, T_PIX);
	if (ok(px != NULL && px->length == 64 * 48 * 2, "%s: pixel data",
	    view)) {
		double wall = column_mean(px->value, 64, 48, right ? 47 : 0);
		double far = column_mean(px->value, 64, 48, right ? 0 : 47);

		ok(wall > 1000 && far < 200, "%s: chest wall on the %s "
		    "(%.0f vs %.0f)", view, right ? "right" : "left", wall,
		    far);
	}
	dcm_free(d);
	if (dir != NULL) {
		FILE *f;

		snprintf(path, sizeof path, "%s/%s.dcm", dir, view);
		f = fopen(path, "wb");
		ok(f != NULL && fwrite(buf, 1, len, f) == len &&
		    fclose(f) == 0, "%s written to %s", view, path);
	}
	free(buf);
}

/* Writes buf to dir/name when dir is not NULL. */
static void
write_to(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char path[4096];
	FILE *f;

	if (dir == NULL)
		return;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	ok(f != NULL && fwrite(buf, 1, len, f) == len && fclose(f) == 0,
	    "%s written", path);
}

/* --frames: a Breast Tomosynthesis Image with one functional group item
 * a frame. */
static void
check_bto(const char *view, const char *dir)
{
	struct mammo_image img = { .exam = &exam, .rows = 64, .cols = 48,
	    .frames = 5, .instance_number = 9, .seed = 9 };
	struct dcm_builder *b;
	struct dcm *d;
	struct err e = { 0 };
	const struct dcm_elem *px, *pfg;
	char uid[MAMMO_UID_MAX], cls[80], name[32];
	uint8_t *buf;
	size_t len;
	long n;

	ok(strcmp(mammo_sop_class(1), MAMMO_SOP_CLASS) == 0 &&
	    strcmp(mammo_sop_class(5), MAMMO_BTO_SOP_CLASS) == 0,
	    "mammo_sop_class: MG for one frame, BTO for more");
	if (mammo_view_parse(view, &img.view, &e) == -1 ||
	    dcm_uid_new(uid, &e) == -1)
		return;
	img.sop_instance_uid = uid;
	if (!ok(mammo_build(&img, &b, &e) == 0, "BTO %s builds: %s", view,
	    e.msg))
		return;
	ok(dcm_build_encode_file(b, MAMMO_BTO_SOP_CLASS, uid,
	    DCM_TS_EXPLICIT_LE, "ISO_IR 192", &buf, &len, &e) == 0,
	    "BTO %s encodes", view);
	dcm_build_free(b);
	if (!ok(dcm_parse(buf, len, 0, &d, &e) == 0, "BTO %s parses back",
	    view)) {
		free(buf);
		return;
	}
	ok(dcm_get_string(d, NULL, T_CLASS, 0, cls, sizeof cls, &e) >= 0 &&
	    strcmp(cls, MAMMO_BTO_SOP_CLASS) == 0, "BTO %s: SOP class", view);
	ok(dcm_get_long(d, NULL, T_NFR, 0, &n, &e) == 0 && n == 5,
	    "BTO %s: Number of Frames 5", view);
	pfg = dcm_find(d, NULL, T_PFG);
	ok(pfg != NULL && dcm_item_count(d, pfg) == 5,
	    "BTO %s: five per-frame functional group items", view);
	ok(dcm_find(d, NULL, T_SFG) != NULL && dcm_find(d, NULL, T_DIM) !=
	    NULL, "BTO %s: shared groups and dimension index", view);
	px = dcm_find(d, NULL, T_PIX);
	ok(px != NULL && px->length == 5 * 64 * 48 * 2,
	    "BTO %s: five frames of pixels", view);
	dcm_free(d);
	snprintf(name, sizeof name, "BTO-%s.dcm", view);
	write_to(dir, name, buf, len);
	free(buf);
}

/* Frame Laterality of the shared group, or of per-frame item i. */
static int
frame_laterality(const struct dcm *d, long i, char *out, size_t outsz)
{
	const struct dcm_elem *sq = dcm_find(d, NULL, i < 0 ? T_SFG : T_PFG);
	const struct dcm_item *it;
	const struct dcm_elem *fa;

	if (sq == NULL || (it = dcm_item_at(d, sq, i < 0 ? 0 : (size_t)i)) ==
	    NULL || (fa = dcm_find(d, it, T_FANAT)) == NULL ||
	    (it = dcm_item_at(d, fa, 0)) == NULL)
		return -1;
	return dcm_get_string(d, it, T_FLAT, 0, out, outsz, NULL) > 0 ? 0 : -1;
}

/* Breast Projection X-Ray, For Presentation or For Processing; written
 * with mammo_write() (a frame at a time) and read back. */
static void
check_bpx(enum mammo_kind kind, int per_frame, const char *dir)
{
	struct mammo_image img = { .exam = &exam, .rows = 64, .cols = 48,
	    .frames = 2, .instance_number = 3, .seed = 3, .kind = kind,
	    .anatomy_per_frame = per_frame };
	const char *want = kind == MAMMO_KIND_BPX_PROCESSING ?
	    MAMMO_BPX_PROC_SOP_CLASS : MAMMO_BPX_SOP_CLASS;
	char uid[MAMMO_UID_MAX], cls[80], lat[8], path[4096], intent[32];
	struct dcm *d;
	struct err e = { 0 };
	const struct dcm_elem *px;
	uint8_t frame[64 * 48 * 2];
	uint64_t written = 0;
	FILE *f;

	if (mammo_view_parse("LMLO", &img.view, &e) == -1 ||
	    dcm_uid_new(uid, &e) == -1)
		return;
	img.sop_instance_uid = uid;
	ok(strcmp(mammo_image_sop_class(&img), want) == 0,
	    "%s: the class its kind asks for", want);
	snprintf(path, sizeof path, "%s/BPX-%d%s.dcm", dir ? dir : "/tmp",
	    (int)kind, per_frame ? "-pf" : "");
	if ((f = fopen(path, "wb")) == NULL)
		return;
	ok(mammo_write(&img, fileno(f), &written, &e) == 0 && written > 0,
	    "%s written a frame at a time: %s", want, e.msg);
	fclose(f);
	if (!ok(dcm_open(path, 0, &d, &e) == 0, "%s reads back: %s", want,
	    e.msg))
		return;
	ok(dcm_get_string(d, NULL, T_CLASS, 0, cls, sizeof cls, &e) >= 0 &&
	    strcmp(cls, want) == 0, "%s: SOP class", want);
	ok(dcm_find(d, NULL, T_LAT) == NULL && dcm_find(d, NULL, T_VIEW) ==
	    NULL, "%s: no top-level Image Laterality or View Position", want);
	ok(frame_laterality(d, per_frame ? 1 : -1, lat, sizeof lat) == 0 &&
	    strcmp(lat, "L") == 0, "%s: Frame Laterality L in the %s group",
	    want, per_frame ? "per-frame" : "shared");
	ok(dcm_get_string(d, NULL, T_INTENT, 0, intent, sizeof intent, &e) >
	    0 && strcmp(intent, kind == MAMMO_KIND_BPX_PROCESSING ?
	    "FOR PROCESSING" : "FOR PRESENTATION") == 0,
	    "%s: Presentation Intent Type %s", want, intent);
	px = dcm_find(d, NULL, T_PIX);
	mammo_frame(&img, 1, frame);
	ok(px != NULL && px->length == 2 * sizeof frame &&
	    memcmp(px->value + sizeof frame, frame, sizeof frame) == 0,
	    "%s: the second frame's pixels are mammo_frame()'s", want);
	dcm_free(d);
	if (dir == NULL)
		remove(path);
}

int
main(int argc, char **argv)
{
	struct mammo_view v;
	struct err e = { 0 };
	int rows, cols;

	for (int i = 0; i < 4; i++)
		check_view(views[i], i, argc > 1 ? argv[1] : NULL);
	check_bto("RCC", argc > 1 ? argv[1] : NULL);
	check_bto("LMLO", argc > 1 ? argv[1] : NULL);
	check_bpx(MAMMO_KIND_BPX_PRESENTATION, 0, argc > 1 ? argv[1] : NULL);
	check_bpx(MAMMO_KIND_BPX_PROCESSING, 1, argc > 1 ? argv[1] : NULL);
	{
		enum mammo_kind k;

		ok(mammo_kind_parse("bpx-processing", &k, &e) == 0 &&
		    k == MAMMO_KIND_BPX_PROCESSING &&
		    mammo_kind_parse("ct", &k, &e) == -1,
		    "classes parse by name, others are refused");
	}
	ok(mammo_view_parse("XCC", &v, &e) == -1, "XCC is refused");
	ok(mammo_size_parse("small", &rows, &cols, &e) == 0 && rows == 512 &&
	    cols == 400, "small is 512x400");
	ok(mammo_size_parse("full", &rows, &cols, &e) == 0 && rows == 3328 &&
	    cols == 2560, "full is 3328x2560");
	ok(mammo_size_parse("100x80", &rows, &cols, &e) == 0 && rows == 100 &&
	    cols == 80, "100x80");
	ok(mammo_size_parse("100x", &rows, &cols, &e) == -1 &&
	    mammo_size_parse("9x9999999", &rows, &cols, &e) == -1,
	    "bad sizes are refused");
	return tap_done();
}
