/*
 * dicom: the DICOM reader (see dicom/dicom.h for the contract).
 *
 * Layout of a parsed struct dcm: every element of every item lives in one
 * array, d->elems, an item's elements contiguous (items[i].first, .count).
 * A parallel array d->ext holds what the public struct dcm_elem has no room
 * for: the owning item and, for a sequence, its items as a range of
 * d->refs (indices into d->items).  While parsing, the elements of the
 * item open at each depth collect in a per-depth scratch list and are
 * copied into d->elems when the item ends, which is what keeps each item
 * contiguous even though items nest.
 *
 * Choices worth knowing:
 * - An explicit VR this reader does not know is an error (DCM_E_MALFORMED
 *   naming tag and offset): guessing a length form would risk reading the
 *   rest of the file as garbage.  In the meta group only, an unknown VR
 *   means the meta was written in implicit VR, which some writers do.
 * - When the meta group says explicit VR but the first dataset element has
 *   no valid VR (or says implicit VR but the first element only makes
 *   sense as explicit), the dataset is read in the syntax that fits.
 * - Anything parsed as a sequence has VR "SQ", including UN or unknown
 *   implicit elements of undefined length (PS3.5 6.2.2).
 * - With DCM_STOP_AT_PIXELS the parse ends at the top-level (7FE0,0010),
 *   which is not recorded.  Pixel data inside sequences (icons) is read.
 * - Stray item / sequence delimiters outside a sequence are skipped, and
 *   zero bytes at the end of the top-level dataset are taken as padding.
 * - A deflated dataset is inflated whole (at most DEFLATE_MAX bytes),
 *   but with DCM_STOP_AT_PIXELS only as far as the parse needs: a first
 *   INFLATE_FIRST bytes, four times more while the parse runs out.
 * - Memory of a mapped file: on this kernel a touch of one byte of a
 *   large file's mapping maps a whole page-cache folio (2 MB), so stepping
 *   over the fragments of a 2 GB object would bring all of it into the
 *   process's resident memory.  Walks over pixel data (skip_fragments,
 *   dcm_pixel_fragments) drop what they left behind every RELEASE_STEP
 *   bytes (madvise MADV_DONTNEED: the pages are read again from the file
 *   if touched), and dcm_release() drops the lot.
 */
#include "dicom/dicom.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define UNDEFINED	0xffffffffu
#define TAG_ITEM	DCM_TAG(0xfffe, 0xe000)
#define TAG_ITEM_END	DCM_TAG(0xfffe, 0xe00d)
#define TAG_SEQ_END	DCM_TAG(0xfffe, 0xe0dd)
#define TAG_PIXEL_DATA	DCM_TAG(0x7fe0, 0x0010)
#define TAG_CHARSET	DCM_TAG(0x0008, 0x0005)
#define TAG_TS		DCM_TAG(0x0002, 0x0010)
#define DEFLATE_MAX	((size_t)1 << 30)
#define INFLATE_FIRST	((size_t)1 << 20)
#define RELEASE_STEP	((size_t)8 << 20)
#define FOLIO_MAX	((size_t)2 << 20)	/* the largest a touch maps */

#define TAGFMT		"(%04X,%04X)"
#define TAGARG(t)	DCM_GROUP(t), DCM_ELEMENT(t)

struct dcm_item {
	size_t first, count;	/* elements d->elems[first .. first+count) */
	uint32_t parent;	/* enclosing item; the root is its own parent */
	int sorted;		/* elements in ascending tag order */
};

struct elem_ext {
	uint32_t owner;		/* the item holding the element */
	uint32_t ref_first;	/* a sequence's items: d->refs[ref_first..] */
	uint32_t ref_count;
};

struct dcm {
	struct dcm_elem *elems;
	struct elem_ext *ext;
	size_t nelems, elemcap;
	struct dcm_item *items;
	size_t nitems, itemcap;
	uint32_t *refs;
	size_t nrefs, refcap;
	uint8_t *inflated;
	const uint8_t *buf;	/* the parsed input (for pixel fragments) */
	size_t buflen;
	void *map;
	size_t maplen;
	int has_meta;
	char ts[65];
};

struct mode {
	int explicit;
	int be;
};

struct scratch {
	struct dcm_elem *el;
	struct elem_ext *ext;
	size_t n, cap;
	uint32_t *items;	/* items of the sequence open at this depth */
	size_t nitems, itemcap;
};

struct parser {
	struct dcm *d;
	const uint8_t *buf;
	size_t len;
	const char *where;	/* "" or " of the inflated dataset" */
	unsigned flags;
	int stopped;
	int mapped;		/* buf is a file mapping (dcm_open) */
	size_t released;	/* dropped up to here (release_behind) */
	int inflate_cut;	/* inflated only up to the limit asked */
	int inflate_short;	/* the deflate stream itself ended early */
	struct err *e;
	uint32_t cur_item[DCM_MAX_DEPTH + 1];
	struct scratch scr[DCM_MAX_DEPTH + 1];
};

struct hdr {
	uint32_t tag;
	char vr[3];
	uint32_t length;
	size_t hdrlen;
};

/*
 * CTX_ITEM_OVERRUN: an item whose length runs past the end of its sequence
 * (seen in real DICOMDIRs; dcmtk reads them): it ends where the next item
 * or the sequence delimiter begins, or at the end of the sequence.  A
 * truncated file is still caught: by the sequence's own length, or by its
 * missing delimiter.
 */
enum ctx { CTX_ROOT, CTX_META, CTX_ITEM, CTX_ITEM_UNDEFINED, CTX_ITEM_OVERRUN };

static const char vr_all[] =
    "AEASATCSDADSDTFDFLISLOLTOBODOFOLOVOWPNSHSLSQSSSTSVTMUCUIULUNURUSUTUV";
static const char vr_long[] = "OBODOFOLOVOWSQSVUCUNURUTUV";

/* Byte order */

static uint16_t
rd16(const uint8_t *p, int be)
{
	return be ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

static uint32_t
rd32(const uint8_t *p, int be)
{
	if (be)
		return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		    (uint32_t)p[2] << 8 | p[3];
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[1] << 8 | p[0];
}

static uint64_t
rd64(const uint8_t *p, int be)
{
	uint64_t hi = rd32(p, be), lo = rd32(p + 4, be);

	return be ? hi << 32 | lo : lo << 32 | hi;
}

/* VRs */

static int
vr_in(const char *list, const uint8_t *vr)
{
	size_t i;

	for (i = 0; list[i] != '\0'; i += 2)
		if (list[i] == vr[0] && list[i + 1] == vr[1])
			return 1;
	return 0;
}

static int
vr_is(const char *vr, const char *two)
{
	return vr[0] == two[0] && vr[1] == two[1];
}

/*
 * An unknown VR of two capital letters is one added to the standard after
 * this reader: those all use the 4-byte length form.  Other unknown VR
 * bytes (writers put "  " or zeros) get the 2-byte form, as dcmtk does.
 */
static int
new_vr(const uint8_t *vr)
{
	return !vr_in(vr_all, vr) && vr[0] >= 'A' && vr[0] <= 'Z' &&
	    vr[1] >= 'A' && vr[1] <= 'Z';
}

static void
implicit_vr(uint32_t tag, char vr[3])
{
	const struct dcm_dict_entry *ent = dcm_dict_lookup(tag);

	memcpy(vr, ent != NULL ? ent->vr : "UN", 3);
}

/* Growth */

static int
grow(void **p, size_t *cap, size_t need, size_t size, struct err *e)
{
	size_t ncap;
	void *np;

	if (need <= *cap)
		return 0;
	ncap = *cap < 16 ? 16 : *cap;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / size)
			return err_set(e, ENOMEM, "element table too large");
		ncap *= 2;
	}
	if ((np = realloc(*p, ncap * size)) == NULL)
		return err_sys(e, "realloc");
	*p = np;
	*cap = ncap;
	return 0;
}

