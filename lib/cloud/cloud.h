/*
 * cloud: the way out to the cloud: Azure Relay (tokens, WebSocket), the
 * Manage API, the relay spool's jobs and how relaysend sends them.
 *
 * Layer 4.  The one public header of lib/cloud/; what its modules share
 * beyond it is static in its .c files.
 * Modules, each with its contract below: relay, identity, ws, api, event,
 * job, jobqueue, sendqueue, imagesend, eventsend, request, cloud_status.
 */
#ifndef GW_CLOUD_H
#define GW_CLOUD_H

#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/base.h"
#include "queue/queue.h"
#include "archive/archive.h"
#include "image/image.h"
#include "worklist/worklist.h"

/*
 * relay: the pieces of the Azure Relay Hybrid Connections protocol that
 * need no network (../shared/relay/PROTOCOL.md §1-3): SAS tokens, the
 * listen and connect URLs, a token from a command, sb-hc-id UUIDs and
 * the listener's "accept" message.  Which token is used is
 * lib/cloud/identity's.
 *
 * Guarantees: a SAS token is exactly the §1 algorithm (the key is used as
 * the bytes it is written in, never base64-decoded), byte for byte equal
 * to the published test vectors.  Names put into URLs are checked against
 * the characters Azure allows, so no caller text can add a query
 * parameter or change the host.  The endpoint override (host:port,
 * AZURE_RELAY_ENDPOINT, for the local emulator) changes where a URL
 * points, never the resource a token is signed for.
 *
 * Never: prints, exits, keeps state between calls, or logs a token (error
 * messages name the command or field, not the secret).
 *
 * Memory: every result is written into a buffer the caller owns; a result
 * that does not fit is an error, never a truncated string.
 */

#define RELAY_TOKEN_MAX		16384	/* bearer JWTs are long (§1) */
#define RELAY_TOKEN_OUT		(RELAY_TOKEN_MAX + 8)	/* with "Bearer " */
#define RELAY_URL_MAX		(3 * RELAY_TOKEN_MAX + 1024)
#define RELAY_UUID_LEN		36

/* Percent-encode in: all but A-Z a-z 0-9 - _ . ~ becomes %XX (uppercase). */
int relay_percent_encode(const char *in, char *out, size_t outsz,
    struct err *e);

/* "http://{ns}/{hc}": the resource a SAS token is signed for. */
int relay_resource(const char *ns, const char *hc, char *out, size_t outsz,
    struct err *e);

/*
 * "SharedAccessSignature sr=…&sig=…&se=…&skn=…" for resource, valid until
 * expiry (Unix seconds).  key is the portal's text, used as bytes.
 */
int relay_sas_token(const char *resource, const char *key_name,
    const char *key, int64_t expiry, char *out, size_t outsz, struct err *e);

/*
 * The listener's control channel:
 *   wss://{host}/$hc/{hc}?sb-hc-action=listen&sb-hc-id={id}[&sb-hc-token=T]
 * and the sender's:
 *   wss://{host}/$hc/{hc}?sb-hc-action=connect[&sb-hc-token=T]
 * host is endpoint (host:port) when not NULL or empty, else ns.  token
 * (NULL: none, e.g. sent as a header instead) is encoded once more as
 * production does it (Python's quote_plus): a space becomes "+", every
 * other byte but A-Z a-z 0-9 - _ . ~ becomes %XX, so a bearer token goes
 * as sb-hc-token=Bearer+eyJ….
 */
int relay_listen_url(const char *ns, const char *hc, const char *id,
    const char *token, const char *endpoint, char *out, size_t outsz,
    struct err *e);
int relay_connect_url(const char *ns, const char *hc, const char *token,
    const char *endpoint, char *out, size_t outsz, struct err *e);

/*
 * Run command with /bin/sh -c (stdin /dev/null, stderr inherited) and
 * take the token it prints on stdout.  Fails, naming the reason, when the
 * command exits non-zero or by a signal, prints nothing but whitespace,
 * prints RELAY_TOKEN_MAX bytes or more, prints control characters inside
 * the token, or runs longer than timeout_seconds (its whole process group
 * is then killed).  Leading and trailing whitespace is trimmed.
 *
 * The result is ready for sb-hc-token or a ServiceBusAuthorization header:
 * output that starts with "Bearer " or "SharedAccessSignature " is kept
 * as it is; anything else (a bare JWT) becomes "Bearer <output>".
 * An out of RELAY_TOKEN_OUT bytes holds any token this accepts.
 * The caller must not ignore SIGCHLD or reap children it did not start
 * (waitpid(-1, …)): this function waits for its own child by pid.
 */
int relay_token_from_command(const char *command, char *out, size_t outsz,
    int timeout_seconds, struct err *e);

/* A random (version 4) UUID in lowercase text, for sb-hc-id. */
int relay_uuid(char out[RELAY_UUID_LEN + 1], struct err *e);

/*
 * Read one control-channel text message.  Returns 1 for
 * {"accept":{"address":"wss://…","id":"…",…}} with address (and id, ""
 * when absent) copied out; 0 for any other JSON object (a message we do
 * not handle: the caller logs and ignores it); -1 for text that is not a
 * JSON object, or an accept without a usable wss:// address.
 */
int relay_parse_accept(const char *json, char *address, size_t addrsz,
    char *id, size_t idsz, struct err *e);

