/*
 * pixel: frame decoding (see image/image.h).  The codecs are libraries; only
 * RLE (PackBits, PS3.5 annex G) is decoded here.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <charls/charls.h>
#include <jpeglib.h>
#include <openjpeg.h>

#include "image/image.h"

extern char **environ;

#define TAG_ROWS	DCM_TAG(0x0028, 0x0010)
#define TAG_COLUMNS	DCM_TAG(0x0028, 0x0011)
#define TAG_SAMPLES	DCM_TAG(0x0028, 0x0002)
#define TAG_PHOTOMETRIC	DCM_TAG(0x0028, 0x0004)
#define TAG_PLANAR	DCM_TAG(0x0028, 0x0006)
#define TAG_FRAMES	DCM_TAG(0x0028, 0x0008)
#define TAG_BITS_ALLOC	DCM_TAG(0x0028, 0x0100)
#define TAG_BITS_STORED	DCM_TAG(0x0028, 0x0101)
#define TAG_HIGH_BIT	DCM_TAG(0x0028, 0x0102)
#define TAG_PIXEL_REP	DCM_TAG(0x0028, 0x0103)
#define TAG_PIXEL_DATA	DCM_TAG(0x7fe0, 0x0010)

#define FRAME_MAP_MIN	((size_t)4 << 20)	/* mmap frames from 4 MiB */

#define TS_RLE		"1.2.840.10008.1.2.5"

static long
get_long(const struct dcm *d, uint32_t tag, long def)
{
	long v;

	if (dcm_get_long(d, NULL, tag, 0, &v, NULL) == -1)
		return def;
	return v;
}

int
pixel_describe(const struct dcm *d, struct pixel_desc *pd, struct err *e)
{
	long rows, cols, spp, ba, bs, hb;

	memset(pd, 0, sizeof *pd);
	snprintf(pd->ts, sizeof pd->ts, "%s", dcm_transfer_syntax(d));
	if (dcm_find(d, NULL, TAG_PIXEL_DATA) == NULL)
		return err_set(e, PIXEL_E_NO_PIXELS, "no pixel data");
	if (dcm_find(d, NULL, TAG_ROWS) == NULL ||
	    dcm_find(d, NULL, TAG_COLUMNS) == NULL)
		return err_set(e, PIXEL_E_NO_PIXELS, "pixel data without "
		    "Rows/Columns");
	rows = get_long(d, TAG_ROWS, 0);
	cols = get_long(d, TAG_COLUMNS, 0);
	spp = get_long(d, TAG_SAMPLES, 1);
	ba = get_long(d, TAG_BITS_ALLOC, 0);
	bs = get_long(d, TAG_BITS_STORED, ba);
	hb = get_long(d, TAG_HIGH_BIT, bs - 1);
	if (rows < 1 || rows > 65535 || cols < 1 || cols > 65535)
		return err_set(e, PIXEL_E_CORRUPT, "bad Rows/Columns %ldx%ld",
		    rows, cols);
	if (spp != 1 && spp != 3)
		return err_set(e, PIXEL_E_UNSUPPORTED, "Samples per Pixel %ld",
		    spp);
	if (ba != 1 && ba != 8 && ba != 16 && ba != 32)
		return err_set(e, PIXEL_E_UNSUPPORTED, "Bits Allocated %ld",
		    ba);
	if (bs < 1 || bs > ba)
		bs = ba;		/* tolerated, as dcmtk does */
	if (hb < bs - 1 || hb >= ba)
		hb = bs - 1;
	if (bs == 32 && get_long(d, TAG_PIXEL_REP, 0) != 1)
		bs = 31;	/* unsigned 32-bit: drop the LSB to fit int32 */
	pd->rows = (unsigned)rows;
	pd->columns = (unsigned)cols;
	pd->samples = (unsigned)spp;
	pd->bits_allocated = (unsigned)ba;
	pd->bits_stored = (unsigned)bs;
	pd->high_bit = (unsigned)hb;
	pd->is_signed = get_long(d, TAG_PIXEL_REP, 0) == 1;
	pd->planar = spp == 3 && get_long(d, TAG_PLANAR, 0) == 1;
	pd->frames = get_long(d, TAG_FRAMES, 1);
	if (pd->frames < 1)
		pd->frames = 1;
	if (dcm_get_string(d, NULL, TAG_PHOTOMETRIC, 0, pd->photometric,
	    sizeof pd->photometric, NULL) < 1)
		snprintf(pd->photometric, sizeof pd->photometric, "%s",
		    spp == 3 ? "RGB" : "MONOCHROME2");
	if ((uint64_t)rows * (uint64_t)cols * (uint64_t)spp *
	    sizeof(int32_t) > PIXEL_MAX_BYTES)
		return err_set(e, PIXEL_E_TOO_BIG, "frame of %ldx%ldx%ld "
		    "samples exceeds %zu MiB", rows, cols, spp,
		    PIXEL_MAX_BYTES >> 20);
	return 0;
}

void
pixel_frame_free(struct pixel_frame *f)
{
	if (f->mapped)
		munmap(f->v, f->mapped);
	else
		free(f->v);
	f->v = NULL;
	f->mapped = 0;
	f->ranged = 0;
}

static size_t
npixels(const struct pixel_desc *pd)
{
	return (size_t)pd->rows * pd->columns;
}

static int
frame_alloc(struct pixel_frame *f, const struct pixel_desc *pd,
    struct err *e)
{
	size_t len = npixels(pd) * pd->samples * sizeof *f->v;
	void *p;

	f->desc = *pd;
	f->mapped = 0;
	if (len >= FRAME_MAP_MIN) {
		/* A big frame: in huge pages where the kernel allows it
		 * (a 3328x2560 mammogram is 8,000 small pages to fault in). */
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE |
		    MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED) {
			(void)madvise(p, len, MADV_HUGEPAGE);
			f->v = p;
			f->mapped = len;
			return 0;
		}
	}
	f->v = malloc(len ? len : 1);
	if (f->v == NULL)
		return err_sys(e, "calloc %ux%ux%u", pd->rows, pd->columns,
		    pd->samples);
	return 0;
}

/* High Bit / Bits Stored and the sign of a raw sample. */
static int32_t
stored_value(const struct pixel_desc *pd, uint32_t raw)
{
	unsigned shift = pd->high_bit + 1 - pd->bits_stored;
	uint32_t mask = pd->bits_stored >= 32 ? 0xffffffffu :
	    (1u << pd->bits_stored) - 1;
	uint32_t v = (raw >> shift) & mask;

	if (pd->is_signed && pd->bits_stored < 32 &&
	    (v & (1u << (pd->bits_stored - 1))))
		v |= ~mask;
	if (!pd->is_signed && v > INT32_MAX)
		v = INT32_MAX;
	return (int32_t)v;
}

