/*
 * qr_find_test: C-FIND matching and retrieval keys (lib/qr/qr_find.c) over a
 * real pacs.db filled through lib/archive/pacs.  Usage: qr_find_test DIR.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "archive/archive.h"
#include "qr/qr.h"
#include "tap.h"

#define LEVEL	DCM_TAG(0x0008, 0x0052)
#define RAET	DCM_TAG(0x0008, 0x0054)
#define PNAME	DCM_TAG(0x0010, 0x0010)
#define PID	DCM_TAG(0x0010, 0x0020)
#define PBIRTH	DCM_TAG(0x0010, 0x0030)
#define PSEX	DCM_TAG(0x0010, 0x0040)
#define NSTUDIES DCM_TAG(0x0020, 0x1200)
#define NPSERIES DCM_TAG(0x0020, 0x1202)
#define NPINST	DCM_TAG(0x0020, 0x1204)
#define SUID	DCM_TAG(0x0020, 0x000d)
#define SDATE	DCM_TAG(0x0008, 0x0020)
#define STIME	DCM_TAG(0x0008, 0x0030)
#define ACC	DCM_TAG(0x0008, 0x0050)
#define MODS	DCM_TAG(0x0008, 0x0061)
#define NSSERIES DCM_TAG(0x0020, 0x1206)
#define NSINST	DCM_TAG(0x0020, 0x1208)
#define REFPHYS	DCM_TAG(0x0008, 0x0090)
#define EUID	DCM_TAG(0x0020, 0x000e)
#define MOD	DCM_TAG(0x0008, 0x0060)
#define SERNO	DCM_TAG(0x0020, 0x0011)
#define NEINST	DCM_TAG(0x0020, 0x1209)
#define IUID	DCM_TAG(0x0008, 0x0018)
#define CUID	DCM_TAG(0x0008, 0x0016)
#define INO	DCM_TAG(0x0020, 0x0013)
#define ROWS	DCM_TAG(0x0028, 0x0010)
#define ITYPE	DCM_TAG(0x0008, 0x0008)
#define VIEW	DCM_TAG(0x0018, 0x5101)
#define REFSEQ	DCM_TAG(0x0008, 0x1110)

#define MG	"1.2.840.10008.5.1.4.1.1.1.2"
#define SRC	"1.2.840.10008.5.1.4.1.1.88.22"

static sqlite3 *db;
static struct err e;

/* One instance: patient, study, series and instance keys. */
struct row {
	const char *pid, *pname, *birth, *sex;
	const char *suid, *sdate, *stime, *acc;
	const char *euid, *mod, *serno;
	const char *iuid, *cuid, *ino, *rows, *itype;
};

static const struct row rows[] = {
	{ "NHS001", "SMITH^JANE", "19600102", "F", "1.2.9.1", "20240110",
	  "093000", "ACC1", "1.2.9.1.1", "MG", "1", "1.2.9.1.1.1", MG, "1",
	  "100", "ORIGINAL\\PRIMARY" },
	{ "NHS001", "SMITH^JANE", "19600102", "F", "1.2.9.1", "20240110",
	  "093000", "ACC1", "1.2.9.1.1", "MG", "1", "1.2.9.1.1.2", MG, "2",
	  "200", "DERIVED\\PRIMARY" },
	{ "NHS001", "SMITH^JANE", "19600102", "F", "1.2.9.1", "20240110",
	  "093000", "ACC1", "1.2.9.1.2", "MG", "2", "1.2.9.1.2.1", MG, "1",
	  "100", "ORIGINAL\\PRIMARY" },
	{ "NHS001", "SMITH^JANE", "19600102", "F", "1.2.9.2", "20240215",
	  "140000", "ACC2", "1.2.9.2.1", "MG", "1", "1.2.9.2.1.1", MG, "1",
	  "100", "" },
	{ "NHS001", "SMITH^JANE", "19600102", "F", "1.2.9.2", "20240215",
	  "140000", "ACC2", "1.2.9.2.2", "SR", "2", "1.2.9.2.2.1", SRC, "1",
	  "", "" },
	{ "NHS002", "Smith^John", "19700304", "M", "1.2.9.3", "20240110",
	  "170000", "ACC3", "1.2.9.3.1", "MG", "1", "1.2.9.3.1.1", MG, "1",
	  "100", "" },
	{ "NHS003", "M\xc3\x9cLLER^J\xc3\xbcrgen", "19551231", "M", "1.2.9.4",
	  "20231231", "235959", "ACC4", "1.2.9.4.1", "MG", "1", "1.2.9.4.1.1",
	  MG, "1", "100", "" },
	{ "NHS004", "\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e",
	  "19800101", "F", "1.2.9.5", "20240301", "080000", "ACC5",
	  "1.2.9.5.1", "MG", "1", "1.2.9.5.1.1", MG, "1", "100", "" },
	{ "NHS005", "D[X]^Y", "", "", "1.2.9.6", "20240401", "", "",
	  "1.2.9.6.1", "MG", "1", "1.2.9.6.1.1", MG, "1", "100", "" },
};
#define NROWS	((int)(sizeof rows / sizeof rows[0]))

