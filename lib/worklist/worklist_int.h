/*
 * worklist_int.h: what lib/worklist/worklist*.c share, not exported further.
 */
#ifndef GW_WORKLIST_INT_H
#define GW_WORKLIST_INT_H

#include <sqlite3.h>

#include "worklist/worklist.h"

struct worklist {
	sqlite3 *db;
	sqlite3_stmt *st_offered;	/* SCHEDULED and IN PROGRESS items */
	sqlite3_stmt *st_offered_date;	/* the same on one scheduled_date */
	sqlite3_stmt *st_get;
};

#define WL_ITEM_COLUMNS "accession_number, patient_id, patient_name, " \
	"birth_date, sex, scheduled_date, scheduled_time, modality, " \
	"study_description, requested_procedure_id, " \
	"requested_procedure_description, scheduled_station_aet, " \
	"scheduled_station_name, study_instance_uid, source_message_id, " \
	"status, spsid"

/* Fill item (and spsid, WL_FIELD bytes) from a row of WL_ITEM_COLUMNS. */
void wl_item_from_row(sqlite3_stmt *st, struct worklist_item *item,
    char *spsid);

/* The value of an attribute of an item, as offered by C-FIND and in the
 * exported files: NULL when the worklist does not know the attribute,
 * "" when it knows it and has no value.  in_sps: the tag is inside the
 * Scheduled Procedure Step Sequence. */
const char *wl_item_value(const struct worklist_item *item, const char *spsid,
    uint32_t tag, int in_sps);

/* Add the response for one item to b, mirroring the query's keys. */
int wl_build_response(const struct dcm *query, const struct worklist_item *item,
    const char *spsid, struct dcm_builder *b, struct err *e);

int wl_sql_err(sqlite3 *db, struct err *e, const char *what);

#endif
