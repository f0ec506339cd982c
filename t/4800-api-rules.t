#!/bin/sh
# 4800-api-rules: the Manage API as production answers it
# (../shared/relay/PRODUCTION.md §4), from t/relay/manage-api, and what
# relaysend makes of each answer.
#  0. The test server answers as production: 201 (a repeat too), 401,
#     403, 422, 400, 500.
#  1. A 403 action: the study's images are REFUSED at the first 403, with
#     no more PUTs and no failure report; one alert for the study (a log
#     line at error, a gateway.alert event, status, the health report);
#     gatewayctl waiting lists it; resend and assign send it again.
#  2. A series of 500s: tried MAX_UPLOAD_RETRIES times, spread over at
#     least RELAY_500_SPREAD_SECONDS, then FAILED with the reason,
#     reported once, one alert.
#  3. A mixed-view series and an image without ViewPosition fail here,
#     with the reason and no PUT; their failure reports wait until the
#     study's good image is uploaded.
#  4. A 401 makes a new token and the PUT goes again at once.
#  5. Images that are not MG (a CT, an MR) are LOCAL: no upload job, no
#     event, freed by age only; a job for one queued before is dropped.
#  6. By default a 500 is tried again no sooner than 5 minutes later.
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
$PY -c 'import websockets, pydicom' 2>/dev/null || skip_all "python3-websockets or python3-pydicom not installed"
command -v openssl >/dev/null || skip_all "openssl not installed"
command -v curl >/dev/null || skip_all "curl not installed"
command -v dcmdump >/dev/null || skip_all "dcmtk not installed"

relay_start events
api_start
cloud_listen events
export GATEWAY_DATA_DIR=$T/var GATEWAY_ENV_FILE=/dev/null
export AZURE_RELAY_EVENTS_HYBRID_CONNECTION=events CLOUD_API_TOKEN=sesame
export RELAY_RETRY_MAX_SECONDS=1
unset CLOUD_API_TOKEN_COMMAND RELAY_NO_MATCH RELAY_JOBS RELAY_UPLOAD_MODE \
	RELAY_UPLOAD_CLASSES RELAY_UPLOAD_POLICY MAX_UPLOAD_RETRIES \
	RELAY_500_SPREAD_SECONDS AZURE_RELAY_HYBRID_CONNECTION
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
SPOOL=$GATEWAY_DATA_DIR/spool/relay
mkdir -p "$GATEWAY_DATA_DIR/incoming"
TEST_FILES=/usr/lib/python3/dist-packages/pydicom/data/test_files

count() {	# count ACCESSION STATUS
	sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE accession_number = '$1' AND upload_status = '$2'"
}
value() {	# value ACCESSION COLUMN: the column of its instances, one a line
	sql "$PACS_DB" "SELECT $2 FROM stored_instances WHERE accession_number = '$1' ORDER BY 1"
}
study_of() { sql "$PACS_DB" "SELECT DISTINCT study_instance_uid FROM stored_instances WHERE accession_number = '$1'"; }
send() { LOG_LEVEL=debug relaysend --once 2>>"$T/send.log"; }	# each retry's wait: debug
drain() { wait_until "$1" send; }	# drain SECONDS: until nothing of ours is queued
answered() {	# answered ACTION_ID STATUS: PUTs for the action answered so
	grep '"method": "PUT"' "$API/requests.log" 2>/dev/null |
		grep -F "\"path\": \"/api/v1/dicom/$1\"" | grep -c "\"status\": $2,"
}
puts() { ls "$API/put" 2>/dev/null | grep -c -- "-$1\.dcm\$"; }	# puts ACTION_ID
reports() { ls "$API/failure" 2>/dev/null | grep -c -- "-$1\.json\$"; }
queued() { echo $(( $(count_files "$SPOOL/new") + $(count_files "$SPOOL/cur") )); }
has() { case "$1" in *"$2"*) return 0;; esac; return 1; }	# has TEXT PART
alerts() {	# alerts ALERT STUDY_UID: gateway.alert events the cloud got
	$PY - "$EVENTS" "$1" "$2" <<'EOF'
import glob, json, sys
d, alert, study = sys.argv[1:4]
n = 0
for f in glob.glob(d + "/*.json"):
    m = json.load(open(f))
    data = m.get("data", {})
    if (m.get("event_type") == "gateway.alert" and data.get("alert") == alert
            and data.get("study_instance_uid") == study and data.get("state") == "raised"):
        n += 1
print(n)
EOF
}
alerts_are() { [ "$(alerts "$2" "$3")" = "$1" ]; }	# alerts_are N ALERT STUDY
# c ARGS: curl against the test server, printing the HTTP status
c() { curl -s --cacert "$RELAY_CA" -o "$T/reply" -w '%{http_code}' "$@"; }
put() {	# put ACTION_ID FILE [FIELD]: PUT FILE as the Manage API's client does
	c -X PUT -H 'Authorization: Bearer sesame' -F "${3:-file}=@$2" \
		"https://127.0.0.1:$APORT/api/v1/dicom/$1"
}
# set_series FILE FROM: FILE joins FROM's series
set_series() {
	$PY -c 'import sys, pydicom
a = pydicom.dcmread(sys.argv[1]); b = pydicom.dcmread(sys.argv[2])
a.SeriesInstanceUID = b.SeriesInstanceUID
a.save_as(sys.argv[1])' "$1" "$2"
}
# ingest_file FILE...: received and indexed, in this order
ingest_file() {
	for f in "$@"; do
		cp "$f" "$GATEWAY_DATA_DIR/incoming/" && storescp-hook --sweep 2>/dev/null &&
			dcmindex --once 2>>"$T/index.log" || return 1
	done
}

