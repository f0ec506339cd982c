#!/bin/sh
# The replies the cloud counts (../shared/relay/PRODUCTION.md §2, §8): it
# records only created and processed as success.  A repeated identical
# create_item is processed; the same accession number with other content
# is an error naming what differs, the item unchanged; a missing field is
# an error naming it; update_status answers {accession_number, "updated"}
# and moves only as production does.
. "${0%/*}/lib.sh"
exec 2>>"$T/stderr.log"

export WORKLIST_DB_PATH=$T/worklist.db GATEWAY_DATA_DIR=$T/var
export GATEWAY_ENV_FILE=/dev/null
DB=$WORKLIST_DB_PATH
dump() { sqlite3 "$DB" "SELECT * FROM worklist_items ORDER BY 1"; }
apply() { mwlsync apply 2>>"$T/mwlsync.log"; }

# PRODUCTION.md §8's create_item, as Manage sends it.
V='{"schema_version":1,"action_id":"3f0c2a9e-5b1d-4e7a-9c2f-0a1b2c3d4e5f","action_type":"worklist.create_item","timestamp":"2026-07-07T08:01:02+00:00","source_system":"manage-breast-screening","source_reference":{"appointment_id":"7d9e0000-0000-4000-8000-000000000001","participant_id":"9990001112"},"parameters":{"worklist_item":{"accession_number":"ACC20260707A1B2","participant":{"nhs_number":"9990001112","name":"DOE^JANE","birth_date":"19700101","sex":"F"},"scheduled":{"date":"20260707","time":"083000"},"procedure":{"modality":"MG","study_description":"Screening Mammography"}}}}'
ID=3f0c2a9e-5b1d-4e7a-9c2f-0a1b2c3d4e5f
ACC=ACC20260707A1B2

is "$(echo "$V" | apply)" "{\"status\":\"created\",\"action_id\":\"$ID\"}" \
    "the first create_item of the test vector: created"
before=$(dump)
is "$(echo "$V" | apply)" "{\"status\":\"processed\",\"action_id\":\"$ID\"}" \
    "the same action again: processed, which the cloud counts as success"
