/*
 * fuzz_pixel: libFuzzer target for frame decoding and rendering.  Each
 * input that parses as a DICOM file is decoded (middle frame, at full
 * resolution and with a reduction hint) and rendered to a small preview;
 * no path is given, so the external decompressors are never run.
 */
#include <stdint.h>
#include <stdlib.h>

#include "dicom/dicom.h"
#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct render_opts o = { .size = 32, .frame = -1 };
	struct render_image im;
	struct pixel_frame f;
	struct dcm *d;
	struct err e;

	if (dcm_parse(data, size, 0, &d, &e) == -1)
		return 0;
	if (pixel_decode(d, NULL, 0, 64, &f, &e) == 0) {
		if (f.v == NULL)
			abort();
		pixel_frame_free(&f);
	}
	if (render_dicom(d, NULL, &o, &im, &e) == 0) {
		if (im.width == 0 || im.height == 0 || im.width > 32 ||
		    im.height > 32)
			abort();
		render_image_free(&im);
	}
	o.min_max = 1;
	if (render_dicom(d, NULL, &o, &im, &e) == 0)
		render_image_free(&im);
	dcm_free(d);
	return 0;
}
