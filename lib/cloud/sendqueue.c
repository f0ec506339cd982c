/*
 * sendqueue: the order in which relaysend sends (cloud/cloud.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cloud/cloud.h"

struct sendqueue_entry {
	char name[SPOOL_NAME_MAX];
	long long due_ms;		/* 0: due now; LLONG_MAX: not ours */
	int high;
	uint64_t study;			/* a hash of it; 0: none */
	int kind;			/* job_kind() */
	int retrying;			/* put off after a failed attempt */
	long long failing_ms;		/* failing_since_ms */
	int gone;			/* claimed, or no longer waiting */
	char *body;			/* read in this pass, not claimed yet */
};

/* A candidate's place in the pass. */
struct slot {
	size_t idx;			/* into the pass's entries */
	int prio;			/* 0 high, 1 normal */
	uint64_t study;
	size_t round, first;		/* its turn within the study */
};

static uint32_t
fnv32(const char *s)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

static uint64_t
fnv64(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h;
}

int
sendqueue_mine(const struct sendqueue *q, const char *name)
{
	if (q->workers <= 1)
		return 1;
	return (int)(fnv32(name) % (uint32_t)q->workers) == q->worker;
}

static int
by_name(const void *key, const void *elem)
{
	return strcmp(key, ((const struct sendqueue_entry *)elem)->name);
}

/* What a job's body says about when and in which order it goes: due
 * at its next_attempt_ms, or now when it was put off before the last
 * retry asked for. */
static void
judge(const struct sendqueue *q, struct sendqueue_entry *e,
    const struct job *j, int ours, long long now)
{
	int retry_now = q->retry_ms > 0 && j->deferred_at_ms < q->retry_ms;

	e->due_ms = !ours ? LLONG_MAX :
	    j->next_attempt_ms > now && !retry_now ? j->next_attempt_ms : 0;
	e->high = j->high;
	e->study = j->study_instance_uid[0] == '\0' ? 0 :
	    fnv64(j->study_instance_uid) | 1;
	e->kind = job_kind(j->kind);
	e->retrying = j->attempts > 0 &&
	    strncmp(j->error, JOB_NO_ITEM, sizeof JOB_NO_ITEM - 1) != 0;
	e->failing_ms = j->failing_since_ms;
}

/* new/NAME's body (malloc'd), or NULL when it is gone. */
static char *
read_job(const struct job_ctx *ob, const char *name)
{
	char path[PATH_MAX], *body = NULL;
	struct err e = { 0 };

	if (snprintf(path, sizeof path, "%s/new/%s", ob->spool->dir, name) >=
	    (int)sizeof path ||
	    fs_read_small(path, SPOOL_JOB_MAX, &body, NULL, &e) == -1)
		return NULL;
	return body;
}

/* A name not seen before, or due again: read it.  -1 gone. */
static int
read_entry(const struct sendqueue *q, struct job_ctx *ob,
    const struct sendqueue_ops *ops, const char *name,
    struct sendqueue_entry *e)
{
	struct job j = { 0 };

	memset(e, 0, sizeof *e);
	snprintf(e->name, sizeof e->name, "%s", name);
	if ((e->body = read_job(ob, name)) == NULL)
		return -1;
	job_parse(e->body, &j);
	judge(q, e, &j, ops->ours(ops->arg, &j), job_now_ms());
	if (e->due_ms != 0) {
		free(e->body);
		e->body = NULL;
	}
	return 0;
}

/* Claim the entry's job when it is still ours and due: 1 claimed. */
static int
claim(const struct sendqueue *q, struct job_ctx *ob,
    const struct sendqueue_ops *ops, struct sendqueue_entry *e,
    struct job *j)
{
	struct err err = { 0 };
	char *body = e->body;

	e->body = NULL;
	memset(j, 0, sizeof *j);
	snprintf(j->name, sizeof j->name, "%s", e->name);
	if (body == NULL && (body = read_job(ob, e->name)) == NULL) {
		e->gone = 1;	/* gone meanwhile */
		return 0;
	}
	job_parse(body, j);
	j->body = body;
	judge(q, e, j, ops->ours(ops->arg, j), job_now_ms());
	if (e->due_ms == 0 && spool_claim_name(ob->spool, e->name, &err) == 1)
		return 1;
	if (e->due_ms == 0)
		e->gone = 1;	/* claimed by someone else, or gone */
	free(j->body);
	j->body = NULL;
	return 0;
}

