/*
 * probe: does something take TCP connections there (see base/base.h).
 */
#include "base/base.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long
monotonic_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The connect in progress on fd: 0 connected, else its errno
 * (ETIMEDOUT when it did not finish by the deadline). */
static int
finished(int fd, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	socklen_t len = sizeof(int);
	long long left;
	int rc, soerr = 0;

	while ((left = deadline - monotonic_ms()) > 0) {
		rc = poll(&p, 1, (int)left);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc != 1)
			return rc == -1 ? errno : ETIMEDOUT;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
			return errno;
		return soerr;
	}
	return ETIMEDOUT;
}

int
probe_tcp(const char *host, const char *port, int timeout_ms)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *a;
	long long deadline = monotonic_ms() + timeout_ms;
	int fd, why = EHOSTUNREACH;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return EHOSTUNREACH;
	for (a = res; a != NULL && why != 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, a->ai_protocol);
		if (fd == -1) {
			why = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			why = 0;
		else
			why = errno == EINPROGRESS ? finished(fd, deadline) :
			    errno;
		close(fd);
	}
	freeaddrinfo(res);
	return why;
}
