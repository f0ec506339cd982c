/*
 * storescp-front: the door of the storage port.
 *
 *   storescp-front [--storescp PATH] [--hook PATH] [--disk-min-free SIZE]
 *                  [scp options]
 *
 * Listens on PACS_PORT (and PACS_TLS_PORT) with the lib/dicomnet scp
 * frame: a process per association.  Each reads the A-ASSOCIATE-RQ
 * without taking it off the socket (ul_request, MSG_PEEK) and decides:
 * a calling AE title or address outside PACS_ALLOWED_AETS/_HOSTS, or a
 * called AE title other than PACS_AET, is refused for good; free space
 * below PACS_DISK_MIN_FREE, or too many associations, for now
 * (A-ASSOCIATE-RJ, the port stays open and modalities retry).  Anything
 * else is handed untouched to dcmtk's storescp --inetd, bit-preserving
 * (+B).
 * storescp writes into a directory of the association's own in incoming/,
 * with .sender locked for as long as it runs (lib/archive incoming), and
 * runs nothing per file: storescp-hook --watch takes each file from
 * there.  With --hook, storescp writes into incoming/ itself and runs
 * the hook per file instead (--exec-on-reception: an exec a file).
 * Over TLS the front ends TLS itself and relays through a socketpair.
 * storescp's own log lines come back through a pipe and are logged with
 * the peer and AE titles.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "archive/archive.h"
#include "dicomnet/dicomnet.h"
#include "cloud/cloud.h"

/* Where storescp finds what the front gives it. */
#define FD_SOCKET	0
#define FD_LOG		3	/* its log lines, to the front */
#define FD_LOG_CONFIG	4	/* its logger configuration */
#define FD_HOOK_LOG	5	/* the hook's stderr: the front's */
#define FD_SENDER	6	/* .sender, locked while storescp runs */

#define RELAY_BUF	(64 * 1024)
#define LINE_MAX_LEN	1024

struct front {
	struct config cfg;
	struct scp_server scp;
	struct senders senders;
	long long min_free;		/* bytes; 0: no disk floor */
	long disk_check_s;		/* GATEWAY_DISK_CHECK_SECONDS */
	time_t next_disk_check;
	struct floor_state floor;	/* run/storage.state */
	const char *storescp;		/* dcmtk's storescp */
	char hook[PATH_MAX];		/* --hook; "": storescp-hook --watch */
	char hook_command[2 * PATH_MAX];
	int log_config_fd;		/* memfd with the logger configuration */
};

enum { OPT_STORESCP = 300, OPT_HOOK, OPT_DISK_MIN_FREE };

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: storescp-front [--storescp PATH] [--hook PATH]\n"
	    "                      [--disk-min-free SIZE] [options]\n"
	    "\n"
	    "The storage port: refuses an association from a calling AE title\n"
	    "or address not allowed, to another called AE title, or below the\n"
	    "disk floor (A-ASSOCIATE-RJ), and hands every other one to dcmtk's\n"
	    "storescp --inetd (bit-preserving), which writes each association's\n"
	    "files into a directory of its own in incoming/ for storescp-hook\n"
	    "--watch.\n"
	    "\n"
	    "  --storescp PATH         dcmtk's storescp (default: storescp on PATH)\n"
	    "  --hook PATH             instead, storescp writes into incoming/ and\n"
	    "                          runs PATH FILE per file\n"
	    "  --disk-min-free SIZE    refuse (transient) below this much free space\n"
	    "                          (PACS_DISK_MIN_FREE, default 2GiB; 0: never)\n"
	    "%s"
	    "  -h, --help              this help\n"
	    "  --version               print the version\n"
	    "\n"
	    "Environment: PACS_AET, PACS_PORT, PACS_BIND, PACS_TLS_PORT,\n"
	    "PACS_ALLOWED_AETS, PACS_ALLOWED_HOSTS, PACS_DISK_MIN_FREE,\n"
	    "GATEWAY_TLS_CERT, _KEY, _CA, GATEWAY_INCOMING_DIR, PACS_STORAGE_PATH,\n"
	    "LOG_LEVEL.  See storescp-front(8).\n", scp_options_help);
}

