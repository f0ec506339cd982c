#!/bin/sh
# 6210-qrscp-commit-restart: commitment reports that cannot go on the
# requester's association go on a new one, to the requester's own SCP
# (its address from QR_DESTINATIONS; dcmjs-dimse, t/peers/commit.js
# listen).  A request survives a SIGKILL of qrscp between the N-ACTION-RSP
# and the report and is answered after the restart; a requester missing
# from QR_DESTINATIONS is logged, kept and retried, and answered once it is
# listed; two qrscp resuming at once never send one report twice.
. "${0%/*}/lib.sh"
. "${0%/*}/qr/lib.sh"

command -v node >/dev/null 2>&1 || skip_all "node not installed"
command -v setsid >/dev/null 2>&1 || skip_all "setsid not installed"
[ -d "$GW_ROOT/node_modules/dcmjs-dimse" ] ||
    skip_all "dcmjs-dimse not installed (npm ci)"

ingest_mammograms 4 621

LPORT=$(free_port)
(cd "$GW_ROOT" && exec node -r ./t/peers/nodelay.js t/peers/commit.js listen "$LPORT") \
    >"$T/reports" 2>"$T/listen.err" &
LISTEN_PID=$!
on_exit "kill $LISTEN_PID 2>/dev/null"
wait_for 20 "the requester's SCP listens" port_open "$LPORT"
printf 'MODALITY1 127.0.0.1 %s\nOTHERAE 127.0.0.1 %s\n' "$LPORT" "$LPORT" >"$T/destinations"

QR_PORT=$(free_port)
export QR_PORT QR_BIND=127.0.0.1 QR_COMMIT_RETRY_SECONDS=1 QR_COMMIT_RETRY_MAX_SECONDS=2

# qrscp in a session of its own, so that SIGKILL takes its association
# processes too, as a power cut would; run/qr.state names it (setsid may
# fork).
start_qr() {
	rm -f "$GATEWAY_DATA_DIR/run/qr.state"
	bg qrscp setsid qrscp "$@"
	wait_until 20 port_open "$QR_PORT"
	wait_until 10 grep -q '^pid=' "$GATEWAY_DATA_DIR/run/qr.state"
	QR_PID=$(sed -n 's/^pid=//p' "$GATEWAY_DATA_DIR/run/qr.state")
}
stop_qr() {
	kill -TERM "$QR_PID"
	wait_until 20 sh -c "! kill -0 $QR_PID 2>/dev/null"
	cat "$T/qrscp.log" >>"$T/qrscp.all"
}
# A live (not zombie) process in qrscp's process group.
group_alive() {
	ps -eo pgid=,stat= | awk -v g="$QR_PID" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'
}
group_gone() {
	! group_alive
}
kill_qr() {
	kill -KILL -"$QR_PID"
	wait_until 20 group_gone
	cat "$T/qrscp.log" >>"$T/qrscp.all"
}
QR_PID=
on_exit '[ -n "$QR_PID" ] && kill -TERM "$QR_PID" 2>/dev/null'
reported() {
	grep -q "^report event=$2 tx=$1 committed=$3 failed=0\$" "$T/reports"
}
state() {
	sql "$PACS_DB" "SELECT state FROM commitment_requests WHERE transaction_uid = '$1'"
}

# 1. The requester releases at once: the report goes on a new association.
export QR_COMMIT_REPORT_DELAY_MS=1000
start_qr --destinations "$T/destinations"
ok "qrscp listens" port_open "$QR_PORT"
is "$(commit_request MODALITY1 1.2.826.0.1.3680043.9.7.621.1 release $(cat "$T/refs") | sed -n 's/^status=//p')" \
    0x0000 "N-ACTION succeeds; the requester releases without waiting"
wait_for 30 "the report arrives on a new association to the requester's SCP" \
    reported 1.2.826.0.1.3680043.9.7.621.1 1 4
wait_for 10 "the request is recorded as reported" \
    sh -c "[ \"\$(sqlite3 '$PACS_DB' \"SELECT state || ' ' || attempts FROM commitment_requests WHERE transaction_uid = '1.2.826.0.1.3680043.9.7.621.1'\")\" = 'REPORTED 1' ]"
ok "qrscp logs that the report went on a new association" \
    grep -q 'commitment reported.*621.1.*association=new' "$T/qrscp.log"

