/*
 * health: the health report and the relay status over a fake data
 * directory: gatewayd's run/ files, spools with jobs of every kind and
 * age, a quarantine, a relay.state, one port that listens and one that
 * does not.  `health --status` prints the relay status of the gateway
 * the environment configures (t/9002 uses it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "ops/ops.h"
#include "tap.h"

static char root[4096];

static void die(const char *what) __attribute__((noreturn));

static void
die(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Write root/<rel> with body, its mtime age seconds ago. */
static void
put_file(const char *rel, const char *body, long age)
{
	char path[8192];
	struct timeval tv[2];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", root, rel);
	if ((f = fopen(path, "w")) == NULL)
		die(path);
	fputs(body, f);
	if (fclose(f) != 0)
		die(path);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= age;
	tv[1] = tv[0];
	if (utimes(path, tv) == -1)
		die("utimes");
}

static void
make_tree(void)
{
	static const char *const stages[] = { "index", "thumb", "relay" };
	static const char *const subs[] = { "tmp", "new", "cur", "failed" };
	char p[8192];
	struct err e = { 0 };

	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 4; j++) {
			snprintf(p, sizeof p, "%s/spool/%s/%s", root, stages[i],
			    subs[j]);
			if (fs_mkdirs(p, &e) == -1)
				die(e.msg);
		}
	snprintf(p, sizeof p, "%s/run", root);
	if (fs_mkdirs(p, &e) == -1)
		die(e.msg);
	snprintf(p, sizeof p, "%s/quarantine", root);
	if (fs_mkdirs(p, &e) == -1)
		die(e.msg);
	snprintf(p, sizeof p, "%s/store", root);
	if (fs_mkdirs(p, &e) == -1)
		die(e.msg);
	snprintf(p, sizeof p, "%s/incoming", root);
	if (fs_mkdirs(p, &e) == -1)
		die(e.msg);
}

/* A TCP socket listening on 127.0.0.1; its port in *port. */
static int
listen_any(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd == -1 || bind(fd, (struct sockaddr *)&a, sizeof a) == -1 ||
	    listen(fd, 8) == -1 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) == -1)
		die("listen");
	*port = ntohs(a.sin_port);
	return fd;
}

/* A port nothing listens on (bound, then closed). */
static int
closed_port(void)
{
	int port, fd = listen_any(&port);

	close(fd);
	return port;
}

/* A pid that is surely dead: a child that exited and was reaped. */
static pid_t
dead_pid(void)
{
	pid_t p = fork();

	if (p == -1)
		die("fork");
	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
	return p;
}

/* A live process whose command line says gatewayd; it ends when *wfd
 * is closed. */
