/*
 * request_test: images.request (lib/cloud/request) over a real pacs.db and a
 * real relay spool: every reply of PROTOCOL.md §7, the jobs it leaves
 * (durable, named by the object, priority= and requested=), purged rows,
 * and every malformed request answered "error" with a message.  Also
 * RELAY_UPLOAD_POLICY.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/base.h"
#include "cloud/cloud.h"
#include "queue/queue.h"
#include "tap.h"

static sqlite3 *db;
static struct spool relay;

#define HASH(c)	"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc" c c

/* Two studies: 1.2.3 (accession ACC1, three instances) and 1.2.4 (ACC2,
 * one instance). */
static const char fixture[] =
    "INSERT INTO patients (id, patient_id, patient_name) VALUES (1, 'P', 'N');"
    "INSERT INTO studies (id, study_instance_uid, patient_ref, accession_number)"
    "  VALUES (1, '1.2.3', 1, 'ACC1'), (2, '1.2.4', 1, 'ACC2');"
    "INSERT INTO series (id, series_instance_uid, study_ref, series_number)"
    "  VALUES (1, '1.2.3.1', 1, 1), (2, '1.2.4.1', 2, 1);"
    "INSERT INTO objects (hash, size, storage_path, sop_instance_uid,"
    "  first_received_at) VALUES"
    "  ('" HASH("1") "', 1, 'x', '1.2.3.1.1', 't'),"
    "  ('" HASH("2") "', 1, 'x', '1.2.3.1.2', 't'),"
    "  ('" HASH("3") "', 1, 'x', '1.2.3.1.3', 't'),"
    "  ('" HASH("4") "', 1, 'x', '1.2.4.1.1', 't');"
    "INSERT INTO instances (sop_instance_uid, series_ref, object_hash,"
    "  instance_number, received_at, indexed_at, upload_status) VALUES"
    "  ('1.2.3.1.1', 1, '" HASH("1") "', 1, 't', 't', 'COMPLETE'),"
    "  ('1.2.3.1.2', 1, '" HASH("2") "', 2, 't', 't', 'PENDING'),"
    "  ('1.2.3.1.3', 1, '" HASH("3") "', 3, 't', 't', 'PENDING'),"
    "  ('1.2.4.1.1', 2, '" HASH("4") "', 1, 't', 't', 'PENDING');";

/* The reply to the action text; its status, count and message. */
static char *
ask(const char *text, char *status, long *count, char *message)
{
	json_t *a = json_loads(text, 0, NULL), *r;
	struct request_outcome o;
	char *reply;

	if (a == NULL)
		return NULL;
	reply = request_images(db, &relay, a, &o);
	json_decref(a);
	r = reply ? json_loads(reply, 0, NULL) : NULL;
	snprintf(status, 32, "%s", json_string_value(json_object_get(r,
	    "status")) ?: "(none)");
	*count = json_object_get(r, "count") ?
	    json_integer_value(json_object_get(r, "count")) : -1;
	snprintf(message, 300, "%s", json_string_value(json_object_get(r,
	    "message")) ?: "");
	json_decref(r);
	return reply;
}

static void
expect(const char *params, const char *want, long want_count,
    const char *title)
{
	char text[2048], status[32], message[300];
	long count;
	char *reply;

	snprintf(text, sizeof text, "{\"action_id\":\"act-1\","
	    "\"action_type\":\"images.request\",\"parameters\":%s}", params);
	reply = ask(text, status, &count, message);
	if (!is_str(status, want, title))
		diag("reply: %s", reply ? reply : "(null)");
	if (want_count >= 0)
		is_long(count, want_count, "... with the count");
	else if (strcmp(want, "error") == 0 && !ok(message[0] != '\0' &&
	    strstr(reply, "\"action_id\":\"act-1\"") != NULL,
	    "... with a message and the action_id"))
		diag("reply: %s", reply ? reply : "(null)");
	free(reply);
}

/* new/<name> holds line. */
static int
job_has(const char *name, const char *line)
{
	char path[4200], *body = NULL;
	size_t len;
	FILE *f;
	int found;

	snprintf(path, sizeof path, "%s/new/%s", relay.dir, name);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	body = malloc(65536);
	len = fread(body, 1, 65535, f);
	fclose(f);
	body[len] = '\0';
	found = strstr(body, line) != NULL;
	free(body);
	return found;
}