/*
 * identity: every token the gateway shows the cloud, whichever credential
 * the configuration names: a relay SAS key, a *_TOKEN_COMMAND, the static
 * CLOUD_API_TOKEN, or Microsoft Entra ID natively (libcurl, OpenSSL,
 * jansson): the machine's managed identity through Azure Arc's HIMDS
 * (IDENTITY_ENDPOINT) or the Azure VM's IMDS, or an application's client
 * credentials (a secret, or a certificate's signed client assertion).
 * ../shared/relay/PRODUCTION.md §1.
 *
 * Which credential (identity_choose, production's rule):
 *
 *   ENVIRONMENT=prod   relay: managed identity, resource
 *                      https://relay.azure.net (a SAS key or token
 *                      command is ignored and named in src->ignored);
 *                      API: managed identity, resource CLOUD_API_RESOURCE;
 *                      no CLOUD_API_RESOURCE is a configuration error
 *   otherwise          relay: SAS when AZURE_RELAY_SHARED_ACCESS_KEY is set
 *                      (AZURE_RELAY_KEY_NAME, default
 *                      RootManageSharedAccessKey), else
 *                      AZURE_RELAY_TOKEN_COMMAND, else Entra ID;
 *                      API: Entra ID with CLOUD_API_RESOURCE set, else
 *                      CLOUD_API_TOKEN, else CLOUD_API_TOKEN_COMMAND, else
 *                      a configuration error
 *   Entra ID           client credentials when AZURE_TENANT_ID,
 *                      AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or
 *                      AZURE_CLIENT_CERTIFICATE_PATH are set (the secret
 *                      first), else the managed identity
 *   managed identity   Azure Arc when IDENTITY_ENDPOINT is set, or else
 *                      when the agent's IDENTITY_HIMDS_PROGRAM is there
 *                      (a service may not inherit the agent's variables:
 *                      IDENTITY_ARC_ENDPOINT then, as Microsoft's SDKs
 *                      do), else IMDS (AZURE_IMDS_ENDPOINT, default
 *                      http://169.254.169.254)
 *
 * Flows: Arc: GET IDENTITY_ENDPOINT?api-version=2020-06-01&resource=… with
 * "Metadata: true"; the 401's "WWW-Authenticate: Basic realm=PATH" names
 * a key file that is used only when PATH is directly inside
 * AZURE_ARC_TOKENS_DIR (default /var/opt/azcmagent/tokens), is named
 * *.key, is a regular file (no symbolic link) of at most 4096 bytes; the
 * GET is repeated with "Authorization: Basic <its contents>".  IMDS: GET
 * …/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…
 * with "Metadata: true".  Both try again after 404, 429 and 5xx, 1, 2
 * and 4 s later (IDENTITY_RETRIES tries in all): a token call never
 * blocks its caller for minutes.  Client credentials: POST
 * AZURE_AUTHORITY_HOST/{tenant}/oauth2/v2.0/token, form-encoded,
 * scope <resource>/.default, with client_secret or a client assertion:
 * a PS256 JWT (x5t#S256 of the certificate; aud the token URL, iss = sub
 * = client id, jti, nbf, iat, exp 10 minutes on) signed with the key of
 * the one PEM file at AZURE_CLIENT_CERTIFICATE_PATH (certificate + key).
 * A reply's expires_on is read as a number or a string of digits, else
 * now + expires_in.
 *
 * Cache: one per struct identity (one per process), keyed by credential
 * and resource (for SAS, the entity signed).  A token is used until its
 * renew_at: IDENTITY_RENEW_MARGIN_SECONDS (at most half of its
 * lifetime) before expires_on.  A renewal that fails while the cached
 * token is still valid for IDENTITY_RENEW_MARGIN_SECONDS / 5 more returns
 * that token with renew_error saying why (once), and is tried again a
 * quarter of the remaining time later; identity_forget drops a token
 * the cloud refused (401), so the next call makes a new one.  Command
 * tokens expire when their JWT's exp says, else RELAY_TOKEN_TTL_SECONDS
 * after they were made; a relay SAS token RELAY_TOKEN_TTL_SECONDS after;
 * CLOUD_API_TOKEN never.
 *
 * Never: prints, exits, logs, or puts a token, a secret, a key file's
 * contents or a client assertion into an error message; buffers that held
 * them are cleared (explicit_bzero) when done with.
 *
 * Memory: struct identity is opaque (identity_free); a token handed out
 * points into it and is valid until the next call on it.  Settings and
 * sources point into environ.  The caller calls curl_global_init() once
 * before identity_new().
 */

#define IDENTITY_RELAY_RESOURCE		"https://relay.azure.net"
#define IDENTITY_HIMDS_PROGRAM		"/opt/azcmagent/bin/himds"
#define IDENTITY_ARC_ENDPOINT \
	"http://127.0.0.1:40342/metadata/identity/oauth2/token"
#define IDENTITY_KEY_FILE_MAX		4096
#define IDENTITY_RENEW_MARGIN_SECONDS	300
#define IDENTITY_RETRIES		4
#define IDENTITY_ASSERTION_SECONDS	600

enum identity_use { IDENTITY_FOR_RELAY, IDENTITY_FOR_API };

enum identity_kind {
	IDENTITY_SAS,			/* relay SAS key */
	IDENTITY_COMMAND,		/* AZURE_RELAY_ / CLOUD_API_TOKEN_COMMAND */
	IDENTITY_STATIC,		/* CLOUD_API_TOKEN */
	IDENTITY_ARC,			/* managed identity, Azure Arc HIMDS */
	IDENTITY_IMDS,			/* managed identity, Azure VM IMDS */
	IDENTITY_CLIENT_SECRET,		/* Entra application, secret */
	IDENTITY_CLIENT_CERT		/* Entra application, certificate */
};

/* The settings, from the environment (unset and empty are the same). */
struct identity_settings {
	int prod;				/* ENVIRONMENT=prod (any case) */
	const char *relay_key_name, *relay_key, *relay_token_command;
	const char *api_resource, *api_token, *api_token_command;
	const char *identity_endpoint;		/* IDENTITY_ENDPOINT (Arc) */
	const char *arc_tokens_dir;		/* AZURE_ARC_TOKENS_DIR */
	const char *imds_endpoint;		/* AZURE_IMDS_ENDPOINT */
	const char *tenant_id, *client_id, *client_secret;
	const char *client_cert_path;		/* AZURE_CLIENT_CERTIFICATE_PATH */
	const char *authority_host;		/* AZURE_AUTHORITY_HOST */
	const char *ca_file;			/* GATEWAY_CA_FILE */
	long ttl_seconds;			/* RELAY_TOKEN_TTL_SECONDS */
};

/* -1 with e naming the variable when RELAY_TOKEN_TTL_SECONDS is bad. */
int identity_settings_load(struct identity_settings *s, struct err *e);

/* A credential chosen for one use. */
struct identity_source {
	enum identity_use use;
	enum identity_kind kind;
	const char *resource;		/* Entra ID kinds: the resource */
	char ignored[256];		/* settings set but not used; "" none */
};

/*
 * The rule above for use.  -1 with e saying what to set when there is
 * no credential for it (only the API's: the relay falls back to Entra).
 */
int identity_choose(const struct identity_settings *s, enum identity_use use,
    struct identity_source *out, struct err *e);

/* "sas", "command", "static", "managed-identity-arc",
 * "managed-identity-imds", "client-secret", "client-certificate" */
const char *identity_kind_name(enum identity_kind k);

/* Is it Microsoft Entra ID (managed identity or client credentials)? */
int identity_kind_entra(enum identity_kind k);

#define IDENTITY_TOKEN_OUT	RELAY_TOKEN_OUT

struct identity_token {
	char value[IDENTITY_TOKEN_OUT];	/* "Bearer …" or "SharedAccessSignature …" */
	int64_t expires_on;		/* Unix seconds; 0: not known */
	int64_t renew_at;		/* make a new one from then; 0: never */
	char renew_error[256];		/* a failed renewal of this still
					   valid token, else "" */
};

struct identity;

int identity_new(struct identity **out, const struct identity_settings *s,
    volatile sig_atomic_t *stop, struct err *e);
void identity_free(struct identity *id);

/*
 * The token for src, from the cache or made now.  sas_resource is the
 * entity a SAS token is signed for (relay_resource(); IDENTITY_SAS only,
 * else NULL).  -1 with e naming the credential and what failed (the
 * phase, the endpoint, the HTTP status and the service's error code).
 */