/* --- settings --- */


static int
defaults(struct front *f, struct err *e)
{
	if (config_load(&f->cfg, e) == -1 ||
	    scp_defaults(&f->scp, "storescp-front", "PACS", f->cfg.pacs_port,
	    f->cfg.pacs_aet, e) == -1 ||
	    senders_from_env(&f->senders, e) == -1)
		return -1;
	if (floor_min_free(&f->min_free, e) == -1 ||
	    config_long("GATEWAY_DISK_CHECK_SECONDS", &f->disk_check_s,
	    e) == -1)
		return -1;
	f->storescp = "storescp";
	return 0;
}

/*
 * With --hook: what storescp runs per file (through /bin/sh -c).
 * storescp pastes the placeholders (#p, #f, #a...) into it, and the
 * peer's AE titles would arrive unquoted: so none of those goes in; the
 * sender reaches the hook through the environment (STORESCP_FRONT_*),
 * and the paths must not contain a quote, a '#' or a newline.  The hook
 * logs to the front's stderr (storescp's own is /dev/null under
 * --inetd).
 */
static int
make_hook_command(struct front *f, struct err *e)
{
	const char *paths[] = { f->hook, f->cfg.incoming_dir };

	if (f->hook[0] == '\0')
		return 0;
	for (size_t i = 0; i < 2; i++)
		if (strpbrk(paths[i], "'#\n") != NULL)
			return err_set(e, EINVAL, "path '%s' must not contain a "
			    "quote, '#' or a newline (it goes into storescp's "
			    "shell command)", paths[i]);
	if (access(f->hook, X_OK) == -1)
		return err_sys(e, "storescp-hook %s (--hook)", f->hook);
	if (snprintf(f->hook_command, sizeof f->hook_command,
	    "exec '%s' '#p/#f' 2>&%d", f->hook, FD_HOOK_LOG) >=
	    (int)sizeof f->hook_command)
		return err_set(e, ENAMETOOLONG, "storescp-hook path too long");
	return 0;
}

/*
 * storescp's logger writes "LEVEL message" lines to FD_LOG.  Never debug:
 * that dumps data sets (patient data).
 */
static int
make_log_config(struct front *f, struct err *e)
{
	const char *lv = getenv("LOG_LEVEL"), *level = "WARN";
	char text[512];
	int n;

	if (lv != NULL && strcasecmp(lv, "debug") == 0)
		level = "INFO";
	else if (lv != NULL && strcasecmp(lv, "error") == 0)
		level = "ERROR";
	n = snprintf(text, sizeof text,
	    "log4cplus.rootLogger = %s, front\n"
	    "log4cplus.appender.front = log4cplus::FileAppender\n"
	    "log4cplus.appender.front.File = /proc/self/fd/%d\n"
	    "log4cplus.appender.front.ImmediateFlush = true\n"
	    "log4cplus.appender.front.layout = log4cplus::PatternLayout\n"
	    "log4cplus.appender.front.layout.ConversionPattern = %%p %%m%%n\n",
	    level, FD_LOG);
	if ((f->log_config_fd = memfd_create("storescp-logger.cfg",
	    MFD_CLOEXEC)) == -1)
		return err_sys(e, "memfd_create");
	return fs_write_all(f->log_config_fd, text, (size_t)n, e);
}

/* --- one association (in its own process) --- */

/* The peer's numeric address, without the port. */
static void
peer_address(int fd, char *out, size_t outsz)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == -1 ||
	    getnameinfo((struct sockaddr *)&ss, sl, out, outsz, NULL, 0,
	    NI_NUMERICHOST) != 0)
		snprintf(out, outsz, "unknown");
}

/*
 * 0 to hand the association on; 1 to refuse it with *r, why in detail.
 * Who first (a permanent answer beats a transient one), then room.
 */
