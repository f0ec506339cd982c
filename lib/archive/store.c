#include "archive/archive.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The low-level SHA-256 calls, deprecated in OpenSSL 3 in favour of EVP,
 * run the same assembly without EVP's provider and configuration set-up,
 * which costs about 4 ms per process: storescp-hook runs once per image.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include "base/base.h"

int
store_open(struct store *st, const char *root, int create, struct err *e)
{
	struct stat sb;

	if (snprintf(st->root, sizeof st->root, "%s", root) >=
	    (int)sizeof st->root)
		return err_set(e, ENAMETOOLONG, "store path too long");
	if (create && fs_mkdirs(root, e) == -1)
		return -1;
	if (stat(root, &sb) == -1)
		return err_sys(e, "store %s", root);
	if (!S_ISDIR(sb.st_mode))
		return err_set(e, ENOTDIR, "store %s: not a directory", root);
	return 0;
}

/* The digest of ctx, finished, as 64 hex digits. */
static int
hash_final(SHA256_CTX *ctx, char hex[STORE_HASH_LEN + 1], struct err *e)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];

	if (SHA256_Final(md, ctx) != 1)
		return err_set(e, EIO, "SHA-256 failed (OpenSSL)");
	for (unsigned i = 0; i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[STORE_HASH_LEN] = '\0';
	return 0;
}

int
store_hash_buf(const void *buf, size_t len, char hex[STORE_HASH_LEN + 1],
    struct err *e)
{
	SHA256_CTX ctx;

	if (SHA256_Init(&ctx) != 1 || SHA256_Update(&ctx, buf, len) != 1)
		return err_set(e, EIO, "SHA-256 failed (OpenSSL)");
	return hash_final(&ctx, hex, e);
}

/*
 * SHA-256 of the file open on fd, read a chunk at a time: a mapping of a
 * 2 GB object would count whole in the process's resident memory, the
 * page cache that read() goes through does not.
 */
#define HASH_CHUNK	((size_t)1 << 20)

static int
hash_fd(int fd, const char *path, char hex[STORE_HASH_LEN + 1],
    struct err *e)
{
	SHA256_CTX ctx;
	uint8_t *buf = malloc(HASH_CHUNK);
	ssize_t n;
	int rc = 0;

	if (buf == NULL)
		return err_set(e, ENOMEM, "out of memory");
	if (SHA256_Init(&ctx) != 1)
		rc = err_set(e, EIO, "SHA-256 failed (OpenSSL)");
	while (rc == 0 && (n = read(fd, buf, HASH_CHUNK)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			rc = err_sys(e, "read %s", path);
		else if (SHA256_Update(&ctx, buf, (size_t)n) != 1)
			rc = err_set(e, EIO, "SHA-256 failed (OpenSSL)");
	}
	free(buf);
	return rc == 0 ? hash_final(&ctx, hex, e) : -1;
}

/*
 * The same through mappings of HASH_WINDOW bytes at a time: no copy out
 * of the page cache, and no more than a window resident.  1 when the
 * file cannot be mapped (the caller reads it instead).
 */
#define HASH_WINDOW	((size_t)8 << 20)

static int
hash_mapped(int fd, char hex[STORE_HASH_LEN + 1], struct err *e)
{
	struct stat sb;
	SHA256_CTX ctx;
	off_t off;

	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || sb.st_size == 0)
		return 1;
	if (SHA256_Init(&ctx) != 1)
		return err_set(e, EIO, "SHA-256 failed (OpenSSL)");
	for (off = 0; off < sb.st_size; off += (off_t)HASH_WINDOW) {
		size_t len = (size_t)(sb.st_size - off) < HASH_WINDOW ?
		    (size_t)(sb.st_size - off) : HASH_WINDOW;
		void *p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE,
		    fd, off);
		int ok;

		if (p == MAP_FAILED)
			return off == 0 ? 1 : err_sys(e, "mmap");
		ok = SHA256_Update(&ctx, p, len) == 1;
		munmap(p, len);
		if (!ok)
			return err_set(e, EIO, "SHA-256 failed (OpenSSL)");
	}
	return hash_final(&ctx, hex, e);
}

int
store_hash_fd(int fd, char hex[STORE_HASH_LEN + 1], struct err *e)
{
	int rc;

	if ((rc = hash_mapped(fd, hex, e)) != 1)
		return rc;
	if (lseek(fd, 0, SEEK_SET) == -1)
		return err_sys(e, "lseek");
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return hash_fd(fd, "the file", hex, e);
}

int
store_valid_hash(const char *hex)
{
	size_t i;

	for (i = 0; hex[i] != '\0'; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') ||
		    (hex[i] >= 'a' && hex[i] <= 'f')))
			return 0;
	return i == STORE_HASH_LEN;
}

void
store_relpath(const char *hash, char out[STORE_RELPATH_MAX])
{
	snprintf(out, STORE_RELPATH_MAX, "%.2s/%.2s/%s.dcm", hash, hash + 2,
	    hash);
}

int
store_path(const struct store *st, const char *hash, char *out,
    size_t outsz, struct err *e)
{
	char rel[STORE_RELPATH_MAX];
	int n;

	if (!store_valid_hash(hash))
		return err_set(e, EINVAL, "not an object name: \"%.80s\"", hash);
	store_relpath(hash, rel);
	n = snprintf(out, outsz, "%s/%s", st->root, rel);
	if (n < 0 || (size_t)n >= outsz)
		return err_set(e, ENAMETOOLONG, "store path too long");
	return 0;
}

int
store_adopt(struct store *st, const char *src, const char *hash,
    unsigned flags, struct err *e)
{
	char dst[PATH_MAX], dir[PATH_MAX];
	int batch = (flags & STORE_BATCH) != 0;

	if (store_path(st, hash, dst, sizeof dst, e) == -1)
		return -1;
	if (access(dst, F_OK) == 0)
		return 0;
	if (snprintf(dir, sizeof dir, "%s/%.2s/%.2s", st->root, hash,
	    hash + 2) >= (int)sizeof dir)
		return err_set(e, ENAMETOOLONG, "store path too long");
	if (fs_mkdirs(dir, e) == -1 || (!batch && fs_sync_file(src, e) == -1))
		return -1;
	if (link(src, dst) == -1) {
		if (errno == EEXIST)
			return 0;
		if (errno != EXDEV && errno != EPERM)
			return err_sys(e, "link %s to %s", src, dst);
		if (fs_copy_durable(src, dst, e) == -1)
			return -1;
		return 1;
	}
	/* The new name is durable once its directory is. */
	if (!batch && fs_sync_dir(dir, e) == -1)
		return -1;
	return 1;
}

int
store_verify(const struct store *st, const char *hash, struct err *e)
{
	char path[PATH_MAX], got[STORE_HASH_LEN + 1];
	int fd, r;

	if (store_path(st, hash, path, sizeof path, e) == -1)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return err_sys(e, "object %s", hash);
	r = hash_fd(fd, path, got, e);
	close(fd);
	if (r == -1)
		return -1;
	if (strcmp(got, hash) != 0)
		return err_set(e, EIO, "object %s: content hashes to %s",
		    hash, got);
	return 0;
}
