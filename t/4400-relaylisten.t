#!/bin/sh
# 4400-relaylisten: the listener against t/relay-emulator.  Actions from
# the cloud simulator get production's replies (echo, health, worklist
# through mwlsync, unknown, not JSON, no type); the channel comes back
# after a 1008 token expiry, a 1011, refused connects (with back-off) and
# a half-open TCP connection (found by the traffic proof); tokens are
# renewed before they expire; every failure is logged with its phase; 404
# is not retried fast.  Entra ID tokens: 4410-4430.
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
$PY -c 'import websockets' 2>/dev/null || skip_all "python3-websockets not installed"
command -v curl >/dev/null || skip_all "curl not installed"

export GATEWAY_DATA_DIR=$T/var PACS_PORT=$(free_port)
mkdir -p "$GATEWAY_DATA_DIR/run"
STATE=$GATEWAY_DATA_DIR/run/relay.state
relay_start hc1 hc2 hc3 hc4
export AZURE_RELAY_HYBRID_CONNECTION=hc1 RELAY_PROBE_SECONDS=2 RELAY_PING_SECONDS=1
export LOG_LEVEL=debug

# options and configuration
ok "--help" sh -c 'relaylisten --help | grep -q "^usage: relaylisten"'
ok "--version" sh -c 'relaylisten --version | grep -q "^relaylisten [0-9]"'
AZURE_RELAY_HYBRID_CONNECTION= relaylisten 2>"$T/cfg.err"
is "$?" 78 "no hybrid connection: EX_CONFIG"
ok "... and says which setting" grep -q 'AZURE_RELAY_HYBRID_CONNECTION is not set' "$T/cfg.err"
AZURE_RELAY_NAMESPACE= relaylisten 2>"$T/cfg2.err"
is "$?" 78 "no namespace: EX_CONFIG"
ok "... and says which setting" grep -q 'AZURE_RELAY_NAMESPACE is not set' "$T/cfg2.err"

# 1. actions and replies
bg listen relaylisten
L=$BG_PID
wait_for 15 "the listener registers on hc1" relay_live hc1 1
wait_for 10 "relay.state says connected" grep -q '^connection=connected' "$STATE"
is "$(relay_send hc1 '{"schema_version":1,"action_id":"e1","action_type":"echo","payload":{"x":"é ✓"}}' |
	$PY -c 'import json,sys; r=json.load(sys.stdin); print(sorted(r), r["status"], r["payload"]["action_id"], r["payload"]["payload"]["x"])')" \
	"['payload', 'status'] echo e1 é ✓" "echo: {\"status\":\"echo\",\"payload\":<the whole request>}, as production"
is "$(relay_send hc1 '{"action_type":"echo","timestamp":"2026-07-07T08:00:00"}')" \
	'{"status":"echo","payload":{"action_type":"echo","timestamp":"2026-07-07T08:00:00"}}' \
	"the cloud's own echo (no action_id) comes back whole"
is "$(relay_send hc1 '{"schema_version":1,"action_id":"u1","action_type":"launch.rocket"}')" \
	'{"status":"error","message":"Unsupported action: launch.rocket"}' \
	"an unknown action gets production's error reply, without action_id"
is "$(relay_send hc1 '{"schema_version":1,"action_id":"u2"}')" \
	'{"status":"error","message":"Unsupported action: no-op"}' \
	"no action_type: \"Unsupported action: no-op\", production's words"
is "$(relay_send hc1 '{"action_id":"u3","action_type":7}')" \
	'{"status":"error","message":"Unsupported action: 7"}' \
	"an action_type that is not a string: named in the error"
is "$(relay_send hc1 'not json' | $PY -c 'import json,sys; r=json.load(sys.stdin); print(r["status"], r["message"][:24])')" \
	"error Invalid action: not JSON" "not JSON: a structured error naming it, never a silent close"
is "$(relay_send hc1 '["echo"]')" '{"status":"error","message":"Invalid action: not a JSON object"}' \
	"a JSON array: the error says it is not an object"
item='{"schema_version":1,"action_id":"w1","action_type":"worklist.create_item","timestamp":"2026-11-28T08:00:00Z","source_system":"manage-breast-screening","source_reference":{"appointment_id":"ap1","participant_id":"9990001112"},"parameters":{"worklist_item":{"accession_number":"ACCRL1","participant":{"nhs_number":"9990001112","name":"RELAY^TEST","birth_date":"19700101","sex":"F"},"scheduled":{"date":"20261128","time":"093000"},"procedure":{"modality":"MG","study_description":"Screening Mammography"}}}}'
is "$(relay_send hc1 "$item")" '{"status":"created","action_id":"w1"}' "worklist.create_item: created"
is "$(sql "$GATEWAY_DATA_DIR/worklist.db" "SELECT accession_number FROM worklist_items WHERE source_message_id = 'w1'")" \
	ACCRL1 "... and the item is in worklist.db"
is "$(relay_send hc1 "$item")" '{"status":"processed","action_id":"w1"}' "a repeat: processed"
is "$(relay_send hc1 '{"schema_version":1,"action_id":"s1","action_type":"worklist.update_status","parameters":{"worklist_item":{"accession_number":"ACCRL1","status":"IN PROGRESS"}}}' |
	$PY -c 'import json,sys; print(json.load(sys.stdin)["status"])')" updated "worklist.update_status: updated"
