/*
 * worklist_test: worklist.db, C-FIND matching rules, MPPS state machine,
 * outbox and reset.  Usage: worklist_test DIR (a scratch directory).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"
#include "tap.h"
#include "worklist/worklist.h"

#define SPS	DCM_TAG(0x0040, 0x0100)
#define ACC	DCM_TAG(0x0008, 0x0050)
#define PNAME	DCM_TAG(0x0010, 0x0010)
#define PID	DCM_TAG(0x0010, 0x0020)
#define UID	DCM_TAG(0x0020, 0x000d)
#define MOD	DCM_TAG(0x0008, 0x0060)
#define AET	DCM_TAG(0x0040, 0x0001)
#define SDATE	DCM_TAG(0x0040, 0x0002)
#define STIME	DCM_TAG(0x0040, 0x0003)
#define SPSID	DCM_TAG(0x0040, 0x0009)
#define REFPHYS	DCM_TAG(0x0008, 0x0090)
#define PPS	DCM_TAG(0x0040, 0x0252)
#define SSA	DCM_TAG(0x0040, 0x0270)

static struct worklist *w;
static struct err e;
static uint8_t *bufs[64];
static int nbufs;

/* A query: top-level key=value pairs, then "|" and SPS item keys. */
struct kv {
	uint32_t tag;
	const char *v;	/* "|" marks the start of the SPS item */
};

static struct dcm *
encode(struct dcm_builder *b)
{
	struct dcm *d = NULL;
	size_t len;

	if (dcm_build_encode(b, DCM_TS_EXPLICIT_LE, "ISO_IR 192",
	    &bufs[nbufs], &len, &e) == -1 ||
	    dcm_parse_dataset(bufs[nbufs], len, DCM_TS_EXPLICIT_LE, 0, &d,
	    &e) == -1)
		diag("encode: %s", e.msg);
	nbufs++;
	dcm_build_free(b);
	return d;
}

static struct dcm *
query(const struct kv *kv, int sps_empty)
{
	struct dcm_builder *b = dcm_build_new();
	int in_sps = 0;

	for (; kv->tag != 0; kv++) {
		if (kv->v != NULL && strcmp(kv->v, "|") == 0) {
			dcm_build_sequence_begin(b, SPS, &e);
			dcm_build_item_begin(b, &e);
			in_sps = 1;
			continue;
		}
		if (kv->v == NULL || *kv->v == '\0')
			dcm_build_empty(b, kv->tag, NULL, &e);
		else
			dcm_build_string(b, kv->tag, NULL, kv->v, &e);
	}
	if (in_sps) {
		dcm_build_item_end(b, &e);
		dcm_build_sequence_end(b, &e);
	} else if (sps_empty) {
		dcm_build_sequence_begin(b, SPS, &e);
		dcm_build_sequence_end(b, &e);
	}
	return encode(b);
}

struct hits {
	char accs[512];
	int n;
	struct dcm *last;
	uint8_t *lastbuf;
};

static int
collect(void *arg, struct dcm_builder *b)
{
	struct hits *h = arg;
	size_t len;
	char acc[64] = "";

	if (h->last != NULL) {
		dcm_free(h->last);
		free(h->lastbuf);
		h->last = NULL;
	}
	if (dcm_build_encode(b, DCM_TS_EXPLICIT_LE, "ISO_IR 192", &h->lastbuf,
	    &len, &e) == -1 || dcm_parse_dataset(h->lastbuf, len,
	    DCM_TS_EXPLICIT_LE, 0, &h->last, &e) == -1)
		return -1;
	dcm_get_string(h->last, NULL, ACC, 0, acc, sizeof acc, NULL);
	if (h->n++ > 0)
		strcat(h->accs, ",");
	strncat(h->accs, acc, sizeof h->accs - strlen(h->accs) - 1);
	return 0;
}

/* The accession numbers the query finds, comma-separated, in order. */
static const char *
find(const struct kv *kv, int sps_empty, struct hits *h)
{
	struct dcm *q = query(kv, sps_empty);

	memset(h, 0, sizeof *h);
	if (worklist_find(w, q, collect, h, &e) == -1)
		snprintf(h->accs, sizeof h->accs, "error: %.400s", e.msg);
	dcm_free(q);
	return h->accs;
}

