/*
 * mammo: the synthetic screening mammogram (see emu/emu.h).
 *
 * Attributes are added by keyword through the dictionary, so the list
 * below reads like the IOD's modules.  Values are plausible for a
 * tungsten/rhodium full-field digital system.
 */
#include "emu/emu.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_STORED	4095u	/* BitsStored 12 */
#define BACKGROUND	40u

struct code {
	const char *value, *scheme, *meaning;
};

static const struct code code_cc = { "399162004", "SCT", "cranio-caudal" };
static const struct code code_mlo = { "399368009", "SCT",
    "medio-lateral oblique" };
static const struct code code_breast = { "76752008", "SCT", "Breast" };
static const struct code code_erect = { "10904000", "SCT", "erect" };

int
mammo_view_parse(const char *name, struct mammo_view *v, struct err *e)
{
	const char *pos;

	memset(v, 0, sizeof *v);
	if (name[0] != 'R' && name[0] != 'L' && name[0] != 'r' &&
	    name[0] != 'l')
		return err_set(e, EINVAL, "view \"%s\": not RCC, LCC, RMLO "
		    "or LMLO", name);
	pos = name + 1;
	if (strcasecmp(pos, "CC") == 0)
		strcpy(v->position, "CC");
	else if (strcasecmp(pos, "MLO") == 0)
		strcpy(v->position, "MLO");
	else
		return err_set(e, EINVAL, "view \"%s\": not RCC, LCC, RMLO "
		    "or LMLO", name);
	v->laterality[0] = (char)toupper((unsigned char)name[0]);
	return 0;
}

static int
parse_side(const char *s, char **end, int *out)
{
	long v;

	errno = 0;
	v = strtol(s, end, 10);
	if (errno != 0 || *end == s || v < 16 || v > MAMMO_MAX_SIDE)
		return -1;
	*out = (int)v;
	return 0;
}

int
mammo_size_parse(const char *s, int *rows, int *cols, struct err *e)
{
	char *end;

	if (strcmp(s, "small") == 0) {
		*rows = MAMMO_SMALL_ROWS;
		*cols = MAMMO_SMALL_COLS;
		return 0;
	}
	if (strcmp(s, "full") == 0) {
		*rows = MAMMO_FULL_ROWS;
		*cols = MAMMO_FULL_COLS;
		return 0;
	}
	if (parse_side(s, &end, rows) == -1 || (*end != 'x' && *end != 'X') ||
	    parse_side(end + 1, &end, cols) == -1 || *end != '\0')
		return err_set(e, EINVAL, "size \"%s\": want small, full or "
		    "ROWSxCOLS (16 to %d each)", s, MAMMO_MAX_SIDE);
	return 0;
}

/* --- pixels --- */

/* A small hash of the position: film-grain-like texture. */
static unsigned
grain(unsigned x, unsigned y, unsigned seed)
{
	uint32_t h = x * 374761393u + y * 668265263u + seed * 2246822519u;

	h = (h ^ (h >> 13)) * 1274126177u;
	return (h ^ (h >> 16)) & 63u;
}

/* sqrt on [0, 1] by Newton's method: no libm to link. */
static double
unit_sqrt(double s)
{
	double r = (1.0 + s) / 2.0;
	int i;

	if (s <= 0.0)
		return 0.0;
	for (i = 0; i < 6; i++)
		r = (r + s / r) / 2.0;
	return r;
}

/* A triangle wave in [-1, 1] with period 1: smooth enough for texture. */
static double
wave(double t)
{
	double f = t - (double)(long)t;

	if (f < 0)
		f += 1.0;
	return (f < 0.5 ? f : 1.0 - f) * 4.0 - 1.0;
}

/*
 * A half ellipse against the chest wall (right edge for R, left for L):
 * brightest at the chest wall, fading towards the nipple and the skin
 * line, over a dark background.  MLO adds the pectoral muscle, a bright
 * wedge in the upper chest-wall corner.
 */
static uint16_t
pixel_value(const struct mammo_image *img, int x, int y, int frame)
{
	int mlo = img->view.position[0] == 'M';
	double w = img->cols, h = img->rows;
	double from_wall = img->view.laterality[0] == 'R' ?
	    (w - 1 - x) : x;
	double cy = h * (mlo ? 0.55 : 0.5);
	double dx = from_wall / (w * 0.8), dy = (y - cy) / (h * 0.42);
	double r2 = dx * dx + dy * dy, v;

	if (r2 >= 1.0)
		return (uint16_t)(BACKGROUND + (grain((unsigned)x,
		    (unsigned)y, img->seed) >> 4));
	v = 900.0 + 2300.0 * (1.0 - dx) * unit_sqrt(1.0 - r2);
	v += 140.0 * wave(x / 145.0 + frame * 0.05) *
	    wave(y / 195.0 + img->seed % 7 / 7.0);
	if (mlo && from_wall < (h * 0.35 - y) * 0.5)
		v += 450.0;
	v += grain((unsigned)x, (unsigned)y, img->seed + (unsigned)frame);
	if (v > MAX_STORED)
		v = MAX_STORED;
	return (uint16_t)v;
}

void
mammo_frame(const struct mammo_image *img, int frame, uint8_t *out)
{
	size_t i = 0;
	int x, y;

	for (y = 0; y < img->rows; y++)
		for (x = 0; x < img->cols; x++, i++) {
			uint16_t v = pixel_value(img, x, y, frame);

			out[2 * i] = (uint8_t)(v & 0xff);
			out[2 * i + 1] = (uint8_t)(v >> 8);
		}
}

/* Bytes of one frame; 0 when frames of them pass 4 GiB, which a
 * defined-length Pixel Data cannot hold. */
static uint64_t
frame_bytes(const struct mammo_image *img)
{
	uint64_t n = (uint64_t)img->rows * (uint64_t)img->cols * 2;

	return n * (uint64_t)img->frames > 0xfffffffeu ? 0 : n;
}

static int
add_pixels(struct dcm_builder *b, const struct mammo_image *img,
    struct err *e)
{
	size_t n = (size_t)frame_bytes(img);
	uint8_t *px;
	int f, rc;

