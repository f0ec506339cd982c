/*
 * mwlscp: Modality Worklist C-FIND, MPPS N-CREATE/N-SET and C-ECHO on one
 * AE title and port, over worklist.db.
 *
 *   mwlscp [--bind ADDR] [--port N] [--aet AE] [--any-called-aet]
 *          [--allow AE[,AE...]] [--charset "ISO_IR 100"|"ISO_IR 192"]
 *          [--max-associations N] [--artim-seconds N] [--idle-seconds N]
 *          [--dimse-seconds N]
 *
 * Concurrency: one process per association.  The parent only accepts and
 * forks; a child negotiates, serves and exits, so a crash or a stuck peer
 * costs one association and nothing else.  Beyond --max-associations a
 * child is still forked, but only to read the request and answer
 * A-ASSOCIATE-RJ (transient, local limit exceeded); past twice the limit
 * the connection is closed at once.
 *
 * SIGTERM/SIGINT: stop accepting, give running associations up to
 * GRACE_SECONDS to finish, kill what remains, exit 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dicom.h"
#include "dimse.h"
#include "log.h"
#include "spool.h"
#include "ul.h"
#include "worklist.h"

#define SOP_VERIFICATION	"1.2.840.10008.1.1"
#define SOP_MWL_FIND		"1.2.840.10008.5.1.4.31"
#define SOP_MPPS		"1.2.840.10008.3.1.2.3.3"
#define MAX_ALLOWED		64
#define GRACE_SECONDS		5

static volatile sig_atomic_t stopping;

struct server {
	struct config cfg;
	char bind_addr[256];
	int port;
	char aet[UL_AE_MAX];
	int any_called_aet;
	char allowed[MAX_ALLOWED][UL_AE_MAX];
	const char *allowed_ptr[MAX_ALLOWED + 1];
	int nallowed;
	char charset[16];
	int max_assoc;
	int artim_s, idle_s, dimse_s;
	int nchildren, nrejecters;
	pid_t *children;	/* pids, 0 for free slots */
	char *is_rejecter;
	int nslots;
};

/* One association being served (in the child). */
struct session {
	struct server *srv;
	struct ul_assoc *a;
	struct worklist *wl;
	struct spool relay;
	int relay_open;
	char peer[64];
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mwlscp [--bind ADDR] [--port N] [--aet AE] "
	    "[--any-called-aet]\n"
	    "              [--allow AE[,AE...]] [--charset CHARSET] "
	    "[--max-associations N]\n"
	    "              [--artim-seconds N] [--idle-seconds N] "
	    "[--dimse-seconds N]\n"
	    "       mwlscp --help | --version\n"
	    "Serves Modality Worklist C-FIND, MPPS N-CREATE/N-SET and "
	    "C-ECHO over\nworklist.db (see mwlscp(8)).\n");
}

static void
on_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		stopping = 1;
}

/* --- options --- */

static int
parse_allow(struct server *s, const char *list)
{
	char buf[2048], *tok, *save = NULL;
	int n = 0;

	if (snprintf(buf, sizeof buf, "%s", list) >= (int)sizeof buf)
		return -1;
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (*tok == '\0')
			continue;
		if (n >= MAX_ALLOWED || strlen(tok) > 16)
			return -1;
		snprintf(s->allowed[n], UL_AE_MAX, "%s", tok);
		s->allowed_ptr[n] = s->allowed[n];
		n++;
	}
	s->allowed_ptr[n] = NULL;
	s->nallowed = n;
	return 0;
}

static int
set_charset(struct server *s, const char *cs)
{
	if (strcmp(cs, "ISO_IR 100") != 0 && strcmp(cs, "ISO_IR 192") != 0)
		return -1;
	snprintf(s->charset, sizeof s->charset, "%s", cs);
	return 0;
}

static int
defaults(struct server *s, struct err *e)
{
	const char *v;

	if (config_load(&s->cfg, e) == -1)
		return -1;
	v = getenv("WORKLIST_BIND");
	snprintf(s->bind_addr, sizeof s->bind_addr, "%s",
	    v != NULL && *v != '\0' ? v : "0.0.0.0");
	s->port = s->cfg.worklist_port;
	snprintf(s->aet, sizeof s->aet, "%s", s->cfg.worklist_aet);
	snprintf(s->charset, sizeof s->charset, "ISO_IR 100");
	if ((v = getenv("WORKLIST_CHARSET")) != NULL && *v != '\0' &&
	    set_charset(s, v) == -1)
		return err_set(e, EINVAL, "WORKLIST_CHARSET must be "
		    "\"ISO_IR 100\" or \"ISO_IR 192\"");
	if ((v = getenv("WORKLIST_ALLOWED_AETS")) != NULL && *v != '\0' &&
	    parse_allow(s, v) == -1)
		return err_set(e, EINVAL, "bad WORKLIST_ALLOWED_AETS");
	s->max_assoc = 16;
	s->artim_s = 30;
	s->idle_s = 300;
	s->dimse_s = 600;
	return 0;
}

