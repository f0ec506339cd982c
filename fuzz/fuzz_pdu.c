/*
 * fuzz_pdu: libFuzzer target for the upper layer and DIMSE decoding.
 *
 * The input is the byte stream a peer sends: written into one end of a
 * socketpair (then closed), read by ul_accept() and dimse_recv() on the
 * other, exactly as mwlscp does.  When the first byte is odd a valid
 * A-ASSOCIATE-RQ is put in front, so most inputs reach data transfer:
 * P-DATA splitting and reassembly, command decoding, data set parsing,
 * release and abort.  Each decoded command is also re-encoded and decoded
 * again, and must come back the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dicom/dicom.h"
#include "dicomnet/dicomnet.h"

#define PDU_INPUT_MAX	32768
#define MAX_MESSAGES	64

static const uint8_t rq_prefix[] = {
	0x01, 0x00, 0x00, 0x00, 0x00, 0xa0,
	0x00, 0x01, 0x00, 0x00,
	'S', 'C', 'R', 'E', 'E', 'N', 'I', 'N', 'G', '_', 'M', 'W', 'L', ' ',
	' ', ' ',
	'F', 'U', 'Z', 'Z', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ',
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0x10, 0x00, 0x00, 0x15, '1', '.', '2', '.', '8', '4', '0', '.', '1',
	'0', '0', '0', '8', '.', '3', '.', '1', '.', '1', '.', '1',
	0x20, 0x00, 0x00, 0x33, 0x01, 0x00, 0x00, 0x00,
	0x30, 0x00, 0x00, 0x16, '1', '.', '2', '.', '8', '4', '0', '.', '1',
	'0', '0', '0', '8', '.', '5', '.', '1', '.', '4', '.', '3', '1',
	0x40, 0x00, 0x00, 0x11, '1', '.', '2', '.', '8', '4', '0', '.', '1',
	'0', '0', '0', '8', '.', '1', '.', '2',
	0x50, 0x00, 0x00, 0x08, 0x51, 0x00, 0x00, 0x04, 0x00, 0x00, 0x40, 0x00,
};

static void
check_command(const struct dimse_cmd *c)
{
	struct dimse_cmd again;
	uint8_t *buf;
	size_t len;

	if (dimse_encode_command(c, &buf, &len, NULL) == -1)
		return;		/* e.g. a text field the writer refuses */
	if (dimse_decode_command(buf, len, &again, NULL) == -1)
		abort();	/* our own encoding must decode */
	if (again.command_field != c->command_field)
		abort();
	free(buf);
}

static void
serve(struct ul_assoc *a)
{
	struct dimse_msg m;
	struct dimse_cmd rsp;
	const struct ul_context *ctx;
	struct dcm *d;
	int i, r;

	for (i = 0; i < MAX_MESSAGES; i++) {
		r = dimse_recv(a, &m, NULL);
		if (r == UL_RELEASED)
			ul_linger(a);
		if (r != UL_MESSAGE)
			return;
		check_command(&m.cmd);
		ctx = ul_context(a, m.ctx_id);
		if (ctx == NULL)
			abort();	/* ul_recv promised an accepted one */
		if (m.data != NULL && dcm_parse_dataset(m.data, m.datalen,
		    ctx->transfer_syntax, 0, &d, NULL) == 0)
			dcm_free(d);
		dimse_response(&m.cmd, 0, &rsp);
		dimse_send(a, m.ctx_id, &rsp, NULL, 0, NULL);
		dimse_msg_free(&m);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const sops[] = {
		"1.2.840.10008.1.1", "1.2.840.10008.5.1.4.31",
		"1.2.840.10008.3.1.2.3.3", NULL
	};
	struct ul_config cfg = { 0 };
	struct ul_assoc *a = NULL;
	int sv[2];

	if (size == 0 || size > PDU_INPUT_MAX)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		return 0;
	if (data[0] & 1)
		(void)!write(sv[0], rq_prefix, sizeof rq_prefix);
	(void)!write(sv[0], data + 1, size - 1);
	shutdown(sv[0], SHUT_WR);
	cfg.ae_title = "SCREENING_MWL";
	cfg.abstract_syntaxes = sops;
	cfg.artim_ms = cfg.idle_ms = cfg.dimse_ms = 200;
	cfg.max_pdu = 16384;
	if (ul_accept(&a, sv[1], &cfg, NULL) == 0)
		serve(a);
	ul_free(a);		/* closes sv[1] */
	close(sv[0]);
	return 0;
}
