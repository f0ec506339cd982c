/*
 * maxrss: a test helper, not a unit test.  Runs a program and, when it
 * has exited, appends the peak resident memory of it and every process
 * it waited for (getrusage RUSAGE_CHILDREN: a server's per-association
 * children, a decoder's child) to a file, so that a test can check the
 * memory of programs gatewayd runs, however short-lived:
 *
 *	maxrss FILE PROGRAM [ARG...]
 *
 * The line is "NAME KIB" (NAME: PROGRAM's last path component).  SIGTERM,
 * SIGINT and SIGHUP are passed on to the program; the exit status is the
 * program's (128 + the signal when it was killed).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t child;

static void
pass_on(int sig)
{
	if (child > 0)
		kill(child, sig);
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	struct rusage ru;
	const char *name;
	FILE *f;
	pid_t pid;
	int st;

	if (argc < 3) {
		fprintf(stderr, "usage: maxrss FILE PROGRAM [ARG...]\n");
		return 2;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = pass_on;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if ((pid = fork()) == -1) {
		perror("maxrss: fork");
		return 71;
	}
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		execv(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	child = pid;
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR) {
			perror("maxrss: waitpid");
			return 71;
		}
	getrusage(RUSAGE_CHILDREN, &ru);
	name = strrchr(argv[2], '/') ? strrchr(argv[2], '/') + 1 : argv[2];
	if ((f = fopen(argv[1], "a")) != NULL) {
		fprintf(f, "%s %ld\n", name, ru.ru_maxrss);
		fclose(f);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
