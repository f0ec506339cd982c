#!/bin/sh
# Worklist times: the cloud sends UTC, worklist.db keeps UTC, modalities
# see the site's local time (WORKLIST_TIMEZONE): dates, times, ranges and
# "today" follow the local day.  Europe/London across both 2026 clock
# changes (29 March, 25 October) and midnight, checked against Python's
# zoneinfo; WORKLIST_TIMEZONE=UTC keeps the cloud's times; a zone the tz
# database does not have stops mwlscp, mwlsync and gatewayd (exit 78).
. "${0%/*}/lib.sh"
command -v findscu >/dev/null || skip_all "dcmtk findscu not installed"
[ -f /usr/share/zoneinfo/Europe/London ] || skip_all "tzdata not installed"
exec 2>>"$T/stderr.log"

export WORKLIST_DB_PATH=$T/worklist.db GATEWAY_DATA_DIR=$T/var
export GATEWAY_ENV_FILE=/dev/null
mkdir -p "$GATEWAY_DATA_DIR"
SPS=ScheduledProcedureStepSequence[0]
PY=/usr/bin/python3

# The items: accession, UTC date, UTC time (as the cloud sends them).
cat >"$T/items" <<'EOF'
ACCT01 20260328 083000
ACCT02 20260329 003000
ACCT03 20260329 013000
ACCT04 20260329 083000
ACCT05 20260707 083000
ACCT06 20260707 233000
ACCT07 20261024 233000
ACCT08 20261025 003000
ACCT09 20261025 013000
ACCT10 20261025 083000
ACCT11 20261231 233000
ACCT12 20260707 0815
EOF
while read -r acc d t; do
	printf '{"schema_version":1,"action_id":"act-%s","action_type":"worklist.create_item","parameters":{"worklist_item":{"accession_number":"%s","participant":{"nhs_number":"9990001112","name":"TIME^TEST","birth_date":"19700101","sex":"F"},"scheduled":{"date":"%s","time":"%s"},"procedure":{"modality":"MG","study_description":"Screening Mammography"}}}}\n' \
	    "$acc" "$acc" "$d" "$t"
done <"$T/items" | mwlsync apply >"$T/apply.out"
is "$(grep -c '"created"' "$T/apply.out")" 12 "twelve items are created"
is "$(sql "$WORKLIST_DB_PATH" "SELECT scheduled_date || ' ' || scheduled_time FROM worklist_items WHERE accession_number = 'ACCT06'")" \
    "20260707 233000" "worklist.db keeps the cloud's UTC date and time"

# The same items in Europe/London, by Python's zoneinfo (the oracle).
$PY - "$T/items" >"$T/want" <<'PY'
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo
for line in open(sys.argv[1]):
    acc, d, t = line.split()
    u = datetime.strptime(d + t.ljust(6, "0"), "%Y%m%d%H%M%S")
    l = u.replace(tzinfo=timezone.utc).astimezone(ZoneInfo("Europe/London"))
    print(acc, l.strftime("%Y%m%d"), l.strftime("%H%M%S")[:len(t)])
PY