# 2. SIGKILL between the N-ACTION-RSP and the report.
stop_qr
export QR_COMMIT_REPORT_DELAY_MS=600000
start_qr --destinations "$T/destinations"
# The requester waits for the report on its association, which qrscp
# holds back; it is killed meanwhile.
commit_request MODALITY1 1.2.826.0.1.3680043.9.7.621.2 wait $(cat "$T/refs") >"$T/r2" &
REQ_PID=$!
wait_for 30 "N-ACTION succeeds while the report is held back" \
    grep -q '^status=0x0000$' "$T/r2"
is "$(state 1.2.826.0.1.3680043.9.7.621.2)" PENDING "the request was persisted before the answer"
kill_qr
export QR_COMMIT_REPORT_DELAY_MS=0
ok "qrscp and its association processes are gone (SIGKILL)" group_gone
wait "$REQ_PID"
ok "no report was sent before the kill" sh -c "! grep -q 'tx=1.2.826.0.1.3680043.9.7.621.2' '$T/reports' '$T/r2'"
start_qr --destinations "$T/destinations"
wait_for 30 "after the restart the report arrives at the requester" \
    reported 1.2.826.0.1.3680043.9.7.621.2 1 4
wait_for 10 "and the request is recorded as reported" \
    sh -c "[ \"\$(sqlite3 '$PACS_DB' \"SELECT state FROM commitment_requests WHERE transaction_uid = '1.2.826.0.1.3680043.9.7.621.2'\")\" = REPORTED ]"
stop_qr

# 3. A requester that is not in QR_DESTINATIONS.
export QR_COMMIT_REPORT_DELAY_MS=1000
start_qr
for n in 3 4 5 6; do
	commit_request STRANGER 1.2.826.0.1.3680043.9.7.621.$n release $(cat "$T/refs") >"$T/s$n"
done
is "$(cat "$T/s3" "$T/s4" "$T/s5" "$T/s6" | sed -n 's/^status=//p' | sort -u)" 0x0000 \
    "four N-ACTIONs from an AE missing from QR_DESTINATIONS are accepted"
retried() {
	[ "$(sqlite3 "$PACS_DB" "SELECT count(*) FROM commitment_requests WHERE calling_aet = 'STRANGER' AND state = 'PENDING' AND attempts >= 2 AND last_error LIKE '%not in QR_DESTINATIONS%'")" = 4 ]
}
wait_for 30 "the reports cannot be delivered: kept pending, retried, the error recorded" retried
ok "each failed attempt is logged" \
    grep -q 'cannot deliver a commitment report.*calling_aet=STRANGER.*not in QR_DESTINATIONS' "$T/qrscp.log"
ok "qrscp keeps serving meanwhile" echoscu -aec SCREENING_QR 127.0.0.1 "$QR_PORT"
stop_qr

# 4. Listed now, with two qrscp resuming at once on the same pacs.db.
printf 'STRANGER 127.0.0.1 %s\n' "$LPORT" >>"$T/destinations"
export QR_COMMIT_REPORT_DELAY_MS=0
bg qrscp2 qrscp --port "$(free_port)" --destinations "$T/destinations"
start_qr --destinations "$T/destinations"
all_stranger() {
	[ "$(sqlite3 "$PACS_DB" "SELECT count(*) FROM commitment_requests WHERE calling_aet = 'STRANGER' AND state = 'REPORTED'")" = 4 ]
}
wait_for 30 "once the requester is listed every kept request is answered" all_stranger
for n in 3 4 5 6; do
	c=$(grep -c "^report event=1 tx=1.2.826.0.1.3680043.9.7.621.$n committed=4 failed=0\$" "$T/reports")
	[ "$c" = 1 ] || break
done
is "$c" 1 "two resumers at once deliver each report exactly once"
is "$(sql "$PACS_DB" "SELECT count(*) FROM commitment_requests WHERE state = 'PENDING'")" 0 \
    "nothing is left pending"
kill -TERM "$(cat "$T/qrscp2.pid")"
stop_qr
cat "$T/qrscp2.log" >>"$T/qrscp.all"
stop_gateway
not_ok "the logs carry no patient name, ID or birth date" \
    grep -E 'Ødegård|9007000|19600101' "$T/qrscp.all"
done_testing
