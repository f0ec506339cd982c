/*
 * transcode: the upload modes (see image/image.h).
 *
 * The image is decoded frame by frame with lib/image/pixel (any syntax it
 * reads), each frame encoded on its own (CharLS or OpenJPEG, in memory)
 * into one fragment of encapsulated pixel data, and the dataset rebuilt
 * with lib/dicom/dicom_write: every element of the input copied but the pixel
 * description, which is set anew.
 *
 * Memory is one frame, whatever the frames: the elements before the pixel
 * data are encoded and written first, then each frame as it is encoded
 * (the Basic Offset Table written as zeros and filled in at the end), then
 * the elements after the pixel data; the mapped input's pages are dropped
 * after each frame (dcm_release).  transcode_native_*() make their output
 * the same way, a frame at a time as the reader asks for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <charls/charls.h>
#include <openjpeg.h>

#include "dicom/dicom.h"
#include "base/base.h"
#include "image/image.h"

#define TS_JPEG_LS		"1.2.840.10008.1.2.4.80"
#define TS_J2K_LOSSLESS		"1.2.840.10008.1.2.4.90"
#define TS_J2K			"1.2.840.10008.1.2.4.91"
#define TS_RLE			"1.2.840.10008.1.2.5"


#define TAG_SOP_CLASS		DCM_TAG(0x0008, 0x0016)
#define TAG_SOP_INSTANCE	DCM_TAG(0x0008, 0x0018)
#define TAG_IMAGER_SPACING	DCM_TAG(0x0018, 0x1164)
#define TAG_NOMINAL_SPACING	DCM_TAG(0x0018, 0x2010)
#define TAG_PHOTOMETRIC		DCM_TAG(0x0028, 0x0004)
#define TAG_PLANAR		DCM_TAG(0x0028, 0x0006)
#define TAG_ROWS		DCM_TAG(0x0028, 0x0010)
#define TAG_COLUMNS		DCM_TAG(0x0028, 0x0011)
#define TAG_SPACING		DCM_TAG(0x0028, 0x0030)
#define TAG_HIGH_BIT		DCM_TAG(0x0028, 0x0102)
#define TAG_SMALLEST		DCM_TAG(0x0028, 0x0106)
#define TAG_LARGEST		DCM_TAG(0x0028, 0x0107)
#define TAG_LOSSY		DCM_TAG(0x0028, 0x2110)
#define TAG_LOSSY_RATIO		DCM_TAG(0x0028, 0x2112)
#define TAG_LOSSY_METHOD	DCM_TAG(0x0028, 0x2114)
#define TAG_PIXEL_DATA		DCM_TAG(0x7fe0, 0x0010)
#define TAG_TRAILING_PAD	DCM_TAG(0xfffc, 0xfffc)

static const char *const mode_names[] = { "original", "lossless", "reduced" };

int
transcode_mode_parse(const char *s, enum transcode_mode *m)
{
	for (int i = 0; i < 3; i++) {
		if (s != NULL && strcmp(s, mode_names[i]) == 0) {
			*m = (enum transcode_mode)i;
			return 0;
		}
	}
	return -1;
}

const char *
transcode_mode_name(enum transcode_mode m)
{
	return (unsigned)m < 3 ? mode_names[m] : "unknown";
}

/* One transcoding: the input, what is decided about the output, and the
 * frame just encoded. */
struct job {
	const char *path;
	enum transcode_mode mode;
	unsigned side;			/* "reduced": longest side, pixels */
	double ratio;			/* "reduced": against Bits Allocated */
	struct dcm *d;
	struct pixel_desc pd;		/* the input's */
	unsigned rows, columns;		/* of the output */
	char photometric[32];		/* of the output */
	const char *ts;			/* of the output */
	uint8_t *coded;			/* the frame just encoded (malloc'd) */
	size_t coded_len;
	size_t raw_bytes;		/* uncompressed size of the output */
	size_t coded_bytes;		/* of the frames encoded so far */
	size_t out_bytes;		/* of the file written */
	int keep_pixels;		/* native input: copied as it is */
};

