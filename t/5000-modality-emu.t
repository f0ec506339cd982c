#!/bin/sh
# 5000-modality-emu: the modality emulator against the whole gateway
# (gatewayd: storescp + dcmindex + mwlscp).  One exam goes SCHEDULED ->
# IN PROGRESS -> COMPLETED with its four views indexed; --discontinue,
# a store that fails after N-CREATE, and the errors (gateway down, empty
# worklist, association rejected) each end as documented.
. "${0%/*}/lib.sh"
command -v storescp >/dev/null 2>&1 || skip_all "dcmtk not installed"
[ -x "$GW_BIN/modality-emu" ] || skip_all "modality-emu not built"

start_gateway || { echo "Bail out! the gateway did not start"; exit 1; }
wait_until 20 port_open "$WORKLIST_PORT" ||
	{ echo "Bail out! mwlscp did not start"; exit 1; }
WL=$GATEWAY_DATA_DIR/worklist.db
RELAY=$GATEWAY_DATA_DIR/spool/relay
TODAY=$(date +%Y%m%d)

item() {
	printf '{"schema_version":1,"action_id":"act-%s","action_type":"worklist.create_item","timestamp":"2026-11-27T10:00:00Z","source_system":"t","parameters":{"worklist_item":{"accession_number":"%s","participant":{"nhs_number":"99900%s","name":"M\\u00fcller^Zo\\u00eb","birth_date":"19700101","sex":"F"},"scheduled":{"date":"%s","time":"093000"},"procedure":{"modality":"MG","study_description":"Screening Mammography"}}}}\n' "$1" "$1" "$2" "$TODAY"
}

status_of() {
	sql "$WL" "SELECT status FROM worklist_items WHERE accession_number = '$1'"
}

indexed() {
	[ "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE accession_number = '$1'")" = "$2" ]
}

# emu NAME ARGS...: run modality-emu; stdout in $T/NAME.out, stderr in
# $T/NAME.err, exit status in $rc.
emu() {
	_n=$1; shift
	modality-emu "$@" >"$T/$_n.out" 2>"$T/$_n.err"
	rc=$?
}

{ item ACCEMU1 11111; item ACCEMU2 22222; item ACCEMU3 33333; } |
    mwlsync apply >"$T/apply.out" 2>"$T/apply.err"
is "$(grep -c created "$T/apply.out")" 3 "three worklist items for today loaded"
is "$(status_of ACCEMU1)" SCHEDULED "the first item is SCHEDULED"
STUDY1=$(sql "$WL" "SELECT study_instance_uid FROM worklist_items WHERE accession_number = 'ACCEMU1'")

emu list --list
is "$rc" 0 "--list exits 0"
is "$(grep -c '^accession=ACCEMU' "$T/list.out")" 3 "--list shows the three items"

emu exam1 --size small --accession ACCEMU1
is "$rc" 0 "an exam plays to the end (exit 0)"
ok "it reports four images and COMPLETED" \
    grep -q 'accession=ACCEMU1 .*images=4/4 mpps="COMPLETED"' "$T/exam1.out"
MPPS1=$(sed -n 's/.*mpps_sop_instance_uid=\([0-9.]*\).*/\1/p' "$T/exam1.out")
# No cloud is configured: the MPPS events wait in worklist.db's outbox.
sql "$WL" "SELECT event FROM outbox WHERE sent_at IS NULL" >"$T/outbox"
ok "an IN PROGRESS event for its MPPS waits in worklist.db's outbox" \
    grep -q "\"status\":\"IN PROGRESS\".*$MPPS1" "$T/outbox"
ok "... and a COMPLETED one" grep -q "\"status\":\"COMPLETED\".*$MPPS1" "$T/outbox"
is "$(count_files "$RELAY/new")" 0 "... none in the relay spool, with the cloud off"
is "$(status_of ACCEMU1)" COMPLETED "the worklist item is COMPLETED"
wait_for 30 "four instances indexed in pacs.db" indexed ACCEMU1 4
is "$(sql "$PACS_DB" "SELECT laterality || view_position FROM stored_instances WHERE accession_number = 'ACCEMU1' ORDER BY 1" | tr '\n' ' ')" \
    "LCC LMLO RCC RMLO " "one instance per view, laterality and view position right"
is "$(sql "$PACS_DB" "SELECT DISTINCT study_instance_uid FROM stored_instances WHERE accession_number = 'ACCEMU1'")" \
    "$STUDY1" "the instances carry the worklist's Study Instance UID"
is "$(sql "$PACS_DB" "SELECT DISTINCT patient_id FROM stored_instances WHERE accession_number = 'ACCEMU1'")" \
    9990011111 "the instances carry the worklist's patient"
is "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE accession_number = 'ACCEMU1' AND kvp > 0 AND organ_dose > 0 AND modality = 'MG'")" \
    4 "dose and exposure attributes are indexed"