static void
finish_range(struct pixel_frame *f)
{
	size_t n = npixels(&f->desc) * f->desc.samples;

	f->min = INT32_MAX;
	f->max = INT32_MIN;
	for (size_t i = 0; i < n; i++) {
		if (f->v[i] < f->min)
			f->min = f->v[i];
		if (f->v[i] > f->max)
			f->max = f->v[i];
	}
}

/* Index in the interleaved output of sample s of pixel p, for the i-th
 * sample in file order. */
static size_t
dest_index(const struct pixel_desc *pd, size_t i, int planar)
{
	size_t np = npixels(pd);

	if (!planar || pd->samples == 1)
		return i;
	return (i % np) * pd->samples + i / np;
}

/* Bits Stored / High Bit / sign of 16-bit samples, for the loops below. */
struct bits16 {
	unsigned shift;
	uint32_t mask, sign;
};

static struct bits16
bits16(const struct pixel_desc *pd)
{
	return (struct bits16){ pd->high_bit + 1 - pd->bits_stored,
	    (1u << pd->bits_stored) - 1,
	    pd->is_signed ? 1u << (pd->bits_stored - 1) : 0 };
}

/* Sample i of 16-bit data b. */
static inline int32_t
sample16(const uint8_t *b, size_t i, int be, struct bits16 k)
{
	uint32_t x = be ? (uint32_t)b[2 * i] << 8 | b[2 * i + 1] :
	    (uint32_t)b[2 * i + 1] << 8 | b[2 * i];

	return (int32_t)(((x >> k.shift & k.mask) ^ k.sign) - k.sign);
}

/* Samples read between drops of a mapped frame's pages (src). */
#define UNPACK_CHUNK	((size_t)1 << 21)

/* The common case (16-bit mammograms), in a loop the compiler can
 * vectorise; read through a chunk at a time, whose mapped pages (src:
 * the dcm the bytes are in, or NULL) are then dropped, so a full-size
 * frame does not stay resident beside its int32 copy. */
static void
unpack16(struct pixel_frame *f, const uint8_t *b, size_t n, int be,
    const struct dcm *src)
{
	struct bits16 k = bits16(&f->desc);
	int32_t *v = f->v;
	int32_t lo = INT32_MAX, hi = INT32_MIN;

	for (size_t i0 = 0; i0 < n; i0 += UNPACK_CHUNK) {
		size_t end = n - i0 < UNPACK_CHUNK ? n : i0 + UNPACK_CHUNK;

		for (size_t i = i0; i < end; i++) {
			int32_t y = sample16(b, i, be, k);
			v[i] = y;
			lo = y < lo ? y : lo;
			hi = y > hi ? y : hi;
		}
		dcm_release_part(src, b + 2 * i0, 2 * (end - i0));
	}
	f->min = lo;
	f->max = hi;
	f->ranged = 1;
}

/*
 * Byte k of native pixel data of len bytes.  Big endian OW is swapped in
 * 16-bit words from the start of the value, so with swap8 the bytes of
 * 8- and 1-bit data are read pairwise reversed, counted from the start of
 * the value, not of the frame (a frame of odd size starts mid-word); a
 * missing last byte of an odd-length value reads as 0.
 */
static uint8_t
native_byte(const uint8_t *b, size_t len, uint64_t k, int swap8)
{
	if (swap8)
		k ^= 1;
	return k < len ? b[k] : 0;
}

/* Native: the frame starting at byte start (bit bit0 for 1-bit data) of
 * the value b (len bytes, enough for the frame: checked by the caller). */
static void
native_unpack(struct pixel_frame *f, const uint8_t *b, size_t len,
    uint64_t start, uint64_t bit0, int be, int swap8, const struct dcm *src)
{
	const struct pixel_desc *pd = &f->desc;
	size_t n = npixels(pd) * pd->samples;
	uint32_t raw;

	if (pd->bits_allocated == 16 && (pd->samples == 1 || !pd->planar)) {
		unpack16(f, b + start, n, be, src);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		switch (pd->bits_allocated) {
		case 1:
			raw = (native_byte(b, len, (bit0 + i) / 8, swap8) >>
			    ((bit0 + i) % 8)) & 1;
			break;
		case 8:
			raw = native_byte(b, len, start + i, swap8);
			break;
		case 16:
			raw = be ? (uint32_t)b[start + 2 * i] << 8 |
			    b[start + 2 * i + 1] :
			    (uint32_t)b[start + 2 * i + 1] << 8 | b[start + 2 * i];
			break;
		default:
			raw = be ? (uint32_t)b[start + 4 * i] << 24 |
			    (uint32_t)b[start + 4 * i + 1] << 16 |
			    (uint32_t)b[start + 4 * i + 2] << 8 |
			    b[start + 4 * i + 3] :
			    (uint32_t)b[start + 4 * i + 3] << 24 |
			    (uint32_t)b[start + 4 * i + 2] << 16 |
			    (uint32_t)b[start + 4 * i + 1] << 8 | b[start + 4 * i];
			break;
		}
		f->v[dest_index(pd, i, pd->planar)] = stored_value(pd, raw);
	}
}

/* Native YBR_FULL_422 (PS3.3 C.7.6.3.1.2): Y1 Y2 Cb Cr per two pixels. */
static int
native_422(const uint8_t *b, const struct pixel_desc *pd,
    struct pixel_frame *f, struct err *e)
{
	size_t np = npixels(pd);

	if (frame_alloc(f, pd, e) == -1)
		return -1;
	for (size_t p = 0; p + 1 < np + 1; p += 2, b += 4) {
		for (size_t k = 0; k < 2 && p + k < np; k++) {
			f->v[3 * (p + k)] = b[k];
			f->v[3 * (p + k) + 1] = b[2];
			f->v[3 * (p + k) + 2] = b[3];
		}
	}
	f->desc.planar = 0;
	snprintf(f->desc.photometric, sizeof f->desc.photometric, "YBR_FULL");
	return 0;
}

static int
is_native_422(const struct pixel_desc *pd)
{
	return pd->samples == 3 && pd->bits_allocated == 8 &&
	    strcmp(pd->photometric, "YBR_FULL_422") == 0;
}

/*
 * How many times a native grey 16-bit frame may be reduced in each
 * direction with its longest side still at least min_side (1: not at
 * all).  The preview asks for twice its size; a full-size mammogram is
 * then read as a quarter of its pixels in each direction instead of
 * being held whole as int32 (34 MB to fault in and zero).
 */
#define NATIVE_FACTOR_MAX	128	/* 128 * 128 * 65535 < 2^31 */

static unsigned
native_factor(const struct pixel_desc *pd, unsigned min_side)
{
	unsigned longest = pd->rows > pd->columns ? pd->rows : pd->columns;
	unsigned k = 1;

	if (min_side == 0 || pd->samples != 1 || pd->bits_allocated != 16)
		return 1;
	while (k < NATIVE_FACTOR_MAX && (longest + k) / (k + 1) >= min_side)
		k++;
	return k;
}