is "$(echo "$V" | sed 's/"action_id":"3f0c[^"]*"/"action_id":"retry-2"/' | apply)" \
    '{"status":"processed","action_id":"retry-2"}' \
    "the same item under a new action: processed, with the new request's action_id"
out=$(echo "$V" | sed 's/"action_id":"3f0c[^"]*"/"action_id":"c3"/; s/DOE^JANE/DOE^JOAN/; s/"083000"/"093000"/' | apply); rc=$?
is "$out" "{\"status\":\"error\",\"action_id\":\"c3\",\"message\":\"Worklist item '$ACC' exists with different participant.name, scheduled.time\"}" \
    "the same accession number with other content: an error saying which fields differ"
is "$rc" 65 "... and mwlsync exits EX_DATAERR"
ok "... its values are not in the log" sh -c "! grep -q 'DOE^JOAN\|DOE^JANE' '$T/mwlsync.log'"
out=$(echo "$V" | sed 's/"action_id":"3f0c[^"]*"/"action_id":"c4"/; s/"sex":"F"/"sex":"M"/; s/"Screening Mammography"/"Diagnostic"/' | apply)
is "$out" "{\"status\":\"error\",\"action_id\":\"c4\",\"message\":\"Worklist item '$ACC' exists with different participant.sex, procedure.study_description\"}" \
    "other fields are named too"
out=$(echo "$V" | sed 's/"action_id":"3f0c[^"]*"/"action_id":"c5"/; s/,"birth_date":"19700101"//' | apply)
is "$out" "{\"status\":\"error\",\"action_id\":\"c5\",\"message\":\"Worklist item '$ACC' exists with different participant.birth_date\"}" \
    "a field left out counts as different"
is "$(dump)" "$before" "none of the repeats changed the item"

# Missing and bad fields: an error naming the field, nothing stored
# (production stores NULL and answers exists).
for f in nhs_number name; do
	out=$(echo "$V" | sed "s/ACC20260707A1B2/ACCM1/; s/\"action_id\":\"3f0c[^\"]*\"/\"action_id\":\"m-$f\"/; s/\"$f\":\"[^\"]*\",//" | apply)
	is "$out" "{\"status\":\"error\",\"action_id\":\"m-$f\",\"message\":\"Missing key: 'participant.$f'\"}" \
	    "a create_item without participant.$f: an error naming it"
done
out=$(echo "$V" | sed 's/ACC20260707A1B2/ACCM2/; s/"scheduled":{[^}]*},//' | apply)
is "$out" "{\"status\":\"error\",\"action_id\":\"$ID\",\"message\":\"Missing key: 'scheduled.date'\"}" \
    "a create_item without scheduled: an error naming scheduled.date"
out=$(echo "$V" | sed 's/"action_id":"3f0c[^"]*",//' | apply)
is "$out" "{\"status\":\"error\",\"message\":\"Missing key: 'action_id'\"}" \
    "without action_id: production's Missing key: 'action_id'"
out=$(echo "$V" | sed 's/"action_id":"3f0c[^"]*"/"action_id":42/' | apply)
is "$out" "{\"status\":\"error\",\"message\":\"Invalid value: 'action_id' (not a string)\"}" \
    "an action_id that is not a string is named as such"
out=$(echo "$V" | sed 's/ACC20260707A1B2/ACCM3/; s/"20260707"/"20260230"/' | apply)
is "$out" "{\"status\":\"error\",\"action_id\":\"$ID\",\"message\":\"Invalid value: 'scheduled.date' (a date is YYYYMMDD, a day of the calendar)\"}" \
    "30 February is not a date"
out=$(echo "$V" | sed 's/ACC20260707A1B2/ACCM4/; s/"083000"/"246000"/' | apply)
is "$out" "{\"status\":\"error\",\"action_id\":\"$ID\",\"message\":\"Invalid value: 'scheduled.time' (a time is HHMMSS, HHMM or HH within a day, with an optional fraction)\"}" \
    "24:60 is not a time"
out=$(echo "$V" | sed 's/ACC20260707A1B2/ACCM5/; s/"sex":"F"/"sex":7/' | apply)
is "$out" "{\"status\":\"error\",\"action_id\":\"$ID\",\"message\":\"Invalid value: 'participant.sex' (not a string)\"}" \
    "a number where a string belongs is named"
is "$(sql "$DB" "SELECT count(*) FROM worklist_items WHERE accession_number LIKE 'ACCM%'")" 0 \
    "no refused action stored anything"
is "$(echo '{"action_id":"x1","action_type":"worklist.delete_everything"}' | apply)" \
    '{"status":"error","message":"Unsupported action: worklist.delete_everything"}' \
    "an unknown worklist action: Unsupported action"
is "$(echo '{"action_id":"x2"}' | apply)" \
    '{"status":"error","message":"Unsupported action: no-op"}' \
    "no action_type: Unsupported action: no-op, as production"

# update_status: production's transitions and replies.
up() {	# up STATUS [ACCESSION]
	printf '{"schema_version":1,"action_id":"u-%s","action_type":"worklist.update_status","parameters":{"worklist_item":{"accession_number":"%s","status":"%s"}}}\n' \
	    "$1" "${2:-$ACC}" "$1" | apply
}
state() { sql "$DB" "SELECT status FROM worklist_items WHERE accession_number = '$ACC'"; }
is "$(up COMPLETED)" "{\"status\":\"error\",\"action_id\":\"u-COMPLETED\",\"message\":\"Worklist item '$ACC' not found\"}" \
    "SCHEDULED to COMPLETED is refused as production words it: not found"
is "$(up "in progress")" "{\"accession_number\":\"$ACC\",\"status\":\"updated\"}" \
    "\"in progress\" (any case) moves SCHEDULED to IN PROGRESS: {accession_number, updated}"
is "$(state)" "IN PROGRESS" "the item is IN PROGRESS"
is "$(up "IN PROGRESS")" "{\"status\":\"error\",\"action_id\":\"u-IN PROGRESS\",\"message\":\"Worklist item '$ACC' not found\"}" \
    "sent again: not found (PRODUCTION.md §8)"
is "$(up SCHEDULED)" "{\"status\":\"error\",\"action_id\":\"u-SCHEDULED\",\"message\":\"Cannot transition to 'SCHEDULED'\"}" \
    "back to SCHEDULED: Cannot transition to 'SCHEDULED'"
is "$(up FINISHED)" "{\"status\":\"error\",\"action_id\":\"u-FINISHED\",\"message\":\"Cannot transition to 'FINISHED'\"}" \
    "an unknown status: Cannot transition to it"
is "$(up DISCONTINUED)" "{\"accession_number\":\"$ACC\",\"status\":\"updated\"}" \
    "IN PROGRESS to DISCONTINUED: updated"
is "$(up COMPLETED)" "{\"status\":\"error\",\"action_id\":\"u-COMPLETED\",\"message\":\"Worklist item '$ACC' not found\"}" \
    "a DISCONTINUED item moves no further"
is "$(up "IN PROGRESS" ACCNONE)" "{\"status\":\"error\",\"action_id\":\"u-IN PROGRESS\",\"message\":\"Worklist item 'ACCNONE' not found\"}" \
    "an unknown accession number: not found"
is "$(echo '{"action_type":"worklist.update_status","parameters":{"worklist_item":{"accession_number":"ACC1"}}}' | apply)" \
    "{\"status\":\"error\",\"message\":\"Missing key: 'status'\"}" \
    "no status: Missing key: 'status' (and no action_id is needed, as production)"
is "$(state)" DISCONTINUED "the refused moves changed nothing"

# Through a stream: each action answered in order, exit status the worst.
printf '%s\n%s\n' "$V" '{"action_id":"x3"}' | apply >"$T/two.out"; rc=$?
is "$(sed 's/.*"status":"\([a-z]*\)".*/\1/' "$T/two.out" | tr '\n' ' ')" "processed error " \
    "a stream gets one reply per action, in order"
is "$rc" 65 "one refused action makes the run exit EX_DATAERR"
ok "the log names no patient" sh -c "! grep -q 'DOE^\|9990001112\|19700101' '$T/mwlsync.log'"
done_testing