if [ -d "$GATEWAY_DATA_DIR/thumbs" ]; then
	wait_for 30 "thumbnails generated" sh -c \
	    "[ \$(find '$GATEWAY_DATA_DIR/thumbs' -type f | wc -l) -ge 4 ]"
else
	skip "thumbnails generated (no thumbnail stage in gatewayd yet)"
fi

emu disc --size small --views RCC --accession ACCEMU2 --discontinue
is "$rc" 0 "--discontinue exits 0"
is "$(status_of ACCEMU2)" DISCONTINUED "--discontinue leaves the item DISCONTINUED"
ok "the discontinued exam stored its one image" \
    grep -q 'images=1/1 mpps="DISCONTINUED"' "$T/disc.out"

# --frames: Breast Tomosynthesis Images, accepted and indexed.
item ACCEMU5 55555 | mwlsync apply >/dev/null 2>&1
emu frames --size small --views RCC,LMLO --frames 5 --accession ACCEMU5
is "$rc" 0 "--frames 5 plays to the end (exit 0)"
is "$(status_of ACCEMU5)" COMPLETED "the --frames item is COMPLETED"
wait_for 30 "two tomosynthesis instances indexed" indexed ACCEMU5 2
is "$(sql "$PACS_DB" "SELECT DISTINCT i.sop_class_uid || ' ' || i.number_of_frames || ' ' || i.rows || 'x' || i.columns FROM instances i JOIN stored_instances s USING (sop_instance_uid) WHERE s.accession_number = 'ACCEMU5'")" \
    "1.2.840.10008.5.1.4.1.1.13.1.3 5 512x400" \
    "indexed as Breast Tomosynthesis Images of five frames"
is "$(sql "$PACS_DB" "SELECT group_concat(laterality || ' ' || view_position, ',') FROM (SELECT * FROM stored_instances WHERE accession_number = 'ACCEMU5' ORDER BY laterality)")" \
    "L MLO,R CC" "laterality and view come from the tomosynthesis frame anatomy and view code"

DEAD=$(free_port)
PACS_PORT=$DEAD emu nopacs --size small --accession ACCEMU3
is "$rc" 69 "storage refused after N-CREATE: EX_UNAVAILABLE"
ok "it says it cannot connect to the PACS" \
    grep -q 'cannot connect.*role=storage' "$T/nopacs.err"
is "$(status_of ACCEMU3)" DISCONTINUED \
    "no MPPS left IN PROGRESS: the item is DISCONTINUED"

# An item some other modality has started is offered with SPS Status
# STARTED, and the emulator leaves it alone.
item ACCEMU4 44444 | mwlsync apply >/dev/null 2>&1
printf '{"schema_version":1,"action_id":"act-s4","action_type":"worklist.update_status","parameters":{"worklist_item":{"accession_number":"ACCEMU4","status":"IN PROGRESS"}}}\n' |
    mwlsync apply >/dev/null 2>&1
findscu -W -aec SCREENING_MWL -k "(0008,0050)=ACCEMU4" -k "(0040,0100)[0].(0040,0020)" \
    127.0.0.1 "$WORKLIST_PORT" >"$T/sps.out" 2>&1
ok "an item in progress is offered with SPS Status STARTED" grep -q 'STARTED' "$T/sps.out"
emu empty --size small
is "$rc" 66 "nothing SCHEDULED left: exit 66 (EX_NOINPUT)"
is "$(status_of ACCEMU4)" "IN PROGRESS" "the started item was not played again"
ok "it says the worklist is empty" grep -q 'worklist empty' "$T/empty.err"
emu nosuch --size small --accession NOSUCH
is "$rc" 66 "an unknown accession: exit 66"

WORKLIST_AET=WRONG emu wrongaet --size small
is "$rc" 77 "wrong called AE: exit 77 (EX_NOPERM)"
ok "it says the association was rejected and why" \
    grep -q 'association rejected.*called AE title not recognised' \
    "$T/wrongaet.err"

WORKLIST_PORT=$DEAD PACS_PORT=$DEAD emu down --size small
is "$rc" 69 "gateway down: exit 69 (EX_UNAVAILABLE)"
ok "it says it cannot connect" grep -q 'cannot connect.*role=worklist' \
    "$T/down.err"

ok "no patient name or ID in the emulator's logs" \
    sh -c "! cat '$T'/*.err | grep -q 'ller\|9990011111\|9990022222\|9990033333\|9990044444\|9990055555\|19700101'"
ok "no sanitizer report from the emulator" \
    sh -c "! cat '$T'/*.err | grep -q 'Sanitizer\|runtime error'"
stop_gateway
ok "no sanitizer report in the gateway log" \
    sh -c "! grep -q 'Sanitizer\|runtime error' '$T/gatewayd.log'"
done_testing