/* The mean of sum over n samples, rounded to nearest. */
static int32_t
mean(int64_t sum, int64_t n)
{
	return (int32_t)(sum >= 0 ? (sum + n / 2) / n : -((-sum + n / 2) / n));
}

/* Add one row of n 16-bit stored values to col (a loop that vectorises). */
static void
add_row16(const uint8_t *r, size_t n, int be, const struct pixel_desc *pd,
    int32_t *col)
{
	struct bits16 k = bits16(pd);

	for (size_t x = 0; x < n; x++)
		col[x] += sample16(r, x, be, k);
}

/*
 * A native 16-bit grey frame at 1/k of its size: each output sample the
 * mean of the stored values of a k x k block (partial at the right and
 * bottom edges), as the codecs' reduced decoding averages.  Column sums
 * of k rows fit int32: k <= NATIVE_FACTOR_MAX.
 */
static int
native_reduced16(const uint8_t *b, int be, const struct pixel_desc *pd,
    unsigned k, struct pixel_frame *f, const struct dcm *src, struct err *e)
{
	struct pixel_desc rd = *pd;
	int32_t lo = INT32_MAX, hi = INT32_MIN, *col;
	size_t row = (size_t)pd->columns * 2;
	unsigned kept = 0;		/* first row not yet dropped */

	rd.rows = (pd->rows + k - 1) / k;
	rd.columns = (pd->columns + k - 1) / k;
	if ((col = malloc(pd->columns * sizeof *col)) == NULL)
		return err_sys(e, "malloc");
	if (frame_alloc(f, &rd, e) == -1) {
		free(col);
		return -1;
	}
	for (unsigned oy = 0; oy < rd.rows; oy++) {
		unsigned y0 = oy * k, y1 = y0 + k < pd->rows ? y0 + k :
		    pd->rows;
		memset(col, 0, pd->columns * sizeof *col);
		for (unsigned y = y0; y < y1; y++)
			add_row16(b + (size_t)y * pd->columns * 2,
			    pd->columns, be, pd, col);
		for (unsigned ox = 0; ox < rd.columns; ox++) {
			unsigned x0 = ox * k, x1 = x0 + k < pd->columns ?
			    x0 + k : pd->columns;
			int64_t sum = 0;
			int32_t m;
			for (unsigned x = x0; x < x1; x++)
				sum += col[x];
			m = mean(sum, (int64_t)(y1 - y0) * (x1 - x0));
			f->v[(size_t)oy * rd.columns + ox] = m;
			lo = m < lo ? m : lo;
			hi = m > hi ? m : hi;
		}
		if ((y1 - kept) * row >= 2 * UNPACK_CHUNK || y1 == pd->rows) {
			dcm_release_part(src, b + kept * row, (y1 - kept) * row);
			kept = y1;
		}
	}
	free(col);
	f->min = lo;
	f->max = hi;
	f->ranged = 1;
	return 0;
}

/* Bits of one native frame (YBR_FULL_422: two pixels in 32 bits). */
static uint64_t
frame_bits(const struct pixel_desc *pd)
{
	if (is_native_422(pd))
		return ((uint64_t)npixels(pd) + 1) / 2 * 32;
	return (uint64_t)npixels(pd) * pd->samples * pd->bits_allocated;
}

uint64_t
pixel_native_size(const struct pixel_desc *pd, long frames)
{
	if (pd->bits_allocated == 1)	/* frames follow bit after bit */
		return (frame_bits(pd) * (uint64_t)frames + 7) / 8;
	return frame_bits(pd) / 8 * (uint64_t)frames;
}

/* Native bytes b (len) holding frame (0-based) and maybe others; reduced
 * as min_side allows (see native_factor). */
static int
decode_native_bytes(const uint8_t *b, size_t len, int be, int swap8,
    const struct pixel_desc *pd, long frame, unsigned min_side,
    struct pixel_frame *f, const struct dcm *src, struct err *e)
{
	unsigned k = native_factor(pd, min_side);
	uint64_t bits = frame_bits(pd), need = pixel_native_size(pd, frame + 1);
	uint64_t start = 0, bit0 = 0;

	if (len == 0)
		return err_set(e, PIXEL_E_NO_PIXELS, "empty pixel data");
	if (pd->bits_allocated == 1)
		bit0 = bits * (uint64_t)frame;
	else
		start = bits / 8 * (uint64_t)frame;
	if (need > len)
		return err_set(e, PIXEL_E_CORRUPT, "pixel data has %zu bytes, "
		    "frame %ld needs %llu", len, frame + 1,
		    (unsigned long long)need);
	if (is_native_422(pd))
		return native_422(b + start, pd, f, e);
	if (k > 1)
		return native_reduced16(b + start, be, pd, k, f, src, e);
	if (frame_alloc(f, pd, e) == -1)
		return -1;
	native_unpack(f, b, len, start, bit0, be, swap8, src);
	return 0;
}

/* Native pixel data px of src (whose mapped pages are dropped as the
 * frame is read). */
static int
decode_native(const struct dcm *src, const struct dcm_elem *px,
    const struct pixel_desc *pd, long frame, unsigned min_side,
    struct pixel_frame *f, struct err *e)
{
	int swap8 = px->big_endian && pd->bits_allocated <= 8 &&
	    strcmp(px->vr, "OW") == 0;

	return decode_native_bytes(px->value, px->value ? px->length : 0,
	    px->big_endian, swap8, pd, frame, min_side, f, src, e);
}

/* Deflated Image Frame Compression (1.2.840.10008.1.2.8.1): each frame
 * is a raw deflate stream of the native frame. */
static int
decode_deflated_frame(const uint8_t *src, size_t len,
    const struct pixel_desc *pd, struct pixel_frame *f, struct err *e)
{
	uint64_t bits = (uint64_t)npixels(pd) * pd->samples *
	    pd->bits_allocated;
	size_t want = (size_t)((bits + 7) / 8);
	z_stream zs;
	uint8_t *out;
	int rc;

	if ((out = malloc(want ? want : 1)) == NULL)
		return err_sys(e, "malloc");
	memset(&zs, 0, sizeof zs);
	if (inflateInit2(&zs, -15) != Z_OK) {
		free(out);
		return err_set(e, ENOMEM, "inflateInit2 failed");
	}
	zs.next_in = (Bytef *)(uintptr_t)src;
	zs.avail_in = (uInt)(len < UINT_MAX ? len : UINT_MAX);
	zs.next_out = out;
	zs.avail_out = (uInt)want;
	rc = inflate(&zs, Z_FINISH);
	inflateEnd(&zs);
	if ((rc != Z_STREAM_END && rc != Z_BUF_ERROR && rc != Z_OK) ||
	    zs.avail_out != 0) {
		free(out);
		return err_set(e, PIXEL_E_CORRUPT, "deflated frame: %s",
		    zs.msg ? zs.msg : "too short");
	}
	rc = decode_native_bytes(out, want, 0, 0, pd, 0, 0, f, NULL, e);
	free(out);
	return rc;
}