static void
hits_free(struct hits *h)
{
	dcm_free(h->last);
	free(h->lastbuf);
}

static void
check(const char *title, const struct kv *kv, const char *want)
{
	struct hits h;

	is_str(find(kv, 0, &h), want, title);
	hits_free(&h);
}

static void
add(const char *acc, const char *name, const char *pid, const char *date,
    const char *time, const char *mod, const char *aet, const char *msgid)
{
	struct worklist_item it = { 0 };

	snprintf(it.accession_number, WL_FIELD, "%s", acc);
	snprintf(it.patient_name, WL_FIELD, "%s", name);
	snprintf(it.patient_id, WL_FIELD, "%s", pid);
	snprintf(it.scheduled_date, WL_FIELD, "%s", date);
	snprintf(it.scheduled_time, WL_FIELD, "%s", time);
	snprintf(it.modality, WL_FIELD, "%s", mod);
	snprintf(it.scheduled_station_aet, WL_FIELD, "%s", aet);
	snprintf(it.source_message_id, WL_FIELD, "%s", msgid);
	snprintf(it.study_description, WL_FIELD, "Screening");
	if (worklist_create(w, &it, NULL, &e) != WL_CREATED)
		diag("create %s: %s", acc, e.msg);
}

static struct dcm *
mpps_ds(const char *status, const char *acc)
{
	struct dcm_builder *b = dcm_build_new();

	if (status != NULL)
		dcm_build_string(b, PPS, NULL, status, &e);
	if (acc != NULL) {
		dcm_build_sequence_begin(b, SSA, &e);
		dcm_build_item_begin(b, &e);
		dcm_build_string(b, ACC, NULL, acc, &e);
		dcm_build_item_end(b, &e);
		dcm_build_sequence_end(b, &e);
	}
	return encode(b);
}

static const char *
status_of(const char *acc)
{
	static struct worklist_item it;

	if (worklist_get(w, acc, &it, &e) != 0)
		return "(none)";
	return it.status;
}