static void
put(char *dst, const char *src)
{
	snprintf(dst, PACS_LO, "%s", src);
}

static int
fill(const char *dir)
{
	struct pacs_index *ix;
	char path[4096];

	snprintf(path, sizeof path, "%s/pacs.db", dir);
	if (db_open(&db, path, &e) == -1 || pacs_index_open(&ix, db, &e) == -1)
		return -1;
	for (int i = 0; i < NROWS; i++) {
		const struct row *r = &rows[i];
		struct pacs_attrs a;
		struct pacs_receipt rc = { 0 };
		char hash[65], key[32];

		memset(&a, 0, sizeof a);
		put(a.patient_id, r->pid);
		put(a.patient_name, r->pname);
		put(a.birth_date, r->birth);
		put(a.sex, r->sex);
		put(a.study_instance_uid, r->suid);
		put(a.study_date, r->sdate);
		put(a.study_time, r->stime);
		put(a.accession_number, r->acc);
		put(a.series_instance_uid, r->euid);
		put(a.modality, r->mod);
		put(a.series_number, r->serno);
		put(a.sop_instance_uid, r->iuid);
		put(a.sop_class_uid, r->cuid);
		put(a.instance_number, r->ino);
		put(a.rows, r->rows);
		put(a.image_type, r->itype);
		put(a.view_position, "CC");
		put(a.transfer_syntax_uid, DCM_TS_EXPLICIT_LE);
		snprintf(hash, sizeof hash, "%064d", i + 1);
		snprintf(key, sizeof key, "r%d", i);
		rc.hash = hash;
		rc.size = 1000 + (uint64_t)i;
		rc.receipt_key = key;
		rc.received_at = "2024-01-10T09:30:00.000Z";
		if (pacs_index_object(ix, &a, &rc, &e) == -1)
			return -1;
	}
	pacs_index_close(ix);
	return 0;
}

/* --- queries --- */

static uint8_t *bufs[512];
static int nbufs;

struct kv {
	uint32_t tag;
	const char *v;		/* NULL or "": an empty (return) key */
};

static struct dcm *
query_in(const char *charset, const char *level, const struct kv *kv)
{
	struct dcm_builder *b = dcm_build_new();
	struct dcm *d = NULL;
	size_t len;

	if (level != NULL)
		dcm_build_string(b, LEVEL, NULL, level, &e);
	for (; kv != NULL && kv->tag != 0; kv++) {
		if (kv->tag == REFSEQ) {
			dcm_build_sequence_begin(b, REFSEQ, &e);
			dcm_build_sequence_end(b, &e);
		} else if (kv->v == NULL || *kv->v == '\0')
			dcm_build_empty(b, kv->tag, NULL, &e);
		else if (kv->tag == ROWS)	/* US: binary, as findscu */
			dcm_build_u16(b, kv->tag, (uint16_t)atoi(kv->v), &e);
		else
			dcm_build_string(b, kv->tag, NULL, kv->v, &e);
	}
	if (dcm_build_encode(b, DCM_TS_EXPLICIT_LE, charset, &bufs[nbufs],
	    &len, &e) == -1 || dcm_parse_dataset(bufs[nbufs], len,
	    DCM_TS_EXPLICIT_LE, 0, &d, &e) == -1)
		diag("encode: %s", e.msg);
	nbufs++;
	dcm_build_free(b);
	return d;
}

