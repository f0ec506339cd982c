/*
 * dicom_write_test: the dataset builder against our own reader.  Every
 * dataset is encoded in implicit and explicit VR LE, parsed back with
 * dcm_parse_dataset / dcm_parse, and its values compared.  With a
 * directory argument, the Part 10 files are also written there for
 * t/0110-dicom-writer.t to show to dcmdump.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom.h"
#include "tap.h"

#define T_PN	DCM_TAG(0x0010, 0x0010)
#define T_PID	DCM_TAG(0x0010, 0x0020)
#define T_ACC	DCM_TAG(0x0008, 0x0050)
#define T_MOD	DCM_TAG(0x0008, 0x0060)
#define T_SPS	DCM_TAG(0x0040, 0x0100)
#define T_AET	DCM_TAG(0x0040, 0x0001)
#define T_SPSD	DCM_TAG(0x0040, 0x0002)
#define T_CODE	DCM_TAG(0x0008, 0x1032)
#define T_CV	DCM_TAG(0x0008, 0x0100)
#define T_ROWS	DCM_TAG(0x0028, 0x0010)
#define T_UID	DCM_TAG(0x0020, 0x000d)
#define T_DESC	DCM_TAG(0x0008, 0x1030)
#define T_EMPTY	DCM_TAG(0x0010, 0x0030)
#define T_CS	DCM_TAG(0x0008, 0x0005)
#define T_LEN	DCM_TAG(0x0000, 0x0002)

static const char *name = "M\xc3\xbcller^Zo\xc3\xab=\xe5\xb1\xb1\xe7\x94\xb0";
static const char *latin1_view = "M\xc3\xbcller^Zo\xc3\xab=??";

static struct dcm_builder *
sample(void)
{
	struct dcm_builder *b = dcm_build_new();
	struct err e = { 0 };
	int rc = 0;

	/* added out of tag order on purpose */
	rc |= dcm_build_string(b, T_UID, NULL, "1.2.826.0.1.3680043.2.1", &e);
	rc |= dcm_build_string(b, T_PN, NULL, "WRONG^NAME", &e);
	rc |= dcm_build_string(b, T_PN, NULL, name, &e);	/* replaces */
	rc |= dcm_build_string(b, T_PID, NULL, "9434765919", &e);
	rc |= dcm_build_string(b, T_ACC, NULL, "ACC123", &e);
	rc |= dcm_build_empty(b, T_EMPTY, NULL, &e);
	rc |= dcm_build_u16(b, T_ROWS, 512, &e);
	rc |= dcm_build_sequence_begin(b, T_SPS, &e);
	rc |= dcm_build_item_begin(b, &e);
	rc |= dcm_build_string(b, T_SPSD, NULL, "20261128", &e);
	rc |= dcm_build_string(b, T_AET, NULL, "MAMMO1", &e);
	rc |= dcm_build_string(b, T_MOD, NULL, "MG", &e);
	rc |= dcm_build_sequence_begin(b, T_CODE, &e);
	rc |= dcm_build_item_begin(b, &e);
	rc |= dcm_build_string(b, T_CV, NULL, "X1", &e);
	rc |= dcm_build_item_end(b, &e);
	rc |= dcm_build_sequence_end(b, &e);
	rc |= dcm_build_item_end(b, &e);
	rc |= dcm_build_item_begin(b, &e);
	rc |= dcm_build_string(b, T_MOD, NULL, "US", &e);
	rc |= dcm_build_item_end(b, &e);
	rc |= dcm_build_sequence_end(b, &e);
	rc |= dcm_build_sequence_begin(b, DCM_TAG(0x0008, 0x1110), &e);
	rc |= dcm_build_sequence_end(b, &e);
	rc |= dcm_build_string(b, T_DESC, NULL, "odd", &e);
	if (rc != 0) {
		diag("building the sample failed: %s", e.msg);
		dcm_build_free(b);
		return NULL;
	}
	return b;
}