/* Grows two parallel arrays to the same capacity. */
static int
grow2(void **a, size_t asz, void **b, size_t bsz, size_t *cap, size_t need,
    struct err *e)
{
	size_t acap = *cap, bcap = *cap;

	if (grow(a, &acap, need, asz, e) == -1 ||
	    grow(b, &bcap, need, bsz, e) == -1)
		return -1;
	*cap = acap < bcap ? acap : bcap;
	return 0;
}

static int
scratch_push(struct parser *p, int depth, const struct dcm_elem *el,
    size_t *idx)
{
	struct scratch *s = &p->scr[depth];

	if (grow2((void **)&s->el, sizeof *s->el, (void **)&s->ext,
	    sizeof *s->ext, &s->cap, s->n + 1, p->e) == -1)
		return -1;
	s->el[s->n] = *el;
	memset(&s->ext[s->n], 0, sizeof s->ext[0]);
	*idx = s->n++;
	return 0;
}

static int
new_item(struct parser *p, uint32_t parent, uint32_t *idx)
{
	struct dcm *d = p->d;

	if (d->nitems >= UINT32_MAX)
		return err_set(p->e, ENOMEM, "too many items");
	if (grow((void **)&d->items, &d->itemcap, d->nitems + 1,
	    sizeof *d->items, p->e) == -1)
		return -1;
	memset(&d->items[d->nitems], 0, sizeof d->items[0]);
	d->items[d->nitems].parent = parent;
	*idx = (uint32_t)d->nitems++;
	return 0;
}

/* Moves the elements of the item that ends at depth into d->elems. */
static int
flush_item(struct parser *p, int depth, uint32_t item)
{
	struct dcm *d = p->d;
	struct scratch *s = &p->scr[depth];
	struct dcm_item *it = &d->items[item];
	size_t i;

	if (grow2((void **)&d->elems, sizeof *d->elems, (void **)&d->ext,
	    sizeof *d->ext, &d->elemcap, d->nelems + s->n, p->e) == -1)
		return -1;
	if (s->n > 0) {
		memcpy(d->elems + d->nelems, s->el, s->n * sizeof *s->el);
		memcpy(d->ext + d->nelems, s->ext, s->n * sizeof *s->ext);
	}
	it->first = d->nelems;
	it->count = s->n;
	it->sorted = 1;
	for (i = 0; i < s->n; i++) {
		d->ext[d->nelems + i].owner = item;
		if (i > 0 && s->el[i].tag <= s->el[i - 1].tag)
			it->sorted = 0;
	}
	d->nelems += s->n;
	s->n = 0;
	return 0;
}

/* The items of the sequence open at depth become d->refs[...]. */
static int
flush_sequence(struct parser *p, int depth, size_t sq)
{
	struct dcm *d = p->d;
	struct scratch *s = &p->scr[depth];

	if (grow((void **)&d->refs, &d->refcap, d->nrefs + s->nitems,
	    sizeof *d->refs, p->e) == -1)
		return -1;
	if (s->nitems > 0)
		memcpy(d->refs + d->nrefs, s->items,
		    s->nitems * sizeof *s->items);
	s->ext[sq].ref_first = (uint32_t)d->nrefs;
	s->ext[sq].ref_count = (uint32_t)s->nitems;
	d->nrefs += s->nitems;
	s->nitems = 0;
	return 0;
}

/* Errors */

static int
truncated(struct parser *p, uint32_t tag, size_t pos, uint64_t want,
    size_t have)
{
	return err_set(p->e, DCM_E_TRUNCATED,
	    "truncated element " TAGFMT " at offset %zu%s: length %llu "
	    "exceeds remaining %zu", TAGARG(tag), pos, p->where,
	    (unsigned long long)want, have);
}

static int
malformed(struct parser *p, uint32_t tag, size_t pos, const char *what)
{
	return err_set(p->e, DCM_E_MALFORMED, "%s in element " TAGFMT
	    " at offset %zu%s", what, TAGARG(tag), pos, p->where);
}

/* Headers */

/*
 * Reads the element header at pos: tag, VR and length.  Item and
 * delimiter tags (group FFFE) never have a VR.
 */
static int
read_header(struct parser *p, size_t pos, size_t end, struct mode m,
    struct hdr *h)
{
	const uint8_t *b = p->buf + pos;
	size_t left = end - pos;

	if (left < 8) {
		if (left < 4)
			return err_set(p->e, DCM_E_TRUNCATED,
			    "truncated element header at offset %zu%s: "
			    "%zu bytes remain", pos, p->where, left);
		return truncated(p, DCM_TAG(rd16(b, m.be), rd16(b + 2, m.be)),
		    pos, 8, left);
	}
	h->tag = DCM_TAG(rd16(b, m.be), rd16(b + 2, m.be));
	h->hdrlen = 8;
	if (DCM_GROUP(h->tag) == 0xfffe) {
		memcpy(h->vr, "UN", 3);
		h->length = rd32(b + 4, m.be);
		return 0;
	}
	if (!m.explicit || (DCM_GROUP(h->tag) == 0x0002 &&
	    !vr_in(vr_all, b + 4))) {
		implicit_vr(h->tag, h->vr);
		h->length = rd32(b + 4, m.be);
		return 0;
	}
	if (vr_in(vr_all, b + 4)) {
		h->vr[0] = (char)b[4];
		h->vr[1] = (char)b[5];
		h->vr[2] = '\0';
	} else
		memcpy(h->vr, "UN", 3);
	if (!vr_in(vr_long, b + 4) && !new_vr(b + 4)) {
		h->length = rd16(b + 6, m.be);
		return 0;
	}
	if (left < 12)
		return truncated(p, h->tag, pos, 12, left);
	h->length = rd32(b + 8, m.be);
	h->hdrlen = 12;
	return 0;
}

/* The offset of the first byte of b[0..n) that is not zero, or n. */
static size_t
first_nonzero(const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n && b[i] == 0; i++)
		;
	return i;
}

/* Parsing */

static int parse_elements(struct parser *, size_t, size_t, struct mode, int,
    enum ctx, size_t *);

/* Drop the whole pages of the mapping at base in [from, to). */
static void
release_range(const uint8_t *base, size_t from, size_t to)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	from = from / page * page;
	to = to / page * page;
	if (to > from)
		(void)madvise((void *)(uintptr_t)(base + from), to - from,
		    MADV_DONTNEED);
}

