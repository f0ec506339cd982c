/*
 * err: the error a library function hands back to its caller.
 *
 * Every lib/ function that can fail returns -1 (or NULL) and, when the
 * caller passed a non-NULL struct err, fills it with one line a person can
 * act on ("truncated element (0028,0010) at offset 812").  Library code
 * never prints and never exits: programs decide what to do with the error.
 */
#ifndef GW_ERR_H
#define GW_ERR_H

#include <stddef.h>

struct err {
	int code;		/* errno, or a module's own code; 0 = none */
	char msg[512];
};

/* Sets e (if not NULL) to the formatted message; returns -1 for tail calls. */
int err_set(struct err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As err_set, with ": strerror(errno)" appended and code = errno. */
int err_sys(struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes an existing message: "prefix: old message". */
int err_wrap(struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
