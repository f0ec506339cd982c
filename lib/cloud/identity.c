/*
 * identity: tokens for the cloud, from SAS keys, commands or Microsoft
 * Entra ID (managed identity, client credentials).  See cloud/cloud.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cloud/cloud.h"
#include "base/base.h"

#define CACHE_SLOTS		8
#define BODY_MAX		(64 * 1024)
#define CONNECT_SECONDS		5L
#define REQUEST_SECONDS		15L
#define COMMAND_SECONDS		30
#define BEARER			"Bearer "
#define ARC_API_VERSION		"2020-06-01"
#define IMDS_API_VERSION	"2018-02-01"
#define ASSERTION_TYPE \
	"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

struct slot {
	int used;
	enum identity_kind kind;
	char key[1024];			/* resource, command or SAS entity */
	struct identity_token tok;
};

struct identity {
	struct identity_settings s;
	volatile sig_atomic_t *stop;
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
	char *body;			/* the reply being read */
	size_t body_len;
	char realm[PATH_MAX];		/* WWW-Authenticate: Basic realm= */
	struct slot slot[CACHE_SLOTS];
	struct identity_token fresh;	/* the token being made */
	char form[32768];		/* a client-credentials request */
	char assertion[8192];		/* its client assertion */
};

/* ------------------------------------------------------------ settings */

int
identity_settings_load(struct identity_settings *s, struct err *e)
{
	const char *environment = config_env("ENVIRONMENT");

	memset(s, 0, sizeof *s);
	s->prod = environment != NULL && strcasecmp(environment, "prod") == 0;
	s->relay_key_name = config_value("AZURE_RELAY_KEY_NAME");
	s->relay_key = config_env("AZURE_RELAY_SHARED_ACCESS_KEY");
	s->relay_token_command = config_env("AZURE_RELAY_TOKEN_COMMAND");
	s->api_resource = config_env("CLOUD_API_RESOURCE");
	s->api_token = config_env("CLOUD_API_TOKEN");
	s->api_token_command = config_env("CLOUD_API_TOKEN_COMMAND");
	s->identity_endpoint = config_env("IDENTITY_ENDPOINT");
	if (s->identity_endpoint == NULL &&
	    access(IDENTITY_HIMDS_PROGRAM, R_OK) == 0)
		s->identity_endpoint = IDENTITY_ARC_ENDPOINT;	/* not inherited */
	s->arc_tokens_dir = config_value("AZURE_ARC_TOKENS_DIR");
	s->imds_endpoint = config_value("AZURE_IMDS_ENDPOINT");
	s->tenant_id = config_env("AZURE_TENANT_ID");
	s->client_id = config_env("AZURE_CLIENT_ID");
	s->client_secret = config_env("AZURE_CLIENT_SECRET");
	s->client_cert_path = config_env("AZURE_CLIENT_CERTIFICATE_PATH");
	s->authority_host = config_value("AZURE_AUTHORITY_HOST");
	s->ca_file = config_env("GATEWAY_CA_FILE");
	return config_long("RELAY_TOKEN_TTL_SECONDS", &s->ttl_seconds, e);
}

/* ------------------------------------------------------------ the rule */