/*
 * Drop the mapping's pages from *mark to pos once pos is RELEASE_STEP
 * past it (see the top of the file).  A touch maps the whole folio
 * around it, which may begin up to FOLIO_MAX before the byte touched:
 * the range starts that much before the mark, or what the walk touched
 * there would stay mapped, a little at every mark (30 MB over the 120
 * fragments of a freshly written object).
 */
static void
release_behind(const uint8_t *base, size_t *mark, size_t pos)
{
	if (pos < *mark || pos - *mark < RELEASE_STEP)
		return;
	release_range(base, *mark > FOLIO_MAX ? *mark - FOLIO_MAX : 0, pos);
	*mark = pos;
}

/* Steps over encapsulated pixel data fragment by fragment. */
static int
skip_fragments(struct parser *p, uint32_t tag, size_t pos, size_t end,
    struct mode m, size_t *endpos)
{
	uint32_t t, len;

	if (p->released < pos)
		p->released = pos;	/* the header stays */
	for (;;) {
		if (p->mapped)
			release_behind(p->buf, &p->released, pos);
		if (end - pos < 8)
			return err_set(p->e, DCM_E_TRUNCATED,
			    "encapsulated " TAGFMT " at offset %zu%s ends "
			    "without a sequence delimiter", TAGARG(tag), pos,
			    p->where);
		t = DCM_TAG(rd16(p->buf + pos, m.be),
		    rd16(p->buf + pos + 2, m.be));
		len = rd32(p->buf + pos + 4, m.be);
		if (t == TAG_SEQ_END) {
			*endpos = pos + 8;
			if (p->mapped)	/* what the walk touched last */
				release_range(p->buf, p->released >
				    FOLIO_MAX ? p->released - FOLIO_MAX : 0,
				    pos);
			p->released = pos;
			return 0;
		}
		if (t != TAG_ITEM)
			return malformed(p, t, pos,
			    "unexpected tag among pixel data fragments");
		if (len == UNDEFINED)
			return malformed(p, t, pos,
			    "undefined length pixel data fragment");
		if (len > end - pos - 8)
			return truncated(p, t, pos, len, end - pos - 8);
		pos += 8 + (size_t)len;
	}
}

/* Parses one item of a sequence at depth (its elements at depth+1). */
static int
parse_item(struct parser *p, size_t pos, size_t end, struct mode m,
    int depth, uint32_t len, size_t *endpos)
{
	struct scratch *s = &p->scr[depth];
	uint32_t it;
	size_t body = pos + 8;

	if (new_item(p, p->cur_item[depth], &it) == -1)
		return -1;
	if (grow((void **)&s->items, &s->itemcap, s->nitems + 1,
	    sizeof *s->items, p->e) == -1)
		return -1;
	s->items[s->nitems++] = it;
	p->cur_item[depth + 1] = it;
	p->scr[depth + 1].n = 0;
	if (len == UNDEFINED) {
		if (parse_elements(p, body, end, m, depth + 1,
		    CTX_ITEM_UNDEFINED, endpos) == -1)
			return -1;
	} else if (len > end - body) {
		if (parse_elements(p, body, end, m, depth + 1,
		    CTX_ITEM_OVERRUN, endpos) == -1)
			return -1;
	} else {
		if (parse_elements(p, body, body + len, m, depth + 1,
		    CTX_ITEM, endpos) == -1)
			return -1;
		*endpos = body + len;
	}
	return flush_item(p, depth + 1, it);
}

/*
 * Parses the items of the sequence element sq (index in the scratch list
 * at depth) from pos up to end or, for undefined length, its delimiter.
 */
static int
parse_sequence(struct parser *p, size_t sq, size_t pos, size_t end,
    struct mode m, int depth, int undefined, size_t *endpos)
{
	uint32_t sqtag = p->scr[depth].el[sq].tag, t, len;
	size_t sqpos = p->scr[depth].el[sq].offset;

	if (depth + 1 > DCM_MAX_DEPTH)
		return err_set(p->e, DCM_E_TOO_DEEP, "sequence " TAGFMT
		    " at offset %zu%s nests deeper than %d levels",
		    TAGARG(sqtag), sqpos, p->where, DCM_MAX_DEPTH);
	p->scr[depth].nitems = 0;
	for (;;) {
		if (pos == end) {
			if (undefined)
				return err_set(p->e, DCM_E_TRUNCATED,
				    "sequence " TAGFMT " at offset %zu%s ends "
				    "without a sequence delimiter",
				    TAGARG(sqtag), sqpos, p->where);
			break;
		}
		if (end - pos < 8)
			return truncated(p, sqtag, pos, 8, end - pos);
		t = DCM_TAG(rd16(p->buf + pos, m.be),
		    rd16(p->buf + pos + 2, m.be));
		len = rd32(p->buf + pos + 4, m.be);
		if (t == TAG_SEQ_END) {
			pos += 8;
			if (undefined)
				break;
			continue;	/* stray: tolerated */
		}
		if (t == TAG_ITEM_END) {
			pos += 8;	/* stray: tolerated */
			continue;
		}
		if (t != TAG_ITEM)
			return malformed(p, t, pos,
			    "item expected in sequence");
		if (parse_item(p, pos, end, m, depth, len, &pos) == -1)
			return -1;
	}
	*endpos = pos;
	return flush_sequence(p, depth, sq);
}

static int
parse_undefined(struct parser *p, struct dcm_elem *el, size_t body,
    size_t end, struct mode m, int depth, size_t *endpos)
{
	struct mode sub = m;
	size_t idx;

	if (el->tag == TAG_PIXEL_DATA ||
	    (vr_is(el->vr, "OB") || vr_is(el->vr, "OW"))) {
		if (skip_fragments(p, el->tag, body, end, m, endpos) == -1)
			return -1;
		return scratch_push(p, depth, el, &idx);
	}
	if (!vr_is(el->vr, "SQ") && !vr_is(el->vr, "UN"))
		return malformed(p, el->tag, el->offset,
		    "undefined length for a non-sequence VR");
	if (vr_is(el->vr, "UN") && m.explicit) {
		sub.explicit = 0;	/* PS3.5 6.2.2: implicit VR LE inside */
		sub.be = 0;
	}
	memcpy(el->vr, "SQ", 3);
	if (scratch_push(p, depth, el, &idx) == -1)
		return -1;
	return parse_sequence(p, idx, body, end, sub, depth, 1, endpos);
}

static int
parse_element(struct parser *p, const struct hdr *h, size_t pos, size_t end,
    struct mode m, int depth, size_t *endpos)
{
	struct dcm_elem el;
	size_t body = pos + h->hdrlen, idx;

	memset(&el, 0, sizeof el);
	el.tag = h->tag;
	memcpy(el.vr, h->vr, 3);
	el.length = h->length;
	el.offset = pos;
	el.big_endian = m.be;
	if (h->length == UNDEFINED)
		return parse_undefined(p, &el, body, end, m, depth, endpos);
	if (h->length > end - body)
		return truncated(p, h->tag, pos, h->length, end - body);
	*endpos = body + h->length;
	if (!vr_is(el.vr, "SQ")) {
		el.value = p->buf + body;
		return scratch_push(p, depth, &el, &idx);
	}
	if (scratch_push(p, depth, &el, &idx) == -1)
		return -1;
	return parse_sequence(p, idx, body, *endpos, m, depth, 0, &body);
}

