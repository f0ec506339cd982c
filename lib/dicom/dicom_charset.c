/*
 * dicom_charset: Specific Character Set (0008,0005) text to UTF-8
 * (PS3.5 6.1, PS3.3 C.12.1.1.2).
 *
 * Two shapes of character set exist.  UTF-8 ("ISO_IR 192"), GB18030 and
 * GBK are converted as a whole with iconv.  Everything else is ISO 2022:
 * G0 (bytes < 0x80) and G1 (bytes >= 0x80) each hold a character set,
 * designated initially by the first value of (0008,0005) and switched by
 * escape sequences in the text.  We walk the text, follow the escapes, and
 * convert each run of bytes with the set in force: ASCII, Latin-1 and JIS
 * X 0201 katakana by table, the rest with iconv (JIS X 0208/0212 runs are
 * rewritten as EUC-JP, KS X 1001 runs read as EUC-KR, GB 2312 as EUC-CN).
 * The sets return to the initial state at every delimiter: control
 * characters, '\' and, in person names, '^' and '='.
 *
 * Bytes that cannot be converted become U+FFFD rather than failing the
 * whole value: an index of names is better with one odd character than
 * with none.  Unknown defined terms are read as the default repertoire,
 * with bytes above 0x7F taken as ISO 8859-1 (as pydicom does).
 */
#include "dicom/dicom.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ESC	0x1b
#define MAX_TERMS	8

enum cs_kind {
	K_NONE,		/* no G1 set designated */
	K_ASCII,	/* G0: copy */
	K_LATIN1,	/* G1: by table */
	K_KATAKANA,	/* G1: JIS X 0201 katakana, by table */
	K_ICONV96,	/* G1: a 96-character set through iconv */
	K_JIS0208,	/* G0: two bytes, as EUC-JP */
	K_JIS0212,	/* G0: two bytes, as EUC-JP with SS3 */
	K_ICONV94x94,	/* G1: two high bytes through iconv */
};

struct cs_set {
	const char *term;	/* defined term without "ISO_IR "/"ISO 2022 " */
	const char *esc;	/* escape sequence after ESC */
	int g;			/* 0 or 1: the register the set goes in */
	enum cs_kind kind;
	const char *iconv_name;
};

/* Index 0 is ASCII: the default G0. */
static const struct cs_set cs_sets[] = {
	{ "IR 6", "(B", 0, K_ASCII, NULL },
	{ "IR 14", "(J", 0, K_ASCII, NULL },	/* JIS X 0201 Romaji */
	{ "IR 100", "-A", 1, K_LATIN1, NULL },
	{ "IR 101", "-B", 1, K_ICONV96, "ISO-8859-2" },
	{ "IR 109", "-C", 1, K_ICONV96, "ISO-8859-3" },
	{ "IR 110", "-D", 1, K_ICONV96, "ISO-8859-4" },
	{ "IR 144", "-L", 1, K_ICONV96, "ISO-8859-5" },
	{ "IR 127", "-G", 1, K_ICONV96, "ISO-8859-6" },
	{ "IR 126", "-F", 1, K_ICONV96, "ISO-8859-7" },
	{ "IR 138", "-H", 1, K_ICONV96, "ISO-8859-8" },
	{ "IR 148", "-M", 1, K_ICONV96, "ISO-8859-9" },
	{ "IR 203", "-b", 1, K_ICONV96, "ISO-8859-15" },
	{ "IR 166", "-T", 1, K_ICONV96, "TIS-620" },
	{ "IR 13", ")I", 1, K_KATAKANA, NULL },
	{ "IR 87", "$B", 0, K_JIS0208, "EUC-JP" },
	{ "IR 159", "$(D", 0, K_JIS0212, "EUC-JP" },
	{ "IR 149", "$)C", 1, K_ICONV94x94, "EUC-KR" },
	{ "IR 58", "$)A", 1, K_ICONV94x94, "GB2312" },
};
#define NSETS	(sizeof cs_sets / sizeof cs_sets[0])
#define SET_ASCII	0
#define SET_ROMAJI	1
#define SET_NONE	(-1)

/* iconv handles opened for one conversion, by name. */
struct cs_cache {
	const char *name[4];
	iconv_t cd[4];
	int n;
};