# rows PORT KEYS...: "ACCESSION DATE TIME" of each C-FIND response, sorted.
rows() {
	_p=$1; shift
	_d=$(mktemp -d "$T/rsp.XXXXXX")
	findscu -to 10 -W -X -od "$_d" -aec SCREENING_MWL \
	    -k AccessionNumber -k "$SPS.ScheduledProcedureStepStartDate" \
	    -k "$SPS.ScheduledProcedureStepStartTime" "$@" 127.0.0.1 "$_p" \
	    >/dev/null 2>&1
	for f in "$_d"/*; do
		[ -f "$f" ] || continue
		printf '%s %s %s\n' "$(dcm_value "$f" 0008,0050)" \
		    "$(dcm_value "$f" 0040,0002)" "$(dcm_value "$f" 0040,0003)"
	done | sort
}
accs() { rows "$@" | cut -d' ' -f1 | tr '\n' ' '; }

start_mwlscp() {	# NAME ZONE: an mwlscp in that zone; its port in $PORT
	PORT=$(free_port)
	WORKLIST_TIMEZONE=$2 WORKLIST_PORT=$PORT bg "$1" mwlscp --bind 127.0.0.1
	wait_until 20 port_open "$PORT"
}

start_mwlscp london Europe/London
LONDON=$PORT
is "$(rows "$LONDON")" "$(cat "$T/want")" \
    "every item's SPS date and time is its UTC slot in Europe/London (as zoneinfo says), precision kept"
is "$(rows "$LONDON" -k AccessionNumber=ACCT06)" "ACCT06 20260708 003000" \
    "a 23:30 UTC slot in summer is at 00:30 the next local day"
is "$(accs "$LONDON" -k "$SPS.ScheduledProcedureStepStartDate=20260708")" "ACCT06 " \
    "a query for that local day finds it"
is "$(accs "$LONDON" -k "$SPS.ScheduledProcedureStepStartDate=20260707")" "ACCT05 ACCT12 " \
    "a query for its UTC day does not"
is "$(accs "$LONDON" -k "$SPS.ScheduledProcedureStepStartDate=20260329" -k "$SPS.ScheduledProcedureStepStartTime=0200-0300")" \
    "ACCT03 " "29 March: 01:30 UTC is 02:30 BST, in the local range 02:00-03:00"
is "$(accs "$LONDON" -k "$SPS.ScheduledProcedureStepStartDate=20260329" -k "$SPS.ScheduledProcedureStepStartTime=-0100")" \
    "ACCT02 " "29 March: 00:30 UTC, before the change, is 00:30 GMT"
is "$(accs "$LONDON" -k "$SPS.ScheduledProcedureStepStartDate=20261025")" \
    "ACCT07 ACCT08 ACCT09 ACCT10 " \
    "25 October: the local day holds 23:30 UTC of the 24th and the slots of the 25th"
is "$(accs "$LONDON" -k "$SPS.ScheduledProcedureStepStartDate=20261025" -k "$SPS.ScheduledProcedureStepStartTime=0100-0159")" \
    "ACCT08 ACCT09 " "25 October: 00:30 and 01:30 UTC are both 01:30 local (the hour happens twice)"
is "$(accs "$LONDON" -k "$SPS.ScheduledProcedureStepStartDate=20260707-20260708" -k "$SPS.ScheduledProcedureStepStartTime=2300-0100")" \
    "ACCT06 " "a combined date-time range is matched on local time, across midnight"
is "$(accs "$LONDON" -k "$SPS.ScheduledProcedureStepStartDate=20261231-")" "ACCT11 " \
    "in winter local time is UTC: 23:30 on 31 December stays on the 31st"

start_mwlscp utc UTC
is "$(rows "$PORT" -k AccessionNumber=ACCT06)" "ACCT06 20260707 233000" \
    "WORKLIST_TIMEZONE=UTC answers the cloud's times unchanged, as production"
is "$(accs "$PORT" -k "$SPS.ScheduledProcedureStepStartDate=20260707")" "ACCT05 ACCT06 ACCT12 " \
    "and its days are UTC days"

# export-wl writes local times, and wlmscpfs serving them agrees.
WORKLIST_TIMEZONE=Europe/London mwlsync export-wl "$T/wl/SCREENING_MWL"
is "$(dcm_value "$T/wl/SCREENING_MWL/ACCT06.wl" 0040,0002) $(dcm_value "$T/wl/SCREENING_MWL/ACCT06.wl" 0040,0003)" \
    "20260708 003000" "export-wl writes the local date and time"
if command -v wlmscpfs >/dev/null; then
	WLP=$(free_port)
	bg wlmscpfs wlmscpfs -dfp "$T/wl" -dfr "$WLP"
	wait_until 10 port_open "$WLP"
	for q in 20260708 20261025 20260329; do
		is "$(rows "$WLP" -k "$SPS.ScheduledProcedureStepStartDate=$q")" \
		    "$(rows "$LONDON" -k "$SPS.ScheduledProcedureStepStartDate=$q")" \
		    "wlmscpfs serving the exported files answers the local day $q as mwlscp does"
	done
else
	skip "wlmscpfs not installed"; skip "wlmscpfs"; skip "wlmscpfs"
fi

# Times typed by hand are the site's local time.
export WORKLIST_TIMEZONE=Europe/London
out=$(mwlsync add --accession ACCT20 --nhs-number 9990001113 --name 'HAND^TEST' \
    --date 2026-03-29 --time 01:30 2>&1); rc=$?
is "$rc" 65 "mwlsync add refuses 01:30 on 29 March in London (EX_DATAERR)"
case $out in *"does not exist in local time"*) pass "... saying the clocks go forward over it" ;;
*) fail "... saying the clocks go forward over it"; diag "$out" ;; esac
mwlsync add --accession ACCT21 --nhs-number 9990001113 --name 'HAND^TEST' \
    --date 2026-10-25 --time 01:30 >/dev/null
is "$(sql "$WORKLIST_DB_PATH" "SELECT scheduled_time FROM worklist_items WHERE accession_number = 'ACCT21'")" \
    "003000" "01:30 on 25 October (twice) is taken the first time: 00:30 UTC"
mwlsync add --accession ACCT22 --nhs-number 9990001113 --name 'HAND^TEST' \
    --date 2026-07-08 --time 00:15 >/dev/null
is "$(sql "$WORKLIST_DB_PATH" "SELECT scheduled_date || ' ' || scheduled_time FROM worklist_items WHERE accession_number = 'ACCT22'")" \
    "20260707 231500" "00:15 BST on 8 July is stored as 23:15 UTC on the 7th"

# reset: "before today" means before the local day.
mwlsync reset --today 20260708
is "$(sql "$WORKLIST_DB_PATH" "SELECT accession_number FROM worklist_items WHERE accession_number IN ('ACCT05', 'ACCT06', 'ACCT12', 'ACCT22') ORDER BY 1" | tr '\n' ' ')" \
    "ACCT06 ACCT22 " "reset --today 20260708 keeps the items of that local day (23:30 UTC the day before), removes the 7th's"

# modality-emu asks for today in the site's zone.  The zone is one whose
# local date is not the UTC date now, so a UTC "today" would show.
zone=$($PY -c 'import datetime; print("Pacific/Kiritimati" if datetime.datetime.now(datetime.timezone.utc).hour >= 10 else "Etc/GMT+12")')
local_today() { $PY -c 'import sys, datetime, zoneinfo; print(datetime.datetime.now(zoneinfo.ZoneInfo(sys.argv[1])).strftime("%Y%m%d"))' "$zone"; }
before=$(local_today)
WORKLIST_TIMEZONE=$zone WORKLIST_PORT=$LONDON modality-emu --list \
    >"$T/emu.out" 2>"$T/emu.err"
after=$(local_today)
asked=$(sed -n 's/.*msg="worklist queried".* date=\([0-9]*\).*/\1/p' "$T/emu.err")
case $asked in
"$before" | "$after") pass "modality-emu asks for today in WORKLIST_TIMEZONE ($zone: $asked)" ;;
*) fail "modality-emu asks for today in WORKLIST_TIMEZONE ($zone)"
   diag "asked for '$asked', today there is $before" ;;
