/*
 * relaylisten: hold the Azure Relay listener for the cloud's actions
 * (../shared/relay/PROTOCOL.md §2, §4).
 *
 *   relaylisten                       the listener (run by gatewayd)
 *   relaylisten --health | --status   the health report: JSON, or text
 *   relaylisten --rendezvous ADDRESS --listener-id ID
 *                                     one accepted sender (internal)
 *   relaylisten --probe --listener-id ID
 *                                     one traffic proof (internal)
 *
 * The listener keeps one control channel open on
 * AZURE_RELAY_HYBRID_CONNECTION.  For each "accept" it starts a child
 * (--rendezvous) that connects to the given address, reads one action,
 * hands it to the program that owns it (images.request: lib/cloud/request)
 * and writes the reply, so a slow action never holds up the control
 * channel.  Its token comes from lib/cloud/identity (SAS, a command, or
 * Entra ID: in production the machine's managed identity).
 *
 * Liveness, as production keeps it (PRODUCTION.md §6): a WebSocket PING
 * every RELAY_PING_SECONDS, and the channel is dropped and opened again
 * when no PONG came within RELAY_PING_TIMEOUT_SECONDS.  A new channel
 * with a fresh token is opened before the old token expires (the new one
 * is up before the old one is closed).  Where the credential may send
 * (RELAY_SELF_ECHO: a SAS key or a command by default, never the Listen-
 * only managed identity unless told), the channel is also proven by
 * traffic: every RELAY_PROBE_SECONDS a child (--probe) connects to the
 * same hybrid connection as a sender and sends an echo, which must come
 * back through this listener, else the channel is opened again.
 * Reconnects follow the Azure SDK's back-off (0, 1, 2, 5, 10, 30 s); a
 * 404 (no such hybrid connection) waits the longest step at once; no
 * token is retried the same way, never by exiting.
 *
 * Its state goes to $GATEWAY_DATA_DIR/run/relay.state for gatewayd status
 * and the health report (never the token).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "base/base.h"
#include "ops/ops.h"
#include "archive/archive.h"
#include "cloud/cloud.h"
#include "queue/queue.h"

#define OPEN_TIMEOUT_MS		20000
#define CLOSE_TIMEOUT_MS	2000
#define REPLY_DEADLINE_MS	25000	/* the cloud waits 30 s */
#define ACTION_WAIT_MS		30000	/* production waits 30 s for it */
#define PROBE_TIMEOUT_S		30
#define PROBE_FIRST_S		5	/* first proof after connecting */
#define PROBE_RETRY_S		5	/* another listener answered */
#define EX_OTHER_LISTENER	3	/* --probe: answered, not by us */
#define RENDEZVOUS_MAX		64	/* actions answered at once */

static volatile sig_atomic_t stopping;

static const int backoff_steps[] = { 0, 1, 2, 5, 10, 30 };
#define BACKOFF_LAST	(sizeof backoff_steps / sizeof backoff_steps[0] - 1)

struct listener {
	struct config cfg;
	struct identity_settings ids;
	struct identity *identity;
	struct identity_source src;	/* the relay's credential */
	const char *ns, *endpoint, *hc, *ca_file;
	int token_in_header;
	long ping_s, ping_timeout_s, probe_s;
	struct ws_ctx *ctx;
	struct ws *ctl;
	char id[RELAY_UUID_LEN + 1];
	char self[PATH_MAX];		/* this program, for the children */
	int64_t token_expiry, token_renew_at;	/* of the channel's token */
	time_t started, connected_at, next_ping, next_probe;
	time_t last_pong, last_action, last_proof;
	time_t renew_retry;		/* after a failed renewal */
	pid_t probe_pid;
	time_t probe_started;
	int rendezvous;			/* children answering now */
	int self_echo;			/* traffic proof on (RELAY_SELF_ECHO) */
	unsigned fails;			/* reconnects in a row */
	char last_error[1024];
	time_t last_error_at;
	const char *state;		/* in relay.state, and since when */
	time_t state_since;
	int state_warned;		/* relay.state could not be written */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: relaylisten\n"
	    "       relaylisten --health | --status\n"
	    "       relaylisten --help | --version\n"
	    "\n"
	    "Listens on Azure Relay for the cloud's actions and answers\n"
	    "them: worklist actions through mwlsync, health, echo, test\n"
	    "items played by modality-emu, and images.request (uploads\n"
	    "queued for relaysend).\n"
	    "\n"
	    "  --health     print the gateway's health report (JSON)\n"
	    "  --status     print the relay's state and queue (text)\n"
	    "  -h, --help   this help\n"
	    "  --version    print the version\n"
	    "\n"
	    "Environment: AZURE_RELAY_NAMESPACE, AZURE_RELAY_HYBRID_CONNECTION,\n"
	    "ENVIRONMENT, AZURE_RELAY_KEY_NAME, AZURE_RELAY_SHARED_ACCESS_KEY,\n"
	    "AZURE_RELAY_TOKEN_COMMAND, IDENTITY_ENDPOINT, AZURE_ARC_TOKENS_DIR,\n"
	    "AZURE_IMDS_ENDPOINT, AZURE_TENANT_ID, AZURE_CLIENT_ID,\n"
	    "AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH,\n"
	    "AZURE_AUTHORITY_HOST, AZURE_RELAY_ENDPOINT, GATEWAY_CA_FILE,\n"
	    "RELAY_TOKEN_TTL_SECONDS, RELAY_PING_SECONDS,\n"
	    "RELAY_PING_TIMEOUT_SECONDS, RELAY_PROBE_SECONDS, RELAY_SELF_ECHO,\n"
	    "RELAY_TOKEN_IN_HEADER, GATEWAY_DATA_DIR, PACS_DB_PATH,\n"
	    "GATEWAY_SPOOL_DIR, LOG_LEVEL.\n"
	    "See relaylisten(8).\n");
}

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void
on_child(int sig)
{
	(void)sig;
}

