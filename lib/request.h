/*
 * request: the cloud's images.request action (relay/PROTOCOL.md §7) and
 * the upload policy that makes it matter (RELAY_UPLOAD_POLICY).
 *
 * request_images() answers one action: it checks the parameters (exactly
 * one of study_instance_uid, accession_number or sop_instance_uids[],
 * and priority "high" or "normal", default normal), finds the matching
 * instances in pacs.db (read only), and enqueues one kind=image job per
 * instance in the relay spool, with priority= and requested=1, named by
 * the instance's current object as dcmindex names its jobs (so a
 * routine job still waiting is replaced, not doubled).  The jobs are
 * durable (written, one syncfs, renamed, directory fsynced) before the
 * reply says "queued".  An instance uploaded before is queued again: the
 * cloud asked.
 *
 * The reply (malloc'd JSON) is always one of, with the action's
 * action_id (null when it had none):
 *   {"status":"queued","action_id":…,"count":N}    N jobs now queued
 *   {"status":"not_found","action_id":…}           nothing held matches
 *   {"status":"purged","action_id":…,"count":N}    N matches, every one
 *       purged by retention (instances.purged_at set): only the rows are left
 *   {"status":"error","action_id":…,"message":…}   malformed, no Manage
 *       API configured (CLOUD_API_ENDPOINT: nothing would send the jobs),
 *       or pacs.db or the spool failed (nothing was said queued that is
 *       not)
 * When some matches are purged and some held, the held ones are queued
 * and count says how many.  A sop_instance_uids list queues the ones the
 * gateway holds; it is not_found only when it holds none of them.
 *
 * Never: logs, prints, exits, writes pacs.db (beyond bringing its schema
 * up to date).  Two requests at once are serialised on the spool's tmp/
 * (flock), so they never write the same job file together.
 */
#ifndef GW_REQUEST_H
#define GW_REQUEST_H

#include <jansson.h>
#include <sqlite3.h>

#include "err.h"
#include "spool.h"

#define REQUEST_UIDS_MAX	10000	/* sop_instance_uids[] per request */

enum request_policy {
	REQUEST_POLICY_ALL,		/* every image goes up at once */
	REQUEST_POLICY_ON_REQUEST	/* only when the cloud asks */
};

/* RELAY_UPLOAD_POLICY (all, on_request; unset or empty: all).  -1 with
 * e naming the variable on any other value. */
int request_upload_policy(enum request_policy *out, struct err *e);
const char *request_policy_name(enum request_policy p);

/* What was answered, for the caller's log. */
struct request_outcome {
	const char *status;		/* queued, not_found, purged, error */
	const char *by;			/* the key asked by, or NULL */
	int high;			/* priority high */
	long count;			/* queued or purged */
};

/*
 * The reply to an images.request action; NULL only when out of memory.
 * db is pacs.db; relay the relay spool.
 */
char *request_images(sqlite3 *db, struct spool *relay, const json_t *action,
    struct request_outcome *out);

#endif
