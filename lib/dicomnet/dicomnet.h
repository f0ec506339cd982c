/*
 * dicomnet: DICOM over the network: the upper layer (with TLS), DIMSE
 * messages, the requestor side, the server frame, and who may connect.
 *
 * Layer 2.  The one public header of lib/dicomnet/; what its modules share
 * beyond it is static in its .c files.
 * Modules, each with its contract below: netallow, tls, ul, dimse, scu,
 * scp, senders.
 */
#ifndef GW_DICOMNET_H
#define GW_DICOMNET_H

#include <getopt.h>
#include <stdio.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "base/base.h"
#include "dicom/dicom.h"

/*
 * netallow: who may connect, by address: a list of addresses and CIDR
 * networks ("10.20.0.0/16, 192.168.1.7, fd00::/8"), IPv4 and IPv6; an
 * IPv4-mapped IPv6 peer (::ffff:a.b.c.d) matches the IPv4 entries.  An
 * empty list allows everyone.  No allocation, no dependencies: the
 * per-image storescp-hook uses it as well as the servers.
 */

#define NETALLOW_MAX	64

struct netallow {
	struct {
		int family;		/* AF_INET or AF_INET6 */
		unsigned char addr[16];
		int prefix;		/* bits */
	} net[NETALLOW_MAX];
	int n;			/* 0: anyone */
};

/* Parse a comma- or space-separated list: 0, or -1 on a bad entry. */
int netallow_parse(struct netallow *a, const char *list);

/* 1 when the address is allowed (always with an empty list), else 0. */
int netallow_sockaddr(const struct netallow *a, const struct sockaddr *sa);
int netallow_text(const struct netallow *a, const char *addr);

/*
 * tls: DICOM over TLS (PS3.15 B.9, the BCP 195 profiles) through OpenSSL,
 * for lib/dicomnet/ul: one TLS layer for every server and client of ours.
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

/*
 * ul: the DICOM upper layer (PS3.8): associations over TCP.
 *
 * Contract:
 * - One struct ul_assoc is one association on one blocking socket, used
 *   by one process or thread.  ul_accept() serves the acceptor side (SCP),
 *   ul_connect() the requestor side (SCU); after that both sides send and
 *   receive the same way.
 * - Every PDU read from the wire is checked: its type, its length against
 *   our maximum, every item length against what remains.  A malformed or
 *   unexpected PDU ends in an A-ABORT (source 2, reason per PS3.8 9.3.8)
 *   and -1 with e set; never a crash.  A reassembled message is bounded by
 *   UL_MESSAGE_MAX.
 * - Timeouts (milliseconds, from struct ul_config): ARTIM bounds the wait
 *   for the A-ASSOCIATE-RQ after connect and for the peer's close after a
 *   release; idle bounds the wait for any PDU (and for the rest of a PDU
 *   once started); dimse bounds the time one message takes to arrive
 *   whole.  A timeout aborts the association.
 * - TCP_NODELAY is set on every socket.
 * - TLS (lib/dicomnet/tls) is below the association when the config gives it:
 *   an acceptor is handed a connection whose handshake is done; a
 *   requestor makes one before its A-ASSOCIATE-RQ.  Everything above
 *   the bytes is the same.
 * - ul_recv() hands back one message part at a time: a command or a data
 *   set, reassembled from its PDV fragments; the caller owns its bytes.
 *   Decoding DIMSE is lib/dicomnet/dimse's job.
 * - Nothing here prints or exits.  ul_free() closes the socket.
 */

#define UL_MAX_CONTEXTS		128
#define UL_MAX_TS		16	/* transfer syntaxes kept per context */
#define UL_UID_MAX		65	/* 64 characters and NUL */
#define UL_AE_MAX		17
#define UL_DEFAULT_MAX_PDU	131072u	/* what we receive */
#define UL_MESSAGE_MAX		((size_t)64 << 20)
#define UL_APPLICATION_CONTEXT	"1.2.840.10008.3.1.1.1"

/* Presentation context results (PS3.8 9.3.3.2). */
enum {
	UL_CTX_ACCEPTED = 0,
	UL_CTX_USER_REJECTED = 1,
	UL_CTX_NO_REASON = 2,
	UL_CTX_ABSTRACT_NOT_SUPPORTED = 3,
	UL_CTX_TS_NOT_SUPPORTED = 4,
};

