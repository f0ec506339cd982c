/*
 * ul: the DICOM upper layer (see dicomnet/dicomnet.h for the contract; PS3.8 section 9).
 *
 * PDUs are big endian: type (1), reserved (1), length (4), then the
 * variable field.  Reads go through read_full(), which waits with poll()
 * against an absolute deadline, so a peer that stalls mid-PDU is caught
 * as surely as one that sends nothing.
 *
 * The receive side keeps the current P-DATA-TF PDU and a cursor into its
 * PDVs, because one PDU may carry the last fragment of a command and the
 * first of its data set.  Fragments are appended to one growing buffer
 * until the last-fragment bit, then handed to the caller.
 */
#include "dicomnet/dicomnet.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "dicom/dicom.h"

#define PDU_ASSOC_RQ	0x01
#define PDU_ASSOC_AC	0x02
#define PDU_ASSOC_RJ	0x03
#define PDU_DATA	0x04
#define PDU_RELEASE_RQ	0x05
#define PDU_RELEASE_RP	0x06
#define PDU_ABORT	0x07

#define ITEM_APP_CTX	0x10
#define ITEM_PCTX_RQ	0x20
#define ITEM_PCTX_AC	0x21
#define ITEM_ABSTRACT	0x30
#define ITEM_TS		0x40
#define ITEM_USER	0x50
#define SUB_MAX_LEN	0x51
#define SUB_IMPL_UID	0x52
#define SUB_ROLE	0x54
#define SUB_IMPL_VER	0x55

/* Abort reasons, source 2 (PS3.8 9.3.8). */
#define AB_NOT_SPECIFIED	0
#define AB_UNRECOGNIZED_PDU	1
#define AB_UNEXPECTED_PDU	2
#define AB_UNRECOGNIZED_PARAM	4
#define AB_UNEXPECTED_PARAM	5
#define AB_INVALID_PARAM	6

#define ASSOC_PDU_MAX	(256u * 1024)	/* an association RQ/AC */
#define MIN_PDU		1024u
#define SEND_PDU_MAX	(1u << 20)	/* when the peer says unlimited */

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	int failed;
};

/* --- time and sockets --- */

int
ul_socket_setup(int fd, struct err *e)
{
	int one = 1;

	/* not TCP (a socketpair in tests and fuzzing): nothing to set */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == -1 &&
	    errno != EOPNOTSUPP && errno != ENOPROTOOPT)
		return err_sys(e, "setsockopt TCP_NODELAY");
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		return err_sys(e, "fcntl FD_CLOEXEC");
	return 0;
}

/* A TLS failure as the upper layer's: timeouts and closes keep their
 * meaning (a close before any byte is a port check, not an error). */
static int
tls_error(struct err *e)
{
	if (e->code == TLS_E_TIMEOUT)
		e->code = UL_E_TIMEOUT;
	else if (e->code == TLS_E_CLOSED)
		e->code = UL_E_CLOSED;
	return -1;
}

/* Wait until fd is readable or the deadline passes: 1, 0 timeout, -1. */
static int
wait_readable(int fd, long long deadline, struct err *e)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	long long left;
	int rc;

	for (;;) {
		left = deadline - mono_ms();
		if (left < 0)
			left = 0;
		rc = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		if (rc > 0)
			return 1;
		if (rc == 0 && left <= 1000000)
			return 0;
		if (rc == -1 && errno != EINTR)
			return err_sys(e, "poll");
	}
}

/* Read exactly n bytes by the deadline.  0; -1 with e (UL_E_TIMEOUT,
 * UL_E_CLOSED, or errno). */
static int
read_full(struct ul_assoc *a, void *buf, size_t n, long long deadline,
    struct err *e)
{
	uint8_t *p = buf;
	ssize_t r;
	int w;

