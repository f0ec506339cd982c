/*
 * ws: a blocking WebSocket client over libwebsockets.  See cloud/cloud.h.
 *
 * libwebsockets is event driven: one callback for every connection of a
 * context.  Each struct ws keeps what its callback saw (state, received
 * messages, the close code, the failure); the blocking calls set what to
 * write, ask for a writable callback and run lws_service() until their
 * condition holds or their deadline passes.  A timer scheduled at the
 * deadline wakes the service loop, which otherwise sleeps until an event.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>

#include "base/base.h"
#include "cloud/cloud.h"

#define MAX_MESSAGE_DEFAULT	(4u * 1024 * 1024)
#define SERV_BUF_SIZE		(96 * 1024)	/* handshake with a long token */

enum state { S_CONNECTING, S_OPEN, S_CLOSING, S_ENDED };

struct msg {
	struct msg *next;
	char *data;
	size_t len;
	int binary;
};

struct ws_ctx {
	struct lws_context *lws;
	char *ca_file;
	size_t max_message;
	volatile sig_atomic_t *stop;
	lws_sorted_usec_list_t wake;
};

struct ws {
	struct ws_ctx *c;
	struct lws *wsi;
	enum state state;
	struct ws_status st;		/* why it ended, when it did */
	char why[400];			/* the message for struct err */
	char hdr_name[128];		/* "Name:", as libwebsockets wants */
	const char *hdr_value;
	char *rx;			/* message being reassembled */
	size_t rxlen, rxcap;
	int rx_binary;
	struct msg *head, *tail;	/* whole messages, oldest first */
	unsigned char *tx;		/* LWS_PRE + text to send */
	size_t txlen;
	int tx_pending, ping_pending, close_pending;
	long long ping_sent_ms;		/* the first PING not answered yet,
					   monotonic; 0: none yet */
	long long pong_ms;		/* the last PONG, monotonic */
	time_t pong_at;			/* wall clock of the last PONG */
	int close_code;
	char close_reason[124];
};

static struct ws_ctx *creating;	/* the context whose CA callback runs */

const char *
ws_phase_name(enum ws_phase p)
{
	static const char *names[] = { "ok", "dns", "tcp", "tls", "handshake",
	    "closed", "timeout", "send", "receive" };

	return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "?";
}

/* ------------------------------------------------------------ failures */

/* The connection ended: remember why, once (the first reason wins). */
static void
end(struct ws *w, enum ws_phase phase, int http_status, const char *why)
{
	if (w->state == S_ENDED)
		return;
	w->state = S_ENDED;
	w->st.phase = phase;
	w->st.http_status = http_status;
	snprintf(w->why, sizeof w->why, "%s", why);
}

static int
fail(const struct ws *w, struct ws_status *st, struct err *e)
{
	if (st != NULL)
		*st = w->st;
	return err_set(e, w->st.phase == WS_CLOSED ? EPIPE : EIO, "%s: %s",
	    ws_phase_name(w->st.phase), w->why);
}

static int
contains(const char *s, const char *word)
{
	return s != NULL && strcasestr(s, word) != NULL;
}

/* Which phase a libwebsockets connection error belongs to. */
static enum ws_phase
classify(const char *in, int http_status)
{
	if (http_status > 0)
		return WS_HANDSHAKE;
	if (contains(in, "dns") || contains(in, "getaddrinfo") ||
	    contains(in, "resolv") || contains(in, "lookup"))
		return WS_DNS;
	if (contains(in, "tls") || contains(in, "ssl") ||
	    contains(in, "cert") || contains(in, "verif"))
		return WS_TLS;
	if (contains(in, "HS:") || contains(in, "upgrade") ||
	    contains(in, "header") || contains(in, "response"))
		return WS_HANDSHAKE;
	return WS_TCP;
}

static void
connection_error(struct ws *w, struct lws *wsi, const char *in)
{
	char why[400];
	int status = wsi != NULL ? (int)lws_http_client_http_response(wsi) : 0;

	if (status == 101)
		status = 0;
	if (status > 0)
		snprintf(why, sizeof why, "HTTP status %d (%s)", status,
		    in != NULL ? in : "no detail");
	else if (classify(in, 0) == WS_TLS)
		snprintf(why, sizeof why, "TLS handshake failed (is the "
		    "server's certificate trusted? GATEWAY_CA_FILE): %s",
		    in != NULL ? in : "no detail");
	else
		snprintf(why, sizeof why, "%s", in != NULL ? in :
		    "connection failed");
	end(w, classify(in, status), status, why);
}

