/*
 * render: display pipeline and encoders (see image/image.h).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

#include "image/image.h"

#define TAG_SPACING		DCM_TAG(0x0028, 0x0030)
#define TAG_IMAGER_SPACING	DCM_TAG(0x0018, 0x1164)
#define TAG_ASPECT		DCM_TAG(0x0028, 0x0034)
#define TAG_PADDING		DCM_TAG(0x0028, 0x0120)
#define TAG_PADDING_LIMIT	DCM_TAG(0x0028, 0x0121)
#define TAG_WINDOW_CENTER	DCM_TAG(0x0028, 0x1050)
#define TAG_WINDOW_WIDTH	DCM_TAG(0x0028, 0x1051)
#define TAG_INTERCEPT		DCM_TAG(0x0028, 0x1052)
#define TAG_SLOPE		DCM_TAG(0x0028, 0x1053)
#define TAG_VOI_FUNCTION	DCM_TAG(0x0028, 0x1056)
#define TAG_MODALITY_LUT	DCM_TAG(0x0028, 0x3000)
#define TAG_LUT_DESCRIPTOR	DCM_TAG(0x0028, 0x3002)
#define TAG_LUT_DATA		DCM_TAG(0x0028, 0x3006)
#define TAG_VOI_LUT		DCM_TAG(0x0028, 0x3010)
#define TAG_PLUT_SHAPE		DCM_TAG(0x2050, 0x0020)
#define TAG_RED_DESCRIPTOR	DCM_TAG(0x0028, 0x1101)
#define TAG_RED_DATA		DCM_TAG(0x0028, 0x1201)
#define TAG_RED_SEGMENTED	DCM_TAG(0x0028, 0x1221)

#define TAG_SHARED_GROUPS	DCM_TAG(0x5200, 0x9229)
#define TAG_PER_FRAME_GROUPS	DCM_TAG(0x5200, 0x9230)
#define TAG_PIXEL_MEASURES	DCM_TAG(0x0028, 0x9110)
#define TAG_FRAME_VOI		DCM_TAG(0x0028, 0x9132)
#define TAG_PIXEL_TRANSFORM	DCM_TAG(0x0028, 0x9145)

#define LUT_MAX_SPAN	(1 << 22)	/* stored-value LUT entries at most */

enum voi_fn { VOI_LINEAR, VOI_LINEAR_EXACT, VOI_SIGMOID };

struct lut {
	long first;		/* first mapped input value */
	unsigned n;		/* entries */
	unsigned bits;
	double *v;
};

/* How one stored grey value becomes a display value in [0, 255]. */
struct grey {
	double slope, intercept;
	struct lut mlut, vlut;
	int have_mlut, have_vlut, have_window, invert;
	enum voi_fn fn;
	double center, width;
	double lo, hi;		/* min-max window (modality values) */
	double vlut_max;
};

/* The display values of one full-resolution row. */
struct source {
	const struct pixel_frame *f;
	struct grey g;
	const double *table;	/* stored value - f->min -> display */
	struct lut pal[3];
	int colour;		/* 0 grey, 1 RGB, 2 YBR_FULL, 3 palette */
	double rgb_scale;
};

void
render_image_free(struct render_image *im)
{
	free(im->data);
	im->data = NULL;
}

static double
get_double(const struct dcm *d, const struct dcm_item *it, uint32_t tag,
    int i, double def)
{
	double v;

	if (dcm_get_double(d, it, tag, i, &v, NULL) == -1 || !isfinite(v))
		return def;
	return v;
}

/* The first item of sequence tag in item it (NULL: the top), or NULL. */
static const struct dcm_item *
first_item(const struct dcm *d, const struct dcm_item *it, uint32_t tag)
{
	const struct dcm_elem *sq = dcm_find(d, it, tag);

	return sq != NULL && dcm_item_count(d, sq) > 0 ?
	    dcm_item_at(d, sq, 0) : NULL;
}

/*
 * Where frame's value of tag is kept: the top level (NULL) when it is
 * there; else, in an enhanced multi-frame object, the item of the
 * functional group macro (Frame VOI LUT, Pixel Value Transformation,
 * Pixel Measures) in the frame's per-frame group, else in the shared
 * group.  NULL when none has it.
 */
