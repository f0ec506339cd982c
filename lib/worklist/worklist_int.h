/*
 * worklist_int.h: what lib/worklist/worklist*.c share, not exported further.
 *
 * The modules call one way only: worklist_time.c calls no other module of
 * the folder and worklist.c (the database) only worklist_time.c;
 * worklist_match.c, worklist_export.c, worklist_mpps.c and
 * worklist_action.c call into those two (and worklist_export.c into
 * worklist_match.c's wl_item_value).
 */
#ifndef GW_WORKLIST_INT_H
#define GW_WORKLIST_INT_H

#include <sqlite3.h>

#include "worklist/worklist.h"

struct worklist {
	sqlite3 *db;
	sqlite3_stmt *st_each;		/* items, by status */
	sqlite3_stmt *st_each_day;	/* the same on one local day */
	sqlite3_stmt *st_get;
	struct worklist_site site;
};

/* The value of an attribute of an item, as offered by C-FIND and in the
 * exported files: NULL when the worklist does not know the attribute,
 * "" when it knows it and has no value.  in_sps: the tag is inside the
 * Scheduled Procedure Step Sequence. */
const char *wl_item_value(const struct worklist_item *item, uint32_t tag,
    int in_sps);

int wl_sql_err(sqlite3 *db, struct err *e, const char *what);

/* The date days after the calendar date day (YYYYMMDD; days may be
 * negative), in out (9 bytes): 0, or -1 when day is not a date. */
int wl_day_add(const char *day, int days, char *out);

#endif
