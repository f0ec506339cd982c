#include "ops/ops.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "qr/qr.h"
#include "queue/queue.h"
#include "archive/archive.h"

#define STATE_FILE_MAX	65536	/* run/NAME.state, run/children */
#define KIND_PEEK	4096	/* the kind= line is near a job's start */
#define KIND_MAX	64

static const char *const known_kinds[] = {
	"image", "image_failure", "study.image_received", "mpps.status_update",
	"gateway.alert",
};
static const char *const stages[] = { "index", "thumb", "relay" };
static const char *const default_children = "storescp dcmindex dcmthumb mwlscp";

/* The report being built; problems are collected on the way. */
struct report {
	const struct config *c;
	json_t *root;
	json_t *problems;	/* borrowed: root holds it */
	json_t *checks;		/* borrowed: production's checks */
	time_t now;
	int gatewayd_up;
	long long failed_jobs;
};

/* ------------------------------------------------------------ helpers */

/* An ISO 8601 time (2026-11-28T01:29:00[.123](Z|+01:00)) as Unix time. */
static int
parse_iso8601(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	int sign, hh, mm;

	if (p == NULL)
		return -1;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			;
	*out = timegm(&tm);
	if (*p == 'Z' || *p == '\0')
		return p[*p == 'Z'] == '\0' ? 0 : -1;
	if ((*p != '+' && *p != '-') || sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
		return -1;
	sign = *p == '+' ? 1 : -1;
	*out -= sign * (hh * 3600 + mm * 60);
	return 0;
}

static int
oom(struct err *e)
{
	return err_set(e, ENOMEM, "health report: out of memory");
}

/* o[k] = v, taking v's reference; -1 when v is NULL or o refuses it. */
static int
put(json_t *o, const char *k, json_t *v)
{
	if (v == NULL)
		return -1;
	return json_object_set_new(o, k, v);
}

/* A JSON string of n bytes; bytes that are not valid UTF-8 become '?'. */
static json_t *
jstrn(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	char *copy;

	if (j != NULL || (copy = malloc(n + 1)) == NULL)
		return j;
	for (size_t i = 0; i < n; i++)
		copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
	j = json_stringn(copy, n);
	free(copy);
	return j;
}

static json_t *
jstr(const char *s)
{
	return jstrn(s, strlen(s));
}

/* s, or "" when it is NULL. */
static const char *
nz(const char *s)
{
	return s ? s : "";
}

/* A string member of o, or "" when absent. */
static const char *
sget(const json_t *o, const char *k)
{
	return nz(json_string_value(json_object_get(o, k)));
}

static int
problem(struct report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
problem(struct report *r, const char *fmt, ...)
{
	char line[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	return json_array_append_new(r->problems, jstr(line));
}

static int
make_path(char *out, size_t outsz, struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
make_path(char *out, size_t outsz, struct err *e, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outsz, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= outsz)
		return err_set(e, ENAMETOOLONG, "health report: path too long");
	return 0;
}

static int
is_reason(const char *name)
{
	size_t n = strlen(name);

	return n >= 7 && strcmp(name + n - 7, ".reason") == 0;
}

/* A pid from text ("812", "812\n"), or 0 when there is none. */
static long
parse_pid(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(nz(s), &end, 10);
	if (errno != 0 || end == s || v <= 0 || (*end != '\0' && !isspace(
	    (unsigned char)*end)))
		return 0;
	return v;
}

static int
pid_alive(long pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* pid is alive and (where /proc tells) a gatewayd, not a recycled pid. */
static int
gatewayd_alive(long pid)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	if (!pid_alive(pid))
		return 0;
	snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 1;
	for (ssize_t i = 0; i < n; i++)
		buf[i] = buf[i] == '\0' ? ' ' : buf[i];
	buf[n] = '\0';
	return strstr(buf, "gatewayd") != NULL;
}

/* ------------------------------------------------------ key=value files */

static int
kv_line(json_t *o, const char *p, size_t len)
{
	const char *eq = memchr(p, '=', len);
	size_t klen = eq ? (size_t)(eq - p) : 0;
	char key[64];

	if (klen == 0 || klen >= sizeof key)
		return 0;
	for (size_t i = 0; i < klen; i++)
		if (!islower((unsigned char)p[i]) && !isdigit((unsigned char)p[i])
		    && p[i] != '_')
			return 0;
	memcpy(key, p, klen);
	key[klen] = '\0';
	if (json_object_get(o, key) != NULL)
		return 0;	/* the first line wins, as gatewayd reads it */
	return put(o, key, jstrn(eq + 1, len - klen - 1));
}

/* key=value lines as a JSON object of strings. */
static json_t *
kv_parse(const char *text)
{
	json_t *o = json_object();
	const char *p = text, *eol;
	size_t len;

	while (o != NULL && *p != '\0') {
		eol = strchr(p, '\n');
		len = eol ? (size_t)(eol - p) : strlen(p);
		if (kv_line(o, p, len) == -1) {
			json_decref(o);
			return NULL;
		}
		p += len + (eol != NULL);
	}
	return o;
}

/* A key=value file as an object in *out; *out NULL when it cannot be read
 * (absent: a finding for the caller, not an error). */
static int
read_state(const char *path, json_t **out, struct err *e)
{
	struct err fe = { 0 };
	char *text;

	*out = NULL;
	if (fs_read_small(path, STATE_FILE_MAX, &text, NULL, &fe) == -1)
		return 0;
	*out = kv_parse(text);
	free(text);
	return *out ? 0 : oom(e);
}

/* ------------------------------------------------------------ gatewayd */

static int
add_gatewayd(struct report *r, struct err *e)
{
	char path[PATH_MAX], *text = NULL;
	struct err fe = { 0 };
	long pid = 0;
	json_t *g;

	if (make_path(path, sizeof path, e, "%s/run/gatewayd.pid",
	    r->c->data_dir) == -1)
		return -1;
	if (fs_read_small(path, 64, &text, NULL, &fe) == 0)
		pid = parse_pid(text);
	free(text);
	r->gatewayd_up = gatewayd_alive(pid);
	g = json_pack("{s:b, s:o}", "running", r->gatewayd_up, "pid",
	    r->gatewayd_up ? json_integer(pid) : json_null());
	if (put(r->root, "gatewayd", g) == -1 ||
	    (!r->gatewayd_up && problem(r, "gatewayd not running") == -1))
		return oom(e);
	return 0;
}

/* -------------------------------------------------------------- ports */

static long long
monotonic_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Wait until the connect in progress on fd completes: 0 connected, else
 * the errno (ETIMEDOUT when it did not finish in time). */
static int
connect_finished(int fd, int timeout_ms)
{
	long long deadline = monotonic_ms() + timeout_ms, left;
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int rc, soerr = 0;

	while ((left = deadline - monotonic_ms()) > 0) {
		rc = poll(&p, 1, (int)left);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc != 1)
			return rc == -1 ? errno : ETIMEDOUT;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
			return errno;
		return soerr;
	}
	return ETIMEDOUT;
}

/*
 * Does something accept TCP connections on host:port (an IPv4 address;
 * NULL, empty or 0.0.0.0: 127.0.0.1)?  0 yes, else the errno.
 */
static int
port_answering(const char *host, int port, int timeout_ms)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd, rc = 0;

	if (host != NULL && *host != '\0' && strcmp(host, "0.0.0.0") != 0 &&
	    inet_pton(AF_INET, host, &a.sin_addr) != 1)
		return EINVAL;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof a) == -1)
		rc = errno == EINPROGRESS ? connect_finished(fd, timeout_ms) :
		    errno;
	close(fd);
	return rc;
}