/* ul_recv() results besides -1. */
enum {
	UL_MESSAGE = 1,		/* a command or data set in *m */
	UL_RELEASED,		/* the peer released; we answered */
	UL_ABORTED,		/* the peer aborted */
	UL_CLOSED,		/* the peer closed the connection */
};

/* Error codes in struct err.code (errno values otherwise). */
enum {
	UL_E_REJECTED = 2000,	/* association rejected (by us or them) */
	UL_E_ABORTED,		/* association aborted (by us or them) */
	UL_E_TIMEOUT,		/* a timer expired; we aborted */
	UL_E_PROTOCOL,		/* malformed or unexpected PDU; we aborted */
	UL_E_CLOSED,		/* the peer closed the connection */
};

struct ul_context {
	uint8_t id;
	int result;		/* UL_CTX_* */
	char abstract_syntax[UL_UID_MAX];
	char transfer_syntax[UL_UID_MAX];	/* the accepted one */
	char proposed_ts[UL_MAX_TS][UL_UID_MAX];
	int nproposed;
	int role_proposed;	/* a role selection item came */
	int scu_role, scp_role;	/* its values (requestor: as accepted) */
	int peer_is_scp;	/* acceptor: we granted the requestor SCP */
};

struct tls_conn;		/* lib/dicomnet/dicomnet.h */
struct tls_ctx;

/* What an acceptor serves and how long it waits. */
struct ul_config {
	const char *ae_title;		/* ours */
	int any_called_aet;		/* accept whatever called AE */
	const char *const *allowed_calling;	/* NULL: anyone; else NULL-ended */
	const char *const *abstract_syntaxes;	/* NULL-ended */
	/* Contexts are taken in explicit, else implicit VR little endian.
	 * Except: abstract syntaxes for which a requestor proposing the SCP
	 * role (SCP/SCU role selection, PS3.7 D.3.3.4) gets it, C-GET's
	 * storage sub-operations; their contexts take the first proposed of
	 * scp_role_transfer_syntaxes, in the peer's order (NULL: the
	 * little endian ones).  NULL: no such syntaxes. */
	const char *const *scp_role_syntaxes;
	const char *const *scp_role_transfer_syntaxes;
	uint32_t max_pdu;		/* we receive; 0: UL_DEFAULT_MAX_PDU */
	int artim_ms, idle_ms, dimse_ms;	/* 0: 30 s, 300 s, 600 s */
	int busy;			/* reject: local limit exceeded */
	/* Acceptor: the TLS connection already made on fd (lib/dicomnet/tls), or
	 * NULL; the association owns it from ul_accept on, as it owns fd. */
	struct tls_conn *tls;
	/* Requestor: make TLS to the peer with this context first. */
	struct tls_ctx *tls_client;
};

/* Why an association request was rejected (PS3.8 9.3.4). */
struct ul_reject {
	int result, source, reason;
};

struct ul_assoc {
	int fd;
	struct tls_conn *tls;		/* NULL: plain TCP */
	char calling_aet[UL_AE_MAX], called_aet[UL_AE_MAX];
	char peer_impl_uid[UL_UID_MAX], peer_impl_version[UL_AE_MAX];
	uint32_t our_max_pdu, peer_max_pdu;
	struct ul_context ctx[UL_MAX_CONTEXTS];
	int nctx;
	int artim_ms, idle_ms, dimse_ms;
	struct ul_reject reject;	/* set when rejected */
	int abort_source, abort_reason;	/* set when the peer aborted */
	/* receive state */
	uint8_t *pdu;			/* the P-DATA being taken apart */
	size_t pdulen, pducap, pdupos;
	uint8_t *msg;			/* the message part being assembled */
	size_t msglen, msgcap;
	int msg_ctx, msg_command;	/* -1 when none is in progress */
	long long msg_deadline;		/* ms, CLOCK_MONOTONIC */
	int released;
	int peeked;			/* ul_request(): the RQ is still unread */
};