static int
decide(struct front *f, const struct ul_assoc *a, const char *address,
    int busy, struct ul_reject *r, char *detail, size_t detailsz)
{
	struct floor_check room;

	*r = (struct ul_reject){ 1, 1, 0 };
	if (busy) {
		*r = (struct ul_reject){ 2, 3, 2 };
		snprintf(detail, detailsz, "%d associations already (--max-"
		    "associations)", f->scp.max_assoc);
		return 1;
	}
	if (!f->scp.any_called_aet && strcmp(a->called_aet, f->scp.aet) != 0) {
		r->reason = 7;
		snprintf(detail, detailsz, "this port is %s (PACS_AET)",
		    f->scp.aet);
		return 1;
	}
	if (senders_refusal(&f->senders, a->calling_aet, address, detail,
	    detailsz) != NULL) {
		r->reason = 3;
		return 1;
	}
	if (floor_check(&f->cfg, f->min_free, &room)) {
		*r = (struct ul_reject){ 2, 3, 2 };
		snprintf(detail, detailsz, "free space below PACS_DISK_MIN_FREE "
		    "on %.200s: %lld bytes free, floor %lld", room.path,
		    room.free_bytes, f->min_free);
		return 1;
	}
	return 0;
}

/* The association's log fields: peer, calling and called AE titles. */
static void
who(const struct scp_session *x, const struct ul_assoc *a, char *out,
    size_t outsz)
{
	char calling[40], called[40];

	snprintf(out, outsz, "peer=%s calling_aet=%s called_aet=%s", x->peer,
	    log_quote(a->calling_aet, calling, sizeof calling),
	    log_quote(a->called_aet, called, sizeof called));
}

static int
refuse(struct scp_session *x, struct ul_assoc *a, const struct ul_reject *r,
    const char *detail)
{
	char fields[200], q[600];
	struct err e = { 0 };

	who(x, a, fields, sizeof fields);
	if (ul_refuse(a, r, &e) == -1 && e.code != UL_E_REJECTED)
		log_warn("association refused; the answer failed", "%s "
		    "error=%s", fields, log_quote(e.msg, q, sizeof q));
	log_warn("association refused", "%s result=%s reason=\"%s\" "
	    "detail=%s", fields, ul_reject_result(r), ul_reject_reason(r),
	    log_quote(detail, q, sizeof q));
	return EX_OK;
}

/* Move fd to a descriptor above the ones storescp gets. */
static int
lift(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 10);
}

/*
 * In the child: storescp --inetd on sock, its log to logw, the sender in
 * the environment.  TERM, INT and HUP ignored (inherited by storescp's
 * hooks, see storescp-hook's detach): storage ends with its association,
 * or by KILL.
 */
static void
exec_storescp(struct front *f, const struct ul_assoc *a, const char *address,
    int sock, int logw, int tls, const char *dir, int sender)
{
	const int from[] = { lift(sock), lift(logw), lift(f->log_config_fd),
	    lift(STDERR_FILENO), sender == -1 ? -1 : lift(sender) };
	const int to[] = { FD_SOCKET, FD_LOG, FD_LOG_CONFIG, FD_HOOK_LOG,
	    FD_SENDER };
	const size_t nfd = sender == -1 ? 4 : 5;
	char config[64];
	sigset_t none;

	for (size_t i = 0; i < nfd; i++)
		if (from[i] == -1 || dup2(from[i], to[i]) == -1)
			_exit(EX_OSERR);
	close_range(to[nfd - 1] + 1, ~0u, 0);
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setenv("STORESCP_FRONT_CALLING_AET", a->calling_aet, 1) == -1 ||
	    setenv("STORESCP_FRONT_CALLED_AET", a->called_aet, 1) == -1 ||
	    setenv("STORESCP_FRONT_PEER", address, 1) == -1)
		_exit(EX_OSERR);
	/* storescp sets TCP_NODELAY when told, and fails where it cannot
	 * (the socketpair): the front set it on the TCP socket already. */
	if (tls)
		unsetenv("TCP_NODELAY");
	snprintf(config, sizeof config, "/proc/self/fd/%d", FD_LOG_CONFIG);
	/* With --hook, into incoming/ itself and the hook run per file;
	 * without, the list ends before --exec-on-reception. */
	char *argv[] = { (char *)f->storescp, "--inetd", "-lc", config,
	    "-aet", f->scp.aet, "-od", f->hook[0] != '\0' ?
	    f->cfg.incoming_dir : (char *)dir, "+B", "+uf", "-pm", "+xa",
	    "-pdu", "131072", "-dhl", f->hook[0] != '\0' ?
	    "--exec-on-reception" : NULL, f->hook_command, NULL };

	execvp(f->storescp, argv);
	_exit(EX_UNAVAILABLE);
}