/* Encapsulated: the bytes of one frame. */

struct frame_bytes {
	const uint8_t *data;
	size_t len;
	uint8_t *owned;		/* when fragments were joined */
};

static int
join_fragments(const struct dcm_fragment *fr, size_t first, size_t n,
    struct frame_bytes *fb, struct err *e)
{
	size_t len = 0, pos = 0;

	if (n == 1) {
		fb->data = fr[first].data;
		fb->len = fr[first].length;
		return 0;
	}
	for (size_t i = first; i < first + n; i++)
		len += fr[i].length;
	if ((fb->owned = malloc(len ? len : 1)) == NULL)
		return err_sys(e, "malloc %zu", len);
	for (size_t i = first; i < first + n; i++) {
		memcpy(fb->owned + pos, fr[i].data, fr[i].length);
		pos += fr[i].length;
	}
	fb->data = fb->owned;
	fb->len = len;
	return 0;
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* Frame through the Basic Offset Table: fragments whose item offsets
 * fall in [BOT[frame], BOT[frame + 1]). */
static int
frame_by_bot(const struct dcm_fragment *bot, const struct dcm_fragment *fr,
    size_t n, long frames, long frame, struct frame_bytes *fb,
    struct err *e)
{
	uint64_t lo = le32(bot->data + 4 * frame), hi = UINT64_MAX, off = 0;
	size_t first = n, count = 0;

	if (frame + 1 < frames)
		hi = le32(bot->data + 4 * (frame + 1));
	for (size_t i = 0; i < n; i++) {
		if (off >= lo && off < hi) {
			if (first == n)
				first = i;
			count++;
		}
		off += 8 + (uint64_t)fr[i].length;
	}
	if (count == 0)
		return err_set(e, PIXEL_E_CORRUPT, "basic offset table points "
		    "frame %ld at no fragment", frame);
	return join_fragments(fr, first, count, fb, e);
}

/* From the copied head: the other fragments stay untouched. */
static int
starts_frame(const struct dcm_fragment *f)
{
	static const uint8_t jp2[] = { 0, 0, 0, 0x0c, 'j', 'P' };

	if (f->length < 6)
		return 0;
	return (f->head[0] == 0xff && (f->head[1] == 0xd8 ||
	    f->head[1] == 0x4f)) || memcmp(f->head, jp2, sizeof jp2) == 0;
}

/* Frame by codec start markers (no usable offset table). */
static int
frame_by_markers(const struct dcm_fragment *fr, size_t n, long frame,
    struct frame_bytes *fb, struct err *e)
{
	long k = -1;
	size_t first = 0, count = 0;

	for (size_t i = 0; i < n; i++) {
		if (i == 0 || starts_frame(&fr[i]))
			k++;
		if (k == frame) {
			if (count == 0)
				first = i;
			count++;
		}
	}
	if (count == 0)
		return err_set(e, PIXEL_E_CORRUPT, "frame %ld not found among "
		    "%zu fragments", frame, n);
	return join_fragments(fr, first, count, fb, e);
}

static int
frame_bytes(const struct dcm *d, const struct dcm_elem *px,
    const struct pixel_desc *pd, long frame, struct frame_bytes *fb,
    struct err *e)
{
	struct dcm_fragment bot, *fr;
	size_t n;
	int rc;

	memset(fb, 0, sizeof *fb);
	if (dcm_pixel_fragments(d, px, &bot, &fr, &n, e) == -1)
		return -1;
	if (n == 0)
		rc = err_set(e, PIXEL_E_CORRUPT, "no pixel data fragments");
	else if (pd->frames == 1)
		rc = join_fragments(fr, 0, n, fb, e);
	else if ((size_t)pd->frames == n)
		rc = join_fragments(fr, (size_t)frame, 1, fb, e);
	else if (bot.length == 4 * (uint64_t)pd->frames)
		rc = frame_by_bot(&bot, fr, n, pd->frames, frame, fb, e);
	else
		rc = frame_by_markers(fr, n, frame, fb, e);
	free(fr);
	return rc;
}

/* RLE (PS3.5 annex G): PackBits segments, most significant byte first. */
static int
rle_segment(const uint8_t *src, size_t len, uint8_t *out, size_t outlen)
{
	size_t i = 0, o = 0;

	while (i < len && o < outlen) {
		int8_t h = (int8_t)src[i++];

		if (h >= 0) {
			size_t c = (size_t)h + 1;
			if (c > len - i || c > outlen - o)
				return -1;
			memcpy(out + o, src + i, c);
			i += c;
			o += c;
		} else if (h != -128) {
			size_t c = (size_t)(1 - h);
			if (i >= len || c > outlen - o)
				return -1;
			memset(out + o, src[i++], c);
			o += c;
		}
	}
	return o == outlen ? 0 : -1;
}

static int
decode_rle(const struct frame_bytes *fb, const struct pixel_desc *pd,
    struct pixel_frame *f, struct err *e)
{
	size_t np = npixels(pd), bps = pd->bits_allocated / 8, nseg, seglen;
	uint8_t *seg;

