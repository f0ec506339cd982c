#!/bin/sh
# 4900-relaysend-outage: relaysend during a cloud outage is quiet and
# direct.  25 image jobs meet a Manage API answering 503: the outage is
# one warn line (the job kind, the error, how many are queued), a new
# kind of error one more, each job's retries are debug lines only, the
# recovery one info line; while it lasts a summary comes every
# RELAY_SUMMARY_SECONDS (jobs per kind, the oldest, the last error); one
# whose jobs are all settled otherwise (refused) ends with an info line.
# After the fix `gatewayd retry` (gatewayctl retry) sends every waiting
# job at once, though their next attempt was an hour away; failed jobs
# stay failed (relaysend --retry-failed).  Line counts are checked, not
# times: the outage lasts until every job was tried several times.
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
command -v openssl >/dev/null || skip_all "openssl not installed"
command -v curl >/dev/null || skip_all "curl not installed"

cloud_off
unset LOG_LEVEL
export RELAY_SUMMARY_SECONDS=0	# part 1 counts lines: no summaries
gw() { sh "$GW_ROOT/pipeline/gatewayd" "$@"; }

# With no cloud nothing sends the relay's jobs: retry says so.
dcmindex --init 2>/dev/null
gw retry >/dev/null 2>"$T/retry.err"
is "$?" 78 "retry with no cloud configured: EX_CONFIG"
ok "... saying why" grep -q 'the cloud is not configured' "$T/retry.err"

api_start
export CLOUD_API_TOKEN=sesame
LOG=$T/relaysend.log
acc_sql() {	# acc_sql ACCESSION EXPR: EXPR over its instances
	sql "$PACS_DB" "SELECT $2 FROM stored_instances WHERE accession_number = '$1'"
}
lines() { grep -c "$1" "$LOG"; }	# lines PATTERN: in relaysend's log
# said: the lines other than the start's (started, the credential, events off)
said() { grep -v -e 'msg=started' -e 'msg=credential ' -e 'msg="events are off' "$LOG" | wc -l | tr -d ' '; }

# 1. The outage: 25 jobs, the API answers 503.
item act-91 ACC091000
ok "25 images are ingested" ingest 91 25
api_fault '?status=503&count=-1'
bg relaysend relaysend
SENDER=$BG_PID
tried() { [ "$(acc_sql ACC091000 'min(upload_attempt_count)')" -ge "$1" ]; }
wait_for 120 "every one of the 25 jobs is tried at least four times" tried 4
attempts=$(acc_sql ACC091000 'sum(upload_attempt_count)')
ok "($attempts attempts failed)" test "$attempts" -ge 100
is "$(lines 'msg="cannot deliver to the Manage API: its jobs wait and are retried with back-off"')" 1 \
	"the outage is said once, however many jobs and attempts"
ok "... at warn, with the job kind, the jobs queued and the error" \
	grep -q 'level=warn .*msg="cannot deliver to the Manage API.* kind=image queued=25 error="HTTP 503' "$LOG"
is "$(lines 'will retry')" 0 "no job's retry is logged at info or above"
is "$(said)" 1 "the log holds that one line, nothing per job or attempt"

# A new kind of error while it lasts: said once more.
api_fault '?status=502&count=-1'
all_502() { [ "$(acc_sql ACC091000 "sum(upload_error LIKE 'HTTP 502%')")" = 25 ]; }
wait_for 120 "every job meets the 502 too" all_502
is "$(lines 'msg="the Manage API fails another way too" kind=image queued=[0-9]* error="HTTP 502')" 1 \
	"the first error of another kind is said once"
is "$(said)" 2 "... and nothing else"

