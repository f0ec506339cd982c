/*
 * dicom_write: the dataset builder and encoder (see the end of dicom/dicom.h).
 *
 * A builder is a tree: an item holds an array of element nodes (each
 * allocated on its own, so pointers stay valid while arrays grow); a
 * sequence node holds an array of items.  Text is kept as given (UTF-8)
 * and converted to the target character set only when encoding, so one
 * builder can be encoded for peers that want different sets.
 *
 * Encoding writes into one growing buffer.  Sequences and items get
 * defined lengths: a placeholder is written first and patched when the
 * contents are known (dcmtk and most peers prefer defined lengths).
 * Elements are sorted by tag at each level just before encoding.
 */
#include "dicom/dicom.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define TAG_CHARSET	DCM_TAG(0x0008, 0x0005)
#define TAG_ITEM	DCM_TAG(0xfffe, 0xe000)
#define TAGFMT		"(%04X,%04X)"
#define TAGARG(t)	DCM_GROUP(t), DCM_ELEMENT(t)

/* Our implementation class UID and version name (PS3.7 D.3.3.2). */
const char dcm_build_implementation_uid[] =
    "2.25.217398219393413906189011466893417632";
const char dcm_build_implementation_version[] = "SCRGW_010";

struct bnode;

struct bitem {
	struct bnode **nodes;
	size_t n, cap;
};

struct bnode {
	uint32_t tag;
	char vr[3];
	uint8_t *value;		/* NULL for SQ and empty values */
	size_t len;
	int is_text;		/* value is UTF-8 text to convert */
	int is_ascii;		/* default repertoire only (UI, CS, AE...) */
	int encapsulated;	/* value is encoded items + delimiter */
	struct bitem **items;	/* SQ only */
	size_t nitems, itemcap;
};

struct frame {
	struct bnode *sq;
	struct bitem *item;	/* open item, or NULL between items */
};

struct dcm_builder {
	struct bitem root;
	struct frame stack[DCM_MAX_DEPTH];
	int depth;
};

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void node_free(struct bnode *n);

static void
item_clear(struct bitem *it)
{
	size_t i;

	for (i = 0; i < it->n; i++)
		node_free(it->nodes[i]);
	free(it->nodes);
	it->nodes = NULL;
	it->n = it->cap = 0;
}

static void
node_free(struct bnode *n)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < n->nitems; i++) {
		item_clear(n->items[i]);
		free(n->items[i]);
	}
	free(n->items);
	free(n->value);
	free(n);
}

struct dcm_builder *
dcm_build_new(void)
{
	return calloc(1, sizeof(struct dcm_builder));
}

void
dcm_build_free(struct dcm_builder *b)
{
	if (b == NULL)
		return;
	item_clear(&b->root);
	free(b);
}

static int
nomem(struct err *e)
{
	return err_set(e, ENOMEM, "out of memory building a dataset");
}

static int
grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t ncap;
	void *np;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 8;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / size)
			return -1;
		ncap *= 2;
	}
	if ((np = realloc(*p, ncap * size)) == NULL)
		return -1;
	*p = np;
	*cap = ncap;
	return 0;
}

/* The item elements are added to now, or NULL (a sequence with no item
 * open). */
static struct bitem *
current_item(struct dcm_builder *b)
{
	if (b->depth == 0)
		return &b->root;
	return b->stack[b->depth - 1].item;
}

static int
vr_is_text(const char *vr)
{
	static const char *const text[] = {
		"PN", "LO", "SH", "LT", "ST", "UT", "UC", NULL
	};
	int i;

	for (i = 0; text[i] != NULL; i++)
		if (strcmp(vr, text[i]) == 0)
			return 1;
	return 0;
}

static int
vr_long_length(const char *vr)
{
	static const char *const lng[] = {
		"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN",
		"UR", "UT", "UV", NULL
	};
	int i;

	for (i = 0; lng[i] != NULL; i++)
		if (strcmp(vr, lng[i]) == 0)
			return 1;
	return 0;
}