const char *
identity_kind_name(enum identity_kind k)
{
	static const char *names[] = { "sas", "command", "static",
	    "managed-identity-arc", "managed-identity-imds", "client-secret",
	    "client-certificate" };

	return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

int
identity_kind_entra(enum identity_kind k)
{
	return k == IDENTITY_ARC || k == IDENTITY_IMDS ||
	    k == IDENTITY_CLIENT_SECRET || k == IDENTITY_CLIENT_CERT;
}

/* Name a setting that is set but not used in src->ignored. */
static void
ignore(struct identity_source *src, const char *value, const char *name)
{
	size_t n = strlen(src->ignored);

	if (value == NULL)
		return;
	snprintf(src->ignored + n, sizeof src->ignored - n, "%s%s",
	    n > 0 ? ", " : "", name);
}

static enum identity_kind
managed(const struct identity_settings *s)
{
	return s->identity_endpoint != NULL ? IDENTITY_ARC : IDENTITY_IMDS;
}

/* DefaultAzureCredential's order: EnvironmentCredential, then the
 * managed identity. */
static enum identity_kind
entra(const struct identity_settings *s, struct identity_source *src)
{
	if (s->tenant_id != NULL && s->client_id != NULL) {
		if (s->client_secret != NULL) {
			ignore(src, s->client_cert_path,
			    "AZURE_CLIENT_CERTIFICATE_PATH");
			return IDENTITY_CLIENT_SECRET;
		}
		if (s->client_cert_path != NULL)
			return IDENTITY_CLIENT_CERT;
	}
	ignore(src, s->client_secret, "AZURE_CLIENT_SECRET");
	ignore(src, s->client_cert_path, "AZURE_CLIENT_CERTIFICATE_PATH");
	return managed(s);
}

static void
prod_ignores(const struct identity_settings *s, struct identity_source *src)
{
	ignore(src, s->client_secret, "AZURE_CLIENT_SECRET");
	ignore(src, s->client_cert_path, "AZURE_CLIENT_CERTIFICATE_PATH");
}

static int
choose_api(const struct identity_settings *s, struct identity_source *src,
    struct err *e)
{
	if (s->api_resource != NULL) {
		src->resource = s->api_resource;
		ignore(src, s->api_token, "CLOUD_API_TOKEN");
		ignore(src, s->api_token_command, "CLOUD_API_TOKEN_COMMAND");
		if (s->prod)
			prod_ignores(s, src);
		src->kind = s->prod ? managed(s) : entra(s, src);
		return 0;
	}
	if (s->prod)
		return err_set(e, EINVAL, "ENVIRONMENT=prod: set "
		    "CLOUD_API_RESOURCE (the Manage API's application ID); "
		    "production reaches the Manage API only with the "
		    "machine's managed identity");
	if (s->api_token != NULL) {
		ignore(src, s->api_token_command, "CLOUD_API_TOKEN_COMMAND");
		src->kind = IDENTITY_STATIC;
		return 0;
	}
	if (s->api_token_command != NULL) {
		src->kind = IDENTITY_COMMAND;
		return 0;
	}
	return err_set(e, EINVAL, "set CLOUD_API_RESOURCE (Entra ID), "
	    "CLOUD_API_TOKEN or CLOUD_API_TOKEN_COMMAND");
}

int
identity_choose(const struct identity_settings *s, enum identity_use use,
    struct identity_source *src, struct err *e)
{
	memset(src, 0, sizeof *src);
	src->use = use;
	if (use == IDENTITY_FOR_API)
		return choose_api(s, src, e);
	src->resource = IDENTITY_RELAY_RESOURCE;
	if (s->prod) {
		ignore(src, s->relay_key, "AZURE_RELAY_SHARED_ACCESS_KEY");
		ignore(src, s->relay_token_command, "AZURE_RELAY_TOKEN_COMMAND");
		prod_ignores(s, src);
		src->kind = managed(s);
	} else if (s->relay_key != NULL) {
		ignore(src, s->relay_token_command, "AZURE_RELAY_TOKEN_COMMAND");
		src->kind = IDENTITY_SAS;
	} else if (s->relay_token_command != NULL) {
		src->kind = IDENTITY_COMMAND;
	} else {
		src->kind = entra(s, src);
	}
	return 0;
}

/* ------------------------------------------------------------ helpers */

int64_t
identity_renew_at(int64_t now, int64_t expires_on)
{
	int64_t margin = (expires_on - now) / 2;

	if (margin > IDENTITY_RENEW_MARGIN_SECONDS)
		margin = IDENTITY_RENEW_MARGIN_SECONDS;
	if (margin < 0)
		margin = 0;
	return expires_on - margin;
}

/* base64url without padding of len bytes into out (4/3 len + 1). */
static void
b64url(const unsigned char *in, size_t len, char *out)
{
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);

	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (char *p = out; *p != '\0'; p++)
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
}

/* Decode base64url text of len bytes into a malloc'd NUL-terminated
 * buffer; NULL when it is not base64url. */
