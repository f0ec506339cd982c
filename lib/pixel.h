/*
 * pixel: decode one frame of a DICOM image into integer samples.
 *
 * Contract:
 * - pixel_decode() reads only the asked-for frame: native pixel data
 *   (little and big endian; deflated is inflated by lib/dicom), RLE
 *   (PS3.5 annex G), JPEG baseline 8-bit (libjpeg-turbo), JPEG-LS
 *   (CharLS), JPEG 2000 and HTJ2K (OpenJPEG) and Deflated Image Frame
 *   Compression (zlib).  JPEG lossless and 12-bit JPEG, which Debian's
 *   libjpeg-turbo cannot decode, and JPEG-LS streams CharLS refuses, go
 *   through dcmtk's dcmdjpeg / dcmdjpls as an external step when the
 *   caller gives the file's path (the whole object is then decompressed
 *   into a temporary file in $TMPDIR).
 * - The result holds one int32 per sample, interleaved (planar
 *   configuration undone), with High Bit / Bits Stored applied and signed
 *   data sign-extended.  A colour frame that a codec converted (YBR to
 *   RGB) says so in its photometric field.
 * - Every length from the file is checked against Rows x Columns x
 *   Samples x Bits Allocated; a decoded frame larger than PIXEL_MAX_BYTES
 *   is refused before anything is allocated.
 * - Never prints, never exits; the caller owns the frame and releases it
 *   with pixel_frame_free().
 */
#ifndef GW_PIXEL_H
#define GW_PIXEL_H

#include <stddef.h>
#include <stdint.h>

#include "dicom.h"
#include "err.h"

#define PIXEL_MAX_BYTES	((size_t)512 << 20)	/* decoded frame, as int32 */

/* Error codes in struct err.code from this module. */
enum {
	PIXEL_E_NO_PIXELS = 1100,	/* no (7FE0,0010): not an image */
	PIXEL_E_UNSUPPORTED,		/* a syntax or layout we cannot decode */
	PIXEL_E_CORRUPT,		/* pixel data inconsistent or damaged */
	PIXEL_E_TOO_BIG,		/* beyond PIXEL_MAX_BYTES */
};

/* The Image Pixel module of a dataset. */
struct pixel_desc {
	unsigned rows, columns, samples;
	unsigned bits_allocated, bits_stored, high_bit;
	int is_signed;			/* Pixel Representation 1 */
	int planar;			/* Planar Configuration 1 */
	long frames;			/* Number of Frames (1 when absent) */
	char photometric[32];
	char ts[65];			/* transfer syntax UID */
};

struct pixel_frame {
	struct pixel_desc desc;
	int32_t *v;			/* rows * columns * samples */
	int32_t min, max;		/* over all samples */
	size_t mapped;			/* internal: v is an mmap of this size */
	int ranged;			/* internal: min and max are set */
};

/* Read the Image Pixel module.  -1 with e set when it is absent or
 * inconsistent (PIXEL_E_NO_PIXELS without Pixel Data). */
int pixel_describe(const struct dcm *d, struct pixel_desc *pd,
    struct err *e);

/*
 * Decode frame (0-based; -1 = the middle one).  path (may be NULL) is
 * the file d was read from, for the external decompressor.  min_side > 0
 * lets JPEG (DCT scaling), JPEG 2000 (resolution levels) and native
 * 16-bit grey data (means of k x k blocks of stored values) decode at a
 * lower resolution whose longest side is still at least min_side: the
 * frame's rows/columns then say what was decoded.  JPEG 2000 is decoded
 * in a child process (fork), so that OpenJPEG's memory errors on hostile
 * input stay there: a decoder that dies fails the frame with
 * PIXEL_E_CORRUPT ("the decoder died on this image").
 */
int pixel_decode(const struct dcm *d, const char *path, long frame,
    unsigned min_side, struct pixel_frame *f, struct err *e);

void pixel_frame_free(struct pixel_frame *f);

#endif
