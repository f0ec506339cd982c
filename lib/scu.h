/*
 * scu: the requestor side of DIMSE, shared by the programs that send
 * DICOM themselves (modality-emu's worklist, MPPS and C-STORE; qrscp's
 * C-MOVE sub-associations).
 *
 * Contract:
 * - scu_request() sends one request and waits for its response on the
 *   same association; anything else arriving first is a protocol error
 *   (we abort).  The caller sets the message ID.
 * - scu_store() is one C-STORE of an encoded data set (bytes in the
 *   context's transfer syntax, no meta group) and hands back the peer's
 *   status; success and the B0xx warnings are the caller's to tell apart.
 * - scu_dataset_offset() finds where a Part 10 file's data set starts
 *   (after the meta group), so stored bytes are sent as they are.
 * - Nothing here prints or exits; errors come back in struct err.
 */
#ifndef GW_SCU_H
#define GW_SCU_H

#include <stddef.h>
#include <stdint.h>

#include "dicom.h"
#include "dimse.h"
#include "err.h"
#include "ul.h"

/* Why an association was rejected, in words (PS3.8 9.3.4). */
const char *scu_reject_reason(const struct ul_reject *r);

/* Send rq on ctx_id and wait for its response into *rsp (the caller
 * frees it with dimse_msg_free).  -1 with e set (UL_E_* codes) when the
 * association failed or something else came. */
int scu_request(struct ul_assoc *a, uint8_t ctx_id, const struct dimse_cmd *rq,
    const uint8_t *data, size_t len, struct dimse_msg *rsp, struct err *e);

/* What one C-STORE-RQ says besides its data set. */
struct scu_store_rq {
	const char *sop_class_uid, *sop_instance_uid;
	uint16_t message_id;
	const char *move_originator_aet;	/* NULL unless a C-MOVE's */
	uint16_t move_originator_id;
};

/* Build the C-STORE-RQ command for r. */
void scu_store_command(const struct scu_store_rq *r, struct dimse_cmd *rq);

/* One C-STORE: 0 with *status the peer's (0000, B0xx, Axxx, Cxxx...), or
 * -1 with e set when the association failed. */
int scu_store(struct ul_assoc *a, uint8_t ctx_id, const struct scu_store_rq *r,
    const uint8_t *data, size_t len, uint16_t *status, struct err *e);

/* 1 when a C-STORE status means the object was stored (success, or a
 * B000 / B006 / B007 warning). */
int scu_store_ok(uint16_t status);

/* A-RELEASE (an A-ABORT when the release fails) and free a.  0, or -1
 * with e set when the release failed. */
int scu_close(struct ul_assoc *a, struct err *e);

/* The offset of the data set's first element in a parsed Part 10 file
 * (just past the meta group); -1 with e set when it has none. */
int scu_dataset_offset(const struct dcm *d, size_t *off, struct err *e);

#endif
