#!/bin/sh
# 4600-images-request: full images on request (PROTOCOL.md §7) under
# gatewayd, with the relay emulator, the cloud's events listener and the
# Manage API test server.  With RELAY_UPLOAD_POLICY=on_request the events
# and previews go up at once and no image does; images.request through
# the relay then uploads exactly the instances asked for, high priority
# before normal; an unknown study is not_found, a purged one purged, a
# malformed request an error with a message, and the listener keeps
# serving.
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
$PY -c 'import websockets' 2>/dev/null || skip_all "python3-websockets not installed"
command -v curl >/dev/null || skip_all "curl not installed"
command -v storescu >/dev/null || skip_all "dcmtk not installed"

GATEWAY_DATA_DIR=$T/bad RELAY_UPLOAD_POLICY=sometimes dcmindex --once 2>"$T/policy.log"
is "$?" 78 "dcmindex refuses an unknown RELAY_UPLOAD_POLICY (EX_CONFIG)"
ok "... naming it and its choices" grep -q 'RELAY_UPLOAD_POLICY: .*sometimes.* is not one of: all, on_request' "$T/policy.log"

relay_start actions events
api_start
cloud_listen events

export AZURE_RELAY_HYBRID_CONNECTION=actions AZURE_RELAY_EVENTS_HYBRID_CONNECTION=events
export CLOUD_API_TOKEN=sesame RELAY_UPLOAD_POLICY=on_request
export RELAY_PROBE_SECONDS=30 RELAY_RETRY_MAX_SECONDS=5
start_gateway
wait_for 20 "gatewayd starts relaylisten, which registers" relay_live actions 1