static int
resolve_vr(uint32_t tag, const char *vr, char out[3], struct err *e)
{
	const struct dcm_dict_entry *d;

	if (vr != NULL) {
		if (strlen(vr) != 2 || vr[0] < 'A' || vr[0] > 'Z' ||
		    vr[1] < 'A' || vr[1] > 'Z')
			return err_set(e, DCM_E_MALFORMED,
			    "bad VR \"%s\" for " TAGFMT, vr, TAGARG(tag));
		memcpy(out, vr, 3);
		return 0;
	}
	if (DCM_ELEMENT(tag) == 0) {
		memcpy(out, "UL", 3);	/* group length */
		return 0;
	}
	if ((d = dcm_dict_lookup(tag)) == NULL || strcmp(d->vr, "UN") == 0)
		return err_set(e, DCM_E_NOT_FOUND,
		    "no dictionary VR for " TAGFMT ": give one", TAGARG(tag));
	memcpy(out, d->vr, 3);
	return 0;
}

/* Put node n into the open item, replacing an element with its tag. */
static int
attach(struct dcm_builder *b, struct bnode *n, struct err *e)
{
	struct bitem *it;
	size_t i;

	if ((it = current_item(b)) == NULL) {
		err_set(e, DCM_E_MALFORMED,
		    "element " TAGFMT " added to a sequence with no open item",
		    TAGARG(n->tag));
		node_free(n);
		return -1;
	}
	for (i = 0; i < it->n; i++) {
		if (it->nodes[i]->tag == n->tag) {
			node_free(it->nodes[i]);
			it->nodes[i] = n;
			return 0;
		}
	}
	if (grow((void **)&it->nodes, &it->cap, it->n + 1,
	    sizeof(*it->nodes)) == -1) {
		node_free(n);
		return nomem(e);
	}
	it->nodes[it->n++] = n;
	return 0;
}

static int
add_value(struct dcm_builder *b, uint32_t tag, const char *vr,
    const void *value, size_t len, int is_text, struct err *e)
{
	struct bnode *n;

	if (b == NULL)
		return err_set(e, EINVAL, "no builder");
	if (len > UINT32_MAX - 2)
		return err_set(e, EOVERFLOW, "value of " TAGFMT " too long",
		    TAGARG(tag));
	if ((n = calloc(1, sizeof(*n))) == NULL)
		return nomem(e);
	n->tag = tag;
	if (resolve_vr(tag, vr, n->vr, e) == -1) {
		free(n);
		return -1;
	}
	if (strcmp(n->vr, "SQ") == 0) {
		free(n);
		return err_set(e, DCM_E_MALFORMED, TAGFMT " is a sequence: "
		    "use dcm_build_sequence_begin", TAGARG(tag));
	}
	if (len > 0) {
		if ((n->value = malloc(len)) == NULL) {
			free(n);
			return nomem(e);
		}
		memcpy(n->value, value, len);
	}
	n->len = len;
	n->is_text = is_text && vr_is_text(n->vr);
	/* no character set holds the others' non-ASCII characters */
	n->is_ascii = is_text && !n->is_text;
	return attach(b, n, e);
}

int
dcm_build_string(struct dcm_builder *b, uint32_t tag, const char *vr,
    const char *utf8, struct err *e)
{
	if (utf8 == NULL)
		utf8 = "";
	return add_value(b, tag, vr, utf8, strlen(utf8), 1, e);
}

int
dcm_build_empty(struct dcm_builder *b, uint32_t tag, const char *vr,
    struct err *e)
{
	return add_value(b, tag, vr, NULL, 0, 0, e);
}

