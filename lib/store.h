/*
 * store: the content-addressed object store.
 *
 * An object's name is the SHA-256 of its bytes: <root>/ab/cd/<64 hex>.dcm.
 * Objects are written once and never modified, so `sha256sum` verifies
 * any of them.  store_adopt() moves a file in durably: the file is
 * fsynced, linked (or, across file systems, copied) under its final name,
 * and the directory fsynced before it returns; the source is left for
 * the caller to remove once it has recorded the object elsewhere.  Two
 * copies with the same bytes are one object.
 */
#ifndef GW_STORE_H
#define GW_STORE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define STORE_HASH_LEN	64
#define STORE_RELPATH_MAX (2 + 1 + 2 + 1 + STORE_HASH_LEN + 4 + 1)

struct store {
	char root[PATH_MAX];
};

/* Use the store at root, creating root if create is set. */
int store_open(struct store *st, const char *root, int create,
    struct err *e);

/* SHA-256 of len bytes at buf as 64 lowercase hex digits + NUL. */
int store_hash_buf(const void *buf, size_t len,
    char hex[STORE_HASH_LEN + 1], struct err *e);

/* 1 when hex is 64 lowercase hex digits. */
int store_valid_hash(const char *hex);

/* "ab/cd/<hash>.dcm" (relative to the root). */
void store_relpath(const char *hash, char out[STORE_RELPATH_MAX]);

/* The absolute path of an object. */
int store_path(const struct store *st, const char *hash, char *out,
    size_t outsz, struct err *e);

/*
 * Make src (whose hash the caller computed) the object hash, durably.
 * src is not removed.  Returns 1 when the object is new, 0 when the
 * store already had it, -1 on error.
 */
int store_adopt(struct store *st, const char *src, const char *hash,
    struct err *e);

/* Re-hash an object and compare with its name: 0 good, -1 bad/missing. */
int store_verify(const struct store *st, const char *hash, struct err *e);

#endif
