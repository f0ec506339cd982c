/*
 * identity_test: lib/cloud/identity without a network: which credential
 * the settings choose (production's rule), token replies, the HIMDS key
 * file check, JWT expiry, renewal times, and the cache with command and
 * static tokens.
 *
 *   identity_test DIR      (DIR: a scratch directory)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "cloud/cloud.h"
#include "tap.h"

static struct identity_settings
base(void)
{
	struct identity_settings s;

	memset(&s, 0, sizeof s);
	/* the settings table's defaults */
	s.relay_key_name = settings_find("AZURE_RELAY_KEY_NAME")->dflt;
	s.arc_tokens_dir = settings_find("AZURE_ARC_TOKENS_DIR")->dflt;
	s.imds_endpoint = settings_find("AZURE_IMDS_ENDPOINT")->dflt;
	s.authority_host = settings_find("AZURE_AUTHORITY_HOST")->dflt;
	s.ttl_seconds = 3600;
	return s;
}

/* The kind chosen, or -1 when the rule refuses. */
static int
kind(const struct identity_settings *s, enum identity_use use,
    struct identity_source *src)
{
	struct err e = { 0 };

	return identity_choose(s, use, src, &e) == -1 ? -1 : (int)src->kind;
}

static void
test_choose(void)
{
	struct identity_settings s = base();
	struct identity_source src;
	struct err e = { 0 };

	s.prod = 1;
	s.relay_key = "key";
	s.relay_token_command = "echo t";
	ok(kind(&s, IDENTITY_FOR_RELAY, &src) == IDENTITY_IMDS &&
	    strcmp(src.resource, IDENTITY_RELAY_RESOURCE) == 0,
	    "prod: the relay uses the managed identity for "
	    "https://relay.azure.net");
	is_str(src.ignored, "AZURE_RELAY_SHARED_ACCESS_KEY, "
	    "AZURE_RELAY_TOKEN_COMMAND", "prod: the SAS key and the token "
	    "command are named as ignored");
	s.identity_endpoint = "http://localhost:40342/metadata/identity/"
	    "oauth2/token";
	ok(kind(&s, IDENTITY_FOR_RELAY, &src) == IDENTITY_ARC,
	    "IDENTITY_ENDPOINT set: the managed identity is Azure Arc's");
	s.tenant_id = "t";
	s.client_id = "c";
	s.client_secret = "secret";
	ok(kind(&s, IDENTITY_FOR_RELAY, &src) == IDENTITY_ARC &&
	    strstr(src.ignored, "AZURE_CLIENT_SECRET") != NULL,
	    "prod: client credentials are not used, and said so");
	ok(identity_choose(&s, IDENTITY_FOR_API, &src, &e) == -1 &&
	    strstr(e.msg, "CLOUD_API_RESOURCE") != NULL,
	    "prod without CLOUD_API_RESOURCE: a configuration error naming "
	    "it: %s", e.msg);
	s.api_resource = "11111111-2222-3333-4444-555555555555";
	s.api_token = "static";
	ok(kind(&s, IDENTITY_FOR_API, &src) == IDENTITY_ARC &&
	    strcmp(src.resource, s.api_resource) == 0 &&
	    strstr(src.ignored, "CLOUD_API_TOKEN") != NULL,
	    "prod: the API uses the managed identity for CLOUD_API_RESOURCE; "
	    "CLOUD_API_TOKEN is ignored");

	s = base();
	s.relay_key = "key";
	s.relay_token_command = "echo t";
	ok(kind(&s, IDENTITY_FOR_RELAY, &src) == IDENTITY_SAS,
	    "outside prod: a SAS key first");
	s.relay_key = NULL;
	ok(kind(&s, IDENTITY_FOR_RELAY, &src) == IDENTITY_COMMAND,
	    "then AZURE_RELAY_TOKEN_COMMAND");
	s.relay_token_command = NULL;
	ok(kind(&s, IDENTITY_FOR_RELAY, &src) == IDENTITY_IMDS,
	    "then Entra ID: the managed identity (IMDS) without client "
	    "credentials");
	s.tenant_id = "t";
	s.client_id = "c";
	s.client_cert_path = "/x.pem";
	ok(kind(&s, IDENTITY_FOR_RELAY, &src) == IDENTITY_CLIENT_CERT,
	    "client credentials with a certificate");
	s.client_secret = "secret";
	ok(kind(&s, IDENTITY_FOR_RELAY, &src) == IDENTITY_CLIENT_SECRET &&
	    strstr(src.ignored, "AZURE_CLIENT_CERTIFICATE_PATH") != NULL,
	    "a secret goes before a certificate (EnvironmentCredential's "
	    "order)");
	s.client_id = NULL;
	ok(kind(&s, IDENTITY_FOR_RELAY, &src) == IDENTITY_IMDS &&
	    strstr(src.ignored, "AZURE_CLIENT_SECRET") != NULL,
	    "without AZURE_CLIENT_ID: the managed identity, the secret named "
	    "as ignored");

	s = base();
	ok(identity_choose(&s, IDENTITY_FOR_API, &src, &e) == -1,
	    "outside prod, no API credential: an error: %s", e.msg);
	s.api_token_command = "echo t";
	ok(kind(&s, IDENTITY_FOR_API, &src) == IDENTITY_COMMAND,
	    "the API: CLOUD_API_TOKEN_COMMAND");
	s.api_token = "t";
	ok(kind(&s, IDENTITY_FOR_API, &src) == IDENTITY_STATIC &&
	    strstr(src.ignored, "CLOUD_API_TOKEN_COMMAND") != NULL,
	    "CLOUD_API_TOKEN goes before the command");
	s.api_resource = "api://manage";
	s.tenant_id = "t";
	s.client_id = "c";
	s.client_secret = "x";
	ok(kind(&s, IDENTITY_FOR_API, &src) == IDENTITY_CLIENT_SECRET &&
	    strcmp(src.resource, "api://manage") == 0,
	    "CLOUD_API_RESOURCE outside prod: Entra ID (client credentials "
	    "here) for that resource");
}

