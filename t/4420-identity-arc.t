#!/bin/sh
# 4420-identity-arc: a production site on an Azure Arc machine
# (ENVIRONMENT=prod, IDENTITY_ENDPOINT): relaylisten and relaysend get
# their tokens from HIMDS (t/relay/entra: the 401 challenge, the key file,
# RS256 JWTs), the relay emulator and the Manage API verify them, the SAS
# key is ignored, the listener renews its token before it expires, lives
# through HIMDS down and back (never exiting), and refuses a key file
# outside AZURE_ARC_TOKENS_DIR, not named *.key, or too big.
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
$PY -c 'import websockets, jwt, cryptography' 2>/dev/null ||
	skip_all "python3-websockets, python3-jwt or python3-cryptography not installed"
command -v curl >/dev/null || skip_all "curl not installed"

export GATEWAY_DATA_DIR=$T/var PACS_PORT=$(free_port) LOG_LEVEL=debug
mkdir -p "$GATEWAY_DATA_DIR/run"
STATE=$GATEWAY_DATA_DIR/run/relay.state
field() { sed -n "s/^$1=//p" "$STATE"; }
state_is() { [ "$(field "$1")" = "$2" ]; }		# state_is KEY VALUE
at_least() { _n=$1; shift; [ "$("$@")" -ge "$_n" ]; }	# at_least N CMD...
is_time() { field "$1" | grep -Eq '^[0-9T:-]+Z$'; }	# is_time KEY
entra_start --lifetime 3600
relay_start_entra hc1 hc2
api_start_entra
use_arc
export ENVIRONMENT=prod AZURE_RELAY_HYBRID_CONNECTION=hc1 RELAY_PING_SECONDS=2
# a SAS key left over from a test site: production ignores it
export AZURE_RELAY_KEY_NAME=RootManageSharedAccessKey AZURE_RELAY_SHARED_ACCESS_KEY=$RELAY_KEY

# 1. the listener, with the machine's managed identity
bg listen relaylisten
L=$BG_PID
wait_for 20 "prod on Arc: the listener registers with a HIMDS token" relay_live hc1 1
ok "HIMDS challenged (401, key file)" at_least 1 entra_counter challenges
ok "... and issued the token for the key" at_least 1 entra_counter issued_arc
ok "the relay verified it (RS256, aud, iss, oid, exp) for the Listen right" \
	at_least 1 relay_counter entra_listen
ok "... sent as production sends it: sb-hc-token=Bearer+<jwt>" \
	at_least 1 relay_counter token_bearer_plus
ok "the log names the credential and the SAS key it ignores" sh -c "
	grep -q 'msg=credential for=relay credential=managed-identity-arc resource=https://relay.azure.net' '$T/listen.log' &&
	grep -q 'ignored=\"AZURE_RELAY_SHARED_ACCESS_KEY\".*ENVIRONMENT=prod' '$T/listen.log'"
is "$(field credential) $(field self_echo)" "managed-identity-arc off" \
	"relay.state: the credential, and no self-echo (a Listener cannot send)"
