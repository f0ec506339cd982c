/* scu: the requestor side of DIMSE (see dicomnet/dicomnet.h). */
#include "dicomnet/dicomnet.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *
scu_reject_reason(const struct ul_reject *r)
{
	return ul_reject_reason(r);
}

/* The response to rq, just sent: anything else is a protocol error. */
static int
await_response(struct ul_assoc *a, const struct dimse_cmd *rq,
    struct dimse_msg *rsp, struct err *e)
{
	int k = dimse_recv(a, rsp, e);

	if (k == UL_MESSAGE && rsp->cmd.command_field ==
	    (rq->command_field | 0x8000) &&
	    rsp->cmd.message_id_responded == rq->message_id)
		return 0;
	if (k == UL_MESSAGE) {
		uint16_t f = rsp->cmd.command_field;

		dimse_msg_free(rsp);
		ul_abort(a, 0, 0);
		return err_set(e, UL_E_PROTOCOL, "unexpected %s in answer to "
		    "%s", dimse_command_name(f),
		    dimse_command_name(rq->command_field));
	}
	if (k == UL_ABORTED)
		return err_set(e, UL_E_ABORTED, "the peer aborted");
	if (k == UL_CLOSED || k == UL_RELEASED)
		return err_set(e, UL_E_CLOSED, "the peer closed the "
		    "association");
	return -1;
}

int
scu_request(struct ul_assoc *a, uint8_t ctx_id, const struct dimse_cmd *rq,
    const uint8_t *data, size_t len, struct dimse_msg *rsp, struct err *e)
{
	if (dimse_send(a, ctx_id, rq, data, len, e) == -1)
		return -1;
	return await_response(a, rq, rsp, e);
}

void
scu_store_command(const struct scu_store_rq *r, struct dimse_cmd *rq)
{
	memset(rq, 0, sizeof *rq);
	rq->command_field = DIMSE_C_STORE_RQ;
	rq->message_id = r->message_id;
	snprintf(rq->affected_sop_class, DIMSE_UID_MAX, "%s",
	    r->sop_class_uid);
	snprintf(rq->affected_sop_instance, DIMSE_UID_MAX, "%s",
	    r->sop_instance_uid);
	if (r->move_originator_aet != NULL &&
	    r->move_originator_aet[0] != '\0') {
		snprintf(rq->move_originator_aet,
		    sizeof rq->move_originator_aet, "%s",
		    r->move_originator_aet);
		rq->move_originator_id = r->move_originator_id;
	}
}

/* The status of a C-STORE response m (freed here). */
static int
store_status(struct dimse_msg *m, uint16_t *status, struct err *e)
{
	*status = m->cmd.status;
	if (!scu_store_ok(m->cmd.status))
		err_set(e, m->cmd.status, "C-STORE refused with status 0x%04X "
		    "%s", m->cmd.status, m->cmd.error_comment);
	dimse_msg_free(m);
	return 0;
}

int
scu_store(struct ul_assoc *a, uint8_t ctx_id, const struct scu_store_rq *r,
    const uint8_t *data, size_t len, uint16_t *status, struct err *e)
{
	struct dimse_cmd rq;
	struct dimse_msg m;

	scu_store_command(r, &rq);
	if (scu_request(a, ctx_id, &rq, data, len, &m, e) == -1)
		return -1;
	return store_status(&m, status, e);
}

int
scu_store_source(struct ul_assoc *a, uint8_t ctx_id,
    const struct scu_store_rq *r, const struct ul_source *src,
    uint16_t *status, struct err *e)
{
	struct dimse_cmd rq;
	struct dimse_msg m;

	scu_store_command(r, &rq);
	if (dimse_send_source(a, ctx_id, &rq, src, e) == -1 ||
	    await_response(a, &rq, &m, e) == -1)
		return -1;
	return store_status(&m, status, e);
}

int
scu_store_ok(uint16_t status)
{
	return status == DIMSE_SUCCESS || status == 0xB000 ||
	    status == 0xB006 || status == 0xB007;
}

int
scu_close(struct ul_assoc *a, struct err *e)
{
	int rc = ul_release(a, e);

	if (rc == -1)
		ul_abort(a, 0, 0);
	ul_free(a);
	return rc;
}

int
scu_dataset_offset(const struct dcm *d, size_t *off, struct err *e)
{
	size_t i, n = dcm_elem_count(d, NULL);

	for (i = 0; i < n; i++) {
		const struct dcm_elem *el = dcm_elem_at(d, NULL, i);

		if (DCM_GROUP(el->tag) != 2) {
			*off = el->offset;
			return 0;
		}
	}
	return err_set(e, DCM_E_MALFORMED, "no data set after the meta "
	    "group");
}
