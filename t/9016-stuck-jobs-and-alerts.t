#!/bin/sh
# A stuck upload stands out: its age runs from its first queueing, with its
# attempts and last error; status --check gives monitoring Nagios codes;
# quarantine, failed jobs and low disk become gateway.alert events.
. "${0%/*}/lib.sh"

GATEWAYD="$GW_ROOT/pipeline/gatewayd"
gw() { sh "$GATEWAYD" "$@"; }
start_gateway
RELAY=$T/var/spool/relay

# An image that arrived 5 minutes ago, whose job relaysend just rewrote
# after its third attempt (a fresh mtime).
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 1 --size 64x48 --studies 1 --seed 7 >/dev/null
storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$T/mg"/*.dcm
indexed() { [ "$(sql "$PACS_DB" "SELECT count(*) FROM instances")" = 1 ]; }
wait_for 20 "the image is indexed" indexed
job=$(sql "$PACS_DB" "SELECT object_hash FROM instances")
obj=$(find "$T/var/store" -name "$job.dcm")
touch -d '-5 minutes' "$obj"
printf 'kind=image\nobject=%s\nerror=HTTP 503 from the Manage API\nattempts=3\nnext_attempt_ms=0\n' "$job" >"$RELAY/new/$job"
gw status >"$T/status.out" 2>&1
ok "the image job's age runs from its arrival, not its last retry" grep -Eq '^image +1 +0 5m0[0-9]s$' "$T/status.out"
ok "status shows the oldest job with its attempts and last error" \
    grep -Eq '^oldest job: image, queued 5m0[0-9]s ago, 3 attempts, last error: HTTP 503 from the Manage API$' "$T/status.out"
ok "status says the cloud is not configured" grep -q '^cloud: not configured' "$T/status.out"
ok "... and the relay neither" grep -q '^relay: not configured$' "$T/status.out"
ok "... and counts the image held for it" grep -q '^uploads: 0 sent, 1 held$' "$T/status.out"
relaylisten --health >"$T/health.json" 2>/dev/null
is "$(python3 -c 'import json,sys; o=json.load(open(sys.argv[1]))["cloud"]["oldest_job"]; print(o["kind"], o["attempts"], o["age_seconds"] >= 300)' "$T/health.json")" \
    "image 3 True" "the health report has the cloud's oldest job, its attempts and true age"

# A Manage API that answers, and one that does not.
API=$(free_port)
bg api python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
print("ready", flush=True); time.sleep(60)' "$API"
wait_until 5 port_open "$API"
CLOUD_API_ENDPOINT=https://127.0.0.1:$API/api/v1/dicom gw status >"$T/status.out" 2>&1
ok "status says the Manage API is reachable" grep -q "^cloud: Manage API 127.0.0.1:$API reachable" "$T/status.out"
CLOUD_API_ENDPOINT=https://127.0.0.1:$(free_port)/api gw status >"$T/status.out" 2>&1
ok "... and when it is not" grep -q '^cloud: Manage API 127.0.0.1:[0-9]* NOT reachable' "$T/status.out"

# status --check
gw status --check >"$T/check.out" 2>&1
is "$?" 0 "status --check: all running, nothing failed: OK (0)"
ok "... one line" grep -q '^GATEWAY OK - running | failed_jobs=0 quarantine=0$' "$T/check.out"
mv "$RELAY/new/$job" "$RELAY/failed/$job"
echo "HTTP 400" >"$RELAY/failed/$job.reason"
gw status --check >"$T/check.out" 2>&1
is "$?" 1 "a failed job: WARNING (1)"
ok "... saying so" grep -q '^GATEWAY WARNING - 1 failed job | failed_jobs=1' "$T/check.out"
gw check >"$T/check2.out" 2>&1
is "$?" 1 "gatewayd check passes through to gatewayctl check: the same code"
ok "... and the same line" cmp -s "$T/check.out" "$T/check2.out"

# Alerts (gatewayctl alerts, which gatewayd runs when events go to the
# cloud).  With the cloud's events off an alert is recorded, not queued.
: >"$T/var/quarantine/broken.dcm"
ok "gatewayctl alerts with the cloud off" sh -c 'gatewayctl alerts 2>"$0/alerts-off.log"' "$T"
ok "... records the alert" test -f "$T/var/run/alert.quarantine"
is "$(ls "$RELAY/new" | grep -c '^alert-')" 0 "... and queues no job that nothing would send"
rm -f "$T/var/run/alert."*
export AZURE_RELAY_NAMESPACE=relay.test AZURE_RELAY_EVENTS_HYBRID_CONNECTION=events
ok "gatewayctl alerts runs" sh -c 'gatewayctl alerts 2>"$0/alerts.log"' "$T"
ok "a gateway.alert job for the quarantine" test -f "$RELAY/new/alert-quarantine"
ok "... and one for the failed job" test -f "$RELAY/new/alert-failed_jobs"
ok "... none for the disk" test ! -e "$RELAY/new/alert-low_disk"
event() { sed -n 's/^event=//p' "$RELAY/new/alert-$1"; }
is "$(event quarantine | python3 -c 'import json,sys; e=json.load(sys.stdin); d=e["data"]; print(e["event_type"], e["schema_version"], d["alert"], d["state"], d["severity"], d["value"], len(e["message_id"]))')" \
    "gateway.alert 1 quarantine raised warning 1 36" "the event: type, alert, state, severity, value, a message id"
ok "the job carries its kind" grep -qx 'kind=gateway.alert' "$RELAY/new/alert-quarantine"
first=$(event quarantine)
ok "gatewayd alerts passes through to gatewayctl alerts" gw alerts
is "$(event quarantine)" "$first" "a second run while it lasts sends nothing new"
is "$(ls "$RELAY/new" | grep -c '^alert-')" 2 "... one job per condition"
rm "$T/var/quarantine/broken.dcm"
gatewayctl alerts 2>/dev/null
is "$(event quarantine | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["state"])')" cleared \
    "when the quarantine is empty again, the alert is cleared"
ok "the log names the alert, not the file" grep -q 'alert raised.*alert=quarantine value=1' "$T/alerts.log"

stop_gateway
gw status --check >"$T/check.out" 2>&1
is "$?" 2 "status --check with the gateway down: CRITICAL (2)"
ok "... saying so" grep -q '^GATEWAY CRITICAL - gatewayd not running' "$T/check.out"

# gatewayd runs the alerts child when events go to the cloud (relaysend
# cannot reach relay.test: the job waits in the spool).
unset GW_PORT
rm -rf "$T/var/run"
GATEWAY_ALERT_INTERVAL_SECONDS=1 start_gateway
: >"$T/var/quarantine/again.dcm"
wait_for 20 "gatewayd's alerts child queues the quarantine alert" sh -c "grep -q '\"state\":\"raised\"' '$RELAY/new/alert-quarantine'"
stop_gateway
done_testing
