# t/relay/lib.sh: the emulated cloud for a test: the local relay
# (t/relay-emulator) and the Manage API server (t/relay/manage-api), over
# TLS with a test CA.  Source after t/lib.sh.
#
#   api_start                   the Manage API (bearer token "sesame",
#                               what it gets in $API, files up to
#                               $API_MAX_MB, 100); sets APORT and
#                               exports CLOUD_API_ENDPOINT, GATEWAY_CA_FILE
#   api_fault QUERY             e.g. '?status=500&count=2', '/clear'
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
PY=/usr/bin/python3
RELAY_NS=contoso.servicebus.windows.net
RELAY_KEY=dGVzdGtleXZhbHVlMTIzNDU2Nzg5MA==
RELAY_SIM=$GW_ROOT/t/relay/cloudsim

# relay_pki: the test CA and the servers' certificate, once per test.
relay_pki() {
	[ -f "$T/pki/ca.pem" ] || "$GW_ROOT/t/relay/mkcerts" "$T/pki" >/dev/null 2>&1 ||
		skip_all "cannot make test certificates"
	RELAY_CA=$T/pki/ca.pem
}

api_start() {
	relay_pki
	API=$T/api
	APORT=$(free_port)
	bg api $PY "$GW_ROOT/t/relay/manage-api" --cert "$T/pki/server.pem" \
		--keyfile "$T/pki/server.key" --listen 127.0.0.1:$APORT \
		--token sesame --dir "$API" --max-mb "${API_MAX_MB:-100}"
	wait_for 15 "the Manage API test server is up" grep -q '^ready' "$T/api.out"
	CLOUD_API_ENDPOINT=https://127.0.0.1:$APORT/api/v1/dicom
	GATEWAY_CA_FILE=$RELAY_CA
	export CLOUD_API_ENDPOINT GATEWAY_CA_FILE
}

api_fault() {
	curl -sf --cacert "$RELAY_CA" -X POST "https://127.0.0.1:$APORT/_fault$1" >/dev/null
}

relay_start() {
	relay_pki
	RELAY_CPORT=$(free_port); _ap=$(free_port); _mp=$(free_port)
	while [ "$_ap" = "$RELAY_CPORT" ]; do _ap=$(free_port); done
	while [ "$_mp" = "$RELAY_CPORT" ] || [ "$_mp" = "$_ap" ]; do _mp=$(free_port); done
	RELAY_ADMIN=http://127.0.0.1:$_mp
	_hcs=''
	for _h in "$@"; do _hcs="$_hcs --hc $_h"; done
	bg relay $PY "$GW_ROOT/t/relay-emulator" --cert "$T/pki/server.pem" \
		--keyfile "$T/pki/server.key" --namespace $RELAY_NS \
		--listen 127.0.0.1:$RELAY_CPORT --accept-listen 127.0.0.1:$_ap \
		--accept-host localhost --admin 127.0.0.1:$_mp $_hcs \
		--key "*:RootManageSharedAccessKey:Listen,Send:$RELAY_KEY" \
		--key "*:ListenOnly:Listen:$RELAY_KEY" \
		--bearer "Listen,Send:static-test-bearer" ${RELAY_EMU_OPTS:-}
	wait_until 15 grep -q '^ready' "$T/relay.out" ||
		{ fail "relay emulator did not start"; cat "$T/relay.log" >&2; exit 1; }
	AZURE_RELAY_NAMESPACE=$RELAY_NS
	AZURE_RELAY_KEY_NAME=RootManageSharedAccessKey
	AZURE_RELAY_SHARED_ACCESS_KEY=$RELAY_KEY
	AZURE_RELAY_ENDPOINT=127.0.0.1:$RELAY_CPORT
	GATEWAY_CA_FILE=$RELAY_CA
	export AZURE_RELAY_NAMESPACE AZURE_RELAY_KEY_NAME \
		AZURE_RELAY_SHARED_ACCESS_KEY AZURE_RELAY_ENDPOINT GATEWAY_CA_FILE
	unset AZURE_RELAY_TOKEN_COMMAND
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
		--key-name RootManageSharedAccessKey --key $RELAY_KEY --ttl 3600
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
