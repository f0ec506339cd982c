/* scp: the frame of a DICOM server (see dicomnet/dicomnet.h). */
#include "dicomnet/dicomnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "dicom/dicom.h"

static volatile sig_atomic_t stopping;

const char scp_options_help[] =
    "  --bind ADDR             listen on ADDR (default 0.0.0.0)\n"
    "  --port N                TCP port\n"
    "  --aet AE                our AE title\n"
    "  --any-called-aet        accept any called AE title\n"
    "  --allow AE[,AE...]      only these calling AE titles\n"
    "  --allow-hosts NET[,NET...] only peers from these addresses or "
    "networks\n"
    "  --max-associations N    served at once (16); more are rejected\n"
    "  --artim-seconds N       wait for an association request (30)\n"
    "  --idle-seconds N        wait for the next request (300)\n"
    "  --dimse-seconds N       for one message to arrive whole (600)\n"
    "  --tls-port N            DICOM TLS on this port too\n"
    "  --tls-cert FILE         our certificate (GATEWAY_TLS_CERT)\n"
    "  --tls-key FILE          its key (GATEWAY_TLS_KEY)\n"
    "  --tls-ca FILE           verify client certificates against it "
    "(GATEWAY_TLS_CA)\n";

static void
on_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		stopping = 1;
}

void
scp_signals(void)
{
	struct sigaction sa = { 0 };

	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);	/* wakes poll to reap */
	signal(SIGPIPE, SIG_IGN);
}

int
scp_stopping(void)
{
	return stopping;
}

/* --- options --- */

int
scp_parse_allow(struct scp_server *s, const char *list)
{
	int n = senders_parse_aets(s->allowed, SCP_MAX_ALLOWED, list);

	if (n == -1)
		return -1;
	for (int i = 0; i < n; i++)
		s->allowed_ptr[i] = s->allowed[i];
	s->allowed_ptr[n] = NULL;
	s->nallowed = n;
	return 0;
}

static int
env_path(char *out, const char *name)
{
	const char *v = getenv(name);

	return snprintf(out, PATH_MAX, "%s", v != NULL ? v : "") >= PATH_MAX ?
	    -1 : 0;
}

int
scp_host_allowed(const struct scp_server *s, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;

	if (s->hosts.n == 0)
		return 1;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == -1)
		return 0;
	return netallow_sockaddr(&s->hosts, (struct sockaddr *)&ss);
}

int
scp_defaults(struct scp_server *s, const char *prog, const char *env,
    int port, const char *aet, struct err *e)
{
	char name[64];
	const char *v;
	long tls_port;

	s->prog = prog;
	snprintf(name, sizeof name, "%s_BIND", env);
	v = getenv(name);
	snprintf(s->bind_addr, sizeof s->bind_addr, "%s",
	    v != NULL && *v != '\0' ? v : "0.0.0.0");
	s->port = port;
	snprintf(s->aet, sizeof s->aet, "%s", aet);
	snprintf(name, sizeof name, "%s_ALLOWED_AETS", env);
	if ((v = getenv(name)) != NULL && *v != '\0' &&
	    scp_parse_allow(s, v) == -1)
		return err_set(e, EINVAL, "bad %s: comma-separated AE titles "
		    "of at most 16 characters, at most %d", name,
		    SCP_MAX_ALLOWED);
	snprintf(name, sizeof name, "%s_ALLOWED_HOSTS", env);
	if ((v = getenv(name)) != NULL && *v != '\0' &&
	    netallow_parse(&s->hosts, v) == -1)
		return err_set(e, EINVAL, "bad %s: comma-separated addresses "
		    "or networks (10.0.0.0/8, fd00::/8), at most %d", name,
		    NETALLOW_MAX);
	snprintf(name, sizeof name, "%s_TLS_PORT", env);
	tls_port = 0;	/* unset: no TLS port */
	if (config_value(name) != NULL && config_long(name, &tls_port, e) == -1)
		return -1;
	s->tls_port = (int)tls_port;
	if (env_path(s->tls_cert, "GATEWAY_TLS_CERT") == -1 ||
	    env_path(s->tls_key, "GATEWAY_TLS_KEY") == -1 ||
	    env_path(s->tls_ca, "GATEWAY_TLS_CA") == -1)
		return err_set(e, ENAMETOOLONG, "GATEWAY_TLS_*: path too long");
	s->max_assoc = 16;
	s->artim_s = 30;
	s->idle_s = 300;
	s->dimse_s = 600;
	s->lfd = s->lfd_tls = -1;
	return 0;
}

