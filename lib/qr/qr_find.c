/*
 * qr_find: C-FIND (PS3.4 C.4.1) and the instances of a C-MOVE / C-GET
 * identifier (C.4.2.2.1), over pacs.db, for the Patient Root and Study
 * Root information models.
 *
 * A query is SQL that narrows and C that decides: every key that an index
 * or a plain comparison can serve (single values, UID lists, wildcards as
 * GLOB, date ranges) becomes a WHERE clause, and every row SQLite returns
 * is then matched against all keys by lib/dicom/match, the rules the worklist
 * uses too.  Rows are streamed to the caller one at a time; nothing is
 * collected.  The matching choices are documented in qr.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "dicom/dicom.h"
#include "qr/qr.h"

#define TAG_CHARSET	DCM_TAG(0x0008, 0x0005)
#define TAG_LEVEL	DCM_TAG(0x0008, 0x0052)
#define TAG_RETRIEVE_AET DCM_TAG(0x0008, 0x0054)
#define TAG_STUDY_DATE	DCM_TAG(0x0008, 0x0020)
#define TAG_STUDY_TIME	DCM_TAG(0x0008, 0x0030)

#define MAX_KEYS	128
#define MAX_VALUES	4096	/* a UID list of a C-MOVE may be long */
#define VALUE_MAX	1024

enum level { L_PATIENT, L_STUDY, L_SERIES, L_IMAGE, L_COUNT };

static const char *const level_names[L_COUNT] = {
	"PATIENT", "STUDY", "SERIES", "IMAGE",
};

/* The unique key of each level (PS3.4 C.3). */
static const uint32_t unique_tags[L_COUNT] = {
	DCM_TAG(0x0010, 0x0020),	/* PatientID */
	DCM_TAG(0x0020, 0x000d),	/* StudyInstanceUID */
	DCM_TAG(0x0020, 0x000e),	/* SeriesInstanceUID */
	DCM_TAG(0x0008, 0x0018),	/* SOPInstanceUID */
};

/* The tables a query at each level reads (the instances' objects too,
 * for a retrieval). */
static const char *const level_from[L_COUNT] = {
	"patients p",
	"studies st JOIN patients p ON p.id = st.patient_ref",
	"series se JOIN studies st ON st.id = se.study_ref "
	    "JOIN patients p ON p.id = st.patient_ref",
	"instances i JOIN series se ON se.id = i.series_ref "
	    "JOIN studies st ON st.id = se.study_ref "
	    "JOIN patients p ON p.id = st.patient_ref",
};

enum kind {
	K_TEXT,		/* single value or wildcard */
	K_UID,		/* single value or list of UIDs */
	K_DATE,		/* single value or range */
	K_TIME,		/* single value or range */
	K_NUMBER,	/* IS / US: single value, compared as integers */
	K_LIST,		/* a multi-valued store: any value matches */
	K_COUNT,	/* return key only, computed */
};

struct attr {
	uint32_t tag;
	enum level level;
	enum kind kind;
	const char *column;	/* SQL for the value */
	const char *where;	/* what a condition tests, NULL: column */
	const char *open, *close; /* around the condition (a subquery) */
};

/*
 * Counts and subqueries (open set) are computed only when asked for.
 * Times, and lists stored joined by '\', are matched in C alone.
 */

#define COUNT_STUDIES "(SELECT count(*) FROM studies s2 WHERE s2.patient_ref = p.id)"
#define COUNT_PSERIES "(SELECT count(*) FROM studies s2 JOIN series e2 " \
	"ON e2.study_ref = s2.id WHERE s2.patient_ref = p.id)"
#define COUNT_PINST "(SELECT count(*) FROM studies s2 JOIN series e2 " \
	"ON e2.study_ref = s2.id JOIN instances i2 ON i2.series_ref = e2.id " \
	"WHERE s2.patient_ref = p.id)"
#define COUNT_SSERIES "(SELECT count(*) FROM series e2 WHERE e2.study_ref = st.id)"
#define COUNT_SINST "(SELECT count(*) FROM series e2 JOIN instances i2 " \
	"ON i2.series_ref = e2.id WHERE e2.study_ref = st.id)"
#define COUNT_EINST "(SELECT count(*) FROM instances i2 WHERE i2.series_ref = se.id)"
#define MODALITIES "(SELECT group_concat(m, '\\') FROM (SELECT DISTINCT " \
	"e2.modality AS m FROM series e2 WHERE e2.study_ref = st.id AND " \
	"e2.modality <> '' ORDER BY 1))"

