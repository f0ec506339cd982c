/*
 * worklist_match: Modality Worklist C-FIND over worklist.db (PS3.4 annex K,
 * matching rules of C.2.2.2).
 *
 * Matching mirrors dcmtk's wlmscpfs where the standard leaves a choice,
 * because the differential test compares the two: matching is case
 * sensitive (PN included); Patient ID, Scheduled Station AE Title and
 * Modality match single values without wildcards; a key the worklist
 * knows nothing about (Referring Physician's Name, ...) matches only
 * universally.  Beyond wlmscpfs we also match Study Instance UID (list of
 * UIDs), Requested Procedure Description, Study Description, and inside
 * the Scheduled Procedure Step Sequence the SPS Description, SPS ID and
 * Scheduled Station Name.  Values are compared as UTF-8; '?' matches one
 * character, not one byte.
 *
 * Rows are filtered in SQL by status (and by an exact SPS Start Date when
 * the query has one), then matched here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "worklist_int.h"

#define SPS_SEQ		DCM_TAG(0x0040, 0x0100)
#define SPS_DATE	DCM_TAG(0x0040, 0x0002)
#define SPS_TIME	DCM_TAG(0x0040, 0x0003)
#define MAX_KEYS	64
#define VALUE_MAX	1024

enum match { M_NONE, M_WILD, M_EXACT, M_DATE, M_TIME, M_UID };

struct attr {
	uint32_t tag;
	int in_sps;
	enum match m;
};

/* What we can match and return; tags not here are returned empty. */
static const struct attr attrs[] = {
	{ DCM_TAG(0x0008, 0x0050), 0, M_WILD },	/* AccessionNumber */
	{ DCM_TAG(0x0008, 0x0090), 0, M_WILD },	/* ReferringPhysicianName */
	{ DCM_TAG(0x0008, 0x1030), 0, M_WILD },	/* StudyDescription */
	{ DCM_TAG(0x0010, 0x0010), 0, M_WILD },	/* PatientName */
	{ DCM_TAG(0x0010, 0x0020), 0, M_EXACT },	/* PatientID */
	{ DCM_TAG(0x0010, 0x0021), 0, M_WILD },	/* IssuerOfPatientID */
	{ DCM_TAG(0x0010, 0x0030), 0, M_DATE },	/* PatientBirthDate */
	{ DCM_TAG(0x0010, 0x0040), 0, M_WILD },	/* PatientSex */
	{ DCM_TAG(0x0010, 0x2297), 0, M_WILD },	/* ResponsiblePerson */
	{ DCM_TAG(0x0010, 0x2298), 0, M_WILD },	/* ResponsiblePersonRole */
	{ DCM_TAG(0x0020, 0x000d), 0, M_UID },	/* StudyInstanceUID */
	{ DCM_TAG(0x0032, 0x1032), 0, M_WILD },	/* RequestingPhysician */
	{ DCM_TAG(0x0032, 0x1060), 0, M_WILD },	/* RequestedProcedureDescr. */
	{ DCM_TAG(0x0038, 0x0010), 0, M_WILD },	/* AdmissionID */
	{ DCM_TAG(0x0040, 0x1001), 0, M_WILD },	/* RequestedProcedureID */
	{ DCM_TAG(0x0040, 0x1003), 0, M_WILD },	/* RequestedProcedurePriority */
	{ DCM_TAG(0x0008, 0x0060), 1, M_EXACT },	/* Modality */
	{ DCM_TAG(0x0040, 0x0001), 1, M_EXACT },	/* ScheduledStationAETitle */
	{ SPS_DATE, 1, M_DATE },		/* SPS Start Date */
	{ SPS_TIME, 1, M_TIME },		/* SPS Start Time */
	{ DCM_TAG(0x0040, 0x0006), 1, M_WILD },	/* ScheduledPerformingPhys. */
	{ DCM_TAG(0x0040, 0x0007), 1, M_WILD },	/* SPS Description */
	{ DCM_TAG(0x0040, 0x0009), 1, M_WILD },	/* SPS ID */
	{ DCM_TAG(0x0040, 0x0010), 1, M_WILD },	/* ScheduledStationName */
	{ DCM_TAG(0x0040, 0x0011), 1, M_NONE },	/* SPS Location */
	{ DCM_TAG(0x0040, 0x0020), 1, M_EXACT },	/* SPS Status */
};