/* storescp's log lines, as they come, in our log. */
struct relog {
	char buf[LINE_MAX_LEN];
	size_t len;
	enum log_level level;
	const char *fields;
};

static void
relog_line(struct relog *g, char *line)
{
	static const struct {
		const char *name;
		enum log_level level;
	} levels[] = {
		{ "FATAL ", LOG_ERROR }, { "ERROR ", LOG_ERROR },
		{ "WARN ", LOG_WARN }, { "INFO ", LOG_INFO },
		{ "DEBUG ", LOG_DEBUG }, { "TRACE ", LOG_DEBUG },
	};

	for (char *c = line; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		size_t n = strlen(levels[i].name);

		if (strncmp(line, levels[i].name, n) == 0) {
			g->level = levels[i].level;
			line += n;
			break;
		}
	}
	if (*line != '\0')	/* else: a continuation, at its level */
		log_msg(g->level, line, "%s", g->fields);
}

/* Read what is there; each whole line (or a too long one) is logged.
 * 0 at end of file. */
static ssize_t
relog_read(struct relog *g, int fd)
{
	ssize_t n = read(fd, g->buf + g->len, sizeof g->buf - 1 - g->len);
	char *nl;

	if (n <= 0)
		return n == -1 && (errno == EINTR || errno == EAGAIN) ? 1 : 0;
	g->len += (size_t)n;
	g->buf[g->len] = '\0';
	while ((nl = strchr(g->buf, '\n')) != NULL ||
	    g->len == sizeof g->buf - 1) {
		size_t take = nl != NULL ? (size_t)(nl - g->buf) + 1 : g->len;

		if (nl != NULL)
			*nl = '\0';
		relog_line(g, g->buf);
		memmove(g->buf, g->buf + take, g->len - take);
		g->len -= take;
		g->buf[g->len] = '\0';
	}
	return n;
}

/* TLS: the bytes between the peer and storescp's socketpair. */
struct relay {
	struct ul_assoc *a;		/* the TLS side */
	int sp;				/* our end of the socketpair */
	int up_open, down_open;		/* peer->storescp, storescp->peer */
	int idle_ms;
};

/* Peer to storescp: what TLS has for us. */
static void
relay_up(struct relay *r, struct scp_session *x)
{
	static uint8_t buf[RELAY_BUF];
	struct err e = { 0 }, we = { 0 };
	ssize_t n;

	n = tls_read(r->a->tls, buf, sizeof buf, mono_ms() + r->idle_ms, &e);
	if (n == -1) {
		if (e.code != TLS_E_CLOSED)
			log_warn("TLS connection failed", "peer=%s error=\"%s\"",
			    x->peer, e.msg);
		r->up_open = 0;
		shutdown(r->sp, SHUT_WR);
		return;
	}
	if (fs_write_all(r->sp, buf, (size_t)n, &we) == -1) {
		r->up_open = 0;	/* storescp is gone */
		shutdown(r->sp, SHUT_WR);
	}
}

/* storescp to the peer. */
static void
relay_down(struct relay *r, struct scp_session *x)
{
	static uint8_t buf[RELAY_BUF];
	struct err e = { 0 };
	ssize_t n = read(r->sp, buf, sizeof buf);

	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		r->down_open = 0;	/* storescp closed: so do we */
		tls_close(r->a->tls);
		r->a->tls = NULL;
		shutdown(r->a->fd, SHUT_WR);
		return;
	}
	if (tls_write(r->a->tls, buf, (size_t)n, mono_ms() + r->idle_ms,
	    &e) == -1) {
		log_warn("TLS connection failed", "peer=%s error=\"%s\"",
		    x->peer, e.msg);
		r->down_open = 0;
		r->up_open = 0;
		shutdown(r->sp, SHUT_RDWR);
	}
}

/*
 * Until storescp has exited: its log lines, and over TLS the bytes both
 * ways.  Its wait status and resource use in *status, *ru.
 */