esac

# A zone the tz database does not have: a clear error at start, exit 78.
WORKLIST_TIMEZONE=Europe/Lundon WORKLIST_PORT=$(free_port) mwlscp --bind 127.0.0.1 \
    2>"$T/badzone.err"
is "$?" 78 "mwlscp with WORKLIST_TIMEZONE=Europe/Lundon exits 78 (EX_CONFIG)"
ok "... naming the setting and the zone" \
    grep -q 'WORKLIST_TIMEZONE: no time zone .*Europe/Lundon' "$T/badzone.err"
WORKLIST_TIMEZONE=../../etc/passwd mwlsync export-wl "$T/wl2" 2>"$T/badzone2.err"
is "$?" 78 "mwlsync export-wl with a path for a zone exits 78"
# (timeout: a gatewayd that starts after all must not hold the test)
export PACS_PORT QR_PORT
PACS_PORT=$(free_port)
WORKLIST_TIMEZONE=Mars/Olympus_Mons timeout 60 \
    sh "$GW_ROOT/pipeline/gatewayd" run 2>"$T/gatewayd.err"
is "$?" 78 "gatewayd run refuses an unknown WORKLIST_TIMEZONE (exit 78)"
ok "... saying which setting" grep -q 'WORKLIST_TIMEZONE' "$T/gatewayd.err"
WORKLIST_SHOW_FINISHED=yes timeout 60 sh "$GW_ROOT/pipeline/gatewayd" run \
    2>"$T/gatewayd2.err"
is "$?" 78 "gatewayd run refuses WORKLIST_SHOW_FINISHED=yes (exit 78)"
ok "... saying which setting" grep -q 'setting=WORKLIST_SHOW_FINISHED .*is not 0 or 1' \
    "$T/gatewayd2.err"

ok "no patient name or NHS number in any log" \
    sh -c "! grep -q 'TIME^TEST\|HAND^TEST\|999000111' '$T'/*.log '$T'/*.err"
ok "no sanitizer report" sh -c "! grep -l 'Sanitizer\|runtime error' '$T'/*.log '$T'/*.err"
done_testing