/*
 * Parses the elements of one item (or the top level) at depth into the
 * scratch list of that depth.
 */
static int
parse_elements(struct parser *p, size_t pos, size_t end, struct mode m,
    int depth, enum ctx ctx, size_t *endpos)
{
	struct hdr h;
	size_t nonzero = 0;	/* a byte at or after pos that is not zero */

	memset(&h, 0, sizeof h);
	for (;;) {
		if (pos == end) {
			if (ctx == CTX_ITEM_UNDEFINED)
				return err_set(p->e, DCM_E_TRUNCATED,
				    "item at depth %d ends at offset %zu%s "
				    "without an item delimiter", depth, pos,
				    p->where);
			break;
		}
		if (ctx == CTX_META && (end - pos < 2 ||
		    rd16(p->buf + pos, 0) != 0x0002))
			break;
		/* Trailing zero padding ends the dataset.  Each byte is
		 * looked at once: a run of zero-tagged elements before a
		 * byte that is not zero costs no rescan each (quadratic
		 * before; fuzz_pixel found the timeout). */
		if (ctx == CTX_ROOT && (end - pos < 8 ||
		    rd32(p->buf + pos, 0) == 0)) {
			if (nonzero <= pos)
				nonzero = pos + first_nonzero(p->buf + pos,
				    end - pos);
			if (nonzero == end) {
				pos = end;
				break;
			}
		}
		if (read_header(p, pos, end, m, &h) == -1)
			return -1;
		if (ctx == CTX_ITEM_OVERRUN && (h.tag == TAG_ITEM ||
		    h.tag == TAG_SEQ_END))
			break;
		if (h.tag == TAG_ITEM_END) {
			pos += 8;
			if (ctx == CTX_ITEM_UNDEFINED)
				break;
			continue;	/* stray: tolerated */
		}
		if (h.tag == TAG_SEQ_END) {
			pos += 8;	/* stray: tolerated */
			continue;
		}
		if (DCM_GROUP(h.tag) == 0xfffe)
			return malformed(p, h.tag, pos,
			    "item outside a sequence");
		if (depth == 0 && h.tag == TAG_PIXEL_DATA &&
		    (p->flags & DCM_STOP_AT_PIXELS)) {
			p->stopped = 1;
			break;
		}
		if (parse_element(p, &h, pos, end, m, depth, &pos) == -1)
			return -1;
	}
	*endpos = pos;
	return 0;
}

/* Transfer syntax */

static struct mode
guess_mode(const uint8_t *b, size_t n)
{
	struct mode m = { 1, 0 };

	if (n < 8)
		return m;
	if (b[0] == 0 && b[1] != 0 && vr_in(vr_all, b + 4))
		m.be = 1;
	else if (!vr_in(vr_all, b + 4))
		m.explicit = 0;
	return m;
}

/*
 * The declared syntax, corrected when the first element cannot be read in
 * it but can in the other VR form (a known writer defect).
 */
static struct mode
check_mode(struct mode m, const uint8_t *b, size_t n)
{
	uint32_t len;

	if (n < 8 || rd16(b, m.be) == 0xfffe)
		return m;
	if (m.explicit && !vr_in(vr_all, b + 4))
		m.explicit = 0;
	else if (!m.explicit && !m.be && vr_in(vr_all, b + 4)) {
		len = rd32(b + 4, 0);
		if (len != UNDEFINED && len > n - 8)
			m.explicit = 1;
	}
	return m;
}

static const char *
mode_uid(struct mode m)
{
	if (!m.explicit)
		return DCM_TS_IMPLICIT_LE;
	return m.be ? DCM_TS_EXPLICIT_BE : DCM_TS_EXPLICIT_LE;
}

static int
is_deflated(const char *ts)
{
	return strcmp(ts, DCM_TS_DEFLATED_LE) == 0 ||
	    strcmp(ts, "1.2.840.10008.1.2.4.95") == 0;	/* JPIP deflate */
}

static struct mode
ts_mode(const char *ts)
{
	struct mode m = { 1, 0 };

	if (strcmp(ts, DCM_TS_IMPLICIT_LE) == 0)
		m.explicit = 0;
	else if (strcmp(ts, DCM_TS_EXPLICIT_BE) == 0)
		m.be = 1;
	return m;
}

/* Inflate in into *out, at most limit bytes: with fewer than the
 * whole, p->inflate_cut says so. */
static int
inflate_run(struct parser *p, const uint8_t *in, size_t inlen, int wbits,
    size_t limit, uint8_t **out, size_t *outlen)
{
	z_stream zs;
	uint8_t *buf = NULL, *nb;
	size_t cap, done = 0, fed = 0, chunk;
	int rc;

	memset(&zs, 0, sizeof zs);
	p->inflate_cut = p->inflate_short = 0;
	if (inflateInit2(&zs, wbits) != Z_OK)
		return err_set(p->e, DCM_E_DEFLATE, "inflateInit2 failed");
	cap = inlen < DEFLATE_MAX / 4 ? inlen * 4 + 4096 : DEFLATE_MAX;
	if (cap > limit)
		cap = limit;
	for (;;) {
		if (done == limit && limit < DEFLATE_MAX) {
			p->inflate_cut = 1;
			break;
		}
		if (done == cap || buf == NULL) {
			if (buf != NULL && cap >= DEFLATE_MAX) {
				rc = err_set(p->e, DCM_E_DEFLATE, "inflated "
				    "dataset exceeds %zu bytes", DEFLATE_MAX);
				goto fail;
			}
			if (buf != NULL)
				cap = cap > DEFLATE_MAX / 2 ? DEFLATE_MAX :
				    cap * 2;
			if (cap > limit)
				cap = limit;
			if ((nb = realloc(buf, cap)) == NULL) {
				rc = err_sys(p->e, "realloc");
				goto fail;
			}
			buf = nb;
		}
		chunk = inlen - fed < UINT_MAX ? inlen - fed : UINT_MAX;
		zs.next_in = (Bytef *)(uintptr_t)(in + fed);
		zs.avail_in = (uInt)chunk;
		chunk = cap - done < UINT_MAX ? cap - done : UINT_MAX;
		zs.next_out = buf + done;
		zs.avail_out = (uInt)chunk;
		rc = inflate(&zs, Z_NO_FLUSH);
		fed = (size_t)(zs.next_in - in);
		done = (size_t)(zs.next_out - buf);
		if (rc == Z_STREAM_END)
			break;
		if (rc == Z_BUF_ERROR && fed == inlen) {
			p->inflate_short = 1;
			if (p->flags & DCM_STOP_AT_PIXELS)
				break;	/* the parse decides if enough */
			rc = err_set(p->e, DCM_E_DEFLATE,
			    "deflated dataset is truncated");
			goto fail;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			rc = err_set(p->e, DCM_E_DEFLATE, "inflate: %s",
			    zs.msg != NULL ? zs.msg : "error");
			goto fail;
		}
	}
	inflateEnd(&zs);
	*out = buf;
	*outlen = done;
	return 0;
fail:
	inflateEnd(&zs);
	free(buf);
	return rc;
}

