/*
 * image: pixels: decoding a frame, rendering a preview, and the
 * transcoding of the upload modes.
 *
 * Layer 2.  The one public header of lib/image/; what its modules share
 * beyond it is static in its .c files.
 * Modules, each with its contract below: pixel, render, transcode.
 */
#ifndef GW_IMAGE_H
#define GW_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/base.h"
#include "dicom/dicom.h"

/*
 * pixel: decode one frame of a DICOM image into integer samples.
 *
 * Contract:
 * - pixel_decode() reads only the asked-for frame: native pixel data
 *   (little and big endian; deflated is inflated by lib/dicom/dicom), RLE
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

/* Bytes that frames native (uncompressed) frames of pd take. */
uint64_t pixel_native_size(const struct pixel_desc *pd, long frames);

/*
 * render: turn one frame of a DICOM image into a small 8-bit picture, the
 * way a radiologist expects to see it, and encode it (PNG, JPEG, PGM/PPM).
 *
 * Contract:
 * - Grey: Modality LUT (Rescale Slope/Intercept or Modality LUT
 *   Sequence); VOI from the chosen Window Center/Width (the first by
 *   default) with VOI LUT Function LINEAR, LINEAR_EXACT or SIGMOID, else
 *   the VOI LUT Sequence, else the minimum and maximum of the frame's
 *   values that are not Pixel Padding; MONOCHROME1 is shown inverted, as
 *   is MONOCHROME2 with Presentation LUT Shape INVERSE (a MONOCHROME1
 *   image with INVERSE is inverted once, not twice).
 * - Colour: RGB, YBR_FULL, YBR_FULL_422 (native pairs or codec output),
 *   PALETTE COLOR (16- or 8-bit LUTs), either planar configuration.
 * - Size: the longest side at most opts.size pixels, never enlarged; the
 *   aspect ratio from Pixel Spacing, Imager Pixel Spacing or Pixel Aspect
 *   Ratio; reduced by area averaging (every source pixel counts, with
 *   its exact coverage), so fine detail does not alias.
 * - Never prints or exits; the caller frees the image (render_image_free)
 *   and encoded buffers (free).
 */

#define RENDER_SIZE_DEFAULT	400

struct render_opts {
	unsigned size;		/* longest side; 0 = RENDER_SIZE_DEFAULT */
	int window;		/* Window Center/Width index, 0 = first */
	long frame;		/* 0-based; -1 = the middle frame */
	int square_pixels;	/* ignore the pixel spacing */
	int min_max;		/* ignore windows and VOI LUTs: min-max */
};

struct render_image {
	unsigned width, height;
	unsigned channels;	/* 1 grey, 3 RGB */
	uint8_t *data;		/* width * height * channels */
};

/* Decode (pixel_decode; path as there) and render the chosen frame. */
int render_dicom(const struct dcm *d, const char *path,
    const struct render_opts *o, struct render_image *im, struct err *e);

/* Render a frame already decoded from d. */
int render_frame(const struct dcm *d, const struct pixel_frame *f,
    const struct render_opts *o, struct render_image *im, struct err *e);

void render_image_free(struct render_image *im);

/* The output size for a source of columns x rows with pixel aspect
 * (row spacing / column spacing) aspect, longest side at most size. */
void render_fit(unsigned columns, unsigned rows, double aspect,
    unsigned size, unsigned *width, unsigned *height);

/* Encoders: *out malloc'd. */
int render_png(const struct render_image *im, uint8_t **out, size_t *len,
    struct err *e);
int render_jpeg(const struct render_image *im, int quality, uint8_t **out,
    size_t *len, struct err *e);
int render_pnm(const struct render_image *im, uint8_t **out, size_t *len,
    struct err *e);

