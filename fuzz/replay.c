/*
 * replay: a main() for a libFuzzer target built without libFuzzer.  Each
 * argument is a file or a directory; every regular file (directories one
 * level deep, in name order) is fed once to LLVMFuzzerTestOneInput, as
 * libFuzzer would feed it.  The sanitizers do the judging: a crash, a
 * leak or a UB report ends the process with their exit code.  Prints one
 * line per file on stderr with -v, and the count at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int verbose;

/* Read all of path into *out (malloc'd, never NULL on success). */
static int
slurp(const char *path, uint8_t **out, size_t *len)
{
	FILE *f;
	uint8_t *buf = NULL, *nbuf;
	size_t cap = 0, n = 0, got;

	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			if ((nbuf = realloc(buf, cap)) == NULL) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nbuf;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	/* An exact-size copy, so ASan sees a read one past the input. */
	if ((*out = malloc(n ? n : 1)) == NULL) {
		free(buf);
		return -1;
	}
	memcpy(*out, buf, n);
	free(buf);
	*len = n;
	return 0;
}

static int
replay_file(const char *path)
{
	uint8_t *data;
	size_t len;

	if (slurp(path, &data, &len) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (verbose)
		fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	return 0;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Every regular file in dir; returns the count or -1. */
static int
replay_dir(const char *dir)
{
	struct dirent **names;
	struct stat st;
	char path[4096];
	int i, n, count = 0, rc = 0;

	if ((n = scandir(dir, &names, NULL, by_name)) == -1) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (rc == 0 && names[i]->d_name[0] != '.' &&
		    (size_t)snprintf(path, sizeof path, "%s/%s", dir,
		    names[i]->d_name) < sizeof path &&
		    stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(path) == -1)
				rc = -1;
			else
				count++;
		}
		free(names[i]);
	}
	free(names);
	return rc == -1 ? -1 : count;
}

int
main(int argc, char **argv)
{
	struct stat st;
	int i, n, total = 0;

	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		verbose = 1;
		argv++;
		argc--;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: %s [-v] FILE|DIR...\n", argv[0]);
		return EX_USAGE;
	}
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == -1) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
			    strerror(errno));
			return EX_NOINPUT;
		}
		if (S_ISDIR(st.st_mode))
			n = replay_dir(argv[i]);
		else
			n = replay_file(argv[i]) == 0 ? 1 : -1;
		if (n == -1)
			return EX_IOERR;
		total += n;
	}
	printf("replayed %d inputs\n", total);
	return 0;
}
