/*
 * render_test: lib/image/pixel and lib/image/render on small hand-made datasets whose
 * right answers can be worked out on paper.
 */
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom.h"
#include "image/image.h"
#include "tap.h"

#define TS_EXPLICIT	"1.2.840.10008.1.2.1"
#define SOP_SC		"1.2.840.10008.5.1.4.1.1.7"

struct img {
	unsigned rows, cols;
	const char *photometric;
	const char *center, *width, *function, *plut;
	const char *padding;	/* Pixel Padding Value, NULL = none */
	const char *spacing;
	int is_signed;
	const uint16_t *pixels;
};

/* Encode img as a Part 10 file in memory; *buf must be freed. */
static struct dcm *
make(const struct img *im, uint8_t **buf)
{
	struct dcm_builder *b = dcm_build_new();
	struct dcm *d = NULL;
	size_t len;
	uint8_t *px;
	size_t n = (size_t)im->rows * im->cols;

	px = malloc(2 * n);
	for (size_t i = 0; i < n; i++) {
		px[2 * i] = im->pixels[i] & 0xff;
		px[2 * i + 1] = im->pixels[i] >> 8;
	}
	dcm_build_string(b, DCM_TAG(0x0008, 0x0016), NULL, SOP_SC, NULL);
	dcm_build_string(b, DCM_TAG(0x0008, 0x0018), NULL, "1.2.3.4", NULL);
	dcm_build_u16(b, DCM_TAG(0x0028, 0x0002), 1, NULL);
	dcm_build_string(b, DCM_TAG(0x0028, 0x0004), NULL, im->photometric,
	    NULL);
	dcm_build_u16(b, DCM_TAG(0x0028, 0x0010), (uint16_t)im->rows, NULL);
	dcm_build_u16(b, DCM_TAG(0x0028, 0x0011), (uint16_t)im->cols, NULL);
	dcm_build_u16(b, DCM_TAG(0x0028, 0x0100), 16, NULL);
	dcm_build_u16(b, DCM_TAG(0x0028, 0x0101), 12, NULL);
	dcm_build_u16(b, DCM_TAG(0x0028, 0x0102), 11, NULL);
	dcm_build_u16(b, DCM_TAG(0x0028, 0x0103), (uint16_t)im->is_signed,
	    NULL);
	if (im->center != NULL) {
		dcm_build_string(b, DCM_TAG(0x0028, 0x1050), "DS", im->center,
		    NULL);
		dcm_build_string(b, DCM_TAG(0x0028, 0x1051), "DS", im->width,
		    NULL);
	}
	if (im->function != NULL)
		dcm_build_string(b, DCM_TAG(0x0028, 0x1056), "CS",
		    im->function, NULL);
	if (im->plut != NULL)
		dcm_build_string(b, DCM_TAG(0x2050, 0x0020), "CS", im->plut,
		    NULL);
	if (im->padding != NULL)
		dcm_build_u16(b, DCM_TAG(0x0028, 0x0120),
		    (uint16_t)atoi(im->padding), NULL);
	if (im->spacing != NULL)
		dcm_build_string(b, DCM_TAG(0x0028, 0x0030), "DS",
		    im->spacing, NULL);
	dcm_build_bytes(b, DCM_TAG(0x7fe0, 0x0010), "OW", px, 2 * n, NULL);
	free(px);
	if (dcm_build_encode_file(b, SOP_SC, "1.2.3.4", TS_EXPLICIT, NULL,
	    buf, &len, NULL) == -1 || dcm_parse(*buf, len, 0, &d, NULL) == -1)
		d = NULL;
	dcm_build_free(b);
	return d;
}

/* Render at the image's own size (no reduction); pixel i of the result. */
static int
render_at(const struct img *im, unsigned size, struct render_image *out)
{
	struct render_opts o = { .size = size, .frame = -1 };
	struct err e = { 0 };
	uint8_t *buf = NULL;
	struct dcm *d = make(im, &buf);
	int rc;

	if (d == NULL) {
		free(buf);
		return -1;
	}
	rc = render_dicom(d, NULL, &o, out, &e);
	if (rc == -1)
		printf("# render: %s\n", e.msg);
	dcm_free(d);
	free(buf);
	return rc;
}