/* One reassembled message part; bytes are the caller's to free(). */
struct ul_msg {
	uint8_t ctx_id;
	int is_command;
	uint8_t *data;
	size_t len;
};

/* A presentation context to propose as requestor. */
struct ul_proposal {
	const char *abstract_syntax;
	const char *const *transfer_syntaxes;	/* NULL-ended */
	int scp_role;		/* propose role selection: we are the SCP
				 * (e.g. N-EVENT-REPORT of commitment) */
};

/*
 * Acceptor: wait (ARTIM) for the A-ASSOCIATE-RQ on fd (connected, owned
 * by the association from now on, closed by ul_free), negotiate with cfg
 * and answer AC or RJ.  Returns 0 with *out an established association;
 * -1 with e set otherwise (UL_E_REJECTED: *out still describes the
 * request, so the caller can log who asked; free it with ul_free).
 */
int ul_accept(struct ul_assoc **out, int fd, const struct ul_config *cfg,
    struct err *e);

/*
 * Acceptor in two steps, for a front that decides before another program
 * takes the association over (storescp-front hands it to dcmtk's storescp):
 * ul_request() waits (ARTIM) for the whole A-ASSOCIATE-RQ on fd and parses
 * it into *out (AE titles, contexts) without answering.  With peek set
 * (plain TCP only) nothing is taken off the socket (MSG_PEEK): whoever the
 * socket goes to next reads the request as if it came first.  Without it
 * the request is read (over TLS: cfg->tls) and ul_request_pdu() gives it
 * back whole, to be replayed.  A PDU other than an A-ASSOCIATE-RQ, or a
 * malformed one, is answered with an A-ABORT: -1, UL_E_PROTOCOL; a peer
 * that closes or stays silent: -1, UL_E_CLOSED or UL_E_TIMEOUT.  *out, when
 * set, owns fd (and cfg->tls); free it with ul_free().
 */
int ul_request(struct ul_assoc **out, int fd, const struct ul_config *cfg,
    int peek, struct err *e);

/* The request ul_request() took, as one PDU (header and body) in *pdu
 * (malloc'd). */
int ul_request_pdu(const struct ul_assoc *a, uint8_t **pdu, size_t *len,
    struct err *e);

/* Answer a request from ul_request() with A-ASSOCIATE-RJ r; a peeked
 * request is read off the socket first.  Always -1: UL_E_REJECTED when
 * the answer went out, else why not. */
int ul_refuse(struct ul_assoc *a, const struct ul_reject *r, struct err *e);

/* A rejection in words (PS3.8 9.3.4): its reason ("calling AE title not
 * recognised", "local limit exceeded", ...) and its result
 * ("rejected-permanent" or "rejected-transient"). */
const char *ul_reject_reason(const struct ul_reject *r);
const char *ul_reject_result(const struct ul_reject *r);

/* Requestor: connect to host:port and propose ctxs.  0 when the peer
 * accepted (some contexts may be rejected: check result), else -1. */
int ul_connect(struct ul_assoc **out, const char *host, int port,
    const char *calling, const char *called, const struct ul_proposal *ctxs,
    size_t nctxs, const struct ul_config *cfg, struct err *e);

/* The next message part.  UL_MESSAGE, UL_RELEASED, UL_ABORTED, UL_CLOSED
 * or -1 (we aborted: timeout or protocol error; e says which). */
int ul_recv(struct ul_assoc *a, struct ul_msg *m, struct err *e);

/* 1 when a PDU has started to arrive (or the peer closed), 0 if not. */
int ul_pending(struct ul_assoc *a);

/* Send a command or data set on a context, fragmented to the peer's
 * maximum PDU length. */
int ul_send(struct ul_assoc *a, uint8_t ctx_id, int is_command,
    const uint8_t *buf, size_t len, struct err *e);

/*
 * A data set produced while it is sent, so that a 2 GB object never sits
 * in memory: read from its file, or decoded a frame at a time.  next()
 * points *p at the following bytes (at most max of them, valid until its
 * next call) and returns how many (at least 1 while any remain), or -1
 * with e set.  len is the number of bytes in all, known beforehand.
 */
