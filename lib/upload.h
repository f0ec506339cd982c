/*
 * upload: the Manage API's HTTPS requests (../shared/relay/PROTOCOL.md §5)
 * through libcurl: a multipart PUT of one file and a JSON PATCH, each with
 * a bearer token.
 *
 * Guarantees: TLS is always verified (peer and host name); an extra CA
 * bundle (GATEWAY_CA_FILE) is added to the system's, never replaces it.
 * Every request has a connect timeout, a low-speed limit (a stalled
 * transfer is abandoned) and a total timeout; the send rate can be capped.
 * A request that reached the server returns 0 with the HTTP status, even
 * 4xx and 5xx: the caller decides.  -1 means no answer (DNS, TCP, TLS,
 * timeout, stopped by the caller's flag); e says which phase failed, and
 * a certificate problem says "certificate verification failed".
 *
 * Never: prints, exits, logs, or puts the token in an error message.
 * The caller calls curl_global_init() once before upload_open().
 *
 * Memory: struct upload is opaque and owned by the caller (upload_close).
 */
#ifndef GW_UPLOAD_H
#define GW_UPLOAD_H

#include <signal.h>
#include <stddef.h>

#include "err.h"

#define UPLOAD_BODY_MAX	512	/* response body kept for error messages */

struct upload_opts {
	const char *ca_file;		/* extra CA bundle, NULL or "": none */
	long connect_timeout_seconds;	/* TCP + TLS handshake */
	long low_speed_seconds;		/* abandon below low_speed_bytes/s */
	long low_speed_bytes;		/*   for this long */
	long total_timeout_seconds;	/* whole request, 0: none */
	long long max_send_bytes_per_second;	/* 0: no cap */
	volatile sig_atomic_t *stop;	/* non-zero aborts a transfer */
};

struct upload_result {
	long status;			/* HTTP status, 0 when none */
	long retry_after_seconds;	/* Retry-After, -1 when absent */
	double seconds;			/* duration of the request */
	long long bytes_sent;
	char body[UPLOAD_BODY_MAX];	/* start of the response body */
};

struct upload;

int upload_open(struct upload **out, const struct upload_opts *o,
    struct err *e);
void upload_close(struct upload *u);

/*
 * PUT url, multipart/form-data with the file at path in field "file"
 * named filename; "Authorization: <authorization>" (e.g. "Bearer …").
 */
int upload_put_file(struct upload *u, const char *url,
    const char *authorization, const char *path, const char *filename,
    struct upload_result *r, struct err *e);

/* PATCH url with a JSON body. */
int upload_patch_json(struct upload *u, const char *url,
    const char *authorization, const char *json, struct upload_result *r,
    struct err *e);

/*
 * Is an HTTP status worth retrying?  408, 429 and 5xx are; so are 401 and
 * 403: they mean the gateway's token or the cloud's configuration is
 * wrong, which a person fixes, not the image.  Any other 4xx is permanent.
 */
int upload_status_transient(long status);

/* Retry-After: delta-seconds or an HTTP-date, as seconds from now
 * (0 for a date in the past); -1 when value is not either. */
long upload_parse_retry_after(const char *value, long long now);

/*
 * Milliseconds to wait before attempt number attempts + 1: exponential
 * from one second, capped at cap_seconds, with "equal jitter" (half the
 * delay fixed, half random from random_bits), never less than
 * retry_after_seconds (when >= 0; a Retry-After beyond
 * UPLOAD_RETRY_AFTER_MAX_SECONDS counts as that).
 */
#define UPLOAD_RETRY_AFTER_MAX_SECONDS	(7L * 86400)
long long upload_backoff_ms(int attempts, long cap_seconds,
    long retry_after_seconds, unsigned random_bits);

#endif