static int
inflate_dataset(struct parser *p, size_t pos, size_t limit)
{
	const uint8_t *in = p->buf + pos;
	size_t inlen = p->len - pos, outlen;
	uint8_t *out;

	if (inflate_run(p, in, inlen, -15, limit, &out, &outlen) == -1) {
		/* Some writers wrap the stream in a zlib header. */
		if (inlen < 2 || in[0] != 0x78 || (in[0] << 8 | in[1]) % 31 ||
		    inflate_run(p, in, inlen, 15, limit, &out,
		    &outlen) == -1)
			return -1;
	}
	p->d->inflated = out;
	p->buf = out;
	p->len = outlen;
	p->where = " of the inflated dataset";
	p->mapped = 0;		/* no page of the heap is ever dropped */
	return 0;
}

/* Copies the value of (0002,0010), if the meta group had one, to d->ts. */
static int
meta_ts(struct parser *p)
{
	struct scratch *s = &p->scr[0];
	size_t i, n;
	const uint8_t *v;

	for (i = 0; i < s->n; i++) {
		if (s->el[i].tag != TAG_TS || s->el[i].value == NULL)
			continue;
		v = s->el[i].value;
		n = s->el[i].length;
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\0'))
			n--;
		while (n > 0 && v[0] == ' ') {
			v++;
			n--;
		}
		if (n == 0 || n >= sizeof p->d->ts)
			return 0;
		memcpy(p->d->ts, v, n);
		p->d->ts[n] = '\0';
		return 1;
	}
	return 0;
}

/*
 * A deflated dataset: inflated whole, or with DCM_STOP_AT_PIXELS a part
 * at a time: when the parse runs out of a part before the pixel data, it
 * starts again on four times as much (a header is read in one or two
 * rounds, and a 2 GB object is never inflated to find its pixel data).
 */
static int
parse_deflated(struct parser *p, size_t pos)
{
	const uint8_t *in = p->buf;
	size_t inlen = p->len, end, limit = DEFLATE_MAX;
	size_t nitems = p->d->nitems, nelems = p->d->nelems;
	size_t nrefs = p->d->nrefs, nmeta = p->scr[0].n;
	int rc;

	if (p->flags & DCM_STOP_AT_PIXELS)
		limit = INFLATE_FIRST;
	for (;;) {
		if (inflate_dataset(p, pos, limit) == -1)
			return -1;
		rc = parse_elements(p, 0, p->len, ts_mode(DCM_TS_EXPLICIT_LE),
		    0, CTX_ROOT, &end);
		if (rc == 0 && !p->stopped && p->inflate_short)
			return err_set(p->e, DCM_E_TRUNCATED, "deflated "
			    "dataset is truncated before its pixel data");
		if (!p->inflate_cut || (rc == 0 && p->stopped))
			return rc;
		/* Ran out of the part: start again with more. */
		free(p->d->inflated);
		p->d->inflated = NULL;
		p->buf = in;
		p->len = inlen;
		p->where = "";
		p->stopped = 0;
		p->d->nitems = nitems;
		p->d->nelems = nelems;
		p->d->nrefs = nrefs;
		p->scr[0].n = nmeta;
		p->scr[0].nitems = 0;
		limit = limit > DEFLATE_MAX / 4 ? DEFLATE_MAX : limit * 4;
	}
}

/* Parses the dataset at pos (after any meta) into the root item. */
static int
parse_dataset(struct parser *p, size_t pos, const char *ts)
{
	struct mode m;
	size_t end;
	int plain;

	if (ts != NULL && is_deflated(ts))
		return parse_deflated(p, pos);
	if (ts != NULL)
		m = check_mode(ts_mode(ts), p->buf + pos, p->len - pos);
	else
		m = guess_mode(p->buf + pos, p->len - pos);
	/* Report the syntax actually read when it was missing or wrong. */
	plain = ts != NULL && (strcmp(ts, DCM_TS_IMPLICIT_LE) == 0 ||
	    strcmp(ts, DCM_TS_EXPLICIT_LE) == 0);
	if (ts == NULL || (plain && m.explicit != ts_mode(ts).explicit))
		snprintf(p->d->ts, sizeof p->d->ts, "%s", mode_uid(m));
	return parse_elements(p, pos, p->len, m, 0, CTX_ROOT, &end);
}

static int
plausible_start(const uint8_t *b, size_t n)
{
	struct mode m;
	uint16_t group;
	uint32_t len;

	if (n < 8)
		return 0;
	m = guess_mode(b, n);
	group = rd16(b, m.be);
	if (group < 0x0002 || group > 0x7fe0 || (group & 1))
		return 0;
	if (m.explicit)
		return 1;
	len = rd32(b + 4, 0);
	return len == UNDEFINED || len <= n - 8;
}

/*
 * "DICM" at 128 by chance, inside a bare dataset (a station name, say):
 * no meta element follows it, and the file starts like a dataset.
 */
static int
dicm_in_data(const uint8_t *b, size_t n)
{
	return (n < 134 || rd16(b + 132, 0) != 0x0002) &&
	    plausible_start(b, n);
}

static void
scratch_free(struct parser *p)
{
	int i;

	for (i = 0; i <= DCM_MAX_DEPTH; i++) {
		free(p->scr[i].el);
		free(p->scr[i].ext);
		free(p->scr[i].items);
	}
}

static int
parse_root(struct parser *p, size_t pos, int meta, const char *ts)
{
	size_t end;
	struct mode le = { 1, 0 };
	uint32_t root;

	if (new_item(p, 0, &root) == -1)
		return -1;
	p->cur_item[0] = root;
	if (meta) {
		if (parse_elements(p, pos, p->len, le, 0, CTX_META, &end) == -1)
			return -1;
		pos = end;
		if (meta_ts(p))
			ts = p->d->ts;
	}
	if (ts != NULL && ts != p->d->ts)
		snprintf(p->d->ts, sizeof p->d->ts, "%s", ts);
	if (parse_dataset(p, pos, ts) == -1)
		return -1;
	return flush_item(p, 0, root);
}

