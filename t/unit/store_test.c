/* store_test: the content-addressed store and the durable-write helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "archive/archive.h"
#include "tap.h"

int
main(int argc, char **argv)
{
	char root[4096], src[4096], path[4200], hash[STORE_HASH_LEN + 1];
	char rel[STORE_RELPATH_MAX], *text = NULL;
	struct store st;
	struct err e = { 0 };
	struct stat sb;
	sqlite3 *db;
	const char *schema = "-- version: 1\nCREATE TABLE a (x);\n"
	    "-- version: 2\nCREATE TABLE b (y);\n";

	if (argc != 2)
		return 2;
	snprintf(root, sizeof root, "%s/store", argv[1]);
	snprintf(src, sizeof src, "%s/incoming.dcm", argv[1]);

	ok(store_hash_buf("abc", 3, hash, &e) == 0 && strcmp(hash,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
	    "SHA-256 of \"abc\" is the FIPS 180-2 vector");
	store_relpath(hash, rel);
	is_str(rel, "ba/78/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.dcm",
	    "objects live at ab/cd/<hash>.dcm");
	ok(store_valid_hash(hash) && !store_valid_hash("BA78") &&
	    !store_valid_hash("../../etc/passwd"), "only 64 lowercase hex digits name an object");

	ok(store_open(&st, root, 1, &e) == 0, "open (create) the store");
	ok(fs_write_atomic(src, "abc", 3, &e) == 0, "write a file atomically");
	is_long(store_adopt(&st, src, hash, 0, &e), 1, "adopt it: a new object");
	ok(store_path(&st, hash, path, sizeof path, &e) == 0 && stat(path, &sb) == 0 &&
	    sb.st_size == 3, "the object is in place");
	ok(access(src, F_OK) == 0, "the source is left for the caller");
	is_long(store_adopt(&st, src, hash, 0, &e), 0, "adopting the same bytes again: already there");
	ok(store_verify(&st, hash, &e) == 0, "verify: content matches the name");
	unlink(path);
	ok(fs_write_atomic(path, "abd", 3, &e) == 0 && store_verify(&st, hash, &e) == -1 &&
	    strstr(e.msg, "hashes to") != NULL, "verify catches changed content");
	ok(fs_read_small(src, 2, &text, NULL, &e) == -1, "read_small refuses a file over its limit");
	ok(fs_read_small(src, 10, &text, NULL, &e) == 0 && strcmp(text, "abc") == 0, "read_small reads");
	free(text);

	/* db: migration by user_version. */
	snprintf(path, sizeof path, "%s/t.db", argv[1]);
	ok(db_open(&db, path, &e) == 0, "open a database");
	is_long(db_schema_version(schema), 2, "schema version is the highest section");
	is_long(db_migrate(db, schema, &e), 2, "migrate applies both sections");
	ok(db_exec(db, "INSERT INTO a VALUES (1); INSERT INTO b VALUES (2);", &e) == 0,
	    "both tables exist");
	is_long(db_migrate(db, schema, &e), 2, "migrating again changes nothing");
	ok(db_migrate(db, "-- version: 1\nCREATE TABLE a (x);\n", &e) == -1 &&
	    strstr(e.msg, "newer") != NULL, "an older program refuses a newer database");
	ok(db_migrate(db, "-- version: 1\nx\n-- version: 2\nx\n-- version: 3\nBOGUS;\n", &e) == -1,
	    "a failing section is reported");
	ok(db_exec(db, "SELECT * FROM a", &e) == 0, "and rolled back, leaving the data");
	db_close(db);
	return tap_done();
}
