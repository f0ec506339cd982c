/* tls: DICOM TLS through OpenSSL (see dicomnet/dicomnet.h). */
#include "dicomnet/dicomnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* BCP 195 (RFC 9325 4.2) for TLS 1.2; TLS 1.3's suites are all fine. */
#define BCP195_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"

struct tls_ctx {
	SSL_CTX *ctx;
};

struct tls_conn {
	SSL *ssl;
	int fd;
	char subject[256];
};

/* The last OpenSSL error in words, cleared from the queue. */
static const char *
ssl_reason(char *buf, size_t bufsz)
{
	unsigned long code = ERR_peek_last_error();
	const char *r = code != 0 ? ERR_reason_error_string(code) : NULL;

	snprintf(buf, bufsz, "%s", r != NULL ? r : "unknown TLS error");
	ERR_clear_error();
	return buf;
}

static int
ctx_error(SSL_CTX *c, struct err *e, const char *what, const char *path)
{
	char why[160];

	ssl_reason(why, sizeof why);
	SSL_CTX_free(c);
	return err_set(e, EINVAL, "TLS %s %s: %s", what, path, why);
}

static SSL_CTX *
new_ctx(const SSL_METHOD *m, struct err *e)
{
	SSL_CTX *c = SSL_CTX_new(m);

	if (c == NULL) {
		err_set(e, ENOMEM, "cannot make a TLS context");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(c, BCP195_CIPHERS) != 1) {
		ctx_error(c, e, "settings", "");
		return NULL;
	}
	SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return c;
}

static int
use_cert(SSL_CTX *c, const char *cert, const char *key, struct err *e)
{
	if (SSL_CTX_use_certificate_chain_file(c, cert) != 1)
		return ctx_error(c, e, "certificate", cert);
	if (SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1)
		return ctx_error(c, e, "key", key);
	if (SSL_CTX_check_private_key(c) != 1)
		return ctx_error(c, e, "key does not match", cert);
	return 0;
}

static int
wrap(struct tls_ctx **out, SSL_CTX *c, struct err *e)
{
	if ((*out = calloc(1, sizeof **out)) == NULL) {
		SSL_CTX_free(c);
		return err_set(e, ENOMEM, "out of memory");
	}
	(*out)->ctx = c;
	return 0;
}

int
tls_server_ctx(struct tls_ctx **out, const char *cert, const char *key,
    const char *ca, struct err *e)
{
	STACK_OF(X509_NAME) *names;
	SSL_CTX *c;

	*out = NULL;
	if (cert == NULL || *cert == '\0' || key == NULL || *key == '\0')
		return err_set(e, EINVAL, "TLS needs a certificate and a key "
		    "(GATEWAY_TLS_CERT, GATEWAY_TLS_KEY)");
	if ((c = new_ctx(TLS_server_method(), e)) == NULL ||
	    use_cert(c, cert, key, e) == -1)
		return -1;
	if (ca != NULL && *ca != '\0') {
		if (SSL_CTX_load_verify_locations(c, ca, NULL) != 1)
			return ctx_error(c, e, "CA file", ca);
		if ((names = SSL_load_client_CA_file(ca)) == NULL)
			return ctx_error(c, e, "CA file", ca);
		SSL_CTX_set_client_CA_list(c, names);
		SSL_CTX_set_verify(c, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return wrap(out, c, e);
}

int
tls_client_ctx(struct tls_ctx **out, const char *ca, const char *cert,
    const char *key, struct err *e)
{
	SSL_CTX *c;

	*out = NULL;
	if ((c = new_ctx(TLS_client_method(), e)) == NULL)
		return -1;
	if (ca != NULL && *ca != '\0') {
		if (SSL_CTX_load_verify_locations(c, ca, NULL) != 1)
			return ctx_error(c, e, "CA file", ca);
	} else if (SSL_CTX_set_default_verify_paths(c) != 1)
		return ctx_error(c, e, "system CAs", "");
	if (cert != NULL && *cert != '\0' && use_cert(c, cert, key, e) == -1)
		return -1;
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	return wrap(out, c, e);
}

void
tls_ctx_free(struct tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->ctx);
	free(ctx);
}

/* Wait for what OpenSSL asked for: 1 ready, 0 timeout, -1 error. */
static int
wait_for(struct tls_conn *c, int want, long long deadline, struct err *e)
{
	struct pollfd p = { .fd = c->fd };
	long long left;
	int rc;

	p.events = want == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
	for (;;) {
		left = deadline - mono_ms();
		if (left <= 0)
			return 0;
		rc = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		if (rc > 0)
			return 1;
		if (rc == -1 && errno != EINTR)
			return err_sys(e, "poll");
	}
}

/*
 * After an OpenSSL call returned r <= 0: 1 to call again (after waiting
 * as asked), or -1 with e set.
 */
static int
again(struct tls_conn *c, int r, long long deadline, const char *what,
    struct err *e)
{
	int code = SSL_get_error(c->ssl, r), w;
	char why[160];
	long v;

	switch (code) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		if ((w = wait_for(c, code, deadline, e)) == 1)
			return 1;
		if (w == 0)
			err_set(e, TLS_E_TIMEOUT, "TLS %s timed out", what);
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return err_set(e, TLS_E_CLOSED, "peer closed the TLS "
		    "connection");
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0)
			return err_set(e, TLS_E_CLOSED, "peer closed the "
			    "connection during TLS %s", what);
		break;
	default:
		break;
	}
	v = SSL_get_verify_result(c->ssl);
	if (v != X509_V_OK) {
		ERR_clear_error();
		return err_set(e, TLS_E_HANDSHAKE, "TLS %s: certificate: %s",
		    what, X509_verify_cert_error_string(v));
	}
	ssl_reason(why, sizeof why);
	return err_set(e, strcmp(what, "handshake") == 0 ? TLS_E_HANDSHAKE :
	    TLS_E_IO, "TLS %s: %s", what, why);
}