static int
parse_common(const uint8_t *buf, size_t len, unsigned flags, int detect,
    const char *ts, int mapped, struct dcm **out, struct err *e)
{
	struct parser *p;
	struct dcm *d;
	size_t pos = 0;
	int meta = 0, rc;

	*out = NULL;
	if (len == 0)
		return err_set(e, DCM_E_NOT_DICOM, "empty input");
	if (detect) {
		if (len >= 132 && memcmp(buf + 128, "DICM", 4) == 0 &&
		    !dicm_in_data(buf, len)) {
			meta = 1;
			pos = 132;
		} else if (len >= 4 && memcmp(buf, "DICM", 4) == 0) {
			meta = 1;
			pos = 4;
		} else if (flags & DCM_REQUIRE_META)
			return err_set(e, DCM_E_NOT_DICOM,
			    "no DICM prefix at offset 128");
		else if (!plausible_start(buf, len))
			return err_set(e, DCM_E_NOT_DICOM, "no DICM prefix "
			    "and no plausible dataset element at offset 0");
	}
	if ((d = calloc(1, sizeof *d)) == NULL)
		return err_sys(e, "calloc");
	if ((p = calloc(1, sizeof *p)) == NULL) {
		free(d);
		return err_sys(e, "calloc");
	}
	p->d = d;
	p->buf = buf;
	p->len = len;
	p->where = "";
	p->flags = flags;
	p->mapped = mapped;
	p->e = e;
	d->has_meta = meta;
	d->buf = buf;
	d->buflen = len;
	rc = parse_root(p, pos, meta, ts);
	scratch_free(p);
	free(p);
	if (rc == -1) {
		dcm_free(d);
		return -1;
	}
	*out = d;
	return 0;
}

int
dcm_parse(const uint8_t *buf, size_t len, unsigned flags, struct dcm **out,
    struct err *e)
{
	return parse_common(buf, len, flags & ~DCM_MAPPED, 1, NULL,
	    (flags & DCM_MAPPED) != 0, out, e);
}

int
dcm_parse_dataset(const uint8_t *buf, size_t len, const char *ts_uid,
    unsigned flags, struct dcm **out, struct err *e)
{
	if (len == 0) {
		*out = NULL;
		return err_set(e, DCM_E_NOT_DICOM, "empty dataset");
	}
	return parse_common(buf, len, flags & ~DCM_REQUIRE_META, 0, ts_uid,
	    0, out, e);
}

int
dcm_open(const char *path, unsigned flags, struct dcm **out, struct err *e)
{
	struct stat st;
	void *map;
	int fd;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return err_sys(e, "open %s", path);
	if (fstat(fd, &st) == -1) {
		err_sys(e, "fstat %s", path);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(e, DCM_E_NOT_DICOM, "%s: not a regular file",
		    path);
	}
	if (st.st_size == 0) {
		close(fd);
		return err_set(e, DCM_E_NOT_DICOM, "%s: empty file", path);
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		err_sys(e, "mmap %s", path);
		close(fd);
		return -1;
	}
	close(fd);
	if (parse_common(map, (size_t)st.st_size, flags, 1, NULL, 1, out,
	    e) == -1) {
		munmap(map, (size_t)st.st_size);
		return err_wrap(e, "%s", path);
	}
	(*out)->map = map;
	(*out)->maplen = (size_t)st.st_size;
	return 0;
}

void
dcm_release_part(const struct dcm *d, const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p, base;

	if (d == NULL || d->map == NULL)
		return;
	base = (uintptr_t)d->map;
	if (a < base || a - base > d->maplen || len > d->maplen - (a - base))
		return;
	release_range(d->map, a - base, a - base + len);
}

void
dcm_release(const struct dcm *d)
{
	if (d != NULL && d->map != NULL)
		(void)madvise(d->map, d->maplen, MADV_DONTNEED);
}

void
dcm_free(struct dcm *d)
{
	if (d == NULL)
		return;
	if (d->map != NULL)
		munmap(d->map, d->maplen);
	free(d->inflated);
	free(d->elems);
	free(d->ext);
	free(d->items);
	free(d->refs);
	free(d);
}

/* Navigation */

const char *
dcm_transfer_syntax(const struct dcm *d)
{
	return d->ts;
}

int
dcm_has_meta(const struct dcm *d)
{
	return d->has_meta;
}

const struct dcm_item *
dcm_root(const struct dcm *d)
{
	return &d->items[0];
}

static const struct dcm_item *
item_or_root(const struct dcm *d, const struct dcm_item *item)
{
	return item != NULL ? item : &d->items[0];
}

static int
cmp_elem_tag(const void *key, const void *member)
{
	uint32_t tag = *(const uint32_t *)key;
	const struct dcm_elem *el = member;

	return tag < el->tag ? -1 : tag > el->tag;
}

const struct dcm_elem *
dcm_find(const struct dcm *d, const struct dcm_item *item, uint32_t tag)
{
	const struct dcm_item *it = item_or_root(d, item);
	const struct dcm_elem *el;
	size_t i;

	if (it->count == 0)
		return NULL;	/* elems may be NULL: no arithmetic on it */
	el = d->elems + it->first;
	if (it->sorted)
		return bsearch(&tag, el, it->count, sizeof *el, cmp_elem_tag);
	for (i = 0; i < it->count; i++)
		if (el[i].tag == tag)
			return &el[i];
	return NULL;
}

size_t
dcm_elem_count(const struct dcm *d, const struct dcm_item *item)
{
	return item_or_root(d, item)->count;
}

const struct dcm_elem *
dcm_elem_at(const struct dcm *d, const struct dcm_item *item, size_t i)
{
	const struct dcm_item *it = item_or_root(d, item);

	return i < it->count ? &d->elems[it->first + i] : NULL;
}

/* The index of el in d->elems, or -1 when el is not one of d's. */
static long
elem_index(const struct dcm *d, const struct dcm_elem *el)
{
	uintptr_t a = (uintptr_t)el, lo = (uintptr_t)d->elems;

	if (el == NULL || a < lo || a >= lo + d->nelems * sizeof *el ||
	    (a - lo) % sizeof *el != 0)
		return -1;
	return (long)((a - lo) / sizeof *el);
}

size_t
dcm_item_count(const struct dcm *d, const struct dcm_elem *sq)
{
	long i = elem_index(d, sq);

	return i < 0 ? 0 : d->ext[i].ref_count;
}

const struct dcm_item *
dcm_item_at(const struct dcm *d, const struct dcm_elem *sq, size_t i)
{
	long k = elem_index(d, sq);

	if (k < 0 || i >= d->ext[k].ref_count)
		return NULL;
	return &d->items[d->refs[d->ext[k].ref_first + i]];
}

/* Values */

static int
vr_uses_charset(const char *vr)
{
	static const char list[] = "SHLOPNLTSTUTUC";

	return vr_in(list, (const uint8_t *)vr);
}

static int
vr_single_text(const char *vr)
{
	return vr_in("LTSTUTUR", (const uint8_t *)vr);
}

static int
vr_multi_text(const char *vr)
{
	return vr_in("AEASCSDADSDTISLOPNSHTMUCUI", (const uint8_t *)vr);
}

/* Size of one binary value, or 0 for VRs that are not binary numbers. */
static size_t
vr_binary_size(const char *vr)
{
	if (vr_in("USSSOW", (const uint8_t *)vr))
		return 2;
	if (vr_in("ULSLFLOFOLAT", (const uint8_t *)vr))
		return 4;
	if (vr_in("FDODSVUVOV", (const uint8_t *)vr))
		return 8;
	return 0;
}

/*
 * The VR to read a value with: an explicit UN holds the bytes of the
 * element's real VR (little endian), which the dictionary may know.
 */
static const char *
value_vr(const struct dcm_elem *el)
{
	const struct dcm_dict_entry *ent;

	if (!vr_is(el->vr, "UN") || el->big_endian ||
	    (ent = dcm_dict_lookup(el->tag)) == NULL ||
	    vr_is(ent->vr, "SQ") || vr_is(ent->vr, "UN"))
		return el->vr;
	return ent->vr;
}