int
scp_option(struct scp_server *s, int c, const char *arg)
{
	int rc;

	switch (c) {
	case SCP_OPT_BIND:
		rc = snprintf(s->bind_addr, sizeof s->bind_addr, "%s",
		    arg) >= (int)sizeof s->bind_addr ? -1 : 0;
		break;
	case SCP_OPT_PORT:
		rc = config_parse_int(arg, 1, 65535, &s->port);
		break;
	case SCP_OPT_AET:
		if (strlen(arg) == 0 || strlen(arg) > 16)
			return -1;
		snprintf(s->aet, sizeof s->aet, "%s", arg);
		rc = 0;
		break;
	case SCP_OPT_ANY:
		s->any_called_aet = 1;
		rc = 0;
		break;
	case SCP_OPT_ALLOW:
		rc = scp_parse_allow(s, arg);
		break;
	case SCP_OPT_ALLOW_HOSTS:
		rc = netallow_parse(&s->hosts, arg);
		break;
	case SCP_OPT_MAX:
		rc = config_parse_int(arg, 1, 4096, &s->max_assoc);
		break;
	case SCP_OPT_ARTIM:
		rc = config_parse_int(arg, 1, 3600, &s->artim_s);
		break;
	case SCP_OPT_IDLE:
		rc = config_parse_int(arg, 1, 86400, &s->idle_s);
		break;
	case SCP_OPT_DIMSE:
		rc = config_parse_int(arg, 1, 86400, &s->dimse_s);
		break;
	case SCP_OPT_TLS_PORT:
		rc = config_parse_int(arg, 1, 65535, &s->tls_port);
		break;
	case SCP_OPT_TLS_CERT:
	case SCP_OPT_TLS_KEY:
	case SCP_OPT_TLS_CA:
		rc = snprintf(c == SCP_OPT_TLS_CERT ? s->tls_cert :
		    c == SCP_OPT_TLS_KEY ? s->tls_key : s->tls_ca, PATH_MAX,
		    "%s", arg) >= PATH_MAX ? -1 : 0;
		break;
	default:
		return 0;
	}
	return rc == -1 ? -1 : 1;
}

/* --- serving one association (child) --- */

int
scp_respond(struct scp_session *x, const struct dimse_msg *m,
    uint16_t status, const char *comment)
{
	struct dimse_cmd rsp;
	struct err e = { 0 };

	dimse_response(&m->cmd, status, &rsp);
	if (comment != NULL && status != DIMSE_SUCCESS)
		snprintf(rsp.error_comment, sizeof rsp.error_comment, "%.64s",
		    comment);
	if (dimse_send(x->a, m->ctx_id, &rsp, NULL, 0, &e) == -1) {
		log_warn("send failed", "peer=%s error=\"%s\"", x->peer,
		    e.msg);
		return -1;
	}
	return 0;
}

int
scp_check_cancel(struct scp_session *x, const struct dimse_msg *rq,
    int *cancelled)
{
	struct dimse_msg m;
	struct err e = { 0 };
	int r;

	if (!ul_pending(x->a))
		return 0;
	r = dimse_recv(x->a, &m, &e);
	if (r != UL_MESSAGE)
		return -1;
	if (m.cmd.command_field == DIMSE_C_CANCEL_RQ &&
	    m.cmd.message_id_responded == rq->cmd.message_id) {
		*cancelled = 1;
		log_info("c-cancel", "peer=%s message_id=%u", x->peer,
		    m.cmd.message_id_responded);
		r = 0;
	} else {
		log_warn("unexpected message while answering", "peer=%s "
		    "command=%s", x->peer,
		    dimse_command_name(m.cmd.command_field));
		ul_abort(x->a, 2, 2);
		r = -1;
	}
	dimse_msg_free(&m);
	return r;
}