	while (n > 0) {
		if (a->tls != NULL) {
			if ((r = tls_read(a->tls, p, n, deadline, e)) == -1)
				return tls_error(e);
			p += r;
			n -= (size_t)r;
			continue;
		}
		if ((w = wait_readable(a->fd, deadline, e)) == -1)
			return -1;
		if (w == 0)
			return err_set(e, UL_E_TIMEOUT, "timed out waiting "
			    "for the peer");
		r = read(a->fd, p, n);
		if (r == 0)
			return err_set(e, UL_E_CLOSED, "peer closed the "
			    "connection");
		if (r == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == ECONNRESET)
				return err_set(e, UL_E_CLOSED, "peer reset the "
				    "connection");
			return err_sys(e, "read");
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Write all n bytes (over TLS: within the idle time). */
static int
write_full(struct ul_assoc *a, const void *buf, size_t n, struct err *e)
{
	const uint8_t *p = buf;
	struct err scratch = { 0 };
	ssize_t r;

	if (e == NULL)
		e = &scratch;
	if (a->tls != NULL)
		return tls_write(a->tls, buf, n, mono_ms() + a->idle_ms, e) ==
		    -1 ? tls_error(e) : 0;
	while (n > 0) {
		r = send(a->fd, p, n, MSG_NOSIGNAL);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return err_sys(e, "send");
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * Write a PDU's header h (hn bytes) and its first data (n bytes) in one
 * system call where the socket takes it (sendmsg of both), so a short
 * message costs one send, not two: C-FIND answers are mostly such.
 */
static int
write_pair(struct ul_assoc *a, const uint8_t *h, size_t hn,
    const uint8_t *p, size_t n, struct err *e)
{
	struct iovec iov[2] = { { (void *)h, hn }, { (void *)p, n } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t r;

	if (a->tls != NULL)
		return write_full(a, h, hn, e) == -1 ? -1 :
		    n == 0 ? 0 : write_full(a, p, n, e);
	for (;;) {
		/* Drop what is sent (or was empty); done when nothing is left. */
		while (mh.msg_iovlen > 0 && mh.msg_iov[0].iov_len == 0) {
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen == 0)
			break;
		r = sendmsg(a->fd, &mh, MSG_NOSIGNAL);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return err_sys(e, "send");
		}
		for (size_t i = 0; r > 0 && i < mh.msg_iovlen; i++) {
			size_t k = (size_t)r < mh.msg_iov[i].iov_len ?
			    (size_t)r : mh.msg_iov[i].iov_len;

			mh.msg_iov[i].iov_base = (uint8_t *)
			    mh.msg_iov[i].iov_base + k;
			mh.msg_iov[i].iov_len -= k;
			r -= (ssize_t)k;
		}
	}
	return 0;
}

/* --- building PDUs --- */

static void
wput(struct wbuf *w, const void *p, size_t n)
{
	size_t cap;
	uint8_t *np;

	if (w->failed)
		return;
	if (w->len + n > w->cap) {
		cap = w->cap ? w->cap : 256;
		while (cap < w->len + n)
			cap *= 2;
		if ((np = realloc(w->p, cap)) == NULL) {
			w->failed = 1;
			return;
		}
		w->p = np;
		w->cap = cap;
	}
	memcpy(w->p + w->len, p, n);
	w->len += n;
}

static void
wput8(struct wbuf *w, uint8_t v)
{
	wput(w, &v, 1);
}

static void
wput16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	wput(w, b, 2);
}

static void
wput32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
	    (uint8_t)(v >> 8), (uint8_t)v };

	wput(w, b, 4);
}

static void
wzero(struct wbuf *w, size_t n)
{
	static const uint8_t z[32];

	while (n > 0) {
		wput(w, z, n < sizeof z ? n : sizeof z);
		n -= n < sizeof z ? n : sizeof z;
	}
}

/* An item header with a 16-bit length patched by item_end(). */
static size_t
item_begin(struct wbuf *w, uint8_t type)
{
	wput8(w, type);
	wput8(w, 0);
	wput16(w, 0);
	return w->len;
}

static void
item_end(struct wbuf *w, size_t start)
{
	size_t n = w->len - start;

	if (w->failed)
		return;
	if (n > 0xffff) {
		w->failed = 1;
		return;
	}
	w->p[start - 2] = (uint8_t)(n >> 8);
	w->p[start - 1] = (uint8_t)n;
}

static void
wstr_item(struct wbuf *w, uint8_t type, const char *s)
{
	size_t at = item_begin(w, type);

	wput(w, s, strlen(s));
	item_end(w, at);
}

static void
pdu_begin(struct wbuf *w, uint8_t type)
{
	wput8(w, type);
	wput8(w, 0);
	wput32(w, 0);
}

static int
pdu_send(struct ul_assoc *a, struct wbuf *w, struct err *e)
{
	size_t n;
	int rc;

	if (w->failed || w->len < 6 || w->len - 6 > UINT32_MAX) {
		free(w->p);
		return err_set(e, ENOMEM, "could not build a PDU");
	}
	n = w->len - 6;
	w->p[2] = (uint8_t)(n >> 24);
	w->p[3] = (uint8_t)(n >> 16);
	w->p[4] = (uint8_t)(n >> 8);
	w->p[5] = (uint8_t)n;
	rc = write_full(a, w->p, w->len, e);
	free(w->p);
	return rc;
}

static int
send_short(struct ul_assoc *a, uint8_t type, uint8_t b2, uint8_t b3,
    struct err *e)
{
	uint8_t p[10] = { type, 0, 0, 0, 0, 4, 0, 0, b2, b3 };