/* ports.NAME {port, answering[, error]} and checks.CHECK {ok[, error]}
 * (production's: PRODUCTION.md §5). */
static int
add_port(struct report *r, json_t *ports, const char *name,
    const char *check, const char *host, int port)
{
	int why = port_answering(host, port, HEALTH_PORT_TIMEOUT_MS);
	json_t *p, *c;

	if (put(ports, name, p = json_pack("{s:i, s:b}", "port", port,
	    "answering", why == 0)) == -1 ||
	    put(r->checks, check, c = json_pack("{s:b}", "ok", why == 0)) == -1)
		return -1;
	if (why == 0)
		return 0;
	if (put(p, "error", jstr(strerror(why))) == -1 ||
	    put(c, "error", jstr(strerror(why))) == -1)
		return -1;
	return problem(r, "%s port %d not answering", name, port);
}

static int
add_ports(struct report *r, struct err *e)
{
	json_t *ports = json_object();

	if (put(r->root, "ports", ports) == -1 ||
	    add_port(r, ports, "pacs", "pacs_port", NULL,
	    r->c->pacs_port) == -1 ||
	    add_port(r, ports, "worklist", "mwl_port", getenv("WORKLIST_BIND"),
	    r->c->worklist_port) == -1)
		return oom(e);
	return 0;
}

/* ----------------------------------------------------------- children */

static int
valid_child_name(const char *s, size_t n)
{
	if (n == 0 || n >= 64 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("_.-", s[i]) == NULL)
			return 0;
	return 1;
}

/* One child's entry from run/<name>.state, as gatewayd status reads it. */
static json_t *
child_entry(const struct report *r, const json_t *st)
{
	const char *state = "stopped", *restarts = sget(st, "restarts");
	long pid = 0;

	if (r->gatewayd_up && st != NULL) {
		state = sget(st, "state");
		pid = parse_pid(sget(st, "pid"));
		if (strcmp(state, "running") == 0 && !pid_alive(pid))
			state = "exited";
	}
	return json_pack("{s:o, s:o, s:o, s:o, s:o}", "state", jstr(state),
	    "pid", pid > 0 ? json_integer(pid) : json_null(),
	    "restarts", *restarts ? json_integer(atoll(restarts)) : json_null(),
	    "since", jstr(sget(st, "since")),
	    "last_exit", jstr(sget(st, "last_exit")));
}

static int
add_child(struct report *r, json_t *children, const char *name,
    struct err *e)
{
	char path[PATH_MAX];
	json_t *st, *child;
	const char *state;

	if (make_path(path, sizeof path, e, "%s/run/%s.state", r->c->data_dir,
	    name) == -1 || read_state(path, &st, e) == -1)
		return -1;
	child = child_entry(r, st);
	json_decref(st);
	if (put(children, name, child) == -1)
		return oom(e);
	state = sget(child, "state");
	if (r->gatewayd_up && strcmp(state, "running") != 0 &&
	    problem(r, "%s not running (%s)", name, *state ? state : "no state")
	    == -1)
		return oom(e);
	return 0;
}

/* The supervised children: run/children, else gatewayd's first four. */
static char *
child_names(const struct report *r)
{
	char path[PATH_MAX], *text = NULL;
	struct err fe = { 0 };

	if (make_path(path, sizeof path, &fe, "%s/run/children",
	    r->c->data_dir) == 0 &&
	    fs_read_small(path, STATE_FILE_MAX, &text, NULL, &fe) == 0 &&
	    strspn(text, " \t\n") < strlen(text))
		return text;
	free(text);
	return strdup(default_children);
}