/* What the index holds; any other key is answered empty. */
static const struct attr attrs[] = {
	{ DCM_TAG(0x0010, 0x0010), L_PATIENT, K_TEXT, "p.patient_name", NULL, NULL, NULL },
	{ DCM_TAG(0x0010, 0x0020), L_PATIENT, K_TEXT, "p.patient_id", NULL, NULL, NULL },
	{ DCM_TAG(0x0010, 0x0030), L_PATIENT, K_DATE, "p.birth_date", NULL, NULL, NULL },
	{ DCM_TAG(0x0010, 0x0040), L_PATIENT, K_TEXT, "p.sex", NULL, NULL, NULL },
	{ DCM_TAG(0x0020, 0x1200), L_PATIENT, K_COUNT, COUNT_STUDIES, NULL, NULL, NULL },
	{ DCM_TAG(0x0020, 0x1202), L_PATIENT, K_COUNT, COUNT_PSERIES, NULL, NULL, NULL },
	{ DCM_TAG(0x0020, 0x1204), L_PATIENT, K_COUNT, COUNT_PINST, NULL, NULL, NULL },
	{ DCM_TAG(0x0020, 0x000d), L_STUDY, K_UID, "st.study_instance_uid", NULL, NULL, NULL },
	{ TAG_STUDY_DATE, L_STUDY, K_DATE, "st.study_date", NULL, NULL, NULL },
	{ TAG_STUDY_TIME, L_STUDY, K_TIME, "st.study_time", NULL, NULL, NULL },
	{ DCM_TAG(0x0008, 0x0050), L_STUDY, K_TEXT, "st.accession_number", NULL, NULL, NULL },
	{ DCM_TAG(0x0020, 0x0010), L_STUDY, K_TEXT, "st.study_id", NULL, NULL, NULL },
	{ DCM_TAG(0x0008, 0x1030), L_STUDY, K_TEXT, "st.study_description", NULL, NULL, NULL },
	{ DCM_TAG(0x0008, 0x0061), L_STUDY, K_LIST, MODALITIES, "e2.modality",
	    "EXISTS (SELECT 1 FROM series e2 WHERE e2.study_ref = st.id AND ", ")" },
	{ DCM_TAG(0x0020, 0x1206), L_STUDY, K_COUNT, COUNT_SSERIES, NULL, NULL, NULL },
	{ DCM_TAG(0x0020, 0x1208), L_STUDY, K_COUNT, COUNT_SINST, NULL, NULL, NULL },
	{ DCM_TAG(0x0020, 0x000e), L_SERIES, K_UID, "se.series_instance_uid", NULL, NULL, NULL },
	{ DCM_TAG(0x0008, 0x0060), L_SERIES, K_TEXT, "se.modality", NULL, NULL, NULL },
	{ DCM_TAG(0x0020, 0x0011), L_SERIES, K_NUMBER, "se.series_number", NULL, NULL, NULL },
	{ DCM_TAG(0x0008, 0x103e), L_SERIES, K_TEXT, "se.series_description", NULL, NULL, NULL },
	{ DCM_TAG(0x0018, 0x0015), L_SERIES, K_TEXT, "se.body_part_examined", NULL, NULL, NULL },
	{ DCM_TAG(0x0020, 0x1209), L_SERIES, K_COUNT, COUNT_EINST, NULL, NULL, NULL },
	{ DCM_TAG(0x0008, 0x0018), L_IMAGE, K_UID, "i.sop_instance_uid", NULL, NULL, NULL },
	{ DCM_TAG(0x0008, 0x0016), L_IMAGE, K_UID, "i.sop_class_uid", NULL, NULL, NULL },
	{ DCM_TAG(0x0020, 0x0013), L_IMAGE, K_NUMBER, "i.instance_number", NULL, NULL, NULL },
	{ DCM_TAG(0x0008, 0x0008), L_IMAGE, K_LIST, "i.image_type", NULL, NULL, NULL },
	{ DCM_TAG(0x0008, 0x0068), L_IMAGE, K_TEXT, "i.presentation_intent", NULL, NULL, NULL },
	{ DCM_TAG(0x0008, 0x0070), L_IMAGE, K_TEXT, "i.manufacturer", NULL, NULL, NULL },
	{ DCM_TAG(0x0018, 0x5101), L_IMAGE, K_TEXT, "i.view_position", NULL, NULL, NULL },
	{ DCM_TAG(0x0020, 0x0062), L_IMAGE, K_TEXT, "i.laterality", NULL, NULL, NULL },
	{ DCM_TAG(0x0028, 0x0004), L_IMAGE, K_TEXT, "i.photometric_interpretation", NULL, NULL, NULL },
	{ DCM_TAG(0x0028, 0x0008), L_IMAGE, K_NUMBER, "i.number_of_frames", NULL, NULL, NULL },
	{ DCM_TAG(0x0028, 0x0010), L_IMAGE, K_NUMBER, "i.rows", NULL, NULL, NULL },
	{ DCM_TAG(0x0028, 0x0011), L_IMAGE, K_NUMBER, "i.columns", NULL, NULL, NULL },
	{ DCM_TAG(0x0028, 0x0100), L_IMAGE, K_NUMBER, "i.bits_allocated", NULL, NULL, NULL },
};
#define NATTRS	(sizeof attrs / sizeof attrs[0])