static int
install_signals(void)
{
	struct sigaction sa = { 0 };

	if (proc_on_stop(on_signal) == -1)
		return -1;
	sa.sa_handler = on_child;	/* wakes the service loop */
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGCHLD, &sa, NULL);
}

/* ---------------------------------------------------------- the state */

/*
 * run/relay.state (lib/cloud cloud_status: gatewayctl status and the
 * health report read it): what a listener can tell about its channel,
 * never the token.
 */
static void
write_state(struct listener *l, const char *connection)
{
	struct relay_state r = { 0 };
	struct err e = { 0 };

	if (l->state == NULL || strcmp(l->state, connection) != 0) {
		l->state = connection;
		l->state_since = time(NULL);
	}
	snprintf(r.connection, sizeof r.connection, "%s", connection);
	r.since = l->state_since;
	r.started = l->started;
	snprintf(r.credential, sizeof r.credential, "%s",
	    identity_kind_name(l->src.kind));
	r.token_expires = l->ctl != NULL ? (time_t)l->token_expiry : 0;
	r.last_pong = l->last_pong;
	r.last_action = l->last_action;
	snprintf(r.self_echo, sizeof r.self_echo, "%s", l->self_echo ? "on" :
	    "off");
	r.last_proof = l->last_proof;
	snprintf(r.last_error, sizeof r.last_error, "%s", l->last_error);
	r.last_error_at = l->last_error_at;
	snprintf(r.hybrid_connection, sizeof r.hybrid_connection, "%s",
	    l->hc);
	if (relay_state_write(l->cfg.data_dir, &r, &e) == -1 &&
	    !l->state_warned) {
		log_warn("cannot write run/relay.state", "error=\"%s\"",
		    e.msg);
		l->state_warned = 1;	/* said once */
	}
}

/* What a handshake status means (PROTOCOL.md §2), for this credential. */
static const char *
status_hint(const struct listener *l, int status)
{
	int entra = identity_kind_entra(l->src.kind);

	switch (status) {
	case 401:
		return entra ? "token refused: wrong tenant or audience, or "
		    "expired (is the clock right?)" : "token refused: wrong "
		    "key or key name, or expired (is the clock right?)";
	case 403:
		return entra ? "the identity lacks the Azure Relay Listener "
		    "role on the hybrid connection" :
		    "the key lacks the Listen right";
	case 404:
		return "no such hybrid connection";
	default:
		return status >= 500 ? "relay service error" :
		    "unexpected answer";
	}
}

static void
keep_error(struct listener *l, const char *what, const char *msg)
{
	snprintf(l->last_error, sizeof l->last_error, "%s: %s", what, msg);
	l->last_error_at = time(NULL);
}

/* Log a failure with its phase, and keep it for the state file. */
static void
failed(struct listener *l, const char *what, const struct ws_status *st,
    const struct err *e)
{
	char q[400];

	keep_error(l, what, e->msg);
	if (st != NULL && st->http_status > 0)
		log_error(what, "phase=%s status=%d hc=%s error=%s hint=\"%s\"",
		    ws_phase_name(st->phase), st->http_status, l->hc,
		    log_quote(e->msg, q, sizeof q),
		    status_hint(l, st->http_status));
	else if (st != NULL && st->phase == WS_CLOSED)
		log_error(what, "phase=closed code=%d hc=%s error=%s",
		    st->close_code, l->hc, log_quote(e->msg, q, sizeof q));
	else
		log_error(what, "phase=%s hc=%s credential=%s error=%s",
		    st != NULL ? ws_phase_name(st->phase) : "token", l->hc,
		    identity_kind_name(l->src.kind),
		    log_quote(e->msg, q, sizeof q));
}

/* ------------------------------------------------------------ children */

/* Start this program again with args, in given on its stdin (NULL:
 * inherited); its pid, or -1. */
