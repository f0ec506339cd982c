/*
 * dimse: DIMSE command sets and messages (see dicomnet/dicomnet.h; PS3.7 9.3, 10.3).
 *
 * Commands go through lib/dicom/dicom: the builder writes them (the group
 * length is computed by encoding twice: the second time with (0000,0000)
 * holding the length of the first), the reader parses them.
 */
#include "dicomnet/dicomnet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom.h"

#define C_GROUP_LEN	DCM_TAG(0x0000, 0x0000)
#define C_AFF_CLASS	DCM_TAG(0x0000, 0x0002)
#define C_REQ_CLASS	DCM_TAG(0x0000, 0x0003)
#define C_FIELD		DCM_TAG(0x0000, 0x0100)
#define C_MSG_ID	DCM_TAG(0x0000, 0x0110)
#define C_MSG_ID_RSP	DCM_TAG(0x0000, 0x0120)
#define C_PRIORITY	DCM_TAG(0x0000, 0x0700)
#define C_DS_TYPE	DCM_TAG(0x0000, 0x0800)
#define C_STATUS	DCM_TAG(0x0000, 0x0900)
#define C_ERR_COMMENT	DCM_TAG(0x0000, 0x0902)
#define C_AFF_INST	DCM_TAG(0x0000, 0x1000)
#define C_REQ_INST	DCM_TAG(0x0000, 0x1001)
#define C_MOVE_AET	DCM_TAG(0x0000, 0x1030)
#define C_MOVE_ID	DCM_TAG(0x0000, 0x1031)
#define C_MOVE_DEST	DCM_TAG(0x0000, 0x0600)
#define C_EVENT_TYPE	DCM_TAG(0x0000, 0x1002)
#define C_ACTION_TYPE	DCM_TAG(0x0000, 0x1008)
#define C_REMAINING	DCM_TAG(0x0000, 0x1020)
#define C_COMPLETED	DCM_TAG(0x0000, 0x1021)
#define C_FAILED	DCM_TAG(0x0000, 0x1022)
#define C_WARNING	DCM_TAG(0x0000, 0x1023)

static int
is_request(uint16_t field)
{
	return (field & 0x8000) == 0;
}

static int
has_priority(uint16_t field)
{
	return field == DIMSE_C_STORE_RQ || field == DIMSE_C_FIND_RQ ||
	    field == DIMSE_C_GET_RQ || field == DIMSE_C_MOVE_RQ;
}

/* Event and action type IDs travel in requests and responses alike. */
static int
build_type_ids(struct dcm_builder *b, const struct dimse_cmd *c,
    struct err *e)
{
	uint16_t f = c->command_field & 0x7fff;

	if (f == DIMSE_N_EVENT_REPORT_RQ && (c->event_type_id != 0 ||
	    is_request(c->command_field)) &&
	    dcm_build_u16(b, C_EVENT_TYPE, c->event_type_id, e) == -1)
		return -1;
	if (f == DIMSE_N_ACTION_RQ && (c->action_type_id != 0 ||
	    is_request(c->command_field)) &&
	    dcm_build_u16(b, C_ACTION_TYPE, c->action_type_id, e) == -1)
		return -1;
	return 0;
}

static int
build_subops(struct dcm_builder *b, const struct dimse_cmd *c,
    struct err *e)
{
	if (!c->has_subops)
		return 0;
	/* Remaining is for pending responses, and says what a cancel
	 * left undone (PS3.4 C.4.2.1.6). */
	if (((c->status == DIMSE_PENDING || c->status == DIMSE_CANCEL) &&
	    dcm_build_u16(b, C_REMAINING, c->remaining, e) == -1) ||
	    dcm_build_u16(b, C_COMPLETED, c->completed, e) == -1 ||
	    dcm_build_u16(b, C_FAILED, c->failed, e) == -1 ||
	    dcm_build_u16(b, C_WARNING, c->warning, e) == -1)
		return -1;
	return 0;
}

static int
add_uid(struct dcm_builder *b, uint32_t tag, const char *uid, struct err *e)
{
	if (uid[0] == '\0')
		return 0;
	return dcm_build_string(b, tag, "UI", uid, e);
}

static int
build_command(struct dcm_builder *b, const struct dimse_cmd *c,
    struct err *e)
{
	uint16_t f = c->command_field;

