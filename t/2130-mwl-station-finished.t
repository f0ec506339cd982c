#!/bin/sh
# Worklist C-FIND: a scanner asking by its own Scheduled Station AE Title
# also finds the items the cloud gave no station (they answer with its AE
# title); COMPLETED and DISCONTINUED items are hidden, as production,
# unless WORKLIST_SHOW_FINISHED=1; a worklist.db of version 1 turns its
# 'ANY' default into "no station".
. "${0%/*}/lib.sh"
command -v findscu >/dev/null || skip_all "dcmtk findscu not installed"
exec 2>>"$T/stderr.log"

export WORKLIST_DB_PATH=$T/worklist.db GATEWAY_DATA_DIR=$T/var
export GATEWAY_ENV_FILE=/dev/null WORKLIST_TIMEZONE=UTC
mkdir -p "$GATEWAY_DATA_DIR"
SPS=ScheduledProcedureStepSequence[0]

# item ACCESSION [STATION]: a create_item action.
item() {
	_st=
	[ -n "${2:-}" ] && _st=",\"station_aet\":\"$2\""
	printf '{"schema_version":1,"action_id":"act-%s","action_type":"worklist.create_item","parameters":{"worklist_item":{"accession_number":"%s","participant":{"nhs_number":"9990002221","name":"STATION^TEST","birth_date":"19700101","sex":"F"},"scheduled":{"date":"20261130","time":"090000"%s},"procedure":{"modality":"MG","study_description":"Screening Mammography"}}}}\n' \
	    "$1" "$1" "$_st"
}
status() {	# status ACCESSION STATUS
	printf '{"action_type":"worklist.update_status","parameters":{"worklist_item":{"accession_number":"%s","status":"%s"}}}\n' "$1" "$2"
}
{
	item ACCS1; item ACCS2 MAMMO1; item ACCS3 MAMMO2; item ACCP1
	item ACCF1; item ACCF2 MAMMO1
	status ACCP1 "IN PROGRESS"
	status ACCF1 "IN PROGRESS"; status ACCF1 COMPLETED
	status ACCF2 "IN PROGRESS"; status ACCF2 DISCONTINUED
} | mwlsync apply >"$T/apply.out"
is "$(grep -c '"created"\|"updated"' "$T/apply.out")" 11 "six items, five status changes"
is "$(sql "$WORKLIST_DB_PATH" "SELECT count(*) FROM worklist_items WHERE scheduled_station_aet IS NULL")" \
    3 "items the cloud gave no station are stored with none"

