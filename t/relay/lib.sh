# t/relay/lib.sh: the emulated cloud for a test: the local relay
# (t/relay-emulator) and the Manage API server (t/relay/manage-api), over
# TLS with a test CA.  Source after t/lib.sh.
#
#   cloud_off                   a data directory in $T/var with no part of
#                               the cloud configured (the test turns on
#                               what it needs): GATEWAY_DATA_DIR, PACS_DB,
#                               SPOOL (its relay spool), incoming/ made
#   api_start                   the Manage API (bearer token "sesame",
#                               what it gets in $API, files up to
#                               $API_MAX_MB, 100); sets APORT and
#                               exports CLOUD_API_ENDPOINT, GATEWAY_CA_FILE
#   api_fault QUERY             e.g. '?status=500&count=2', '/clear'
#   api_admin PATH              a switch of production's rules, e.g.
#                               '/_action?id=act-1&state=stale'
#   cloud_item ID ACCESSION     a worklist.create_item action (JSON) for
#                               patient TEST^ONE 9990001112, today
#   item ID ACCESSION           that item put into worklist.db (mwlsync)
#   ingest SEED COUNT [SIZE]    COUNT gen-mammo images of accession
#                               ACC0<SEED>000 received and indexed
#   relay_start hc1 hc2 ...     emulator with these hybrid connections;
#                               sets RELAY_CPORT, RELAY_ADMIN, RELAY_CA and
#                               exports the AZURE_RELAY_* and
#                               GATEWAY_CA_FILE the gateway's programs read
#   cloud_listen HC             the cloud's events listener on HC, each
#                               message in $EVENTS/*.json (cloudsim listen)
#   relay_token HC              a SAS token for HC (cloudsim token)
#   relay_send HC MESSAGE       the cloud sends an action on HC; prints the reply
#   relay_live HC N             N listeners on HC are usable now
#   relay_admin PATH            POST to the emulator's admin interface
#   relay_counter NAME          a counter of the emulator's /status
#
# Microsoft Entra ID (production's managed identity, PRODUCTION.md §1):
#   entra_start [OPTS]          t/relay/entra: HIMDS and IMDS over http, the
#                               token endpoint over https, issuing RS256
#                               JWTs for tenant $ENTRA_TENANT to the
#                               gateway's object id $ENTRA_OID; client
#                               $ENTRA_CLIENT with secret $ENTRA_SECRET and
#                               the certificate $ENTRA_CERT (certificate and
#                               key in one PEM); sets ENTRA_HTTP, ENTRA_HTTPS,
#                               ENTRA_DIR (its tokens dir: $ENTRA_DIR/tokens)
#   entra_restart               SIGKILL it and start it again on its ports
#   entra_admin PATH            POST to its admin interface
#   entra_counter NAME          one of its counters
#   use_arc | use_imds | use_client_secret | use_client_cert
#                               export the settings of that credential (and
#                               unset the others)
#   relay_start_entra hc...     as relay_start, but the relay takes only
#                               Entra ID tokens of $ENTRA_OID (Listen right)
#                               for the gateway, and the cloud has a SAS
#                               rule of its own (Cloud); no SAS key is
#                               exported for the gateway
#   api_start_entra             as api_start, but the Manage API takes only
#                               Entra ID tokens for $ENTRA_API_RESOURCE of
#                               $ENTRA_OID; exports CLOUD_API_RESOURCE
PY=/usr/bin/python3
RELAY_NS=contoso.servicebus.windows.net
RELAY_KEY=dGVzdGtleXZhbHVlMTIzNDU2Nzg5MA==
RELAY_SIM=$GW_ROOT/t/relay/cloudsim
RELAY_CLOUD_KEY_NAME=RootManageSharedAccessKey
ENTRA_TENANT=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
ENTRA_OID=99999999-8888-7777-6666-555555555555
ENTRA_CLIENT=12121212-3434-5656-7878-909090909090
ENTRA_SECRET=test-client-secret
ENTRA_API_RESOURCE=11111111-2222-3333-4444-555555555555

