/*
 * worklist_match: Modality Worklist C-FIND over worklist.db (PS3.4 annex K,
 * matching rules of C.2.2.2).
 *
 * Matching mirrors dcmtk's wlmscpfs where the standard leaves a choice,
 * because the differential test compares the two: matching is case
 * sensitive (PN included); Patient ID, Scheduled Station AE Title and
 * Modality match single values without wildcards (asterisks alone still
 * match universally); a key the worklist knows nothing about (Referring
 * Physician's Name, ...) matches only universally.  Beyond wlmscpfs we also match Study Instance UID (list of
 * UIDs), Requested Procedure Description, Study Description, and inside
 * the Scheduled Procedure Step Sequence the SPS Description, SPS ID and
 * Scheduled Station Name.  Values are compared as UTF-8; '?' matches one
 * character, not one byte.
 *
 * Items come from worklist_each() in the site's local time (what is
 * offered, and only the local day of an exact SPS Start Date when the
 * query has one), so dates, times and their ranges are matched on local
 * values.  Beyond wlmscpfs, a query naming Scheduled Station AE Titles
 * also matches the items the cloud gave no station (a scanner asks by its
 * own AE title); they answer with the query's first AE title.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "dicom/dicom.h"
#include "worklist/worklist_int.h"

#define SPS_SEQ		DCM_TAG(0x0040, 0x0100)
#define SPS_DATE	DCM_TAG(0x0040, 0x0002)
#define SPS_TIME	DCM_TAG(0x0040, 0x0003)
#define SPS_AET		DCM_TAG(0x0040, 0x0001)
#define MAX_KEYS	64
#define VALUE_MAX	1024

struct attr {
	uint32_t tag;
	int in_sps;
	enum match_rule m;
};

/* What we can match and return; tags not here are returned empty. */
static const struct attr attrs[] = {
	{ DCM_TAG(0x0008, 0x0050), 0, MATCH_WILD },	/* AccessionNumber */
	{ DCM_TAG(0x0008, 0x0090), 0, MATCH_WILD },	/* ReferringPhysicianName */
	{ DCM_TAG(0x0008, 0x1030), 0, MATCH_WILD },	/* StudyDescription */
	{ DCM_TAG(0x0010, 0x0010), 0, MATCH_WILD },	/* PatientName */
	{ DCM_TAG(0x0010, 0x0020), 0, MATCH_EXACT },	/* PatientID */
	{ DCM_TAG(0x0010, 0x0021), 0, MATCH_WILD },	/* IssuerOfPatientID */
	{ DCM_TAG(0x0010, 0x0030), 0, MATCH_DATE },	/* PatientBirthDate */
	{ DCM_TAG(0x0010, 0x0040), 0, MATCH_WILD },	/* PatientSex */
	{ DCM_TAG(0x0010, 0x2297), 0, MATCH_WILD },	/* ResponsiblePerson */
	{ DCM_TAG(0x0010, 0x2298), 0, MATCH_WILD },	/* ResponsiblePersonRole */
	{ DCM_TAG(0x0020, 0x000d), 0, MATCH_EXACT },	/* StudyInstanceUID */
	{ DCM_TAG(0x0032, 0x1032), 0, MATCH_WILD },	/* RequestingPhysician */
	{ DCM_TAG(0x0032, 0x1060), 0, MATCH_WILD },	/* RequestedProcedureDescr. */
	{ DCM_TAG(0x0038, 0x0010), 0, MATCH_WILD },	/* AdmissionID */
	{ DCM_TAG(0x0040, 0x1001), 0, MATCH_WILD },	/* RequestedProcedureID */
	{ DCM_TAG(0x0040, 0x1003), 0, MATCH_WILD },	/* RequestedProcedurePriority */
	{ DCM_TAG(0x0008, 0x0060), 1, MATCH_EXACT },	/* Modality */
	{ DCM_TAG(0x0040, 0x0001), 1, MATCH_EXACT },	/* ScheduledStationAETitle */
	{ SPS_DATE, 1, MATCH_DATE },		/* SPS Start Date */
	{ SPS_TIME, 1, MATCH_TIME },		/* SPS Start Time */
	{ DCM_TAG(0x0040, 0x0006), 1, MATCH_WILD },	/* ScheduledPerformingPhys. */
	{ DCM_TAG(0x0040, 0x0007), 1, MATCH_WILD },	/* SPS Description */
	{ DCM_TAG(0x0040, 0x0009), 1, MATCH_WILD },	/* SPS ID */
	{ DCM_TAG(0x0040, 0x0010), 1, MATCH_WILD },	/* ScheduledStationName */
	{ DCM_TAG(0x0040, 0x0011), 1, MATCH_NONE },	/* SPS Location */
	{ DCM_TAG(0x0040, 0x0020), 1, MATCH_EXACT },	/* SPS Status */
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
wl_item_value(const struct worklist_item *it, uint32_t tag, int in_sps)
{
	const char *desc = or_else(it->study_description,
	    or_else(it->requested_procedure_description, it->modality));

	if (in_sps) {
		switch (tag) {
		case DCM_TAG(0x0008, 0x0060): return it->modality;
		case SPS_AET: return it->scheduled_station_aet;
		case SPS_DATE: return it->scheduled_date;
		case SPS_TIME: return it->scheduled_time;
		case DCM_TAG(0x0040, 0x0007): return desc;
		case DCM_TAG(0x0040, 0x0009):
			return or_else(it->spsid, it->accession_number);
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

struct key {
	const struct attr *attr;
	char *values;		/* nvalues NUL-terminated strings */
	int nvalues;
};

struct query {
	struct key keys[MAX_KEYS];
	int nkeys;
	struct key *date, *time;	/* SPS Start Date and Time, if keys */
	struct key *aet;		/* Scheduled Station AE Title, if a key */
	int combined;
};

/* Zero length, or (not for dates and times) asterisks only: universal
 * matching (PS3.4 C.2.2.2.3, C.2.2.2.4), also for the keys matched
 * without wildcards otherwise, as wlmscpfs does: a modality asking for
 * Scheduled Station AE Title "*" wants every station's items. */
static int
universal(const struct key *k)
{
	if (k->nvalues == 0)
		return 1;
	if (k->attr->m != MATCH_WILD && k->attr->m != MATCH_EXACT)
		return 0;
	return k->nvalues == 1 && match_all_stars(k->values);
}

/* A key matches when any of its values matches (value lists, UID lists). */
static int
match_key(const struct key *k, const struct worklist_item *it)
{
	const char *v;

	if (k->attr->m == MATCH_NONE || universal(k))
		return 1;
	v = wl_item_value(it, k->attr->tag, k->attr->in_sps);
	return v != NULL && match_any(k->attr->m, k->values, k->nvalues, v);
}

static int
matches(const struct query *q, const struct worklist_item *it)
{
	for (int i = 0; i < q->nkeys; i++) {
		const struct key *k = &q->keys[i];

		if (q->combined && (k == q->date || k == q->time))
			continue;
		/* An item with no station is every station's. */
		if (k == q->aet && it->scheduled_station_aet[0] == '\0')
			continue;
		if (!match_key(k, it))
			return 0;
	}
	if (q->combined)
		return match_datetime_range(q->date->values, q->time->values,
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
	if (a->tag == SPS_AET && a->in_sps)
		q->aet = k;
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
expand_sps(const struct worklist_item *it, struct dcm_builder *b,
    struct err *e)
{
	for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
		if (attrs[i].in_sps && put_value(b, attrs[i].tag, NULL,
		    wl_item_value(it, attrs[i].tag, 1), e) == -1)
			return -1;
	return 0;
}

static int build_level(const struct dcm *d, const struct dcm_item *item,
    int in_sps, const struct worklist_item *it, struct dcm_builder *b,
    struct err *e);

static int
build_sequence(const struct dcm *d, const struct dcm_elem *el, int is_sps,
    const struct worklist_item *it, struct dcm_builder *b, struct err *e)
{
	if (dcm_build_sequence_begin(b, el->tag, e) == -1)
		return -1;
	if (is_sps) {
		if (dcm_build_item_begin(b, e) == -1)
			return -1;
		if (dcm_item_count(d, el) == 0 ? expand_sps(it, b, e) == -1 :
		    build_level(d, dcm_item_at(d, el, 0), 1, it, b, e) == -1)
			return -1;
		if (dcm_build_item_end(b, e) == -1)
			return -1;
	}
	return dcm_build_sequence_end(b, e);
}

static int
build_level(const struct dcm *d, const struct dcm_item *item, int in_sps,
    const struct worklist_item *it, struct dcm_builder *b, struct err *e)
{
	size_t n = dcm_elem_count(d, item);

	for (size_t i = 0; i < n; i++) {
		const struct dcm_elem *el = dcm_elem_at(d, item, i);
		int rc;

		if (skip_tag(el->tag))
			continue;
		if (strcmp(el->vr, "SQ") == 0)
			rc = build_sequence(d, el, !in_sps &&
			    el->tag == SPS_SEQ, it, b, e);
		else
			rc = put_value(b, el->tag, vr_of(el),
			    wl_item_value(it, el->tag, in_sps), e);
		if (rc == -1)
			return err_wrap(e, "response key (%04X,%04X)",
			    DCM_GROUP(el->tag), DCM_ELEMENT(el->tag));
	}
	return 0;
}

/* The AE title an item with no station answers with: the query's first
 * single value, else the site's. */
static const char *
station_for(const struct query *q, const char *site_aet)
{
	if (q->aet != NULL && q->aet->nvalues > 0 &&
	    q->aet->values[0] != '\0' && !match_has_wildcard(q->aet->values))
		return q->aet->values;
	return site_aet;
}

/* The local day to read: an exact SPS Start Date of the query, or NULL. */
static const char *
query_day(const struct query *q)
{
	if (q->date == NULL || q->date->nvalues != 1 ||
	    !worklist_valid_date(q->date->values))
		return NULL;
	return q->date->values;
}

struct find {
	const struct query *q;
	const struct dcm *query;
	const char *station_aet;
	worklist_match_fn fn;
	void *arg;
	int sent;
};

static int
find_one(void *arg, struct worklist_item *it, struct err *e)
{
	struct find *f = arg;
	struct dcm_builder *b;
	int rc;

	if (!matches(f->q, it))
		return 0;
	if (it->scheduled_station_aet[0] == '\0')
		snprintf(it->scheduled_station_aet, WL_FIELD, "%s",
		    station_for(f->q, f->station_aet));
	if ((b = dcm_build_new()) == NULL)
		return err_sys(e, "malloc");
	rc = build_level(f->query, NULL, 0, it, b, e);
	if (rc == 0)
		rc = f->fn(f->arg, b);
	dcm_build_free(b);
	if (rc != -1)
		f->sent++;
	return rc;
}

int
worklist_find(struct worklist *w, const struct dcm *query,
    worklist_match_fn fn, void *arg, struct err *e)
{
	struct query q;
	struct find f = { &q, query, w->site.station_aet, fn, arg, 0 };
	int rc;

	rc = parse_query(&q, query, e);
	if (rc == 0)
		rc = worklist_each(w, query_day(&q), 0, find_one, &f, e);
	query_free(&q);
	return rc == -1 ? -1 : f.sent;
}