int
scp_refuse(struct scp_session *x, const struct dimse_msg *m,
    int known_operation)
{
	const struct ul_context *c = ul_context(x->a, m->ctx_id);

	if (m->cmd.command_field & 0x8000)
		return 0;	/* a response we did not ask for: ignore */
	if (!known_operation) {
		log_warn("unsupported operation", "peer=%s command=0x%04X",
		    x->peer, m->cmd.command_field);
		return scp_respond(x, m, DIMSE_UNRECOGNIZED_OPERATION,
		    "operation not supported");
	}
	log_warn("operation not on its SOP class", "peer=%s command=%s "
	    "abstract_syntax=%s", x->peer,
	    dimse_command_name(m->cmd.command_field),
	    c != NULL ? c->abstract_syntax : "");
	return scp_respond(x, m, 0x0122, "SOP class not supported");
}

void
scp_pending_init(struct scp_pending *p, struct scp_session *x,
    const struct dimse_msg *rq)
{
	const struct ul_context *c = ul_context(x->a, rq->ctx_id);

	memset(p, 0, sizeof *p);
	p->x = x;
	p->rq = rq;
	p->ts = c != NULL ? c->transfer_syntax : DCM_TS_IMPLICIT_LE;
}

int
scp_pending_send(struct scp_pending *p, struct dcm_builder *b,
    const char *charset)
{
	struct dimse_cmd rsp;
	struct err e = { 0 };
	uint8_t *buf;
	size_t len;
	int rc;

	if (scp_check_cancel(p->x, p->rq, &p->cancelled) == -1)
		p->failed = 1;
	if (p->failed || p->cancelled)
		return 1;
	if (dcm_build_encode(b, p->ts, charset, &buf, &len, &e) == -1) {
		log_error("cannot encode a c-find response", "error=\"%s\"",
		    e.msg);
		p->failed = 1;
		return 1;
	}
	dimse_response(&p->rq->cmd, DIMSE_PENDING, &rsp);
	rc = dimse_send(p->x->a, p->rq->ctx_id, &rsp, buf, len, &e);
	free(buf);
	if (rc == -1) {
		log_warn("send failed", "peer=%s error=\"%s\"", p->x->peer,
		    e.msg);
		p->failed = 1;
		return 1;
	}
	p->sent++;
	return 0;
}

void
scp_serve_loop(struct scp_session *x,
    int (*dispatch)(struct scp_session *x, struct dimse_msg *m))
{
	struct dimse_msg m;
	struct err e = { 0 };
	int r;

	for (;;) {
		r = dimse_recv(x->a, &m, &e);
		if (r == UL_MESSAGE) {
			r = dispatch(x, &m);
			dimse_msg_free(&m);
			if (r == -1)
				return;
			continue;
		}
		if (r == UL_RELEASED) {
			log_info("association released", "peer=%s", x->peer);
			ul_linger(x->a);
		} else if (r == UL_ABORTED)
			log_info("association aborted by peer", "peer=%s "
			    "source=%d reason=%d", x->peer,
			    x->a->abort_source, x->a->abort_reason);
		else if (r == UL_CLOSED)
			log_info("connection closed by peer", "peer=%s",
			    x->peer);
		else
			log_warn("association aborted", "peer=%s error=\"%s\"",
			    x->peer, e.msg);
		return;
	}
}

void
scp_peer_name(int fd, char *out, size_t outsz)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[NI_MAXHOST], port[NI_MAXSERV];

	snprintf(out, outsz, "unknown");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, port,
	    sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) == 0 &&
	    snprintf(out, outsz, "%s:%s", host, port) >= (int)outsz)
		snprintf(out, outsz, "unknown");
}