static const struct attr *
find_attr(uint32_t tag)
{
	for (size_t i = 0; i < NATTRS; i++)
		if (attrs[i].tag == tag)
			return &attrs[i];
	return NULL;
}

struct key {
	const struct attr *attr;
	char *values;		/* nvalues NUL-terminated strings */
	int nvalues;		/* 0: universal matching */
};

/* A SQL parameter: text or an integer. */
struct bind {
	char *text;		/* owned; NULL for an integer */
	long long num;
};

struct query {
	enum qr_root root;
	enum level level;
	const struct dcm *identifier;
	const struct qr_find_options *opt;
	struct key keys[MAX_KEYS];
	int nkeys;
	const struct key *date, *time;	/* StudyDate and StudyTime keys */
	int combined;			/* ... matched as one date-time range
					 * (negotiated, both ranges) */
	int latin1;			/* the request came in ISO_IR 100 */
	struct bind *binds;
	int nbinds, maxbinds;
};

static void
query_free(struct query *q)
{
	for (int i = 0; i < q->nkeys; i++)
		free(q->keys[i].values);
	for (int i = 0; i < q->nbinds; i++)
		free(q->binds[i].text);
	free(q->binds);
}

static int
bad_key(struct err *e, uint32_t tag, const char *why)
{
	/* Never the value: it may be a name or a birth date. */
	return err_set(e, QR_E_IDENTIFIER, "key (%04X,%04X): %s",
	    DCM_GROUP(tag), DCM_ELEMENT(tag), why);
}

static int
parse_level(const struct dcm *d, enum qr_root root, enum level *out,
    struct err *e)
{
	const struct dcm_elem *el = dcm_find(d, NULL, TAG_LEVEL);
	char v[32];

	if (el == NULL)
		return err_set(e, QR_E_LEVEL,
		    "no Query/Retrieve Level (0008,0052)");
	if (dcm_vm(d, el) != 1 || dcm_get_string(d, NULL, TAG_LEVEL, 0, v,
	    sizeof v, NULL) < 0)
		return err_set(e, QR_E_LEVEL, "Query/Retrieve Level "
		    "(0008,0052) is not one value");
	for (int i = 0; i < L_COUNT; i++) {
		if (strcmp(v, level_names[i]) != 0)
			continue;
		if (root == QR_ROOT_STUDY && i == L_PATIENT)
			return err_set(e, QR_E_LEVEL, "Query/Retrieve Level "
			    "PATIENT is not in the Study Root model");
		*out = (enum level)i;
		return 0;
	}
	return err_set(e, QR_E_LEVEL, "unknown Query/Retrieve Level "
	    "(0008,0052) \"%.16s\"", v);
}

/* The topmost level of the model. */
static enum level
top_level(enum qr_root root)
{
	return root == QR_ROOT_STUDY ? L_STUDY : L_PATIENT;
}

static int
is_unique(const struct query *q, const struct attr *a)
{
	return a->tag == unique_tags[a->level] && a->level >= top_level(q->root);
}

/*
 * Hierarchical search (C.4.1.3.1): every key at the query's level, the
 * patient keys at STUDY in the Study Root model, and the unique keys of
 * the levels above.  Other keys above are returned, not matched.
 */
static int
is_matching(const struct query *q, const struct attr *a)
{
	if (a->kind == K_COUNT)
		return 0;
	if (a->level == q->level)
		return 1;
	if (q->root == QR_ROOT_STUDY && q->level == L_STUDY &&
	    a->level == L_PATIENT)
		return 1;
	return a->level < q->level && is_unique(q, a);
}

static int
is_uid(const char *s)
{
	if (*s == '\0' || strlen(s) > 64)
		return 0;
	return strspn(s, "0123456789.") == strlen(s);
}