enum {
	OPT_BIND = 256, OPT_PORT, OPT_AET, OPT_ANY, OPT_ALLOW, OPT_CHARSET,
	OPT_MAX, OPT_ARTIM, OPT_IDLE, OPT_DIMSE, OPT_VERSION,
};

static int
option(struct server *s, int c, const char *arg)
{
	switch (c) {
	case OPT_BIND:
		return snprintf(s->bind_addr, sizeof s->bind_addr, "%s",
		    arg) >= (int)sizeof s->bind_addr ? -1 : 0;
	case OPT_PORT:
		return config_parse_int(arg, 1, 65535, &s->port);
	case OPT_AET:
		if (strlen(arg) == 0 || strlen(arg) > 16)
			return -1;
		snprintf(s->aet, sizeof s->aet, "%s", arg);
		return 0;
	case OPT_ANY:
		s->any_called_aet = 1;
		return 0;
	case OPT_ALLOW:
		return parse_allow(s, arg);
	case OPT_CHARSET:
		return set_charset(s, arg);
	case OPT_MAX:
		return config_parse_int(arg, 1, 4096, &s->max_assoc);
	case OPT_ARTIM:
		return config_parse_int(arg, 1, 3600, &s->artim_s);
	case OPT_IDLE:
		return config_parse_int(arg, 1, 86400, &s->idle_s);
	case OPT_DIMSE:
		return config_parse_int(arg, 1, 86400, &s->dimse_s);
	default:
		return -1;
	}
}

/* --- serving one association (child) --- */

static void
ae_quoted(const char *ae, char *out, unsigned outsz)
{
	log_quote(ae, out, outsz);
}

static int
open_worklist(struct session *x, struct err *e)
{
	char path[PATH_MAX];

	if (x->wl == NULL &&
	    worklist_open(&x->wl, x->srv->cfg.worklist_db_path, e) == -1)
		return -1;
	if (!x->relay_open) {
		if (config_spool_path(&x->srv->cfg, "relay", path, sizeof path,
		    e) == -1 || spool_open(&x->relay, path, 1, e) == -1)
			return -1;
		x->relay_open = 1;
	}
	return 0;
}

static int
respond(struct session *x, const struct dimse_msg *m, uint16_t status,
    const char *comment)
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

/* State of one C-FIND while it sends its pending responses. */
struct find_state {
	struct session *x;
	const struct dimse_msg *rq;
	const char *ts;
	int cancelled, failed;
	long sent;
};

/* A C-CANCEL may arrive while we send: look before each response. */
static int
check_cancel(struct find_state *f)
{
	struct dimse_msg m;
	struct err e = { 0 };
	int r;

	if (!ul_pending(f->x->a))
		return 0;
	r = dimse_recv(f->x->a, &m, &e);
	if (r != UL_MESSAGE) {
		f->failed = 1;
		return 1;
	}
	if (m.cmd.command_field == DIMSE_C_CANCEL_RQ &&
	    m.cmd.message_id_responded == f->rq->cmd.message_id) {
		f->cancelled = 1;
		log_info("c-cancel", "peer=%s message_id=%u", f->x->peer,
		    m.cmd.message_id_responded);
	} else {
		log_warn("unexpected message during c-find", "peer=%s "
		    "command=%s", f->x->peer,
		    dimse_command_name(m.cmd.command_field));
		ul_abort(f->x->a, 2, 2);
		f->failed = 1;
	}
	dimse_msg_free(&m);
	return 1;
}

static int
send_match(void *arg, struct dcm_builder *response)
{
	struct find_state *f = arg;
	struct dimse_cmd rsp;
	struct err e = { 0 };
	uint8_t *buf;
	size_t len;
	int rc;

	if (check_cancel(f))
		return 1;
	if (dcm_build_encode(response, f->ts, f->x->srv->charset, &buf, &len,
	    &e) == -1) {
		log_error("cannot encode a c-find response", "error=\"%s\"",
		    e.msg);
		f->failed = 1;
		return 1;
	}
	dimse_response(&f->rq->cmd, DIMSE_PENDING, &rsp);
	rc = dimse_send(f->x->a, f->rq->ctx_id, &rsp, buf, len, &e);
	free(buf);
	if (rc == -1) {
		f->failed = 1;
		return 1;
	}
	f->sent++;
	return 0;
}

