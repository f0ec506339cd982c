#!/bin/sh
# 4300-relaysend-events: relaysend sends study.image_received (dcmthumb's
# jobs) and mpps.status_update (mwlscp's outbox) as a WebSocket sender
# through t/relay-emulator to t/relay/cloudsim's events listener: the
# fields of PROTOCOL.md §4 from pacs.db and worklist.db, a preview that
# decodes at its stated size, MPPS events unchanged; with no listener the
# jobs wait (their message_id kept) and go once it comes; an event over
# 1 MiB goes without its thumbnail (or is parked when still too big);
# "action_not_found" parks; a bearer token from AZURE_RELAY_TOKEN_COMMAND
# works; a wrong key is a 401 that is logged and waits.
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
$PY -c 'import websockets' 2>/dev/null || skip_all "python3-websockets not installed"
command -v openssl >/dev/null || skip_all "openssl not installed"
command -v curl >/dev/null || skip_all "curl not installed"
/usr/bin/python3 -c 'import pydicom' 2>/dev/null || skip_all "no pydicom"

relay_start events
SIM=$RELAY_SIM NS=$RELAY_NS KEY=$RELAY_KEY CA=$RELAY_CA
CPORT=$RELAY_CPORT ADMIN=$RELAY_ADMIN

export GATEWAY_DATA_DIR=$T/var
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
SPOOL=$GATEWAY_DATA_DIR/spool/relay
EV=$T/events
mkdir -p "$GATEWAY_DATA_DIR/incoming" "$EV"
export AZURE_RELAY_EVENTS_HYBRID_CONNECTION=events
export RELAY_RETRY_MAX_SECONDS=1
unset CLOUD_API_ENDPOINT CLOUD_API_TOKEN CLOUD_API_TOKEN_COMMAND \
	AZURE_RELAY_TOKEN_COMMAND RELAY_NO_MATCH RELAY_JOBS

