/*
 * fuzz_action: libFuzzer target for the cloud's worklist actions as
 * `mwlsync apply` reads them: a stream of JSON documents (jansson, one
 * after another as on mwlsync's stdin), each checked by
 * worklist_action_parse().  An accepted action must have a type; a
 * create_item an action_id, an accession number, a modality and a
 * calendar date and time; an update_status an upper-case status; a
 * refused one must say why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "worklist/worklist.h"

#define MAX_DOCUMENTS	64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct worklist_action a;
	json_error_t je;
	json_t *j;
	size_t off = 0;
	char msg[300];
	int n;

	for (n = 0; n < MAX_DOCUMENTS && off < size; n++) {
		j = json_loadb((const char *)data + off, size - off,
		    JSON_DISABLE_EOF_CHECK, &je);
		if (j == NULL)
			return 0;	/* mwlsync stops at invalid JSON */
		msg[0] = '\0';
		if (worklist_action_parse(j, &a, msg, sizeof msg) == 0) {
			if (a.type == WL_ACTION_NONE)
				abort();
			if (a.type == WL_ACTION_CREATE_ITEM &&
			    (a.action_id[0] == '\0' ||
			    a.item.accession_number[0] == '\0' ||
			    a.item.modality[0] == '\0' ||
			    !worklist_valid_date(a.item.scheduled_date) ||
			    !worklist_valid_time(a.item.scheduled_time)))
				abort();
			for (const char *p = a.item.status; *p != '\0'; p++)
				if (*p >= 'a' && *p <= 'z')
					abort();
		} else if (msg[0] == '\0')
			abort();
		json_decref(j);
		if (je.position <= 0)
			break;
		off += (size_t)je.position;
	}
	return 0;
}