struct ul_source {
	ssize_t (*next)(void *arg, const uint8_t **p, size_t max,
	    struct err *e);
	void *arg;
	size_t len;
};

/* ul_send from a source, one PDU at a time.  A source that fails once
 * part of the data set is on the wire aborts the association (the
 * message cannot be completed): e->code is then UL_E_ABORTED. */
int ul_send_source(struct ul_assoc *a, uint8_t ctx_id, int is_command,
    const struct ul_source *src, struct err *e);

/* The accepted context with this id, or NULL. */
const struct ul_context *ul_context(const struct ul_assoc *a, uint8_t id);

/* Requestor: A-RELEASE-RQ, wait for the RP. */
int ul_release(struct ul_assoc *a, struct err *e);

/* Send A-ABORT (source 0 user, 2 provider; reason for source 2). */
void ul_abort(struct ul_assoc *a, int source, int reason);

/* After UL_RELEASED: wait (ARTIM) for the peer to close, answering a
 * repeated release request, then close.  Never an error. */
void ul_linger(struct ul_assoc *a);

/* Close the socket and free everything. */
void ul_free(struct ul_assoc *a);

/* Set TCP_NODELAY (and close-on-exec) on a socket. */
int ul_socket_setup(int fd, struct err *e);

/*
 * dimse: DIMSE messages (PS3.7) over an upper-layer association.
 *
 * Contract:
 * - A command set is group 0000 in implicit VR little endian with its
 *   group length (0000,0000), encoded with lib/dicom/dicom's writer and decoded
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

/* Send a command and a data set from a source (ul_send_source). */
int dimse_send_source(struct ul_assoc *a, uint8_t ctx_id,
    const struct dimse_cmd *c, const struct ul_source *src, struct err *e);

/* A short name for a command field ("C-FIND-RQ"), for logs. */
const char *dimse_command_name(uint16_t command_field);

/*
 * scu: the requestor side of DIMSE, shared by the programs that send
 * DICOM themselves (modality-emu's worklist, MPPS and C-STORE; qrscp's
 * C-MOVE sub-associations).
 *
 * Contract:
 * - scu_request() sends one request and waits for its response on the
 *   same association; anything else arriving first is a protocol error
 *   (we abort).  The caller sets the message ID.
 * - scu_store() is one C-STORE of an encoded data set (bytes in the
 *   context's transfer syntax, no meta group) and hands back the peer's
 *   status; success and the B0xx warnings are the caller's to tell apart.
 *   scu_store_source() takes the data set from a struct ul_source.
 * - scu_dataset_offset() finds where a Part 10 file's data set starts
 *   (after the meta group), so stored bytes are sent as they are.
 * - Nothing here prints or exits; errors come back in struct err.
 */

/* Why an association was rejected, in words: ul_reject_reason(). */
const char *scu_reject_reason(const struct ul_reject *r);

/* Send rq on ctx_id and wait for its response into *rsp (the caller
 * frees it with dimse_msg_free).  -1 with e set (UL_E_* codes) when the
 * association failed or something else came. */
int scu_request(struct ul_assoc *a, uint8_t ctx_id, const struct dimse_cmd *rq,
    const uint8_t *data, size_t len, struct dimse_msg *rsp, struct err *e);

/* What one C-STORE-RQ says besides its data set. */
struct scu_store_rq {
	const char *sop_class_uid, *sop_instance_uid;
	uint16_t message_id;
	const char *move_originator_aet;	/* NULL unless a C-MOVE's */
	uint16_t move_originator_id;
};

/* Build the C-STORE-RQ command for r. */
void scu_store_command(const struct scu_store_rq *r, struct dimse_cmd *rq);

/* One C-STORE: 0 with *status the peer's (0000, B0xx, Axxx, Cxxx...), or
 * -1 with e set when the association failed. */
int scu_store(struct ul_assoc *a, uint8_t ctx_id, const struct scu_store_rq *r,
    const uint8_t *data, size_t len, uint16_t *status, struct err *e);

/* The same with the data set from a source (ul_send_source): a stored
 * object of any size in bounded memory. */
int scu_store_source(struct ul_assoc *a, uint8_t ctx_id,
    const struct scu_store_rq *r, const struct ul_source *src,
    uint16_t *status, struct err *e);

