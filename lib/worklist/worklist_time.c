/*
 * worklist_time: the site's worklist settings and its local time (see
 * worklist/worklist.h).
 *
 * Every conversion is the C library's: timegm() and localtime_r() from UTC,
 * mktime() to UTC, with TZ set to the site's zone once per process.  No
 * rule about clock changes is written here.
 */
#include "worklist/worklist.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "worklist/worklist_int.h"


/* --- dates and times --- */

struct wl_tm {
	int y, mo, d, h, mi, s;
	int digits;		/* of the time: 2, 4 or 6 */
	const char *frac;	/* ".F" of the time, or "" */
};

static int
num(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* YYYYMMDD, a real calendar date. */
static int
parse_date(const char *s, struct wl_tm *t)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	int leap;

	if (strlen(s) != 8 || strspn(s, "0123456789") != 8)
		return -1;
	t->y = num(s, 4);
	t->mo = num(s + 4, 2);
	t->d = num(s + 6, 2);
	leap = (t->y % 4 == 0 && t->y % 100 != 0) || t->y % 400 == 0;
	if (t->y < 1 || t->mo < 1 || t->mo > 12 || t->d < 1 ||
	    t->d > mdays[t->mo - 1] || (t->mo == 2 && t->d == 29 && !leap))
		return -1;
	return 0;
}

/* HH, HHMM, HHMMSS or HHMMSS.F{1,6}, within a day. */
static int
parse_time(const char *s, struct wl_tm *t)
{
	size_t n = strspn(s, "0123456789");

	if (n != 2 && n != 4 && n != 6)
		return -1;
	t->digits = (int)n;
	t->h = num(s, 2);
	t->mi = n >= 4 ? num(s + 2, 2) : 0;
	t->s = n >= 6 ? num(s + 4, 2) : 0;
	t->frac = s + n;
	if (t->h > 23 || t->mi > 59 || t->s > 59)
		return -1;
	if (*t->frac == '\0')
		return 0;
	n = strlen(t->frac + 1);
	return t->digits == 6 && t->frac[0] == '.' && n >= 1 && n <= 6 &&
	    strspn(t->frac + 1, "0123456789") == n ? 0 : -1;
}

int
worklist_valid_date(const char *s)
{
	struct wl_tm t;

	return parse_date(s, &t) == 0;
}

int
worklist_valid_time(const char *s)
{
	struct wl_tm t;

	return parse_time(s, &t) == 0;
}

static void
to_tm(const struct wl_tm *t, struct tm *tm)
{
	memset(tm, 0, sizeof *tm);
	tm->tm_year = t->y - 1900;
	tm->tm_mon = t->mo - 1;
	tm->tm_mday = t->d;
	tm->tm_hour = t->h;
	tm->tm_min = t->mi;
	tm->tm_sec = t->s;
}

/* tm as a date and a time of at least the precision of t's. */
static void
format(const struct tm *tm, const struct wl_tm *t, char *date, char *time)
{
	int digits = t->digits;

	if (digits < 4 && tm->tm_min != 0)
		digits = 4;
	if (digits < 6 && tm->tm_sec != 0)
		digits = 6;
	snprintf(date, WL_FIELD, "%04d%02d%02d", tm->tm_year + 1900,
	    tm->tm_mon + 1, tm->tm_mday);
	if (digits == 2)
		snprintf(time, WL_FIELD, "%02d", tm->tm_hour);
	else if (digits == 4)
		snprintf(time, WL_FIELD, "%02d%02d", tm->tm_hour, tm->tm_min);
	else
		snprintf(time, WL_FIELD, "%02d%02d%02d%s", tm->tm_hour,
		    tm->tm_min, tm->tm_sec, t->frac);
}

static int
parse_both(const char *date, const char *time, struct wl_tm *t)
{
	return parse_date(date, t) == -1 || parse_time(time, t) == -1 ? -1 : 0;
}

int
worklist_utc_to_local(const char *utc_date, const char *utc_time,
    char *date, char *time)
{
	struct wl_tm t;
	struct tm tm, lt;
	time_t when;

	if (parse_both(utc_date, utc_time, &t) == -1) {
		snprintf(date, WL_FIELD, "%s", utc_date);
		snprintf(time, WL_FIELD, "%s", utc_time);
		return -1;
	}
	to_tm(&t, &tm);
	when = timegm(&tm);
	if (localtime_r(&when, &lt) == NULL) {
		snprintf(date, WL_FIELD, "%s", utc_date);
		snprintf(time, WL_FIELD, "%s", utc_time);
		return -1;
	}
	format(&lt, &t, date, time);
	return 0;
}