static int
add_children(struct report *r, struct err *e)
{
	json_t *children = json_object();
	char *names = child_names(r), *p, name[64];
	size_t n;
	int rc = 0;

	if (names == NULL || put(r->root, "children", children) == -1) {
		free(names);
		return oom(e);
	}
	for (p = names; rc == 0 && *(p += strspn(p, " \t\n")) != '\0'; p += n) {
		n = strcspn(p, " \t\n");
		if (!valid_child_name(p, n))
			continue;
		memcpy(name, p, n);
		name[n] = '\0';
		rc = add_child(r, children, name, e);
	}
	free(names);
	return rc;
}

/* ------------------------------------------------------------- spools */

static int
add_spool(struct report *r, json_t *spools, const char *stage,
    struct err *e)
{
	static const char *const subs[] = { "new", "cur", "failed" };
	char dir[PATH_MAX];
	struct spool s;
	struct err se = { 0 };
	json_t *o = json_object();
	int n, rc = 0;

	if (config_spool_path(r->c, stage, dir, sizeof dir, e) == -1)
		return -1;
	if (put(spools, stage, o) == -1)
		return oom(e);
	if (spool_open(&s, dir, 0, &se) == -1)
		return problem(r, "spool %s: %s", stage, se.msg) == -1 ? oom(e) : 0;
	for (size_t i = 0; rc == 0 && i < 3; i++) {
		if ((n = spool_count(&s, subs[i], &se)) == -1)
			rc = problem(r, "spool %s: %s", stage, se.msg);
		else
			rc = put(o, subs[i], json_integer(n));
		if (n > 0 && i == 2)
			r->failed_jobs += n;
	}
	spool_close(&s);
	return rc == -1 ? oom(e) : 0;
}

/* Per job kind in the relay spool: pending, failed, oldest_seconds. */
static json_t *
kind_entry(void)
{
	return json_pack("{s:i, s:i, s:n}", "pending", 0, "failed", 0,
	    "oldest_seconds");
}

/* What the queue shows of one job (never its patient data). */
struct job_peek {
	char kind[KIND_MAX];
	char object[80];
	char attempts[16];
	char error[HEALTH_ERROR_MAX];
};

/* The kind=, object=, attempts= and error= of the job at path; kind is
 * "unknown" when the job has none. */
static void
job_peek(const char *path, struct job_peek *j)
{
	char buf[KIND_PEEK], *eol;
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	memset(j, 0, sizeof *j);
	snprintf(j->kind, sizeof j->kind, "unknown");
	if (fd != -1) {
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
	}
	if (n <= 0)
		return;
	buf[n] = '\0';
	/* A line cut at the end of what was read is not a whole value. */
	if ((size_t)n == sizeof buf - 1 && (eol = strrchr(buf, '\n')) != NULL)
		eol[1] = '\0';
	if (spool_job_get(buf, "kind", j->kind, sizeof j->kind) == -1 ||
	    !valid_child_name(j->kind, strlen(j->kind)))
		snprintf(j->kind, sizeof j->kind, "unknown");
	if (spool_job_get(buf, "object", j->object, sizeof j->object) == -1)
		j->object[0] = '\0';
	if (spool_job_get(buf, "attempts", j->attempts,
	    sizeof j->attempts) == -1)
		j->attempts[0] = '\0';
	if (spool_job_get(buf, "error", j->error, sizeof j->error) == -1)
		j->error[0] = '\0';
}

/*
 * When a job was first queued.  A retry rewrites the job file (a new
 * mtime), so the file's age restarts; the time at the start of a
 * generated name and the stored object's own mtime (its arrival) do not.
 */
static time_t
job_queued_at(const struct config *c, const char *name,
    const struct job_peek *j, time_t mtime)
{
	char path[PATH_MAX], rel[STORE_RELPATH_MAX], *end;
	struct stat st;
	time_t t = mtime;
	long long v;

	errno = 0;
	v = strtoll(name, &end, 10);
	if (errno == 0 && end - name == 10 && *end == '.' && v > 0 && v < t)
		t = (time_t)v;
	if (store_valid_hash(j->object)) {
		store_relpath(j->object, rel);
		if (snprintf(path, sizeof path, "%s/%s", c->storage_path, rel) <
		    (int)sizeof path && stat(path, &st) == 0 && st.st_mtime < t)
			t = st.st_mtime;
	}
	return t;
}

static int
bump(json_t *o, const char *k)
{
	return put(o, k, json_integer(json_integer_value(json_object_get(o,
	    k)) + 1));
}

static int
tally_job(json_t *kinds, const struct job_peek *j, int failed,
    long long age)
{
	json_t *k = json_object_get(kinds, j->kind), *oldest;

	if (k == NULL && put(kinds, j->kind, k = kind_entry()) == -1)
		return -1;
	if (failed)
		return bump(k, "failed");
	if (bump(k, "pending") == -1)
		return -1;
	oldest = json_object_get(k, "oldest_seconds");
	if (json_is_integer(oldest) && json_integer_value(oldest) >= age)
		return 0;
	if (put(k, "oldest_attempts", json_integer(atoi(j->attempts))) == -1 ||
	    put(k, "oldest_error", jstr(j->error)) == -1)
		return -1;
	return put(k, "oldest_seconds", json_integer(age < 0 ? 0 : age));
}

/* Count the jobs in one of the relay spool's directories by kind. */
static int
tally_dir(const struct config *c, json_t *kinds, const char *dir, int failed,
    time_t now, struct err *e)
{
	char path[PATH_MAX];
	struct job_peek j;
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(dir);
	int rc = 0;

	if (d == NULL)
		return 0;	/* the spool counts report a missing spool */
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || is_reason(de->d_name))
			continue;
		if (make_path(path, sizeof path, e, "%s/%s", dir,
		    de->d_name) == -1)
			rc = -1;
		else if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			job_peek(path, &j);
			if (tally_job(kinds, &j, failed, (long long)(now -
			    job_queued_at(c, de->d_name, &j, st.st_mtime))) == -1)
				rc = oom(e);
		}
	}
	closedir(d);
	return rc;
}