live() {	# live N: N listeners on the events hybrid connection
	curl -sf "$ADMIN/status" | $PY -c 'import json,sys; sys.exit(json.load(sys.stdin)["live"].get("events",0)!=int(sys.argv[1]))' "$1"
}
listener() {	# start the cloud's events listener
	bg listener $PY "$SIM" listen --ca "$CA" \
		--url "wss://127.0.0.1:$CPORT/\$hc/events?sb-hc-action=listen&sb-hc-id=cloud" \
		--token "$($PY "$SIM" token --ns $NS --hc events --key-name RootManageSharedAccessKey --key "$KEY")" \
		--log "$T/cloud.txt" --mode events --dir "$EV" --reply-file "$T/reply"
	LISTENER=$BG_PID
}
ingest_previews() {	# ingest_previews SEED COUNT: ingest, with previews
	ingest "$1" "$2" 96x64 && dcmthumb --once 2>>"$T/thumb.log"
}
send() { relaysend --once 2>>"$T/send.log"; }
drain() { wait_until "$1" send; }	# drain SECONDS: until nothing of ours is queued
events() { count_files "$EV"; }
jobs_of() {	# jobs_of KIND DIR: job files of that kind in new/, cur/ or failed/
	grep -l "^kind=$1\$" "$SPOOL/$2"/* 2>/dev/null | wc -l | tr -d ' '
}
newest() { ls "$EV"/*.json | tail -n 1; }
has() { case "$1" in *"$2"*) return 0;; esac; return 1; }

# check_image EVENT ACTION_ID ACCESSION: the §4 message against pacs.db
check_image() {
	$PY - "$1" "$2" "$3" "$PACS_DB" <<'EOF'
import base64, json, re, sqlite3, struct, sys
ev = json.load(open(sys.argv[1]))
action, acc, db = sys.argv[2], sys.argv[3], sqlite3.connect(sys.argv[4])
def want(cond, what):
    if not cond:
        sys.exit("wrong: " + what)
want(ev["schema_version"] == 1 and ev["message_type"] == "study.image_received", "type")
want(ev["source_system"] == "gateway-pacs", "source_system")
want(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", ev["message_id"]), "message_id")
want(ev["source_reference"] == {"action_id": action}, "action_id")
want(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", ev["timestamp"]), "timestamp")
p = ev["parameters"]
img = p["image"]
row = db.execute("""SELECT patient_id, patient_name, study_instance_uid,
    series_instance_uid, accession_number, modality, study_date, study_time,
    series_number, instance_number, rows, columns, view_position, laterality,
    kvp, received_at FROM stored_instances WHERE sop_instance_uid = ?""",
    (img["sop_instance_uid"],)).fetchone()
size = db.execute("""SELECT thumbnail_width, thumbnail_height FROM instances
    WHERE sop_instance_uid = ?""", (img["sop_instance_uid"],)).fetchone()
want(row is not None, "sop_instance_uid is one of ours")
want(p["participant"] == {"nhs_number": row[0], "patient_name": row[1]}, "participant")
st, se = p["study"], p["series"]
want(st["accession_number"] == acc == row[4], "accession_number")
want(st["study_instance_uid"] == row[2] and se["series_instance_uid"] == row[3], "uids")
want((st["modality"], st["study_date"], st["study_time"]) == (row[5], row[6], row[7]), "study fields")
want(set(st) == {"accession_number", "study_instance_uid", "modality", "study_date", "study_time", "study_description"}, "study keys")
want(set(se) == {"series_instance_uid", "series_number", "series_description"} and se["series_number"] == row[8], "series")
want(img["instance_number"] == row[9], "instance_number")
want(img["dimensions"] == {"rows": row[10], "columns": row[11]}, "dimensions")
want(img["acquisition"] == {"view_position": row[12], "laterality": row[13]}, "acquisition")
want(set(img["dose"]) == {"organ_dose", "entrance_dose_in_mgy", "kvp", "exposure_in_uas", "anode_target_material", "filter_material", "filter_thickness"}, "dose keys")
want(img["dose"]["kvp"] == row[14], "kvp")
want(img["received_at"] == row[15], "received_at")
t = img["thumbnail"]
want(t is not None and t["format"] == "png", "thumbnail present as png")
data = base64.b64decode(t["data"], validate=True)
want(data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "thumbnail decodes as PNG")
w, h = struct.unpack(">II", data[16:24])
want((w, h) == (t["width"], t["height"]) == size, "thumbnail size %dx%d" % (w, h))
EOF
}

ok "--help names --jobs" sh -c 'relaysend --help | grep -q -- --jobs'

# 1. previews of two images of one worklist item; no listener yet
item act-51 ACC051000
ok "two images are ingested and previewed" ingest_previews 51 2
is "$(jobs_of study.image_received new)" 2 "two study.image_received jobs are queued"
not_ok "without a listener relaysend --once leaves work (exit 75)" send
is "$(jobs_of study.image_received new)" 2 "the jobs wait in new/"
ok "the log says the handshake got 404 (no listener)" grep -q 'handshake HTTP 404' "$T/send.log"
ok "the log says events go over the relay, images are off" sh -c \
	"grep -q 'msg=\"events go over the relay\"' '$T/send.log' && grep -q 'image uploads are off' '$T/send.log'"
ok "each job keeps the message_id it was first built with" sh -c \
	"[ \$(grep -l '^message_id=' '$SPOOL'/new/image-* | wc -l) = 2 ]"
ids_before=$(grep -h '^message_id=' "$SPOOL"/new/image-* | cut -d= -f2 | sort)
is "$(jobs_of image new)" 0 "no kind=image job while uploads are off ..."
is "$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE upload_status = 'HELD'")" 2 \
	"... the images are HELD"

# 2. the listener comes: the follower delivers
bg follower relaysend
FOLLOWER=$BG_PID
wait_for 10 "the follower retries against no listener" sh -c "grep -q 'handshake HTTP 404' '$T/follower.log'"
listener
wait_for 10 "the events listener is registered" live 1
wait_for 20 "both events arrive once the listener is there" sh -c "[ \$(ls '$EV' | wc -l) -ge 2 ]"
wait_for 10 "their jobs are finished" sh -c "[ \$(grep -l '^kind=study.image_received' '$SPOOL'/new/* '$SPOOL'/cur/* 2>/dev/null | wc -l) = 0 ]"
for f in "$EV"/*.json; do
	ok "event ${f##*/} carries the item's action_id, pacs.db's fields and its PNG preview" check_image "$f" act-51 ACC051000