/* What came back: each response re-parsed, with its charset. */
struct result {
	int n, stop_after;
	struct dcm *rsp[32];
	const char *charset[32];
};

static int
collect(void *arg, struct dcm_builder *b, const char *charset)
{
	struct result *r = arg;
	size_t len;

	if (r->n < 32) {
		if (dcm_build_encode(b, DCM_TS_EXPLICIT_LE, charset,
		    &bufs[nbufs], &len, &e) == -1 ||
		    dcm_parse_dataset(bufs[nbufs], len, DCM_TS_EXPLICIT_LE, 0,
		    &r->rsp[r->n], &e) == -1)
			diag("response: %s", e.msg);
		nbufs++;
		r->charset[r->n] = charset;
	}
	r->n++;
	return r->stop_after != 0 && r->n >= r->stop_after;
}

static void
result_free(struct result *r)
{
	for (int i = 0; i < r->n && i < 32; i++)
		dcm_free(r->rsp[i]);
	memset(r, 0, sizeof *r);
}

static struct result res;
static int last_rc;

/* Run a query; the count of matches (or -1). */
static int
run_with(enum qr_root root, const char *charset, const char *level,
    const struct kv *kv, const struct qr_find_options *opt)
{
	struct dcm *q = query_in(charset, level, kv);

	result_free(&res);
	memset(&e, 0, sizeof e);
	last_rc = qr_find_with(db, root, q, opt, collect, &res, &e);
	dcm_free(q);
	if (last_rc >= 0 && last_rc != res.n)
		diag("returned %d but called fn %d times", last_rc, res.n);
	return last_rc;
}

static int
run(enum qr_root root, const char *level, const struct kv *kv)
{
	return run_with(root, NULL, level, kv, NULL);
}

/* Values of tag in response i, joined by '\\' ("" when empty,
 * "(absent)"). */
static const char *
val(int i, uint32_t tag)
{
	static char out[8][512];
	static int k;
	char *o = out[k++ % 8], v[256];
	const struct dcm_elem *el;
	int vm;

	if (i >= res.n || (el = dcm_find(res.rsp[i], NULL, tag)) == NULL)
		return "(absent)";
	o[0] = '\0';
	vm = dcm_vm(res.rsp[i], el);
	for (int j = 0; j < vm; j++)
		if (dcm_get_string(res.rsp[i], NULL, tag, j, v, sizeof v,
		    NULL) >= 0)
			snprintf(o + strlen(o), 512 - strlen(o), "%s%s",
			    j > 0 ? "\\" : "", v);
	return o;
}

/* 1 when some response has tag == v. */
static int
any(uint32_t tag, const char *v)
{
	for (int i = 0; i < res.n; i++)
		if (strcmp(val(i, tag), v) == 0)
			return 1;
	return 0;
}

#define P	QR_ROOT_PATIENT
#define S	QR_ROOT_STUDY

static void
levels_and_bad_input(void)
{
	ok(run(P, NULL, (struct kv[]){ { PID, "" }, { 0, 0 } }) == -1 &&
	    e.code == QR_E_LEVEL, "no Query/Retrieve Level: QR_E_LEVEL (%s)",
	    e.msg);
	ok(run(P, "FOO", (struct kv[]){ { PID, "" }, { 0, 0 } }) == -1 &&
	    e.code == QR_E_LEVEL, "unknown level: QR_E_LEVEL (%s)", e.msg);
	ok(run(S, "PATIENT", (struct kv[]){ { PID, "" }, { 0, 0 } }) == -1 &&
	    e.code == QR_E_LEVEL, "PATIENT in Study Root: QR_E_LEVEL (%s)",
	    e.msg);
	ok(run(S, "STUDY", (struct kv[]){ { SDATE, "2024011" }, { 0, 0 } }) ==
	    -1 && e.code == QR_E_IDENTIFIER, "a malformed date: "
	    "QR_E_IDENTIFIER (%s)", e.msg);
	ok(run(S, "STUDY", (struct kv[]){ { SDATE, "20240101-20240131-" },
	    { 0, 0 } }) == -1 && e.code == QR_E_IDENTIFIER,
	    "a range with two dashes: QR_E_IDENTIFIER");
	ok(run(S, "STUDY", (struct kv[]){ { STIME, "9h30" }, { 0, 0 } }) ==
	    -1 && e.code == QR_E_IDENTIFIER, "a malformed time: "
	    "QR_E_IDENTIFIER");
	ok(run(S, "STUDY", (struct kv[]){ { SUID, "1.2.9.*" }, { 0, 0 } }) ==
	    -1 && e.code == QR_E_IDENTIFIER && strstr(e.msg, "0020,000D"),
	    "a UID with a wildcard: QR_E_IDENTIFIER naming the tag (%s)",
	    e.msg);
	ok(run(S, "SERIES", (struct kv[]){ { SUID, "1.2.9.1" }, { SERNO, "x" },
	    { 0, 0 } }) == -1 && e.code == QR_E_IDENTIFIER,
	    "a Series Number that is not a number: QR_E_IDENTIFIER");
	ok(run(P, "PATIENT", (struct kv[]){ { PBIRTH, "1960*" }, { 0, 0 } }) ==
	    -1 && e.code == QR_E_IDENTIFIER && strstr(e.msg, "1960") == NULL,
	    "a wildcard birth date: QR_E_IDENTIFIER, the value not in the "
	    "message");
}

