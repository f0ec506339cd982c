#!/bin/sh
# 2000-mwlscp-net: mwlscp on the network, against dcmtk's echoscu and
# findscu and raw bytes (t/peers/dulraw.py): negotiation, the allow-list,
# malformed and truncated PDUs, the ARTIM and idle timers, the association
# limit, 20 concurrent clients, and SIGTERM.
. "${0%/*}/lib.sh"

RAW="/usr/bin/python3 $GW_ROOT/t/peers/dulraw.py"
GATEWAY_DATA_DIR=$T/var
export GATEWAY_DATA_DIR
mkdir -p "$GATEWAY_DATA_DIR"

# start_mwlscp NAME PORT [options]: start one server, wait until it listens.
start_mwlscp() {
	_n=$1; _p=$2; shift 2
	WORKLIST_PORT=$_p bg "$_n" mwlscp --bind 127.0.0.1 "$@"
	wait_until 20 port_open "$_p"
}

echo_ok() {
	echoscu -to 5 -aec SCREENING_MWL 127.0.0.1 "$PORT"
}

# probe KIND: the server must abort or close, within the given seconds.
probe_ends() {
	_out=$($RAW "$PORT" "$1") || return 1
	case $_out in
	closed*|abort*) return 0 ;;
	*) echo "server answered: $_out"; return 1 ;;
	esac
}

PORT=$(free_port)
start_mwlscp mwlscp "$PORT" --artim-seconds 2 --idle-seconds 2 \
    --max-associations 3
MWLSCP_PID=$BG_PID
ok "mwlscp listens on 127.0.0.1" port_open "$PORT"
ok "C-ECHO with echoscu succeeds" echo_ok
not_ok "a wrong called AE title is rejected" \
    echoscu -to 5 -aec NOT_OUR_AE 127.0.0.1 "$PORT"
wait_for 10 "the rejection is logged with the called AE" \
    grep -q 'association rejected.*called_aet=NOT_OUR_AE.*reason="called AE title not recognised"' \
    "$T/mwlscp.log"

# --- malformed input ---
ok "garbage bytes end in abort or close" probe_ends garbage
ok "a PDU with a huge length ends in abort or close" probe_ends hugelen
ok "an A-ASSOCIATE-RQ with a bad item length ends in abort or close" \
    probe_ends baditem
ok "a P-DATA before association ends in abort or close" \
    probe_ends pdata-first
ok "after all that, C-ECHO still succeeds" echo_ok

# --- timers ---
out=$($RAW "$PORT" silent)
secs=${out#* }
case $out in
closed*) ok "a silent peer is closed after the ARTIM timeout (${secs}s)" \
    awk -v s="$secs" 'BEGIN { exit !(s >= 1.5 && s < 6) }' ;;
*) fail "a silent peer is closed after the ARTIM timeout"; diag "$out" ;;
esac
out=$($RAW "$PORT" stall-mid-pdu)
secs=${out#* }
case $out in
closed*|abort*) ok "a peer stalling mid-PDU is dropped after the idle timeout (${secs}s)" \
    awk -v s="$secs" 'BEGIN { exit !(s >= 1.5 && s < 6) }' ;;
*) fail "a peer stalling mid-PDU is dropped after the idle timeout"
   diag "$out" ;;
esac

# --- the association limit ---
# The probes' association processes must be gone (and reaped) first, or
# they still count against the limit.
no_children() { ! pgrep -P "$MWLSCP_PID" >/dev/null; }
wait_until 20 no_children
ok "beyond --max-associations the extra one is rejected, the held ones work" \
    $RAW "$PORT" hold 3 echoscu -to 5 -aec SCREENING_MWL 127.0.0.1 "$PORT"
wait_for 10 "the limit rejection says local limit exceeded" \
    grep -q 'association rejected.*result=rejected-transient reason="local limit exceeded" source=3' \
    "$T/mwlscp.log"
ok "once they are released, C-ECHO succeeds again" wait_until 10 echo_ok

# --- the allow-list ---
PORT2=$(free_port)
start_mwlscp mwlscp-allow "$PORT2" --allow "MAMMO1, MAMMO2"
ok "an allowed calling AE gets C-ECHO" \
    echoscu -to 5 -aet MAMMO2 -aec SCREENING_MWL 127.0.0.1 "$PORT2"
not_ok "an unknown calling AE is rejected" \
    echoscu -to 5 -aet STRANGER -aec SCREENING_MWL 127.0.0.1 "$PORT2"

# --- concurrency ---
PORT3=$(free_port)
start_mwlscp mwlscp-many "$PORT3" --max-associations 32
i=0
while [ $i -lt 20 ]; do
	( echoscu -to 10 -aec SCREENING_MWL 127.0.0.1 "$PORT3" \
	    >"$T/echo.$i.out" 2>&1; echo $? >"$T/echo.$i.rc" ) &
	pids="${pids:-} $!"
	i=$((i + 1))
done
wait $pids
pids=
is "$(cat "$T"/echo.*.rc | sort | uniq -c | tr -s ' ')" " 20 0" \
    "20 concurrent echoscu all answered"

