/*
 * match: C-FIND attribute matching rules (PS3.4 C.2.2.2) on text values,
 * shared by the Modality Worklist (worklist_match.c) and Query/Retrieve
 * (qr_find.c).
 *
 * Keys and values are UTF-8 with their padding removed.  Matching is case
 * sensitive, PN included (as dcmtk's wlmscpfs and dcmqrscp do; the standard
 * leaves PN case to the SCP).  '?' matches one character, not one byte.
 * A stored value that is empty matches nothing but universal matching,
 * which the callers decide before calling here.  Nothing here allocates.
 */
#ifndef GW_MATCH_H
#define GW_MATCH_H

#include <stddef.h>

enum match_vr {
	MATCH_DA,		/* YYYYMMDD (YYYY.MM.DD read too) */
	MATCH_TM,		/* HH[MM[SS[.F{1,6}]]], colons read too */
};

/* How a key's value is compared with a stored value. */
enum match_rule {
	MATCH_NONE,		/* not matched on: anything matches */
	MATCH_WILD,		/* single value, or '*' / '?' wildcards */
	MATCH_EXACT,		/* single value (UIDs, ...) */
	MATCH_DATE,		/* DA single value or range */
	MATCH_TIME,		/* TM single value or range */
	MATCH_INTEGER,		/* IS / US single value, as numbers */
	MATCH_LIST,		/* wildcard against each value of a stored
				 * multi-value joined by '\': any matches */
};

/* One key value against one stored value (an empty stored value matches
 * nothing but MATCH_NONE; universal keys never get here). */
int match_value(enum match_rule rule, const char *key, const char *value);

/* Any of n key values (NUL-terminated strings one after another, as a
 * value list or a list of UIDs) against one stored value. */
int match_any(enum match_rule rule, const char *keys, int n,
    const char *value);

/* Wildcard matching (C.2.2.2.4): '*' any run, '?' one character. */
int match_wild(const char *key, const char *value);

/* 1 when s holds '*' or '?'. */
int match_has_wildcard(const char *s);

/* 1 when s is made of '*' only (and not empty): universal matching. */
int match_all_stars(const char *s);

/* A DA value as the number YYYYMMDD, a TM value in microseconds after
 * midnight; -1 when malformed. */
long match_date(const char *s, size_t n);
long long match_time(const char *s, size_t n);

/* 1 when key is a well-formed single value or range ("A-B", "-B", "A-")
 * of vr; 0 otherwise. */
int match_range_valid(enum match_vr vr, const char *key);

/* Single value or range matching (C.2.2.2.5) of a DA or TM key. */
int match_range(enum match_vr vr, const char *key, const char *value);

/*
 * Combined date and time range matching (C.2.2.2.5.1): a date key and a
 * time key that are both ranges are one date-time range, the time bounds
 * applying to the bounding dates only.  0 also when a key is malformed.
 */
int match_datetime_range(const char *date_key, const char *time_key,
    const char *date_value, const char *time_value);

#endif
