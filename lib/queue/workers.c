/*
 * workers: N worker processes over one spool (queue/queue.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/base.h"
#include "queue/queue.h"

/* A worker's exit status as the program's (75 wins over 0). */
static int
merge_status(int rc, int status)
{
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : EX_SOFTWARE;

	if (rc != EX_OK && rc != EX_TEMPFAIL)
		return rc;
	return code == EX_OK ? rc : code;
}

/* Stop the workers still running and collect every status into rc. */
static int
reap_all(pid_t *pids, int n, int rc)
{
	int status;

	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	for (int i = 0; i < n; i++) {
		if (pids[i] <= 0)
			continue;
		while (waitpid(pids[i], &status, 0) == -1) {
			if (errno != EINTR) {
				status = EX_SOFTWARE << 8;
				break;
			}
		}
		rc = merge_status(rc, status);
		pids[i] = 0;
	}
	return rc;
}

/* Any worker gone?  Its status into *rc; 1 when one has stopped. */
static int
reap_some(pid_t *pids, int n, int *rc)
{
	int status, gone = 0;

	for (int i = 0; i < n; i++) {
		if (pids[i] > 0 && waitpid(pids[i], &status, WNOHANG) ==
		    pids[i]) {
			*rc = merge_status(*rc, status);
			pids[i] = 0;
			gone = 1;
		}
	}
	return gone;
}

/* --once: wait for every worker (a signal stops them all). */
static int
wait_workers(pid_t *pids, int n, volatile sig_atomic_t *stop)
{
	int rc = EX_OK, status;

	for (int i = 0; i < n; i++) {
		while (pids[i] > 0) {
			if (waitpid(pids[i], &status, 0) == pids[i]) {
				rc = merge_status(rc, status);
				pids[i] = 0;
			} else if (errno != EINTR) {
				pids[i] = 0;
				rc = EX_SOFTWARE;
			} else if (*stop) {
				return reap_all(pids, n, rc);
			}
		}
	}
	return rc;
}

/* Following: pass the spool's wake-ups on to every worker; a worker
 * that stops on its own stops them all. */
static int
supervise(const char *dir, pid_t *pids, const int *wake, int n,
    volatile sig_atomic_t *stop)
{
	struct spool sp;
	struct err e = { 0 };
	int rc = EX_OK, r;

	if (spool_open(&sp, dir, 1, &e) == -1) {
		log_err("cannot open the spool", &e);
		return reap_all(pids, n, EX_CANTCREAT);
	}
	while (!*stop) {
		if ((r = spool_wait(&sp, 500, &e)) == -1) {
			log_err("wait failed", &e);
			rc = EX_SOFTWARE;
			break;
		}
		for (int i = 0; r == 1 && i < n; i++)
			if (write(wake[i], "w", 1) == -1 && errno != EAGAIN)
				log_warn("cannot wake a worker", "worker=%d", i);
		if (reap_some(pids, n, &rc)) {
			if (!*stop) {
				log_error("a worker stopped: stopping the others",
				    "status=%d", rc);
				if (rc == EX_OK)
					rc = EX_SOFTWARE;
			}
			break;
		}
	}
	spool_close(&sp);
	return reap_all(pids, n, rc);
}

/* In the child: its own end of its pipe only, then fn. */
static int
worker(workers_fn *fn, void *arg, int i, const int *wake, int p[2])
{
	int rc;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	for (int k = 0; k < i; k++)
		close(wake[k]);
	close(p[1]);
	rc = fn(arg, i, p[0]);
	close(p[0]);
	return rc;
}

int
workers_run(int n, int once, const char *spool_dir,
    volatile sig_atomic_t *stop, workers_fn *fn, void *arg)
{
	pid_t pids[WORKERS_MAX] = { 0 };
	int wake[WORKERS_MAX], p[2], rc;

	if (n > WORKERS_MAX)
		n = WORKERS_MAX;
	for (int i = 0; i < n; i++) {
		if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == -1 ||
		    (pids[i] = fork()) == -1) {
			log_error("cannot start a worker", "worker=%d error=%s",
			    i, strerror(errno));
			pids[i] = 0;
			rc = reap_all(pids, i, EX_OSERR);
			for (int k = 0; k < i; k++)
				close(wake[k]);
			return rc;
		}
		if (pids[i] == 0)
			return worker(fn, arg, i, wake, p);
		close(p[0]);
		wake[i] = p[1];
	}
	log_info("workers started", "jobs=%d", n);
	rc = once ? wait_workers(pids, n, stop) :
	    supervise(spool_dir, pids, wake, n, stop);
	for (int i = 0; i < n; i++)
		close(wake[i]);
	return rc;
}