static void
follow(struct scp_session *x, pid_t pid, int logfd, struct relay *r,
    int *status, struct rusage *ru)
{
	struct relog g = { .level = LOG_INFO };
	struct pollfd p[3];
	char fields[200];
	int log_open = 1;

	who(x, r->a, fields, sizeof fields);
	g.fields = fields;
	log_init("storescp");	/* its lines are storescp's */
	for (;;) {
		if (wait4(pid, status, WNOHANG, ru) == pid)
			break;
		p[0] = (struct pollfd){ log_open ? logfd : -1, POLLIN, 0 };
		p[1] = (struct pollfd){ r->up_open ? r->a->fd : -1, POLLIN, 0 };
		p[2] = (struct pollfd){ r->down_open ? r->sp : -1, POLLIN, 0 };
		if (r->up_open && tls_pending(r->a->tls))
			relay_up(r, x);
		else if (poll(p, 3, 200) <= 0)
			continue;
		if (p[0].revents != 0 && relog_read(&g, logfd) == 0)
			log_open = 0;
		if (r->up_open && p[1].revents != 0)
			relay_up(r, x);
		if (r->down_open && p[2].revents != 0)
			relay_down(r, x);
	}
	/* What it wrote before it exited (its hooks may hold the pipe
	 * open a moment longer: only what is there now). */
	fcntl(logfd, F_SETFL, O_NONBLOCK);
	while (log_open && relog_read(&g, logfd) > 0 && g.len < sizeof g.buf)
		;
	if (g.len > 0)
		relog_line(&g, g.buf);
	log_init("storescp-front");
}

static int
hand_over(struct front *f, struct scp_session *x, struct ul_assoc *a,
    const char *address, int tls, const char *dir, int sender)
{
	struct relay r = { a, -1, 0, 0, f->scp.idle_s * 1000 };
	struct err e = { 0 };
	struct rusage ru;
	uint8_t *rq = NULL;
	size_t rqlen = 0;
	int logp[2], sp[2] = { -1, -1 }, status = 0;
	char fields[200];
	pid_t pid;

	who(x, a, fields, sizeof fields);
	if (pipe2(logp, O_CLOEXEC) == -1 || (tls &&
	    (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1 ||
	    ul_request_pdu(a, &rq, &rqlen, &e) == -1))) {
		log_error("cannot hand the association on", "%s error=\"%s\"",
		    fields, e.msg[0] ? e.msg : strerror(errno));
		ul_abort(a, 2, 0);
		return EX_OSERR;
	}
	if ((pid = fork()) == -1) {
		log_error("fork failed", "%s error=\"%s\"", fields,
		    strerror(errno));
		ul_abort(a, 2, 0);
		free(rq);
		return EX_OSERR;
	}
	if (pid == 0)
		exec_storescp(f, a, address, tls ? sp[1] : a->fd, logp[1], tls,
		    dir, sender);
	close(logp[1]);
	if (sender != -1)
		close(sender);	/* storescp holds the lock now, alone */
	log_info("association handed to storescp", "%s storescp_pid=%ld "
	    "tls=%d", fields, (long)pid, tls);
	if (tls) {
		close(sp[1]);
		r.sp = sp[0];
		r.up_open = r.down_open = 1;
		/* storescp reads the request we took off the TLS stream. */
		if (fs_write_all(r.sp, rq, rqlen, &e) == -1)
			r.up_open = 0;
	} else {
		close(a->fd);	/* storescp has it */
		a->fd = -1;
	}
	free(rq);
	follow(x, pid, logp[0], &r, &status, &ru);
	close(logp[0]);
	if (r.sp != -1)
		close(r.sp);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		log_info("storescp done", "%s peak_rss_kb=%ld", fields,
		    ru.ru_maxrss);
	else
		log_warn("storescp failed", "%s %s=%d peak_rss_kb=%ld", fields,
		    WIFSIGNALED(status) ? "signal" : "status",
		    WIFSIGNALED(status) ? WTERMSIG(status) :
		    WEXITSTATUS(status), ru.ru_maxrss);
	return EX_OK;
}