static const struct attr *
find_attr(uint32_t tag, int in_sps)
{
	for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
		if (attrs[i].tag == tag && attrs[i].in_sps == in_sps)
			return &attrs[i];
	return NULL;
}

static const char *
or_else(const char *a, const char *b)
{
	return a[0] != '\0' ? a : b;
}

const char *
wl_item_value(const struct worklist_item *it, const char *spsid,
    uint32_t tag, int in_sps)
{
	const char *desc = or_else(it->study_description,
	    or_else(it->requested_procedure_description, it->modality));

	if (in_sps) {
		switch (tag) {
		case DCM_TAG(0x0008, 0x0060): return it->modality;
		case DCM_TAG(0x0040, 0x0001): return it->scheduled_station_aet;
		case SPS_DATE: return it->scheduled_date;
		case SPS_TIME: return it->scheduled_time;
		case DCM_TAG(0x0040, 0x0007): return desc;
		case DCM_TAG(0x0040, 0x0009):
			return or_else(spsid ? spsid : "", it->accession_number);
		case DCM_TAG(0x0040, 0x0010): return it->scheduled_station_name;
		case DCM_TAG(0x0040, 0x0020):
			/* PS3.3 defined terms: an item in progress is STARTED. */
			return strcmp(it->status, WL_IN_PROGRESS) == 0 ?
			    "STARTED" : it->status;
		}
		return find_attr(tag, 1) ? "" : NULL;
	}
	switch (tag) {
	case DCM_TAG(0x0008, 0x0050): return it->accession_number;
	case DCM_TAG(0x0008, 0x1030): return it->study_description;
	case DCM_TAG(0x0010, 0x0010): return it->patient_name;
	case DCM_TAG(0x0010, 0x0020): return it->patient_id;
	case DCM_TAG(0x0010, 0x0030): return it->birth_date;
	case DCM_TAG(0x0010, 0x0040): return it->sex;
	case DCM_TAG(0x0020, 0x000d): return it->study_instance_uid;
	case DCM_TAG(0x0032, 0x1060):
		return or_else(it->requested_procedure_description, desc);
	case DCM_TAG(0x0040, 0x1001):
		return or_else(it->requested_procedure_id,
		    it->accession_number);
	}
	return find_attr(tag, 0) ? "" : NULL;
}

/* The character after the UTF-8 character at v. */
static const char *
next_char(const char *v)
{
	v++;
	while ((*v & 0xc0) == 0x80)
		v++;
	return v;
}

/* Wildcard matching (C.2.2.2.4): '*' any run, '?' one character. */
static int
wild(const char *k, const char *v)
{
	const char *star = NULL, *resume = NULL;

	while (*v != '\0') {
		if (*k == '*') {
			star = ++k;
			resume = v;
		} else if (*k == '?') {
			k++;
			v = next_char(v);
		} else if (*k != '\0' && *k == *v) {
			k++;
			v++;
		} else if (star != NULL) {
			k = star;
			resume = next_char(resume);
			v = resume;
		} else
			return 0;
	}
	while (*k == '*')
		k++;
	return *k == '\0';
}

static int
all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* A DA value (YYYYMMDD, or YYYY.MM.DD) as a number; -1 if malformed. */
static long
date_num(const char *s, size_t n)
{
	char d[9];

	if (n == 10 && s[4] == '.' && s[7] == '.') {
		memcpy(d, s, 4);
		memcpy(d + 4, s + 5, 2);
		memcpy(d + 6, s + 8, 2);
	} else if (n == 8)
		memcpy(d, s, 8);
	else
		return -1;
	d[8] = '\0';
	return all_digits(d, 8) ? strtol(d, NULL, 10) : -1;
}