/* 1 when a C-STORE status means the object was stored (success, or a
 * B000 / B006 / B007 warning). */
int scu_store_ok(uint16_t status);

/* A-RELEASE (an A-ABORT when the release fails) and free a.  0, or -1
 * with e set when the release failed. */
int scu_close(struct ul_assoc *a, struct err *e);

/* The offset of the data set's first element in a parsed Part 10 file
 * (just past the meta group); -1 with e set when it has none. */
int scu_dataset_offset(const struct dcm *d, size_t *off, struct err *e);

/*
 * scp: a DICOM server's frame, shared by mwlscp and qrscp.
 *
 * Contract:
 * - One process per association.  The parent only listens, accepts and
 *   forks; a child negotiates (ul_accept), serves and exits, so a crash
 *   or a stuck peer costs one association and nothing else.  Beyond
 *   max_assoc a child is still forked, but only to read the request and
 *   answer A-ASSOCIATE-RJ (transient, local limit exceeded); past twice
 *   the limit the connection is closed at once.
 * - SIGTERM/SIGINT: stop accepting, give running associations up to
 *   SCP_GRACE_SECONDS to finish, kill what remains, return EX_OK.
 * - A program may take each connection itself (take): the frame then
 *   does everything up to the TLS handshake, and the program the rest.
 * - The program fills struct scp_server (defaults from scp_defaults(),
 *   options through scp_option()), sets the abstract syntaxes it serves
 *   and a serve callback; scp_run() does the rest.  Every association is
 *   logged (accepted, rejected with the reason, released, aborted) with
 *   the peer address and AE titles, never patient data.
 * - Helpers for serving: scp_respond() answers a request with a bare
 *   status; scp_check_cancel() looks for a C-CANCEL between pending
 *   responses; scp_serve_loop() reads requests until the association ends.
 */

#define SCP_MAX_ALLOWED		64
#define SCP_GRACE_SECONDS	5

struct scp_server;

/* One association being served (in its child process). */
struct scp_session {
	struct scp_server *srv;
	struct ul_assoc *a;
	char peer[64];		/* "address:port" */
	void *arg;		/* the program's own state */
};

struct scp_server {
	const char *prog;		/* for messages */
	char bind_addr[256];
	int port;
	char aet[UL_AE_MAX];
	int any_called_aet;
	char allowed[SCP_MAX_ALLOWED][UL_AE_MAX];
	const char *allowed_ptr[SCP_MAX_ALLOWED + 1];
	int nallowed;
	struct netallow hosts;		/* allowed peer addresses */
	int max_assoc;
	int artim_s, idle_s, dimse_s;
	/* DICOM TLS beside the plain port (0: none), lib/dicomnet/tls. */
	int tls_port;
	char tls_cert[PATH_MAX], tls_key[PATH_MAX], tls_ca[PATH_MAX];

	/* Set by the program before scp_run(). */
	const char *const *abstract_syntaxes;	/* NULL-ended */
	/* Where the peer may be SCP (C-GET), see struct ul_config. */
	const char *const *scp_role_syntaxes;
	const char *const *scp_role_transfer_syntaxes;
	/* Serve an accepted association; its return is the child's exit. */
	int (*serve)(struct scp_session *x);
	/* Optional, instead of ul_accept() and serve: the child takes the
	 * connection itself (fd; tls: its TLS connection on the TLS port,
	 * handshake done, else NULL; busy: beyond max_assoc, to be
	 * rejected); both are its own.  Its return is the child's exit.
	 * For a front that hands associations on (storescp-front). */
	int (*take)(struct scp_session *x, int fd, struct tls_conn *tls,
	    int busy);
	/* Optional: called about once a second in the parent. */
	void (*tick)(struct scp_server *s);
	/* Optional: a child the parent did not fork for an association
	 * (e.g. one tick started) has exited. */
	void (*reaped)(struct scp_server *s, pid_t pid, int status);
	void *arg;

	/* Private. */
	int nchildren, nrejecters;
	pid_t *children;	/* pids, 0 for free slots */
	char *is_rejecter;
	int nslots;
	int lfd, lfd_tls;
	struct tls_ctx *tls;
};