	nseg = pd->bits_allocated == 1 ? 1 : bps * pd->samples;
	seglen = pd->bits_allocated == 1 ? (np + 7) / 8 : np;
	if (fb->len < 64 || le32(fb->data) != nseg)
		return err_set(e, PIXEL_E_CORRUPT, "RLE header: %u segments, "
		    "expected %zu", fb->len < 64 ? 0 : le32(fb->data), nseg);
	if (pd->bits_allocated == 1 && pd->samples != 1)
		return err_set(e, PIXEL_E_UNSUPPORTED, "RLE of 1-bit colour");
	if ((seg = malloc(seglen * nseg)) == NULL)
		return err_sys(e, "malloc");
	for (size_t s = 0; s < nseg; s++) {
		size_t a = le32(fb->data + 4 + 4 * s);
		size_t b = s + 1 < nseg ? le32(fb->data + 8 + 4 * s) : fb->len;
		if (a < 64 || b > fb->len || a > b ||
		    rle_segment(fb->data + a, b - a, seg + s * seglen, seglen)
		    == -1) {
			free(seg);
			return err_set(e, PIXEL_E_CORRUPT, "RLE segment %zu "
			    "is damaged", s);
		}
	}
	if (frame_alloc(f, pd, e) == -1) {
		free(seg);
		return -1;
	}
	if (pd->bits_allocated == 1) {
		native_unpack(f, seg, seglen, 0, 0, 0, 0, NULL);
		free(seg);
		return 0;
	}
	for (size_t s = 0; s < pd->samples; s++)
		for (size_t p = 0; p < np; p++) {
			uint32_t raw = 0;
			for (size_t k = 0; k < bps; k++)
				raw = raw << 8 | seg[(s * bps + k) * np + p];
			f->v[p * pd->samples + s] = stored_value(pd, raw);
		}
	free(seg);
	f->desc.planar = 0;
	return 0;
}

/* JPEG baseline through libjpeg-turbo (8-bit). */

struct jpeg_err {
	struct jpeg_error_mgr mgr;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
};

static void
jpeg_on_error(j_common_ptr c)
{
	struct jpeg_err *je = (struct jpeg_err *)c->err;

	(*c->err->format_message)(c, je->msg);
	longjmp(je->jb, 1);
}

static void
jpeg_quiet(j_common_ptr c, int level)
{
	(void)c;
	(void)level;
}

static int
jpeg_rows(struct jpeg_decompress_struct *ci, struct pixel_frame *f,
    JSAMPLE *row)
{
	unsigned nc = (unsigned)ci->output_components;

	while (ci->output_scanline < ci->output_height) {
		JSAMPROW rp = row;
		size_t y = ci->output_scanline;
		if (jpeg_read_scanlines(ci, &rp, 1) != 1)
			return -1;
		for (size_t i = 0; i < (size_t)ci->output_width * nc; i++)
			f->v[y * ci->output_width * nc + i] =
			    stored_value(&f->desc, row[i]);
	}
	return 0;
}

static int
decode_jpeg(const struct frame_bytes *fb, const struct pixel_desc *pd,
    unsigned min_side, struct pixel_frame *f, struct err *e)
{
	struct pixel_desc out = *pd;
	struct jpeg_decompress_struct ci;
	struct jpeg_err je;
	JSAMPLE *volatile row = NULL;

	memset(&ci, 0, sizeof ci);
	ci.err = jpeg_std_error(&je.mgr);
	je.mgr.error_exit = jpeg_on_error;
	je.mgr.emit_message = jpeg_quiet;
	if (setjmp(je.jb)) {
		jpeg_destroy_decompress(&ci);
		free(row);
		pixel_frame_free(f);
		return err_set(e, PIXEL_E_CORRUPT, "JPEG: %s", je.msg);
	}
	jpeg_create_decompress(&ci);
	jpeg_mem_src(&ci, fb->data, (unsigned long)fb->len);
	jpeg_read_header(&ci, TRUE);
	if (ci.image_width != pd->columns || ci.image_height != pd->rows ||
	    (unsigned)ci.num_components != pd->samples) {
		jpeg_destroy_decompress(&ci);
		return err_set(e, PIXEL_E_CORRUPT, "JPEG frame is %ux%ux%d, "
		    "dataset says %ux%ux%u", ci.image_width, ci.image_height,
		    ci.num_components, pd->columns, pd->rows, pd->samples);
	}
	if (pd->samples == 3) {
		/* As dcmtk: the photometric interpretation, not the
		 * markers, says whether the stream is YCbCr. */
		ci.jpeg_color_space = strncmp(pd->photometric, "YBR", 3) == 0 ?
		    JCS_YCbCr : JCS_RGB;
		ci.out_color_space = JCS_RGB;
	}
	/* DCT scaling: 1/2, 1/4, 1/8 while the longest side stays >= min_side. */
	ci.scale_num = 1;
	ci.scale_denom = 1;
	while (min_side > 0 && ci.scale_denom < 8 &&
	    (ci.image_width > ci.image_height ? ci.image_width :
	    ci.image_height) / (ci.scale_denom * 2) >= min_side)
		ci.scale_denom *= 2;
	jpeg_start_decompress(&ci);
	out.columns = ci.output_width;
	out.rows = ci.output_height;
	if (frame_alloc(f, &out, e) == -1 ||
	    (row = malloc((size_t)ci.output_width * pd->samples)) == NULL) {
		jpeg_destroy_decompress(&ci);
		pixel_frame_free(f);
		return e->msg[0] ? -1 : err_sys(e, "malloc");
	}
	f->desc.bits_stored = 8;
	f->desc.high_bit = 7;
	f->desc.planar = 0;
	if (pd->samples == 3)
		snprintf(f->desc.photometric, sizeof f->desc.photometric,
		    "RGB");
	if (jpeg_rows(&ci, f, row) == -1)
		longjmp(je.jb, 1);
	jpeg_finish_decompress(&ci);
	jpeg_destroy_decompress(&ci);
	free(row);
	return 0;
}

/*
 * JPEG-LS through CharLS.  The decoded samples (8 or 16 bits) go into the
 * upper part of the int32 frame itself and are widened from the front:
 * sample i is read before the int32 at i is written, and no write reaches
 * a sample not yet read, so a full-size frame needs no second buffer
 * (17 MB less).  Planar colour data, whose samples move about, is
 * decoded apart.
 */
static int
decode_jls(const struct frame_bytes *fb, const struct pixel_desc *pd,
    struct pixel_frame *f, struct err *e)
{
	charls_jpegls_decoder *dec = charls_jpegls_decoder_create();
	charls_frame_info fi;
	charls_interleave_mode im;
	charls_jpegls_errc rc;
	uint8_t *buf = NULL;
	size_t sz, np = npixels(pd), n = np * pd->samples;
	int planar, in_place = 0;