/* ------------------------------------------------------------- receive */

static int
queue_message(struct ws *w)
{
	struct msg *m = calloc(1, sizeof *m);

	if (m == NULL)
		return -1;
	if (w->rx == NULL && (w->rx = malloc(1)) == NULL) {
		free(m);
		return -1;
	}
	w->rx[w->rxlen] = '\0';
	m->data = w->rx;
	m->len = w->rxlen;
	m->binary = w->rx_binary;
	w->rx = NULL;
	w->rxlen = w->rxcap = 0;
	if (w->tail != NULL)
		w->tail->next = m;
	else
		w->head = m;
	w->tail = m;
	return 0;
}

static int
append(struct ws *w, const void *in, size_t len)
{
	size_t cap;
	char *p;

	if (w->rxlen + len + 1 > w->rxcap) {
		cap = w->rxcap ? w->rxcap : 4096;
		while (cap < w->rxlen + len + 1)
			cap *= 2;
		if ((p = realloc(w->rx, cap)) == NULL)
			return -1;
		w->rx = p;
		w->rxcap = cap;
	}
	memcpy(w->rx + w->rxlen, in, len);
	w->rxlen += len;
	return 0;
}

/* A piece of a message arrived; 0, or -1 to close the connection. */
static int
receive(struct ws *w, struct lws *wsi, const void *in, size_t len)
{
	char why[96];

	if (lws_is_first_fragment(wsi))
		w->rx_binary = lws_frame_is_binary(wsi);
	if (w->rxlen + len > w->c->max_message) {
		snprintf(why, sizeof why, "message longer than %zu bytes",
		    w->c->max_message);
		end(w, WS_RECEIVE, 0, why);
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
		    (unsigned char *)"message too big", 15);
		return -1;
	}
	if (append(w, in, len) == -1 || (lws_is_final_fragment(wsi) &&
	    lws_remaining_packet_payload(wsi) == 0 && queue_message(w) == -1)) {
		end(w, WS_RECEIVE, 0, "out of memory");
		return -1;
	}
	return 0;
}

/* The peer's close frame: 2 bytes of code, then the reason. */
static void
peer_close(struct ws *w, const unsigned char *in, size_t len)
{
	size_t n;

	w->st.close_code = len >= 2 ? (in[0] << 8 | in[1]) : 1005;
	n = len > 2 ? len - 2 : 0;
	if (n >= sizeof w->st.close_reason)
		n = sizeof w->st.close_reason - 1;
	memcpy(w->st.close_reason, in + 2 * (len >= 2), n);
	w->st.close_reason[n] = '\0';
}

static void
closed(struct ws *w)
{
	char why[200];

	w->wsi = NULL;
	if (w->state == S_ENDED)
		return;
	if (w->st.close_code == 0)
		w->st.close_code = 1006;	/* no close frame: aborted */
	snprintf(why, sizeof why, "connection closed, code %d%s%s",
	    w->st.close_code, w->st.close_reason[0] ? " " : "",
	    w->st.close_reason);
	end(w, WS_CLOSED, 0, why);
}

/* -------------------------------------------------------------- write */

/* One write per writable callback; 0, or -1 to close. */
static int
writable(struct ws *w, struct lws *wsi)
{
	unsigned char ping[LWS_PRE + 1];

	if (w->close_pending) {
		w->close_pending = 0;
		lws_close_reason(wsi, (enum lws_close_status)w->close_code,
		    (unsigned char *)w->close_reason, strlen(w->close_reason));
		return -1;
	}
	if (w->tx_pending) {
		w->tx_pending = 0;
		if (lws_write(wsi, w->tx + LWS_PRE, w->txlen, LWS_WRITE_TEXT) <
		    (int)w->txlen) {
			end(w, WS_SEND, 0, "write failed");
			return -1;
		}
	} else if (w->ping_pending) {
		w->ping_pending = 0;
		if (lws_write(wsi, ping + LWS_PRE, 0, LWS_WRITE_PING) < 0) {
			end(w, WS_SEND, 0, "ping write failed");
			return -1;
		}
		if (w->ping_sent_ms <= w->pong_ms)	/* none unanswered */
			w->ping_sent_ms = mono_ms();
	}
	if (w->tx_pending || w->ping_pending)
		lws_callback_on_writable(wsi);
	return 0;
}

/* ------------------------------------------------------------ callback */