# relay_pki: the test CA and the servers' certificate, once per test.
relay_pki() {
	[ -f "$T/pki/ca.pem" ] || "$GW_ROOT/t/relay/mkcerts" "$T/pki" >/dev/null 2>&1 ||
		skip_all "cannot make test certificates"
	RELAY_CA=$T/pki/ca.pem
}


cloud_off() {
	export GATEWAY_DATA_DIR=$T/var GATEWAY_ENV_FILE=/dev/null
	PACS_DB=$GATEWAY_DATA_DIR/pacs.db
	SPOOL=$GATEWAY_DATA_DIR/spool/relay
	mkdir -p "$GATEWAY_DATA_DIR/incoming"
	unset CLOUD_API_ENDPOINT CLOUD_API_TOKEN CLOUD_API_TOKEN_COMMAND \
		RELAY_NO_MATCH AZURE_RELAY_NAMESPACE AZURE_RELAY_HYBRID_CONNECTION \
		AZURE_RELAY_EVENTS_HYBRID_CONNECTION
}
api_start() {
	relay_pki
	API=$T/api
	APORT=$(free_port)
	# shellcheck disable=SC2086
	bg api $PY "$GW_ROOT/t/relay/manage-api" --cert "$T/pki/server.pem" \
		--keyfile "$T/pki/server.key" --listen 127.0.0.1:$APORT \
		${API_AUTH:---token sesame} --dir "$API" --max-mb "${API_MAX_MB:-100}"
	wait_for 15 "the Manage API test server is up" grep -q '^ready' "$T/api.out"
	CLOUD_API_ENDPOINT=https://127.0.0.1:$APORT/api/v1/dicom
	GATEWAY_CA_FILE=$RELAY_CA
	export CLOUD_API_ENDPOINT GATEWAY_CA_FILE
}

api_fault() {
	curl -sf --cacert "$RELAY_CA" -X POST "https://127.0.0.1:$APORT/_fault$1" >/dev/null
}

api_admin() {
	curl -sf --cacert "$RELAY_CA" -X POST "https://127.0.0.1:$APORT$1" >/dev/null
}

relay_start() {
	_relay_start "$@" --key "*:RootManageSharedAccessKey:Listen,Send:$RELAY_KEY" \
		--key "*:ListenOnly:Listen:$RELAY_KEY" \
		--bearer "Listen,Send:static-test-bearer"
	AZURE_RELAY_KEY_NAME=RootManageSharedAccessKey
	AZURE_RELAY_SHARED_ACCESS_KEY=$RELAY_KEY
	export AZURE_RELAY_KEY_NAME AZURE_RELAY_SHARED_ACCESS_KEY
}

relay_start_entra() {
	RELAY_CLOUD_KEY_NAME=Cloud
	_relay_start "$@" --key "*:Cloud:Listen,Send:$RELAY_KEY" \
		--entra-jwks "$ENTRA_DIR/jwks.json" --entra-tenant $ENTRA_TENANT \
		--entra-oid "$ENTRA_OID:Listen"
	unset AZURE_RELAY_KEY_NAME AZURE_RELAY_SHARED_ACCESS_KEY
}