int
dcm_build_u16(struct dcm_builder *b, uint32_t tag, uint16_t v, struct err *e)
{
	uint8_t le[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	return add_value(b, tag, "US", le, sizeof le, 0, e);
}

int
dcm_build_u32(struct dcm_builder *b, uint32_t tag, uint32_t v, struct err *e)
{
	uint8_t le[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
	    (uint8_t)(v >> 24) };

	return add_value(b, tag, "UL", le, sizeof le, 0, e);
}

int
dcm_build_bytes(struct dcm_builder *b, uint32_t tag, const char *vr,
    const void *value, size_t len, struct err *e)
{
	return add_value(b, tag, vr, value, len, 0, e);
}

int
dcm_build_sequence_begin(struct dcm_builder *b, uint32_t tag, struct err *e)
{
	struct bnode *n;

	if (b == NULL)
		return err_set(e, EINVAL, "no builder");
	if (b->depth >= DCM_MAX_DEPTH)
		return err_set(e, DCM_E_TOO_DEEP, "sequence " TAGFMT
		    " nested deeper than %d", TAGARG(tag), DCM_MAX_DEPTH);
	if ((n = calloc(1, sizeof(*n))) == NULL)
		return nomem(e);
	n->tag = tag;
	memcpy(n->vr, "SQ", 3);
	if (attach(b, n, e) == -1)
		return -1;
	b->stack[b->depth].sq = n;
	b->stack[b->depth].item = NULL;
	b->depth++;
	return 0;
}

int
dcm_build_item_begin(struct dcm_builder *b, struct err *e)
{
	struct frame *f;
	struct bitem *it;

	if (b == NULL || b->depth == 0)
		return err_set(e, DCM_E_MALFORMED, "item begun outside a sequence");
	f = &b->stack[b->depth - 1];
	if (f->item != NULL)
		return err_set(e, DCM_E_MALFORMED, "item begun inside an item "
		    "of " TAGFMT " without a sequence", TAGARG(f->sq->tag));
	if (grow((void **)&f->sq->items, &f->sq->itemcap, f->sq->nitems + 1,
	    sizeof(*f->sq->items)) == -1)
		return nomem(e);
	if ((it = calloc(1, sizeof(*it))) == NULL)
		return nomem(e);
	f->sq->items[f->sq->nitems++] = it;
	f->item = it;
	return 0;
}

int
dcm_build_item_end(struct dcm_builder *b, struct err *e)
{
	if (b == NULL || b->depth == 0 || b->stack[b->depth - 1].item == NULL)
		return err_set(e, DCM_E_MALFORMED, "item end with no open item");
	b->stack[b->depth - 1].item = NULL;
	return 0;
}

int
dcm_build_sequence_end(struct dcm_builder *b, struct err *e)
{
	if (b == NULL || b->depth == 0)
		return err_set(e, DCM_E_MALFORMED,
		    "sequence end with no open sequence");
	if (b->stack[b->depth - 1].item != NULL)
		return err_set(e, DCM_E_MALFORMED, "sequence " TAGFMT
		    " ended with an item open",
		    TAGARG(b->stack[b->depth - 1].sq->tag));
	b->depth--;
	return 0;
}

/* --- encapsulated pixel data --- */

static void
le32_at(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint8_t *
item_header(uint8_t *p, uint16_t element, uint32_t len)
{
	p[0] = 0xfe;
	p[1] = 0xff;
	p[2] = (uint8_t)element;
	p[3] = (uint8_t)(element >> 8);
	le32_at(p + 4, len);
	return p + 8;
}

/* Bytes of the encoded items: offset table, fragments (even), delimiter.
 * 0 when it would not fit the 32-bit lengths and offsets. */
static size_t
encapsulated_size(const struct dcm_fragment *frames, size_t n)
{
	uint64_t total = 8 + 8;

	if (n > (UINT32_MAX - 16) / 4)
		return 0;
	total += 4 * (uint64_t)n;
	for (size_t i = 0; i < n; i++)
		total += 8 + (uint64_t)frames[i].length +
		    (frames[i].length & 1);
	return total > UINT32_MAX - 2 || total > SIZE_MAX ? 0 : total;
}

int
dcm_build_encapsulated(struct dcm_builder *b, uint32_t tag,
    const struct dcm_fragment *frames, size_t nframes, struct err *e)
{
	struct bnode *n;
	size_t size;
	uint8_t *p, *bot;
	uint32_t offset = 0;

	if (b == NULL || nframes == 0)
		return err_set(e, EINVAL, "encapsulated " TAGFMT " needs a "
		    "builder and at least one frame", TAGARG(tag));
	if ((size = encapsulated_size(frames, nframes)) == 0)
		return err_set(e, EOVERFLOW, "encapsulated " TAGFMT " over "
		    "4 GiB: the offset table cannot address it", TAGARG(tag));
	if ((n = calloc(1, sizeof(*n))) == NULL ||
	    (n->value = malloc(size)) == NULL) {
		free(n);
		return nomem(e);
	}
	n->tag = tag;
	memcpy(n->vr, "OB", 3);
	n->len = size;
	n->encapsulated = 1;
	bot = item_header(n->value, 0xe000, (uint32_t)(4 * nframes));
	p = bot + 4 * nframes;
	for (size_t i = 0; i < nframes; i++) {
		uint32_t len = frames[i].length + (frames[i].length & 1);

		le32_at(bot + 4 * i, offset);
		p = item_header(p, 0xe000, len);
		memcpy(p, frames[i].data, frames[i].length);
		if (frames[i].length & 1)
			p[frames[i].length] = 0;
		p += len;
		offset += 8 + len;
	}
	item_header(p, 0xe0dd, 0);
	return attach(b, n, e);
}

size_t
dcm_build_header(uint8_t out[12], uint32_t tag, const char *vr, uint32_t len,
    int explicit_vr)
{
	out[0] = (uint8_t)DCM_GROUP(tag);
	out[1] = (uint8_t)(DCM_GROUP(tag) >> 8);
	out[2] = (uint8_t)DCM_ELEMENT(tag);
	out[3] = (uint8_t)(DCM_ELEMENT(tag) >> 8);
	if (!explicit_vr || DCM_GROUP(tag) == 0xfffe) {
		le32_at(out + 4, len);
		return 8;
	}
	out[4] = (uint8_t)vr[0];
	out[5] = (uint8_t)vr[1];
	if (vr_long_length(vr)) {
		out[6] = out[7] = 0;
		le32_at(out + 8, len);
		return 12;
	}
	if (len > 0xffff)
		return 0;
	out[6] = (uint8_t)len;
	out[7] = (uint8_t)(len >> 8);
	return 8;
}

/* --- copying from a parsed dataset --- */

static size_t
swap_unit(const char *vr)
{
	static const struct { const char *vr; size_t n; } units[] = {
		{ "US", 2 }, { "SS", 2 }, { "OW", 2 }, { "AT", 2 },
		{ "UL", 4 }, { "SL", 4 }, { "FL", 4 }, { "OF", 4 },
		{ "OL", 4 }, { "FD", 8 }, { "OD", 8 }, { "SV", 8 },
		{ "UV", 8 }, { "OV", 8 },
	};
	size_t i;

	for (i = 0; i < sizeof units / sizeof units[0]; i++)
		if (strcmp(vr, units[i].vr) == 0)
			return units[i].n;
	return 1;
}

static int
copy_binary(struct dcm_builder *b, const struct dcm_elem *el, struct err *e)
{
	size_t unit = swap_unit(el->vr), i, k;
	uint8_t *v;
	int rc;

	if (!el->big_endian || unit == 1)
		return dcm_build_bytes(b, el->tag, el->vr, el->value,
		    el->length, e);
	if ((v = malloc(el->length ? el->length : 1)) == NULL)
		return nomem(e);
	for (i = 0; i + unit <= el->length; i += unit)
		for (k = 0; k < unit; k++)
			v[i + k] = el->value[i + unit - 1 - k];
	for (; i < el->length; i++)
		v[i] = el->value[i];
	rc = dcm_build_bytes(b, el->tag, el->vr, v, el->length, e);
	free(v);
	return rc;
}

/* The Specific Character Set in force for an element: the root's. */
static void
charset_of(const struct dcm *d, const char **cs, size_t *cslen)
{
	const struct dcm_elem *c = dcm_find(d, NULL, TAG_CHARSET);

	*cs = NULL;
	*cslen = 0;
	if (c != NULL && c->value != NULL) {
		*cs = (const char *)c->value;
		*cslen = c->length;
	}
}

static int
copy_text(struct dcm_builder *b, const struct dcm *d,
    const struct dcm_elem *el, struct err *e)
{
	const char *cs;
	size_t cslen, n;
	char *utf8;
	int rc;

	charset_of(d, &cs, &cslen);
	if (dcm_charset_to_utf8(cs, cslen, el->value, el->length,
	    strcmp(el->vr, "PN") == 0, &utf8, &n, e) == -1)
		return -1;
	while (n > 0 && (utf8[n - 1] == ' ' || utf8[n - 1] == '\0'))
		n--;
	rc = add_value(b, el->tag, el->vr, utf8, n, 1, e);
	free(utf8);
	return rc;
}

static int
copy_plain(struct dcm_builder *b, const struct dcm_elem *el, struct err *e)
{
	size_t n = el->length;
	int textual = strcmp(el->vr, "UN") != 0 && swap_unit(el->vr) == 1 &&
	    strcmp(el->vr, "OB") != 0;

	if (textual)
		while (n > 0 && (el->value[n - 1] == ' ' ||
		    el->value[n - 1] == '\0'))
			n--;
	return add_value(b, el->tag, el->vr, el->value, n, 0, e);
}

int
dcm_build_copy(struct dcm_builder *b, const struct dcm *d,
    const struct dcm_elem *el, struct err *e)
{
	size_t i, j, n, ni;
	const struct dcm_item *it;

	if (strcmp(el->vr, "SQ") == 0) {
		if (dcm_build_sequence_begin(b, el->tag, e) == -1)
			return -1;
		ni = dcm_item_count(d, el);
		for (i = 0; i < ni; i++) {
			it = dcm_item_at(d, el, i);
			if (dcm_build_item_begin(b, e) == -1)
				return -1;
			n = dcm_elem_count(d, it);
			for (j = 0; j < n; j++)
				if (dcm_build_copy(b, d,
				    dcm_elem_at(d, it, j), e) == -1)
					return -1;
			if (dcm_build_item_end(b, e) == -1)
				return -1;
		}
		return dcm_build_sequence_end(b, e);
	}
	if (el->length == 0)
		return dcm_build_empty(b, el->tag, el->vr, e);
	if (el->value == NULL || el->length == 0xffffffffu)
		return err_set(e, DCM_E_MALFORMED, "cannot copy " TAGFMT
		    " (encapsulated or undefined length)", TAGARG(el->tag));
	if (vr_is_text(el->vr))
		return copy_text(b, d, el, e);
	if (swap_unit(el->vr) > 1)
		return copy_binary(b, el, e);
	return copy_plain(b, el, e);
}

/* --- encoding --- */

struct enc {
	struct buf out;
	int explicit;
	int encapsulated;	/* the syntax takes encapsulated pixel data */
	iconv_t cd;		/* UTF-8 -> target, or (iconv_t)-1 */
	int ascii;		/* no charset: non-ASCII becomes '?' */
	struct err *e;
};

static int
put(struct enc *x, const void *p, size_t n)
{
	if (grow((void **)&x->out.p, &x->out.cap, x->out.len + n, 1) == -1)
		return nomem(x->e);
	if (n > 0)
		memcpy(x->out.p + x->out.len, p, n);
	x->out.len += n;
	return 0;
}

static void
patch32(struct enc *x, size_t at, uint32_t v)
{
	x->out.p[at] = (uint8_t)v;
	x->out.p[at + 1] = (uint8_t)(v >> 8);
	x->out.p[at + 2] = (uint8_t)(v >> 16);
	x->out.p[at + 3] = (uint8_t)(v >> 24);
}

/* Length of the UTF-8 sequence starting with byte c (1 for bad bytes). */
static size_t
utf8_len(uint8_t c)
{
	if (c >= 0xf0 && c < 0xf8)
		return 4;
	if (c >= 0xe0)
		return c < 0xf0 ? 3 : 1;
	if (c >= 0xc0)
		return 2;
	return 1;
}

static int
put_ascii(struct enc *x, const uint8_t *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		if (s[i] < 0x80) {
			if (put(x, &s[i], 1) == -1)
				return -1;
			i++;
			continue;
		}
		if (put(x, "?", 1) == -1)
			return -1;
		k = utf8_len(s[i]);
		i += k <= n - i ? k : n - i;
	}
	return 0;
}

/* Convert UTF-8 to the target set; unconvertible characters become '?'. */
static int
put_converted(struct enc *x, const uint8_t *s, size_t n)
{
	char tmp[256], *in = (char *)(uintptr_t)s, *o;
	size_t inleft = n, oleft, k;
	size_t r;

	if (x->ascii)
		return put_ascii(x, s, n);
	if (x->cd == (iconv_t)-1)
		return put(x, s, n);
	iconv(x->cd, NULL, NULL, NULL, NULL);
	while (inleft > 0) {
		o = tmp;
		oleft = sizeof tmp;
		r = iconv(x->cd, &in, &inleft, &o, &oleft);
		if (put(x, tmp, sizeof tmp - oleft) == -1)
			return -1;
		if (r != (size_t)-1 || errno == E2BIG)
			continue;
		/* EILSEQ or EINVAL: replace one character */
		if (put(x, "?", 1) == -1)
			return -1;
		k = utf8_len((uint8_t)*in);
		if (k > inleft)
			k = inleft;
		in += k;
		inleft -= k;
	}
	o = tmp;
	oleft = sizeof tmp;
	if (iconv(x->cd, NULL, NULL, &o, &oleft) != (size_t)-1 &&
	    put(x, tmp, sizeof tmp - oleft) == -1)
		return -1;
	return 0;
}

static int
put_header(struct enc *x, uint32_t tag, const char *vr, uint32_t len)
{
	uint8_t h[12];
	size_t n = dcm_build_header(h, tag, vr, len, x->explicit);

	if (n == 0)
		return err_set(x->e, EOVERFLOW, "value of " TAGFMT " (%s) is "
		    "%u bytes, more than its 16-bit length holds",
		    TAGARG(tag), vr, len);
	return put(x, h, n);
}

static int encode_item(struct enc *x, struct bitem *it);

static int
encode_sequence(struct enc *x, struct bnode *n)
{
	size_t at, start, iat, istart, i;

	if (put_header(x, n->tag, "SQ", 0) == -1)
		return -1;
	at = x->out.len - 4;
	start = x->out.len;
	for (i = 0; i < n->nitems; i++) {
		if (put_header(x, TAG_ITEM, NULL, 0) == -1)
			return -1;
		iat = x->out.len - 4;
		istart = x->out.len;
		if (encode_item(x, n->items[i]) == -1)
			return -1;
		if (x->out.len - istart > UINT32_MAX - 1)
			return err_set(x->e, EOVERFLOW, "item too long");
		patch32(x, iat, (uint32_t)(x->out.len - istart));
	}
	if (x->out.len - start > UINT32_MAX - 1)
		return err_set(x->e, EOVERFLOW, "sequence too long");
	patch32(x, at, (uint32_t)(x->out.len - start));
	return 0;
}

static uint8_t
pad_byte(const char *vr)
{
	if (strcmp(vr, "UI") == 0 || strcmp(vr, "OB") == 0 ||
	    strcmp(vr, "UN") == 0)
		return 0;
	return ' ';
}

static int
encode_value(struct enc *x, struct bnode *n)
{
	size_t hdr, start, len;
	uint8_t pad = pad_byte(n->vr);

	if (n->encapsulated) {
		if (!x->encapsulated)
			return err_set(x->e, EINVAL, "encapsulated " TAGFMT
			    " needs an encapsulated transfer syntax",
			    TAGARG(n->tag));
		if (put_header(x, n->tag, n->vr, 0xffffffffu) == -1)
			return -1;
		return put(x, n->value, n->len);
	}
	hdr = x->out.len;
	/* a 2-byte-length header is patched below if need be */
	if (put_header(x, n->tag, n->vr, 0) == -1)
		return -1;
	start = x->out.len;
	if (n->is_text) {
		if (put_converted(x, n->value, n->len) == -1)
			return -1;
	} else if (n->is_ascii) {
		if (put_ascii(x, n->value, n->len) == -1)
			return -1;
	} else if (put(x, n->value, n->len) == -1)
		return -1;
	if ((x->out.len - start) % 2 == 1 && put(x, &pad, 1) == -1)
		return -1;
	len = x->out.len - start;
	if (len > UINT32_MAX - 1)
		return err_set(x->e, EOVERFLOW, "value too long");
	if (!x->explicit || vr_long_length(n->vr)) {
		patch32(x, start - 4, (uint32_t)len);
		return 0;
	}
	if (len > 0xffff)
		return err_set(x->e, EOVERFLOW, "value of " TAGFMT " (%s) is "
		    "%zu bytes, more than its 16-bit length holds",
		    TAGARG(n->tag), n->vr, len);
	x->out.p[hdr + 6] = (uint8_t)len;
	x->out.p[hdr + 7] = (uint8_t)(len >> 8);
	return 0;
}

static int
cmp_node(const void *a, const void *b)
{
	uint32_t ta = (*(struct bnode *const *)a)->tag;
	uint32_t tb = (*(struct bnode *const *)b)->tag;

	return ta < tb ? -1 : ta > tb;
}

static int
encode_item(struct enc *x, struct bitem *it)
{
	size_t i;

	if (it->n > 1)
		qsort(it->nodes, it->n, sizeof(*it->nodes), cmp_node);
	for (i = 0; i < it->n; i++) {
		if (strcmp(it->nodes[i]->vr, "SQ") == 0) {
			if (encode_sequence(x, it->nodes[i]) == -1)
				return -1;
		} else if (encode_value(x, it->nodes[i]) == -1)
			return -1;
	}
	return 0;
}

/* iconv name for a Specific Character Set value (its first term). */
static int
iconv_name(const char *charset, const char **name, struct err *e)
{
	static const struct { const char *term, *iconv; } map[] = {
		{ "ISO_IR 6", NULL }, { "", NULL },
		{ "ISO_IR 192", "UTF-8" },
		{ "ISO_IR 100", "ISO-8859-1" }, { "ISO_IR 101", "ISO-8859-2" },
		{ "ISO_IR 109", "ISO-8859-3" }, { "ISO_IR 110", "ISO-8859-4" },
		{ "ISO_IR 144", "ISO-8859-5" }, { "ISO_IR 127", "ISO-8859-6" },
		{ "ISO_IR 126", "ISO-8859-7" }, { "ISO_IR 138", "ISO-8859-8" },
		{ "ISO_IR 148", "ISO-8859-9" }, { "ISO_IR 203", "ISO-8859-15" },
		{ "ISO_IR 166", "TIS-620" }, { "GB18030", "GB18030" },
		{ "GBK", "GBK" },
	};
	size_t i;

	for (i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (strcmp(charset, map[i].term) == 0) {
			*name = map[i].iconv;
			return 0;
		}
	}
	return err_set(e, DCM_E_CHARSET,
	    "cannot encode text in Specific Character Set \"%s\"", charset);
}

/* Encapsulated syntaxes (JPEG family, JPEG-LS, JPEG 2000, RLE, ...):
 * the dataset is explicit VR little endian. */
static int
ts_is_encapsulated(const char *ts_uid)
{
	static const char jpeg[] = "1.2.840.10008.1.2.4.";

	return strncmp(ts_uid, jpeg, sizeof jpeg - 1) == 0 ||
	    strcmp(ts_uid, "1.2.840.10008.1.2.5") == 0;
}

static int
enc_init(struct enc *x, const char *ts_uid, const char *charset,
    struct err *e)
{
	const char *name = NULL;

	memset(x, 0, sizeof *x);
	x->cd = (iconv_t)-1;
	x->e = e;
	x->encapsulated = ts_is_encapsulated(ts_uid);
	if (strcmp(ts_uid, DCM_TS_EXPLICIT_LE) == 0 || x->encapsulated)
		x->explicit = 1;
	else if (strcmp(ts_uid, DCM_TS_IMPLICIT_LE) != 0)
		return err_set(e, EINVAL, "cannot encode in transfer syntax %s",
		    ts_uid);
	if (charset == NULL) {
		x->ascii = 1;
		return 0;
	}
	if (iconv_name(charset, &name, e) == -1)
		return -1;
	if (name == NULL) {
		x->ascii = 1;
		return 0;
	}
	if (strcmp(name, "UTF-8") == 0)
		return 0;
	if ((x->cd = iconv_open(name, "UTF-8")) == (iconv_t)-1)
		return err_set(e, DCM_E_CHARSET, "iconv has no converter "
		    "from UTF-8 to %s", name);
	return 0;
}

static void
enc_done(struct enc *x)
{
	if (x->cd != (iconv_t)-1)
		iconv_close(x->cd);
}

static int
encode_into(struct dcm_builder *b, struct enc *x, const char *charset)
{
	if (b->depth != 0)
		return err_set(x->e, DCM_E_MALFORMED,
		    "sequence " TAGFMT " still open at encode",
		    TAGARG(b->stack[b->depth - 1].sq->tag));
	if (charset != NULL && add_value(b, TAG_CHARSET, "CS", charset,
	    strlen(charset), 0, x->e) == -1)
		return -1;
	return encode_item(x, &b->root);
}

int
dcm_build_encode(struct dcm_builder *b, const char *ts_uid,
    const char *charset, uint8_t **out, size_t *outlen, struct err *e)
{
	struct enc x;
	int rc;

	if (b == NULL || ts_uid == NULL)
		return err_set(e, EINVAL, "no builder or transfer syntax");
	if (enc_init(&x, ts_uid, charset, e) == -1)
		return -1;
	rc = encode_into(b, &x, charset);
	if (rc == 0 && x.out.p == NULL &&
	    grow((void **)&x.out.p, &x.out.cap, 1, 1) == -1)
		rc = nomem(e);
	enc_done(&x);
	if (rc == -1) {
		free(x.out.p);
		return -1;
	}
	*out = x.out.p;
	*outlen = x.out.len;
	return 0;
}

static int
build_meta(struct dcm_builder *m, const char *sop_class_uid,
    const char *sop_instance_uid, const char *ts_uid, struct err *e)
{
	static const uint8_t version[2] = { 0x00, 0x01 };

	if (dcm_build_bytes(m, DCM_TAG(0x0002, 0x0001), "OB", version, 2,
	    e) == -1 ||
	    dcm_build_string(m, DCM_TAG(0x0002, 0x0002), "UI", sop_class_uid,
	    e) == -1 ||
	    dcm_build_string(m, DCM_TAG(0x0002, 0x0003), "UI",
	    sop_instance_uid, e) == -1 ||
	    dcm_build_string(m, DCM_TAG(0x0002, 0x0010), "UI", ts_uid,
	    e) == -1 ||
	    dcm_build_string(m, DCM_TAG(0x0002, 0x0012), "UI",
	    dcm_build_implementation_uid, e) == -1 ||
	    dcm_build_string(m, DCM_TAG(0x0002, 0x0013), "SH",
	    dcm_build_implementation_version, e) == -1)
		return -1;
	return 0;
}

/* The meta group, explicit VR LE, (0002,0000) first. */
static int
encode_meta(const char *sop_class_uid, const char *sop_instance_uid,
    const char *ts_uid, uint8_t **out, size_t *outlen, struct err *e)
{
	struct dcm_builder *m;
	uint8_t *body;
	size_t bodylen;
	int rc = -1;

	if ((m = dcm_build_new()) == NULL)
		return nomem(e);
	if (build_meta(m, sop_class_uid, sop_instance_uid, ts_uid, e) == 0 &&
	    dcm_build_encode(m, DCM_TS_EXPLICIT_LE, NULL, &body, &bodylen,
	    e) == 0) {
		rc = dcm_build_u32(m, DCM_TAG(0x0002, 0x0000),
		    (uint32_t)bodylen, e);
		free(body);
		if (rc == 0)
			rc = dcm_build_encode(m, DCM_TS_EXPLICIT_LE, NULL, out,
			    outlen, e);
	}
	dcm_build_free(m);
	return rc;
}

int
dcm_build_encode_file(struct dcm_builder *b, const char *sop_class_uid,
    const char *sop_instance_uid, const char *ts_uid, const char *charset,
    uint8_t **out, size_t *outlen, struct err *e)
{
	uint8_t *meta, *ds, *f;
	size_t metalen, dslen, n;

	if (sop_class_uid == NULL || sop_instance_uid == NULL || ts_uid == NULL)
		return err_set(e, EINVAL, "Part 10 file needs SOP class, "
		    "instance and transfer syntax");
	if (encode_meta(sop_class_uid, sop_instance_uid, ts_uid, &meta,
	    &metalen, e) == -1)
		return -1;
	if (dcm_build_encode(b, ts_uid, charset, &ds, &dslen, e) == -1) {
		free(meta);
		return -1;
	}
	n = 132 + metalen + dslen;
	if ((f = malloc(n)) == NULL) {
		free(meta);
		free(ds);
		return nomem(e);
	}
	memset(f, 0, 128);
	memcpy(f + 128, "DICM", 4);
	memcpy(f + 132, meta, metalen);
	memcpy(f + 132 + metalen, ds, dslen);
	free(meta);
	free(ds);
	*out = f;
	*outlen = n;
	return 0;
}

int
dcm_uid_new(char out[DCM_UID_MAX], struct err *e)
{
	uint8_t b[16];
	char digits[48];
	int n = 0, nonzero, i;

	if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
		return err_sys(e, "getrandom");
	b[6] = (b[6] & 0x0f) | 0x40;	/* a version 4 UUID */
	b[8] = (b[8] & 0x3f) | 0x80;
	do {		/* divide the 128-bit number by 10, digit by digit */
		unsigned rem = 0;

		nonzero = 0;
		for (size_t k = 0; k < sizeof b; k++) {
			unsigned cur = rem << 8 | b[k];

			b[k] = (uint8_t)(cur / 10);
			rem = cur % 10;
			nonzero |= b[k];
		}
		digits[n++] = (char)('0' + rem);
	} while (nonzero);
	memcpy(out, "2.25.", 5);
	for (i = 0; i < n; i++)
		out[5 + i] = digits[n - 1 - i];
	out[5 + n] = '\0';
	return 0;
}
