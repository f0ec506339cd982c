/*
 * dicom_test: the DICOM reader against hand-built datasets, pydicom's test
 * files, the shared corpus and dcmdump's reading of it.
 *
 *	dicom_test PYDICOM_DATA_DIR CORPUS_DIR [EXPECT_TSV]
 *
 * PYDICOM_DATA_DIR holds test_files/ and charset_files/; CORPUS_DIR holds
 * files/ and MANIFEST.tsv.  EXPECT_TSV (written by t/0100-dicom-reader.t)
 * has one line per file: path, dcmdump's exit status ("ok"/"fail"), then
 * dcmdump's top-level Rows, Columns and SOPInstanceUID ("(absent)" when
 * absent).  A missing directory skips its checks with a reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dicom/dicom.h"
#include "tap.h"

static const char *pyd_dir, *corpus_dir, *expect_path;

/* Byte builder for hand-made datasets */

struct bb {
	uint8_t p[1 << 16];
	size_t n;
	int be;
};

static void
b8(struct bb *b, const void *p, size_t n)
{
	if (n > sizeof b->p - b->n)
		abort();
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void
b16(struct bb *b, unsigned v)
{
	uint8_t x[2] = { v & 0xff, v >> 8 & 0xff };

	if (b->be) {
		x[0] = v >> 8 & 0xff;
		x[1] = v & 0xff;
	}
	b8(b, x, 2);
}

static void
b32(struct bb *b, uint32_t v)
{
	if (b->be) {
		b16(b, v >> 16);
		b16(b, v & 0xffff);
	} else {
		b16(b, v & 0xffff);
		b16(b, v >> 16);
	}
}

static void
btag(struct bb *b, uint32_t tag)
{
	b16(b, DCM_GROUP(tag));
	b16(b, DCM_ELEMENT(tag));
}

static int
long_vr(const char *vr)
{
	static const char list[] = "OBODOFOLOVOWSQSVUCUNURUTUV";
	size_t i;

	for (i = 0; list[i] != '\0'; i += 2)
		if (list[i] == vr[0] && list[i + 1] == vr[1])
			return 1;
	return 0;
}

/* Explicit VR element; len UINT32_MAX-1 means "use n". */
static void
bexp(struct bb *b, uint32_t tag, const char *vr, const void *v, size_t n)
{
	btag(b, tag);
	b8(b, vr, 2);
	if (long_vr(vr)) {
		b16(b, 0);
		b32(b, (uint32_t)n);
	} else
		b16(b, (unsigned)n);
	if (v != NULL)
		b8(b, v, n);
}

static void
bimp(struct bb *b, uint32_t tag, const void *v, uint32_t n)
{
	btag(b, tag);
	b32(b, n);
	if (v != NULL)
		b8(b, v, n);
}

static void
bstr(struct bb *b, uint32_t tag, const char *vr, const char *s)
{
	bexp(b, tag, vr, s, strlen(s));
}

/* Preamble, DICM and a meta group naming ts. */
static void
bmeta(struct bb *b, const char *ts)
{
	struct bb m = { .n = 0 };
	size_t n = strlen(ts) + (strlen(ts) & 1);
	char tsbuf[80] = { 0 };

	memcpy(tsbuf, ts, strlen(ts));
	memset(b->p, 0, 128);
	b->n = 128;
	b8(b, "DICM", 4);
	bexp(&m, DCM_TAG(2, 0x0001), "OB", "\0\1", 2);
	bexp(&m, DCM_TAG(2, 0x0010), "UI", tsbuf, n);
	bexp(b, DCM_TAG(2, 0), "UL", NULL, 4);
	b32(b, (uint32_t)m.n);
	b8(b, m.p, m.n);
}

static struct dcm *
parse(const struct bb *b, unsigned flags, struct err *e)
{
	struct dcm *d = NULL;
	uint8_t *copy = malloc(b->n ? b->n : 1);

	/* A heap copy of exact size, so ASan sees any overread; the copy
	 * must outlive d: kept in a small ring, freed at exit. */
	static uint8_t *keep[64];
	static int nkeep;

	if (copy == NULL)
		abort();
	memcpy(copy, b->p, b->n);
	memset(e, 0, sizeof *e);
	if (dcm_parse(copy, b->n, flags, &d, e) == -1) {
		free(copy);
		return NULL;
	}
	free(keep[nkeep % 64]);
	keep[nkeep++ % 64] = copy;
	return d;
}

static char sbuf[1024];

static const char *
str(const struct dcm *d, const struct dcm_item *it, uint32_t tag, int i)
{
	struct err e;

	if (dcm_get_string(d, it, tag, i, sbuf, sizeof sbuf, &e) == -1)
		snprintf(sbuf, sizeof sbuf, "(error %d: %s)", e.code, e.msg);
	return sbuf;
}

static int
contains(const char *s, const char *sub)
{
	return strstr(s, sub) != NULL;
}

/* Hand-made datasets */

static void
test_empty_and_garbage(void)
{
	struct dcm *d;
	struct err e;
	char path[] = "/tmp/dicom_test.XXXXXX";
	uint8_t buf[4096];
	uint32_t x = 12345;
	int fd, i, crashes = 0;
	size_t n, k;

	ok(dcm_parse((const uint8_t *)"", 0, 0, &d, &e) == -1 &&
	    e.code == DCM_E_NOT_DICOM, "zero-length buffer is not DICOM");
	if ((fd = mkstemp(path)) == -1)
		abort();
	close(fd);
	ok(dcm_open(path, 0, &d, &e) == -1 && e.code == DCM_E_NOT_DICOM,
	    "zero-length file is not DICOM: %s", e.msg);
	unlink(path);
	ok(dcm_open("/nonexistent/x.dcm", 0, &d, &e) == -1 &&
	    e.code == ENOENT, "missing file reports ENOENT");
	ok(dcm_parse((const uint8_t *)"hello world, not dicom", 22, 0, &d,
	    &e) == -1 && e.code == DCM_E_NOT_DICOM, "text is not DICOM");
	for (i = 0; i < 3000; i++) {
		n = 1 + i % (int)sizeof buf;
		for (k = 0; k < n; k++) {
			x = x * 1103515245 + 12345;
			buf[k] = x >> 16;
		}
		if (i % 3 == 1 && n > 132)
			memcpy(buf + 128, "DICM", 4);
		if (i % 3 == 2)
			memcpy(buf, "\x08\0\x05\0CS", n < 6 ? n : 6);
		{
			uint8_t *copy = malloc(n);

			memcpy(copy, buf, n);
			if (dcm_parse(copy, n, i & 1, &d, &e) == 0)
				dcm_free(d);
			else if (e.msg[0] == '\0')
				crashes++;
			free(copy);
		}
	}
	ok(crashes == 0, "3000 random buffers parse or fail with a message");
}

static void
test_explicit_basic(void)
{
	struct bb b = { .n = 0 };
	struct dcm *d;
	struct err e;
	char out[8];
	long l;
	double v;
	int r;

	bmeta(&b, DCM_TS_EXPLICIT_LE);
	bstr(&b, DCM_TAG(0x0008, 0x0008), "CS", "ORIGINAL\\PRIMARY ");
	bstr(&b, DCM_TAG(0x0008, 0x0018), "UI", "1.2.3.4");
	bexp(&b, DCM_TAG(0x0008, 0x0018) + 1, "UI", "1.2.3\0", 6);
	bstr(&b, DCM_TAG(0x0010, 0x0010), "PN", " Doe^John ");
	bstr(&b, DCM_TAG(0x0010, 0x4000), "LT", "  indented text  ");
	bstr(&b, DCM_TAG(0x0018, 0x0050), "DS", " 2.50 ");
	bstr(&b, DCM_TAG(0x0020, 0x0013), "IS", "  12");
	bstr(&b, DCM_TAG(0x0028, 0x1050), "DS", "40\\-2e3 ");
	bstr(&b, DCM_TAG(0x0028, 0x1051), "DS", "abc ");
	bexp(&b, DCM_TAG(0x0028, 0x0010), "US", "\x00\x02", 2);
	bexp(&b, DCM_TAG(0x0028, 0x0106), "SS", "\xfe\xff\x05\x00", 4);
	bexp(&b, DCM_TAG(0x0028, 0x0009), "AT", "\x18\x00\x63\x10", 4);
	bexp(&b, DCM_TAG(0x0018, 0x9089), "FD", "\0\0\0\0\0\0\xf8\x3f", 8);
	bexp(&b, DCM_TAG(0x0018, 0x9087), "FL", "\xcd\xcc\xcc\x3d", 4);
	bstr(&b, DCM_TAG(0x0040, 0x0254), "LO", "");
	if (!ok((d = parse(&b, 0, &e)) != NULL, "hand-made explicit VR LE "
	    "file parses: %s", e.msg))
		return;
	is_str(dcm_transfer_syntax(d), DCM_TS_EXPLICIT_LE, "TS from meta");
	ok(dcm_has_meta(d), "has meta");
	is_str(str(d, NULL, DCM_TAG(2, 0x10), 0), DCM_TS_EXPLICIT_LE,
	    "meta elements are found in the root item");
	is_long(dcm_vm(d, dcm_find(d, NULL, DCM_TAG(8, 8))), 2,
	    "ImageType VM 2");
	is_str(str(d, NULL, DCM_TAG(8, 8), 1), "PRIMARY",
	    "second value, padding trimmed");
	ok(dcm_get_string(d, NULL, DCM_TAG(8, 8), 2, out, sizeof out, &e) ==
	    -1 && e.code == DCM_E_NOT_FOUND, "third value absent: NOT_FOUND");
	is_str(str(d, NULL, DCM_TAG(8, 0x19), 0), "1.2.3",
	    "UI trailing NUL trimmed");
	is_str(str(d, NULL, DCM_TAG(0x10, 0x10), 0), "Doe^John",
	    "PN leading and trailing spaces trimmed");
	is_str(str(d, NULL, DCM_TAG(0x10, 0x4000), 0), "  indented text",
	    "LT keeps leading spaces, trims trailing");
	is_str(str(d, NULL, DCM_TAG(0x28, 0x10), 0), "512", "US as decimal");
	is_str(str(d, NULL, DCM_TAG(0x28, 0x106), 1), "5", "SS second value");
	is_str(str(d, NULL, DCM_TAG(0x28, 0x106), 0), "-2", "SS negative");
	is_long(dcm_vm(d, dcm_find(d, NULL, DCM_TAG(0x28, 0x106))), 2,
	    "SS VM from length");
	is_str(str(d, NULL, DCM_TAG(0x28, 0x9), 0), "(0018,1063)",
	    "AT as (gggg,eeee)");
	is_str(str(d, NULL, DCM_TAG(0x18, 0x9089), 0), "1.5", "FD shortest");
	is_str(str(d, NULL, DCM_TAG(0x18, 0x9087), 0), "0.1", "FL shortest");
	ok(dcm_get_long(d, NULL, DCM_TAG(0x20, 0x13), 0, &l, &e) == 0 &&
	    l == 12, "IS with leading spaces as long");
	ok(dcm_get_double(d, NULL, DCM_TAG(0x18, 0x50), 0, &v, &e) == 0 &&
	    v == 2.5, "DS as double");
	ok(dcm_get_double(d, NULL, DCM_TAG(0x28, 0x1050), 1, &v, &e) == 0 &&
	    v == -2000, "DS second value -2e3");
	ok(dcm_get_long(d, NULL, DCM_TAG(0x28, 0x1050), 1, &l, &e) == 0 &&
	    l == -2000, "integral DS as long");
	ok(dcm_get_long(d, NULL, DCM_TAG(0x28, 0x1051), 0, &l, &e) == -1 &&
	    e.code == DCM_E_MALFORMED && contains(e.msg, "(0028,1051)"),
	    "DS 'abc' is not a number: %s", e.msg);
	ok(dcm_get_long(d, NULL, DCM_TAG(0x28, 0x10), 0, &l, &e) == 0 &&
	    l == 512, "US as long");
	ok(dcm_get_double(d, NULL, DCM_TAG(0x18, 0x9089), 0, &v, &e) == 0 &&
	    v == 1.5, "FD as double");
	ok(dcm_get_long(d, NULL, DCM_TAG(0x28, 0x11), 0, &l, &e) == -1 &&
	    e.code == DCM_E_NOT_FOUND, "absent element: NOT_FOUND");
	r = dcm_get_string(d, NULL, DCM_TAG(0x40, 0x254), 0, out, sizeof out,
	    &e);
	ok(r == 0 && out[0] == '\0', "empty value returns 0");
	is_long(dcm_vm(d, dcm_find(d, NULL, DCM_TAG(0x40, 0x254))), 0,
	    "empty value VM 0");
	r = dcm_get_string(d, NULL, DCM_TAG(0x10, 0x4000), 0, out, sizeof out,
	    &e);
	ok(r == 7 && strcmp(out, "  inden") == 0,
	    "output truncated to what fits, NUL-terminated");
	dcm_free(d);
}

static void
test_big_endian(void)
{
	struct bb b = { .n = 0 };
	struct dcm *d;
	struct err e;
	long l;

	bmeta(&b, DCM_TS_EXPLICIT_BE);
	b.be = 1;
	bstr(&b, DCM_TAG(0x0008, 0x0060), "CS", "MG");
	bexp(&b, DCM_TAG(0x0028, 0x0010), "US", "\x01\x02", 2);
	bexp(&b, DCM_TAG(0x0028, 0x0011), "US", "\x00\x03\x00\x04", 4);
	bexp(&b, DCM_TAG(0x0028, 0x0106), "SS", "\xff\xfe", 2);
	bexp(&b, DCM_TAG(0x0028, 0x0009), "AT", "\x00\x18\x10\x63", 4);
	bexp(&b, DCM_TAG(0x0018, 0x9089), "FD", "\x3f\xf8\0\0\0\0\0\0", 8);
	bexp(&b, DCM_TAG(0x0018, 0x1150), "UL", "\x00\x01\x00\x00", 4);
	if (!ok((d = parse(&b, 0, &e)) != NULL, "explicit VR BE parses: %s",
	    e.msg))
		return;
	is_str(dcm_transfer_syntax(d), DCM_TS_EXPLICIT_BE, "BE syntax");
	is_str(str(d, NULL, DCM_TAG(0x28, 0x10), 0), "258", "BE US swapped");
	is_str(str(d, NULL, DCM_TAG(0x28, 0x11), 1), "4", "BE US value 2");
	is_str(str(d, NULL, DCM_TAG(0x28, 0x106), 0), "-2", "BE SS");
	is_str(str(d, NULL, DCM_TAG(0x28, 0x9), 0), "(0018,1063)", "BE AT");
	is_str(str(d, NULL, DCM_TAG(0x18, 0x9089), 0), "1.5", "BE FD");
	ok(dcm_get_long(d, NULL, DCM_TAG(0x18, 0x1150), 0, &l, &e) == 0 &&
	    l == 65536, "BE UL as long");
	is_str(str(d, NULL, DCM_TAG(0x8, 0x60), 0), "MG", "BE string");
	dcm_free(d);
}

/* n nested undefined-length sequences in implicit VR LE, no meta. */
static void
build_nested(struct bb *b, int n)
{
	int i;

	b->n = 0;
	bimp(b, DCM_TAG(0x0008, 0x0060), "MR", 2);
	for (i = 0; i < n; i++) {
		bimp(b, DCM_TAG(0x0008, 0x1115), NULL, 0xffffffff);
		bimp(b, DCM_TAG(0xfffe, 0xe000), NULL, 0xffffffff);
	}
	bimp(b, DCM_TAG(0x0008, 0x1155), "1.2.840.99", 10);
	for (i = 0; i < n; i++) {
		bimp(b, DCM_TAG(0xfffe, 0xe00d), NULL, 0);
		bimp(b, DCM_TAG(0xfffe, 0xe0dd), NULL, 0);
	}
	bimp(b, DCM_TAG(0x0020, 0x0013), "7 ", 2);
}

static void
test_nesting(void)
{
	struct bb b = { .n = 0 };
	struct dcm *d;
	struct err e;
	const struct dcm_item *it = NULL;
	const struct dcm_elem *sq;
	int depth = 0;

	build_nested(&b, DCM_MAX_DEPTH);
	if (ok((d = parse(&b, 0, &e)) != NULL, "%d nested undefined-length "
	    "sequences (implicit, no meta) parse: %s", DCM_MAX_DEPTH, e.msg)) {
		is_str(dcm_transfer_syntax(d), DCM_TS_IMPLICIT_LE,
		    "implicit VR LE guessed");
		ok(!dcm_has_meta(d), "no meta");
		while ((sq = dcm_find(d, it, DCM_TAG(8, 0x1115))) != NULL &&
		    dcm_item_count(d, sq) == 1) {
			it = dcm_item_at(d, sq, 0);
			depth++;
		}
		is_long(depth, DCM_MAX_DEPTH, "walked down every level");
		is_str(str(d, it, DCM_TAG(8, 0x1155), 0), "1.2.840.99",
		    "innermost value");
		is_str(str(d, NULL, DCM_TAG(0x20, 0x13), 0), "7",
		    "element after the sequences belongs to the root");
		is_long((long)dcm_elem_count(d, NULL), 3, "root has 3 elements");
		dcm_free(d);
	}
	build_nested(&b, DCM_MAX_DEPTH + 1);
	ok(parse(&b, 0, &e) == NULL && e.code == DCM_E_TOO_DEEP,
	    "nesting beyond DCM_MAX_DEPTH fails: %s", e.msg);
	build_nested(&b, 3);
	b.n -= 10 + 8 * 3;	/* cut inside the delimiters */
	ok(parse(&b, 0, &e) == NULL && e.code == DCM_E_TRUNCATED,
	    "unterminated undefined-length item fails: %s", e.msg);
}

static void
test_bogus_lengths(void)
{
	struct bb b = { .n = 0 };
	struct dcm *d;
	struct err e;

	bmeta(&b, DCM_TS_EXPLICIT_LE);
	bstr(&b, DCM_TAG(0x0008, 0x0060), "CS", "CT");
	btag(&b, DCM_TAG(0x0010, 0x4000));
	b8(&b, "UT\0\0", 4);
	b32(&b, 0xfffffff0);
	b8(&b, "some text", 9);
	ok(parse(&b, 0, &e) == NULL && e.code == DCM_E_TRUNCATED &&
	    contains(e.msg, "(0010,4000)") && contains(e.msg, "4294967280"),
	    "huge bogus length: %s", e.msg);

	b.n = 0;
	bmeta(&b, DCM_TS_EXPLICIT_LE);
	btag(&b, DCM_TAG(0x0028, 0x0010));
	b8(&b, "US", 2);
	b16(&b, 4);
	b8(&b, "\x01", 1);
	ok(parse(&b, 0, &e) == NULL && e.code == DCM_E_TRUNCATED &&
	    contains(e.msg, "(0028,0010)"), "short US value: %s", e.msg);

	b.n = 0;
	bmeta(&b, DCM_TS_EXPLICIT_LE);
	bstr(&b, DCM_TAG(0x0008, 0x0060), "CS", "CT");
	btag(&b, DCM_TAG(0x0008, 0x0070));
	b8(&b, "  ", 2);
	b16(&b, 4);
	b8(&b, "ACME", 4);
	if (ok((d = parse(&b, 0, &e)) != NULL, "VR '  ' read with a 2-byte "
	    "length, as dcmtk does: %s", e.msg)) {
		is_str(str(d, NULL, DCM_TAG(8, 0x70), 0), "ACME",
		    "its value is kept, VR UN");
		dcm_free(d);
	}
	b.n = 0;
	bmeta(&b, DCM_TS_EXPLICIT_LE);
	bstr(&b, DCM_TAG(0x0008, 0x0060), "CS", "CT");
	btag(&b, DCM_TAG(0x0008, 0x0070));
	b8(&b, "ZZ\0\0", 4);
	b32(&b, 4);
	b8(&b, "ACME", 4);
	if (ok((d = parse(&b, 0, &e)) != NULL, "unknown capital VR 'ZZ' "
	    "read with a 4-byte length (future VRs): %s", e.msg))
		dcm_free(d);
}

static void
test_delimiters_and_padding(void)
{
	struct bb b = { .n = 0 };
	struct dcm *d;
	struct err e;

	bmeta(&b, DCM_TS_EXPLICIT_LE);
	bstr(&b, DCM_TAG(0x0008, 0x0060), "CS", "CT");
	btag(&b, DCM_TAG(0xfffe, 0xe00d));
	b32(&b, 0);
	btag(&b, DCM_TAG(0xfffe, 0xe0dd));
	b32(&b, 0);
	bstr(&b, DCM_TAG(0x0010, 0x0020), "LO", "ID1 ");
	bexp(&b, DCM_TAG(0xfffc, 0xfffc), "OB", "\0\0\0\0", 4);
	memset(b.p + b.n, 0, 7);
	b.n += 7;
	if (ok((d = parse(&b, 0, &e)) != NULL, "stray delimiters, (FFFC,FFFC)"
	    " padding and trailing zero bytes are tolerated: %s", e.msg)) {
		is_str(str(d, NULL, DCM_TAG(0x10, 0x20), 0), "ID1",
		    "element after stray delimiters");
		ok(dcm_find(d, NULL, DCM_TAG(0xfffc, 0xfffc)) != NULL,
		    "padding element recorded");
		dcm_free(d);
	}
	b.n = 0;
	bmeta(&b, DCM_TS_EXPLICIT_LE);
	btag(&b, DCM_TAG(0xfffe, 0xe000));
	b32(&b, 0);
	ok(parse(&b, 0, &e) == NULL && e.code == DCM_E_MALFORMED,
	    "item outside a sequence: %s", e.msg);
}

static void
test_un_undefined(void)
{
	struct bb b = { .n = 0 };
	struct dcm *d;
	struct err e;
	const struct dcm_elem *sq;
	const struct dcm_item *it;

	bmeta(&b, DCM_TS_EXPLICIT_LE);
	bstr(&b, DCM_TAG(0x0008, 0x0060), "CS", "CT");
	btag(&b, DCM_TAG(0x0009, 0x1010));
	b8(&b, "UN\0\0", 4);
	b32(&b, 0xffffffff);
	bimp(&b, DCM_TAG(0xfffe, 0xe000), NULL, 0xffffffff);
	bimp(&b, DCM_TAG(0x0008, 0x0100), "T-1234", 6);
	bimp(&b, DCM_TAG(0x0028, 0x0010), "\x10\x00", 2);
	bimp(&b, DCM_TAG(0xfffe, 0xe00d), NULL, 0);
	bimp(&b, DCM_TAG(0xfffe, 0xe0dd), NULL, 0);
	bstr(&b, DCM_TAG(0x0010, 0x0020), "LO", "ID2 ");
	if (!ok((d = parse(&b, 0, &e)) != NULL, "explicit UN of undefined "
	    "length parses as implicit VR LE sequence: %s", e.msg))
		return;
	sq = dcm_find(d, NULL, DCM_TAG(9, 0x1010));
	ok(sq != NULL && strcmp(sq->vr, "SQ") == 0 && sq->value == NULL &&
	    dcm_item_count(d, sq) == 1, "UN became a sequence with one item");
	it = dcm_item_at(d, sq, 0);
	is_str(str(d, it, DCM_TAG(8, 0x100), 0), "T-1234",
	    "item's implicit SH value");
	is_str(str(d, it, DCM_TAG(0x28, 0x10), 0), "16",
	    "item's implicit US takes its VR from the dictionary");
	is_str(str(d, NULL, DCM_TAG(0x10, 0x20), 0), "ID2",
	    "explicit VR resumes after the sequence");
	ok(dcm_item_at(d, sq, 1) == NULL, "no second item");
	dcm_free(d);
}

static void
test_deflate(void)
{
	struct bb ds = { .n = 0 }, b = { .n = 0 };
	struct dcm *d;
	struct err e;
	z_stream zs;
	uint8_t z[4096];

	bstr(&ds, DCM_TAG(0x0008, 0x0060), "CS", "MG");
	bstr(&ds, DCM_TAG(0x0010, 0x0010), "PN", "Deflated^Dora");
	bexp(&ds, DCM_TAG(0x0028, 0x0010), "US", "\x00\x01", 2);
	memset(&zs, 0, sizeof zs);
	if (deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	zs.next_in = ds.p;
	zs.avail_in = (uInt)ds.n;
	zs.next_out = z;
	zs.avail_out = sizeof z;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
		abort();
	bmeta(&b, DCM_TS_DEFLATED_LE);
	b8(&b, z, zs.total_out);
	deflateEnd(&zs);
	if (ok((d = parse(&b, 0, &e)) != NULL, "hand-made deflated file: %s",
	    e.msg)) {
		is_str(str(d, NULL, DCM_TAG(0x10, 0x10), 0), "Deflated^Dora",
		    "inflated PN");
		is_str(str(d, NULL, DCM_TAG(0x28, 0x10), 0), "256",
		    "inflated US");
		is_str(dcm_transfer_syntax(d), DCM_TS_DEFLATED_LE,
		    "deflated syntax reported");
		dcm_free(d);
	}
	b.n -= 5;
	ok(parse(&b, 0, &e) == NULL, "truncated deflate stream fails: %s",
	    e.msg);
	b.n = 0;
	bmeta(&b, DCM_TS_DEFLATED_LE);
	b8(&b, "\xff\xff\xff\xfe garbage that is not deflate", 32);
	ok(parse(&b, 0, &e) == NULL && e.code == DCM_E_DEFLATE,
	    "garbage deflate stream: %s", e.msg);
}

/*
 * A deflated data set whose header passes the first part the reader
 * inflates (a 3 MB private value before Patient Name): with
 * DCM_STOP_AT_PIXELS it inflates more until the pixel data, and stops
 * there; whole, it reads the 4 MB of pixel data after it.
 */
static void
test_deflate_large(void)
{
	size_t big = (size_t)3 << 20, px = (size_t)4 << 20;
	size_t n = 64 + big + 64 + px, cap = n + 4096, len;
	uint8_t *ds = calloc(1, n), *file = malloc(cap + 1024);
	struct bb meta = { .n = 0 }, hdr = { .n = 0 };
	const struct dcm_elem *el;
	struct dcm *d;
	struct err e;
	z_stream zs;
	size_t k = 0;

	if (ds == NULL || file == NULL)
		abort();
	bstr(&hdr, DCM_TAG(0x0008, 0x0060), "CS", "MG");
	bexp(&hdr, DCM_TAG(0x0009, 0x1010), "OB", NULL, big);
	memcpy(ds, hdr.p, hdr.n);
	k = hdr.n + big;		/* the private value: zeros */
	hdr.n = 0;
	bstr(&hdr, DCM_TAG(0x0010, 0x0010), "PN", "After^Big");
	bexp(&hdr, DCM_TAG(0x7fe0, 0x0010), "OW", NULL, px);
	memcpy(ds + k, hdr.p, hdr.n);
	k += hdr.n;
	for (size_t i = 0; i < px; i++)	/* pixels, a little texture */
		ds[k + i] = (uint8_t)(i * 7 >> 3);
	k += px;
	bmeta(&meta, DCM_TS_DEFLATED_LE);
	memcpy(file, meta.p, meta.n);
	memset(&zs, 0, sizeof zs);
	if (deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		abort();
	zs.next_in = ds;
	zs.avail_in = (uInt)k;
	zs.next_out = file + meta.n;
	zs.avail_out = (uInt)(cap + 1024 - meta.n);
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
		abort();
	len = meta.n + zs.total_out;
	deflateEnd(&zs);
	if (ok(dcm_parse(file, len, DCM_STOP_AT_PIXELS, &d, &e) == 0,
	    "a deflated header of 3 MB is read up to the pixel data")) {
		is_str(str(d, NULL, DCM_TAG(0x10, 0x10), 0), "After^Big",
		    "... the element after the 3 MB value is there");
		ok(dcm_find(d, NULL, DCM_TAG(0x7fe0, 0x0010)) == NULL,
		    "... and the parse stopped at the pixel data");
		dcm_free(d);
	}
	if (ok(dcm_parse(file, len, 0, &d, &e) == 0, "read whole")) {
		el = dcm_find(d, NULL, DCM_TAG(0x7fe0, 0x0010));
		ok(el != NULL && el->length == px && el->value[px - 1] ==
		    (uint8_t)((px - 1) * 7 >> 3), "... with its 4 MB of pixels");
		dcm_free(d);
	}
	/* 16 bytes of deflate: a few kilobytes inflated, inside the 3 MB */
	if (!ok(dcm_parse(file, meta.n + 16, DCM_STOP_AT_PIXELS, &d, &e) == -1,
	    "a deflated stream cut before the pixel data fails: %s", e.msg))
		dcm_free(d);
	free(ds);
	free(file);
}

static void
test_implicit_meta_mismatch(void)
{
	struct bb b = { .n = 0 };
	struct dcm *d;
	struct err e;

	bmeta(&b, DCM_TS_EXPLICIT_LE);
	bimp(&b, DCM_TAG(0x0008, 0x0060), "MR", 2);
	bimp(&b, DCM_TAG(0x0028, 0x0010), "\x40\x00", 2);
	if (ok((d = parse(&b, 0, &e)) != NULL, "meta says explicit, dataset "
	    "is implicit: read anyway: %s", e.msg)) {
		is_str(str(d, NULL, DCM_TAG(0x28, 0x10), 0), "64",
		    "implicit US read");
		is_str(dcm_transfer_syntax(d), DCM_TS_IMPLICIT_LE,
		    "syntax actually used is reported");
		dcm_free(d);
	}
	b.n = 0;
	bstr(&b, DCM_TAG(0x0008, 0x0060), "CS", "MR");
	bexp(&b, DCM_TAG(0x0028, 0x0010), "US", "\x40\x00", 2);
	ok((d = parse(&b, DCM_REQUIRE_META, &e)) == NULL &&
	    e.code == DCM_E_NOT_DICOM, "DCM_REQUIRE_META rejects a bare "
	    "dataset");
	if (ok(dcm_parse_dataset(b.p, b.n, DCM_TS_EXPLICIT_LE, 0, &d, &e) ==
	    0, "dcm_parse_dataset with a known syntax: %s", e.msg)) {
		is_str(str(d, NULL, DCM_TAG(0x28, 0x10), 0), "64",
		    "bare explicit dataset value");
		dcm_free(d);
	}
}

static void
test_dictionary(void)
{
	const struct dcm_dict_entry *ent;

	ent = dcm_dict_lookup(DCM_TAG(0x0010, 0x0010));
	ok(ent != NULL && strcmp(ent->vr, "PN") == 0 &&
	    strcmp(ent->keyword, "PatientName") == 0, "dict: PatientName");
	ent = dcm_dict_lookup(DCM_TAG(0x6002, 0x3000));
	ok(ent != NULL && strcmp(ent->vr, "OW") == 0, "dict: (6002,3000) "
	    "repeating group, ox -> OW");
	ok(dcm_dict_lookup(DCM_TAG(0x6001, 0x3000)) == NULL ||
	    strcmp(dcm_dict_lookup(DCM_TAG(0x6001, 0x3000))->vr, "OW") != 0,
	    "dict: odd group 6001 is not an overlay");
	ent = dcm_dict_lookup(DCM_TAG(0x5010, 0x0005));
	ok(ent != NULL && strcmp(ent->vr, "US") == 0, "dict: (50xx,0005)");
	ent = dcm_dict_lookup(DCM_TAG(0x0020, 0x3102));
	ok(ent != NULL && strcmp(ent->vr, "CS") == 0, "dict: (0020,3100-31FF)"
	    " element range");
	ent = dcm_dict_lookup(DCM_TAG(0x0029, 0x0010));
	ok(ent != NULL && strcmp(ent->vr, "LO") == 0, "dict: private creator "
	    "is LO");
	ok(dcm_dict_lookup(DCM_TAG(0x0029, 0x1010)) == NULL, "dict: private "
	    "data element unknown");
	ent = dcm_dict_lookup(DCM_TAG(0x0029, 0x0000));
	ok(ent != NULL && strcmp(ent->vr, "UL") == 0, "dict: group length UL");
	ent = dcm_dict_lookup(DCM_TAG(0x0028, 0x0106));
	ok(ent != NULL && strcmp(ent->vr, "US") == 0, "dict: xs -> US");
	ent = dcm_dict_lookup(DCM_TAG(0x7fe0, 0x0010));
	ok(ent != NULL && strcmp(ent->vr, "OW") == 0, "dict: pixel data OW");
	ent = dcm_dict_by_keyword("SOPInstanceUID");
	ok(ent != NULL && ent->tag == DCM_TAG(8, 0x18), "dict: by keyword");
	ent = dcm_dict_by_keyword("SourceImageIDs");
	ok(ent != NULL && ent->tag == DCM_TAG(0x20, 0x3100),
	    "dict: retired keyword without RETIRED_ prefix");
	ok(dcm_dict_by_keyword("NoSuchKeyword") == NULL, "dict: unknown "
	    "keyword");
	ent = dcm_dict_lookup(DCM_TAG(0xfffc, 0xfffc));
	ok(ent != NULL && strcmp(ent->keyword, "DataSetTrailingPadding") == 0,
	    "dict: (FFFC,FFFC) (tags above 2^31)");
	ent = dcm_dict_lookup(DCM_TAG(0xfffe, 0xe000));
	ok(ent != NULL && strcmp(ent->keyword, "Item") == 0, "dict: "
	    "(FFFE,E000) Item, distinct from the delimiters");
}

/* Every exact tag of dicom.dic is found, with its keyword. */
static void
test_dictionary_complete(const char *dic)
{
	FILE *f = fopen(dic, "r");
	char line[512], kw[256], vr[8];
	unsigned g, el;
	int n = 0, bad = 0;
	const struct dcm_dict_entry *ent;
	const char *want;

	if (f == NULL) {
		ok(1, "# SKIP %s: %s", dic, strerror(errno));
		return;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, "(%4x,%4x)\t%7s\t%255s", &g, &el, vr, kw) != 4 ||
		    line[5] != ',' || line[10] != ')')
			continue;
		n++;
		want = strncmp(kw, "RETIRED_", 8) == 0 ? kw + 8 : kw;
		ent = dcm_dict_lookup(DCM_TAG(g, el));
		if (ent == NULL || ent->tag != DCM_TAG(g, el) ||
		    strcmp(ent->keyword, want) != 0) {
			if (bad++ < 5)
				diag("(%04X,%04X) %s: got %s", g, el, want,
				    ent ? ent->keyword : "nothing");
		}
	}
	fclose(f);
	ok(n > 4000 && bad == 0, "dict: all %d exact tags of %s found by "
	    "bsearch (%d wrong)", n, dic, bad);
}

static void
test_charset_direct(void)
{
	char *out;
	size_t n;
	struct err e;
	static const struct {
		const char *cs, *in, *want;
		int pn;
	} cases[] = {
		{ "ISO_IR 100", "Buc^J\xe9r\xf4me", "Buc^Jérôme", 1 },
		{ "ISO_IR 101", "\xa1\xb1", "Ąą", 0 },
		{ "ISO_IR 144", "\xbb\xee\xda" "ce\xdc\xd1yp\xd3", "Люкceмбypг", 1 },
		{ "ISO_IR 192", "ok \xff end", "ok \xef\xbf\xbd end", 0 },
		{ "GB18030", "Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab=",
		    "Wang^XiaoDong=王^小东=", 1 },
		{ "\\ISO 2022 IR 87", "Yamada^Tarou=\x1b$B;3ED\x1b(B^"
		    "\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B",
		    "Yamada^Tarou=山田^太郎=やまだ^たろう", 1 },
		{ "ISO 2022 IR 13\\ISO 2022 IR 87", "\xd4\xcf\xc0\xde^\xc0"
		    "\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\x1b$B$d$^$@"
		    "\x1b(J^\x1b$B$?$m$&\x1b(J",
		    "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう", 1 },
		{ "\\ISO 2022 IR 149", "Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C"
		    "\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf",
		    "Hong^Gildong=洪^吉洞=홍^길동", 1 },
		{ "", "caf\xe9", "café", 0 },
		{ "ISO_IR 6", "plain", "plain", 0 },
		{ "ISO 2022 IR 6\\ISO 2022 IR 100", "\x1b-A\xe9t\xe9",
		    "été", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (dcm_charset_to_utf8(cases[i].cs, strlen(cases[i].cs),
		    (const uint8_t *)cases[i].in, strlen(cases[i].in),
		    cases[i].pn, &out, &n, &e) == -1) {
			ok(0, "charset '%s': %s", cases[i].cs, e.msg);
			continue;
		}
		is_str(out, cases[i].want, cases[i].cs[0] ? cases[i].cs :
		    "default repertoire, high bytes as Latin-1");
		ok(n == strlen(out), "  length returned");
		free(out);
	}
}

/* Files */

static char *
path_in(const char *dir, const char *sub, const char *name)
{
	static char p[4][4096];
	static int k;

	k = (k + 1) % 4;
	snprintf(p[k], sizeof p[k], "%s/%s/%s", dir, sub, name);
	return p[k];
}

static int
exists(const char *path)
{
	return access(path, R_OK) == 0;
}

static struct dcm *
open_ok(const char *path, unsigned flags, const char *what)
{
	struct dcm *d;
	struct err e;

	e.msg[0] = '\0';
	if (dcm_open(path, flags, &d, &e) == -1)
		d = NULL;
	ok(d != NULL, "%s parses%s%s", what, d ? "" : ": ", d ? "" : e.msg);
	return d;
}

struct file_case {
	const char *name;
	const char *ts;
	const char *rows, *cols;
	const char *what;
};

static void
test_pydicom_files(void)
{
	static const struct file_case cases[] = {
		{ "CT_small.dcm", DCM_TS_EXPLICIT_LE, "128", "128",
		    "explicit VR LE" },
		{ "MR_small_implicit.dcm", DCM_TS_IMPLICIT_LE, "64", "64",
		    "implicit VR LE" },
		{ "MR_small_bigendian.dcm", DCM_TS_EXPLICIT_BE, "64", "64",
		    "explicit VR BE" },
		{ "ExplVR_BigEnd.dcm", DCM_TS_EXPLICIT_BE, "60", "80",
		    "explicit VR BE (RGB)" },
		{ "image_dfl.dcm", DCM_TS_DEFLATED_LE, "512", "512",
		    "deflated explicit VR LE" },
		{ "JPEG2000.dcm", "1.2.840.10008.1.2.4.91", "1024", "256",
		    "encapsulated J2K" },
		{ "MR_small_RLE.dcm", "1.2.840.10008.1.2.5", "64", "64",
		    "encapsulated RLE" },
		{ "JPEG-lossy.dcm", "1.2.840.10008.1.2.4.51", "1024", "256",
		    "encapsulated JPEG" },
		{ "SC_rgb_jpeg_dcmtk.dcm", "1.2.840.10008.1.2.4.50", "100",
		    "100", "encapsulated JPEG baseline" },
		{ "JPEG2000-embedded-sequence-delimiter.dcm",
		    "1.2.840.10008.1.2.4.91", NULL, NULL,
		    "J2K fragment containing a sequence delimiter" },
		{ "MR_small_jpeg_ls_lossless.dcm", "1.2.840.10008.1.2.4.80",
		    "64", "64", "encapsulated JPEG-LS" },
	};
	size_t i;
	unsigned f;
	struct dcm *d;
	const char *p;
	const struct dcm_elem *px;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		p = path_in(pyd_dir, "test_files", cases[i].name);
		for (f = 0; f <= DCM_STOP_AT_PIXELS; f += DCM_STOP_AT_PIXELS) {
			char what[256];

			snprintf(what, sizeof what, "%s %s (%s)", cases[i].what,
			    cases[i].name, f ? "stop at pixels" : "whole");
			if ((d = open_ok(p, f, what)) == NULL)
				continue;
			is_str(dcm_transfer_syntax(d), cases[i].ts,
			    "  transfer syntax");
			if (cases[i].rows != NULL) {
				is_str(str(d, NULL, DCM_TAG(0x28, 0x10), 0),
				    cases[i].rows, "  Rows");
				is_str(str(d, NULL, DCM_TAG(0x28, 0x11), 0),
				    cases[i].cols, "  Columns");
			}
			px = dcm_find(d, NULL, DCM_TAG(0x7fe0, 0x10));
			if (f)
				ok(px == NULL, "  stopped before pixel data");
			else if (strcmp(cases[i].ts, DCM_TS_EXPLICIT_LE) &&
			    strcmp(cases[i].ts, DCM_TS_IMPLICIT_LE) &&
			    strcmp(cases[i].ts, DCM_TS_EXPLICIT_BE) &&
			    strcmp(cases[i].ts, DCM_TS_DEFLATED_LE))
				ok(px != NULL && px->value == NULL &&
				    px->length == 0xffffffff, "  encapsulated "
				    "pixel data skipped, value NULL");
			else
				ok(px != NULL && px->value != NULL &&
				    px->length > 0, "  native pixel data "
				    "points into the buffer");
			dcm_free(d);
		}
	}
}

static void
test_pydicom_special(void)
{
	struct dcm *d;
	struct err e;
	const struct dcm_elem *sq;
	const struct dcm_item *it;
	const char *p;

	p = path_in(pyd_dir, "test_files", "MR_truncated.dcm");
	if ((d = open_ok(p, DCM_STOP_AT_PIXELS, "MR_truncated.dcm, stopping "
	    "before the cut pixel data")) != NULL) {
		is_str(str(d, NULL, DCM_TAG(0x28, 0x10), 0), "64", "  Rows");
		dcm_free(d);
	}
	ok(dcm_open(p, 0, &d, &e) == -1 && e.code == DCM_E_TRUNCATED &&
	    contains(e.msg, "(7FE0,0010)"), "MR_truncated.dcm whole: %s",
	    e.msg);
	p = path_in(pyd_dir, "test_files", "rtplan_truncated.dcm");
	ok(dcm_open(p, DCM_STOP_AT_PIXELS, &d, &e) == -1 &&
	    e.code == DCM_E_TRUNCATED, "rtplan_truncated.dcm: %s", e.msg);

	p = path_in(pyd_dir, "test_files", "UN_sequence.dcm");
	if ((d = open_ok(p, DCM_STOP_AT_PIXELS, "UN_sequence.dcm")) != NULL) {
		sq = dcm_find(d, NULL, DCM_TAG(0x4453, 0x100c));
		ok(sq != NULL && strcmp(sq->vr, "SQ") == 0 &&
		    dcm_item_count(d, sq) == 1, "  private UN of undefined "
		    "length read as a sequence");
		it = dcm_item_at(d, sq, 0);
		sq = it ? dcm_find(d, it, DCM_TAG(0x0008, 0x1115)) : NULL;
		it = sq ? dcm_item_at(d, sq, 0) : NULL;
		sq = it ? dcm_find(d, it, DCM_TAG(0x0008, 0x1199)) : NULL;
		it = sq ? dcm_item_at(d, sq, 0) : NULL;
		is_str(it ? str(d, it, DCM_TAG(0x0008, 0x1155), 0) : "(none)",
		    "1.2.840.113619.2.327.3.185221411.476.1398588726.278.80",
		    "  value three undefined-length levels down (implicit)");
		dcm_free(d);
	}
	p = path_in(pyd_dir, "test_files", "ExplVR_BigEndNoMeta.dcm");
	if ((d = open_ok(p, 0, "ExplVR_BigEndNoMeta.dcm (BE, no meta)"))) {
		is_str(dcm_transfer_syntax(d), DCM_TS_EXPLICIT_BE,
		    "  BE guessed");
		is_str(str(d, NULL, DCM_TAG(8, 0x18), 0), "1.2.333.4444.5.6.7.8",
		    "  SOPInstanceUID");
		dcm_free(d);
	}
	p = path_in(pyd_dir, "test_files", "ExplVR_LitEndNoMeta.dcm");
	if ((d = open_ok(p, 0, "ExplVR_LitEndNoMeta.dcm (no meta)"))) {
		is_str(dcm_transfer_syntax(d), DCM_TS_EXPLICIT_LE,
		    "  explicit LE guessed");
		dcm_free(d);
	}
	p = path_in(pyd_dir, "test_files", "meta_missing_tsyntax.dcm");
	if ((d = open_ok(p, 0, "meta_missing_tsyntax.dcm"))) {
		ok(dcm_has_meta(d), "  has meta");
		is_str(dcm_transfer_syntax(d), DCM_TS_IMPLICIT_LE,
		    "  implicit guessed from the first element");
		dcm_free(d);
	}
	p = path_in(pyd_dir, "test_files", "nested_priv_SQ.dcm");
	if ((d = open_ok(p, 0, "nested_priv_SQ.dcm (implicit private "
	    "sequences)"))) {
		ok(dcm_elem_count(d, NULL) > 0, "  has elements");
		dcm_free(d);
	}
	p = path_in(pyd_dir, "test_files", "CT_small.dcm");
	if ((d = open_ok(p, DCM_REQUIRE_META, "CT_small.dcm with "
	    "DCM_REQUIRE_META"))) {
		is_long(dcm_vm(d, dcm_find(d, NULL, DCM_TAG(8, 8))), 3,
		    "  ImageType VM 3");
		is_str(str(d, NULL, DCM_TAG(8, 8), 2), "AXIAL",
		    "  ImageType value 3");
		dcm_free(d);
	}
}

struct cs_case {
	const char *file;
	uint32_t tag;
	int value;
	const char *want;
};

static void
test_charset_files(void)
{
	static const struct cs_case cases[] = {
		{ "chrFren.dcm", DCM_TAG(0x10, 0x10), 0, "Buc^Jérôme" },
		{ "chrFrenMulti.dcm", DCM_TAG(0x10, 0x10), 0, "Buc^Jérôme" },
		{ "chrGerm.dcm", DCM_TAG(0x10, 0x10), 0, "Äneas^Rüdiger" },
		{ "chrGreek.dcm", DCM_TAG(0x10, 0x10), 0, "Διονυσιος" },
		{ "chrRuss.dcm", DCM_TAG(0x10, 0x10), 0, "Люкceмбypг" },
		{ "chrArab.dcm", DCM_TAG(0x10, 0x10), 0, "قباني^لنزار" },
		{ "chrHbrw.dcm", DCM_TAG(0x10, 0x10), 0, "שרון^דבורה" },
		{ "chrX1.dcm", DCM_TAG(0x10, 0x10), 0,
		    "Wang^XiaoDong=王^小東=" },
		{ "chrX2.dcm", DCM_TAG(0x10, 0x10), 0,
		    "Wang^XiaoDong=王^小东=" },
		{ "chrH31.dcm", DCM_TAG(0x10, 0x10), 0,
		    "Yamada^Tarou=山田^太郎=やまだ^たろう" },
		{ "chrH32.dcm", DCM_TAG(0x10, 0x10), 0,
		    "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう" },
		{ "chrI2.dcm", DCM_TAG(0x10, 0x10), 0,
		    "Hong^Gildong=洪^吉洞=홍^길동" },
		{ "chrJapMulti.dcm", DCM_TAG(0x10, 0x1001), 1,
		    "やまだ^たろう" },
		{ "chrJapMulti.dcm", DCM_TAG(0x10, 0x21b0), 0, "たろう" },
		{ "chrJapMultiExplicitIR6.dcm", DCM_TAG(0x10, 0x10), 0,
		    "やまだ^たろう" },
		{ "chrKoreanMulti.dcm", DCM_TAG(0x10, 0x10), 0, "김희중" },
		{ "chrKoreanMulti.dcm", DCM_TAG(0x10, 0x1001), 1, "김희중" },
		{ "chrKoreanMulti.dcm", DCM_TAG(0x10, 0x21b0), 0, "김희중" },
	};
	static const char *sq_files[] = { "chrSQEncoding.dcm",
	    "chrSQEncoding1.dcm" };
	size_t i;
	struct dcm *d;
	const struct dcm_elem *sq;
	char title[256];

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(title, sizeof title, "%s (%04X,%04X) value %d",
		    cases[i].file, DCM_GROUP(cases[i].tag),
		    DCM_ELEMENT(cases[i].tag), cases[i].value);
		d = open_ok(path_in(pyd_dir, "charset_files", cases[i].file),
		    DCM_STOP_AT_PIXELS, cases[i].file);
		if (d == NULL)
			continue;
		is_str(str(d, NULL, cases[i].tag, cases[i].value),
		    cases[i].want, title);
		dcm_free(d);
	}
	for (i = 0; i < 2; i++) {
		d = open_ok(path_in(pyd_dir, "charset_files", sq_files[i]),
		    0, sq_files[i]);
		if (d == NULL)
			continue;
		sq = dcm_find(d, NULL, DCM_TAG(0x32, 0x1064));
		is_str(sq && dcm_item_count(d, sq) == 1 ? str(d,
		    dcm_item_at(d, sq, 0), DCM_TAG(0x10, 0x10), 0) : "(no sq)",
		    "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう", i == 0 ?
		    "  item's own character set overrides the dataset's" :
		    "  item inherits the dataset's character set");
		dcm_free(d);
	}
}