static void
test_matching(void)
{
	struct hits h;
	char uid1[WL_FIELD], uid3[WL_FIELD], list[600];
	struct worklist_item it;

	check("universal matching: every offered item",
	    (struct kv[]){ { ACC, "" }, { 0, 0 } }, "A1,A2,A3,A4");
	check("single value matching on AccessionNumber",
	    (struct kv[]){ { ACC, "A2" }, { 0, 0 } }, "A2");
	check("single value matching is case sensitive (as wlmscpfs)",
	    (struct kv[]){ { ACC, "" }, { PNAME, "smith^jane" }, { 0, 0 } }, "");
	check("wildcard * in PatientName",
	    (struct kv[]){ { ACC, "" }, { PNAME, "SMITH*" }, { 0, 0 } }, "A1,A3");
	check("wildcard ? matches one character, also a non-ASCII one",
	    (struct kv[]){ { ACC, "" }, { PNAME, "M?LLER^*" }, { 0, 0 } }, "A2");
	check("* alone is universal, even for empty values",
	    (struct kv[]){ { ACC, "" }, { REFPHYS, "*" }, { 0, 0 } }, "A1,A2,A3,A4");
	check("a key we have no value for matches nothing",
	    (struct kv[]){ { ACC, "" }, { REFPHYS, "DR^WHO" }, { 0, 0 } }, "");
	check("PatientID takes no wildcards (as wlmscpfs)",
	    (struct kv[]){ { ACC, "" }, { PID, "999*" }, { 0, 0 } }, "");
	check("PatientID single value",
	    (struct kv[]){ { ACC, "" }, { PID, "9990000002" }, { 0, 0 } }, "A2");
	check("SPS Start Date single value",
	    (struct kv[]){ { ACC, "" }, { SPS, "|" }, { SDATE, "20261128" },
	    { 0, 0 } }, "A3,A4");
	check("SPS Start Date range",
	    (struct kv[]){ { ACC, "" }, { SPS, "|" },
	    { SDATE, "20261127-20261128" }, { 0, 0 } }, "A1,A2,A3,A4");
	check("SPS Start Date open range -D",
	    (struct kv[]){ { ACC, "" }, { SPS, "|" }, { SDATE, "-20261127" },
	    { 0, 0 } }, "A1,A2");
	check("SPS Start Date open range D-",
	    (struct kv[]){ { ACC, "" }, { SPS, "|" }, { SDATE, "20261128-" },
	    { 0, 0 } }, "A3,A4");
	check("SPS Start Time range",
	    (struct kv[]){ { ACC, "" }, { SPS, "|" }, { STIME, "0900-1000" },
	    { 0, 0 } }, "A1,A3");
	check("combined date-time range (C.2.2.2.5.1)",
	    (struct kv[]){ { ACC, "" }, { SPS, "|" },
	    { SDATE, "20261127-20261128" }, { STIME, "1000-0930" },
	    { 0, 0 } }, "A2,A3");
	check("Modality in the SPS item",
	    (struct kv[]){ { ACC, "" }, { SPS, "|" }, { MOD, "CR" },
	    { 0, 0 } }, "A4");
	check("Modality value list MG\\CR",
	    (struct kv[]){ { ACC, "" }, { SPS, "|" }, { MOD, "MG\\CR" },
	    { 0, 0 } }, "A1,A2,A3,A4");
	check("Scheduled Station AE Title",
	    (struct kv[]){ { ACC, "" }, { SPS, "|" }, { AET, "MAMMO2" },
	    { 0, 0 } }, "A3");
	check("no match: empty result",
	    (struct kv[]){ { ACC, "" }, { SPS, "|" }, { AET, "NOBODY" },
	    { 0, 0 } }, "");
	worklist_get(w, "A1", &it, &e);
	snprintf(uid1, sizeof uid1, "%s", it.study_instance_uid);
	worklist_get(w, "A3", &it, &e);
	snprintf(uid3, sizeof uid3, "%s", it.study_instance_uid);
	ok(strncmp(uid1, "2.25.", 5) == 0 && strlen(uid1) <= 64 &&
	    strcmp(uid1, uid3) != 0, "Study Instance UIDs are 2.25. and "
	    "unique (%s)", uid1);
	snprintf(list, sizeof list, "%s\\%s", uid1, uid3);
	check("list of UID matching",
	    (struct kv[]){ { UID, list }, { ACC, "" }, { 0, 0 } }, "A1,A3");

	/* Return keys: values, zero-length unknowns, nesting. */
	find((struct kv[]){ { ACC, "A2" }, { PNAME, "" }, { REFPHYS, "" },
	    { SPS, "|" }, { MOD, "" }, { SPSID, "" }, { 0, 0 } }, 0, &h);
	{
		char v[128] = "?";
		const struct dcm_elem *sq = h.last ?
		    dcm_find(h.last, NULL, SPS) : NULL;
		const struct dcm_elem *rp = h.last ?
		    dcm_find(h.last, NULL, REFPHYS) : NULL;

		dcm_get_string(h.last, NULL, PNAME, 0, v, sizeof v, NULL);
		is_str(v, "MÜLLER^ANNA", "return key PatientName in UTF-8");
		ok(rp != NULL && rp->length == 0,
		    "unknown return key is zero-length");
		ok(sq != NULL && dcm_item_count(h.last, sq) == 1,
		    "SPS sequence returned with one item");
		if (sq != NULL && dcm_item_count(h.last, sq) == 1) {
			dcm_get_string(h.last, dcm_item_at(h.last, sq, 0), MOD,
			    0, v, sizeof v, NULL);
			is_str(v, "MG", "Modality returned inside the item");
		} else
			ok(0, "Modality returned inside the item");
		ok(dcm_find(h.last, NULL, UID) == NULL,
		    "keys not asked for are not returned");
	}
	hits_free(&h);
	find((struct kv[]){ { ACC, "A4" }, { 0, 0 } }, 1, &h);
	{
		const struct dcm_elem *sq = h.last ?
		    dcm_find(h.last, NULL, SPS) : NULL;
		const struct dcm_item *item = sq && dcm_item_count(h.last,
		    sq) ? dcm_item_at(h.last, sq, 0) : NULL;

		ok(item != NULL && dcm_find(h.last, item, AET) != NULL &&
		    dcm_find(h.last, item, SDATE) != NULL,
		    "an empty SPS sequence is expanded");
	}
	hits_free(&h);
}