	if (add_uid(b, C_AFF_CLASS, c->affected_sop_class, e) == -1 ||
	    add_uid(b, C_REQ_CLASS, c->requested_sop_class, e) == -1 ||
	    dcm_build_u16(b, C_FIELD, f, e) == -1 ||
	    add_uid(b, C_AFF_INST, c->affected_sop_instance, e) == -1 ||
	    add_uid(b, C_REQ_INST, c->requested_sop_instance, e) == -1 ||
	    dcm_build_u16(b, C_DS_TYPE, c->data_set_type, e) == -1 ||
	    build_type_ids(b, c, e) == -1)
		return -1;
	if (is_request(f)) {
		if (dcm_build_u16(b, C_MSG_ID, c->message_id, e) == -1)
			return -1;
		if (has_priority(f) &&
		    dcm_build_u16(b, C_PRIORITY, c->priority, e) == -1)
			return -1;
		if (f == DIMSE_C_CANCEL_RQ && dcm_build_u16(b, C_MSG_ID_RSP,
		    c->message_id_responded, e) == -1)
			return -1;
		if (f == DIMSE_C_MOVE_RQ && dcm_build_string(b, C_MOVE_DEST,
		    "AE", c->move_destination, e) == -1)
			return -1;
		if (c->move_originator_aet[0] != '\0' &&
		    (dcm_build_string(b, C_MOVE_AET, "AE",
		    c->move_originator_aet, e) == -1 ||
		    dcm_build_u16(b, C_MOVE_ID, c->move_originator_id,
		    e) == -1))
			return -1;
		return 0;
	}
	if (dcm_build_u16(b, C_MSG_ID_RSP, c->message_id_responded, e) == -1 ||
	    dcm_build_u16(b, C_STATUS, c->status, e) == -1 ||
	    build_subops(b, c, e) == -1)
		return -1;
	if (c->error_comment[0] != '\0' && dcm_build_string(b, C_ERR_COMMENT,
	    "LO", c->error_comment, e) == -1)
		return -1;
	return 0;
}

int
dimse_encode_command(const struct dimse_cmd *c, uint8_t **out,
    size_t *outlen, struct err *e)
{
	struct dcm_builder *b;
	uint8_t *first;
	size_t firstlen;
	int rc = -1;

	if ((b = dcm_build_new()) == NULL)
		return err_set(e, ENOMEM, "out of memory");
	if (build_command(b, c, e) == 0 &&
	    dcm_build_encode(b, DCM_TS_IMPLICIT_LE, NULL, &first, &firstlen,
	    e) == 0) {
		free(first);
		if (dcm_build_u32(b, C_GROUP_LEN, (uint32_t)firstlen, e) == 0)
			rc = dcm_build_encode(b, DCM_TS_IMPLICIT_LE, NULL, out,
			    outlen, e);
	}
	dcm_build_free(b);
	return rc;
}

static int
get_u16(const struct dcm *d, uint32_t tag, int required, uint16_t *out,
    struct err *e)
{
	const struct dcm_elem *el = dcm_find(d, NULL, tag);

	*out = 0;
	if (el == NULL) {
		if (required)
			return err_set(e, DCM_E_NOT_FOUND, "command lacks "
			    "(%04X,%04X)", DCM_GROUP(tag), DCM_ELEMENT(tag));
		return 0;
	}
	if (el->length != 2 || el->value == NULL)
		return err_set(e, DCM_E_MALFORMED, "command element "
		    "(%04X,%04X) is not a US value", DCM_GROUP(tag),
		    DCM_ELEMENT(tag));
	*out = (uint16_t)(el->value[0] | el->value[1] << 8);
	return 0;
}

static int
get_text(const struct dcm *d, uint32_t tag, char *out, size_t outsz,
    struct err *e)
{
	const struct dcm_elem *el = dcm_find(d, NULL, tag);
	int n;

	out[0] = '\0';
	if (el == NULL || el->length == 0)
		return 0;
	if (el->length >= outsz * 2)
		return err_set(e, DCM_E_MALFORMED, "command element "
		    "(%04X,%04X) too long", DCM_GROUP(tag), DCM_ELEMENT(tag));
	n = dcm_get_string(d, NULL, tag, 0, out, outsz, e);
	if (n < 0)
		return -1;
	if ((size_t)n >= outsz - 1 && el->length >= outsz)
		return err_set(e, DCM_E_MALFORMED, "command element "
		    "(%04X,%04X) too long", DCM_GROUP(tag), DCM_ELEMENT(tag));
	return 0;
}

