/*
 * worklist: worklist.db: the site's worklist items, the cloud's worklist
 * actions, Modality Worklist matching and MPPS.
 *
 * Layer 3.  The one public header of lib/worklist/; what its modules share
 * and no other subsystem may see is in worklist_int.h.
 * Modules, each with its contract below: worklist (with worklist_match,
 * worklist_export and worklist_mpps), worklist_time, worklist_action.
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
 * Times: scheduled_date and scheduled_time are stored as the cloud sends
 * them, in UTC.  worklist_get() returns them so; worklist_each(),
 * worklist_find() and worklist_export_wl() give them in the site's local
 * time (the process's zone: worklist_site_init()), and a "day" there is a
 * local day.
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
	/* "" when the cloud named no station: offered to every station */
	char scheduled_station_aet[WL_FIELD], scheduled_station_name[WL_FIELD];
	char study_instance_uid[WL_FIELD];	/* set by worklist_create */
	char source_message_id[WL_FIELD];	/* the cloud's action_id */
	char status[WL_FIELD];
	char spsid[WL_FIELD];		/* SPS ID: the accession number */
	char created_at[WL_FIELD];	/* UTC, YYYY-MM-DDTHH:MM:SS.sssZ */
};

/* Results of the write calls (>= 0); -1 is an error with e set. */
enum {
	WL_CREATED,
	WL_EXISTS,
	WL_UPDATED,
	WL_NOT_FOUND,
	WL_REFUSED,
};

struct worklist;

/* Open (creating and migrating) the database at path. */
int worklist_open(struct worklist **out, const char *path, struct err *e);
/* The same, for a worklist.db that must exist already (never created):
 * ENOENT when it does not (lib/base/db's db_open_existing). */
int worklist_open_existing(struct worklist **out, const char *path,
    struct err *e);
void worklist_close(struct worklist *w);

/* Create an item (scheduled date and time in UTC); fills
 * item->study_instance_uid.  WL_EXISTS when an item has the accession
 * number, or was created by the same source_message_id: nothing changes,
 * and stored (when not NULL) gets that item as stored. */
int worklist_create(struct worklist *w, struct worklist_item *item,
    struct worklist_item *stored, struct err *e);

/* The action id of an item made by hand without the cloud's id (mwlsync
 * add): WL_MANUAL_PREFIX and the accession number. */
#define WL_MANUAL_PREFIX	"manual-"

/* Give an item made by hand (its source_message_id starts with
 * WL_MANUAL_PREFIX) the cloud's action id, once the cloud's create_item of
 * the same item arrives: images then go to the cloud under an id it knows.
 * WL_UPDATED; WL_NOT_FOUND when the item was not made so, or another item
 * has that id. */
int worklist_adopt_action_id(struct worklist *w, const char *accession_number,
    const char *action_id, struct err *e);

/* Set an item's status by accession number, whatever it was (MPPS):
 * WL_UPDATED or WL_NOT_FOUND. */
int worklist_set_status(struct worklist *w, const char *accession_number,
    const char *status, struct err *e);

/*
 * Move an item the way the cloud's worklist.update_status may (the
 * production gateway's transitions): to IN PROGRESS from SCHEDULED, to
 * COMPLETED or DISCONTINUED from IN PROGRESS.  WL_UPDATED; WL_NOT_FOUND
 * when no item with that accession number is in the state the move
 * starts from; WL_REFUSED when status is none of those three.
 */
int worklist_transition(struct worklist *w, const char *accession_number,
    const char *status, struct err *e);

/* Move an item from SCHEDULED to IN PROGRESS (an image arrived before or
 * without MPPS).  WL_UPDATED, or WL_NOT_FOUND when no SCHEDULED item has
 * that accession number. */
int worklist_start_by_image(struct worklist *w, const char *accession_number,
    struct err *e);

/* One item by accession number, as stored (UTC): 0 found, WL_NOT_FOUND. */
int worklist_get(struct worklist *w, const char *accession_number,
    struct worklist_item *item, struct err *e);