struct out {
	char *p;
	size_t len, cap;
};

struct state {
	int init_g0, init_g1;
	int g0, g1;
};

static void
cache_close(struct cs_cache *c)
{
	int i;

	for (i = 0; i < c->n; i++)
		iconv_close(c->cd[i]);
	c->n = 0;
}

static iconv_t
cache_get(struct cs_cache *c, const char *name, struct err *e)
{
	iconv_t cd;
	int i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->name[i], name) == 0)
			return c->cd[i];
	cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1) {
		err_sys(e, "iconv cannot convert from %s", name);
		if (e != NULL)
			e->code = DCM_E_CHARSET;
		return cd;
	}
	if (c->n == 4) {
		iconv_close(c->cd[0]);
		memmove(&c->cd[0], &c->cd[1], 3 * sizeof c->cd[0]);
		memmove(&c->name[0], &c->name[1], 3 * sizeof c->name[0]);
		c->n = 3;
	}
	c->name[c->n] = name;
	c->cd[c->n++] = cd;
	return cd;
}

/* The output never grows: its capacity is 4 bytes per input byte. */
static void
put(struct out *o, const void *p, size_t n)
{
	if (n > o->cap - o->len)
		n = o->cap - o->len;
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static void
put_cp(struct out *o, uint32_t cp)
{
	uint8_t b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = 0xc0 | cp >> 6;
		b[1] = 0x80 | (cp & 0x3f);
		n = 2;
	} else {
		b[0] = 0xe0 | cp >> 12;
		b[1] = 0x80 | (cp >> 6 & 0x3f);
		b[2] = 0x80 | (cp & 0x3f);
		n = 3;
	}
	put(o, b, n);
}

#define REPLACEMENT	0xfffd

/*
 * Converts n bytes with iconv; a byte iconv rejects becomes U+FFFD (for
 * two-byte sets, step counts the bytes a bad character takes).
 */
