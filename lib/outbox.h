/*
 * outbox: one job of the relay spool as relaysend handles it: read,
 * rewritten, and settled (done, tried again later, or parked for good),
 * with pacs.db mirroring the state of image uploads.
 *
 * A job body is the spool's key=value text.  The keys below are parsed
 * into struct outbox_job; any other line (a thumbnail, an event, the
 * priority= and requested= of an images.request) is kept as it was
 * whenever the job is written again.  priority=high makes a job go
 * before the others (lib/sendqueue); requested=1 marks an upload the
 * cloud asked for (images.request, lib/request).
 *
 * Settling: outbox_defer() re-enqueues the job under its own name with
 * attempts= and next_attempt_ms= (exponential back-off with jitter,
 * capped at retry_max_seconds, never sooner than Retry-After), so the
 * schedule survives a restart (unless a producer queued a newer job of
 * the same name meanwhile: that one stands); outbox_park() moves it to
 * failed/ with the
 * reason; outbox_done() removes the claim; outbox_unclaim() puts it back
 * unchanged.  Each logs what it did (UIDs and accession numbers only).
 *
 * Memory: struct outbox is the caller's and points at the caller's spool,
 * database and worklist; a job's body is malloc'd and freed by the caller.
 */
#ifndef GW_OUTBOX_H
#define GW_OUTBOX_H

#include <signal.h>
#include <sqlite3.h>

#include "err.h"
#include "pacs.h"
#include "relay.h"
#include "spool.h"
#include "store.h"
#include "worklist.h"

#define OUTBOX_IMAGE		"image"
#define OUTBOX_FAILURE		"image_failure"
#define OUTBOX_IMAGE_EVENT	"study.image_received"
#define OUTBOX_MPPS_EVENT	"mpps.status_update"
#define OUTBOX_ALERT_EVENT	"gateway.alert"	/* gatewayctl alerts */

struct outbox {
	struct spool *spool;		/* the relay spool */
	sqlite3 *db;			/* pacs.db */
	struct worklist *worklist;
	long retry_max_seconds;
	int no_match_report;		/* RELAY_NO_MATCH=report */
	volatile sig_atomic_t *stop;	/* non-zero: we are stopping */
	long uploaded, rejected, deferred, events;
	int remaining;			/* jobs still queued (--once) */
};

struct outbox_job {
	char name[SPOOL_NAME_MAX];
	char kind[32];
	char object[STORE_HASH_LEN + 1];
	char sop_instance_uid[PACS_UI], study_instance_uid[PACS_UI];
	char accession_number[PACS_LO];
	char source_message_id[WL_FIELD];	/* image_failure */
	char message_id[RELAY_UUID_LEN + 1];	/* study.image_received */
	char error[512];		/* last error, or the reported one */
	int attempts;
	long long next_attempt_ms;
	int high;			/* priority=high */
	int requested;			/* requested=1 */
	char *body;			/* as read: other keys are kept */
};

/* Milliseconds since the epoch. */
long long outbox_now_ms(void);

/* Copy src into dst, cut to fit, on one line without control bytes. */
void outbox_line(char *dst, size_t dstsz, const char *src);

int outbox_is(const struct outbox_job *j, const char *kind);

/* Fill j from body (j->body is not set). */
void outbox_parse(const char *body, struct outbox_job *j);

/* The job's body as it is now, in *out (malloc'd): its length or -1. */
int outbox_format(const struct outbox_job *j, char **out);

/* Mirror an image job's state in pacs.db instances.upload_status. */
int outbox_set_upload(struct outbox *o, const struct outbox_job *j,
    const char *status, const char *error, long long next_ms);

void outbox_defer(struct outbox *o, struct outbox_job *j, const char *msg,
    const char *why, long retry_after);
int outbox_park(struct outbox *o, struct outbox_job *j, const char *reason);
void outbox_done(struct outbox *o, const struct outbox_job *j);
void outbox_unclaim(struct outbox *o, const struct outbox_job *j);

/* Rewrite a claimed job in place (what was decided before a send). */
int outbox_save_claimed(struct outbox *o, const struct outbox_job *j,
    struct err *e);

/* How often a job without a worklist item looks again (capped by
 * retry_max_seconds), and how its error begins. */
#define OUTBOX_WORKLIST_POLL_SECONDS	60
#define OUTBOX_NO_ITEM			"no worklist item"

/*
 * The worklist item's action_id into j->source_message_id: the item of
 * the accession number an operator assigned to the study (gatewayctl
 * assign), else of the job's own.  0, or 1 when the job was settled
 * here: none yet (it waits, UNMATCHED, looking again every minute; or
 * parked with RELAY_NO_MATCH=report), the study was released by hand
 * (dropped, RELEASED), or worklist.db or pacs.db failed (deferred).
 */
int outbox_find_action(struct outbox *o, struct outbox_job *j);

#endif