static int
load_cas(struct ws_ctx *c, SSL_CTX *ssl)
{
	if (SSL_CTX_set_default_verify_paths(ssl) != 1)
		log_warn("cannot load the system's CA certificates", "%s",
		    "phase=tls");
	if (c != NULL && c->ca_file != NULL &&
	    SSL_CTX_load_verify_locations(ssl, c->ca_file, NULL) != 1) {
		log_error("cannot load the CA file", "file=%s", c->ca_file);
		return 1;
	}
	return 0;
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct ws *w = wsi != NULL ? lws_get_opaque_user_data(wsi) : NULL;

	if (reason == LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS)
		return load_cas(creating != NULL || wsi == NULL ? creating :
		    lws_context_user(lws_get_context(wsi)), user);
	if (w == NULL)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		if (w->hdr_value != NULL && lws_add_http_header_by_name(wsi,
		    (const unsigned char *)w->hdr_name,
		    (const unsigned char *)w->hdr_value,
		    (int)strlen(w->hdr_value), (unsigned char **)in,
		    *(unsigned char **)in + len) != 0) {
			end(w, WS_HANDSHAKE, 0, "request header too long");
			return -1;
		}
		break;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (w->state == S_CONNECTING)
			w->state = S_OPEN;
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		connection_error(w, wsi, in);
		w->wsi = NULL;
		lws_set_opaque_user_data(wsi, NULL);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return receive(w, wsi, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return writable(w, wsi);
	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		w->pong_ms = mono_ms();
		w->pong_at = time(NULL);
		break;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		peer_close(w, in, len);
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
	case LWS_CALLBACK_WSI_DESTROY:
		closed(w);
		lws_set_opaque_user_data(wsi, NULL);
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
	{ "gateway-ws", callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* ------------------------------------------------------------- context */

static void
lws_log(int level, const char *line)
{
	char q[300], text[256];
	size_t n;

	(void)level;
	snprintf(text, sizeof text, "%s", line);
	n = strlen(text);
	while (n > 0 && isspace((unsigned char)text[n - 1]))
		text[--n] = '\0';
	log_debug("libwebsockets", "text=%s", log_quote(text, q, sizeof q));
}

int
ws_ctx_new(struct ws_ctx **out, const char *ca_file, size_t max_message,
    struct err *e)
{
	struct lws_context_creation_info info;
	struct ws_ctx *c;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return err_sys(e, "malloc");
	c->max_message = max_message ? max_message : MAX_MESSAGE_DEFAULT;
	if (ca_file != NULL && ca_file[0] != '\0' &&
	    (c->ca_file = strdup(ca_file)) == NULL) {
		free(c);
		return err_sys(e, "malloc");
	}
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	info.fd_limit_per_thread = 64;
	info.pt_serv_buf_size = SERV_BUF_SIZE;
	info.max_http_header_data = 16384;
	info.user = c;
	creating = c;
	c->lws = lws_create_context(&info);
	creating = NULL;
	if (c->lws == NULL) {
		free(c->ca_file);
		free(c);
		return err_set(e, EIO, "tls: cannot create the WebSocket "
		    "context (CA file unreadable?)");
	}
	*out = c;
	return 0;
}

void
ws_ctx_free(struct ws_ctx *c)
{
	if (c == NULL)
		return;
	lws_context_destroy(c->lws);
	free(c->ca_file);
	free(c);
}

void
ws_ctx_stop_flag(struct ws_ctx *c, volatile sig_atomic_t *stop)
{
	c->stop = stop;
}

static void
wake(lws_sorted_usec_list_t *sul)
{
	(void)sul;
}

/*
 * Serve the context until done(w) or the deadline: 1 done, 0 deadline,
 * -1 stopped or a service failure.
 */
static int
serve_until(struct ws *w, int (*done)(const struct ws *), long long deadline,
    struct err *e)
{
	struct ws_ctx *c = w->c;
	long long left;
	int rc = 0;

	for (;;) {
		if (done(w)) {
			rc = 1;
			break;
		}
		if (c->stop != NULL && *c->stop) {
			rc = err_set(e, EINTR, "stopped");
			break;
		}
		if ((left = deadline - mono_ms()) <= 0)
			break;
		lws_sul_schedule(c->lws, 0, &c->wake, wake,
		    (lws_usec_t)left * 1000);
		if (lws_service(c->lws, 0) < 0) {
			rc = err_set(e, EIO, "WebSocket service failed");
			break;
		}
	}
	lws_sul_cancel(&c->wake);
	return rc;
}

/* ---------------------------------------------------------------- open */

int
ws_parse_url(const char *url, char *host, size_t hostsz, int *port,
    const char **path, struct err *e)
{
	const char *p, *h, *colon, *slash;
	size_t n;

	if (strncasecmp(url, "wss://", 6) != 0)
		return err_set(e, EINVAL, "not a wss:// URL");
	h = url + 6;
	slash = strchr(h, '/');
	*path = slash != NULL ? slash : "/";
	n = slash != NULL ? (size_t)(slash - h) : strlen(h);
	if (n > 0 && h[0] == '[') {		/* [v6]:port */
		p = memchr(h, ']', n);
		colon = p != NULL && p + 1 < h + n && p[1] == ':' ? p + 1 : NULL;
		h++;
		n = p != NULL ? (size_t)(p - h) : 0;
	} else {
		colon = memchr(h, ':', n);
		if (colon != NULL)
			n = (size_t)(colon - h);
	}
	if (n == 0 || n >= hostsz)
		return err_set(e, EINVAL, "bad host in wss:// URL");
	memcpy(host, h, n);
	host[n] = '\0';
	*port = 443;
	if (colon != NULL) {
		char *end;
		long v = strtol(colon + 1, &end, 10);

		if (end == colon + 1 || v < 1 || v > 65535 ||
		    (*end != '/' && *end != '\0'))
			return err_set(e, EINVAL, "bad port in wss:// URL");
		*port = (int)v;
	}
	return 0;
}

/*
 * libwebsockets resolves names synchronously and says little when that
 * fails; resolving first gives the "dns" phase a clear message.
 */
static int
resolve(struct ws *w, const char *host)
{
	struct addrinfo hints = { 0 }, *res;
	char why[300];
	int rc;

	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, NULL, &hints, &res)) != 0) {
		snprintf(why, sizeof why, "cannot resolve %s: %s", host,
		    gai_strerror(rc));
		end(w, WS_DNS, 0, why);
		return -1;
	}
	freeaddrinfo(res);
	return 0;
}