static void
empty_spool(void)
{
	char (*names)[SPOOL_NAME_MAX];
	struct err e = { 0 };
	size_t n;

	if (spool_list(&relay, &names, &n, &e) == -1)
		return;
	for (size_t i = 0; i < n; i++)
		if (spool_claim_name(&relay, names[i], &e) == 1)
			spool_finish(&relay, names[i], &e);
	free(names);
}

static int
queued(void)
{
	struct err e = { 0 };

	return spool_count(&relay, "new", &e);
}

static void
malformed(void)
{
	char status[32], message[300];
	long count;
	char *r;

	expect("{}", "error", -1, "none of the three keys: error");
	expect("{\"priority\":\"high\"}", "error", -1,
	    "only a priority: error");
	expect("{\"study_instance_uid\":\"1.2.3\",\"accession_number\":\"ACC1\"}",
	    "error", -1, "two of them: error");
	expect("{\"study_instance_uid\":\"1.2.3\",\"accession_number\":\"ACC1\","
	    "\"sop_instance_uids\":[\"1\"]}", "error", -1, "all three: error");
	expect("{\"study_instance_uid\":123}", "error", -1,
	    "a number for study_instance_uid: error");
	expect("{\"accession_number\":null}", "error", -1,
	    "null for accession_number: error");
	expect("{\"study_instance_uid\":\"\"}", "error", -1,
	    "an empty study_instance_uid: error");
	expect("{\"accession_number\":\"AC\\nC1\"}", "error", -1,
	    "a control character in accession_number: error");
	expect("{\"sop_instance_uids\":\"1.2.3.1.1\"}", "error", -1,
	    "a string for sop_instance_uids: error");
	expect("{\"sop_instance_uids\":[]}", "error", -1,
	    "an empty list: error");
	expect("{\"sop_instance_uids\":[\"1.2.3.1.1\",7]}", "error", -1,
	    "a number in the list: error");
	expect("{\"study_instance_uid\":\"1.2.3\",\"priority\":\"urgent\"}",
	    "error", -1, "a bad priority: error");
	expect("{\"study_instance_uid\":\"1.2.3\",\"priority\":1}", "error", -1,
	    "a number for priority: error");
	expect("[1,2]", "error", -1, "parameters not an object: error");
	r = ask("{\"action_id\":\"act-1\",\"action_type\":\"images.request\"}",
	    status, &count, message);
	ok(strcmp(status, "error") == 0 && message[0] != '\0',
	    "no parameters at all: error with a message");
	free(r);
	r = ask("{\"action_type\":\"images.request\",\"parameters\":{}}",
	    status, &count, message);
	ok(r != NULL && strstr(r, "\"action_id\":null") != NULL,
	    "without an action_id the reply still carries action_id (null)");
	free(r);
	is_long(queued(), 0, "no malformed request queued anything");
}

static void
policy(void)
{
	enum request_policy p;
	struct err e = { 0 };

	unsetenv("RELAY_UPLOAD_POLICY");
	ok(request_upload_policy(&p, &e) == 0 && p == REQUEST_POLICY_ALL,
	    "RELAY_UPLOAD_POLICY unset: all");
	setenv("RELAY_UPLOAD_POLICY", "on_request", 1);
	ok(request_upload_policy(&p, &e) == 0 &&
	    p == REQUEST_POLICY_ON_REQUEST, "on_request");
	setenv("RELAY_UPLOAD_POLICY", "sometimes", 1);
	ok(request_upload_policy(&p, &e) == -1 &&
	    strstr(e.msg, "RELAY_UPLOAD_POLICY") != NULL,
	    "another value is refused, naming the variable");
	unsetenv("RELAY_UPLOAD_POLICY");
}