static void
test_mpps(void)
{
	struct dcm *d;
	struct spool relay;
	char spooldir[600], name[SPOOL_NAME_MAX], *body = NULL;
	char ev[2048];

	d = mpps_ds("COMPLETED", "A1");
	is_long(worklist_mpps_create(w, "1.2.3.1", d, &e), 0x0106,
	    "N-CREATE with status COMPLETED: 0x0106");
	dcm_free(d);
	d = mpps_ds("IN PROGRESS", "A1");
	is_long(worklist_mpps_create(w, "1.2.3.1", d, &e), 0,
	    "N-CREATE IN PROGRESS succeeds");
	is_str(status_of("A1"), "IN PROGRESS", "the item is IN PROGRESS");
	is_long(worklist_mpps_create(w, "1.2.3.1", d, &e), 0x0111,
	    "N-CREATE of a known instance: 0x0111");
	dcm_free(d);
	d = mpps_ds("COMPLETED", NULL);
	is_long(worklist_mpps_set(w, "9.9.9", d, &e), 0x0112,
	    "N-SET of an unknown instance: 0x0112");
	dcm_free(d);
	d = mpps_ds("SCHEDULED", NULL);
	is_long(worklist_mpps_set(w, "1.2.3.1", d, &e), 0x0106,
	    "N-SET to an invalid status: 0x0106");
	dcm_free(d);
	/* Reopen: the state lives in the database. */
	worklist_close(w);
	w = NULL;
	snprintf(spooldir, sizeof spooldir, "%s", getenv("WL_DB"));
	if (worklist_open(&w, spooldir, &e) == -1)
		diag("reopen: %s", e.msg);
	d = mpps_ds("COMPLETED", NULL);
	is_long(worklist_mpps_set(w, "1.2.3.1", d, &e), 0,
	    "N-SET COMPLETED after a reopen succeeds");
	is_str(status_of("A1"), "COMPLETED", "the item is COMPLETED");
	is_long(worklist_mpps_set(w, "1.2.3.1", d, &e), 0x0110,
	    "N-SET on a COMPLETED step: 0x0110");
	ok(strstr(e.msg, "COMPLETED") != NULL, "with a comment: %s", e.msg);
	dcm_free(d);
	check("COMPLETED items are not offered",
	    (struct kv[]){ { ACC, "" }, { 0, 0 } }, "A2,A3,A4");

	snprintf(spooldir, sizeof spooldir, "%s/relay", getenv("WL_DIR"));
	if (spool_open(&relay, spooldir, 1, &e) == -1)
		diag("spool: %s", e.msg);
	is_long(worklist_outbox_drain(w, &relay, &e), 2,
	    "two events drained to the relay spool");
	is_long(worklist_outbox_drain(w, &relay, &e), 0,
	    "a second drain sends nothing");
	is_long(spool_claim(&relay, &name, 1, &e), 1, "a relay job waits");
	is_str(name, "mpps-1", "named by the outbox row");
	if (spool_read(&relay, name, &body, &e) == 0 &&
	    spool_job_get(body, "event", ev, sizeof ev) == 0) {
		ok(strstr(body, "kind=mpps.status_update\n") == body,
		    "job kind is mpps.status_update");
		ok(strstr(ev, "\"event_type\":\"mpps.status_update\"") &&
		    strstr(ev, "\"action_id\":\"m1\"") &&
		    strstr(ev, "\"status\":\"IN PROGRESS\"") &&
		    strstr(ev, "\"mpps_instance_uid\":\"1.2.3.1\"") &&
		    strstr(ev, "\"source_system\":\"gateway-mwl\"") &&
		    strstr(ev, "\"schema_version\":1"),
		    "event JSON as PROTOCOL.md: %s", ev);
	} else {
		ok(0, "job kind is mpps.status_update");
		ok(0, "event JSON as PROTOCOL.md");
	}
	free(body);
	spool_close(&relay);
}

