/* spool_test: the maildir queue's promises, on a real directory. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "queue/queue.h"
#include "tap.h"

static int
exists(const char *dir, const char *sub, const char *name)
{
	char p[4200];

	snprintf(p, sizeof p, "%s/%s/%s", dir, sub, name);
	return access(p, F_OK) == 0;
}

/* Entries in dir/sub/ other than . and .. */
static int
entries(const char *dir, const char *sub)
{
	char p[4200];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(p, sizeof p, "%s/%s", dir, sub);
	if ((d = opendir(p)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* body: who=W, then W's own length of padding. */
static size_t
racer_body(char *buf, char who)
{
	size_t n = who == 'a' ? 3000 : 100;

	memset(buf, who, n);
	memcpy(buf, who == 'a' ? "who=a\n" : "who=b\n", 6);
	buf[n - 1] = '\n';
	return n;
}

/* Two processes enqueue jobs of one name at once, over and over: each
 * enqueue succeeds and the job is always one whole body. */
static void
check_same_name_race(const char *dir)
{
	char buf[3000], want_a[3000], want_b[3000], path[4200], *got = NULL;
	size_t na = racer_body(want_a, 'a'), nb = racer_body(want_b, 'b');
	size_t len = 0;
	struct spool s;
	struct err e = { 0 };
	int failures = 0, status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		size_t n = racer_body(buf, 'b');
		int bad = 0;

		if (spool_open(&s, dir, 0, &e) == -1)
			_exit(2);
		for (int i = 0; i < 300; i++)
			bad += spool_enqueue(&s, "same", buf, n, 0, &e) == -1;
		spool_close(&s);
		_exit(bad ? 1 : 0);
	}
	if (spool_open(&s, dir, 0, &e) == -1) {
		ok(0, "spool_open for the race: %s", e.msg);
		waitpid(pid, &status, 0);
		return;
	}
	for (int i = 0; i < 300; i++)
		failures += spool_enqueue(&s, "same", want_a, na, 0, &e) == -1;
	waitpid(pid, &status, 0);
	ok(failures == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "two processes enqueueing one name 300 times each: no failure");
	snprintf(path, sizeof path, "%s/new/same", dir);
	ok(fs_read_small(path, SPOOL_JOB_MAX, &got, &len, &e) == 0 &&
	    ((len == na && memcmp(got, want_a, na) == 0) ||
	    (len == nb && memcmp(got, want_b, nb) == 0)),
	    "... and the job is one whole body, never a mix");
	free(got);
	is_long(entries(dir, "tmp"), 0, "... leaving nothing in tmp/");
	unlink(path);
	spool_close(&s);
}

/* tmp/NAME.PID of a dead writer goes at recovery; a live one's stays. */
static void
check_tmp_sweep(const char *dir)
{
	char dead[4200], live[4200];
	struct spool s;
	struct err e = { 0 };
	pid_t pid = fork();
	int fd;

	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);	/* its pid is free now */
	snprintf(dead, sizeof dead, "%s/tmp/job.%ld", dir, (long)pid);
	snprintf(live, sizeof live, "%s/tmp/job.%ld", dir, (long)getppid());
	if ((fd = open(dead, O_WRONLY | O_CREAT, 0644)) != -1)
		close(fd);
	if ((fd = open(live, O_WRONLY | O_CREAT, 0644)) != -1)
		close(fd);
	if (spool_open(&s, dir, 0, &e) == -1) {
		ok(0, "spool_open for the sweep: %s", e.msg);
		return;
	}
	spool_recover(&s, &e);
	ok(access(dead, F_OK) == -1, "recovery removes a dead writer's tmp/ file");
	ok(access(live, F_OK) == 0, "... and keeps a live one's");
	unlink(live);
	spool_close(&s);
}

/* A job retried keeps the time it was first queued; the census counts
 * the jobs and ages the oldest from that time. */
static void
check_first_queued(const char *root)
{
	char dir[4200], path[4300];
	struct spool s;
	struct spool_census c;
	struct timespec old[2] = { { 0, 0 }, { 0, 0 } };
	struct stat st;
	struct err e = { 0 };

	snprintf(dir, sizeof dir, "%s/census", root);
	if (spool_open(&s, dir, 1, &e) == -1) {
		ok(0, "census spool: %s", e.msg);
		return;
	}
	spool_enqueue(&s, "mpps-1", "kind=mpps.status_update\n", 24, 0, &e);
	spool_enqueue(&s, "img-1", "kind=image\n", 11, 0, &e);
	snprintf(path, sizeof path, "%s/new/mpps-1", dir);
	old[0].tv_sec = old[1].tv_sec = time(NULL) - 240;
	utimensat(AT_FDCWD, path, old, 0);
	spool_claim_name(&s, "mpps-1", &e);
	ok(spool_requeue(&s, "mpps-1", "kind=mpps.status_update\nattempts=1\n",
	    35, &e) == 0, "a claimed job is queued again with its next attempt");
	ok(stat(path, &st) == 0 && st.st_mtime == old[1].tv_sec,
	    "... keeping the time it was first queued");
	ok(!exists(dir, "cur", "mpps-1"), "... its claim dropped");
	spool_claim_name(&s, "mpps-1", &e);
	ok(spool_rewrite(&s, "mpps-1", "kind=mpps.status_update\nattempts=2\n",
	    35, &e) == 0, "a claimed job rewritten");
	snprintf(path, sizeof path, "%s/cur/mpps-1", dir);
	ok(stat(path, &st) == 0 && st.st_mtime == old[1].tv_sec,
	    "... keeps it too");
	spool_unclaim(&s, "mpps-1", &e);
	spool_census(dir, &c);
	ok(c.count[0] == 2 && c.count[1] == 0 && c.count[2] == 0,
	    "the census counts the jobs waiting, claimed and failed");
	ok(c.oldest == old[1].tv_sec, "... and the oldest waits since its "
	    "first queueing, not its last retry");
	spool_close(&s);
}

int
main(int argc, char **argv)
{
	char dir[4096], names[8][SPOOL_NAME_MAX], val[64], *body = NULL;
	struct spool s, s2;
	struct err e = { 0 };
	int n;

	if (argc != 2) {
		fprintf(stderr, "usage: spool_test TMPDIR\n");
		return 2;
	}
	snprintf(dir, sizeof dir, "%s/spool", argv[1]);

	ok(spool_open(&s, dir, 0, &e) == -1, "opening a missing spool fails");
	ok(spool_open(&s, dir, 1, &e) == 0, "create makes tmp/ new/ cur/ failed/ and wake");
	ok(exists(dir, "failed", "") && exists(dir, "", "wake"), "failed/ and the FIFO exist");

	ok(spool_enqueue(&s, "b-job", "object=bb\n", 10, 0, &e) == 0, "enqueue a named job");
	ok(spool_enqueue(&s, "a-job", "object=aa\nsize=3\n", 17, 0, &e) == 0, "enqueue another");
	ok(spool_enqueue(&s, "../evil", "x", 1, 0, &e) == -1, "a name with a slash is refused");
	is_long(spool_count(&s, "new", &e), 2, "two jobs wait in new/");

	n = spool_claim(&s, names, 1, &e);
	is_long(n, 1, "claim one");
	is_str(names[0], "a-job", "the oldest name comes first");
	ok(exists(dir, "cur", "a-job") && !exists(dir, "new", "a-job"), "a claimed job moved to cur/");
	ok(spool_read(&s, "a-job", &body, &e) == 0, "read the claimed job");
	ok(spool_job_get(body, "size", val, sizeof val) == 0 && strcmp(val, "3") == 0,
	    "key=value lines are read back");
	ok(spool_job_get(body, "missing", val, sizeof val) == -1, "an absent key is reported");
	ok(spool_job_get(body, "object", val, 2) == -1, "a value too long for the buffer is refused");
	free(body);

	/* A crash: a new consumer recovers cur/. */
	ok(spool_open(&s2, dir, 0, &e) == 0, "a second consumer opens the spool");
	is_long(spool_recover(&s2, &e), 1, "recover returns the claimed job to new/");
	ok(exists(dir, "new", "a-job") && !exists(dir, "cur", "a-job"), "nothing is left in cur/");

	n = spool_claim(&s2, names, 8, &e);
	is_long(n, 2, "claim both");
	ok(spool_finish(&s2, names[0], &e) == 0 && !exists(dir, "cur", names[0]), "finish removes the claim");
	ok(spool_fail(&s2, names[1], "bad object: truncated", &e) == 0, "fail a job");
	ok(exists(dir, "failed", "b-job") && exists(dir, "failed", "b-job.reason"), "failed/ keeps the job and its reason");
	is_long(spool_count(&s2, "failed", &e), 1, "the count of failed jobs ignores reason files");
	is_long(spool_retry_failed(&s2, &e), 1, "retry-failed moves it back");
	ok(exists(dir, "new", "b-job") && !exists(dir, "failed", "b-job.reason"), "back in new/, reason gone");

	/* Deferred jobs are invisible until flushed. */
	ok(spool_enqueue(&s, NULL, "k=1\n", 4, SPOOL_DEFER, &e) == 0 &&
	    spool_enqueue(&s, NULL, "k=2\n", 4, SPOOL_DEFER, &e) == 0, "two deferred jobs");
	is_long(spool_count(&s, "new", &e), 1, "deferred jobs are not visible yet");
	ok(spool_flush(&s, &e) == 0, "flush");
	is_long(spool_count(&s, "new", &e), 3, "after flush they are");
	ok(spool_enqueue(&s, "same", "v=1\n", 4, SPOOL_DEFER, &e) == 0 &&
	    spool_enqueue(&s, "same", "v=2\n", 4, SPOOL_DEFER, &e) == 0 &&
	    spool_flush(&s, &e) == 0, "one name deferred twice in a batch flushes");
	is_long(spool_count(&s, "new", &e), 4, "as one job");
	ok(spool_claim(&s, names, 8, &e) == 4 && spool_read(&s, "same", &body, &e) == 0 &&
	    strcmp(body, "v=2\n") == 0, "holding the last body written");
	free(body);
	spool_recover(&s, &e);
	n = spool_claim(&s, names, 8, &e);
	ok(n == 4 && strcmp(names[0], names[1]) < 0 && strcmp(names[1], names[2]) < 0,
	    "claims come in name order");
	for (int i = 0; i < n; i++)
		spool_finish(&s, names[i], &e);

	/* Picking jobs by name, rewriting a claimed one. */
	{
		char (*list)[SPOOL_NAME_MAX] = NULL;
		size_t ln = 0;

		spool_enqueue(&s, "n-2", "v=2\n", 4, 0, &e);
		spool_enqueue(&s, "n-1", "v=1\n", 4, 0, &e);
		ok(spool_list(&s, &list, &ln, &e) == 0 && ln == 2 &&
		    strcmp(list[0], "n-1") == 0 && strcmp(list[1], "n-2") == 0,
		    "spool_list: the waiting names, oldest first");
		free(list);
		is_long(spool_claim_name(&s, "n-2", &e), 1, "claim one by name");
		is_long(spool_claim_name(&s, "n-2", &e), 0, "claiming it again: no longer waiting");
		ok(exists(dir, "cur", "n-2") && exists(dir, "new", "n-1"), "only that one moved");
		ok(spool_rewrite(&s, "n-2", "v=3\nid=x\n", 9, &e) == 0 &&
		    spool_read(&s, "n-2", &body, &e) == 0 &&
		    strcmp(body, "v=3\nid=x\n") == 0, "a claimed job rewritten in place");
		free(body);
		is_long(entries(dir, "tmp"), 0, "leaving nothing in tmp/");
		is_long(spool_unclaim(&s, "n-2", &e), 1, "unclaim gives it back");
		ok(exists(dir, "new", "n-2") && !exists(dir, "cur", "n-2"), "to new/, rewritten body and all");
		is_long(spool_unclaim(&s, "n-2", &e), 0, "unclaiming what is not claimed: 0");
		spool_claim_name(&s, "n-1", &e);
		spool_claim_name(&s, "n-2", &e);
		spool_finish(&s, "n-1", &e);
		spool_finish(&s, "n-2", &e);
	}

	/* Wake-up through the FIFO. */
	is_long(spool_wait(&s, 50, &e), 0, "wait times out with nothing queued");
	if (fork() == 0) {
		struct spool p;
		struct err pe;
		usleep(100000);
		if (spool_open(&p, dir, 0, &pe) == 0)
			spool_enqueue(&p, NULL, "k=3\n", 4, 0, &pe);
		spool_close(&p);
		_exit(0);
	}
	is_long(spool_wait(&s, 5000, &e), 1, "an enqueue from another process wakes the consumer");
	wait(NULL);
	is_long(spool_count(&s, "new", &e), 1, "and its job is there");

	check_same_name_race(dir);
	check_tmp_sweep(dir);
	check_first_queued(argv[1]);
	spool_close(&s);
	spool_close(&s2);
	return tap_done();
}