static int
relay_kinds(const struct config *c, time_t now, json_t **out,
    struct err *e)
{
	static const char *const subs[] = { "new", "cur", "failed" };
	char spool[PATH_MAX], dir[PATH_MAX];
	json_t *kinds = json_object();

	*out = NULL;
	if (kinds == NULL)
		return oom(e);
	for (size_t i = 0; i < sizeof known_kinds / sizeof known_kinds[0]; i++)
		if (put(kinds, known_kinds[i], kind_entry()) == -1) {
			json_decref(kinds);
			return oom(e);
		}
	if (config_spool_path(c, "relay", spool, sizeof spool, e) == -1) {
		json_decref(kinds);
		return -1;
	}
	for (size_t i = 0; i < 3; i++)
		if (make_path(dir, sizeof dir, e, "%s/%s", spool, subs[i]) == -1 ||
		    tally_dir(c, kinds, dir, i == 2, now, e) == -1) {
			json_decref(kinds);
			return -1;
		}
	*out = kinds;
	return 0;
}

static int
add_spools(struct report *r, struct err *e)
{
	json_t *spools = json_object(), *kinds;

	if (put(r->root, "spools", spools) == -1)
		return oom(e);
	for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
		if (add_spool(r, spools, stages[i], e) == -1)
			return -1;
	if (relay_kinds(r->c, r->now, &kinds, e) == -1)
		return -1;
	if (put(json_object_get(spools, "relay"), "kinds", kinds) == -1)
		return oom(e);
	return 0;
}

static int
add_failed_jobs(struct report *r, struct err *e)
{
	if (put(r->root, "failed_jobs", json_integer(r->failed_jobs)) == -1 ||
	    (r->failed_jobs > 0 && problem(r, "%lld failed job%s",
	    r->failed_jobs, r->failed_jobs == 1 ? "" : "s") == -1))
		return oom(e);
	return 0;
}

/* Files in the quarantine (their .reason files not counted). */
static int
add_quarantine(struct report *r, struct err *e)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(r->c->quarantine_dir);
	long long n = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || is_reason(de->d_name))
			continue;
		if (make_path(path, sizeof path, e, "%s/%s",
		    r->c->quarantine_dir, de->d_name) == 0 &&
		    lstat(path, &st) == 0 && S_ISREG(st.st_mode))
			n++;
	}
	if (d != NULL)
		closedir(d);
	return put(r->root, "quarantine", json_integer(n)) == -1 ? oom(e) : 0;
}

/* --------------------------------------------------------------- disk */

static int
disk_problems(struct report *r, long long free_bytes, double percent)
{
	const double gib = 1024.0 * 1024 * 1024;

	if (free_bytes < HEALTH_DISK_MIN_BYTES && problem(r,
	    "disk: %.1f GiB free < %.0f GiB", free_bytes / gib,
	    HEALTH_DISK_MIN_BYTES / gib) == -1)
		return -1;
	if (percent < HEALTH_DISK_MIN_PERCENT && problem(r,
	    "disk: %.1f %% free < %.0f %%", percent,
	    HEALTH_DISK_MIN_PERCENT) == -1)
		return -1;
	return 0;
}

/* Free space on a disk. */
struct space {
	unsigned long long free_bytes, total;
	double percent;
	int ok;			/* at least the minimum bytes and percent */
};

/* Free space where dir is: 0, or the errno of statvfs. */
static int
disk_space(const char *dir, struct space *sp)
{
	struct statvfs v;

	if (statvfs(dir, &v) == -1)
		return errno;
	sp->free_bytes = (unsigned long long)v.f_bavail * v.f_frsize;
	sp->total = (unsigned long long)v.f_blocks * v.f_frsize;
	sp->percent = sp->total > 0 ? 100.0 * (double)sp->free_bytes /
	    (double)sp->total : 0;
	sp->ok = sp->free_bytes >= (unsigned long long)HEALTH_DISK_MIN_BYTES &&
	    sp->percent >= HEALTH_DISK_MIN_PERCENT;
	return 0;
}

static int
add_disk(struct report *r, struct err *e)
{
	const char *dir = r->c->data_dir;
	struct space sp;
	int why;

	if ((why = disk_space(dir, &sp)) != 0) {
		if (put(r->root, "disk", json_pack("{s:o, s:b}", "path",
		    jstr(dir), "ok", 0)) == -1 || problem(r,
		    "disk: cannot check %s: %s", dir, strerror(why)) == -1)
			return oom(e);
		return 0;
	}
	if (put(r->root, "disk", json_pack("{s:o, s:I, s:I, s:f, s:b}",
	    "path", jstr(dir), "free_bytes", (json_int_t)sp.free_bytes,
	    "total_bytes", (json_int_t)sp.total, "free_percent", sp.percent,
	    "ok", sp.ok)) == -1 ||
	    disk_problems(r, (long long)sp.free_bytes, sp.percent) == -1)
		return oom(e);
	return 0;
}

/* -------------------------------------------------------------- relay */

/* run/relay.state as an object, with listener_running added. */
static int
relay_state(const struct config *c, json_t **out, struct err *e)
{
	char path[PATH_MAX];
	json_t *st;

	*out = NULL;
	if (make_path(path, sizeof path, e, "%s/run/relay.state",
	    c->data_dir) == -1 || read_state(path, &st, e) == -1)
		return -1;
	if (st == NULL)
		st = json_pack("{s:s}", "connection", config_cloud_actions() ?
		    "not running" : "not configured");
	else if (put(st, "listener_running", json_boolean(pid_alive(
	    parse_pid(sget(st, "pid"))))) == -1) {
		json_decref(st);
		st = NULL;
	}
	*out = st;
	return st ? 0 : oom(e);
}