/* The Specific Character Set that applies in item: its own or inherited. */
static const struct dcm_elem *
charset_of(const struct dcm *d, const struct dcm_item *it)
{
	const struct dcm_elem *cs;

	for (;;) {
		if ((cs = dcm_find(d, it, TAG_CHARSET)) != NULL &&
		    cs->value != NULL)
			return cs;
		if (it == &d->items[0] || it == &d->items[it->parent])
			return NULL;
		it = &d->items[it->parent];
	}
}

static int
plain_ascii(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] >= 0x80 || p[i] == 0x1b)
			return 0;
	return 1;
}

/*
 * The element's text as UTF-8: either the raw bytes (*heap NULL) or a
 * malloc'd conversion (*heap, to free).
 */
static int
elem_text(const struct dcm *d, const struct dcm_elem *el,
    const uint8_t **text, size_t *len, char **heap, struct err *e)
{
	const struct dcm_elem *cs = NULL;
	const char *vr = value_vr(el);
	long k;

	*heap = NULL;
	*text = el->value;
	*len = el->length;
	if (plain_ascii(el->value, el->length))
		return 0;
	if (vr_uses_charset(vr) && (k = elem_index(d, el)) >= 0)
		cs = charset_of(d, &d->items[d->ext[k].owner]);
	if (dcm_charset_to_utf8(cs != NULL ? (const char *)cs->value : NULL,
	    cs != NULL ? cs->length : 0, el->value, el->length,
	    vr_is(vr, "PN"), heap, len, e) == -1)
		return -1;
	*text = (const uint8_t *)*heap;
	return 0;
}

/* Finds value i of text (split at '\' when multi) as [*start, *end). */
static int
split_value(const uint8_t *t, size_t n, int multi, int i, size_t *start,
    size_t *end)
{
	size_t s = 0, k;

	if (!multi) {
		if (i != 0)
			return -1;
		*start = 0;
		*end = n;
		return 0;
	}
	for (k = 0; k <= n; k++) {
		if (k < n && t[k] != '\\')
			continue;
		if (i-- == 0) {
			*start = s;
			*end = k;
			return 0;
		}
		s = k + 1;
	}
	return -1;
}

static size_t
copy_out(char *out, size_t outsz, const uint8_t *src, size_t n)
{
	if (n > outsz - 1) {
		n = outsz - 1;
		while (n > 0 && (src[n] & 0xc0) == 0x80)
			n--;	/* cut at a UTF-8 character boundary */
	}
	memcpy(out, src, n);
	out[n] = '\0';
	return n;
}

/* Replaces the locale's decimal point by '.' (snprintf follows LC_NUMERIC). */
static void
c_decimal(char *s)
{
	const char *dp = localeconv()->decimal_point;
	size_t dl = strlen(dp);
	char *q;

	if (dl == 0 || strcmp(dp, ".") == 0 || (q = strstr(s, dp)) == NULL)
		return;
	*q = '.';
	memmove(q + 1, q + dl, strlen(q + dl) + 1);
}

/* strtod for DICOM's '.' whatever the locale; full consumption. */
static int
c_strtod(const char *s, double *out)
{
	const char *dp = localeconv()->decimal_point;
	char buf[128], *end;
	size_t n = strlen(s);

	if (n == 0 || n + strlen(dp) >= sizeof buf)
		return -1;
	memcpy(buf, s, n + 1);
	if (strcmp(dp, ".") != 0 && (end = strchr(buf, '.')) != NULL) {
		size_t dl = strlen(dp);

		memmove(end + dl, end + 1, strlen(end + 1) + 1);
		memcpy(end, dp, dl);
	}
	errno = 0;
	*out = strtod(buf, &end);
	if (end == buf || *end != '\0' || errno == ERANGE)
		return -1;
	return 0;
}

/* The shortest %g form that reads back as the same value. */
static void
fmt_double(char *buf, size_t sz, double v, int is_float)
{
	int prec;
	double back;

	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, sz, "%.*g", prec, v);
		c_decimal(buf);
		if (c_strtod(buf, &back) == -1)
			continue;
		if (is_float ? (float)back == (float)v : back == v)
			return;
	}
	snprintf(buf, sz, "%.17g", v);
	c_decimal(buf);
}

/* Binary value i formatted as text into buf. */
static void
fmt_binary(const struct dcm_elem *el, size_t size, int i, char *buf,
    size_t sz)
{
	const uint8_t *v = el->value + (size_t)i * size;
	int be = el->big_endian;
	union { uint32_t u; float f; } f32;
	union { uint64_t u; double f; } f64;
	const char *vr = value_vr(el);

	if (vr_is(vr, "AT"))
		snprintf(buf, sz, "(%04X,%04X)", rd16(v, be), rd16(v + 2, be));
	else if (vr_is(vr, "SS"))
		snprintf(buf, sz, "%d", (int16_t)rd16(v, be));
	else if (vr_is(vr, "SL"))
		snprintf(buf, sz, "%ld", (long)(int32_t)rd32(v, be));
	else if (vr_is(vr, "SV"))
		snprintf(buf, sz, "%lld", (long long)(int64_t)rd64(v, be));
	else if (vr_is(vr, "FL") || vr_is(vr, "OF")) {
		f32.u = rd32(v, be);
		fmt_double(buf, sz, f32.f, 1);
	} else if (vr_is(vr, "FD") || vr_is(vr, "OD")) {
		f64.u = rd64(v, be);
		fmt_double(buf, sz, f64.f, 0);
	} else if (size == 2)
		snprintf(buf, sz, "%u", rd16(v, be));
	else if (size == 4)
		snprintf(buf, sz, "%lu", (unsigned long)rd32(v, be));
	else
		snprintf(buf, sz, "%llu", (unsigned long long)rd64(v, be));
}

static int
not_found(struct err *e, uint32_t tag, int i)
{
	return err_set(e, DCM_E_NOT_FOUND, "element " TAGFMT " has no value %d",
	    TAGARG(tag), i);
}

static int
elem_string(const struct dcm *d, const struct dcm_elem *el, int i,
    char *out, size_t outsz, struct err *e)
{
	const uint8_t *t;
	size_t n, s, end, size;
	char *heap, num[64];
	const char *vr = value_vr(el);
	int multi;

	if (el->value == NULL)
		return err_set(e, DCM_E_NOT_FOUND, "element " TAGFMT " is a "
		    "sequence or encapsulated data, not text", TAGARG(el->tag));
	if (i < 0)
		return not_found(e, el->tag, i);
	if ((size = vr_binary_size(vr)) != 0) {
		if ((size_t)i >= el->length / size)
			return not_found(e, el->tag, i);
		fmt_binary(el, size, i, num, sizeof num);
		return (int)copy_out(out, outsz, (const uint8_t *)num,
		    strlen(num));
	}
	if (el->length == 0 && i == 0) {
		out[0] = '\0';
		return 0;
	}
	if (elem_text(d, el, &t, &n, &heap, e) == -1)
		return -1;
	multi = vr_multi_text(vr);
	if (split_value(t, n, multi, i, &s, &end) == -1) {
		free(heap);
		return not_found(e, el->tag, i);
	}
	while (end > s && (t[end - 1] == ' ' || t[end - 1] == '\0'))
		end--;
	while (!vr_single_text(vr) && s < end && t[s] == ' ')
		s++;
	n = copy_out(out, outsz, t + s, end - s);
	free(heap);
	return n > INT_MAX ? INT_MAX : (int)n;
}