/* The cloud hears of it: the relay job alert-disk_floor (a gateway.alert
 * event, raised or cleared; a waiting one is replaced), when the relay's
 * events are configured. */
static void
tell_cloud(struct front *f)
{
	struct event_alert a = { "disk_floor", f->floor.refusing, "critical",
	    f->floor.refusing ? "free space below PACS_DISK_MIN_FREE: storage "
	    "refuses new associations" : "free space above the disk floor: "
	    "storage accepts images", f->floor.free_bytes, f->cfg.pacs_aet,
	    f->cfg.pacs_port, NULL, NULL };
	char dir[PATH_MAX], q[512];
	struct spool relay;
	struct err e = { 0 };

	if (!config_cloud_events())
		return;
	if (config_spool_path(&f->cfg, "relay", dir, sizeof dir, &e) == -1 ||
	    spool_open(&relay, dir, 0, &e) == -1) {
		log_error("cannot queue the disk floor alert", "error=%s",
		    log_quote(e.msg, q, sizeof q));
		return;
	}
	if (event_alert_queue(&relay, "alert-disk_floor", &a, &e) == -1)
		log_error("cannot queue the disk floor alert", "error=%s",
		    log_quote(e.msg, q, sizeof q));
	spool_close(&relay);
}

/*
 * The disk floor as the front sees it, every GATEWAY_DISK_CHECK_SECONDS
 * (lib/archive floor_watch): run/storage.state for the status and the
 * alert (gatewayctl alerts), and a line when it changes.  Each
 * association is still decided by the free space at its start.
 */
static void
watch_floor(struct front *f)
{
	struct err e = { 0 };
	int first = !f->floor.present;

	if (f->min_free <= 0 || time(NULL) < f->next_disk_check)
		return;
	f->next_disk_check = time(NULL) + f->disk_check_s;
	if (floor_watch(&f->cfg, f->min_free, &f->floor) == 0)
		return;
	/* no run/: run by hand, unsupervised, no one to tell */
	if (floor_state_write(f->cfg.data_dir, &f->floor, &e) == -1 &&
	    e.code != ENOENT)
		log_warn("cannot write run/storage.state", "error=\"%s\"",
		    e.msg);
	if (f->floor.refusing)
		log_warn("free space below PACS_DISK_MIN_FREE: storage refuses "
		    "new associations", "path=%s free_bytes=%lld "
		    "min_free_bytes=%lld", f->floor.path, f->floor.free_bytes,
		    f->min_free);
	else if (!first)
		log_info("free space back above the floor: storage accepts "
		    "new associations", "path=%s free_bytes=%lld "
		    "min_free_bytes=%lld", f->floor.path, f->floor.free_bytes,
		    f->min_free);
	if (f->floor.refusing || !first)
		tell_cloud(f);
}

static void
tick(struct scp_server *scp)
{
	watch_floor(scp->arg);
}

/*
 * The association's own directory in incoming/ (lib/archive incoming):
 * the descriptor of its locked .sender, for storescp; -1 with --hook
 * (no directory); -2 when it cannot be made: refused for now (*r).
 */
static int
assoc_dir(struct front *f, const struct ul_assoc *a, const char *address,
    char *dir, size_t dirsz, struct ul_reject *r, char *detail,
    size_t detailsz)
{
	struct incoming_sender s;
	struct err e = { 0 };
	int fd;

	if (f->hook[0] != '\0')
		return -1;
	snprintf(s.calling_aet, sizeof s.calling_aet, "%s", a->calling_aet);
	snprintf(s.called_aet, sizeof s.called_aet, "%s", a->called_aet);
	snprintf(s.peer, sizeof s.peer, "%s", address);
	if ((fd = incoming_begin(f->cfg.incoming_dir, &s, dir, dirsz,
	    &e)) >= 0)
		return fd;
	*r = (struct ul_reject){ 2, 3, 2 };
	snprintf(detail, detailsz, "cannot make the association's directory "
	    "in incoming/: %.200s", e.msg);
	return -2;
}