static void
test_reply(void)
{
	char out[256];
	int64_t exp = 0;
	struct err e = { 0 };

	ok(identity_parse_reply("{\"access_token\":\"eyJ.a.b\",\"expires_in\":"
	    "\"86399\",\"expires_on\":\"1783486799\",\"token_type\":\"Bearer\"}",
	    1783400000, out, sizeof out, &exp, &e) == 0 &&
	    exp == 1783486799 && strcmp(out, "Bearer eyJ.a.b") == 0,
	    "IMDS/HIMDS reply: expires_on as a string");
	ok(identity_parse_reply("{\"access_token\":\"x\",\"expires_on\":"
	    "1783486799}", 1783400000, out, sizeof out, &exp, &e) == 0 &&
	    exp == 1783486799, "expires_on as a number");
	ok(identity_parse_reply("{\"token_type\":\"Bearer\",\"expires_in\":"
	    "3599,\"access_token\":\"x\"}", 1000, out, sizeof out, &exp,
	    &e) == 0 && exp == 4599, "client credentials: now + expires_in");
	ok(identity_parse_reply("{\"access_token\":\"x\"}", 1000, out,
	    sizeof out, &exp, &e) == -1, "no expiry: refused: %s", e.msg);
	ok(identity_parse_reply("{\"access_token\":\"x\",\"expires_on\":"
	    "\"12ab\"}", 1000, out, sizeof out, &exp, &e) == -1,
	    "expires_on not a number: refused");
	ok(identity_parse_reply("{\"access_token\":\"x\",\"expires_on\":500}",
	    1000, out, sizeof out, &exp, &e) == -1, "an expired token: "
	    "refused: %s", e.msg);
	ok(identity_parse_reply("{\"access_token\":\"x\",\"token_type\":"
	    "\"pop\",\"expires_in\":60}", 1000, out, sizeof out, &exp,
	    &e) == -1, "token_type other than Bearer: refused");
	ok(identity_parse_reply("{\"access_token\":\"a b\",\"expires_in\":60}",
	    1000, out, sizeof out, &exp, &e) == -1, "a space in the token: "
	    "refused");
	ok(identity_parse_reply("{\"expires_in\":60}", 1000, out, sizeof out,
	    &exp, &e) == -1, "no access_token: refused: %s", e.msg);
	ok(identity_parse_reply("<html>", 1000, out, sizeof out, &exp,
	    &e) == -1, "not JSON: refused");
	ok(identity_parse_reply("{\"access_token\":\"0123456789\","
	    "\"expires_in\":60}", 1000, out, 12, &exp, &e) == -1,
	    "a token that does not fit: refused, not cut");
}

static void
test_arc_key(void)
{
	const char *dir = "/var/opt/azcmagent/tokens";
	struct err e = { 0 };

	ok(identity_arc_key_ok("/var/opt/azcmagent/tokens/0c9a6f3e.key", dir,
	    &e) == 0, "a *.key file in the tokens directory is taken");
	ok(identity_arc_key_ok("/var/opt/azcmagent/tokens/a.key",
	    "/var/opt/azcmagent/tokens/", &e) == 0,
	    "... also when the directory is given with a trailing slash");
	ok(identity_arc_key_ok("/etc/shadow.key", dir, &e) == -1 &&
	    strstr(e.msg, "AZURE_ARC_TOKENS_DIR") != NULL,
	    "a realm outside the directory is refused: %s", e.msg);
	ok(identity_arc_key_ok("/var/opt/azcmagent/tokens-x/a.key", dir,
	    &e) == -1, "a sibling directory with the same prefix is refused");
	ok(identity_arc_key_ok("/var/opt/azcmagent/tokens/../../../etc/x.key",
	    dir, &e) == -1, "\"..\" out of the directory is refused");
	ok(identity_arc_key_ok("/var/opt/azcmagent/tokens/sub/a.key", dir,
	    &e) == -1, "a file in a subdirectory is refused");
	ok(identity_arc_key_ok("/var/opt/azcmagent/tokens/a.txt", dir,
	    &e) == -1 && strstr(e.msg, "*.key") != NULL,
	    "a file not named *.key is refused: %s", e.msg);
	ok(identity_arc_key_ok("/var/opt/azcmagent/tokens/.key", dir,
	    &e) == -1, "a bare \".key\" is refused");
	ok(identity_arc_key_ok("tokens/a.key", dir, &e) == -1,
	    "a relative path is refused");
}

