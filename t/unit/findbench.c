/*
 * findbench: a benchmark helper, not a unit test.  Times C-FIND requests
 * sent one after the other on ONE association (lib/dicomnet), so that the
 * figure is the server's answer and not a client's start-up or its
 * association set-up (bench/qr):
 *
 *	findbench [--calling AE] [--called AE] [--model study|patient]
 *	          [--warmup N] HOST PORT N KEY=VALUE...
 *
 * KEY is a dictionary keyword (QueryRetrieveLevel, PatientID, StudyDate...)
 * and VALUE its value, empty for a return key.  WARMUP (default 5) + N
 * requests go out in sequence; each is timed from just before its request
 * is written to the socket to its final (non-pending) response, the
 * pending responses' data sets taken off the wire and counted, not
 * parsed: the client's cost is the same whatever the server.
 *
 * Prints one JSON object on stdout: {"ms":[N latencies in milliseconds],
 * "matches":[the distinct match counts seen]}.  Exit 0; 1 when the
 * association fails, a response's status is neither pending nor success,
 * or a final response is missing; 2 on a bad argument.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dicom/dicom.h"
#include "dicomnet/dicomnet.h"

#define STUDY_FIND	"1.2.840.10008.5.1.4.1.2.2.1"
#define PATIENT_FIND	"1.2.840.10008.5.1.4.1.2.1.1"

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
usage(void)
{
	fprintf(stderr, "usage: findbench [--calling AE] [--called AE] "
	    "[--model study|patient] [--warmup N]\n"
	    "                 HOST PORT N KEY=VALUE...\n");
}

/* The identifier from KEY=VALUE arguments, encoded in ts. */
static int
identifier(char **kv, int n, const char *ts, uint8_t **out, size_t *len,
    struct err *e)
{
	struct dcm_builder *b = dcm_build_new();
	int rc = 0;

	if (b == NULL)
		return err_set(e, ENOMEM, "out of memory");
	for (int i = 0; i < n && rc == 0; i++) {
		const struct dcm_dict_entry *d;
		char *eq = strchr(kv[i], '='), key[80];

		if (eq == NULL || (size_t)(eq - kv[i]) >= sizeof key) {
			rc = err_set(e, EINVAL, "not KEY=VALUE: %s", kv[i]);
			break;
		}
		snprintf(key, sizeof key, "%.*s", (int)(eq - kv[i]), kv[i]);
		if ((d = dcm_dict_by_keyword(key)) == NULL) {
			rc = err_set(e, EINVAL, "no such keyword: %s", key);
			break;
		}
		rc = eq[1] == '\0' ? dcm_build_empty(b, d->tag, NULL, e) :
		    dcm_build_string(b, d->tag, NULL, eq + 1, e);
	}
	if (rc == 0)
		rc = dcm_build_encode(b, ts, NULL, out, len, e);
	dcm_build_free(b);
	return rc;
}

/*
 * One C-FIND: the request, then responses until the final one.  *ms its
 * time, *matches the pending responses.
 */
static int
find(struct ul_assoc *a, uint16_t id, const char *sop_class,
    const uint8_t *query, size_t len, double *ms, long *matches,
    struct err *e)
{
	struct dimse_cmd rq = { 0 };
	struct dimse_msg m;
	double t0;
	uint16_t status;
	int k;

	rq.command_field = DIMSE_C_FIND_RQ;
	rq.message_id = id;
	snprintf(rq.affected_sop_class, DIMSE_UID_MAX, "%s", sop_class);
	*matches = 0;
	t0 = now_ms();
	if (dimse_send(a, a->ctx[0].id, &rq, query, len, e) == -1)
		return -1;
	for (;;) {
		if ((k = dimse_recv(a, &m, e)) != UL_MESSAGE)
			return k == -1 ? -1 : err_set(e, UL_E_CLOSED,
			    "the association ended before the final response");
		if (m.cmd.command_field != DIMSE_C_FIND_RSP ||
		    m.cmd.message_id_responded != id) {
			dimse_msg_free(&m);
			return err_set(e, UL_E_PROTOCOL, "not a C-FIND-RSP to "
			    "message %u", id);
		}
		if (m.cmd.status != DIMSE_PENDING &&
		    m.cmd.status != DIMSE_PENDING_WARNING)
			break;
		(*matches)++;
		dimse_msg_free(&m);
	}
	*ms = now_ms() - t0;
	status = m.cmd.status;
	dimse_msg_free(&m);
	if (status != DIMSE_SUCCESS)
		return err_set(e, EPROTO, "C-FIND status 0x%04X", status);
	return 0;
}