static const struct dcm_item *
holder(const struct dcm *d, long frame, uint32_t macro, uint32_t tag)
{
	const struct dcm_elem *pf = dcm_find(d, NULL, TAG_PER_FRAME_GROUPS);
	const struct dcm_item *it;

	if (dcm_find(d, NULL, tag) != NULL)
		return NULL;
	if (pf != NULL && frame >= 0 && (size_t)frame < dcm_item_count(d, pf) &&
	    (it = first_item(d, dcm_item_at(d, pf, (size_t)frame), macro)) !=
	    NULL && dcm_find(d, it, tag) != NULL)
		return it;
	if ((it = first_item(d, first_item(d, NULL, TAG_SHARED_GROUPS),
	    macro)) != NULL && dcm_find(d, it, tag) != NULL)
		return it;
	return NULL;
}

/* LUT Descriptor + LUT Data (PS3.3 C.11.1): 8- or 16-bit entries. */
static int
read_lut(const struct dcm *d, const struct dcm_item *it, uint32_t desc_tag,
    uint32_t data_tag, int signed_first, struct lut *l, struct err *e)
{
	const struct dcm_elem *el = dcm_find(d, it, data_tag);
	long n, first, bits;
	size_t wide;

	memset(l, 0, sizeof *l);
	if (el == NULL || el->value == NULL ||
	    dcm_get_long(d, it, desc_tag, 0, &n, NULL) == -1 ||
	    dcm_get_long(d, it, desc_tag, 1, &first, NULL) == -1 ||
	    dcm_get_long(d, it, desc_tag, 2, &bits, NULL) == -1)
		return err_set(e, PIXEL_E_CORRUPT, "LUT (%04X,%04X) without "
		    "descriptor or data", DCM_GROUP(data_tag),
		    DCM_ELEMENT(data_tag));
	if (n <= 0)
		n += 65536;
	if (signed_first && first > 32767)
		first -= 65536;
	if (n > 65536 || bits < 1 || bits > 16)
		return err_set(e, PIXEL_E_CORRUPT, "bad LUT descriptor "
		    "%ld\\%ld\\%ld", n, first, bits);
	wide = el->length >= 2 * (size_t)n;
	if (!wide && el->length < (size_t)n)
		return err_set(e, PIXEL_E_CORRUPT, "LUT data has %u bytes "
		    "for %ld entries", el->length, n);
	if ((l->v = malloc((size_t)n * sizeof *l->v)) == NULL)
		return err_sys(e, "malloc");
	for (long i = 0; i < n; i++) {
		const uint8_t *p = el->value + (wide ? 2 * i : i);
		l->v[i] = !wide ? p[0] : el->big_endian ? (p[0] << 8 | p[1]) :
		    (p[1] << 8 | p[0]);
	}
	l->first = first;
	l->n = (unsigned)n;
	l->bits = (unsigned)bits;
	return 0;
}

static void
lut_free(struct lut *l)
{
	free(l->v);
	l->v = NULL;
}

static double
lut_at(const struct lut *l, double x)
{
	double i = floor(x) - (double)l->first;

	if (i <= 0)
		return l->v[0];
	if (i >= l->n - 1)
		return l->v[l->n - 1];
	return l->v[(size_t)i];
}

static enum voi_fn
voi_function(const struct dcm *d, const struct dcm_item *it)
{
	char fn[32];

	if (dcm_get_string(d, it, TAG_VOI_FUNCTION, 0, fn, sizeof fn,
	    NULL) < 1)
		return VOI_LINEAR;
	if (strcmp(fn, "SIGMOID") == 0)
		return VOI_SIGMOID;
	if (strcmp(fn, "LINEAR_EXACT") == 0)
		return VOI_LINEAR_EXACT;
	return VOI_LINEAR;
}

static int
is_padding(const struct dcm *d, int32_t v, int has_pad, long pad,
    long limit)
{
	(void)d;
	if (!has_pad)
		return 0;
	if (limit == LONG_MIN)
		return v == pad;
	return pad <= limit ? v >= pad && v <= limit : v >= limit && v <= pad;
}

static double
modality(const struct grey *g, double x)
{
	if (g->have_mlut)
		return lut_at(&g->mlut, x);
	return x * g->slope + g->intercept;
}

