/*
 * uploads: the images' way to the cloud, as an operator sees and steers
 * it (gatewayctl waiting, assign, release, resend; the uploads lines of
 * gatewayd status and the health report).  Over pacs.db only: the jobs
 * it queues go to the relay spool as dcmindex writes them (named by the
 * object, so a job already queued is replaced, not doubled).
 *
 * instances.upload_status (sql/pacs.sql versions 3 and 8): PENDING,
 * UPLOADING, WAITING (a transient failure: retried), UNMATCHED (no
 * worklist item yet), HELD (the cloud was off), FAILED, RELEASED,
 * COMPLETE.  A study's hand-made settings live in studies:
 * upload_accession_number (assign) and upload_released_at (release);
 * relaysend reads them for every job (lib/outbox).
 *
 * A KEY names studies by accession number or Study Instance UID.
 * Nothing here prints or logs; patient names leave only through
 * uploads_waiting(), for the caller to show or not.
 */
#ifndef GW_UPLOADS_H
#define GW_UPLOADS_H

#include <sqlite3.h>

#include "err.h"
#include "spool.h"

struct uploads_count {
	long long total;	/* instances */
	long long pending, uploading, waiting, unmatched, held, failed,
	    released, complete;
	long long unmatched_studies;
	char oldest_unmatched[40];	/* its received_at, or "" */
};

/* Instances per upload_status, and the studies waiting for an item. */
int uploads_count(sqlite3 *db, struct uploads_count *c, struct err *e);

/* Which of the instances uploads_queue() queues. */
enum uploads_which {
	UPLOADS_STUDY_ALL,	/* the KEY's studies, all (resend) */
	UPLOADS_STUDY_UNSENT,	/* the KEY's studies, not COMPLETE (assign) */
	UPLOADS_HELD		/* every HELD instance (resend --held) */
};

/*
 * Queue an image job for each chosen instance whose file is still in
 * the store (purged ones cannot go again), set their rows PENDING, and
 * (for a KEY) clear the studies' release; then make the jobs visible.
 * The count queued, or -1 with e set.
 */
int uploads_queue(sqlite3 *db, struct spool *relay, enum uploads_which w,
    const char *key, struct err *e);

/* The number of studies KEY names (0: none), or -1. */
int uploads_studies(sqlite3 *db, const char *key, struct err *e);

/*
 * Name the worklist item (by its accession number) the KEY's studies go
 * under, then queue their unsent images (UPLOADS_STUDY_UNSENT).  The
 * caller checks that the item exists.  The count queued, or -1.
 */
int uploads_assign(sqlite3 *db, struct spool *relay, const char *key,
    const char *accession, struct err *e);

/*
 * Give up the KEY's studies: released now; their images that are not
 * COMPLETE or UPLOADING become RELEASED (relaysend drops their jobs, and
 * any later ones, at its next look).  The count of images released, or
 * -1.
 */
int uploads_release(sqlite3 *db, const char *key, struct err *e);

/* One study waiting for a worklist item (uploads_waiting). */
struct uploads_study {
	const char *accession_number, *study_instance_uid, *patient_name;
	const char *assigned;	/* upload_accession_number, or "" */
	const char *oldest;	/* received_at of its first waiting image */
	long long images;
};

/* Each study with UNMATCHED images, oldest first: fn(s, arg); a non-zero
 * return stops.  0, or -1 with e set. */
int uploads_waiting(sqlite3 *db, int (*fn)(const struct uploads_study *,
    void *), void *arg, struct err *e);

#endif
