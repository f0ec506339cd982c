#!/bin/sh
# 4100-relay-emulator: t/relay-emulator (PROTOCOL.md §6) against t/relay/cloudsim:
# SAS checks and handshake statuses, listen/connect/accept with the accept
# address on another host:port, frames through unchanged, refusal, single-use
# addresses, 1008 on token expiry, idle drop, and injected faults.
. "${0%/*}/lib.sh"
PY=/usr/bin/python3
$PY -c 'import websockets' 2>/dev/null || skip_all "python3-websockets not installed"
command -v openssl >/dev/null || skip_all "openssl not installed"
command -v curl >/dev/null || skip_all "curl not installed"

EMU=$GW_ROOT/t/relay-emulator
SIM=$GW_ROOT/t/relay/cloudsim
NS=contoso.servicebus.windows.net
KEY=dGVzdGtleXZhbHVlMTIzNDU2Nzg5MA==
SKEY=c2VuZG9ubHlrZXk=

"$GW_ROOT/t/relay/mkcerts" "$T/pki" || { echo "1..0 # SKIP cannot make test certificates"; exit 0; }
CA=$T/pki/ca.pem
CPORT=$(free_port); APORT=$(free_port); MPORT=$(free_port)
ADMIN=http://127.0.0.1:$MPORT

bg relay $EMU --cert "$T/pki/server.pem" --keyfile "$T/pki/server.key" \
	--namespace $NS --listen 127.0.0.1:$CPORT --accept-listen 127.0.0.1:$APORT \
	--accept-host localhost --admin 127.0.0.1:$MPORT --idle 3 \
	--hc hc1 --hc hc2 --hc hc3 --hc hc4 --hc hc5 --hc hc6 \
	--key "*:RootManageSharedAccessKey:Listen,Send:$KEY" \
	--key "*:SendOnly:Send:$SKEY" --bearer "Listen,Send:static-test-bearer"
wait_for 15 "emulator is up" grep -q '^ready' "$T/relay.out"

tok() { # tok HC [keyname key [ttl]]
	$PY "$SIM" token --ns $NS --hc "$1" --key-name "${2:-RootManageSharedAccessKey}" \
		--key "${3:-$KEY}" --ttl "${4:-3600}"
}
lurl() { echo "wss://127.0.0.1:$CPORT/\$hc/$1?sb-hc-action=listen&sb-hc-id=$2"; }
curl_() { echo "wss://127.0.0.1:$CPORT/\$hc/$1?sb-hc-action=connect"; }
live() { # live HC N: N listeners on HC are usable
	curl -sf "$ADMIN/status" | $PY -c 'import json,sys; sys.exit(json.load(sys.stdin)["live"].get(sys.argv[1],0)!=int(sys.argv[2]))' "$1" "$2"
}
send() { # send HC [cloudsim send options] MESSAGE
	_hc=$1; shift
	$PY "$SIM" send --url "$(curl_ "$_hc")" --ca "$CA" "$@"
}
haslog() { grep -q "$2" "$T/$1.log.txt" 2>/dev/null; }

# 1. a listener with a valid SAS in the query gets the accept
bg l1 $PY "$SIM" listen --url "$(lurl hc1 l1)" --ca "$CA" --token "$(tok hc1)" \
	--log "$T/l1.log.txt" --mode echo --pong 1
wait_for 10 "listener registers on hc1" live hc1 1

msg='{"schema_version":1,"action_id":"a1","action_type":"echo","parameters":{"x":"é ✓"}}'
is "$(send hc1 --token "$(tok hc1)" "$msg")" "$msg" "message and reply through the rendezvous unchanged"
ok "listener got an accept for it" haslog l1 '^accept '
ok "accept address is on the other host:port, with action accept and the id" \
	grep -Eq "^accept ([0-9a-f-]+) wss://localhost:$APORT/[\$]hc/hc1[?]sb-hc-action=accept&sb-hc-id=\1\$" "$T/l1.log.txt"
is "$(curl -sf "$ADMIN/status" | $PY -c 'import json,sys; print(json.load(sys.stdin)["counters"].get("accept"))')" 1 "one rendezvous accepted on the accept port"

big=$(head -c 300000 /dev/zero | tr '\0' 'x')
printf '%s' "$big" >"$T/big.txt"
is "$(send hc1 --token "$(tok hc1)" --fragments 7 @"$T/big.txt" | wc -c | tr -d ' ')" 300001 \
	"a 300 kB message in 7 fragments comes back whole"
head -c 4096 /dev/urandom >"$T/bin"
want="binary:$(base64 -w0 <"$T/bin")"
is "$(send hc1 --token "$(tok hc1)" --binary --fragments 3 @"$T/bin")" "$want" \
	"binary fragments come back unchanged"
is "$(send hc1 --token "$(tok hc1)" --header '{"h":1}')" '{"h":1}' "token in the ServiceBusAuthorization header"
is "$(send hc1 --token "Bearer static-test-bearer" '{"b":1}')" '{"b":1}' "static bearer token"

