#!/bin/sh
# 4430-identity-imds-client: the other Entra ID flows and the verifiers.
# Outside prod with no SAS key and no token command the relay's token
# comes from Entra ID: the Azure VM's IMDS (retried on 5xx, a clear error
# when it keeps failing), or client credentials with a secret or a
# certificate's PS256 assertion (a wrong secret named in the log); the
# Manage API takes CLOUD_API_RESOURCE tokens and makes a new one at once
# after a 401; prod without CLOUD_API_RESOURCE is a configuration error.
# The relay emulator and the Manage API refuse every token production
# would refuse (HS256, v2 issuer, wrong aud, expired, no or another oid).
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
$PY -c 'import websockets, jwt, cryptography' 2>/dev/null ||
	skip_all "python3-websockets, python3-jwt or python3-cryptography not installed"
command -v curl >/dev/null || skip_all "curl not installed"

export GATEWAY_DATA_DIR=$T/var PACS_PORT=$(free_port) LOG_LEVEL=debug
mkdir -p "$GATEWAY_DATA_DIR/run" "$GATEWAY_DATA_DIR/incoming"
entra_start
relay_start_entra hc1 hc2 hc3
api_start_entra
unset ENVIRONMENT
export RELAY_PING_SECONDS=2
at_least() { _n=$1; shift; [ "$("$@")" -ge "$_n" ]; }	# at_least N CMD...

# 1. the verifiers, with tokens minted as the emulator issues them
mint() {	# mint AUD VARIANT
	$PY "$GW_ROOT/t/relay/entra" token --dir "$ENTRA_DIR" --tenant $ENTRA_TENANT \
		--oid $ENTRA_OID --aud "$1" --variant "$2"
}
put() {	# put TOKEN: the Manage API's status for a PUT with it
	curl -s -o /dev/null -w '%{http_code}' --cacert "$RELAY_CA" -X PUT \
		-H "Authorization: Bearer $1" -F "file=@$PYDICOM_FILES/CT_small.dcm;filename=x.dcm" \
		"$CLOUD_API_ENDPOINT/act-v"
}
listen_as() {	# listen_as TOKEN: the relay's answer to a listener with it
	$PY "$RELAY_SIM" send --url "wss://127.0.0.1:$RELAY_CPORT/\$hc/hc3?sb-hc-action=listen" \
		--ca "$RELAY_CA" --token "Bearer $1" --timeout 3 x 2>/dev/null | head -1
}
is "$(put "$(mint $ENTRA_API_RESOURCE none)")" 201 "Manage API: a good token (RS256, aud, v1 iss, oid): 201"
for v in hs256:401 foreign-key:401 v2-iss:401 wrong-aud:401 expired:401 no-oid:403 other-oid:403; do
	is "$(put "$(mint $ENTRA_API_RESOURCE ${v%:*})")" "${v#*:}" "Manage API: ${v%:*} token: ${v#*:}"
