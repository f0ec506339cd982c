/*
 * fuzz_dimse: libFuzzer target for DIMSE command set decoding (lib/dicomnet/dimse)
 * on its own, without the upper layer in front: the input is a command
 * set as a P-DATA command fragment carries it.  A command that decodes
 * is encoded again and must decode to the same command field; encoding
 * that second decoding must then give the same command exactly (our own
 * encoding is a fixed point).  The response skeleton and the command's
 * name are built for every decoded command, as mwlscp does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dicomnet/dicomnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Encode c and decode it into *out: 0, or -1 when the encoder refuses. */
static int
round_trip(const struct dimse_cmd *c, struct dimse_cmd *out)
{
	struct err e;
	uint8_t *buf;
	size_t len;

	if (dimse_encode_command(c, &buf, &len, &e) == -1)
		return -1;
	if (dimse_decode_command(buf, len, out, &e) == -1)
		abort();	/* our own encoding must decode */
	free(buf);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dimse_cmd c, again, third, rsp;
	struct err e;

	e.msg[0] = '\0';
	if (dimse_decode_command(data, size, &c, &e) == -1) {
		if (e.msg[0] == '\0')
			abort();	/* every failure explains itself */
		return 0;
	}
	if (dimse_command_name(c.command_field) == NULL)
		abort();
	(void)dimse_has_dataset(&c);
	dimse_response(&c, DIMSE_SUCCESS, &rsp);
	if (round_trip(&rsp, &again) == 0 &&
	    again.command_field != rsp.command_field)
		abort();
	if (round_trip(&c, &again) == -1)
		return 0;
	if (again.command_field != c.command_field)
		abort();
	if (round_trip(&again, &third) == -1 ||
	    memcmp(&again, &third, sizeof again) != 0)
		abort();
	return 0;
}