# 2. handshake statuses
is "$(send hc1 --token "$(tok hc1 RootManageSharedAccessKey wrongkey)" x)" "status 401" "wrong key: 401"
is "$(send hc1 --token "$(tok hc1 NoSuchRule $KEY)" x)" "status 401" "unknown key name: 401"
is "$(send hc1 --token "$(tok hc2)" x)" "status 401" "token signed for another entity: 401"
is "$(send hc1 --token "$(tok hc1 RootManageSharedAccessKey $KEY -10)" x)" "status 401" "expired token: 401"
is "$(send hc1 x)" "status 401" "no token: 401"
is "$(send hc1 --token "Bearer wrong" x)" "status 401" "unknown bearer: 401"
plus=$($PY "$SIM" token --ns $NS --hc hc1 --key-name RootManageSharedAccessKey --key $KEY --resource "https://$NS/hc1/")
is "$(send hc1 --token "$plus" '{"p":1}')" '{"p":1}' "sr https://ns/hc/ is accepted"
is "$($PY "$SIM" listen --url "$(lurl hc1 bad)" --ca "$CA" --token "$(tok hc1 SendOnly $SKEY)" --log "$T/bad.log.txt")" \
	"status 403" "Send-only key on listen: 403"
is "$(send hc1 --token "$(tok hc1 SendOnly $SKEY)" '{"s":1}')" '{"s":1}' "Send-only key on connect works"
is "$(send nosuch --token "$(tok nosuch)" x)" "status 404" "unknown hybrid connection: 404"
is "$(send hc2 --token "$(tok hc2)" x)" "status 404" "connect with no listener: 404"

# 3. refusal: the sender sees the listener's status, the listener 410
bg l4 $PY "$SIM" listen --url "$(lurl hc4 l4)" --ca "$CA" --token "$(tok hc4)" \
	--log "$T/l4.log.txt" --mode "refuse:403:Not today" --pong 1
wait_for 10 "refusing listener registers" live hc4 1
is "$(send hc4 --token "$(tok hc4)" x)" "status 403" "refused with statusCode 403: sender sees 403"
wait_for 10 "refusing listener's own handshake ends in 410" haslog l4 '^refused-status 410$'

# frames one by one: fragmentation and close codes pass unchanged
bg lf $PY "$SIM" listen --url "$(lurl hc5 lf)" --ca "$CA" --token "$(tok hc5)" \
	--log "$T/lf.log.txt" --mode echo --frames --pong 1
wait_for 10 "frame-level listener registers" live hc5 1
send hc5 --token "$(tok hc5)" --fragments 3 --close-code 4001 abcdefghi >"$T/f.out" 2>"$T/f.err"
is "$(cat "$T/f.out")" abcdefghi "fragmented message echoed frame by frame"
wait_for 10 "listener saw the sender's close code 4001" haslog lf '^rendezvous-closed 4001 sender done$'
is "$(grep '^frames' "$T/lf.log.txt")" "frames 1:0:3,0:0:3,0:0:3,0:1:0" "the listener got the sender's frames unchanged"
is "$(cat "$T/f.err")" "closed 4001 sender done" "sender's close completed"
kill "$(cat "$T/lf.pid")"
wait_for 10 "frame-level listener gone" live hc5 0

# 4. single use
bg l3 $PY "$SIM" listen --url "$(lurl hc3 l3)" --ca "$CA" --token "$(tok hc3)" \
	--log "$T/l3.log.txt" --mode echo --reuse-check --pong 1
wait_for 10 "listener on hc3 registers" live hc3 1
is "$(send hc3 --token "$(tok hc3)" '{"u":1}')" '{"u":1}' "rendezvous on hc3"
wait_for 10 "second use of the accept address fails (404)" haslog l3 '^reuse-status 404$'

# 5. token expiry closes the control channel with 1008
bg l2 $PY "$SIM" listen --url "$(lurl hc2 l2)" --ca "$CA" --token "$(tok hc2 RootManageSharedAccessKey $KEY 2)" \
	--log "$T/l2.log.txt" --mode echo --pong 1
wait_for 10 "short-lived listener registers" live hc2 1
wait_for 10 "listener token expiry: close 1008" haslog l2 '^closed 1008 '

# 6. idle channels are dropped (no pong), pong keeps them
bg l5 $PY "$SIM" listen --url "$(lurl hc5 l5)" --ca "$CA" --token "$(tok hc5)" \
	--log "$T/l5.log.txt" --mode echo --pong 0
wait_for 10 "silent listener registers" haslog l5 '^open$'
wait_for 10 "idle control channel dropped without a close frame" haslog l5 '^closed 1006 '
ok "listener that pongs survived the idle limit" live hc1 1

# the cloud's events listener: records events, refuses more than 1 MiB
curl -sf -X POST "$ADMIN/fault/close?code=1000&hc=hc5" >/dev/null
wait_for 10 "hc5 free for the events listener" live hc5 0
mkdir "$T/events"
bg le $PY "$SIM" listen --url "$(lurl hc5 le)" --ca "$CA" --token "$(tok hc5)" \
	--log "$T/le.log.txt" --mode events --dir "$T/events" --pong 1
