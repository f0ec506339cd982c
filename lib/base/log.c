#include "base/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/*
 * The one piece of process-wide state in lib/: who is logging and at which
 * level.  Set once from main() before any thread or child exists.
 */
static struct log_ctx log_ctx = { "gateway", LOG_INFO };

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
log_init(const char *prog)
{
	const char *slash = strrchr(prog, '/');

	log_ctx.prog = slash ? slash + 1 : prog;
	log_level_from_env();
}

void
log_level_from_env(void)
{
	const char *lv = getenv("LOG_LEVEL");

	if (lv == NULL)
		return;
	for (int i = 0; i < 4; i++)
		if (strcasecmp(lv, level_names[i]) == 0)
			log_ctx.level = (enum log_level)i;
	if (strcasecmp(lv, "warning") == 0)
		log_ctx.level = LOG_WARN;
}

const char *
log_quote(const char *s, char *out, unsigned outsz)
{
	unsigned j = 0;
	int needs = *s == '\0' || strpbrk(s, " =\"\\\t\n") != NULL;

	if (outsz < 3) {
		if (outsz)
			out[0] = '\0';
		return out;
	}
	if (!needs) {
		snprintf(out, outsz, "%s", s);
		return out;
	}
	out[j++] = '"';
	for (; *s && j + 3 < outsz; s++) {
		if (*s == '"' || *s == '\\')
			out[j++] = '\\';
		out[j++] = (*s == '\n' || *s == '\t') ? ' ' : *s;
	}
	out[j++] = '"';
	out[j] = '\0';
	return out;
}

void
log_msg(enum log_level level, const char *msg, const char *fmt, ...)
{
	char line[2048], qmsg[512];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int n;

	if (level < log_ctx.level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = snprintf(line, sizeof line,
	    "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s prog=%s msg=%s",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (long)tv.tv_usec / 1000, level_names[level],
	    log_ctx.prog, log_quote(msg, qmsg, sizeof qmsg));
	if (n < 0 || (size_t)n >= sizeof line - 2)
		n = sizeof line - 2;
	if (fmt != NULL && *fmt != '\0' && (size_t)n < sizeof line - 3) {
		line[n++] = ' ';
		va_start(ap, fmt);
		int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
		va_end(ap);
		if (m > 0)
			n += (size_t)m < sizeof line - n - 1 ? m :
			    (int)(sizeof line - n - 2);
	}
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

void
log_err(const char *msg, const struct err *e)
{
	char q[600];

	log_msg(LOG_ERROR, msg, "error=%s", log_quote(e->msg, q, sizeof q));
}