/* Reads a whole file into a malloc'd buffer. */
static uint8_t *
slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long sz;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == -1 || (sz = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) == -1 ||
	    (buf = malloc(sz ? (size_t)sz : 1)) == NULL) {
		fclose(f);
		return NULL;
	}
	*n = fread(buf, 1, (size_t)sz, f);
	fclose(f);
	return buf;
}

/*
 * Cuts a good file at many offsets: each cut must parse or fail with a
 * message, never crash or read past the cut (ASan watches the exact-size
 * copy).  Returns the number of cuts that failed without a message.
 */
static int
truncation_sweep(const char *path, int *ncuts, int *nfail)
{
	uint8_t *buf, *cut;
	size_t n, k, step;
	struct dcm *d;
	struct err e;
	unsigned f;
	int bad = 0;

	if ((buf = slurp(path, &n)) == NULL)
		return -1;
	step = n / 1500 + 1;
	for (k = 0; k < n; k += step) {
		if ((cut = malloc(k ? k : 1)) == NULL)
			abort();
		memcpy(cut, buf, k);
		for (f = 0; f <= DCM_STOP_AT_PIXELS; f++) {
			e.msg[0] = '\0';
			(*ncuts)++;
			if (dcm_parse(cut, k, f, &d, &e) == 0) {
				dcm_free(d);
				continue;
			}
			(*nfail)++;
			if (e.msg[0] == '\0')
				bad++;
		}
		free(cut);
	}
	free(buf);
	return bad;
}