static pid_t
spawn(struct listener *l, char *const args[], const char *in)
{
	int p[2] = { -1, -1 };
	pid_t pid;

	if (in != NULL && pipe2(p, O_CLOEXEC) == -1) {
		log_error("cannot make a pipe", "error=\"%s\"", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == 0) {
		if (in != NULL && dup2(p[0], 0) == -1)
			_exit(EX_OSERR);
		execv(l->self, args);
		_exit(EX_OSERR);
	}
	if (pid == -1)
		log_error("cannot fork", "error=\"%s\"", strerror(errno));
	if (in != NULL) {
		close(p[0]);
		if (pid != -1 && fs_write_all(p[1], in, strlen(in), NULL) == -1)
			log_warn("cannot hand the child its token", "pid=%ld",
			    (long)pid);
		close(p[1]);
	}
	return pid;
}

static void
start_rendezvous(struct listener *l, const char *address, const char *id)
{
	char *args[] = { l->self, "--rendezvous", (char *)address,
	    "--listener-id", l->id, NULL };
	pid_t pid;

	if (l->rendezvous >= RENDEZVOUS_MAX) {
		log_warn("too many actions at once: accept ignored", "id=%s "
		    "answering=%d", id, l->rendezvous);
		return;
	}
	if ((pid = spawn(l, args, NULL)) != -1) {
		l->rendezvous++;
		log_debug("accept", "id=%s pid=%ld", id, (long)pid);
	}
}

/* The relay token for entity hc (lib/cloud/identity), or NULL with e. */
static const struct identity_token *
relay_token(struct listener *l, struct err *e)
{
	const struct identity_token *t;
	char resource[1024];

	if (relay_resource(l->ns, l->hc, resource, sizeof resource, e) == -1 ||
	    identity_token(l->identity, &l->src, resource, &t, e) == -1)
		return NULL;
	return t;
}

/* The probe is a sender with our own credential, handed on its stdin. */
static void
start_probe(struct listener *l)
{
	char *args[] = { l->self, "--probe", "--listener-id", l->id, NULL };
	const struct identity_token *t;
	struct err e = { 0 };
	char *in;

	l->probe_started = time(NULL);
	l->next_probe = l->probe_started + l->probe_s;
	if ((t = relay_token(l, &e)) == NULL) {
		failed(l, "traffic proof: no token", NULL, &e);
		return;
	}
	if (asprintf(&in, "%s\n", t->value) == -1)
		return;
	l->probe_pid = spawn(l, args, in);
	explicit_bzero(in, strlen(in));
	free(in);
}

/* The probe ended with status; 1 when the channel must be dropped. */
static int
probe_done(struct listener *l, int status)
{
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : EX_SOFTWARE;

	l->probe_pid = 0;
	if (code == 0) {
		l->last_proof = time(NULL);
		log_debug("traffic proof", "hc=%s", l->hc);
		write_state(l, "connected");
		return 0;
	}
	if (code == EX_OTHER_LISTENER) {
		log_info("traffic proof answered by another listener",
		    "hc=%s note=\"trying again\"", l->hc);
		l->next_probe = time(NULL) + PROBE_RETRY_S;
		return 0;
	}
	if (code == EX_NOPERM) {
		log_warn("traffic proof needs the Send right on the hybrid "
		    "connection; proof disabled", "hc=%s credential=%s", l->hc,
		    identity_kind_name(l->src.kind));
		l->self_echo = 0;
		write_state(l, "connected");
		return 0;
	}
	keep_error(l, "traffic proof failed", "the listener does not get "
	    "traffic");
	log_error("traffic proof failed: the listener does not get traffic",
	    "hc=%s exit=%d note=\"reconnecting\"", l->hc, code);
	return 1;
}

/* Reap children; 1 when a failed probe says to reconnect. */
static int
reap(struct listener *l)
{
	int status, drop = 0;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == l->probe_pid) {
			drop |= probe_done(l, status);
			continue;
		}
		l->rendezvous--;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			log_warn("rendezvous child failed", "pid=%ld status=%d",
			    (long)pid, status);
	}
	if (l->probe_pid > 0 &&
	    time(NULL) - l->probe_started > PROBE_TIMEOUT_S + 5) {
		kill(l->probe_pid, SIGKILL);
		log_error("traffic proof hung", "hc=%s", l->hc);
	}
	return drop;
}

/* ------------------------------------------------------ control channel */

/* Open a control channel with t; on success *out and the channel's id. */
static int
open_with(struct listener *l, const struct identity_token *t, struct ws **out,
    struct ws_status *st, struct err *e)
{
	static char url[RELAY_URL_MAX];
	char id[RELAY_UUID_LEN + 1];
	int rc;

	if (relay_uuid(id, e) == -1 ||
	    relay_listen_url(l->ns, l->hc, id, l->token_in_header ? NULL :
	    t->value, l->endpoint, url, sizeof url, e) == -1)
		return -1;
	rc = ws_open(l->ctx, out, url, l->token_in_header ?
	    "ServiceBusAuthorization" : NULL, l->token_in_header ? t->value :
	    NULL, OPEN_TIMEOUT_MS, st, e);
	explicit_bzero(url, sizeof url);
	if (rc == 0) {		/* the channel's id and token, once it is up */
		memcpy(l->id, id, sizeof id);
		l->token_expiry = t->expires_on;
		l->token_renew_at = t->renew_at;
	}
	return rc;
}

/* A new control channel: 0, -1 (st says the phase), or -2 when the
 * credential gave no token (e says why). */
static int
open_channel(struct listener *l, struct ws **out, struct ws_status *st,
    struct err *e)
{
	const struct identity_token *t;

	memset(st, 0, sizeof *st);
	st->phase = WS_OK;
	if ((t = relay_token(l, e)) == NULL)
		return -2;
	return open_with(l, t, out, st, e);
}

static void
channel_up(struct listener *l)
{
	time_t now = time(NULL);

	l->connected_at = now;
	l->next_ping = now + l->ping_s;
	l->next_probe = now + (l->probe_s < PROBE_FIRST_S ? l->probe_s :
	    PROBE_FIRST_S);
	l->renew_retry = 0;
	l->fails = 0;
	write_state(l, "connected");	/* last_error stays, with its time */
}

