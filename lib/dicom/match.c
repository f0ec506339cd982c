/*
 * match: the C-FIND matching rules on text values (see dicom/dicom.h).
 */
#include <stdlib.h>
#include <string.h>

#include "dicom/dicom.h"

/* The character after the UTF-8 character at v. */
static const char *
next_char(const char *v)
{
	v++;
	while ((*v & 0xc0) == 0x80)
		v++;
	return v;
}

int
match_wild(const char *k, const char *v)
{
	const char *star = NULL, *resume = NULL;

	while (*v != '\0') {
		if (*k == '*') {
			star = ++k;
			resume = v;
		} else if (*k == '?') {
			k++;
			v = next_char(v);
		} else if (*k != '\0' && *k == *v) {
			k++;
			v++;
		} else if (star != NULL) {
			k = star;
			resume = next_char(resume);
			v = resume;
		} else
			return 0;
	}
	while (*k == '*')
		k++;
	return *k == '\0';
}

int
match_has_wildcard(const char *s)
{
	return strpbrk(s, "*?") != NULL;
}

int
match_all_stars(const char *s)
{
	if (*s == '\0')
		return 0;
	while (*s == '*')
		s++;
	return *s == '\0';
}

static int
all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

long
match_date(const char *s, size_t n)
{
	char d[9];

	if (n == 10 && s[4] == '.' && s[7] == '.') {
		memcpy(d, s, 4);
		memcpy(d + 4, s + 5, 2);
		memcpy(d + 6, s + 8, 2);
	} else if (n == 8)
		memcpy(d, s, 8);
	else
		return -1;
	d[8] = '\0';
	return all_digits(d, 8) ? strtol(d, NULL, 10) : -1;
}

long long
match_time(const char *s, size_t n)
{
	char d[7] = "000000";
	size_t o = 0, i = 0;
	long long us = 0, scale = 100000;

	for (; i < n && s[i] != '.'; i++) {
		if (s[i] == ':')
			continue;
		if (o >= 6 || s[i] < '0' || s[i] > '9')
			return -1;
		d[o++] = s[i];
	}
	if (o < 2 || o % 2 != 0)
		return -1;
	if (i < n)
		for (i++; i < n && scale > 0; i++, scale /= 10) {
			if (s[i] < '0' || s[i] > '9')
				return -1;
			us += (s[i] - '0') * scale;
		}
	return ((long long)((d[0] - '0') * 10 + d[1] - '0') * 3600 +
	    ((d[2] - '0') * 10 + d[3] - '0') * 60 +
	    (d[4] - '0') * 10 + d[5] - '0') * 1000000 + us;
}

static long long
point(enum match_vr vr, const char *s, size_t n)
{
	return vr == MATCH_DA ? match_date(s, n) : match_time(s, n);
}

int
match_range_valid(enum match_vr vr, const char *k)
{
	const char *dash = strchr(k, '-');

	if (dash == NULL)
		return point(vr, k, strlen(k)) >= 0;
	if (dash == k && dash[1] == '\0')
		return 0;
	if (strchr(dash + 1, '-') != NULL)
		return 0;
	return (dash == k || point(vr, k, (size_t)(dash - k)) >= 0) &&
	    (dash[1] == '\0' || point(vr, dash + 1, strlen(dash + 1)) >= 0);
}

int
match_range(enum match_vr vr, const char *k, const char *v)
{
	const char *dash = strchr(k, '-');
	long long x = point(vr, v, strlen(v)), lo, hi;

	if (x < 0)
		return 0;
	if (dash == NULL)
		return point(vr, k, strlen(k)) == x;
	lo = dash == k ? 0 : point(vr, k, (size_t)(dash - k));
	hi = dash[1] == '\0' ? -2 : point(vr, dash + 1, strlen(dash + 1));
	if (lo < 0 || hi == -1)
		return 0;
	return x >= lo && (hi == -2 || x <= hi);
}

int
match_datetime_range(const char *dk, const char *tk, const char *dv,
    const char *tv)
{
	const char *dd = strchr(dk, '-'), *td = strchr(tk, '-');
	long long d = match_date(dv, strlen(dv));
	long long t = match_time(tv, strlen(tv));
	long long dlo, dhi, tlo, thi;

	if (d < 0 || t < 0 || dd == NULL || td == NULL)
		return 0;
	dlo = dd == dk ? 0 : match_date(dk, (size_t)(dd - dk));
	dhi = dd[1] == '\0' ? 99999999 : match_date(dd + 1, strlen(dd + 1));
	tlo = td == tk ? 0 : match_time(tk, (size_t)(td - tk));
	thi = td[1] == '\0' ? 86400000000LL : match_time(td + 1,
	    strlen(td + 1));
	if (dlo < 0 || dhi < 0 || tlo < 0 || thi < 0)
		return 0;
	if (d < dlo || (d == dlo && dd != dk && t < tlo))
		return 0;
	if (d > dhi || (d == dhi && dd[1] != '\0' && t > thi))
		return 0;
	return 1;
}

/* Any component of a '\'-separated stored value matches k. */
static int
list_match(const char *k, const char *v)
{
	char part[1024];

	while (*v != '\0') {
		size_t n = strcspn(v, "\\");

		if (n < sizeof part) {
			memcpy(part, v, n);
			part[n] = '\0';
			if (match_wild(k, part))
				return 1;
		}
		v += n;
		if (*v == '\\')
			v++;
	}
	return 0;
}

int
match_value(enum match_rule rule, const char *k, const char *v)
{
	if (rule == MATCH_NONE)
		return 1;
	if (*v == '\0')
		return 0;
	switch (rule) {
	case MATCH_WILD:
		return match_wild(k, v);
	case MATCH_EXACT:
		return strcmp(k, v) == 0;
	case MATCH_DATE:
		return match_range(MATCH_DA, k, v);
	case MATCH_TIME:
		return match_range(MATCH_TM, k, v);
	case MATCH_INTEGER:
		return strtoll(k, NULL, 10) == strtoll(v, NULL, 10);
	case MATCH_LIST:
		return list_match(k, v);
	case MATCH_NONE:
		break;
	}
	return 1;
}

int
match_any(enum match_rule rule, const char *k, int n, const char *v)
{
	for (int i = 0; i < n; i++, k += strlen(k) + 1)
		if (match_value(rule, k, v))
			return 1;
	return 0;
}