static void
test_truncation(void)
{
	static const char *names[] = { "CT_small.dcm", "MR_small_bigendian.dcm",
	    "image_dfl.dcm", "JPEG2000.dcm", "nested_priv_SQ.dcm",
	    "UN_sequence.dcm", "rtplan.dcm", "MR_small_implicit.dcm" };
	size_t i;
	int bad, cuts, fails;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		cuts = fails = 0;
		bad = truncation_sweep(path_in(pyd_dir, "test_files",
		    names[i]), &cuts, &fails);
		ok(bad == 0 && fails > 0, "%s cut at %d offsets: %d failures, "
		    "all with a message", names[i], cuts / 2, fails);
	}
}

/* The broken files of the corpus (MANIFEST notes). */
static void
test_corpus_broken(void)
{
	static const struct {
		const char *file;
		int code_whole, code_stop;	/* 0: must parse */
		const char *what;
	} cases[] = {
		{ "dcm4che/3gb-bulk-data-truncated", DCM_E_TRUNCATED, 0,
		    "truncated 3 GiB pixel data" },
		{ "orthanc-tests/2026-05-06-Deeply-Nested-Sequence.dcm",
		    DCM_E_TOO_DEEP, DCM_E_TOO_DEEP, "pathological nesting" },
		{ "orthanc-tests/2026-05-26-oob-monochrome-46341.dcm", 0, 0,
		    "bogus huge Rows/Columns" },
		{ "orthanc-tests/2026-05-26-oob-monochrome-65535.dcm", 0, 0,
		    "bogus huge Rows/Columns" },
		{ "DICOMSamples/CT_Implicit_Little_Headless_Retired.dcm", 0, 0,
		    "no preamble/meta, implicit" },
		{ "DICOMSamples/OT_Implicit_Little_Headless.dcm", 0, 0,
		    "no preamble/meta" },
		{ "dcm4che/no_preamble_dicm_in_data", 0, 0,
		    "no preamble, DICM inside the data" },
		{ "fo-dicom/CR-MONO1-10-chest", 0, 0, "ACR-NEMA style" },
		{ "fo-dicom/GH1376.dcm", 0, 0, "pixel data shorter than "
		    "Rows*Columns" },
		{ "fo-dicom/GH340.dcm", 0, 0, "no preamble" },
		{ "orthanc-tests/PrivateMDNTags.dcm", 0, 0, "private tags, "
		    "no meta" },
		{ "orthanc-tests/TS_1.2.840.10008.1.2.dcm", 0, 0,
		    "implicit, no meta" },
		{ "orthanc-tests/ZeissOCT-cfind-query.dcm", 0, 0,
		    "bare query dataset" },
		{ "pydicom-data/JLSL_RGB_ILV0.dcm", 0, 0,
		    "no preamble, encapsulated" },
		{ "pydicom-data/OT-PAL-8-face.dcm", 0, 0, "no preamble" },
	};
	size_t i;
	struct dcm *d;
	struct err e;
	const char *p;
	int rc, code[2];
	unsigned f;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		p = path_in(corpus_dir, "files", cases[i].file);
		code[0] = cases[i].code_whole;
		code[1] = cases[i].code_stop;
		for (f = 0; f <= 1; f++) {
			e.code = 0;
			e.msg[0] = '\0';
			rc = dcm_open(p, f ? DCM_STOP_AT_PIXELS : 0, &d, &e);
			if (rc == 0)
				dcm_free(d);
			ok(code[f] ? rc == -1 && e.code == code[f] : rc == 0,
			    "corpus %s (%s), %s: %s", cases[i].file,
			    cases[i].what, f ? "stop at pixels" : "whole",
			    rc == 0 ? "parsed" : e.msg);
		}
	}
	p = path_in(corpus_dir, "files",
	    "DICOMSamples/CT_Implicit_Little_Headless_Retired.dcm");
	if ((d = open_ok(p, 0, "CT_Implicit_Little_Headless_Retired"))) {
		is_long(dcm_vm(d, dcm_find(d, NULL, DCM_TAG(0x28, 0x1050))), 2,
		    "  WindowCenter has 2 values");
		is_str(dcm_transfer_syntax(d), DCM_TS_IMPLICIT_LE,
		    "  implicit VR LE guessed");
		dcm_free(d);
	}
}