# _relay_start HC... -- OPTS: the emulator with hybrid connections HC and
# the authentication options after them.
_relay_start() {
	relay_pki
	RELAY_CPORT=$(free_port); _ap=$(free_port); _mp=$(free_port)
	RELAY_ADMIN=http://127.0.0.1:$_mp
	_hcs=''
	while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do _hcs="$_hcs --hc $1"; shift; done
	bg relay $PY "$GW_ROOT/t/relay-emulator" --cert "$T/pki/server.pem" \
		--keyfile "$T/pki/server.key" --namespace $RELAY_NS \
		--listen 127.0.0.1:$RELAY_CPORT --accept-listen 127.0.0.1:$_ap \
		--accept-host localhost --admin 127.0.0.1:$_mp $_hcs \
		"$@" ${RELAY_EMU_OPTS:-}
	wait_until 15 grep -q '^ready' "$T/relay.out" ||
		{ fail "relay emulator did not start"; cat "$T/relay.log" >&2; exit 1; }
	AZURE_RELAY_NAMESPACE=$RELAY_NS
	AZURE_RELAY_ENDPOINT=127.0.0.1:$RELAY_CPORT
	GATEWAY_CA_FILE=$RELAY_CA
	export AZURE_RELAY_NAMESPACE AZURE_RELAY_ENDPOINT GATEWAY_CA_FILE
	unset AZURE_RELAY_TOKEN_COMMAND
}

entra_start() {
	relay_pki
	[ -f "$T/pki/client.pem" ] || {
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
			-subj "/CN=gateway test client" -keyout "$T/pki/client.key" \
			-out "$T/pki/client.crt" 2>/dev/null &&
		cat "$T/pki/client.crt" "$T/pki/client.key" >"$T/pki/client.pem"
	} || skip_all "cannot make the client certificate"
	ENTRA_CERT=$T/pki/client.pem
	ENTRA_DIR=$T/entra
	ENTRA_HTTP=${ENTRA_HTTP:-$(free_port)}
	ENTRA_HTTPS=${ENTRA_HTTPS:-$(free_port)}
	ENTRA_OPTS="$*"
	_entra_bg
}

_entra_bg() {
	rm -f "$T/entra.out"
	# shellcheck disable=SC2086
	bg entra $PY "$GW_ROOT/t/relay/entra" serve --dir "$ENTRA_DIR" \
		--listen 127.0.0.1:$ENTRA_HTTP --tls-listen 127.0.0.1:$ENTRA_HTTPS \
		--cert "$T/pki/server.pem" --keyfile "$T/pki/server.key" \
		--tenant $ENTRA_TENANT --oid $ENTRA_OID --client-id $ENTRA_CLIENT \
		--client-secret $ENTRA_SECRET --client-cert "$T/pki/client.crt" \
		$ENTRA_OPTS
	ENTRA_PID=$BG_PID
	wait_until 15 grep -q '^ready' "$T/entra.out" ||
		{ fail "Entra ID emulator did not start"; cat "$T/entra.log" >&2; exit 1; }
}

entra_restart() {
	kill -KILL "$ENTRA_PID" 2>/dev/null
	wait_until 10 sh -c "! kill -0 $ENTRA_PID 2>/dev/null"
	_entra_bg
}

entra_admin() {
	curl -sf -X POST "http://127.0.0.1:$ENTRA_HTTP/_admin/$1" >/dev/null
}

entra_counter() {
	curl -sf "http://127.0.0.1:$ENTRA_HTTP/_admin/status" | $PY -c 'import json,sys; print(json.load(sys.stdin)["counters"].get(sys.argv[1],0))' "$1"
}

_entra_unset() {
	unset IDENTITY_ENDPOINT AZURE_ARC_TOKENS_DIR \
		AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET \
		AZURE_CLIENT_CERTIFICATE_PATH AZURE_AUTHORITY_HOST
	export AZURE_IMDS_ENDPOINT=http://127.0.0.1:1	# as t/lib.sh: closed
}

use_arc() {
	_entra_unset
	IDENTITY_ENDPOINT=http://127.0.0.1:$ENTRA_HTTP/arc/metadata/identity/oauth2/token
	AZURE_ARC_TOKENS_DIR=$ENTRA_DIR/tokens
	export IDENTITY_ENDPOINT AZURE_ARC_TOKENS_DIR
}

use_imds() {
	_entra_unset
	AZURE_IMDS_ENDPOINT=http://127.0.0.1:$ENTRA_HTTP
	export AZURE_IMDS_ENDPOINT
}