int identity_token(struct identity *id, const struct identity_source *src,
    const char *sas_resource, const struct identity_token **out,
    struct err *e);

/* The cloud refused src's token (401): drop it from the cache. */
void identity_forget(struct identity *id, const struct identity_source *src);

/*
 * Pieces of the flows, exported for tests:
 *
 * identity_parse_reply: a token endpoint's 200 JSON into "Bearer <token>"
 * (out) and *expires_on (expires_on, a number or a string of digits,
 * else now + expires_in).
 * identity_arc_key_ok: is realm (a WWW-Authenticate realm) a key file
 * HIMDS may name: an absolute path directly inside tokens_dir, *.key, no
 * "." or ".." parts?  (Its size and type are checked when it is read.)
 * identity_jwt_exp: the exp claim of a JWT ("Bearer " allowed), 0 when
 * it is not a JWT with a numeric exp.
 * identity_renew_at: when a token made at now and valid until expires_on
 * is renewed.
 */
int identity_parse_reply(const char *json, int64_t now, char *out,
    size_t outsz, int64_t *expires_on, struct err *e);
int identity_arc_key_ok(const char *realm, const char *tokens_dir,
    struct err *e);
int64_t identity_jwt_exp(const char *token);
int64_t identity_renew_at(int64_t now, int64_t expires_on);

/*
 * ws: a small blocking WebSocket client (RFC 6455) over libwebsockets,
 * for the Azure Relay (../shared/relay/PROTOCOL.md §2-3): open a wss://
 * URL, send and receive whole messages, send PINGs and see their PONGs,
 * close with a code.
 *
 * Guarantees: TLS is always verified (peer and host name) against the
 * system's CAs plus an optional extra bundle; plain ws:// is refused.
 * Every call has a deadline; nothing blocks for ever.  A failure names
 * its phase, so logs can say where it broke:
 *   "dns", "tcp", "tls", "handshake" (with the HTTP status when the
 *   server answered something other than 101), "closed" (the peer closed,
 *   with its close code), "timeout", "send", "receive".
 * Handshake buffers hold 16 KiB headers and query strings (bearer tokens
 * are long).  Messages are reassembled from fragments; a message longer
 * than max_message is refused (the connection is then closed with 1009).
 *
 * Never: prints, exits, logs (libwebsockets' own logging is routed to
 * lib/base/log at debug level), or puts a URL's query (it carries the token)
 * into an error message.
 *
 * Threads: one struct ws_ctx per thread; its connections are served
 * together, so a blocking call on one connection also keeps the others'
 * TCP flowing (their messages are queued for their own ws_recv).
 *
 * Memory: contexts and connections are opaque, freed by ws_ctx_free and
 * ws_close.  ws_recv hands out a malloc'd NUL-terminated copy (free()).
 */

#define WS_HEADER_MAX	(16 * 1024 + 1024)

/* Phases, also in struct ws_status.phase as text (ws_phase_name). */
enum ws_phase {
	WS_OK = 0,
	WS_DNS, WS_TCP, WS_TLS, WS_HANDSHAKE, WS_CLOSED, WS_TIMEOUT,
	WS_SEND, WS_RECEIVE
};

/* What the last failing call saw, beside the struct err message. */
struct ws_status {
	enum ws_phase phase;
	int http_status;	/* handshake answer when not 101, else 0 */
	int close_code;		/* the peer's close code (1005: none given) */
	char close_reason[124];
};

struct ws_ctx;
struct ws;

/*
 * A context: ca_file is an extra CA bundle (NULL or "": the system's
 * only).  max_message caps a received message (bytes; 0: 4 MiB).
 */
int ws_ctx_new(struct ws_ctx **out, const char *ca_file, size_t max_message,
    struct err *e);
void ws_ctx_free(struct ws_ctx *c);

/*
 * While *stop is non-zero every blocking call returns -1 at once with
 * e->code EINTR (a signal handler sets it; the signal also wakes the
 * wait).  NULL: no flag.
 */
void ws_ctx_stop_flag(struct ws_ctx *c, volatile sig_atomic_t *stop);

/*
 * Open url (wss://host[:port]/path?query) and wait for the 101, at most
 * timeout_ms.  header_name/header_value (both NULL: none) add one request
 * header, e.g. "ServiceBusAuthorization".  On failure returns -1 with *st
 * (when not NULL) saying the phase and the HTTP status.
 */
int ws_open(struct ws_ctx *c, struct ws **out, const char *url,
    const char *header_name, const char *header_value, int timeout_ms,
    struct ws_status *st, struct err *e);

/* Send one whole text message. */
int ws_send_text(struct ws *w, const char *msg, size_t len, int timeout_ms,
    struct ws_status *st, struct err *e);

/*
 * Send a PING (empty payload): the keep-alive production uses
 * (PRODUCTION.md §6).  PONGs are seen while the context is served (any
 * blocking call on it).
 */
int ws_ping(struct ws *w, int timeout_ms, struct ws_status *st,
    struct err *e);

/* Has a PING gone timeout_ms without any PONG since it was sent? */
int ws_ping_overdue(const struct ws *w, int timeout_ms);

/* When the last PONG came (wall clock), 0 when none has. */
time_t ws_last_pong(const struct ws *w);

/*
 * Wait up to timeout_ms for one whole message.  Returns 1 with *msg
 * (malloc'd, NUL-terminated; *len without the NUL, *binary set for a
 * binary message); 0 when nothing came in time (the connection is still
 * good); -1 when the connection ended or failed: st->phase is WS_CLOSED
 * with the peer's close code, or the phase that failed.
 */
int ws_recv(struct ws *w, char **msg, size_t *len, int *binary,
    int timeout_ms, struct ws_status *st, struct err *e);

/* Is the connection still open (no close seen, no error)? */
int ws_is_open(const struct ws *w);

/*
 * Close: send a close frame with code and reason when still open, wait up
 * to timeout_ms for the peer's, and free w.  Always frees; NULL is fine.
 */
void ws_close(struct ws *w, int code, const char *reason, int timeout_ms);

/*
 * A sender's round trip (the relay's connect, PROTOCOL.md §3): open url,
 * send msg, wait up to reply_ms for one message, close.  Returns 1 with
 * *reply (malloc'd, NUL-terminated), 0 when no reply came in time, -1 on
 * failure with st saying the phase.
 */
int ws_request(struct ws_ctx *c, const char *url, const char *header_name,
    const char *header_value, const char *msg, size_t len, int open_ms,
    int reply_ms, char **reply, struct ws_status *st, struct err *e);

/* "dns", "tcp", … for a phase. */
const char *ws_phase_name(enum ws_phase p);

/*
 * Split wss://host[:port]/path (the relay's accept address, outside
 * input) into host (hostsz), port (443 when absent) and *path (pointing
 * into url; "/" when absent).  -1 with e set for anything else.
 */
int ws_parse_url(const char *url, char *host, size_t hostsz, int *port,
    const char **path, struct err *e);