/*
 * Items in the site's local time, earliest first: those C-FIND offers
 * (SCHEDULED and IN PROGRESS; also COMPLETED and DISCONTINUED with the
 * site's show_finished), or every item when all is 1; scheduled on the
 * local day day (YYYYMMDD), or on any day when day is NULL.  fn may
 * change the item it is given (a copy); it returns 0 to go on, 1 to stop,
 * -1 to fail (with e set).  Returns the number of items given to fn, or
 * -1.
 */
typedef int (*worklist_item_fn)(void *arg, struct worklist_item *item,
    struct err *e);
int worklist_each(struct worklist *w, const char *day, int all,
    worklist_item_fn fn, void *arg, struct err *e);

/*
 * Modality Worklist C-FIND (PS3.4 annex K; matching rules of C.2.2.2)
 * over the offered items (worklist_each), in local time: for each that
 * matches the query identifier, build the response identifier (every
 * requested key, empty when unknown; the Scheduled Procedure Step
 * Sequence with its own requested keys) and call fn.  A query naming
 * Scheduled Station AE Titles also finds the items with no station; they
 * answer with the query's first AE title, or the site's station_aet when
 * the query names none.  fn returns 0 to go on, 1 to stop (C-CANCEL).
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

/* For the status: the MPPS events still in the outbox (not yet in the
 * relay spool: they wait there while the relay's events are off) and
 * when the oldest was written (0: none), worklist.db opened read-only,
 * never created.  0, or -1 (no worklist.db, or not readable). */
int worklist_outbox_held(const char *db_path, long *count, time_t *oldest,
    struct err *e);

/* Write a dcmtk wlmscpfs worklist file per offered item into dir (and its
 * "lockfile"), complete enough that wlmscpfs serves every one: local
 * times, and the site's station_aet for items with no station.  Returns
 * the count. */
int worklist_export_wl(struct worklist *w, const char *dir, struct err *e);

/* SQLite online backup of the database to path. */
int worklist_backup(struct worklist *w, const char *path, struct err *e);

/* Remove COMPLETED and DISCONTINUED items, and items scheduled before
 * the local day today (YYYYMMDD).  Returns the count removed. */
int worklist_reset(struct worklist *w, const char *today, struct err *e);

/*
 * worklist_time: the site's worklist settings and its local time.
 *
 * The cloud sends UTC; modalities see the site's local time.  The zone is
 * WORKLIST_TIMEZONE (an IANA name such as Europe/London, or UTC), else the
 * system's; worklist_site_init() makes it the process's local zone (TZ),
 * so that the C library's tz database does every conversion.
 */

struct worklist_site {
	char timezone[WL_FIELD];	/* WORKLIST_TIMEZONE; "" the system's */
	int show_finished;		/* WORKLIST_SHOW_FINISHED=1 */
	char station_aet[WL_FIELD];	/* WORKLIST_STATION_AET (ANY): shown
					 * for items with no station */
};

/*
 * Read the site's settings from the environment (after config_load()) and,
 * when WORKLIST_TIMEZONE is set, make it the process's local zone
 * (setenv TZ, tzset).  -1 with e (EINVAL) naming the setting when one is
 * bad: a zone the tz database does not have, WORKLIST_SHOW_FINISHED not 0
 * or 1, a station AE title longer than 16 characters.
 */
int worklist_site_init(struct worklist_site *s, struct err *e);

/* Use the site's settings (C-FIND, export); until then show_finished 0
 * and station_aet ANY. */
void worklist_set_site(struct worklist *w, const struct worklist_site *s);

/* Today, the local date: YYYYMMDD. */
void worklist_today(char out[9]);

/* 1 when s is a calendar date YYYYMMDD; 1 when s is a time HH, HHMM,
 * HHMMSS or HHMMSS.F (1 to 6 digits) within a day.  0 otherwise. */
int worklist_valid_date(const char *s);
int worklist_valid_time(const char *s);