static int
conn_new(struct tls_conn **out, struct tls_ctx *ctx, int fd, struct err *e)
{
	struct tls_conn *c;
	int fl = fcntl(fd, F_GETFL);

	*out = NULL;
	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return err_sys(e, "fcntl O_NONBLOCK");
	if ((c = calloc(1, sizeof *c)) == NULL)
		return err_set(e, ENOMEM, "out of memory");
	c->fd = fd;
	if ((c->ssl = SSL_new(ctx->ctx)) == NULL ||
	    SSL_set_fd(c->ssl, fd) != 1) {
		tls_close(c);
		return err_set(e, ENOMEM, "cannot make a TLS connection");
	}
	*out = c;
	return 0;
}

static int
handshake(struct tls_conn *c, int accept, int timeout_ms, struct err *e)
{
	long long deadline = mono_ms() + timeout_ms;
	X509 *peer;
	int r;

	for (;;) {
		r = accept ? SSL_accept(c->ssl) : SSL_connect(c->ssl);
		if (r == 1)
			break;
		if (again(c, r, deadline, "handshake", e) == -1)
			return -1;
	}
	if ((peer = SSL_get1_peer_certificate(c->ssl)) != NULL) {
		X509_NAME_oneline(X509_get_subject_name(peer), c->subject,
		    sizeof c->subject);
		X509_free(peer);
	}
	return 0;
}

int
tls_accept(struct tls_conn **out, struct tls_ctx *ctx, int fd,
    int timeout_ms, struct err *e)
{
	if (conn_new(out, ctx, fd, e) == -1)
		return -1;
	if (handshake(*out, 1, timeout_ms, e) == -1) {
		tls_close(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int
tls_connect(struct tls_conn **out, struct tls_ctx *ctx, int fd,
    const char *host, int timeout_ms, struct err *e)
{
	unsigned char addr[16];
	X509_VERIFY_PARAM *vp;
	int ok;

	if (conn_new(out, ctx, fd, e) == -1)
		return -1;
	vp = SSL_get0_param((*out)->ssl);
	if (inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1)
		ok = X509_VERIFY_PARAM_set1_ip_asc(vp, host);
	else
		ok = SSL_set_tlsext_host_name((*out)->ssl, host) == 1 &&
		    SSL_set1_host((*out)->ssl, host) == 1;
	if (!ok || handshake(*out, 0, timeout_ms, e) == -1) {
		if (!ok)
			err_set(e, EINVAL, "TLS: bad host name %s", host);
		tls_close(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

ssize_t
tls_read(struct tls_conn *c, void *buf, size_t n, long long deadline_ms,
    struct err *e)
{
	int r;

	for (;;) {
		r = SSL_read(c->ssl, buf, n > 1 << 30 ? 1 << 30 : (int)n);
		if (r > 0)
			return r;
		if (again(c, r, deadline_ms, "read", e) == -1)
			return -1;
	}
}

int
tls_write(struct tls_conn *c, const void *buf, size_t n,
    long long deadline_ms, struct err *e)
{
	const unsigned char *p = buf;
	int r;

	while (n > 0) {
		r = SSL_write(c->ssl, p, n > 1 << 30 ? 1 << 30 : (int)n);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
			continue;
		}
		if (again(c, r, deadline_ms, "write", e) == -1)
			return -1;
	}
	return 0;
}

int
tls_pending(struct tls_conn *c)
{
	return SSL_pending(c->ssl) > 0;
}

const char *
tls_peer_subject(struct tls_conn *c)
{
	return c->subject;
}

const char *
tls_describe(struct tls_conn *c, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s %s", SSL_get_version(c->ssl),
	    SSL_get_cipher_name(c->ssl));
	return out;
}

void
tls_close(struct tls_conn *c)
{
	if (c == NULL)
		return;
	if (c->ssl != NULL) {
		if (SSL_is_init_finished(c->ssl))
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	ERR_clear_error();
	free(c);
}