/*
 * api: the Manage API's HTTPS requests (../shared/relay/PROTOCOL.md §5)
 * through libcurl: a multipart PUT of one file and a JSON PATCH, each with
 * a bearer token.
 *
 * Guarantees: TLS is always verified (peer and host name); an extra CA
 * bundle (GATEWAY_CA_FILE) is added to the system's, never replaces it.
 * Every request has a connect timeout, a low-speed limit (a stalled
 * transfer is abandoned) and a total timeout; the send rate can be capped.
 * A request that reached the server returns 0 with the HTTP status, even
 * 4xx and 5xx: the caller decides.  -1 means no answer (DNS, TCP, TLS,
 * timeout, stopped by the caller's flag); e says which phase failed, and
 * a certificate problem says "certificate verification failed".
 *
 * Never: prints, exits, logs, or puts the token in an error message.
 * The caller calls curl_global_init() once before api_open().
 *
 * Memory: struct api is opaque and owned by the caller (api_close).
 */

#define API_BODY_MAX	512	/* response body kept for error messages */

struct api_opts {
	const char *ca_file;		/* extra CA bundle, NULL or "": none */
	long connect_timeout_seconds;	/* TCP + TLS handshake */
	long low_speed_seconds;		/* abandon below low_speed_bytes/s */
	long low_speed_bytes;		/*   for this long */
	long total_timeout_seconds;	/* whole request, 0: none */
	long long max_send_bytes_per_second;	/* 0: no cap */
	volatile sig_atomic_t *stop;	/* non-zero aborts a transfer */
};

struct api_result {
	long status;			/* HTTP status, 0 when none */
	long retry_after_seconds;	/* Retry-After, -1 when absent */
	double seconds;			/* duration of the request */
	long long bytes_sent;
	char body[API_BODY_MAX];	/* start of the response body */
};

struct api;

int api_open(struct api **out, const struct api_opts *o,
    struct err *e);
void api_close(struct api *u);

/*
 * PUT url, multipart/form-data with the file at path in field "file"
 * named filename; "Authorization: <authorization>" (e.g. "Bearer …").
 */
int api_put_file(struct api *u, const char *url,
    const char *authorization, const char *path, const char *filename,
    struct api_result *r, struct err *e);

/* PATCH url with a JSON body. */
int api_patch_json(struct api *u, const char *url,
    const char *authorization, const char *json, struct api_result *r,
    struct err *e);

/*
 * What an answer of the Manage API means, as production answers
 * (../shared/relay/PRODUCTION.md §4, §7.9):
 *   API_DONE          2xx (201; a repeat PUT gets 201 too)
 *   API_TOKEN         401: the token is missing or bad: make a new one
 *                     and try again
 *   API_REFUSED       403: the action is not today's, not SENT or
 *                     CONFIRMED, or not this gateway's (or a failure was
 *                     reported for it): no more PUTs for it
 *   API_REJECTED      400, 422 and any other 4xx but 408 and 429: this
 *                     request will never succeed
 *   API_SERVER_ERROR  500: what production answers for permanent errors
 *                     (appointment not in progress, a view that differs
 *                     from the series' first image) and for its own
 *                     faults: tried a few times, then given up
 *   API_TRANSIENT     408, 429, any other 5xx (502, 503, 504), or no
 *                     status: tried again, with back-off, for ever
 */
enum api_outcome { API_DONE, API_TOKEN, API_REFUSED, API_REJECTED,
    API_SERVER_ERROR, API_TRANSIENT };

enum api_outcome api_outcome(long status);

/*
 * Make the libcurl handle curl trust ca_file's certificates too, beside
 * the system's (a private PKI, the tests: GATEWAY_CA_FILE); ca_file must
 * outlive the handle's transfers.  CURLE_OK (0) or libcurl's error.
 * identity uses it for its token requests as api does for the Manage API.
 */
int api_trust_ca(void *curl, const char *ca_file);

/* Retry-After: delta-seconds or an HTTP-date, as seconds from now
 * (0 for a date in the past); -1 when value is not either. */
long api_parse_retry_after(const char *value, long long now);

/*
 * Milliseconds to wait before attempt number attempts + 1: exponential
 * from one second, capped at cap_seconds, with "equal jitter" (half the
 * delay fixed, half random from random_bits), never less than
 * retry_after_seconds (when >= 0; a Retry-After beyond
 * API_RETRY_AFTER_MAX_SECONDS counts as that).
 */
#define API_RETRY_AFTER_MAX_SECONDS	(7L * 86400)
long long api_backoff_ms(int attempts, long cap_seconds,
    long retry_after_seconds, unsigned random_bits);

/*
 * event: the cloud's study.image_received message (PROTOCOL.md §4), one
 * per instance, built from pacs.db and the preview dcmthumb made; its job
 * (who gets one, and the events held back while events were off); and
 * the gateway.alert event.
 *
 * Guarantees: fields come from pacs.db as stored (numbers stay numbers,
 * what is not stored is null); the message is at most EVENT_MAX bytes,
 * the cloud's events listener's limit: a message too big with its
 * preview goes without it (thumbnail null), one still too big is not
 * built at all.
 *
 * Never: logs (the message holds the patient's name and NHS number; the
 * caller logs what *thumb says), prints, exits.
 */

#define EVENT_MAX	1048576		/* 1 MiB */

/* The preview: path NULL when there is none. */
struct event_preview {
	const char *path, *format;	/* format: "png" or "jpeg" */
	int width, height;
};

/* What became of the preview. */
enum { EVENT_THUMB_SENT, EVENT_THUMB_NONE, EVENT_THUMB_UNREADABLE,
    EVENT_THUMB_DROPPED };

/* Results besides 0 and -1. */
enum { EVENT_NO_INSTANCE = 1, EVENT_TOO_BIG = 2 };

/* The message built. */
struct event_message {
	char *text;		/* malloc'd JSON, NUL-terminated */
	size_t len;
	int thumb;		/* EVENT_THUMB_…: what became of the preview */
	size_t full_len;	/* with the preview, when it was dropped */
};

/*
 * The message for the instance sop into *m, with message_id and the
 * worklist item's action_id.  Returns 0; EVENT_NO_INSTANCE when pacs.db
 * has no such instance (yet); EVENT_TOO_BIG (e says the size) when it is
 * over EVENT_MAX even without its preview; -1 on error (e).
 */
int event_image_received(sqlite3 *db, const char *sop,
    const char *message_id, const char *action_id,
    const struct event_preview *p, struct event_message *m, struct err *e);

/*
 * The study.image_received job of an instance, written in one place: by
 * dcmthumb once its preview is made, by gatewayctl resend --held for one
 * held back.  Named image-<object>, so a repeat replaces a waiting one;
 * relaysend builds the message from pacs.db when it sends it.
 */
struct event_job {
	const char *object, *sop_instance_uid, *study_instance_uid;
	const char *accession_number;
	const char *thumbnail_status;	/* GENERATED or FAILED */
	const char *thumbnail;		/* the preview's path; NULL: none */
	const char *format;		/* png, jpeg, pnm */
	unsigned width, height;
};