	if (n == 0)
		return err_set(e, EOVERFLOW, "%d frames of %dx%d pass 4 GiB",
		    img->frames, img->rows, img->cols);
	if ((px = malloc(n * (size_t)img->frames)) == NULL)
		return err_set(e, ENOMEM, "out of memory for %d frames",
		    img->frames);
	for (f = 0; f < img->frames; f++)
		mammo_frame(img, f, px + n * (size_t)f);
	rc = dcm_build_bytes(b, DCM_TAG(0x7fe0, 0x0010), "OW", px,
	    n * (size_t)img->frames, e);
	free(px);
	return rc;
}

/* --- attributes --- */

static int
put(struct dcm_builder *b, const char *keyword, const char *value,
    struct err *e)
{
	const struct dcm_dict_entry *d = dcm_dict_by_keyword(keyword);

	if (d == NULL)
		return err_set(e, EINVAL, "no such keyword %s", keyword);
	if (value == NULL || value[0] == '\0')
		return dcm_build_empty(b, d->tag, NULL, e);
	return dcm_build_string(b, d->tag, NULL, value, e);
}

static int
put_u16(struct dcm_builder *b, const char *keyword, unsigned v,
    struct err *e)
{
	const struct dcm_dict_entry *d = dcm_dict_by_keyword(keyword);

	if (d == NULL)
		return err_set(e, EINVAL, "no such keyword %s", keyword);
	return dcm_build_u16(b, d->tag, (uint16_t)v, e);
}

static int
seq_begin(struct dcm_builder *b, const char *keyword, struct err *e)
{
	const struct dcm_dict_entry *d = dcm_dict_by_keyword(keyword);

	if (d == NULL)
		return err_set(e, EINVAL, "no such keyword %s", keyword);
	return dcm_build_sequence_begin(b, d->tag, e);
}

/* A sequence of one code item (with an empty nested sequence, if any). */
static int
put_code(struct dcm_builder *b, const char *keyword, const struct code *c,
    const char *empty_nested, struct err *e)
{
	if (seq_begin(b, keyword, e) == -1 ||
	    dcm_build_item_begin(b, e) == -1 ||
	    put(b, "CodeValue", c->value, e) == -1 ||
	    put(b, "CodingSchemeDesignator", c->scheme, e) == -1 ||
	    put(b, "CodeMeaning", c->meaning, e) == -1)
		return -1;
	if (empty_nested != NULL && (seq_begin(b, empty_nested, e) == -1 ||
	    dcm_build_sequence_end(b, e) == -1))
		return -1;
	return dcm_build_item_end(b, e) == -1 ||
	    dcm_build_sequence_end(b, e) == -1 ? -1 : 0;
}

static int
put_patient_study(struct dcm_builder *b, const struct mammo_exam *x,
    struct err *e)
{
	return put(b, "PatientName", x->patient_name, e) == -1 ||
	    put(b, "PatientID", x->patient_id, e) == -1 ||
	    put(b, "PatientBirthDate", x->birth_date, e) == -1 ||
	    put(b, "PatientSex", x->sex, e) == -1 ||
	    put(b, "StudyInstanceUID", x->study_instance_uid, e) == -1 ||
	    put(b, "StudyDate", x->study_date, e) == -1 ||
	    put(b, "StudyTime", x->study_time, e) == -1 ||
	    put(b, "ReferringPhysicianName", "", e) == -1 ||
	    put(b, "StudyID", x->study_id, e) == -1 ||
	    put(b, "AccessionNumber", x->accession_number, e) == -1 ||
	    put(b, "StudyDescription", x->study_description, e) == -1 ? -1 : 0;
}

static int
put_series(struct dcm_builder *b, const struct mammo_exam *x, int dx,
    struct err *e)
{
	if (dx && put(b, "PresentationIntentType", "FOR PRESENTATION",
	    e) == -1)
		return -1;
	if (put(b, "Modality", "MG", e) == -1 ||
	    put(b, "SeriesInstanceUID", x->series_instance_uid, e) == -1 ||
	    put(b, "SeriesNumber", "1", e) == -1 ||
	    put(b, "SeriesDate", x->study_date, e) == -1 ||
	    put(b, "SeriesTime", x->study_time, e) == -1 ||
	    put(b, "SeriesDescription", "Screening mammography", e) == -1 ||
	    put(b, "PerformedProcedureStepStartDate", x->study_date,
	    e) == -1 ||
	    put(b, "PerformedProcedureStepStartTime", x->study_time,
	    e) == -1 ||
	    put(b, "PerformedProcedureStepID", x->accession_number, e) == -1)
		return -1;
	if (x->mpps_sop_instance_uid[0] == '\0')
		return 0;
	return seq_begin(b, "ReferencedPerformedProcedureStepSequence",
	    e) == -1 || dcm_build_item_begin(b, e) == -1 ||
	    put(b, "ReferencedSOPClassUID", "1.2.840.10008.3.1.2.3.3",
	    e) == -1 ||
	    put(b, "ReferencedSOPInstanceUID", x->mpps_sop_instance_uid,
	    e) == -1 ||
	    dcm_build_item_end(b, e) == -1 ||
	    dcm_build_sequence_end(b, e) == -1 ? -1 : 0;
}

static int
put_equipment(struct dcm_builder *b, const struct mammo_exam *x,
    struct err *e)
{
	return put(b, "Manufacturer", "screening-gateway", e) == -1 ||
	    put(b, "InstitutionName", "Breast Screening Unit", e) == -1 ||
	    put(b, "StationName", x->station_name, e) == -1 ||
	    put(b, "ManufacturerModelName", "modality-emu", e) == -1 ||
	    put(b, "DeviceSerialNumber", "EMU0001", e) == -1 ||
	    put(b, "SoftwareVersions", GW_VERSION, e) == -1 ? -1 : 0;
}

/* Patient Orientation: rows run from the skin to the chest wall (P for
 * a right breast shown chest wall right, A for a left one); columns run
 * towards the feet (MLO) or the other side (CC). */
static const char *
orientation(const struct mammo_view *v)
{
	int right = v->laterality[0] == 'R', cc = v->position[0] == 'C';

	if (right)
		return cc ? "P\\L" : "P\\F";
	return cc ? "A\\R" : "A\\F";
}