static char *
b64url_decode(const char *in, size_t len)
{
	size_t padded = (len + 3) / 4 * 4, i;
	char *std, *out;
	int n;

	if (len == 0 || len > 64 * 1024 || len % 4 == 1)
		return NULL;
	if ((std = malloc(padded + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		char c = in[i];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9'))) {
			free(std);
			return NULL;
		}
		std[i] = c;
	}
	for (; i < padded; i++)
		std[i] = '=';
	std[padded] = '\0';
	out = malloc(padded / 4 * 3 + 1);
	n = out != NULL ? EVP_DecodeBlock((unsigned char *)out,
	    (unsigned char *)std, (int)padded) : -1;
	free(std);
	if (n < 0) {
		free(out);
		return NULL;
	}
	n -= (int)(padded - len);	/* the padding decodes to zero bytes */
	out[n] = '\0';
	return out;
}

int64_t
identity_jwt_exp(const char *token)
{
	const char *p, *dot;
	json_t *claims, *exp;
	char *text;
	int64_t v = 0;

	if (strncmp(token, BEARER, strlen(BEARER)) == 0)
		token += strlen(BEARER);
	if ((p = strchr(token, '.')) == NULL ||
	    (dot = strchr(p + 1, '.')) == NULL)
		return 0;
	if ((text = b64url_decode(p + 1, (size_t)(dot - p - 1))) == NULL)
		return 0;
	claims = json_loads(text, 0, NULL);
	exp = json_object_get(claims, "exp");
	if (json_is_integer(exp) && json_integer_value(exp) > 0)
		v = json_integer_value(exp);
	json_decref(claims);
	free(text);
	return v;
}

/* A whole positive number, or a string of digits; -1 otherwise. */
static int64_t
number_or_digits(const json_t *v)
{
	const char *s;
	char *end;
	long long n;

	if (json_is_integer(v))
		return json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : (int64_t)n;
}

int
identity_parse_reply(const char *text, int64_t now, char *out, size_t outsz,
    int64_t *expires_on, struct err *e)
{
	json_t *j = json_loads(text, 0, NULL), *type;
	const char *token;
	int64_t v;
	int rc = -1;

	if (!json_is_object(j)) {
		err_set(e, EPROTO, "the reply is not a JSON object");
		goto done;
	}
	token = json_string_value(json_object_get(j, "access_token"));
	type = json_object_get(j, "token_type");
	if (token == NULL || *token == '\0') {
		err_set(e, EPROTO, "the reply has no access_token");
		goto done;
	}
	if (type != NULL && (!json_is_string(type) ||
	    strcasecmp(json_string_value(type), "Bearer") != 0)) {
		err_set(e, EPROTO, "the reply's token_type is not Bearer");
		goto done;
	}
	for (const char *p = token; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			err_set(e, EPROTO, "the access_token has a space or "
			    "control character");
			goto done;
		}
	if ((v = number_or_digits(json_object_get(j, "expires_on"))) > 0)
		*expires_on = v;
	else if ((v = number_or_digits(json_object_get(j, "expires_in"))) > 0)
		*expires_on = now + v;
	else {
		err_set(e, EPROTO, "the reply has neither expires_on nor "
		    "expires_in as a number");
		goto done;
	}
	if (*expires_on <= now) {
		err_set(e, EPROTO, "the token has already expired (expires_on "
		    "%" PRId64 ", now %" PRId64 ": is the clock right?)",
		    *expires_on, now);
		goto done;
	}
	if (snprintf(out, outsz, BEARER "%s", token) >= (int)outsz) {
		err_set(e, ENOSPC, "the access_token is longer than %zu bytes",
		    outsz);
		goto done;
	}
	rc = 0;
done:
	json_decref(j);
	return rc;
}

int
identity_arc_key_ok(const char *realm, const char *tokens_dir, struct err *e)
{
	size_t dlen = strlen(tokens_dir), n;
	const char *name;

	while (dlen > 1 && tokens_dir[dlen - 1] == '/')
		dlen--;
	if (realm[0] != '/')
		return err_set(e, EPERM, "HIMDS key file is not an absolute "
		    "path");
	if (strncmp(realm, tokens_dir, dlen) != 0 || realm[dlen] != '/')
		return err_set(e, EPERM, "HIMDS key file is not in %.*s "
		    "(AZURE_ARC_TOKENS_DIR): refused", (int)dlen, tokens_dir);
	name = realm + dlen + 1;
	n = strlen(name);
	if (strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0 || strstr(realm, "/../") != NULL ||
	    strstr(realm, "/./") != NULL)
		return err_set(e, EPERM, "HIMDS key file is not directly in "
		    "%.*s (AZURE_ARC_TOKENS_DIR): refused", (int)dlen,
		    tokens_dir);
	if (n <= 4 || strcmp(name + n - 4, ".key") != 0)
		return err_set(e, EPERM, "HIMDS key file is not named *.key: "
		    "refused");
	return 0;
}

/* ---------------------------------------------------------------- HTTP */

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct identity *id = arg;
	size_t len = size * n;
	char *p;

	if (id->body_len + len > BODY_MAX)
		return 0;		/* too long: the transfer fails */
	if ((p = realloc(id->body, id->body_len + len + 1)) == NULL)
		return 0;
	id->body = p;
	memcpy(id->body + id->body_len, data, len);
	id->body_len += len;
	id->body[id->body_len] = '\0';
	return len;
}

/* WWW-Authenticate: Basic realm=PATH (quotes allowed). */
static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
	static const char name[] = "WWW-Authenticate:";
	struct identity *id = arg;
	size_t len = size * n, vlen;
	const char *v, *r;

	if (len <= sizeof name - 1 || strncasecmp(data, name,
	    sizeof name - 1) != 0)
		return len;
	v = data + sizeof name - 1;
	vlen = len - (sizeof name - 1);
	while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
	    v[vlen - 1] == ' '))
		vlen--;
	r = memmem(v, vlen, "realm=", 6);
	if (r == NULL)
		return len;
	r += 6;
	vlen -= (size_t)(r - v);
	if (vlen >= 2 && r[0] == '"' && r[vlen - 1] == '"') {
		r++;
		vlen -= 2;
	}
	if (vlen < sizeof id->realm) {
		memcpy(id->realm, r, vlen);
		id->realm[vlen] = '\0';
	}
	return len;
}

static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	struct identity *id = arg;

	(void)dt; (void)dn; (void)ut; (void)un;
	return id->stop != NULL && *id->stop ? 1 : 0;
}