static void
patient_level(void)
{
	is_long(run(P, "PATIENT", (struct kv[]){ { PID, "" }, { PNAME, "" },
	    { 0, 0 } }), 5, "PATIENT, universal: every patient");
	ok(any(LEVEL, "PATIENT") && res.n > 0 &&
	    strcmp(val(0, LEVEL), "PATIENT") == 0,
	    "every response carries (0008,0052) PATIENT");
	is_long(run(P, "PATIENT", (struct kv[]){ { PID, "NHS001" },
	    { NSTUDIES, "" }, { NPSERIES, "" }, { NPINST, "" }, { PSEX, "" },
	    { 0, 0 } }), 1, "PATIENT by Patient ID: one");
	is_str(val(0, NSTUDIES), "2", "Number of Patient Related Studies");
	is_str(val(0, NPSERIES), "4", "Number of Patient Related Series");
	is_str(val(0, NPINST), "5", "Number of Patient Related Instances");
	is_str(val(0, PSEX), "F", "Patient's Sex returned");
	is_long(run(P, "PATIENT", (struct kv[]){ { PNAME, "SMITH*" },
	    { 0, 0 } }), 1, "Patient's Name wildcard is case sensitive");
	is_long(run(P, "PATIENT", (struct kv[]){ { PNAME, "S*^J*" },
	    { 0, 0 } }), 2, "'*' wildcards in the middle and at the end");
	is_long(run(P, "PATIENT", (struct kv[]){ { PNAME, "?MITH^JANE" },
	    { 0, 0 } }), 1, "'?' matches one character");
	is_long(run(P, "PATIENT", (struct kv[]){ { PNAME, "M?LLER*" },
	    { 0, 0 } }), 1, "'?' matches one non-ASCII character (two bytes)");
	is_long(run(P, "PATIENT", (struct kv[]){ { PNAME, "SMITH^JAN" },
	    { 0, 0 } }), 0, "single value matching is whole-value");
	is_long(run(P, "PATIENT", (struct kv[]){ { PNAME, "D[X]*" },
	    { 0, 0 } }), 1, "'[' is a literal character, not a GLOB class");
	is_long(run(P, "PATIENT", (struct kv[]){ { PBIRTH, "19600101-19651231" },
	    { 0, 0 } }), 1, "birth date range");
	is_long(run(P, "PATIENT", (struct kv[]){ { PSEX, "M" }, { 0, 0 } }), 2,
	    "Patient's Sex single value");
	is_long(run(P, "PATIENT", (struct kv[]){ { PSEX, "*" }, { 0, 0 } }), 5,
	    "'*' alone is universal: empty stored values match too");
	is_long(run(P, "PATIENT", (struct kv[]){ { PSEX, "?" }, { 0, 0 } }), 4,
	    "'?' needs a character: an empty stored value does not match");
}

