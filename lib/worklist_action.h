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
#ifndef GW_WORKLIST_ACTION_H
#define GW_WORKLIST_ACTION_H

#include <stddef.h>

#include <jansson.h>

#include "worklist.h"

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