/* One control message: an accept starts a child; the rest is logged. */
static void
control_message(struct listener *l, const char *msg, size_t len)
{
	char address[2048], id[128], q[100], head[64];
	struct err e = { 0 };
	int rc = relay_parse_accept(msg, address, sizeof address, id,
	    sizeof id, &e);

	l->last_action = time(NULL);	/* the relay routes to us */
	if (rc == 1) {
		start_rendezvous(l, address, id);
		write_state(l, l->state != NULL ? l->state : "connected");
		return;
	}
	snprintf(head, sizeof head, "%.*s", (int)(len < 60 ? len : 60), msg);
	log_info(rc == 0 ? "control message ignored" :
	    "control message not understood", "hc=%s start=%s", l->hc,
	    log_quote(head, q, sizeof q));
}

/*
 * Make before break: a new channel with a fresh token, then the old one
 * closed after what it already received has been handled.  -1 when no
 * new channel could be opened; 0 also when the credential gave no newer
 * token yet (the old channel stays until its token expires, and renewal
 * is tried again when lib/cloud/identity says).
 */
static int
renew(struct listener *l)
{
	struct ws *fresh, *old = l->ctl;
	const struct identity_token *t;
	struct ws_status st;
	struct err e = { 0 };
	char *msg, q[300];
	size_t len;

	memset(&st, 0, sizeof st);
	if ((t = relay_token(l, &e)) == NULL) {
		failed(l, "token renewal: no token", NULL, &e);
		return -1;
	}
	if (t->expires_on != 0 && t->expires_on <= l->token_expiry) {
		/* no newer token (yet): the channel stays until it expires */
		if (t->renew_error[0] != '\0') {
			keep_error(l, "token renewal", t->renew_error);
			log_warn("token renewal: no new token yet; the channel "
			    "stays until its token expires", "hc=%s "
			    "credential=%s error=%s", l->hc,
			    identity_kind_name(l->src.kind),
			    log_quote(t->renew_error, q, sizeof q));
		}
		l->token_renew_at = t->renew_at;
		l->renew_retry = time(NULL) + 1;
		write_state(l, "connected");
		return 0;
	}
	if (open_with(l, t, &fresh, &st, &e) == -1) {
		failed(l, "token renewal: cannot open a new channel", &st, &e);
		return -1;
	}
	while (ws_recv(old, &msg, &len, NULL, 0, NULL, NULL) == 1) {
		control_message(l, msg, len);
		free(msg);
	}
	ws_close(old, 1000, "token renewed", CLOSE_TIMEOUT_MS);
	l->ctl = fresh;
	log_info("token renewed", "hc=%s listener_id=%s credential=%s", l->hc,
	    l->id, identity_kind_name(l->src.kind));
	channel_up(l);
	return 0;
}

/* PING every ping_s; -1 when the last one went unanswered too long. */
static int
keepalive(struct listener *l, time_t now)
{
	struct ws_status st;
	struct err e = { 0 };
	time_t pong = ws_last_pong(l->ctl);

	if (pong != 0 && pong != l->last_pong) {
		l->last_pong = pong;
		write_state(l, "connected");
	}
	if (ws_ping_overdue(l->ctl, (int)l->ping_timeout_s * 1000)) {
		err_set(&e, ETIMEDOUT, "no PONG within %ld s of a PING",
		    l->ping_timeout_s);
		failed(l, "control channel lost: the relay does not answer "
		    "PINGs", NULL, &e);
		return -1;
	}
	if (now >= l->next_ping) {
		l->next_ping = now + l->ping_s;
		if (ws_ping(l->ctl, 5000, &st, &e) == -1) {
			failed(l, "keep-alive PING failed", &st, &e);
			return -1;
		}
	}
	return 0;
}

/* Timers: PING, renewal, probe.  -1 when the channel must be dropped. */
static int
timers(struct listener *l)
{
	time_t now = time(NULL);

	if (keepalive(l, now) == -1)
		return -1;
	if (l->token_renew_at != 0 && now >= l->token_renew_at &&
	    now >= l->renew_retry && renew(l) == -1) {
		if (l->token_expiry != 0 && now >= l->token_expiry)
			return -1;
		l->renew_retry = now + backoff_steps[BACKOFF_LAST];
	}
	if (l->probe_s > 0 && l->self_echo && l->probe_pid == 0 &&
	    now >= l->next_probe)
		start_probe(l);
	return reap(l) ? -1 : 0;
}

/* Serve one open channel until it fails or we stop. */
static void
serve(struct listener *l)
{
	struct ws_status st;
	struct err e = { 0 };
	char *msg;
	size_t len;
	int rc;

	while (!stopping) {
		rc = ws_recv(l->ctl, &msg, &len, NULL, 1000, &st, &e);
		if (rc == 1) {
			control_message(l, msg, len);
			free(msg);
		} else if (rc == -1) {
			if (e.code != EINTR || !stopping)
				failed(l, st.close_code == 1008 ?
				    "control channel closed: token expired" :
				    "control channel lost", &st, &e);
			return;
		}
		if (timers(l) == -1)
			return;
	}
}

/* Sleep seconds, waking for a signal; children are reaped meanwhile. */
static void
pause_for(struct listener *l, long seconds)
{
	time_t until = time(NULL) + seconds;
	struct timespec ts = { 1, 0 };

	while (!stopping && time(NULL) < until) {
		nanosleep(&ts, NULL);
		reap(l);
	}
}

static long
backoff(struct listener *l, const struct ws_status *st)
{
	unsigned i = l->fails < BACKOFF_LAST ? l->fails : BACKOFF_LAST;

	l->fails++;
	if (st->http_status == 404) {
		log_error("hybrid connection not found: check "
		    "AZURE_RELAY_HYBRID_CONNECTION", "hc=%s wait=%d", l->hc,
		    backoff_steps[BACKOFF_LAST]);
		return backoff_steps[BACKOFF_LAST];
	}
	return backoff_steps[i];
}