/*
 * Who gets an event job: not an image that is not for the cloud (LOCAL);
 * none either while the relay's events are off (config_cloud_events),
 * but pacs.db marks it held back (upload_state_event_held) for resend
 * --held; else the job is queued in relay (flags: spool_enqueue's).
 * 1 queued, 0 not, -1 with e set.
 */
int event_job_queue(sqlite3 *db, struct spool *relay, const struct event_job *j,
    unsigned flags, struct err *e);

/*
 * gatewayctl resend --held, the relay's events on: the job of every
 * event held back (previews under thumbs_dir), made durable and visible
 * (spool_flush), then their marks cleared.  The count, or -1.
 */
int event_queue_held(sqlite3 *db, struct spool *relay,
    const char *thumbs_dir, struct err *e);

/*
 * The gateway.alert event (our extension, in the style of PROTOCOL.md's
 * mpps.status_update): {"schema_version":1, "message_id", "event_type":
 * "gateway.alert", "timestamp", "source_system":"gateway", "data":{
 * "alert", "state":"raised"|"cleared", "severity" ("ok" when cleared),
 * "summary", "value", "pacs_aet", "pacs_port"[, "accession_number",
 * "study_instance_uid" for an alert about one study]}}.  gatewayctl
 * alerts raises and clears the gateway's conditions; relaysend raises one
 * per study whose uploads are refused or fail for good.
 */
struct event_alert {
	const char *alert;		/* e.g. "failed_jobs", "upload_refused" */
	int raised;			/* 0: cleared */
	const char *severity;		/* "warning", "critical" */
	const char *summary;
	long long value;
	const char *pacs_aet;
	int pacs_port;
	const char *accession_number;	/* with study_instance_uid: */
	const char *study_instance_uid;	/*   about one study; NULL: none */
};

/* The event's JSON (malloc'd), or NULL with e set. */
char *event_alert(const struct event_alert *a, struct err *e);

/* Queue it in the relay spool as job name (kind=gateway.alert, alert=,
 * event=): a waiting job of that name is replaced. */
int event_alert_queue(struct spool *relay, const char *name,
    const struct event_alert *a, struct err *e);

/*
 * job: one job of the relay spool as relaysend handles it: read,
 * rewritten, and settled (done, tried again later, parked for good, or
 * refused), with pacs.db mirroring the state of image uploads through
 * lib/archive/upload_state.
 *
 * A job body is the spool's key=value text.  The keys below are parsed
 * into struct job; any other line (a thumbnail, an event, the
 * priority= and requested= of an images.request) is kept as it was
 * whenever the job is written again.  priority=high makes a job go
 * before the others (lib/cloud/sendqueue); requested=1 marks an upload the
 * cloud asked for (images.request, lib/cloud/request).
 *
 * Settling: job_defer() re-enqueues the job under its own name with
 * attempts= and next_attempt_ms= (exponential back-off with jitter,
 * capped at retry_max_seconds, never sooner than Retry-After), so the
 * schedule survives a restart (unless a producer queued a newer job of
 * the same name meanwhile: that one stands); job_later() does the same
 * for a wait that is no attempt (looked at again in about a minute);
 * job_park() moves it to failed/ with the reason (an image FAILED);
 * job_refuse() drops an image the Manage API refused (REFUSED);
 * job_done() removes the claim; job_unclaim() puts it back unchanged.
 * Each logs what it did (UIDs and accession numbers only).  A job put off
 * also records deferred_at_ms= (when) and, from its first failed
 * attempt on, failing_since_ms=.
 *
 * Outages, quietly: a job goes to the Manage API (image, image_failure)
 * or over the relay (the events), each a channel.  A failed attempt
 * (job_defer) of a channel that was delivering is said once, at warn,
 * with the job kind, the error and the jobs queued for it; so is the
 * first error of each other kind (job_error_kind) while the outage
 * lasts; every job's own retry is a debug line.  The channel's next
 * delivery (job_reached) ends the outage with one info line: how long,
 * how many attempts failed; so does a pass after which none of its jobs
 * is retrying any more (job_summary).  While it lasts, job_summary() says
 * every summary_seconds how many jobs wait per kind, the oldest and the
 * last error.  With relaysend --jobs N, each worker speaks for its own
 * jobs.
 *
 * Retry now (gatewayctl retry): job_retry_now() writes the relay spool's
 * "retry" file (the time it was asked, in ms) and wakes relaysend; a job
 * put off before that time is due at once (lib/cloud/sendqueue reads it,
 * job_retry_asked()).  Failed jobs (failed/) are not touched: that is
 * relaysend --retry-failed.
 *
 * One alert per study: the first image of a study to become FAILED or
 * REFUSED (no other image of it was so before) logs an error naming the
 * study and, when the cloud's events are configured, queues a
 * gateway.alert event (upload_failed, upload_refused) about it, named
 * alert-<alert>-<hash of the study>; later ones log their own line only.
 *
 * Memory: struct job_ctx is the caller's and points at the caller's spool,
 * database and worklist; a job's body is malloc'd and freed by the caller.
 */

#define JOB_IMAGE		"image"
#define JOB_FAILURE		"image_failure"
#define JOB_IMAGE_EVENT	"study.image_received"
#define JOB_MPPS_EVENT	"mpps.status_update"
#define JOB_ALERT_EVENT	"gateway.alert"	/* gatewayctl alerts */
#define JOB_NKINDS		6	/* the five above, then any other */

/* Where a job goes. */
enum job_channel { JOB_TO_API, JOB_TO_RELAY, JOB_CHANNELS };

#define JOB_ERROR_KIND		48	/* "HTTP 503", "TCP connect", … */
#define JOB_OUTAGE_KINDS	8	/* kinds of error said per outage */

/* A channel's outage, as job_defer() and job_reached() see it. */
struct job_outage {
	long long since_ms;		/* its first failed attempt; 0: none */
	long long summary_ms;		/* the last summary (or since_ms) */
	long failures;			/* attempts failed since */
	long long last_ms;		/* the last of them */
	char last_error[200];
	char said[JOB_OUTAGE_KINDS][JOB_ERROR_KIND];	/* kinds of error */
	int nsaid;
};

/* What the relay spool holds of ours (lib/cloud/sendqueue fills it). */
struct job_census {
	int queued[JOB_CHANNELS];	/* when the last pass began */
	int retrying[JOB_NKINDS];	/* after it: put off after a failure */
	long long oldest_ms[JOB_CHANNELS];	/* their earliest
					 * failing_since_ms; 0: none */
};