static void
study_level(void)
{
	struct qr_find_options opt = { "GW_QR", 0 };
	struct qr_find_options combined = { NULL, 1 };

	is_long(run(P, "STUDY", (struct kv[]){ { PID, "NHS001" }, { SUID, "" },
	    { 0, 0 } }), 2, "Patient Root STUDY under one patient");
	ok(any(PID, "NHS001") && any(SUID, "1.2.9.1") && any(SUID, "1.2.9.2"),
	    "... with Patient ID and both Study Instance UIDs");
	is_long(run(P, "STUDY", (struct kv[]){ { PID, "NHS001" },
	    { SDATE, "20240110" }, { 0, 0 } }), 1, "... and a study date");
	is_long(run(P, "STUDY", (struct kv[]){ { SDATE, "20240110" },
	    { 0, 0 } }), 2, "Patient Root STUDY without Patient ID: any "
	    "patient (lenient)");
	is_long(run(S, "STUDY", (struct kv[]){ { SUID, "" }, { 0, 0 } }), 6,
	    "Study Root STUDY, universal: every study");
	ok(res.n > 0 && strcmp(val(0, LEVEL), "STUDY") == 0 &&
	    strcmp(val(0, PID), "(absent)") == 0, "Study Root responses: "
	    "level STUDY, no Patient ID unless asked");
	is_long(run(S, "STUDY", (struct kv[]){ { SDATE, "20240101-20240131" },
	    { 0, 0 } }), 2, "date range A-B");
	ok(any(SUID, "1.2.9.1") && any(SUID, "1.2.9.3"),
	    "... the two January studies, Study Instance UID added unasked");
	is_long(run(S, "STUDY", (struct kv[]){ { SDATE, "-20231231" },
	    { 0, 0 } }), 1, "date range -B");
	is_long(run(S, "STUDY", (struct kv[]){ { SDATE, "20240301-" },
	    { 0, 0 } }), 2, "date range A-");
	is_long(run(S, "STUDY", (struct kv[]){ { SDATE, "2024.01.10" },
	    { 0, 0 } }), 2, "an old-style date key YYYY.MM.DD");
	is_long(run(S, "STUDY", (struct kv[]){ { STIME, "090000-100000" },
	    { 0, 0 } }), 1, "time range");
	is_long(run(S, "STUDY", (struct kv[]){ { STIME, "2359-" },
	    { 0, 0 } }), 1, "time range A- with HHMM precision");
	is_long(run(S, "STUDY", (struct kv[]){ { SDATE, "20240110-20240215" },
	    { STIME, "120000-150000" }, { 0, 0 } }), 1,
	    "StudyDate and StudyTime ranges are matched separately by default");
	ok(any(SUID, "1.2.9.2"), "... 20240215 14:00 alone");
	is_long(run_with(S, NULL, "STUDY", (struct kv[]){
	    { SDATE, "20240110-20240215" }, { STIME, "120000-150000" },
	    { 0, 0 } }, &combined), 2, "negotiated combined date-time "
	    "matching: one date-time range");
	ok(any(SUID, "1.2.9.2") && any(SUID, "1.2.9.3") &&
	    !any(SUID, "1.2.9.1"), "... 20240110 17:00 and 20240215 14:00 "
	    "in, 20240110 09:30 out");
	is_long(run(S, "STUDY", (struct kv[]){ { SDATE, "20240110" },
	    { STIME, "120000-150000" }, { 0, 0 } }), 0,
	    "a single date and a time range are matched separately");
	is_long(run(S, "STUDY", (struct kv[]){ { ACC, "ACC*" }, { 0, 0 } }), 5,
	    "Accession Number wildcard; an empty one does not match");
	is_long(run(S, "STUDY", (struct kv[]){ { PNAME, "SMITH^JANE" },
	    { PBIRTH, "" }, { 0, 0 } }), 2, "Study Root: patient keys match "
	    "at STUDY level");
	is_str(val(0, PBIRTH), "19600102", "... and are returned");
	is_long(run(S, "STUDY", (struct kv[]){ { MODS, "SR" }, { 0, 0 } }), 1,
	    "Modalities in Study: a study with an SR series");
	is_str(val(0, MODS), "MG\\SR", "... returns all its modalities");
	is_long(run(S, "STUDY", (struct kv[]){ { MODS, "MG\\CT" }, { 0, 0 } }),
	    6, "Modalities in Study with two values: either matches");
	is_long(run(S, "STUDY", (struct kv[]){ { SUID, "1.2.9.1\\1.2.9.3" },
	    { NSSERIES, "" }, { NSINST, "" }, { 0, 0 } }), 2, "list of UIDs");
	ok(res.n == 2 && ((strcmp(val(0, SUID), "1.2.9.1") == 0 &&
	    strcmp(val(0, NSSERIES), "2") == 0 &&
	    strcmp(val(0, NSINST), "3") == 0) ||
	    (strcmp(val(1, SUID), "1.2.9.1") == 0 &&
	    strcmp(val(1, NSSERIES), "2") == 0 &&
	    strcmp(val(1, NSINST), "3") == 0)),
	    "Number of Study Related Series (2) and Instances (3)");
	is_long(run_with(S, NULL, "STUDY", (struct kv[]){ { SUID, "1.2.9.1" },
	    { REFPHYS, "" }, { REFSEQ, NULL }, { 0, 0 } }, &opt), 1,
	    "a key the index lacks");
	is_str(val(0, REFPHYS), "", "... Referring Physician's Name comes "
	    "back empty, not invented");
	ok(res.n == 1 && dcm_find(res.rsp[0], NULL, REFSEQ) != NULL,
	    "... a sequence key comes back (empty)");
	is_str(val(0, RAET), "GW_QR", "Retrieve AE Title from the options, "
	    "unasked");
	is_long(run(S, "STUDY", (struct kv[]){ { REFPHYS, "NOBODY" },
	    { 0, 0 } }), 6, "a key the index lacks is not matched on (an "
	    "optional key the SCP does not match: universal)");
	is_str(val(0, REFPHYS), "", "... and comes back empty");
}