static int
add_relay(struct report *r, struct err *e)
{
	json_t *st, *running;
	const char *conn;
	int rc = 0;

	if (relay_state(r->c, &st, e) == -1)
		return -1;
	if (put(r->root, "relay", st) == -1)
		return oom(e);
	running = json_object_get(st, "listener_running");
	conn = sget(st, "connection");
	if (running == NULL)
		return 0;	/* no relay.state: the relay is not configured */
	if (strcmp(conn, "connected") != 0)
		rc = problem(r, "relay not connected (%s)", *conn ? conn : "?");
	else if (!json_is_true(running))
		rc = problem(r, "relay: relaylisten (pid %s) not running",
		    sget(st, "pid"));
	return rc == -1 ? oom(e) : 0;
}

/* ------------------------------------------------ production's checks */

/*
 * checks.disk: free space beside worklist.db, as production measures it
 * {ok, free_bytes, free_percent (one decimal)}; a problem of its own only
 * when the data directory's disk (above) is fine.
 */
static int
check_disk(struct report *r, json_t **out)
{
	char dir[PATH_MAX], *slash;
	struct space sp;
	int why;

	snprintf(dir, sizeof dir, "%s", r->c->worklist_db_path);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof dir, ".");
	else
		slash[slash == dir] = '\0';
	if ((why = disk_space(dir, &sp)) != 0)
		*out = json_pack("{s:b, s:s}", "ok", 0, "error", strerror(why));
	else
		*out = json_pack("{s:b, s:I, s:f}", "ok", sp.ok, "free_bytes",
		    (json_int_t)sp.free_bytes, "free_percent",
		    (double)(long long)(sp.percent * 10 + 0.5) / 10);
	if (*out == NULL)
		return -1;
	if (json_is_true(json_object_get(*out, "ok")) ||
	    !json_is_true(json_object_get(json_object_get(r->root, "disk"),
	    "ok")))
		return 0;
	return why != 0 ? problem(r, "disk beside worklist.db: cannot check "
	    "%s: %s", dir, strerror(why)) : problem(r, "disk beside "
	    "worklist.db: %.1f %% free, %llu bytes", sp.percent,
	    sp.free_bytes);
}

/*
 * checks.services: gatewayd and the children it supervises, each
 * {ok, state}, ok when every one runs (production's Windows services).
 */
static int
check_services(struct report *r, json_t **out)
{
	json_t *services = json_object(), *child;
	const char *name;
	int all = r->gatewayd_up;

	*out = NULL;
	if (services == NULL || put(services, "gatewayd", json_pack("{s:b, s:s}",
	    "ok", r->gatewayd_up, "state", r->gatewayd_up ? "running" :
	    "not running")) == -1) {
		json_decref(services);
		return -1;
	}
	json_object_foreach(json_object_get(r->root, "children"), name,
	    child) {
		const char *state = sget(child, "state");
		int ok = strcmp(state, "running") == 0;

		all &= ok;
		if (put(services, name, json_pack("{s:b, s:s}", "ok", ok,
		    "state", state)) == -1) {
			json_decref(services);
			return -1;
		}
	}
	*out = json_pack("{s:b, s:o}", "ok", all, "services", services);
	return *out != NULL ? 0 : -1;
}

/* Seconds since relaylisten started (run/relay.state), null when it does
 * not run. */
static json_t *
listener_uptime(const struct report *r)
{
	const json_t *relay = json_object_get(r->root, "relay");
	time_t started;

	if (!json_is_true(json_object_get(relay, "listener_running")) ||
	    parse_iso8601(sget(relay, "started"), &started) == -1)
		return json_null();
	return json_integer(r->now > started ? (json_int_t)(r->now - started) :
	    0);
}

static int
add_checks(struct report *r, struct err *e)
{
	json_t *disk, *services;

	if (check_disk(r, &disk) == -1 || put(r->checks, "disk", disk) == -1 ||
	    check_services(r, &services) == -1 ||
	    put(r->checks, "services", services) == -1 ||
	    put(r->root, "listener_uptime_seconds", listener_uptime(r)) == -1)
		return oom(e);
	return 0;
}

/* -------------------------------------------------------------- qrscp */

/* qrscp: its port, open associations, retrievals in progress and pending
 * commitments (lib/qr/qr_status.c).  Not started (no run/qr.state): shown,
 * not a problem; started but dead or not answering: a problem. */
static int
add_qr(struct report *r, struct err *e)
{
	struct qr_status st;
	const char *bind = getenv("QR_BIND");
	json_t *o;
	int answering = 0, rc = 0;

	if (qr_status_read(r->c, &st, e) == -1)
		return -1;
	if (st.running)
		answering = port_answering(bind != NULL && *bind != '\0' &&
		    strcmp(bind, "0.0.0.0") != 0 ? bind : NULL, st.port,
		    HEALTH_CONNECT_TIMEOUT_MS) == 0;
	o = json_pack("{s:b, s:s, s:i, s:b, s:i, s:i, s:o}", "running",
	    st.running, "aet", st.aet, "port", st.port, "answering", answering,
	    "associations", st.associations, "moves_in_progress", st.moves,
	    "pending_commitments", st.pending_commitments >= 0 ?
	    json_integer(st.pending_commitments) : json_null());
	if (put(r->root, "qr", o) == -1)
		return oom(e);
	if (st.present && !st.running)
		rc = problem(r, "qrscp (pid %ld) not running", st.pid);
	else if (st.running && !answering)
		rc = problem(r, "qr port %d not answering", st.port);
	return rc == -1 ? oom(e) : 0;
}

/* -------------------------------------------------------------- cloud */

/* host:port takes TCP connections (any of its addresses), within
 * timeout_ms each. */