/* Min and max modality values of the frame, Pixel Padding left out. */
static void
min_max(const struct dcm *d, const struct pixel_frame *f, struct grey *g)
{
	long pad = 0, limit = LONG_MIN;
	int has_pad = dcm_get_long(d, NULL, TAG_PADDING, 0, &pad, NULL) == 0;
	size_t n = (size_t)f->desc.rows * f->desc.columns;
	int32_t lo = INT32_MAX, hi = INT32_MIN;
	double a, b;

	if (has_pad) {
		if (dcm_get_long(d, NULL, TAG_PADDING_LIMIT, 0, &limit, NULL)
		    == -1)
			limit = LONG_MIN;
		if (f->desc.is_signed && f->desc.bits_allocated == 16) {
			pad = (int16_t)pad;	/* US read of an SS value */
			if (limit != LONG_MIN)
				limit = (int16_t)limit;
		}
	}
	for (size_t i = 0; i < n; i++) {
		int32_t v = f->v[i];
		if (is_padding(d, v, has_pad, pad, limit))
			continue;
		if (v < lo)
			lo = v;
		if (v > hi)
			hi = v;
	}
	if (lo > hi)
		lo = hi = f->min;
	if (lo == hi) {
		/* A flat frame: place it within the stored range, as dcmtk. */
		unsigned bs = f->desc.bits_stored;
		lo = f->desc.is_signed ? -(int32_t)(1u << (bs - 1)) : 0;
		hi = f->desc.is_signed ? (int32_t)((1u << (bs - 1)) - 1) :
		    (int32_t)(bs >= 31 ? INT32_MAX : (1u << bs) - 1);
	}
	a = modality(g, lo);
	b = modality(g, hi);
	g->lo = a < b ? a : b;
	g->hi = a < b ? b : a;
}

/* The frame o asks for, 0-based (-1: the middle one, as pixel_decode). */
static long
frame_of(const struct render_opts *o, const struct pixel_frame *f)
{
	return o->frame >= 0 ? o->frame : (f->desc.frames - 1) / 2;
}

static int
setup_grey(const struct dcm *d, const struct pixel_frame *f,
    const struct render_opts *o, struct grey *g)
{
	long frame = frame_of(o, f);
	const struct dcm_item *px = holder(d, frame, TAG_PIXEL_TRANSFORM,
	    TAG_SLOPE);
	const struct dcm_item *wc = holder(d, frame, TAG_FRAME_VOI,
	    TAG_WINDOW_WIDTH);
	const struct dcm_elem *sq;
	char shape[32];
	int w = o->window;

	memset(g, 0, sizeof *g);
	g->slope = get_double(d, px, TAG_SLOPE, 0, 1);
	g->intercept = get_double(d, px, TAG_INTERCEPT, 0, 0);
	if (g->slope == 0)
		g->slope = 1;
	if ((sq = dcm_find(d, NULL, TAG_MODALITY_LUT)) != NULL &&
	    dcm_item_count(d, sq) > 0) {
		/* A broken LUT is ignored, as dcmtk does. */
		g->have_mlut = read_lut(d, dcm_item_at(d, sq, 0),
		    TAG_LUT_DESCRIPTOR, TAG_LUT_DATA, f->desc.is_signed,
		    &g->mlut, NULL) == 0;
	}
	g->fn = voi_function(d, wc);
	if (!o->min_max && dcm_find(d, wc, TAG_WINDOW_WIDTH) != NULL) {
		if (w >= dcm_vm(d, dcm_find(d, wc, TAG_WINDOW_WIDTH)) ||
		    w >= dcm_vm(d, dcm_find(d, wc, TAG_WINDOW_CENTER)))
			w = 0;
		g->center = get_double(d, wc, TAG_WINDOW_CENTER, w, NAN);
		g->width = get_double(d, wc, TAG_WINDOW_WIDTH, w, NAN);
		g->have_window = isfinite(g->center) && isfinite(g->width) &&
		    g->width >= (g->fn == VOI_LINEAR ? 1 : 1e-9);
	}
	if (!o->min_max && !g->have_window &&
	    (sq = dcm_find(d, NULL, TAG_VOI_LUT)) != NULL &&
	    dcm_item_count(d, sq) > 0) {
		g->have_vlut = read_lut(d, dcm_item_at(d, sq, 0),
		    TAG_LUT_DESCRIPTOR, TAG_LUT_DATA, f->desc.is_signed,
		    &g->vlut, NULL) == 0;
	}
	if (g->have_vlut) {
		g->vlut_max = (1u << g->vlut.bits) - 1;
		for (unsigned i = 0; i < g->vlut.n; i++)
			if (g->vlut.v[i] > g->vlut_max)
				g->vlut_max = g->vlut.v[i];
		if (g->vlut_max <= 0)
			g->vlut_max = 1;
	}
	if (!g->have_window && !g->have_vlut)
		min_max(d, f, g);
	g->invert = strcmp(f->desc.photometric, "MONOCHROME1") == 0;
	if (!g->invert && dcm_get_string(d, NULL, TAG_PLUT_SHAPE, 0, shape,
	    sizeof shape, NULL) > 0 && strcmp(shape, "INVERSE") == 0)
		g->invert = 1;
	return 0;
}