static int
is_open_or_ended(const struct ws *w)
{
	return w->state != S_CONNECTING;
}

static void
free_messages(struct ws *w)
{
	struct msg *m, *next;

	for (m = w->head; m != NULL; m = next) {
		next = m->next;
		free(m->data);
		free(m);
	}
	w->head = w->tail = NULL;
}

/* Detach from libwebsockets (closing the socket at once) and free. */
static void
destroy(struct ws *w)
{
	if (w->wsi != NULL) {
		lws_set_opaque_user_data(w->wsi, NULL);
		lws_set_timeout(w->wsi, PENDING_TIMEOUT_CLOSE_SEND,
		    LWS_TO_KILL_SYNC);
		w->wsi = NULL;
	}
	free_messages(w);
	free(w->rx);
	free(w->tx);
	free(w);
}

int
ws_open(struct ws_ctx *c, struct ws **out, const char *url,
    const char *header_name, const char *header_value, int timeout_ms,
    struct ws_status *st, struct err *e)
{
	struct lws_client_connect_info ci;
	char host[256];
	const char *path = "/";
	struct ws *w;
	int port, rc;

	if (st != NULL)
		memset(st, 0, sizeof *st);
	if (ws_parse_url(url, host, sizeof host, &port, &path, e) == -1)
		return -1;
	if ((w = calloc(1, sizeof *w)) == NULL)
		return err_sys(e, "malloc");
	w->c = c;
	if (header_name != NULL && header_value != NULL) {
		snprintf(w->hdr_name, sizeof w->hdr_name, "%s:", header_name);
		w->hdr_value = header_value;
	}
	if (resolve(w, host) == -1)
		goto failed;
	memset(&ci, 0, sizeof ci);
	ci.context = c->lws;
	ci.address = host;
	ci.port = port;
	ci.path = path;
	ci.host = host;
	ci.origin = host;
	ci.ssl_connection = LCCSCF_USE_SSL;
	ci.alpn = "http/1.1";
	ci.local_protocol_name = protocols[0].name;
	ci.opaque_user_data = w;
	ci.pwsi = &w->wsi;
	if (lws_client_connect_via_info(&ci) == NULL && w->state != S_ENDED)
		end(w, WS_TCP, 0, "cannot start the connection");
	rc = serve_until(w, is_open_or_ended, mono_ms() + timeout_ms, e);
	if (rc == 1 && w->state == S_OPEN) {
		*out = w;
		return 0;
	}
	if (rc == 0)
		end(w, WS_TIMEOUT, 0, "no WebSocket handshake in time");
	if (rc == -1) {
		destroy(w);
		return -1;
	}
failed:
	fail(w, st, e);
	destroy(w);
	return -1;
}