static void
test_jwt_and_renewal(void)
{
	/* {"alg":"none"} . {"exp":1783486799,"sub":"x"} . sig */
	const char *jwt = "eyJhbGciOiJub25lIn0.eyJleHAiOjE3ODM0ODY3OTksInN1Yi"
	    "I6IngifQ.c2ln";

	ok(identity_jwt_exp(jwt) == 1783486799, "a JWT's exp is read");
	{
		char bearer[256];

		snprintf(bearer, sizeof bearer, "Bearer %s", jwt);
		ok(identity_jwt_exp(bearer) == 1783486799,
		    "... also after \"Bearer \"");
	}
	ok(identity_jwt_exp("opaque-token") == 0, "not a JWT: 0");
	ok(identity_jwt_exp("a.!!!.c") == 0, "a payload that is not "
	    "base64url: 0");
	ok(identity_renew_at(1000, 1000 + 86400) == 1000 + 86400 - 300,
	    "a day's token is renewed 5 minutes before it expires");
	ok(identity_renew_at(1000, 1040) == 1020,
	    "a 40 s token half its life before (a slow renewal has time)");
}

/* How many times the command in dir ran. */
static long
runs(const char *dir)
{
	char path[512];
	long n = 0;
	int c;
	FILE *f;

	snprintf(path, sizeof path, "%s/runs", dir);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static void
test_cache(const char *dir)
{
	struct identity_settings s = base();
	struct identity_source api, relay;
	const struct identity_token *t;
	struct identity *id;
	struct err e = { 0 };
	char cmd[600], cmd2[600], first[256];
	int64_t now = (int64_t)time(NULL);

	snprintf(cmd, sizeof cmd, "echo run >>'%s/runs'; echo opaque-token",
	    dir);
	s.api_token_command = cmd;
	s.relay_key = "dGVzdGtleXZhbHVlMTIzNDU2Nzg5MA==";
	if (identity_new(&id, &s, NULL, &e) == -1) {
		ok(0, "identity_new: %s", e.msg);
		return;
	}
	identity_choose(&s, IDENTITY_FOR_API, &api, &e);
	identity_choose(&s, IDENTITY_FOR_RELAY, &relay, &e);
	ok(identity_token(id, &api, NULL, &t, &e) == 0 &&
	    strcmp(t->value, "Bearer opaque-token") == 0,
	    "a command's token, as \"Bearer <token>\"");
	ok(t->expires_on >= now + 3600 && t->expires_on <= now + 3602,
	    "a token that is no JWT is taken to last RELAY_TOKEN_TTL_SECONDS");
	identity_token(id, &api, NULL, &t, &e);
	is_long(runs(dir), 1, "asked again: the cached token, the command "
	    "does not run again");
	ok(identity_token(id, &relay, "http://contoso.servicebus.windows.net/"
	    "hc1", &t, &e) == 0 && strncmp(t->value, "SharedAccessSignature "
	    "sr=http%3A%2F%2Fcontoso.servicebus.windows.net%2Fhc1&", 75) == 0,
	    "a SAS token for the entity asked for");
	snprintf(first, sizeof first, "%.250s", t->value);
	identity_token(id, &relay, "http://contoso.servicebus.windows.net/"
	    "hc2", &t, &e);
	ok(strcmp(t->value, first) != 0 && strstr(t->value, "hc2") != NULL,
	    "another entity: another SAS token");
	identity_forget(id, &api);
	identity_token(id, &api, NULL, &t, &e);
	is_long(runs(dir), 2, "after a 401 (identity_forget) the command runs "
	    "again");
	identity_free(id);

	snprintf(cmd2, sizeof cmd2, "echo run >>'%s/runs'; exit 4", dir);
	s.api_token_command = cmd2;
	identity_new(&id, &s, NULL, &e);
	ok(identity_token(id, &api, NULL, &t, &e) == -1 &&
	    strstr(e.msg, "no token (command)") != NULL &&
	    strstr(e.msg, "CLOUD_API_TOKEN_COMMAND") != NULL,
	    "a failing command: no token, the setting named: %s", e.msg);
	identity_free(id);

	s.api_token_command = NULL;
	s.api_token = "Bearer sesame";
	identity_new(&id, &s, NULL, &e);
	identity_choose(&s, IDENTITY_FOR_API, &api, &e);
	ok(identity_token(id, &api, NULL, &t, &e) == 0 &&
	    strcmp(t->value, "Bearer sesame") == 0 && t->renew_at == 0,
	    "CLOUD_API_TOKEN as it is, never renewed");
	identity_free(id);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: identity_test DIR\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	test_choose();
	test_reply();
	test_arc_key();
	test_jwt_and_renewal();
	test_cache(argv[1]);
	curl_global_cleanup();
	return tap_done();
}