/* Defaults: bind (from <env>_BIND, else 0.0.0.0), port, AE title, the
 * allowed calling AE titles from <env>_ALLOWED_AETS (comma-separated),
 * the allowed peer addresses from <env>_ALLOWED_HOSTS (addresses or
 * networks in CIDR notation, comma-separated),
 * the TLS port from <env>_TLS_PORT with GATEWAY_TLS_CERT, _KEY and _CA,
 * limit 16, timers 30/300/600 s.  env is "WORKLIST" or "QR".  -1 with e
 * set on a bad value. */
int scp_defaults(struct scp_server *s, const char *prog, const char *env,
    int port, const char *aet, struct err *e);

/* The options every server takes, for getopt_long (SCP_OPTIONS inside
 * the program's struct option array) and their handler. */
enum {
	SCP_OPT_BIND = 200, SCP_OPT_PORT, SCP_OPT_AET, SCP_OPT_ANY,
	SCP_OPT_ALLOW, SCP_OPT_MAX, SCP_OPT_ARTIM, SCP_OPT_IDLE,
	SCP_OPT_DIMSE, SCP_OPT_TLS_PORT, SCP_OPT_TLS_CERT, SCP_OPT_TLS_KEY,
	SCP_OPT_TLS_CA, SCP_OPT_ALLOW_HOSTS,
};
#define SCP_OPTIONS \
	{ "bind", required_argument, NULL, SCP_OPT_BIND }, \
	{ "port", required_argument, NULL, SCP_OPT_PORT }, \
	{ "aet", required_argument, NULL, SCP_OPT_AET }, \
	{ "any-called-aet", no_argument, NULL, SCP_OPT_ANY }, \
	{ "allow", required_argument, NULL, SCP_OPT_ALLOW }, \
	{ "allow-hosts", required_argument, NULL, SCP_OPT_ALLOW_HOSTS }, \
	{ "max-associations", required_argument, NULL, SCP_OPT_MAX }, \
	{ "artim-seconds", required_argument, NULL, SCP_OPT_ARTIM }, \
	{ "idle-seconds", required_argument, NULL, SCP_OPT_IDLE }, \
	{ "dimse-seconds", required_argument, NULL, SCP_OPT_DIMSE }, \
	{ "tls-port", required_argument, NULL, SCP_OPT_TLS_PORT }, \
	{ "tls-cert", required_argument, NULL, SCP_OPT_TLS_CERT }, \
	{ "tls-key", required_argument, NULL, SCP_OPT_TLS_KEY }, \
	{ "tls-ca", required_argument, NULL, SCP_OPT_TLS_CA }

/* The options' lines for --help. */
extern const char scp_options_help[];

/* Handle one of SCP_OPTIONS: 1 handled, 0 not ours, -1 bad value. */
int scp_option(struct scp_server *s, int c, const char *arg);

/*
 * A server program's command line: SCP_OPTIONS, -h/--help, --version and
 * the program's own options (own_opts, ended by a zero entry; at most
 * 16).  Every option goes first to own(arg, c, value): 1 handled, -1 a
 * bad value, 0 not the program's (then scp_option takes it).  -1 when
 * the program goes on; else the status main returns: EX_OK after --help
 * (usage(stdout)) or --version, EX_USAGE (usage(stderr)) for a bad
 * option or value or an argument left over.
 */
int scp_command_line(struct scp_server *s, int argc, char **argv,
    const struct option *own_opts,
    int (*own)(void *arg, int c, const char *value), void *arg,
    void (*usage)(FILE *));

/*
 * Start serving: the signals, scp_listen(), and one "listening" log line
 * with the frame's settings and the program's own fields after them
 * (more: logfmt key=value text, or "").  0, or the status main returns
 * (EX_CONFIG for a bad TLS setting, else EX_UNAVAILABLE), logged.
 */
int scp_start(struct scp_server *s, const char *more);

/* Parse a comma-separated list of AE titles into s->allowed. */
int scp_parse_allow(struct scp_server *s, const char *list);

/* 1 when the connected socket's peer is allowed (always, when no list). */
int scp_host_allowed(const struct scp_server *s, int fd);