static void
check_values(const struct dcm *d, const char *want_name, const char *what)
{
	char s[256];
	struct err e = { 0 };
	const struct dcm_elem *sq;
	const struct dcm_item *it;
	long rows = 0;

	dcm_get_string(d, NULL, T_PN, 0, s, sizeof s, &e);
	is_str(s, want_name, what);
	s[0] = 0;
	dcm_get_string(d, NULL, T_UID, 0, s, sizeof s, &e);
	is_str(s, "1.2.826.0.1.3680043.2.1", "UID (padded with NUL) reads back");
	s[0] = 0;
	dcm_get_string(d, NULL, T_DESC, 0, s, sizeof s, &e);
	is_str(s, "odd", "odd-length text padded and trimmed");
	ok(dcm_get_string(d, NULL, T_EMPTY, 0, s, sizeof s, &e) == 0,
	    "empty element present with zero length");
	dcm_get_long(d, NULL, T_ROWS, 0, &rows, &e);
	is_long(rows, 512, "US value reads back");
	sq = dcm_find(d, NULL, T_SPS);
	ok(sq != NULL && dcm_item_count(d, sq) == 2,
	    "sequence with two items");
	if (sq == NULL || dcm_item_count(d, sq) != 2)
		return;
	it = dcm_item_at(d, sq, 0);
	s[0] = 0;
	dcm_get_string(d, it, T_AET, 0, s, sizeof s, &e);
	is_str(s, "MAMMO1", "value inside the first item");
	sq = dcm_find(d, it, T_CODE);
	ok(sq != NULL && dcm_item_count(d, sq) == 1, "nested sequence");
	it = dcm_item_at(d, dcm_find(d, NULL, T_SPS), 1);
	s[0] = 0;
	dcm_get_string(d, it, T_MOD, 0, s, sizeof s, &e);
	is_str(s, "US", "value inside the second item");
	sq = dcm_find(d, NULL, DCM_TAG(0x0008, 0x1110));
	ok(sq != NULL && dcm_item_count(d, sq) == 0, "empty sequence");
}

static int
in_order(const struct dcm *d)
{
	size_t i, n = dcm_elem_count(d, NULL);

	for (i = 1; i < n; i++)
		if (dcm_elem_at(d, NULL, i - 1)->tag >=
		    dcm_elem_at(d, NULL, i)->tag)
			return 0;
	return 1;
}

static void
round_trip(const char *ts, const char *cs, const char *want_name)
{
	struct dcm_builder *b = sample();
	struct dcm *d = NULL;
	struct err e = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;
	char s[64];

	if (!ok(b != NULL && dcm_build_encode(b, ts, cs, &buf, &len, &e) == 0,
	    "encode in %s, charset %s", ts, cs ? cs : "(none)")) {
		diag("%s", e.msg);
		dcm_build_free(b);
		return;
	}
	ok(len % 2 == 0, "encoded length is even");
	if (!ok(dcm_parse_dataset(buf, len, ts, 0, &d, &e) == 0,
	    "our reader parses it")) {
		diag("%s", e.msg);
	} else {
		check_values(d, want_name, "person name after charset round trip");
		ok(in_order(d), "elements in tag order");
		s[0] = 0;
		dcm_get_string(d, NULL, T_CS, 0, s, sizeof s, &e);
		is_str(s, cs ? cs : "", "Specific Character Set as asked");
		dcm_free(d);
	}
	free(buf);
	dcm_build_free(b);
}

static void
write_file(const char *dir, const char *file, const uint8_t *buf, size_t len)
{
	char path[1024];
	FILE *f;

	if (dir == NULL)
		return;
	snprintf(path, sizeof path, "%s/%s", dir, file);
	if ((f = fopen(path, "wb")) == NULL)
		return;
	fwrite(buf, 1, len, f);
	fclose(f);
}

static void
part10(const char *dir, const char *ts, const char *file)
{
	struct dcm_builder *b = sample();
	struct dcm *d = NULL;
	struct err e = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;
	char s[128];

	if (!ok(b != NULL && dcm_build_encode_file(b,
	    "1.2.840.10008.5.1.4.31", "1.2.3.4.5", ts, "ISO_IR 192", &buf,
	    &len, &e) == 0, "Part 10 file in %s", ts)) {
		diag("%s", e.msg);
		dcm_build_free(b);
		return;
	}
	ok(len > 132 && memcmp(buf + 128, "DICM", 4) == 0, "preamble and DICM");
	if (ok(dcm_parse(buf, len, DCM_REQUIRE_META, &d, &e) == 0,
	    "our reader parses the file")) {
		is_str(dcm_transfer_syntax(d), ts, "meta names the syntax");
		s[0] = 0;
		dcm_get_string(d, NULL, DCM_TAG(0x0002, 0x0013), 0, s,
		    sizeof s, &e);
		is_str(s, "SCRGW_010", "implementation version name");
		check_values(d, name, "UTF-8 name in the file");
		dcm_free(d);
	} else
		diag("%s", e.msg);
	write_file(dir, file, buf, len);
	free(buf);
	dcm_build_free(b);
}