static int
decode_fields(const struct dcm *d, struct dimse_cmd *c, struct err *e)
{
	if (get_u16(d, C_FIELD, 1, &c->command_field, e) == -1 ||
	    get_u16(d, C_MSG_ID, 0, &c->message_id, e) == -1 ||
	    get_u16(d, C_MSG_ID_RSP, 0, &c->message_id_responded, e) == -1 ||
	    get_u16(d, C_PRIORITY, 0, &c->priority, e) == -1 ||
	    get_u16(d, C_DS_TYPE, 0, &c->data_set_type, e) == -1 ||
	    get_u16(d, C_STATUS, 0, &c->status, e) == -1 ||
	    get_u16(d, C_MOVE_ID, 0, &c->move_originator_id, e) == -1 ||
	    get_u16(d, C_EVENT_TYPE, 0, &c->event_type_id, e) == -1 ||
	    get_u16(d, C_ACTION_TYPE, 0, &c->action_type_id, e) == -1 ||
	    get_u16(d, C_REMAINING, 0, &c->remaining, e) == -1 ||
	    get_u16(d, C_COMPLETED, 0, &c->completed, e) == -1 ||
	    get_u16(d, C_FAILED, 0, &c->failed, e) == -1 ||
	    get_u16(d, C_WARNING, 0, &c->warning, e) == -1)
		return -1;
	c->has_subops = dcm_find(d, NULL, C_COMPLETED) != NULL;
	if (dcm_find(d, NULL, C_DS_TYPE) == NULL)
		c->data_set_type = DIMSE_NO_DATASET;
	if (get_text(d, C_AFF_CLASS, c->affected_sop_class,
	    sizeof c->affected_sop_class, e) == -1 ||
	    get_text(d, C_REQ_CLASS, c->requested_sop_class,
	    sizeof c->requested_sop_class, e) == -1 ||
	    get_text(d, C_AFF_INST, c->affected_sop_instance,
	    sizeof c->affected_sop_instance, e) == -1 ||
	    get_text(d, C_REQ_INST, c->requested_sop_instance,
	    sizeof c->requested_sop_instance, e) == -1 ||
	    get_text(d, C_ERR_COMMENT, c->error_comment,
	    sizeof c->error_comment, e) == -1 ||
	    get_text(d, C_MOVE_AET, c->move_originator_aet,
	    sizeof c->move_originator_aet, e) == -1 ||
	    get_text(d, C_MOVE_DEST, c->move_destination,
	    sizeof c->move_destination, e) == -1)
		return -1;
	return 0;
}

int
dimse_decode_command(const uint8_t *buf, size_t len, struct dimse_cmd *c,
    struct err *e)
{
	struct dcm *d;
	int rc;

	memset(c, 0, sizeof *c);
	if (dcm_parse_dataset(buf, len, DCM_TS_IMPLICIT_LE, 0, &d, e) == -1)
		return err_wrap(e, "command set");
	/* an empty set has nothing to look up (and dcm_find on an empty
	 * dataset trips UBSan in the reader: reported) */
	if (dcm_elem_count(d, NULL) == 0)
		rc = err_set(e, DCM_E_NOT_FOUND, "empty command set");
	else
		rc = decode_fields(d, c, e);
	dcm_free(d);
	return rc;
}

int
dimse_has_dataset(const struct dimse_cmd *c)
{
	return c->data_set_type != DIMSE_NO_DATASET;
}

void
dimse_response(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp)
{
	memset(rsp, 0, sizeof *rsp);
	rsp->command_field = rq->command_field | 0x8000;
	rsp->message_id_responded = rq->message_id;
	rsp->status = status;
	rsp->data_set_type = DIMSE_NO_DATASET;
	memcpy(rsp->affected_sop_class, rq->affected_sop_class[0] ?
	    rq->affected_sop_class : rq->requested_sop_class,
	    DIMSE_UID_MAX);
	memcpy(rsp->affected_sop_instance, rq->affected_sop_instance[0] ?
	    rq->affected_sop_instance : rq->requested_sop_instance,
	    DIMSE_UID_MAX);
	if (rq->command_field == DIMSE_C_FIND_RQ ||
	    rq->command_field == DIMSE_C_ECHO_RQ ||
	    rq->command_field == DIMSE_C_MOVE_RQ ||
	    rq->command_field == DIMSE_C_GET_RQ)
		rsp->affected_sop_instance[0] = '\0';
	rsp->event_type_id = rq->event_type_id;
	rsp->action_type_id = rq->action_type_id;
}

void
dimse_msg_free(struct dimse_msg *m)
{
	free(m->data);
	m->data = NULL;
	m->datalen = 0;
}