static int
serve_find(struct session *x, const struct dimse_msg *m, const char *ts)
{
	struct find_state f = { x, m, ts, 0, 0, 0 };
	struct dcm *query = NULL;
	struct err e = { 0 };
	int n;

	if (m->data == NULL || dcm_parse_dataset(m->data, m->datalen, ts, 0,
	    &query, &e) == -1) {
		log_warn("bad c-find identifier", "peer=%s error=\"%s\"",
		    x->peer, m->data == NULL ? "none" : e.msg);
		return respond(x, m, DIMSE_IDENTIFIER_MISMATCH,
		    "cannot parse the identifier");
	}
	if (open_worklist(x, &e) == -1) {
		dcm_free(query);
		log_error("cannot open worklist", "error=\"%s\"", e.msg);
		return respond(x, m, DIMSE_UNABLE_TO_PROCESS, "worklist "
		    "unavailable");
	}
	n = worklist_find(x->wl, query, send_match, &f, &e);
	dcm_free(query);
	if (f.failed)
		return -1;
	log_info("c-find", "peer=%s message_id=%u matches=%ld status=%s",
	    x->peer, m->cmd.message_id, f.sent, f.cancelled ? "cancel" :
	    n == -1 ? "failure" : "success");
	if (n == -1 && !f.cancelled) {
		log_error("c-find failed", "error=\"%s\"", e.msg);
		return respond(x, m, DIMSE_UNABLE_TO_PROCESS, e.msg);
	}
	return respond(x, m, f.cancelled ? DIMSE_CANCEL : DIMSE_SUCCESS, NULL);
}

static void
drain_outbox(struct session *x)
{
	struct err e = { 0 };
	int n;

	if ((n = worklist_outbox_drain(x->wl, &x->relay, &e)) == -1)
		log_error("cannot drain the mpps outbox", "error=\"%s\" "
		    "note=\"events stay in the outbox for the next drain\"",
		    e.msg);
	else if (n > 0)
		log_debug("outbox drained", "events=%d", n);
}

static int
serve_mpps(struct session *x, struct dimse_msg *m, const char *ts)
{
	struct dcm *ds = NULL;
	struct err e = { 0 };
	const char *what = m->cmd.command_field == DIMSE_N_CREATE_RQ ?
	    "n-create" : "n-set";
	char *uid;
	int st;

	uid = m->cmd.command_field == DIMSE_N_CREATE_RQ ?
	    m->cmd.affected_sop_instance : m->cmd.requested_sop_instance;
	if (uid[0] == '\0' && m->cmd.command_field == DIMSE_N_CREATE_RQ &&
	    dcm_uid_new(uid, NULL) == -1)
		return respond(x, m, DIMSE_PROCESSING_FAILURE,
		    "cannot make a SOP Instance UID");
	if (m->data == NULL || dcm_parse_dataset(m->data, m->datalen, ts, 0,
	    &ds, &e) == -1) {
		log_warn("bad mpps data set", "peer=%s op=%s error=\"%s\"",
		    x->peer, what, m->data == NULL ? "none" : e.msg);
		return respond(x, m, 0x0106, "cannot parse the data set");
	}
	if (open_worklist(x, &e) == -1) {
		dcm_free(ds);
		log_error("cannot open worklist", "error=\"%s\"", e.msg);
		return respond(x, m, DIMSE_PROCESSING_FAILURE,
		    "worklist unavailable");
	}
	if (m->cmd.command_field == DIMSE_N_CREATE_RQ)
		st = worklist_mpps_create(x->wl, uid, ds, &e);
	else
		st = worklist_mpps_set(x->wl, uid, ds, &e);
	dcm_free(ds);
	if (st == -1) {
		log_error("mpps failed", "op=%s sop_instance_uid=%s "
		    "error=\"%s\"", what, uid, e.msg);
		st = DIMSE_PROCESSING_FAILURE;
	}
	log_info("mpps", "peer=%s op=%s message_id=%u sop_instance_uid=%s "
	    "status=0x%04X", x->peer, what, m->cmd.message_id, uid, st);
	if (st == DIMSE_SUCCESS)
		drain_outbox(x);
	return respond(x, m, (uint16_t)st, e.msg);
}