static int
is_integer(const char *s)
{
	if (*s == '+' || *s == '-')
		s++;
	return *s != '\0' && strspn(s, "0123456789") == strlen(s) &&
	    strlen(s) < 19;
}

/* Check a key's values against its kind; 1 universal, 0, -1 bad. */
static int
check_values(const struct key *k, struct err *e)
{
	const struct attr *a = k->attr;
	const char *p = k->values;

	if (k->nvalues == 0 || (k->nvalues == 1 && p[0] == '\0'))
		return 1;
	if (k->nvalues == 1 && match_all_stars(p))
		return 1;	/* "*" for a UID too: lenient */
	if ((a->kind == K_DATE || a->kind == K_TIME) && k->nvalues != 1)
		return bad_key(e, a->tag, "a date or time key takes one "
		    "value or range");
	for (int i = 0; i < k->nvalues; i++, p += strlen(p) + 1) {
		switch (a->kind) {
		case K_UID:
			if (!is_uid(p))
				return bad_key(e, a->tag, "not a UID or list "
				    "of UIDs (no wildcards)");
			break;
		case K_DATE:
		case K_TIME:
			if (!match_range_valid(a->kind == K_DATE ? MATCH_DA :
			    MATCH_TM, p))
				return bad_key(e, a->tag, a->kind == K_DATE ?
				    "not a date or date range" :
				    "not a time or time range");
			break;
		case K_NUMBER:
			if (!is_integer(p))
				return bad_key(e, a->tag, "not an integer");
			break;
		default:
			break;
		}
	}
	return 0;
}

static int
append_value(struct key *k, size_t *used, const char *v, size_t n,
    struct err *e)
{
	char *p;

	if ((p = realloc(k->values, *used + n + 1)) == NULL)
		return err_sys(e, "realloc");
	k->values = p;
	memcpy(p + *used, v, n + 1);
	*used += n + 1;
	k->nvalues++;
	return 0;
}

/* The values of one key, checked; a universal key adds nothing. */
static int
add_key(struct query *q, const struct dcm_elem *el, const struct attr *a,
    struct err *e)
{
	const struct dcm *d = q->identifier;
	struct key *k;
	char buf[VALUE_MAX];
	size_t used = 0;
	int vm = dcm_vm(d, el), n, rc;

	if (q->nkeys == MAX_KEYS)
		return err_set(e, QR_E_IDENTIFIER, "more than %d keys",
		    MAX_KEYS);
	if (vm > MAX_VALUES)
		return bad_key(e, el->tag, "too many values");
	k = &q->keys[q->nkeys++];
	k->attr = a;
	k->values = NULL;
	k->nvalues = 0;
	for (int i = 0; i < vm; i++) {
		if ((n = dcm_get_string(d, NULL, el->tag, i, buf, sizeof buf,
		    e)) == -1) {
			snprintf(buf, sizeof buf, "%s", e->msg);
			return bad_key(e, el->tag, buf);
		}
		if ((size_t)n == sizeof buf - 1)
			return bad_key(e, el->tag, "value too long");
		if (append_value(k, &used, buf, (size_t)n, e) == -1)
			return -1;
	}
	if ((rc = check_values(k, e)) == -1)
		return -1;
	if (rc == 1) {
		free(k->values);
		q->nkeys--;
		return 0;
	}
	if (a->tag == TAG_STUDY_DATE)
		q->date = k;
	if (a->tag == TAG_STUDY_TIME)
		q->time = k;
	return 0;
}

static int
skip_tag(uint32_t tag)
{
	return DCM_GROUP(tag) <= 0x0002 || DCM_ELEMENT(tag) == 0 ||
	    tag == TAG_CHARSET || tag == TAG_LEVEL;
}

static int
is_latin1_request(const struct dcm *d)
{
	char v[32];

	return dcm_vm(d, dcm_find(d, NULL, TAG_CHARSET)) == 1 &&
	    dcm_get_string(d, NULL, TAG_CHARSET, 0, v, sizeof v, NULL) >= 0 &&
	    strcmp(v, "ISO_IR 100") == 0;
}

