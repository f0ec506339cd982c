/*
 * relay: the pieces of the Azure Relay Hybrid Connections protocol that
 * need no network (../shared/relay/PROTOCOL.md §1-3): SAS tokens, the
 * listen and connect URLs, a bearer token from a command (managed
 * identity), sb-hc-id UUIDs and the listener's "accept" message.
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
#ifndef GW_RELAY_H
#define GW_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

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
 * (NULL: none, e.g. sent as a header instead) is percent-encoded once more.
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
 * The relay settings from the environment: AZURE_RELAY_NAMESPACE,
 * AZURE_RELAY_KEY_NAME + AZURE_RELAY_SHARED_ACCESS_KEY (SAS) or
 * AZURE_RELAY_TOKEN_COMMAND (a bearer token; used when set), and
 * AZURE_RELAY_ENDPOINT (host:port override).  Pointers into environ.
 * -1 when the namespace or both ways of making a token are missing.
 */
struct relay_auth {
	const char *ns, *key_name, *key, *token_command, *endpoint;
	long ttl_seconds;		/* SAS lifetime (RELAY_TOKEN_TTL_SECONDS) */
};

int relay_auth_load(struct relay_auth *a, struct err *e);

/*
 * A token for hybrid connection hc: SAS valid ttl_seconds from now, or
 * the command's output.  *expiry (Unix seconds) is when it stops being
 * valid, for the command's tokens ttl_seconds from now (run it again by
 * then).
 */
int relay_auth_token(const struct relay_auth *a, const char *hc, char *out,
    size_t outsz, int64_t *expiry, struct err *e);

#endif