use_client_secret() {
	_entra_unset
	AZURE_TENANT_ID=$ENTRA_TENANT AZURE_CLIENT_ID=$ENTRA_CLIENT
	AZURE_CLIENT_SECRET=$ENTRA_SECRET
	AZURE_AUTHORITY_HOST=https://127.0.0.1:$ENTRA_HTTPS
	export AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_AUTHORITY_HOST
}

use_client_cert() {
	use_client_secret
	unset AZURE_CLIENT_SECRET
	AZURE_CLIENT_CERTIFICATE_PATH=$ENTRA_CERT
	export AZURE_CLIENT_CERTIFICATE_PATH
}

api_start_entra() {
	API_AUTH="--jwks $ENTRA_DIR/jwks.json --tenant $ENTRA_TENANT --audience $ENTRA_API_RESOURCE --gateway-oid $ENTRA_OID"
	api_start
	CLOUD_API_RESOURCE=$ENTRA_API_RESOURCE
	export CLOUD_API_RESOURCE
	unset CLOUD_API_TOKEN CLOUD_API_TOKEN_COMMAND
}

cloud_listen() {
	EVENTS=$T/events
	mkdir -p "$EVENTS"
	bg cloud $PY "$RELAY_SIM" listen \
		--url "wss://127.0.0.1:$RELAY_CPORT/\$hc/$1?sb-hc-action=listen&sb-hc-id=cloud" \
		--ca "$RELAY_CA" --token "$(relay_token "$1")" --log "$T/cloud.txt" \
		--mode events --dir "$EVENTS" --pong 30
	wait_for 15 "the cloud's events listener is up" relay_live "$1" 1
}

relay_token() {
	$PY "$RELAY_SIM" token --ns $RELAY_NS --hc "$1" \
		--key-name $RELAY_CLOUD_KEY_NAME --key $RELAY_KEY --ttl 3600
}

relay_send() {
	$PY "$RELAY_SIM" send --url "wss://127.0.0.1:$RELAY_CPORT/\$hc/$1?sb-hc-action=connect" \
		--ca "$RELAY_CA" --token "$(relay_token "$1")" --timeout 30 "$2"
}

relay_live() {
	curl -sf "$RELAY_ADMIN/status" | $PY -c 'import json,sys; sys.exit(json.load(sys.stdin)["live"].get(sys.argv[1],0)!=int(sys.argv[2]))' "$1" "$2"
}

relay_admin() {
	curl -sf -X POST "$RELAY_ADMIN$1" >/dev/null
}

relay_counter() {
	curl -sf "$RELAY_ADMIN/status" | $PY -c 'import json,sys; print(json.load(sys.stdin)["counters"].get(sys.argv[1],0))' "$1"
}

cloud_item() {
	printf '{"schema_version":1,"action_id":"%s","action_type":"worklist.create_item","timestamp":"2026-11-27T08:00:00Z","source_system":"manage-breast-screening","source_reference":{"appointment_id":"ap-%s","participant_id":"9990001112"},"parameters":{"worklist_item":{"accession_number":"%s","participant":{"nhs_number":"9990001112","name":"TEST^ONE","birth_date":"19700101","sex":"F"},"scheduled":{"date":"%s","time":"093000"},"procedure":{"modality":"MG","study_description":"Screening Mammography"}}}}\n' \
		"$1" "$1" "$2" "$(date -u +%Y%m%d)"
}

item() {
	cloud_item "$1" "$2" | mwlsync apply >/dev/null 2>&1
}

ingest() {
	"$GW_ROOT/t/tools/gen-mammo" "$T/mg$1" "$2" --size "${3:-64x48}" --studies 1 --seed "$1" >/dev/null &&
	cp "$T/mg$1"/*.dcm "$GATEWAY_DATA_DIR/incoming/" &&
	storescp-hook --sweep 2>/dev/null && dcmindex --once 2>>"$T/index.log"
}