/* The matching keys of an identifier (only_unique: a retrieval's). */
static int
parse_query(struct query *q, enum qr_root root, const struct dcm *d,
    int only_unique, int combined, struct err *e)
{
	size_t n = dcm_elem_count(d, NULL);

	memset(q, 0, sizeof *q);
	q->root = root;
	q->identifier = d;
	if (parse_level(d, root, &q->level, e) == -1)
		return -1;
	q->latin1 = is_latin1_request(d);
	for (size_t i = 0; i < n; i++) {
		const struct dcm_elem *el = dcm_elem_at(d, NULL, i);
		const struct attr *a;

		if (skip_tag(el->tag) || strcmp(el->vr, "SQ") == 0 ||
		    (a = find_attr(el->tag)) == NULL)
			continue;
		if (only_unique ? !is_unique(q, a) || a->level > q->level :
		    !is_matching(q, a))
			continue;
		if (add_key(q, el, a, e) == -1)
			return -1;
	}
	q->combined = combined && q->date != NULL && q->time != NULL &&
	    strchr(q->date->values, '-') != NULL &&
	    strchr(q->time->values, '-') != NULL;
	return 0;
}

/* --- SQL that narrows --- */

static int
add_bind(struct query *q, const char *text, long long num, struct err *e)
{
	struct bind *b;

	if (q->nbinds == q->maxbinds) {
		int n = q->maxbinds ? q->maxbinds * 2 : 16;

		if ((b = realloc(q->binds, (size_t)n * sizeof *b)) == NULL)
			return err_sys(e, "realloc");
		q->binds = b;
		q->maxbinds = n;
	}
	b = &q->binds[q->nbinds];
	b->num = num;
	b->text = NULL;
	if (text != NULL && (b->text = strdup(text)) == NULL)
		return err_sys(e, "strdup");
	q->nbinds++;
	return 0;
}

/* A wildcard key as a GLOB pattern: '*' and '?' as they are, '[' quoted. */
static int
add_glob(struct query *q, const char *k, struct err *e)
{
	char *g, *o;
	int rc;

	if ((g = malloc(strlen(k) * 3 + 1)) == NULL)
		return err_sys(e, "malloc");
	for (o = g; *k != '\0'; k++)
		if (*k == '[') {
			memcpy(o, "[[]", 3);
			o += 3;
		} else
			*o++ = *k;
	*o = '\0';
	rc = add_bind(q, g, 0, e);
	free(g);
	return rc;
}

/* YYYYMMDD of a valid date point; the bound of an open end otherwise. */
static int
add_date(struct query *q, const char *s, size_t n, struct err *e)
{
	char d[16];

	snprintf(d, sizeof d, "%08ld", match_date(s, n));
	return add_bind(q, d, 0, e);
}

static int
where_date(struct query *q, FILE *f, const char *col, const char *k,
    struct err *e)
{
	const char *dash = strchr(k, '-');

	if (dash == NULL) {
		fprintf(f, "%s = ?", col);
		return add_date(q, k, strlen(k), e);
	}
	fprintf(f, "%s IS NOT NULL", col);
	if (dash != k) {
		fprintf(f, " AND %s >= ?", col);
		if (add_date(q, k, (size_t)(dash - k), e) == -1)
			return -1;
	}
	if (dash[1] != '\0') {
		fprintf(f, " AND %s <= ?", col);
		if (add_date(q, dash + 1, strlen(dash + 1), e) == -1)
			return -1;
	}
	return 0;
}

/* One value of a text, UID or number key. */
static int
where_value(struct query *q, FILE *f, enum kind kind, const char *col,
    const char *v, struct err *e)
{
	if (kind == K_NUMBER) {
		fprintf(f, "%s = ?", col);
		return add_bind(q, NULL, strtoll(v, NULL, 10), e);
	}
	if (kind != K_UID && match_has_wildcard(v)) {
		fprintf(f, "%s GLOB ?", col);
		return add_glob(q, v, e);
	}
	fprintf(f, "%s = ?", col);
	return add_bind(q, v, 0, e);
}

static int
where_key(struct query *q, FILE *f, const struct key *k, struct err *e)
{
	const struct attr *a = k->attr;
	const char *col = a->where != NULL ? a->where : a->column;
	const char *p = k->values;

	if (a->kind == K_TIME || a->kind == K_COUNT ||
	    (a->kind == K_LIST && a->open == NULL))
		return 0;	/* C decides alone */
	fprintf(f, " AND %s(", a->open ? a->open : "");
	if (a->kind == K_DATE) {
		if (where_date(q, f, col, p, e) == -1)
			return -1;
	} else
		for (int i = 0; i < k->nvalues; i++, p += strlen(p) + 1) {
			if (i > 0)
				fputs(" OR ", f);
			if (where_value(q, f, a->kind == K_LIST ? K_TEXT :
			    a->kind, col, p, e) == -1)
				return -1;
		}
	fprintf(f, ")%s", a->close ? a->close : "");
	return 0;
}

