/*
 * event: the cloud's study.image_received message (PROTOCOL.md §4), one
 * per instance, built from pacs.db and the preview dcmthumb made.
 *
 * Guarantees: fields come from pacs.db as stored (numbers stay numbers,
 * what is not stored is null); the message is at most EVENT_MAX bytes,
 * the cloud's events listener's limit: a message too big with its
 * preview goes without it (thumbnail null), one still too big is not
 * built at all.
 *
 * Never: logs (the message holds the patient's name and NHS number; the
 * caller logs what *thumb says), prints, exits.
 */
#ifndef GW_EVENT_H
#define GW_EVENT_H

#include <stddef.h>

#include <sqlite3.h>

#include "err.h"

#define EVENT_MAX	1048576		/* 1 MiB */

/* The preview: path NULL when there is none. */
struct event_preview {
	const char *path, *format;	/* format: "png" or "jpeg" */
	int width, height;
};

/* What became of the preview. */
enum { EVENT_THUMB_SENT, EVENT_THUMB_NONE, EVENT_THUMB_UNREADABLE,
    EVENT_THUMB_DROPPED };

/* Results besides 0 and -1. */
enum { EVENT_NO_INSTANCE = 1, EVENT_TOO_BIG = 2 };

/* The message built. */
struct event_message {
	char *text;		/* malloc'd JSON, NUL-terminated */
	size_t len;
	int thumb;		/* EVENT_THUMB_…: what became of the preview */
	size_t full_len;	/* with the preview, when it was dropped */
};

/*
 * The message for the instance sop into *m, with message_id and the
 * worklist item's action_id.  Returns 0; EVENT_NO_INSTANCE when pacs.db
 * has no such instance (yet); EVENT_TOO_BIG (e says the size) when it is
 * over EVENT_MAX even without its preview; -1 on error (e).
 */
int event_image_received(sqlite3 *db, const char *sop,
    const char *message_id, const char *action_id,
    const struct event_preview *p, struct event_message *m, struct err *e);

#endif