wait_for 10 "events listener registers" live hc5 1
ev='{"schema_version":1,"message_id":"m1","message_type":"study.image_received"}'
is "$(send hc5 --token "$(tok hc5)" "$ev")" '{"status": "created"}' "event acknowledged: created"
is "$(cat "$T/events/000001.json" 2>/dev/null)" "$ev" "event recorded unchanged"
is "$(send hc5 --token "$(tok hc5)" "$ev")" '{"status": "already_exists"}' "repeated event: already_exists"
head -c 1048577 /dev/zero | tr '\0' 'y' >"$T/huge.txt"
is "$(send hc5 --token "$(tok hc5)" @"$T/huge.txt")" "closed 1009 message too big" "event over 1 MiB: closed 1009, no ack"

# 7. faults
curl -sf -X POST "$ADMIN/fault/refuse?seconds=30" >/dev/null
is "$(send hc1 --token "$(tok hc1)" x)" "status 500" "refuse fault: connect gets 500"
curl -sf -X POST "$ADMIN/fault/refuse?seconds=30&mode=close&action=connect" >/dev/null
case $(send hc1 --token "$(tok hc1)" x 2>&1) in
"failed "*) pass "refuse fault with TCP close: no HTTP answer" ;;
*) fail "refuse fault with TCP close: no HTTP answer" ;;
esac
curl -sf -X POST "$ADMIN/fault/clear" >/dev/null
is "$(send hc1 --token "$(tok hc1)" '{"c":1}')" '{"c":1}' "after clear, connects work again"

bg l6 $PY "$SIM" listen --url "$(lurl hc6 l6)" --ca "$CA" --token "$(tok hc6)" \
	--log "$T/l6.log.txt" --mode echo --pong 1
wait_for 10 "listener on hc6 registers" live hc6 1
curl -sf -X POST "$ADMIN/fault/halfopen?hc=hc6" >/dev/null
is "$(send hc6 --token "$(tok hc6)" x)" "status 404" "half-open listener no longer gets senders"
not_ok "half-open listener's TCP is still open" haslog l6 '^closed'
is "$(curl -sf "$ADMIN/status" | $PY -c 'import json,sys; print(json.load(sys.stdin)["halfopen"])')" 1 "status shows the half-open channel"

curl -sf -X POST "$ADMIN/fault/close?code=1011" >/dev/null
wait_for 10 "fault close: control channel closed with 1011" haslog l1 '^closed 1011 '
wait_for 10 "fault close: every control channel closed" live hc1 0

# the Manage API server
bg mapi $PY "$GW_ROOT/t/relay/manage-api" --cert "$T/pki/server.pem" --keyfile "$T/pki/server.key" \
	--listen 127.0.0.1:0 --token api-token --dir "$T/api"
wait_for 10 "manage-api is up" grep -q '^ready' "$T/mapi.out"
API=https://127.0.0.1:$(sed -n 's/^ready port=//p' "$T/mapi.out")
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 1 --size 32x24 >/dev/null
cp "$T"/mg/*.dcm "$T/img.dcm"
head -c 3000 /dev/urandom >"$T/noise.dcm"
c() { curl -s --cacert "$CA" -o /dev/null -w '%{http_code}' "$@"; }
is "$(c -X PUT -H 'Authorization: Bearer api-token' -F file=@"$T/img.dcm" "$API/api/v1/dicom/act-1")" 201 "PUT image: 201"
ok "PUT image recorded unchanged" cmp "$T/img.dcm" "$T/api/put/000001-act-1.dcm"
is "$(c -X PUT -H 'Authorization: Bearer api-token' -F file=@"$T/img.dcm" "$API/api/v1/dicom/act-1")" 201 "the same image again: 201, as production"
is "$(c -X PUT -F file=@"$T/img.dcm" "$API/api/v1/dicom/act-1")" 401 "PUT without the bearer token: 401"
is "$(c -X PUT -H 'Authorization: Bearer api-token' -F file=@"$T/noise.dcm" "$API/api/v1/dicom/act-1")" 400 "PUT of a file that is not DICOM: 400"
is "$(c -X PUT -H 'Authorization: Bearer api-token' -F other=@"$T/img.dcm" "$API/api/v1/dicom/act-1")" 422 "PUT without a file part: 422"
c -X POST "$API/_fault?status=503&count=1" >/dev/null
is "$(c -X PUT -H 'Authorization: Bearer api-token' -F file=@"$T/img.dcm" "$API/api/v1/dicom/act-1")" 503 "injected 503"
is "$(c -X PATCH -H 'Authorization: Bearer api-token' -d '{"error":"bad"}' "$API/api/v1/dicom/act-2/failure")" 200 "PATCH failure: 200"
ok "failure report recorded" grep -q '"error":"bad"' "$T/api/failure/000003-act-2.json"
is "$(c -X PUT -H 'Authorization: Bearer api-token' -F file=@"$T/img.dcm" "$API/api/v1/dicom/act-2")" 403 "after a failure report the action's uploads get 403"

done_testing