done
is "$($PY -c 'import json,sys; print("\n".join(sorted(json.load(open(f))["message_id"] for f in sys.argv[1:])))' "$EV"/*.json)" \
	"$ids_before" "the delivered message_ids are the ones kept in the jobs"
is "$(grep -c '^reply {"status": "created"}' "$T/cloud.txt")" 2 "the cloud answered created to each"
ok "delivery was logged" grep -q 'msg="event delivered".*status=created' "$T/follower.log"
kill -TERM "$FOLLOWER"
wait "$FOLLOWER"
is "$?" 0 "SIGTERM stops the follower with status 0"

# 3. MPPS events go unchanged
if command -v node >/dev/null 2>&1 && [ -d "$GW_ROOT/node_modules/dcmjs-dimse" ]; then
	item act-55 ACC055000
	STUDY=$(sql "$GATEWAY_DATA_DIR/worklist.db" "select study_instance_uid from worklist_items where accession_number='ACC055000'")
	bg mwlscp mwlscp --bind 127.0.0.1
	wait_for 20 "mwlscp listens" port_open "$WORKLIST_PORT"
	mpps() { (cd "$GW_ROOT" && node -r ./t/peers/nodelay.js t/peers/mpps.js "$WORKLIST_PORT" "$@") 2>>"$T/mpps.err" | sed -n 's/^status=//p'; }
	is "$(mpps create 1.2.826.0.1.3680043.9.7.55 ACC055000 "$STUDY")" 0x0000 "MPPS N-CREATE IN PROGRESS"
	is "$(mpps set 1.2.826.0.1.3680043.9.7.55 COMPLETED)" 0x0000 "MPPS N-SET COMPLETED"
	is "$(jobs_of mpps.status_update new)" 2 "two mpps.status_update jobs are queued"
	grep -h '^event=' "$SPOOL"/new/mpps-* | cut -d= -f2- | sort >"$T/mpps.want"
	n0=$(events)
	ok "relaysend --once sends them" send
	is "$(( $(events) - n0 ))" 2 "two more events arrived"
	ls "$EV"/*.json | tail -n 2 | while read -r f; do cat "$f"; echo; done | sort >"$T/mpps.got"
	ok "each MPPS event arrived byte for byte as mwlscp wrote it" cmp "$T/mpps.want" "$T/mpps.got"
	ok "IN PROGRESS and COMPLETED, with the item's action_id" sh -c \
		"grep -q '\"status\":\"IN PROGRESS\"' '$T/mpps.got' && grep -q '\"status\":\"COMPLETED\"' '$T/mpps.got' && [ \$(grep -c '\"action_id\":\"act-55\"' '$T/mpps.got') = 2 ]"
	is "$(jobs_of mpps.status_update new)" 0 "and their jobs are done"
else
	skip "MPPS events: node or dcmjs-dimse not installed"
fi

# 3b. gateway.alert events (gatewayctl alerts) go as written, like MPPS
mkdir -p "$GATEWAY_DATA_DIR/quarantine" "$GATEWAY_DATA_DIR/run"
echo "not DICOM" >"$GATEWAY_DATA_DIR/quarantine/20261202T000000-bad.dcm"
ok "gatewayctl alerts queues an alert for the quarantined file" gatewayctl alerts
is "$(grep -l '^alert=quarantine$' "$SPOOL"/new/* 2>/dev/null | wc -l | tr -d ' ')" 1 \
	"one gateway.alert job for the quarantine"
grep -h '^event=' $(grep -l '^alert=quarantine$' "$SPOOL"/new/*) | cut -d= -f2- >"$T/alert.want"
n0=$(events)
ok "relaysend --once sends the alerts" send
ok "the quarantine alert arrived byte for byte" sh -c "
	for f in \$(ls '$EV'/*.json | tail -n \$(( \$(ls '$EV' | wc -l) - $n0 ))); do
		{ cat \"\$f\"; echo; } | cmp -s - '$T/alert.want' && exit 0
	done; exit 1"
is "$(jobs_of gateway.alert new)" 0 "and every alert job is done"
rm -f "$GATEWAY_DATA_DIR/quarantine/20261202T000000-bad.dcm"

# 4. an event over 1 MiB goes without its thumbnail
item act-52 ACC052000
ingest_previews 52 1
thumb=$(grep -h '^thumbnail=' "$SPOOL"/new/image-* | head -n 1 | cut -d= -f2-)
head -c 900000 /dev/urandom >"$thumb"
n0=$(events)
ok "relaysend --once sends the oversized event" send
is "$(( $(events) - n0 ))" 1 "one event arrived"
is "$($PY -c 'import json,sys; e=json.load(open(sys.argv[1])); print(e["parameters"]["image"]["thumbnail"], e["parameters"]["study"]["accession_number"])' "$(newest)")" \
	"None ACC052000" "it was sent with \"thumbnail\": null"
ok "a warning gave its size" grep -q 'msg="event over 1 MiB: its thumbnail is dropped".*bytes=1[0-9]\{6\} limit=1048576' "$T/send.log"
ok "the listener never saw a message too big" sh -c "! grep -q '^too-big' '$T/cloud.txt'"

# 4b. still too big without the thumbnail: parked with the reason
item act-54 ACC054000
ingest_previews 54 1
sql "$PACS_DB" "UPDATE studies SET study_description = printf('%.*c', 1100000, 'x') WHERE accession_number = 'ACC054000'"
n0=$(events)
send
is "$(jobs_of study.image_received failed)" 1 "an event too big even without its thumbnail is parked"
ok "the reason says so" grep -q "over the cloud's 1 MiB limit" "$SPOOL"/failed/*.reason
is "$(events)" "$n0" "nothing was sent"
rm -f "$SPOOL"/failed/*

# 5. the cloud answers action_not_found: parked with the reply
item act-53 ACC053000
ingest_previews 53 1
echo '{"status":"action_not_found"}' >"$T/reply"
send
is "$(jobs_of study.image_received failed)" 1 "an action_not_found reply parks the job in failed/"
ok "the reason is the reply" grep -q 'action_not_found' "$SPOOL"/failed/*.reason
rm -f "$T/reply"
ok "relaysend --retry-failed" relaysend --retry-failed
ok "then it is delivered" drain 10
is "$(tail -n 1 "$T/cloud.txt")" 'reply {"status": "already_exists"}' \
	"with the same message_id (the cloud says already_exists)"

# 6. an event without a worklist item waits (or is reported)
ingest_previews 56 1
not_ok "an event without a worklist item waits (exit 75)" send
ok "its job says why" grep -q 'no worklist item' "$SPOOL"/new/image-*
parked() { RELAY_NO_MATCH=report relaysend --once 2>>"$T/send.log"; [ "$(jobs_of study.image_received failed)" = 1 ]; }
ok "with RELAY_NO_MATCH=report it is parked (once due again)" wait_until 10 parked
item act-56 ACC056000
relaysend --retry-failed 2>>"$T/send.log"
ok "once the item exists and after --retry-failed it is delivered" drain 10
is "$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["source_reference"]["action_id"])' "$(newest)")" \
	act-56 "with the new item's action_id"

# 6b. transient trouble: a 500 handshake, an "error" reply, no reply in 10 s
item act-59 ACC059000
ingest_previews 59 1
curl -sf -X POST "$ADMIN/fault/refuse?seconds=60&mode=500&action=connect" >/dev/null
not_ok "while the relay refuses connects with 500 the event waits (exit 75)" send
ok "the log says HTTP 500" grep -q 'error="relay handshake HTTP 500' "$T/send.log"
curl -sf -X POST "$ADMIN/fault/clear" >/dev/null
echo '{"status":"error","message":"database busy"}' >"$T/reply"
not_ok_due() { wait_until 10 sh -c 'relaysend --once 2>>"$0"; grep -q "$1" "$0"' "$T/send.log" "$1"; }
ok "an \"error\" reply is retried, not parked" not_ok_due 'reply {\\"status\\":\\"error\\"'
is "$(jobs_of study.image_received new) $(jobs_of study.image_received failed)" "1 0" "the event still waits"
echo none >"$T/reply"
ok "no reply within 10 s is retried, not parked" not_ok_due 'relay: no reply within 10 s'
is "$(jobs_of study.image_received new) $(jobs_of study.image_received failed)" "1 0" "the event still waits"
rm -f "$T/reply"
ok "then it is delivered" drain 10
is "$(count_files "$SPOOL/failed")" 0 "nothing was parked"

# 7. a wrong key: 401, logged as a token problem, the job waits
item act-57 ACC057000
ingest_previews 57 1
AZURE_RELAY_SHARED_ACCESS_KEY=wrong relaysend --once 2>"$T/401.log"
is "$(jobs_of study.image_received new)" 1 "with a wrong key the event waits"
ok "the log says the relay refuses the token, with 401" grep -q 'msg="the relay refuses the token.*status=401' "$T/401.log"
is "$(count_files "$SPOOL/failed")" 0 "nothing is parked for a bad key"

# 8. a bearer token from AZURE_RELAY_TOKEN_COMMAND
cmd_fails() { AZURE_RELAY_SHARED_ACCESS_KEY= AZURE_RELAY_TOKEN_COMMAND=false relaysend --once 2>>"$T/cmd.log"; grep -q 'msg="no token for the relay".*AZURE_RELAY_TOKEN_COMMAND' "$T/cmd.log"; }
ok "a failing token command is reported (once the job is due)" wait_until 10 cmd_fails
is "$(jobs_of study.image_received new)" 1 "and the event waits"
n0=$(events)
ok "with the bearer token from the command it is delivered" wait_until 10 \
	env -u AZURE_RELAY_KEY_NAME -u AZURE_RELAY_SHARED_ACCESS_KEY \
	AZURE_RELAY_TOKEN_COMMAND='echo static-test-bearer' relaysend --once
is "$(( $(events) - n0 ))" 1 "one event arrived"

# 9. events off, uploads on: events stay queued, untouched
item act-58 ACC058000
ingest_previews 58 1
before=$(cat "$SPOOL"/new/image-*)
env -u AZURE_RELAY_NAMESPACE CLOUD_API_ENDPOINT=https://127.0.0.1:1/api CLOUD_API_TOKEN=t \
	relaysend --once 2>"$T/off.log"
ok "with events off the log says so" grep -q 'msg="events are off' "$T/off.log"
is "$(cat "$SPOOL"/new/image-*)" "$before" "the study.image_received job is untouched"
not_ok "with neither configured relaysend refuses to start" \
	env -u AZURE_RELAY_NAMESPACE relaysend --once

ok "the listener never got a message too big" sh -c "! grep -q '^too-big' '$T/cloud.txt'"
sql "$PACS_DB" "SELECT DISTINCT patient_name FROM stored_instances UNION SELECT DISTINCT patient_id FROM stored_instances" |
	grep -v '^$' >"$T/patients.txt"
ok "patient names and ids are in the events (by protocol)" sh -c \
	"[ \$(cat '$EV'/*.json | grep -oFf '$T/patients.txt' | sort -u | wc -l) -ge 2 ]"
ok "the logs name no patient" sh -c "! cat '$T'/*.log | grep -qFf '$T/patients.txt'"
done_testing