static void
log_accept(struct scp_session *x)
{
	char calling[40], called[40];
	int i, accepted = 0;

	for (i = 0; i < x->a->nctx; i++)
		accepted += x->a->ctx[i].result == UL_CTX_ACCEPTED;
	log_quote(x->a->calling_aet, calling, sizeof calling);
	log_quote(x->a->called_aet, called, sizeof called);
	log_info("association accepted", "peer=%s calling_aet=%s "
	    "called_aet=%s contexts=%d accepted=%d peer_max_pdu=%u", x->peer,
	    calling, called, x->a->nctx, accepted, x->a->peer_max_pdu);
}

static void
log_refusal(struct scp_session *x, const struct err *e)
{
	char calling[40], called[40];

	if (x->a != NULL && e->code == UL_E_REJECTED) {
		log_quote(x->a->calling_aet, calling, sizeof calling);
		log_quote(x->a->called_aet, called, sizeof called);
		log_warn("association rejected", "peer=%s calling_aet=%s "
		    "called_aet=%s result=%s reason=\"%s\" source=%d "
		    "reason_code=%d", x->peer, calling, called,
		    ul_reject_result(&x->a->reject),
		    ul_reject_reason(&x->a->reject), x->a->reject.source,
		    x->a->reject.reason);
	} else if (e->code == UL_E_CLOSED)	/* no byte: a port check */
		log_debug("closed before an association", "peer=%s "
		    "error=\"%s\"", x->peer, e->msg);
	else
		log_warn("association failed", "peer=%s error=\"%s\"",
		    x->peer, e->msg);
}

/* The TLS handshake of a connection on the TLS port: 0, or -1 (logged;
 * a plain client on the TLS port, a wrong or expired certificate). */
static int
tls_handshake(struct scp_server *s, struct scp_session *x, int fd,
    struct tls_conn **out)
{
	struct err e = { 0 };
	char how[128], subject[300];

	if (tls_accept(out, s->tls, fd, s->artim_s * 1000, &e) == -1) {
		if (e.code == TLS_E_CLOSED)
			log_debug("closed before a TLS handshake", "peer=%s",
			    x->peer);
		else
			log_warn("TLS handshake failed", "peer=%s error=\"%s\"%s",
			    x->peer, e.msg, strstr(e.msg, "wrong version") ?
			    " hint=\"not TLS: a plain DICOM client on the TLS "
			    "port?\"" : "");
		return -1;
	}
	log_info("TLS connection", "peer=%s tls=\"%s\" client=%s", x->peer,
	    tls_describe(*out, how, sizeof how), log_quote(
	    tls_peer_subject(*out), subject, sizeof subject));
	return 0;
}

static int
serve_association(struct scp_server *s, int fd, int busy, int tls)
{
	struct ul_config uc = { 0 };
	struct scp_session x = { 0 };
	struct err e = { 0 };
	int rc;

	x.srv = s;
	x.arg = s->arg;
	scp_peer_name(fd, x.peer, sizeof x.peer);
	if (tls && tls_handshake(s, &x, fd, &uc.tls) == -1) {
		close(fd);
		return EX_OK;
	}
	if (s->take != NULL)
		return s->take(&x, fd, uc.tls, busy);
	uc.ae_title = s->aet;
	uc.any_called_aet = s->any_called_aet;
	uc.allowed_calling = s->nallowed > 0 ? s->allowed_ptr : NULL;
	uc.abstract_syntaxes = s->abstract_syntaxes;
	uc.scp_role_syntaxes = s->scp_role_syntaxes;
	uc.scp_role_transfer_syntaxes = s->scp_role_transfer_syntaxes;
	uc.artim_ms = s->artim_s * 1000;
	uc.idle_ms = s->idle_s * 1000;
	uc.dimse_ms = s->dimse_s * 1000;
	uc.busy = busy;
	if (ul_accept(&x.a, fd, &uc, &e) == -1) {
		log_refusal(&x, &e);
		ul_free(x.a);
		return EX_OK;
	}
	log_accept(&x);
	rc = s->serve(&x);
	ul_free(x.a);
	return rc;
}

/* --- the accepting parent --- */

