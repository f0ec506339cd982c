/*
 * fuzz_worklist: libFuzzer target for the Modality Worklist C-FIND
 * identifier and its matching (lib/worklist/worklist_match via worklist_find), as
 * mwlscp runs them.  Byte 0 picks the transfer syntax the rest is read in
 * (odd: explicit VR little endian, even: implicit); a query that parses
 * is matched against a worklist.db in a temporary directory ($TMPDIR)
 * holding a few items (made once per process, removed at exit; one with no
 * station), and every response identifier is encoded and read back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dicom/dicom.h"
#include "worklist/worklist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct worklist *wl;
static char dir[4096];
static char db[sizeof dir + 16];

static void
cleanup(void)
{
	char path[sizeof db + 8];

	worklist_close(wl);
	unlink(db);
	snprintf(path, sizeof path, "%s-wal", db);
	unlink(path);
	snprintf(path, sizeof path, "%s-shm", db);
	unlink(path);
	rmdir(dir);
}

static void
add(const char *acc, const char *name, const char *id, const char *date,
    const char *time, const char *modality, const char *aet,
    const char *status)
{
	struct worklist_item it = { 0 };
	struct err e;

	snprintf(it.accession_number, WL_FIELD, "%s", acc);
	snprintf(it.patient_name, WL_FIELD, "%s", name);
	snprintf(it.patient_id, WL_FIELD, "%s", id);
	snprintf(it.birth_date, WL_FIELD, "19700101");
	snprintf(it.sex, WL_FIELD, "F");
	snprintf(it.scheduled_date, WL_FIELD, "%s", date);
	snprintf(it.scheduled_time, WL_FIELD, "%s", time);
	snprintf(it.modality, WL_FIELD, "%s", modality);
	snprintf(it.scheduled_station_aet, WL_FIELD, "%s", aet);
	snprintf(it.study_description, WL_FIELD, "Screening");
	snprintf(it.requested_procedure_id, WL_FIELD, "RP%s", acc);
	snprintf(it.source_message_id, WL_FIELD, "m-%s", acc);
	if (worklist_create(wl, &it, NULL, &e) == -1 ||
	    (status != NULL && worklist_set_status(wl, acc, status, &e) == -1)) {
		fprintf(stderr, "fuzz_worklist: %s\n", e.msg);
		abort();
	}
}

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");
	struct err e;

	snprintf(dir, sizeof dir, "%s/fuzz_worklist.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(db, sizeof db, "%s/worklist.db", dir);
	if (worklist_open(&wl, db, &e) == -1) {
		fprintf(stderr, "fuzz_worklist: %s\n", e.msg);
		abort();
	}
	atexit(cleanup);
	add("A1", "SMITH^JANE", "9990000001", "20261127", "093000", "MG",
	    "MAMMO1", NULL);
	add("A2", "M\xc3\x9cLLER^ANNA", "9990000002", "20261127", "110000",
	    "MG", "MAMMO1", WL_IN_PROGRESS);
	add("A3", "SMITH^JOAN=\xe5\xb1\xb1\xe7\x94\xb0", "9990000003",
	    "20261128", "091500.5", "MG", "MAMMO2", NULL);
	add("A4", "O'BRIEN^MARY", "9990000004", "20261128", "14", "CR",
	    "MAMMO1", WL_COMPLETED);
	add("A5", "NO^STATION", "9990000005", "20261127", "233000", "MG",
	    "", NULL);
}

/* Each response identifier: encoded in both syntaxes and read back. */
static int
response(void *arg, struct dcm_builder *b)
{
	static const char *const ts[] = { DCM_TS_EXPLICIT_LE,
	    DCM_TS_IMPLICIT_LE };
	struct dcm *d;
	struct err e;
	uint8_t *buf;
	size_t len, i;

	(void)arg;
	for (i = 0; i < 2; i++) {
		if (dcm_build_encode(b, ts[i], "ISO_IR 192", &buf, &len,
		    &e) == -1)
			continue;
		if (dcm_parse_dataset(buf, len, ts[i], 0, &d, &e) == -1)
			abort();	/* our own response must read back */
		dcm_free(d);
		free(buf);
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dcm *q;
	struct err e;

	if (wl == NULL)
		setup();
	if (size < 1)
		return 0;
	if (dcm_parse_dataset(data + 1, size - 1, data[0] & 1 ?
	    DCM_TS_EXPLICIT_LE : DCM_TS_IMPLICIT_LE, 0, &q, &e) == -1)
		return 0;
	e.msg[0] = '\0';
	if (worklist_find(wl, q, response, NULL, &e) == -1 && e.msg[0] == '\0')
		abort();	/* every failure explains itself */
	dcm_free(q);
	return 0;
}
