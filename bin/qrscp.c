/*
 * qrscp: the local PACS's Query/Retrieve (C-FIND, C-MOVE, C-GET), Storage
 * Commitment and C-ECHO, on one AE title and port, over pacs.db and the
 * store.
 *
 *   qrscp [--bind ADDR] [--port N] [--aet AE] [--any-called-aet]
 *         [--allow AE[,AE...]] [--destinations FILE]
 *         [--max-associations N] [--artim-seconds N] [--idle-seconds N]
 *         [--dimse-seconds N]
 *
 * The server's frame (a process per association, the association limit,
 * timers, a graceful stop) is lib/dicomnet/scp's, as mwlscp's; the services are
 * lib/qr_*.c.  qrscp reads pacs.db and never writes it, except for its own
 * table of commitment requests; readers never block ingest (WAL).  The
 * parent writes run/qr.state (port, associations) for gatewayctl status and
 * answers commitment requests left over from a crash (qr_commit_resume)
 * at start and every QR_COMMIT_RETRY_SECONDS, in a child of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "qr/qr.h"
#include "dicomnet/dicomnet.h"

#define SOP_VERIFICATION	"1.2.840.10008.1.1"

struct server {
	struct scp_server scp;
	struct qr_settings set;
	char destinations[PATH_MAX];
	long commit_retry_s;
	pid_t resumer;		/* the qr_commit_resume child, or 0 */
	time_t next_resume;
	int last_assoc;		/* as last written to run/qr.state */
	int state_warned;	/* it could not be written: said once */
	int status;		/* --status: print it and exit */
};

enum { OPT_DESTINATIONS = 256, OPT_STATUS };

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: qrscp [--bind ADDR] [--port N] [--aet AE] "
	    "[--any-called-aet]\n"
	    "             [--allow AE[,AE...]] [--destinations FILE]\n"
	    "             [--max-associations N] [--artim-seconds N] "
	    "[--idle-seconds N]\n"
	    "             [--dimse-seconds N]\n"
	    "       qrscp --status | --help | --version\n"
	    "Serves Query/Retrieve (C-FIND, C-MOVE, C-GET), Storage "
	    "Commitment and C-ECHO\nover pacs.db and the store "
	    "(see qrscp(8)).\n\n%s"
	    "  --destinations FILE     C-MOVE destinations and commitment "
	    "requesters:\n"
	    "                          \"AE host port [tls]\" lines "
	    "(QR_DESTINATIONS)\n", scp_options_help);
}

static int
defaults(struct server *s, struct err *e)
{
	const char *v;

	if (config_load(&s->set.cfg, e) == -1 ||
	    scp_defaults(&s->scp, "qrscp", "QR", s->set.cfg.qr_port,
	    s->set.cfg.qr_aet, e) == -1 ||
	    config_long("QR_COMMIT_RETRY_SECONDS", &s->commit_retry_s, e) == -1)
		return -1;
	v = getenv("QR_DESTINATIONS");
	snprintf(s->destinations, sizeof s->destinations, "%s",
	    v != NULL ? v : "");
	return 0;
}

/* --- one association (child) --- */

static int
is_one_of(const char *as, const char *a, const char *b)
{
	return strcmp(as, a) == 0 || strcmp(as, b) == 0;
}

/*
 * A retrieval holds a shared lock on run/store.lock while it reads store
 * files; dcmpurge takes it exclusively around its unlinks, so no file is
 * removed under a C-MOVE or C-GET (dcmpurge(1)).
 */
static int
retrieve(struct qr_session *x, const struct dimse_msg *m, enum qr_root root,
    int (*serve)(struct qr_session *, const struct dimse_msg *,
    enum qr_root))
{
	char path[PATH_MAX];
	int fd = -1, rc;

	if (snprintf(path, sizeof path, "%s/run/store.lock",
	    x->set->cfg.data_dir) >= (int)sizeof path ||
	    (fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) == -1 ||
	    flock(fd, LOCK_SH) == -1) {
		if (fd != -1)
			close(fd);
		log_error("cannot lock the store for a retrieval", "path=%s "
		    "error=\"%s\"", path, strerror(errno));
		return scp_respond(x->s, m, DIMSE_UNABLE_TO_PROCESS,
		    "store unavailable");
	}
	rc = serve(x, m, root);
	close(fd);
	return rc;
}

static int
dispatch(struct scp_session *s, struct dimse_msg *m)
{
	struct qr_session *x = s->arg;
	const struct ul_context *c = ul_context(s->a, m->ctx_id);
	const char *as = c != NULL ? c->abstract_syntax : "";
	enum qr_root root = strncmp(as, "1.2.840.10008.5.1.4.1.2.1.", 26) ==
	    0 ? QR_ROOT_PATIENT : QR_ROOT_STUDY;

	switch (m->cmd.command_field) {
	case DIMSE_C_ECHO_RQ:
		log_debug("c-echo", "peer=%s message_id=%u", s->peer,
		    m->cmd.message_id);
		return scp_respond(s, m, DIMSE_SUCCESS, NULL);
	case DIMSE_C_FIND_RQ:
		if (!is_one_of(as, QR_SOP_PATIENT_FIND, QR_SOP_STUDY_FIND))
			break;
		return qr_serve_find(x, m, root);
	case DIMSE_C_MOVE_RQ:
		if (!is_one_of(as, QR_SOP_PATIENT_MOVE, QR_SOP_STUDY_MOVE))
			break;
		return retrieve(x, m, root, qr_serve_move);
	case DIMSE_C_GET_RQ:
		if (!is_one_of(as, QR_SOP_PATIENT_GET, QR_SOP_STUDY_GET))
			break;
		return retrieve(x, m, root, qr_serve_get);
	case DIMSE_N_ACTION_RQ:
		if (strcmp(as, QR_SOP_COMMITMENT) != 0)
			break;
		return qr_serve_commit(x, m);
	case DIMSE_C_CANCEL_RQ:
		return 0;	/* late: the operation is over */
	default:
		return scp_refuse(s, m, 0);
	}
	return scp_refuse(s, m, 1);
}

