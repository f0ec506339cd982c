/*
 * fuzz_relay: libFuzzer target for the relay's control channel messages
 * (lib/cloud/relay relay_parse_accept), as relaylisten reads each text message:
 * the input is the message.  It is read with relaylisten's buffer sizes
 * and with tiny ones; the result must be one of the three promised, an
 * accept's address must be the wss:// one that fits, and a refusal must
 * say why.  The address is then split as lib/cloud/ws opens it (and so is the
 * raw input, as a URL) and percent-encoded as a URL part would be.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloud/cloud.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ws_parse_url's promises: a host that fits, a port, a path in url. */
static void
split_url(const char *url)
{
	char host[256];
	const char *path;
	struct err e;
	int port;

	e.msg[0] = '\0';
	if (ws_parse_url(url, host, sizeof host, &port, &path, &e) == -1) {
		if (e.msg[0] == '\0')
			abort();
		return;
	}
	if (host[0] == '\0' || strlen(host) >= sizeof host || port < 1 ||
	    port > 65535 || path == NULL || *path != '/')
		abort();
}

static void
accept_with(const char *msg, size_t addrsz, size_t idsz)
{
	char address[2048], id[128], enc[4096];
	struct err e;
	int rc;

	e.msg[0] = '\0';
	rc = relay_parse_accept(msg, address, addrsz, id, idsz, &e);
	if (rc == -1 && e.msg[0] == '\0')
		abort();
	if (rc != -1 && rc != 0 && rc != 1)
		abort();
	if (rc != 1)
		return;
	if (strncmp(address, "wss://", 6) != 0 || strlen(address) >= addrsz ||
	    strlen(id) >= idsz)
		abort();
	split_url(address);
	relay_percent_encode(address, enc, sizeof enc, &e);
	relay_percent_encode(id, enc, 8, &e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *msg;

	if ((msg = malloc(size + 1)) == NULL)
		return 0;
	memcpy(msg, data, size);
	msg[size] = '\0';	/* lib/cloud/ws hands over NUL-terminated text */
	accept_with(msg, 2048, 128);
	accept_with(msg, 12, 3);
	accept_with(NULL, 1, 1);
	split_url(msg);
	free(msg);
	return 0;
}
