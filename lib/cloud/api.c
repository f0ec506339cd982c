/*
 * api: Manage API requests through libcurl.  See cloud/cloud.h.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cloud/cloud.h"

struct api {
	CURL *curl;
	struct api_opts opts;
	char ca_file[4096];
	char errbuf[CURL_ERROR_SIZE];
	struct api_result *result;	/* of the request in progress */
	size_t body_len;
};

int
api_open(struct api **out, const struct api_opts *o, struct err *e)
{
	struct api *u = calloc(1, sizeof *u);

	*out = NULL;
	if (u == NULL)
		return err_sys(e, "upload: out of memory");
	u->opts = *o;
	if (o->ca_file != NULL && o->ca_file[0] != '\0') {
		if (strlen(o->ca_file) >= sizeof u->ca_file) {
			free(u);
			return err_set(e, ENAMETOOLONG, "upload: CA file path "
			    "too long");
		}
		strcpy(u->ca_file, o->ca_file);
	}
	u->opts.ca_file = u->ca_file;
	if ((u->curl = curl_easy_init()) == NULL) {
		free(u);
		return err_set(e, ENOMEM, "upload: curl_easy_init failed");
	}
	*out = u;
	return 0;
}

void
api_close(struct api *u)
{
	if (u == NULL)
		return;
	curl_easy_cleanup(u->curl);
	free(u);
}

/* Add the extra CA bundle (arg, its path) to the store curl verifies
 * against. */
static CURLcode
add_ca(CURL *curl, void *ssl_ctx, void *arg)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ssl_ctx);

	(void)curl;
	if (store == NULL || X509_STORE_load_file(store, arg) != 1)
		return CURLE_SSL_CACERT_BADFILE;
	return CURLE_OK;
}

int
api_trust_ca(void *curl, const char *ca_file)
{
	CURLcode rc;

	if ((rc = curl_easy_setopt(curl, CURLOPT_CA_CACHE_TIMEOUT, 0L)) ==
	    CURLE_OK && (rc = curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION,
	    add_ca)) == CURLE_OK)
		rc = curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, ca_file);
	return (int)rc;
}

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct api *u = arg;
	size_t len = size * n, room = API_BODY_MAX - 1 - u->body_len;
	size_t take = len < room ? len : room;

	memcpy(u->result->body + u->body_len, data, take);
	u->body_len += take;
	u->result->body[u->body_len] = '\0';
	return len;
}

static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
	struct api *u = arg;
	size_t len = size * n;
	char value[128];

	if (len > 12 && len - 12 < sizeof value &&
	    strncasecmp(data, "Retry-After:", 12) == 0) {
		memcpy(value, data + 12, len - 12);
		value[len - 12] = '\0';
		u->result->retry_after_seconds = api_parse_retry_after(value,
		    (long long)time(NULL));
	}
	return len;
}

static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	struct api *u = arg;

	(void)dt; (void)dn; (void)ut; (void)un;
	return u->opts.stop != NULL && *u->opts.stop ? 1 : 0;
}

/* Options every request has: TLS, timeouts, callbacks. */
static int
setup(struct api *u, const char *url, struct curl_slist *headers,
    struct api_result *r, struct err *e)
{
	CURL *c = u->curl;
	CURLcode rc = CURLE_OK;

	curl_easy_reset(c);
	memset(r, 0, sizeof *r);
	r->retry_after_seconds = -1;
	u->result = r;
	u->body_len = 0;
	u->errbuf[0] = '\0';
#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(c, opt, val)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, u->errbuf);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, u);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, u);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, u);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_CONNECTTIMEOUT, u->opts.connect_timeout_seconds);
	SET(CURLOPT_LOW_SPEED_LIMIT, u->opts.low_speed_bytes);
	SET(CURLOPT_LOW_SPEED_TIME, u->opts.low_speed_seconds);
	SET(CURLOPT_TIMEOUT, u->opts.total_timeout_seconds);
	SET(CURLOPT_MAX_SEND_SPEED_LARGE,
	    (curl_off_t)u->opts.max_send_bytes_per_second);
	if (rc == CURLE_OK && u->ca_file[0] != '\0')
		rc = api_trust_ca(c, u->ca_file);
#undef SET
	if (rc != CURLE_OK)
		return err_set(e, EINVAL, "upload: libcurl option: %s",
		    curl_easy_strerror(rc));
	return 0;
}

/* Name the phase that failed, so a person knows where to look. */
static const char *
phase(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		return "DNS";
	case CURLE_COULDNT_CONNECT:
		return "TCP connect";
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		return "TLS: certificate verification failed";
	case CURLE_SSL_CONNECT_ERROR:
		return "TLS handshake";
	case CURLE_OPERATION_TIMEDOUT:
		return "timeout";
	case CURLE_ABORTED_BY_CALLBACK:
		return "stopped";
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return "connection lost";
	case CURLE_READ_ERROR:
		return "reading the file";
	default:
		return "request";
	}
}

static int
perform(struct api *u, const char *method, const char *url,
    struct api_result *r, struct err *e)
{
	CURLcode rc = curl_easy_perform(u->curl);
	curl_off_t sent = 0;
	double secs = 0;

	curl_easy_getinfo(u->curl, CURLINFO_TOTAL_TIME, &secs);
	curl_easy_getinfo(u->curl, CURLINFO_SIZE_UPLOAD_T, &sent);
	r->seconds = secs;
	r->bytes_sent = (long long)sent;
	if (rc != CURLE_OK)
		return err_set(e, rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT :
		    rc == CURLE_ABORTED_BY_CALLBACK ? EINTR : EIO,
		    "%s %s: %s: %s", method, url, phase(rc),
		    u->errbuf[0] ? u->errbuf : curl_easy_strerror(rc));
	curl_easy_getinfo(u->curl, CURLINFO_RESPONSE_CODE, &r->status);
	return 0;
}