static const uint16_t ramp[16] = {
	0, 100, 200, 300, 400, 500, 600, 700,
	800, 900, 1000, 1100, 1200, 1300, 1400, 4095,
};

static void
test_windows(void)
{
	struct img im = { 4, 4, "MONOCHROME2", "500", "401", NULL, NULL,
	    NULL, NULL, 0, ramp };
	struct render_image a, b;

	/* LINEAR, c=500 w=401: x <= 299.5 -> 0, x > 699.5 -> 255,
	 * else ((x - 499.5) / 400 + 0.5) * 255. */
	if (!ok(render_at(&im, 4, &a) == 0, "a 4x4 12-bit image renders"))
		return;
	ok(a.width == 4 && a.height == 4 && a.channels == 1,
	    "no reduction below the requested size");
	ok(a.data[0] == 0 && a.data[2] == 0, "LINEAR: below the window is black");
	ok(a.data[5] == 128, "LINEAR: the centre maps to mid-grey (%d)",
	    a.data[5]);
	ok(a.data[7] == 255 && a.data[15] == 255,
	    "LINEAR: above the window is white");
	ok(a.data[4] == 64, "LINEAR: 400 maps to 64 (%d)", a.data[4]);

	im.function = "SIGMOID";
	if (render_at(&im, 4, &b) == 0) {
		ok(b.data[5] == 128, "SIGMOID: the centre maps to mid-grey");
		ok(b.data[0] > 0 && b.data[0] < 10 && b.data[15] == 255,
		    "SIGMOID: smooth tails (%d at 0)", b.data[0]);
		ok(memcmp(a.data, b.data, 16) != 0,
		    "SIGMOID differs from LINEAR");
		render_image_free(&b);
	}
	im.function = "LINEAR_EXACT";
	im.width = "400";
	if (render_at(&im, 4, &b) == 0) {
		ok(b.data[4] == 64 && b.data[6] == 191,
		    "LINEAR_EXACT: (x - c) / w + 0.5 (%d, %d)", b.data[4],
		    b.data[6]);
		render_image_free(&b);
	}
	im.function = NULL;
	im.width = "401";
	im.photometric = "MONOCHROME1";
	if (render_at(&im, 4, &b) == 0) {
		ok(b.data[0] == 255 && b.data[15] == 0,
		    "MONOCHROME1 is shown inverted");
		render_image_free(&b);
	}
	im.plut = "INVERSE";
	if (render_at(&im, 4, &b) == 0) {
		ok(b.data[0] == 255 && b.data[15] == 0,
		    "MONOCHROME1 with INVERSE is inverted once, not twice");
		render_image_free(&b);
	}
	im.photometric = "MONOCHROME2";
	if (render_at(&im, 4, &b) == 0) {
		ok(b.data[0] == 255 && b.data[15] == 0,
		    "MONOCHROME2 with Presentation LUT Shape INVERSE is inverted");
		render_image_free(&b);
	}
	im.plut = NULL;
	im.center = "500\\2000";
	im.width = "401\\10";
	if (render_at(&im, 4, &b) == 0) {
		ok(memcmp(a.data, b.data, 16) == 0,
		    "with two windows the first is used");
		render_image_free(&b);
	}
	render_image_free(&a);
}

static void
test_min_max_padding(void)
{
	static const uint16_t px[4] = { 4095, 100, 200, 300 };
	struct img im = { 2, 2, "MONOCHROME2", NULL, NULL, NULL, NULL,
	    "4095", NULL, 0, px };
	struct render_image a;

	if (render_at(&im, 2, &a) == 0) {
		ok(a.data[1] == 0 && a.data[3] == 255,
		    "no window: min-max of the values that are not padding");
		render_image_free(&a);
	}
}

