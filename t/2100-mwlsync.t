#!/bin/sh
# mwlsync: apply (create, processed, update_status, errors without partial
# writes), export-wl for wlmscpfs, backup, reset.
. "${0%/*}/lib.sh"
plan 22
exec 2>>"$T/stderr.log"

export WORKLIST_DB_PATH=$T/worklist.db GATEWAY_DATA_DIR=$T/var
DB=$WORKLIST_DB_PATH

# action ACTION_ID ACCESSION [NAME]: a worklist.create_item document.
action() {
	printf '{"schema_version":1,"action_id":"%s","action_type":"worklist.create_item","timestamp":"2026-11-27T09:00:00Z","source_system":"manage-breast-screening","parameters":{"worklist_item":{"accession_number":"%s","participant":{"nhs_number":"9990001112","name":"%s","birth_date":"19700101","sex":"F"},"scheduled":{"date":"%s","time":"093000"},"procedure":{"modality":"MG","study_description":"Screening Mammography"}}}}\n' \
	    "$1" "$2" "${3:-SMITH^JANE}" "${4:-20261127}"
}

dump() { sqlite3 "$DB" .dump; }

out=$(action a1 ACC1 | mwlsync apply)
is "$out" '{"status":"created","action_id":"a1"}' "create_item answers created"
is "$(sql "$DB" "SELECT patient_name, status FROM worklist_items")" \
    "SMITH^JANE|SCHEDULED" "the item is in worklist_items, SCHEDULED"
uid=$(sql "$DB" "SELECT study_instance_uid FROM worklist_items")
case $uid in 2.25.[0-9]*) pass "a 2.25. Study Instance UID is stored" ;; *) fail "a 2.25. Study Instance UID is stored ($uid)" ;; esac

before=$(dump)
is "$(action a1 ACC1 | mwlsync apply)" '{"status":"processed","action_id":"a1"}' \
    "the same action again answers processed"
is "$(action a9 ACC1 | mwlsync apply)" '{"status":"processed","action_id":"a9"}' \
    "a new action for the same item answers processed, with the new action_id"
is "$(action a1 ACC2 | mwlsync apply)" '{"status":"error","action_id":"a1","message":"Action '"'a1'"' created worklist item '"'ACC1'"' already"}' \
    "a known action_id with a new accession number is an error naming the item"
is "$(dump)" "$before" "repeats change nothing"

out=$(printf '{"action_id":"u1","action_type":"worklist.update_status","parameters":{"worklist_item":{"accession_number":"ACC1","status":"IN PROGRESS"}}}' | mwlsync apply)
is "$out" '{"accession_number":"ACC1","status":"updated"}' "update_status answers updated with the accession number"
is "$(sql "$DB" "SELECT status FROM worklist_items")" "IN PROGRESS" "the status changed"

before=$(dump)
out=$(printf '{"action_id":"x",' | mwlsync apply); rc=$?
case $out in '{"status":"error","message":"invalid JSON:'*) pass "malformed JSON answers an error" ;; *) fail "malformed JSON answers an error ($out)" ;; esac
is "$rc" 65 "and exits EX_DATAERR"
out=$(action a3 "" | mwlsync apply)
is "$out" '{"status":"error","action_id":"a3","message":"Empty value: '"'accession_number'"'"}' \
    "an empty accession number is named"
out=$(printf '{"action_id":"a4","action_type":"worklist.create_item","parameters":{"worklist_item":{"participant":{"nhs_number":"1","name":"A"},"scheduled":{"date":"20261127","time":"0930"}}}}' | mwlsync apply)
is "$out" '{"status":"error","action_id":"a4","message":"Missing key: '"'accession_number'"'"}' \
    "a missing accession number is named"
out=$(action a5 ACC12345678901234 | mwlsync apply)
is "$out" '{"status":"error","action_id":"a5","message":"Value too long: '"'accession_number'"' (at most 16 characters)"}' \
    "an accession number over 16 characters is refused"
long=$(printf 'A%.0s' $(seq 65))
out=$(action a6 ACC6 "$long^JANE" | mwlsync apply)
is "$out" '{"status":"error","action_id":"a6","message":"Value too long: '"'participant.name'"' (at most 64 characters)"}' \
    "a name component group over 64 characters is refused"
out=$(action a7 ACC7 SMITH 2026112 | mwlsync apply)
is "$out" '{"status":"error","action_id":"a7","message":"Invalid value: '"'scheduled.date'"' (a date is YYYYMMDD, a day of the calendar)"}' \
    "a 7-digit date is refused"
out=$(printf '{"action_id":"a8","action_type":"worklist.delete_everything"}' | mwlsync apply)
is "$out" '{"status":"error","message":"Unsupported action: worklist.delete_everything"}' \
    "an unknown action is unsupported"
is "$(dump)" "$before" "errors change nothing"

# export-wl: one complete file per offered item, readable by dcmdump.
{ action b1 ACC2 "MÜLLER^JOSÉ" 20261128; action b2 ACC3 "BROWN^AMY" 20261126; } | mwlsync apply >/dev/null
mwlsync export-wl "$T/wl/SCREENING_MWL" 2>/dev/null
is "$(ls "$T/wl/SCREENING_MWL" | tr '\n' ' ')" "ACC1.wl ACC2.wl ACC3.wl lockfile " \
    "export-wl writes one .wl per item and a lockfile"
warn=$(for f in "$T"/wl/SCREENING_MWL/*.wl; do dcmdump -q "$f" 2>&1 >/dev/null; done)
is "$warn" "" "dcmdump reads every file without a warning"

# backup, reset
mwlsync backup "$T/backup.db" 2>/dev/null
is "$(sqlite3 "$T/backup.db" "SELECT accession_number FROM worklist_items ORDER BY 1" | tr '\n' ' ')" \
    "ACC1 ACC2 ACC3 " "backup is a database with the same rows"
mwlsync reset --today 20261127 2>/dev/null
is "$(sql "$DB" "SELECT accession_number FROM worklist_items ORDER BY 1" | tr '\n' ' ')" \
    "ACC1 ACC2 " "reset removes the items scheduled before today"