static int
put_image(struct dcm_builder *b, const struct mammo_image *img,
    struct err *e)
{
	char num[16];

	snprintf(num, sizeof num, "%d", img->instance_number);
	if (put(b, "ImageType", "ORIGINAL\\PRIMARY", e) == -1 ||
	    put(b, "InstanceNumber", num, e) == -1 ||
	    put(b, "PatientOrientation", orientation(&img->view), e) == -1 ||
	    put(b, "ContentDate", img->exam->study_date, e) == -1 ||
	    put(b, "ContentTime", img->exam->study_time, e) == -1 ||
	    put(b, "AcquisitionDateTime", "", e) == -1 ||
	    put(b, "BurnedInAnnotation", "NO", e) == -1 ||
	    put(b, "LossyImageCompression", "00", e) == -1 ||
	    put(b, "QualityControlImage", "NO", e) == -1 ||
	    put(b, "ImageLaterality", img->view.laterality, e) == -1 ||
	    put(b, "BodyPartExamined", "BREAST", e) == -1 ||
	    put(b, "ViewPosition", img->view.position, e) == -1 ||
	    put(b, "PositionerType", "MAMMOGRAPHIC", e) == -1 ||
	    put(b, "OrganExposed", "BREAST", e) == -1 ||
	    put(b, "BreastImplantPresent", "NO", e) == -1 ||
	    put(b, "PartialView", "NO", e) == -1 ||
	    seq_begin(b, "AcquisitionContextSequence", e) == -1 ||
	    dcm_build_sequence_end(b, e) == -1)
		return -1;
	if (put_code(b, "AnatomicRegionSequence", &code_breast, NULL,
	    e) == -1)
		return -1;
	return put_code(b, "ViewCodeSequence", img->view.position[0] == 'C' ?
	    &code_cc : &code_mlo, "ViewModifierCodeSequence", e);
}

/* Pixel Intensity Relationship Sign: SS 1 (higher values, more
 * attenuation: brighter). */
static int
put_sign(struct dcm_builder *b, struct err *e)
{
	static const uint8_t one[2] = { 1, 0 };

	return dcm_build_bytes(b, DCM_TAG(0x0028, 0x1041), "SS", one,
	    sizeof one, e);
}

/* The Image Pixel module of every image here: 16 bits, 12 stored. */
static int
put_pixel_description(struct dcm_builder *b, const struct mammo_image *img,
    struct err *e)
{
	return put_u16(b, "SamplesPerPixel", 1, e) == -1 ||
	    put(b, "PhotometricInterpretation", "MONOCHROME2", e) == -1 ||
	    put_u16(b, "Rows", (unsigned)img->rows, e) == -1 ||
	    put_u16(b, "Columns", (unsigned)img->cols, e) == -1 ||
	    put_u16(b, "BitsAllocated", 16, e) == -1 ||
	    put_u16(b, "BitsStored", 12, e) == -1 ||
	    put_u16(b, "HighBit", 11, e) == -1 ||
	    put_u16(b, "PixelRepresentation", 0, e) == -1 ? -1 : 0;
}

static int
put_pixel_module(struct dcm_builder *b, const struct mammo_image *img,
    struct err *e)
{
	return put_pixel_description(b, img, e) == -1 ||
	    put(b, "PixelIntensityRelationship", "LOG", e) == -1 ||
	    put_sign(b, e) == -1 ||
	    put(b, "RescaleIntercept", "0", e) == -1 ||
	    put(b, "RescaleSlope", "1", e) == -1 ||
	    put(b, "RescaleType", "US", e) == -1 ||
	    put(b, "PresentationLUTShape", "IDENTITY", e) == -1 ||
	    put(b, "WindowCenter", "2048", e) == -1 ||
	    put(b, "WindowWidth", "4096", e) == -1 ||
	    put(b, "VOILUTFunction", "LINEAR", e) == -1 ||
	    put(b, "WindowCenterWidthExplanation", "STANDARD", e) == -1 ?
	    -1 : 0;
}

static int
put_detector(struct dcm_builder *b, struct err *e)
{
	return put(b, "DetectorType", "DIRECT", e) == -1 ||
	    put(b, "DetectorConfiguration", "AREA", e) == -1 ||
	    put(b, "DetectorID", "EMU-DET-1", e) == -1 ||
	    put(b, "DetectorConditionsNominalFlag", "YES", e) == -1 ||
	    put(b, "DetectorTemperature", "30", e) == -1 ||
	    put(b, "Sensitivity", "100", e) == -1 ||
	    put(b, "DetectorElementPhysicalSize", "0.085\\0.085", e) == -1 ||
	    put(b, "DetectorElementSpacing", "0.085\\0.085", e) == -1 ||
	    put(b, "DetectorActiveShape", "RECTANGLE", e) == -1 ||
	    put(b, "DetectorActiveDimensions", "283\\217", e) == -1 ||
	    put(b, "ImagerPixelSpacing", "0.085\\0.085", e) == -1 ||
	    put(b, "PixelSpacing", "0.07985\\0.07985", e) == -1 ||
	    put(b, "PixelSpacingCalibrationType", "GEOMETRY", e) == -1 ||
	    put(b, "PixelSpacingCalibrationDescription",
	    "detector plane", e) == -1 ||
	    put(b, "EstimatedRadiographicMagnificationFactor", "1.064516",
	    e) == -1 ? -1 : 0;
}

static int
put_exposure(struct dcm_builder *b, const struct mammo_image *img,
    struct err *e)
{
	char uas[16], thick[16], force[16];
	int mlo = img->view.position[0] == 'M';