# --- C-FIND over items loaded with mwlsync ---
if command -v mwlsync >/dev/null 2>&1; then
	for n in 1 2 3; do
		printf '{"schema_version":1,"action_id":"a-%s","action_type":"worklist.create_item","timestamp":"2026-11-27T10:00:00Z","source_system":"t","parameters":{"worklist_item":{"accession_number":"ACCNET%s","participant":{"nhs_number":"999000000%s","name":"TEST^PATIENT%s","birth_date":"19700101","sex":"F"},"scheduled":{"date":"20261128","time":"09%s000"},"procedure":{"modality":"MG","study_description":"Screening Mammography"}}}}\n' \
		    "$n" "$n" "$n" "$n" "$n"
	done | mwlsync apply >"$T/apply.out" 2>"$T/apply.err"
	ok "mwlsync loads three items" \
	    test "$(grep -c '"created"' "$T/apply.out")" = 3
	findq() {
		findscu -to 10 -W -aec SCREENING_MWL -k AccessionNumber= \
		    -k PatientName= -k "ScheduledProcedureStepSequence[0].Modality=MG" \
		    127.0.0.1 "$1" 2>&1 | grep -c '(0008,0050) SH \[ACCNET'
	}
	is "$(findq "$PORT3")" 3 "findscu -W gets the three items"
	i=0
	while [ $i -lt 20 ]; do
		( findq "$PORT3" >"$T/find.$i.out" ) &
		pids="${pids:-} $!"
		i=$((i + 1))
	done
	wait $pids
	is "$(cat "$T"/find.*.out | sort | uniq -c | tr -s ' ')" " 20 3" \
	    "20 concurrent findscu -W all get the three items"

	# C-CANCEL: with 1,000 matching items the cancel sent after the first
	# response arrives while the server is still sending; it must stop,
	# end with status Cancel (FE00) and keep the association usable.
	/usr/bin/python3 -c '
import json
for i in range(1000):
    print(json.dumps({"schema_version": 1, "action_id": "c-%d" % i,
        "action_type": "worklist.create_item", "parameters": {"worklist_item": {
        "accession_number": "ACCC%05d" % i,
        "participant": {"nhs_number": "9990%06d" % i, "name": "TEST^CANCEL",
                        "birth_date": "19700101", "sex": "F"},
        "scheduled": {"date": "20261129", "time": "090000"},
        "procedure": {"modality": "MG", "study_description": "S"}}}}))' |
	    mwlsync apply >/dev/null 2>&1
	findscu -v -to 20 -W --cancel 1 -aec SCREENING_MWL -k AccessionNumber= \
	    -k "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20261129" \
	    127.0.0.1 "$PORT3" >"$T/cancel.out" 2>&1
	got=$(grep -c 'Find Response: [0-9]* (Pending)' "$T/cancel.out")
	ok "after C-CANCEL the server stops sending ($got of 1000 pending responses)" \
	    test "$got" -lt 1000
	ok "the final response has status Cancel" \
	    grep -q 'Received Final Find Response (Cancel' "$T/cancel.out"
	ok "the association is released normally after the cancel" \
	    grep -q 'Releasing Association' "$T/cancel.out"

	# The response character set: ISO_IR 100 by default (a name outside
	# Latin-1 loses those letters to '?'), ISO_IR 192 on request.
	printf '%s\n' \
	    '{"schema_version":1,"action_id":"cs-1","action_type":"worklist.create_item","parameters":{"worklist_item":{"accession_number":"ACCCS1","participant":{"nhs_number":"9990000099","name":"M\u00dcLLER^ZO\u00cb","birth_date":"19700101","sex":"F"},"scheduled":{"date":"20261130","time":"090000"},"procedure":{"modality":"MG","study_description":"S"}}}}' \
	    '{"schema_version":1,"action_id":"cs-2","action_type":"worklist.create_item","parameters":{"worklist_item":{"accession_number":"ACCCS2","participant":{"nhs_number":"9990000098","name":"\u0141UKASZ^\u0104NNA","birth_date":"19700101","sex":"F"},"scheduled":{"date":"20261130","time":"090000"},"procedure":{"modality":"MG","study_description":"S"}}}}' |
	    mwlsync apply >/dev/null 2>&1
	PORT4=$(free_port)
	start_mwlscp mwlscp-utf8 "$PORT4" --charset "ISO_IR 192"
	# names PORT DIR: "charset|name" of each response, sorted.
	names() {
		mkdir -p "$2"
		findscu -to 10 -W -X -od "$2" -aec SCREENING_MWL -k PatientName= \
		    -k "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20261130" \
		    127.0.0.1 "$1" >/dev/null 2>&1
		for f in "$2"/rsp*.dcm; do
			printf '%s|%s\n' "$(dcm_value "$f" 0008,0005)" \
			    "$(dcmdump -q +U8 +P 0010,0010 "$f" | sed 's/.*\[\(.*\)\].*/\1/')"
		done | sort
	}
	is "$(names "$PORT3" "$T/cs100" | tr '\n' ' ')" \
	    "ISO_IR 100|?UKASZ^?NNA ISO_IR 100|MÜLLER^ZOË " \
	    "by default names are sent in ISO_IR 100, other letters as '?'"
	is "$(names "$PORT4" "$T/cs192" | tr '\n' ' ')" \
	    "ISO_IR 192|MÜLLER^ZOË ISO_IR 192|ŁUKASZ^ĄNNA " \
	    "with --charset ISO_IR 192 every name arrives whole, in UTF-8"
else
	skip "mwlsync not built: no C-FIND checks"
fi

ok "no patient name or ID in the logs" \
    sh -c "! grep -q 'TEST^PATIENT\|999000000' '$T'/mwlscp*.log"

# --- SIGTERM ---
pid=$(cat "$T/mwlscp-many.pid")
kill -TERM "$pid"
wait "$pid"
is "$?" 0 "SIGTERM: mwlscp exits 0"
ok "no sanitizer report in any mwlscp log" \
    sh -c "! grep -l 'Sanitizer\|runtime error' '$T'/mwlscp*.log"

done_testing