static int
dispatch(struct session *x, struct dimse_msg *m)
{
	const struct ul_context *c = ul_context(x->a, m->ctx_id);
	const char *as = c != NULL ? c->abstract_syntax : "";
	const char *ts = c != NULL ? c->transfer_syntax : DCM_TS_IMPLICIT_LE;

	switch (m->cmd.command_field) {
	case DIMSE_C_ECHO_RQ:
		log_debug("c-echo", "peer=%s message_id=%u", x->peer,
		    m->cmd.message_id);
		return respond(x, m, DIMSE_SUCCESS, NULL);
	case DIMSE_C_FIND_RQ:
		if (strcmp(as, SOP_MWL_FIND) != 0)
			break;
		return serve_find(x, m, ts);
	case DIMSE_N_CREATE_RQ:
	case DIMSE_N_SET_RQ:
		if (strcmp(as, SOP_MPPS) != 0)
			break;
		return serve_mpps(x, m, ts);
	case DIMSE_C_CANCEL_RQ:
		return 0;	/* late: the find is over */
	default:
		if (m->cmd.command_field & 0x8000)
			break;
		log_warn("unsupported operation", "peer=%s command=0x%04X",
		    x->peer, m->cmd.command_field);
		return respond(x, m, DIMSE_UNRECOGNIZED_OPERATION,
		    "operation not supported");
	}
	log_warn("operation not on its SOP class", "peer=%s command=%s "
	    "abstract_syntax=%s", x->peer,
	    dimse_command_name(m->cmd.command_field), as);
	if (m->cmd.command_field & 0x8000)
		return 0;
	return respond(x, m, 0x0122, "SOP class not supported");
}

static void
log_accept(struct session *x)
{
	char calling[40], called[40];
	int i, accepted = 0;

	for (i = 0; i < x->a->nctx; i++)
		accepted += x->a->ctx[i].result == UL_CTX_ACCEPTED;
	ae_quoted(x->a->calling_aet, calling, sizeof calling);
	ae_quoted(x->a->called_aet, called, sizeof called);
	log_info("association accepted", "peer=%s calling_aet=%s "
	    "called_aet=%s contexts=%d accepted=%d peer_max_pdu=%u", x->peer,
	    calling, called, x->a->nctx, accepted, x->a->peer_max_pdu);
}

static void
serve_loop(struct session *x)
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

static void
peer_name(int fd, char *out, size_t outsz)
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

static int
serve_association(struct server *s, int fd, int busy)
{
	static const char *const sops[] = {
		SOP_VERIFICATION, SOP_MWL_FIND, SOP_MPPS, NULL
	};
	struct ul_config uc = { 0 };
	struct session x = { 0 };
	struct err e = { 0 };
	char calling[40], called[40];

	x.srv = s;
	peer_name(fd, x.peer, sizeof x.peer);
	uc.ae_title = s->aet;
	uc.any_called_aet = s->any_called_aet;
	uc.allowed_calling = s->nallowed > 0 ? s->allowed_ptr : NULL;
	uc.abstract_syntaxes = sops;
	uc.artim_ms = s->artim_s * 1000;
	uc.idle_ms = s->idle_s * 1000;
	uc.dimse_ms = s->dimse_s * 1000;
	uc.busy = busy;
	if (ul_accept(&x.a, fd, &uc, &e) == -1) {
		if (x.a != NULL && e.code == UL_E_REJECTED) {
			ae_quoted(x.a->calling_aet, calling, sizeof calling);
			ae_quoted(x.a->called_aet, called, sizeof called);
			log_warn("association rejected", "peer=%s "
			    "calling_aet=%s called_aet=%s result=%d source=%d "
			    "reason=%d", x.peer, calling, called,
			    x.a->reject.result, x.a->reject.source,
			    x.a->reject.reason);
		} else if (e.code == UL_E_CLOSED)	/* no byte: a port check */
			log_debug("closed before an association", "peer=%s "
			    "error=\"%s\"", x.peer, e.msg);
		else
			log_warn("association failed", "peer=%s error=\"%s\"",
			    x.peer, e.msg);
		ul_free(x.a);
		return EX_OK;
	}
	log_accept(&x);
	serve_loop(&x);
	ul_free(x.a);
	if (x.wl != NULL)
		worklist_close(x.wl);
	if (x.relay_open)
		spool_close(&x.relay);
	return EX_OK;
}

/* --- the accepting parent --- */

static int
listen_on(const struct server *s, struct err *e)
{
	struct addrinfo hints = { 0 }, *res;
	char port[16];
	int fd, one = 1, rc;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof port, "%d", s->port);
	if ((rc = getaddrinfo(s->bind_addr, port, &hints, &res)) != 0)
		return err_set(e, EINVAL, "bind address %s: %s", s->bind_addr,
		    gai_strerror(rc));
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -1 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, 128) == -1) {
		err_sys(e, "listen on %s:%d", s->bind_addr, s->port);
		if (fd != -1)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

static void
reap(struct server *s)
{
	pid_t pid;
	int i, status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < s->nslots; i++) {
			if (s->children[i] != pid)
				continue;
			s->children[i] = 0;
			if (s->is_rejecter[i])
				s->nrejecters--;
			else
				s->nchildren--;
		}
		if (WIFSIGNALED(status) || (WIFEXITED(status) &&
		    WEXITSTATUS(status) != 0))
			log_warn("association process failed", "pid=%ld "
			    "status=%d", (long)pid, status);
	}
}