static void
job_free(struct job *j)
{
	free(j->coded);
	j->coded = NULL;
	dcm_free(j->d);
	j->d = NULL;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int
transcode_is_native(const char *ts)
{
	return strcmp(ts, DCM_TS_IMPLICIT_LE) == 0 ||
	    strcmp(ts, DCM_TS_EXPLICIT_LE) == 0 ||
	    strcmp(ts, DCM_TS_EXPLICIT_BE) == 0 ||
	    strcmp(ts, DCM_TS_DEFLATED_LE) == 0;
}

/*
 * Nothing to do for this input?  "lossless" takes native and RLE input
 * only: an image already compressed (JPEG-LS, JPEG 2000, or lossy) goes
 * as it is, since decompressing a lossy image to store it losslessly
 * only makes it bigger.  "reduced" leaves an image that is already
 * JPEG 2000 lossy and small enough.
 */
static int
already_done(const struct job *j)
{
	const char *ts = j->pd.ts;
	unsigned longest = j->pd.rows > j->pd.columns ? j->pd.rows :
	    j->pd.columns;

	if (j->mode == TRANSCODE_LOSSLESS)
		return !transcode_is_native(ts) && strcmp(ts, TS_RLE) != 0;
	return strcmp(ts, TS_J2K) == 0 && longest <= j->side;
}

/* What the chosen mode can take: checked before anything is decoded. */
static int
check_layout(const struct job *j, struct err *e)
{
	const struct pixel_desc *pd = &j->pd;

	if (pd->bits_allocated == 1 || pd->bits_stored > 24)
		return err_set(e, EINVAL, "%s mode does not take %u-bit "
		    "images", transcode_mode_name(j->mode), pd->bits_stored);
	if (j->mode != TRANSCODE_REDUCED)
		return 0;
	if (pd->frames > 1)
		return err_set(e, EINVAL, "reduced mode does not take "
		    "multi-frame images (%ld frames)", pd->frames);
	if (strcmp(pd->photometric, "PALETTE COLOR") == 0)
		return err_set(e, EINVAL, "reduced mode does not take "
		    "PALETTE COLOR images");
	return 0;
}

/* The colour models the output can carry (after decoding: a codec may
 * have turned YBR into RGB). */
static int
check_photometric(const struct job *j, const char *p, struct err *e)
{
	static const char *const ok[] = { "MONOCHROME1", "MONOCHROME2",
	    "PALETTE COLOR", "RGB", "YBR_FULL", NULL };

	for (int i = 0; ok[i] != NULL; i++)
		if (strcmp(p, ok[i]) == 0)
			return 0;
	return err_set(e, EINVAL, "%s mode does not take Photometric "
	    "Interpretation %s", transcode_mode_name(j->mode), p);
}

/* --- encoded frames --- */

/* The frame just encoded becomes j->coded (the one before is gone). */
static int
set_frame(struct job *j, uint8_t *data, size_t len, struct err *e)
{
	if (len > UINT32_MAX - 1) {
		free(data);
		return err_set(e, EOVERFLOW, "encoded frame over 4 GiB");
	}
	free(j->coded);
	j->coded = data;
	j->coded_len = len;
	j->coded_bytes += len;
	return 0;
}

static uint32_t
sample_mask(unsigned bits)
{
	return bits >= 32 ? 0xffffffffu : (1u << bits) - 1;
}

/*
 * The frame's samples, masked, as bytes-wide little endian values packed
 * into the frame's own memory, which holds nothing else afterwards:
 * sample i is read before anything is written where it was, and written
 * at or before it, so no second frame-sized buffer is needed (a
 * full-size frame as int32 is 34 MB).
 */
static uint8_t *
pack_in_place(struct pixel_frame *f, size_t bytes, uint32_t mask)
{
	const struct pixel_desc *pd = &f->desc;
	size_t n = (size_t)pd->rows * pd->columns * pd->samples;
	uint8_t *out = (uint8_t *)f->v;

	for (size_t i = 0; i < n; i++) {
		uint32_t v = (uint32_t)f->v[i] & mask;

		for (size_t k = 0; k < bytes; k++)
			out[i * bytes + k] = (uint8_t)(v >> (8 * k));
	}
	return out;
}

/* One JPEG-LS encoding of src into dst (cap bytes); the bytes written
 * in *len.  With dst NULL, only the encoder's estimate of the size in
 * *len. */
static charls_jpegls_errc
jls_encode_into(const charls_frame_info *fi, const uint8_t *src,
    size_t srclen, uint8_t *dst, size_t cap, size_t *len)
{
	charls_jpegls_encoder *enc = charls_jpegls_encoder_create();
	charls_jpegls_errc rc;

	if (enc == NULL)
		return CHARLS_JPEGLS_ERRC_NOT_ENOUGH_MEMORY;
	if ((rc = charls_jpegls_encoder_set_frame_info(enc, fi)) == 0 &&
	    (rc = charls_jpegls_encoder_set_interleave_mode(enc,
	    fi->component_count > 1 ? CHARLS_INTERLEAVE_MODE_SAMPLE :
	    CHARLS_INTERLEAVE_MODE_NONE)) == 0 &&
	    (rc = charls_jpegls_encoder_set_near_lossless(enc, 0)) == 0) {
		if (dst == NULL)
			rc = charls_jpegls_encoder_get_estimated_destination_size(
			    enc, len);
		else if ((rc = charls_jpegls_encoder_set_destination_buffer(enc,
		    dst, cap)) == 0 &&
		    (rc = charls_jpegls_encoder_encode_from_buffer(enc, src,
		    srclen, 0)) == 0)
			rc = charls_jpegls_encoder_get_bytes_written(enc, len);
	}
	charls_jpegls_encoder_destroy(enc);
	return rc;
}

/*
 * JPEG-LS lossless through CharLS: samples as bits_stored-bit unsigned
 * patterns (signed data in two's complement, as PS3.5 8.2.3 has it).
 * The frame is used up: its samples are packed in place into the front
 * of its memory, and the stream is encoded into the back of it (half a
 * 16-bit frame as int32), then copied out at its real size; only noise
 * that does not compress takes a buffer of the encoder's estimate.
 */
static int
encode_jls(struct pixel_frame *f, unsigned bits, uint8_t **out,
    size_t *outlen, struct err *e)
{
	const struct pixel_desc *pd = &f->desc;
	size_t n = (size_t)pd->rows * pd->columns * pd->samples;
	size_t unit = bits > 8 ? 2 : 1, cap = 0, len = 0;
	charls_frame_info fi = { pd->columns, pd->rows, (int32_t)bits,
	    (int32_t)pd->samples };
	charls_jpegls_errc rc;
	uint8_t *src = pack_in_place(f, unit, sample_mask(bits));
	uint8_t *spare = src + n * unit, *dst = NULL;

	rc = jls_encode_into(&fi, src, n * unit, spare,
	    n * sizeof *f->v - n * unit, &len);
	if (rc == CHARLS_JPEGLS_ERRC_DESTINATION_BUFFER_TOO_SMALL &&
	    (rc = jls_encode_into(&fi, NULL, 0, NULL, 0, &cap)) == 0) {
		if ((dst = malloc(cap)) == NULL)
			rc = CHARLS_JPEGLS_ERRC_NOT_ENOUGH_MEMORY;
		else
			rc = jls_encode_into(&fi, src, n * unit, dst, cap,
			    &len);
	}
	if (rc == 0 && dst == NULL) {
		if ((dst = malloc(len ? len : 1)) == NULL)
			rc = CHARLS_JPEGLS_ERRC_NOT_ENOUGH_MEMORY;
		else
			memcpy(dst, spare, len);
	}
	if (rc == CHARLS_JPEGLS_ERRC_DESTINATION_BUFFER_TOO_SMALL) {
		free(dst);	/* past even the estimate: noise */
		return err_set(e, EFBIG, "JPEG-LS output is larger than the "
		    "samples: no gain");
	}
	if (rc != 0) {
		free(dst);
		return err_set(e, rc == CHARLS_JPEGLS_ERRC_NOT_ENOUGH_MEMORY ?
		    ENOMEM : EINVAL, "JPEG-LS encoder: %s",
		    charls_get_error_message(rc));
	}
	*out = dst;
	*outlen = len;
	return 0;
}

/* JPEG 2000 through OpenJPEG, into memory. */

struct j2k_sink {
	uint8_t *p;
	size_t len, cap, pos;
	int failed;
	char msg[256];
};

static int
sink_reserve(struct j2k_sink *s, size_t end)
{
	size_t ncap = s->cap ? s->cap : 1 << 16;
	uint8_t *np;

	if (end <= s->cap)
		return 0;
	while (ncap < end) {
		if (ncap > SIZE_MAX / 2)
			return -1;
		ncap *= 2;
	}
	if ((np = realloc(s->p, ncap)) == NULL)
		return -1;
	memset(np + s->cap, 0, ncap - s->cap);
	s->p = np;
	s->cap = ncap;
	return 0;
}

static OPJ_SIZE_T
j2k_write(void *buf, OPJ_SIZE_T n, void *u)
{
	struct j2k_sink *s = u;

	if (n > SIZE_MAX - s->pos || sink_reserve(s, s->pos + n) == -1) {
		s->failed = 1;
		return (OPJ_SIZE_T)-1;
	}
	memcpy(s->p + s->pos, buf, n);
	s->pos += n;
	if (s->pos > s->len)
		s->len = s->pos;
	return n;
}

static OPJ_BOOL
j2k_seek(OPJ_OFF_T n, void *u)
{
	struct j2k_sink *s = u;

	if (n < 0 || sink_reserve(s, (size_t)n) == -1)
		return OPJ_FALSE;
	s->pos = (size_t)n;
	if (s->pos > s->len)
		s->len = s->pos;
	return OPJ_TRUE;
}

static OPJ_OFF_T
j2k_skip(OPJ_OFF_T n, void *u)
{
	struct j2k_sink *s = u;

	if (n < 0 || (OPJ_OFF_T)s->pos + n < 0 ||
	    !j2k_seek((OPJ_OFF_T)s->pos + n, u))
		return -1;
	return n;
}

static void
j2k_on_error(const char *msg, void *u)
{
	struct j2k_sink *s = u;

	if (s->msg[0] == '\0')
		snprintf(s->msg, sizeof s->msg, "%.*s", (int)strcspn(msg, "\n"),
		    msg);
}

static void
j2k_quiet(const char *msg, void *u)
{
	(void)msg;
	(void)u;
}

/* Resolution levels: the smallest side must span 2^(levels-1) pixels. */
static int
j2k_levels(unsigned w, unsigned h)
{
	unsigned side = w < h ? w : h;
	int n = 1;

	while (n < 6 && (side >> n) >= 1)
		n++;
	return n;
}

static opj_image_t *
j2k_image(const struct pixel_frame *f, unsigned bits)
{
	const struct pixel_desc *pd = &f->desc;
	opj_image_cmptparm_t cp[3];
	size_t np = (size_t)pd->rows * pd->columns;
	opj_image_t *im;

	memset(cp, 0, sizeof cp);
	for (unsigned c = 0; c < pd->samples; c++) {
		cp[c].dx = cp[c].dy = 1;
		cp[c].w = pd->columns;
		cp[c].h = pd->rows;
		cp[c].prec = bits;
		cp[c].sgnd = (OPJ_UINT32)pd->is_signed;
	}
	im = opj_image_create(pd->samples, cp, pd->samples == 3 ?
	    OPJ_CLRSPC_SRGB : OPJ_CLRSPC_GRAY);
	if (im == NULL)
		return NULL;
	im->x0 = im->y0 = 0;
	im->x1 = pd->columns;
	im->y1 = pd->rows;
	for (unsigned c = 0; c < pd->samples; c++)
		for (size_t i = 0; i < np; i++)
			im->comps[c].data[i] = f->v[i * pd->samples + c];
	return im;
}

/*
 * rate 0: lossless (5-3 wavelet, no colour transform).  Otherwise lossy
 * (9-7 wavelet) at about rate:1 against Bits Allocated, mct set for the
 * irreversible colour transform (YBR_ICT).
 */
static int
encode_j2k(const struct pixel_frame *f, unsigned bits, unsigned allocated,
    double rate, int mct, uint8_t **out, size_t *outlen, struct err *e)
{
	struct j2k_sink sink;
	opj_cparameters_t par;
	opj_codec_t *codec = opj_create_compress(OPJ_CODEC_J2K);
	opj_stream_t *st = opj_stream_create(1 << 20, OPJ_FALSE);
	opj_image_t *im = j2k_image(f, bits);
	int rc = -1;

	memset(&sink, 0, sizeof sink);
	if (codec == NULL || st == NULL || im == NULL) {
		err_set(e, ENOMEM, "OpenJPEG: cannot create an encoder");
		goto out;
	}
	opj_set_default_encoder_parameters(&par);
	par.tcp_numlayers = 1;
	par.cp_disto_alloc = 1;
	/* OpenJPEG counts rates against the precision, not the 16 bits */
	par.tcp_rates[0] = rate > 0 ? (float)(rate * bits / allocated) : 0;
	par.irreversible = rate > 0;
	par.tcp_mct = (char)mct;
	par.numresolution = j2k_levels(f->desc.columns, f->desc.rows);
	opj_stream_set_user_data(st, &sink, NULL);
	opj_stream_set_write_function(st, j2k_write);
	opj_stream_set_skip_function(st, j2k_skip);
	opj_stream_set_seek_function(st, j2k_seek);
	opj_set_error_handler(codec, j2k_on_error, &sink);
	opj_set_warning_handler(codec, j2k_quiet, NULL);
	opj_set_info_handler(codec, j2k_quiet, NULL);
	if (!opj_setup_encoder(codec, &par, im) ||
	    !opj_start_compress(codec, im, st) || !opj_encode(codec, st) ||
	    !opj_end_compress(codec, st)) {
		err_set(e, sink.failed ? ENOMEM : EINVAL, "JPEG 2000 encoder: "
		    "%s", sink.failed ? "out of memory" : sink.msg[0] ?
		    sink.msg : "failed");
		goto out;
	}
	*out = sink.p;
	*outlen = sink.len;
	sink.p = NULL;
	rc = 0;
out:
	free(sink.p);
	if (im != NULL)
		opj_image_destroy(im);
	if (st != NULL)
		opj_stream_destroy(st);
	if (codec != NULL)
		opj_destroy_codec(codec);
	return rc;
}

/* --- area averaging ("reduced") --- */

/*
 * Source pixel i of an axis of n pixels reduced to m covers [i, i+1) in
 * source units; output cell o covers [o*n/m, (o+1)*n/m).  With n >= m a
 * source pixel meets at most two cells: the first (*cell) with weight
 * *w0, the next with 1 - *w0.
 */
static void
axis_split(unsigned i, unsigned n, unsigned m, unsigned *cell, double *w0)
{
	double r = (double)n / m, end;
	unsigned o = (unsigned)floor(i / r);

	if (o >= m)
		o = m - 1;
	end = (o + 1) * r;
	*cell = o;
	*w0 = end >= i + 1 || o + 1 >= m ? 1 : end - i;
}

/* Reduce f into g (columns x rows), every source pixel counted with its
 * exact coverage; results rounded and kept in the stored range. */
static int
area_average(const struct pixel_frame *f, unsigned columns, unsigned rows,
    struct pixel_frame *g, struct err *e)
{
	const struct pixel_desc *pd = &f->desc;
	unsigned s = pd->samples;
	size_t nout = (size_t)columns * rows * s;
	double *acc = calloc(nout ? nout : 1, sizeof *acc);
	double area = (double)pd->columns / columns * pd->rows / rows;

	memset(g, 0, sizeof *g);
	if (columns > pd->columns || rows > pd->rows || columns == 0 ||
	    rows == 0) {
		free(acc);
		return err_set(e, EINVAL, "cannot reduce %ux%u to %ux%u",
		    pd->columns, pd->rows, columns, rows);
	}
	g->desc = *pd;
	g->desc.columns = columns;
	g->desc.rows = rows;
	g->v = malloc((nout ? nout : 1) * sizeof *g->v);
	if (acc == NULL || g->v == NULL) {
		free(acc);
		free(g->v);
		g->v = NULL;
		return err_sys(e, "reducing to %ux%u", columns, rows);
	}
	for (unsigned y = 0; y < pd->rows; y++) {
		unsigned oy, ox;
		double wy, wx;

		axis_split(y, pd->rows, rows, &oy, &wy);
		for (unsigned x = 0; x < pd->columns; x++) {
			axis_split(x, pd->columns, columns, &ox, &wx);
			for (unsigned c = 0; c < s; c++) {
				double v = f->v[((size_t)y * pd->columns + x)
				    * s + c];
				double *a = acc + ((size_t)oy * columns + ox)
				    * s + c;
				a[0] += v * wy * wx;
				if (wx < 1)
					a[s] += v * wy * (1 - wx);
				if (wy < 1) {
					a[(size_t)columns * s] += v * (1 - wy)
					    * wx;
					if (wx < 1)
						a[((size_t)columns + 1) * s] +=
						    v * (1 - wy) * (1 - wx);
				}
			}
		}
	}
	double lo = pd->is_signed ? -ldexp(1, (int)pd->bits_stored - 1) : 0;
	double hi = pd->is_signed ? ldexp(1, (int)pd->bits_stored - 1) - 1 :
	    ldexp(1, (int)pd->bits_stored) - 1;
	for (size_t i = 0; i < nout; i++) {
		double v = round(acc[i] / area);
		g->v[i] = (int32_t)(v < lo ? lo : v > hi ? hi : v);
	}
	free(acc);
	return 0;
}

/* --- one frame --- */

/* Encode frame f (used up: JPEG-LS packs it in place). */
static int
encode_frame(struct job *j, struct pixel_frame *f, struct err *e)
{
	const struct pixel_desc *pd = &f->desc;
	unsigned bits = pd->bits_stored;
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	if (j->mode == TRANSCODE_REDUCED)
		rc = encode_j2k(f, bits, pd->bits_allocated, j->ratio,
		    strcmp(j->photometric, "YBR_ICT") == 0, &data, &len, e);
	else if (strcmp(j->ts, TS_JPEG_LS) == 0)
		rc = encode_jls(f, bits, &data, &len, e);
	else
		rc = encode_j2k(f, bits, pd->bits_allocated, 0, 0, &data,
		    &len, e);
	if (rc == -1)
		return -1;
	return set_frame(j, data, len, e);
}

/* The output's geometry, colour model and syntax, from the first frame
 * as decoded. */
static int
plan_output(struct job *j, const struct pixel_frame *f, struct err *e)
{
	const struct pixel_desc *fd = &f->desc;
	unsigned bits = j->pd.bits_stored;

	if (check_photometric(j, fd->photometric, e) == -1)
		return -1;
	snprintf(j->photometric, sizeof j->photometric, "%s",
	    fd->photometric);
	j->columns = j->pd.columns;
	j->rows = j->pd.rows;
	if (j->mode == TRANSCODE_REDUCED) {
		render_fit(j->pd.columns, j->pd.rows, 1.0, j->side,
		    &j->columns, &j->rows);
		j->ts = TS_J2K;
		if (strcmp(fd->photometric, "RGB") == 0)
			snprintf(j->photometric, sizeof j->photometric,
			    "YBR_ICT");
	} else
		j->ts = bits >= 2 && bits <= 16 ? TS_JPEG_LS : TS_J2K_LOSSLESS;
	j->raw_bytes = (size_t)j->rows * j->columns * j->pd.samples *
	    (j->pd.bits_allocated / 8) * (size_t)j->pd.frames;
	return 0;
}

static int
do_frame(struct job *j, long i, struct err *e)
{
	struct pixel_frame f, g;
	unsigned min_side = j->mode == TRANSCODE_REDUCED ? j->side : 0;
	int rc;

	memset(&f, 0, sizeof f);
	rc = pixel_decode(j->d, j->path, i, min_side, &f, e);
	dcm_release(j->d);	/* the frame's pages of the input */
	if (rc == -1)
		return err_wrap(e, "frame %ld", i + 1);
	if (i == 0 && plan_output(j, &f, e) == -1) {
		pixel_frame_free(&f);
		return -1;
	}
	if (j->mode == TRANSCODE_REDUCED && (f.desc.columns != j->columns ||
	    f.desc.rows != j->rows)) {
		rc = area_average(&f, j->columns, j->rows, &g, e);
		pixel_frame_free(&f);
		if (rc == -1)
			return -1;
		rc = encode_frame(j, &g, e);
		free(g.v);
		return rc;
	}
	rc = encode_frame(j, &f, e);
	pixel_frame_free(&f);
	return rc;
}

/* --- the dataset --- */

/* Elements not copied: the meta group, group lengths, what pixel data
 * and its description become, trailing padding. */
static int
skip_element(const struct job *j, uint32_t tag)
{
	if (j->keep_pixels)
		return DCM_GROUP(tag) == 0x0002 || DCM_ELEMENT(tag) == 0;
	if (DCM_GROUP(tag) == 0x0002 || DCM_ELEMENT(tag) == 0 ||
	    DCM_GROUP(tag) == 0x7fe0 || tag == TAG_TRAILING_PAD ||
	    tag == TAG_PLANAR)
		return 1;
	return j->mode == TRANSCODE_REDUCED && (tag == TAG_SMALLEST ||
	    tag == TAG_LARGEST);
}

/* A sequence holding encapsulated pixel data (an icon, compressed in
 * the input's syntax, which the output's would mislabel). */
static int
holds_encapsulated(const struct dcm *d, const struct dcm_elem *el)
{
	if (strcmp(el->vr, "SQ") != 0)
		return el->value == NULL && el->length == 0xffffffffu;
	for (size_t i = 0; i < dcm_item_count(d, el); i++) {
		const struct dcm_item *it = dcm_item_at(d, el, i);

		for (size_t k = 0; k < dcm_elem_count(d, it); k++)
			if (holds_encapsulated(d, dcm_elem_at(d, it, k)))
				return 1;
	}
	return 0;
}

/* Multi-byte binary VRs: their bytes are swapped from big endian. */
static int
vr_swaps(const char *vr)
{
	static const char *const vrs[] = { "AT", "FD", "FL", "OD", "OF",
	    "OL", "OV", "OW", "SL", "SS", "SV", "UL", "US", "UV", NULL };

	for (int i = 0; vrs[i] != NULL; i++)
		if (strcmp(vr, vrs[i]) == 0)
			return 1;
	return 0;
}

/*
 * Copy el as it is: text byte for byte in its own character set (no
 * round trip through UTF-8, which would turn undeclared or ISO 2022
 * characters into '?'), binary values swapped to little endian.  A US
 * or SS value too long for explicit VR's 16-bit length (LUT Data read
 * from implicit VR) becomes OW.
 */
static int
copy_raw(struct dcm_builder *b, const struct dcm *d,
    const struct dcm_elem *el, struct err *e)
{
	const char *vr = el->vr;

	if (strcmp(vr, "SQ") == 0) {
		if (dcm_build_sequence_begin(b, el->tag, e) == -1)
			return -1;
		for (size_t i = 0; i < dcm_item_count(d, el); i++) {
			const struct dcm_item *it = dcm_item_at(d, el, i);

			if (dcm_build_item_begin(b, e) == -1)
				return -1;
			for (size_t k = 0; k < dcm_elem_count(d, it); k++)
				if (copy_raw(b, d, dcm_elem_at(d, it, k), e)
				    == -1)
					return -1;
			if (dcm_build_item_end(b, e) == -1)
				return -1;
		}
		return dcm_build_sequence_end(b, e);
	}
	if (el->length == 0)
		return dcm_build_empty(b, el->tag, vr, e);
	if (el->big_endian && vr_swaps(vr))
		return dcm_build_copy(b, d, el, e);
	if (el->value == NULL || el->length == 0xffffffffu)
		return dcm_build_copy(b, d, el, e);	/* says why not */
	if ((strcmp(vr, "US") == 0 || strcmp(vr, "SS") == 0) &&
	    el->length > 0xffff)
		vr = "OW";
	return dcm_build_bytes(b, el->tag, vr, el->value, el->length, e);
}

/* The top-level elements with tags in [lo, hi): those before the pixel
 * data go before it in the output, those after (digital signatures),
 * after it. */
static int
copy_elements(const struct job *j, struct dcm_builder *b, uint32_t lo,
    uint32_t hi, struct err *e)
{
	size_t n = dcm_elem_count(j->d, NULL);

	for (size_t i = 0; i < n; i++) {
		const struct dcm_elem *el = dcm_elem_at(j->d, NULL, i);

		if (el->tag < lo || el->tag >= hi ||
		    (j->keep_pixels && el->tag == TAG_PIXEL_DATA) ||
		    skip_element(j, el->tag) ||
		    (strcmp(el->vr, "SQ") == 0 && holds_encapsulated(j->d, el)))
			continue;
		if (copy_raw(b, j->d, el, e) == -1)
			return -1;
	}
	return 0;
}

/* The element's raw text (trimmed), or "" when absent. */
static void
raw_text(const struct dcm *d, uint32_t tag, char *out, size_t outsz)
{
	const struct dcm_elem *el = dcm_find(d, NULL, tag);
	size_t n = 0;

	if (el != NULL && el->value != NULL && el->length != 0xffffffffu)
		n = el->length < outsz - 1 ? el->length : outsz - 1;
	if (n > 0)
		memcpy(out, el->value, n);
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\0'))
		n--;
	out[n] = '\0';
}

/* Append value to a multi-valued text element's earlier values (when
 * the image was lossy compressed before, PS3.3 C.7.6.1.1.5). */
static int
put_history(const struct job *j, struct dcm_builder *b, uint32_t tag,
    const char *value, int was_lossy, struct err *e)
{
	char old[256], v[300];

	raw_text(j->d, tag, old, sizeof old);
	if (was_lossy && old[0] != '\0')
		snprintf(v, sizeof v, "%s\\%s", old, value);
	else
		snprintf(v, sizeof v, "%s", value);
	return dcm_build_string(b, tag, NULL, v, e);
}

static int
put_lossy(const struct job *j, struct dcm_builder *b, struct err *e)
{
	char lossy[16], ratio[32];
	int was_lossy;

	raw_text(j->d, TAG_LOSSY, lossy, sizeof lossy);
	was_lossy = strcmp(lossy, "01") == 0;
	snprintf(ratio, sizeof ratio, "%.2f", j->coded_bytes ?
	    (double)j->raw_bytes / j->coded_bytes : 0.0);
	if (dcm_build_string(b, TAG_LOSSY, NULL, "01", e) == -1 ||
	    put_history(j, b, TAG_LOSSY_RATIO, ratio, was_lossy, e) == -1 ||
	    put_history(j, b, TAG_LOSSY_METHOD, "ISO_15444_1", was_lossy,
	    e) == -1)
		return -1;
	return 0;
}

/* Pixel Spacing and its kin, scaled by the reduction (row spacing first,
 * then column spacing, PS3.3 10.7.1.3). */
static int
put_spacing(const struct job *j, struct dcm_builder *b, uint32_t tag,
    struct err *e)
{
	double sr, sc;
	char v[64];

	if (dcm_get_double(j->d, NULL, tag, 0, &sr, NULL) == -1 ||
	    dcm_get_double(j->d, NULL, tag, 1, &sc, NULL) == -1)
		return 0;	/* absent or not a pair: left as it was */
	sr *= (double)j->pd.rows / j->rows;
	sc *= (double)j->pd.columns / j->columns;
	snprintf(v, sizeof v, "%.8g\\%.8g", sr, sc);
	return dcm_build_string(b, tag, "DS", v, e);
}

static int
put_pixel_module(const struct job *j, struct dcm_builder *b, struct err *e)
{
	if (dcm_build_u16(b, TAG_ROWS, (uint16_t)j->rows, e) == -1 ||
	    dcm_build_u16(b, TAG_COLUMNS, (uint16_t)j->columns, e) == -1 ||
	    dcm_build_u16(b, TAG_HIGH_BIT, (uint16_t)(j->pd.bits_stored - 1),
	    e) == -1 ||
	    dcm_build_string(b, TAG_PHOTOMETRIC, "CS", j->photometric,
	    e) == -1 ||
	    (j->pd.samples > 1 && dcm_build_u16(b, TAG_PLANAR, 0, e) == -1))
		return -1;
	if (j->mode != TRANSCODE_REDUCED)
		return 0;
	if (put_lossy(j, b, e) == -1)
		return -1;
	if (j->rows == j->pd.rows && j->columns == j->pd.columns)
		return 0;
	if (
	    put_spacing(j, b, TAG_SPACING, e) == -1 ||
	    put_spacing(j, b, TAG_IMAGER_SPACING, e) == -1 ||
	    put_spacing(j, b, TAG_NOMINAL_SPACING, e) == -1)
		return -1;
	return 0;
}


/* --- the output, a piece at a time --- */

/* Encode b as a Part 10 file (meta) or a bare data set (!file) in ts. */
static int
encode_part(const struct job *j, struct dcm_builder *b, int file,
    const char *ts, uint8_t **out, size_t *len, struct err *e)
{
	char sop_class[DCM_UID_MAX], sop_instance[DCM_UID_MAX];

	if (!file)
		return dcm_build_encode(b, ts, NULL, out, len, e);
	if (dcm_get_string(j->d, NULL, TAG_SOP_CLASS, 0, sop_class,
	    sizeof sop_class, NULL) < 1 ||
	    dcm_get_string(j->d, NULL, TAG_SOP_INSTANCE, 0, sop_instance,
	    sizeof sop_instance, NULL) < 1)
		return err_set(e, EINVAL, "no SOP Class or SOP Instance UID");
	return dcm_build_encode_file(b, sop_class, sop_instance, ts, NULL,
	    out, len, e);
}

/*
 * The output's elements on one side of the pixel data, encoded: before
 * it (head, with the pixel description native() or the encoder's puts),
 * or after it (!head).
 */
static int
encode_elements(const struct job *j, int head, int file, const char *ts,
    int (*describe)(const struct job *, struct dcm_builder *, struct err *),
    uint8_t **out, size_t *len, struct err *e)
{
	struct dcm_builder *b = dcm_build_new();
	int rc;

	*out = NULL;
	*len = 0;
	if (b == NULL)
		return err_set(e, ENOMEM, "out of memory building a dataset");
	rc = head ? copy_elements(j, b, 0, TAG_PIXEL_DATA, e) :
	    copy_elements(j, b, TAG_PIXEL_DATA + 1, UINT32_MAX, e);
	if (rc == 0 && head && describe != NULL)
		rc = describe(j, b, e);
	if (rc == 0)
		rc = encode_part(j, b, file, ts, out, len, e);
	dcm_build_free(b);
	return rc;
}

/* The file being written, and where its offset table waits. */
struct writer {
	const char *path;
	int fd;
	size_t bytes;
	size_t bot_at;			/* the offset table's values */
	uint32_t *offsets;		/* of each frame's item */
	long nframes;
};

static int
put_bytes(struct writer *w, const void *p, size_t n, struct err *e)
{
	if (fs_write_all(w->fd, p, n, e) == -1)
		return -1;
	w->bytes += n;
	return 0;
}

/* The head, the Pixel Data element and its offset table (zeros). */
static int
write_head(struct job *j, struct writer *w, struct err *e)
{
	static const uint8_t zeros[1024];
	uint8_t *head, h[12];
	size_t len, n, left;
	int rc;

	if ((size_t)j->pd.frames > (UINT32_MAX - 16) / 4)
		return err_set(e, EOVERFLOW, "%ld frames: the offset table "
		    "cannot hold them", j->pd.frames);
	if ((w->offsets = calloc((size_t)j->pd.frames, sizeof *w->offsets))
	    == NULL)
		return err_set(e, ENOMEM, "out of memory for %ld frames",
		    j->pd.frames);
	if (encode_elements(j, 1, 1, j->ts, put_pixel_module, &head, &len,
	    e) == -1)
		return -1;
	rc = put_bytes(w, head, len, e);
	free(head);
	n = dcm_build_header(h, TAG_PIXEL_DATA, "OB", 0xffffffffu, 1);
	if (rc == -1 || put_bytes(w, h, n, e) == -1)
		return -1;
	n = dcm_build_header(h, DCM_TAG(0xfffe, 0xe000), NULL,
	    (uint32_t)(4 * j->pd.frames), 1);
	if (put_bytes(w, h, n, e) == -1)
		return -1;
	w->bot_at = w->bytes;
	for (left = 4 * (size_t)j->pd.frames; left > 0; left -= n) {
		n = left < sizeof zeros ? left : sizeof zeros;
		if (put_bytes(w, zeros, n, e) == -1)
			return -1;
	}
	return 0;
}

/* Frame i, just encoded, as one fragment (padded to even length). */
static int
write_frame(struct job *j, struct writer *w, long i, struct err *e)
{
	uint32_t len = (uint32_t)j->coded_len + (j->coded_len & 1);
	uint8_t h[12];
	size_t n = dcm_build_header(h, DCM_TAG(0xfffe, 0xe000), NULL, len, 1);
	size_t offset = w->bytes - (w->bot_at + 4 * (size_t)j->pd.frames);

	if (offset > UINT32_MAX - 8 - len)
		return err_set(e, EOVERFLOW, "encapsulated pixel data over "
		    "4 GiB: the offset table cannot address it");
	w->offsets[i] = (uint32_t)offset;
	if (put_bytes(w, h, n, e) == -1 ||
	    put_bytes(w, j->coded, j->coded_len, e) == -1 ||
	    ((j->coded_len & 1) && put_bytes(w, "", 1, e) == -1))
		return -1;
	free(j->coded);
	j->coded = NULL;
	return 0;
}

/* The sequence delimiter, the elements after the pixel data, and the
 * offset table's values. */
static int
write_end(struct job *j, struct writer *w, struct err *e)
{
	uint8_t h[12], *tail, le[4];
	size_t n = dcm_build_header(h, DCM_TAG(0xfffe, 0xe0dd), NULL, 0, 1);
	size_t len;
	int rc;

	if (put_bytes(w, h, n, e) == -1 ||
	    encode_elements(j, 0, 0, j->ts, NULL, &tail, &len, e) == -1)
		return -1;
	rc = put_bytes(w, tail, len, e);
	free(tail);
	for (long i = 0; rc == 0 && i < j->pd.frames; i++) {
		for (int k = 0; k < 4; k++)
			le[k] = (uint8_t)(w->offsets[i] >> (8 * k));
		if (pwrite(w->fd, le, 4, (off_t)(w->bot_at + 4 * (size_t)i))
		    != 4)
			rc = err_sys(e, "write %s", w->path);
	}
	return rc;
}

static int
writer_open(struct writer *w, const char *path, struct err *e)
{
	memset(w, 0, sizeof *w);
	w->path = path;
	w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	return w->fd == -1 ? err_sys(e, "open %s", path) : 0;
}

/* Close; on failure (rc -1, or no gain: 1) the file goes. */
static int
writer_close(struct writer *w, int rc, struct err *e)
{
	free(w->offsets);
	if (close(w->fd) == -1 && rc == 0)
		rc = err_sys(e, "close %s", w->path);
	if (rc != 0)
		unlink(w->path);
	return rc;
}

/*
 * More frames than the pixel data holds would have the offset table
 * written for nothing (a hostile Number of Frames): native data must
 * hold them all, encapsulated data needs a fragment each.
 */
static int
check_frames(const struct job *j, struct err *e)
{
	const struct dcm_elem *px = dcm_find(j->d, NULL, TAG_PIXEL_DATA);
	struct dcm_fragment bot, *fr;
	uint64_t need;
	size_t n;

	if (px->value != NULL) {
		need = pixel_native_size(&j->pd, j->pd.frames);
		return need > px->length ? err_set(e, PIXEL_E_CORRUPT, "pixel "
		    "data has %u bytes, %ld frames need %llu", px->length,
		    j->pd.frames, (unsigned long long)need) : 0;
	}
	if (dcm_pixel_fragments(j->d, px, &bot, &fr, &n, NULL) == -1)
		return 0;	/* the decoder says what is wrong */
	free(fr);
	dcm_release(j->d);
	return (size_t)j->pd.frames > n ? err_set(e, PIXEL_E_CORRUPT, "%ld "
	    "frames in %zu fragments", j->pd.frames, n) : 0;
}

/* A frame that failed: 1 when it only means "no gain" (EFBIG: the
 * encoding outgrew the samples), else -1. */
static int
frame_failed(const struct job *j, const struct err *e)
{
	return j->mode == TRANSCODE_LOSSLESS && e != NULL &&
	    e->code == EFBIG ? 1 : -1;
}

/*
 * Frame by frame into out.  1 (out removed) when lossless output grows
 * past the input: there is no gain, and no point in encoding the rest.
 */
static int
transcode(struct job *j, const char *out, size_t in_bytes, struct err *e)
{
	struct writer w;
	int rc;

	if (check_layout(j, e) == -1 || check_frames(j, e) == -1)
		return -1;
	if (do_frame(j, 0, e) == -1)
		return frame_failed(j, e);
	if (writer_open(&w, out, e) == -1)
		return -1;
	rc = write_head(j, &w, e);
	for (long i = 0; rc == 0 && i < j->pd.frames; i++) {
		if (i > 0 && do_frame(j, i, e) == -1)
			rc = frame_failed(j, e);
		else if (write_frame(j, &w, i, e) == -1)
			rc = -1;
		else if (j->mode == TRANSCODE_LOSSLESS && w.bytes >= in_bytes)
			rc = 1;
	}
	if (rc == 0)
		rc = write_end(j, &w, e);
	j->out_bytes = w.bytes;
	return writer_close(&w, rc, e);
}

/* Opened and described; 1 when there is nothing to do. */
static int
prepare(struct job *j, struct err *e)
{
	struct err pe;

	if (dcm_open(j->path, 0, &j->d, e) == -1)
		return -1;
	if (pixel_describe(j->d, &j->pd, &pe) == -1) {
		if (pe.code == PIXEL_E_NO_PIXELS &&
		    dcm_find(j->d, NULL, TAG_PIXEL_DATA) == NULL)
			return 1;
		*e = pe;
		return -1;
	}
	return already_done(j);
}

int
transcode_file(const char *in, const char *out, enum transcode_mode m,
    struct transcode_result *r, struct err *e)
{
	return transcode_file_opts(in, out, m, NULL, r, e);
}

int
transcode_file_opts(const char *in, const char *out, enum transcode_mode m,
    const struct transcode_opts *o, struct transcode_result *r,
    struct err *e)
{
	struct transcode_result local;
	struct job j;
	struct stat st;
	double t0 = now();
	int rc;

	if (r == NULL)
		r = &local;
	memset(r, 0, sizeof *r);
	memset(&j, 0, sizeof j);
	if (stat(in, &st) == -1)
		return err_sys(e, "stat %s", in);
	r->in_bytes = (size_t)st.st_size;
	if (m == TRANSCODE_ORIGINAL)
		return 1;
	if ((unsigned)m > TRANSCODE_REDUCED)
		return err_set(e, EINVAL, "unknown upload mode %d", (int)m);
	j.path = in;
	j.mode = m;
	j.side = o != NULL && o->reduced_side > 0 ? o->reduced_side :
	    TRANSCODE_REDUCED_SIDE;
	j.ratio = o != NULL && o->reduced_ratio > 1 ? o->reduced_ratio :
	    TRANSCODE_REDUCED_RATIO;
	if ((rc = prepare(&j, e)) == 0 &&
	    (rc = transcode(&j, out, r->in_bytes, e)) == 0) {
		r->out_bytes = j.out_bytes;
		snprintf(r->transfer_syntax, sizeof r->transfer_syntax, "%s",
		    j.ts);
	}
	if (rc == 1) {
		r->out_bytes = r->in_bytes;
		if (j.d != NULL)
			snprintf(r->transfer_syntax, sizeof r->transfer_syntax,
			    "%s", dcm_transfer_syntax(j.d));
	}
	job_free(&j);
	r->seconds = now() - t0;
	return rc;
}

/* --- decompression to native pixel data (transcode_native_*) --- */

/* What native output can hold, checked before decoding. */
static int
check_native(const struct job *j, struct err *e)
{
	const struct pixel_desc *pd = &j->pd;
	size_t frame = (size_t)pd->rows * pd->columns * pd->samples *
	    (pd->bits_allocated / 8);

	if (pd->bits_allocated != 8 && pd->bits_allocated != 16 &&
	    pd->bits_allocated != 32)
		return err_set(e, EINVAL, "cannot decompress to %u-bit "
		    "native pixel data", pd->bits_allocated);
	if (pd->frames < 1 || frame == 0 ||
	    frame > (UINT32_MAX - 2) / (size_t)pd->frames)
		return err_set(e, EOVERFLOW, "native pixel data would pass "
		    "4 GiB (%ld frames of %zu bytes)", pd->frames, frame);
	return 0;
}

/* The pixel description of the decoded image. */
static int
put_native_description(const struct job *j, struct dcm_builder *b,
    struct err *e)
{
	return dcm_build_u16(b, TAG_HIGH_BIT,
	    (uint16_t)(j->pd.bits_stored - 1), e) == -1 ||
	    dcm_build_string(b, TAG_PHOTOMETRIC, "CS", j->photometric,
	    e) == -1 ||
	    (j->pd.samples > 1 && dcm_build_u16(b, TAG_PLANAR, 0, e) == -1) ?
	    -1 : 0;
}

enum piece { P_HEAD, P_PIXELS, P_PAD, P_TAIL, P_END };

struct transcode_stream {
	struct job j;
	const char *ts;
	uint8_t *head, *tail;		/* encoded, around the pixel data */
	size_t headlen, taillen;
	size_t pixlen;			/* the pixel data's value */
	enum piece piece;
	size_t pos;			/* in the current piece */
	/* decoded: the current frame, packed in place, and the next */
	struct pixel_frame cur;
	const uint8_t *frame;		/* cur's memory, packed */
	size_t framelen, framepos;
	long next;
	/* kept: the input's value, swapped into buf when big endian */
	const struct dcm_elem *px;
	int swap;
	uint8_t *buf;
	size_t released;		/* input bytes since dcm_release */
};

#define STREAM_CHUNK	((size_t)1 << 20)

/* Decode frame i into s->cur, packed in place Bits Allocated wide,
 * little endian (s->frame). */
static int
pack_frame(struct transcode_stream *s, long i, struct err *e)
{
	struct job *j = &s->j;
	struct pixel_frame *f = &s->cur;
	size_t bytes = j->pd.bits_allocated / 8;
	int rc;

	pixel_frame_free(f);
	memset(f, 0, sizeof *f);
	rc = pixel_decode(j->d, j->path, i, 0, f, e);
	dcm_release(j->d);
	if (rc == -1)
		return err_wrap(e, "frame %ld", i + 1);
	if (f->desc.rows != j->pd.rows || f->desc.columns != j->pd.columns ||
	    f->desc.samples != j->pd.samples)
		return err_set(e, PIXEL_E_CORRUPT, "frame %ld decodes to "
		    "%ux%ux%u where the image says %ux%ux%u", i + 1,
		    f->desc.rows, f->desc.columns, f->desc.samples, j->pd.rows,
		    j->pd.columns, j->pd.samples);
	if (i == 0)
		snprintf(j->photometric, sizeof j->photometric, "%s",
		    f->desc.photometric);
	s->frame = pack_in_place(f, bytes, 0xffffffffu);
	s->framelen = (size_t)f->desc.rows * f->desc.columns *
	    f->desc.samples * bytes;
	s->framepos = 0;
	s->next = i + 1;
	return 0;
}

/* Decoded pixel data: frame 0 now (its colour model goes in the head),
 * the others as they are read. */
static int
open_decoded(struct transcode_stream *s, struct err *e)
{
	struct job *j = &s->j;

	if (pixel_describe(j->d, &j->pd, e) == -1 || check_native(j, e) == -1)
		return -1;
	s->pixlen = (size_t)j->pd.rows * j->pd.columns * j->pd.samples *
	    (j->pd.bits_allocated / 8) * (size_t)j->pd.frames;
	return pack_frame(s, 0, e);
}

/* The Pixel Data element's header, after the head. */
static int
append_pixel_header(struct transcode_stream *s, const char *vr,
    struct err *e)
{
	uint8_t h[12], *p;
	size_t n = dcm_build_header(h, TAG_PIXEL_DATA, vr,
	    (uint32_t)(s->pixlen + (s->pixlen & 1)),
	    strcmp(s->ts, DCM_TS_EXPLICIT_LE) == 0);

	if ((p = realloc(s->head, s->headlen + n)) == NULL)
		return err_set(e, ENOMEM, "out of memory");
	memcpy(p + s->headlen, h, n);
	s->head = p;
	s->headlen += n;
	return 0;
}

int
transcode_native_open(const char *in, const char *ts,
    struct transcode_stream **out, size_t *len, struct err *e)
{
	struct transcode_stream *s;
	const char *vr;
	int rc;

	*out = NULL;
	if (strcmp(ts, DCM_TS_EXPLICIT_LE) != 0 &&
	    strcmp(ts, DCM_TS_IMPLICIT_LE) != 0)
		return err_set(e, EINVAL, "native output is explicit or "
		    "implicit VR little endian, not %s", ts);
	if ((s = calloc(1, sizeof *s)) == NULL)
		return err_set(e, ENOMEM, "out of memory");
	s->ts = ts;
	s->j.path = in;
	if ((rc = dcm_open(in, 0, &s->j.d, e)) == 0) {
		s->px = dcm_find(s->j.d, NULL, TAG_PIXEL_DATA);
		s->j.keep_pixels =
		    transcode_is_native(dcm_transfer_syntax(s->j.d)) ||
		    s->px == NULL;
		if (s->j.keep_pixels && s->px != NULL && s->px->value == NULL)
			rc = err_set(e, EINVAL, "encapsulated pixel data "
			    "under the native transfer syntax %s",
			    dcm_transfer_syntax(s->j.d));
		else if (s->j.keep_pixels && s->px != NULL)
			s->pixlen = s->px->length;
		else if (!s->j.keep_pixels)
			rc = open_decoded(s, e);
	}
	vr = s->j.keep_pixels && s->px != NULL ? s->px->vr :
	    s->j.pd.bits_allocated == 8 ? "OB" : "OW";
	s->swap = s->px != NULL && s->j.keep_pixels && s->px->big_endian &&
	    strcmp(vr, "OW") == 0;
	if (rc == 0 && s->swap && (s->buf = malloc(STREAM_CHUNK)) == NULL)
		rc = err_set(e, ENOMEM, "out of memory");
	if (rc == 0)
		rc = encode_elements(&s->j, 1, 0, ts, s->j.keep_pixels ? NULL :
		    put_native_description, &s->head, &s->headlen, e);
	if (rc == 0 && s->px != NULL)
		rc = append_pixel_header(s, vr, e);
	if (rc == 0)
		rc = encode_elements(&s->j, 0, 0, ts, NULL, &s->tail,
		    &s->taillen, e);
	if (rc == -1) {
		transcode_native_close(s);
		return -1;
	}
	*len = s->headlen + s->pixlen + (s->pixlen & 1) + s->taillen;
	*out = s;
	return 0;
}

/* Kept pixel data: the input's bytes, 16-bit words swapped from big
 * endian, the mapped pages dropped every STREAM_CHUNK * 8. */
static ssize_t
next_kept(struct transcode_stream *s, const uint8_t **p, size_t max)
{
	size_t n = s->pixlen - s->pos;

	if (n > max)
		n = max;
	if (n > STREAM_CHUNK)
		n = STREAM_CHUNK;
	if (s->released >= STREAM_CHUNK * 8) {
		dcm_release(s->j.d);
		s->released = 0;
	}
	s->released += n;
	*p = s->px->value + s->pos;
	if (s->swap) {
		n &= ~(size_t)1;	/* whole words (the length is even) */
		if (n == 0)
			n = 1;
		for (size_t k = 0; k + 1 < n; k += 2) {
			s->buf[k] = (*p)[k + 1];
			s->buf[k + 1] = (*p)[k];
		}
		if (n == 1)
			s->buf[0] = (*p)[0];
		*p = s->buf;
	}
	return (ssize_t)n;
}

/* Decoded pixel data: what is left of the current frame, or the next. */
static ssize_t
next_decoded(struct transcode_stream *s, const uint8_t **p, size_t max,
    struct err *e)
{
	size_t n;

	if (s->framepos == s->framelen && pack_frame(s, s->next, e) == -1)
		return -1;
	n = s->framelen - s->framepos;
	if (n > max)
		n = max;
	*p = s->frame + s->framepos;
	s->framepos += n;
	return (ssize_t)n;
}

/* From a piece held whole (head, tail): the rest of it. */
static ssize_t
next_held(const uint8_t *piece, size_t len, size_t pos, const uint8_t **p,
    size_t max)
{
	size_t n = len - pos < max ? len - pos : max;

	*p = piece + pos;
	return (ssize_t)n;
}

ssize_t
transcode_native_read(struct transcode_stream *s, const uint8_t **p,
    size_t max, struct err *e)
{
	static const uint8_t pad[1];
	size_t size[] = { s->headlen, s->pixlen, s->pixlen & 1, s->taillen };
	ssize_t n;

	while (s->piece != P_END && s->pos == size[s->piece]) {
		s->piece++;
		s->pos = 0;
	}
	if (s->piece == P_END || max == 0)
		return 0;
	switch (s->piece) {
	case P_HEAD:
		n = next_held(s->head, s->headlen, s->pos, p, max);
		break;
	case P_PIXELS:
		n = s->j.keep_pixels ? next_kept(s, p, max) :
		    next_decoded(s, p, max, e);
		break;
	case P_PAD:
		*p = pad;
		n = 1;
		break;
	default:
		n = next_held(s->tail, s->taillen, s->pos, p, max);
		break;
	}
	if (n > 0)
		s->pos += (size_t)n;
	return n;
}

void
transcode_native_close(struct transcode_stream *s)
{
	if (s == NULL)
		return;
	free(s->head);
	free(s->tail);
	pixel_frame_free(&s->cur);
	free(s->buf);
	job_free(&s->j);
	free(s);
}