static int
listen_loop(struct listener *l)
{
	struct ws_status st;
	struct err e = { 0 };
	const char *down;
	long wait;
	int rc;

	while (!stopping) {
		write_state(l, "connecting");
		down = "backoff";
		if ((rc = open_channel(l, &l->ctl, &st, &e)) == 0) {
			log_info("listening", "hc=%s listener_id=%s "
			    "credential=%s", l->hc, l->id,
			    identity_kind_name(l->src.kind));
			channel_up(l);
			serve(l);
			ws_close(l->ctl, 1000, "", CLOSE_TIMEOUT_MS);
			l->ctl = NULL;
			memset(&st, 0, sizeof st);
			if (stopping)
				break;
		} else if (e.code != EINTR && rc == -2) {
			failed(l, "no token for the relay", NULL, &e);
			down = "no-token";
		} else if (e.code != EINTR) {
			failed(l, "cannot open the control channel", &st, &e);
		}
		wait = backoff(l, &st);
		write_state(l, down);
		if (wait > 0)
			log_info("reconnecting", "hc=%s wait=%ld", l->hc, wait);
		pause_for(l, wait);
	}
	write_state(l, "stopped");
	return EX_OK;
}

/* ----------------------------------------------------------- actions */

/* {"status":…[,"action_id":…][,"message":…]}; production's error
 * replies carry no action_id (PRODUCTION.md §2): pass NULL for those. */
static char *
reply_json(const char *status, const char *action_id, const char *message)
{
	json_t *j = json_pack("{s:s}", "status", status);
	char *out;

	if (j == NULL)
		return NULL;
	if (action_id != NULL)
		json_object_set_new(j, "action_id", json_string(action_id));
	if (message != NULL)
		json_object_set_new(j, "message", json_string(message));
	out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return out;
}

/*
 * Run argv with in on its stdin and its stdout collected (less than
 * 64 KiB), within deadline_ms.  The output (malloc'd), or NULL (logged).
 */
static char *
run_filter(char *const argv[], const char *in, int deadline_ms)
{
	size_t cap = 64 * 1024;
	struct err e = { 0 };
	char *out = malloc(cap);
	int status;

	if (out == NULL)
		return NULL;
	if (proc_run(argv, in, strlen(in), out, cap, deadline_ms, &status,
	    &e) == -1) {
		log_error("action handler failed", "program=%s error=\"%s\"",
		    argv[0], e.msg);
		free(out);
		return NULL;
	}
	if (proc_exit_ok(status, &e) == -1)	/* its reply may say why */
		log_warn("action handler failed", "program=%s error=\"%s\"",
		    argv[0], e.msg);
	return out;
}

/* A sibling program of ours: the same directory, else $PATH. */
static void
sibling(const char *self, const char *name, char *out, size_t outsz)
{
	const char *slash = strrchr(self, '/');

	if (slash != NULL && snprintf(out, outsz, "%.*s/%s",
	    (int)(slash - self), self, name) < (int)outsz &&
	    access(out, X_OK) == 0)
		return;
	snprintf(out, outsz, "%s", name);
}

/* worklist.* through `mwlsync apply`; its reply, checked to be JSON. */
static char *
worklist_action(const char *self, const char *text)
{
	char prog[PATH_MAX];
	char *argv[] = { prog, "apply", NULL };
	char *out;
	json_t *j;

	sibling(self, "mwlsync", prog, sizeof prog);
	out = run_filter(argv, text, REPLY_DEADLINE_MS - 3000);
	if (out != NULL && (j = json_loads(out, 0, NULL)) != NULL &&
	    json_is_object(j)) {
		json_decref(j);
		out[strcspn(out, "\n")] = '\0';
		return out;
	}
	free(out);
	return reply_json("error", NULL, "worklist store failed");
}

/*
 * worklist.create_test_item: create the item as create_item does, reply,
 * and play the exam with modality-emu in the background.
 */
static char *
test_item_action(const char *self, json_t *action, char *accession,
    size_t accsz)
{
	json_t *copy = json_deep_copy(action);
	const char *acc;
	char *text, *reply;

	accession[0] = '\0';
	if (copy == NULL)
		return reply_json("error", NULL, "out of memory");
	json_object_set_new(copy, "action_type",
	    json_string("worklist.create_item"));
	acc = json_string_value(json_object_get(json_object_get(
	    json_object_get(action, "parameters"), "worklist_item"),
	    "accession_number"));
	if (acc != NULL)
		snprintf(accession, accsz, "%s", acc);
	text = json_dumps(copy, JSON_COMPACT);
	json_decref(copy);
	if (text == NULL)
		return reply_json("error", NULL, "out of memory");
	reply = worklist_action(self, text);
	free(text);
	return reply;
}

