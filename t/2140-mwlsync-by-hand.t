#!/bin/sh
# The worklist by hand, for a site whose cloud link is down: mwlsync add
# makes a create_item from options (date and time in the site's local
# time), mwlsync import FILE.json applies a clinic list
# {"worklist_items": [create_item actions]} (the production gateway's
# PR #192 format); both go through apply's path and answer a line per
# item.  A file with anything unusable is refused whole, nothing written.
. "${0%/*}/lib.sh"
exec 2>>"$T/stderr.log"

export WORKLIST_DB_PATH=$T/worklist.db GATEWAY_DATA_DIR=$T/var
export GATEWAY_ENV_FILE=/dev/null WORKLIST_TIMEZONE=Europe/London
DB=$WORKLIST_DB_PATH
count() { sql "$DB" "SELECT count(*) FROM worklist_items"; }
row() { sql "$DB" "SELECT $2 FROM worklist_items WHERE accession_number = '$1'"; }

mwlsync add --accession ACCH1 --nhs-number 9990003331 --name 'HAND^ONE' \
    --date 2026-07-07 --time 08:30 >"$T/out" 2>"$T/add.err"
is "$?" 66 "add with no worklist.db refuses (EX_NOINPUT): it never starts an empty one"
ok "... saying where it looked" grep -q "no worklist.db at $DB" "$T/add.err"
echo '{}' | mwlsync apply >/dev/null 2>&1	# apply makes worklist.db

add() { mwlsync add "$@" 2>>"$T/mwlsync.log"; }
out=$(add --accession ACCH1 --nhs-number 9990003331 --name 'HAND^ONE' \
    --birth-date 1970-02-03 --date 2026-07-07 --time 08:30); rc=$?
is "$out" "$(printf 'ACCH1\tcreated')" "add answers the accession and created"
is "$rc" 0 "... and exits 0"
is "$(row ACCH1 "scheduled_date || ' ' || scheduled_time || ' ' || birth_date || ' ' || modality || ' ' || source_message_id || ' ' || status")" \
    "20260707 073000 19700203 MG manual-ACCH1 SCHEDULED" \
    "08:30 BST is stored as the cloud would send it (073000 UTC); MG; action id manual-ACCESSION"
out=$(add --accession ACCH1 --nhs-number 9990003331 --name 'HAND^ONE' \
    --birth-date 19700203 --date 20260707 --time 0830); rc=$?
is "$out" "$(printf 'ACCH1\tprocessed')" "the same item again (dates typed without dashes): processed"
is "$rc" 0 "... exit 0"
out=$(add --accession ACCH1 --nhs-number 9990003331 --name 'HAND^ONE' \
    --birth-date 19700203 --date 2026-07-07 --time 09:00); rc=$?
is "$out" "$(printf "ACCH1\terror\tWorklist item 'ACCH1' exists with different scheduled.time")" \
    "another time for a known accession number: an error naming the field"
is "$rc" 65 "... exit 65"
out=$(add --accession ACCH2 --nhs-number 9990003332 --name 'HAND^TWO' \
    --birth-date 1970-13-01 --date 2026-07-07 --time 09:00); rc=$?
is "$out" "$(printf "ACCH2\terror\tInvalid value: 'participant.birth_date' (a date is YYYYMMDD, a day of the calendar)")" \
    "a birth date in month 13 is refused, naming the field"
mwlsync add --accession ACCH3 --nhs-number 9990003333 --date 2026-07-07 \
    --time 09:00 >/dev/null 2>"$T/noname.err"
is "$?" 64 "add without --name is a usage error (EX_USAGE)"
ok "... saying which option it needs" grep -q 'add needs --name' "$T/noname.err"
out=$(add --accession ACCH4 --nhs-number 9990003334 --name 'HAND^FOUR' \
    --date 2026-07-07 --time 23:30 --utc --station-aet MAMMO3 \
    --action-id cloud-action-4 --modality MG --sex F --description 'Screening')
is "$out" "$(printf 'ACCH4\tcreated')" "add --utc with every option: created"
is "$(row ACCH4 "scheduled_date || ' ' || scheduled_time || ' ' || scheduled_station_aet || ' ' || source_message_id || ' ' || sex || ' ' || study_description")" \
    "20260707 233000 MAMMO3 cloud-action-4 F Screening" \
    "--utc stores the time as given; station, action id, sex and description too"
cloud='{"schema_version":1,"action_id":"cloud-h1","action_type":"worklist.create_item","parameters":{"worklist_item":{"accession_number":"ACCH1","participant":{"nhs_number":"9990003331","name":"HAND^ONE","birth_date":"19700203"},"scheduled":{"date":"20260707","time":"0730"},"procedure":{"modality":"MG"}}}}'
is "$(echo "$cloud" | mwlsync apply 2>>"$T/mwlsync.log")" \
    '{"status":"processed","action_id":"cloud-h1"}' \
    "the cloud's create_item of a hand-added appointment is processed (0730 is 073000)"
is "$(row ACCH1 source_message_id)" cloud-h1 \
    "... and the item takes the cloud's action id (images go under an id the cloud knows)"
echo "$cloud" | sed 's/cloud-h1/cloud-h2/' | mwlsync apply >/dev/null 2>>"$T/mwlsync.log"
is "$(row ACCH1 source_message_id)" cloud-h1 \
    "a later repeat under another id changes nothing: only a manual id is replaced"
mwlsync --name 'X^Y' export-wl "$T/wl" >/dev/null 2>&1
is "$?" 64 "an add option with another command is a usage error"