static void
series_image_level(void)
{
	is_long(run(S, "SERIES", (struct kv[]){ { SUID, "1.2.9.1" },
	    { MOD, "" }, { NEINST, "" }, { SERNO, "" }, { 0, 0 } }), 2,
	    "SERIES of one study");
	ok(any(EUID, "1.2.9.1.1") && any(EUID, "1.2.9.1.2") &&
	    strcmp(val(0, SUID), "1.2.9.1") == 0 &&
	    strcmp(val(0, LEVEL), "SERIES") == 0,
	    "... both series, with the study's UID and level SERIES");
	ok((strcmp(val(0, EUID), "1.2.9.1.1") == 0 ? strcmp(val(0, NEINST),
	    "2") : strcmp(val(1, NEINST), "2")) == 0,
	    "Number of Series Related Instances");
	is_long(run(S, "SERIES", (struct kv[]){ { SUID, "1.2.9.2" },
	    { MOD, "SR" }, { 0, 0 } }), 1, "Modality single value");
	is_long(run(S, "SERIES", (struct kv[]){ { SUID, "1.2.9.1" },
	    { SERNO, "2" }, { 0, 0 } }), 1, "Series Number as a number");
	is_long(run(S, "SERIES", (struct kv[]){ { SUID, "1.2.9.1" },
	    { SERNO, "02" }, { 0, 0 } }), 1, "... 02 is 2");
	is_long(run(S, "SERIES", (struct kv[]){ { SUID, "1.2.9.1" },
	    { PNAME, "NOBODY" }, { 0, 0 } }), 2, "a non-unique key above the "
	    "level is not matched (hierarchical)");
	is_str(val(0, PNAME), "SMITH^JANE", "... but returned filled");
	is_long(run(S, "SERIES", (struct kv[]){ { SUID, "1.2.9.1" },
	    { ACC, "" }, { ROWS, "" }, { 0, 0 } }), 2,
	    "a key below the level");
	is_str(val(0, ROWS), "", "... comes back empty");
	is_long(run(P, "SERIES", (struct kv[]){ { PID, "NHS002" },
	    { SUID, "1.2.9.1" }, { 0, 0 } }), 0, "Patient Root: the unique "
	    "keys above must all match");
	is_long(run(P, "IMAGE", (struct kv[]){ { PID, "NHS001" },
	    { SUID, "1.2.9.1" }, { EUID, "1.2.9.1.1" }, { INO, "" },
	    { ROWS, "" }, { CUID, "" }, { ITYPE, "" }, { VIEW, "" },
	    { 0, 0 } }), 2, "IMAGE of one series");
	ok(any(IUID, "1.2.9.1.1.1") && any(ROWS, "200") && any(CUID, MG) &&
	    any(VIEW, "CC") && strcmp(val(0, PID), "NHS001") == 0 &&
	    strcmp(val(0, EUID), "1.2.9.1.1") == 0,
	    "... Rows, SOP Class, View Position, and every unique key above");
	is_long(run(S, "IMAGE", (struct kv[]){ { SUID, "1.2.9.1" },
	    { EUID, "1.2.9.1.1" }, { INO, "2" }, { 0, 0 } }), 1,
	    "Instance Number single value");
	is_long(run(S, "IMAGE", (struct kv[]){ { SUID, "1.2.9.1" },
	    { EUID, "1.2.9.1.1" }, { ITYPE, "DERIVED" }, { 0, 0 } }), 1,
	    "Image Type: any of the stored values matches");
	is_long(run(S, "IMAGE", (struct kv[]){ { SUID, "1.2.9.2" },
	    { EUID, "" }, { CUID, SRC }, { 0, 0 } }), 1,
	    "SOP Class UID; the series UID left universal (lenient)");
	is_long(run(S, "IMAGE", (struct kv[]){ { ROWS, "100" }, { 0, 0 } }), 7,
	    "Rows (US) single value");
}