/* PS3.3 C.11.2.1.2: the VOI functions, output in [0, 1]. */
static double
voi(const struct grey *g, double x)
{
	double c = g->center, w = g->width, y;

	if (g->have_window) {
		switch (g->fn) {
		case VOI_SIGMOID:
			return 1 / (1 + exp(-4 * (x - c) / w));
		case VOI_LINEAR_EXACT:
			y = (x - c) / w + 0.5;
			break;
		default:
			if (w <= 1)
				return x < c - 0.5 ? 0 : 1;
			y = (x - (c - 0.5)) / (w - 1) + 0.5;
			break;
		}
	} else if (g->have_vlut)
		return lut_at(&g->vlut, x) / g->vlut_max;
	else
		y = g->hi > g->lo ? (x - g->lo) / (g->hi - g->lo) : 0;
	return y < 0 ? 0 : y > 1 ? 1 : y;
}

static double
grey_display(const struct grey *g, int32_t v)
{
	double y = voi(g, modality(g, v));

	return 255 * (g->invert ? 1 - y : y);
}

static void
grey_free(struct grey *g)
{
	lut_free(&g->mlut);
	lut_free(&g->vlut);
}

/* Colour */

static unsigned
word(const struct dcm_elem *el, size_t i)
{
	const uint8_t *p = el->value + 2 * i;

	return el->big_endian ? (unsigned)(p[0] << 8 | p[1]) :
	    (unsigned)(p[1] << 8 | p[0]);
}

/*
 * Segmented Palette Color LUT Data (PS3.3 C.7.9.2): discrete (opcode 0)
 * and linear (opcode 1) segments expanded into l's n entries; indirect
 * segments (opcode 2) are refused.
 */
static int
read_segmented(const struct dcm *d, uint32_t desc_tag, uint32_t seg_tag,
    struct lut *l, struct err *e)
{
	const struct dcm_elem *el = dcm_find(d, NULL, seg_tag);
	long n, first, bits;
	size_t nw, i = 0, k = 0;
	double y0 = 0;

	memset(l, 0, sizeof *l);
	if (el == NULL || el->value == NULL ||
	    dcm_get_long(d, NULL, desc_tag, 0, &n, NULL) == -1 ||
	    dcm_get_long(d, NULL, desc_tag, 1, &first, NULL) == -1 ||
	    dcm_get_long(d, NULL, desc_tag, 2, &bits, NULL) == -1)
		return err_set(e, PIXEL_E_CORRUPT, "no palette LUT data");
	if (n <= 0)
		n += 65536;
	if (n > 65536 || bits < 8 || bits > 16)
		return err_set(e, PIXEL_E_CORRUPT, "bad palette descriptor");
	if ((l->v = calloc((size_t)n, sizeof *l->v)) == NULL)
		return err_sys(e, "calloc");
	nw = el->length / 2;
	while (i + 1 < nw && k < (size_t)n) {
		unsigned op = word(el, i), len = word(el, i + 1);
		i += 2;
		if (op == 0) {
			for (unsigned j = 0; j < len && i < nw && k < (size_t)n;
			    j++)
				y0 = l->v[k++] = word(el, i++);
		} else if (op == 1 && i < nw) {
			double y1 = word(el, i++);
			for (unsigned j = 1; j <= len && k < (size_t)n; j++)
				l->v[k++] = y0 + (y1 - y0) * j / len;
			y0 = y1;
		} else {
			lut_free(l);
			return err_set(e, PIXEL_E_UNSUPPORTED, "segmented "
			    "palette opcode %u", op);
		}
	}
	l->first = first;
	l->n = (unsigned)n;
	l->bits = (unsigned)bits;
	return 0;
}

