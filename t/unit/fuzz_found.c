/*
 * fuzz_found: what fuzzing found, one check each, beside the replay of
 * the inputs themselves (t/0900-fuzz-replay.t).
 *
 * - fuzz_dimse: a command whose UID holds a non-ASCII byte came back
 *   different from every encode/decode round trip (the reader takes the
 *   byte as Latin-1 and gives UTF-8, the writer wrote that UTF-8 as is,
 *   growing by a byte each time).  Values of the default-repertoire VRs
 *   (UI, AE, CS, ...) are now written in ASCII, '?' for what it lacks.
 * - fuzz_upload: a Retry-After of 2^63-1 seconds overflowed the backoff
 *   (seconds * 1000, signed); a Retry-After is now honoured up to
 *   API_RETRY_AFTER_MAX_SECONDS.
 * - fuzz_pixel (a timeout): zero-tagged elements before a byte that is
 *   not zero made the trailing-padding check rescan the rest of the
 *   dataset at each one, quadratic in the file's size; each byte is now
 *   looked at once.  The check runs under an alarm: a parse that does
 *   not end within ZERO_RUN_SECONDS fails it.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dicom/dicom.h"
#include "dicomnet/dicomnet.h"
#include "tap.h"
#include "cloud/cloud.h"

#define T_UID	DCM_TAG(0x0020, 0x000d)
#define T_AET	DCM_TAG(0x0040, 0x0001)
#define T_PN	DCM_TAG(0x0010, 0x0010)

/* Encode one string element with charset, read it back into out. */
static int
string_round_trip(uint32_t tag, const char *charset, const char *utf8,
    char *out, size_t outsz)
{
	struct dcm_builder *b = dcm_build_new();
	struct dcm *d = NULL;
	struct err e = { 0 };
	uint8_t *buf = NULL;
	size_t len;
	int rc = -1;

	if (dcm_build_string(b, tag, NULL, utf8, &e) == 0 &&
	    dcm_build_encode(b, DCM_TS_EXPLICIT_LE, charset, &buf, &len,
	    &e) == 0 &&
	    dcm_parse_dataset(buf, len, DCM_TS_EXPLICIT_LE, 0, &d, &e) == 0 &&
	    dcm_get_string(d, NULL, tag, 0, out, outsz, &e) >= 0)
		rc = 0;
	else
		diag("round trip: %s", e.msg);
	dcm_free(d);
	free(buf);
	dcm_build_free(b);
	return rc;
}

static void
default_repertoire(void)
{
	char out[128];

	string_round_trip(T_UID, NULL, "1.2.840.10\xc2\xb0" "08.1.1", out,
	    sizeof out);
	is_str(out, "1.2.840.10?08.1.1", "a non-ASCII character in a UI is "
	    "written as '?'");
	string_round_trip(T_UID, "ISO_IR 192", "1.2.840.10\xc2\xb0" "08.1.1",
	    out, sizeof out);
	is_str(out, "1.2.840.10?08.1.1", "... even under ISO_IR 192");
	string_round_trip(T_AET, "ISO_IR 100", "M\xc3\x9cNCHEN", out,
	    sizeof out);
	is_str(out, "M?NCHEN", "an AE title is ASCII whatever the character "
	    "set");
	string_round_trip(T_PN, "ISO_IR 192", "M\xc3\xbcller^Anna", out,
	    sizeof out);
	is_str(out, "M\xc3\xbcller^Anna", "a PN still carries the character "
	    "set's characters");
}