/* Receive the data set that follows a command on the same context. */
static int
recv_dataset(struct ul_assoc *a, struct dimse_msg *m, struct err *e)
{
	struct ul_msg part;
	int r;

	r = ul_recv(a, &part, e);
	if (r != UL_MESSAGE) {
		if (r != -1)
			err_set(e, UL_E_PROTOCOL, "association ended before "
			    "the data set");
		return r;
	}
	if (part.is_command || part.ctx_id != m->ctx_id) {
		free(part.data);
		ul_abort(a, 2, 5);
		return err_set(e, UL_E_PROTOCOL, "expected a data set on "
		    "context %u (aborted)", m->ctx_id);
	}
	m->data = part.data;
	m->datalen = part.len;
	return UL_MESSAGE;
}

int
dimse_recv(struct ul_assoc *a, struct dimse_msg *m, struct err *e)
{
	struct ul_msg part;
	int r;

	memset(m, 0, sizeof *m);
	if ((r = ul_recv(a, &part, e)) != UL_MESSAGE)
		return r;
	m->ctx_id = part.ctx_id;
	if (!part.is_command) {
		free(part.data);
		ul_abort(a, 2, 5);
		return err_set(e, UL_E_PROTOCOL, "data set without a command "
		    "(aborted)");
	}
	r = dimse_decode_command(part.data, part.len, &m->cmd, e);
	free(part.data);
	if (r == -1) {
		ul_abort(a, 2, 6);
		return err_wrap(e, "aborted");
	}
	if (!dimse_has_dataset(&m->cmd))
		return UL_MESSAGE;
	return recv_dataset(a, m, e);
}

int
dimse_send(struct ul_assoc *a, uint8_t ctx_id, const struct dimse_cmd *c,
    const uint8_t *data, size_t datalen, struct err *e)
{
	struct dimse_cmd cc = *c;
	uint8_t *buf;
	size_t len;
	int rc;

	cc.data_set_type = data != NULL ? DIMSE_DATASET : DIMSE_NO_DATASET;
	if (dimse_encode_command(&cc, &buf, &len, e) == -1)
		return -1;
	rc = ul_send(a, ctx_id, 1, buf, len, e);
	free(buf);
	if (rc == -1 || data == NULL)
		return rc;
	return ul_send(a, ctx_id, 0, data, datalen, e);
}

int
dimse_send_source(struct ul_assoc *a, uint8_t ctx_id,
    const struct dimse_cmd *c, const struct ul_source *src, struct err *e)
{
	struct dimse_cmd cc = *c;
	uint8_t *buf;
	size_t len;
	int rc;

	cc.data_set_type = DIMSE_DATASET;
	if (dimse_encode_command(&cc, &buf, &len, e) == -1)
		return -1;
	rc = ul_send(a, ctx_id, 1, buf, len, e);
	free(buf);
	return rc == -1 ? -1 : ul_send_source(a, ctx_id, 0, src, e);
}

const char *
dimse_command_name(uint16_t f)
{
	switch (f) {
	case DIMSE_C_STORE_RQ: return "C-STORE-RQ";
	case DIMSE_C_STORE_RSP: return "C-STORE-RSP";
	case DIMSE_C_FIND_RQ: return "C-FIND-RQ";
	case DIMSE_C_FIND_RSP: return "C-FIND-RSP";
	case DIMSE_C_ECHO_RQ: return "C-ECHO-RQ";
	case DIMSE_C_ECHO_RSP: return "C-ECHO-RSP";
	case DIMSE_C_CANCEL_RQ: return "C-CANCEL-RQ";
	case DIMSE_N_SET_RQ: return "N-SET-RQ";
	case DIMSE_N_SET_RSP: return "N-SET-RSP";
	case DIMSE_N_CREATE_RQ: return "N-CREATE-RQ";
	case DIMSE_N_CREATE_RSP: return "N-CREATE-RSP";
	case DIMSE_C_GET_RQ: return "C-GET-RQ";
	case DIMSE_C_GET_RSP: return "C-GET-RSP";
	case DIMSE_C_MOVE_RQ: return "C-MOVE-RQ";
	case DIMSE_C_MOVE_RSP: return "C-MOVE-RSP";
	case DIMSE_N_EVENT_REPORT_RQ: return "N-EVENT-REPORT-RQ";
	case DIMSE_N_EVENT_REPORT_RSP: return "N-EVENT-REPORT-RSP";
	case DIMSE_N_ACTION_RQ: return "N-ACTION-RQ";
	case DIMSE_N_ACTION_RSP: return "N-ACTION-RSP";
	default: return "unknown";
	}
}