static int
setup_palette(const struct dcm *d, struct source *s, struct err *e)
{
	for (uint32_t c = 0; c < 3; c++) {
		uint32_t desc = TAG_RED_DESCRIPTOR + c;
		int rc = dcm_find(d, NULL, TAG_RED_DATA + c) == NULL &&
		    dcm_find(d, NULL, TAG_RED_SEGMENTED + c) != NULL ?
		    read_segmented(d, desc, TAG_RED_SEGMENTED + c, &s->pal[c],
		    e) : read_lut(d, NULL, desc, TAG_RED_DATA + c,
		    s->f->desc.is_signed, &s->pal[c], e);
		if (rc == -1)
			return err_wrap(e, "PALETTE COLOR");
	}
	return 0;
}

static double
clamp255(double v)
{
	return v < 0 ? 0 : v > 255 ? 255 : v;
}

static void
ybr_to_rgb(double y, double cb, double cr, float *out)
{
	out[0] = (float)clamp255(y + 1.402 * (cr - 128));
	out[1] = (float)clamp255(y - 0.344136 * (cb - 128) -
	    0.714136 * (cr - 128));
	out[2] = (float)clamp255(y + 1.772 * (cb - 128));
}

static void
colour_pixel(const struct source *s, const int32_t *v, float *out)
{
	if (s->colour == 3) {
		for (int c = 0; c < 3; c++) {
			const struct lut *l = &s->pal[c];
			double x = lut_at(l, v[0]);
			out[c] = (float)(l->bits > 8 || l->v[0] > 255 ||
			    l->v[l->n - 1] > 255 ? x / 257 : x);
		}
		return;
	}
	if (s->colour == 2) {
		ybr_to_rgb(v[0] * s->rgb_scale, v[1] * s->rgb_scale,
		    v[2] * s->rgb_scale, out);
		return;
	}
	for (int c = 0; c < 3; c++)
		out[c] = (float)clamp255(v[c] * s->rgb_scale);
}

static void
source_row(const struct source *s, unsigned y, float *row)
{
	const struct pixel_frame *f = s->f;
	unsigned w = f->desc.columns, spp = f->desc.samples;
	const int32_t *v = f->v + (size_t)y * w * spp;

	if (s->colour == 0) {
		for (unsigned x = 0; x < w; x++)
			row[x] = s->table ? (float)s->table[v[x] - f->min] :
			    (float)grey_display(&s->g, v[x]);
		return;
	}
	for (unsigned x = 0; x < w; x++)
		colour_pixel(s, v + (size_t)x * spp, row + 3 * (size_t)x);
}

/* Area-averaging reduction: source pixel j covers [j, j+1); output i
 * covers [i*scale, (i+1)*scale).  Each source pixel meets one or two
 * output pixels: *o the first, *w its share of it. */
static int
axis_map(unsigned n, unsigned m, unsigned **o, float **w, struct err *e)
{
	double s = (double)n / m;

	*o = malloc(n * sizeof **o);
	*w = malloc(n * sizeof **w);
	if (*o == NULL || *w == NULL) {
		free(*o);
		free(*w);
		return err_sys(e, "malloc");
	}
	for (unsigned j = 0; j < n; j++) {
		unsigned i = (unsigned)(j / s);
		double end;
		if (i >= m)
			i = m - 1;
		end = (i + 1) * s;
		(*o)[j] = i;
		(*w)[j] = (float)(j + 1 <= end || i + 1 >= m ? 1 : end - j);
	}
	return 0;
}

static void
accumulate(const float *src, float *dst, unsigned n, unsigned m,
    unsigned ch, const unsigned *o, const float *w)
{
	if (ch == 1) {
		for (unsigned j = 0; j < n; j++) {
			dst[o[j]] += w[j] * src[j];
			if (w[j] != 1 && o[j] + 1 < m)
				dst[o[j] + 1] += (1 - w[j]) * src[j];
		}
		return;
	}
	for (unsigned j = 0; j < n; j++) {
		float a = w[j], b = 1 - a;
		for (unsigned c = 0; c < ch; c++) {
			dst[o[j] * ch + c] += a * src[j * ch + c];
			if (b != 0 && o[j] + 1 < m)
				dst[(o[j] + 1) * ch + c] += b * src[j * ch + c];
		}
	}
}