static void
clear_body(struct identity *id)
{
	if (id->body != NULL)
		explicit_bzero(id->body, id->body_len);
	free(id->body);
	id->body = NULL;
	id->body_len = 0;
}

/*
 * GET url (post NULL) or POST post as a form; *status is the HTTP
 * status, id->body the reply and id->realm a Basic realm.  -1 only when
 * no answer came (e names the phase).
 */
static int
request(struct identity *id, const char *what, const char *url,
    int metadata, struct curl_slist *headers, const char *post,
    long *status, struct err *e)
{
	CURL *c = id->curl;
	CURLcode rc = CURLE_OK;

	curl_easy_reset(c);
	clear_body(id);
	id->realm[0] = '\0';
	id->errbuf[0] = '\0';
	*status = 0;
#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(c, opt, val)
	SET(CURLOPT_URL, url);
	/* the metadata services are on this machine: http, never a proxy;
	 * Entra ID is https, through the site's proxy when it has one */
	SET(CURLOPT_PROTOCOLS_STR, metadata ? "http,https" : "https");
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_NOSIGNAL, 1L);
	if (metadata)
		SET(CURLOPT_NOPROXY, "*");
	SET(CURLOPT_ERRORBUFFER, id->errbuf);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, id);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, id);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, id);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_CONNECTTIMEOUT, CONNECT_SECONDS);
	SET(CURLOPT_TIMEOUT, REQUEST_SECONDS);
	if (post != NULL)
		SET(CURLOPT_POSTFIELDS, post);
	if (rc == CURLE_OK && id->s.ca_file != NULL)
		rc = api_trust_ca(c, id->s.ca_file);