static int
serve_association(struct scp_session *s)
{
	struct server *srv = s->srv->arg;
	struct qr_session x = { 0 };

	x.s = s;
	x.set = &srv->set;
	s->arg = &x;
	scp_serve_loop(s, dispatch);
	qr_session_close(&x);
	return EX_OK;
}

/* --- qrscp --status: its line of gatewayctl status --- */

static int
print_status(const struct server *s)
{
	struct qr_status st;
	struct err e = { 0 };
	char line[300];

	if (qr_status_read(&s->set.cfg, &st, &e) == -1) {
		fprintf(stderr, "qrscp: %s\n", e.msg);
		return EX_SOFTWARE;
	}
	qr_status_line(&st, line, sizeof line);
	printf("qrscp: %s\n", line);
	return EX_OK;
}

/* --- the parent --- */

/* run/qr.state (lib/qr qr_status): what gatewayctl status shows. */
static void
write_state(struct server *s)
{
	struct err e = { 0 };

	/* said once: run by hand, there may be no run/ */
	if (qr_status_write(s->set.cfg.data_dir, s->scp.aet, s->scp.port,
	    s->scp.nchildren, &e) == -1 && !s->state_warned) {
		log_warn("cannot write run/qr.state", "error=\"%s\"", e.msg);
		s->state_warned = 1;
	}
	s->last_assoc = s->scp.nchildren;
}

static void
start_resumer(struct server *s)
{
	struct err e = { 0 };
	pid_t pid;
	int n;

	if ((pid = scp_fork(&s->scp)) == -1)
		return;
	if (pid == 0) {
		n = qr_commit_resume(&s->set, &e);
		if (n == -1)
			log_warn("cannot answer pending commitment requests",
			    "error=\"%s\" note=\"tried again in %lds\"", e.msg,
			    s->commit_retry_s);
		else if (n > 0)
			log_info("pending commitment requests answered",
			    "count=%d", n);
		_exit(n == -1 ? EX_TEMPFAIL : EX_OK);
	}
	s->resumer = pid;
}

static void
tick(struct scp_server *scp)
{
	struct server *s = scp->arg;

	if (s->scp.nchildren != s->last_assoc)
		write_state(s);
	if (s->resumer == 0 && time(NULL) >= s->next_resume) {
		s->next_resume = time(NULL) + s->commit_retry_s;
		start_resumer(s);
	}
}

static void
reaped(struct scp_server *scp, pid_t pid, int status)
{
	struct server *s = scp->arg;

	if (pid == s->resumer)
		s->resumer = 0;
	else if (WIFSIGNALED(status))
		log_warn("helper process died", "pid=%ld signal=%d",
		    (long)pid, WTERMSIG(status));
}

static int
configure(struct server *s, struct err *e)
{
	static const char *const sops[] = {
		SOP_VERIFICATION,
		QR_SOP_PATIENT_FIND, QR_SOP_PATIENT_MOVE, QR_SOP_PATIENT_GET,
		QR_SOP_STUDY_FIND, QR_SOP_STUDY_MOVE, QR_SOP_STUDY_GET,
		QR_SOP_COMMITMENT, NULL
	};

	if (qr_destinations_load(&s->set.dests, s->destinations, e) == -1)
		return -1;
	s->set.destinations_path = s->destinations;
	s->set.tls_ca = s->scp.tls_ca;
	s->set.tls_cert = s->scp.tls_cert;
	s->set.tls_key = s->scp.tls_key;
	s->scp.abstract_syntaxes = sops;
	s->scp.scp_role_syntaxes = qr_storage_classes;
	s->scp.scp_role_transfer_syntaxes = qr_transfer_syntaxes;
	s->scp.serve = serve_association;
	s->scp.tick = tick;
	s->scp.reaped = reaped;
	s->scp.arg = s;
	s->last_assoc = -1;
	return 0;
}

/* qrscp's own options: --destinations FILE, --status. */
static int
own_option(void *arg, int c, const char *value)
{
	struct server *s = arg;

	switch (c) {
	case OPT_DESTINATIONS:
		return snprintf(s->destinations, sizeof s->destinations, "%s",
		    value) < (int)sizeof s->destinations ? 1 : -1;
	case OPT_STATUS:
		s->status = 1;
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option own[] = {
		{ "destinations", required_argument, NULL, OPT_DESTINATIONS },
		{ "status", no_argument, NULL, OPT_STATUS },
		{ NULL, 0, NULL, 0 },
	};
	static struct server s;
	struct err e = { 0 };
	char more[64];
	int rc;

	log_init("qrscp");
	if (defaults(&s, &e) == -1) {
		log_error("bad configuration", "error=\"%s\"", e.msg);
		return EX_CONFIG;
	}
	if ((rc = scp_command_line(&s.scp, argc, argv, own, own_option, &s,
	    usage)) != -1)
		return rc;
	if (s.status)
		return print_status(&s);
	if (configure(&s, &e) == -1) {
		log_error("bad configuration", "error=\"%s\"", e.msg);
		return EX_CONFIG;
	}
	snprintf(more, sizeof more, "destinations=%d", s.set.dests.n);
	if ((rc = scp_start(&s.scp, more)) != 0)
		return rc;
	rc = scp_run(&s.scp);
	if (s.resumer > 0) {
		kill(s.resumer, SIGTERM);
		waitpid(s.resumer, NULL, 0);
	}
	return rc;
}
