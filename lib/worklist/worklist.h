/*
 * worklist: worklist.db: the site's worklist items, the cloud's worklist
 * actions, Modality Worklist matching and MPPS.
 *
 * Layer 3.  The one public header of lib/worklist/; what its modules share
 * and no other subsystem may see is in worklist_int.h.
 * Modules, each with its contract below: worklist, worklist_action.
 */
#ifndef GW_WORKLIST_H
#define GW_WORKLIST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "dicom/dicom.h"
#include "queue/queue.h"

/*
 * worklist: worklist.db, the site's worklist items and MPPS instances.
 *
 * Owns the schema (sql/worklist.sql, migrated on open) and every query on
 * it.  mwlsync writes items from the cloud's actions; mwlscp answers
 * Modality Worklist C-FIND and MPPS N-CREATE/N-SET from it; dcmindex
 * moves an item to IN PROGRESS when its first image arrives.
 *
 * Status values are the DICOM ones, with the space: "SCHEDULED",
 * "IN PROGRESS", "COMPLETED", "DISCONTINUED".  Each item's Study Instance
 * UID is generated once, at creation (2.25.<uuid as decimal>), and stored.
 *
 * MPPS events for the cloud are written to an outbox table in the same
 * transaction as the state change they report; worklist_outbox_drain()
 * then copies them to the relay spool (jobs named by the outbox row, so a
 * repeat replaces) and marks them sent.  A crash between the two repeats
 * the copy: the cloud sees an event at least once, never zero times.
 *
 * A struct worklist holds one SQLite connection and its prepared
 * statements; it is not shared between threads.  Nothing here prints.
 */

#define WL_SCHEDULED	"SCHEDULED"
#define WL_IN_PROGRESS	"IN PROGRESS"
#define WL_COMPLETED	"COMPLETED"
#define WL_DISCONTINUED	"DISCONTINUED"

#define WL_FIELD	256

struct worklist_item {
	char accession_number[WL_FIELD];
	char patient_id[WL_FIELD];	/* NHS number */
	char patient_name[WL_FIELD];	/* DICOM PN, UTF-8 ("LAST^FIRST") */
	char birth_date[WL_FIELD], sex[WL_FIELD];
	char scheduled_date[WL_FIELD], scheduled_time[WL_FIELD];
	char modality[WL_FIELD];
	char study_description[WL_FIELD];
	char requested_procedure_id[WL_FIELD];
	char requested_procedure_description[WL_FIELD];
	char scheduled_station_aet[WL_FIELD], scheduled_station_name[WL_FIELD];
	char study_instance_uid[WL_FIELD];	/* set by worklist_create */
	char source_message_id[WL_FIELD];	/* the cloud's action_id */
	char status[WL_FIELD];
};

/* Results of the write calls (>= 0); -1 is an error with e set. */
enum {
	WL_CREATED,
	WL_EXISTS,
	WL_UPDATED,
	WL_NOT_FOUND,
};

struct worklist;

/* Open (creating and migrating) the database at path. */
int worklist_open(struct worklist **out, const char *path, struct err *e);
/* The same, for a worklist.db that must exist already (never created):
 * ENOENT when it does not (lib/base/db's db_open_existing). */
int worklist_open_existing(struct worklist **out, const char *path,
    struct err *e);
void worklist_close(struct worklist *w);

/* Create an item; fills item->study_instance_uid.  WL_EXISTS when the
 * accession number or source_message_id is known already (nothing
 * changes). */
int worklist_create(struct worklist *w, struct worklist_item *item,
    struct err *e);

/* Set an item's status by accession number: WL_UPDATED or WL_NOT_FOUND. */
int worklist_set_status(struct worklist *w, const char *accession_number,
    const char *status, struct err *e);

/* Move an item from SCHEDULED to IN PROGRESS (an image arrived before or
 * without MPPS).  WL_UPDATED, or WL_NOT_FOUND when no SCHEDULED item has
 * that accession number. */
int worklist_start_by_image(struct worklist *w, const char *accession_number,
    struct err *e);