#undef SET
	if (rc != CURLE_OK)
		return err_set(e, EINVAL, "%s: libcurl option: %s", what,
		    curl_easy_strerror(rc));
	rc = curl_easy_perform(c);
	if (post != NULL)	/* the form may hold a secret */
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
	if (rc != CURLE_OK)
		return err_set(e, rc == CURLE_ABORTED_BY_CALLBACK ? EINTR :
		    rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : EIO,
		    "%s: %s", what, id->errbuf[0] ? id->errbuf :
		    curl_easy_strerror(rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

/* What a failed token endpoint said: "HTTP 400 invalid_client: …". */
static int
http_error(struct identity *id, const char *what, long status, struct err *e)
{
	json_t *j = id->body != NULL ? json_loads(id->body, 0, NULL) : NULL;
	const char *code = json_string_value(json_object_get(j, "error"));
	const char *desc = json_string_value(json_object_get(j,
	    "error_description"));
	int n = desc != NULL ? (int)strcspn(desc, "\r\n") : 0;

	if (n > 200)
		n = 200;
	err_set(e, status == 401 || status == 403 ? EACCES : EIO,
	    "%s: HTTP %ld%s%s%s%.*s", what, status, code ? " " : "",
	    code ? code : "", desc ? ": " : "", n, desc ? desc : "");
	json_decref(j);
	return -1;
}

static int
retryable(long status)
{
	return status == 404 || status == 429 || status >= 500;
}

/* Sleep seconds unless asked to stop; -1 when stopped. */
static int
nap(struct identity *id, int seconds, struct err *e)
{
	struct timespec ts = { 0, 100 * 1000000L };

	for (int i = 0; i < seconds * 10; i++) {
		if (id->stop != NULL && *id->stop)
			return err_set(e, EINTR, "stopped");
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* Free request headers, clearing them first (one may hold a key). */
static void
free_headers(struct curl_slist *h)
{
	for (struct curl_slist *t = h; t != NULL; t = t->next)
		explicit_bzero(t->data, strlen(t->data));
	curl_slist_free_all(h);
}

/* GET with "Metadata: true" (and auth when not NULL), retrying 404, 429
 * and 5xx IDENTITY_RETRIES times; *status the last answer. */
static int
metadata_get(struct identity *id, const char *what, const char *url,
    const char *auth, long *status, struct err *e)
{
	struct curl_slist *h = NULL, *t;
	int rc = -1;

	if ((t = curl_slist_append(h, "Metadata: true")) == NULL)
		goto oom;
	h = t;
	if (auth != NULL) {
		if ((t = curl_slist_append(h, auth)) == NULL)
			goto oom;
		h = t;
	}
	for (int i = 0; i < IDENTITY_RETRIES; i++) {
		if (i > 0 && nap(id, 1 << (i - 1), e) == -1) {
			rc = -1;	/* stopped: EINTR, not the last status */
			break;
		}
		if ((rc = request(id, what, url, 1, h, NULL, status,
		    e)) == -1 || !retryable(*status))
			break;
	}
	free_headers(h);
	return rc;
oom:
	free_headers(h);
	return err_set(e, ENOMEM, "%s: out of memory", what);
}

/* ------------------------------------------------------- managed identity */

/* "{base}{sep}api-version=V&resource=R" into out. */
static int
token_url(const char *base, const char *version, const char *resource,
    char *out, size_t outsz, struct err *e)
{
	char enc[3 * 1024 + 1];

	if (relay_percent_encode(resource, enc, sizeof enc, e) == -1)
		return -1;
	if (snprintf(out, outsz, "%s%sapi-version=%s&resource=%s", base,
	    strchr(base, '?') != NULL ? "&" : "?", version, enc) >=
	    (int)outsz)
		return err_set(e, ENAMETOOLONG, "token URL too long");
	return 0;
}

static int
got_token(struct identity *id, const char *what, long status, struct err *e)
{
	if (status != 200)
		return http_error(id, what, status, e);
	if (identity_parse_reply(id->body != NULL ? id->body : "",
	    (int64_t)time(NULL), id->fresh.value, sizeof id->fresh.value,
	    &id->fresh.expires_on, e) == -1)
		return err_wrap(e, "%s", what);
	return 0;
}

static int
imds(struct identity *id, const char *resource, struct err *e)
{
	char base[2048], url[4096], what[2200];
	size_t n = strlen(id->s.imds_endpoint);
	long status;

	while (n > 0 && id->s.imds_endpoint[n - 1] == '/')
		n--;
	if (snprintf(base, sizeof base, "%.*s/metadata/identity/oauth2/token",
	    (int)n, id->s.imds_endpoint) >= (int)sizeof base ||
	    token_url(base, IMDS_API_VERSION, resource, url, sizeof url,
	    e) == -1)
		return err_set(e, ENAMETOOLONG, "AZURE_IMDS_ENDPOINT too long");
	snprintf(what, sizeof what, "managed identity (Azure VM IMDS) at %s",
	    base);
	if (metadata_get(id, what, url, NULL, &status, e) == -1)
		return -1;
	return got_token(id, what, status, e);
}

/* The HIMDS key file named by the challenge, as an Authorization line. */
static int
arc_secret(struct identity *id, char *auth, size_t authsz, struct err *e)
{
	char key[IDENTITY_KEY_FILE_MAX + 1];
	struct stat sb;
	ssize_t n;
	int fd, rc = -1;

	if (id->realm[0] == '\0')
		return err_set(e, EPROTO, "HIMDS answered 401 without "
		    "WWW-Authenticate: Basic realm=<key file>");
	if (identity_arc_key_ok(id->realm, id->s.arc_tokens_dir, e) == -1)
		return -1;
	if ((fd = open(id->realm, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return err_sys(e, "cannot read the HIMDS key file %s (the "
		    "service user needs group himds)", id->realm);
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		err_set(e, EPERM, "HIMDS key file %s is not a regular file: "
		    "refused", id->realm);
		goto done;
	}
	if (sb.st_size > IDENTITY_KEY_FILE_MAX) {
		err_set(e, EPERM, "HIMDS key file %s is larger than %d bytes: "
		    "refused", id->realm, IDENTITY_KEY_FILE_MAX);
		goto done;
	}
	n = read(fd, key, sizeof key);
	if (n < 0 || n > IDENTITY_KEY_FILE_MAX) {
		err_set(e, EIO, "cannot read the HIMDS key file %s", id->realm);
		goto done;
	}
	key[n] = '\0';
	if (n == 0 || strcspn(key, "\r\n") != (size_t)n) {
		err_set(e, EPROTO, "HIMDS key file %s is empty or holds a line "
		    "break", id->realm);
		goto done;
	}
	if (snprintf(auth, authsz, "Authorization: Basic %s", key) <
	    (int)authsz)
		rc = 0;
	else
		err_set(e, ENOSPC, "HIMDS key too long");
done:
	explicit_bzero(key, sizeof key);
	close(fd);
	return rc;
}

static int
arc(struct identity *id, const char *resource, struct err *e)
{
	char url[4096], what[4200], auth[IDENTITY_KEY_FILE_MAX + 64];
	long status;
	int rc;

	if (token_url(id->s.identity_endpoint, ARC_API_VERSION, resource, url,
	    sizeof url, e) == -1)
		return -1;
	snprintf(what, sizeof what, "managed identity (Azure Arc HIMDS) at "
	    "%s", id->s.identity_endpoint);
	if (metadata_get(id, what, url, NULL, &status, e) == -1)
		return -1;
	if (status != 401)
		return status == 200 ? err_set(e, EPROTO, "%s: no challenge "
		    "(HTTP 200 without 401 first): not HIMDS", what) :
		    http_error(id, what, status, e);
	if (arc_secret(id, auth, sizeof auth, e) == -1)
		return err_wrap(e, "%s", what);
	rc = metadata_get(id, what, url, auth, &status, e);
	explicit_bzero(auth, sizeof auth);
	if (rc == -1)
		return -1;
	return got_token(id, what, status, e);
}

/* --------------------------------------------------- client credentials */

/* A name that goes into the token URL's path as it is. */
static int
path_safe(const char *what, const char *s, struct err *e)
{
	for (const char *p = s; *p != '\0'; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			return err_set(e, EINVAL, "%s: only letters, digits, "
			    "'-' and '.' are allowed", what);
	return 0;
}

/* Base64url of a JSON object's compact text, appended to out at *n. */
static int
append_b64json(json_t *j, char *out, size_t outsz, size_t *n)
{
	char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t len;

	json_decref(j);
	if (text == NULL)
		return -1;
	len = strlen(text);
	if (*n + (len + 2) / 3 * 4 + 2 > outsz) {
		free(text);
		return -1;
	}
	b64url((unsigned char *)text, len, out + *n);
	*n += strlen(out + *n);
	free(text);
	return 0;
}

/* PS256 signature of in (RSA-PSS, SHA-256, salt of the digest's length). */
static int
ps256(EVP_PKEY *key, const char *in, size_t inlen, unsigned char *sig,
    size_t *siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok;

	ok = md != NULL &&
	    EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) ==
	    1 && EVP_DigestSign(md, sig, siglen, (const unsigned char *)in,
	    inlen) == 1;
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

static int
load_pem(const char *path, X509 **cert, EVP_PKEY **key, struct err *e)
{
	char *text = NULL;
	size_t len;
	BIO *b;

	*cert = NULL;
	*key = NULL;
	if (fs_read_small(path, 1024 * 1024, &text, &len, e) == -1)
		return err_wrap(e, "AZURE_CLIENT_CERTIFICATE_PATH");
	if ((b = BIO_new_mem_buf(text, (int)len)) != NULL) {
		*cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	if ((b = BIO_new_mem_buf(text, (int)len)) != NULL) {
		*key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	explicit_bzero(text, len);
	free(text);
	if (*cert == NULL || *key == NULL)
		return err_set(e, EINVAL, "AZURE_CLIENT_CERTIFICATE_PATH %s: "
		    "needs a certificate and its unencrypted private key in "
		    "PEM", path);
	if (EVP_PKEY_get_base_id(*key) != EVP_PKEY_RSA)
		return err_set(e, EINVAL, "AZURE_CLIENT_CERTIFICATE_PATH %s: "
		    "the key is not RSA (PS256 needs RSA)", path);
	if (X509_check_private_key(*cert, *key) != 1)
		return err_set(e, EINVAL, "AZURE_CLIENT_CERTIFICATE_PATH %s: "
		    "the key does not belong to the certificate", path);
	return 0;
}

/*
 * The client assertion (Entra ID certificate credentials) for the token
 * URL aud, into out.
 */
static int
client_assertion(const struct identity_settings *s, const char *aud,
    char *out, size_t outsz, struct err *e)
{
	unsigned char digest[EVP_MAX_MD_SIZE], sig[1024];
	char thumb[64], jti[RELAY_UUID_LEN + 1];
	unsigned int dlen = 0;
	size_t siglen = sizeof sig, n = 0;
	int64_t now = (int64_t)time(NULL);
	X509 *cert;
	EVP_PKEY *key;
	int rc = -1;

	if (load_pem(s->client_cert_path, &cert, &key, e) == -1)
		goto done;
	if (X509_digest(cert, EVP_sha256(), digest, &dlen) != 1 ||
	    relay_uuid(jti, e) == -1) {
		err_set(e, EIO, "client assertion: cannot hash the "
		    "certificate");
		goto done;
	}
	b64url(digest, dlen, thumb);
	if (append_b64json(json_pack("{s:s, s:s, s:s}", "alg", "PS256",
	    "typ", "JWT", "x5t#S256", thumb), out, outsz, &n) == -1 ||
	    n + 1 >= outsz)
		goto full;
	out[n++] = '.';
	if (append_b64json(json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}",
	    "aud", aud, "iss", s->client_id, "sub", s->client_id, "jti", jti,
	    "nbf", (json_int_t)now, "iat", (json_int_t)now, "exp",
	    (json_int_t)(now + IDENTITY_ASSERTION_SECONDS)), out, outsz,
	    &n) == -1)
		goto full;
	if ((size_t)EVP_PKEY_get_size(key) > sizeof sig ||
	    ps256(key, out, n, sig, &siglen) == -1) {
		err_set(e, EIO, "client assertion: PS256 signing failed "
		    "(OpenSSL)");
		goto done;
	}
	if (n + 1 + (siglen + 2) / 3 * 4 + 1 > outsz)
		goto full;
	out[n++] = '.';
	b64url(sig, siglen, out + n);
	rc = 0;
	goto done;
full:
	err_set(e, ENOSPC, "client assertion too long");
done:
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

/* name=<encoded value>, appended with "&" to the form in out. */
static int
form_add(char *out, size_t outsz, const char *name, const char *value,
    struct err *e)
{
	size_t n = strlen(out);

	if (snprintf(out + n, outsz - n, "%s%s=", n > 0 ? "&" : "", name) >=
	    (int)(outsz - n))
		return err_set(e, ENOSPC, "token request too long");
	n = strlen(out);
	return relay_percent_encode(value, out + n, outsz - n, e);
}

static int
client_credentials(struct identity *id, enum identity_kind kind,
    const char *resource, struct err *e)
{
	char *form = id->form, *assertion = id->assertion;
	char url[2048], scope[1100], what[2200];
	struct curl_slist *h;
	const struct identity_settings *s = &id->s;
	long status;
	int rc;

	if (path_safe("AZURE_TENANT_ID", s->tenant_id, e) == -1)
		return -1;
	if (snprintf(url, sizeof url, "%s/%s/oauth2/v2.0/token",
	    s->authority_host, s->tenant_id) >= (int)sizeof url ||
	    snprintf(scope, sizeof scope, "%s/.default", resource) >=
	    (int)sizeof scope)
		return err_set(e, ENAMETOOLONG, "token URL or scope too long");
	snprintf(what, sizeof what, "client credentials (%s) at %s",
	    kind == IDENTITY_CLIENT_SECRET ? "secret" : "certificate", url);
	form[0] = '\0';
	rc = form_add(form, sizeof id->form, "client_id", s->client_id, e);
	if (rc == 0)
		rc = form_add(form, sizeof id->form, "scope", scope, e);
	if (rc == 0)
		rc = form_add(form, sizeof id->form, "grant_type",
		    "client_credentials", e);
	if (rc == 0 && kind == IDENTITY_CLIENT_SECRET)
		rc = form_add(form, sizeof id->form, "client_secret",
		    s->client_secret, e);
	if (rc == 0 && kind == IDENTITY_CLIENT_CERT) {
		rc = client_assertion(s, url, assertion, sizeof id->assertion,
		    e);
		if (rc == 0)
			rc = form_add(form, sizeof id->form,
			    "client_assertion_type", ASSERTION_TYPE, e);
		if (rc == 0)
			rc = form_add(form, sizeof id->form, "client_assertion",
			    assertion, e);
		explicit_bzero(assertion, sizeof id->assertion);
	}
	h = rc == 0 ? curl_slist_append(NULL, "Accept: application/json") :
	    NULL;
	if (rc == 0 && h == NULL)
		rc = err_set(e, ENOMEM, "out of memory");
	if (rc == 0)
		rc = request(id, what, url, 0, h, form, &status, e);
	explicit_bzero(form, sizeof id->form);
	curl_slist_free_all(h);
	if (rc == -1)
		return -1;
	return got_token(id, what, status, e);
}

/* -------------------------------------------------------------- tokens */

int
identity_new(struct identity **out, const struct identity_settings *s,
    volatile sig_atomic_t *stop, struct err *e)
{
	struct identity *id = calloc(1, sizeof *id);

	*out = NULL;
	if (id == NULL)
		return err_sys(e, "identity: out of memory");
	id->s = *s;
	id->stop = stop;
	if ((id->curl = curl_easy_init()) == NULL) {
		free(id);
		return err_set(e, ENOMEM, "identity: curl_easy_init failed");
	}
	*out = id;
	return 0;
}

void
identity_free(struct identity *id)
{
	if (id == NULL)
		return;
	curl_easy_cleanup(id->curl);
	clear_body(id);
	explicit_bzero(id, sizeof *id);
	free(id);
}

/* The cache key of src's token. */
static const char *
key_of(const struct identity *id, const struct identity_source *src,
    const char *sas_resource)
{
	switch (src->kind) {
	case IDENTITY_SAS:
		return sas_resource != NULL ? sas_resource : "";
	case IDENTITY_COMMAND:
		return src->use == IDENTITY_FOR_RELAY ?
		    id->s.relay_token_command : id->s.api_token_command;
	case IDENTITY_STATIC:
		return "CLOUD_API_TOKEN";
	default:
		return src->resource != NULL ? src->resource : "";
	}
}

static struct slot *
find(struct identity *id, enum identity_kind kind, const char *key)
{
	for (int i = 0; i < CACHE_SLOTS; i++)
		if (id->slot[i].used && id->slot[i].kind == kind &&
		    strcmp(id->slot[i].key, key) == 0)
			return &id->slot[i];
	return NULL;
}

/* A free slot, else the one renewed soonest. */
static struct slot *
slot_for(struct identity *id)
{
	struct slot *best = &id->slot[0];

	for (int i = 0; i < CACHE_SLOTS; i++) {
		if (!id->slot[i].used)
			return &id->slot[i];
		if (id->slot[i].tok.renew_at < best->tok.renew_at)
			best = &id->slot[i];
	}
	return best;
}

static int
sas(struct identity *id, const char *resource, int64_t now, struct err *e)
{
	id->fresh.expires_on = now + id->s.ttl_seconds;
	return relay_sas_token(resource, id->s.relay_key_name,
	    id->s.relay_key, id->fresh.expires_on, id->fresh.value,
	    sizeof id->fresh.value, e);
}

static int
command(struct identity *id, const struct identity_source *src, int64_t now,
    struct err *e)
{
	const char *cmd = key_of(id, src, NULL);
	int64_t exp;

	if (relay_token_from_command(cmd, id->fresh.value,
	    sizeof id->fresh.value, COMMAND_SECONDS, e) == -1)
		return err_wrap(e, "%s", src->use == IDENTITY_FOR_RELAY ?
		    "AZURE_RELAY_TOKEN_COMMAND" : "CLOUD_API_TOKEN_COMMAND");
	exp = identity_jwt_exp(id->fresh.value);
	id->fresh.expires_on = exp > now ? exp : now + id->s.ttl_seconds;
	return 0;
}

static int
static_token(struct identity *id, struct err *e)
{
	const char *t = id->s.api_token;

	id->fresh.expires_on = 0;
	if (snprintf(id->fresh.value, sizeof id->fresh.value, "%s%s",
	    strncmp(t, BEARER, strlen(BEARER)) == 0 ? "" : BEARER, t) >=
	    (int)sizeof id->fresh.value)
		return err_set(e, EINVAL, "CLOUD_API_TOKEN too long");
	return 0;
}

/* Make src's token into id->fresh. */
static int
make(struct identity *id, const struct identity_source *src,
    const char *sas_resource, struct err *e)
{
	int64_t now = (int64_t)time(NULL);

	memset(&id->fresh, 0, sizeof id->fresh);
	switch (src->kind) {
	case IDENTITY_SAS:
		if (sas_resource == NULL)
			return err_set(e, EINVAL, "SAS token: no entity");
		return sas(id, sas_resource, now, e);
	case IDENTITY_COMMAND:
		return command(id, src, now, e);
	case IDENTITY_STATIC:
		return static_token(id, e);
	case IDENTITY_ARC:
		return arc(id, src->resource, e);
	case IDENTITY_IMDS:
		return imds(id, src->resource, e);
	case IDENTITY_CLIENT_SECRET:
	case IDENTITY_CLIENT_CERT:
		return client_credentials(id, src->kind, src->resource, e);
	}
	return err_set(e, EINVAL, "unknown credential");
}

int
identity_token(struct identity *id, const struct identity_source *src,
    const char *sas_resource, const struct identity_token **out,
    struct err *e)
{
	const char *key = key_of(id, src, sas_resource);
	struct slot *sl = find(id, src->kind, key);
	int64_t now = (int64_t)time(NULL);

	*out = NULL;
	if (strlen(key) >= sizeof sl->key)
		return err_set(e, ENAMETOOLONG, "token cache key too long");
	if (sl != NULL && (sl->tok.renew_at == 0 || now < sl->tok.renew_at)) {
		sl->tok.renew_error[0] = '\0';	/* said once */
		*out = &sl->tok;
		return 0;
	}
	if (make(id, src, sas_resource, e) == -1) {
		explicit_bzero(&id->fresh, sizeof id->fresh);
		clear_body(id);
		if (sl != NULL && sl->tok.expires_on - now >
		    IDENTITY_RENEW_MARGIN_SECONDS / 5) {
			/* keep the valid token; try again in a while */
			snprintf(sl->tok.renew_error,
			    sizeof sl->tok.renew_error, "%.250s", e->msg);
			sl->tok.renew_at = now + (sl->tok.expires_on - now) / 4;
			*out = &sl->tok;
			return 0;
		}
		return err_wrap(e, "no token (%s)",
		    identity_kind_name(src->kind));
	}
	clear_body(id);
	if (sl == NULL)
		sl = slot_for(id);
	explicit_bzero(sl, sizeof *sl);
	sl->used = 1;
	sl->kind = src->kind;
	snprintf(sl->key, sizeof sl->key, "%s", key);
	sl->tok = id->fresh;
	explicit_bzero(&id->fresh, sizeof id->fresh);
	if (src->kind == IDENTITY_STATIC)
		sl->tok.renew_at = 0;
	else
		sl->tok.renew_at = identity_renew_at(now, sl->tok.expires_on);
	*out = &sl->tok;
	return 0;
}

void
identity_forget(struct identity *id, const struct identity_source *src)
{
	for (int i = 0; i < CACHE_SLOTS; i++)
		if (id->slot[i].used && id->slot[i].kind == src->kind &&
		    (src->kind == IDENTITY_SAS || strcmp(id->slot[i].key,
		    key_of(id, src, NULL)) == 0))
			explicit_bzero(&id->slot[i], sizeof id->slot[i]);
}
