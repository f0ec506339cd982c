#!/bin/sh
# 6001-qrscp-net: qrscp's frame on the network, against dcmtk's echoscu
# and findscu and raw bytes (t/peers/dulraw.py): options and exit codes,
# the destinations file, the called and calling AE checks, contexts it
# does not serve, malformed PDUs, the association limit, a missing
# pacs.db (refused, never created), --status, and SIGTERM.
. "${0%/*}/lib.sh"

RAW="/usr/bin/python3 $GW_ROOT/t/peers/dulraw.py"
GATEWAY_DATA_DIR=$T/var
export GATEWAY_DATA_DIR
mkdir -p "$GATEWAY_DATA_DIR/run"
unset QR_AET QR_ALLOWED_AETS QR_DESTINATIONS PACS_DB_PATH

ok "--help exits 0 and names the options" sh -c 'qrscp --help | grep -q -- --destinations'
is "$(qrscp --version)" "qrscp 0.1.0" "--version"
qrscp --no-such-option >/dev/null 2>&1
is "$?" 64 "an unknown option exits EX_USAGE"

printf 'VIEWER 127.0.0.1 104\nVIEWER 127.0.0.1 105\n' >"$T/dests"
qrscp --destinations "$T/dests" 2>"$T/dup.err"
is "$?" 78 "an AE title listed twice exits EX_CONFIG"
ok "... naming the file and line" grep -q "dests:2: VIEWER is listed twice" "$T/dup.err"
printf '# comment\n\nVIEWER 127.0.0.1 notaport\n' >"$T/dests"
QR_DESTINATIONS=$T/dests qrscp 2>"$T/port.err"
is "$?" 78 "a bad port in QR_DESTINATIONS exits EX_CONFIG"
ok "... naming the line" grep -q 'dests:3: "notaport" is not a TCP port' "$T/port.err"
printf 'VIEWER 127.0.0.1 104 tls\nPACS2 localhost 11112 # after a comment\n' >"$T/dests"

PORT=$QR_PORT
bg qrscp qrscp --bind 127.0.0.1 --port "$PORT" --destinations "$T/dests" \
    --allow VIEWER,FINDSCU,ECHOSCU,DULRAW --max-associations 2 \
    --artim-seconds 2 --idle-seconds 2
QRSCP_PID=$BG_PID
wait_for 20 "qrscp listens on 127.0.0.1" port_open "$PORT"
wait_for 10 "it read both destinations" grep -q 'msg=listening.*destinations=2' "$T/qrscp.log"

echo_ok() { echoscu -to 5 -aec SCREENING_QR 127.0.0.1 "$PORT"; }
ok "C-ECHO succeeds" echo_ok
not_ok "a wrong called AE title is rejected" \
    echoscu -to 5 -aec NOT_OUR_AE 127.0.0.1 "$PORT"
wait_for 10 "... logged with the called AE and reason 7" \
    grep -q 'association rejected.*called_aet=NOT_OUR_AE.*reason="called AE title not recognised"' "$T/qrscp.log"
not_ok "a calling AE not on the allow-list is rejected" \
    echoscu -to 5 -aet STRANGER -aec SCREENING_QR 127.0.0.1 "$PORT"
wait_for 10 "... logged with the calling AE, the peer and reason 3" \
    grep -q 'association rejected" peer=127.0.0.1:[0-9]* calling_aet=STRANGER.*reason="calling AE title not recognised"' \
    "$T/qrscp.log"

# A modality worklist query is not ours: its context is refused, the
# association is not.
not_ok "a context for a SOP class it does not serve is refused (findscu -W)" \
    findscu -to 5 -W -aec SCREENING_QR 127.0.0.1 "$PORT" -k PatientName
ok "C-ECHO still succeeds" echo_ok

# No pacs.db yet: a query is refused with a reason, and nothing creates one.
findscu -v -to 5 -S -aec SCREENING_QR 127.0.0.1 "$PORT" \
    -k QueryRetrieveLevel=STUDY -k StudyInstanceUID >"$T/nodb.out" 2>&1
ok "a C-FIND with no pacs.db is refused (C000 family)" \
    grep -qa "Final Find Response (Failed: UnableToProcess)" "$T/nodb.out"