/* The command set fuzz_dimse found, as a C-ECHO-RQ with 0xb0 in its UID. */
static void
dimse_uid(void)
{
	static const uint8_t found[] = {
		0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x38, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x12, 0x00, 0x00, 0x00,
		'1', '.', '2', '.', '8', '4', '0', '.', '1', '0', 0xb0, '0',
		'8', '.', '1', '.', '1', 0x00, 0x00, 0x00, 0x00, 0x01, 0x02,
		0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x10, 0x01, 0x02,
		0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x08, 0x02,
		0x00, 0x00, 0x00, 0x01, 0x01,
	};
	struct dimse_cmd c[3];
	struct err e = { 0 };
	uint8_t *buf;
	size_t len;
	int i, rc = 0;

	rc |= dimse_decode_command(found, sizeof found, &c[0], &e);
	for (i = 1; i < 3 && rc == 0; i++) {
		rc |= dimse_encode_command(&c[i - 1], &buf, &len, &e);
		if (rc == 0) {
			rc |= dimse_decode_command(buf, len, &c[i], &e);
			free(buf);
		}
	}
	if (!ok(rc == 0, "the command fuzz_dimse found decodes and "
	    "re-encodes"))
		diag("%s", e.msg);
	ok(rc == 0 && c[1].command_field == DIMSE_C_ECHO_RQ,
	    "it is still a C-ECHO-RQ after a round trip");
	ok(rc == 0 && memcmp(&c[1], &c[2], sizeof c[1]) == 0,
	    "a second round trip changes nothing");
	is_str(rc == 0 ? c[2].affected_sop_class : "", "1.2.840.10?08.1.1",
	    "the UID's stray byte is sent back as '?'");
}

static void
retry_after(void)
{
	long max = API_RETRY_AFTER_MAX_SECONDS;

	is_long(api_parse_retry_after("9223372036854775807\r\n", 0),
	    LONG_MAX, "Retry-After: 2^63-1 still parses");
	ok(api_backoff_ms(1, 300, LONG_MAX, 0) == max * 1000LL,
	    "a Retry-After of 2^63-1 s waits API_RETRY_AFTER_MAX_SECONDS");
	ok(api_backoff_ms(1, 300, 120, 0) == 120000,
	    "a Retry-After of 120 s still waits 120 s");
}

#define ZERO_RUN_BYTES		(4u << 20)
#define ZERO_RUN_SECONDS	60

static void
zero_run_alarm(int sig)
{
	static const char msg[] = "not ok - a dataset of zero-tagged "
	    "elements did not parse within the alarm (quadratic again?)\n";

	(void)sig;
	(void)!write(STDOUT_FILENO, msg, sizeof msg - 1);
	_exit(1);
}

/* 4 MiB of zero-tagged elements, then a real one: parsed in one pass. */
static void
zero_run(void)
{
	static const uint8_t uid[] = { 0x08, 0x00, 0x18, 0x00, 4, 0, 0, 0,
	    '1', '.', '2', 0 };	/* implicit VR: (0008,0018) "1.2" */
	size_t len = ZERO_RUN_BYTES + sizeof uid;
	uint8_t *buf = calloc(1, len);
	struct dcm *d = NULL;
	struct err e = { 0 };
	char out[16] = "";
	int rc;

	if (buf == NULL) {
		ok(0, "calloc %zu", len);
		return;
	}
	memcpy(buf + ZERO_RUN_BYTES, uid, sizeof uid);
	signal(SIGALRM, zero_run_alarm);
	alarm(ZERO_RUN_SECONDS);
	rc = dcm_parse_dataset(buf, len, DCM_TS_IMPLICIT_LE, 0, &d, &e);
	alarm(0);
	ok(1, "4 MiB of zero-tagged elements before a real one: the parse "
	    "ends (%s)", rc == 0 ? "parsed" : e.msg);
	if (rc == 0)
		dcm_get_string(d, NULL, DCM_TAG(0x0008, 0x0018), 0, out,
		    sizeof out, &e);
	is_str(rc == 0 ? out : e.msg, "1.2", "... and finds the element after "
	    "them");
	dcm_free(d);
	free(buf);
}

int
main(void)
{
	default_repertoire();
	dimse_uid();
	retry_after();
	zero_run();
	return tap_done();
}