# import: a clinic list as Manage's create_item actions, with PR #192's
# source_reference.clinic_id; one without action_type.
clinic_item() {	# ACCESSION ACTION_ID NAME TIME [no-type]
	_type='"action_type":"worklist.create_item",'
	[ "${5:-}" = no-type ] && _type=
	printf '{"schema_version":1,"action_id":"%s",%s"timestamp":"2026-07-07T06:00:00+00:00","source_system":"manage-breast-screening","source_reference":{"appointment_id":"ap-%s","participant_id":"9990004441","clinic_id":"clinic-9"},"parameters":{"worklist_item":{"accession_number":"%s","participant":{"nhs_number":"9990004441","name":"%s","birth_date":"19600101","sex":"F"},"scheduled":{"date":"20260707","time":"%s"},"procedure":{"modality":"MG","study_description":"Screening Mammography"}}}}' \
	    "$2" "$_type" "$1" "$1" "$3" "$4"
}
{
	printf '{"clinic_id":"clinic-9","worklist_items":[\n'
	clinic_item ACCI1 act-i1 'LIST^ONE' 090000; printf ',\n'
	clinic_item ACCI2 act-i2 'LIST^TWO' 091500 no-type; printf ',\n'
	clinic_item ACCI3 act-i3 'LIST^THREE' 093000
	printf ']}\n'
} >"$T/clinic.json"
imp() { mwlsync import "$@" 2>>"$T/mwlsync.log"; }
out=$(imp "$T/clinic.json"); rc=$?
is "$out" "$(printf 'ACCI1\tcreated\nACCI2\tcreated\nACCI3\tcreated')" \
    "import answers a line per item: created"
is "$rc" 0 "... and exits 0"
is "$(row ACCI2 source_message_id)" act-i2 "an item is stored under its own action_id"
out=$(imp "$T/clinic.json"); rc=$?
is "$out" "$(printf 'ACCI1\tprocessed\nACCI2\tprocessed\nACCI3\tprocessed')" \
    "the same list again: processed, nothing doubled"
is "$rc" 0 "... exit 0"
{
	printf '{"worklist_items":[\n'
	clinic_item ACCI1 act-i1 'LIST^ONE' 090000; printf ',\n'
	clinic_item ACCI3 act-i9 'LIST^THREE' 100000; printf ',\n'
	clinic_item ACCI4 act-i4 'LIST^FOUR' 101500
	printf ']}\n'
} >"$T/clinic2.json"
out=$(imp "$T/clinic2.json"); rc=$?
is "$out" "$(printf "ACCI1\tprocessed\nACCI3\terror\tWorklist item 'ACCI3' exists with different scheduled.time\nACCI4\tcreated")" \
    "a list whose item conflicts with a stored one: the others are applied, the conflict said"
is "$rc" 65 "... and import exits 65"
is "$(row ACCI3 scheduled_time)" 093000 "the stored item is unchanged"

# Files refused whole: nothing written.
before=$(count)
printf '{"worklist_items":[{"action_id":' >"$T/broken.json"
mwlsync import "$T/broken.json" >/dev/null 2>"$T/broken.err"
is "$?" 65 "a file that is not JSON is refused (EX_DATAERR)"
ok "... saying where" grep -q 'invalid JSON.*line 1' "$T/broken.err"
echo '[{"action_id":"a"}]' >"$T/notlist.json"
mwlsync import "$T/notlist.json" >/dev/null 2>"$T/notlist.err"
is "$?" 65 "JSON without a worklist_items array is refused"
ok "... as not a clinic list" grep -q 'not a clinic list' "$T/notlist.err"
{
	printf '{"worklist_items":[\n'
	clinic_item ACCB1 act-b1 'BAD^ONE' 110000; printf ',\n'
	clinic_item ACCB2 act-b2 'BAD^TWO' 111500 | sed 's/"nhs_number":"9990004441",//'
	printf ',\n"not an item",\n'
	clinic_item ACCB3 act-b3 'BAD^THREE' 113000 | sed 's/worklist.create_item/worklist.update_status/'
	printf ',\n'
	clinic_item ACCB4 act-b4 'BAD^FOUR' 2500
	printf ']}\n'
} >"$T/bad.json"
out=$(mwlsync import "$T/bad.json" 2>"$T/bad.err"); rc=$?
is "$rc" 65 "a list with unusable items is refused (EX_DATAERR)"
is "$out" "" "... answering no item"
is "$(grep -v '^ts=' "$T/bad.err" | sed "s|$T/||")" "$(printf '%s\n' \
    "mwlsync: bad.json: item 2 (ACCB2): Missing key: 'participant.nhs_number'" \
    "mwlsync: bad.json: item 3: not a JSON object" \
    "mwlsync: bad.json: item 4: action_type must be worklist.create_item" \
    "mwlsync: bad.json: item 5 (ACCB4): Invalid value: 'scheduled.time' (a time is HHMMSS, HHMM or HH within a day, with an optional fraction)" \
    "mwlsync: bad.json: 4 of 5 items cannot be used; nothing imported")" \
    "... listing every problem, by item number and accession"
is "$(count)" "$before" "nothing of the refused files was written (not even the good item)"
mwlsync import "$T/no-such-file.json" >/dev/null 2>"$T/nofile.err"
is "$?" 66 "a missing file: EX_NOINPUT"
echo '{"worklist_items":[]}' >"$T/empty.json"
is "$(imp "$T/empty.json"; echo "rc=$?")" "rc=0" "an empty clinic list imports nothing and exits 0"

ok "no patient name, NHS number or birth date in the logs" \
    sh -c "! grep -q 'HAND^\|LIST^\|BAD^\|99900033\|99900044\|19700203\|19600101' '$T'/*.log '$T'/*.err"
ok "the log says what each import did" \
    grep -q 'msg=imported .*items=3 created=1 processed=1 errors=1' "$T/mwlsync.log"
done_testing
