/*
 * tls: DICOM over TLS (PS3.15 B.9, the BCP 195 profiles) through OpenSSL,
 * for lib/ul: one TLS layer for every server and client of ours.
 *
 * Contract:
 * - TLS 1.2 and 1.3 only; for TLS 1.2 the BCP 195 (RFC 9325) cipher
 *   suites: ECDHE or DHE key exchange with AES-GCM or ChaCha20-Poly1305.
 *   Compression and renegotiation off.
 * - A server context has a certificate and key; with a CA file it asks
 *   for and verifies client certificates (mutual TLS): a client without
 *   one, or with one the CA did not sign, or expired, fails the handshake.
 * - A client context verifies the server against the CA file (else the
 *   system's CAs) and the host name or address it connects to; it may
 *   present a certificate of its own.
 * - A connection works on the caller's socket, made non-blocking; reads
 *   and writes wait with poll() up to a deadline, so a peer that stalls
 *   in the middle of a TLS record is bounded like any other.
 * - Errors are the OpenSSL reason in words ("certificate verify failed",
 *   "wrong version number" for a plain client on a TLS port, …).  Nothing
 *   here prints or exits.
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

struct tls_ctx;
struct tls_conn;

/* Error codes in struct err.code besides errno values. */
enum {
	TLS_E_HANDSHAKE = 2100,	/* the peer or its certificate was refused */
	TLS_E_TIMEOUT,		/* the deadline passed */
	TLS_E_CLOSED,		/* the peer closed the connection */
	TLS_E_IO,		/* a TLS error after the handshake */
};

/* cert and key: PEM files; ca: PEM file or NULL/"" (no client certs). */
int tls_server_ctx(struct tls_ctx **out, const char *cert, const char *key,
    const char *ca, struct err *e);

/* ca: PEM file, or NULL/"" for the system's; cert/key: optional. */
int tls_client_ctx(struct tls_ctx **out, const char *ca, const char *cert,
    const char *key, struct err *e);

void tls_ctx_free(struct tls_ctx *ctx);

/* The handshake on fd (connected) within timeout_ms.  The connection
 * does not own fd: ul closes it. */
int tls_accept(struct tls_conn **out, struct tls_ctx *ctx, int fd,
    int timeout_ms, struct err *e);
int tls_connect(struct tls_conn **out, struct tls_ctx *ctx, int fd,
    const char *host, int timeout_ms, struct err *e);

/* Read up to n bytes (at least one) by deadline_ms (CLOCK_MONOTONIC
 * milliseconds): the count, or -1 with e set. */
ssize_t tls_read(struct tls_conn *c, void *buf, size_t n,
    long long deadline_ms, struct err *e);

/* Write all n bytes by deadline_ms: 0, or -1 with e set. */
int tls_write(struct tls_conn *c, const void *buf, size_t n,
    long long deadline_ms, struct err *e);

/* 1 when decrypted bytes wait to be read. */
int tls_pending(struct tls_conn *c);

/* The peer certificate's subject (one line), or "" when none. */
const char *tls_peer_subject(struct tls_conn *c);

/* The protocol and cipher, e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384". */
const char *tls_describe(struct tls_conn *c, char *out, size_t outsz);

/* Send close_notify (best effort, no wait) and free; fd stays open. */
void tls_close(struct tls_conn *c);

#endif
