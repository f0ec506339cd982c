/*
 * emu: a modality's images, made up: synthetic mammograms for the
 * emulator and the tests.
 *
 * Layer 3.  The one public header of lib/emu/; what its modules share
 * beyond it is static in its .c files.
 * Modules, each with its contract below: mammo.
 */
#ifndef GW_EMU_H
#define GW_EMU_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "dicom/dicom.h"

/*
 * mammo: a synthetic screening mammogram, as a Digital Mammography X-Ray
 * Image - For Presentation dataset (PS3.3 A.26), for the modality
 * emulator and for tests.
 *
 * Contract:
 * - mammo_build() fills a lib/dicom/dicom builder with everything the IOD needs
 *   (dicom3tools' dciodvfy reports no error on a single-frame image):
 *   the worklist's patient, accession and Study Instance UID, Image
 *   Laterality, View Position and View Code Sequence, dose and exposure
 *   attributes, detector attributes, a VOI window, and 16-bit MONOCHROME2
 *   pixels (12 bits stored) showing a breast-shaped object that fades
 *   smoothly from the chest wall, on the side the laterality says.
 * - frames > 1 makes a Breast Tomosynthesis Image instead (PS3.3 A.55,
 *   SOP class MAMMO_BTO_SOP_CLASS): an enhanced multi-frame object, one
 *   reconstructed slice a frame, 1 mm apart, with the shared and
 *   per-frame functional groups and the dimensions (stack, in-stack
 *   position) the IOD requires; dciodvfy reports no error on it either.
 *   mammo_sop_class() says which class an image gets.
 * - kind asks for a class whatever the frames: a Breast Projection X-Ray
 *   Image (PS3.3 A.74, For Presentation or For Processing: enhanced
 *   mammography, one frame or more, with its acquisition, dose and
 *   geometry functional groups; dciodvfy reports no error, and warns of
 *   the empty Value 3 of Frame Type that a plain 2D view has).  The
 *   enhanced classes carry laterality only in Frame Anatomy (shared, or
 *   in every per-frame item with anatomy_per_frame) and the view only as
 *   View Code Sequence, as real ones do.
 * - mammo_write() streams a whole Part 10 file (explicit VR little
 *   endian) to a file descriptor one frame at a time: its memory is one
 *   frame and the header, whatever the frames (up to 4 GiB of pixels).
 * - Pixels are deterministic for a given seed: two calls give the same
 *   bytes.  UIDs come from dcm_uid_new() (2.25 + 128 random bits).
 * - The caller owns the builder (dcm_build_free).  Nothing here prints or
 *   exits; there is no global state.
 */

#define MAMMO_SOP_CLASS		"1.2.840.10008.5.1.4.1.1.1.2"
#define MAMMO_BTO_SOP_CLASS	"1.2.840.10008.5.1.4.1.1.13.1.3"
#define MAMMO_BPX_SOP_CLASS	"1.2.840.10008.5.1.4.1.1.13.1.4"
#define MAMMO_BPX_PROC_SOP_CLASS "1.2.840.10008.5.1.4.1.1.13.1.5"
#define MAMMO_UID_MAX		DCM_UID_MAX
#define MAMMO_SMALL_ROWS	512
#define MAMMO_SMALL_COLS	400
#define MAMMO_FULL_ROWS		3328
#define MAMMO_FULL_COLS		2560
#define MAMMO_MAX_SIDE		8192
#define MAMMO_MAX_FRAMES	256

/* What the worklist (and the exam) give every image of one exam.  Empty
 * strings are sent as empty (type 2) values. */
struct mammo_exam {
	const char *patient_name;	/* UTF-8 PN */
	const char *patient_id, *birth_date, *sex;
	const char *accession_number, *study_instance_uid, *study_id;
	const char *study_description, *requested_procedure_id;
	const char *study_date, *study_time;	/* YYYYMMDD, HHMMSS */
	const char *series_instance_uid;
	const char *mpps_sop_instance_uid;	/* "" when none */
	const char *station_name;
};

/* One of the four screening views. */
struct mammo_view {
	char laterality[2];	/* "R" or "L" */
	char position[4];	/* "CC" or "MLO" */
};

/* Which IOD an image follows. */
enum mammo_kind {
	MAMMO_KIND_AUTO = 0,		/* DX for one frame, BTO for more */
	MAMMO_KIND_DX,			/* Digital Mammography, For Presentation */
	MAMMO_KIND_BTO,			/* Breast Tomosynthesis */
	MAMMO_KIND_BPX_PRESENTATION,	/* Breast Projection X-Ray, For Pres. */
	MAMMO_KIND_BPX_PROCESSING,	/* Breast Projection X-Ray, For Proc. */
};

struct mammo_image {
	const struct mammo_exam *exam;
	struct mammo_view view;
	const char *sop_instance_uid;
	int instance_number;
	int rows, cols, frames;
	unsigned seed;		/* varies the texture */
	enum mammo_kind kind;	/* 0: by the frames */
	int anatomy_per_frame;	/* enhanced: Frame Anatomy per frame */
};

/* "RCC", "LCC", "RMLO", "LMLO" (any case) into *v. */
int mammo_view_parse(const char *name, struct mammo_view *v, struct err *e);

/* "small", "full" or "ROWSxCOLS" into rows and cols. */
int mammo_size_parse(const char *s, int *rows, int *cols, struct err *e);

/* MAMMO_SOP_CLASS for one frame, MAMMO_BTO_SOP_CLASS for more. */
const char *mammo_sop_class(int frames);

/* The SOP class of img (its kind, else by its frames). */
const char *mammo_image_sop_class(const struct mammo_image *img);

/* "bto", "bpx", "bpx-processing", "dx" (or "auto") into *k. */
int mammo_kind_parse(const char *name, enum mammo_kind *k, struct err *e);

/* A new builder holding the whole image; *out is the caller's. */
int mammo_build(const struct mammo_image *img, struct dcm_builder **out,
    struct err *e);

/* The same without Pixel Data (for mammo_write and other streams). */
int mammo_build_header(const struct mammo_image *img,
    struct dcm_builder **out, struct err *e);

/* The pixels of one frame (0-based): rows * cols 16-bit values, little
 * endian, into out (2 * rows * cols bytes). */
void mammo_frame(const struct mammo_image *img, int frame, uint8_t *out);

/* Write img as a Part 10 file to fd, frame by frame; *written (may be
 * NULL) gets the bytes written.  0, or -1 with e set. */
int mammo_write(const struct mammo_image *img, int fd, uint64_t *written,
    struct err *e);

#endif