static int
host_answering(const char *host, const char *port, int timeout_ms)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *a;
	int fd, answering = 0;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return 0;
	for (a = res; a != NULL && !answering; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, a->ai_protocol);
		if (fd == -1)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			answering = 1;
		else if (errno == EINPROGRESS)
			answering = connect_finished(fd, timeout_ms) == 0;
		close(fd);
	}
	freeaddrinfo(res);
	return answering;
}

/* The Manage API (CLOUD_API_ENDPOINT): its host and port, and whether a
 * TCP connection to it succeeds; JSON null when it is not configured. */
static json_t *
cloud_api(void)
{
	const char *url = getenv("CLOUD_API_ENDPOINT");
	char *host = NULL, *port = NULL;
	CURLU *u;
	json_t *o = NULL;

	if (url == NULL || *url == '\0')
		return json_null();
	if ((u = curl_url()) == NULL)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
	    CURLUE_OK)
		o = json_pack("{s:n, s:n, s:b, s:s}", "host", "port",
		    "reachable", 0, "error", "CLOUD_API_ENDPOINT is not a URL");
	else
		o = json_pack("{s:o, s:i, s:b}", "host", jstr(host), "port",
		    atoi(port), "reachable", host_answering(host, port,
		    HEALTH_CONNECT_TIMEOUT_MS));
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return o;
}

/* One text value from a database (opened read-only, never created), or
 * "". */
static void
db_text(const char *path, const char *sql, char *out, size_t outsz)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	const unsigned char *v;

	snprintf(out, outsz, "%s", "");
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
	    NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return;
	}
	sqlite3_busy_timeout(db, 1000);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW &&
	    (v = sqlite3_column_text(st, 0)) != NULL)
		snprintf(out, outsz, "%s", (const char *)v);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/*
 * Instances per upload state (lib/archive/upload_state) from pacs.db,
 * opened read-only, into n; the JSON, or JSON null (n zeroed) when it
 * cannot be read.
 */
static json_t *
upload_state_section(const struct config *c, time_t now,
    struct upload_state_count *n)
{
	struct err e = { 0 };
	sqlite3 *db = NULL;
	json_t *oldest = json_null();
	time_t t;
	int rc = -1;

	memset(n, 0, sizeof *n);
	if (sqlite3_open_v2(c->pacs_db_path, &db, SQLITE_OPEN_READONLY,
	    NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(db, 1000);
		rc = upload_state_count(db, NULL, n, &e);
	}
	sqlite3_close(db);
	if (rc == -1) {
		memset(n, 0, sizeof *n);
		return json_null();
	}
	if (parse_iso8601(n->oldest_unmatched, &t) == 0)
		oldest = json_integer(now > t ? (json_int_t)(now - t) : 0);
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:I, s:o}", "total", (json_int_t)n->total, "complete",
	    (json_int_t)n->complete, "pending", (json_int_t)n->pending,
	    "uploading", (json_int_t)n->uploading, "waiting",
	    (json_int_t)n->waiting, "unmatched", (json_int_t)n->unmatched,
	    "unmatched_studies", (json_int_t)n->unmatched_studies, "held",
	    (json_int_t)n->held, "failed", (json_int_t)n->failed, "released",
	    (json_int_t)n->released, "refused", (json_int_t)n->refused,
	    "refused_studies", (json_int_t)n->refused_studies, "local",
	    (json_int_t)n->local, "oldest_unmatched_seconds", oldest);
}

/* The oldest pending relay job over every kind, or JSON null. */
static json_t *
oldest_job(json_t *kinds)
{
	const char *kind, *best = NULL;
	json_t *k, *b = NULL;
	json_int_t age = -1;

	json_object_foreach(kinds, kind, k) {
		json_t *o = json_object_get(k, "oldest_seconds");
		if (json_is_integer(o) && json_integer_value(o) > age) {
			age = json_integer_value(o);
			best = kind;
			b = k;
		}
	}
	if (best == NULL)
		return json_null();
	return json_pack("{s:s, s:I, s:O?, s:O?}", "kind", best, "age_seconds",
	    age, "attempts", json_object_get(b, "oldest_attempts"), "error",
	    json_object_get(b, "oldest_error"));
}

/*
 * The cloud: the Manage API, run/relaysend.state (last_upload=,
 * last_event=, last_error=, when relaysend writes it), else the last
 * upload and upload error pacs.db records, and the oldest job.
 */
static int
cloud_section(const struct config *c, json_t *kinds, json_t **out,
    struct err *e)
{
	char path[PATH_MAX], held[32];
	struct upload_state_count n;
	json_t *st = NULL, *uploads;

	*out = NULL;
	if (make_path(path, sizeof path, e, "%s/run/relaysend.state",
	    c->data_dir) == -1 || read_state(path, &st, e) == -1)
		return -1;
	uploads = upload_state_section(c, time(NULL), &n);
	/* MPPS events wait in worklist.db's outbox while events are off. */
	db_text(c->worklist_db_path, "SELECT count(*) FROM outbox WHERE "
	    "sent_at IS NULL", held, sizeof held);
	*out = json_pack("{s:{s:b, s:b, s:b}, s:o, s:o, s:o, s:o, s:o, s:o, "
	    "s:I}",
	    "configured", "images", config_cloud_images(), "events",
	    config_cloud_events(), "actions", config_cloud_actions(),
	    "api", cloud_api(),
	    "last_upload", jstr(*sget(st, "last_upload") ?
	    sget(st, "last_upload") : n.last_upload),
	    "last_event", jstr(sget(st, "last_event")),
	    "last_error", jstr(*sget(st, "last_error") ?
	    sget(st, "last_error") : n.last_error),
	    "oldest_job", oldest_job(kinds), "uploads", uploads,
	    "mpps_events_held", (json_int_t)atoll(held));
	json_decref(st);
	return *out ? 0 : oom(e);
}

