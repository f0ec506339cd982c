/*
 * tap.h: a tiny TAP producer for C unit tests, so prove runs them beside
 * the shell tests.  Header-only; include it from exactly one file.
 */
#ifndef GW_TAP_H
#define GW_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed, tap_planned;

static __attribute__((unused)) void
tap_plan(int n)
{
	printf("1..%d\n", n);
	tap_planned = 1;
}

static __attribute__((unused)) int
ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		tap_failed++;
	return cond;
}

static __attribute__((unused)) int
is_str(const char *got, const char *want, const char *title)
{
	int same = got != NULL && want != NULL && strcmp(got, want) == 0;

	if (!ok(same, "%s", title))
		printf("#   got: '%s'\n#  want: '%s'\n", got ? got : "(null)",
		    want ? want : "(null)");
	return same;
}

static __attribute__((unused)) int
is_long(long got, long want, const char *title)
{
	if (!ok(got == want, "%s", title))
		printf("#   got: %ld\n#  want: %ld\n", got, want);
	return got == want;
}

static __attribute__((unused)) void
diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static __attribute__((unused)) int
tap_done(void)
{
	if (!tap_planned)
		printf("1..%d\n", tap_n);	/* plan at the end */
	return tap_failed ? 1 : 0;
}

#endif