	snprintf(uas, sizeof uas, "%u", 80000 + img->seed % 20000);
	snprintf(thick, sizeof thick, "%d", mlo ? 58 : 52);
	snprintf(force, sizeof force, "%d", mlo ? 120 : 105);
	return put(b, "KVP", "29", e) == -1 ||
	    put(b, "ExposureInuAs", uas, e) == -1 ||
	    put(b, "ExposureTime", "1200", e) == -1 ||
	    put(b, "XRayTubeCurrent", "70", e) == -1 ||
	    put(b, "AnodeTargetMaterial", "TUNGSTEN", e) == -1 ||
	    put(b, "FilterMaterial", "RHODIUM", e) == -1 ||
	    put(b, "FilterThicknessMinimum", "0.05", e) == -1 ||
	    put(b, "FilterThicknessMaximum", "0.05", e) == -1 ||
	    put(b, "FocalSpots", "0.3", e) == -1 ||
	    put(b, "Grid", "RECIPROCATING", e) == -1 ||
	    put(b, "CompressionForce", force, e) == -1 ||
	    put(b, "BodyPartThickness", thick, e) == -1 ||
	    put(b, "OrganDose", mlo ? "1.3" : "1.1", e) == -1 ||
	    put(b, "EntranceDoseInmGy", mlo ? "5.8" : "5.1", e) == -1 ||
	    put(b, "DistanceSourceToDetector", "660", e) == -1 ||
	    put(b, "DistanceSourceToPatient", "620", e) == -1 ||
	    put(b, "PositionerPrimaryAngle", mlo ?
	    (img->view.laterality[0] == 'R' ? "45" : "-45") : "0", e) == -1 ||
	    put(b, "ExposureControlMode", "AUTOMATIC", e) == -1 ? -1 : 0;
}

/* --- Breast Tomosynthesis Image (PS3.3 A.55) --- */

#define SLICE_MM	1	/* slice spacing and thickness */
#define BTO_TYPE	"ORIGINAL\\PRIMARY\\TOMOSYNTHESIS\\NONE"

static int
put_ul(struct dcm_builder *b, const char *keyword, unsigned long v,
    struct err *e)
{
	const struct dcm_dict_entry *d = dcm_dict_by_keyword(keyword);

	if (d == NULL)
		return err_set(e, EINVAL, "no such keyword %s", keyword);
	return dcm_build_u32(b, d->tag, (uint32_t)v, e);
}

/* FD (n values) or FL (one), little endian whatever the host. */
static int
put_fdv(struct dcm_builder *b, const char *keyword, const double *v, int n,
    struct err *e)
{
	const struct dcm_dict_entry *d = dcm_dict_by_keyword(keyword);
	uint8_t le[8 * 6];
	uint64_t u;

	if (d == NULL || n < 1 || n > 6)
		return err_set(e, EINVAL, "no such keyword %s", keyword);
	for (int k = 0; k < n; k++) {
		memcpy(&u, &v[k], sizeof u);
		for (int i = 0; i < 8; i++)
			le[8 * k + i] = (uint8_t)(u >> (8 * i));
	}
	return dcm_build_bytes(b, d->tag, "FD", le, 8 * (size_t)n, e);
}

static int
put_fd(struct dcm_builder *b, const char *keyword, double v, struct err *e)
{
	return put_fdv(b, keyword, &v, 1, e);
}

static int
put_fl(struct dcm_builder *b, const char *keyword, float v, struct err *e)
{
	const struct dcm_dict_entry *d = dcm_dict_by_keyword(keyword);
	uint8_t le[4];
	uint32_t u;

	if (d == NULL)
		return err_set(e, EINVAL, "no such keyword %s", keyword);
	memcpy(&u, &v, sizeof u);
	for (int i = 0; i < 4; i++)
		le[i] = (uint8_t)(u >> (8 * i));
	return dcm_build_bytes(b, d->tag, "FL", le, sizeof le, e);
}

/* An AT element holding the tag of another keyword. */
static int
put_at(struct dcm_builder *b, const char *keyword, const char *target,
    struct err *e)
{
	const struct dcm_dict_entry *d = dcm_dict_by_keyword(keyword);
	const struct dcm_dict_entry *t = dcm_dict_by_keyword(target);
	uint8_t v[4];

	if (d == NULL || t == NULL)
		return err_set(e, EINVAL, "no such keyword %s or %s", keyword,
		    target);
	v[0] = (uint8_t)(DCM_GROUP(t->tag) & 0xff);
	v[1] = (uint8_t)(DCM_GROUP(t->tag) >> 8);
	v[2] = (uint8_t)(t->tag & 0xff);
	v[3] = (uint8_t)((t->tag >> 8) & 0xff);
	return dcm_build_bytes(b, d->tag, "AT", v, sizeof v, e);
}

/* Opens a sequence and its one item; item_close() closes both. */
static int
item_open(struct dcm_builder *b, const char *keyword, struct err *e)
{
	return seq_begin(b, keyword, e) == -1 ||
	    dcm_build_item_begin(b, e) == -1 ? -1 : 0;
}

static int
item_close(struct dcm_builder *b, struct err *e)
{
	return dcm_build_item_end(b, e) == -1 ||
	    dcm_build_sequence_end(b, e) == -1 ? -1 : 0;
}

/* Image Orientation (Patient) matching orientation() above: the unit
 * vectors of the row and column directions (+x left, +y posterior, +z
 * head). */
static const char *
orientation_vectors(const struct mammo_view *v)
{
	int right = v->laterality[0] == 'R', cc = v->position[0] == 'C';

	if (right)
		return cc ? "0\\1\\0\\1\\0\\0" : "0\\1\\0\\0\\0\\-1";
	return cc ? "0\\-1\\0\\-1\\0\\0" : "0\\-1\\0\\0\\0\\-1";
}

static int
put_bto_frame_type(struct dcm_builder *b, struct err *e)
{
	return put(b, "PixelPresentation", "MONOCHROME", e) == -1 ||
	    put(b, "VolumetricProperties", "VOLUME", e) == -1 ||
	    put(b, "VolumeBasedCalculationTechnique", "NONE", e) == -1 ?
	    -1 : 0;
}

/* Frame Anatomy: the laterality of an enhanced image. */
static int
put_frame_anatomy(struct dcm_builder *b, const struct mammo_image *img,
    struct err *e)
{
	return item_open(b, "FrameAnatomySequence", e) == -1 ||
	    put(b, "FrameLaterality", img->view.laterality, e) == -1 ||
	    put_code(b, "AnatomicRegionSequence", &code_breast, NULL,
	    e) == -1 ||
	    item_close(b, e) == -1 ? -1 : 0;
}

