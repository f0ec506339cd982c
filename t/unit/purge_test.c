/* purge_test: lib/archive/purge on a small pacs.db: one object backing two
 * instance rows, and a pending commitment (qrscp's commitment tables). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "archive/archive.h"
#include "tap.h"

static sqlite3 *db;

static long
count(const char *sql)
{
	sqlite3_stmt *st;
	long n = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -2;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static int
run(struct purge_ctx *c, struct purge_stats *st, struct err *e)
{
	struct purge_policy p = { .retention_days = 30, .batch = 10,
	    .margin_pct = PURGE_MARGIN_PERCENT, .now = time(NULL) };

	return purge_run(c, &p, st, e);
}

int
main(int argc, char **argv)
{
	char root[4200], path[4200], hash[STORE_HASH_LEN + 1], sql[1024];
	struct store store;
	struct purge_ctx c = { 0 };
	struct purge_stats st;
	struct err e = { 0 };

	if (argc != 2)
		return 2;
	snprintf(root, sizeof root, "%s/store", argv[1]);
	snprintf(path, sizeof path, "%s/pacs.db", argv[1]);
	if (store_open(&store, root, 1, &e) == -1 ||
	    db_open(&db, path, &e) == -1 ||
	    db_migrate(db, db_schema_pacs, &e) == -1) {
		printf("Bail out! %s\n", e.msg);
		return 1;
	}
	store_hash_buf("shared", 6, hash, &e);
	store_path(&store, hash, path, sizeof path, &e);
	snprintf(root, sizeof root, "%s", path);
	*strrchr(root, '/') = '\0';
	fs_mkdirs(root, &e);
	fs_write_atomic(path, "shared", 6, &e);
	snprintf(sql, sizeof sql,
	    "INSERT INTO patients (id) VALUES (1);"
	    "INSERT INTO studies (id, study_instance_uid, patient_ref)"
	    " VALUES (1, '2.25.1', 1);"
	    "INSERT INTO series (id, series_instance_uid, study_ref)"
	    " VALUES (1, '2.25.1.1', 1);"
	    "INSERT INTO objects (hash, size, storage_path, sop_instance_uid,"
	    " first_received_at) VALUES ('%s', 6, 'x', '2.25.1.1.1',"
	    " '2026-01-01T00:00:00.000Z');"
	    "INSERT INTO instances (id, sop_instance_uid, series_ref,"
	    " object_hash, received_at, indexed_at, upload_status) VALUES"
	    " (1, '2.25.1.1.1', 1, '%s', '2026-01-01T00:00:00.000Z', '', "
	    "  'COMPLETE'),"
	    " (2, '2.25.1.1.2', 1, '%s', '2026-01-02T00:00:00.000Z', '', "
	    "  'PENDING');", hash, hash, hash);
	if (!ok(db_exec(db, sql, &e) == 0, "one object behind two instance rows"))
		diag("%s", e.msg);
	c = (struct purge_ctx){ db, &store, NULL, NULL, NULL, NULL };

	ok(run(&c, &st, &e) == 0, "a round succeeds");
	is_long(st.instances, 1, "the confirmed row is marked purged");
	is_long(st.objects, 0, "but the file stays: the PENDING row needs it");
	ok(access(path, F_OK) == 0, "the shared object is still there");
	is_long(count("SELECT count(*) FROM purge_pending"), 0,
	    "nothing is left pending");

	db_exec(db, "INSERT INTO commitment_requests (id, transaction_uid,"
	    " calling_aet, called_aet, received_at) VALUES (1, '2.25.9', 'MG1',"
	    " 'SCREENING_QR', '2026-01-03T00:00:00.000Z');"
	    "INSERT INTO commitment_items VALUES (1, 0,"
	    " '1.2.840.10008.5.1.4.1.1.1.2', '2.25.1.1.2', NULL);"
	    "UPDATE instances SET upload_status = 'COMPLETE' WHERE id = 2", &e);
	ok(run(&c, &st, &e) == 0 && st.instances == 0,
	    "a pending commitment keeps its instance");
	db_exec(db, "UPDATE commitment_requests SET state = 'REPORTED',"
	    " reported_at = 'now'", &e);
	ok(run(&c, &st, &e) == 0 && st.instances == 1 && st.objects == 1 &&
	    st.bytes == 6, "once reported, the last row goes and the file "
	    "with it");
	ok(access(path, F_OK) == -1, "the object is unlinked");
	is_long(count("SELECT count(*) FROM instances WHERE purged_at IS NOT NULL"),
	    2, "both rows say purged");
	db_close(db);
	return tap_done();
}