/* Play the test exam, detached: the reply does not wait for it. */
static void
play_test_exam(const char *self, const char *accession)
{
	char prog[PATH_MAX];
	pid_t pid;

	sibling(self, "modality-emu", prog, sizeof prog);
	if ((pid = fork()) == 0) {
		int fd = open("/dev/null", O_RDWR);

		if (fd != -1)
			dup2(fd, 0);
		setsid();
		if (fork() == 0) {
			execlp(prog, prog, "--accession", accession, (char *)NULL);
			_exit(EX_UNAVAILABLE);
		}
		_exit(0);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
	log_info("test exam started", "accession_number=%s", accession);
}

/*
 * {"status":"echo","payload":<the whole request>} as production answers;
 * our own traffic proof ("probe":true) also gets this listener's id.
 */
static char *
echo_reply(json_t *action, const char *listener_id)
{
	json_t *j = json_pack("{s:s, s:O}", "status", "echo", "payload",
	    action);
	char *out;

	if (j == NULL)
		return NULL;
	if (json_is_true(json_object_get(action, "probe")))
		json_object_set_new(j, "listener_id", json_string(listener_id));
	out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return out;
}

/* {"status":"ok","action_id":<as sent, or null>,"health":{…}} */
static char *
health_reply(json_t *action)
{
	json_t *id = json_object_get(action, "action_id");
	struct config cfg;
	struct err e = { 0 };
	json_t *h = NULL, *j;
	char *out;

	if (config_load(&cfg, &e) == -1 || health_report(&cfg, &h, &e) == -1)
		return reply_json("error", NULL, e.msg);
	j = json_pack("{s:s, s:O?, s:o}", "status", "ok", "action_id", id,
	    "health", h);
	if (j == NULL)
		return NULL;
	out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return out;
}

/*
 * images.request (lib/cloud/request): jobs in the relay spool for the images
 * asked for, durable before the reply says queued.
 */
static char *
images_request(const json_t *action, const char *action_id)
{
	struct request_outcome o;
	struct config cfg;
	struct spool relay = { .wake_fd = -1, .wake_keep = -1 };
	char dir[PATH_MAX], *out;
	struct err e = { 0 };
	sqlite3 *db = NULL;

	if (config_load(&cfg, &e) == -1 ||
	    config_spool_path(&cfg, "relay", dir, sizeof dir, &e) == -1 ||
	    spool_open(&relay, dir, 1, &e) == -1 ||
	    db_open_existing(&db, cfg.pacs_db_path, &e) == -1 ||
	    db_migrate(db, db_schema_pacs, &e) == -1) {
		log_err("images.request: cannot open pacs.db or the relay spool",
		    &e);
		out = reply_json("error", action_id, "the gateway cannot read "
		    "its index or queue now");
	} else {
		out = request_images(db, &relay, action, &o);
		log_msg(strcmp(o.status, "error") == 0 ? LOG_WARN : LOG_INFO,
		    "images requested", "action_id=%s by=%s priority=%s "
		    "status=%s count=%ld", action_id ? action_id : "-",
		    o.by ? o.by : "-", o.high ? "high" : "normal", o.status,
		    o.count);
	}
	if (db != NULL)
		db_close(db);
	spool_close(&relay);
	return out;
}

/* "Unsupported action: <type>" as production words it: "no-op" when
 * there is none, the JSON text of a type that is not a string. */
static char *
unsupported(const json_t *type)
{
	char msg[300], *text = NULL;

	if (type == NULL)
		snprintf(msg, sizeof msg, "Unsupported action: no-op");
	else if (json_is_string(type))
		snprintf(msg, sizeof msg, "Unsupported action: %.200s",
		    json_string_value(type));
	else {
		text = json_dumps(type, JSON_COMPACT | JSON_ENCODE_ANY);
		snprintf(msg, sizeof msg, "Unsupported action: %.200s",
		    text != NULL ? text : "?");
		free(text);
	}
	return reply_json("error", NULL, msg);
}

/*
 * The reply to one action (malloc'd JSON).  Every request gets one:
 * text that is not a JSON object is answered with an error naming what
 * is wrong, where production closes without a word.
 */
static char *
answer(const char *self, const char *text, const char *listener_id,
    char *accession, size_t accsz)
{
	json_error_t je;
	json_t *action = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	const char *type, *id;
	char msg[300], q[80], *out;

	accession[0] = '\0';
	if (action == NULL || !json_is_object(action)) {
		if (action == NULL)
			snprintf(msg, sizeof msg, "Invalid action: not JSON "
			    "(line %d column %d: %.160s)", je.line, je.column,
			    je.text);
		else
			snprintf(msg, sizeof msg, "Invalid action: not a JSON "
			    "object");
		json_decref(action);
		log_warn("action refused", "reason=%s",
		    log_quote(msg, q, sizeof q));
		return reply_json("error", NULL, msg);
	}
	type = json_string_value(json_object_get(action, "action_type"));
	id = json_string_value(json_object_get(action, "action_id"));
	log_msg(type != NULL && strcmp(type, "echo") == 0 ? LOG_DEBUG :
	    LOG_INFO, "action", "type=%s action_id=%s", type ? type : "-",
	    id ? id : "-");
	if (type == NULL)
		out = unsupported(json_object_get(action, "action_type"));
	else if (strcmp(type, "echo") == 0)
		out = echo_reply(action, listener_id);
	else if (strcmp(type, "health") == 0)
		out = health_reply(action);
	else if (strcmp(type, "images.request") == 0)
		out = images_request(action, id);
	else if (strcmp(type, "worklist.create_test_item") == 0)
		out = test_item_action(self, action, accession, accsz);
	else if (strncmp(type, "worklist.", 9) == 0)
		out = worklist_action(self, text);
	else
		out = unsupported(json_object_get(action, "action_type"));
	json_decref(action);
	return out;
}

/* --rendezvous: one sender, one action, one reply. */
static int
rendezvous(const char *self, const char *address, const char *listener_id)
{
	struct ws_ctx *ctx = NULL;
	struct ws *w = NULL;
	struct ws_status st;
	struct err e = { 0 };
	char *msg = NULL, *reply = NULL, accession[80];
	size_t len;
	int rc = EX_UNAVAILABLE, created;

	if (ws_ctx_new(&ctx, getenv("GATEWAY_CA_FILE"), 0, &e) == -1 ||
	    ws_open(ctx, &w, address, NULL, NULL, 10000, &st, &e) == -1) {
		log_error("rendezvous failed", "phase=%s status=%d error=\"%s\"",
		    ctx ? ws_phase_name(st.phase) : "tls", ctx ? st.http_status
		    : 0, e.msg);
		goto done;
	}
	if (ws_recv(w, &msg, &len, NULL, ACTION_WAIT_MS, &st, &e) != 1) {
		log_error("rendezvous: no action received", "phase=%s "
		    "error=\"%s\"", ws_phase_name(st.phase), e.msg);
		goto done;
	}
	reply = answer(self, msg, listener_id, accession, sizeof accession);
	if (reply == NULL) {
		log_error("reply failed", "error=\"out of memory\"");
		goto done;
	}
	if (ws_send_text(w, reply, strlen(reply), 5000, &st, &e) == -1) {
		log_error("reply failed", "phase=%s error=\"%s\"",
		    ws_phase_name(st.phase), e.msg);
		goto done;
	}
	/* the item is there as the cloud sent it: new, or a repeat */
	created = strstr(reply, "\"status\":\"created\"") != NULL ||
	    strstr(reply, "\"status\":\"processed\"") != NULL;
	if (accession[0] != '\0' && created)
		play_test_exam(self, accession);
	rc = EX_OK;
done:
	free(msg);
	free(reply);
	ws_close(w, 1000, "", CLOSE_TIMEOUT_MS);
	ws_ctx_free(ctx);
	return rc;
}

/* The token the listener hands the probe on stdin, into out. */
static int
read_token(char *out, size_t outsz, struct err *e)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < outsz && (r = read(0, out + n, outsz - 1 - n)) != 0) {
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return err_sys(e, "reading the token");
		n += (size_t)r;
	}
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
	if (out[0] == '\0')
		return err_set(e, EINVAL, "no token on stdin");
	return 0;
}

