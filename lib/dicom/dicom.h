/*
 * dicom: DICOM data: the Part 10 reader, character sets, the dataset
 * builder and the C-FIND matching rules.
 *
 * Layer 1.  The one public header of lib/dicom/; what its modules share
 * beyond it is static in its .c files.
 * Modules, each with its contract below: dicom, match.
 */
#ifndef GW_DICOM_H
#define GW_DICOM_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/*
 * dicom: a reader for DICOM Part 10 files and bare datasets (PS3.5, PS3.10).
 *
 * Contract:
 * - Parses the 128-byte preamble and "DICM" prefix (optional), the file
 *   meta group (explicit VR LE), then the dataset in the transfer syntax the
 *   meta group names: implicit VR LE, explicit VR LE, explicit VR BE,
 *   deflated explicit VR LE (inflated with zlib), and any encapsulated
 *   syntax (JPEG, RLE, ...: the dataset itself is explicit VR LE).  A file
 *   without preamble/meta is read as a bare dataset, its syntax guessed
 *   from the first element.
 * - Sequences and items of defined and undefined length, nested (depth is
 *   bounded: DCM_MAX_DEPTH).  Encapsulated pixel data is stepped over,
 *   fragment by fragment, without reading it.  With DCM_STOP_AT_PIXELS the
 *   parse ends at (7FE0,0010) and never touches pixel bytes.
 * - Every length read from the input is checked against what remains: a
 *   malformed input ends in -1 and a message naming the tag and offset,
 *   never in a crash or an out-of-bounds read.
 * - Memory: a struct dcm owns its element table and, for deflated input,
 *   the inflated bytes.  dcm_parse() borrows the caller's buffer, which must
 *   outlive the struct dcm; dcm_open() maps the file itself and unmaps it in
 *   dcm_free().  Values returned by pointer live as long as the struct dcm.
 * - Resident memory with large files: a touched page of the mapping counts
 *   in the process's memory (and the kernel maps whole 2 MB folios), so
 *   the reader never touches pixel bytes it does not need, drops what it
 *   stepped over while walking encapsulated fragments (in dcm_open's
 *   mapping, or a caller's given with DCM_MAPPED), and dcm_release()
 *   drops all it touched.  A deflated dataset is inflated in memory: whole
 *   (at most 1 GiB), or with DCM_STOP_AT_PIXELS only up to the pixel data.
 * - Text values are returned decoded from the dataset's Specific Character
 *   Set (0008,0005) into UTF-8 with iconv, including ISO 2022 escape
 *   sequences where iconv supports them; trailing padding is removed.
 *
 * Tags are uint32_t: group << 16 | element.  The data dictionary (tag -> VR,
 * keyword) is generated at build time from dcmtk's dicom.dic.
 */

#define DCM_TAG(g, e)	((uint32_t)(((uint32_t)(g) << 16) | (uint16_t)(e)))
#define DCM_GROUP(t)	((uint16_t)((t) >> 16))
#define DCM_ELEMENT(t)	((uint16_t)((t) & 0xffff))

#define DCM_MAX_DEPTH	32

/* Flags for dcm_parse() / dcm_open(). */
#define DCM_STOP_AT_PIXELS	0x01	/* end the parse at (7FE0,0010) */
#define DCM_REQUIRE_META	0x02	/* fail unless preamble + meta group */
#define DCM_MAPPED	0x04	/* dcm_parse: buf is a private read-only
				 * mapping of a file: pages it steps over
				 * may be dropped (as dcm_open's are) */

/* Transfer syntax UIDs this reader knows by name. */
#define DCM_TS_IMPLICIT_LE	"1.2.840.10008.1.2"
#define DCM_TS_EXPLICIT_LE	"1.2.840.10008.1.2.1"
#define DCM_TS_DEFLATED_LE	"1.2.840.10008.1.2.1.99"
#define DCM_TS_EXPLICIT_BE	"1.2.840.10008.1.2.2"

/* Error codes in struct err.code from this module (errno values otherwise). */
enum {
	DCM_E_NOT_DICOM = 1000,	/* no DICM prefix and no plausible dataset */
	DCM_E_TRUNCATED,	/* a length runs past the end of the input */
	DCM_E_MALFORMED,	/* bad VR, bad item delimiter, odd structure */
	DCM_E_TOO_DEEP,		/* nesting beyond DCM_MAX_DEPTH */
	DCM_E_DEFLATE,		/* zlib could not inflate the dataset */
	DCM_E_CHARSET,		/* text could not be converted to UTF-8 */
	DCM_E_NOT_FOUND,	/* asked-for element absent */
};

struct dcm;			/* a parsed file or dataset */
struct dcm_item;		/* one item of a sequence, or the top dataset */

struct dcm_elem {
	uint32_t tag;
	char vr[3];		/* two letters and NUL ("UN" when unknown) */
	uint32_t length;	/* value length; 0xFFFFFFFF for undefined */
	const uint8_t *value;	/* NULL for SQ and encapsulated pixel data */
	size_t offset;		/* offset of the element's tag in its buffer */
	int big_endian;		/* value bytes are big endian */
};

/* One item of encapsulated pixel data: bytes inside the parsed input.
 * head: its first bytes (up to 8, zeros after a shorter one), copied by
 * dcm_pixel_fragments() so that finding where frames start touches no
 * fragment again. */
struct dcm_fragment {
	const uint8_t *data;
	uint32_t length;
	uint8_t head[8];
};

/*
 * The items of encapsulated pixel data el (value NULL, undefined length):
 * the Basic Offset Table (the first item, possibly empty) into *bot and
 * the fragments after it, in order, into *frags (malloc'd, the caller
 * frees it; NULL when there are none).  Pointers live as long as d.
 * Native pixel data needs no call: its bytes are el->value.
 */
int dcm_pixel_fragments(const struct dcm *d, const struct dcm_elem *el,
    struct dcm_fragment *bot, struct dcm_fragment **frags, size_t *nfrags,
    struct err *e);

/* Parse len bytes at buf (borrowed).  Returns 0, or -1 with e set. */
int dcm_parse(const uint8_t *buf, size_t len, unsigned flags,
    struct dcm **out, struct err *e);

/* Parse a bare dataset (no preamble or meta) in a known transfer syntax,
 * as DIMSE data sets arrive on the network. */
int dcm_parse_dataset(const uint8_t *buf, size_t len, const char *ts_uid,
    unsigned flags, struct dcm **out, struct err *e);

/* Map and parse the file at path.  Returns 0, or -1 with e set. */
int dcm_open(const char *path, unsigned flags, struct dcm **out,
    struct err *e);

void dcm_free(struct dcm *d);

/* Drop the pages of dcm_open()'s mapping from the process's resident
 * memory (they are read again from the file when next touched): between
 * the frames of a walk over a large object.  No effect on dcm_parse(). */
void dcm_release(const struct dcm *d);

/* The same for the pages of the mapping that hold [p, p + len) (a
 * partial last page kept), once a long value has been read through;
 * nothing when p is not in the mapping. */
void dcm_release_part(const struct dcm *d, const void *p, size_t len);

/* The transfer syntax UID of the dataset (from meta, or the one guessed). */
const char *dcm_transfer_syntax(const struct dcm *d);

/* 1 when the input had a preamble, DICM prefix and meta group. */
int dcm_has_meta(const struct dcm *d);

/* The top-level dataset (the meta group's elements are found in it too). */
const struct dcm_item *dcm_root(const struct dcm *d);

/* The element with this tag directly in item (NULL = root), or NULL. */
const struct dcm_elem *dcm_find(const struct dcm *d,
    const struct dcm_item *item, uint32_t tag);

/* Elements of an item, in file order: count and i-th. */
size_t dcm_elem_count(const struct dcm *d, const struct dcm_item *item);
const struct dcm_elem *dcm_elem_at(const struct dcm *d,
    const struct dcm_item *item, size_t i);

/* Items of a sequence element: count and i-th. */
size_t dcm_item_count(const struct dcm *d, const struct dcm_elem *sq);
const struct dcm_item *dcm_item_at(const struct dcm *d,
    const struct dcm_elem *sq, size_t i);

/*
 * Value i (0-based, split at backslash for string VRs) of tag in item, as
 * UTF-8 text with padding trimmed, into out (always NUL-terminated).
 * Numeric binary VRs (US, SS, UL, SL, FL, FD) are formatted as decimal.
 * Returns the length written, or -1 with e set (DCM_E_NOT_FOUND when the
 * element or value i is absent).  A present but empty value returns 0.
 * A value longer than outsz-1 bytes is cut at a UTF-8 character boundary
 * (no error: compare the result with outsz-1 to detect it).  AT values
 * read "(gggg,eeee)"; FL/FD the shortest decimal that reads back exactly.
 * An explicit UN element is read with its dictionary VR when known.
 */
int dcm_get_string(const struct dcm *d, const struct dcm_item *item,
    uint32_t tag, int i, char *out, size_t outsz, struct err *e);

/* Value i of a numeric tag (binary VRs, IS or DS) as long / double. */
int dcm_get_long(const struct dcm *d, const struct dcm_item *item,
    uint32_t tag, int i, long *out, struct err *e);
int dcm_get_double(const struct dcm *d, const struct dcm_item *item,
    uint32_t tag, int i, double *out, struct err *e);

/* The value multiplicity of an element (0 for empty). */
int dcm_vm(const struct dcm *d, const struct dcm_elem *el);

/*
 * Convert len bytes of text to UTF-8 following a Specific Character Set
 * value (charset, charsetlen bytes, the raw backslash-separated defined
 * terms of (0008,0005); NULL or empty for the default repertoire).  With
 * is_pn, '^' and '=' are delimiters that return ISO 2022 escapes to the
 * initial state.  Bytes that cannot be converted become U+FFFD.  *out is
 * malloc'd and NUL-terminated; the caller frees it.  Returns 0, or -1 with
 * e set (DCM_E_CHARSET when iconv lacks a converter).
 */
int dcm_charset_to_utf8(const char *charset, size_t charsetlen,
    const uint8_t *text, size_t len, int is_pn, char **out, size_t *outlen,
    struct err *e);

/* Data dictionary, generated from dicom.dic. */
struct dcm_dict_entry {
	uint32_t tag;
	char vr[3];
	const char *keyword;
};

/* Entry for tag (repeating groups such as (60xx,3000) resolved: the entry's
 * tag is then the first of its range), or NULL. */
const struct dcm_dict_entry *dcm_dict_lookup(uint32_t tag);

/* Entry for a keyword ("PatientName"), or NULL. */
const struct dcm_dict_entry *dcm_dict_by_keyword(const char *keyword);

/*
 * Writing datasets (lib/dicom/dicom_write.c).
 *
 * A builder collects elements (any order; encoded in tag order, nested
 * sequences included) and encodes them in implicit or explicit VR little
 * endian, as a bare dataset (DIMSE) or as a Part 10 file with preamble
 * and meta group.  Text is given in UTF-8 and converted on encoding to the
 * character set named by the charset argument ("ISO_IR 100", "ISO_IR 192",
 * NULL = ASCII): characters it cannot hold become '?'; the builder adds
 * (0008,0005) itself when charset is not NULL.  Values are padded to even
 * length as PS3.5 requires (UI with NUL, text with space, OB with NUL).
 * The builder owns copies of everything added; dcm_build_free() releases
 * it.  Adding an element whose tag is already present at the same level
 * replaces it.
 */
struct dcm_builder;

/* A new UID: "2.25." and 128 random bits as a version 4 UUID in decimal
 * (PS3.5 B.2), at most 44 characters. */
#define DCM_UID_MAX	65
int dcm_uid_new(char out[DCM_UID_MAX], struct err *e);

/* Our Implementation Class UID and Version Name (meta group, A-ASSOCIATE). */
extern const char dcm_build_implementation_uid[];
extern const char dcm_build_implementation_version[];

struct dcm_builder *dcm_build_new(void);
void dcm_build_free(struct dcm_builder *b);

/* Text (UTF-8, multi-values separated by '\\') or numbers as text for IS/DS.
 * vr NULL: the dictionary's. */
int dcm_build_string(struct dcm_builder *b, uint32_t tag, const char *vr,
    const char *utf8, struct err *e);
/* An empty (zero-length) element: "universal" return keys, unknown values. */
int dcm_build_empty(struct dcm_builder *b, uint32_t tag, const char *vr,
    struct err *e);
int dcm_build_u16(struct dcm_builder *b, uint32_t tag, uint16_t v,
    struct err *e);
int dcm_build_u32(struct dcm_builder *b, uint32_t tag, uint32_t v,
    struct err *e);
/* Raw value bytes (OB, OW, UN, AT, ...), little endian, copied. */
int dcm_build_bytes(struct dcm_builder *b, uint32_t tag, const char *vr,
    const void *value, size_t len, struct err *e);

/*
 * Encapsulated pixel data (PS3.5 A.4): one fragment per frame, each padded
 * to even length, after a Basic Offset Table that gives every frame's
 * offset.  The frames' bytes are copied.  Only an encapsulated transfer
 * syntax (JPEG family 1.2.840.10008.1.2.4.*, RLE) can encode the result;
 * such a dataset is otherwise written in explicit VR little endian.
 * -1 with EOVERFLOW when the whole would pass 4 GiB.
 */
int dcm_build_encapsulated(struct dcm_builder *b, uint32_t tag,
    const struct dcm_fragment *frames, size_t nframes, struct err *e);

/*
 * For values written in pieces after an encoded dataset (pixel data too
 * large to hold, lib/image/transcode): the header of an element, item or
 * delimiter in little endian, explicit VR or implicit (items and
 * delimiters never have a VR), length 0xFFFFFFFF for undefined, into
 * out.  Returns its size, 8 or 12; 0 when len does not fit vr's 16-bit
 * length.
 */
size_t dcm_build_header(uint8_t out[12], uint32_t tag, const char *vr,
    uint32_t len, int explicit_vr);

/* Sequences: open one, add items with elements, close it.  Nesting is
 * allowed; an empty sequence is open + close with no item. */
int dcm_build_sequence_begin(struct dcm_builder *b, uint32_t tag,
    struct err *e);
int dcm_build_item_begin(struct dcm_builder *b, struct err *e);
int dcm_build_item_end(struct dcm_builder *b, struct err *e);
int dcm_build_sequence_end(struct dcm_builder *b, struct err *e);

/* Copy an element (and, for SQ, everything inside it) from a parsed
 * dataset, converting its text to UTF-8 first. */
int dcm_build_copy(struct dcm_builder *b, const struct dcm *d,
    const struct dcm_elem *el, struct err *e);

/* Encode as a bare dataset in ts_uid (implicit or explicit VR LE, or an
 * encapsulated syntax: see dcm_build_encapsulated).
 * *out is malloc'd. */
int dcm_build_encode(struct dcm_builder *b, const char *ts_uid,
    const char *charset, uint8_t **out, size_t *outlen, struct err *e);

/* Encode as a Part 10 file: preamble, "DICM", meta group with the given
 * SOP class/instance and transfer syntax, then the dataset. */
int dcm_build_encode_file(struct dcm_builder *b, const char *sop_class_uid,
    const char *sop_instance_uid, const char *ts_uid, const char *charset,
    uint8_t **out, size_t *outlen, struct err *e);

/*
 * match: C-FIND attribute matching rules (PS3.4 C.2.2.2) on text values,
 * shared by the Modality Worklist (worklist_match.c) and Query/Retrieve
 * (qr_find.c).
 *
 * Keys and values are UTF-8 with their padding removed.  Matching is case
 * sensitive, PN included (as dcmtk's wlmscpfs and dcmqrscp do; the standard
 * leaves PN case to the SCP).  '?' matches one character, not one byte.
 * A stored value that is empty matches nothing but universal matching,
 * which the callers decide before calling here.  Nothing here allocates.
 */

enum match_vr {
	MATCH_DA,		/* YYYYMMDD (YYYY.MM.DD read too) */
	MATCH_TM,		/* HH[MM[SS[.F{1,6}]]], colons read too */
};

/* How a key's value is compared with a stored value. */
enum match_rule {
	MATCH_NONE,		/* not matched on: anything matches */
	MATCH_WILD,		/* single value, or '*' / '?' wildcards */
	MATCH_EXACT,		/* single value (UIDs, ...) */
	MATCH_DATE,		/* DA single value or range */
	MATCH_TIME,		/* TM single value or range */
	MATCH_INTEGER,		/* IS / US single value, as numbers */
	MATCH_LIST,		/* wildcard against each value of a stored
				 * multi-value joined by '\': any matches */
};

/* One key value against one stored value (an empty stored value matches
 * nothing but MATCH_NONE; universal keys never get here). */
int match_value(enum match_rule rule, const char *key, const char *value);

/* Any of n key values (NUL-terminated strings one after another, as a
 * value list or a list of UIDs) against one stored value. */
int match_any(enum match_rule rule, const char *keys, int n,
    const char *value);

/* Wildcard matching (C.2.2.2.4): '*' any run, '?' one character. */
int match_wild(const char *key, const char *value);

/* 1 when s holds '*' or '?'. */
int match_has_wildcard(const char *s);

/* 1 when s is made of '*' only (and not empty): universal matching. */
int match_all_stars(const char *s);

/* A DA value as the number YYYYMMDD, a TM value in microseconds after
 * midnight; -1 when malformed. */
long match_date(const char *s, size_t n);
long long match_time(const char *s, size_t n);

/* 1 when key is a well-formed single value or range ("A-B", "-B", "A-")
 * of vr; 0 otherwise. */
int match_range_valid(enum match_vr vr, const char *key);

/* Single value or range matching (C.2.2.2.5) of a DA or TM key. */
int match_range(enum match_vr vr, const char *key, const char *value);

/*
 * Combined date and time range matching (C.2.2.2.5.1): a date key and a
 * time key that are both ranges are one date-time range, the time bounds
 * applying to the bounding dates only.  0 also when a key is malformed.
 */
int match_datetime_range(const char *date_key, const char *time_key,
    const char *date_value, const char *time_value);

#endif
