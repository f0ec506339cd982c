#include "cloud/cloud.h"
#include "base/base.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SAS_PREFIX	"SharedAccessSignature "
#define BEARER_PREFIX	"Bearer "

static int
unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	    c == '~';
}

/* Percent-encoding; with plus, a space becomes "+" (quote_plus). */
static int
encode(const char *in, int plus, char *out, size_t outsz, struct err *e)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t n = 0;

	for (p = (const unsigned char *)in; *p != '\0'; p++) {
		if (unreserved(*p) || (plus && *p == ' ')) {
			if (n + 1 >= outsz)
				goto full;
			out[n++] = *p == ' ' ? '+' : (char)*p;
			continue;
		}
		if (n + 3 >= outsz)
			goto full;
		out[n++] = '%';
		out[n++] = hex[*p >> 4];
		out[n++] = hex[*p & 0x0f];
	}
	if (outsz == 0)
		goto full;
	out[n] = '\0';
	return 0;
full:
	return err_set(e, ENOSPC, "percent-encoding: result longer than %zu "
	    "bytes", outsz > 0 ? outsz - 1 : 0);
}

int
relay_percent_encode(const char *in, char *out, size_t outsz, struct err *e)
{
	return encode(in, 0, out, outsz, e);
}

/* Characters allowed in a name that goes into a URL unencoded. */
static int
name_ok(const char *what, const char *s, const char *extra, struct err *e)
{
	const unsigned char *p;

	if (s == NULL || *s == '\0')
		return err_set(e, EINVAL, "%s is empty", what);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr(extra, *p) != NULL)
			continue;
		return err_set(e, EINVAL, "%s: character 0x%02x not allowed "
		    "at position %td", what, *p, p - (const unsigned char *)s);
	}
	return 0;
}

static int
check_ns_hc(const char *ns, const char *hc, struct err *e)
{
	if (name_ok("relay namespace", ns, ".-", e) == -1)
		return -1;
	return name_ok("hybrid connection", hc, ".-_/", e);
}

/* snprintf into out, failing (not truncating) when it does not fit. */
static int
fits(int n, size_t outsz, const char *what, struct err *e)
{
	if (n < 0)
		return err_set(e, EINVAL, "%s: formatting failed", what);
	if ((size_t)n >= outsz)
		return err_set(e, ENOSPC, "%s: %d bytes do not fit in %zu",
		    what, n, outsz);
	return 0;
}

int
relay_resource(const char *ns, const char *hc, char *out, size_t outsz,
    struct err *e)
{
	if (check_ns_hc(ns, hc, e) == -1)
		return -1;
	return fits(snprintf(out, outsz, "http://%s/%s", ns, hc), outsz,
	    "relay resource", e);
}

/* base64(HMAC-SHA256(key, msg)) into sig (at least 45 bytes). */
static int
hmac_base64(const char *key, const char *msg, char sig[45], struct err *e)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t keylen = strlen(key);

	if (keylen > INT32_MAX)
		return err_set(e, EINVAL, "SAS key too long");
	if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
	    strlen(msg), mac, &maclen) == NULL || maclen != 32)
		return err_set(e, EIO, "HMAC-SHA256 failed (OpenSSL)");
	if (EVP_EncodeBlock((unsigned char *)sig, mac, 32) != 44)
		return err_set(e, EIO, "base64 encoding failed (OpenSSL)");
	return 0;
}

int
relay_sas_token(const char *resource, const char *key_name, const char *key,
    int64_t expiry, char *out, size_t outsz, struct err *e)
{
	char sr[3 * 1024 + 1], se[24], sig[45], sigenc[3 * 44 + 1];
	char signed_text[sizeof sr + sizeof se + 1];

	if (resource == NULL || *resource == '\0')
		return err_set(e, EINVAL, "SAS token: empty resource");
	if (name_ok("SAS key name", key_name, "-_.", e) == -1)
		return -1;
	if (key == NULL || *key == '\0')
		return err_set(e, EINVAL, "SAS token: empty key");
	if (expiry < 0)
		return err_set(e, EINVAL, "SAS token: negative expiry");
	if (relay_percent_encode(resource, sr, sizeof sr, e) == -1)
		return err_wrap(e, "SAS resource");
	if (fits(snprintf(se, sizeof se, "%" PRId64, expiry), sizeof se,
	    "SAS expiry", e) == -1)
		return -1;
	if (fits(snprintf(signed_text, sizeof signed_text, "%s\n%s", sr, se),
	    sizeof signed_text, "SAS string to sign", e) == -1)
		return -1;
	if (hmac_base64(key, signed_text, sig, e) == -1)
		return -1;
	if (relay_percent_encode(sig, sigenc, sizeof sigenc, e) == -1)
		return err_wrap(e, "SAS signature");
	return fits(snprintf(out, outsz, SAS_PREFIX "sr=%s&sig=%s&se=%s&skn=%s",
	    sr, sigenc, se, key_name), outsz, "SAS token", e);
}