relay_send hc1 '{"schema_version":1,"action_id":"h1","action_type":"health"}' >"$T/health.json"
is "$($PY -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["status"], r["action_id"], r["health"]["version"], r["health"]["relay"]["connection"])' "$T/health.json")" \
	"ok h1 0.1.0 connected" "health: the report, with the relay connected"
ok "health: production's keys: healthy, version, listener_uptime_seconds, checks" $PY -c '
import json, sys
h = json.load(open(sys.argv[1]))["health"]
assert list(h)[:4] == ["healthy", "version", "listener_uptime_seconds", "checks"], list(h)[:4]
assert isinstance(h["healthy"], bool)
assert isinstance(h["listener_uptime_seconds"], int) and h["listener_uptime_seconds"] >= 0
c = h["checks"]
assert set(c) >= {"mwl_port", "pacs_port", "disk", "services"}, c
for k in "mwl_port", "pacs_port":
    assert c[k]["ok"] is False and c[k]["error"], c[k]   # nothing listens in this test
assert set(c["disk"]) == {"ok", "free_bytes", "free_percent"}, c["disk"]
assert round(c["disk"]["free_percent"], 1) == c["disk"]["free_percent"]
assert c["services"]["ok"] is False and c["services"]["services"]["gatewayd"]["ok"] is False
assert h["healthy"] is False and h["problems"]
' "$T/health.json"
is "$(relay_send hc1 '{"action_type":"health"}' | $PY -c 'import json,sys; r=json.load(sys.stdin); print(r["status"], r["action_id"])')" \
	"ok None" "health without an action_id: \"action_id\": null, as production"
ok "no patient data in the log" sh -c "! grep -Eq 'RELAY\\^TEST|9990001112|19700101' '$T/listen.log'"

for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
	relay_send hc1 "{\"action_id\":\"c$i\",\"action_type\":\"echo\"}" >"$T/c$i.out" &
	senders="${senders:-} $!"
done
for p in $senders; do wait "$p"; done
is "$(cat "$T"/c*.out | grep -c '"status":"echo"')" 12 "12 actions at once: all answered"

# 2. traffic proof
wait_for 15 "a traffic proof is recorded" grep -Eq '^last_proof=[0-9]' "$STATE"

# 3. faults: 1008, 1011 with refused connects, half-open
relay_admin "/fault/close?code=1008&hc=hc1"
wait_for 10 "1008: logged as a token expiry, with its phase" \
	grep -q 'token expired.*phase=closed code=1008' "$T/listen.log"
wait_for 10 "... and the listener is back" relay_live hc1 1
is "$(relay_send hc1 '{"action_id":"e2","action_type":"echo"}' | cut -c1-17)" '{"status":"echo",' "... and answers"

relay_admin "/fault/refuse?seconds=4&action=listen"
relay_admin "/fault/close?code=1011&hc=hc1"
wait_for 10 "1011: logged with the close code" grep -q 'channel lost.*code=1011' "$T/listen.log"
wait_for 10 "refused reconnects: the handshake status is logged" \
	grep -q 'cannot open the control channel.*phase=handshake status=500' "$T/listen.log"
wait_for 10 "... and the back-off grows (1 s, then 2 s)" sh -c \
	"grep -q 'reconnecting.*wait=1\$' '$T/listen.log' && grep -q 'reconnecting.*wait=2\$' '$T/listen.log'"
wait_for 20 "... and the listener is back once connects are allowed" relay_live hc1 1

n=$(grep -c 'msg=listening' "$T/listen.log")
relay_admin "/fault/halfopen?hc=hc1"
wait_for 20 "half-open channel: the traffic proof fails" \
	grep -q 'traffic proof failed: the listener does not get traffic' "$T/listen.log"
wait_for 15 "... and a new channel is opened" sh -c "[ \$(grep -c 'msg=listening' '$T/listen.log') -gt $n ]"
wait_for 10 "... which is live" relay_live hc1 1
is "$(relay_send hc1 '{"action_id":"e3","action_type":"echo"}' | cut -c1-17)" '{"status":"echo",' "... and answers"

