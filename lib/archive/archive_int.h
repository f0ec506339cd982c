/*
 * archive_int.h: what lib/archive's modules share beyond archive.h.
 */
#ifndef GW_ARCHIVE_INT_H
#define GW_ARCHIVE_INT_H

/*
 * The upload states whose store file dcmpurge may free (the "Purged"
 * lines of upload_state.c's table), as a condition on instances i for
 * purge.c's query: ?3 is the age cutoff (received_at before it), ?4 1
 * on the watermark path.  COMPLETE: past the cutoff or on the watermark
 * path; LOCAL (the cloud never confirms it): past the cutoff only.
 */
#define UPLOAD_STATE_FREEABLE \
	"((i.upload_status = 'COMPLETE' AND (i.received_at < ?3 OR ?4))" \
	" OR (i.upload_status = 'LOCAL' AND i.received_at < ?3))"

#endif