/* 1 when tm, read back as local time, is t's wall clock. */
static int
same_wall_clock(const struct tm *tm, const struct wl_tm *t)
{
	return tm->tm_year == t->y - 1900 && tm->tm_mon == t->mo - 1 &&
	    tm->tm_mday == t->d && tm->tm_hour == t->h &&
	    tm->tm_min == t->mi && tm->tm_sec == t->s;
}

int
worklist_local_to_utc(const char *date, const char *time, char *utc_date,
    char *utc_time, struct err *e)
{
	struct wl_tm t;
	struct tm tm, back;
	time_t when, best = 0;
	int found = 0;

	if (parse_date(date, &t) == -1)
		return err_set(e, EINVAL, "not a date (YYYYMMDD): %s", date);
	if (parse_time(time, &t) == -1)
		return err_set(e, EINVAL, "not a time (HHMM or HHMMSS): %s",
		    time);
	/* Standard time, then daylight saving time: each candidate must read
	 * back as the same wall clock with that flag.  Two that do are the
	 * hour the clocks go back; the earlier is taken. */
	for (int dst = 0; dst <= 1; dst++) {
		to_tm(&t, &tm);
		tm.tm_isdst = dst;
		if ((when = mktime(&tm)) == (time_t)-1 ||
		    localtime_r(&when, &back) == NULL ||
		    !same_wall_clock(&back, &t) || back.tm_isdst != dst)
			continue;
		if (!found || when < best)
			best = when;
		found = 1;
	}
	if (!found)
		return err_set(e, EINVAL, "%s %s does not exist in local time "
		    "(the clocks go forward over it)", date, time);
	if (gmtime_r(&best, &tm) == NULL)
		return err_set(e, EINVAL, "%s %s: cannot convert to UTC", date,
		    time);
	format(&tm, &t, utc_date, utc_time);
	return 0;
}

int
wl_day_add(const char *day, int days, char *out)
{
	struct wl_tm t = { 0 };
	struct tm tm;
	time_t when;

	if (parse_date(day, &t) == -1)
		return -1;
	to_tm(&t, &tm);
	tm.tm_hour = 12;
	when = timegm(&tm) + (time_t)days * 86400;
	if (gmtime_r(&when, &tm) == NULL ||
	    strftime(out, 9, "%Y%m%d", &tm) != 8)
		return -1;
	return 0;
}

void
worklist_today(char out[9])
{
	time_t now = time(NULL);
	struct tm tm;

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(out, 9, "%Y%m%d", &tm) == 0)
		snprintf(out, 9, "19700101");
}

/* --- the site's settings --- */

int
worklist_site_init(struct worklist_site *s, struct err *e)
{
	const char *tz = getenv("WORKLIST_TIMEZONE");
	const char *fin = getenv("WORKLIST_SHOW_FINISHED");
	const char *aet = getenv("WORKLIST_STATION_AET");

	memset(s, 0, sizeof *s);
	snprintf(s->station_aet, sizeof s->station_aet, "ANY");
	if (aet != NULL && *aet != '\0') {
		if (strlen(aet) > 16)
			return err_set(e, EINVAL, "WORKLIST_STATION_AET: at "
			    "most 16 characters, not \"%.64s\"", aet);
		snprintf(s->station_aet, sizeof s->station_aet, "%s", aet);
	}
	if (fin != NULL && *fin != '\0' && strcmp(fin, "0") != 0 &&
	    strcmp(fin, "1") != 0)
		return err_set(e, EINVAL, "WORKLIST_SHOW_FINISHED must be 0 "
		    "or 1, not \"%.64s\"", fin);
	s->show_finished = fin != NULL && strcmp(fin, "1") == 0;
	if (tz == NULL || *tz == '\0') {
		tzset();
		return 0;
	}
	/* UTC needs no tz database. */
	if (strcmp(tz, "UTC") != 0 && settings_zone_exists(tz) == -1)
		return err_set(e, EINVAL, "WORKLIST_TIMEZONE: no time zone "
		    "\"%.64s\" in the tz database (an IANA name such as "
		    "Europe/London, or UTC; is tzdata installed?)", tz);
	snprintf(s->timezone, sizeof s->timezone, "%s", tz);
	if (setenv("TZ", strcmp(tz, "UTC") == 0 ? "UTC0" : tz, 1) == -1)
		return err_sys(e, "setenv TZ");
	tzset();
	return 0;
}
