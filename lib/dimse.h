/*
 * dimse: DIMSE messages (PS3.7) over an upper-layer association.
 *
 * Contract:
 * - A command set is group 0000 in implicit VR little endian with its
 *   group length (0000,0000), encoded with lib/dicom's writer and decoded
 *   with its reader: one codec for commands and data sets.
 * - struct dimse_cmd holds the command fields the services here use
 *   (C-ECHO, C-FIND, C-CANCEL, C-STORE, C-MOVE, C-GET, N-CREATE, N-SET,
 *   N-ACTION, N-EVENT-REPORT); absent ones are zero / empty.  The
 *   sub-operation counts are sent when has_subops is set (C-MOVE and
 *   C-GET responses) and decoded when present.  Decoding checks that (0000,0100) CommandField is there
 *   and that each UID fits; anything else malformed is an error naming
 *   the element, never a crash.
 * - dimse_recv() gives a whole message: the command and, when its
 *   CommandDataSetType says so, the data set (bytes owned by the message,
 *   released by dimse_msg_free()).  dimse_send() sets CommandDataSetType
 *   from whether a data set is given.
 * - Nothing here prints or exits.
 */
#ifndef GW_DIMSE_H
#define GW_DIMSE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ul.h"

#define DIMSE_C_STORE_RQ	0x0001
#define DIMSE_C_STORE_RSP	0x8001
#define DIMSE_C_FIND_RQ		0x0020
#define DIMSE_C_FIND_RSP	0x8020
#define DIMSE_C_ECHO_RQ		0x0030
#define DIMSE_C_ECHO_RSP	0x8030
#define DIMSE_C_GET_RQ		0x0010
#define DIMSE_C_GET_RSP		0x8010
#define DIMSE_C_MOVE_RQ		0x0021
#define DIMSE_C_MOVE_RSP	0x8021
#define DIMSE_C_CANCEL_RQ	0x0FFF
#define DIMSE_N_EVENT_REPORT_RQ	0x0100
#define DIMSE_N_EVENT_REPORT_RSP 0x8100
#define DIMSE_N_ACTION_RQ	0x0130
#define DIMSE_N_ACTION_RSP	0x8130
#define DIMSE_N_SET_RQ		0x0120
#define DIMSE_N_SET_RSP		0x8120
#define DIMSE_N_CREATE_RQ	0x0140
#define DIMSE_N_CREATE_RSP	0x8140

#define DIMSE_NO_DATASET	0x0101
#define DIMSE_DATASET		0x0000

/* Status codes (PS3.7 annex C, PS3.4). */
#define DIMSE_SUCCESS			0x0000
#define DIMSE_PENDING			0xFF00
#define DIMSE_PENDING_WARNING		0xFF01
#define DIMSE_CANCEL			0xFE00
#define DIMSE_WARNING_SUBOPS		0xB000	/* C-MOVE/C-GET: some failed */
#define DIMSE_PROCESSING_FAILURE	0x0110
#define DIMSE_NO_SUCH_SOP_CLASS		0x0118
#define DIMSE_UNRECOGNIZED_OPERATION	0x0211
#define DIMSE_IDENTIFIER_MISMATCH	0xA900
#define DIMSE_UNABLE_TO_PROCESS		0xC000

#define DIMSE_UID_MAX	65

struct dimse_cmd {
	uint16_t command_field;
	uint16_t message_id;
	uint16_t message_id_responded;
	uint16_t priority;
	uint16_t data_set_type;
	uint16_t status;
	char affected_sop_class[DIMSE_UID_MAX];
	char requested_sop_class[DIMSE_UID_MAX];
	char affected_sop_instance[DIMSE_UID_MAX];
	char requested_sop_instance[DIMSE_UID_MAX];
	char error_comment[65];		/* LO: 64 characters */
	char move_originator_aet[17];	/* C-STORE-RQ (0000,1030), optional */
	uint16_t move_originator_id;	/* (0000,1031) */
	char move_destination[17];	/* C-MOVE-RQ (0000,0600) */
	int has_subops;			/* the four counts below are there */
	uint16_t remaining, completed, failed, warning;	/* (0000,1020-23) */
	uint16_t event_type_id;		/* N-EVENT-REPORT (0000,1002) */
	uint16_t action_type_id;	/* N-ACTION (0000,1008) */
};

struct dimse_msg {
	uint8_t ctx_id;
	struct dimse_cmd cmd;
	uint8_t *data;		/* data set bytes, or NULL */
	size_t datalen;
};

/* Encode a command set (implicit VR LE, with group length); *out
 * malloc'd. */
int dimse_encode_command(const struct dimse_cmd *c, uint8_t **out,
    size_t *outlen, struct err *e);

/* Decode a command set. */
int dimse_decode_command(const uint8_t *buf, size_t len,
    struct dimse_cmd *c, struct err *e);

/* 1 when the command announces a data set. */
int dimse_has_dataset(const struct dimse_cmd *c);

/* The response skeleton for a request: command field, message ID being
 * responded to, affected SOP class/instance, status. */
void dimse_response(const struct dimse_cmd *rq, uint16_t status,
    struct dimse_cmd *rsp);

/* The next message: UL_MESSAGE with *m filled, or what ul_recv said
 * (UL_RELEASED, UL_ABORTED, UL_CLOSED), or -1 (we aborted; e set). */
int dimse_recv(struct ul_assoc *a, struct dimse_msg *m, struct err *e);
void dimse_msg_free(struct dimse_msg *m);

/* Send a command (and data set when data is not NULL) on a context. */
int dimse_send(struct ul_assoc *a, uint8_t ctx_id, const struct dimse_cmd *c,
    const uint8_t *data, size_t datalen, struct err *e);

/* A short name for a command field ("C-FIND-RQ"), for logs. */
const char *dimse_command_name(uint16_t command_field);

#endif