/* The scp frame's take: one connection, in its own process. */
static int
take(struct scp_session *x, int fd, struct tls_conn *tls, int busy)
{
	struct front *f = x->srv->arg;
	struct ul_config uc = { 0 };
	struct ul_assoc *a = NULL;
	struct ul_reject r;
	struct err e = { 0 };
	char address[64], detail[300], q[600], dir[PATH_MAX] = "";
	int rc, sender = -1;

	/* Once storescp has the association, it ends with it (or by KILL):
	 * the front only follows. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	peer_address(fd, address, sizeof address);
	uc.tls = tls;
	uc.artim_ms = f->scp.artim_s * 1000;
	uc.idle_ms = f->scp.idle_s * 1000;
	if (ul_request(&a, fd, &uc, tls == NULL, &e) == -1) {
		if (e.code == UL_E_CLOSED)	/* no byte: a port check */
			log_debug("closed before an association", "peer=%s",
			    x->peer);
		else
			log_warn("association aborted", "peer=%s error=%s",
			    x->peer, log_quote(e.msg, q, sizeof q));
		ul_free(a);
		return EX_OK;
	}
	if (decide(f, a, address, busy, &r, detail, sizeof detail) ||
	    (sender = assoc_dir(f, a, address, dir, sizeof dir, &r, detail,
	    sizeof detail)) == -2)
		rc = refuse(x, a, &r, detail);
	else
		rc = hand_over(f, x, a, address, tls != NULL, dir, sender);
	ul_free(a);
	return rc;
}

/* The front's own options, and the allow-lists it applies itself (the
 * frame's would close on a refused host instead of refusing it). */
static int
own_option(void *arg, int c, const char *value)
{
	struct front *f = arg;
	long long bytes;

	switch (c) {
	case OPT_STORESCP:
		f->storescp = value;
		return 1;
	case OPT_HOOK:
		return snprintf(f->hook, sizeof f->hook, "%s", value) <
		    (int)sizeof f->hook ? 1 : -1;
	case OPT_DISK_MIN_FREE:
		if (settings_parse_size(value, &bytes) == -1)
			return -1;
		f->min_free = bytes;
		return 1;
	case SCP_OPT_ALLOW:
		return (f->senders.naets = senders_parse_aets(f->senders.aets,
		    SENDERS_MAX_AETS, value)) == -1 ? -1 : 1;
	case SCP_OPT_ALLOW_HOSTS:
		return netallow_parse(&f->senders.hosts, value) == 0 ? 1 : -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option own[] = {
		{ "storescp", required_argument, NULL, OPT_STORESCP },
		{ "hook", required_argument, NULL, OPT_HOOK },
		{ "disk-min-free", required_argument, NULL, OPT_DISK_MIN_FREE },
		{ NULL, 0, NULL, 0 },
	};
	static struct front f;
	struct err e = { 0 };
	char q[600], more[PATH_MAX + 128];
	int rc;

	log_init("storescp-front");
	if (defaults(&f, &e) == -1) {
		log_error("bad configuration", "error=%s",
		    log_quote(e.msg, q, sizeof q));
		return EX_CONFIG;
	}
	log_init("storescp-front");	/* LOG_LEVEL may come from gateway.env */
	if ((rc = scp_command_line(&f.scp, argc, argv, own, own_option, &f,
	    usage)) != -1)
		return rc;
	/* The door answers refused hosts itself, with A-ASSOCIATE-RJ: the
	 * frame must not close on them first. */
	f.scp.hosts.n = 0;
	if (fs_mkdirs(f.cfg.incoming_dir, &e) == -1 ||
	    make_hook_command(&f, &e) == -1 || make_log_config(&f, &e) == -1) {
		log_error("bad configuration", "error=%s",
		    log_quote(e.msg, q, sizeof q));
		return EX_CONFIG;
	}
	f.scp.take = take;
	f.scp.tick = tick;
	f.scp.arg = &f;
	snprintf(more, sizeof more, "allowed_aets=%d allowed_hosts=%d "
	    "disk_min_free=%lld storescp=%s", f.senders.naets,
	    f.senders.hosts.n, f.min_free, log_quote(f.storescp, q, sizeof q));
	if ((rc = scp_start(&f.scp, more)) != 0)
		return rc;
	return scp_run(&f.scp);
}
