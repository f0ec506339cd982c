/*
 * pixdump: a test helper, not a unit test.  Decodes one frame of a DICOM
 * file with lib/image/pixel and prints it for comparison with expected values:
 *
 *	pixdump FILE [FRAME [MIN_SIDE]]
 *
 * Line 1: rows columns samples photometric; line 2: every sample
 * (interleaved, as pixel_decode gives them), space-separated.  FRAME is
 * 0-based (default 0); MIN_SIDE is pixel_decode's reduction hint
 * (default 0: full size).  A failure prints "error: <message>" on stdout
 * and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>

#include "dicom/dicom.h"
#include "image/image.h"

static int
fail(const struct err *e)
{
	printf("error: %s\n", e->msg);
	return 1;
}

int
main(int argc, char **argv)
{
	struct pixel_frame f;
	struct dcm *d;
	struct err e = { 0 };
	size_t n, i;
	int rc;

	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: pixdump FILE [FRAME [MIN_SIDE]]\n");
		return 2;
	}
	if (dcm_open(argv[1], 0, &d, &e) == -1)
		return fail(&e);
	rc = pixel_decode(d, argv[1], argc > 2 ? atol(argv[2]) : 0,
	    argc > 3 ? (unsigned)atol(argv[3]) : 0, &f, &e);
	if (rc == 0) {
		printf("%u %u %u %s\n", f.desc.rows, f.desc.columns,
		    f.desc.samples, f.desc.photometric);
		n = (size_t)f.desc.rows * f.desc.columns * f.desc.samples;
		for (i = 0; i < n; i++)
			printf("%s%d", i ? " " : "", f.v[i]);
		printf("\n");
		pixel_frame_free(&f);
	}
	dcm_free(d);
	return rc == 0 ? 0 : fail(&e);
}