static void
copy_test(void)
{
	struct dcm_builder *b = sample(), *c = dcm_build_new();
	struct dcm *d = NULL, *d2 = NULL;
	struct err e = { 0 };
	uint8_t *buf = NULL, *buf2 = NULL;
	size_t len = 0, len2 = 0, i;
	int rc = 0;

	if (b == NULL || c == NULL ||
	    dcm_build_encode(b, DCM_TS_EXPLICIT_LE, "ISO_IR 100", &buf, &len,
	    &e) == -1 ||
	    dcm_parse_dataset(buf, len, DCM_TS_EXPLICIT_LE, 0, &d, &e) == -1) {
		ok(0, "copy: setup (%s)", e.msg);
		goto out;
	}
	for (i = 0; i < dcm_elem_count(d, NULL); i++)
		rc |= dcm_build_copy(c, d, dcm_elem_at(d, NULL, i), &e);
	ok(rc == 0, "dcm_build_copy copies every element");
	rc = dcm_build_encode(c, DCM_TS_IMPLICIT_LE, "ISO_IR 192", &buf2,
	    &len2, &e);
	if (ok(rc == 0 && dcm_parse_dataset(buf2, len2, DCM_TS_IMPLICIT_LE, 0,
	    &d2, &e) == 0, "the copy encodes and parses"))
		check_values(d2, latin1_view, "copied name (via Latin-1)");
	else
		diag("%s", e.msg);
out:
	dcm_free(d);
	dcm_free(d2);
	free(buf);
	free(buf2);
	dcm_build_free(b);
	dcm_build_free(c);
}

static void
misuse(void)
{
	struct dcm_builder *b = dcm_build_new();
	struct err e = { 0 };
	uint8_t *buf = NULL;
	size_t len;

	ok(dcm_build_item_begin(b, &e) == -1, "item outside a sequence refused");
	ok(dcm_build_sequence_begin(b, T_SPS, &e) == 0 &&
	    dcm_build_string(b, T_MOD, NULL, "MG", &e) == -1,
	    "element in a sequence without an item refused");
	ok(dcm_build_encode(b, DCM_TS_IMPLICIT_LE, NULL, &buf, &len, &e) == -1,
	    "encoding with a sequence open refused");
	ok(dcm_build_sequence_end(b, &e) == 0 &&
	    dcm_build_string(b, DCM_TAG(0x0009, 0x1001), NULL, "x", &e) == -1,
	    "private tag without a VR refused");
	ok(dcm_build_encode(b, DCM_TS_EXPLICIT_BE, NULL, &buf, &len, &e) == -1,
	    "big endian refused");
	dcm_build_free(b);
}

static void
command_set(void)
{
	struct dcm_builder *b = dcm_build_new();
	struct dcm *d = NULL;
	struct err e = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;
	long v = 0;

	dcm_build_u16(b, DCM_TAG(0x0000, 0x0100), 0x0030, &e);
	dcm_build_u16(b, DCM_TAG(0x0000, 0x0800), 0x0101, &e);
	dcm_build_string(b, T_LEN, "UI", "1.2.840.10008.1.1", &e);
	if (ok(dcm_build_encode(b, DCM_TS_IMPLICIT_LE, NULL, &buf, &len,
	    &e) == 0 && dcm_parse_dataset(buf, len, DCM_TS_IMPLICIT_LE, 0, &d,
	    &e) == 0, "a command set encodes and parses")) {
		dcm_get_long(d, NULL, DCM_TAG(0x0000, 0x0800), 0, &v, &e);
		is_long(v, 0x0101, "CommandDataSetType reads back");
	}
	dcm_free(d);
	free(buf);
	dcm_build_free(b);
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : NULL;

	round_trip(DCM_TS_IMPLICIT_LE, "ISO_IR 192", name);
	round_trip(DCM_TS_EXPLICIT_LE, "ISO_IR 192", name);
	round_trip(DCM_TS_EXPLICIT_LE, "ISO_IR 100", latin1_view);
	round_trip(DCM_TS_IMPLICIT_LE, NULL, "M?ller^Zo?=??");
	part10(dir, DCM_TS_EXPLICIT_LE, "explicit.dcm");
	part10(dir, DCM_TS_IMPLICIT_LE, "implicit.dcm");
	copy_test();
	misuse();
	command_set();
	return tap_done();
}