struct job_ctx {
	struct spool *spool;		/* the relay spool */
	sqlite3 *db;			/* pacs.db */
	struct worklist *worklist;
	const struct config *cfg;	/* PACS_AET and PACS_PORT, for alerts */
	long retry_max_seconds;
	int no_match_report;		/* RELAY_NO_MATCH=report */
	int pending_queued;		/* RELAY_UPLOAD_POLICY=all: every
					 * PENDING image has a job */
	volatile sig_atomic_t *stop;	/* non-zero: we are stopping */
	long uploaded, rejected, deferred, events;
	int remaining;			/* jobs still queued (--once) */
	long summary_seconds;		/* RELAY_SUMMARY_SECONDS; 0: none */
	long long reached_ms[JOB_CHANNELS];	/* the last delivery */
	struct job_outage outage[JOB_CHANNELS];
	struct job_census census;
};

struct job {
	char name[SPOOL_NAME_MAX];
	char kind[32];
	char object[STORE_HASH_LEN + 1];
	char sop_instance_uid[PACS_UI], study_instance_uid[PACS_UI];
	char accession_number[PACS_LO];
	char source_message_id[WL_FIELD];	/* image_failure */
	char message_id[RELAY_UUID_LEN + 1];	/* study.image_received */
	char error[512];		/* last error, or the reported one */
	int attempts;
	int server_errors;		/* answers 500 so far (server_errors=) */
	long long next_attempt_ms;
	int high;			/* priority=high */
	int requested;			/* requested=1 */
	long long deferred_at_ms;	/* when it was last put off */
	long long failing_since_ms;	/* its first failed attempt, 0: none */
	char *body;			/* as read: other keys are kept */
};

/* Milliseconds since the epoch. */
long long job_now_ms(void);

/* Copy src into dst, cut to fit, on one line without control bytes. */
void job_line(char *dst, size_t dstsz, const char *src);

int job_is(const struct job *j, const char *kind);

/* The kind's index (0..JOB_NKINDS-1, the last for any other), its name
 * ("other" for that one) and its channel. */
int job_kind(const char *kind);
const char *job_kind_name(int kind);
enum job_channel job_channel(int kind);

/*
 * The kind of an error, to tell a new one from a repeat: its text before
 * the first ':' or '{' ("HTTP 503"), after the "METHOD URL: " libcurl's
 * errors begin with ("TCP connect"); a part under 6 characters
 * ("relay") keeps the next one.
 */
void job_error_kind(const char *why, char *out, size_t outsz);

/* Fill j from body (j->body is not set). */
void job_parse(const char *body, struct job *j);

/* The job's body as it is now, in *out (malloc'd): its length or -1. */
int job_format(const struct job *j, char **out);

/* Mirror an image job's state in pacs.db (upload_state_set, with the
 * job's attempts): -1 when pacs.db failed (logged), else 1 when it is
 * the first image of its study in state s, 0 when not. */
int job_set_upload(struct job_ctx *o, const struct job *j,
    enum upload_state s, const char *error, long long next_ms);

void job_defer(struct job_ctx *o, struct job *j, const char *msg,
    const char *why, long retry_after);
void job_later(struct job_ctx *o, struct job *j, const char *why);
int job_park(struct job_ctx *o, struct job *j, const char *reason);
void job_refuse(struct job_ctx *o, struct job *j, const char *reason);
void job_done(struct job_ctx *o, const struct job *j);
void job_unclaim(struct job_ctx *o, const struct job *j);

/* One more job of kind retrying in c, failing since failing_ms (0: not
 * known). */
void job_census_retrying(struct job_census *c, int kind,
    long long failing_ms);

/* The cloud took the job (a delivery of its channel): an outage of that
 * channel is over, said once. */
void job_reached(struct job_ctx *o, const struct job *j);

/* After each pass: while a channel's outage lasts, every
 * summary_seconds one warn line with the jobs retrying per kind
 * (o->census), the oldest, the last error; an outage with no job of its
 * channel retrying any more (refused, parked) ends, said at info. */
void job_summary(struct job_ctx *o);

/*
 * gatewayctl retry: every job of the relay spool put off before now is
 * due now: the spool's retry file, then a wake-up.  *waiting (may be
 * NULL): the jobs in new/ that were waiting for a later time.
 */
int job_retry_now(struct spool *relay, int *waiting, struct err *e);

/* The time (ms) of the last retry asked for, 0 for none. */
long long job_retry_asked(const struct spool *relay);

/* Rewrite a claimed job in place (what was decided before a send). */
int job_save_claimed(struct job_ctx *o, const struct job *j,
    struct err *e);

/* How often a job without a worklist item looks again (capped by
 * retry_max_seconds), and how its error begins. */
#define JOB_WORKLIST_POLL_SECONDS	60
#define JOB_NO_ITEM			"no worklist item"

/*
 * The worklist item's action_id into j->source_message_id: the item of
 * the accession number an operator assigned to the study (gatewayctl
 * assign), else of the job's own.  0, or 1 when the job was settled
 * here: none yet (it waits, UNMATCHED, looking again every minute; or
 * parked with RELAY_NO_MATCH=report), the study was released by hand
 * (dropped, RELEASED), or worklist.db or pacs.db failed (deferred).
 */
int job_find_action(struct job_ctx *o, struct job *j);

/*
 * jobqueue: what waits in the relay spool, per job kind, for those who
 * show it (gatewayctl report and metrics): the jobs pending (new/ and
 * cur/) and failed (failed/), and of the oldest pending one when it was
 * first queued (the earliest of spool_queued_at(), its stored object's
 * arrival and its failing_since_ms=: a retry rewrites the file), its
 * attempts and last error.  Kinds as job_kind() counts them (the last:
 * any other).  A missing spool directory holds no job.
 * Never: writes, logs, or reads more of a job than its first 4 KiB
 * (kind=, object=, attempts=, error=, failing_since_ms=; no patient data).
 */
struct job_queue_kind {
	long pending, failed;
	time_t oldest;			/* 0: none pending */
	int oldest_attempts;
	char oldest_error[512];
};

int job_queue_scan(const struct config *c,
    struct job_queue_kind k[JOB_NKINDS], struct err *e);

/*
 * sendqueue: which relay job relaysend sends next.
 *
 * A pass lists new/, reads the jobs it has not seen (and those whose
 * time has come), and sends every job that is this worker's (with
 * --jobs N a hash of the name picks one worker), of a kind it sends, and
 * due, in this order:
 *
 *   1. priority=high jobs (images the cloud asked for first), then all
 *      others;
 *   2. within a priority, round robin over studies (study_instance_uid):
 *      the first job of every study, then the second of every study, and
 *      so on, so one 200-image study cannot starve a 4-image one; a job
 *      without a study is a round of its own;
 *   3. within a study, the spool's order of names.
 *
 * Jobs read and left (not due yet, or of a kind switched off) are
 * remembered by name with their due time, priority and study, so waiting
 * jobs cost no I/O while new ones arrive.  A job replaced under the same
 * name meanwhile is read again when the old one would have been due (its
 * body is always read again just before it is claimed).
 *
 * When ops->woken says a producer wrote meanwhile, a pass ends after the
 * job in hand and returns 1: the next pass sees the new jobs (a request
 * for high-priority images does not wait behind a long pass).
 *
 * A retry asked for (gatewayctl retry, job_retry_asked) since the last
 * pass makes it forget what it remembers and read every job again: one
 * put off (deferred_at_ms) before the retry was asked is due now.
 * Each pass fills ob->census (what is queued and retrying, per kind), and
 * a job the cloud took (ob->uploaded or ob->events grew) ends its
 * channel's outage (job_reached).
 *
 * Memory: struct sendqueue is the caller's; sendqueue_free() releases
 * what it remembers.
 */