static int
listen_port(const char *bind_addr, int port, struct err *e)
{
	struct addrinfo hints = { 0 }, *res;
	char ports[16];
	int fd, one = 1, rc;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(ports, sizeof ports, "%d", port);
	if ((rc = getaddrinfo(bind_addr, ports, &hints, &res)) != 0)
		return err_set(e, EINVAL, "bind address %s: %s", bind_addr,
		    gai_strerror(rc));
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -1 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, 128) == -1) {
		err_sys(e, "listen on %s:%d", bind_addr, port);
		if (fd != -1)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

#define SCP_OWN_MAX	16

int
scp_command_line(struct scp_server *s, int argc, char **argv,
    const struct option *own_opts,
    int (*own)(void *arg, int c, const char *value), void *arg,
    void (*usage)(FILE *))
{
	enum { OPT_VERSION = 190 };
	static const struct option common[] = {
		SCP_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
	};
	struct option opts[sizeof common / sizeof common[0] + SCP_OWN_MAX + 1];
	size_t n = sizeof common / sizeof common[0];
	int c, r;

	memcpy(opts, common, sizeof common);
	for (size_t i = 0; own_opts != NULL && i < SCP_OWN_MAX &&
	    own_opts[i].name != NULL; i++)
		opts[n++] = own_opts[i];
	memset(&opts[n], 0, sizeof opts[n]);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return EX_OK;
		}
		if (c == OPT_VERSION) {
			printf("%s %s\n", s->prog, GW_VERSION);
			return EX_OK;
		}
		if (c == '?') {
			usage(stderr);
			return EX_USAGE;
		}
		r = own != NULL ? own(arg, c, optarg) : 0;
		if (r == 0)
			r = scp_option(s, c, optarg);
		if (r != 1) {
			fprintf(stderr, "%s: bad value for an option: %s\n",
			    s->prog, optarg ? optarg : "");
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	return -1;
}

int
scp_start(struct scp_server *s, const char *more)
{
	struct err e = { 0 };
	char q[600], bindq[300];

	scp_signals();
	if (scp_listen(s, &e) == -1) {
		log_error("cannot listen", "error=%s",
		    log_quote(e.msg, q, sizeof q));
		return e.code == EINVAL ? EX_CONFIG : EX_UNAVAILABLE;
	}
	log_info("listening", "bind=%s port=%d tls_port=%d client_certs=%s "
	    "aet=%s max_associations=%d%s%s", log_quote(s->bind_addr, bindq,
	    sizeof bindq), s->port, s->tls_port, s->tls_ca[0] != '\0' ?
	    "required" : "no", s->aet, s->max_assoc, *more ? " " : "", more);
	return 0;
}

int
scp_listen(struct scp_server *s, struct err *e)
{
	if (s->tls_port != 0) {
		if (s->tls_port == s->port)
			return err_set(e, EINVAL, "the TLS port must differ "
			    "from the plain one (%d)", s->port);
		if (tls_server_ctx(&s->tls, s->tls_cert, s->tls_key,
		    s->tls_ca, e) == -1)
			return -1;
	}
	if ((s->lfd = listen_port(s->bind_addr, s->port, e)) == -1)
		return -1;
	if (s->tls_port != 0 &&
	    (s->lfd_tls = listen_port(s->bind_addr, s->tls_port, e)) == -1) {
		close(s->lfd);
		s->lfd = -1;
		return err_wrap(e, "TLS port");
	}
	return 0;
}

static void
reap(struct scp_server *s)
{
	pid_t pid;
	int i, status, ours;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		ours = 0;
		for (i = 0; i < s->nslots; i++) {
			if (s->children[i] != pid)
				continue;
			ours = 1;
			s->children[i] = 0;
			if (s->is_rejecter[i])
				s->nrejecters--;
			else
				s->nchildren--;
		}
		if (!ours) {
			if (s->reaped != NULL)
				s->reaped(s, pid, status);
			continue;
		}
		if (WIFSIGNALED(status) || (WIFEXITED(status) &&
		    WEXITSTATUS(status) != 0))
			log_warn("association process failed", "pid=%ld "
			    "status=%d", (long)pid, status);
	}
}

