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
 * - The program fills struct scp_server (defaults from scp_defaults(),
 *   options through scp_option()), sets the abstract syntaxes it serves
 *   and a serve callback; scp_run() does the rest.  Every association is
 *   logged (accepted, rejected with the reason, released, aborted) with
 *   the peer address and AE titles, never patient data.
 * - Helpers for serving: scp_respond() answers a request with a bare
 *   status; scp_check_cancel() looks for a C-CANCEL between pending
 *   responses; scp_serve_loop() reads requests until the association ends.
 */
#ifndef GW_SCP_H
#define GW_SCP_H

#include <getopt.h>
#include <sys/types.h>

#include "dimse.h"
#include "err.h"
#include "ul.h"

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
	int max_assoc;
	int artim_s, idle_s, dimse_s;

	/* Set by the program before scp_run(). */
	const char *const *abstract_syntaxes;	/* NULL-ended */
	/* Where the peer may be SCP (C-GET), see struct ul_config. */
	const char *const *scp_role_syntaxes;
	const char *const *scp_role_transfer_syntaxes;
	/* Serve an accepted association; its return is the child's exit. */
	int (*serve)(struct scp_session *x);
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
	int lfd;
};

/* Defaults: bind (from bind_env, else 0.0.0.0), port, AE title, the
 * allowed calling AE titles from allow_env (comma-separated), limit 16,
 * timers 30/300/600 s.  -1 with e set on a bad allow list. */
int scp_defaults(struct scp_server *s, const char *prog,
    const char *bind_env, int port, const char *aet, const char *allow_env,
    struct err *e);

/* The options every server takes, for getopt_long (SCP_OPTIONS inside
 * the program's struct option array) and their handler. */
enum {
	SCP_OPT_BIND = 200, SCP_OPT_PORT, SCP_OPT_AET, SCP_OPT_ANY,
	SCP_OPT_ALLOW, SCP_OPT_MAX, SCP_OPT_ARTIM, SCP_OPT_IDLE,
	SCP_OPT_DIMSE,
};
#define SCP_OPTIONS \
	{ "bind", required_argument, NULL, SCP_OPT_BIND }, \
	{ "port", required_argument, NULL, SCP_OPT_PORT }, \
	{ "aet", required_argument, NULL, SCP_OPT_AET }, \
	{ "any-called-aet", no_argument, NULL, SCP_OPT_ANY }, \
	{ "allow", required_argument, NULL, SCP_OPT_ALLOW }, \
	{ "max-associations", required_argument, NULL, SCP_OPT_MAX }, \
	{ "artim-seconds", required_argument, NULL, SCP_OPT_ARTIM }, \
	{ "idle-seconds", required_argument, NULL, SCP_OPT_IDLE }, \
	{ "dimse-seconds", required_argument, NULL, SCP_OPT_DIMSE }

/* The options' lines for --help. */
extern const char scp_options_help[];

/* Handle one of SCP_OPTIONS: 1 handled, 0 not ours, -1 bad value. */
int scp_option(struct scp_server *s, int c, const char *arg);

/* Parse a comma-separated list of AE titles into s->allowed. */
int scp_parse_allow(struct scp_server *s, const char *list);

/* Install the signal handlers (SIGTERM/SIGINT stop, SIGCHLD wakes,
 * SIGPIPE ignored). */
void scp_signals(void);

/* 1 once SIGTERM or SIGINT arrived. */
int scp_stopping(void);

/* Listen on s->bind_addr:s->port (0, or -1 with e set). */
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

/* Read and dispatch requests until the association ends; dispatch
 * returns -1 when the association is gone. */
void scp_serve_loop(struct scp_session *x,
    int (*dispatch)(struct scp_session *x, struct dimse_msg *m));

/* The peer's "address:port" of a connected socket. */
void scp_peer_name(int fd, char *out, size_t outsz);

#endif
