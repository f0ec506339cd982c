#!/bin/sh
# Differential test: the same worklist served by dcmtk's wlmscpfs (from
# mwlsync export-wl) and by our mwlscp (from worklist.db) answers the same
# findscu -W queries with the same items and values.
#
# Deliberate differences, left out of the comparison:
# - mwlscp never offers COMPLETED or DISCONTINUED items; export-wl writes
#   only offered items, so over one snapshot both serve the same set.
# - wlmscpfs does not match on Study Instance UID, SPS ID, SPS Description,
#   Scheduled Station Name or Requested Procedure Description (they are
#   only return keys there); mwlscp does.  Those queries are checked
#   against the expected counts only.
# - Zero-length return values are dropped before comparing: wlmscpfs
#   expands an empty SPS sequence into more (empty) attributes than we do.
# - An item the cloud gave no station is every station's in mwlscp (a
#   query by a station's AE title finds it); export-wl gives it
#   WORKLIST_STATION_AET, which wlmscpfs matches exactly.  Every item here
#   has a station (t/2130 checks the others).
# - Both serve local times: export-wl writes them, mwlscp converts (the
#   zone here is the system's; t/2120 compares the two in Europe/London).
. "${0%/*}/lib.sh"
command -v wlmscpfs >/dev/null && command -v findscu >/dev/null ||
	skip_all "dcmtk wlmscpfs/findscu not installed"
exec 2>>"$T/stderr.log"

export WORKLIST_DB_PATH=$T/worklist.db GATEWAY_DATA_DIR=$T/var

# 60 items: Latin-1 names, 6 days, 3 modalities, 3 stations.
/usr/bin/python3 - >"$T/actions.jsonl" <<'PY'
import json
last = ["SMITH", "MÜLLER", "O'BRIEN", "GARCÍA", "NØRGAARD", "BRONTË",
        "JONES", "ÅSTRÖM", "DUBOIS", "SMYTHE"]
first = ["JANE", "ANNA", "MARY", "JOSÉ", "ZOË", "CLAIRE"]
mods = ["MG", "MG", "CR", "US"]
for i in range(60):
    it = {"accession_number": "ACC%04d" % i,
          "participant": {"nhs_number": "99900%05d" % i,
                          "name": "%s^%s" % (last[i % 10], first[i % 6]),
                          "birth_date": "19%02d%02d%02d" % (40 + i % 40, 1 + i % 12, 1 + i % 28),
                          "sex": "F" if i % 7 else "O"},
          "scheduled": {"date": "202611%02d" % (25 + i % 6),
                        "time": "%02d%02d00" % (8 + i % 9, (i * 7) % 60),
                        "station_aet": "MAMMO%d" % (1 + i % 3),
                        "station_name": "ROOM%d" % (1 + i % 3)},
          "procedure": {"modality": mods[i % 4],
                        "study_description": "Screening %d" % (i % 5),
                        "requested_procedure_id": "RP%04d" % i}}
    print(json.dumps({"schema_version": 1, "action_id": "act-%d" % i,
        "action_type": "worklist.create_item",
        "parameters": {"worklist_item": it}}, ensure_ascii=False))
PY
mwlsync apply <"$T/actions.jsonl" >"$T/replies" ||
	{ echo "1..0 # SKIP mwlsync apply failed"; exit 1; }
mwlsync export-wl "$T/wl/SCREENING_MWL"

P1=$(free_port)
bg wlmscpfs wlmscpfs -dfp "$T/wl" -dfr -csk "$P1"
wait_until 10 port_open "$P1" || { echo "Bail out! wlmscpfs did not start"; exit 1; }
have_mwlscp=0
if [ -x "$GW_BIN/mwlscp" ]; then
	P2=$(free_port)
	WORKLIST_PORT=$P2 WORKLIST_AET=SCREENING_MWL \
	    bg mwlscp "$GW_BIN/mwlscp" --bind 127.0.0.1
	wait_until 10 port_open "$P2" && have_mwlscp=1
fi

RET="-k AccessionNumber -k PatientName -k PatientID -k PatientBirthDate
 -k PatientSex -k StudyInstanceUID -k RequestedProcedureID
 -k RequestedProcedureDescription
 -k ScheduledProcedureStepSequence[0].Modality
 -k ScheduledProcedureStepSequence[0].ScheduledStationAETitle
 -k ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate
 -k ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime
 -k ScheduledProcedureStepSequence[0].ScheduledProcedureStepID
 -k ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription
 -k ScheduledProcedureStepSequence[0].ScheduledStationName"

# find PORT OUT KEYS...: one normalised line per response, sorted.
find_items() {
	_port=$1 _out=$2; shift 2
	rm -rf "$_out.d"; mkdir -p "$_out.d"
	# shellcheck disable=SC2086
	findscu -W -aec SCREENING_MWL -X -od "$_out.d" 127.0.0.1 "$_port" \
	    $RET "$@" >/dev/null 2>&1
	for f in "$_out.d"/*; do
		[ -f "$f" ] || continue
		dcmdump -q +U8 "$f" | grep -v '(0002,\|(0008,0005)\|(0040,0100)\|(fffe,\|no value' |
		    sed -n 's/^ *\(([0-9a-f,]*)\) [A-Z][A-Z] \(.*[^ ]\) *#.*/\1=\2/p' |
		    sort | tr '\n' '|'
		echo
	done | sort >"$_out"
}