static int
put_frame_voi(struct dcm_builder *b, struct err *e)
{
	return item_open(b, "FrameVOILUTSequence", e) == -1 ||
	    put(b, "WindowCenter", "2048", e) == -1 ||
	    put(b, "WindowWidth", "4096", e) == -1 ||
	    put(b, "WindowCenterWidthExplanation", "STANDARD", e) == -1 ||
	    put(b, "VOILUTFunction", "LINEAR", e) == -1 ||
	    item_close(b, e) == -1 ? -1 : 0;
}

static int
put_pixel_transformation(struct dcm_builder *b, struct err *e)
{
	return item_open(b, "PixelValueTransformationSequence", e) == -1 ||
	    put(b, "RescaleIntercept", "0", e) == -1 ||
	    put(b, "RescaleSlope", "1", e) == -1 ||
	    put(b, "RescaleType", "US", e) == -1 ||
	    item_close(b, e) == -1 ? -1 : 0;
}

static int
put_bto_shared(struct dcm_builder *b, const struct mammo_image *img,
    struct err *e)
{
	char thick[16];

	snprintf(thick, sizeof thick, "%d", SLICE_MM);
	return item_open(b, "SharedFunctionalGroupsSequence", e) == -1 ||
	    item_open(b, "PixelMeasuresSequence", e) == -1 ||
	    put(b, "PixelSpacing", "0.085\\0.085", e) == -1 ||
	    put(b, "SliceThickness", thick, e) == -1 ||
	    item_close(b, e) == -1 ||
	    item_open(b, "PlaneOrientationSequence", e) == -1 ||
	    put(b, "ImageOrientationPatient", orientation_vectors(&img->view),
	    e) == -1 ||
	    item_close(b, e) == -1 ||
	    (!img->anatomy_per_frame && put_frame_anatomy(b, img, e) == -1) ||
	    put_frame_voi(b, e) == -1 ||
	    put_pixel_transformation(b, e) == -1 ||
	    item_close(b, e) == -1 ? -1 : 0;
}

/* One frame: slice f, SLICE_MM further from the detector each, along
 * the normal (row x column) of orientation_vectors(): -z for CC, -x for
 * RMLO, +x for LMLO. */
static int
put_bto_frame(struct dcm_builder *b, const struct mammo_image *img, int f,
    const char *when, struct err *e)
{
	uint8_t idx[8] = { 1, 0, 0, 0 };
	char pos[48];
	int d = f * SLICE_MM, x = 0, z = 0;

	if (img->view.position[0] == 'C')
		z = -d;
	else
		x = img->view.laterality[0] == 'R' ? -d : d;
	snprintf(pos, sizeof pos, "%d\\0\\%d", x, z);
	idx[4] = (uint8_t)((f + 1) & 0xff);
	idx[5] = (uint8_t)((f + 1) >> 8);
	return dcm_build_item_begin(b, e) == -1 ||
	    item_open(b, "FrameContentSequence", e) == -1 ||
	    put(b, "FrameReferenceDateTime", when, e) == -1 ||
	    put(b, "FrameAcquisitionDateTime", when, e) == -1 ||
	    put_fd(b, "FrameAcquisitionDuration", 1200.0, e) == -1 ||
	    dcm_build_bytes(b, DCM_TAG(0x0020, 0x9157), "UL", idx, sizeof idx,
	    e) == -1 ||
	    put(b, "StackID", "1", e) == -1 ||
	    put_ul(b, "InStackPositionNumber", (unsigned long)f + 1, e) == -1 ||
	    item_close(b, e) == -1 ||
	    item_open(b, "PlanePositionSequence", e) == -1 ||
	    put(b, "ImagePositionPatient", pos, e) == -1 ||
	    item_close(b, e) == -1 ||
	    (img->anatomy_per_frame && put_frame_anatomy(b, img, e) == -1) ||
	    item_open(b, "XRay3DFrameTypeSequence", e) == -1 ||
	    put(b, "FrameType", BTO_TYPE, e) == -1 ||
	    put_bto_frame_type(b, e) == -1 ||
	    item_close(b, e) == -1 ||
	    dcm_build_item_end(b, e) == -1 ? -1 : 0;
}

/* Multi-frame Dimension: stack, then position in the stack. */
static int
put_bto_dimension(struct dcm_builder *b, struct err *e)
{
	char uid[DCM_UID_MAX];

	if (dcm_uid_new(uid, e) == -1 ||
	    item_open(b, "DimensionOrganizationSequence", e) == -1 ||
	    put(b, "DimensionOrganizationUID", uid, e) == -1 ||
	    item_close(b, e) == -1 ||
	    put(b, "DimensionOrganizationType", "3D", e) == -1 ||
	    seq_begin(b, "DimensionIndexSequence", e) == -1)
		return -1;
	return dcm_build_item_begin(b, e) == -1 ||
	    put(b, "DimensionOrganizationUID", uid, e) == -1 ||
	    put_at(b, "DimensionIndexPointer", "StackID", e) == -1 ||
	    put_at(b, "FunctionalGroupPointer", "FrameContentSequence",
	    e) == -1 ||
	    put(b, "DimensionDescriptionLabel", "Stack", e) == -1 ||
	    dcm_build_item_end(b, e) == -1 ||
	    dcm_build_item_begin(b, e) == -1 ||
	    put(b, "DimensionOrganizationUID", uid, e) == -1 ||
	    put_at(b, "DimensionIndexPointer", "InStackPositionNumber",
	    e) == -1 ||
	    put_at(b, "FunctionalGroupPointer", "FrameContentSequence",
	    e) == -1 ||
	    put(b, "DimensionDescriptionLabel", "Slice", e) == -1 ||
	    dcm_build_item_end(b, e) == -1 ||
	    dcm_build_sequence_end(b, e) == -1 ? -1 : 0;
}

/* What the enhanced classes share: Frame of Reference, the image's
 * identity and the Breast View module (the view only as a code). */
