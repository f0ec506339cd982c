/*
 * relay_test: SAS tokens against PROTOCOL.md §1's vectors, relay URLs,
 * the token command and the control channel's accept message.
 *
 *   relay_test [OPENSSL_SIG]
 *
 * OPENSSL_SIG: the first vector's signature as `openssl dgst` computed it
 * (from t/4000-relay-sas.t), checked against ours.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloud/cloud.h"
#include "tap.h"

#define KEY	"dGVzdGtleXZhbHVlMTIzNDU2Nzg5MA=="
#define SKN	"RootManageSharedAccessKey"
#define NS	"contoso.servicebus.windows.net"
#define TOKEN1	"SharedAccessSignature " \
	"sr=http%3A%2F%2Fcontoso.servicebus.windows.net%2Fhc1" \
	"&sig=%2FgPSk3xoMmIrGpqACTP3Kii3f2UypgITuzvykfJvmlM%3D" \
	"&se=1700000000&skn=RootManageSharedAccessKey"

static char out[RELAY_URL_MAX];

static void
test_percent(void)
{
	struct err e = { 0 };
	char small[4];

	ok(relay_percent_encode("aZ09-_.~", out, sizeof out, &e) == 0,
	    "percent-encoding unreserved characters succeeds");
	is_str(out, "aZ09-_.~", "unreserved characters are kept");
	relay_percent_encode(":/?#[]@!$&'()*+,;= %\n\xc3\xa9", out,
	    sizeof out, &e);
	is_str(out, "%3A%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D"
	    "%20%25%0A%C3%A9", "reserved, space, %, LF and UTF-8 bytes are "
	    "encoded in uppercase hex");
	ok(relay_percent_encode("", out, sizeof out, &e) == 0 &&
	    out[0] == '\0', "the empty string encodes to itself");
	ok(relay_percent_encode("abc", small, sizeof small, &e) == 0,
	    "a result that just fits is written");
	ok(relay_percent_encode("a/", small, sizeof small, &e) == -1,
	    "a result that does not fit is an error: %s", e.msg);
}

static void
test_sas(const char *openssl_sig)
{
	struct err e = { 0 };
	char res[256], enc[64], small[100];

	ok(relay_resource(NS, "hc1", res, sizeof res, &e) == 0,
	    "relay_resource succeeds");
	is_str(res, "http://" NS "/hc1", "resource is http://{ns}/{hc}");
	ok(relay_sas_token(res, SKN, KEY, 1700000000, out, sizeof out,
	    &e) == 0, "SAS token for vector 1 succeeds");
	is_str(out, TOKEN1, "vector 1: full token matches PROTOCOL.md byte "
	    "for byte");
	relay_sas_token("http://" NS "/hc1/", SKN, KEY, 1700000000, out,
	    sizeof out, &e);
	is_str(out, "SharedAccessSignature "
	    "sr=http%3A%2F%2Fcontoso.servicebus.windows.net%2Fhc1%2F"
	    "&sig=x0gT9eZ3ZzGXuyrmiwin32bZbsdv3aNoxF5o0ngf6NI%3D"
	    "&se=1700000000&skn=" SKN, "vector 2 (trailing slash) matches");
	relay_sas_token("https://" NS "/hc1", SKN, KEY, 1700000000, out,
	    sizeof out, &e);
	is_str(out, "SharedAccessSignature "
	    "sr=https%3A%2F%2Fcontoso.servicebus.windows.net%2Fhc1"
	    "&sig=YmieFQ9v3hb0UTW3lqRZMY5ZbYzekBowRMZE92aTaAo%3D"
	    "&se=1700000000&skn=" SKN, "vector 3 (https) matches");
	if (openssl_sig != NULL) {
		relay_sas_token(res, SKN, KEY, 1700000000, out, sizeof out,
		    &e);
		ok(relay_percent_encode(openssl_sig, enc, sizeof enc,
		    &e) == 0 && strstr(out, enc) != NULL,
		    "vector 1 signature agrees with openssl dgst (%s)",
		    openssl_sig);
	}
	relay_sas_token(res, SKN, KEY, 4102444800LL, out, sizeof out, &e);
	ok(strstr(out, "&se=4102444800&") != NULL,
	    "an expiry beyond 2^31 is written in full");
	ok(relay_sas_token(res, SKN, KEY, 1700000000, small, sizeof small,
	    &e) == -1, "a token that does not fit is an error: %s", e.msg);
	ok(relay_sas_token(res, SKN, "", 1700000000, out, sizeof out,
	    &e) == -1, "an empty key is refused");
	ok(relay_sas_token(res, "bad&name", KEY, 1700000000, out, sizeof out,
	    &e) == -1, "a key name that would break the token is refused");
	ok(relay_resource("evil.net/x?", "hc1", res, sizeof res, &e) == -1,
	    "a namespace with URL characters is refused: %s", e.msg);
}

static void
test_urls(void)
{
	struct err e = { 0 };
	const char *id = "0f0e0d0c-0b0a-4908-8706-050403020100";
	char small[40];

	ok(relay_listen_url(NS, "hc1", id, TOKEN1, NULL, out, sizeof out,
	    &e) == 0, "listen URL succeeds");
	is_str(out, "wss://" NS "/$hc/hc1?sb-hc-action=listen&sb-hc-id=0f0e0d0c"
	    "-0b0a-4908-8706-050403020100&sb-hc-token=SharedAccessSignature"
	    "+sr%3Dhttp%253A%252F%252Fcontoso.servicebus.windows.net%252Fhc1"
	    "%26sig%3D%252FgPSk3xoMmIrGpqACTP3Kii3f2UypgITuzvykfJvmlM%253D"
	    "%26se%3D1700000000%26skn%3DRootManageSharedAccessKey",
	    "listen URL carries the token encoded again as quote_plus does");
	relay_listen_url(NS, "hc1", id, NULL, "", out, sizeof out, &e);
	is_str(out, "wss://" NS "/$hc/hc1?sb-hc-action=listen&sb-hc-id=0f0e0d0c"
	    "-0b0a-4908-8706-050403020100", "listen URL without a token");
	relay_listen_url(NS, "hc1", id, NULL, "127.0.0.1:8443", out,
	    sizeof out, &e);
	is_str(out, "wss://127.0.0.1:8443/$hc/hc1?sb-hc-action=listen"
	    "&sb-hc-id=0f0e0d0c-0b0a-4908-8706-050403020100",
	    "the endpoint override replaces the host of the listen URL");
	ok(relay_connect_url(NS, "events", "Bearer a.b-c_d", NULL, out,
	    sizeof out, &e) == 0, "connect URL succeeds");
	is_str(out, "wss://" NS "/$hc/events?sb-hc-action=connect"
	    "&sb-hc-token=Bearer+a.b-c_d", "connect URL with a bearer token: "
	    "sb-hc-token=Bearer+<jwt> as production sends it");
	relay_connect_url(NS, "events", NULL, "localhost:9000", out,
	    sizeof out, &e);
	is_str(out, "wss://localhost:9000/$hc/events?sb-hc-action=connect",
	    "connect URL with the endpoint override and no token");
	ok(relay_connect_url(NS, "hc1?sb-hc-action=listen", NULL, NULL, out,
	    sizeof out, &e) == -1, "a hybrid connection name with '?' is "
	    "refused: %s", e.msg);
	ok(relay_listen_url(NS, "hc1", "a&b", NULL, NULL, out, sizeof out,
	    &e) == -1, "an sb-hc-id with '&' is refused");
	ok(relay_connect_url(NS, "hc1", NULL, "host/x:1", out, sizeof out,
	    &e) == -1, "an endpoint with '/' is refused");
	ok(relay_connect_url(NS, "hc1", TOKEN1, NULL, small, sizeof small,
	    &e) == -1, "a URL that does not fit is an error: %s", e.msg);
}

static void
test_token_command(void)
{
	struct err e = { 0 };
	static char tok[RELAY_TOKEN_OUT];
	time_t t0;

	ok(relay_token_from_command("printf '  eyJhbGciOi.eyJzdWIi.sig\\n\\n'",
	    tok, sizeof tok, 5, &e) == 0, "a command printing a JWT succeeds");
	is_str(tok, "Bearer eyJhbGciOi.eyJzdWIi.sig",
	    "a bare JWT is trimmed and becomes \"Bearer <jwt>\"");
	relay_token_from_command("echo 'Bearer abc.def.ghi'", tok, sizeof tok,
	    5, &e);
	is_str(tok, "Bearer abc.def.ghi", "a token with \"Bearer \" is kept");
	relay_token_from_command("echo '" TOKEN1 "'", tok, sizeof tok, 5, &e);
	is_str(tok, TOKEN1, "a SAS token printed by the command is kept");
	ok(relay_token_from_command("echo tok; exit 3", tok, sizeof tok, 5,
	    &e) == -1 && strstr(e.msg, "status 3") != NULL,
	    "a non-zero exit fails: %s", e.msg);
	ok(relay_token_from_command("printf ' \\n\\t'", tok, sizeof tok, 5,
	    &e) == -1 && strstr(e.msg, "no token") != NULL,
	    "empty output fails: %s", e.msg);
	ok(relay_token_from_command("true", tok, sizeof tok, 5, &e) == -1,
	    "no output at all fails");
	t0 = time(NULL);
	ok(relay_token_from_command("echo early; sleep 5", tok, sizeof tok, 1,
	    &e) == -1 && strstr(e.msg, "timed out") != NULL,
	    "a command running past its 1 s limit fails: %s", e.msg);
	ok(time(NULL) - t0 <= 3, "... and is killed (returned in %lds)",
	    (long)(time(NULL) - t0));
	ok(relay_token_from_command("head -c 20000 /dev/zero | tr '\\0' a",
	    tok, sizeof tok, 5, &e) == -1 && strstr(e.msg, "limit") != NULL,
	    "output of 16 KiB or more fails: %s", e.msg);
	ok(relay_token_from_command("head -c 16000 /dev/zero | tr '\\0' a",
	    tok, sizeof tok, 5, &e) == 0 && strlen(tok) == 16007,
	    "a 16000-byte JWT is accepted");
	ok(relay_token_from_command("printf 'abc\\001def'", tok, sizeof tok,
	    5, &e) == -1, "a token with a control character fails");
	ok(relay_token_from_command("kill -9 $$", tok, sizeof tok, 5,
	    &e) == -1 && strstr(e.msg, "signal 9") != NULL,
	    "a command killed by a signal fails: %s", e.msg);
}

static int
uuid_shape_ok(const char *u)
{
	int i;

	if (strlen(u) != RELAY_UUID_LEN || u[14] != '4' ||
	    strchr("89ab", u[19]) == NULL)
		return 0;
	for (i = 0; i < RELAY_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (u[i] != '-')
				return 0;
		} else if (strchr("0123456789abcdef", u[i]) == NULL)
			return 0;
	}
	return 1;
}

static void
test_uuid(void)
{
	struct err e = { 0 };
	char a[RELAY_UUID_LEN + 1], b[RELAY_UUID_LEN + 1];

	ok(relay_uuid(a, &e) == 0 && relay_uuid(b, &e) == 0,
	    "two UUIDs are made");
	ok(uuid_shape_ok(a) && uuid_shape_ok(b),
	    "a UUID is lowercase v4 text (%s)", a);
	ok(strcmp(a, b) != 0, "two UUIDs differ");
}

static void
test_accept(void)
{
	struct err e = { 0 };
	char addr[512], id[64], small[16];

	ok(relay_parse_accept("{\"accept\":{\"address\":\"wss://g1.relay:9443/"
	    "$hc/hc1?sb-hc-action=accept&sb-hc-id=abc\",\"id\":\"abc\","
	    "\"connectHeaders\":{\"Host\":\"x\"}}}", addr, sizeof addr, id,
	    sizeof id, &e) == 1, "a valid accept returns 1");
	is_str(addr, "wss://g1.relay:9443/$hc/hc1?sb-hc-action=accept"
	    "&sb-hc-id=abc", "the address is copied exactly");
	is_str(id, "abc", "the id is copied");
	ok(relay_parse_accept("{\"accept\":{\"id\":\"abc\"}}", addr,
	    sizeof addr, id, sizeof id, &e) == -1,
	    "an accept without address is invalid: %s", e.msg);
	ok(relay_parse_accept("{\"accept\":{\"address\":\"http://x/\"}}",
	    addr, sizeof addr, id, sizeof id, &e) == -1,
	    "an accept address that is not wss:// is refused");
	ok(relay_parse_accept("{\"accept\":{\"address\":\"wss://x/a\"}}",
	    addr, sizeof addr, id, sizeof id, &e) == 1 && id[0] == '\0',
	    "an accept without id gives an empty id");
	ok(relay_parse_accept("{\"accept\":{\"address\":\"wss://x/aaaaaaaaaaaa"
	    "aaaa\"}}", small, sizeof small, id, sizeof id, &e) == -1,
	    "an address too long for the buffer is an error");
	ok(relay_parse_accept("{\"request\":{\"address\":\"wss://x\"}}", addr,
	    sizeof addr, id, sizeof id, &e) == 0,
	    "a request message (HTTP mode) returns 0");
	ok(relay_parse_accept("{\"renewToken\":{}}", addr, sizeof addr, id,
	    sizeof id, &e) == 0, "another known message returns 0");
	ok(relay_parse_accept("{}", addr, sizeof addr, id, sizeof id,
	    &e) == 0, "an unknown (empty) object returns 0");
	ok(relay_parse_accept("{\"accept\":", addr, sizeof addr, id,
	    sizeof id, &e) == -1, "truncated JSON is invalid: %s", e.msg);
	ok(relay_parse_accept("\x01garbage", addr, sizeof addr, id,
	    sizeof id, &e) == -1, "garbage is invalid");
	ok(relay_parse_accept("[1,2]", addr, sizeof addr, id, sizeof id,
	    &e) == -1, "a JSON array is invalid");
}

int
main(int argc, char **argv)
{
	test_percent();
	test_sas(argc > 1 ? argv[1] : NULL);
	test_urls();
	test_token_command();
	test_uuid();
	test_accept();
	return tap_done();
}
