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
 * - ul_recv() hands back one message part at a time: a command or a data
 *   set, reassembled from its PDV fragments; the caller owns its bytes.
 *   Decoding DIMSE is lib/dimse's job.
 * - Nothing here prints or exits.  ul_free() closes the socket.
 */
#ifndef GW_UL_H
#define GW_UL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

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
};

/* Why an association request was rejected (PS3.8 9.3.4). */
struct ul_reject {
	int result, source, reason;
};

struct ul_assoc {
	int fd;
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

#endif