static void
remember(struct server *s, pid_t pid, int busy)
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
child(struct server *s, int lfd, int fd, int busy)
{
	struct sigaction sa = { 0 };
	int rc;

	close(lfd);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	rc = serve_association(s, fd, busy);
	free(s->children);
	free(s->is_rejecter);
	exit(rc);
}

static void
accept_one(struct server *s, int lfd)
{
	int fd, busy;
	pid_t pid;

	if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1) {
		if (errno != EINTR && errno != EAGAIN &&
		    errno != ECONNABORTED)
			log_warn("accept failed", "error=\"%s\"",
			    strerror(errno));
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
	if (pid == 0)
		child(s, lfd, fd, busy);
	close(fd);
	remember(s, pid, busy);
}

static void
shutdown_children(struct server *s)
{
	time_t end = time(NULL) + GRACE_SECONDS;
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

static int
serve(struct server *s, int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	s->nslots = 2 * s->max_assoc;
	s->children = calloc((size_t)s->nslots, sizeof(*s->children));
	s->is_rejecter = calloc((size_t)s->nslots, 1);
	if (s->children == NULL || s->is_rejecter == NULL) {
		log_error("out of memory", "slots=%d", s->nslots);
		return EX_OSERR;
	}
	while (!stopping) {
		reap(s);
		if (poll(&p, 1, 1000) > 0 && !stopping)
			accept_one(s, lfd);
	}
	close(lfd);
	log_info("stopping", "associations=%d", s->nchildren);
	shutdown_children(s);
	free(s->children);
	free(s->is_rejecter);
	return EX_OK;
}

/* Create or migrate the database and the relay spool once, up front,
 * so children never race on it. */
static int
prepare(struct server *s, struct err *e)
{
	struct worklist *w;
	struct spool relay;
	char path[PATH_MAX];

	if (worklist_open(&w, s->cfg.worklist_db_path, e) == -1)
		return -1;
	worklist_close(w);
	if (config_spool_path(&s->cfg, "relay", path, sizeof path, e) == -1 ||
	    spool_open(&relay, path, 1, e) == -1)
		return -1;
	spool_close(&relay);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bind", required_argument, NULL, OPT_BIND },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "aet", required_argument, NULL, OPT_AET },
		{ "any-called-aet", no_argument, NULL, OPT_ANY },
		{ "allow", required_argument, NULL, OPT_ALLOW },
		{ "charset", required_argument, NULL, OPT_CHARSET },
		{ "max-associations", required_argument, NULL, OPT_MAX },
		{ "artim-seconds", required_argument, NULL, OPT_ARTIM },
		{ "idle-seconds", required_argument, NULL, OPT_IDLE },
		{ "dimse-seconds", required_argument, NULL, OPT_DIMSE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	static struct server s;
	struct sigaction sa = { 0 };
	struct err e = { 0 };
	char bindq[300];
	int c, lfd;

	log_init("mwlscp");
	if (defaults(&s, &e) == -1) {
		log_error("bad configuration", "error=\"%s\"", e.msg);
		return EX_CONFIG;
	}
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return EX_OK;
		}
		if (c == OPT_VERSION) {
			printf("mwlscp %s\n", GW_VERSION);
			return EX_OK;
		}
		if (c == '?' || option(&s, c, optarg) == -1) {
			if (c != '?')
				fprintf(stderr, "mwlscp: bad value for an "
				    "option: %s\n", optarg);
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);	/* wakes poll to reap */
	signal(SIGPIPE, SIG_IGN);
	if (prepare(&s, &e) == -1) {
		log_error("cannot prepare worklist.db or the relay spool",
		    "error=\"%s\"", e.msg);
		return EX_CANTCREAT;
	}
	if ((lfd = listen_on(&s, &e)) == -1) {
		log_error("cannot listen", "error=\"%s\"", e.msg);
		return EX_UNAVAILABLE;
	}
	log_info("listening", "bind=%s port=%d aet=%s max_associations=%d "
	    "charset=\"%s\"", log_quote(s.bind_addr, bindq, sizeof bindq),
	    s.port, s.aet, s.max_assoc, s.charset);
	return serve(&s, lfd);
}