/* Grey through the stored-value table, straight into the output row. */
static void
accumulate_table(const struct source *s, unsigned y, float *dst, unsigned m,
    const unsigned *o, const float *w)
{
	const struct pixel_frame *f = s->f;
	unsigned n = f->desc.columns;
	const int32_t *v = f->v + (size_t)y * n;
	const double *t = s->table - f->min;

	for (unsigned j = 0; j < n; j++) {
		float x = (float)t[v[j]];
		dst[o[j]] += w[j] * x;
		if (w[j] != 1 && o[j] + 1 < m)
			dst[o[j] + 1] += (1 - w[j]) * x;
	}
}

static void
add_row(float *dst, const float *src, size_t n, float k)
{
	for (size_t i = 0; i < n; i++)
		dst[i] += k * src[i];
}

static int
reduce(const struct source *s, struct render_image *im, struct err *e)
{
	const struct pixel_desc *pd = &s->f->desc;
	unsigned ch = im->channels, W = im->width, H = im->height;
	unsigned *ox = NULL, *oy = NULL;
	float *wx = NULL, *wy = NULL, *row, *hrow, *acc;
	double norm = (double)W * H / ((double)pd->columns * pd->rows);
	size_t i;
	int rc = -1;

	row = malloc((size_t)pd->columns * ch * sizeof *row);
	hrow = malloc((size_t)W * ch * sizeof *hrow);
	acc = calloc((size_t)W * H * ch, sizeof *acc);
	if (row == NULL || hrow == NULL || acc == NULL) {
		err_sys(e, "malloc");
		goto out;
	}
	if (axis_map(pd->columns, W, &ox, &wx, e) == -1 ||
	    axis_map(pd->rows, H, &oy, &wy, e) == -1)
		goto out;
	for (unsigned y = 0; y < pd->rows; y++) {
		memset(hrow, 0, (size_t)W * ch * sizeof *hrow);
		if (s->table != NULL)
			accumulate_table(s, y, hrow, W, ox, wx);
		else {
			source_row(s, y, row);
			accumulate(row, hrow, pd->columns, W, ch, ox, wx);
		}
		add_row(acc + (size_t)oy[y] * W * ch, hrow, W * ch, wy[y]);
		if (wy[y] < 1 && oy[y] + 1 < H)
			add_row(acc + (size_t)(oy[y] + 1) * W * ch, hrow,
			    W * ch, 1 - wy[y]);
	}
	if ((im->data = malloc((size_t)W * H * ch)) == NULL) {
		err_sys(e, "malloc");
		goto out;
	}
	for (i = 0; i < (size_t)W * H * ch; i++)
		im->data[i] = (uint8_t)(clamp255(acc[i] * norm) + 0.5);
	rc = 0;
out:
	free(ox);
	free(oy);
	free(wx);
	free(wy);
	free(row);
	free(hrow);
	free(acc);
	return rc;
}

void
render_fit(unsigned columns, unsigned rows, double aspect, unsigned size,
    unsigned *width, unsigned *height)
{
	/* Physical width / height ratio; aspect = row / column spacing. */
	double r = columns / (rows * (aspect > 0 ? aspect : 1));
	double h = rows;

	if (h > columns / r)
		h = columns / r;
	if (h > size)
		h = size;
	if (h * r > size)
		h = size / r;
	*height = (unsigned)(h + 0.5);
	*width = (unsigned)(h * r + 0.5);
	if (*height < 1)
		*height = 1;
	if (*width < 1)
		*width = 1;
	if (*height > rows)
		*height = rows;
	if (*width > columns)
		*width = columns;
}

/* Row spacing / column spacing, 1 when unknown or implausible.  An
 * enhanced object keeps Pixel Spacing in its Pixel Measures group. */
