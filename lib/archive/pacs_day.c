/*
 * pacs_day: a day's studies and images, and where each image went (see
 * archive/archive.h).
 */
#include "archive/archive.h"

#include <string.h>

/* A stored UTC time as local "YYYY-MM-DD HH:MM:SS" (NULL stays NULL). */
#define LOCAL(col) "strftime('%Y-%m-%d %H:%M:%S', " col ", 'localtime')"

#define DAY_SQL \
	"WITH day AS (SELECT se.study_ref AS study, " \
	"min(i.received_at) AS first FROM instances i " \
	"JOIN series se ON se.id = i.series_ref " \
	"WHERE date(i.received_at, 'localtime') = ?1 GROUP BY se.study_ref) " \
	"SELECT st.id, st.study_instance_uid, st.accession_number, " \
	"p.patient_name, st.study_description, i.sop_instance_uid, " \
	"i.sop_class_uid, se.series_number, i.instance_number, " \
	"i.laterality, i.view_position, " LOCAL("i.received_at") ", " \
	"i.source_aet, o.hash, o.storage_path, o.size, " \
	LOCAL("i.purged_at") ", i.thumbnail_status, i.thumbnail_path, " \
	"i.upload_status, i.upload_attempt_count, " LOCAL("i.uploaded_at") \
	", i.upload_error, " LOCAL("i.upload_next_attempt_at") ", i.rows, " \
	"i.columns, i.number_of_frames, c.calling_aet, " \
	LOCAL("c.reported_at") " " \
	"FROM day JOIN studies st ON st.id = day.study " \
	"JOIN patients p ON p.id = st.patient_ref " \
	"JOIN series se ON se.study_ref = st.id " \
	"JOIN instances i ON i.series_ref = se.id " \
	"JOIN objects o ON o.hash = i.object_hash " \
	"LEFT JOIN commitment_requests c ON c.id = (" \
	"SELECT r.id FROM commitment_items ci " \
	"JOIN commitment_requests r ON r.id = ci.request_ref " \
	"WHERE ci.sop_instance_uid = i.sop_instance_uid " \
	"AND r.state = 'REPORTED' AND ci.failure_reason IS NULL " \
	"ORDER BY r.reported_at DESC LIMIT 1) " \
	"WHERE date(i.received_at, 'localtime') = ?1 " \
	"ORDER BY day.first, st.id, se.series_number + 0, " \
	"i.instance_number + 0, i.sop_instance_uid"

static const char *
text(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	return v ? (const char *)v : "";
}

static void
row(sqlite3_stmt *st, struct pacs_day_image *im)
{
	im->study_id = sqlite3_column_int64(st, 0);
	im->study_instance_uid = text(st, 1);
	im->accession_number = text(st, 2);
	im->patient_name = text(st, 3);
	im->study_description = text(st, 4);
	im->sop_instance_uid = text(st, 5);
	im->sop_class_uid = text(st, 6);
	im->series_number = text(st, 7);
	im->instance_number = text(st, 8);
	im->laterality = text(st, 9);
	im->view_position = text(st, 10);
	im->received_at = text(st, 11);
	im->source_aet = text(st, 12);
	im->object_hash = text(st, 13);
	im->storage_path = text(st, 14);
	im->size = sqlite3_column_int64(st, 15);
	im->purged_at = text(st, 16);
	im->thumbnail_status = text(st, 17);
	im->thumbnail_path = text(st, 18);
	im->upload_status = text(st, 19);
	im->upload_attempts = sqlite3_column_int(st, 20);
	im->uploaded_at = text(st, 21);
	im->upload_error = text(st, 22);
	im->upload_next_attempt_at = text(st, 23);
	im->rows = sqlite3_column_int(st, 24);
	im->columns = sqlite3_column_int(st, 25);
	im->frames = sqlite3_column_int(st, 26);
	im->committed_to = text(st, 27);
	im->committed_at = text(st, 28);
}

int
pacs_day_each(sqlite3 *db, const char *date, pacs_day_fn *fn, void *arg,
    struct err *e)
{
	struct pacs_day_image im;
	sqlite3_stmt *st;
	int rc, n = 0;

	if (db_prepare(db, &st, DAY_SQL, e) == -1)
		return -1;
	sqlite3_bind_text(st, 1, date, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		row(st, &im);
		if (fn(&im, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE) {
		err_set(e, db_errno(db), "pacs.db: %s", sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return n;
}

int
pacs_receipt_count(sqlite3 *db, long long *n, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	*n = 0;
	if (db_prepare(db, &st, "SELECT count(*) FROM receipts", e) == -1)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return err_set(e, db_errno(db), "pacs.db: %s",
		    sqlite3_errmsg(db));
	return 0;
}