static int
by_study(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;

	if (x->prio != y->prio)
		return x->prio - y->prio;
	if (x->study != y->study)
		return x->study < y->study ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int
by_turn(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;

	if (x->prio != y->prio)
		return x->prio - y->prio;
	if (x->round != y->round)
		return x->round < y->round ? -1 : 1;
	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* High first; within a priority, round robin over studies. */
static void
order(struct slot *s, size_t n)
{
	size_t round = 0, first = 0;

	qsort(s, n, sizeof *s, by_study);
	for (size_t i = 0; i < n; i++) {
		int same = i > 0 && s[i].study != 0 &&
		    s[i].prio == s[i - 1].prio && s[i].study == s[i - 1].study;

		round = same ? round + 1 : 0;
		first = same ? first : s[i].idx;
		s[i].round = round;
		s[i].first = first;
	}
	qsort(s, n, sizeof *s, by_turn);
}

/* Keep what is still waiting for the next pass; count it. */
static void
keep(struct sendqueue *q, struct job_ctx *ob, struct sendqueue_entry *all,
    size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		free(all[i].body);
		all[i].body = NULL;
		if (all[i].gone)
			continue;
		all[k] = all[i];
		if (all[k].due_ms != LLONG_MAX && all[k].retrying)
			job_census_retrying(&ob->census, all[k].kind,
			    all[k].failing_ms);
		if (all[k].due_ms != LLONG_MAX) {
			ob->remaining++;
			if (all[k].due_ms != 0 && (q->next_due_ms == 0 ||
			    all[k].due_ms < q->next_due_ms))
				q->next_due_ms = all[k].due_ms;
		}
		k++;
	}
	free(q->known);
	q->known = all;
	q->nknown = k;
}

/* Entries for this worker's names; the due ones into slots. */
static size_t
scan(struct sendqueue *q, struct job_ctx *ob, const struct sendqueue_ops *ops,
    char (*names)[SPOOL_NAME_MAX], size_t n, struct sendqueue_entry *all,
    size_t *nall, struct slot *slots)
{
	struct sendqueue_entry *w;
	long long now = job_now_ms();
	size_t nslots = 0, k = 0;

	for (size_t i = 0; i < n && !*ob->stop; i++) {
		if (!sendqueue_mine(q, names[i]))
			continue;
		w = q->nknown == 0 ? NULL : bsearch(names[i], q->known,
		    q->nknown, sizeof *w, by_name);
		if (w != NULL) {
			all[k] = *w;
			if (w->due_ms <= now)
				all[k].due_ms = 0;
		} else if (read_entry(q, ob, ops, names[i], &all[k]) == -1) {
			continue;
		}
		if (all[k].due_ms != LLONG_MAX)
			ob->census.queued[job_channel(all[k].kind)]++;
		if (all[k].due_ms == 0)
			slots[nslots++] = (struct slot){ k, all[k].high ? 0 : 1,
			    all[k].study, 0, 0 };
		k++;
	}
	*nall = k;
	return nslots;
}

int
sendqueue_pass(struct sendqueue *q, struct job_ctx *ob,
    const struct sendqueue_ops *ops)
{
	char (*names)[SPOOL_NAME_MAX];
	struct sendqueue_entry *all;
	struct slot *slots;
	struct job j;
	struct err e = { 0 };
	size_t n, nall, nslots, i;
	long long retry;
	long took;
	int rc = 0;

	ob->remaining = 0;
	q->next_due_ms = 0;
	/* job_defer() counts the jobs it puts off, keep() the others */
	memset(&ob->census, 0, sizeof ob->census);
	if ((retry = job_retry_asked(ob->spool)) > q->retry_ms) {
		q->retry_ms = retry;	/* read every job again */
		sendqueue_free(q);
	}
	if (spool_list(ob->spool, &names, &n, &e) == -1) {
		log_err("cannot read the spool", &e);
		return -1;
	}
	all = calloc(n ? n : 1, sizeof *all);
	slots = calloc(n ? n : 1, sizeof *slots);
	if (all == NULL || slots == NULL) {
		free(names);
		free(all);
		free(slots);
		log_error("out of memory", "jobs=%zu", n);
		return -1;
	}
	nslots = scan(q, ob, ops, names, n, all, &nall, slots);
	free(names);
	order(slots, nslots);
	for (i = 0; i < nslots && !*ob->stop; i++) {
		if (i > 0 && ops->woken != NULL && ops->woken(ops->arg)) {
			rc = 1;
			break;
		}
		if (!claim(q, ob, ops, &all[slots[i].idx], &j))
			continue;
		all[slots[i].idx].gone = 1;
		took = ob->uploaded + ob->events;
		ops->deliver(ops->arg, &j);
		if (ob->uploaded + ob->events > took)
			job_reached(ob, &j);
		free(j.body);
	}
	free(slots);
	keep(q, ob, all, nall);
	return rc;
}

void
sendqueue_free(struct sendqueue *q)
{
	free(q->known);
	q->known = NULL;
	q->nknown = 0;
}
