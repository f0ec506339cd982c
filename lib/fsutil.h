/*
 * fsutil: the few file-system steps every durable write in the gateway is
 * made of, done the qmail way: write to a temporary name in the same
 * directory, fsync the file, rename it into place, fsync the directory.
 * A reader never sees a half-written file; after a crash either the old
 * state or the new one is on disk.
 */
#ifndef GW_FSUTIL_H
#define GW_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/* mkdir -p with mode 0755; existing directories are fine. */
int fs_mkdirs(const char *path, struct err *e);

/* fsync the directory at path. */
int fs_sync_dir(const char *path, struct err *e);

/* fsync the file at path (its data and metadata). */
int fs_sync_file(const char *path, struct err *e);

/* fsync the directory that contains path. */
int fs_sync_parent(const char *path, struct err *e);

/* Write len bytes to fd, retrying short writes and EINTR. */
int fs_write_all(int fd, const void *buf, size_t len, struct err *e);

/* Atomically replace path with buf: tmp file beside it, fsync, rename,
 * fsync the directory. */
int fs_write_atomic(const char *path, const void *buf, size_t len,
    struct err *e);

/* Read a whole small file (at most maxlen bytes) into a malloc'd,
 * NUL-terminated buffer. */
int fs_read_small(const char *path, size_t maxlen, char **out, size_t *len,
    struct err *e);

/* Copy src to dst durably (dst written as tmp + fsync + rename). */
int fs_copy_durable(const char *src, const char *dst, struct err *e);

#endif
