/*
 * sendqueue_test: the order relaysend sends in (lib/cloud/sendqueue), over a
 * real spool: priority=high first, then round robin over studies, a job
 * without a study a round of its own; jobs not due or not ours stay and
 * are counted as they should; a pass ends early when woken; a retry asked
 * for makes what was put off before it due; with --jobs every name is
 * exactly one worker's.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloud/cloud.h"
#include "queue/queue.h"
#include "tap.h"

static struct spool sp;
static char order[4096];
static int woken_after;		/* woken() says yes from this call on */

static int
ours(void *arg, const struct job *j)
{
	(void)arg;
	return strcmp(j->kind, "other") != 0;
}

static void
deliver(void *arg, struct job *j)
{
	struct job_ctx *ob = arg;

	snprintf(order + strlen(order), sizeof order - strlen(order), "%s%s",
	    order[0] ? " " : "", strchr(j->name, '-') + 1);
	job_done(ob, j);
}

static int
woken(void *arg)
{
	(void)arg;
	return --woken_after <= 0;
}

static void
kind_job(const char *kind, const char *name, const char *study,
    const char *extra)
{
	char body[512];
	struct err e = { 0 };
	int n = snprintf(body, sizeof body, "kind=%s\nobject=x\n"
	    "sop_instance_uid=%s\nstudy_instance_uid=%s\n%s", kind, name,
	    study, extra);

	if (spool_enqueue(&sp, name, body, (size_t)n, 0, &e) == -1)
		diag("enqueue %s: %s", name, e.msg);
}

static void
job(const char *name, const char *study, const char *extra)
{
	kind_job("image", name, study, extra);
}

int
main(int argc, char **argv)
{
	volatile sig_atomic_t stop = 0;
	struct job_ctx ob = { 0 };
	struct sendqueue q = { .worker = 0, .workers = 1 };
	struct sendqueue_ops ops = { ours, deliver, NULL, &ob };
	char dir[4096], later[64];
	struct err e = { 0 };
	int split[2] = { 0, 0 }, mine_once = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: sendqueue_test TMPDIR\n");
		return 2;
	}
	snprintf(dir, sizeof dir, "%s/relay", argv[1]);
	if (spool_open(&sp, dir, 1, &e) == -1) {
		fprintf(stderr, "sendqueue_test: %s\n", e.msg);
		return 1;
	}
	ob.spool = &sp;
	ob.stop = &stop;
	snprintf(later, sizeof later, "next_attempt_ms=%lld\n",
	    job_now_ms() + 3600 * 1000);

	for (int i = 1; i <= 6; i++) {
		char name[16];

		snprintf(name, sizeof name, "10-a%d", i);
		job(name, "1.1", "");
	}
	job("20-b1", "1.2", "");
	job("20-b2", "1.2", "");
	kind_job("mpps.status_update", "30-m", "", "");
	job("40-c1", "1.3", "priority=high\n");
	job("40-c2", "1.3", "priority=high\n");
	job("50-d1", "1.4", "priority=high\n");
	job("60-later", "1.5", later);
	kind_job("other", "70-other", "1.5", "");

	is_long(sendqueue_pass(&q, &ob, &ops), 0, "a pass sends what is due");
	is_str(order, "c1 d1 c2 a1 b1 m a2 b2 a3 a4 a5 a6",
	    "high first, then studies take turns; a job without a study "
	    "takes its own");
	is_long(ob.remaining, 1, "the job not due yet counts as queued, "
	    "the kind not ours does not");
	ok(q.next_due_ms > job_now_ms() + 3500 * 1000,
	    "... and its time is the next one due");
	is_long(spool_count(&sp, "new", &e), 2, "both are still in new/");

	order[0] = '\0';
	is_long(sendqueue_pass(&q, &ob, &ops), 0, "a second pass");
	is_str(order, "", "... sends nothing");

	job("80-e1", "1.6", "");
	job("80-e2", "1.6", "");
	job("80-e3", "1.6", "");
	order[0] = '\0';
	ops.woken = woken;
	woken_after = 1;
	is_long(sendqueue_pass(&q, &ob, &ops), 1,
	    "woken during a pass: it ends early, saying more is due");
	is_str(order, "e1", "... after the job in hand");
	is_long(ob.remaining, 3, "... the two left count as queued");
	woken_after = 100;
	order[0] = '\0';
	is_long(sendqueue_pass(&q, &ob, &ops), 0, "the next pass");
	is_str(order, "e2 e3", "... sends them");

	/* A request arrives while the routine job is claimed and deferred. */
	kind_job("study.image_received", "90-f1", "1.7", "");
	ok(spool_claim_name(&sp, "90-f1", &e) == 1, "a job is claimed");
	kind_job("study.image_received", "90-f1", "1.7", "priority=high\n");
	{
		struct job f = { 0 };
		char *body = NULL;

		snprintf(f.name, sizeof f.name, "90-f1");
		snprintf(f.kind, sizeof f.kind, "study.image_received");
		f.attempts = 1;
		job_defer(&ob, &f, "will retry", "test", -1);
		ok(spool_claim_name(&sp, "90-f1", &e) == 1 &&
		    spool_read(&sp, "90-f1", &body, &e) == 0 &&
		    strstr(body, "priority=high\n") != NULL &&
		    strstr(body, "attempts=") == NULL,
		    "deferred meanwhile, the newer job of the same name stands");
		free(body);
		spool_finish(&sp, "90-f1", &e);
	}

	/* gatewayctl retry: what was put off before it is due at once. */
	{
		char after[160];
		int waiting = -1;

		snprintf(after, sizeof after, "%sdeferred_at_ms=%lld\n", later,
		    job_now_ms() + 600 * 1000);
		job("65-after", "1.5", after);
		order[0] = '\0';
		is_long(sendqueue_pass(&q, &ob, &ops), 0, "two jobs wait");
		is_str(order, "", "... and are not sent");
		ok(job_retry_now(&sp, &waiting, &e) == 0, "a retry is asked for");
		is_long(waiting, 2, "... which counts the jobs waiting");
		ok(job_retry_asked(&sp) >= job_now_ms() - 60000,
		    "... and is in the spool's retry file");
		order[0] = '\0';
		is_long(sendqueue_pass(&q, &ob, &ops), 0, "the next pass");
		is_str(order, "later", "... sends the job put off before the "
		    "retry at once, though remembered as not due");
		is_long(ob.remaining, 1, "one put off after the retry waits on");
		ok(spool_claim_name(&sp, "65-after", &e) == 1 &&
		    spool_finish(&sp, "65-after", &e) == 0, "(cleared)");
	}

	for (int i = 0; i < 200; i++) {
		char name[32];
		int n = 0;

		snprintf(name, sizeof name, "job-%d", i);
		for (int w = 0; w < 2; w++) {
			struct sendqueue s2 = { .worker = w, .workers = 2 };

			if (sendqueue_mine(&s2, name)) {
				n++;
				split[w]++;
			}
		}
		mine_once &= n == 1;
	}
	ok(mine_once, "with --jobs 2 every name is exactly one worker's");
	ok(split[0] > 50 && split[1] > 50, "... and both get a share");

	sendqueue_free(&q);
	spool_close(&sp);
	return tap_done();
}
