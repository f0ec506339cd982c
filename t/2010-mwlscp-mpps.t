#!/bin/sh
# 2010-mwlscp-mpps: MPPS N-CREATE / N-SET against mwlscp from an
# independent peer, dcmjs-dimse (npm; t/peers/mpps.js, Nagle disabled by
# t/peers/nodelay.js): transitions land in worklist.db and the relay
# spool, survive a restart, and illegal ones get PS3.4 annex F statuses.
. "${0%/*}/lib.sh"

command -v node >/dev/null 2>&1 || skip_all "node not installed"
[ -d "$GW_ROOT/node_modules/dcmjs-dimse" ] ||
    skip_all "dcmjs-dimse not installed (npm ci)"

GATEWAY_DATA_DIR=$T/var
export GATEWAY_DATA_DIR
mkdir -p "$GATEWAY_DATA_DIR"
DB=$GATEWAY_DATA_DIR/worklist.db
RELAY=$GATEWAY_DATA_DIR/spool/relay
PORT=$(free_port)
export WORKLIST_PORT=$PORT
# The cloud's events are configured (nothing here sends them): mwlscp
# copies each MPPS event to the relay spool.  t/4700 has them off.
export AZURE_RELAY_NAMESPACE=relay.test AZURE_RELAY_EVENTS_HYBRID_CONNECTION=events

mpps() {
	(cd "$GW_ROOT" && node -r ./t/peers/nodelay.js t/peers/mpps.js \
	    "$PORT" "$@") 2>>"$T/mpps.err" | sed -n 's/^status=//p'
}

start() {
	bg mwlscp mwlscp --bind 127.0.0.1
	MWLSCP_PID=$BG_PID
	wait_until 20 port_open "$PORT"
}

stop() {
	kill -TERM "$MWLSCP_PID"
	wait "$MWLSCP_PID"
}

item() {
	printf '{"schema_version":1,"action_id":"act-%s","action_type":"worklist.create_item","timestamp":"2026-11-27T10:00:00Z","source_system":"t","parameters":{"worklist_item":{"accession_number":"%s","participant":{"nhs_number":"9990001112","name":"M\\u00fcller^Zo\\u00eb","birth_date":"19700101","sex":"F"},"scheduled":{"date":"20261128","time":"093000"},"procedure":{"modality":"MG","study_description":"Screening Mammography"}}}}\n' "$1" "$1"
}

{ item ACCMPPS1; item ACCMPPS2; } | mwlsync apply >"$T/apply.out" 2>"$T/apply.err"
ok "two worklist items loaded" test "$(grep -c created "$T/apply.out")" = 2
STUDY1=$(sql "$DB" "select study_instance_uid from worklist_items where accession_number='ACCMPPS1'")

start
ok "mwlscp listens" port_open "$PORT"

is "$(mpps create 1.2.826.0.1.3680043.9.7.1 ACCMPPS1 "$STUDY1")" 0x0000 \
    "N-CREATE IN PROGRESS succeeds"
is "$(sql "$DB" "select status from worklist_items where accession_number='ACCMPPS1'")" \
    "IN PROGRESS" "the worklist item is IN PROGRESS"
ok "an mpps.status_update IN PROGRESS event is in the relay spool" \
    sh -c "cat '$RELAY'/new/* | grep -q '\"status\":\"IN PROGRESS\".*1.2.826.0.1.3680043.9.7.1'"
is "$(mpps create 1.2.826.0.1.3680043.9.7.1 ACCMPPS1 "$STUDY1")" 0x0111 \
    "a duplicate N-CREATE gets 0x0111 (duplicate SOP instance)"

stop
is "$?" 0 "mwlscp stops with 0 on SIGTERM"
start
is "$(mpps set 1.2.826.0.1.3680043.9.7.1 COMPLETED)" 0x0000 \
    "N-SET COMPLETED after an mwlscp restart succeeds"
is "$(sql "$DB" "select status from worklist_items where accession_number='ACCMPPS1'")" \
    "COMPLETED" "the worklist item is COMPLETED"
ok "a COMPLETED event is in the relay spool" \
    sh -c "cat '$RELAY'/new/* | grep -q '\"status\":\"COMPLETED\".*1.2.826.0.1.3680043.9.7.1'"
is "$(mpps set 1.2.826.0.1.3680043.9.7.1 DISCONTINUED)" 0x0110 \
    "N-SET after COMPLETED is refused (0x0110)"
is "$(mpps set 1.2.826.0.1.3680043.9.7.999 COMPLETED)" 0x0112 \
    "N-SET on an unknown instance gets 0x0112"

is "$(mpps create 1.2.826.0.1.3680043.9.7.2 ACCMPPS2 1.2.3)" 0x0000 \
    "a second step starts"
is "$(mpps set 1.2.826.0.1.3680043.9.7.2 DISCONTINUED)" 0x0000 \
    "N-SET DISCONTINUED succeeds"
is "$(sql "$DB" "select status from worklist_items where accession_number='ACCMPPS2'")" \
    "DISCONTINUED" "the second item is DISCONTINUED"
is "$(grep -l "kind=mpps.status_update" "$RELAY"/new/* | wc -l | tr -d " ")" 4 \
    "four status events in the relay spool"
ok "no patient name or ID in the mwlscp log" \
    sh -c "! grep -q 'ller\|9990001112' '$T/mwlscp.log'"
stop
ok "no sanitizer report in the mwlscp log" \
    sh -c "! grep -q 'Sanitizer\|runtime error' '$T/mwlscp.log'"

done_testing