static int
put_enhanced_image(struct dcm_builder *b, const struct mammo_image *img,
    const char *image_type, struct err *e)
{
	char num[16], frame_uid[DCM_UID_MAX];

	snprintf(num, sizeof num, "%d", img->instance_number);
	return dcm_uid_new(frame_uid, e) == -1 ||
	    put(b, "FrameOfReferenceUID", frame_uid, e) == -1 ||
	    put(b, "PositionReferenceIndicator", "", e) == -1 ||
	    put(b, "ImageType", image_type, e) == -1 ||
	    put(b, "ContentQualification", "PRODUCT", e) == -1 ||
	    put(b, "InstanceNumber", num, e) == -1 ||
	    put(b, "ContentDate", img->exam->study_date, e) == -1 ||
	    put(b, "ContentTime", img->exam->study_time, e) == -1 ||
	    put(b, "BurnedInAnnotation", "NO", e) == -1 ||
	    put(b, "LossyImageCompression", "00", e) == -1 ||
	    put(b, "PresentationLUTShape", "IDENTITY", e) == -1 ||
	    put(b, "BreastImplantPresent", "NO", e) == -1 ||
	    put(b, "PartialView", "NO", e) == -1 ||
	    seq_begin(b, "AcquisitionContextSequence", e) == -1 ||
	    dcm_build_sequence_end(b, e) == -1 ||
	    put_code(b, "ViewCodeSequence", img->view.position[0] == 'C' ?
	    &code_cc : &code_mlo, "ViewModifierCodeSequence", e) == -1 ? -1 : 0;
}

/*
 * Number of Frames, the shared group (shared()), and a per-frame group
 * item for each frame (frame(), which opens and closes its item).
 */
static int
put_groups(struct dcm_builder *b, const struct mammo_image *img,
    int (*shared)(struct dcm_builder *, const struct mammo_image *,
    struct err *),
    int (*frame)(struct dcm_builder *, const struct mammo_image *, int,
    const char *, struct err *), struct err *e)
{
	char n[16], when[32];
	int f;

	snprintf(n, sizeof n, "%d", img->frames);
	snprintf(when, sizeof when, "%s%s", img->exam->study_date,
	    img->exam->study_time);
	if (put(b, "NumberOfFrames", n, e) == -1 || shared(b, img, e) == -1 ||
	    seq_begin(b, "PerFrameFunctionalGroupsSequence", e) == -1)
		return -1;
	for (f = 0; f < img->frames; f++)
		if (frame(b, img, f, when, e) == -1)
			return -1;
	return dcm_build_sequence_end(b, e);
}

/* Tomosynthesis: X-Ray 3D Image, Breast View. */
static int
put_bto_image(struct dcm_builder *b, const struct mammo_image *img,
    struct err *e)
{
	return put_enhanced_image(b, img, BTO_TYPE, e) == -1 ||
	    put_bto_frame_type(b, e) == -1 ? -1 : 0;
}

static int
build_bto(struct dcm_builder *b, const struct mammo_image *img,
    struct err *e)
{
	return put_series(b, img->exam, 0, e) == -1 ||
	    put_bto_image(b, img, e) == -1 ||
	    put_pixel_description(b, img, e) == -1 ||
	    put_groups(b, img, put_bto_shared, put_bto_frame, e) == -1 ||
	    put_bto_dimension(b, e) == -1 ? -1 : 0;
}

/* --- Breast Projection X-Ray Image (PS3.3 A.74) --- */

#define BPX_TYPE	"ORIGINAL\\PRIMARY"
#define BPX_FRAME_TYPE	"ORIGINAL\\PRIMARY\\\\NONE"	/* value 3 empty: 2D */

static int
is_processing(const struct mammo_image *img)
{
	return img->kind == MAMMO_KIND_BPX_PROCESSING;
}

/* Shared groups: pixel measures, anatomy (unless per frame), and for
 * presentation the VOI; For Processing images carry no window. */
/* The acquisition: geometry, dose, detector and field (the same for
 * every frame of a projection). */
static int
put_bpx_acquisition(struct dcm_builder *b, const struct mammo_image *img,
    struct err *e)
{
	static const double tlhc[3] = { -108.5, 0, 0 };
	static const double axes[6] = { 1, 0, 0, 0, 1, 0 };
	char uid[DCM_UID_MAX];
	int mlo = img->view.position[0] == 'M';