/* "wss://{host}/$hc/{hc}?sb-hc-action={action}" */
static int
url_base(const char *ns, const char *hc, const char *endpoint,
    const char *action, char *out, size_t outsz, struct err *e)
{
	const char *host = ns;

	if (check_ns_hc(ns, hc, e) == -1)
		return -1;
	if (endpoint != NULL && *endpoint != '\0') {
		if (name_ok("relay endpoint", endpoint, ".-:[]", e) == -1)
			return -1;
		host = endpoint;
	}
	return fits(snprintf(out, outsz, "wss://%s/$hc/%s?sb-hc-action=%s",
	    host, hc, action), outsz, "relay URL", e);
}

/* Append "&{name}={value}" to the string in out (value already safe). */
static int
url_append(char *out, size_t outsz, const char *name, const char *value,
    struct err *e)
{
	size_t used = strlen(out);

	return fits(snprintf(out + used, outsz - used, "&%s=%s", name, value),
	    outsz - used, "relay URL", e);
}

static int
url_append_token(char *out, size_t outsz, const char *token, struct err *e)
{
	size_t used = strlen(out);
	const char *param = "&sb-hc-token=";
	size_t plen = strlen(param);

	if (token == NULL)
		return 0;
	if (*token == '\0')
		return err_set(e, EINVAL, "relay URL: empty token");
	if (used + plen >= outsz)
		return err_set(e, ENOSPC, "relay URL: token does not fit");
	memcpy(out + used, param, plen + 1);
	used += plen;
	if (encode(token, 1, out + used, outsz - used, e) == -1)
		return err_wrap(e, "relay URL token");
	return 0;
}

int
relay_listen_url(const char *ns, const char *hc, const char *id,
    const char *token, const char *endpoint, char *out, size_t outsz,
    struct err *e)
{
	if (name_ok("sb-hc-id", id, "-_.", e) == -1)
		return -1;
	if (url_base(ns, hc, endpoint, "listen", out, outsz, e) == -1)
		return -1;
	if (url_append(out, outsz, "sb-hc-id", id, e) == -1)
		return -1;
	return url_append_token(out, outsz, token, e);
}

int
relay_connect_url(const char *ns, const char *hc, const char *token,
    const char *endpoint, char *out, size_t outsz, struct err *e)
{
	if (url_base(ns, hc, endpoint, "connect", out, outsz, e) == -1)
		return -1;
	return url_append_token(out, outsz, token, e);
}

/* --- the token command ------------------------------------------------ */

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	    c == '\v' || c == '\f';
}

/* Trim buf in place; returns the start of the trimmed text. */
static char *
trim(char *buf)
{
	size_t len;

	while (is_space(*buf))
		buf++;
	len = strlen(buf);
	while (len > 0 && is_space(buf[len - 1]))
		buf[--len] = '\0';
	return buf;
}

static int
token_text_ok(const char *token, size_t len, struct err *e)
{
	size_t i;

	if (len == 0)
		return err_set(e, EINVAL, "printed no token");
	for (i = 0; i < len; i++)
		if ((unsigned char)token[i] < 0x20 ||
		    (unsigned char)token[i] == 0x7f)
			return err_set(e, EINVAL, "token has a control "
			    "character at position %zu", i);
	return 0;
}