static double
pixel_aspect(const struct dcm *d, long frame)
{
	static const uint32_t tags[] = { TAG_SPACING, TAG_IMAGER_SPACING };
	const struct dcm_item *it;
	double a, b;

	for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
		it = holder(d, frame, TAG_PIXEL_MEASURES, tags[i]);
		a = get_double(d, it, tags[i], 0, 0);
		b = get_double(d, it, tags[i], 1, 0);
		if (a > 0 && b > 0)
			return a / b;
	}
	a = get_double(d, NULL, TAG_ASPECT, 0, 0);
	b = get_double(d, NULL, TAG_ASPECT, 1, 0);
	if (a > 0 && b > 0)
		return a / b;
	return 1;
}

/* A table of display values for every stored value in [min, max]. */
static int
grey_table(struct source *s, double **table, struct err *e)
{
	const struct pixel_frame *f = s->f;
	uint64_t span = (uint64_t)((int64_t)f->max - f->min) + 1;

	*table = NULL;
	if (span > LUT_MAX_SPAN ||
	    span > (uint64_t)f->desc.rows * f->desc.columns)
		return 0;	/* computed per pixel instead */
	if ((*table = malloc(span * sizeof **table)) == NULL)
		return err_sys(e, "malloc");
	for (uint64_t i = 0; i < span; i++)
		(*table)[i] = grey_display(&s->g, (int32_t)(f->min + (int64_t)i));
	s->table = *table;
	return 0;
}

static int
colour_model(const struct dcm *d, struct source *s, struct err *e)
{
	const char *pi = s->f->desc.photometric;
	unsigned bs = s->f->desc.bits_stored;

	s->rgb_scale = bs > 8 && bs < 32 ? 255.0 / ((1u << bs) - 1) : 1;
	if (strcmp(pi, "PALETTE COLOR") == 0) {
		s->colour = 3;
		return setup_palette(d, s, e);
	}
	if (s->f->desc.samples != 3)
		return err_set(e, PIXEL_E_UNSUPPORTED, "photometric "
		    "interpretation %s with %u samples", pi,
		    s->f->desc.samples);
	if (strcmp(pi, "RGB") == 0 || strcmp(pi, "YBR_RCT") == 0 ||
	    strcmp(pi, "YBR_ICT") == 0)
		s->colour = 1;
	else if (strncmp(pi, "YBR_FULL", 8) == 0)
		s->colour = 2;
	else
		return err_set(e, PIXEL_E_UNSUPPORTED, "photometric "
		    "interpretation %s", pi);
	return 0;
}

int
render_frame(const struct dcm *d, const struct pixel_frame *f,
    const struct render_opts *o, struct render_image *im, struct err *e)
{
	struct source s;
	double *table = NULL;
	int rc = -1;

	memset(&s, 0, sizeof s);
	memset(im, 0, sizeof *im);
	s.f = f;
	if (strncmp(f->desc.photometric, "MONOCHROME", 10) == 0 &&
	    f->desc.samples == 1) {
		if (setup_grey(d, f, o, &s.g) == -1 ||
		    grey_table(&s, &table, e) == -1)
			goto out;
		im->channels = 1;
	} else {
		if (colour_model(d, &s, e) == -1)
			goto out;
		im->channels = 3;
	}
	render_fit(f->desc.columns, f->desc.rows, o->square_pixels ? 1 :
	    pixel_aspect(d, frame_of(o, f)), o->size ? o->size :
	    RENDER_SIZE_DEFAULT,
	    &im->width, &im->height);
	rc = reduce(&s, im, e);
out:
	free(table);
	grey_free(&s.g);
	for (int c = 0; c < 3; c++)
		lut_free(&s.pal[c]);
	return rc;
}

int
render_dicom(const struct dcm *d, const char *path,
    const struct render_opts *o, struct render_image *im, struct err *e)
{
	struct pixel_frame f;
	int rc;

	memset(im, 0, sizeof *im);
	/* Twice the output size keeps the area average in charge. */
	if (pixel_decode(d, path, o->frame, 2 * (o->size ? o->size :
	    RENDER_SIZE_DEFAULT), &f, e) == -1)
		return -1;
	rc = render_frame(d, &f, o, im, e);
	pixel_frame_free(&f);
	return rc;
}

/* Encoders */

struct membuf {
	uint8_t *p;
	size_t len, cap;
	int failed;
};

