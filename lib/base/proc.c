/*
 * proc: run a helper program with a deadline.  See base/base.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"

int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The child: its own process group (so a timeout kills all of it). */
static void __attribute__((noreturn))
exec_child(char *const argv[], int in, int out)
{
	(void)setpgid(0, 0);
	if (in == -1)
		in = open("/dev/null", O_RDONLY);
	if (in == -1 || dup2(in, STDIN_FILENO) == -1 ||
	    dup2(out, STDOUT_FILENO) == -1)
		_exit(127);
	execvp(argv[0], argv);
	_exit(127);
}

/*
 * Feed in to *fd_in (closed and set to -1 when done) and read fd_out
 * into buf until EOF.  The length read, or -1 (timeout, oversize, I/O
 * error) with e set.
 */
static ssize_t
exchange(int *fd_in, const char *in, size_t inlen, int fd_out, char *buf,
    size_t bufsz, int64_t deadline, struct err *e)
{
	struct pollfd p[2] = { { .fd = fd_out, .events = POLLIN },
	    { .fd = *fd_in, .events = POLLOUT } };
	size_t len = 0, sent = 0;
	int64_t left;
	ssize_t r;

	for (;;) {
		if ((left = deadline - mono_ms()) <= 0)
			return err_set(e, ETIMEDOUT, "timed out");
		if (poll(p, p[1].fd == -1 ? 1 : 2, (int)(left > INT32_MAX ?
		    INT32_MAX : left)) == -1) {
			if (errno == EINTR)
				continue;
			return err_sys(e, "poll");
		}
		if (p[1].fd != -1 && p[1].revents != 0) {
			r = write(p[1].fd, in + sent, inlen - sent);
			if (r == -1 && errno != EINTR && errno != EAGAIN)
				inlen = sent;	/* it stopped reading */
			else if (r > 0)
				sent += (size_t)r;
			if (sent == inlen) {
				(void)close(p[1].fd);
				p[1].fd = *fd_in = -1;
			}
		}
		if (p[0].revents == 0)
			continue;
		r = read(fd_out, buf + len, bufsz - len);
		if (r == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r == -1)
			return err_sys(e, "read");
		if (r == 0)
			return (ssize_t)len;
		if ((len += (size_t)r) == bufsz)
			return err_set(e, EMSGSIZE, "printed %zu bytes or more "
			    "(the limit)", bufsz);
	}
}

/* Wait for the child until deadline; 0 with *status, or -1 (timeout). */
static int
wait_child(pid_t pid, int *status, int64_t deadline, struct err *e)
{
	const struct timespec tick = { 0, 10 * 1000 * 1000 };
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r == -1 && errno != EINTR)
			return err_sys(e, "waitpid");
		if (mono_ms() >= deadline)
			return err_set(e, ETIMEDOUT, "timed out");
		(void)nanosleep(&tick, NULL);
	}
}

/* Kill the child's process group and reap the child. */
static void
kill_child(pid_t pid)
{
	int status;

	(void)kill(-pid, SIGKILL);
	(void)kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
}

int
proc_exit_ok(int status, struct err *e)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		return err_set(e, EIO, "exited with status %d",
		    WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return err_set(e, EIO, "killed by signal %d", WTERMSIG(status));
	return err_set(e, EIO, "ended with wait status %d", status);
}

static void
close_pair(int p[2])
{
	if (p[0] != -1)
		(void)close(p[0]);
	if (p[1] != -1)
		(void)close(p[1]);
	p[0] = p[1] = -1;
}

int
proc_run(char *const argv[], const char *in, size_t inlen, char *buf,
    size_t bufsz, int timeout_ms, int *status, struct err *e)
{
	int64_t deadline = mono_ms() + timeout_ms;
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 };
	ssize_t len;
	pid_t pid;

	if ((in != NULL && pipe2(pin, O_CLOEXEC) == -1) ||
	    pipe2(pout, O_CLOEXEC) == -1) {
		err_sys(e, "pipe");
		close_pair(pin);
		return -1;
	}
	if ((pid = fork()) == -1) {
		err_sys(e, "fork");
		close_pair(pin);
		close_pair(pout);
		return -1;
	}
	if (pid == 0)
		exec_child(argv, pin[0], pout[1]);
	(void)setpgid(pid, pid);	/* no race with the child's own call */
	if (pin[0] != -1)
		(void)close(pin[0]);
	(void)close(pout[1]);
	if (pin[1] != -1)
		(void)fcntl(pin[1], F_SETFL, O_NONBLOCK);
	len = exchange(&pin[1], in, inlen, pout[0], buf, bufsz - 1, deadline,
	    e);
	(void)close(pout[0]);
	if (len == -1) {
		if (pin[1] != -1)
			(void)close(pin[1]);
		kill_child(pid);
		return -1;
	}
	buf[len] = '\0';
	if (wait_child(pid, status, deadline, e) == -1) {
		kill_child(pid);
		return -1;
	}
	return 0;
}

int
proc_on_stop(void (*handler)(int))
{
	struct sigaction sa = { 0 };

	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGINT, &sa, NULL) == -1 ||
	    sigaction(SIGHUP, &sa, NULL) == -1)
		return -1;
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL);
}
