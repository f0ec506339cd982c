#!/bin/sh
# What an operator asks after a day's screening, with no sqlite3: gatewayd
# today lists what was sent, show lists each instance and where it went,
# resend queues a study's uploads again; patient names never reach a log.
. "${0%/*}/lib.sh"

GATEWAYD="$GW_ROOT/pipeline/gatewayd"
gw() { sh "$GATEWAYD" "$@"; }
start_gateway
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 4 --size 64x48 --studies 1 --seed 41 >/dev/null
ok "storescu sends a study of four views" \
    storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$T/mg"/*.dcm
ACC=$(dcm_value "$(ls "$T/mg"/*.dcm | head -n 1)" 0008,0050)
STUDY=$(dcm_value "$(ls "$T/mg"/*.dcm | head -n 1)" 0020,000d)
ready() { [ "$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE thumbnail_status = 'GENERATED'")" = 4 ]; }
wait_for 30 "the four images are indexed with previews" ready
NAME=$(sql "$PACS_DB" "SELECT patient_name FROM patients LIMIT 1")
ok "the study has a patient name to hide (${#NAME} bytes)" test -n "$NAME"

gw today >"$T/today.out" 2>"$T/today.err"
is "$?" 0 "gatewayd today exits 0"
is "$(grep -c "  $ACC " "$T/today.out")" 1 "... one line for the study, with its accession number"
line=$(grep "  $ACC " "$T/today.out")
ok "... four images" sh -c "echo '$line' | grep -Eq ' 4  '"
views=
for v in RCC LCC RMLO LMLO; do
	views="$views $(echo "$line" | grep -o "$v" | head -n 1)"
done
is "$views" " RCC LCC RMLO LMLO" "... its four views"
ok "... four previews made" sh -c "echo '$line' | grep -q ' 4/4 '"
ok "... and none sent yet (no cloud)" sh -c "echo '$line' | grep -q '0/4 sent'"
ok "... the count of studies" grep -q '^1 study$' "$T/today.out"
ok "... and no patient name when not on a terminal" sh -c "! grep -qF '$NAME' '$T/today.out'"
gw today --names >"$T/names.out" 2>/dev/null
ok "--names shows the patient's name" grep -qF "$NAME" "$T/names.out"
gw studies --date 2000-01-01 >"$T/old.out" 2>/dev/null
ok "another day lists nothing" grep -q '^0 studies$' "$T/old.out"
gw studies --date yesterday >/dev/null 2>&1
is "$?" 64 "a date that is not YYYY-MM-DD is a usage error"

gw show "$ACC" >"$T/show.out" 2>&1
is "$?" 0 "gatewayd show ACCESSION exits 0"
ok "... it names the study" grep -q "^study $STUDY" "$T/show.out"
missing=0
for f in "$T/mg"/*.dcm; do
	grep -q "^  instance $(dcm_value "$f" 0008,0018)\$" "$T/show.out" || missing=$((missing + 1))
done
is "$missing" 0 "... every SOP instance sent is listed"
is "$(grep -c "store:   $T/var/store/" "$T/show.out")" 4 "... each with its file in the store"
ok "... and those files exist" sh -c "grep 'store:' '$T/show.out' | awk '{ print \$2 }' | xargs ls >/dev/null"
is "$(grep -c 'preview: GENERATED ' "$T/show.out")" 4 "... each with its preview"
is "$(grep -c 'cloud:   HELD, 0 attempts' "$T/show.out")" 4 \
    "... and its cloud state: HELD, for no cloud is configured"
gw show "$STUDY" >"$T/show2.out" 2>&1
ok "show takes the Study Instance UID too" cmp -s "$T/show.out" "$T/show2.out"
gw show NO-SUCH-ACC >/dev/null 2>"$T/none.err"
is "$?" 66 "an unknown study: EX_NOINPUT"
ok "... saying so" grep -q 'no study with accession number or Study Instance UID NO-SUCH-ACC' "$T/none.err"

is "$(count_files "$T/var/spool/relay/new")" 0 "... and nothing waits in the relay spool"
gw resend "$ACC" >/dev/null 2>"$T/resend.err"
is "$?" 78 "resend with no cloud configured: EX_CONFIG"
ok "... saying why" grep -q 'the cloud is not configured (CLOUD_API_ENDPOINT)' "$T/resend.err"
export CLOUD_API_ENDPOINT=https://127.0.0.1:9/api	# nothing sends here
gw resend "$ACC" >"$T/resend.out" 2>"$T/resend.err"
is "$?" 0 "gatewayd resend exits 0"
ok "... saying how many" grep -q "^4 uploads queued again for $ACC" "$T/resend.out"
is "$(grep -l '^kind=image$' "$T/var/spool/relay/new/"* 2>/dev/null | wc -l | tr -d ' ')" 4 \
    "... four image jobs in the relay spool"
gw resend "$ACC" >/dev/null 2>&1
is "$(ls "$T/var/spool/relay/new" | wc -l | tr -d ' ')" 4 "... and again: still four (one per object)"

# A study sent without an accession number (an exam done without a
# booking): today names it by its Study Instance UID, which show takes.
"$GW_ROOT/t/tools/gen-mammo" "$T/noacc" 1 --size 64x48 --studies 1 --seed 42 >/dev/null
dcmodify -nb -ma "(0008,0050)=" "$T/noacc"/*.dcm 2>/dev/null
NOACC=$(dcm_value "$(ls "$T/noacc"/*.dcm)" 0020,000d)
storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$T/noacc"/*.dcm
indexed() { [ "$(sql "$PACS_DB" "SELECT count(*) FROM instances")" = 5 ]; }
wait_for 30 "a study without an accession number is indexed" indexed
gw today >"$T/today2.out" 2>>"$T/today.err"
is "$(awk -v u="$NOACC" '$2 == u' "$T/today2.out" | wc -l | tr -d ' ')" 1 \
    "today names a study without an accession number by its Study Instance UID"
ok "... in the accession column, not an empty one" sh -c "! grep -Eq '^[0-9:]+ +- ' '$T/today2.out'"
gw show "$NOACC" >"$T/show3.out" 2>&1
ok "... which show takes" grep -q "^study $NOACC\$" "$T/show3.out"

stop_gateway
ok "no patient name in the gateway's log" sh -c "! grep -qF '$NAME' '$T/gatewayd.log' '$T/resend.err' '$T/today.err'"
done_testing