static void
test_items(void)
{
	struct worklist_item it = { 0 };

	snprintf(it.accession_number, WL_FIELD, "A2");
	snprintf(it.source_message_id, WL_FIELD, "new");
	is_long(worklist_create(w, &it, NULL, &e), WL_EXISTS,
	    "a repeated accession number: exists");
	snprintf(it.accession_number, WL_FIELD, "A9");
	snprintf(it.source_message_id, WL_FIELD, "m2");
	is_long(worklist_create(w, &it, NULL, &e), WL_EXISTS,
	    "a repeated source_message_id: exists");
	is_long(worklist_get(w, "A9", &it, &e), WL_NOT_FOUND,
	    "and nothing was created");
	is_long(worklist_start_by_image(w, "A3", &e), WL_UPDATED,
	    "first image starts a SCHEDULED item");
	is_long(worklist_start_by_image(w, "A3", &e), WL_NOT_FOUND,
	    "a second image changes nothing");
	is_long(worklist_set_status(w, "A4", "DISCONTINUED", &e), WL_UPDATED,
	    "set_status DISCONTINUED");
	is_long(worklist_set_status(w, "ZZ", "COMPLETED", &e), WL_NOT_FOUND,
	    "set_status of an unknown item: not found");
	is_long(worklist_set_status(w, "A2", "DONE", &e), -1,
	    "set_status with an invalid status is an error");
	is_long(worklist_reset(w, "20261128", &e), 3,
	    "reset removes finished and past items");
	is_str(status_of("A3"), "IN PROGRESS", "today's item in progress stays");
	is_str(status_of("A2"), "(none)", "yesterday's item is gone");
}

/* utc DATE TIME in the zone now set: "DATE TIME". */
static const char *
local(const char *d, const char *t)
{
	static char out[2 * WL_FIELD + 2];
	char date[WL_FIELD], time[WL_FIELD];

	if (worklist_utc_to_local(d, t, date, time) == -1)
		return "invalid";
	snprintf(out, sizeof out, "%s %s", date, time);
	return out;
}

static const char *
utc(const char *d, const char *t)
{
	static char out[2 * WL_FIELD + 2];
	char date[WL_FIELD], time[WL_FIELD];

	if (worklist_local_to_utc(d, t, date, time, &e) == -1)
		return "refused";
	snprintf(out, sizeof out, "%s %s", date, time);
	return out;
}

static void
zone(const char *name)
{
	struct worklist_site site;

	setenv("WORKLIST_TIMEZONE", name, 1);
	if (worklist_site_init(&site, &e) == -1)
		diag("zone %s: %s", name, e.msg);
}

static void
test_time(void)
{
	struct worklist_site site;

	ok(worklist_valid_date("20240229") && !worklist_valid_date("20230229")
	    && !worklist_valid_date("20260431") &&
	    !worklist_valid_date("2026070") && !worklist_valid_date("20261301"),
	    "dates are calendar dates (29 February of leap years only)");
	ok(worklist_valid_time("23") && worklist_valid_time("2359") &&
	    worklist_valid_time("235959.999999") && !worklist_valid_time("24")
	    && !worklist_valid_time("2360") && !worklist_valid_time("1") &&
	    !worklist_valid_time("12345") && !worklist_valid_time("120000.") &&
	    !worklist_valid_time("1200.5"), "times are within a day: HH, "
	    "HHMM, HHMMSS, a fraction only after seconds");

	zone("Europe/London");
	is_str(local("20260707", "2330"), "20260708 0030",
	    "London, summer: 23:30 UTC is 00:30 the next day");
	is_str(local("20260707", "23"), "20260708 00",
	    "an HH time stays HH");
	is_str(local("20260707", "233000.25"), "20260708 003000.25",
	    "a fraction is kept");
	is_str(local("20260329", "0059"), "20260329 0059",
	    "29 March: 00:59 UTC is still GMT");
	is_str(local("20260329", "0100"), "20260329 0200",
	    "29 March: 01:00 UTC is 02:00 BST");
	is_str(local("20261025", "0030"), "20261025 0130",
	    "25 October: 00:30 UTC is 01:30 BST");
	is_str(local("20261025", "0130"), "20261025 0130",
	    "25 October: 01:30 UTC is 01:30 GMT");
	is_str(local("20261399", "0800"), "invalid",
	    "an invalid stored date is not converted");
	is_str(utc("20260329", "0130"), "refused",
	    "local 01:30 on 29 March does not exist");
	ok(strstr(e.msg, "clocks go forward") != NULL, "... said: %s", e.msg);
	is_str(utc("20261025", "0130"), "20261025 0030",
	    "local 01:30 on 25 October is taken the first time (BST)");
	is_str(utc("20260708", "0015"), "20260707 2315",
	    "local 00:15 on 8 July is 23:15 UTC the day before");
	is_str(utc("20261231", "235959"), "20261231 235959",
	    "in winter local is UTC");

	zone("Asia/Kolkata");
	is_str(local("20260707", "08"), "20260707 1330",
	    "a half-hour offset widens HH to HHMM");
	is_str(utc("20260707", "1330"), "20260707 0800",
	    "and back");
	zone("UTC");
	is_str(local("20260707", "2330"), "20260707 2330",
	    "UTC: the cloud's time unchanged");

	setenv("WORKLIST_TIMEZONE", "Nowhere/Town", 1);
	is_long(worklist_site_init(&site, &e), -1,
	    "a zone the tz database does not have is refused");
	ok(strstr(e.msg, "WORKLIST_TIMEZONE") != NULL, "... naming the "
	    "setting: %s", e.msg);
	setenv("WORKLIST_TIMEZONE", "UTC", 1);
	setenv("WORKLIST_SHOW_FINISHED", "2", 1);
	is_long(worklist_site_init(&site, &e), -1,
	    "WORKLIST_SHOW_FINISHED=2 is refused");
	unsetenv("WORKLIST_SHOW_FINISHED");
}

