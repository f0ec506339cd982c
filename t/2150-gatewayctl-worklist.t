#!/bin/sh
# gatewayctl worklist [--date D] (and gatewayd worklist): the day's
# worklist, local day and times, each item's state; patient names only on
# a terminal or with --names, never in logs; a day with no items says so.
. "${0%/*}/lib.sh"
exec 2>>"$T/stderr.log"

export WORKLIST_DB_PATH=$T/worklist.db GATEWAY_DATA_DIR=$T/var
export GATEWAY_ENV_FILE=/dev/null WORKLIST_TIMEZONE=Europe/London
mkdir -p "$GATEWAY_DATA_DIR"

gatewayctl worklist --date 2026-07-08 >/dev/null 2>"$T/nodb.err"
is "$?" 66 "no worklist.db: EX_NOINPUT"
ok "... saying so" grep -q 'no worklist.db at' "$T/nodb.err"

item() {	# ACCESSION NAME DATE TIME [STATION]
	_st=
	[ -n "${5:-}" ] && _st=",\"station_aet\":\"$5\""
	printf '{"schema_version":1,"action_id":"act-%s","action_type":"worklist.create_item","parameters":{"worklist_item":{"accession_number":"%s","participant":{"nhs_number":"9990005551","name":"%s","birth_date":"19700101","sex":"F"},"scheduled":{"date":"%s","time":"%s"%s},"procedure":{"modality":"MG","study_description":"Screening Mammography"}}}}\n' \
	    "$1" "$1" "$2" "$3" "$4" "$_st"
}
status() {
	printf '{"action_type":"worklist.update_status","parameters":{"worklist_item":{"accession_number":"%s","status":"%s"}}}\n' "$1" "$2"
}
{
	item ACCW1 'LATE^SLOT' 20260707 233000
	item ACCW2 'MORNING^SLOT' 20260708 080000 MAMMO2
	item ACCW3 'DONE^SLOT' 20260708 090000
	item ACCW4 'OTHER^DAY' 20260707 120000
	status ACCW2 "IN PROGRESS"
	status ACCW3 "IN PROGRESS"; status ACCW3 COMPLETED
} | mwlsync apply >/dev/null 2>&1

gatewayctl worklist --date 2026-07-08 >"$T/list" 2>"$T/ctl.log"
is "$?" 0 "gatewayctl worklist --date exits 0"
is "$(head -n 1 "$T/list")" "worklist for 2026-07-08 (Europe/London)" \
    "it names the day and the zone"
is "$(awk '/^[0-9][0-9]:[0-9][0-9] / { print $1, $2, $3, $4 }' "$T/list" | tr -s ' ' | tr '\n' ',')" \
    "00:30 ACCW1 SCHEDULED MG,09:00 ACCW2 IN PROGRESS,10:00 ACCW3 COMPLETED MG," \
    "the local day's items in local time (23:30 UTC the day before first), with their states"
ok "an item with no station is shown as any, a named one by its AE title" \
    sh -c "grep -q '^00:30 .* any ' '$T/list' && grep -q '^09:00 .* MAMMO2 ' '$T/list'"
ok "each item says when it arrived" grep -Eq '^00:30 .* 20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}$' "$T/list"
is "$(tail -n 1 "$T/list")" \
    "3 items: 1 scheduled, 1 in progress, 1 completed, 0 discontinued" \
    "a summary counts the states"
ok "into a pipe, no patient name is shown" \
    sh -c "! grep -q 'SLOT' '$T/list'"
gatewayctl worklist --date 2026-07-08 --names >"$T/names"
ok "--names shows them" grep -q '^00:30 .*LATE^SLOT' "$T/names"
if command -v script >/dev/null; then
	script -qec "gatewayctl worklist --date 2026-07-08" /dev/null >"$T/tty"
	ok "on a terminal the operator sees the names (as gatewayctl waiting)" \
	    grep -q 'MORNING^SLOT' "$T/tty"
else
	skip "script not installed: no terminal"
fi

out=$(gatewayctl worklist --date 2026-07-10)
case $out in
*"no worklist item is scheduled on this day: has the clinic's list arrived?"*)
	pass "a day without items asks whether the clinic's list arrived" ;;
*) fail "a day without items asks whether the clinic's list arrived"; diag "$out" ;;
esac
gatewayctl worklist --date 2026-7-8 >/dev/null 2>&1
is "$?" 64 "a malformed --date is a usage error"
WORKLIST_TIMEZONE=Atlantis/Capital gatewayctl worklist >/dev/null 2>"$T/zone.err"
is "$?" 78 "an unknown WORKLIST_TIMEZONE: EX_CONFIG"

out=$(sh "$GW_ROOT/pipeline/gatewayd" worklist --date 2026-07-08 2>>"$T/ctl.log")
is "$(echo "$out" | grep -c '^[0-9][0-9]:[0-9][0-9]  ACCW')" 3 \
    "gatewayd worklist passes through to gatewayctl"

# Without --date: today in the site's zone.  The zone is one whose date
# is not the UTC date now, and the item is scheduled at this moment, so
# it is on that zone's today and not on the UTC day.
zone=$(/usr/bin/python3 -c 'import datetime; print("Pacific/Kiritimati" if datetime.datetime.now(datetime.timezone.utc).hour >= 10 else "Etc/GMT+12")')
now=$(date -u +'%Y%m%d %H%M%S')
item ACCNOW 'NOW^SLOT' "${now% *}" "${now#* }" | mwlsync apply >/dev/null 2>&1
WORKLIST_TIMEZONE=$zone gatewayctl worklist >"$T/today"
ok "without --date it lists today in WORKLIST_TIMEZONE ($zone)" \
    grep -q ' ACCNOW ' "$T/today"

ok "no patient name or NHS number in the logs" \
    sh -c "! grep -q 'SLOT\|9990005551' '$T/ctl.log' '$T/stderr.log'"
done_testing