	return dcm_uid_new(uid, e) == -1 ||
	    item_open(b, "IrradiationEventIdentificationSequence", e) == -1 ||
	    put(b, "IrradiationEventUID", uid, e) == -1 ||
	    item_close(b, e) == -1 ||
	    item_open(b, "FieldOfViewSequence", e) == -1 ||
	    put(b, "FieldOfViewShape", "RECTANGLE", e) == -1 ||
	    put(b, "FieldOfViewRotation", "0", e) == -1 ||
	    put(b, "FieldOfViewHorizontalFlip", "NO", e) == -1 ||
	    item_close(b, e) == -1 ||
	    item_open(b, "FramePixelDataPropertiesSequence", e) == -1 ||
	    put(b, "FrameType", BPX_FRAME_TYPE, e) == -1 ||
	    put(b, "ImagerPixelSpacing", "0.085\\0.085", e) == -1 ||
	    put(b, "PixelIntensityRelationship", "LOG", e) == -1 ||
	    put_sign(b, e) == -1 ||
	    put(b, "GeometricalProperties", "UNIFORM", e) == -1 ||
	    put(b, "ImageProcessingApplied", "NONE", e) == -1 ||
	    item_close(b, e) == -1 ||
	    item_open(b, "CollimatorShapeSequence", e) == -1 ||
	    put(b, "CollimatorShape", "RECTANGULAR", e) == -1 ||
	    put(b, "CollimatorLeftVerticalEdge", "0", e) == -1 ||
	    put(b, "CollimatorRightVerticalEdge", "2560", e) == -1 ||
	    put(b, "CollimatorUpperHorizontalEdge", "0", e) == -1 ||
	    put(b, "CollimatorLowerHorizontalEdge", "3328", e) == -1 ||
	    item_close(b, e) == -1 ||
	    item_open(b, "XRayGeometrySequence", e) == -1 ||
	    put(b, "DistanceSourceToDetector", "660", e) == -1 ||
	    put(b, "DistanceSourceToPatient", "620", e) == -1 ||
	    put_fl(b, "DistanceSourceToIsocenter", 640.0f, e) == -1 ||
	    put(b, "EstimatedRadiographicMagnificationFactor", "1.064516",
	    e) == -1 ||
	    item_close(b, e) == -1 ||
	    item_open(b, "XRayAcquisitionDoseSequence", e) == -1 ||
	    put_fd(b, "ExposureTimeInms", 1200.0, e) == -1 ||
	    put_fd(b, "ExposureInmAs", 84.0, e) == -1 ||
	    put(b, "OrganDose", mlo ? "1.3" : "1.1", e) == -1 ||
	    put(b, "EntranceDoseInmGy", mlo ? "5.8" : "5.1", e) == -1 ||
	    item_close(b, e) == -1 ||
	    item_open(b, "IsocenterReferenceSystemSequence", e) == -1 ||
	    put_fd(b, "XRaySourceIsocenterPrimaryAngle", 0, e) == -1 ||
	    put_fd(b, "XRaySourceIsocenterSecondaryAngle", 0, e) == -1 ||
	    put_fd(b, "BreastSupportIsocenterPrimaryAngle", 0, e) == -1 ||
	    put_fd(b, "BreastSupportIsocenterSecondaryAngle", 0, e) == -1 ||
	    put_fd(b, "BreastSupportXPositionToIsocenter", 0, e) == -1 ||
	    put_fd(b, "BreastSupportYPositionToIsocenter", 0, e) == -1 ||
	    put_fd(b, "BreastSupportZPositionToIsocenter", -20, e) == -1 ||
	    put_fd(b, "DetectorIsocenterPrimaryAngle", 0, e) == -1 ||
	    put_fd(b, "DetectorIsocenterSecondaryAngle", 0, e) == -1 ||
	    put_fd(b, "DetectorXPositionToIsocenter", 0, e) == -1 ||
	    put_fd(b, "DetectorYPositionToIsocenter", 0, e) == -1 ||
	    put_fd(b, "DetectorZPositionToIsocenter", -40, e) == -1 ||
	    put_fdv(b, "DetectorActiveAreaTLHCPosition", tlhc, 3, e) == -1 ||
	    put_fdv(b, "DetectorActiveAreaOrientation", axes, 6, e) == -1 ||
	    item_close(b, e) == -1 ? -1 : 0;
}

static int
put_bpx_shared(struct dcm_builder *b, const struct mammo_image *img,
    struct err *e)
{
	return item_open(b, "SharedFunctionalGroupsSequence", e) == -1 ||
	    (!is_processing(img) && (seq_begin(b, "DerivationImageSequence",
	    e) == -1 || dcm_build_sequence_end(b, e) == -1)) ||
	    (!img->anatomy_per_frame && put_frame_anatomy(b, img, e) == -1) ||
	    put_frame_voi(b, e) == -1 ||
	    put_pixel_transformation(b, e) == -1 ||
	    put_bpx_acquisition(b, img, e) == -1 ||
	    item_close(b, e) == -1 ? -1 : 0;
}

/* One frame's group: its time, and its anatomy when per frame. */
static int
put_bpx_frame(struct dcm_builder *b, const struct mammo_image *img, int f,
    const char *when, struct err *e)
{
	(void)f;
	return dcm_build_item_begin(b, e) == -1 ||
	    item_open(b, "FrameContentSequence", e) == -1 ||
	    put(b, "FrameAcquisitionDateTime", when, e) == -1 ||
	    put(b, "FrameReferenceDateTime", when, e) == -1 ||
	    put_fd(b, "FrameAcquisitionDuration", 1200.0, e) == -1 ||
	    item_close(b, e) == -1 ||
	    (img->anatomy_per_frame && put_frame_anatomy(b, img, e) == -1) ||
	    dcm_build_item_end(b, e) == -1 ? -1 : 0;
}

/* Breast Projection: Enhanced Mammography Image, Breast View. */
static int
put_bpx_image(struct dcm_builder *b, const struct mammo_image *img,
    struct err *e)
{
	char when[32];

	snprintf(when, sizeof when, "%s%s", img->exam->study_date,
	    img->exam->study_time);
	return put_enhanced_image(b, img, BPX_TYPE, e) == -1 ||
	    put(b, "PresentationIntentType", is_processing(img) ?
	    "FOR PROCESSING" : "FOR PRESENTATION", e) == -1 ||
	    put(b, "AcquisitionDateTime", when, e) == -1 ||
	    put_fd(b, "AcquisitionDuration", 1.2, e) == -1 ||
	    put(b, "PositionerType", "MAMMOGRAPHIC", e) == -1 ||
	    put(b, "PositionerMotion", "STATIONARY", e) == -1 ||
	    put(b, "TypeOfDetectorMotion", "STATIONARY", e) == -1 ||
	    put_code(b, "PatientOrientationCodeSequence", &code_erect, NULL,
	    e) == -1 ||
	    put(b, "PatientOrientation", orientation(&img->view), e) == -1 ||
	    put(b, "DetectorType", "DIRECT", e) == -1 ||
	    put(b, "KVP", "29", e) == -1 ||
	    put_fd(b, "ExposureInmAs", 84.0, e) == -1 ||
	    put(b, "FocalSpots", "0.3", e) == -1 ||
	    put(b, "AnodeTargetMaterial", "TUNGSTEN", e) == -1 ||
	    put(b, "BodyPartThickness", "52", e) == -1 ||
	    put(b, "CompressionForce", "105", e) == -1 ||
	    put(b, "PaddleDescription", "standard", e) == -1 ||
	    put(b, "ExposureControlMode", "AUTOMATIC", e) == -1 ||
	    put(b, "ExposureControlModeDescription", "automatic exposure "
	    "control", e) == -1 ||
	    put(b, "OrganDose", "1.1", e) == -1 ||
	    put(b, "EntranceDoseInmGy", "5.1", e) == -1 ? -1 : 0;
}

