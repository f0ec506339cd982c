/*
 * pacs: what the gateway records about a stored object in pacs.db.
 *
 * pacs_extract() reads the attributes the index keeps from a parsed
 * object and checks that it can be indexed at all (it has SOP Instance,
 * Study Instance and Series Instance UIDs): storescp-hook uses it to
 * decide what to quarantine, dcmindex to fill pacs.db.
 *
 * pacs_index_object() upserts one object inside the caller's transaction:
 * patient, study, series, object, receipt and instance rows.  It is
 * idempotent: the same object and receipt twice change nothing.  When a
 * SOP Instance UID arrives again with other bytes, both objects are
 * recorded and the most recently received becomes current (see
 * sql/pacs.sql).  A struct pacs_index holds prepared statements on one
 * connection; the caller owns the connection.
 */
#ifndef GW_PACS_H
#define GW_PACS_H

#include <sqlite3.h>
#include <time.h>
#include <stdint.h>

#include "dicom.h"
#include "err.h"

#define PACS_UI	256	/* a UID: 64 characters, but longer ones exist */
#define PACS_LO	256	/* any other value, UTF-8, multi-values joined */

struct pacs_attrs {
	char sop_instance_uid[PACS_UI], sop_class_uid[PACS_UI];
	char study_instance_uid[PACS_UI], series_instance_uid[PACS_UI];
	char transfer_syntax_uid[PACS_UI];
	char patient_id[PACS_LO], patient_name[PACS_LO];
	char birth_date[PACS_LO], sex[PACS_LO];
	char accession_number[PACS_LO], study_id[PACS_LO];
	char study_date[PACS_LO], study_time[PACS_LO];
	char study_description[PACS_LO];
	char modality[PACS_LO], series_number[PACS_LO];
	char series_description[PACS_LO], body_part_examined[PACS_LO];
	char instance_number[PACS_LO], image_type[PACS_LO];
	char presentation_intent[PACS_LO];
	char view_position[PACS_LO], laterality[PACS_LO];
	char organ_dose[PACS_LO], entrance_dose_in_mgy[PACS_LO];
	char kvp[PACS_LO], exposure_in_uas[PACS_LO];
	char anode_target_material[PACS_LO], filter_material[PACS_LO];
	char filter_thickness[PACS_LO], manufacturer[PACS_LO];
	char rows[PACS_LO], columns[PACS_LO], number_of_frames[PACS_LO];
	char bits_allocated[PACS_LO], photometric_interpretation[PACS_LO];
};

/* How and when an object arrived. */
struct pacs_receipt {
	const char *hash;		/* object name (SHA-256 hex) */
	uint64_t size;
	const char *receipt_key;	/* unique per reception */
	const char *calling_aet, *called_aet, *peer_address;
	const char *received_at;	/* ISO 8601 UTC */
};

int pacs_extract(const struct dcm *d, struct pacs_attrs *a, struct err *e);

struct pacs_index;

/* Migrate db to the current schema and prepare the statements. */
int pacs_index_open(struct pacs_index **out, sqlite3 *db, struct err *e);
void pacs_index_close(struct pacs_index *ix);

int pacs_index_object(struct pacs_index *ix, const struct pacs_attrs *a,
    const struct pacs_receipt *r, struct err *e);

/* ISO 8601 UTC with milliseconds for now, or for a time in seconds. */
void pacs_timestamp(char out[32]);
void pacs_timestamp_at(const struct timespec *t, char out[32]);

#endif
