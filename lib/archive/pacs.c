#include "archive/archive.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

enum { S_CURRENT, S_PATIENT, S_STUDY, S_SERIES, S_OBJECT, S_RECEIPT,
    S_INSTANCE, S_N };

static const char *const statements[S_N] = {
	[S_CURRENT] =
	"SELECT 1 FROM instances WHERE sop_instance_uid = ?1"
	" AND (received_at > ?2 OR (received_at = ?2 AND object_hash = ?3))",
	[S_PATIENT] =
	"INSERT INTO patients (patient_id, patient_name, birth_date, sex)"
	" VALUES (coalesce(?1, ''), coalesce(?2, ''), ?3, ?4)"
	" ON CONFLICT (patient_id, patient_name) DO UPDATE SET"
	"  birth_date = coalesce(excluded.birth_date, birth_date),"
	"  sex = coalesce(excluded.sex, sex)"
	" RETURNING id",
	[S_STUDY] =
	"INSERT INTO studies (study_instance_uid, patient_ref,"
	" accession_number, study_id, study_date, study_time,"
	" study_description) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	" ON CONFLICT (study_instance_uid) DO UPDATE SET"
	"  patient_ref = excluded.patient_ref,"
	"  accession_number = coalesce(excluded.accession_number, accession_number),"
	"  study_id = coalesce(excluded.study_id, study_id),"
	"  study_date = coalesce(excluded.study_date, study_date),"
	"  study_time = coalesce(excluded.study_time, study_time),"
	"  study_description = coalesce(excluded.study_description, study_description)"
	" RETURNING id",
	[S_SERIES] =
	"INSERT INTO series (series_instance_uid, study_ref, modality,"
	" series_number, series_description, body_part_examined)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	" ON CONFLICT (series_instance_uid) DO UPDATE SET"
	"  study_ref = excluded.study_ref,"
	"  modality = coalesce(excluded.modality, modality),"
	"  series_number = coalesce(excluded.series_number, series_number),"
	"  series_description = coalesce(excluded.series_description, series_description),"
	"  body_part_examined = coalesce(excluded.body_part_examined, body_part_examined)"
	" RETURNING id",
	[S_OBJECT] =
	"INSERT INTO objects (hash, size, storage_path, sop_instance_uid,"
	" transfer_syntax_uid, first_received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	" ON CONFLICT (hash) DO UPDATE SET"
	"  first_received_at = min(first_received_at, excluded.first_received_at)",
	[S_RECEIPT] =
	"INSERT INTO receipts (receipt_key, object_hash, calling_aet,"
	" called_aet, peer_address, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	" ON CONFLICT (receipt_key) DO NOTHING",
	[S_INSTANCE] =
	"INSERT INTO instances (sop_instance_uid, series_ref, object_hash,"
	" sop_class_uid, instance_number, image_type, presentation_intent,"
	" view_position, laterality, organ_dose, entrance_dose_in_mgy, kvp,"
	" exposure_in_uas, anode_target_material, filter_material,"
	" filter_thickness, manufacturer, rows, columns, number_of_frames,"
	" bits_allocated, photometric_interpretation, received_at, source_aet,"
	" indexed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
	" ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)"
	" ON CONFLICT (sop_instance_uid) DO UPDATE SET"
	"  thumbnail_status = CASE WHEN excluded.object_hash = object_hash"
	"   THEN thumbnail_status ELSE 'PENDING' END,"
	"  series_ref = excluded.series_ref, object_hash = excluded.object_hash,"
	"  purged_at = NULL,"	/* its file is in the store again */
	"  sop_class_uid = excluded.sop_class_uid,"
	"  instance_number = excluded.instance_number,"
	"  image_type = excluded.image_type,"
	"  presentation_intent = excluded.presentation_intent,"
	"  view_position = excluded.view_position,"
	"  laterality = excluded.laterality, organ_dose = excluded.organ_dose,"
	"  entrance_dose_in_mgy = excluded.entrance_dose_in_mgy,"
	"  kvp = excluded.kvp, exposure_in_uas = excluded.exposure_in_uas,"
	"  anode_target_material = excluded.anode_target_material,"
	"  filter_material = excluded.filter_material,"
	"  filter_thickness = excluded.filter_thickness,"
	"  manufacturer = excluded.manufacturer, rows = excluded.rows,"
	"  columns = excluded.columns,"
	"  number_of_frames = excluded.number_of_frames,"
	"  bits_allocated = excluded.bits_allocated,"
	"  photometric_interpretation = excluded.photometric_interpretation,"
	"  received_at = excluded.received_at, source_aet = excluded.source_aet,"
	"  indexed_at = excluded.indexed_at"
	" WHERE excluded.received_at >= received_at"
	"  AND (excluded.object_hash != object_hash"
	"   OR excluded.received_at > received_at)",
};

struct pacs_index {
	sqlite3 *db;
	sqlite3_stmt *st[S_N];
};

int
pacs_index_open(struct pacs_index **out, sqlite3 *db, struct err *e)
{
	struct pacs_index *ix;

	*out = NULL;
	if (db_migrate(db, db_schema_pacs, e) == -1)
		return -1;
	if ((ix = calloc(1, sizeof *ix)) == NULL)
		return err_sys(e, "malloc");
	ix->db = db;
	for (int i = 0; i < S_N; i++)
		if (db_prepare(db, &ix->st[i], statements[i], e) == -1) {
			pacs_index_close(ix);
			return -1;
		}
	*out = ix;
	return 0;
}