kill -TERM $L
wait_for 10 "SIGTERM stops the listener" sh -c "! kill -0 $L 2>/dev/null"
wait $L; is "$?" 0 "... with status 0"
ok "relay.state says stopped" grep -q '^connection=stopped' "$STATE"

# 4. token renewal: a new channel before the old token expires
RELAY_TOKEN_TTL_SECONDS=12 bg renew relaylisten
wait_for 20 "the token is renewed before it expires" grep -q 'token renewed' "$T/renew.log"
wait_for 20 "... and again" sh -c "[ \$(grep -c 'token renewed' '$T/renew.log') -ge 2 ]"
ok "no channel was closed for an expired token" sh -c "! grep -q 'code=1008' '$T/renew.log'"
ok "one listener stays live" relay_live hc1 1
kill -TERM $BG_PID

# 5. failures, each with its phase
AZURE_RELAY_HYBRID_CONNECTION=nosuch bg nf relaylisten
wait_for 15 "404: not found, logged with the handshake status" \
	grep -q 'phase=handshake status=404' "$T/nf.log"
ok "... and not retried fast: the next try waits 30 s" grep -q 'not found.*wait=30' "$T/nf.log"
kill -TERM $BG_PID
AZURE_RELAY_HYBRID_CONNECTION=hc2 AZURE_RELAY_SHARED_ACCESS_KEY=d3Jvbmc= bg wrong relaylisten
wait_for 15 "a wrong key: 401 in the handshake" grep -q 'phase=handshake status=401' "$T/wrong.log"
kill -TERM $BG_PID
expired=$($PY "$RELAY_SIM" token --ns $RELAY_NS --hc hc2 --key-name RootManageSharedAccessKey --key $RELAY_KEY --ttl -60)
AZURE_RELAY_HYBRID_CONNECTION=hc2 AZURE_RELAY_SHARED_ACCESS_KEY= AZURE_RELAY_TOKEN_COMMAND="echo '$expired'" bg expired relaylisten
wait_for 15 "an expired token: 401, and the log says what that may mean" \
	grep -q 'phase=handshake status=401.*hint="token refused: wrong key or key name, or expired' "$T/expired.log"
kill -TERM $BG_PID
AZURE_RELAY_HYBRID_CONNECTION=hc2 GATEWAY_CA_FILE= bg tls relaylisten
wait_for 15 "an untrusted certificate: phase tls" grep -q 'phase=tls.*certificate' "$T/tls.log"
kill -TERM $BG_PID
AZURE_RELAY_HYBRID_CONNECTION=hc2 AZURE_RELAY_ENDPOINT=no-such-host.invalid:443 bg dns relaylisten
wait_for 15 "an unknown host: phase dns" grep -q 'phase=dns' "$T/dns.log"
kill -TERM $BG_PID
AZURE_RELAY_HYBRID_CONNECTION=hc2 AZURE_RELAY_ENDPOINT=127.0.0.1:$(free_port) bg tcp relaylisten
wait_for 15 "nobody listening: phase tcp" grep -q 'phase=tcp' "$T/tcp.log"
kill -TERM $BG_PID

# 6. other ways to authenticate
AZURE_RELAY_HYBRID_CONNECTION=hc3 AZURE_RELAY_SHARED_ACCESS_KEY= AZURE_RELAY_TOKEN_COMMAND='echo static-test-bearer' bg bearer relaylisten
wait_for 15 "a bearer token from AZURE_RELAY_TOKEN_COMMAND" relay_live hc3 1
is "$(relay_send hc3 '{"action_id":"e4","action_type":"echo"}' | cut -c1-17)" '{"status":"echo",' "... answers"
kill -TERM $BG_PID
AZURE_RELAY_HYBRID_CONNECTION=hc3 AZURE_RELAY_TOKEN_COMMAND='echo static-test-bearer' bg both relaylisten
wait_for 15 "a SAS key and a token command: the key is used (production's order)" \
	grep -q 'msg=listening.*credential=sas' "$T/both.log"
ok "... and the command is named as ignored" grep -q 'ignored="AZURE_RELAY_TOKEN_COMMAND"' "$T/both.log"
kill -TERM $BG_PID
AZURE_RELAY_HYBRID_CONNECTION=hc4 RELAY_TOKEN_IN_HEADER=1 bg header relaylisten
wait_for 15 "the token in the ServiceBusAuthorization header" relay_live hc4 1
kill -TERM $BG_PID
AZURE_RELAY_HYBRID_CONNECTION=hc2 AZURE_RELAY_KEY_NAME=ListenOnly bg lo relaylisten
wait_for 15 "a Listen-only key listens" relay_live hc2 1
wait_for 15 "... and says the traffic proof needs the Send right" grep -q 'needs the Send right' "$T/lo.log"
kill -TERM $BG_PID

done_testing