# 0. The test server answers as production.
"$GW_ROOT/t/tools/gen-mammo" "$T/raw" 2 --size 32x24 --studies 1 --seed 80 >/dev/null
cp "$T/raw/mg00001.dcm" "$T/raw/mixed.dcm"
set_series "$T/raw/mixed.dcm" "$T/raw/mg00000.dcm"
head -c 3000 /dev/urandom >"$T/raw/noise.dcm"
is "$(put act-80 "$T/raw/mg00000.dcm")" 201 "API: an image is taken (201)"
id=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["instance_id"])' "$T/reply")
is "$(put act-80 "$T/raw/mg00000.dcm")" 201 "API: the same image again is 201 too"
is "$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["instance_id"])' "$T/reply")" "$id" \
	"... with the same instance_id"
is "$(put act-80 "$T/raw/mixed.dcm")" 500 "API: another view in the same series is 500"
is "$(put act-80 "$T/raw/noise.dcm")" 400 "API: a file that is not DICOM is 400"
is "$(put act-80 "$T/raw/mg00001.dcm" other)" 422 "API: no file part is 422"
is "$(c -X PUT -F "file=@$T/raw/mg00001.dcm" "https://127.0.0.1:$APORT/api/v1/dicom/act-80")" 401 \
	"API: no token is 401"
api_admin "/_action?id=act-80s&state=stale"
is "$(put act-80s "$T/raw/mg00001.dcm")" 403 "API: an action not created today is 403"
api_admin "/_action?id=act-80p&state=not_in_progress"
is "$(put act-80p "$T/raw/mg00001.dcm")" 500 "API: an appointment not in progress is 500"
api_admin "/_strict?on=1"
is "$(put act-80x "$T/raw/mg00001.dcm")" 403 "API, strict: an action it does not know is 403"
is "$(c -X PATCH -H 'Authorization: Bearer sesame' -d '{"error":"x"}' "https://127.0.0.1:$APORT/api/v1/dicom/act-80x/failure")" 404 \
	"API, strict: ... and its failure report 404"
api_admin "/_strict?on=0"
is "$(c -X PATCH -H 'Authorization: Bearer sesame' -d '{"error":"x"}' "https://127.0.0.1:$APORT/api/v1/dicom/act-80/failure")" 200 \
	"API: a failure report is 200"
is "$(put act-80 "$T/raw/mg00001.dcm")" 403 "API: ... after which the action's uploads are 403"

# 1. A 403 action.
item act-81 ACC081000
api_admin "/_action?id=act-81&state=stale"
ok "four images of an item the cloud no longer takes are ingested" ingest 81 4
S81=$(study_of ACC081000)
drain 20
is "$(count ACC081000 REFUSED)" 4 "403: all four images of the study are REFUSED"
is "$(answered act-81 403)" 1 "... after one PUT: no more PUTs once the API said 403"
is "$(reports act-81)" 0 "... and no failure report"
is "$(queued) $(count_files "$SPOOL/failed")" "0 0" "... nothing is left queued or parked"
ok "upload_error says why" has "$(value ACC081000 upload_error | head -n 1)" "403"
is "$(grep -c 'level=error prog=relaysend msg="the Manage API refuses a study.s uploads (403)' "$T/send.log")" 1 \
	"one error line for the study, not one per image"