/* A TM value (HH[MM[SS[.F{1,6}]]], colons allowed) in microseconds. */
static long long
time_num(const char *s, size_t n)
{
	char d[7] = "000000";
	size_t o = 0, i = 0;
	long long us = 0, scale = 100000;

	for (; i < n && s[i] != '.'; i++) {
		if (s[i] == ':')
			continue;
		if (o >= 6 || s[i] < '0' || s[i] > '9')
			return -1;
		d[o++] = s[i];
	}
	if (o < 2 || o % 2 != 0)
		return -1;
	if (i < n)
		for (i++; i < n && scale > 0; i++, scale /= 10) {
			if (s[i] < '0' || s[i] > '9')
				return -1;
			us += (s[i] - '0') * scale;
		}
	return ((long long)((d[0] - '0') * 10 + d[1] - '0') * 3600 +
	    ((d[2] - '0') * 10 + d[3] - '0') * 60 +
	    (d[4] - '0') * 10 + d[5] - '0') * 1000000 + us;
}

static long long
point(int is_date, const char *s, size_t n)
{
	return is_date ? date_num(s, n) : time_num(s, n);
}

/* Range matching (C.2.2.2.5) of one DA or TM key against a value. */
static int
range(int is_date, const char *k, const char *v)
{
	const char *dash = strchr(k, '-');
	long long x = point(is_date, v, strlen(v)), lo, hi;

	if (x < 0)
		return 0;
	if (dash == NULL)
		return point(is_date, k, strlen(k)) == x;
	lo = dash == k ? 0 : point(is_date, k, (size_t)(dash - k));
	hi = dash[1] == '\0' ? -2 : point(is_date, dash + 1,
	    strlen(dash + 1));
	if (lo < 0 || hi == -1)
		return 0;
	return x >= lo && (hi == -2 || x <= hi);
}

/* Combined date and time range (C.2.2.2.5.1): one datetime range. */
static int
datetime_range(const char *dk, const char *tk, const char *dv,
    const char *tv)
{
	const char *dd = strchr(dk, '-'), *td = strchr(tk, '-');
	long long d = date_num(dv, strlen(dv)), t = time_num(tv, strlen(tv));
	long long dlo, dhi, tlo, thi;

	if (d < 0 || t < 0 || dd == NULL || td == NULL)
		return 0;
	dlo = dd == dk ? 0 : date_num(dk, (size_t)(dd - dk));
	dhi = dd[1] == '\0' ? 99999999 : date_num(dd + 1, strlen(dd + 1));
	tlo = td == tk ? 0 : time_num(tk, (size_t)(td - tk));
	thi = td[1] == '\0' ? 86400000000LL : time_num(td + 1,
	    strlen(td + 1));
	if (dlo < 0 || dhi < 0 || tlo < 0 || thi < 0)
		return 0;
	if (d < dlo || (d == dlo && dd != dk && t < tlo))
		return 0;
	if (d > dhi || (d == dhi && dd[1] != '\0' && t > thi))
		return 0;
	return 1;
}

struct key {
	const struct attr *attr;
	char *values;		/* nvalues NUL-terminated strings */
	int nvalues;
};

struct query {
	struct key keys[MAX_KEYS];
	int nkeys;
	struct key *date, *time;	/* SPS Start Date and Time, if keys */
	int combined;
};

static int
universal(const struct key *k)
{
	if (k->nvalues == 0)
		return 1;
	if (k->attr->m != M_WILD)
		return 0;
	for (const char *p = k->values; *p != '\0'; p++)
		if (*p != '*')
			return 0;
	return k->nvalues == 1;
}

static int
match_one(enum match m, const char *k, const char *v)
{
	switch (m) {
	case M_WILD:
		return wild(k, v);
	case M_EXACT:
	case M_UID:
		return strcmp(k, v) == 0;
	case M_DATE:
		return range(1, k, v);
	case M_TIME:
		return range(0, k, v);
	case M_NONE:
		break;
	}
	return 1;
}

/* A key matches when any of its values matches (value lists, UID lists). */
static int
match_key(const struct key *k, const struct worklist_item *it,
    const char *spsid)
{
	const char *v, *p = k->values;

	if (k->attr->m == M_NONE || universal(k))
		return 1;
	v = wl_item_value(it, spsid, k->attr->tag, k->attr->in_sps);
	if (v == NULL || *v == '\0')
		return 0;
	for (int i = 0; i < k->nvalues; i++, p += strlen(p) + 1)
		if (match_one(k->attr->m, p, v))
			return 1;
	return 0;
}

