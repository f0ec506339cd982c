#!/bin/sh
# 4410-relaylisten-liveness: the listener keeps its channel as production
# does: a WebSocket PING every RELAY_PING_SECONDS, and a new channel when
# no PONG comes within RELAY_PING_TIMEOUT_SECONDS (a half-open connection
# found without any traffic proof); the self-echo runs only where the
# credential may send (RELAY_SELF_ECHO); relay.state and the status say
# what a listener can observe: the last PONG, the last action, the proof.
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
$PY -c 'import websockets' 2>/dev/null || skip_all "python3-websockets not installed"
command -v curl >/dev/null || skip_all "curl not installed"

export GATEWAY_DATA_DIR=$T/var PACS_PORT=$(free_port)
mkdir -p "$GATEWAY_DATA_DIR/run"
STATE=$GATEWAY_DATA_DIR/run/relay.state
relay_start hc1
export AZURE_RELAY_HYBRID_CONNECTION=hc1 LOG_LEVEL=debug
field() { sed -n "s/^$1=//p" "$STATE"; }

RELAY_SELF_ECHO=maybe relaylisten 2>"$T/cfg.err"
is "$?" 78 "RELAY_SELF_ECHO other than auto, on or off: EX_CONFIG"
ok "... naming the setting and what it takes" grep -q 'RELAY_SELF_ECHO.*maybe.* is not one of: auto, on, off' "$T/cfg.err"

# 1. PINGs, and what a listener can observe
RELAY_SELF_ECHO=off RELAY_PING_SECONDS=1 RELAY_PING_TIMEOUT_SECONDS=3 bg listen relaylisten
L=$BG_PID
wait_for 15 "the listener registers on hc1" relay_live hc1 1
wait_for 10 "a PING every RELAY_PING_SECONDS: the relay counts three" \
	sh -c "[ \$(curl -sf '$RELAY_ADMIN/status' | $PY -c 'import json,sys; print(json.load(sys.stdin)[\"counters\"].get(\"ping\",0))') -ge 3 ]"
wait_for 10 "relay.state records the last PONG" sh -c "sed -n 's/^last_pong=//p' '$STATE' | grep -Eq '^[0-9T:-]+Z$'"
is "$(field self_echo) $(field credential)" "off sas" "relay.state: self-echo off, the credential named"
is "$(field last_action)" "" "no action yet: last_action empty"
is "$(relay_send hc1 '{"action_type":"echo"}' | cut -c1-17)" '{"status":"echo",' "an action is answered"
wait_for 5 "... and relay.state records when the relay last routed one to us" \
	sh -c "sed -n 's/^last_action=//p' '$STATE' | grep -Eq '^[0-9T:-]+Z$'"
relaylisten --status >"$T/status.out"
ok "status: the credential, the last PONG and action, and that the proof is off" sh -c "
	grep -q '^relay: connected since .*credential sas)' '$T/status.out' &&
	grep -Eq '^last PONG: [0-9T:-]+Z \\([0-9]+s ago\\); last action: [0-9T:-]+Z' '$T/status.out' &&
	grep -q '^traffic proof: off (the credential cannot send to itself' '$T/status.out'"
ok "RELAY_SELF_ECHO=off: the listener never sends to itself" sh -c "! grep -q 'traffic proof' '$T/listen.log'"

# 2. half-open: no PONG, a new channel, with no traffic proof at all
n=$(grep -c 'msg=listening' "$T/listen.log")
relay_admin "/fault/halfopen?hc=hc1"
wait_for 15 "half-open channel: no PONG within RELAY_PING_TIMEOUT_SECONDS is logged" \
	grep -q 'the relay does not answer PINGs.*error="no PONG within 3 s of a PING"' "$T/listen.log"
wait_for 15 "... and a new channel is opened" sh -c "[ \$(grep -c 'msg=listening' '$T/listen.log') -gt $n ]"
wait_for 10 "... which is live" relay_live hc1 1
is "$(relay_send hc1 '{"action_type":"echo"}' | cut -c1-17)" '{"status":"echo",' "... and answers"
ok "relay.state keeps the last error, and when it happened, once connected again" sh -c "
	grep -q '^last_error=control channel lost: the relay does not answer PINGs: no PONG' '$STATE' &&
	sed -n 's/^last_error_at=//p' '$STATE' | grep -Eq '^[0-9T:-]+Z$'"
kill -TERM $L
wait_for 10 "SIGTERM stops it" sh -c "! kill -0 $L 2>/dev/null"

# 3. the self-echo where a send right is configured (a SAS key: auto)
RELAY_PROBE_SECONDS=2 bg probe relaylisten
wait_for 20 "RELAY_SELF_ECHO=auto with a SAS key: the traffic proof runs" \
	sh -c "sed -n 's/^last_proof=//p' '$STATE' | grep -Eq '^[0-9T:-]+Z$'"
is "$(field self_echo)" on "relay.state: self-echo on"
kill -TERM $BG_PID
done_testing