/* ---------------------------------------------------------- send, recv */

int
ws_is_open(const struct ws *w)
{
	return w != NULL && w->state == S_OPEN && w->wsi != NULL;
}

static int
sent(const struct ws *w)
{
	return !ws_is_open(w) || (!w->tx_pending && !w->ping_pending &&
	    !lws_partial_buffered(w->wsi));
}

static int
flush(struct ws *w, int timeout_ms, struct ws_status *st, struct err *e)
{
	int rc;

	lws_callback_on_writable(w->wsi);
	rc = serve_until(w, sent, mono_ms() + timeout_ms, e);
	if (rc == -1)
		return -1;
	if (!ws_is_open(w))
		return fail(w, st, e);
	if (rc == 0) {
		if (st != NULL) {
			memset(st, 0, sizeof *st);
			st->phase = WS_TIMEOUT;
		}
		return err_set(e, ETIMEDOUT, "timeout: could not send "
		    "within %d ms", timeout_ms);
	}
	return 0;
}

int
ws_send_text(struct ws *w, const char *msg, size_t len, int timeout_ms,
    struct ws_status *st, struct err *e)
{
	unsigned char *tx;

	if (!ws_is_open(w))
		return fail(w, st, e);
	if ((tx = malloc(LWS_PRE + len + 1)) == NULL)
		return err_sys(e, "malloc");
	memcpy(tx + LWS_PRE, msg, len);
	free(w->tx);
	w->tx = tx;
	w->txlen = len;
	w->tx_pending = 1;
	return flush(w, timeout_ms, st, e);
}

int
ws_ping(struct ws *w, int timeout_ms, struct ws_status *st, struct err *e)
{
	if (!ws_is_open(w))
		return fail(w, st, e);
	w->ping_pending = 1;
	return flush(w, timeout_ms, st, e);
}

int
ws_ping_overdue(const struct ws *w, int timeout_ms)
{
	return w->ping_sent_ms != 0 && w->pong_ms < w->ping_sent_ms &&
	    mono_ms() - w->ping_sent_ms >= timeout_ms;
}

time_t
ws_last_pong(const struct ws *w)
{
	return w->pong_at;
}

static int
has_message(const struct ws *w)
{
	return w->head != NULL || !ws_is_open(w);
}

int
ws_recv(struct ws *w, char **msg, size_t *len, int *binary, int timeout_ms,
    struct ws_status *st, struct err *e)
{
	struct msg *m;
	int rc;

	if (st != NULL)
		memset(st, 0, sizeof *st);
	if (w->head == NULL && ws_is_open(w)) {
		rc = serve_until(w, has_message, mono_ms() + timeout_ms, e);
		if (rc == -1)
			return -1;
	}
	if ((m = w->head) == NULL) {
		if (!ws_is_open(w))
			return fail(w, st, e);
		return 0;
	}
	if ((w->head = m->next) == NULL)
		w->tail = NULL;
	*msg = m->data;
	*len = m->len;
	if (binary != NULL)
		*binary = m->binary;
	free(m);
	return 1;
}

static int
gone(const struct ws *w)
{
	return w->wsi == NULL;
}

void
ws_close(struct ws *w, int code, const char *reason, int timeout_ms)
{
	if (w == NULL)
		return;
	if (ws_is_open(w)) {
		w->state = S_CLOSING;
		w->close_code = code;
		snprintf(w->close_reason, sizeof w->close_reason, "%s",
		    reason != NULL ? reason : "");
		w->close_pending = 1;
		lws_callback_on_writable(w->wsi);
		serve_until(w, gone, mono_ms() + timeout_ms, NULL);
	}
	destroy(w);
}

int
ws_request(struct ws_ctx *c, const char *url, const char *header_name,
    const char *header_value, const char *msg, size_t len, int open_ms,
    int reply_ms, char **reply, struct ws_status *st, struct err *e)
{
	struct ws *w;
	size_t rlen;
	int rc;

	*reply = NULL;
	if (ws_open(c, &w, url, header_name, header_value, open_ms, st,
	    e) == -1)
		return -1;
	rc = ws_send_text(w, msg, len, reply_ms, st, e);
	if (rc == 0)
		rc = ws_recv(w, reply, &rlen, NULL, reply_ms, st, e);
	ws_close(w, 1000, "", 2000);
	return rc;
}
