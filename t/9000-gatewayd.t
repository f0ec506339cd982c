#!/bin/sh
# The supervisor: starts the gateway, supervises and restarts its children,
# stops every process it started, and refuses to start when it cannot run.
. "${0%/*}/lib.sh"

GATEWAYD="$GW_ROOT/pipeline/gatewayd"
CT_SMALL=$PYDICOM_FILES/CT_small.dcm
export GATEWAY_ENV_FILE=/dev/null

# gw ARGS...: gatewayd with this test's data directory.
gw() { GATEWAY_DATA_DIR=$T/var sh "$GATEWAYD" "$@"; }

# state NAME KEY: a field of the supervisor's record of child NAME.
state() { sed -n "s/^$2=//p" "$T/var/run/$1.state" 2>/dev/null; }

# group_empty PGID: no live process is left in the process group.
group_empty() {
	! ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'
}

# no_process_mentions TEXT: no process has TEXT in its command line.
no_process_mentions() { ! pgrep -f "$1" >/dev/null; }

# ------------------------------------------------------------ the CLI

is "$(sh "$GATEWAYD" --version)" "gatewayd 0.1.0" "--version prints the version"
ok "--help explains run, status and stop" \
    sh -c "sh '$GATEWAYD' --help | grep -q 'gatewayd run | status | stop'"
sh "$GATEWAYD" frobnicate >/dev/null 2>&1
is "$?" 64 "an unknown command is a usage error (EX_USAGE)"

# ------------------------------------------------------- refusals first

: >"$T/not-a-dir"
GATEWAY_DATA_DIR=$T/not-a-dir/var PACS_PORT=$(free_port) \
    sh "$GATEWAYD" run >/dev/null 2>"$T/refuse-dir.log"
is "$?" 73 "a data directory that cannot be created is refused (EX_CANTCREAT)"
ok "... with a message naming it" grep -q 'cannot create data directory .*not-a-dir/var' "$T/refuse-dir.log"
is "$(wc -l <"$T/refuse-dir.log" | tr -d ' ')" 1 "... on one line"

GATEWAY_DATA_DIR=$T/nobin GW_BIN=$T/empty PACS_PORT=$(free_port) \
    sh "$GATEWAYD" run >/dev/null 2>"$T/refuse-bin.log"
is "$?" 69 "missing gateway programs are refused (EX_UNAVAILABLE)"
ok "... with a message naming the program" grep -q 'gatewayctl missing' "$T/refuse-bin.log"

# -------------------------------------------------------------- start

cd "$T" || exit 1
start_gateway || { echo "Bail out! gatewayd did not start"; cat "$T/gatewayd.log"; exit 1; }
pass "gatewayd starts and storescp-front listens on PACS_PORT"
ok "echoscu succeeds against PACS_AET" echoscu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT"
wait_for 20 "mwlscp answers C-ECHO as WORKLIST_AET on WORKLIST_PORT" \
    echoscu -aec SCREENING_MWL 127.0.0.1 "$WORKLIST_PORT"
is "$(cat "$T/var/run/gatewayd.pid")" "$GATEWAYD_PID" "the pid file holds the supervisor's pid"

tree_ok() {
	for d in incoming store quarantine run; do [ -d "$T/var/$d" ] || return 1; done
	for s in index thumb relay; do
		for d in tmp new cur failed; do [ -d "$T/var/spool/$s/$d" ] || return 1; done
		[ -p "$T/var/spool/$s/wake" ] || return 1
	done
}
ok "the var tree and a wake FIFO per spool exist" tree_ok
ok "pacs.db is initialised" test -s "$T/var/pacs.db"

wait_for 10 "both children are recorded as running" \
    sh -c "grep -q state=running '$T/var/run/storescp-front.state' && grep -q state=running '$T/var/run/dcmindex.state'"
STORESCP_PID=$(state storescp-front pid)
DCMINDEX_PID=$(state dcmindex pid)
is "$(ps -o pgid= -p "$STORESCP_PID" | tr -d ' ')" "$STORESCP_PID" \
    "storescp-front leads its own process group"
ok "storescp-front runs with TCP_NODELAY=1" \
    sh -c "tr '\\0' '\\n' </proc/$STORESCP_PID/environ | grep -qx TCP_NODELAY=1"

# ------------------------------------------------------------ ingest

ok "storescu sends CT_small.dcm" storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$CT_SMALL"
CT_UID=$(dcm_value "$CT_SMALL" 0008,0018)
indexed() {
	[ "$(sql "$T/var/pacs.db" "SELECT count(*) FROM stored_instances WHERE sop_instance_uid = '$1'")" = 1 ]
}
wait_for 20 "the instance reaches stored_instances" indexed "$CT_UID"

# storescp would paste a calling AE title into the hook's shell command:
# storescp-front gives it to the hook in the environment instead.
EVIL_AET='"$(touch pwned)"'
ok "storescu sends with a calling AE title full of shell syntax" \
    storescu -aet "$EVIL_AET" -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$PYDICOM_FILES/MR_small.dcm"