ok "... naming the study" grep -q "msg=\"the Manage API refuses a study.*study_instance_uid=$S81" "$T/send.log"
wait_for 20 "the cloud gets one gateway.alert (upload_refused) about the study" alerts_are 1 upload_refused "$S81"
gatewayctl waiting >"$T/waiting.out" 2>>"$T/ctl.log"
ok "gatewayctl waiting lists the refused study" grep -q '^studies whose images the Manage API refused' "$T/waiting.out"
ok "... with its images and study" grep -Eq "ACC081000 +- +4 +$S81" "$T/waiting.out"
ok "... and why" grep -q 'HTTP 403' "$T/waiting.out"
ok "... and the totals" grep -qx '4 images in 1 study' "$T/waiting.out"
relaylisten --status >"$T/status.out" 2>&1
ok "status counts them" grep -q '^uploads: .*4 refused by the Manage API' "$T/status.out"
relaylisten --health >"$T/health.json" 2>/dev/null
ok "the health report names the problem" \
	grep -q 'uploads: 4 images of 1 study refused by the Manage API (403; gatewayctl waiting)' "$T/health.json"
gatewayctl studies >"$T/studies.out" 2>>"$T/ctl.log"
ok "gatewayctl studies says so" grep -q 'ACC081000 .*0/4 sent, 4 refused$' "$T/studies.out"
api_admin "/_action?id=act-81&state=sent"
ok "once the cloud takes the item again, gatewayctl resend" \
	sh -c 'gatewayctl resend ACC081000 >"$0/resend.out" 2>>"$0/ctl.log"' "$T"
ok "... queues the four" grep -qx '4 uploads queued again for ACC081000' "$T/resend.out"
ok "... and relaysend sends them" drain 20
is "$(count ACC081000 COMPLETE)" 4 "... COMPLETE"
relaylisten --health >"$T/health.json" 2>/dev/null
not_ok "... and the problem is gone" grep -q 'refused by the Manage API' "$T/health.json"

item act-82 ACC082000
api_admin "/_action?id=act-82&state=other_gateway"
ingest 82 2
drain 20
is "$(count ACC082000 REFUSED)" 2 "an item that is not this gateway's: REFUSED"
item act-83 ACC083000
ok "gatewayctl assign sends a refused study under another item" \
	sh -c 'gatewayctl assign ACC082000 ACC083000 >/dev/null 2>>"$0/ctl.log"' "$T"
ok "... relaysend sends it" drain 20
is "$(count ACC082000 COMPLETE) $(puts act-83)" "2 2" "... COMPLETE, under the other item's action_id"

# 2. A series of 500s.
item act-84 ACC084000
ingest 84 1
S84=$(study_of ACC084000)
api_fault "?status=500&count=3"
export MAX_UPLOAD_RETRIES=3 RELAY_500_SPREAD_SECONDS=2
ok "500s: relaysend gives the image up" drain 30
unset MAX_UPLOAD_RETRIES RELAY_500_SPREAD_SECONDS
is "$(answered act-84 500)" 3 "... after MAX_UPLOAD_RETRIES (3) PUTs answered 500"
is "$(count ACC084000 FAILED)" 1 "... FAILED"
ok "... upload_error says why" has "$(value ACC084000 upload_error)" "answered 500 3 times"
waits=$(grep 'msg="will retry".*accession_number=ACC084000.*HTTP 500' "$T/send.log" | sed -n 's/.*retry_in_ms=\([0-9]*\).*/\1/p')
is "$(echo "$waits" | wc -w | tr -d ' ')" 2 "... two retries after a 500"
short=0
for w in $waits; do [ "$w" -lt 1000 ] && short=1; done
is "$short" 0 "... each at least RELAY_500_SPREAD_SECONDS / (MAX_UPLOAD_RETRIES - 1) = 1 s later"
is "$(reports act-84)" 1 "the failure report is sent once"
ok "... with the reason" sh -c "grep -q 'answered 500 3 times' '$API'/failure/*-act-84.json"
is "$(count_files "$SPOOL/failed")" 2 "the job is parked in failed/ with its reason"
not_ok "... counting no 500s: --retry-failed gives it MAX_UPLOAD_RETRIES tries again" \
	sh -c "grep -q '^server_errors=' '$SPOOL'/failed/*"