int
main(int argc, char **argv)
{
	static const char *const ts[] = { DCM_TS_EXPLICIT_LE,
	    DCM_TS_IMPLICIT_LE, NULL };
	const char *calling = "FINDBENCH", *called = "SCREENING_QR";
	const char *sop_class = STUDY_FIND;
	struct ul_config cfg = { .artim_ms = 30000, .idle_ms = 120000 };
	struct ul_proposal p;
	struct ul_assoc *a = NULL;
	struct err e = { 0 };
	uint8_t *query = NULL;
	size_t len;
	long warmup = 5, n, matches, seen[16];
	double *ms;
	int i, nseen = 0, port;

	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (i + 1 >= argc) {
			usage();
			return 2;
		}
		if (strcmp(argv[i], "--calling") == 0)
			calling = argv[i + 1];
		else if (strcmp(argv[i], "--called") == 0)
			called = argv[i + 1];
		else if (strcmp(argv[i], "--model") == 0 &&
		    strcmp(argv[i + 1], "study") == 0)
			sop_class = STUDY_FIND;
		else if (strcmp(argv[i], "--model") == 0 &&
		    strcmp(argv[i + 1], "patient") == 0)
			sop_class = PATIENT_FIND;
		else if (strcmp(argv[i], "--warmup") == 0)
			warmup = atol(argv[i + 1]);
		else {
			usage();
			return 2;
		}
	}
	if (argc - i < 4 || (port = atoi(argv[i + 1])) <= 0 ||
	    (n = atol(argv[i + 2])) <= 0 || warmup < 0) {
		usage();
		return 2;
	}
	if ((ms = calloc((size_t)n, sizeof *ms)) == NULL)
		return 1;
	p = (struct ul_proposal){ sop_class, ts, 0 };
	if (ul_connect(&a, argv[i], port, calling, called, &p, 1, &cfg,
	    &e) == -1 || a->ctx[0].result != UL_CTX_ACCEPTED) {
		fprintf(stderr, "findbench: no association with %s:%d (%s): "
		    "%s\n", argv[i], port, called, e.msg[0] ? e.msg :
		    "context rejected");
		goto fail;
	}
	if (identifier(argv + i + 3, argc - i - 3, a->ctx[0].transfer_syntax,
	    &query, &len, &e) == -1) {
		fprintf(stderr, "findbench: %s\n", e.msg);
		goto fail;
	}
	for (long k = 0; k < warmup + n; k++) {
		double t = 0;

		if (find(a, (uint16_t)(k + 1), sop_class, query, len, &t,
		    &matches, &e) == -1) {
			fprintf(stderr, "findbench: request %ld: %s\n", k + 1,
			    e.msg);
			goto fail;
		}
		if (k >= warmup)
			ms[k - warmup] = t;
		for (i = 0; i < nseen && seen[i] != matches; i++)
			;
		if (i == nseen && nseen < 16)
			seen[nseen++] = matches;
	}
	if (scu_close(a, &e) == -1)
		fprintf(stderr, "findbench: release: %s\n", e.msg);
	printf("{\"ms\":[");
	for (long k = 0; k < n; k++)
		printf("%s%.4f", k ? "," : "", ms[k]);
	printf("],\"matches\":[");
	for (i = 0; i < nseen; i++)
		printf("%s%ld", i ? "," : "", seen[i]);
	printf("]}\n");
	free(query);
	free(ms);
	return 0;
fail:
	if (a != NULL) {
		ul_abort(a, 0, 0);
		ul_free(a);
	}
	free(query);
	free(ms);
	return 1;
}