/* A column for every attribute (NULL when not wanted), FROM, WHERE. */
static int
write_sql(struct query *q, FILE *f, const char *extra_columns,
    const char *extra_from, const char *order, struct err *e)
{
	fputs("SELECT ", f);
	for (size_t i = 0; i < NATTRS; i++) {
		const struct attr *a = &attrs[i];
		int wanted = a->level <= q->level &&
		    ((a->kind != K_COUNT && a->open == NULL) ||
		    dcm_find(q->identifier, NULL, a->tag) != NULL);

		fprintf(f, "%s%s", i > 0 ? ", " : "", wanted ? a->column :
		    "NULL");
	}
	fprintf(f, "%s FROM %s%s WHERE 1", extra_columns ? extra_columns : "",
	    level_from[q->level], extra_from ? extra_from : "");
	for (int i = 0; i < q->nkeys; i++)
		if (where_key(q, f, &q->keys[i], e) == -1)
			return -1;
	if (order != NULL)
		fprintf(f, " ORDER BY %s", order);
	return 0;
}

static sqlite3_stmt *
prepare(sqlite3 *db, struct query *q, const char *extra_columns,
    const char *extra_from, const char *order, struct err *e)
{
	sqlite3_stmt *st = NULL;
	char *sql = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	if ((f = open_memstream(&sql, &len)) == NULL) {
		err_sys(e, "open_memstream");
		return NULL;
	}
	rc = write_sql(q, f, extra_columns, extra_from, order, e);
	if (fclose(f) != 0 && rc == 0)
		rc = err_sys(e, "building the query");
	if (rc == 0 && db_prepare(db, &st, sql, e) == -1)
		rc = -1;
	free(sql);
	for (int i = 0; rc == 0 && i < q->nbinds; i++) {
		const struct bind *b = &q->binds[i];

		if ((b->text != NULL ? sqlite3_bind_text(st, i + 1, b->text,
		    -1, SQLITE_STATIC) : sqlite3_bind_int64(st, i + 1,
		    b->num)) != SQLITE_OK)
			rc = err_set(e, db_errno(db), "bind: %s",
			    sqlite3_errmsg(db));
	}
	if (rc == -1) {
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* --- C that decides --- */

static const char *
column(sqlite3_stmt *st, const struct attr *a)
{
	const unsigned char *v = sqlite3_column_text(st, (int)(a - attrs));

	return v != NULL ? (const char *)v : "";
}

/* How each kind of key is matched, row by row. */
static const enum match_rule rules[] = {
	[K_TEXT] = MATCH_WILD, [K_UID] = MATCH_EXACT, [K_DATE] = MATCH_DATE,
	[K_TIME] = MATCH_TIME, [K_NUMBER] = MATCH_INTEGER,
	[K_LIST] = MATCH_LIST, [K_COUNT] = MATCH_NONE,
};

static int
key_match(const struct key *k, const char *v)
{
	return match_any(rules[k->attr->kind], k->values, k->nvalues, v);
}

static int
row_matches(const struct query *q, sqlite3_stmt *st)
{
	for (int i = 0; i < q->nkeys; i++) {
		const struct key *k = &q->keys[i];

		if (q->combined && (k == q->date || k == q->time))
			continue;
		if (!key_match(k, column(st, k->attr)))
			return 0;
	}
	if (q->combined)
		return match_datetime_range(q->date->values, q->time->values,
		    column(st, q->date->attr), column(st, q->time->attr));
	return 1;
}

/* --- the response --- */

struct response {
	struct dcm_builder *b;
	int non_ascii, non_latin1;
};

/* Note which character sets can hold v. */
static void
note_text(struct response *r, const char *v)
{
	const unsigned char *s = (const unsigned char *)v;

	for (; *s != '\0'; s++) {
		if (*s < 0x80)
			continue;
		r->non_ascii = 1;
		if (*s > 0xc3 && (*s & 0xc0) == 0xc0)
			r->non_latin1 = 1;	/* a code point above U+00FF */
	}
}

static int
put_value(struct response *r, uint32_t tag, const char *vr, const char *v,
    struct err *e)
{
	const struct dcm_dict_entry *de;

	if (v == NULL || *v == '\0')
		return dcm_build_empty(r->b, tag, vr, e);
	if (vr == NULL && (de = dcm_dict_lookup(tag)) != NULL)
		vr = de->vr;
	if (vr != NULL && strcmp(vr, "US") == 0)
		return dcm_build_u16(r->b, tag, (uint16_t)strtol(v, NULL, 10),
		    e);
	note_text(r, v);
	return dcm_build_string(r->b, tag, vr, v, e);
}

static const char *
response_value(const struct query *q, sqlite3_stmt *st, uint32_t tag)
{
	const struct attr *a;

	if (tag == TAG_LEVEL)
		return level_names[q->level];
	if (tag == TAG_RETRIEVE_AET)
		return q->opt != NULL ? q->opt->retrieve_aet : NULL;
	if ((a = find_attr(tag)) == NULL || a->level > q->level)
		return NULL;
	return column(st, a);
}

static const char *
vr_of(const struct dcm_elem *el)
{
	return strcmp(el->vr, "UN") == 0 ? NULL : el->vr;
}

/* Add tag with its value unless the request had it (and so it is there). */
static int
put_required(const struct query *q, sqlite3_stmt *st, struct response *r,
    uint32_t tag, struct err *e)
{
	if (dcm_find(q->identifier, NULL, tag) != NULL)
		return 0;
	return put_value(r, tag, NULL, response_value(q, st, tag), e);
}

/* Every requested key, filled when the index knows it, plus the level,
 * the unique keys of the level and above, and the Retrieve AE Title. */
static int
build_response(const struct query *q, sqlite3_stmt *st, struct response *r,
    struct err *e)
{
	const struct dcm *d = q->identifier;
	size_t n = dcm_elem_count(d, NULL);
	int rc;

	for (size_t i = 0; i < n; i++) {
		const struct dcm_elem *el = dcm_elem_at(d, NULL, i);

		if (skip_tag(el->tag))
			continue;
		if (strcmp(el->vr, "SQ") == 0)
			rc = dcm_build_sequence_begin(r->b, el->tag, e) == -1 ?
			    -1 : dcm_build_sequence_end(r->b, e);
		else
			rc = put_value(r, el->tag, vr_of(el),
			    response_value(q, st, el->tag), e);
		if (rc == -1)
			return err_wrap(e, "response key (%04X,%04X)",
			    DCM_GROUP(el->tag), DCM_ELEMENT(el->tag));
	}
	if (put_value(r, TAG_LEVEL, "CS", level_names[q->level], e) == -1)
		return -1;
	for (int l = top_level(q->root); l <= (int)q->level; l++)
		if (put_required(q, st, r, unique_tags[l], e) == -1)
			return -1;
	if (q->opt != NULL && q->opt->retrieve_aet != NULL &&
	    q->opt->retrieve_aet[0] != '\0' &&
	    put_required(q, st, r, TAG_RETRIEVE_AET, e) == -1)
		return -1;
	return 0;
}

static const char *
response_charset(const struct query *q, const struct response *r)
{
	if (!r->non_ascii)
		return NULL;
	return q->latin1 && !r->non_latin1 ? "ISO_IR 100" : "ISO_IR 192";
}

static int
send_match(const struct query *q, sqlite3_stmt *st, qr_match_fn fn,
    void *arg, struct err *e)
{
	struct response r = { dcm_build_new(), 0, 0 };
	int rc;

	if (r.b == NULL)
		return err_sys(e, "malloc");
	rc = build_response(q, st, &r, e);
	if (rc == 0)
		rc = fn(arg, r.b, response_charset(q, &r)) != 0;
	dcm_build_free(r.b);
	return rc;
}

static int
step_error(sqlite3 *db, struct err *e)
{
	return err_set(e, db_errno(db), "select: %s", sqlite3_errmsg(db));
}

/* What to do with each matching row: -1 error, 0 go on, 1 stop. */
typedef int (*row_fn)(const struct query *q, sqlite3_stmt *st, void *ctx,
    struct err *e);

/* Step st (NULL: preparing failed, e is set), calling each for the rows
 * that match q; then free both.  The number of rows handed on, or -1. */
static int
stream(sqlite3 *db, struct query *q, sqlite3_stmt *st, row_fn each,
    void *ctx, struct err *e)
{
	int n = 0, rc = st == NULL ? -1 : 0, step = SQLITE_DONE;

	while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		if (!row_matches(q, st))
			continue;
		if ((rc = each(q, st, ctx, e)) != -1)
			n++;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = step_error(db, e);
	sqlite3_finalize(st);
	query_free(q);
	return rc == -1 ? -1 : n;
}

struct find_ctx {
	qr_match_fn fn;
	void *arg;
};

static int
find_row(const struct query *q, sqlite3_stmt *st, void *ctx, struct err *e)
{
	const struct find_ctx *f = ctx;

	return send_match(q, st, f->fn, f->arg, e);
}

int
qr_find_with(sqlite3 *db, enum qr_root root, const struct dcm *identifier,
    const struct qr_find_options *opt, qr_match_fn fn, void *arg,
    struct err *e)
{
	struct find_ctx f = { fn, arg };
	struct query q;
	sqlite3_stmt *st = NULL;

	if (parse_query(&q, root, identifier, 0, opt != NULL &&
	    opt->combined_datetime, e) == 0)
		st = prepare(db, &q, NULL, NULL, NULL, e);
	q.opt = opt;
	return stream(db, &q, st, find_row, &f, e);
}

int
qr_find(sqlite3 *db, enum qr_root root, const struct dcm *identifier,
    qr_match_fn fn, void *arg, struct err *e)
{
	return qr_find_with(db, root, identifier, NULL, fn, arg, e);
}

/* --- retrieval --- */

static void
copy_column(sqlite3_stmt *st, int i, char *out, size_t outsz)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	snprintf(out, outsz, "%s", v != NULL ? (const char *)v : "");
}

static void
instance_from_row(sqlite3_stmt *st, struct qr_instance *in)
{
	int c = (int)NATTRS;

	copy_column(st, c, in->sop_instance_uid, sizeof in->sop_instance_uid);
	copy_column(st, c + 1, in->sop_class_uid, sizeof in->sop_class_uid);
	copy_column(st, c + 2, in->transfer_syntax_uid,
	    sizeof in->transfer_syntax_uid);
	copy_column(st, c + 3, in->study_instance_uid,
	    sizeof in->study_instance_uid);
	copy_column(st, c + 4, in->series_instance_uid,
	    sizeof in->series_instance_uid);
	copy_column(st, c + 5, in->hash, sizeof in->hash);
	in->size = sqlite3_column_int64(st, c + 6);
	in->purged = sqlite3_column_int(st, c + 7);
}

/* A retrieval names what it wants by the unique key of its level. */
static int
check_retrieve_keys(const struct query *q, struct err *e)
{
	uint32_t tag = unique_tags[q->level];

	for (int i = 0; i < q->nkeys; i++)
		if (q->keys[i].attr->tag == tag)
			return 0;
	return err_set(e, QR_E_IDENTIFIER, "a retrieval at level %s needs "
	    "the unique key (%04X,%04X) with a value", level_names[q->level],
	    DCM_GROUP(tag), DCM_ELEMENT(tag));
}

static int
check_no_wildcards(const struct query *q, struct err *e)
{
	for (int i = 0; i < q->nkeys; i++) {
		const struct key *k = &q->keys[i];
		const char *p = k->values;

		for (int j = 0; j < k->nvalues; j++, p += strlen(p) + 1)
			if (match_has_wildcard(p))
				return bad_key(e, k->attr->tag, "a retrieval "
				    "takes no wildcards");
	}
	return 0;
}

struct instances_ctx {
	qr_instance_fn fn;
	void *arg;
};

static int
instance_row(const struct query *q, sqlite3_stmt *st, void *ctx,
    struct err *e)
{
	const struct instances_ctx *c = ctx;
	struct qr_instance in;

	(void)q;
	(void)e;
	instance_from_row(st, &in);
	return c->fn(c->arg, &in) != 0;
}

int
qr_instances(sqlite3 *db, enum qr_root root, const struct dcm *identifier,
    qr_instance_fn fn, void *arg, struct err *e)
{
	struct instances_ctx c = { fn, arg };
	struct query q;
	sqlite3_stmt *st = NULL;
	enum level level;

	if (parse_query(&q, root, identifier, 1, 0, e) == 0 &&
	    check_retrieve_keys(&q, e) == 0 && check_no_wildcards(&q, e) == 0) {
		/* Whatever the level, a retrieval reads instances. */
		level = q.level;
		q.level = L_IMAGE;
		st = prepare(db, &q, ", i.sop_instance_uid, i.sop_class_uid, "
		    "o.transfer_syntax_uid, st.study_instance_uid, "
		    "se.series_instance_uid, o.hash, o.size, "
		    "i.purged_at IS NOT NULL",
		    " JOIN objects o ON o.hash = i.object_hash",
		    "st.id, se.series_number, se.id, i.instance_number, i.id",
		    e);
		q.level = level;
	}
	return stream(db, &q, st, instance_row, &c, e);
}