static void
charsets(void)
{
	is_long(run_with(P, "ISO_IR 100", "PATIENT", (struct kv[]){
	    { PNAME, "M\xc3\x9cLLER*" }, { 0, 0 } }, NULL), 1,
	    "a Latin-1 query matches the UTF-8 index");
	ok(res.n == 1 && res.charset[0] != NULL &&
	    strcmp(res.charset[0], "ISO_IR 100") == 0,
	    "... answered in ISO_IR 100, the query's");
	is_str(val(0, PNAME), "M\xc3\x9cLLER^J\xc3\xbcrgen",
	    "... the name survives the round trip");
	is_long(run_with(P, "ISO_IR 192", "PATIENT", (struct kv[]){
	    { PNAME, "M\xc3\x9cLLER*" }, { 0, 0 } }, NULL), 1,
	    "a UTF-8 query");
	ok(res.n == 1 && res.charset[0] != NULL &&
	    strcmp(res.charset[0], "ISO_IR 192") == 0,
	    "... answered in ISO_IR 192");
	is_long(run_with(P, "ISO_IR 100", "PATIENT", (struct kv[]){
	    { PID, "NHS004" }, { PNAME, "" }, { 0, 0 } }, NULL), 1,
	    "a Latin-1 query finding a Japanese name");
	ok(res.n == 1 && res.charset[0] != NULL &&
	    strcmp(res.charset[0], "ISO_IR 192") == 0,
	    "... answered in ISO_IR 192: Latin-1 cannot hold it");
	is_str(val(0, PNAME), "\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83"
	    "\x8e", "... the name intact");
	is_long(run_with(P, "ISO_IR 100", "PATIENT", (struct kv[]){
	    { PID, "NHS002" }, { PNAME, "" }, { 0, 0 } }, NULL), 1,
	    "an ASCII answer");
	ok(res.n == 1 && res.charset[0] == NULL,
	    "... declares no character set");
}

static void
stop_early(void)
{
	struct dcm *q = query_in(NULL, "STUDY", (struct kv[]){ { SUID, "" },
	    { 0, 0 } });

	result_free(&res);
	res.stop_after = 2;
	is_long(qr_find(db, S, q, collect, &res, &e), 2,
	    "fn returning non-zero stops the find");
	dcm_free(q);
}

/* --- retrieval --- */

struct got {
	int n;
	char uids[16][PACS_UI];
	struct qr_instance first;
};

static int
take(void *arg, const struct qr_instance *in)
{
	struct got *g = arg;

	if (g->n == 0)
		g->first = *in;
	if (g->n < 16)
		snprintf(g->uids[g->n], PACS_UI, "%s", in->sop_instance_uid);
	g->n++;
	return 0;
}

static int
retrieve(enum qr_root root, const char *level, const struct kv *kv,
    struct got *g)
{
	struct dcm *q = query_in(NULL, level, kv);
	int n;

