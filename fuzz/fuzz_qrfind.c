/*
 * fuzz_qrfind: libFuzzer target for qrscp's C-FIND identifier and
 * matching (lib/qr/qr_find: qr_find and qr_instances) as qrscp runs them.
 * Byte 0 chooses: bit 0 the transfer syntax the rest is read in (explicit
 * or implicit VR little endian), bit 1 the model (Patient or Study Root),
 * bit 2 a retrieval's instance list instead of a C-FIND.  The identifier
 * is matched against a pacs.db in a temporary directory ($TMPDIR) with a
 * few patients, studies, series and instances (made once per process,
 * removed at exit); every response is encoded and read back, and every
 * refusal must say why.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "dicom/dicom.h"
#include "qr/qr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sqlite3 *db;
static char dir[4096];
static char path[sizeof dir + 16];

static const char rows[] =
    "INSERT INTO patients (id, patient_id, patient_name, birth_date, sex)"
    " VALUES (1, '9990000001', 'SMITH^JANE', '19700101', 'F'),"
    " (2, '9990000002', 'M\xc3\x9cLLER^ANNA', '19650412', 'F');"
    "INSERT INTO studies (id, study_instance_uid, patient_ref,"
    " accession_number, study_id, study_date, study_time, study_description)"
    " VALUES (1, '2.25.1', 1, 'ACC1', 'S1', '20261127', '093000', 'Screening'),"
    " (2, '2.25.2', 2, 'ACC2', 'S2', '20261128', '141500.25', 'Assessment');"
    "INSERT INTO series (id, series_instance_uid, study_ref, modality,"
    " series_number, series_description) VALUES"
    " (1, '2.25.1.1', 1, 'MG', 1, 'L CC'), (2, '2.25.2.1', 2, 'MG', 1, NULL),"
    " (3, '2.25.2.2', 2, 'SR', 99, 'Dose');"
    "INSERT INTO objects (hash, size, storage_path, sop_instance_uid,"
    " transfer_syntax_uid, first_received_at) VALUES"
    " ('" "0000000000000000000000000000000000000000000000000000000000000001"
    "', 10, 'x', '2.25.1.1.1', '1.2.840.10008.1.2.1', '2026-11-27T09:30:00Z'),"
    " ('" "0000000000000000000000000000000000000000000000000000000000000002"
    "', 20, 'y', '2.25.2.1.1', '1.2.840.10008.1.2.4.90', '2026-11-28T14:15:00Z');"
    "INSERT INTO instances (sop_instance_uid, series_ref, object_hash,"
    " sop_class_uid, instance_number, view_position, laterality, rows,"
    " columns, received_at, indexed_at, purged_at) VALUES"
    " ('2.25.1.1.1', 1, '"
    "0000000000000000000000000000000000000000000000000000000000000001"
    "', '1.2.840.10008.5.1.4.1.1.1.2', 1, 'CC', 'L', 4, 4,"
    " '2026-11-27T09:30:00Z', '', NULL),"
    " ('2.25.2.1.1', 2, '"
    "0000000000000000000000000000000000000000000000000000000000000002"
    "', '1.2.840.10008.5.1.4.1.1.1.2', 1, 'MLO', 'R', 4, 4,"
    " '2026-11-28T14:15:00Z', '', '2026-12-01T00:00:00Z');";

static void
cleanup(void)
{
	char p[sizeof path + 8];

	db_close(db);
	unlink(path);
	snprintf(p, sizeof p, "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", path);
	unlink(p);
	rmdir(dir);
}

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");
	struct err e;

	snprintf(dir, sizeof dir, "%s/fuzz_qrfind.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof path, "%s/pacs.db", dir);
	if (db_open(&db, path, &e) == -1 ||
	    db_migrate(db, db_schema_pacs, &e) == -1 ||
	    db_exec(db, rows, &e) == -1) {
		fprintf(stderr, "fuzz_qrfind: %s\n", e.msg);
		abort();
	}
	atexit(cleanup);
}

/* Each response identifier: encoded in both syntaxes and read back. */
static int
response(void *arg, struct dcm_builder *b, const char *charset)
{
	static const char *const ts[] = { DCM_TS_EXPLICIT_LE,
	    DCM_TS_IMPLICIT_LE };
	struct dcm *d;
	struct err e;
	uint8_t *buf;
	size_t len, i;

	(void)arg;
	for (i = 0; i < 2; i++) {
		if (dcm_build_encode(b, ts[i], charset, &buf, &len, &e) == -1)
			continue;
		if (dcm_parse_dataset(buf, len, ts[i], 0, &d, &e) == -1)
			abort();	/* our own response must read back */
		dcm_free(d);
		free(buf);
	}
	return 0;
}

static int
instance(void *arg, const struct qr_instance *in)
{
	(void)arg;
	if (in->sop_instance_uid[0] == '\0' || strlen(in->hash) != 64)
		abort();	/* only real, whole rows come out */
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum qr_root root;
	struct dcm *q;
	struct err e;
	int n;

	if (db == NULL)
		setup();
	if (size < 1)
		return 0;
	root = data[0] & 2 ? QR_ROOT_PATIENT : QR_ROOT_STUDY;
	if (dcm_parse_dataset(data + 1, size - 1, data[0] & 1 ?
	    DCM_TS_EXPLICIT_LE : DCM_TS_IMPLICIT_LE, 0, &q, &e) == -1)
		return 0;
	e.msg[0] = '\0';
	if (data[0] & 4)
		n = qr_instances(db, root, q, instance, NULL, &e);
	else
		n = qr_find(db, root, q, response, NULL, &e);
	if (n == -1 && e.msg[0] == '\0')
		abort();	/* every refusal explains itself */
	dcm_free(q);
	return 0;
}