/* Install the signal handlers (SIGTERM/SIGINT stop, SIGCHLD wakes,
 * SIGPIPE ignored). */
void scp_signals(void);

/* 1 once SIGTERM or SIGINT arrived. */
int scp_stopping(void);

/* Listen on s->bind_addr:s->port, and on tls_port with TLS when set
 * (0, or -1 with e set: EINVAL for a bad TLS setting). */
int scp_listen(struct scp_server *s, struct err *e);

/* Accept and serve until stopped; an exit code (sysexits). */
int scp_run(struct scp_server *s);

/* Fork a helper child the parent tracks (its exit goes to s->reaped).
 * Returns the pid, 0 in the child, -1 on failure. */
pid_t scp_fork(struct scp_server *s);

/* --- serving --- */

/* Answer request m with a status (and, when not success, a comment). */
int scp_respond(struct scp_session *x, const struct dimse_msg *m,
    uint16_t status, const char *comment);

/*
 * Between pending responses to request m: when a message has arrived,
 * read it.  A C-CANCEL for m sets *cancelled.  Returns 0 (nothing, or the
 * cancel), or -1 when the association is gone or the peer sent something
 * else (we aborted).
 */
int scp_check_cancel(struct scp_session *x, const struct dimse_msg *m,
    int *cancelled);

/*
 * A request this server does not serve, answered: an operation it does
 * not know (0211), or a known one on a SOP class it does not serve it
 * for (0122); both logged.  A response nobody asked for is ignored.
 */
int scp_refuse(struct scp_session *x, const struct dimse_msg *m,
    int known_operation);

/* A C-FIND's pending responses: each one sent after a look for a
 * C-CANCEL. */
struct scp_pending {
	struct scp_session *x;
	const struct dimse_msg *rq;
	const char *ts;		/* the request's context's */
	int cancelled, failed;	/* failed: the association is gone */
	long sent;
};

void scp_pending_init(struct scp_pending *p, struct scp_session *x,
    const struct dimse_msg *rq);

/* Encode b in charset and send it as a pending response; non-zero when
 * the find must stop (cancelled, or failed). */
int scp_pending_send(struct scp_pending *p, struct dcm_builder *b,
    const char *charset);

/* Read and dispatch requests until the association ends; dispatch
 * returns -1 when the association is gone. */
void scp_serve_loop(struct scp_session *x,
    int (*dispatch)(struct scp_session *x, struct dimse_msg *m));

/* The peer's "address:port" of a connected socket. */
void scp_peer_name(int fd, char *out, size_t outsz);

/*
 * senders: who may store images: PACS_ALLOWED_AETS (calling AE titles)
 * and PACS_ALLOWED_HOSTS (addresses or networks, lib/dicomnet/netallow).
 * One rule, applied at the door by storescp-front (A-ASSOCIATE-RJ) and
 * behind it by storescp-hook and gatewayctl quarantine release (a file
 * from anyone else is quarantined).  Empty lists allow everyone.  No
 * allocation; nothing printed.
 */

#define SENDERS_MAX_AETS	64

struct senders {
	char aets[SENDERS_MAX_AETS][UL_AE_MAX];
	int naets;			/* 0: any calling AE title */
	struct netallow hosts;		/* n 0: any address */
};

/* A comma-separated list of AE titles (blanks around each dropped) into
 * aets: the count, or -1 for a title over 16 characters or more than
 * max of them. */
int senders_parse_aets(char aets[][UL_AE_MAX], int max, const char *list);

/* From PACS_ALLOWED_AETS and PACS_ALLOWED_HOSTS: 0, or -1 with e naming
 * the bad setting. */
int senders_from_env(struct senders *s, struct err *e);

/* 1 when the calling AE title is allowed. */
int senders_aet_allowed(const struct senders *s, const char *calling_aet);

/*
 * NULL when calling_aet at address (numeric, no port) may store; else
 * why not in words, in why (calling AE title "X" is not in
 * PACS_ALLOWED_AETS").  A sender with neither (a file the sweep found)
 * is not judged.
 */
const char *senders_refusal(const struct senders *s, const char *calling_aet,
    const char *address, char *why, size_t whysz);

#endif
