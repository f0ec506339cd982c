/*
 * runstate: the run/ files' one read/write pair (see base/base.h).
 */
#include "base/base.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
runstate_init(struct runstate *s)
{
	s->text[0] = '\0';
	s->len = 0;
	s->overflow = 0;
}

void
runstate_put(struct runstate *s, const char *key, const char *fmt, ...)
{
	size_t room = sizeof s->text - s->len, start = s->len;
	va_list ap;
	int n;

	n = snprintf(s->text + s->len, room, "%s=", key);
	if (n < 0 || (size_t)n >= room) {
		s->overflow = 1;
		s->text[start] = '\0';
		return;
	}
	s->len += (size_t)n;
	room -= (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(s->text + s->len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n + 1 >= room) {
		s->overflow = 1;
		s->len = start;
		s->text[start] = '\0';
		return;
	}
	for (char *p = s->text + s->len; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	s->len += (size_t)n;
	s->text[s->len++] = '\n';
	s->text[s->len] = '\0';
}

void
runstate_put_time(struct runstate *s, const char *key, time_t t)
{
	char when[RUNSTATE_TIME];

	runstate_time_text(t, when);
	runstate_put(s, key, "%s", when);
}

int
runstate_path(const char *data_dir, const char *name, char *out,
    size_t outsz, struct err *e)
{
	int n = snprintf(out, outsz, "%s/run/%s", data_dir, name);

	if (n < 0 || (size_t)n >= outsz)
		return err_set(e, ENAMETOOLONG, "data directory path too long");
	return 0;
}

int
runstate_write(const char *data_dir, const char *name,
    const struct runstate *s, struct err *e)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd, n;

	if (s->overflow)
		return err_set(e, EOVERFLOW, "run/%s: more than %d bytes",
		    name, RUNSTATE_MAX);
	n = snprintf(tmp, sizeof tmp, "%s/run/.%s.tmp.%ld", data_dir, name,
	    (long)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp ||
	    runstate_path(data_dir, name, path, sizeof path, e) == -1)
		return err_set(e, ENAMETOOLONG, "data directory path too long");
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1)
		return err_sys(e, "create %s", tmp);
	if (fs_write_all(fd, s->text, s->len, e) == -1) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		err_sys(e, "write %s", path);
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
runstate_read(const char *data_dir, const char *name, struct runstate *s,
    struct err *e)
{
	char path[PATH_MAX];

	runstate_init(s);
	if (runstate_path(data_dir, name, path, sizeof path, e) == -1)
		return -1;
	return runstate_read_path(path, s, e);
}

int
runstate_read_path(const char *path, struct runstate *s, struct err *e)
{
	char *text = NULL;
	struct err fe = { 0 };
	size_t len;

	runstate_init(s);
	if (fs_read_small(path, RUNSTATE_MAX - 1, &text, &len, &fe) == -1) {
		if (fe.code == ENOENT)
			return 1;
		if (e != NULL)
			*e = fe;
		return -1;
	}
	memcpy(s->text, text, len + 1);
	s->len = len;
	free(text);
	return 0;
}

int
runstate_get(const struct runstate *s, const char *key, char *out,
    size_t outsz)
{
	size_t klen = strlen(key), n;
	const char *p = s->text, *eol;

	out[0] = '\0';
	for (; *p != '\0'; p = eol + (*eol != '\0')) {
		eol = p + strcspn(p, "\n");
		if ((size_t)(eol - p) <= klen || strncmp(p, key, klen) != 0 ||
		    p[klen] != '=')
			continue;
		n = (size_t)(eol - p) - klen - 1;
		if (n >= outsz)
			return -1;
		memcpy(out, p + klen + 1, n);
		out[n] = '\0';
		return 0;
	}
	return -1;
}

long long
runstate_get_ll(const struct runstate *s, const char *key, long long dflt)
{
	char v[32], *end;
	long long n;

	if (runstate_get(s, key, v, sizeof v) == -1 || v[0] == '\0')
		return dflt;
	errno = 0;
	n = strtoll(v, &end, 10);
	return errno != 0 || *end != '\0' ? dflt : n;
}

time_t
runstate_get_time(const struct runstate *s, const char *key)
{
	char v[64];
	time_t t;

	if (runstate_get(s, key, v, sizeof v) == -1 ||
	    runstate_time_parse(v, &t) == -1)
		return 0;
	return t;
}

void
runstate_time_text(time_t t, char out[RUNSTATE_TIME])
{
	struct tm tm;

	if (t == 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(out, RUNSTATE_TIME, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		out[0] = '\0';
}

int
runstate_time_parse(const char *s, time_t *out)
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

int
runstate_pid_alive(long pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}