static pid_t
fake_gatewayd(int *wfd)
{
	int fds[2];
	pid_t p;

	if (pipe(fds) == -1 || (p = fork()) == -1)
		die("fork");
	if (p == 0) {
		dup2(fds[0], 0);
		close(fds[0]);
		close(fds[1]);
		execl("/bin/sh", "sh", "-c", "read x", "gatewayd", (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	*wfd = fds[1];
	return p;
}

/* root's member at a '/'-separated path ("spools/relay/new"). */
static json_t *
jget(json_t *j, const char *path)
{
	char key[256];
	const char *p = path, *slash;

	while (j != NULL && *p != '\0') {
		slash = strchr(p, '/');
		snprintf(key, sizeof key, "%.*s", (int)(slash ? slash - p :
		    (long)strlen(p)), p);
		j = json_object_get(j, key);
		p = slash ? slash + 1 : p + strlen(p);
	}
	return j;
}

static long
jint(json_t *j, const char *path)
{
	json_t *v = jget(j, path);

	return json_is_integer(v) ? (long)json_integer_value(v) : -999;
}

static const char *
jstr(json_t *j, const char *path)
{
	const char *s = json_string_value(jget(j, path));

	return s ? s : "(absent)";
}

static int
has_problem(json_t *report, const char *text)
{
	json_t *p;
	size_t i;

	json_array_foreach(json_object_get(report, "problems"), i, p)
		if (strstr(json_string_value(p), text) != NULL)
			return 1;
	return 0;
}

static void
iso_ago(long age, char *out, size_t outsz)
{
	time_t t = time(NULL) - age;

	strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
}

static int
load(struct config *c, int pacs_port, int worklist_port)
{
	char v[16];
	struct err e = { 0 };

	setenv("GATEWAY_DATA_DIR", root, 1);
	snprintf(v, sizeof v, "%d", pacs_port);
	setenv("PACS_PORT", v, 1);
	snprintf(v, sizeof v, "%d", worklist_port);
	setenv("WORKLIST_PORT", v, 1);
	return config_load(c, &e);
}

static json_t *
report(const struct config *c)
{
	struct err e = { 0 };
	json_t *r = NULL;

	if (health_report(c, &r, &e) == -1)
		diag("health_report: %s", e.msg);
	return r;
}

/* text as TAP comment lines. */
static void
show(const char *text)
{
	const char *p = text, *eol;

	while (p != NULL && *p != '\0') {
		eol = strchr(p, '\n');
		diag("%.*s", (int)(eol ? eol - p : (long)strlen(p)), p);
		p = eol ? eol + 1 : NULL;
	}
}

/* The cloud's part of the status screen of the gateway c configures. */
static int
print_cloud(const struct config *c, FILE *f, struct err *e)
{
	struct ops_status *st = malloc(sizeof *st);
	int rc = st == NULL ? -1 : ops_status_read(c, st, e);

	if (rc == 0)
		rc = screen_print_cloud(st, 1, f, e);
	free(st);
	return rc;
}

/* screen_print_cloud into a malloc'd string. */
static char *
status_text(const struct config *c)
{
	struct err e = { 0 };
	char *text = NULL;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		die("open_memstream");
	if (print_cloud(c, f, &e) == -1)
		diag("screen_print_cloud: %s", e.msg);
	fclose(f);
	return text;
}

static void
write_state(const char *name, const char *state, long pid, int restarts)
{
	char rel[256], body[512], pidtext[32] = "";

	if (pid > 0)		/* gatewayd writes an empty pid= otherwise */
		snprintf(pidtext, sizeof pidtext, "%ld", pid);
	snprintf(rel, sizeof rel, "run/%s.state", name);
	snprintf(body, sizeof body, "name=%s\nstate=%s\npid=%s\nrestarts=%d\n"
	    "since=2026-11-28T01:00:00Z\nlast_exit=%s\n", name, state, pidtext,
	    restarts, restarts ? "status=1" : "");
	put_file(rel, body, 0);
}

static void
place_jobs(void)
{
	put_file("spool/relay/new/0001-a", "kind=image\nobject=aa\n", 192);
	put_file("spool/relay/new/0002-b", "kind=image\nobject=bb\n", 50);
	put_file("spool/relay/new/0003-c", "kind=image\nobject=cc\n", 10);
	put_file("spool/relay/new/image-dd", "kind=study.image_received\n"
	    "object=dd\n", 7205);
	put_file("spool/relay/cur/mpps-7", "kind=mpps.status_update\n"
	    "event={}\n", 30);
	put_file("spool/relay/new/0004-x", "kind=other.thing\n", 5);
	put_file("spool/relay/new/0005-y", "object=no-kind\n", 5);
	put_file("spool/relay/tmp/0006-z", "kind=image\n", 5);
	put_file("spool/relay/failed/0000-f", "kind=image_failure\n", 900);
	put_file("spool/relay/failed/0000-f.reason", "HTTP 400\n", 900);
	put_file("spool/index/new/j1", "object=1\n", 1);
	put_file("spool/index/new/j2", "object=2\n", 1);
	put_file("spool/thumb/failed/t1", "object=3\n", 1);
	put_file("spool/thumb/failed/t1.reason", "bad pixels\n", 1);
	put_file("quarantine/20261128-a.dcm", "x", 1);
	put_file("quarantine/20261128-a.dcm.reason", "truncated\n", 1);
	put_file("quarantine/20261128-b.dcm", "x", 1);
	put_file("quarantine/20261128-b.dcm.reason", "truncated\n", 1);
}

static void
check_unhealthy_report(json_t *r, long gw_pid, int pacs, int worklist)
{
	char want[128];

	is_str(jstr(r, "version"), GW_VERSION, "version is the gateway's");
	ok(json_is_false(jget(r, "healthy")), "a gateway with problems is not healthy");
	ok(json_is_true(jget(r, "gatewayd/running")), "gatewayd is seen running");
	is_long(jint(r, "gatewayd/pid"), gw_pid, "... with its pid");
	is_long(jint(r, "ports/pacs/port"), pacs, "the pacs port is reported");
	ok(json_is_true(jget(r, "ports/pacs/answering")), "a listening port answers");
	is_long(jint(r, "ports/worklist/port"), worklist, "the worklist port is reported");
	ok(json_is_false(jget(r, "ports/worklist/answering")), "a closed port does not");
	snprintf(want, sizeof want, "worklist port %d not answering", worklist);
	ok(has_problem(r, want), "... and is a problem");
	ok(!has_problem(r, "pacs port"), "the answering port is no problem");

	is_str(jstr(r, "children/storescp/state"), "running", "a running child with a live pid is running");
	is_long(jint(r, "children/storescp/pid"), (long)getpid(), "... with its pid");
	is_str(jstr(r, "children/dcmindex/state"), "exited", "a running child whose pid is dead has exited");
	is_long(jint(r, "children/dcmindex/restarts"), 2, "... and its restarts are counted");
	is_str(jstr(r, "children/mwlscp/state"), "backoff", "a child in back-off is in backoff");
	ok(json_is_null(jget(r, "children/mwlscp/pid")), "... with no pid");
	is_str(jstr(r, "children/mwlscp/last_exit"), "status=1", "... and its last exit");
	ok(jget(r, "children/dcmthumb") == NULL, "only the children in run/children are listed");
	ok(has_problem(r, "dcmindex not running (exited)"), "an exited child is a problem");
	ok(has_problem(r, "mwlscp not running (backoff)"), "a child in back-off is a problem");
	ok(!has_problem(r, "storescp") && !has_problem(r, "relaylisten"), "running children are not");
}

static void
check_spools(json_t *r)
{
	is_long(jint(r, "spools/index/new"), 2, "index: 2 new jobs");
	is_long(jint(r, "spools/index/failed"), 0, "index: none failed");
	is_long(jint(r, "spools/thumb/failed"), 1, "thumb: 1 failed job, its .reason not counted");
	is_long(jint(r, "spools/relay/new"), 6, "relay: 6 new jobs (tmp/ not counted)");
	is_long(jint(r, "spools/relay/cur"), 1, "relay: 1 claimed job");
	is_long(jint(r, "spools/relay/failed"), 1, "relay: 1 failed job");
	is_long(jint(r, "failed_jobs"), 2, "failed_jobs totals every spool");
	ok(has_problem(r, "2 failed jobs"), "failed jobs are a problem, with their number");
	is_long(jint(r, "quarantine"), 2, "quarantine counts files, not reasons");

	is_long(jint(r, "spools/relay/kinds/image/pending"), 3, "3 image jobs pending");
	ok(jint(r, "spools/relay/kinds/image/oldest_seconds") >= 192 &&
	    jint(r, "spools/relay/kinds/image/oldest_seconds") <= 200,
	    "the oldest image job is 192 s old (mtime)");
	is_long(jint(r, "spools/relay/kinds/study.image_received/pending"), 1,
	    "1 study.image_received pending");
	ok(jint(r, "spools/relay/kinds/study.image_received/oldest_seconds") >= 7205,
	    "... 2 hours old");
	is_long(jint(r, "spools/relay/kinds/mpps.status_update/pending"), 1,
	    "a claimed mpps.status_update job counts as pending");
	is_long(jint(r, "spools/relay/kinds/image_failure/pending"), 0, "no image_failure pending");
	is_long(jint(r, "spools/relay/kinds/image_failure/failed"), 1, "... one failed");
	ok(json_is_null(jget(r, "spools/relay/kinds/image_failure/oldest_seconds")),
	    "... so no oldest age");
	is_long(jint(r, "spools/relay/kinds/other/pending"), 2,
	    "an unexpected kind and a job without kind= are other");
}

static void
check_disk_and_relay(json_t *r, const char *proof)
{
	long long free_b = (long long)json_integer_value(jget(r, "disk/free_bytes"));
	long long total = (long long)json_integer_value(jget(r, "disk/total_bytes"));
	double pct = json_real_value(jget(r, "disk/free_percent"));
	int want_ok = free_b >= STATUS_DISK_MIN_BYTES && pct >= STATUS_DISK_MIN_PERCENT;

	char store[8192];

	snprintf(store, sizeof store, "%s/store", root);
	is_str(jstr(r, "disk/path"), store, "disk: the store's file system is checked");
	ok(total > 0 && free_b >= 0 && free_b <= total, "disk: free and total bytes are sane");
	ok(pct >= 0 && pct <= 100, "disk: free_percent is a percentage");
	ok(json_is_boolean(jget(r, "disk/ok")) &&
	    json_is_true(jget(r, "disk/ok")) == want_ok, "disk: ok means >= 1 GiB and >= 5 %%");
	ok(want_ok == !has_problem(r, "disk:"), "disk: a problem exactly when not ok");

	is_str(jstr(r, "relay/connection"), "backoff", "relay: the listener's connection state");
	is_str(jstr(r, "relay/since"), "2026-11-28T01:02:03Z", "relay: since");
	is_str(jstr(r, "relay/last_proof"), proof, "relay: last traffic proof");
	is_str(jstr(r, "relay/last_error"), "TLS: handshake failed", "relay: last error");
	is_str(jstr(r, "relay/hybrid_connection"), "gw-control", "relay: hybrid connection");
	ok(json_is_true(jget(r, "relay/listener_running")), "relay: the listener's pid is alive");
	ok(has_problem(r, "relay not connected (backoff)"), "relay: not connected is a problem");
}

static void
check_status_text(const struct config *c, const char *proof)
{
	char *t = status_text(c), want[256];

	ok(t != NULL && strstr(t, "relay: backoff since 2026-11-28T01:02:03Z") != NULL,
	    "status: the relay's state and since");
	snprintf(want, sizeof want, "last traffic proof: %s (1m1", proof);
	ok(t != NULL && strstr(t, want) != NULL, "status: the last proof and how long ago");
	ok(t != NULL && strstr(t, "last error: TLS: handshake failed\n") != NULL,
	    "status: the last error");
	ok(t != NULL && strstr(t, "KIND                   PENDING FAILED OLDEST\n") != NULL,
	    "status: a queue table with a header");
	ok(t != NULL && strstr(t, "\nimage                        3      0 3m1") != NULL,
	    "status: image jobs, pending and oldest age");
	ok(t != NULL && strstr(t, "\nimage_failure                0      1 -\n") != NULL,
	    "status: none pending shows -");
	ok(t != NULL && strstr(t, "\nstudy.image_received         1      0 2h00m\n") != NULL,
	    "status: ages in hours and minutes");
	ok(t != NULL && strstr(t, "\nmpps.status_update           1      0 30s\n") != NULL,
	    "status: ages in seconds");
	show(t);
	free(t);
}

/* Every problem is about the disk (none when the disk is fine). */
static int
only_disk_problems(json_t *r)
{
	json_t *p;
	size_t i;

	json_array_foreach(json_object_get(r, "problems"), i, p)
		if (strncmp(json_string_value(p), "disk:", 5) != 0 &&
		    strncmp(json_string_value(p), "storage refusing", 16) != 0)
			return 0;
	return 1;
}

/* Everything up: only this machine's disk can still stand in the way. */
static void
check_healthy(int port)
{
	struct config c;
	json_t *r;
	char proof[64], body[256];

	write_state("dcmindex", "running", (long)getpid(), 2);
	write_state("mwlscp", "running", (long)getpid(), 3);
	unlink(strcat(strcpy(body, root), "/spool/relay/failed/0000-f"));
	unlink(strcat(strcpy(body, root), "/spool/thumb/failed/t1"));
	unlink(strcat(strcpy(body, root), "/quarantine/20261128-a.dcm"));
	unlink(strcat(strcpy(body, root), "/quarantine/20261128-b.dcm"));
	iso_ago(5, proof, sizeof proof);
	snprintf(body, sizeof body, "connection=connected\nsince=2026-11-28T01:02:03Z\n"
	    "last_proof=%s\nlast_error=\nhybrid_connection=gw-control\npid=%ld\n",
	    proof, (long)getpid());
	put_file("run/relay.state", body, 0);
	if (load(&c, port, port) == -1)
		die("config");
	r = report(&c);
	ok(r != NULL, "a report of a working gateway");
	if (!json_is_true(jget(r, "disk/ok")))
		diag("this machine's disk is short: %s", jstr(r, "disk/path"));
	ok(json_is_true(jget(r, "healthy")) == json_is_true(jget(r, "disk/ok")),
	    "it is healthy (unless this machine's disk is short)");
	ok(only_disk_problems(r), "with no problem but the disk's");
	is_long(jint(r, "failed_jobs"), 0, "no failed jobs");
	ok(json_is_true(jget(r, "ports/worklist/answering")), "both ports answer");
	json_decref(r);

	snprintf(body, sizeof body, "connection=connected\npid=%ld\n", (long)dead_pid());
	put_file("run/relay.state", body, 0);
	r = report(&c);
	ok(json_is_false(jget(r, "relay/listener_running")), "a relay.state whose pid is dead");
	ok(has_problem(r, "relaylisten (pid"), "... is a problem even when it says connected");
	json_decref(r);
}

static void
check_not_running(void)
{
	struct config c;
	json_t *r;
	char p[8192], *t;

	snprintf(p, sizeof p, "%s/run/relay.state", root);
	unlink(p);
	snprintf(p, sizeof p, "%s/run/gatewayd.pid", root);
	unlink(p);
	if (load(&c, closed_port(), closed_port()) == -1)
		die("config");
	r = report(&c);
	ok(json_is_false(jget(r, "gatewayd/running")), "without a pid file gatewayd is not running");
	ok(has_problem(r, "gatewayd not running"), "... which is a problem");
	is_str(jstr(r, "children/storescp/state"), "stopped", "... and its children count as stopped");
	ok(!has_problem(r, "storescp not running"), "... without a problem each");
	is_str(jstr(r, "relay/connection"), "not configured",
	    "no relay.state, no AZURE_RELAY_*: the relay is not configured");
	ok(json_object_size(jget(r, "relay")) == 1, "... and nothing else is said of it");
	ok(!has_problem(r, "relay"), "... which is no problem");
	json_decref(r);
	t = status_text(&c);
	ok(t != NULL && strncmp(t, "relay: not configured\n\nKIND ", 28) == 0,
	    "status without relay.state says not configured, then the queue");
	show(t);
	free(t);
	setenv("AZURE_RELAY_NAMESPACE", "relay.test", 1);
	setenv("AZURE_RELAY_HYBRID_CONNECTION", "gw", 1);
	r = report(&c);
	is_str(jstr(r, "relay/connection"), "not running",
	    "configured but no relay.state: the relay is not running");
	json_decref(r);
	unsetenv("AZURE_RELAY_NAMESPACE");
	unsetenv("AZURE_RELAY_HYBRID_CONNECTION");
}

static void
check_ages(void)
{
	static const struct { long long s; const char *want; } cases[] = {
		{ -3, "0s" }, { 0, "0s" }, { 45, "45s" }, { 192, "3m12s" },
		{ 3600, "1h00m" }, { 7265, "2h01m" }, { 90000, "1d01h" },
	};
	char out[32], title[64];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		screen_age(cases[i].s, out, sizeof out);
		snprintf(title, sizeof title, "age %lld s reads %s", cases[i].s,
		    cases[i].want);
		is_str(out, cases[i].want, title);
	}
}

/* health --status: the relay status of the configured gateway on stdout,
 * for t/9002's stand-in relaylisten. */
static int
status_main(void)
{
	struct config c;
	struct err e = { 0 };

	if (config_load(&c, &e) == -1 ||
	    print_cloud(&c, stdout, &e) == -1) {
		fprintf(stderr, "health --status: %s\n", e.msg);
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct config c;
	int pacs, pacs_fd, worklist, gw_fd;
	pid_t gw;
	char proof[64], body[512];
	json_t *r;

	if (argc == 2 && strcmp(argv[1], "--status") == 0)
		return status_main();
	if (argc != 2) {
		fprintf(stderr, "usage: health TMPDIR | --status\n");
		return 2;
	}
	snprintf(root, sizeof root, "%s/var", argv[1]);
	make_tree();
	check_ages();

	pacs_fd = listen_any(&pacs);
	worklist = closed_port();
	gw = fake_gatewayd(&gw_fd);
	snprintf(body, sizeof body, "%ld\n", (long)gw);
	put_file("run/gatewayd.pid", body, 0);
	put_file("run/children", " storescp dcmindex mwlscp relaylisten ../x\n", 0);
	write_state("storescp", "running", (long)getpid(), 0);
	write_state("dcmindex", "running", (long)dead_pid(), 2);
	write_state("mwlscp", "backoff", 0, 3);
	write_state("relaylisten", "running", (long)getpid(), 0);
	place_jobs();
	iso_ago(75, proof, sizeof proof);
	snprintf(body, sizeof body, "connection=backoff\nsince=2026-11-28T01:02:03Z\n"
	    "last_proof=%s\nlast_error=TLS: handshake failed\n"
	    "hybrid_connection=gw-control\npid=%ld\n", proof, (long)getpid());
	put_file("run/relay.state", body, 0);
	if (load(&c, pacs, worklist) == -1)
		die("config");

	r = report(&c);
	ok(r != NULL, "health_report makes a report");
	if (r == NULL)
		return tap_done();
	check_unhealthy_report(r, (long)gw, pacs, worklist);
	check_spools(r);
	check_disk_and_relay(r, proof);
	json_decref(r);
	check_status_text(&c, proof);

	check_healthy(pacs);
	check_not_running();

	close(gw_fd);
	waitpid(gw, NULL, 0);
	close(pacs_fd);
	return tap_done();
}