struct sendqueue_ops {
	/* Is this a kind the caller sends? */
	int (*ours)(void *arg, const struct job *j);
	/* Send a claimed job and settle it (lib/cloud/job). */
	void (*deliver)(void *arg, struct job *j);
	/* Did a producer write since the pass began?  NULL: never asked. */
	int (*woken)(void *arg);
	void *arg;
};

struct sendqueue_entry;

struct sendqueue {
	int worker, workers;		/* --jobs: this worker's share */
	long long next_due_ms;		/* earliest job not yet due, 0: none */
	struct sendqueue_entry *known;	/* by name */
	size_t nknown;
	long long retry_ms;		/* the last retry asked for, seen */
};

/* With --jobs N, is this job name this worker's? */
int sendqueue_mine(const struct sendqueue *q, const char *name);

/*
 * One pass: -1 when new/ cannot be read (logged), 0 when every due job
 * was sent, 1 when the pass ended early (ops->woken) with jobs due now.
 * ob->remaining counts what is still queued of ours afterwards.
 */
int sendqueue_pass(struct sendqueue *q, struct job_ctx *ob,
    const struct sendqueue_ops *ops);

void sendqueue_free(struct sendqueue *q);

/*
 * imagesend: relaysend's upload worker: an image job becomes the Manage
 * API's PUT {CLOUD_API_ENDPOINT}/{source_message_id} (PROTOCOL.md §5) of
 * the stored object, in the configured upload mode (lib/image/transcode:
 * by default "reduced", as production sends); an image_failure job
 * becomes the PATCH …/failure that reports an image given up for good.
 *
 * Before the PUT (no attempt counted; see lib/archive/upload_state):
 * a routine job for an image not for the cloud (RELAY_UPLOAD_CLASSES)
 * is dropped, the image LOCAL; an image of a study the API refused is
 * REFUSED without a PUT; one missing ImageLaterality or ViewPosition, or
 * whose laterality and view differ from its series' first image, or
 * whose file to send is over the API's limit (CLOUD_API_MAX_MB, 100 MiB),
 * is given up (FAILED).
 * An upload asked for by images.request (requested=1) skips the first
 * two and is sent even when the instance was uploaded before.
 *
 * The answer settles the job through lib/cloud/job, by api_outcome():
 *   2xx           COMPLETE, done;
 *   401           the token is forgotten (lib/cloud/identity), a new one
 *                 made and the PUT tried once more at once; still 401:
 *                 logged as a refused token, tried again later with
 *                 back-off (WAITING); no token at all (the credential
 *                 failed): tried again later, the credential's error
 *                 logged;
 *   403           REFUSED: the job dropped, no more PUTs for the study,
 *                 one alert per study (lib/cloud/job);
 *   400, 422, …   given up: FAILED, parked in failed/, reported;
 *   500           tried again (WAITING) at least spread_seconds /
 *                 (max_retries - 1) apart; the max_retries-th 500 gives
 *                 it up (MAX_UPLOAD_RETRIES, RELAY_500_SPREAD_SECONDS);
 *   no answer, 408, 429, 502, 503, 504 …: tried again with back-off,
 *                 for ever (WAITING).
 * A request cut short by the stop flag puts the job back unchanged.
 *
 * A failure report blocks every later upload of that action in the
 * cloud (it answers them 403), so it waits, looking again every minute
 * (no attempt), while another image of the study is UPLOADING, WAITING
 * or (pending_queued) PENDING; then it is sent with the same token as
 * the uploads, retried on no answer, 401 and 5xx, parked on any other
 * 4xx.
 *
 * Memory: struct imagesend is the caller's; it points at the caller's
 * job context, store, api handle and identity.
 */

struct imagesend {
	struct job_ctx *ob;
	struct store *store;
	struct api *up;
	const char *endpoint;		/* CLOUD_API_ENDPOINT */
	struct identity *identity;	/* the process's tokens */
	struct identity_source src;	/* the Manage API's credential */
	const char *auth;		/* the Authorization of this request */
	enum transcode_mode mode;	/* RELAY_UPLOAD_MODE */
	struct transcode_opts topts;	/* DICOM_THUMBNAIL_SIZE, _RATIO */
	enum upload_classes classes;	/* RELAY_UPLOAD_CLASSES */
	int max_retries;		/* MAX_UPLOAD_RETRIES: 500s, then FAILED */
	long long max_bytes;		/* CLOUD_API_MAX_MB: larger is not sent */
	long spread_seconds;		/* RELAY_500_SPREAD_SECONDS */
	char scratch[PATH_MAX];		/* where transcoded copies are made */
	char renew_said[256];		/* the renewal failure last logged */
};

void imagesend_image(struct imagesend *s, struct job *j);
void imagesend_failure_report(struct imagesend *s, struct job *j);

/*
 * eventsend: relaysend's event sender: study.image_received (built from
 * pacs.db, the worklist and the preview, lib/cloud/event) and
 * mpps.status_update (mwlscp's outbox event, sent as it is) go to the
 * cloud over Azure Relay as a WebSocket sender on the events hybrid
 * connection (PROTOCOL.md §3-4): connect, one JSON message, one JSON
 * reply within 10 s, close.
 *
 * The reply settles the job through lib/cloud/job: created, already_exists,
 * updated or processed are done; action_not_found, appointment_not_found
 * and unknown_status park it (the cloud will never take it), as does a
 * close 1009 or an event over the cloud's 1 MiB; anything else (no
 * listener, a refused token (made again after a 401), no token, no
 * reply) tries again later.  A
 * study.image_received keeps the message_id of its first attempt in the
 * job, so the cloud can tell a repeat.
 *
 * Memory: struct eventsend is the caller's; ws and identity are the
 * caller's.
 */

struct eventsend {
	struct job_ctx *ob;
	struct identity *identity;	/* the process's tokens */
	struct identity_source src;	/* the relay's credential */
	const char *ns, *endpoint;	/* AZURE_RELAY_NAMESPACE, _ENDPOINT */
	const char *events_hc;		/* AZURE_RELAY_EVENTS_HYBRID_CONNECTION */
	long open_timeout_seconds;
	struct ws_ctx *ws;
	char url[RELAY_URL_MAX];
	char renew_said[256];		/* the renewal failure last logged */
};

#define EVENTSEND_REPLY_MAX	65536	/* largest reply read */

void eventsend_image_event(struct eventsend *s, struct job *j);
void eventsend_prepared_event(struct eventsend *s, struct job *j);