	if (dec == NULL)
		return err_sys(e, "charls_jpegls_decoder_create");
	if ((rc = charls_jpegls_decoder_set_source_buffer(dec, fb->data,
	    fb->len)) != 0 ||
	    (rc = charls_jpegls_decoder_read_header(dec)) != 0 ||
	    (rc = charls_jpegls_decoder_get_frame_info(dec, &fi)) != 0 ||
	    (rc = charls_jpegls_decoder_get_interleave_mode(dec, &im)) != 0)
		goto fail;
	if (fi.width != pd->columns || fi.height != pd->rows ||
	    fi.component_count != (int32_t)pd->samples ||
	    fi.bits_per_sample < 2 || fi.bits_per_sample > 16) {
		charls_jpegls_decoder_destroy(dec);
		return err_set(e, PIXEL_E_CORRUPT, "JPEG-LS frame %ux%ux%d "
		    "does not match the dataset", fi.width, fi.height,
		    fi.component_count);
	}
	if ((rc = charls_jpegls_decoder_get_destination_size(dec, 0, &sz))
	    != 0)
		goto fail;
	planar = im == CHARLS_INTERLEAVE_MODE_NONE && pd->samples > 1;
	in_place = !planar && sz <= n * sizeof *f->v / 2;
	if (in_place && frame_alloc(f, pd, e) == -1) {
		charls_jpegls_decoder_destroy(dec);
		return -1;
	}
	buf = in_place ? (uint8_t *)f->v + n * sizeof *f->v - sz : malloc(sz);
	if (buf == NULL) {
		charls_jpegls_decoder_destroy(dec);
		return err_sys(e, "malloc %zu", sz);
	}
	if ((rc = charls_jpegls_decoder_decode_to_buffer(dec, buf, sz, 0)) !=
	    0)
		goto fail;
	charls_jpegls_decoder_destroy(dec);
	if (!in_place && frame_alloc(f, pd, e) == -1) {
		free(buf);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t raw = fi.bits_per_sample > 8 ?
		    (uint32_t)buf[2 * i] | (uint32_t)buf[2 * i + 1] << 8 :
		    buf[i];
		f->v[dest_index(pd, i, planar)] = stored_value(pd, raw);
	}
	f->desc.planar = 0;
	if (!in_place)
		free(buf);
	return 0;
fail:
	charls_jpegls_decoder_destroy(dec);
	if (in_place)
		pixel_frame_free(f);
	else
		free(buf);
	return err_set(e, PIXEL_E_CORRUPT, "JPEG-LS: %s",
	    charls_get_error_message(rc));
}

/* JPEG 2000 through OpenJPEG, from memory. */

struct j2k_src {
	const uint8_t *p;
	size_t len, pos;
	char msg[256];
};

static OPJ_SIZE_T
j2k_read(void *buf, OPJ_SIZE_T n, void *u)
{
	struct j2k_src *s = u;
	size_t left = s->len - s->pos;

	if (left == 0)
		return (OPJ_SIZE_T)-1;
	if (n > left)
		n = left;
	memcpy(buf, s->p + s->pos, n);
	s->pos += n;
	return n;
}

static OPJ_OFF_T
j2k_skip(OPJ_OFF_T n, void *u)
{
	struct j2k_src *s = u;

	if (n < 0 || (uint64_t)n > s->len - s->pos)
		n = (OPJ_OFF_T)(s->len - s->pos);
	s->pos += (size_t)n;
	return n;
}

static OPJ_BOOL
j2k_seek(OPJ_OFF_T n, void *u)
{
	struct j2k_src *s = u;

	if (n < 0 || (uint64_t)n > s->len)
		return OPJ_FALSE;
	s->pos = (size_t)n;
	return OPJ_TRUE;
}

static void
j2k_on_error(const char *msg, void *u)
{
	struct j2k_src *s = u;

	if (s->msg[0] == '\0')
		snprintf(s->msg, sizeof s->msg, "%.*s",
		    (int)strcspn(msg, "\n"), msg);
}

static void
j2k_quiet(const char *msg, void *u)
{
	(void)msg;
	(void)u;
}

static int
j2k_copy(opj_image_t *im, const struct pixel_desc *pd,
    struct pixel_frame *f, struct err *e)
{
	size_t np = npixels(pd);

	if (im->numcomps < pd->samples)
		return err_set(e, PIXEL_E_CORRUPT, "JPEG 2000 has %u "
		    "components, dataset says %u", im->numcomps, pd->samples);
	struct pixel_desc out = *pd;

