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
#ifndef GW_RENDER_H
#define GW_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "dicom.h"
#include "err.h"
#include "pixel.h"

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

#endif