static void
remember(struct scp_server *s, pid_t pid, int busy)
{
	int i;

	for (i = 0; i < s->nslots; i++) {
		if (s->children[i] == 0) {
			s->children[i] = pid;
			s->is_rejecter[i] = (char)busy;
			if (busy)
				s->nrejecters++;
			else
				s->nchildren++;
			return;
		}
	}
}

static void
in_child(struct scp_server *s)
{
	struct sigaction sa = { 0 };

	close(s->lfd);
	if (s->lfd_tls != -1)
		close(s->lfd_tls);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	free(s->children);
	free(s->is_rejecter);
	s->children = NULL;
	s->is_rejecter = NULL;
	s->nslots = 0;
}

pid_t
scp_fork(struct scp_server *s)
{
	pid_t pid = fork();

	if (pid == -1)
		log_error("fork failed", "error=\"%s\"", strerror(errno));
	else if (pid == 0)
		in_child(s);
	return pid;
}

static void
accept_one(struct scp_server *s, int lfd)
{
	char peer[64];
	int fd, busy, rc;
	pid_t pid;

	if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1) {
		if (errno != EINTR && errno != EAGAIN &&
		    errno != ECONNABORTED)
			log_warn("accept failed", "error=\"%s\"",
			    strerror(errno));
		return;
	}
	if (!scp_host_allowed(s, fd)) {
		scp_peer_name(fd, peer, sizeof peer);
		log_warn("connection refused", "peer=%s reason=\"address not "
		    "allowed\"", peer);
		close(fd);
		return;
	}
	busy = s->nchildren >= s->max_assoc;
	if (busy && s->nrejecters >= s->max_assoc) {
		log_warn("connection refused", "reason=\"too many "
		    "connections\" limit=%d", s->max_assoc);
		close(fd);
		return;
	}
	if ((pid = fork()) == -1) {
		log_error("fork failed", "error=\"%s\"", strerror(errno));
		close(fd);
		return;
	}
	if (pid == 0) {
		in_child(s);
		rc = serve_association(s, fd, busy, lfd == s->lfd_tls);
		exit(rc);
	}
	close(fd);
	remember(s, pid, busy);
}

static void
shutdown_children(struct scp_server *s)
{
	time_t end = time(NULL) + SCP_GRACE_SECONDS;
	int i;

	while (s->nchildren + s->nrejecters > 0 && time(NULL) < end) {
		reap(s);
		if (s->nchildren + s->nrejecters > 0)
			poll(NULL, 0, 50);
	}
	for (i = 0; i < s->nslots; i++)
		if (s->children[i] != 0)
			kill(s->children[i], SIGKILL);
	while (s->nchildren + s->nrejecters > 0 && waitpid(-1, NULL, 0) > 0)
		reap(s);
}

int
scp_run(struct scp_server *s)
{
	struct pollfd p[2] = {
		{ .fd = s->lfd, .events = POLLIN },
		{ .fd = s->lfd_tls, .events = POLLIN },
	};
	time_t last_tick = 0;
	int i;

	s->nslots = 2 * s->max_assoc;
	s->children = calloc((size_t)s->nslots, sizeof(*s->children));
	s->is_rejecter = calloc((size_t)s->nslots, 1);
	if (s->children == NULL || s->is_rejecter == NULL) {
		log_error("out of memory", "slots=%d", s->nslots);
		return EX_OSERR;
	}
	while (!stopping) {
		reap(s);
		if (s->tick != NULL && time(NULL) != last_tick) {
			last_tick = time(NULL);
			s->tick(s);
		}
		if (poll(p, s->lfd_tls != -1 ? 2 : 1, 1000) <= 0 || stopping)
			continue;
		for (i = 0; i < 2; i++)
			if (p[i].fd != -1 && (p[i].revents & POLLIN))
				accept_one(s, p[i].fd);
	}
	close(s->lfd);
	if (s->lfd_tls != -1)
		close(s->lfd_tls);
	tls_ctx_free(s->tls);
	log_info("stopping", "associations=%d", s->nchildren);
	shutdown_children(s);
	free(s->children);
	free(s->is_rejecter);
	return EX_OK;
}