static struct curl_slist *
auth_headers(const char *authorization, const char *content_type,
    struct err *e)
{
	char line[20000];
	struct curl_slist *h = NULL, *t;

	if (snprintf(line, sizeof line, "Authorization: %s", authorization) >=
	    (int)sizeof line) {
		err_set(e, EINVAL, "upload: token too long");
		return NULL;
	}
	if ((t = curl_slist_append(h, line)) == NULL)
		goto oom;
	h = t;
	if ((t = curl_slist_append(h, "Expect:")) == NULL)
		goto oom;
	h = t;
	if (content_type != NULL) {
		snprintf(line, sizeof line, "Content-Type: %s", content_type);
		if ((t = curl_slist_append(h, line)) == NULL)
			goto oom;
		h = t;
	}
	return h;
oom:
	curl_slist_free_all(h);
	err_set(e, ENOMEM, "upload: out of memory");
	return NULL;
}

int
api_put_file(struct api *u, const char *url, const char *authorization,
    const char *path, const char *filename, struct api_result *r,
    struct err *e)
{
	struct curl_slist *h;
	curl_mime *mime = NULL;
	curl_mimepart *part;
	int rc = -1;

	if ((h = auth_headers(authorization, NULL, e)) == NULL)
		return -1;
	if (setup(u, url, h, r, e) == -1)
		goto done;
	if ((mime = curl_mime_init(u->curl)) == NULL ||
	    (part = curl_mime_addpart(mime)) == NULL) {
		err_set(e, ENOMEM, "upload: out of memory");
		goto done;
	}
	if (curl_mime_name(part, "file") != CURLE_OK ||
	    curl_mime_filedata(part, path) != CURLE_OK ||
	    curl_mime_filename(part, filename) != CURLE_OK ||
	    curl_mime_type(part, "application/dicom") != CURLE_OK ||
	    curl_easy_setopt(u->curl, CURLOPT_MIMEPOST, mime) != CURLE_OK ||
	    curl_easy_setopt(u->curl, CURLOPT_CUSTOMREQUEST, "PUT") !=
	    CURLE_OK) {
		err_set(e, EIO, "upload: cannot build the request for %s",
		    path);
		goto done;
	}
	rc = perform(u, "PUT", url, r, e);
done:
	curl_easy_setopt(u->curl, CURLOPT_MIMEPOST, NULL);
	curl_mime_free(mime);
	curl_slist_free_all(h);
	return rc;
}

int
api_patch_json(struct api *u, const char *url,
    const char *authorization, const char *json, struct api_result *r,
    struct err *e)
{
	struct curl_slist *h;
	int rc = -1;

	if ((h = auth_headers(authorization, "application/json", e)) == NULL)
		return -1;
	if (setup(u, url, h, r, e) == -1)
		goto done;
	if (curl_easy_setopt(u->curl, CURLOPT_CUSTOMREQUEST, "PATCH") !=
	    CURLE_OK || curl_easy_setopt(u->curl, CURLOPT_POSTFIELDSIZE,
	    (long)strlen(json)) != CURLE_OK ||
	    curl_easy_setopt(u->curl, CURLOPT_COPYPOSTFIELDS, json) !=
	    CURLE_OK) {
		err_set(e, EIO, "upload: cannot build the PATCH request");
		goto done;
	}
	rc = perform(u, "PATCH", url, r, e);
done:
	curl_slist_free_all(h);
	return rc;
}

enum api_outcome
api_outcome(long status)
{
	if (status >= 200 && status < 300)
		return API_DONE;
	if (status == 401)
		return API_TOKEN;
	if (status == 403)
		return API_REFUSED;
	if (status == 500)
		return API_SERVER_ERROR;
	if (status >= 400 && status < 500 && status != 408 && status != 429)
		return API_REJECTED;
	return API_TRANSIENT;
}

long
api_parse_retry_after(const char *value, long long now)
{
	char buf[128], *end;
	size_t n;
	long v;
	time_t t;

	while (isspace((unsigned char)*value))
		value++;
	n = strlen(value);
	while (n > 0 && isspace((unsigned char)value[n - 1]))
		n--;
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, value, n);
	buf[n] = '\0';
	if (isdigit((unsigned char)buf[0])) {
		errno = 0;
		v = strtol(buf, &end, 10);
		return *end != '\0' || errno != 0 || v < 0 ? -1 : v;
	}
	if ((t = curl_getdate(buf, NULL)) == -1)
		return -1;
	return (long long)t <= now ? 0 : (long)((long long)t - now);
}

long long
api_backoff_ms(int attempts, long cap_seconds, long retry_after_seconds,
    unsigned random_bits)
{
	long long cap = (long long)(cap_seconds > 0 ? cap_seconds : 1) * 1000;
	long long d = 1000;

	for (int i = 1; i < attempts && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	d = d / 2 + (long long)(random_bits % (unsigned)(d / 2 + 1));
	/* a server's Retry-After of years (or of 2^63 seconds: signed
	 * overflow) is capped, so the caller's now + delay stays sane */
	if (retry_after_seconds > API_RETRY_AFTER_MAX_SECONDS)
		retry_after_seconds = API_RETRY_AFTER_MAX_SECONDS;
	if (retry_after_seconds >= 0 && d < retry_after_seconds * 1000LL)
		d = retry_after_seconds * 1000LL;
	return d;
}