static int
matches(const struct query *q, const struct worklist_item *it,
    const char *spsid)
{
	for (int i = 0; i < q->nkeys; i++) {
		const struct key *k = &q->keys[i];

		if (q->combined && (k == q->date || k == q->time))
			continue;
		if (!match_key(k, it, spsid))
			return 0;
	}
	if (q->combined)
		return datetime_range(q->date->values, q->time->values,
		    it->scheduled_date, it->scheduled_time);
	return 1;
}

static int
add_key(struct query *q, const struct dcm *d, const struct dcm_item *item,
    const struct dcm_elem *el, const struct attr *a, struct err *e)
{
	struct key *k;
	char buf[VALUE_MAX];
	size_t used = 0;
	int vm = dcm_vm(d, el), n;

	if (q->nkeys == MAX_KEYS)
		return err_set(e, EINVAL, "query has more than %d keys",
		    MAX_KEYS);
	k = &q->keys[q->nkeys];
	if ((k->values = malloc((size_t)(vm > 0 ? vm : 1) * VALUE_MAX)) ==
	    NULL)
		return err_sys(e, "malloc");
	k->values[0] = '\0';
	k->attr = a;
	k->nvalues = 0;
	q->nkeys++;
	for (int i = 0; i < vm; i++) {
		if ((n = dcm_get_string(d, item, el->tag, i, buf, sizeof buf,
		    e)) == -1)
			return -1;
		memcpy(k->values + used, buf, (size_t)n + 1);
		used += (size_t)n + 1;
		k->nvalues++;
	}
	if (k->nvalues == 1 && k->values[0] == '\0')
		k->nvalues = 0;
	if (a->tag == SPS_DATE && a->in_sps)
		q->date = k;
	if (a->tag == SPS_TIME && a->in_sps)
		q->time = k;
	return 0;
}

static int
skip_tag(uint32_t tag)
{
	return DCM_GROUP(tag) <= 0x0002 || DCM_ELEMENT(tag) == 0 ||
	    tag == DCM_TAG(0x0008, 0x0005);
}

/* The matching keys of one level of the query. */
static int
collect(struct query *q, const struct dcm *d, const struct dcm_item *item,
    int in_sps, struct err *e)
{
	size_t n = dcm_elem_count(d, item);

	for (size_t i = 0; i < n; i++) {
		const struct dcm_elem *el = dcm_elem_at(d, item, i);
		const struct attr *a;

		if (skip_tag(el->tag))
			continue;
		if (!in_sps && el->tag == SPS_SEQ) {
			if (dcm_item_count(d, el) > 0 && collect(q, d,
			    dcm_item_at(d, el, 0), 1, e) == -1)
				return -1;
			continue;
		}
		if ((a = find_attr(el->tag, in_sps)) == NULL ||
		    strcmp(el->vr, "SQ") == 0)
			continue;
		if (add_key(q, d, item, el, a, e) == -1)
			return -1;
	}
	return 0;
}

static void
query_free(struct query *q)
{
	for (int i = 0; i < q->nkeys; i++)
		free(q->keys[i].values);
}

static int
parse_query(struct query *q, const struct dcm *query, struct err *e)
{
	memset(q, 0, sizeof *q);
	if (collect(q, query, NULL, 0, e) == -1)
		return -1;
	q->combined = q->date != NULL && q->time != NULL &&
	    q->date->nvalues == 1 && q->time->nvalues == 1 &&
	    strchr(q->date->values, '-') != NULL &&
	    strchr(q->time->values, '-') != NULL;
	return 0;
}

static const char *
vr_of(const struct dcm_elem *el)
{
	return strcmp(el->vr, "UN") == 0 ? NULL : el->vr;
}

static int
put_value(struct dcm_builder *b, uint32_t tag, const char *vr,
    const char *v, struct err *e)
{
	if (v == NULL || *v == '\0')
		return dcm_build_empty(b, tag, vr, e);
	return dcm_build_string(b, tag, vr, v, e);
}

/* An empty SPS sequence in the query asks for every attribute we have. */
static int
expand_sps(const struct worklist_item *it, const char *spsid,
    struct dcm_builder *b, struct err *e)
{
	for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
		if (attrs[i].in_sps && put_value(b, attrs[i].tag, NULL,
		    wl_item_value(it, spsid, attrs[i].tag, 1), e) == -1)
			return -1;
	return 0;
}

