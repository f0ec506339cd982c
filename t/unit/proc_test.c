/* proc_run: input and output through pipes, deadlines, exit statuses. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/base.h"
#include "tap.h"

int
main(void)
{
	char *const cat[] = { "cat", NULL };
	char *const sh_sleep[] = { "/bin/sh", "-c", "sleep 30", NULL };
	char *const sh_false[] = { "/bin/sh", "-c", "exit 3", NULL };
	char *const sh_true[] = { "/bin/sh", "-c", "exit 0", NULL };
	char *const nothing[] = { "no-such-program-here", NULL };
	size_t big = 300 * 1024;
	char *in = malloc(big), *out = malloc(big + 2), small[16];
	struct err e = { 0 };
	int status = -1;

	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < big; i++)
		in[i] = 'a' + (char)(i % 26);
	ok(proc_run(cat, in, big, out, big + 2, 10000, &status, &e) == 0 &&
	    proc_exit_ok(status, &e) == 0 && memcmp(in, out, big) == 0 &&
	    out[big] == '\0', "300 KiB in and out of cat through pipes");
	ok(proc_run(cat, in, big, small, sizeof small, 10000, &status,
	    &e) == -1 && e.code == EMSGSIZE, "too much output: EMSGSIZE");
	ok(proc_run(sh_sleep, NULL, 0, small, sizeof small, 200, &status,
	    &e) == -1 && e.code == ETIMEDOUT, "over the deadline: ETIMEDOUT");
	ok(proc_run(sh_false, NULL, 0, small, sizeof small, 10000, &status,
	    &e) == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 3 &&
	    proc_exit_ok(status, &e) == -1 &&
	    strstr(e.msg, "status 3") != NULL, "an exit status is handed back");
	ok(proc_run(sh_true, in, big, small, sizeof small, 10000, &status,
	    &e) == 0 && proc_exit_ok(status, &e) == 0,
	    "a child that never reads its input does not hang us");
	ok(proc_run(nothing, NULL, 0, small, sizeof small, 10000, &status,
	    &e) == 0 && WEXITSTATUS(status) == 127,
	    "a program that is not there exits 127");
	free(in);
	free(out);
	return tap_done();
}
