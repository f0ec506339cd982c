/*
 * dcmget: a test helper, not a unit test.  Prints top-level values of a
 * DICOM file, one line per tag, for comparison with dcmdump.
 *
 *	dcmget [-a] [-e] FILE gggg,eeee ...
 *
 * Values of a multi-valued element are joined with '\'; an absent element
 * prints "(absent)".  -a parses the whole file (default: stop at pixel
 * data).  -e prints the parse error message on stdout and exits 0 (for
 * tests that expect failure).  Exit status 1 when the parse fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dicom/dicom.h"

static int
print_tag(const struct dcm *d, const char *spec)
{
	unsigned g, el;
	uint32_t tag;
	const struct dcm_elem *elem;
	char buf[4096];
	struct err e;
	int i, vm;

	if (sscanf(spec, "%x,%x", &g, &el) != 2) {
		fprintf(stderr, "dcmget: bad tag %s\n", spec);
		return -1;
	}
	tag = DCM_TAG(g, el);
	if ((elem = dcm_find(d, NULL, tag)) == NULL) {
		printf("(absent)\n");
		return 0;
	}
	vm = dcm_vm(d, elem);
	for (i = 0; i < (vm > 0 ? vm : 1); i++) {
		if (dcm_get_string(d, NULL, tag, i, buf, sizeof buf, &e) == -1)
			snprintf(buf, sizeof buf, "(error: %s)", e.msg);
		printf("%s%s", i > 0 ? "\\" : "", buf);
	}
	printf("\n");
	return 0;
}

int
main(int argc, char **argv)
{
	struct dcm *d;
	struct err e;
	unsigned flags = DCM_STOP_AT_PIXELS;
	int ch, show_error = 0, i, rc = 0;

	while ((ch = getopt(argc, argv, "ae")) != -1) {
		switch (ch) {
		case 'a':
			flags &= ~DCM_STOP_AT_PIXELS;
			break;
		case 'e':
			show_error = 1;
			break;
		default:
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: dcmget [-a] [-e] file gggg,eeee ...\n");
		return 2;
	}
	if (dcm_open(argv[optind], flags, &d, &e) == -1) {
		if (show_error) {
			printf("error %d: %s\n", e.code, e.msg);
			return 0;
		}
		fprintf(stderr, "dcmget: %s\n", e.msg);
		return 1;
	}
	printf("ts=%s meta=%d\n", dcm_transfer_syntax(d), dcm_has_meta(d));
	for (i = optind + 1; i < argc; i++)
		if (print_tag(d, argv[i]) == -1)
			rc = 2;
	dcm_free(d);
	return rc;
}