done
is "$(put sesame)" 401 "Manage API in Entra mode: a static token is refused"
for v in hs256:401 foreign-key:401 wrong-aud:401 expired:401 no-oid:403 other-oid:403; do
	is "$(listen_as "$(mint https://relay.azure.net ${v%:*})")" "status ${v#*:}" "relay: ${v%:*} token: ${v#*:}"
done
is "$(listen_as "$(mint $ENTRA_API_RESOURCE none)")" "status 401" "relay: a token for the Manage API: 401"

# 2. IMDS: retried on 5xx, a clear error when it keeps failing
use_imds
entra_admin "fault?status=500&count=2&flow=imds"
AZURE_RELAY_HYBRID_CONNECTION=hc1 bg imds relaylisten
wait_for 30 "outside prod, no SAS key or command: IMDS's token; two 500s retried" relay_live hc1 1
ok "... IMDS answered 500 twice" at_least 2 entra_counter faults
ok "... then issued the token" at_least 1 entra_counter issued_imds
ok "... and the log names the credential" grep -q 'credential=managed-identity-imds' "$T/imds.log"
kill -TERM $BG_PID
entra_admin "fault?status=503&count=-1&flow=imds"
AZURE_RELAY_HYBRID_CONNECTION=hc2 bg imdsdown relaylisten
wait_for 40 "IMDS keeps answering 503: 'no token' with the status, and no restart" \
	grep -q 'msg="no token for the relay".*IMDS.*HTTP 503' "$T/imdsdown.log"
ok "... the process still runs" kill -0 $BG_PID
kill -TERM $BG_PID
entra_admin clear

# 3. client credentials: a secret, a wrong secret, a certificate
use_client_secret
AZURE_RELAY_HYBRID_CONNECTION=hc1 bg secret relaylisten
wait_for 20 "client credentials with a secret: the listener registers" relay_live hc1 1
ok "... the token came from the token endpoint" at_least 1 entra_counter issued_cc
kill -TERM $BG_PID
AZURE_CLIENT_SECRET=wrong AZURE_RELAY_HYBRID_CONNECTION=hc2 bg badsecret relaylisten
wait_for 20 "a wrong secret: the log says invalid_client, with Entra's code" \
	grep -q 'no token for the relay.*HTTP 401 invalid_client: AADSTS7000215' "$T/badsecret.log"
ok "... and never the secret" sh -c "! grep -q 'wrong\\|$ENTRA_SECRET' '$T/badsecret.log'"
kill -TERM $BG_PID
use_client_cert
n=$(entra_counter issued_cc)
AZURE_RELAY_HYBRID_CONNECTION=hc1 bg cert relaylisten
wait_for 20 "client credentials with a certificate: the PS256 assertion is accepted" relay_live hc1 1
ok "... a token was issued for it" at_least $((n + 1)) entra_counter issued_cc
ok "... the log names the credential" grep -q 'credential=client-certificate' "$T/cert.log"
kill -TERM $BG_PID
AZURE_CLIENT_CERTIFICATE_PATH=$T/pki/server.pem AZURE_RELAY_HYBRID_CONNECTION=hc2 bg nokey relaylisten
wait_for 20 "a PEM without its private key: the log says so" \
	grep -q 'needs a certificate and its unencrypted private key' "$T/nokey.log"
kill -TERM $BG_PID

# 4. the Manage API: CLOUD_API_RESOURCE tokens, renewed at once after a 401
use_client_secret
item act-cc ACC093000
ingest 93 2
n=$(entra_counter issued_cc)
relaysend --once 2>"$T/send.log"
is "$(ls "$API/put" 2>/dev/null | grep -c -- '-act-cc\.dcm$')" 2 \
	"relaysend uploads with a client-credentials token for CLOUD_API_RESOURCE"
is "$(entra_counter issued_cc)" $((n + 1)) "... one token for both (cached)"
entra_admin "variant?name=foreign-key"
item act-cc2 ACC094000
ingest 94 1
n=$(entra_counter issued_cc)
RELAY_RETRY_MAX_SECONDS=1 bg sender relaysend
wait_for 20 "a token the API refuses (401) is logged" grep -q 'refuses the token.*status=401' "$T/sender.log"
entra_admin "variant?name=none"
uploaded() { ls "$API/put" | grep -q -- '-act-cc2\.dcm$'; }
wait_for 20 "... the same relaysend asks for a new token at once and uploads" uploaded
ok "... with a second token" at_least $((n + 2)) entra_counter issued_cc
kill -TERM $BG_PID

# 5. the rule's configuration errors
env -u CLOUD_API_RESOURCE ENVIRONMENT=prod relaysend --once 2>"$T/prod.log"
is "$?" 78 "prod without CLOUD_API_RESOURCE: relaysend stops with EX_CONFIG"
ok "... saying what to set" grep -q 'ENVIRONMENT=prod: set CLOUD_API_RESOURCE' "$T/prod.log"
done_testing