/* The uploads' problems: a study waiting long for its worklist item;
 * images still HELD (not queued) now that the cloud takes images;
 * studies the Manage API refused. */
static int
upload_problems(struct report *r, const json_t *u)
{
	json_int_t n = json_integer_value(json_object_get(u, "unmatched"));
	json_int_t studies = json_integer_value(json_object_get(u,
	    "unmatched_studies"));
	json_int_t held = json_integer_value(json_object_get(u, "held"));
	json_int_t refused = json_integer_value(json_object_get(u, "refused"));
	json_int_t rstudies = json_integer_value(json_object_get(u,
	    "refused_studies"));
	json_t *oldest = json_object_get(u, "oldest_unmatched_seconds");
	char age[32];

	if (json_is_integer(oldest) &&
	    json_integer_value(oldest) >= HEALTH_UNMATCHED_SECONDS) {
		health_format_age(json_integer_value(oldest), age, sizeof age);
		if (problem(r, "uploads: %lld image%s of %lld stud%s wait for "
		    "a worklist item, the oldest for %s (gatewayctl waiting)",
		    (long long)n, n == 1 ? "" : "s", (long long)studies,
		    studies == 1 ? "y" : "ies", age) == -1)
			return -1;
	}
	if (held > 0 && config_cloud_images() &&
	    problem(r, "uploads: %lld image%s held, not queued for the cloud "
	    "(gatewayctl resend --held)", (long long)held, held == 1 ? "" :
	    "s") == -1)
		return -1;
	if (refused > 0 && problem(r, "uploads: %lld image%s of %lld stud%s "
	    "refused by the Manage API (403; gatewayctl waiting)",
	    (long long)refused, refused == 1 ? "" : "s", (long long)rstudies,
	    rstudies == 1 ? "y" : "ies") == -1)
		return -1;
	return 0;
}

static int
add_cloud(struct report *r, struct err *e)
{
	json_t *cloud, *kinds = json_object_get(json_object_get(
	    json_object_get(r->root, "spools"), "relay"), "kinds");

	if (cloud_section(r->c, kinds, &cloud, e) == -1)
		return -1;
	if (put(r->root, "cloud", cloud) == -1 ||
	    upload_problems(r, json_object_get(cloud, "uploads")) == -1)
		return oom(e);
	return 0;
}

/* ------------------------------------------------------------- report */

typedef int (*report_step)(struct report *, struct err *);

int
health_report(const struct config *c, json_t **out, struct err *e)
{
	static const report_step steps[] = { add_gatewayd, add_ports,
	    add_children, add_spools, add_failed_jobs, add_quarantine,
	    add_disk, add_relay, add_checks, add_cloud, add_qr };
	struct report r = { .c = c, .root = json_object(),
	    .problems = json_array(), .checks = json_object(),
	    .now = time(NULL) };

	*out = NULL;
	if (put(r.root, "healthy", json_false()) == -1 ||
	    put(r.root, "version", json_string(GW_VERSION)) == -1 ||
	    put(r.root, "listener_uptime_seconds", json_null()) == -1 ||
	    put(r.root, "checks", r.checks) == -1 ||
	    put(r.root, "problems", r.problems) == -1) {
		json_decref(r.root);
		return oom(e);
	}
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
		if (steps[i](&r, e) == -1) {
			json_decref(r.root);
			return -1;
		}
	if (put(r.root, "healthy", json_boolean(json_array_size(r.problems)
	    == 0)) == -1) {
		json_decref(r.root);
		return oom(e);
	}
	*out = r.root;
	return 0;
}

/* ------------------------------------------------------------- status */