static void
test_replies(void)
{
	struct worklist_item a = { 0 }, b = { 0 };
	char out[256];

	snprintf(a.patient_name, WL_FIELD, "DOE^JANE");
	snprintf(b.patient_name, WL_FIELD, "DOE^JOAN");
	snprintf(a.scheduled_station_aet, WL_FIELD, "MAMMO1");
	snprintf(a.status, WL_FIELD, "COMPLETED");	/* not content */
	is_long(worklist_action_diff(&a, &b, out, sizeof out), 2,
	    "two content fields differ");
	is_str(out, "participant.name, scheduled.station_aet",
	    "... named as the action names them");
	snprintf(b.patient_name, WL_FIELD, "DOE^JANE");
	snprintf(b.scheduled_station_aet, WL_FIELD, "MAMMO1");
	snprintf(a.scheduled_time, WL_FIELD, "0830");
	snprintf(b.scheduled_time, WL_FIELD, "083000.0");
	is_long(worklist_action_diff(&a, &b, out, sizeof out), 0,
	    "times are compared by value: 0830 is 083000.0");
	snprintf(b.scheduled_time, WL_FIELD, "083001");
	is_long(worklist_action_diff(&a, &b, out, sizeof out), 1,
	    "... and 083001 is another time");
	is_long(worklist_transition(w, "A3", "SCHEDULED", &e), WL_REFUSED,
	    "no move goes back to SCHEDULED");
	is_long(worklist_transition(w, "A3", "COMPLETED", &e), WL_UPDATED,
	    "IN PROGRESS to COMPLETED");
	is_long(worklist_transition(w, "A3", "DISCONTINUED", &e), WL_NOT_FOUND,
	    "a COMPLETED item moves no further");
}

int
main(int argc, char **argv)
{
	char db[512];

	if (argc != 2) {
		fprintf(stderr, "usage: worklist_test DIR\n");
		return 2;
	}
	snprintf(db, sizeof db, "%s/worklist.db", argv[1]);
	setenv("WL_DB", db, 1);
	setenv("WL_DIR", argv[1], 1);
	if (!ok(worklist_open(&w, db, &e) == 0, "open %s", db))
		diag("%s", e.msg);
	add("A1", "SMITH^JANE", "9990000001", "20261127", "093000", "MG",
	    "MAMMO1", "m1");
	add("A2", "MÜLLER^ANNA", "9990000002", "20261127", "110000", "MG",
	    "MAMMO1", "m2");
	add("A3", "SMITH^JOAN", "9990000003", "20261128", "091500", "MG",
	    "MAMMO2", "m3");
	add("A4", "O'BRIEN^MARY", "9990000004", "20261128", "140000", "CR",
	    "MAMMO1", "m4");
	test_matching();
	test_mpps();
	test_items();
	test_replies();
	test_time();
	worklist_close(w);
	for (int i = 0; i < nbufs; i++)
		free(bufs[i]);
	return tap_done();
}