/* The token as sent: kept when it names its scheme, else "Bearer " + it. */
static int
token_with_scheme(const char *token, char *out, size_t outsz, struct err *e)
{
	const char *scheme = BEARER_PREFIX;

	if (strncmp(token, BEARER_PREFIX, strlen(BEARER_PREFIX)) == 0 ||
	    strncmp(token, SAS_PREFIX, strlen(SAS_PREFIX)) == 0)
		scheme = "";
	return fits(snprintf(out, outsz, "%s%s", scheme, token), outsz,
	    "token", e);
}

int
relay_token_from_command(const char *command, char *out, size_t outsz,
    int timeout_seconds, struct err *e)
{
	char buf[RELAY_TOKEN_MAX + 1], *token;
	char *const argv[] = { "/bin/sh", "-c", (char *)command, NULL };
	int rc, status;

	if (command == NULL || *command == '\0')
		return err_set(e, EINVAL, "token command is empty");
	if (timeout_seconds <= 0)
		return err_set(e, EINVAL, "token command: timeout must be "
		    "positive");
	memset(buf, 0, sizeof buf);
	rc = proc_run(argv, NULL, 0, buf, sizeof buf, timeout_seconds * 1000,
	    &status, e);
	if (rc == 0)
		rc = proc_exit_ok(status, e);
	if (rc == 0) {
		token = trim(buf);
		rc = token_text_ok(token, strlen(token), e);
		if (rc == 0)
			rc = token_with_scheme(token, out, outsz, e);
	}
	explicit_bzero(buf, sizeof buf);
	if (rc == -1)
		return err_wrap(e, "token command (%.120s)", command);
	return 0;
}

/* --- UUIDs and the control channel ------------------------------------ */

int
relay_uuid(char out[RELAY_UUID_LEN + 1], struct err *e)
{
	unsigned char b[16];
	size_t got = 0;
	ssize_t r;
	int n;

	while (got < sizeof b) {
		r = getrandom(b + got, sizeof b - got, 0);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return err_sys(e, "getrandom");
		got += (size_t)r;
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);	/* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);	/* RFC 4122 variant */
	n = snprintf(out, RELAY_UUID_LEN + 1,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
	    b[10], b[11], b[12], b[13], b[14], b[15]);
	return fits(n, RELAY_UUID_LEN + 1, "uuid", e);
}

static int
copy_text(const char *what, const char *s, char *out, size_t outsz,
    struct err *e)
{
	size_t i, len = strlen(s);

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] == 0x7f)
			return err_set(e, EINVAL, "accept: %s has a space or "
			    "control character at position %zu", what, i);
	if (len >= outsz)
		return err_set(e, ENOSPC, "accept: %s of %zu bytes does not "
		    "fit in %zu", what, len, outsz);
	memcpy(out, s, len + 1);
	return 0;
}

static int
accept_fields(json_t *accept, char *address, size_t addrsz, char *id,
    size_t idsz, struct err *e)
{
	json_t *a, *i;

	if (!json_is_object(accept))
		return err_set(e, EINVAL, "accept: not an object");
	a = json_object_get(accept, "address");
	if (!json_is_string(a))
		return err_set(e, EINVAL, "accept: no address");
	if (strncmp(json_string_value(a), "wss://", 6) != 0)
		return err_set(e, EINVAL, "accept: address is not wss://");
	if (copy_text("address", json_string_value(a), address, addrsz,
	    e) == -1)
		return -1;
	i = json_object_get(accept, "id");
	if (i != NULL && !json_is_string(i))
		return err_set(e, EINVAL, "accept: id is not a string");
	if (copy_text("id", i != NULL ? json_string_value(i) : "", id, idsz,
	    e) == -1)
		return -1;
	return 1;
}

int
relay_parse_accept(const char *json, char *address, size_t addrsz, char *id,
    size_t idsz, struct err *e)
{
	json_error_t je;
	json_t *root;
	int rc;

	if (json == NULL)
		return err_set(e, EINVAL, "control message: none");
	root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return err_set(e, EINVAL, "control message: invalid JSON at "
		    "line %d column %d: %s", je.line, je.column, je.text);
	if (!json_is_object(root))
		rc = err_set(e, EINVAL, "control message: not a JSON object");
	else if (json_object_get(root, "accept") == NULL)
		rc = 0;
	else
		rc = accept_fields(json_object_get(root, "accept"), address,
		    addrsz, id, idsz, e);
	json_decref(root);
	return rc;
}