/* One item by accession number: 0 found, WL_NOT_FOUND. */
int worklist_get(struct worklist *w, const char *accession_number,
    struct worklist_item *item, struct err *e);

/*
 * Modality Worklist C-FIND (PS3.4 annex K; matching rules of C.2.2.2):
 * for each SCHEDULED or IN PROGRESS item that matches the query
 * identifier, build the response identifier (every requested key, empty
 * when unknown; the Scheduled Procedure Step Sequence with its own
 * requested keys) and call fn.  fn returns 0 to go on, 1 to stop (C-CANCEL).
 * Returns the number of matches sent, or -1.
 */
typedef int (*worklist_match_fn)(void *arg, struct dcm_builder *response);
int worklist_find(struct worklist *w, const struct dcm *query,
    worklist_match_fn fn, void *arg, struct err *e);

/*
 * MPPS (PS3.4 annex F).  Each returns a DIMSE status: 0x0000 success,
 * 0x0111 duplicate SOP instance (N-CREATE of a known instance), 0x0112 no
 * such SOP instance (N-SET of an unknown one), 0x0106 invalid attribute
 * value (bad or missing Performed Procedure Step Status), 0x0110
 * processing failure (including an N-SET on a COMPLETED or DISCONTINUED
 * step, with a comment saying so); e carries the error comment for any
 * non-zero status.  An accepted transition updates the matching worklist
 * item and writes an mpps.status_update event to the outbox.  -1 only for
 * an internal error (database), e set.
 */
int worklist_mpps_create(struct worklist *w, const char *sop_instance_uid,
    const struct dcm *dataset, struct err *e);
int worklist_mpps_set(struct worklist *w, const char *sop_instance_uid,
    const struct dcm *modification, struct err *e);

/* Copy unsent outbox events to the relay spool.  Returns the count. */
int worklist_outbox_drain(struct worklist *w, struct spool *relay,
    struct err *e);

/* Write a dcmtk wlmscpfs worklist file per offered item into dir (and its
 * "lockfile"), complete enough that wlmscpfs serves every one.  Returns
 * the count. */
int worklist_export_wl(struct worklist *w, const char *dir, struct err *e);

/* SQLite online backup of the database to path. */
int worklist_backup(struct worklist *w, const char *path, struct err *e);

/* Remove COMPLETED and DISCONTINUED items, and items scheduled before
 * today (YYYYMMDD, local time).  Returns the count removed. */
int worklist_reset(struct worklist *w, const char *today, struct err *e);

/*
 * worklist_action: the cloud's worklist actions (../shared/relay/PROTOCOL.md),
 * as mwlsync apply reads them: one JSON object each, checked field by field
 * against what worklist.db and a DICOM worklist response can hold.
 *
 * Contract: worklist_action_parse() reads one decoded JSON value and never
 * touches a database; it either fills a whole action or says, in the words
 * the reply to the cloud carries, which field is wrong.  Strings are copied
 * out (UTF-8, each checked for length in characters, no backslash and no
 * control character; dates YYYYMMDD, times HH[MM[SS[.F]]]).  Nothing here
 * prints, logs or exits.
 */

enum worklist_action_type {
	WL_ACTION_NONE,			/* not an action we can answer by id */
	WL_ACTION_CREATE_ITEM,		/* worklist.create_item */
	WL_ACTION_UPDATE_STATUS,	/* worklist.update_status */
};

struct worklist_action {
	enum worklist_action_type type;
	char action_id[WL_FIELD];
	/* create_item: the item (modality MG when absent, source_message_id
	 * the action_id; scheduled_station_aet as given, maybe empty);
	 * update_status: accession_number and status only. */
	struct worklist_item item;
};

/*
 * Parse one action.  0 with *a filled; -1 with msg the error reply's
 * message, and a->type WL_ACTION_NONE when the reply carries no action_id
 * (not an object, no usable action_id, an unsupported action_type), else
 * the action's type and a->action_id.
 */
int worklist_action_parse(const json_t *action, struct worklist_action *a,
    char *msg, size_t msgsz);

#endif