	return write_full(a, p, sizeof p, e);
}

/* Say close_notify and drop TLS: what follows is the TCP close. */
static void
end_tls(struct ul_assoc *a)
{
	tls_close(a->tls);
	a->tls = NULL;
}

void
ul_abort(struct ul_assoc *a, int source, int reason)
{
	if (a == NULL || a->fd < 0)
		return;
	send_short(a, PDU_ABORT, (uint8_t)source, (uint8_t)reason, NULL);
	end_tls(a);
	shutdown(a->fd, SHUT_WR);
}

/* Abort as provider for a protocol error and say why in e. */
static int
protocol_abort(struct ul_assoc *a, int reason, struct err *e,
    const char *what)
{
	ul_abort(a, 2, reason);
	return err_set(e, UL_E_PROTOCOL, "%s (aborted, reason %d)", what,
	    reason);
}

/* --- reading PDUs --- */

static uint16_t
be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static int
valid_type(uint8_t t)
{
	return t >= PDU_ASSOC_RQ && t <= PDU_ABORT;
}

/* A close after a PDU's first byte is a truncated PDU, not an ending. */
static int
cut_short(struct err *e)
{
	if (e != NULL && e->code == UL_E_CLOSED)
		return err_set(e, UL_E_PROTOCOL, "peer closed the connection "
		    "inside a PDU");
	return -1;
}

/*
 * Read one PDU's header and body into a->pdu.  The header must start by
 * first_deadline; the rest follows within idle.  Returns the type, or -1
 * (aborted on protocol errors, e set).  e->code is UL_E_CLOSED only when
 * the peer closed before the PDU's first byte (a clean end, or a port
 * check that never spoke).
 */
static int
read_pdu(struct ul_assoc *a, long long first_deadline, struct err *e)
{
	uint8_t h[6];
	uint32_t len, max;
	long long dl;
	uint8_t *np;

	if (read_full(a, h, 1, first_deadline, e) == -1)
		return -1;
	dl = mono_ms() + a->idle_ms;
	if (read_full(a, h + 1, 5, dl, e) == -1)
		return cut_short(e);
	if (!valid_type(h[0]))
		return protocol_abort(a, AB_UNRECOGNIZED_PDU, e, h[0] == 0x16 &&
		    a->tls == NULL ? "a TLS handshake on the plain DICOM port "
		    "(the peer wants the TLS port)" : "unrecognised PDU type");
	len = be32(h + 2);
	max = h[0] == PDU_DATA ? a->our_max_pdu : ASSOC_PDU_MAX;
	if (h[0] == PDU_DATA && max == 0)
		max = UL_DEFAULT_MAX_PDU;
	if (h[0] >= PDU_ASSOC_RJ && h[0] != PDU_DATA && len != 4)
		return protocol_abort(a, AB_INVALID_PARAM, e,
		    "bad length for a fixed-size PDU");
	if (len > max)
		return protocol_abort(a, AB_INVALID_PARAM, e,
		    "PDU longer than the maximum we accept");
	if (len > a->pducap) {
		if ((np = realloc(a->pdu, len)) == NULL)
			return err_set(e, ENOMEM, "out of memory for a PDU");
		a->pdu = np;
		a->pducap = len;
	}
	if (len > 0 && read_full(a, a->pdu, len, dl, e) == -1)
		return cut_short(e);
	a->pdulen = len;
	a->pdupos = 0;
	return h[0];
}

/* Copy a UID or AE field (trailing NULs and spaces dropped). */
static int
copy_field(char *out, size_t outsz, const uint8_t *p, size_t n)
{
	size_t i;

	while (n > 0 && (p[n - 1] == 0 || p[n - 1] == ' '))
		n--;
	while (n > 0 && p[0] == ' ') {
		p++;
		n--;
	}
	if (n >= outsz)
		return -1;
	for (i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/* Walk items in [p, p+n): each callback gets type, body, body length. */
typedef int (*item_fn)(struct ul_assoc *, uint8_t, const uint8_t *, size_t,
    void *);

static int
walk_items(struct ul_assoc *a, const uint8_t *p, size_t n, item_fn fn,
    void *arg)
{
	size_t len;

	while (n > 0) {
		if (n < 4)
			return -1;
		len = be16(p + 2);
		if (len > n - 4)
			return -1;
		if (fn(a, p[0], p + 4, len, arg) == -1)
			return -1;
		p += 4 + len;
		n -= 4 + len;
	}
	return 0;
}

static int
user_sub_item(struct ul_assoc *a, uint8_t type, const uint8_t *p, size_t n,
    void *arg)
{
	struct ul_context *c;
	char uid[UL_UID_MAX];
	size_t ulen;
	int i;

	(void)arg;
	switch (type) {
	case SUB_MAX_LEN:
		if (n != 4)
			return -1;
		a->peer_max_pdu = be32(p);
		return 0;
	case SUB_IMPL_UID:
		return copy_field(a->peer_impl_uid, sizeof a->peer_impl_uid,
		    p, n);
	case SUB_IMPL_VER:
		return copy_field(a->peer_impl_version,
		    sizeof a->peer_impl_version, p, n);
	case SUB_ROLE:
		if (n < 4 || (ulen = be16(p)) != n - 4 ||
		    copy_field(uid, sizeof uid, p + 2, ulen) == -1)
			return -1;
		for (i = 0; i < a->nctx; i++) {
			c = &a->ctx[i];
			if (strcmp(c->abstract_syntax, uid) != 0)
				continue;
			c->role_proposed = 1;
			c->scu_role = p[2 + ulen];
			c->scp_role = p[3 + ulen];
		}
		return 0;
	default:
		return 0;	/* async ops, extended negotiation, identity */
	}
}

static int
pctx_sub_item(struct ul_assoc *a, uint8_t type, const uint8_t *p, size_t n,
    void *arg)
{
	struct ul_context *c = arg;

	(void)a;
	if (type == ITEM_ABSTRACT)
		return copy_field(c->abstract_syntax,
		    sizeof c->abstract_syntax, p, n);
	if (type != ITEM_TS)
		return -1;
	if (c->nproposed >= UL_MAX_TS)
		return 0;	/* more than we weigh: ignore the rest */
	if (copy_field(c->proposed_ts[c->nproposed], UL_UID_MAX, p, n) == -1)
		return -1;
	c->nproposed++;
	return 0;
}

static int
rq_item(struct ul_assoc *a, uint8_t type, const uint8_t *p, size_t n,
    void *arg)
{
	struct ul_context *c;
	int *app_ok = arg;
	char uid[UL_UID_MAX];

	switch (type) {
	case ITEM_APP_CTX:
		if (copy_field(uid, sizeof uid, p, n) == -1)
			return -1;
		*app_ok = strcmp(uid, UL_APPLICATION_CONTEXT) == 0;
		return 0;
	case ITEM_PCTX_RQ:
		if (n < 4 || a->nctx >= UL_MAX_CONTEXTS)
			return -1;
		c = &a->ctx[a->nctx];
		memset(c, 0, sizeof *c);
		c->id = p[0];
		if (walk_items(a, p + 4, n - 4, pctx_sub_item, c) == -1 ||
		    c->abstract_syntax[0] == '\0' || c->nproposed == 0)
			return -1;
		a->nctx++;
		return 0;
	case ITEM_USER:
		return walk_items(a, p, n, user_sub_item, NULL);
	default:
		return -1;
	}
}

/* Parse the variable field of an A-ASSOCIATE-RQ into a.  -1: malformed. */
static int
parse_rq(struct ul_assoc *a, const uint8_t *p, size_t n, int *app_ok,
    int *version_ok)
{
	if (n < 68)
		return -1;
	*version_ok = (be16(p) & 1) != 0;
	if (copy_field(a->called_aet, sizeof a->called_aet, p + 4, 16) == -1 ||
	    copy_field(a->calling_aet, sizeof a->calling_aet, p + 20,
	    16) == -1)
		return -1;
	*app_ok = 0;
	return walk_items(a, p + 68, n - 68, rq_item, app_ok);
}

/* --- negotiation (acceptor) --- */

static int
in_list(const char *const *list, const char *s)
{
	for (; list != NULL && *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return 1;
	return 0;
}

static const char *const ts_little_endian[] = {
	"1.2.840.10008.1.2.1", "1.2.840.10008.1.2", NULL
};

/* The first proposed syntax that is in list: in the peer's order. */
static int
choose_theirs(struct ul_context *c, const char *const *list)
{
	int i;

	for (i = 0; i < c->nproposed; i++) {
		if (in_list(list, c->proposed_ts[i])) {
			memcpy(c->transfer_syntax, c->proposed_ts[i],
			    UL_UID_MAX);
			return 0;
		}
	}
	return -1;
}

/* The first of list that was proposed: in our order. */
static int
choose_ours(struct ul_context *c, const char *const *list)
{
	int i;

	for (; *list != NULL; list++) {
		for (i = 0; i < c->nproposed; i++) {
			if (strcmp(c->proposed_ts[i], *list) == 0) {
				snprintf(c->transfer_syntax,
				    sizeof c->transfer_syntax, "%s", *list);
				return 0;
			}
		}
	}
	return -1;
}

static void
choose_ts(struct ul_context *c, const struct ul_config *cfg)
{
	int rc;

	c->peer_is_scp = c->role_proposed && c->scp_role &&
	    in_list(cfg->scp_role_syntaxes, c->abstract_syntax);
	if (c->peer_is_scp && cfg->scp_role_transfer_syntaxes != NULL)
		rc = choose_theirs(c, cfg->scp_role_transfer_syntaxes);
	else if (c->peer_is_scp ||
	    in_list(cfg->abstract_syntaxes, c->abstract_syntax))
		rc = choose_ours(c, ts_little_endian);
	else {
		c->result = UL_CTX_ABSTRACT_NOT_SUPPORTED;
		return;
	}
	c->result = rc == 0 ? UL_CTX_ACCEPTED : UL_CTX_TS_NOT_SUPPORTED;
	/* the requestor may be SCU only of what we serve */
	if (c->scu_role && !in_list(cfg->abstract_syntaxes, c->abstract_syntax))
		c->scu_role = 0;
}

/* Decide on the request: 0 accept, or fill a->reject. */
static int
judge(struct ul_assoc *a, const struct ul_config *cfg, int app_ok,
    int version_ok)
{
	struct ul_reject *r = &a->reject;
	int i;

	r->result = 1;
	r->source = 1;
	if (cfg->busy) {
		r->result = 2;
		r->source = 3;
		r->reason = 2;		/* local limit exceeded */
	} else if (!version_ok) {
		r->source = 2;
		r->reason = 2;		/* protocol version not supported */
	} else if (!app_ok)
		r->reason = 2;		/* application context not supported */
	else if (!cfg->any_called_aet && cfg->ae_title != NULL &&
	    strcmp(a->called_aet, cfg->ae_title) != 0)
		r->reason = 7;		/* called AE title not recognised */
	else if (cfg->allowed_calling != NULL &&
	    !in_list(cfg->allowed_calling, a->calling_aet))
		r->reason = 3;		/* calling AE title not recognised */
	else {
		for (i = 0; i < a->nctx; i++)
			choose_ts(&a->ctx[i], cfg);
		return 0;
	}
	return -1;
}

static void
ae_field(struct wbuf *w, const char *ae)
{
	char f[16];
	size_t n = strlen(ae);

	memset(f, ' ', sizeof f);
	memcpy(f, ae, n > 16 ? 16 : n);
	wput(w, f, 16);
}

/*
 * User information: our maximum PDU, implementation, and SCP/SCU role
 * selection (one item per SOP class).  As acceptor (answer) for each
 * accepted context whose requestor proposed roles: the SCU role as
 * proposed, the SCP role when we granted it.  As requestor for each
 * context we propose roles for.
 */
static void
put_user_info(struct wbuf *w, struct ul_assoc *a, int answer)
{
	size_t at = item_begin(w, ITEM_USER), s;
	const struct ul_context *c;
	int i, k;

	s = item_begin(w, SUB_MAX_LEN);
	wput32(w, a->our_max_pdu);
	item_end(w, s);
	wstr_item(w, SUB_IMPL_UID, dcm_build_implementation_uid);
	for (i = 0; i < a->nctx; i++) {
		c = &a->ctx[i];
		if (!c->role_proposed ||
		    (answer && c->result != UL_CTX_ACCEPTED))
			continue;
		for (k = 0; k < i; k++)	/* one item per SOP class */
			if (a->ctx[k].role_proposed &&
			    (!answer || a->ctx[k].result == UL_CTX_ACCEPTED) &&
			    strcmp(a->ctx[k].abstract_syntax,
			    c->abstract_syntax) == 0)
				break;
		if (k < i)
			continue;
		s = item_begin(w, SUB_ROLE);
		wput16(w, (uint16_t)strlen(c->abstract_syntax));
		wput(w, c->abstract_syntax, strlen(c->abstract_syntax));
		wput8(w, c->scu_role ? 1 : 0);
		wput8(w, (answer ? c->peer_is_scp : c->scp_role) ? 1 : 0);
		item_end(w, s);
	}
	wstr_item(w, SUB_IMPL_VER, dcm_build_implementation_version);
	item_end(w, at);
}

static int
send_ac(struct ul_assoc *a, struct err *e)
{
	struct wbuf w = { 0 };
	const struct ul_context *c;
	size_t at;
	int i;

	pdu_begin(&w, PDU_ASSOC_AC);
	wput16(&w, 1);
	wput16(&w, 0);
	ae_field(&w, a->called_aet);
	ae_field(&w, a->calling_aet);
	wzero(&w, 32);
	wstr_item(&w, ITEM_APP_CTX, UL_APPLICATION_CONTEXT);
	for (i = 0; i < a->nctx; i++) {
		c = &a->ctx[i];
		at = item_begin(&w, ITEM_PCTX_AC);
		wput8(&w, c->id);
		wput8(&w, 0);
		wput8(&w, (uint8_t)c->result);
		wput8(&w, 0);
		/* PS3.8 9.3.3.2: a TS sub-item always; ignored if rejected */
		wstr_item(&w, ITEM_TS, c->result == UL_CTX_ACCEPTED ?
		    c->transfer_syntax : "1.2.840.10008.1.2");
		item_end(&w, at);
	}
	put_user_info(&w, a, 1);
	return pdu_send(a, &w, e);
}

static struct ul_assoc *
assoc_new(int fd, const struct ul_config *cfg)
{
	struct ul_assoc *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->fd = fd;
	a->tls = cfg->tls;
	a->our_max_pdu = cfg->max_pdu ? cfg->max_pdu : UL_DEFAULT_MAX_PDU;
	if (a->our_max_pdu < MIN_PDU)
		a->our_max_pdu = MIN_PDU;
	a->artim_ms = cfg->artim_ms > 0 ? cfg->artim_ms : 30000;
	a->idle_ms = cfg->idle_ms > 0 ? cfg->idle_ms : 300000;
	a->dimse_ms = cfg->dimse_ms > 0 ? cfg->dimse_ms : 600000;
	a->msg_ctx = -1;
	return a;
}

static int
send_rj(struct ul_assoc *a, struct err *e)
{
	const struct ul_reject *r = &a->reject;
	uint8_t p[10] = { PDU_ASSOC_RJ, 0, 0, 0, 0, 4, 0, (uint8_t)r->result,
	    (uint8_t)r->source, (uint8_t)r->reason };

	write_full(a, p, sizeof p, NULL);
	end_tls(a);
	shutdown(a->fd, SHUT_WR);
	return err_set(e, UL_E_REJECTED, "association rejected "
	    "(result %d, source %d, reason %d)", r->result, r->source,
	    r->reason);
}

/*
 * Wait until n bytes can be peeked from fd, and peek them (MSG_PEEK: they
 * stay in the socket).  SO_RCVLOWAT makes poll() wait for all n; where
 * it is not honoured, a short nap stands in for it.  -1 with e set:
 * UL_E_CLOSED when the peer closed before the first byte, UL_E_PROTOCOL
 * when it closed inside, UL_E_TIMEOUT, or errno.
 */
static int
peek_full(int fd, uint8_t *buf, size_t n, long long deadline, struct err *e)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
	int lowat = (int)n, one = 1, rc = -1, hup = 0;
	ssize_t r, last = -1;
	long long left;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
	for (;;) {
		r = recv(fd, buf, n, MSG_PEEK | MSG_DONTWAIT);
		if (r == (ssize_t)n) {
			rc = 0;
			break;
		}
		if (r == 0 || (r == -1 && errno == ECONNRESET) ||
		    (r > 0 && hup)) {
			rc = r > 0 ? err_set(e, UL_E_PROTOCOL, "peer closed "
			    "the connection inside a PDU") : err_set(e,
			    UL_E_CLOSED, "peer closed the connection");
			break;
		}
		if (r == -1 && errno != EAGAIN && errno != EINTR) {
			rc = err_sys(e, "recv");
			break;
		}
		if (r == last)		/* no SO_RCVLOWAT: do not spin */
			poll(NULL, 0, 5);
		last = r;
		if ((left = deadline - mono_ms()) <= 0) {
			rc = err_set(e, UL_E_TIMEOUT, "timed out waiting for "
			    "the peer");
			break;
		}
		if (poll(&p, 1, left > 1000 ? 1000 : (int)left) > 0 &&
		    (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			hup = 1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
	return rc;
}

/* As read_pdu() for the first PDU, but peeked: nothing is taken off the
 * socket.  The body lands in a->pdu. */
static int
peek_pdu(struct ul_assoc *a, long long deadline, struct err *e)
{
	uint8_t h[6], *np;
	uint32_t len;

	if (peek_full(a->fd, h, 6, deadline, e) == -1)
		return -1;
	if (!valid_type(h[0]))
		return protocol_abort(a, AB_UNRECOGNIZED_PDU, e, h[0] == 0x16 ?
		    "a TLS handshake on the plain DICOM port (the peer wants "
		    "the TLS port)" : "unrecognised PDU type");
	len = be32(h + 2);
	if (h[0] != PDU_ASSOC_RQ)
		return protocol_abort(a, AB_UNEXPECTED_PDU, e,
		    "expected an A-ASSOCIATE-RQ");
	if (len > ASSOC_PDU_MAX)
		return protocol_abort(a, AB_INVALID_PARAM, e,
		    "PDU longer than the maximum we accept");
	if ((np = realloc(a->pdu, 6 + (size_t)len)) == NULL)
		return err_set(e, ENOMEM, "out of memory for a PDU");
	a->pdu = np;
	a->pducap = 6 + (size_t)len;
	if (peek_full(a->fd, a->pdu, 6 + (size_t)len, mono_ms() + a->idle_ms,
	    e) == -1)
		return e->code == UL_E_CLOSED ? cut_short(e) : -1;
	memmove(a->pdu, a->pdu + 6, len);
	a->pdulen = len;
	a->pdupos = 0;
	a->peeked = 1;
	return h[0];
}

/* The A-ASSOCIATE-RQ, read (or peeked) and parsed into a.  0; -1 with e
 * set (a malformed or unexpected PDU is answered with an A-ABORT). */
static int
take_request(struct ul_assoc *a, int peek, int *app_ok, int *version_ok,
    struct err *e)
{
	long long dl = mono_ms() + a->artim_ms;
	int type;

	if (ul_socket_setup(a->fd, e) == -1)
		return -1;
	if ((type = peek ? peek_pdu(a, dl, e) : read_pdu(a, dl, e)) == -1)
		return -1;
	if (type != PDU_ASSOC_RQ)
		return protocol_abort(a, AB_UNEXPECTED_PDU, e,
		    "expected an A-ASSOCIATE-RQ");
	if (parse_rq(a, a->pdu, a->pdulen, app_ok, version_ok) == -1)
		return protocol_abort(a, AB_INVALID_PARAM, e,
		    "malformed A-ASSOCIATE-RQ");
	if (a->peer_max_pdu != 0 && a->peer_max_pdu < 16)
		return protocol_abort(a, AB_INVALID_PARAM, e,
		    "peer's maximum PDU length too small");
	return 0;
}

int
ul_accept(struct ul_assoc **out, int fd, const struct ul_config *cfg,
    struct err *e)
{
	struct ul_assoc *a;
	int app_ok = 0, version_ok = 0;

	*out = NULL;
	if ((a = assoc_new(fd, cfg)) == NULL) {
		close(fd);
		return err_set(e, ENOMEM, "out of memory");
	}
	*out = a;
	if (take_request(a, 0, &app_ok, &version_ok, e) == -1)
		return -1;
	a->pdulen = a->pdupos = 0;
	if (judge(a, cfg, app_ok, version_ok) == -1)
		return send_rj(a, e);
	return send_ac(a, e);
}

int
ul_request(struct ul_assoc **out, int fd, const struct ul_config *cfg,
    int peek, struct err *e)
{
	struct ul_assoc *a;
	int app_ok = 0, version_ok = 0;

	*out = NULL;
	if (peek && cfg->tls != NULL) {
		close(fd);
		return err_set(e, EINVAL, "a TLS request cannot be peeked");
	}
	if ((a = assoc_new(fd, cfg)) == NULL) {
		close(fd);
		return err_set(e, ENOMEM, "out of memory");
	}
	*out = a;
	return take_request(a, peek, &app_ok, &version_ok, e);
}

int
ul_request_pdu(const struct ul_assoc *a, uint8_t **pdu, size_t *len,
    struct err *e)
{
	uint8_t *p;

	if ((p = malloc(6 + a->pdulen)) == NULL)
		return err_set(e, ENOMEM, "out of memory");
	p[0] = PDU_ASSOC_RQ;
	p[1] = 0;
	p[2] = (uint8_t)(a->pdulen >> 24);
	p[3] = (uint8_t)(a->pdulen >> 16);
	p[4] = (uint8_t)(a->pdulen >> 8);
	p[5] = (uint8_t)a->pdulen;
	memcpy(p + 6, a->pdu, a->pdulen);
	*pdu = p;
	*len = 6 + a->pdulen;
	return 0;
}

int
ul_refuse(struct ul_assoc *a, const struct ul_reject *r, struct err *e)
{
	uint8_t h[6];

	if (a->peeked) {	/* take the request off the socket first */
		a->peeked = 0;
		if (read_full(a, h, sizeof h, mono_ms() + a->idle_ms, e) == -1 ||
		    (a->pdulen > 0 && read_full(a, a->pdu, a->pdulen,
		    mono_ms() + a->idle_ms, e) == -1))
			return -1;
	}
	a->pdulen = a->pdupos = 0;
	a->reject = *r;
	return send_rj(a, e);
}

const char *
ul_reject_reason(const struct ul_reject *r)
{
	if (r->source == 1 && r->reason == 2)
		return "application context name not supported";
	if (r->source == 1 && r->reason == 3)
		return "calling AE title not recognised";
	if (r->source == 1 && r->reason == 7)
		return "called AE title not recognised";
	if (r->source == 2 && r->reason == 2)
		return "protocol version not supported";
	if (r->source == 3 && r->reason == 1)
		return "temporary congestion";
	if (r->source == 3 && r->reason == 2)
		return "local limit exceeded";
	return "no reason given";
}

const char *
ul_reject_result(const struct ul_reject *r)
{
	return r->result == 2 ? "rejected-transient" : "rejected-permanent";
}

/* --- requestor --- */

static int
ac_item(struct ul_assoc *a, uint8_t type, const uint8_t *p, size_t n,
    void *arg)
{
	struct ul_context *c = NULL;
	struct ul_context tmp;
	int i;

	(void)arg;
	switch (type) {
	case ITEM_APP_CTX:
		return 0;
	case ITEM_PCTX_AC:
		if (n < 4)
			return -1;
		for (i = 0; i < a->nctx; i++)
			if (a->ctx[i].id == p[0])
				c = &a->ctx[i];
		if (c == NULL)
			return -1;
		c->result = p[2];
		memset(&tmp, 0, sizeof tmp);
		if (walk_items(a, p + 4, n - 4, pctx_sub_item, &tmp) == -1)
			return -1;
		if (c->result == UL_CTX_ACCEPTED) {
			if (tmp.nproposed != 1)
				return -1;
			memcpy(c->transfer_syntax, tmp.proposed_ts[0],
			    UL_UID_MAX);
		}
		return 0;
	case ITEM_USER:
		return walk_items(a, p, n, user_sub_item, NULL);
	default:
		return -1;
	}
}

static int
send_rq(struct ul_assoc *a, const struct ul_proposal *ctxs, size_t n,
    struct err *e)
{
	struct wbuf w = { 0 };
	const char *const *ts;
	size_t at, i;

	pdu_begin(&w, PDU_ASSOC_RQ);
	wput16(&w, 1);
	wput16(&w, 0);
	ae_field(&w, a->called_aet);
	ae_field(&w, a->calling_aet);
	wzero(&w, 32);
	wstr_item(&w, ITEM_APP_CTX, UL_APPLICATION_CONTEXT);
	for (i = 0; i < n; i++) {
		at = item_begin(&w, ITEM_PCTX_RQ);
		wput8(&w, a->ctx[i].id);
		wzero(&w, 3);
		wstr_item(&w, ITEM_ABSTRACT, ctxs[i].abstract_syntax);
		for (ts = ctxs[i].transfer_syntaxes; *ts != NULL; ts++)
			wstr_item(&w, ITEM_TS, *ts);
		item_end(&w, at);
	}
	put_user_info(&w, a, 0);
	return pdu_send(a, &w, e);
}

/* connect() bounded by timeout_ms (a host that never answers would
 * otherwise hold us for the kernel's SYN retries, about two minutes). */
static int
connect_within(int fd, const struct sockaddr *sa, socklen_t len,
    int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int flags, rc, soerr = 0;
	socklen_t sl = sizeof soerr;

	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		return -1;
	rc = connect(fd, sa, len);
	if (rc == -1 && errno == EINPROGRESS) {
		while ((rc = poll(&p, 1, timeout_ms)) == -1 && errno == EINTR)
			;
		if (rc == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (rc == -1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
		    &sl) == -1)
			return -1;
		if (soerr != 0) {
			errno = soerr;
			return -1;
		}
		rc = 0;
	}
	if (rc == -1)
		return -1;
	return fcntl(fd, F_SETFL, flags);
}

static int
tcp_connect(const char *host, int port, int timeout_ms, struct err *e)
{
	struct addrinfo hints = { 0 }, *res, *ai;
	char svc[16];
	int fd = -1, rc, saved = EHOSTUNREACH;

	hints.ai_socktype = SOCK_STREAM;
	snprintf(svc, sizeof svc, "%d", port);
	if ((rc = getaddrinfo(host, svc, &hints, &res)) != 0)
		return err_set(e, EHOSTUNREACH, "%s: %s", host,
		    gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd == -1) {
			saved = errno;
			continue;
		}
		if (connect_within(fd, ai->ai_addr, ai->ai_addrlen,
		    timeout_ms) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		errno = saved;
		return err_sys(e, "connect %s:%d", host, port);
	}
	return fd;
}

static int
read_answer(struct ul_assoc *a, struct err *e)
{
	int type;

	if ((type = read_pdu(a, mono_ms() + a->artim_ms, e)) == -1)
		return -1;
	if (type != PDU_ASSOC_AC)
		a->pdulen = a->pdupos = 0;
	if (type == PDU_ASSOC_RJ) {
		a->reject.result = a->pdu[1];
		a->reject.source = a->pdu[2];
		a->reject.reason = a->pdu[3];
		return err_set(e, UL_E_REJECTED, "association rejected "
		    "(result %d, source %d, reason %d)", a->reject.result,
		    a->reject.source, a->reject.reason);
	}
	if (type == PDU_ABORT)
		return err_set(e, UL_E_ABORTED, "association aborted by peer");
	if (type != PDU_ASSOC_AC)
		return protocol_abort(a, AB_UNEXPECTED_PDU, e,
		    "expected an A-ASSOCIATE-AC");
	if (a->pdulen < 68 || walk_items(a, a->pdu + 68, a->pdulen - 68,
	    ac_item, NULL) == -1)
		return protocol_abort(a, AB_INVALID_PARAM, e,
		    "malformed A-ASSOCIATE-AC");
	a->pdulen = a->pdupos = 0;
	return 0;
}

int
ul_connect(struct ul_assoc **out, const char *host, int port,
    const char *calling, const char *called, const struct ul_proposal *ctxs,
    size_t nctxs, const struct ul_config *cfg, struct err *e)
{
	struct ul_assoc *a;
	size_t i;
	int fd;

	*out = NULL;
	if (nctxs == 0 || nctxs > UL_MAX_CONTEXTS || strlen(calling) > 16 ||
	    strlen(called) > 16)
		return err_set(e, EINVAL, "bad association parameters");
	if ((fd = tcp_connect(host, port, cfg->artim_ms > 0 ? cfg->artim_ms :
	    30000, e)) == -1)
		return -1;
	if ((a = assoc_new(fd, cfg)) == NULL) {
		close(fd);
		return err_set(e, ENOMEM, "out of memory");
	}
	*out = a;
	snprintf(a->calling_aet, sizeof a->calling_aet, "%s", calling);
	snprintf(a->called_aet, sizeof a->called_aet, "%s", called);
	for (i = 0; i < nctxs; i++) {
		a->ctx[i].id = (uint8_t)(2 * i + 1);
		a->ctx[i].result = UL_CTX_NO_REASON;
		snprintf(a->ctx[i].abstract_syntax, UL_UID_MAX, "%s",
		    ctxs[i].abstract_syntax);
		if (ctxs[i].scp_role) {	/* we are the SCP, not the SCU */
			a->ctx[i].role_proposed = 1;
			a->ctx[i].scu_role = 0;
			a->ctx[i].scp_role = 1;
		}
	}
	a->nctx = (int)nctxs;
	if (ul_socket_setup(fd, e) == -1)
		return -1;
	if (cfg->tls_client != NULL && tls_connect(&a->tls, cfg->tls_client,
	    fd, host, a->artim_ms, e) == -1)
		return -1;
	if (send_rq(a, ctxs, nctxs, e) == -1)
		return -1;
	return read_answer(a, e);
}

/* --- data transfer --- */

const struct ul_context *
ul_context(const struct ul_assoc *a, uint8_t id)
{
	int i;

	for (i = 0; i < a->nctx; i++)
		if (a->ctx[i].id == id && a->ctx[i].result == UL_CTX_ACCEPTED)
			return &a->ctx[i];
	return NULL;
}

/* The header of a P-DATA-TF PDU holding one PDV of n bytes. */
static void
pdv_header(uint8_t h[12], size_t n, uint8_t ctx_id, int is_command,
    int last)
{
	h[0] = PDU_DATA;
	h[1] = 0;
	h[2] = (uint8_t)((n + 6) >> 24);
	h[3] = (uint8_t)((n + 6) >> 16);
	h[4] = (uint8_t)((n + 6) >> 8);
	h[5] = (uint8_t)(n + 6);
	h[6] = (uint8_t)((n + 2) >> 24);
	h[7] = (uint8_t)((n + 2) >> 16);
	h[8] = (uint8_t)((n + 2) >> 8);
	h[9] = (uint8_t)(n + 2);
	h[10] = ctx_id;
	h[11] = (uint8_t)((is_command ? 1 : 0) | (last ? 2 : 0));
}

/*
 * A source that fails in the middle of a PDU: the PDU is completed with
 * zeros (so the peer can still parse the stream) and the association
 * aborted, since the message cannot be completed.
 */
static int
source_failed(struct ul_assoc *a, size_t left, struct err *e)
{
	static const uint8_t zeros[4096];

	while (left > 0) {
		size_t k = left < sizeof zeros ? left : sizeof zeros;

		if (write_full(a, zeros, k, NULL) == -1)
			break;
		left -= k;
	}
	ul_abort(a, 0, 0);
	if (e != NULL)
		e->code = UL_E_ABORTED;
	return err_wrap(e, "data set source failed (association aborted)");
}

/* The source's next piece of at most want (> 0) bytes into *p: its
 * length, or -1 (e says why: the source's error, or a piece of a size
 * it may not give). */
static ssize_t
next_piece(const struct ul_source *src, const uint8_t **p, size_t want,
    struct err *e)
{
	ssize_t k = src->next(src->arg, p, want, e);

	if (k == 0 || k > (ssize_t)want) {
		err_set(e, EIO, "data set source gave %zd bytes where %zu "
		    "remained", k, want);
		return -1;
	}
	return k;
}

int
ul_send_source(struct ul_assoc *a, uint8_t ctx_id, int is_command,
    const struct ul_source *src, struct err *e)
{
	uint32_t max = a->peer_max_pdu;
	size_t chunk, off = 0;
	uint8_t h[12];
	int last;

	if (max == 0 || max > SEND_PDU_MAX)
		max = SEND_PDU_MAX;
	chunk = max - 6;
	do {
		size_t n = src->len - off < chunk ? src->len - off : chunk;
		const uint8_t *p = NULL;
		ssize_t k = 0;

		last = off + n == src->len;
		pdv_header(h, n, ctx_id, is_command, last);
		/* The header goes with the PDU's first piece, in one write. */
		if (n > 0 && (k = next_piece(src, &p, n, e)) == -1) {
			if (write_full(a, h, sizeof h, NULL) == -1)
				return -1;
			return source_failed(a, n, e);
		}
		if (write_pair(a, h, sizeof h, p, (size_t)k, e) == -1)
			return -1;
		for (size_t done = (size_t)k; done < n; done += (size_t)k) {
			if ((k = next_piece(src, &p, n - done, e)) == -1)
				return source_failed(a, n - done, e);
			if (write_full(a, p, (size_t)k, e) == -1)
				return -1;
		}
		off += n;
	} while (!last);
	return 0;
}

/* A data set already in memory, as a source: no copy. */
struct mem_source {
	const uint8_t *p;
	size_t pos, len;
};

static ssize_t
mem_next(void *arg, const uint8_t **p, size_t max, struct err *e)
{
	struct mem_source *m = arg;
	size_t n = m->len - m->pos < max ? m->len - m->pos : max;

	(void)e;
	*p = m->p + m->pos;
	m->pos += n;
	return (ssize_t)n;
}

int
ul_send(struct ul_assoc *a, uint8_t ctx_id, int is_command,
    const uint8_t *buf, size_t len, struct err *e)
{
	struct mem_source m = { buf, 0, len };
	struct ul_source src = { mem_next, &m, len };

	return ul_send_source(a, ctx_id, is_command, &src, e);
}

int
ul_pending(struct ul_assoc *a)
{
	struct pollfd p = { .fd = a->fd, .events = POLLIN };

	if (a->pdupos < a->pdulen || (a->tls != NULL && tls_pending(a->tls)))
		return 1;
	return poll(&p, 1, 0) > 0;
}

/* Append one PDV's data to the message being assembled; 1 when it was
 * the last fragment, 0 if more follow, -1 (aborted). */
static int
take_pdv(struct ul_assoc *a, const uint8_t *p, size_t n, struct err *e)
{
	uint8_t ctx = p[0], hdr = p[1];
	int command = hdr & 1;
	size_t cap;
	uint8_t *np;

	p += 2;
	n -= 2;
	if (ul_context(a, ctx) == NULL)
		return protocol_abort(a, AB_INVALID_PARAM, e,
		    "P-DATA on a presentation context not accepted");
	if (a->msg_ctx == -1) {
		a->msg_ctx = ctx;
		a->msg_command = command;
		a->msglen = 0;
		a->msg_deadline = mono_ms() + a->dimse_ms;
	} else if (a->msg_ctx != ctx || a->msg_command != command)
		return protocol_abort(a, AB_UNEXPECTED_PARAM, e,
		    "PDV interleaved with an unfinished message");
	if (n > UL_MESSAGE_MAX - a->msglen)
		return protocol_abort(a, AB_INVALID_PARAM, e,
		    "message larger than we accept");
	if (a->msglen + n > a->msgcap) {
		cap = a->msgcap ? a->msgcap : 4096;
		while (cap < a->msglen + n)
			cap *= 2;
		if ((np = realloc(a->msg, cap)) == NULL)
			return err_set(e, ENOMEM, "out of memory");
		a->msg = np;
		a->msgcap = cap;
	}
	if (n > 0)
		memcpy(a->msg + a->msglen, p, n);
	a->msglen += n;
	return (hdr & 2) != 0;
}

/* Take PDVs from the current P-DATA until a message part completes. */
static int
next_pdvs(struct ul_assoc *a, struct ul_msg *m, struct err *e)
{
	size_t len;
	int r;

	while (a->pdulen - a->pdupos > 0) {
		if (a->pdulen - a->pdupos < 6)
			return protocol_abort(a, AB_INVALID_PARAM, e,
			    "truncated PDV item");
		len = be32(a->pdu + a->pdupos);
		if (len < 2 || len > a->pdulen - a->pdupos - 4)
			return protocol_abort(a, AB_INVALID_PARAM, e,
			    "bad PDV item length");
		r = take_pdv(a, a->pdu + a->pdupos + 4, len, e);
		if (r == -1)
			return -1;
		a->pdupos += 4 + len;
		if (r == 1) {
			m->ctx_id = (uint8_t)a->msg_ctx;
			m->is_command = a->msg_command;
			m->data = a->msg;
			m->len = a->msglen;
			a->msg = NULL;
			a->msglen = a->msgcap = 0;
			a->msg_ctx = -1;
			return 1;
		}
	}
	return 0;
}

static int
on_release(struct ul_assoc *a, struct err *e)
{
	if (a->msg_ctx != -1)
		return protocol_abort(a, AB_UNEXPECTED_PDU, e,
		    "A-RELEASE-RQ in the middle of a message");
	a->released = 1;
	if (send_short(a, PDU_RELEASE_RP, 0, 0, e) == -1)
		return -1;
	return UL_RELEASED;
}

int
ul_recv(struct ul_assoc *a, struct ul_msg *m, struct err *e)
{
	long long dl;
	int type, r;

	memset(m, 0, sizeof *m);
	for (;;) {
		if ((r = next_pdvs(a, m, e)) != 0)
			return r == 1 ? UL_MESSAGE : -1;
		dl = mono_ms() + a->idle_ms;
		if (a->msg_ctx != -1 && a->msg_deadline < dl)
			dl = a->msg_deadline;
		if ((type = read_pdu(a, dl, e)) == -1) {
			if (e != NULL && e->code == UL_E_CLOSED)
				return UL_CLOSED;
			if (e != NULL && e->code == UL_E_TIMEOUT)
				ul_abort(a, 2, AB_NOT_SPECIFIED);
			return -1;
		}
		if (type == PDU_DATA)
			continue;
		a->pdulen = a->pdupos = 0;
		switch (type) {
		case PDU_RELEASE_RQ:
			return on_release(a, e);
		case PDU_ABORT:
			a->abort_source = a->pdu[2];
			a->abort_reason = a->pdu[3];
			return UL_ABORTED;
		default:
			return protocol_abort(a, AB_UNEXPECTED_PDU, e,
			    "unexpected PDU during data transfer");
		}
	}
}

int
ul_release(struct ul_assoc *a, struct err *e)
{
	int type;

	if (send_short(a, PDU_RELEASE_RQ, 0, 0, e) == -1)
		return -1;
	for (;;) {
		a->pdulen = a->pdupos = 0;
		if ((type = read_pdu(a, mono_ms() + a->artim_ms, e)) == -1)
			return -1;
		if (type == PDU_RELEASE_RP)
			return 0;
		if (type == PDU_ABORT)
			return err_set(e, UL_E_ABORTED, "peer aborted the "
			    "release");
		if (type != PDU_DATA)
			return protocol_abort(a, AB_UNEXPECTED_PDU, e,
			    "unexpected PDU waiting for A-RELEASE-RP");
	}
}

void
ul_linger(struct ul_assoc *a)
{
	struct err e;
	long long dl = mono_ms() + a->artim_ms;
	int type;

	for (;;) {
		a->pdulen = a->pdupos = 0;
		if ((type = read_pdu(a, dl, &e)) == -1)
			return;
		if (type == PDU_RELEASE_RQ)	/* a second request */
			send_short(a, PDU_RELEASE_RP, 0, 0, NULL);
		if (type == PDU_ABORT)
			return;
	}
}

void
ul_free(struct ul_assoc *a)
{
	if (a == NULL)
		return;
	end_tls(a);
	if (a->fd >= 0)
		close(a->fd);
	free(a->pdu);
	free(a->msg);
	free(a);
}