int
main(int argc, char **argv)
{
	char path[4096];
	struct err e = { 0 };

	if (argc != 2) {
		fprintf(stderr, "usage: request_test TMPDIR\n");
		return 2;
	}
	snprintf(path, sizeof path, "%s/pacs.db", argv[1]);
	if (db_open(&db, path, &e) == -1 ||
	    db_migrate(db, db_schema_pacs, &e) == -1 ||
	    db_exec(db, fixture, &e) == -1) {
		fprintf(stderr, "request_test: %s\n", e.msg);
		return 1;
	}
	snprintf(path, sizeof path, "%s/relay", argv[1]);
	if (spool_open(&relay, path, 1, &e) == -1) {
		fprintf(stderr, "request_test: %s\n", e.msg);
		return 1;
	}

	policy();
	malformed();
	unsetenv("CLOUD_API_ENDPOINT");
	expect("{\"study_instance_uid\":\"1.2.3\"}", "error", -1,
	    "no CLOUD_API_ENDPOINT: an error, nothing would send the images");
	is_long(queued(), 0, "... and nothing is queued");
	setenv("CLOUD_API_ENDPOINT", "https://127.0.0.1:9/api", 1);

	expect("{\"study_instance_uid\":\"1.2.3\"}", "queued", 3,
	    "a study: queued, one job per instance");
	is_long(queued(), 3, "three jobs are in new/ (durable, visible)");
	ok(job_has(HASH("1"), "kind=image\n") &&
	    job_has(HASH("1"), "sop_instance_uid=1.2.3.1.1\n") &&
	    job_has(HASH("1"), "study_instance_uid=1.2.3\n") &&
	    job_has(HASH("1"), "accession_number=ACC1\n"),
	    "a job is named by its object and says what to upload");
	ok(job_has(HASH("1"), "priority=normal\n") &&
	    job_has(HASH("1"), "requested=1\n") &&
	    job_has(HASH("1"), "request_action_id=act-1\n"),
	    "... priority normal by default, requested=1, the action_id");
	ok(job_has(HASH("1"), "requested=1\n"),
	    "an instance uploaded before (COMPLETE) is queued again");
	expect("{\"study_instance_uid\":\"1.2.3\",\"priority\":\"high\"}",
	    "queued", 3, "the same study again, high");
	is_long(queued(), 3, "... replaces the waiting jobs, not doubles them");
	ok(job_has(HASH("2"), "priority=high\n"), "... now priority=high");
	empty_spool();

	expect("{\"accession_number\":\"ACC2\"}", "queued", 1,
	    "an accession number: queued");
	ok(job_has(HASH("4"), "sop_instance_uid=1.2.4.1.1\n"),
	    "... its instance");
	empty_spool();
	expect("{\"sop_instance_uids\":[\"1.2.3.1.2\",\"1.2.4.1.1\","
	    "\"9.9.9\"]}", "queued", 2,
	    "a list: the held instances are queued, unknown ones skipped");
	ok(job_has(HASH("2"), "kind=image") && job_has(HASH("4"), "kind=image"),
	    "... exactly those two");
	expect("{\"sop_instance_uids\":[\"1.2.3.1.2\",\"1.2.3.1.2\"]}",
	    "queued", 1, "a UID listed twice is one job");
	empty_spool();

	expect("{\"study_instance_uid\":\"9.9.9\"}", "not_found", -1,
	    "an unknown study: not_found");
	expect("{\"accession_number\":\"NOPE\"}", "not_found", -1,
	    "an unknown accession number: not_found");
	expect("{\"sop_instance_uids\":[\"9.9.9\"]}", "not_found", -1,
	    "a list of unknown UIDs: not_found");
	is_long(queued(), 0, "... and nothing queued");

	db_exec(db, "UPDATE instances SET purged_at = 't' WHERE "
	    "sop_instance_uid = '1.2.4.1.1'", &e);
	expect("{\"study_instance_uid\":\"1.2.4\"}", "purged", 1,
	    "a study whose every instance is purged: purged, with the count");
	is_long(queued(), 0, "... and nothing queued");
	db_exec(db, "UPDATE instances SET purged_at = 't' WHERE "
	    "sop_instance_uid = '1.2.3.1.1'", &e);
	expect("{\"study_instance_uid\":\"1.2.3\"}", "queued", 2,
	    "a study partly purged: the held instances are queued");
	ok(!job_has(HASH("1"), "kind=image"), "... not the purged one");
	empty_spool();

	spool_close(&relay);
	db_close(db);
	return tap_done();
}