wait_for 20 "the cloud gets one gateway.alert (upload_failed) about the study" alerts_are 1 upload_failed "$S84"
is "$(grep -c "level=error prog=relaysend msg=\"a study's image failed for good.*study_instance_uid=$S84" "$T/send.log")" 1 \
	"one error line for the study"
relaylisten --health >"$T/health.json" 2>/dev/null
ok "the health report has the failed job" grep -q '"1 failed job"' "$T/health.json"
rm -f "$SPOOL"/failed/*

# 3. What the cloud reads, checked before sending.
item act-86 ACC086000
"$GW_ROOT/t/tools/gen-mammo" "$T/mg86" 3 --size 64x48 --studies 1 --seed 86 >/dev/null
set_series "$T/mg86/mg00001.dcm" "$T/mg86/mg00000.dcm"	# L CC into R CC's series
$PY -c 'import sys, pydicom
d = pydicom.dcmread(sys.argv[1]); del d.ViewPosition; d.save_as(sys.argv[1])' "$T/mg86/mg00002.dcm"
ok "a study with a mixed-view series and an image without ViewPosition is ingested" \
	ingest_file "$T/mg86/mg00000.dcm" "$T/mg86/mg00001.dcm" "$T/mg86/mg00002.dcm"
drain 20
is "$(count ACC086000 COMPLETE) $(count ACC086000 FAILED)" "1 2" "the good image goes, the other two fail here"
is "$(answered act-86 201) $(answered act-86 500)" "1 0" "only the good image was PUT: no doomed request"
ok "the other view says it differs from the series' first image" \
	has "$(value ACC086000 upload_error)" "laterality and view L CC differ from the series' first image (R CC)"
ok "the image without ViewPosition says so" has "$(value ACC086000 upload_error)" "ViewPosition is missing"
is "$(reports act-86)" 2 "both are reported to the cloud"
last_put=$(ls "$API/put" | grep -- '-act-86\.dcm$' | cut -c1-6)
first_report=$(ls "$API/failure" | grep -- '-act-86\.json$' | head -n 1 | cut -c1-6)
ok "... after the good image was uploaded (a report blocks the action)" test "$first_report" -gt "$last_put"
is "$(sql "$PACS_DB" "SELECT max(upload_attempt_count) FROM stored_instances WHERE accession_number = 'ACC086000' AND upload_status = 'FAILED'")" 0 \
	"a check before sending is no upload attempt"
rm -f "$SPOOL"/failed/*

# 4. A 401: a new token, at once.
item act-87 ACC087000
ingest 87 1
cat >"$T/token.sh" <<'EOF'
n=$(cat "$0.calls" 2>/dev/null || echo 0)
echo $((n + 1)) >"$0.calls"
[ "$n" = 0 ] && echo wrong || echo sesame
EOF
env -u CLOUD_API_TOKEN CLOUD_API_TOKEN_COMMAND="sh $T/token.sh" relaysend --once 2>>"$T/send.log"
is "$?" 0 "a refused token: relaysend --once still sends the image"
is "$(count ACC087000 COMPLETE)" 1 "... COMPLETE"
is "$(answered act-87 401) $(answered act-87 201)" "1 1" "... a 401, then the PUT again with a new token"
is "$(cat "$T/token.sh.calls")" 2 "... the token command ran again"
ok "... and it says so" grep -q 'msg="the Manage API refused the token: making a new one"' "$T/send.log"

# 5. Images not for the cloud.
cp "$TEST_FILES/CT_small.dcm" "$T/ct.dcm"
CT=$(dcm_value "$T/ct.dcm" 0008,0018)
ingest_file "$T/ct.dcm"
is "$(sql "$PACS_DB" "SELECT upload_status FROM instances WHERE sop_instance_uid = '$CT'")" LOCAL \
	"a CT image is LOCAL (RELAY_UPLOAD_CLASSES=mammo, the default)"
ok "... dcmindex says the classes" grep -q 'msg=started .*upload_classes=mammo' "$T/index.log"
is "$(grep -l "sop_instance_uid=$CT" "$SPOOL"/new/* 2>/dev/null | wc -l | tr -d ' ')" 0 "... no upload job for it"
dcmthumb --once 2>>"$T/thumb.log"
is "$(sql "$PACS_DB" "SELECT thumbnail_status FROM instances WHERE sop_instance_uid = '$CT'")" GENERATED \
	"... it has its preview"
is "$(grep -l "sop_instance_uid=$CT" "$SPOOL"/new/* 2>/dev/null | wc -l | tr -d ' ')" 0 \
	"... but no study.image_received event: the cloud hears nothing of it"
rm -f "$SPOOL"/new/image-*	# the MG images' events: no preview test here
relaylisten --status >"$T/status.out" 2>&1
ok "status counts it" grep -q '^uploads: .*1 kept local (not for the cloud)' "$T/status.out"
cp "$TEST_FILES/MR_small.dcm" "$T/mr.dcm"
MR=$(dcm_value "$T/mr.dcm" 0008,0018)
RELAY_UPLOAD_CLASSES=all ingest_file "$T/mr.dcm"
is "$(sql "$PACS_DB" "SELECT upload_status FROM instances WHERE sop_instance_uid = '$MR'")" PENDING \
	"with RELAY_UPLOAD_CLASSES=all an MR image is queued"
is "$(grep -l "sop_instance_uid=$MR" "$SPOOL"/new/* 2>/dev/null | wc -l | tr -d ' ')" 1 "... with its upload job"
send
is "$(sql "$PACS_DB" "SELECT upload_status FROM instances WHERE sop_instance_uid = '$MR'")" LOCAL \
	"relaysend under RELAY_UPLOAD_CLASSES=mammo keeps it LOCAL"
is "$(queued)" 0 "... and drops its job"
ok "... saying so" grep -q 'msg="not for the cloud (RELAY_UPLOAD_CLASSES): kept LOCAL"' "$T/send.log"
old() { sql "$PACS_DB" "UPDATE instances SET received_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-$2 days') WHERE sop_instance_uid = '$1'"; }
purged() { dcmpurge --dry-run 2>/dev/null | grep '^would purge' | sed 's/.*sop_instance_uid=\([^ ]*\).*reason=\([a-z]*\).*/\1 \2/'; }
old "$CT" 40
old "$MR" 10
export PACS_RETENTION_DAYS=30 PACS_DISK_LOW_WATERMARK=0
is "$(purged)" "$CT age" "dcmpurge frees a LOCAL image past PACS_RETENTION_DAYS, and not a younger one"
free=$(df -Pk "$GATEWAY_DATA_DIR" | awk 'NR == 2 { printf "%d", 100 * $4 / $2 }')
if [ "$free" -lt 95 ]; then
	export PACS_DISK_LOW_WATERMARK=95
	ok "below the watermark dcmpurge frees confirmed images..." sh -c 'dcmpurge --dry-run 2>/dev/null | grep -q "reason=watermark"'
	not_ok "... never a young LOCAL one" sh -c "dcmpurge --dry-run 2>/dev/null | grep -q 'sop_instance_uid=$MR '"
else
	skip "the watermark: $free % free, above the highest watermark (95 %)"
	skip "the watermark: ... never a young LOCAL one"
fi
unset PACS_RETENTION_DAYS PACS_DISK_LOW_WATERMARK

# 6. By default a 500 comes back no sooner than 5 minutes later
# (MAX_UPLOAD_RETRIES=3 spread over at least 10 minutes).  Last: its job
# stays queued.
item act-88 ACC088000
ingest 88 1
api_fault "?status=500&count=1"
send
is "$(count ACC088000 WAITING)" 1 "a 500 with the defaults: the image WAITs"
wait=$(grep 'msg="will retry".*accession_number=ACC088000.*HTTP 500' "$T/send.log" | sed -n 's/.*retry_in_ms=\([0-9]*\).*/\1/p')
ok "... at least 300 s (${wait} ms)" test "${wait:-0}" -ge 300000

NAME=$(sql "$PACS_DB" "SELECT patient_name FROM patients WHERE patient_name LIKE '%^%' LIMIT 1")
ok "no patient name in the logs" sh -c "! grep -qF '$NAME' '$T/send.log' '$T/ctl.log' '$T/index.log'"
done_testing
