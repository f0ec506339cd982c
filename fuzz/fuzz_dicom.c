/*
 * fuzz_dicom: libFuzzer target for the DICOM reader.  Every input is
 * parsed as a file (whole, and stopping at pixel data) and as a bare
 * implicit VR dataset; each parse that succeeds has every value of every
 * element, at every depth, read back as text and as numbers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom.h"

static void
walk(const struct dcm *d, const struct dcm_item *it, int depth)
{
	const struct dcm_elem *el;
	char buf[256];
	struct err e;
	size_t i, k, nitems;
	long l;
	double v;
	int vm, j;

	if (depth > DCM_MAX_DEPTH + 1)
		abort();	/* the reader promised a bound */
	for (i = 0; i < dcm_elem_count(d, it); i++) {
		if ((el = dcm_elem_at(d, it, i)) == NULL)
			abort();
		if (dcm_find(d, it, el->tag) == NULL)
			abort();
		vm = dcm_vm(d, el);
		for (j = 0; j <= vm && j < 8; j++) {
			if (dcm_get_string(d, it, el->tag, j, buf, sizeof buf,
			    &e) >= 0 && strlen(buf) >= sizeof buf)
				abort();
			dcm_get_string(d, it, el->tag, j, buf, 3, &e);
			dcm_get_long(d, it, el->tag, j, &l, &e);
			dcm_get_double(d, it, el->tag, j, &v, &e);
		}
		nitems = dcm_item_count(d, el);
		for (k = 0; k < nitems; k++)
			walk(d, dcm_item_at(d, el, k), depth + 1);
	}
}

/* The character set decoder straight on the input, the set picked by byte 0. */
static void
charsets(const uint8_t *data, size_t size)
{
	static const char *sets[] = { "", "ISO_IR 100", "ISO_IR 192",
	    "GB18030", "\\ISO 2022 IR 87", "ISO 2022 IR 13\\ISO 2022 IR 87",
	    "\\ISO 2022 IR 149", "ISO 2022 IR 6\\ISO 2022 IR 159",
	    "ISO_IR 144", "\\ISO 2022 IR 58", "ISO_IR 13", "GBK" };
	const char *cs;
	char *out;
	size_t n;
	struct err e;

	if (size < 1)
		return;
	cs = sets[data[0] % (sizeof sets / sizeof sets[0])];
	if (dcm_charset_to_utf8(cs, strlen(cs), data + 1, size - 1,
	    data[0] & 0x80, &out, &n, &e) == 0) {
		if (strlen(out) > n)
			abort();
		free(out);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned flags[] = { 0, DCM_STOP_AT_PIXELS,
	    DCM_REQUIRE_META };
	struct dcm *d;
	struct err e;
	size_t i;

	for (i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		e.msg[0] = '\0';
		if (dcm_parse(data, size, flags[i], &d, &e) == 0) {
			walk(d, NULL, 0);
			dcm_transfer_syntax(d);
			dcm_free(d);
		} else if (e.msg[0] == '\0')
			abort();	/* every failure explains itself */
	}
	if (dcm_parse_dataset(data, size, DCM_TS_IMPLICIT_LE, 0, &d, &e) == 0) {
		walk(d, NULL, 0);
		dcm_free(d);
	}
	charsets(data, size);
	return 0;
}