# Their next attempt an hour away (Retry-After), the API is fixed.
api_fault '?status=503&count=-1&retry_after=3600'
far() {	# every job's next attempt is at least 50 minutes away
	now=$(date +%s)
	for f in "$SPOOL"/new/*; do
		n=$(sed -n 's/^next_attempt_ms=//p' "$f")
		[ $((n / 1000 - now)) -ge 3000 ] || return 1
	done
}
wait_for 120 "every job waits an hour (Retry-After: 3600)" far
api_fault /clear
gw retry >"$T/retry.out" 2>>"$T/ctl.log"
is "$?" 0 "gatewayd retry passes through to gatewayctl retry"
is "$(cat "$T/retry.out")" "25 waiting jobs due now: relaysend woken" "... and says how many"
done25() { [ "$(acc_sql ACC091000 "sum(upload_status = 'COMPLETE')")" = 25 ]; }
wait_for 60 "after the fix every waiting job goes at once, not in an hour" done25
is "$(lines 'level=info .*msg="delivering to the Manage API again" kind=image out_seconds=[0-9]* failed_attempts=[0-9]*$')" 1 \
	"the recovery is one info line: how long, how many attempts failed"
is "$(lines 'msg=uploaded ')" 25 "each image's upload is one line"
all=$(acc_sql ACC091000 'sum(upload_attempt_count)')
is "$(said)" 28 "the whole outage ($all attempts, 25 jobs) cost three lines beside the uploads"
is "$(count_files "$SPOOL/new") $(count_files "$SPOOL/cur")" "0 0" "the relay spool is empty"

# retry leaves failed jobs as they are, and says so.
printf 'kind=image\nobject=%064d\nsop_instance_uid=1.2.3\nerror=HTTP 400\nattempts=1\n' 0 \
	>"$SPOOL/failed/given-up"
echo "HTTP 400" >"$SPOOL/failed/given-up.reason"
gatewayctl retry >"$T/retry.out" 2>>"$T/ctl.log"
is "$(cat "$T/retry.out")" "0 waiting jobs due now: relaysend woken
1 failed job left as it is (gatewayd exec relaysend --retry-failed queues them again)" \
	"retry with nothing waiting says so, and leaves the failed job to relaysend --retry-failed"
ok "... which stays in failed/" test -f "$SPOOL/failed/given-up"
rm -f "$SPOOL/failed/given-up" "$SPOOL/failed/given-up.reason"
kill -TERM "$SENDER"; wait "$SENDER"

# 2. While an outage lasts, a summary every RELAY_SUMMARY_SECONDS; each
# retry is a debug line.
item act-92 ACC092000
ok "two more images are ingested" ingest 92 2
api_fault '?status=503&count=-1'
: >"$LOG"
RELAY_SUMMARY_SECONDS=1 LOG_LEVEL=debug bg relaysend2 relaysend
LOG=$T/relaysend2.log
summary() { grep -q 'msg="still cannot deliver to the Manage API"' "$LOG"; }
wait_for 60 "while the outage lasts a summary is logged" summary
ok "... at warn: the jobs retrying per kind, the oldest, the attempts and the last error" \
	grep -Eq 'level=warn .*msg="still cannot deliver to the Manage API" for_seconds=[0-9]+ failed_attempts=[0-9]+ retrying=2 kinds=image:2 oldest_seconds=[0-9]+ last_error="HTTP 503' "$LOG"
ok "each retry is a debug line" grep -q 'level=debug .*msg="will retry" .*kind=image accession_number=ACC092000' "$LOG"
# Settled otherwise: the API now refuses the study (403); with no job
# left retrying the outage ends, said once, and the summaries stop.
api_fault '?status=403&count=-1'
refused() { [ "$(acc_sql ACC092000 "sum(upload_status = 'REFUSED')")" = 2 ]; }
wait_for 60 "the API refuses both images (403)" refused
over() { grep -q 'level=info .*msg="no job waits for the Manage API any more" out_seconds=[0-9]* failed_attempts=[0-9]*$' "$LOG"; }
wait_for 20 "an outage whose jobs were all settled otherwise ends with one info line" over

NAME=$(sql "$PACS_DB" "SELECT patient_name FROM patients LIMIT 1")
ok "no patient name in the logs" sh -c "! grep -qF '$NAME' '$T/relaysend.log' '$LOG' '$T/ctl.log'"
done_testing
