#!/bin/sh
# Some modalities send no MPPS: the first image whose accession number
# matches a SCHEDULED worklist item moves it to IN PROGRESS.
. "${0%/*}/lib.sh"

export GATEWAY_DATA_DIR=$T/var
WL_DB=$GATEWAY_DATA_DIR/worklist.db
mkdir -p "$GATEWAY_DATA_DIR/incoming"

item() {	# item ACTION_ID ACCESSION
	printf '{"schema_version":1,"action_id":"%s","action_type":"worklist.create_item","timestamp":"2026-11-27T08:00:00Z","source_system":"manage-breast-screening","parameters":{"worklist_item":{"accession_number":"%s","participant":{"nhs_number":"9990001112","name":"TEST^ONE","birth_date":"19700101","sex":"F"},"scheduled":{"date":"20261127","time":"093000"},"procedure":{"modality":"MG","study_description":"Screening Mammography"}}}}\n' "$1" "$2"
}
{ item a1 ACC051000; item a2 ACC051001; item a3 ACC051002; } | mwlsync apply >"$T/replies" 2>/dev/null
is "$(grep -c '"created"' "$T/replies")" 3 "three worklist items are created"
for s in "IN PROGRESS" COMPLETED; do
	printf '{"schema_version":1,"action_id":"a4","action_type":"worklist.update_status","parameters":{"worklist_item":{"accession_number":"ACC051002","status":"%s"}}}\n' "$s"
done | mwlsync apply >/dev/null 2>&1

# Four images of study 0 (ACC051000), four of study 2 (ACC051002).
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 12 --size 64x48 --studies 3 --seed 51 >/dev/null
for f in "$T"/mg/mg0000[0369].dcm "$T"/mg/mg0000[258].dcm "$T"/mg/mg00011.dcm; do
	cp "$f" "$GATEWAY_DATA_DIR/incoming/"
done
storescp-hook --sweep 2>/dev/null
ok "dcmindex indexes the images" sh -c 'dcmindex --once 2>"$0/index.log"' "$T"
is "$(sql "$WL_DB" "SELECT status FROM worklist_items WHERE accession_number = 'ACC051000'")" \
    "IN PROGRESS" "an image of a SCHEDULED item starts it"
is "$(sql "$WL_DB" "SELECT status FROM worklist_items WHERE accession_number = 'ACC051001'")" \
    "SCHEDULED" "an item without images stays SCHEDULED"
is "$(sql "$WL_DB" "SELECT status FROM worklist_items WHERE accession_number = 'ACC051002'")" \
    "COMPLETED" "a COMPLETED item is not moved back"
is "$(grep -c 'worklist item started by image' "$T/index.log")" 1 "it is logged once, by accession number"
ok "the log names no patient" sh -c "! grep -q 'TEST^ONE\|9990001112' '$T/index.log'"
done_testing