	memset(g, 0, sizeof *g);
	memset(&e, 0, sizeof e);
	n = qr_instances(db, root, q, take, g, &e);
	dcm_free(q);
	return n;
}

static void
retrieval(void)
{
	struct got g;

	is_long(retrieve(S, "STUDY", (struct kv[]){ { SUID, "1.2.9.1" },
	    { 0, 0 } }, &g), 3, "retrieve a study: its three instances");
	ok(g.n == 3 && strcmp(g.uids[0], "1.2.9.1.1.1") == 0 &&
	    strcmp(g.uids[1], "1.2.9.1.1.2") == 0 &&
	    strcmp(g.uids[2], "1.2.9.1.2.1") == 0,
	    "... in series and instance-number order");
	ok(strcmp(g.first.sop_class_uid, MG) == 0 &&
	    strcmp(g.first.transfer_syntax_uid, DCM_TS_EXPLICIT_LE) == 0 &&
	    strcmp(g.first.study_instance_uid, "1.2.9.1") == 0 &&
	    strcmp(g.first.series_instance_uid, "1.2.9.1.1") == 0 &&
	    strlen(g.first.hash) == 64 && g.first.size == 1000,
	    "... each with class, syntax, UIDs, object hash and size");
	ok(!g.first.purged, "... and held (not purged)");
	if (db_exec(db, "UPDATE instances SET purged_at = '2024-06-01' WHERE "
	    "sop_instance_uid = '1.2.9.1.1.1'", &e) == -1)
		diag("purge: %s", e.msg);
	is_long(retrieve(S, "STUDY", (struct kv[]){ { SUID, "1.2.9.1" },
	    { 0, 0 } }, &g), 3, "a purged instance is still named");
	ok(g.first.purged, "... marked purged, for the retrieval to count "
	    "as failed");
	is_long(retrieve(P, "PATIENT", (struct kv[]){ { PID, "NHS001" },
	    { 0, 0 } }, &g), 5, "retrieve a patient");
	is_long(retrieve(S, "IMAGE", (struct kv[]){ { SUID, "1.2.9.1" },
	    { EUID, "1.2.9.1.1" }, { IUID, "1.2.9.1.1.2\\1.2.9.3.1.1" },
	    { 0, 0 } }, &g), 1, "a list of SOP Instance UIDs within a series");
	is_long(retrieve(S, "IMAGE", (struct kv[]){
	    { IUID, "1.2.9.1.1.2\\1.2.9.3.1.1" }, { 0, 0 } }, &g), 2,
	    "a list of SOP Instance UIDs alone (lenient above)");
	is_long(retrieve(S, "SERIES", (struct kv[]){ { SUID, "1.2.9.1" },
	    { MOD, "XX" }, { 0, 0 } }, &g), -1, "a series retrieval without "
	    "Series Instance UID");
	is_long(e.code, QR_E_IDENTIFIER, "... is QR_E_IDENTIFIER");
	is_long(retrieve(S, "STUDY", (struct kv[]){ { SUID, "" }, { 0, 0 } },
	    &g), -1, "an empty Study Instance UID retrieves nothing");
	is_long(retrieve(P, "PATIENT", (struct kv[]){ { PID, "NHS*" },
	    { 0, 0 } }, &g), -1, "a wildcard Patient ID retrieves nothing");
	is_long(e.code, QR_E_IDENTIFIER, "... QR_E_IDENTIFIER");
	is_long(retrieve(S, "PATIENT", (struct kv[]){ { PID, "NHS001" },
	    { 0, 0 } }, &g), -1, "PATIENT retrieval in Study Root");
	is_long(e.code, QR_E_LEVEL, "... QR_E_LEVEL");
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: qr_find_test DIR\n");
		return 2;
	}
	if (fill(argv[1]) == -1) {
		printf("1..0 # SKIP cannot fill pacs.db: %s\n", e.msg);
		return 1;
	}
	levels_and_bad_input();
	patient_level();
	study_level();
	series_image_level();
	charsets();
	stop_early();
	retrieval();
	result_free(&res);
	for (int i = 0; i < nbufs; i++)
		free(bufs[i]);
	db_close(db);
	return tap_done();
}