# request ID PARAMETERS: an images.request action with these parameters
request() {
	printf '{"schema_version":1,"action_id":"%s","action_type":"images.request","timestamp":"2026-12-02T08:00:00Z","source_system":"manage-breast-screening","parameters":%s}' "$1" "$2"
}
ask() { relay_send actions "$(request "$1" "$2")"; }	# ask ID PARAMETERS: the reply
# field JSON KEY: a top-level field of a JSON reply
field() { printf '%s' "$1" | $PY -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("" if v is None else v)' "$2"; }
puts() { ls "$API/put" 2>/dev/null | wc -l | tr -d ' '; }	# files the API stored
puts_are() { [ "$(puts)" = "$1" ]; }
# put_uids: the SOP Instance UIDs the API stored, in the order it got them
put_uids() { for f in "$API"/put/*.dcm; do [ -f "$f" ] && dcm_value "$f" 0008,0018; done; }
# events_for ACCESSION: study.image_received events the cloud got for it
events_for() {
	$PY - "$EVENTS" "$1" <<'PYEOF'
import glob, json, sys
d, acc = sys.argv[1:3]
seen = set()
for f in glob.glob(d + "/*.json"):
    m = json.load(open(f))
    if m.get("message_type") == "study.image_received" and \
            m["parameters"]["study"]["accession_number"] == acc:
        seen.add(m["parameters"]["image"]["sop_instance_uid"])
print(len(seen))
PYEOF
}
events_are() { [ "$(events_for "$2")" = "$1" ]; }	# events_are N ACCESSION
uids_of() { sql "$PACS_DB" "SELECT sop_instance_uid FROM stored_instances WHERE accession_number = '$1' ORDER BY 1"; }
state() { sed -n "s/^$2=//p" "$GATEWAY_DATA_DIR/run/$1.state" 2>/dev/null; }
image_jobs() { grep -l '^kind=image$' "$GATEWAY_DATA_DIR"/spool/relay/new/* 2>/dev/null | wc -l | tr -d ' '; }

# 1. two studies arrive: events and previews go up, images do not
for n in 61 62; do
	is "$(relay_send actions "$(cloud_item act-$n ACC0${n}000)")" \
		"{\"status\":\"created\",\"action_id\":\"act-$n\"}" "worklist item act-$n is created"
done
"$GW_ROOT/t/tools/gen-mammo" "$T/mgA" 6 --size 64x48 --studies 1 --seed 61 >/dev/null
"$GW_ROOT/t/tools/gen-mammo" "$T/mgB" 2 --size 64x48 --studies 1 --seed 62 >/dev/null
ok "a modality stores study A (6 images) and study B (2)" \
	storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$T"/mgA/*.dcm "$T"/mgB/*.dcm
wait_for 60 "the cloud gets study.image_received for each image of A" events_are 6 ACC061000
wait_for 30 "... and of B" events_are 2 ACC062000
wait_for 30 "the relay spool drains" spool_empty relay
is "$(puts)" 0 "on_request: no image was uploaded"
is "$(image_jobs)" 0 "... and no image upload job is queued"
is "$(sql "$PACS_DB" "SELECT group_concat(DISTINCT upload_status) FROM instances")" PENDING \
	"... every instance is PENDING in pacs.db"
ok "dcmindex says its upload policy" grep -q 'upload_policy=on_request' "$T/gatewayd.log"

# 2. what the cloud cannot have
r=$(ask req-1 '{"study_instance_uid":"1.2.826.0.1.3680043.99.404"}')
is "$r" '{"status":"not_found","action_id":"req-1"}' "an unknown study: not_found"
r=$(ask req-2 '{"accession_number":"NOSUCH1"}')
is "$r" '{"status":"not_found","action_id":"req-2"}' "an unknown accession number: not_found"

bad() {	# bad TITLE PARAMETERS: answered error, with the action_id and a message
	_r=$(ask req-bad "$2")
	if [ "$(field "$_r" status)" = error ] && [ "$(field "$_r" action_id)" = req-bad ] &&
	    [ -n "$(field "$_r" message)" ]; then
		pass "$1"
	else
		fail "$1"
		diag "reply: $_r"
	fi
}
bad "no key: error with a message" '{"priority":"high"}'
bad "two keys: error" '{"study_instance_uid":"1.2.3","accession_number":"ACC061000"}'
bad "a wrong type: error" '{"study_instance_uid":["1.2.3"]}'
bad "an empty list: error" '{"sop_instance_uids":[]}'
bad "a bad priority: error" '{"accession_number":"ACC061000","priority":"now"}'
bad "parameters not an object: error" '"ACC061000"'
is "$(relay_send actions '{"action_id":"e1","action_type":"echo"}' | cut -c1-17)" '{"status":"echo",' \
	"the listener keeps serving"
is "$(puts)$(image_jobs)" 00 "... and nothing was queued or uploaded"

# 3. asked for: A normal, then one image of B high, while relaysend is
#    held, so both wait together; B's goes first, then A's, and nothing else
STUDY_A=$(sql "$PACS_DB" "SELECT DISTINCT study_instance_uid FROM stored_instances WHERE accession_number = 'ACC061000'")
B_FIRST=$(uids_of ACC062000 | head -n 1)
B_OTHER=$(uids_of ACC062000 | tail -n 1)
SEND_PID=$(state relaysend pid)
ok "relaysend runs under gatewayd" kill -0 "$SEND_PID"
kill -STOP "$SEND_PID"
r=$(ask req-3 "{\"study_instance_uid\":\"$STUDY_A\"}")
is "$r" '{"status":"queued","action_id":"req-3","count":6}' "study A, normal priority: queued, count 6"
r=$(ask req-4 "{\"sop_instance_uids\":[\"$B_FIRST\"],\"priority\":\"high\"}")
is "$r" '{"status":"queued","action_id":"req-4","count":1}' "one image of B, high: queued, count 1"
is "$(image_jobs)" 7 "the 7 jobs are in the relay spool before the replies said queued"
kill -CONT "$SEND_PID"
wait_for 60 "the Manage API gets 7 images" puts_are 7
is "$(put_uids | head -n 1)" "$B_FIRST" "the high-priority image went first"
is "$(put_uids | sed 1d | sort | tr '\n' ' ')" "$(uids_of ACC061000 | tr '\n' ' ')" \
	"... then exactly study A's six"
ok "B's other image was not uploaded" sh -c "! (cd '$API/put' && for f in *.dcm; do dcmdump -q +P 0008,0018 \"\$f\"; done) | grep -q '$B_OTHER'"
wait_for 30 "the relay spool drains" spool_empty relay
is "$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE upload_status = 'COMPLETE'")" 7 \
	"pacs.db: the 7 are COMPLETE"
ok "relaysend logs them as requested" grep -q 'msg=uploaded.*priority=high requested=1' "$T/gatewayd.log"

# 4. asked again: an uploaded image is sent again; a purged study is purged
r=$(ask req-5 "{\"accession_number\":\"ACC062000\",\"priority\":\"high\"}")
is "$r" '{"status":"queued","action_id":"req-5","count":2}' "B by accession number: both queued, one uploaded before"
wait_for 60 "... and both are uploaded (9 in all)" puts_are 9
sql "$PACS_DB" "UPDATE instances SET purged_at = '2026-12-02T09:00:00.000Z' WHERE sop_instance_uid IN (SELECT sop_instance_uid FROM stored_instances WHERE accession_number = 'ACC062000')"
r=$(ask req-6 '{"accession_number":"ACC062000"}')
is "$r" '{"status":"purged","action_id":"req-6","count":2}' "B once purged: purged, with the count"
sql "$PACS_DB" "UPDATE instances SET purged_at = '2026-12-02T09:00:00.000Z' WHERE sop_instance_uid = '$B_FIRST' OR sop_instance_uid IN (SELECT sop_instance_uid FROM stored_instances WHERE study_instance_uid = '$STUDY_A' LIMIT 2)"
r=$(ask req-7 "{\"sop_instance_uids\":[\"$B_OTHER\",$(uids_of ACC061000 | sed 's/.*/"&"/' | paste -sd,)]}")
is "$r" '{"status":"queued","action_id":"req-7","count":4}' "a list partly purged: the 4 held are queued"
wait_for 60 "... and uploaded (13 in all)" puts_are 13
wait_for 30 "the relay spool drains" spool_empty relay
is "$(count_files "$GATEWAY_DATA_DIR/spool/relay/failed")" 0 "nothing failed"
stop_gateway
ok "no patient data in the logs" sh -c "! grep -Eq 'TEST\\^ONE|9990001112|19700101' '$T/gatewayd.log'"
ok "no sanitizer report in the logs" sh -c "! grep -Eq 'AddressSanitizer|runtime error:' '$T/gatewayd.log'"

done_testing