static int
put_iconv(struct out *o, struct cs_cache *c, const char *name,
    const uint8_t *p, size_t n, size_t step, struct err *e)
{
	iconv_t cd;
	char *in = (char *)p, *outp;
	size_t inleft = n, outleft;

	if ((cd = cache_get(c, name, e)) == (iconv_t)-1)
		return -1;
	iconv(cd, NULL, NULL, NULL, NULL);
	while (inleft > 0) {
		outp = o->p + o->len;
		outleft = o->cap - o->len;
		if (iconv(cd, &in, &inleft, &outp, &outleft) != (size_t)-1) {
			o->len = o->cap - outleft;
			break;
		}
		o->len = o->cap - outleft;
		if (errno == E2BIG)
			return err_set(e, DCM_E_CHARSET,
			    "text from %s grows beyond 4 bytes per byte", name);
		put_cp(o, REPLACEMENT);
		if (step > inleft)
			step = inleft;
		in += step;
		inleft -= step;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	return 0;
}

static int
is_delimiter(uint8_t b, int is_pn)
{
	return b < 0x20 || b == '\\' || (is_pn && (b == '^' || b == '='));
}

/* Matches an escape sequence at p (after ESC); returns its set or -1. */
static int
match_escape(const uint8_t *p, size_t n, size_t *used)
{
	size_t i, k;

	for (i = 0; i < NSETS; i++) {
		k = strlen(cs_sets[i].esc);
		if (k <= n && memcmp(p, cs_sets[i].esc, k) == 0) {
			*used = k;
			return (int)i;
		}
	}
	return -1;
}

/* A run of two-byte G0 characters (JIS X 0208/0212), as EUC-JP. */
static int
put_jis(struct out *o, struct cs_cache *c, const struct cs_set *s,
    const uint8_t *p, size_t n, uint8_t *tmp, struct err *e)
{
	size_t i, k = 0;

	for (i = 0; i + 1 < n; i += 2) {
		if (s->kind == K_JIS0212)
			tmp[k++] = 0x8f;
		tmp[k++] = p[i] | 0x80;
		tmp[k++] = p[i + 1] | 0x80;
	}
	if (put_iconv(o, c, s->iconv_name, tmp, k,
	    s->kind == K_JIS0212 ? 3 : 2, e) == -1)
		return -1;
	if (n & 1)
		put_cp(o, REPLACEMENT);
	return 0;
}

/* A run of G1 bytes (>= 0x80) in set g1. */
static int
put_g1(struct out *o, struct cs_cache *c, int g1, const uint8_t *p,
    size_t n, struct err *e)
{
	const struct cs_set *s;
	size_t i;

	if (g1 == SET_NONE || cs_sets[g1].kind == K_LATIN1) {
		for (i = 0; i < n; i++)
			put_cp(o, p[i]);
		return 0;
	}
	s = &cs_sets[g1];
	if (s->kind == K_KATAKANA) {
		for (i = 0; i < n; i++)
			put_cp(o, p[i] >= 0xa1 && p[i] <= 0xdf ?
			    0xff61 + (p[i] - 0xa1) : REPLACEMENT);
		return 0;
	}
	return put_iconv(o, c, s->iconv_name, p, n,
	    s->kind == K_ICONV94x94 ? 2 : 1, e);
}

static int
decode_2022(struct out *o, struct state *st, const uint8_t *p, size_t n,
    int is_pn, uint8_t *tmp, struct err *e)
{
	struct cs_cache c = { .n = 0 };
	size_t i = 0, j, used;
	int set;

	while (i < n) {
		if (p[i] == ESC) {
			set = match_escape(p + i + 1, n - i - 1, &used);
			if (set < 0) {
				put_cp(o, REPLACEMENT);
				i++;
				continue;
			}
			if (cs_sets[set].g == 0)
				st->g0 = set;
			else
				st->g1 = set;
			i += 1 + used;
			continue;
		}
		if (p[i] >= 0x80) {
			for (j = i; j < n && p[j] >= 0x80; j++)
				;
			if (put_g1(o, &c, st->g1, p + i, j - i, e) == -1)
				goto fail;
			i = j;
			continue;
		}
		if (cs_sets[st->g0].kind == K_JIS0208 ||
		    cs_sets[st->g0].kind == K_JIS0212) {
			for (j = i; j < n && p[j] > 0x20 && p[j] < 0x7f; j++)
				;
			if (j > i) {
				if (put_jis(o, &c, &cs_sets[st->g0], p + i,
				    j - i, tmp, e) == -1)
					goto fail;
				i = j;
				continue;
			}
		}
		put(o, &p[i], 1);
		if (is_delimiter(p[i], is_pn)) {
			st->g0 = st->init_g0;
			st->g1 = st->init_g1;
		}
		i++;
	}
	cache_close(&c);
	return 0;
fail:
	cache_close(&c);
	return -1;
}

/* Copies UTF-8, replacing each invalid sequence by U+FFFD. */
static void
decode_utf8(struct out *o, const uint8_t *p, size_t n)
{
	size_t i = 0, k, len;
	uint32_t cp, min;

	while (i < n) {
		if (p[i] < 0x80) {
			put(o, &p[i++], 1);
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			len = 2; cp = p[i] & 0x1f; min = 0x80;
		} else if ((p[i] & 0xf0) == 0xe0) {
			len = 3; cp = p[i] & 0x0f; min = 0x800;
		} else if ((p[i] & 0xf8) == 0xf0) {
			len = 4; cp = p[i] & 0x07; min = 0x10000;
		} else {
			len = 0; cp = 0; min = 1;
		}
		for (k = 1; len > 0 && k < len; k++) {
			if (i + k >= n || (p[i + k] & 0xc0) != 0x80)
				break;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (len == 0 || k < len || cp < min || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff)) {
			put_cp(o, REPLACEMENT);
			i++;
			continue;
		}
		put(o, p + i, len);
		i += len;
	}
}

/* Splits the (0008,0005) value into trimmed terms; returns their count. */
static int
split_terms(const char *cs, size_t cslen, char terms[][24])
{
	size_t i = 0, j, k;
	int n = 0;

	while (i <= cslen && n < MAX_TERMS) {
		for (j = i; j < cslen && cs[j] != '\\'; j++)
			;
		k = 0;
		for (size_t x = i; x < j; x++)
			if (cs[x] != ' ' && cs[x] != '\0' && k < 23)
				terms[n][k++] = cs[x];
			else if (cs[x] == ' ' && k > 0 && k < 23)
				terms[n][k++] = ' ';
		while (k > 0 && terms[n][k - 1] == ' ')
			k--;
		terms[n++][k] = '\0';
		i = j + 1;
	}
	return n;
}

/* The set a defined term designates, or -1 ("ISO_IR 100", "ISO 2022 IR 87"). */
static int
term_set(const char *term)
{
	const char *ir;
	size_t i;

	if (strncmp(term, "ISO_IR ", 7) == 0)
		ir = term + 4;
	else if (strncmp(term, "ISO 2022 IR ", 12) == 0)
		ir = term + 9;
	else
		return -1;
	for (i = 0; i < NSETS; i++)
		if (strcmp(ir, cs_sets[i].term) == 0)
			return (int)i;
	return -1;
}

static void
initial_state(const char *first, struct state *st)
{
	int set = first[0] == '\0' ? -1 : term_set(first);

	st->init_g0 = SET_ASCII;
	st->init_g1 = SET_NONE;
	if (set >= 0 && cs_sets[set].g == 1)
		st->init_g1 = set;
	if (set >= 0 && cs_sets[set].kind == K_KATAKANA)
		st->init_g0 = SET_ROMAJI;
	st->g0 = st->init_g0;
	st->g1 = st->init_g1;
}

/*
 * Text declared "ISO_IR 13" (JIS X 0201) that holds Shift_JIS double-byte
 * characters: lead bytes 0x81-0x9F and 0xE0-0xFC cannot occur in JIS X
 * 0201.  Japanese systems write such files; dcmtk reads them as Shift_JIS,
 * and so do we (CP932 keeps 0x5C as '\' where SHIFT_JIS makes it a yen).
 */
static int
shift_jis_text(const char terms[][24], int nterms, const uint8_t *p,
    size_t n)
{
	size_t i;

	if (nterms != 1 || strcmp(terms[0], "ISO_IR 13") != 0)
		return 0;
	for (i = 0; i < n; i++)
		if (p[i] == ESC)
			return 0;
	for (i = 0; i < n; i++)
		if ((p[i] >= 0x81 && p[i] <= 0x9f) || (p[i] >= 0xe0 && p[i] <= 0xfc))
			return 1;
	return 0;
}

static int
plain_ascii(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] >= 0x80 || p[i] == ESC)
			return 0;
	return 1;
}