/*
 * A stored UTC date and time in local time: the time keeps its precision
 * (and fraction), with minutes or seconds added when the zone's offset
 * needs them.  0; -1 when date or time is not valid (then copied as they
 * are).  date and time each need WL_FIELD bytes.
 */
int worklist_utc_to_local(const char *utc_date, const char *utc_time,
    char *date, char *time);

/*
 * A local date and time in UTC (what the cloud would have sent), the same
 * way.  -1 with e when they are not valid or the local time does not
 * exist (the clocks went forward over it); a local time that happens
 * twice (the clocks went back) is taken the first time.
 */
int worklist_local_to_utc(const char *date, const char *time,
    char *utc_date, char *utc_time, struct err *e);

/*
 * worklist_action: the cloud's worklist actions (../shared/relay/PROTOCOL.md
 * §4, as the production gateway answers them: PRODUCTION.md §2), as mwlsync
 * reads them: one JSON object each, checked field by field against what
 * worklist.db and a DICOM worklist response can hold, applied, and
 * answered with the reply the cloud reads.
 *
 * Contract: worklist_action_parse() reads one decoded JSON value and never
 * touches a database; it either fills a whole action or says, in the words
 * the reply to the cloud carries, which key is wrong (named below
 * parameters.worklist_item: "Missing key: 'participant.nhs_number'").
 * Strings are copied out (UTF-8, each checked for length in characters, no
 * backslash and no control character; dates calendar dates YYYYMMDD,
 * times HH[MM[SS[.F]]] within a day).  worklist_action_apply() is the one
 * path every create and status change from outside takes (mwlsync apply,
 * add and import).  Nothing here prints, logs or exits.
 */

enum worklist_action_type {
	WL_ACTION_NONE,			/* not an action we can answer by id */
	WL_ACTION_CREATE_ITEM,		/* worklist.create_item */
	WL_ACTION_UPDATE_STATUS,	/* worklist.update_status */
};

struct worklist_action {
	enum worklist_action_type type;
	char action_id[WL_FIELD];	/* "" for an update_status without */
	/* create_item: the item (modality MG when absent, source_message_id
	 * the action_id, scheduled_station_aet as given, maybe empty);
	 * update_status: accession_number and status (upper case) only. */
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

/*
 * The content fields where two items differ (the fields an action sets,
 * named as worklist_action_parse() names them, comma-separated), in out;
 * the number of them (0: the same item).
 */
int worklist_action_diff(const struct worklist_item *a,
    const struct worklist_item *b, char *out, size_t outsz);

/* The outcome of one action, and what the cloud is answered. */
struct worklist_reply {
	const char *status;		/* created, processed, updated, error */
	enum worklist_action_type type;
	char action_id[WL_FIELD];	/* "" when the reply carries none */
	char accession_number[WL_FIELD];	/* "" when unknown */
	char message[WL_FIELD * 2];	/* why, for an error */
	int internal;			/* the error is ours (the database),
					 * not the action's */
};

/*
 * Apply one action to the worklist and fill r; never fails (a database
 * error is an error reply with internal set).  worklist.create_item:
 * "created"; "processed" when the same item exists already (every content
 * field equal; the item is unchanged, except that one made by hand takes
 * the action's id: worklist_adopt_action_id()); an error naming the
 * fields when an item with that accession number differs, or when the
 * action_id created another item.  worklist.update_status: "updated" (worklist_transition),
 * "Cannot transition to 'S'", "Worklist item 'X' not found".
 */
void worklist_action_apply(struct worklist *w, const json_t *action,
    struct worklist_reply *r);

/*
 * The reply the cloud reads, one line of JSON (malloc'd; NULL when out of
 * memory): {"status":"created"|"processed","action_id":A},
 * {"accession_number":X,"status":"updated"}, or
 * {"status":"error","action_id":A,"message":M} (action_id only when the
 * action had one: the cloud reads status alone).
 */
char *worklist_reply_json(const struct worklist_reply *r);

#endif
