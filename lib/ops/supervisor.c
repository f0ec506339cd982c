/*
 * supervisor: gatewayd's run files, read as gatewayd writes them in sh
 * (see ops/ops.h).
 */
#include "ops/ops.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAMES_MAX	4096	/* run/children, run/timers */

/* /proc/PID/cmdline into buf (its arguments NUL-separated, NUL-ended):
 * their length, or -1 when it cannot be read. */
static ssize_t
cmdline(long pid, char *buf, size_t bufsz)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, bufsz - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* pid is alive and (where /proc tells) a gatewayd, not a recycled pid. */
static int
gatewayd_alive(long pid)
{
	char buf[4096];
	ssize_t n;

	if (!runstate_pid_alive(pid))
		return 0;
	if ((n = cmdline(pid, buf, sizeof buf)) == -1)
		return 1;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	return strstr(buf, "gatewayd") != NULL;
}

static int
valid_name(const char *s, size_t n)
{
	if (n == 0 || n >= 64 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("_.-", s[i]) == NULL)
			return 0;
	return 1;
}

static void
read_job(const char *data_dir, const char *name, int up, struct sv_job *j)
{
	char file[80], exits[200], *p, *end;
	struct runstate s;
	struct err e = { 0 };
	int rc;

	memset(j, 0, sizeof *j);
	snprintf(j->name, sizeof j->name, "%s", name);
	snprintf(j->state, sizeof j->state, "stopped");
	j->restarts = -1;
	snprintf(file, sizeof file, "%s.state", name);
	if ((rc = runstate_read(data_dir, file, &s, &e)) != 0)
		return;
	j->restarts = runstate_get_ll(&s, "restarts", -1);
	runstate_get(&s, "since", j->since, sizeof j->since);
	runstate_get(&s, "last_exit", j->last_exit, sizeof j->last_exit);
	runstate_get(&s, "schedule", j->schedule, sizeof j->schedule);
	runstate_get(&s, "last_run", j->last_run, sizeof j->last_run);
	runstate_get(&s, "next_run", j->next_run, sizeof j->next_run);
	runstate_get(&s, "exits", exits, sizeof exits);
	for (p = exits; j->nexits < SV_EXITS_MAX; p = end) {
		long long t = strtoll(p, &end, 10);

		if (end == p)
			break;
		j->exits[j->nexits++] = (time_t)t;
	}
	if (!up)
		return;		/* its children are gone with it */
	runstate_get(&s, "state", j->state, sizeof j->state);
	j->pid = (long)runstate_get_ll(&s, "pid", 0);
	if (strcmp(j->state, "running") == 0 && !runstate_pid_alive(j->pid))
		snprintf(j->state, sizeof j->state, "exited");
}

/* The names in run/<list> (children, timers), each read into jobs. */
static int
read_list(const char *data_dir, const char *list, const char *dflt, int up,
    struct sv_job *jobs)
{
	char path[PATH_MAX], *text = NULL, *p;
	const char *names;
	struct err e = { 0 };
	size_t n;
	int count = 0;

	if (runstate_path(data_dir, list, path, sizeof path, &e) == 0 &&
	    fs_read_small(path, NAMES_MAX, &text, NULL, &e) == 0 &&
	    strspn(text, " \t\n") < strlen(text))
		names = text;
	else
		names = dflt;
	for (p = (char *)names; count < SV_MAX &&
	    *(p += strspn(p, " \t\n")) != '\0'; p += n) {
		char name[64];

		n = strcspn(p, " \t\n");
		if (!valid_name(p, n))
			continue;
		memcpy(name, p, n);
		name[n] = '\0';
		read_job(data_dir, name, up, &jobs[count++]);
	}
	free(text);
	return count;
}

int
sv_status_read(const char *data_dir, struct sv_status *sv, struct err *e)
{
	char path[PATH_MAX], *text = NULL;
	struct err fe = { 0 };
	struct stat st;

	memset(sv, 0, sizeof *sv);
	if (runstate_path(data_dir, "gatewayd.pid", path, sizeof path, e) ==
	    -1)
		return -1;
	if (fs_read_small(path, 64, &text, NULL, &fe) == 0) {
		sv->pid = strtol(text, NULL, 10);
		sv->running = gatewayd_alive(sv->pid);
		if (stat(path, &st) == 0)
			sv->uid = st.st_uid;
	}
	free(text);
	if (!sv->running) {
		sv->pid = 0;
		sv->uid = geteuid();
	}
	/* before gatewayd wrote its list: the children it always runs */
	sv->nchildren = read_list(data_dir, "children", "storescp-front "
	    "dcmindex dcmthumb mwlscp qrscp", sv->running, sv->children);
	sv->ntimers = read_list(data_dir, "timers", "", sv->running,
	    sv->timers);
	return 0;
}

int
sv_recent_exits(const struct sv_job *j, time_t now, long window)
{
	int n = 0;

	for (int i = 0; i < j->nexits; i++)
		n += now - j->exits[i] <= window;
	return n;
}

/* /proc/PID/cmdline has an argument ending in "gatewayd" and one "run". */
static int
is_gatewayd_run(long pid)
{
	char buf[4096];
	int name = 0, run = 0;
	ssize_t n = cmdline(pid, buf, sizeof buf);

	for (char *a = buf; n > 0 && a < buf + n; a += strlen(a) + 1) {
		size_t len = strlen(a);

		name |= len >= 8 && strcmp(a + len - 8, "gatewayd") == 0;
		run |= name && strcmp(a, "run") == 0;
	}
	return run;
}

long
sv_find_gatewayd(void)
{
	struct dirent *de;
	long found = 0;
	DIR *d = opendir("/proc");

	while (d != NULL && found == 0 && (de = readdir(d)) != NULL)
		if (isdigit((unsigned char)de->d_name[0]) &&
		    is_gatewayd_run(strtol(de->d_name, NULL, 10)))
			found = strtol(de->d_name, NULL, 10);
	if (d != NULL)
		closedir(d);
	return found;
}