wait_for 20 "... it is indexed" indexed "$(dcm_value "$PYDICOM_FILES/MR_small.dcm" 0008,0018)"
ok "... the AE title was not run as a command" test ! -e "$T/pwned"
is "$(sql "$T/var/pacs.db" "SELECT count(*) FROM receipts WHERE calling_aet = '$EVIL_AET'")" 1 \
    "... and is recorded literally"

# ------------------------------------------------------------ status

gw status >"$T/status.out" 2>&1
is "$?" 0 "gatewayd status exits 0 while the supervisor runs"
ok "status shows storescp-front running with its pid" \
    grep -Eq "^storescp-front +running +$STORESCP_PID " "$T/status.out"
ok "status shows dcmindex running" grep -Eq "^dcmindex +running +$DCMINDEX_PID " "$T/status.out"
ok "status shows mwlscp running" grep -Eq "^mwlscp +running +[0-9]+ " "$T/status.out"
ok "status shows qrscp running" grep -Eq "^qrscp +running +[0-9]+ " "$T/status.out"
ok "... and its port line" grep -q "^qrscp: running (pid [0-9]*) AE SCREENING_QR port $QR_PORT, " "$T/status.out"
ok "qrscp answers C-ECHO on QR_PORT" echoscu -aec SCREENING_QR 127.0.0.1 "$QR_PORT"
ok "status shows the depth of every spool" \
    sh -c "grep -Eq '^index +[0-9]+ +[0-9]+ +[0-9]+$' '$T/status.out' &&
	   grep -Eq '^thumb ' '$T/status.out' && grep -Eq '^relay ' '$T/status.out'"
ok "status shows quarantine and free disk" \
    sh -c "grep -q '^quarantined files: *0' '$T/status.out' && grep -q ' free of ' '$T/status.out'"

# ------------------------------------------------------------ restarts

kill -KILL "$DCMINDEX_PID"
restarted() {
	p=$(state dcmindex pid)
	[ -n "$p" ] && [ "$p" != "$DCMINDEX_PID" ] && kill -0 "$p" 2>/dev/null
}
wait_for 10 "a killed dcmindex is restarted with a new pid" restarted
is "$(state dcmindex restarts)" 1 "... and the restart is counted"
ok "... and its exit is logged with the signal" \
    grep -q 'msg="child exited" child=dcmindex .*signal=KILL' "$T/gatewayd.log"

# ------------------------------------------------ a second supervisor

gw run >/dev/null 2>"$T/second.log"
is "$?" 75 "a second gatewayd on the same data directory is refused (EX_TEMPFAIL)"
ok "... saying another gatewayd runs" grep -q "another gatewayd (pid $GATEWAYD_PID)" "$T/second.log"

GATEWAY_DATA_DIR=$T/var2 PACS_PORT=$GW_PORT sh "$GATEWAYD" run >/dev/null 2>"$T/busy.log"
is "$?" 69 "a gatewayd on a port already in use is refused (EX_UNAVAILABLE)"
ok "... saying the port is in use" grep -q "PACS_PORT $GW_PORT is already in use" "$T/busy.log"
ok "... and starts nothing" no_process_mentions "$T/var2"
ok "... and leaves no pid file" test ! -e "$T/var2/run/gatewayd.pid"

# --------------------------------------------------------------- stop

STORESCP_PID=$(state storescp-front pid)
DCMINDEX_PID=$(state dcmindex pid)
kill -TERM "$GATEWAYD_PID"
wait_for 15 "gatewayd exits on SIGTERM" sh -c "! kill -0 $GATEWAYD_PID 2>/dev/null"
wait "$GATEWAYD_PID"
is "$?" 0 "... with status 0"
ok "... and no process of storescp-front's group is left" group_empty "$STORESCP_PID"
ok "... nor of dcmindex's" group_empty "$DCMINDEX_PID"
ok "... nor any process naming the data directory" no_process_mentions "$T/var"
not_ok "... and the port is free" port_open "$GW_PORT"
ok "... and the pid file is gone" test ! -e "$T/var/run/gatewayd.pid"
not_ok "the logs carry no patient name or ID" \
    grep -E 'CompressedSamples|[^0-9A-Za-z](1CT1|4MR1)([^0-9A-Za-z]|$)' "$T/gatewayd.log"
gw status >/dev/null 2>&1
is "$?" 3 "gatewayd status exits 3 when the supervisor is not running"

# ---------------------------------------------- gatewayd stop, restart

mv "$T/gatewayd.log" "$T/gatewayd-first.log"
start_gateway || { echo "Bail out! gatewayd did not start again"; exit 1; }
pass "gatewayd starts again on the same data directory"
gw stop
is "$?" 0 "gatewayd stop returns 0"
ok "... once the supervisor has gone" sh -c "! kill -0 $GATEWAYD_PID 2>/dev/null"
ok "... leaving no process naming the data directory" no_process_mentions "$T/var"

done_testing