# q TITLE EXPECTED_COUNT KEYS...: wlmscpfs has the expected count; mwlscp
# answers the same.
n=0
q() {
	_t=$1 _want=$2; shift 2
	n=$((n + 1))
	find_items "$P1" "$T/ref$n" "$@"
	is "$(wc -l <"$T/ref$n" | tr -d ' ')" "$_want" "wlmscpfs: $_t"
	if [ $have_mwlscp = 1 ]; then
		find_items "$P2" "$T/our$n" "$@"
		if cmp -s "$T/ref$n" "$T/our$n"; then
			pass "mwlscp agrees: $_t"
		else
			fail "mwlscp agrees: $_t"
			diag "$(diff "$T/ref$n" "$T/our$n" | head -20)"
		fi
	else
		skip "mwlscp agrees: $_t (mwlscp not built yet)"
	fi
}

# ours TITLE EXPECTED_COUNT KEYS...: a key only mwlscp matches.
ours() {
	_t=$1 _want=$2; shift 2
	n=$((n + 1))
	if [ $have_mwlscp = 1 ]; then
		find_items "$P2" "$T/our$n" "$@"
		is "$(wc -l <"$T/our$n" | tr -d ' ')" "$_want" "mwlscp: $_t"
	else
		skip "mwlscp: $_t (mwlscp not built yet)"
	fi
}

SPS=ScheduledProcedureStepSequence[0]
q "universal query returns every item" 60
q "AccessionNumber single value" 1 -k AccessionNumber=ACC0007
q "AccessionNumber wildcard *" 10 -k "AccessionNumber=ACC001*"
q "AccessionNumber wildcard ?" 6 -k "AccessionNumber=ACC00?0"
q "AccessionNumber with no match" 0 -k AccessionNumber=NOPE
q "PatientName exact" 2 -k "PatientName=SMITH^JANE"
q "PatientName wildcard *" 6 -k "PatientName=SMITH^*"
q "PatientName wildcard ? over a non-ASCII letter" 6 -k "PatientName=M?LLER^*"
q "PatientName is case sensitive" 0 -k "PatientName=smith^jane"
q "PatientName * alone" 60 -k "PatientName=*"
q "PatientName *A* inside" 40 -k "PatientName=*^*A*"
q "PatientID single value" 1 -k PatientID=9990000042
q "PatientID no wildcards" 0 -k "PatientID=99900*"
q "PatientSex" 51 -k PatientSex=F
q "PatientBirthDate single" 1 -k PatientBirthDate=19400101
q "PatientBirthDate range" 20 -k PatientBirthDate=19400101-19491231
q "PatientBirthDate open start" 20 -k PatientBirthDate=-19491231
q "PatientBirthDate open end" 10 -k PatientBirthDate=19700101-
q "RequestedProcedureID wildcard" 10 -k "RequestedProcedureID=RP002*"
q "Modality MG" 30 -k "$SPS.Modality=MG"
q "Modality CR" 15 -k "$SPS.Modality=CR"
q "Modality with no match" 0 -k "$SPS.Modality=CT"
q "Scheduled Station AE Title" 20 -k "$SPS.ScheduledStationAETitle=MAMMO2"
# A value of asterisks only is universal matching (PS3.4 C.2.2.2.4), also
# where no other wildcard is matched: modalities ask for station "*".
q "Scheduled Station AE Title * alone" 60 -k "$SPS.ScheduledStationAETitle=*"
q "Scheduled Station AE Title ** alone" 60 -k "$SPS.ScheduledStationAETitle=**"
q "Scheduled Station AE Title with a wildcard inside" 0 -k "$SPS.ScheduledStationAETitle=MAMMO*"
q "PatientID * alone" 60 -k "PatientID=*"
q "Modality * alone, with a station" 20 -k "$SPS.Modality=*" \
    -k "$SPS.ScheduledStationAETitle=MAMMO3"
q "SPS Start Date single" 10 -k "$SPS.ScheduledProcedureStepStartDate=20261127"
q "SPS Start Date range" 20 -k "$SPS.ScheduledProcedureStepStartDate=20261127-20261128"
q "SPS Start Date open start" 20 -k "$SPS.ScheduledProcedureStepStartDate=-20261126"
q "SPS Start Date open end" 10 -k "$SPS.ScheduledProcedureStepStartDate=20261130-"
q "SPS Start Date with no match" 0 -k "$SPS.ScheduledProcedureStepStartDate=20261201"
q "SPS Start Time range" 21 -k "$SPS.ScheduledProcedureStepStartTime=0800-1059"
q "SPS Start Time open end" 12 -k "$SPS.ScheduledProcedureStepStartTime=1500-"
q "date and time ranges combined" 23 \
    -k "$SPS.ScheduledProcedureStepStartDate=20261126-20261128" \
    -k "$SPS.ScheduledProcedureStepStartTime=1000-1400"
q "modality and station together" 10 -k "$SPS.Modality=MG" \
    -k "$SPS.ScheduledStationAETitle=MAMMO1"
q "name and date together" 2 -k "PatientName=SMITH^*" \
    -k "$SPS.ScheduledProcedureStepStartDate=20261125"
uid=$(sql "$WORKLIST_DB_PATH" "SELECT study_instance_uid FROM worklist_items WHERE accession_number = 'ACC0003'")
uid2=$(sql "$WORKLIST_DB_PATH" "SELECT study_instance_uid FROM worklist_items WHERE accession_number = 'ACC0004'")
ours "list of UID matching" 2 -k "StudyInstanceUID=$uid\\$uid2"
ours "SPS ID wildcard" 10 -k "$SPS.ScheduledProcedureStepID=ACC001*"
ours "Scheduled Station Name" 20 -k "$SPS.ScheduledStationName=ROOM1"
done_testing