is "$(relay_send hc1 '{"action_type":"echo"}' | cut -c1-17)" '{"status":"echo",' "the cloud's echo is answered"
ok "no token or key in the log" sh -c "! grep -Eq 'eyJ|Basic [A-Za-z0-9]|$RELAY_KEY' '$T/listen.log'"
ok "... nor in relay.state" sh -c "! grep -q 'eyJ' '$STATE'"
key_leaked() {	# a HIMDS key file's text in the log or the data directory
	for _k in "$ENTRA_DIR"/tokens/*.key; do
		grep -rqF "$(cat "$_k")" "$T/listen.log" "$GATEWAY_DATA_DIR" && return 0
	done
	return 1
}
not_ok "the HIMDS key file's text is never logged or stored" key_leaked

# 2. relaysend: images to the Manage API with a token for CLOUD_API_RESOURCE
mkdir -p "$GATEWAY_DATA_DIR/incoming"
item act-arc ACC091000
ingest 91 2
relaysend --once 2>"$T/send.log"
is "$(ls "$API/put" 2>/dev/null | wc -l)" 2 "relaysend uploads with a HIMDS token for CLOUD_API_RESOURCE"
ok "... logging its credential" grep -q 'for=api credential=managed-identity-arc resource=11111111-2222-3333-4444-555555555555' "$T/send.log"
entra_admin "variant?name=other-oid"
item act-arc2 ACC092000
ingest 92 1
relaysend --once 2>"$T/send403.log"
ok "a token of another object id: the Manage API says 403" grep -q 'HTTP 403' "$T/send403.log"
is "$(sql "$GATEWAY_DATA_DIR/pacs.db" "SELECT group_concat(DISTINCT upload_status) FROM stored_instances WHERE accession_number = 'ACC092000'")" \
	REFUSED "... so the image is REFUSED: not this gateway's action (issue 18), kept for resend"
entra_admin "variant?name=none"

# 3. the token expires mid-run: renewed before, never a 1008
kill -TERM $L
wait_for 10 "the first listener stops" sh -c "! kill -0 $L 2>/dev/null"
entra_admin "lifetime?seconds=16"
bg renew relaylisten
L=$BG_PID
wait_for 20 "short-lived tokens: the listener registers" relay_live hc1 1
wait_for 30 "the token is renewed before it expires (a new HIMDS challenge)" \
	sh -c "[ \$(grep -c 'msg=\"token renewed\"' '$T/renew.log') -ge 2 ]"
ok "no channel was closed for an expired token" sh -c "! grep -q 'code=1008' '$T/renew.log'"
ok "one listener stays live" relay_live hc1 1
ok "relay.state says when the token expires" is_time token_expires

# 4. HIMDS down, then back: no token is an error in the log, relay.state,
# the status and the health report, and never an exit
kill -KILL "$ENTRA_PID"
wait_for 45 "HIMDS down: 'no token for the relay' is logged, naming HIMDS" \
	grep -q 'msg="no token for the relay".*Azure Arc HIMDS' "$T/renew.log"
wait_for 10 "relay.state says no-token" state_is connection no-token
ok "... with the error" sh -c "grep -q '^last_error=no token for the relay: .*HIMDS' '$STATE'"
relaylisten --status >"$T/status.out" 2>&1
ok "gatewayd status shows it" sh -c "grep -q '^relay: no-token since' '$T/status.out' &&
	grep -q '^last error: no token for the relay: .*HIMDS' '$T/status.out'"
relaylisten --health >"$T/health.out" 2>/dev/null
ok "the health report shows it as a problem" $PY -c '
import json, sys
h = json.load(open(sys.argv[1]))
assert h["relay"]["connection"] == "no-token", h["relay"]
assert "relay not connected (no-token)" in h["problems"], h["problems"]
' "$T/health.out"
ok "the listener keeps running (no restart loop)" kill -0 $L
entra_restart
wait_for 60 "HIMDS back: the listener registers again" relay_live hc1 1
wait_for 10 "... and relay.state says connected" state_is connection connected
kill -TERM $L

# 5. key files HIMDS must not make us read
entra_admin "lifetime?seconds=3600"
for mode in outside notkey big; do
	entra_admin "realm?mode=$mode"
	before=$(entra_counter issued_arc)
	AZURE_RELAY_HYBRID_CONNECTION=hc2 bg "key-$mode" relaylisten
	case $mode in
	outside) why='not in .*(AZURE_ARC_TOKENS_DIR): refused' ;;
	notkey) why='not named \*.key: refused' ;;
	big) why='larger than 4096 bytes: refused' ;;
	esac
	wait_for 20 "a realm $mode: refused, and the log says why" \
		grep -q "no token for the relay.*$why" "$T/key-$mode.log"
	is "$(entra_counter issued_arc)" "$before" "... no token was issued"
	not_ok "... the listener is not registered" relay_live hc2 1
	kill -TERM $BG_PID
done
entra_admin "realm?mode=normal"
done_testing