/*
 * transcode: the upload modes of relaysend (issue 6): send an image as
 * received ("original"), losslessly compressed ("lossless": JPEG-LS
 * lossless through CharLS, or JPEG 2000 lossless through OpenJPEG), or as
 * the production gateway does ("reduced": longest side 400 px, JPEG 2000
 * lossy about 15:1 through OpenJPEG, Lossy Image Compression attributes
 * set; side and ratio are production's DICOM_THUMBNAIL_SIZE and
 * DICOM_COMPRESSION_RATIO, struct transcode_opts).
 *
 * Guarantees: the output is a valid DICOM Part 10 file with the transfer
 * syntax its pixel data is encoded in; every attribute but the pixel
 * description, the file meta information and (for "reduced") the lossy
 * compression attributes is copied unchanged; the SOP Instance UID stays
 * the same (the cloud identifies an image by it).  "lossless" decodes to
 * exactly the input's pixels.  The input is never changed.  Memory is
 * one frame whatever the frames (a 2 GB tomosynthesis object included):
 * frames are decoded, encoded and written one at a time, the input's
 * mapped pages dropped after each.
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
 *   Pixel Value dropped (no longer exact).  The side and ratio are
 *   transcode_opts' (TRANSCODE_REDUCED_SIDE and _RATIO by default).
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

enum transcode_mode { TRANSCODE_ORIGINAL, TRANSCODE_LOSSLESS, TRANSCODE_REDUCED };

/* "original", "lossless", "reduced" → *m: 0, or -1 for anything else. */
int transcode_mode_parse(const char *s, enum transcode_mode *m);
const char *transcode_mode_name(enum transcode_mode m);

/* "reduced": the longest side in pixels and the compression ratio (0:
 * the defaults). */
#define TRANSCODE_REDUCED_SIDE	400
#define TRANSCODE_REDUCED_RATIO	15.0

struct transcode_opts {
	unsigned reduced_side;
	double reduced_ratio;		/* above 1 */
};

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
int transcode_file(const char *in, const char *out, enum transcode_mode m,
    struct transcode_result *r, struct err *e);

/* As transcode_file(), with "reduced"'s side and ratio from o (NULL:
 * the defaults): its "at most 400 pixels a side" is o's side. */
int transcode_file_opts(const char *in, const char *out,
    enum transcode_mode m, const struct transcode_opts *o,
    struct transcode_result *r, struct err *e);

/* 1 for the uncompressed transfer syntaxes (implicit and explicit VR
 * little endian, explicit big endian, deflated), 0 for the rest. */
int transcode_is_native(const char *ts);

/*
 * For a peer that takes no compressed syntax (qrscp's C-MOVE and C-GET):
 * the image at in as a bare data set (no meta group) in ts, Explicit or
 * Implicit VR Little Endian, made a piece at a time as it is read, so
 * that memory stays one frame whatever the object's size.  Compressed
 * pixel data is decoded (lib/image/pixel) to native samples Bits
 * Allocated wide (8, 16 or 32), High Bit Bits Stored - 1, the
 * Photometric Interpretation the codec gave, Planar Configuration 0; an
 * uncompressed input (or one without pixel data) is only re-encoded, its
 * pixels copied (16-bit words swapped from big endian).  Every other
 * element is copied as "lossless" copies them.
 *
 * transcode_native_open() reads the object's elements and decodes its
 * first frame, and says in *len how many bytes the data set has; -1 with
 * e set (EINVAL, EOVERFLOW, PIXEL_E_*: this object cannot be sent
 * uncompressed; ENOMEM, EIO: a bad moment).  transcode_native_read()
 * points *p at the next bytes (at most max, valid until the next call)
 * and returns how many, 0 at the end, or -1 with e set when a later frame
 * cannot be decoded.  The shape of lib/dicomnet's struct ul_source.
 */
struct transcode_stream;

int transcode_native_open(const char *in, const char *ts,
    struct transcode_stream **out, size_t *len, struct err *e);
ssize_t transcode_native_read(struct transcode_stream *s, const uint8_t **p,
    size_t max, struct err *e);
void transcode_native_close(struct transcode_stream *s);

#endif