# rows PORT KEYS...: "ACCESSION STATION SPS-STATUS" per response, sorted.
rows() {
	_p=$1; shift
	_d=$(mktemp -d "$T/rsp.XXXXXX")
	findscu -to 10 -W -X -od "$_d" -aec SCREENING_MWL -k AccessionNumber \
	    -k "$SPS.ScheduledStationAETitle" \
	    -k "$SPS.ScheduledProcedureStepStatus" "$@" 127.0.0.1 "$_p" \
	    >/dev/null 2>&1
	for f in "$_d"/*; do
		[ -f "$f" ] || continue
		printf '%s %s %s\n' "$(dcm_value "$f" 0008,0050)" \
		    "$(dcm_value "$f" 0040,0001)" "$(dcm_value "$f" 0040,0020)"
	done | sort | tr '\n' ','
}

start_mwlscp() {	# NAME [VAR=VALUE...]: a server; its port in $PORT
	_n=$1; shift
	PORT=$(free_port)
	bg "$_n" env "$@" WORKLIST_PORT="$PORT" mwlscp --bind 127.0.0.1
	wait_until 20 port_open "$PORT"
}

start_mwlscp plain
P=$PORT
is "$(rows "$P" -k "$SPS.ScheduledStationAETitle=MAMMO1")" \
    "ACCP1 MAMMO1 STARTED,ACCS1 MAMMO1 SCHEDULED,ACCS2 MAMMO1 SCHEDULED," \
    "a query by MAMMO1 finds its item and those with no station, answered as MAMMO1's"
is "$(rows "$P" -k "$SPS.ScheduledStationAETitle=MAMMO2")" \
    "ACCP1 MAMMO2 STARTED,ACCS1 MAMMO2 SCHEDULED,ACCS3 MAMMO2 SCHEDULED," \
    "a query by MAMMO2 does the same, and not MAMMO1's item"
is "$(rows "$P" -k "$SPS.ScheduledStationAETitle=NEWSCANNER")" \
    "ACCP1 NEWSCANNER STARTED,ACCS1 NEWSCANNER SCHEDULED," \
    "a scanner the cloud never named sees the items with no station"
is "$(rows "$P")" \
    "ACCP1 ANY STARTED,ACCS1 ANY SCHEDULED,ACCS2 MAMMO1 SCHEDULED,ACCS3 MAMMO2 SCHEDULED," \
    "a query naming no station gets every offered item, those with none as ANY"
is "$(rows "$P" -k "$SPS.ScheduledStationAETitle=*")" \
    "ACCP1 ANY STARTED,ACCS1 ANY SCHEDULED,ACCS2 MAMMO1 SCHEDULED,ACCS3 MAMMO2 SCHEDULED," \
    "a query for station * is universal: every offered item, those with none as ANY"
is "$(rows "$P" -k AccessionNumber=ACCF1)" "" \
    "a COMPLETED item is hidden, even asked for by accession number"
is "$(rows "$P" -k "$SPS.ScheduledStationAETitle=MAMMO1" -k AccessionNumber=ACCF2)" "" \
    "a DISCONTINUED item is hidden"

start_mwlscp finished WORKLIST_SHOW_FINISHED=1 WORKLIST_STATION_AET=ROOM7
is "$(rows "$PORT")" \
    "ACCF1 ROOM7 COMPLETED,ACCF2 MAMMO1 DISCONTINUED,ACCP1 ROOM7 STARTED,ACCS1 ROOM7 SCHEDULED,ACCS2 MAMMO1 SCHEDULED,ACCS3 MAMMO2 SCHEDULED," \
    "WORKLIST_SHOW_FINISHED=1 offers finished items with their SPS status; WORKLIST_STATION_AET names the unassigned"
ok "the server logs its settings" grep -q 'listening.*timezone=UTC show_finished=1' \
    "$T/finished.log"

# export-wl: what C-FIND offers, unassigned items with the site's station
# (wlmscpfs serves no item without one).
mwlsync export-wl "$T/wl/SCREENING_MWL"
is "$(cd "$T/wl/SCREENING_MWL" && ls *.wl | tr '\n' ' ')" \
    "ACCP1.wl ACCS1.wl ACCS2.wl ACCS3.wl " "export-wl writes the offered items only"
is "$(dcm_value "$T/wl/SCREENING_MWL/ACCS1.wl" 0040,0001)" ANY \
    "an item with no station is exported as ANY"
WORKLIST_SHOW_FINISHED=1 mwlsync export-wl "$T/wl2/SCREENING_MWL"
is "$(ls "$T/wl2/SCREENING_MWL" | grep -c '\.wl$')" 6 \
    "with WORKLIST_SHOW_FINISHED=1 it writes the finished ones too"
WORKLIST_STATION_AET=A_TITLE_LONGER_THAN_16 mwlsync export-wl "$T/wl3" 2>"$T/long.err"
is "$?" 78 "a WORKLIST_STATION_AET over 16 characters is a configuration error"

# A worklist.db made before version 2 stored ANY for "no station".
OLD=$T/old.db
sed -n '/^-- version: 1/,/^-- version: 2/p' "$GW_ROOT/sql/worklist.sql" |
    sqlite3 "$OLD"
sqlite3 "$OLD" "PRAGMA user_version = 1; INSERT INTO worklist_items (accession_number, patient_id, patient_name, scheduled_date, scheduled_time, modality, scheduled_station_aet, study_instance_uid, source_message_id, spsid) VALUES ('ACCOLD1', '9990002222', 'OLD^ITEM', '20261130', '100000', 'MG', 'ANY', '2.25.1', 'old-1', 'ACCOLD1'), ('ACCOLD2', '9990002223', 'OLD^ITEM', '20261130', '100000', 'MG', 'MAMMO2', '2.25.2', 'old-2', 'ACCOLD2')"
WORKLIST_DB_PATH=$OLD mwlsync export-wl "$T/wl4"
is "$(sql "$OLD" "SELECT accession_number || '=' || coalesce(scheduled_station_aet, 'none') FROM worklist_items ORDER BY 1" | tr '\n' ' ')" \
    "ACCOLD1=none ACCOLD2=MAMMO2 " \
    "opening a version 1 worklist.db turns the stored ANY into no station, and keeps named ones"
is "$(sql "$OLD" "PRAGMA user_version")" 2 "and it is at version 2"

ok "no patient name or NHS number in the logs" \
    sh -c "! grep -q 'STATION^TEST\|999000222' '$T'/*.log"
done_testing