void
pacs_index_close(struct pacs_index *ix)
{
	if (ix == NULL)
		return;
	for (int i = 0; i < S_N; i++)
		sqlite3_finalize(ix->st[i]);
	free(ix);
}

/* Step a statement with RETURNING id. */
static int
step_id(struct pacs_index *ix, sqlite3_stmt *st, sqlite3_int64 *id,
    struct err *e)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return err_set(e, db_errno(ix->db), "sqlite: %s",
		    sqlite3_errmsg(ix->db));
	return 0;
}

static void
bind_all(sqlite3_stmt *st, int first, const char *const *v, int n)
{
	for (int i = 0; i < n; i++)
		db_bind_text(st, first + i, v[i]);
}

#define NVALS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int
upsert_hierarchy(struct pacs_index *ix, const struct pacs_attrs *a,
    sqlite3_int64 *series_id, struct err *e)
{
	sqlite3_int64 patient, study;
	sqlite3_stmt *st;
	const char *pv[] = { a->patient_id, a->patient_name, a->birth_date,
	    a->sex };
	const char *sv[] = { a->accession_number, a->study_id, a->study_date,
	    a->study_time, a->study_description };
	const char *rv[] = { a->modality, a->series_number,
	    a->series_description, a->body_part_examined };

	st = ix->st[S_PATIENT];
	bind_all(st, 1, pv, NVALS(pv));
	if (step_id(ix, st, &patient, e) == -1)
		return err_wrap(e, "patient");
	st = ix->st[S_STUDY];
	db_bind_text(st, 1, a->study_instance_uid);
	sqlite3_bind_int64(st, 2, patient);
	bind_all(st, 3, sv, NVALS(sv));
	if (step_id(ix, st, &study, e) == -1)
		return err_wrap(e, "study %s", a->study_instance_uid);
	st = ix->st[S_SERIES];
	db_bind_text(st, 1, a->series_instance_uid);
	sqlite3_bind_int64(st, 2, study);
	bind_all(st, 3, rv, NVALS(rv));
	if (step_id(ix, st, series_id, e) == -1)
		return err_wrap(e, "series %s", a->series_instance_uid);
	return 0;
}

static int
upsert_object(struct pacs_index *ix, const struct pacs_attrs *a,
    const struct pacs_receipt *r, struct err *e)
{
	char rel[STORE_RELPATH_MAX];
	sqlite3_stmt *st = ix->st[S_OBJECT];
	const char *rv[] = { r->receipt_key, r->hash, r->calling_aet,
	    r->called_aet, r->peer_address, r->received_at };

	store_relpath(r->hash, rel);
	db_bind_text(st, 1, r->hash);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)r->size);
	db_bind_text(st, 3, rel);
	db_bind_text(st, 4, a->sop_instance_uid);
	db_bind_text(st, 5, a->transfer_syntax_uid);
	db_bind_text(st, 6, r->received_at);
	if (db_step_done(ix->db, st, e) == -1)
		return err_wrap(e, "object %s", r->hash);
	st = ix->st[S_RECEIPT];
	bind_all(st, 1, rv, NVALS(rv));
	if (db_step_done(ix->db, st, e) == -1)
		return err_wrap(e, "receipt %s", r->receipt_key);
	return 0;
}

/* 1 when the instance already has this object or a newer one. */
static int
superseded(struct pacs_index *ix, const struct pacs_attrs *a,
    const struct pacs_receipt *r, struct err *e)
{
	sqlite3_stmt *st = ix->st[S_CURRENT];
	int rc;

	db_bind_text(st, 1, a->sop_instance_uid);
	db_bind_text(st, 2, r->received_at);
	db_bind_text(st, 3, r->hash);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return err_set(e, db_errno(ix->db), "sqlite: %s",
		    sqlite3_errmsg(ix->db));
	return rc == SQLITE_ROW;
}

/*
 * The object and its receipt are always recorded; the patient, study,
 * series and instance rows only when this object becomes (or stays) the
 * instance's current one, so a stale copy never overwrites what is shown.
 */
int
pacs_index_object(struct pacs_index *ix, const struct pacs_attrs *a,
    const struct pacs_receipt *r, struct err *e)
{
	sqlite3_int64 series;
	sqlite3_stmt *st = ix->st[S_INSTANCE];
	char now[32];
	const char *iv[] = { a->sop_class_uid, a->instance_number,
	    a->image_type, a->presentation_intent, a->view_position,
	    a->laterality, a->organ_dose, a->entrance_dose_in_mgy, a->kvp,
	    a->exposure_in_uas, a->anode_target_material, a->filter_material,
	    a->filter_thickness, a->manufacturer, a->rows, a->columns,
	    a->number_of_frames, a->bits_allocated,
	    a->photometric_interpretation, r->received_at, r->calling_aet };

	int old;

	if (upsert_object(ix, a, r, e) == -1 ||
	    (old = superseded(ix, a, r, e)) == -1)
		return -1;
	if (old)
		return 0;
	if (upsert_hierarchy(ix, a, &series, e) == -1)
		return -1;
	pacs_timestamp(now);
	db_bind_text(st, 1, a->sop_instance_uid);
	sqlite3_bind_int64(st, 2, series);
	db_bind_text(st, 3, r->hash);
	bind_all(st, 4, iv, NVALS(iv));
	db_bind_text(st, 25, now);
	if (db_step_done(ix->db, st, e) == -1)
		return err_wrap(e, "instance %s", a->sop_instance_uid);
	return 0;
}
