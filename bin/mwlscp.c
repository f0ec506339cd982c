/*
 * mwlscp: Modality Worklist C-FIND, MPPS N-CREATE/N-SET and C-ECHO on one
 * AE title and port, over worklist.db.
 *
 *   mwlscp [--bind ADDR] [--port N] [--aet AE] [--any-called-aet]
 *          [--allow AE[,AE...]] [--charset "ISO_IR 100"|"ISO_IR 192"]
 *          [--max-associations N] [--artim-seconds N] [--idle-seconds N]
 *          [--dimse-seconds N]
 *
 * The server's frame (a process per association, the association limit,
 * timers, a graceful stop on SIGTERM) is lib/dicomnet/scp's, shared with qrscp.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/base.h"
#include "dicom/dicom.h"
#include "dicomnet/dicomnet.h"
#include "queue/queue.h"
#include "worklist/worklist.h"

#define SOP_VERIFICATION	"1.2.840.10008.1.1"
#define SOP_MWL_FIND		"1.2.840.10008.5.1.4.31"
#define SOP_MPPS		"1.2.840.10008.3.1.2.3.3"
struct server {
	struct scp_server scp;
	struct config cfg;
	struct worklist_site site;	/* zone, finished items, station */
	char charset[16];
};

/* One association being served (in the child). */
struct session {
	struct server *srv;
	struct scp_session *s;
	struct ul_assoc *a;
	struct worklist *wl;
	struct spool relay;
	int relay_open;
	const char *peer;
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
	    "C-ECHO over\nworklist.db (see mwlscp(8)).\n\n%s"
	    "  --charset CHARSET       \"ISO_IR 100\" (default) or "
	    "\"ISO_IR 192\" for answers\n", scp_options_help);
}

/* --- options --- */

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

	if (config_load(&s->cfg, e) == -1 ||
	    scp_defaults(&s->scp, "mwlscp", "WORKLIST",
	    s->cfg.worklist_port, s->cfg.worklist_aet, e) == -1 ||
	    worklist_site_init(&s->site, e) == -1)
		return -1;
	snprintf(s->charset, sizeof s->charset, "ISO_IR 100");
	if ((v = getenv("WORKLIST_CHARSET")) != NULL && *v != '\0' &&
	    set_charset(s, v) == -1)
		return err_set(e, EINVAL, "WORKLIST_CHARSET must be "
		    "\"ISO_IR 100\" or \"ISO_IR 192\"");
	return 0;
}

enum { OPT_CHARSET = 256 };

/* --- serving one association (child) --- */

static int
open_worklist(struct session *x, struct err *e)
{
	char path[PATH_MAX];

	if (x->wl == NULL) {
		if (worklist_open(&x->wl, x->srv->cfg.worklist_db_path,
		    e) == -1)
			return -1;
		worklist_set_site(x->wl, &x->srv->site);
	}
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
	return scp_respond(x->s, m, status, comment);
}

static int
send_match(void *arg, struct dcm_builder *response)
{
	struct scp_pending *p = arg;
	struct session *x = p->x->arg;

	return scp_pending_send(p, response, x->srv->charset);
}

static int
serve_find(struct session *x, const struct dimse_msg *m, const char *ts)
{
	struct scp_pending f;
	struct dcm *query = NULL;
	struct err e = { 0 };
	int n;

	scp_pending_init(&f, x->s, m);
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

	/* The cloud's events are off: they wait in worklist.db's outbox,
	 * sent by the first drain once they are configured. */
	if (!config_cloud_events())
		return;
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
dispatch(struct scp_session *s, struct dimse_msg *m)
{
	struct session *x = s->arg;
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
		return scp_refuse(s, m, 0);
	}
	return scp_refuse(s, m, 1);
}

static int
serve_association(struct scp_session *s)
{
	struct session x = { 0 };

	x.srv = s->srv->arg;
	x.s = s;
	x.a = s->a;
	x.peer = s->peer;
	s->arg = &x;
	scp_serve_loop(s, dispatch);
	if (x.wl != NULL)
		worklist_close(x.wl);
	if (x.relay_open)
		spool_close(&x.relay);
	return EX_OK;
}

/* Create or migrate the database and the relay spool once, up front,
 * so children never race on it; events held while the cloud's events
 * were off go out now. */
static int
prepare(struct server *s, struct err *e)
{
	struct worklist *w;
	struct spool relay;
	char path[PATH_MAX];
	int n = 0;

	if (worklist_open(&w, s->cfg.worklist_db_path, e) == -1)
		return -1;
	if (config_spool_path(&s->cfg, "relay", path, sizeof path, e) == -1 ||
	    spool_open(&relay, path, 1, e) == -1) {
		worklist_close(w);
		return -1;
	}
	if (config_cloud_events() &&
	    (n = worklist_outbox_drain(w, &relay, e)) > 0)
		log_info("held mpps events queued", "events=%d", n);
	worklist_close(w);
	spool_close(&relay);
	return n == -1 ? -1 : 0;
}

/* mwlscp's own option: --charset. */
static int
own_option(void *arg, int c, const char *value)
{
	if (c != OPT_CHARSET)
		return 0;
	return set_charset(arg, value) == -1 ? -1 : 1;
}

int
main(int argc, char **argv)
{
	static const struct option own[] = {
		{ "charset", required_argument, NULL, OPT_CHARSET },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const sops[] = {
		SOP_VERIFICATION, SOP_MWL_FIND, SOP_MPPS, NULL
	};
	static struct server s;
	struct err e = { 0 };
	char more[512];
	int rc;

	log_init("mwlscp");
	if (defaults(&s, &e) == -1) {
		log_error("bad configuration", "error=\"%s\"", e.msg);
		return EX_CONFIG;
	}
	if ((rc = scp_command_line(&s.scp, argc, argv, own, own_option, &s,
	    usage)) != -1)
		return rc;
	if (prepare(&s, &e) == -1) {
		log_error("cannot prepare worklist.db or the relay spool",
		    "error=\"%s\"", e.msg);
		return EX_CANTCREAT;
	}
	s.scp.abstract_syntaxes = sops;
	s.scp.serve = serve_association;
	s.scp.arg = &s;
	snprintf(more, sizeof more, "charset=\"%s\" timezone=%s "
	    "show_finished=%d", s.charset, s.site.timezone[0] ?
	    s.site.timezone : "system", s.site.show_finished);
	if ((rc = scp_start(&s.scp, more)) != 0)
		return rc;
	return scp_run(&s.scp);
}