/*
 * request: the cloud's images.request action (relay/PROTOCOL.md §7) and
 * the upload policy that makes it matter (RELAY_UPLOAD_POLICY).
 *
 * request_images() answers one action: it checks the parameters (exactly
 * one of study_instance_uid, accession_number or sop_instance_uids[],
 * and priority "high" or "normal", default normal), finds the matching
 * instances in pacs.db (read only), and enqueues one kind=image job per
 * instance in the relay spool, with priority= and requested=1, named by
 * the instance's current object as dcmindex names its jobs (so a
 * routine job still waiting is replaced, not doubled).  The jobs are
 * durable (written, one syncfs, renamed, directory fsynced) before the
 * reply says "queued".  An instance uploaded before is queued again: the
 * cloud asked; so is one not for the cloud (LOCAL): relaysend sends a
 * requested job whatever its class (lib/cloud/imagesend).
 *
 * The reply (malloc'd JSON) is always one of, with the action's
 * action_id (null when it had none):
 *   {"status":"queued","action_id":…,"count":N}    N jobs now queued
 *   {"status":"not_found","action_id":…}           nothing held matches
 *   {"status":"purged","action_id":…,"count":N}    N matches, every one
 *       purged by retention (instances.purged_at set): only the rows are left
 *   {"status":"error","action_id":…,"message":…}   malformed, no Manage
 *       API configured (CLOUD_API_ENDPOINT: nothing would send the jobs),
 *       or pacs.db or the spool failed (nothing was said queued that is
 *       not)
 * When some matches are purged and some held, the held ones are queued
 * and count says how many.  A sop_instance_uids list queues the ones the
 * gateway holds; it is not_found only when it holds none of them.
 *
 * Never: logs, prints, exits, writes pacs.db (beyond bringing its schema
 * up to date).  Two requests at once are serialised on the spool's tmp/
 * (flock), so they never write the same job file together.
 */

#define REQUEST_UIDS_MAX	10000	/* sop_instance_uids[] per request */

enum request_policy {
	REQUEST_POLICY_ALL,		/* every image goes up at once */
	REQUEST_POLICY_ON_REQUEST	/* only when the cloud asks */
};

/* RELAY_UPLOAD_POLICY (all, on_request; unset or empty: all).  -1 with
 * e naming the variable on any other value. */
int request_upload_policy(enum request_policy *out, struct err *e);
const char *request_policy_name(enum request_policy p);

/* What was answered, for the caller's log. */
struct request_outcome {
	const char *status;		/* queued, not_found, purged, error */
	const char *by;			/* the key asked by, or NULL */
	int high;			/* priority high */
	long count;			/* queued or purged */
};

/*
 * The reply to an images.request action; NULL only when out of memory.
 * db is pacs.db; relay the relay spool.
 */
char *request_images(sqlite3 *db, struct spool *relay, const json_t *action,
    struct request_outcome *out);

/*
 * cloud_status: the cloud as gatewayctl status and the health report see
 * it, and the two run/ files that tell it, each written and read here
 * (lib/base runstate):
 *
 *   run/relay.state      relaylisten: its control channel (connection,
 *                        since, started, credential, token_expires,
 *                        last_pong, last_action, self_echo, last_proof,
 *                        last_error, last_error_at, hybrid_connection,
 *                        pid), never the token (relaylisten(8)).
 *   run/delivery.state  relaysend: last_upload and last_event (its last
 *                        delivery to the Manage API and over the relay)
 *                        and, for each of the two, the error its
 *                        deliveries fail with (api_error, api_error_at,
 *                        api_failing_since; relay_error, ...).  A later
 *                        delivery clears the error.  The workers of
 *                        relaysend --jobs merge what each saw under
 *                        run/delivery.lock: the newest of each wins.
 *
 * cloud_status_read() adds what is configured (lib/base config), the
 * relay spool per job kind (jobqueue's job_queue_scan: pending, failed,
 * and of the oldest pending its age from when it was first queued, its
 * attempts and last error),
 * and whether the Manage API's host takes a TCP connection
 * (CLOUD_STATUS_CONNECT_MS).  It reads job bodies only for kind=,
 * object=, attempts= and error=, and no token.  The relay.state of a
 * listener whose pid is gone is shown as it is, listener_running 0.
 */

#define CLOUD_STATUS_CONNECT_MS	1000	/* the Manage API's host */

struct relay_state {
	char connection[32];	/* connected, connecting, backoff, stopped */
	time_t since, started, token_expires, last_pong, last_action;
	time_t last_proof, last_error_at;
	char credential[48];
	char self_echo[8];	/* on, off */
	char last_error[1024];
	char hybrid_connection[256];
	long pid;
};

/* relaylisten: run/relay.state from s (its own pid added). */
int relay_state_write(const char *data_dir, const struct relay_state *s,
    struct err *e);
/* 0, 1 when there is none, -1 when it cannot be read. */
int relay_state_read(const char *data_dir, struct relay_state *s,
    struct err *e);

struct send_channel {
	char error[256];	/* "": delivering (or never failed) */
	time_t at, since;	/* the last failure, the first of this run */
};

struct send_state {
	time_t last_upload, last_event;
	struct send_channel api, relay;
};

/* relaysend, after each pass: what its job context saw (the last
 * deliveries, the failing outages) merged into run/delivery.state. */
void send_state_seen(const struct job_ctx *o, struct send_state *seen);
int send_state_update(const char *data_dir, const struct send_state *seen,
    struct err *e);
/* 0, 1 when there is none, -1 when it cannot be read. */
int send_state_read(const char *data_dir, struct send_state *s,
    struct err *e);

/* The Manage API refuses the gateway (its error is an HTTP 401 or 403,
 * or no token could be had): not a passing outage, a person must act. */
int send_channel_refused(const struct send_channel *c);

struct cloud_kind {
	char kind[64];
	long pending, failed;
	long long oldest_seconds;	/* -1: none pending */
	int oldest_attempts;
	char oldest_error[512];
	int configured;		/* its way out is (config_cloud_*) */
};

struct cloud_status {
	int images_on, events_on, actions_on;	/* config_cloud_* */
	int relay_present;	/* run/relay.state exists */
	int listener_running;	/* ... and its pid is alive */
	struct relay_state relay;
	int send_present;	/* run/delivery.state exists */
	struct send_state send;
	struct {
		int valid;	/* CLOUD_API_ENDPOINT is a URL */
		char host[256];
		int port;
		int reachable;
	} api;			/* when images_on */
	struct cloud_kind kinds[JOB_NKINDS];
	int nkinds;		/* JOB_NKINDS: job_kind()'s, "other" last */
	int oldest;		/* the kind with the oldest pending job;
				 * -1: none */
	int oldest_sent;	/* the same among the kinds whose way out is
				 * configured (those that should move) */
};

int cloud_status_read(const struct config *c, time_t now,
    struct cloud_status *st, struct err *e);

#endif