/*
 * dcmdump prints an explicit UN value as hex bytes ("31\2e\33\00"); we
 * read it with the dictionary's VR.  Decodes such a dump to text, padding
 * trimmed; 0 when want is not a hex dump.
 */
static int
dehex(const char *want, char *out, size_t sz)
{
	size_t n = 0;
	unsigned v;

	while (*want != '\0' && n + 1 < sz) {
		if (sscanf(want, "%2x", &v) != 1 || strspn(want,
		    "0123456789abcdef") != 2 || (want[2] != '\\' &&
		    want[2] != '\0'))
			return 0;
		out[n++] = (char)v;
		want += want[2] ? 3 : 2;
	}
	while (n > 0 && (out[n - 1] == '\0' || out[n - 1] == ' '))
		n--;
	out[n] = '\0';
	return 1;
}

/* Every file dcmdump judged, with dcmdump's values. */
static void
test_corpus_vs_dcmdump(void)
{
	FILE *f;
	char line[8192], *fld[6], *s;
	int n, nfiles = 0, nread = 0, i;
	struct dcm *d;
	struct err e;
	static const uint32_t tags[3] = { DCM_TAG(0x28, 0x10),
	    DCM_TAG(0x28, 0x11), DCM_TAG(0x08, 0x18) };

	if ((f = fopen(expect_path, "r")) == NULL) {
		ok(0, "open %s: %s", expect_path, strerror(errno));
		return;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		for (n = 0, s = line; n < 6 && s != NULL; n++)
			fld[n] = strsep(&s, "\t");
		if (n != 5)
			continue;
		nfiles++;
		/* Whole-file parse must not crash, whatever the result. */
		if (dcm_open(fld[0], 0, &d, &e) == 0)
			dcm_free(d);
		e.msg[0] = '\0';
		if (dcm_open(fld[0], DCM_STOP_AT_PIXELS, &d, &e) == -1) {
			ok(strcmp(fld[1], "ok") != 0 && e.msg[0] != '\0',
			    "%s: dcmdump %s, we fail: %s", fld[0], fld[1],
			    e.msg);
			continue;
		}
		if (strcmp(fld[1], "ok") != 0) {
			ok(1, "%s: dcmdump fails, we parse", fld[0]);
			dcm_free(d);
			continue;
		}
		nread++;
		for (i = 0; i < 3; i++) {
			char got[2048], one[512];
			const struct dcm_elem *el = dcm_find(d, NULL, tags[i]);
			int k, vm = dcm_vm(d, el);

			got[0] = '\0';
			if (el == NULL)
				snprintf(got, sizeof got, "(absent)");
			for (k = 0; el != NULL && k < vm; k++) {
				if (dcm_get_string(d, NULL, tags[i], k, one,
				    sizeof one, &e) == -1)
					snprintf(one, sizeof one, "(error)");
				snprintf(got + strlen(got), sizeof got -
				    strlen(got), "%s%s", k ? "\\" : "", one);
			}
			if (strcmp(got, fld[2 + i]) == 0)
				continue;
			if (el != NULL && strcmp(el->vr, "UN") == 0 &&
			    dehex(fld[2 + i], one, sizeof one) &&
			    strcmp(got, one) == 0)
				continue;
			break;
		}
		ok(i == 3, "%s: Rows, Columns, SOPInstanceUID as dcmdump "
		    "(%s, %s, %s)", fld[0], fld[2], fld[3], fld[4]);
		dcm_free(d);
	}
	fclose(f);
	ok(nfiles > 600 && nread > 550, "%d files compared, %d readable by "
	    "dcmdump", nfiles, nread);
}