void
health_format_age(long long s, char *out, size_t outsz)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(out, outsz, "%llds", s);
	else if (s < 3600)
		snprintf(out, outsz, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, outsz, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(out, outsz, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

static void
print_when(FILE *f, const char *what, const char *when, time_t now)
{
	char age[32];
	time_t t;

	if (*when == '\0')
		fprintf(f, "%s: none", what);
	else if (parse_iso8601(when, &t) == -1)
		fprintf(f, "%s: %s", what, when);
	else {
		health_format_age((long long)(now - t), age, sizeof age);
		fprintf(f, "%s: %s (%s ago)", what, when, age);
	}
}

static void
print_relay(FILE *f, const json_t *st, time_t now)
{
	const char *since = sget(st, "since"), *cred = sget(st, "credential");
	const char *hc = sget(st, "hybrid_connection"), *pid = sget(st, "pid");
	const char *error = sget(st, "last_error");
	const char *error_at = sget(st, "last_error_at");

	fprintf(f, "relay: %s", sget(st, "connection"));
	if (*since)
		fprintf(f, " since %s", since);
	if (*pid || *hc)
		fprintf(f, " (pid %s, hybrid connection %s%s%s)",
		    *pid ? pid : "-", *hc ? hc : "-", *cred ? ", credential " :
		    "", cred);
	if (*pid && json_is_false(json_object_get(st, "listener_running")))
		fprintf(f, "; relaylisten pid %s is not running", pid);
	fprintf(f, "\n");
	if (json_object_get(st, "listener_running") == NULL)
		return;
	print_when(f, "last PONG", sget(st, "last_pong"), now);
	print_when(f, "; last action", sget(st, "last_action"), now);
	fprintf(f, "\n");
	if (strcmp(sget(st, "self_echo"), "off") == 0)
		fprintf(f, "traffic proof: off (the credential cannot send to "
		    "itself; PONGs and actions are the proof)\n");
	else {
		print_when(f, "last traffic proof", sget(st, "last_proof"), now);
		fprintf(f, "\n");
	}
	if (*sget(st, "token_expires"))
		fprintf(f, "token expires: %s\n", sget(st, "token_expires"));
	fprintf(f, "last error: %s", *error ? error : "-");
	if (*error && *error_at)
		fprintf(f, " (at %s)", error_at);
	fprintf(f, "\n");
}

static void
print_kinds(FILE *f, json_t *kinds)
{
	const char *kind;
	json_t *k, *oldest;
	char age[32];

	fprintf(f, "\n%-22s %7s %6s %s\n", "KIND", "PENDING", "FAILED",
	    "OLDEST");
	json_object_foreach(kinds, kind, k) {
		oldest = json_object_get(k, "oldest_seconds");
		snprintf(age, sizeof age, "-");
		if (json_is_integer(oldest))
			health_format_age(json_integer_value(oldest), age,
			    sizeof age);
		fprintf(f, "%-22s %7lld %6lld %s\n", kind,
		    (long long)json_integer_value(json_object_get(k, "pending")),
		    (long long)json_integer_value(json_object_get(k, "failed")),
		    age);
	}
}

/* "last upload: 2026-…Z (3m12s ago)", or "none". */
/* "uploads: 40 sent, 3 waiting for a worklist item (1 study, oldest
 * 2h05m), 12 held", the states with none left out. */
static void
print_uploads(FILE *f, const json_t *cloud)
{
	static const struct { const char *key, *what; } parts[] = {
		{ "pending", "queued" }, { "uploading", "uploading" },
		{ "waiting", "retrying" }, { "unmatched",
		"waiting for a worklist item" }, { "held", "held" },
		{ "failed", "failed" }, { "released", "released" },
		{ "refused", "refused by the Manage API" },
		{ "local", "kept local (not for the cloud)" },
	};
	const json_t *u = json_object_get(cloud, "uploads");
	json_t *oldest = json_object_get(u, "oldest_unmatched_seconds");
	char age[32];

	if (!json_is_object(u)) {
		fprintf(f, "uploads: pacs.db not readable\n");
		return;
	}
	fprintf(f, "uploads: %lld sent", (long long)json_integer_value(
	    json_object_get(u, "complete")));
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		json_int_t n = json_integer_value(json_object_get(u,
		    parts[i].key));

		if (n == 0)
			continue;
		fprintf(f, ", %lld %s", (long long)n, parts[i].what);
		if (strcmp(parts[i].key, "unmatched") == 0 &&
		    json_is_integer(oldest)) {
			json_int_t k = json_integer_value(json_object_get(u,
			    "unmatched_studies"));

			health_format_age(json_integer_value(oldest), age,
			    sizeof age);
			fprintf(f, " (%lld stud%s, oldest %s: gatewayctl "
			    "waiting)", (long long)k, k == 1 ? "y" : "ies", age);
		}
	}
	fprintf(f, "\n");
}

static void
print_cloud(FILE *f, const json_t *cloud, time_t now)
{
	const json_t *api = json_object_get(cloud, "api");
	const json_t *old = json_object_get(cloud, "oldest_job");
	const char *error = sget(cloud, "last_error");
	char age[32];

	const json_t *on = json_object_get(cloud, "configured");

	if (json_is_object(api))
		fprintf(f, "\ncloud: Manage API %s:%lld %s\n", sget(api, "host"),
		    (long long)json_integer_value(json_object_get(api, "port")),
		    json_is_true(json_object_get(api, "reachable")) ?
		    "reachable" : "NOT reachable");
	else if (json_is_true(json_object_get(on, "events")))
		fprintf(f, "\ncloud: no Manage API configured "
		    "(CLOUD_API_ENDPOINT): images are kept, HELD, not sent\n");
	else
		fprintf(f, "\ncloud: not configured (CLOUD_API_ENDPOINT, "
		    "AZURE_RELAY_*): nothing is queued for it; images are kept, "
		    "HELD\n");
	print_uploads(f, cloud);
	if (json_integer_value(json_object_get(cloud, "mpps_events_held")) > 0)
		fprintf(f, "mpps events held: %lld (in worklist.db, sent once "
		    "the relay's events are configured)\n", (long long)
		    json_integer_value(json_object_get(cloud,
		    "mpps_events_held")));
	print_when(f, "last upload", sget(cloud, "last_upload"), now);
	fprintf(f, "; ");
	print_when(f, "last event", sget(cloud, "last_event"), now);
	fprintf(f, "\ncloud last error: %s\n", *error ? error : "-");
	if (!json_is_object(old)) {
		fprintf(f, "oldest job: none waiting\n");
		return;
	}
	health_format_age(json_integer_value(json_object_get(old,
	    "age_seconds")), age, sizeof age);
	fprintf(f, "oldest job: %s, queued %s ago, %lld attempt%s%s%s\n",
	    sget(old, "kind"), age,
	    (long long)json_integer_value(json_object_get(old, "attempts")),
	    json_integer_value(json_object_get(old, "attempts")) == 1 ? "" :
	    "s", *sget(old, "error") ? ", last error: " : "",
	    sget(old, "error"));
}

int
health_print_status(const struct config *c, FILE *f, struct err *e)
{
	json_t *relay = NULL, *kinds = NULL, *cloud = NULL;
	time_t now = time(NULL);
	int rc = -1;

	if (relay_state(c, &relay, e) == 0 &&
	    relay_kinds(c, now, &kinds, e) == 0 &&
	    cloud_section(c, kinds, &cloud, e) == 0) {
		print_relay(f, relay, now);
		print_kinds(f, kinds);
		print_cloud(f, cloud, now);
		rc = fflush(f) == EOF || ferror(f) ?
		    err_sys(e, "writing the relay status") : 0;
	}
	json_decref(relay);
	json_decref(kinds);
	json_decref(cloud);
	return rc;
}