	out.columns = im->comps[0].w;
	out.rows = im->comps[0].h;
	if (out.columns > pd->columns || out.rows > pd->rows ||
	    out.columns * 32 < pd->columns || out.rows * 32 < pd->rows)
		return err_set(e, PIXEL_E_CORRUPT, "JPEG 2000 image is %ux%u, "
		    "dataset says %ux%u", out.columns, out.rows, pd->columns,
		    pd->rows);
	pd = &out;
	np = npixels(pd);
	for (unsigned c = 0; c < pd->samples; c++) {
		opj_image_comp_t *k = &im->comps[c];
		if (k->w != pd->columns || k->h != pd->rows || k->data == NULL)
			return err_set(e, PIXEL_E_CORRUPT, "JPEG 2000 component "
			    "%u is %ux%u, dataset says %ux%u", c, k->w, k->h,
			    pd->columns, pd->rows);
	}
	if (frame_alloc(f, pd, e) == -1)
		return -1;
	for (unsigned c = 0; c < pd->samples; c++) {
		opj_image_comp_t *k = &im->comps[c];
		unsigned prec = k->prec ? k->prec : pd->bits_stored;
		for (size_t i = 0; i < np; i++) {
			int32_t v = k->data[i];
			if (!k->sgnd && pd->is_signed && prec < 32 &&
			    (v & (1 << (prec - 1))))
				v -= (int32_t)(1u << prec);
			f->v[i * pd->samples + c] = v;
		}
	}
	f->desc.planar = 0;
	if (pd->samples == 3 && (strcmp(pd->photometric, "YBR_ICT") == 0 ||
	    strcmp(pd->photometric, "YBR_RCT") == 0))
		snprintf(f->desc.photometric, sizeof f->desc.photometric,
		    "RGB");
	return 0;
}

/* Decode at a lower resolution while the longest side stays >= min_side
 * (the wavelet's own low-pass: a thumbnail needs no more). */
static OPJ_BOOL
j2k_reduce(opj_codec_t *codec, const struct pixel_desc *pd,
    unsigned min_side)
{
	opj_codestream_info_v2_t *ci = opj_get_cstr_info(codec);
	unsigned longest = pd->rows > pd->columns ? pd->rows : pd->columns;
	unsigned r = 0, nres;

	if (ci == NULL)
		return OPJ_TRUE;
	nres = ci->m_default_tile_info.tccp_info != NULL ?
	    ci->m_default_tile_info.tccp_info[0].numresolutions : 1;
	opj_destroy_cstr_info(&ci);
	while (min_side > 0 && r + 1 < nres && r < 5 &&
	    (longest >> (r + 1)) >= min_side)
		r++;
	return r == 0 || opj_set_decoded_resolution_factor(codec, r);
}

static int
decode_j2k_here(const struct frame_bytes *fb, const struct pixel_desc *pd,
    unsigned min_side, struct pixel_frame *f, struct err *e)
{
	struct j2k_src src = { fb->data, fb->len, 0, "" };
	opj_dparameters_t par;
	opj_codec_t *codec;
	opj_stream_t *st;
	opj_image_t *im = NULL;
	int rc = -1, jp2 = fb->len >= 8 && le32(fb->data) == 0x0c000000;

	opj_set_default_decoder_parameters(&par);
	codec = opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
	st = opj_stream_create(1 << 16, OPJ_TRUE);
	if (codec == NULL || st == NULL) {
		err_set(e, ENOMEM, "OpenJPEG: cannot create a decoder");
		goto out;
	}
	opj_stream_set_user_data(st, &src, NULL);
	opj_stream_set_user_data_length(st, fb->len);
	opj_stream_set_read_function(st, j2k_read);
	opj_stream_set_skip_function(st, j2k_skip);
	opj_stream_set_seek_function(st, j2k_seek);
	opj_set_error_handler(codec, j2k_on_error, &src);
	opj_set_warning_handler(codec, j2k_quiet, NULL);
	opj_set_info_handler(codec, j2k_quiet, NULL);
	if (!opj_setup_decoder(codec, &par) ||
	    !opj_decoder_set_strict_mode(codec, OPJ_TRUE) ||
	    !opj_read_header(st, codec, &im) ||
	    !j2k_reduce(codec, pd, min_side) ||
	    !opj_decode(codec, st, im) || !opj_end_decompress(codec, st)) {
		err_set(e, PIXEL_E_CORRUPT, "JPEG 2000: %s",
		    src.msg[0] ? src.msg : "cannot decode");
		goto out;
	}
	rc = j2k_copy(im, pd, f, e);
out:
	if (im != NULL)
		opj_image_destroy(im);
	if (st != NULL)
		opj_stream_destroy(st);
	if (codec != NULL)
		opj_destroy_codec(codec);
	return rc;
}

/* CPU seconds a JPEG 2000 decode may take: a 4096x3328 mammogram takes
 * one or two. */
#define J2K_CPU_SECONDS	120

/* What the decoding child hands back, in a shared page. */
struct j2k_result {
	int rc, code;
	char msg[sizeof ((struct err *)0)->msg];
	struct pixel_desc desc;
	int32_t min, max;
	int ranged;
};

/* The child: decode, copy the frame into data (cap bytes), report. */
static void
j2k_child(const struct frame_bytes *fb, const struct pixel_desc *pd,
    unsigned min_side, int32_t *data, size_t cap, struct j2k_result *res)
{
	struct pixel_frame cf = { 0 };
	struct err ce = { 0 };
	size_t n;

	if (decode_j2k_here(fb, pd, min_side, &cf, &ce) == -1) {
		res->code = ce.code;
		memcpy(res->msg, ce.msg, sizeof res->msg);
		return;
	}
	n = npixels(&cf.desc) * cf.desc.samples * sizeof *cf.v;
	if (n > cap) {
		res->code = PIXEL_E_CORRUPT;
		snprintf(res->msg, sizeof res->msg, "JPEG 2000 frame larger "
		    "than the dataset says");
	} else {
		memcpy(data, cf.v, n);
		res->desc = cf.desc;
		res->min = cf.min;
		res->max = cf.max;
		res->ranged = cf.ranged;
		res->rc = 0;
	}
	pixel_frame_free(&cf);
}

/*
 * JPEG 2000 is decoded in a child process.  Fuzzing found memory errors
 * inside OpenJPEG 2.5.0 itself on hostile input (heap over-reads and a
 * use-after-free in opj_decode, bench/fuzz/RESULTS.md: upstream's issue
 * 1533, with strict mode off, fixed in 2.5.3; the decoder now runs in
 * strict mode, so a truncated codestream fails instead).  In a child,
 * whatever OpenJPEG has left fails that decode (PIXEL_E_CORRUPT, "the
 * decoder died") and can neither crash nor corrupt the program that
 * asked (dcmthumb, relaysend's and qrscp's transcoding); one that spins
 * is stopped after J2K_CPU_SECONDS of CPU.  The frame comes back in a
 * shared mapping, which the caller then owns (f->mapped).
 */
static int
decode_j2k(const struct frame_bytes *fb, const struct pixel_desc *pd,
    unsigned min_side, struct pixel_frame *f, struct err *e)
{
	size_t cap = npixels(pd) * pd->samples * sizeof *f->v;
	struct j2k_result *res;
	int32_t *data;
	pid_t pid;
	int st = 0, rc = -1;

	if (cap == 0)
		return err_set(e, PIXEL_E_CORRUPT, "JPEG 2000: no pixels");
	res = mmap(NULL, sizeof *res, PROT_READ | PROT_WRITE, MAP_SHARED |
	    MAP_ANONYMOUS, -1, 0);
	data = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED |
	    MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED || data == MAP_FAILED) {
		err_sys(e, "mmap %zu bytes for a JPEG 2000 frame", cap);
		goto out;
	}
	memset(res, 0, sizeof *res);
	res->rc = -1;
	if ((pid = fork()) == -1) {
		err_sys(e, "fork for the JPEG 2000 decoder");
		goto out;
	}
	if (pid == 0) {
		/* A decode that loops is stopped too (SIGXCPU). */
		struct rlimit cpu = { J2K_CPU_SECONDS, J2K_CPU_SECONDS };

		(void)setrlimit(RLIMIT_CPU, &cpu);
		j2k_child(fb, pd, min_side, data, cap, res);
		_exit(0);
	}
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR) {
			err_sys(e, "waitpid for the JPEG 2000 decoder");
			goto out;
		}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		err_set(e, PIXEL_E_CORRUPT, "JPEG 2000: the decoder died on "
		    "this image (%s %d)", WIFSIGNALED(st) ? "signal" : "exit",
		    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	else if (res->rc != 0)
		err_set(e, res->code ? res->code : PIXEL_E_CORRUPT, "%s",
		    res->msg[0] ? res->msg : "JPEG 2000: cannot decode");
	else {
		f->desc = res->desc;
		f->v = data;
		f->mapped = cap;
		f->min = res->min;
		f->max = res->max;
		f->ranged = res->ranged;
		data = MAP_FAILED;	/* the caller's now */
		rc = 0;
	}
out:
	if (data != MAP_FAILED)
		munmap(data, cap);
	if (res != MAP_FAILED)
		munmap(res, sizeof *res);
	return rc;
}

/* JPEG processes libjpeg-turbo lacks, and JPEG-LS streams CharLS
 * refuses: dcmtk's dcmdjpeg / dcmdjpls into a temporary file, then the
 * native path.  PIXEL_DCMDJPEG / PIXEL_DCMDJPLS override the programs. */
static int
run_external(const char *prog, const char *in, const char *out,
    struct err *e)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, rc;
	char *argv[4];

	argv[0] = (char *)prog;
	argv[1] = (char *)in;
	argv[2] = (char *)out;
	argv[3] = NULL;
	if (posix_spawn_file_actions_init(&fa) != 0)
		return err_sys(e, "posix_spawn_file_actions_init");
	if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY,
	    0) != 0 || posix_spawn_file_actions_addopen(&fa, 1, "/dev/null",
	    O_WRONLY, 0) != 0 || posix_spawn_file_actions_addopen(&fa, 2,
	    "/dev/null", O_WRONLY, 0) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return err_sys(e, "posix_spawn_file_actions_addopen");
	}
	rc = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		errno = rc;
		return err_sys(e, "cannot run %s", prog);
	}
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return err_sys(e, "waitpid %s", prog);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return err_set(e, PIXEL_E_CORRUPT, "%s could not decompress "
		    "the pixel data (status %d)", prog, st);
	return 0;
}

static int
decode_external(const char *prog, const char *path,
    const struct pixel_desc *pd, long frame, struct pixel_frame *f,
    struct err *e)
{
	const char *dir = getenv("TMPDIR");
	char tmp[4096];
	struct dcm *d2 = NULL;
	struct pixel_desc pd2;
	int fd, rc = -1;