int
main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: dicom_test pydicom_data corpus "
		    "[expect.tsv]\n");
		return 2;
	}
	pyd_dir = argv[1];
	corpus_dir = argv[2];
	expect_path = argc > 3 ? argv[3] : NULL;

	test_empty_and_garbage();
	test_explicit_basic();
	test_big_endian();
	test_nesting();
	test_bogus_lengths();
	test_delimiters_and_padding();
	test_un_undefined();
	test_deflate();
	test_deflate_large();
	test_implicit_meta_mismatch();
	test_dictionary();
	test_dictionary_complete("/usr/share/libdcmtk17/dicom.dic");
	test_charset_direct();

	if (exists(path_in(pyd_dir, "test_files", "CT_small.dcm"))) {
		test_pydicom_files();
		test_pydicom_special();
		test_truncation();
	} else
		ok(1, "# SKIP pydicom test files not found in %s", pyd_dir);
	if (exists(path_in(pyd_dir, "charset_files", "chrH31.dcm")))
		test_charset_files();
	else
		ok(1, "# SKIP pydicom charset files not found in %s", pyd_dir);
	if (exists(path_in(corpus_dir, "files",
	    "fo-dicom/GH340.dcm")))
		test_corpus_broken();
	else
		ok(1, "# SKIP corpus not found in %s", corpus_dir);
	if (expect_path != NULL)
		test_corpus_vs_dcmdump();
	else
		ok(1, "# SKIP no dcmdump expectations given");
	return tap_done();
}