static const struct dcm_elem *
find_or_fail(const struct dcm *d, const struct dcm_item *item, uint32_t tag,
    struct err *e)
{
	const struct dcm_elem *el = dcm_find(d, item, tag);

	if (el == NULL)
		err_set(e, DCM_E_NOT_FOUND, "element " TAGFMT " not present",
		    TAGARG(tag));
	return el;
}

int
dcm_get_string(const struct dcm *d, const struct dcm_item *item,
    uint32_t tag, int i, char *out, size_t outsz, struct err *e)
{
	const struct dcm_elem *el;

	if (out == NULL || outsz == 0)
		return err_set(e, EINVAL, "dcm_get_string: no room for output");
	out[0] = '\0';
	if ((el = find_or_fail(d, item, tag, e)) == NULL)
		return -1;
	return elem_string(d, el, i, out, outsz, e);
}

static int
get_text_number(const struct dcm *d, const struct dcm_elem *el, int i,
    char *buf, size_t sz, struct err *e)
{
	int n;

	if ((n = elem_string(d, el, i, buf, sz, e)) == -1)
		return -1;
	if (n == 0)
		return err_set(e, DCM_E_NOT_FOUND, "element " TAGFMT
		    " value %d is empty", TAGARG(el->tag), i);
	if ((size_t)n >= sz - 1)
		return err_set(e, DCM_E_MALFORMED, "element " TAGFMT
		    " value %d is too long for a number", TAGARG(el->tag), i);
	return 0;
}

static int
not_number(struct err *e, const struct dcm_elem *el, int i, const char *s)
{
	return err_set(e, DCM_E_MALFORMED, "element " TAGFMT " value %d "
	    "'%.32s' is not a number", TAGARG(el->tag), i, s);
}

int
dcm_get_double(const struct dcm *d, const struct dcm_item *item,
    uint32_t tag, int i, double *out, struct err *e)
{
	const struct dcm_elem *el;
	char buf[128];

	if ((el = find_or_fail(d, item, tag, e)) == NULL)
		return -1;
	if (get_text_number(d, el, i, buf, sizeof buf, e) == -1)
		return -1;
	if (c_strtod(buf, out) == -1)
		return not_number(e, el, i, buf);
	return 0;
}

int
dcm_get_long(const struct dcm *d, const struct dcm_item *item,
    uint32_t tag, int i, long *out, struct err *e)
{
	const struct dcm_elem *el;
	char buf[128], *end;
	double v;

	if ((el = find_or_fail(d, item, tag, e)) == NULL)
		return -1;
	if (get_text_number(d, el, i, buf, sizeof buf, e) == -1)
		return -1;
	errno = 0;
	*out = strtol(buf, &end, 10);
	if (end != buf && *end == '\0' && errno == 0)
		return 0;
	/* DS "512.0", FL 3.0: integral values are accepted. */
	if (c_strtod(buf, &v) == -1 || v != floor(v) || v < (double)LONG_MIN ||
	    v >= -(double)LONG_MIN)
		return not_number(e, el, i, buf);
	*out = (long)v;
	return 0;
}

int
dcm_vm(const struct dcm *d, const struct dcm_elem *el)
{
	const uint8_t *t;
	size_t n, k, size;
	char *heap;
	const char *vr;
	int vm = 1;

	if (el == NULL)
		return 0;
	if (el->value == NULL)
		return vr_is(el->vr, "SQ") ? dcm_item_count(d, el) > 0 : 1;
	if (el->length == 0)
		return 0;
	vr = value_vr(el);
	if ((size = vr_binary_size(vr)) != 0)
		return (int)(el->length / size);
	if (!vr_multi_text(vr))
		return 1;
	if (elem_text(d, el, &t, &n, &heap, NULL) == -1)
		return 1;
	for (k = 0; k < n; k++)
		if (t[k] == '\\')
			vm++;
	free(heap);
	return vm;
}

/* Pixel data fragments */

int
dcm_pixel_fragments(const struct dcm *d, const struct dcm_elem *el,
    struct dcm_fragment *bot, struct dcm_fragment **frags, size_t *nfrags,
    struct err *e)
{
	struct dcm_fragment *v = NULL;
	size_t pos, n = 0, cap = 0, end = d->buflen, mark;
	const uint8_t *b = d->buf;
	uint32_t t, len;

	*frags = NULL;
	*nfrags = 0;
	memset(bot, 0, sizeof *bot);
	if (el->value != NULL || el->length != UNDEFINED)
		return err_set(e, DCM_E_MALFORMED, "pixel data is not "
		    "encapsulated");
	if (d->inflated != NULL || el->offset > end || end - el->offset < 12)
		return err_set(e, DCM_E_MALFORMED, "encapsulated pixel data "
		    "at offset %zu is not in the parsed input", el->offset);
	pos = el->offset + 8;
	if (rd32(b + pos, el->big_endian) == UNDEFINED)	/* explicit VR */
		pos += 4;
	mark = pos;
	for (int first = 1;; first = 0) {
		if (d->map != NULL)
			release_behind(b, &mark, pos);
		if (end - pos < 8) {
			free(v);
			return err_set(e, DCM_E_TRUNCATED, "pixel data "
			    "fragments end without a delimiter at offset %zu",
			    pos);
		}
		t = DCM_TAG(rd16(b + pos, el->big_endian),
		    rd16(b + pos + 2, el->big_endian));
		len = rd32(b + pos + 4, el->big_endian);
		if (t == TAG_SEQ_END)
			break;
		if (t != TAG_ITEM || len == UNDEFINED || len > end - pos - 8) {
			free(v);
			return err_set(e, DCM_E_MALFORMED, "bad pixel data "
			    "fragment at offset %zu", pos);
		}
		if (first) {
			*bot = (struct dcm_fragment){ b + pos + 8, len, { 0 } };
		} else {
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 16;
				void *nv = reallocarray(v, nc, sizeof *v);
				if (nv == NULL) {
					free(v);
					return err_sys(e, "reallocarray");
				}
				v = nv;
				cap = nc;
			}
			v[n] = (struct dcm_fragment){ b + pos + 8, len, { 0 } };
			memcpy(v[n++].head, b + pos + 8, len <
			    sizeof v->head ? len : sizeof v->head);
		}
		pos += 8 + (size_t)len;
	}
	if (d->map != NULL)	/* the walk's last pages too: only one
				 * frame's fragments are read next */
		release_range(b, mark > FOLIO_MAX ? mark - FOLIO_MAX : 0,
		    end - pos > FOLIO_MAX ? pos + FOLIO_MAX : end);
	*frags = v;
	*nfrags = n;
	return 0;
}