static int
build_bpx(struct dcm_builder *b, const struct mammo_image *img,
    struct err *e)
{
	return put_series(b, img->exam, 0, e) == -1 ||
	    put_bpx_image(b, img, e) == -1 ||
	    put_pixel_description(b, img, e) == -1 ||
	    put_groups(b, img, put_bpx_shared, put_bpx_frame, e) == -1 ?
	    -1 : 0;
}

/* --- the image --- */

const char *
mammo_sop_class(int frames)
{
	return frames > 1 ? MAMMO_BTO_SOP_CLASS : MAMMO_SOP_CLASS;
}

static enum mammo_kind
kind_of(const struct mammo_image *img)
{
	if (img->kind != MAMMO_KIND_AUTO)
		return img->kind;
	return img->frames > 1 ? MAMMO_KIND_BTO : MAMMO_KIND_DX;
}

const char *
mammo_image_sop_class(const struct mammo_image *img)
{
	switch (kind_of(img)) {
	case MAMMO_KIND_BTO:
		return MAMMO_BTO_SOP_CLASS;
	case MAMMO_KIND_BPX_PRESENTATION:
		return MAMMO_BPX_SOP_CLASS;
	case MAMMO_KIND_BPX_PROCESSING:
		return MAMMO_BPX_PROC_SOP_CLASS;
	default:
		return MAMMO_SOP_CLASS;
	}
}

int
mammo_kind_parse(const char *name, enum mammo_kind *k, struct err *e)
{
	static const struct {
		const char *name;
		enum mammo_kind kind;
	} kinds[] = {
		{ "auto", MAMMO_KIND_AUTO }, { "dx", MAMMO_KIND_DX },
		{ "bto", MAMMO_KIND_BTO }, { "bpx", MAMMO_KIND_BPX_PRESENTATION },
		{ "bpx-processing", MAMMO_KIND_BPX_PROCESSING },
	};

	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(name, kinds[i].name) == 0) {
			*k = kinds[i].kind;
			return 0;
		}
	return err_set(e, EINVAL, "class \"%s\": not dx, bto, bpx or "
	    "bpx-processing", name);
}

/* The single-frame Digital Mammography image (PS3.3 A.26). */
static int
build_dx(struct dcm_builder *b, const struct mammo_image *img,
    struct err *e)
{
	return put_series(b, img->exam, 1, e) == -1 ||
	    put_image(b, img, e) == -1 ||
	    put_pixel_module(b, img, e) == -1 ||
	    put_detector(b, e) == -1 ||
	    put_exposure(b, img, e) == -1 ? -1 : 0;
}

int
mammo_build_header(const struct mammo_image *img, struct dcm_builder **out,
    struct err *e)
{
	enum mammo_kind k = kind_of(img);
	struct dcm_builder *b;
	int rc;

	*out = NULL;
	if (img->rows < 16 || img->cols < 16 || img->rows > MAMMO_MAX_SIDE ||
	    img->cols > MAMMO_MAX_SIDE || img->frames < 1 ||
	    img->frames > MAMMO_MAX_FRAMES ||
	    (k == MAMMO_KIND_DX && img->frames > 1))
		return err_set(e, EINVAL, "image size %dx%d, %d frames: out "
		    "of range", img->rows, img->cols, img->frames);
	if (frame_bytes(img) == 0)
		return err_set(e, EOVERFLOW, "%d frames of %dx%d pass 4 GiB",
		    img->frames, img->rows, img->cols);
	if ((b = dcm_build_new()) == NULL)
		return err_set(e, ENOMEM, "out of memory");
	if (put(b, "SOPClassUID", mammo_image_sop_class(img), e) == -1 ||
	    put(b, "SOPInstanceUID", img->sop_instance_uid, e) == -1 ||
	    put_patient_study(b, img->exam, e) == -1 ||
	    put_equipment(b, img->exam, e) == -1)
		rc = -1;
	else if (k == MAMMO_KIND_BTO)
		rc = build_bto(b, img, e);
	else if (k == MAMMO_KIND_DX)
		rc = build_dx(b, img, e);
	else
		rc = build_bpx(b, img, e);
	if (rc == -1) {
		dcm_build_free(b);
		return -1;
	}
	*out = b;
	return 0;
}

int
mammo_build(const struct mammo_image *img, struct dcm_builder **out,
    struct err *e)
{
	if (mammo_build_header(img, out, e) == -1)
		return -1;
	if (add_pixels(*out, img, e) == -1) {
		dcm_build_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* fs_write_all, counting what was written. */
static int
write_counted(int fd, const void *p, size_t n, uint64_t *written,
    struct err *e)
{
	if (fs_write_all(fd, p, n, e) == -1)
		return -1;
	*written += n;
	return 0;
}

int
mammo_write(const struct mammo_image *img, int fd, uint64_t *written,
    struct err *e)
{
	struct dcm_builder *b;
	uint64_t fb = frame_bytes(img), total = 0;
	uint8_t *head = NULL, *px = NULL, el[12] = { 0xe0, 0x7f, 0x10, 0x00,
	    'O', 'W', 0, 0 };
	size_t len;
	int rc = -1;

	if (mammo_build_header(img, &b, e) == -1)
		return -1;
	if (dcm_build_encode_file(b, mammo_image_sop_class(img),
	    img->sop_instance_uid, DCM_TS_EXPLICIT_LE, "ISO_IR 192", &head,
	    &len, e) == -1)
		goto out;
	/* Pixel Data last, its length known: OW, 4-byte length. */
	for (int i = 0; i < 4; i++)
		el[8 + i] = (uint8_t)((fb * (uint64_t)img->frames) >> (8 * i));
	if ((px = malloc((size_t)fb)) == NULL) {
		err_set(e, ENOMEM, "out of memory for a frame");
		goto out;
	}
	if (write_counted(fd, head, len, &total, e) == -1 ||
	    write_counted(fd, el, sizeof el, &total, e) == -1)
		goto out;
	for (int f = 0; f < img->frames; f++) {
		mammo_frame(img, f, px);
		if (write_counted(fd, px, (size_t)fb, &total, e) == -1)
			goto out;
	}
	rc = 0;
out:
	if (written != NULL)
		*written = total;
	free(px);
	free(head);
	dcm_build_free(b);
	return rc;
}
