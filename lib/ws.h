/*
 * ws: a small blocking WebSocket client (RFC 6455) over libwebsockets,
 * for the Azure Relay (../shared/relay/PROTOCOL.md §2-3): open a wss://
 * URL, send and receive whole messages, send unsolicited PONGs, close
 * with a code.
 *
 * Guarantees: TLS is always verified (peer and host name) against the
 * system's CAs plus an optional extra bundle; plain ws:// is refused.
 * Every call has a deadline; nothing blocks for ever.  A failure names
 * its phase, so logs can say where it broke:
 *   "dns", "tcp", "tls", "handshake" (with the HTTP status when the
 *   server answered something other than 101), "closed" (the peer closed,
 *   with its close code), "timeout", "send", "receive".
 * Handshake buffers hold 16 KiB headers and query strings (bearer tokens
 * are long).  Messages are reassembled from fragments; a message longer
 * than max_message is refused (the connection is then closed with 1009).
 *
 * Never: prints, exits, logs (libwebsockets' own logging is routed to
 * lib/log at debug level), or puts a URL's query (it carries the token)
 * into an error message.
 *
 * Threads: one struct ws_ctx per thread; its connections are served
 * together, so a blocking call on one connection also keeps the others'
 * TCP flowing (their messages are queued for their own ws_recv).
 *
 * Memory: contexts and connections are opaque, freed by ws_ctx_free and
 * ws_close.  ws_recv hands out a malloc'd NUL-terminated copy (free()).
 */
#ifndef GW_WS_H
#define GW_WS_H

#include <signal.h>
#include <stddef.h>

#include "err.h"

#define WS_HEADER_MAX	(16 * 1024 + 1024)

/* Phases, also in struct ws_status.phase as text (ws_phase_name). */
enum ws_phase {
	WS_OK = 0,
	WS_DNS, WS_TCP, WS_TLS, WS_HANDSHAKE, WS_CLOSED, WS_TIMEOUT,
	WS_SEND, WS_RECEIVE
};

/* What the last failing call saw, beside the struct err message. */
struct ws_status {
	enum ws_phase phase;
	int http_status;	/* handshake answer when not 101, else 0 */
	int close_code;		/* the peer's close code (1005: none given) */
	char close_reason[124];
};

struct ws_ctx;
struct ws;

/*
 * A context: ca_file is an extra CA bundle (NULL or "": the system's
 * only).  max_message caps a received message (bytes; 0: 4 MiB).
 */
int ws_ctx_new(struct ws_ctx **out, const char *ca_file, size_t max_message,
    struct err *e);
void ws_ctx_free(struct ws_ctx *c);

/*
 * While *stop is non-zero every blocking call returns -1 at once with
 * e->code EINTR (a signal handler sets it; the signal also wakes the
 * wait).  NULL: no flag.
 */
void ws_ctx_stop_flag(struct ws_ctx *c, volatile sig_atomic_t *stop);

/*
 * Open url (wss://host[:port]/path?query) and wait for the 101, at most
 * timeout_ms.  header_name/header_value (both NULL: none) add one request
 * header, e.g. "ServiceBusAuthorization".  On failure returns -1 with *st
 * (when not NULL) saying the phase and the HTTP status.
 */
int ws_open(struct ws_ctx *c, struct ws **out, const char *url,
    const char *header_name, const char *header_value, int timeout_ms,
    struct ws_status *st, struct err *e);

/* Send one whole text message. */
int ws_send_text(struct ws *w, const char *msg, size_t len, int timeout_ms,
    struct ws_status *st, struct err *e);

/* Send an unsolicited PONG (empty payload): the relay's keep-alive. */
int ws_pong(struct ws *w, int timeout_ms, struct ws_status *st,
    struct err *e);

/*
 * Wait up to timeout_ms for one whole message.  Returns 1 with *msg
 * (malloc'd, NUL-terminated; *len without the NUL, *binary set for a
 * binary message); 0 when nothing came in time (the connection is still
 * good); -1 when the connection ended or failed: st->phase is WS_CLOSED
 * with the peer's close code, or the phase that failed.
 */
int ws_recv(struct ws *w, char **msg, size_t *len, int *binary,
    int timeout_ms, struct ws_status *st, struct err *e);

/* Is the connection still open (no close seen, no error)? */
int ws_is_open(const struct ws *w);

/*
 * Close: send a close frame with code and reason when still open, wait up
 * to timeout_ms for the peer's, and free w.  Always frees; NULL is fine.
 */
void ws_close(struct ws *w, int code, const char *reason, int timeout_ms);

/*
 * A sender's round trip (the relay's connect, PROTOCOL.md §3): open url,
 * send msg, wait up to reply_ms for one message, close.  Returns 1 with
 * *reply (malloc'd, NUL-terminated), 0 when no reply came in time, -1 on
 * failure with st saying the phase.
 */
int ws_request(struct ws_ctx *c, const char *url, const char *header_name,
    const char *header_value, const char *msg, size_t len, int open_ms,
    int reply_ms, char **reply, struct ws_status *st, struct err *e);

/* "dns", "tcp", … for a phase. */
const char *ws_phase_name(enum ws_phase p);

/*
 * Split wss://host[:port]/path (the relay's accept address, outside
 * input) into host (hostsz), port (443 when absent) and *path (pointing
 * into url; "/" when absent).  -1 with e set for anything else.
 */
int ws_parse_url(const char *url, char *host, size_t hostsz, int *port,
    const char **path, struct err *e);

#endif