/* --probe: an echo through the relay, as a sender on our own hc, with
 * the listener's token. */
static int
probe(struct listener *l, const char *listener_id)
{
	static char token[RELAY_TOKEN_OUT], url[RELAY_URL_MAX];
	char uuid[RELAY_UUID_LEN + 1], text[200], *msg = NULL;
	struct ws_status st = { 0 };
	struct err e = { 0 };
	json_t *j = NULL;
	int rc = EX_UNAVAILABLE;
	const char *who, *id;

	if (relay_uuid(uuid, &e) == -1 ||
	    read_token(token, sizeof token, &e) == -1 ||
	    relay_connect_url(l->ns, l->hc, l->token_in_header ? NULL : token,
	    l->endpoint, url, sizeof url, &e) == -1)
		goto done;
	snprintf(text, sizeof text, "{\"schema_version\":1,\"action_id\":"
	    "\"%s\",\"action_type\":\"echo\",\"probe\":true}", uuid);
	rc = ws_request(l->ctx, url, l->token_in_header ?
	    "ServiceBusAuthorization" : NULL, l->token_in_header ? token :
	    NULL, text, strlen(text), 15000, 10000, &msg, &st, &e);
	if (rc != 1) {
		rc = st.http_status == 401 || st.http_status == 403 ?
		    EX_NOPERM : EX_UNAVAILABLE;
		if (rc == EX_UNAVAILABLE && st.phase == WS_OK)
			err_set(&e, ETIMEDOUT, "no echo within 10 s");
		goto done;
	}
	rc = EX_UNAVAILABLE;
	j = json_loads(msg, 0, NULL);
	who = json_string_value(json_object_get(j, "listener_id"));
	id = json_string_value(json_object_get(json_object_get(j, "payload"),
	    "action_id"));
	if (id == NULL || strcmp(id, uuid) != 0) {
		err_set(&e, EPROTO, "echo came back wrong");
		goto done;
	}
	rc = who != NULL && strcmp(who, listener_id) == 0 ? EX_OK :
	    EX_OTHER_LISTENER;
done:
	if (rc != EX_OK && rc != EX_OTHER_LISTENER)
		log_warn("traffic proof failed", "phase=%s status=%d hc=%s "
		    "error=\"%s\"", ws_phase_name(st.phase), st.http_status,
		    l->hc, e.msg);
	explicit_bzero(token, sizeof token);
	explicit_bzero(url, sizeof url);
	json_decref(j);
	free(msg);
	return rc;
}

/* ----------------------------------------------------------- set-up */

/*
 * RELAY_SELF_ECHO: on, off, or auto (the default): on with a SAS key or
 * a token command, off with Entra ID (production's managed identity holds
 * only the Listener role: it cannot send to itself).
 */
static int
self_echo_setting(struct listener *l)
{
	struct err e = { 0 };
	int i;

	if (config_choice("RELAY_SELF_ECHO", &i, &e) == -1) {
		log_err("bad setting", &e);
		return -1;
	}
	/* auto, on, off */
	l->self_echo = i == 0 ? !identity_kind_entra(l->src.kind) : i == 1;
	if (l->probe_s == 0)
		l->self_echo = 0;
	return 0;
}