static void
test_reduce_and_aspect(void)
{
	static const uint16_t px[16] = {
		0, 0, 4095, 4095,
		0, 0, 4095, 4095,
		1000, 1000, 3000, 3000,
		1000, 1000, 3000, 3000,
	};
	struct img im = { 4, 4, "MONOCHROME2", "2047.5", "4096", NULL, NULL,
	    NULL, NULL, 0, px };
	struct render_image a;
	unsigned w, h;

	if (render_at(&im, 2, &a) == 0) {
		ok(a.width == 2 && a.height == 2, "4x4 reduced to 2x2");
		ok(a.data[0] == 0 && a.data[1] == 255,
		    "area averaging keeps flat blocks exact");
		render_image_free(&a);
	}
	im.spacing = "0.2\\0.1";	/* rows twice as far apart */
	if (render_at(&im, 4, &a) == 0) {
		ok(a.width == 2 && a.height == 4,
		    "non-square pixels: %ux%u for 4x4 at 0.2\\0.1 mm",
		    a.width, a.height);
		render_image_free(&a);
	}
	render_fit(2560, 3328, 1, 400, &w, &h);
	ok(w == 308 && h == 400, "a 2560x3328 mammogram fits 308x400 (%ux%u)",
	    w, h);
	render_fit(100, 50, 1, 400, &w, &h);
	ok(w == 100 && h == 50, "small images are not enlarged");
}

static void
test_signed(void)
{
	/* 12-bit signed: 0xF9C = -100, 0x064 = 100. */
	static const uint16_t px[4] = { 0xf9c, 0x064, 0xf9c, 0x064 };
	struct img im = { 2, 2, "MONOCHROME2", "0", "199", NULL, NULL, NULL,
	    NULL, 1, px };
	struct render_image a;

	if (render_at(&im, 2, &a) == 0) {
		ok(a.data[0] == 0 && a.data[1] == 255,
		    "signed 12-bit values are sign-extended (%d, %d)",
		    a.data[0], a.data[1]);
		render_image_free(&a);
	}
}

static void
test_too_big(void)
{
	static const uint16_t px[1] = { 0 };
	struct img im = { 1, 1, "MONOCHROME2", NULL, NULL, NULL, NULL, NULL,
	    NULL, 0, px };
	struct pixel_frame f;
	struct err e = { 0 };
	uint8_t *buf = NULL;
	struct dcm *d = make(&im, &buf);

	if (d == NULL) {
		ok(0, "dataset for the short-data test");
		free(buf);
		return;
	}
	/* One pixel of data, frame 2 asked: must fail, not read past. */
	ok(pixel_decode(d, NULL, 1, 0, &f, &e) == -1,
	    "a frame past the end fails cleanly: %s", e.msg);
	dcm_free(d);
	free(buf);
}

static void
test_fragments(void)
{
	/* Explicit VR LE dataset: Pixel Data OB, undefined length, an empty
	 * offset table and two fragments. */
	static const uint8_t ds[] = {
		0xe0, 0x7f, 0x10, 0x00, 'O', 'B', 0, 0, 0xff, 0xff, 0xff, 0xff,
		0xfe, 0xff, 0x00, 0xe0, 0, 0, 0, 0,
		0xfe, 0xff, 0x00, 0xe0, 2, 0, 0, 0, 0xaa, 0xbb,
		0xfe, 0xff, 0x00, 0xe0, 4, 0, 0, 0, 1, 2, 3, 4,
		0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0,
	};
	struct dcm_fragment bot, *fr = NULL;
	struct dcm *d;
	size_t n = 0;

	if (!ok(dcm_parse_dataset(ds, sizeof ds, TS_EXPLICIT, 0, &d, NULL) ==
	    0, "an encapsulated dataset parses"))
		return;
	ok(dcm_pixel_fragments(d, dcm_find(d, NULL, DCM_TAG(0x7fe0, 0x10)),
	    &bot, &fr, &n, NULL) == 0 && n == 2 && bot.length == 0 &&
	    fr[0].length == 2 && fr[0].data[0] == 0xaa && fr[1].length == 4 &&
	    fr[1].data[3] == 4, "dcm_pixel_fragments lists the offset table "
	    "and both fragments");
	free(fr);
	dcm_free(d);
}

int
main(void)
{
	test_windows();
	test_min_max_padding();
	test_reduce_and_aspect();
	test_signed();
	test_too_big();
	test_fragments();
	return tap_done();
}