	if (path == NULL)
		return err_set(e, PIXEL_E_UNSUPPORTED, "transfer syntax %s "
		    "needs %s and a file", pd->ts, prog);
	if (snprintf(tmp, sizeof tmp, "%s/pixel-XXXXXX", dir && *dir ? dir :
	    "/tmp") >= (int)sizeof tmp)
		return err_set(e, ENAMETOOLONG, "TMPDIR too long");
	if ((fd = mkstemp(tmp)) == -1)
		return err_sys(e, "mkstemp %s", tmp);
	close(fd);
	if (run_external(prog, path, tmp, e) == 0 &&
	    dcm_open(tmp, 0, &d2, e) == 0 && pixel_describe(d2, &pd2, e) == 0) {
		if (dcm_find(d2, NULL, TAG_PIXEL_DATA)->value == NULL)
			err_set(e, PIXEL_E_UNSUPPORTED, "%s left the pixel "
			    "data encapsulated", prog);
		else
			rc = decode_native(d2, dcm_find(d2, NULL, TAG_PIXEL_DATA),
			    &pd2, frame, 0, f, e);
	}
	if (d2 != NULL)
		dcm_free(d2);
	unlink(tmp);
	return rc;
}

static const char *
program(const char *env, const char *def)
{
	const char *p = getenv(env);

	return p != NULL && *p != '\0' ? p : def;
}

enum codec { C_NONE, C_RLE, C_JPEG, C_JPEG_LOSSLESS, C_JLS, C_J2K,
    C_DEFLATE };

/* The codec of a transfer syntax: the JPEG family is .50 to .66 and .70;
 * .57, .58, .65, .66 and .70 are lossless. */
static enum codec
codec_of_ts(const char *ts)
{
	static const char jpeg[] = "1.2.840.10008.1.2.4.";
	char *end;
	long n;

	if (strcmp(ts, TS_RLE) == 0)
		return C_RLE;
	if (strcmp(ts, "1.2.840.10008.1.2.8.1") == 0)
		return C_DEFLATE;
	if (strncmp(ts, jpeg, sizeof jpeg - 1) != 0)
		return C_NONE;
	n = strtol(ts + sizeof jpeg - 1, &end, 10);
	if (*end != '\0')
		return C_NONE;
	if (n == 57 || n == 58 || n == 65 || n == 66 || n == 70)
		return C_JPEG_LOSSLESS;
	if (n >= 50 && n <= 64)
		return C_JPEG;
	if (n == 80 || n == 81)
		return C_JLS;
	if ((n >= 90 && n <= 93) || (n >= 201 && n <= 203))
		return C_J2K;	/* OpenJPEG 2.5 decodes HTJ2K too */
	return C_NONE;
}

/* Encapsulated data under a native syntax (seen in the wild): guess the
 * codec from the first bytes of the frame. */
static enum codec
codec_of_bytes(const struct frame_bytes *fb)
{
	const uint8_t *b = fb->data;

	if (fb->len < 8)
		return C_NONE;
	if (b[0] == 0xff && b[1] == 0xd8)
		return b[2] == 0xff && (b[3] == 0xf7 || b[3] == 0xf8) ? C_JLS :
		    C_JPEG;
	if ((b[0] == 0xff && b[1] == 0x4f) || (le32(b) == 0x0c000000 &&
	    memcmp(b + 4, "jP  ", 4) == 0))
		return C_J2K;
	if (le32(b) >= 1 && le32(b) <= 15 && le32(b + 4) == 64)
		return C_RLE;
	return C_NONE;
}

static int
decode_codec(enum codec c, const struct frame_bytes *fb,
    const struct pixel_desc *pd, unsigned min_side, struct pixel_frame *f,
    struct err *e)
{
	switch (c) {
	case C_RLE:
		return decode_rle(fb, pd, f, e);
	case C_JPEG:
		if (pd->bits_stored > 8 && pd->bits_allocated > 8)
			return err_set(e, PIXEL_E_UNSUPPORTED, "%u-bit JPEG",
			    pd->bits_stored);
		return decode_jpeg(fb, pd, min_side, f, e);
	case C_JLS:
		return decode_jls(fb, pd, f, e);
	case C_J2K:
		return decode_j2k(fb, pd, min_side, f, e);
	case C_DEFLATE:
		return decode_deflated_frame(fb->data, fb->len, pd, f, e);
	default:
		return err_set(e, PIXEL_E_UNSUPPORTED, "no decoder for "
		    "transfer syntax %s", pd->ts);
	}
}

static int
decode_encapsulated(const struct dcm *d, const struct dcm_elem *px,
    const char *path, const struct pixel_desc *pd, long frame,
    unsigned min_side, struct pixel_frame *f, struct err *e)
{
	struct frame_bytes fb;
	enum codec c = codec_of_ts(pd->ts);
	const char *ext = NULL;
	int rc;

	if (c == C_JPEG_LOSSLESS)
		return decode_external(program("PIXEL_DCMDJPEG", "dcmdjpeg"),
		    path, pd, frame, f, e);
	if (frame_bytes(d, px, pd, frame, &fb, e) == -1)
		return -1;
	if (c == C_NONE)
		c = codec_of_bytes(&fb);
	rc = decode_codec(c, &fb, pd, min_side, f, e);
	free(fb.owned);
	if (rc == 0 || path == NULL)
		return rc;
	/* What the library refused, dcmtk may still decode. */
	if (c == C_JPEG)
		ext = program("PIXEL_DCMDJPEG", "dcmdjpeg");
	else if (c == C_JLS)
		ext = program("PIXEL_DCMDJPLS", "dcmdjpls");
	if (ext == NULL || (e != NULL && e->code == PIXEL_E_TOO_BIG))
		return rc;
	pixel_frame_free(f);
	if (decode_external(ext, path, pd, frame, f, NULL) == 0)
		return 0;
	return rc;
}

int
pixel_decode(const struct dcm *d, const char *path, long frame,
    unsigned min_side, struct pixel_frame *f, struct err *e)
{
	struct pixel_desc pd;
	const struct dcm_elem *px;
	int rc;

	memset(f, 0, sizeof *f);
	if (pixel_describe(d, &pd, e) == -1)
		return -1;
	if (frame < 0)
		frame = (pd.frames - 1) / 2;
	if (frame >= pd.frames)
		return err_set(e, PIXEL_E_UNSUPPORTED, "frame %ld asked, the "
		    "object has %ld", frame + 1, pd.frames);
	px = dcm_find(d, NULL, TAG_PIXEL_DATA);
	if (px->value == NULL && px->length == 0xffffffffu)
		rc = decode_encapsulated(d, px, path, &pd, frame, min_side, f,
		    e);
	else
		rc = decode_native(d, px, &pd, frame, min_side, f, e);
	if (rc == 0 && !f->ranged)
		finish_range(f);
	return rc;
}