static void
png_append(png_structp png, png_bytep data, size_t n)
{
	struct membuf *m = png_get_io_ptr(png);

	if (m->failed)
		return;
	if (m->len + n > m->cap) {
		size_t cap = (m->cap ? m->cap * 2 : 65536) + n;
		uint8_t *p = realloc(m->p, cap);
		if (p == NULL) {
			m->failed = 1;
			png_error(png, "out of memory");
		}
		m->p = p;
		m->cap = cap;
	}
	memcpy(m->p + m->len, data, n);
	m->len += n;
}

static void
png_noflush(png_structp png)
{
	(void)png;
}

static void
png_on_error(png_structp png, png_const_charp msg)
{
	struct err *e = png_get_error_ptr(png);

	err_set(e, EIO, "PNG: %s", msg);
	png_longjmp(png, 1);
}

static void
png_on_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

int
render_png(const struct render_image *im, uint8_t **out, size_t *len,
    struct err *e)
{
	struct err dummy;
	struct err *pe = e ? e : &dummy;
	struct membuf m = { 0 };
	png_structp png;
	png_infop info = NULL;

	*out = NULL;
	*len = 0;
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, pe,
	    png_on_error, png_on_warning);
	if (png == NULL || (info = png_create_info_struct(png)) == NULL) {
		png_destroy_write_struct(&png, NULL);
		return err_set(e, ENOMEM, "PNG: cannot create a writer");
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		free(m.p);
		return -1;
	}
	png_set_write_fn(png, &m, png_append, png_noflush);
	png_set_IHDR(png, info, im->width, im->height, 8, im->channels == 3 ?
	    PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
	    PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	/* a preview: zlib level 3 takes a fifth of the preview's time off
	 * on a noisy mammogram, for 6 % more bytes (27 % on a smooth one:
	 * 12 KB instead of 9) */
	png_set_compression_level(png, 3);
	png_write_info(png, info);
	for (unsigned y = 0; y < im->height; y++)
		png_write_row(png, im->data + (size_t)y * im->width *
		    im->channels);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	*out = m.p;
	*len = m.len;
	return 0;
}

struct jpeg_werr {
	struct jpeg_error_mgr mgr;
	jmp_buf jb;
};

static void
jpeg_werr_exit(j_common_ptr c)
{
	longjmp(((struct jpeg_werr *)c->err)->jb, 1);
}

int
render_jpeg(const struct render_image *im, int quality, uint8_t **out,
    size_t *len, struct err *e)
{
	struct jpeg_compress_struct ci;
	struct jpeg_werr je;
	unsigned char *volatile buf = NULL;
	unsigned long n = 0;

	memset(&ci, 0, sizeof ci);
	ci.err = jpeg_std_error(&je.mgr);
	je.mgr.error_exit = jpeg_werr_exit;
	if (setjmp(je.jb)) {
		jpeg_destroy_compress(&ci);
		free(buf);
		return err_set(e, EIO, "JPEG: cannot encode the preview");
	}
	jpeg_create_compress(&ci);
	jpeg_mem_dest(&ci, (unsigned char **)&buf, &n);
	ci.image_width = im->width;
	ci.image_height = im->height;
	ci.input_components = (int)im->channels;
	ci.in_color_space = im->channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
	jpeg_set_defaults(&ci);
	jpeg_set_quality(&ci, quality, TRUE);
	jpeg_start_compress(&ci, TRUE);
	while (ci.next_scanline < ci.image_height) {
		JSAMPROW r = im->data + (size_t)ci.next_scanline * im->width *
		    im->channels;
		jpeg_write_scanlines(&ci, &r, 1);
	}
	jpeg_finish_compress(&ci);
	jpeg_destroy_compress(&ci);
	*out = buf;
	*len = n;
	return 0;
}

int
render_pnm(const struct render_image *im, uint8_t **out, size_t *len,
    struct err *e)
{
	char hdr[64];
	int h = snprintf(hdr, sizeof hdr, "P%c\n%u %u\n255\n",
	    im->channels == 3 ? '6' : '5', im->width, im->height);
	size_t body = (size_t)im->width * im->height * im->channels;

	if ((*out = malloc((size_t)h + body)) == NULL)
		return err_sys(e, "malloc");
	memcpy(*out, hdr, (size_t)h);
	memcpy(*out + h, im->data, body);
	*len = (size_t)h + body;
	return 0;
}