int
dcm_charset_to_utf8(const char *charset, size_t charsetlen,
    const uint8_t *text, size_t len, int is_pn, char **out, size_t *outlen,
    struct err *e)
{
	char terms[MAX_TERMS][24];
	struct out o;
	struct state st;
	uint8_t *tmp = NULL;
	int rc = 0, nterms;

	*out = NULL;
	*outlen = 0;
	if (len > (SIZE_MAX - 1) / 4)
		return err_set(e, DCM_E_CHARSET, "text too long to convert");
	o.cap = plain_ascii(text, len) ? len : 4 * len;
	o.len = 0;
	if ((o.p = malloc(o.cap + 1)) == NULL)
		return err_sys(e, "malloc");
	if (o.cap == len) {
		put(&o, text, len);
		goto done;
	}
	if (charset == NULL)
		charsetlen = 0;
	nterms = split_terms(charset != NULL ? charset : "", charsetlen, terms);
	if (strcmp(terms[0], "ISO_IR 192") == 0) {
		decode_utf8(&o, text, len);
		goto done;
	}
	if (strcmp(terms[0], "GB18030") == 0 || strcmp(terms[0], "GBK") == 0 ||
	    shift_jis_text(terms, nterms, text, len)) {
		struct cs_cache c = { .n = 0 };

		rc = put_iconv(&o, &c, terms[0][0] == 'G' ? terms[0] : "CP932",
		    text, len, 1, e);
		cache_close(&c);
		goto done;
	}
	if ((tmp = malloc(len / 2 * 3 + 3)) == NULL) {
		free(o.p);
		return err_sys(e, "malloc");
	}
	initial_state(terms[0], &st);
	rc = decode_2022(&o, &st, text, len, is_pn, tmp, e);
done:
	free(tmp);
	if (rc == -1) {
		free(o.p);
		return -1;
	}
	o.p[o.len] = '\0';
	*out = o.p;
	*outlen = o.len;
	return 0;
}
