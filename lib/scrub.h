/*
 * scrub: re-hash the objects of the store against their names
 * (dcmindex --verify), at a bounded rate.
 *
 * Which objects: every objects row that a held instance row needs, or
 * that no instance points at (a kept older copy); files dcmpurge freed
 * are not expected.  Each run is a verify_runs row; each object that
 * fails is upserted into verify_problems (missing, mismatch or
 * unreadable) and one that verifies again leaves it.  Objects are read
 * in pages of short transactions, so a slow scrub never holds pacs.db.
 *
 * Never: changes, moves or deletes an object; logs or prints (problems
 * reach the caller through the report callback).
 */
#ifndef GW_SCRUB_H
#define GW_SCRUB_H

#include <sqlite3.h>

#include "err.h"
#include "store.h"

struct scrub_stats {
	long objects;			/* verified, good or bad */
	long missing, mismatch, unreadable;
	long long bytes;		/* read */
	double seconds;
};

typedef void scrub_report_fn(void *arg, const char *hash,
    const char *problem, const char *detail);

/* max_mb_per_s 0: as fast as the disk goes.  0, or -1 with e set. */
int scrub_run(sqlite3 *db, const struct store *st, long max_mb_per_s,
    scrub_report_fn *report, void *arg, struct scrub_stats *out,
    struct err *e);

#endif
