# t/relay/lib.sh: start the local relay (t/relay-emulator) for a test.
# Source after t/lib.sh.
#
#   relay_start hc1 hc2 ...     emulator with these hybrid connections;
#                               sets RELAY_CPORT, RELAY_ADMIN, RELAY_CA and
#                               exports the AZURE_RELAY_* and
#                               GATEWAY_CA_FILE the gateway's programs read
#   relay_token HC              a SAS token for HC (cloudsim token)
#   relay_send HC MESSAGE       the cloud sends an action on HC; prints the reply
#   relay_live HC N             N listeners on HC are usable now
#   relay_admin PATH            POST to the emulator's admin interface
#   relay_counter NAME          a counter of the emulator's /status
PY=/usr/bin/python3
RELAY_NS=contoso.servicebus.windows.net
RELAY_KEY=dGVzdGtleXZhbHVlMTIzNDU2Nzg5MA==
RELAY_SIM=$GW_ROOT/t/relay/cloudsim

relay_start() {
	"$GW_ROOT/t/relay/mkcerts" "$T/pki" >/dev/null 2>&1 ||
		skip_all "cannot make test certificates"
	RELAY_CA=$T/pki/ca.pem
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