wait_for 10 "... with the reason logged" grep -q 'cannot open the index.*no pacs.db at' "$T/qrscp.log"
ok "... and pacs.db was not created" test ! -e "$GATEWAY_DATA_DIR/pacs.db"

# --- malformed input ---
probe_ends() {
	_out=$(DULRAW_CALLED=SCREENING_QR $RAW "$PORT" "$1") || return 1
	case $_out in
	closed*|abort*) return 0 ;;
	*) echo "server answered: $_out"; return 1 ;;
	esac
}
ok "garbage bytes end in abort or close" probe_ends garbage
ok "a PDU with a huge length ends in abort or close" probe_ends hugelen
ok "an A-ASSOCIATE-RQ with a bad item length ends in abort or close" probe_ends baditem
ok "a P-DATA before association ends in abort or close" probe_ends pdata-first
ok "a peer stalling mid-PDU is dropped" probe_ends stall-mid-pdu
ok "after all that, C-ECHO still succeeds" echo_ok

# --- the association limit ---
no_children() { [ "$(pgrep -P "$QRSCP_PID" | wc -l)" -le 1 ]; }	# the commitment resumer may run
wait_for 20 "the probes' processes are gone" no_children
ok "beyond --max-associations the extra one is rejected, the held ones work" \
    env DULRAW_CALLED=SCREENING_QR $RAW "$PORT" hold 2 \
    echoscu -to 5 -aec SCREENING_QR 127.0.0.1 "$PORT"
wait_for 10 "... said as local limit exceeded" \
    grep -q 'association rejected.*result=rejected-transient reason="local limit exceeded" source=3' "$T/qrscp.log"

# --- status ---
status_has() { qrscp --status | grep -q "$1"; }
wait_for 10 "--status: running, AE and port" \
    status_has "qrscp: running (pid $QRSCP_PID) AE SCREENING_QR port $PORT, 0 associations"
ok "run/qr.state names the port" grep -qx "port=$PORT" "$GATEWAY_DATA_DIR/run/qr.state"

# --- who may connect, by address ---
QR_ALLOWED_HOSTS=10.0.0.0/8,nonsense qrscp 2>"$T/hosts.err"
is "$?" 78 "a bad QR_ALLOWED_HOSTS exits EX_CONFIG"
ok "... naming the variable" grep -q 'bad QR_ALLOWED_HOSTS' "$T/hosts.err"
P2=$(free_port)
mkdir -p "$T/far/run" "$T/near/run"
GATEWAY_DATA_DIR=$T/far QR_ALLOWED_HOSTS="10.0.0.0/8, fd00::/8" bg qrscp-far qrscp --bind 127.0.0.1 --port "$P2"
wait_for 20 "a qrscp for other networks listens" port_open "$P2"
not_ok "a peer outside QR_ALLOWED_HOSTS is refused" echoscu -to 5 -aec SCREENING_QR 127.0.0.1 "$P2"
wait_for 10 "... logged with its address" \
    grep -q 'msg="connection refused" peer=127.0.0.1:[0-9]* reason="address not allowed"' "$T/qrscp-far.log"
P3=$(free_port)
GATEWAY_DATA_DIR=$T/near bg qrscp-near qrscp --bind 127.0.0.1 --port "$P3" --allow-hosts 10.1.2.3,127.0.0.0/30
wait_for 20 "a qrscp for loopback listens" port_open "$P3"
ok "a peer inside --allow-hosts gets C-ECHO" echoscu -to 5 -aec SCREENING_QR 127.0.0.1 "$P3"

kill -TERM "$QRSCP_PID"
stopped() { ! kill -0 "$QRSCP_PID" 2>/dev/null; }
wait_for 15 "SIGTERM stops it" stopped
wait_for 10 "... cleanly" grep -q 'msg=stopping' "$T/qrscp.log"
ok "--status then says not running" sh -c "qrscp --status | grep -q 'qrscp: not running (AE SCREENING_QR, port $PORT)'"
ok "no patient data and no sanitizer report in the log" \
    sh -c "! grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error' '$T/qrscp.log'"
done_testing