/* Said once: the credential, what the rule ignored, how we stay alive. */
static void
log_credential(const struct listener *l)
{
	log_info("credential", "for=relay credential=%s resource=%s",
	    identity_kind_name(l->src.kind), identity_kind_entra(l->src.kind) ?
	    l->src.resource : "-");
	if (l->src.ignored[0] != '\0')
		log_warn("settings ignored by the credential rule", "for=relay "
		    "credential=%s ignored=\"%s\"%s",
		    identity_kind_name(l->src.kind), l->src.ignored,
		    l->ids.prod ? " note=\"ENVIRONMENT=prod: the relay uses "
		    "only the managed identity\"" : "");
	log_info("liveness", "hc=%s ping_seconds=%ld ping_timeout_seconds=%ld "
	    "self_echo=%s probe_seconds=%ld", l->hc, l->ping_s,
	    l->ping_timeout_s, l->self_echo ? "on" : "off", l->probe_s);
}

static int
configure(struct listener *l)
{
	struct err e = { 0 };
	long in_header;

	if (config_load(&l->cfg, &e) == -1 ||
	    identity_settings_load(&l->ids, &e) == -1 ||
	    identity_choose(&l->ids, IDENTITY_FOR_RELAY, &l->src, &e) == -1) {
		log_err("bad configuration", &e);
		return -1;
	}
	l->ns = config_env("AZURE_RELAY_NAMESPACE");
	l->endpoint = config_env("AZURE_RELAY_ENDPOINT");
	l->hc = config_env("AZURE_RELAY_HYBRID_CONNECTION");
	if (l->ns == NULL) {
		log_error("AZURE_RELAY_NAMESPACE is not set", "%s",
		    "note=\"e.g. relay-manbrs-prod.servicebus.windows.net\"");
		return -1;
	}
	if (l->hc == NULL) {
		log_error("AZURE_RELAY_HYBRID_CONNECTION is not set", "%s",
		    "note=\"the hybrid connection the cloud sends actions to\"");
		return -1;
	}
	l->ca_file = config_env("GATEWAY_CA_FILE");
	if (config_long("RELAY_PING_SECONDS", &l->ping_s, &e) == -1 ||
	    config_long("RELAY_PING_TIMEOUT_SECONDS", &l->ping_timeout_s,
	    &e) == -1 ||
	    config_long("RELAY_PROBE_SECONDS", &l->probe_s, &e) == -1 ||
	    config_long("RELAY_TOKEN_IN_HEADER", &in_header, &e) == -1) {
		log_err("bad setting", &e);
		return -1;
	}
	l->token_in_header = in_header == 1;
	if (self_echo_setting(l) == -1)
		return -1;
	if (realpath("/proc/self/exe", l->self) == NULL) {
		log_error("cannot find this program", "error=\"%s\"",
		    strerror(errno));
		return -1;
	}
	if (ws_ctx_new(&l->ctx, l->ca_file, 0, &e) == -1 ||
	    identity_new(&l->identity, &l->ids, &stopping, &e) == -1) {
		log_err("cannot start", &e);
		return -1;
	}
	ws_ctx_stop_flag(l->ctx, &stopping);
	l->started = time(NULL);
	return 0;
}

static int
report(int text)
{
	struct config cfg;
	struct err e = { 0 };
	json_t *j;

	if (config_load(&cfg, &e) == -1) {
		log_err("bad configuration", &e);
		return EX_CONFIG;
	}
	if (text) {
		struct ops_status *st = malloc(sizeof *st);
		int rc = st == NULL ? err_set(&e, ENOMEM, "out of memory") :
		    ops_status_read(&cfg, st, &e);

		if (rc == 0)
			rc = screen_print_cloud(st, 1, stdout, &e);
		free(st);
		if (rc == -1) {
			log_err("status failed", &e);
			return EX_SOFTWARE;
		}
		return EX_OK;
	}
	if (health_report(&cfg, &j, &e) == -1) {
		log_err("health report failed", &e);
		return EX_SOFTWARE;
	}
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(j);
	return EX_OK;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "health", no_argument, NULL, 'H' },
		{ "status", no_argument, NULL, 'S' },
		{ "rendezvous", required_argument, NULL, 'r' },
		{ "probe", no_argument, NULL, 'p' },
		{ "listener-id", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct listener l = { 0 };
	const char *address = NULL, *lid = "";
	int c, mode = 0, rc;

	log_init("relaylisten");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'H': case 'S': case 'p': mode = c; break;
		case 'r': mode = c; address = optarg; break;
		case 'i': lid = optarg; break;
		case 'h': usage(stdout); return EX_OK;
		case 'V': printf("relaylisten %s\n", GW_VERSION); return EX_OK;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (mode == 'H' || mode == 'S')
		return report(mode == 'S');
	if (install_signals() == -1) {
		log_error("cannot install signal handlers", "error=\"%s\"",
		    strerror(errno));
		return EX_OSERR;
	}
	if (mode == 'r')
		return rendezvous(argv[0], address, lid);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialise libcurl", "%s", "");
		return EX_SOFTWARE;
	}
	if (configure(&l) == -1)
		rc = EX_CONFIG;
	else if (mode == 'p')
		rc = probe(&l, lid);
	else {
		log_credential(&l);
		rc = listen_loop(&l);
	}
	identity_free(l.identity);
	ws_ctx_free(l.ctx);
	curl_global_cleanup();
	return rc;
}
