/*
 * transcode: the upload modes of relaysend (issue 6): send an image as
 * received ("original"), losslessly compressed ("lossless": JPEG-LS
 * lossless through CharLS, or JPEG 2000 lossless through OpenJPEG), or as
 * the production gateway does ("reduced": longest side 400 px, JPEG 2000
 * lossy about 15:1 through OpenJPEG, Lossy Image Compression attributes
 * set).
 *
 * Guarantees: the output is a valid DICOM Part 10 file with the transfer
 * syntax its pixel data is encoded in; every attribute but the pixel
 * description, the file meta information and (for "reduced") the lossy
 * compression attributes is copied unchanged; the SOP Instance UID stays
 * the same (the cloud identifies an image by it).  "lossless" decodes to
 * exactly the input's pixels.  The input is never changed.
 *
 * What each mode takes:
 * - "lossless": every frame, one fragment each after a Basic Offset
 *   Table; JPEG-LS (1.2.840.10008.1.2.4.80) for 2 to 16 Bits Stored,
 *   JPEG 2000 lossless (.4.90) for 17 to 24; MONOCHROME1/2, PALETTE
 *   COLOR, RGB and YBR_FULL (YBR_FULL_422 native input is stored as the
 *   YBR_FULL it decodes to), Planar Configuration 0 in the output.
 *   High Bit becomes Bits Stored - 1 (bits outside Bits Stored are not
 *   image data and are not kept).
 * - "reduced": single-frame images only (a multi-frame image, e.g.
 *   Breast Tomosynthesis, fails with EINVAL: "reduced mode does not take
 *   multi-frame images"); MONOCHROME1/2, RGB (written as YBR_ICT, the
 *   irreversible colour transform) and YBR_FULL; never enlarged; the
 *   ratio (0028,2112) is the measured one, uncompressed size at Bits
 *   Allocated over the encoded size, appended to earlier values when the
 *   input was already lossy; Pixel Spacing, Imager Pixel Spacing and
 *   Nominal Scanned Pixel Spacing scaled per axis; Smallest/Largest Image
 *   Pixel Value dropped (no longer exact).
 * - Neither takes Bits Allocated 1 nor more than 24 Bits Stored
 *   (EINVAL: send the original).
 * - Copied means byte for byte: text stays in its own character set
 *   (ISO 2022 and undeclared ones included); only binary values of a
 *   big endian input are swapped, the output being little endian.
 * - Dropped from the copy: group lengths, Data Set Trailing Padding,
 *   the other elements of group 7FE0 (Extended Offset Table), and a
 *   sequence holding encapsulated pixel data (an Icon Image Sequence
 *   compressed in the input's syntax, which the output's would
 *   mislabel).
 *
 * Never: prints, exits, logs.
 */
#ifndef GW_TRANSCODE_H
#define GW_TRANSCODE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum upload_mode { UPLOAD_ORIGINAL, UPLOAD_LOSSLESS, UPLOAD_REDUCED };

/* "original", "lossless", "reduced" → *m: 0, or -1 for anything else. */
int upload_mode_parse(const char *s, enum upload_mode *m);
const char *upload_mode_name(enum upload_mode m);

struct transcode_result {
	size_t in_bytes, out_bytes;
	double seconds;			/* decode + encode + write */
	char transfer_syntax[65];	/* of the output */
};

/*
 * Write the image at in, in mode m, to the new file out (created or
 * truncated, mode 0600, not fsynced: a temporary file the caller
 * removes).  Returns 0 when out was written; 1 when there is nothing to
 * do and in should be sent as it is (mode original; no pixel data;
 * "lossless" on an image already compressed other than RLE, or whose
 * lossless form would not be smaller; "reduced" on a JPEG 2000 lossy
 * image of at most 400 pixels a side): out is then not written (a
 * lossless output found no smaller is removed); -1 on failure:
 * e->code ENOMEM, ENOSPC, EIO, EMFILE (a bad moment: try again later)
 * or anything else (this image cannot be transcoded: send the original
 * and say so).
 */
int transcode_file(const char *in, const char *out, enum upload_mode m,
    struct transcode_result *r, struct err *e);

/* 1 for the uncompressed transfer syntaxes (implicit and explicit VR
 * little endian, explicit big endian, deflated), 0 for the rest. */
int transcode_is_native(const char *ts);

/*
 * For a peer that takes no compressed syntax (qrscp's C-MOVE and C-GET):
 * the image at in as a bare data set (no meta group) in ts, Explicit or
 * Implicit VR Little Endian, into *out (malloc'd).  Compressed pixel data
 * is decoded (lib/pixel) to native samples Bits Allocated wide (8, 16 or
 * 32), High Bit Bits Stored - 1, the Photometric Interpretation the
 * codec gave, Planar Configuration 0; an uncompressed input (or one
 * without pixel data) is only re-encoded, its pixels copied.  Every
 * other element is copied as "lossless" copies them.  0, or -1 with e
 * set (EINVAL, EOVERFLOW, PIXEL_E_*: this object cannot be sent
 * uncompressed; ENOMEM, EIO: a bad moment).
 */
int transcode_native(const char *in, const char *ts, uint8_t **out,
    size_t *outlen, struct err *e);

#endif