static int build_level(const struct dcm *d, const struct dcm_item *item,
    int in_sps, const struct worklist_item *it, const char *spsid,
    struct dcm_builder *b, struct err *e);

static int
build_sequence(const struct dcm *d, const struct dcm_elem *el, int is_sps,
    const struct worklist_item *it, const char *spsid,
    struct dcm_builder *b, struct err *e)
{
	if (dcm_build_sequence_begin(b, el->tag, e) == -1)
		return -1;
	if (is_sps) {
		if (dcm_build_item_begin(b, e) == -1)
			return -1;
		if (dcm_item_count(d, el) == 0 ?
		    expand_sps(it, spsid, b, e) == -1 :
		    build_level(d, dcm_item_at(d, el, 0), 1, it, spsid, b,
		    e) == -1)
			return -1;
		if (dcm_build_item_end(b, e) == -1)
			return -1;
	}
	return dcm_build_sequence_end(b, e);
}

static int
build_level(const struct dcm *d, const struct dcm_item *item, int in_sps,
    const struct worklist_item *it, const char *spsid,
    struct dcm_builder *b, struct err *e)
{
	size_t n = dcm_elem_count(d, item);

	for (size_t i = 0; i < n; i++) {
		const struct dcm_elem *el = dcm_elem_at(d, item, i);
		int rc;

		if (skip_tag(el->tag))
			continue;
		if (strcmp(el->vr, "SQ") == 0)
			rc = build_sequence(d, el, !in_sps &&
			    el->tag == SPS_SEQ, it, spsid, b, e);
		else
			rc = put_value(b, el->tag, vr_of(el),
			    wl_item_value(it, spsid, el->tag, in_sps), e);
		if (rc == -1)
			return err_wrap(e, "response key (%04X,%04X)",
			    DCM_GROUP(el->tag), DCM_ELEMENT(el->tag));
	}
	return 0;
}

int
wl_build_response(const struct dcm *query, const struct worklist_item *it,
    const char *spsid, struct dcm_builder *b, struct err *e)
{
	return build_level(query, NULL, 0, it, spsid, b, e);
}

/* The statement to scan: by exact SPS Start Date when the query has one. */
static sqlite3_stmt *
scan(struct worklist *w, const struct query *q, struct err *e)
{
	const char *d;

	if (q->date == NULL || q->date->nvalues != 1)
		return w->st_offered;
	d = q->date->values;
	if (strlen(d) != 8 || !all_digits(d, 8))
		return w->st_offered;
	if (sqlite3_bind_text(w->st_offered_date, 1, d, -1,
	    SQLITE_TRANSIENT) != SQLITE_OK) {
		wl_sql_err(w->db, e, "bind");
		return NULL;
	}
	return w->st_offered_date;
}

static int
send_match(const struct dcm *query, const struct worklist_item *it,
    const char *spsid, worklist_match_fn fn, void *arg, struct err *e)
{
	struct dcm_builder *b;
	int rc;

	if ((b = dcm_build_new()) == NULL)
		return err_sys(e, "malloc");
	rc = wl_build_response(query, it, spsid, b, e);
	if (rc == 0)
		rc = fn(arg, b);
	dcm_build_free(b);
	return rc;
}

int
worklist_find(struct worklist *w, const struct dcm *query,
    worklist_match_fn fn, void *arg, struct err *e)
{
	struct query q;
	struct worklist_item it;
	char spsid[WL_FIELD];
	sqlite3_stmt *st;
	int n = 0, rc = 0, step;

	if (parse_query(&q, query, e) == -1 ||
	    (st = scan(w, &q, e)) == NULL) {
		query_free(&q);
		return -1;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		wl_item_from_row(st, &it, spsid);
		if (!matches(&q, &it, spsid))
			continue;
		if ((rc = send_match(query, &it, spsid, fn, arg, e)) == -1)
			break;
		n++;
		if (rc == 1)
			break;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = wl_sql_err(w->db, e, "select");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	query_free(&q);
	return rc == -1 ? -1 : n;
}
