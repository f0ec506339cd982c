#!/bin/sh
# 4500-cloud-end-to-end: the whole gateway under gatewayd with the cloud
# emulated (t/relay-emulator, t/relay/cloudsim, t/relay/manage-api).  The
# cloud creates a worklist item through the relay; findscu sees it; the
# modality emulator plays the exam; the Manage API receives every image
# once with the item's action_id, and the events listener gets
# study.image_received with a decodable preview and mpps.status_update
# for IN PROGRESS and COMPLETED.  A worklist.create_test_item is played
# by modality-emu on its own.  Then a minute in which the API answers
# 503 (unavailable: production keeps 500 for permanent errors, see
# t/4800) and the relay refuses every connection: afterwards everything
# is delivered, nothing lost and no image stored twice.
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
$PY -c 'import websockets' 2>/dev/null || skip_all "python3-websockets not installed"
command -v curl >/dev/null || skip_all "curl not installed"
command -v findscu >/dev/null || skip_all "dcmtk not installed"

relay_start actions events
api_start
cloud_listen events

export AZURE_RELAY_HYBRID_CONNECTION=actions AZURE_RELAY_EVENTS_HYBRID_CONNECTION=events
export CLOUD_API_TOKEN=sesame
export RELAY_PROBE_SECONDS=5 RELAY_RETRY_MAX_SECONDS=5
start_gateway
wait_for 20 "gatewayd starts relaylisten, which registers" relay_live actions 1

# puts ACTION_ID: distinct SOP Instance UIDs the API stored for it
puts() {
	for f in "$API"/put/*-"$1".dcm; do
		[ -f "$f" ] && dcm_value "$f" 0008,0018
	done | sort -u | wc -l | tr -d ' '
}
# events KIND ACCESSION [STATUS]: events of a kind the cloud received
events() {
	$PY - "$EVENTS" "$@" <<'EOF'
import base64, glob, json, sys
d, kind, acc = sys.argv[1:4]
status = sys.argv[4] if len(sys.argv) > 4 else None
seen = set()
for f in glob.glob(d + "/*.json"):
    m = json.load(open(f))
    if kind == "study.image_received" and m.get("message_type") == kind:
        p = m["parameters"]
        if p["study"]["accession_number"] != acc:
            continue
        t = p["image"]["thumbnail"]
        data = base64.b64decode(t["data"])
        ok = data[:8] == b"\x89PNG\r\n\x1a\n" or data[:2] == b"\xff\xd8"
        if ok and t["width"] > 0 and t["height"] > 0:
            seen.add(p["image"]["sop_instance_uid"])
    elif kind == "mpps.status_update" and m.get("event_type") == kind:
        if m["data"]["accession_number"] == acc and m["data"]["status"] == status:
            seen.add(m["data"]["mpps_instance_uid"])
print(len(seen))
EOF
}

puts_are() { [ "$(puts "$1")" = "$2" ]; }		# puts_are ACTION_ID N
events_are() { _n=$1; shift; [ "$(events "$@")" = "$_n" ]; }	# events_are N KIND ACC [STATUS]
past() { [ $(($(date +%s) - $1)) -ge "$2" ]; }		# past START SECONDS

# 1. worklist item from the cloud, seen by the modality
is "$(relay_send actions "$(cloud_item act-1 ACCE2E1)")" '{"status":"created","action_id":"act-1"}' \
	"worklist.create_item through the relay: created"
findscu -to 10 -W -aec SCREENING_MWL -k AccessionNumber= -k ScheduledProcedureStepSequence \
	127.0.0.1 "$WORKLIST_PORT" >"$T/find.txt" 2>&1
ok "findscu sees the item on the worklist port" grep -q 'ACCE2E1' "$T/find.txt"

# 2. the exam
modality-emu --accession ACCE2E1 >"$T/emu1.out" 2>"$T/emu1.err"
is "$?" 0 "modality-emu plays the exam"
wait_for 60 "the Manage API has the 4 images, under the item's action_id" puts_are act-1 4
is "$(ls "$API"/put/ | wc -l | tr -d ' ')" 4 "... each once"
wait_for 60 "the cloud gets study.image_received for each, with a decodable preview" \
	events_are 4 study.image_received ACCE2E1
wait_for 30 "... and mpps.status_update IN PROGRESS" events_are 1 mpps.status_update ACCE2E1 'IN PROGRESS'
wait_for 30 "... and COMPLETED" events_are 1 mpps.status_update ACCE2E1 COMPLETED
wait_for 30 "the relay spool drains" spool_empty relay
is "$(sql "$PACS_DB" "SELECT group_concat(DISTINCT upload_status) FROM instances")" COMPLETE \
	"pacs.db: every image COMPLETE"

# 3. a test item: created, then played by modality-emu on the gateway
test_item=$(cloud_item act-3 ACCE2E3 | sed 's/"worklist.create_item"/"worklist.create_test_item"/')
is "$(relay_send actions "$test_item")" '{"status":"created","action_id":"act-3"}' \
	"worklist.create_test_item: created"
wait_for 90 "... and modality-emu plays it: the API gets its 4 images" puts_are act-3 4
wait_for 60 "... and the cloud hears it COMPLETED" events_are 1 mpps.status_update ACCE2E3 COMPLETED

# 4. a minute of trouble: the API answers 503, the relay refuses everything
is "$(relay_send actions "$(cloud_item act-2 ACCE2E2)")" '{"status":"created","action_id":"act-2"}' \
	"a second item is created"
api_fault '?status=503&count=-1'
relay_admin "/fault/refuse?seconds=60&action=all"
relay_admin "/fault/close?code=1011&hc=actions"
start=$(date +%s)
modality-emu --accession ACCE2E2 >"$T/emu2.out" 2>"$T/emu2.err"
is "$?" 0 "the modality stores while the cloud is away"
wait_for 30 "uploads are answered 503 and kept for later" grep -q '"status": 503' "$API/requests.log"
ok "gatewayd status shows the relay queue by kind" sh -c \
	"sh '$GW_ROOT/pipeline/gatewayd' status | grep -q 'study.image_received'"
wait_until 70 past "$start" 60
api_fault /clear
wait_for 90 "afterwards all 4 images reach the API" puts_are act-2 4
wait_for 90 "... and all their events" events_are 4 study.image_received ACCE2E2
wait_for 60 "... and the MPPS IN PROGRESS event" events_are 1 mpps.status_update ACCE2E2 'IN PROGRESS'
wait_for 60 "... and COMPLETED" events_are 1 mpps.status_update ACCE2E2 COMPLETED
wait_for 60 "the listener is back" relay_live actions 1
is "$(relay_send actions '{"action_id":"e9","action_type":"echo"}' | cut -c1-17)" '{"status":"echo",' "... and answers"
is "$(ls "$API"/put/ | wc -l | tr -d ' ')" 12 "no image was stored twice by the API"
wait_for 30 "the relay spool drains" spool_empty relay
is "$(count_files "$GATEWAY_DATA_DIR/spool/relay/failed")" 0 "nothing failed"
ok "no patient data in the logs" sh -c "! grep -Eq 'TEST\\^ONE|9990001112|19700101' '$T/gatewayd.log'"

stop_gateway
done_testing
