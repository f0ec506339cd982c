#!/bin/sh
# gatewayd status run by another user (an operator, monitoring): a gateway
# that runs is running, a directory it may not read is "?" and says so,
# and a run directory closed to it is "cannot tell" (4), never "down" (3).
. "${0%/*}/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root to run status as nobody"
command -v runuser >/dev/null || skip_all "runuser not installed"
GATEWAYD="$GW_ROOT/pipeline/gatewayd"
chmod 755 "$T"
as_nobody() { runuser -u nobody -- env GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR="$T/var" \
    GW_BIN="$GW_BIN" PATH="$PATH" sh "$GATEWAYD" "$@"; }

start_gateway
ok "nobody can read the test's data directory" runuser -u nobody -- test -r "$T/var/run/gatewayd.pid"

as_nobody status >"$T/status.out" 2>"$T/status.err"
is "$?" 0 "status as nobody exits 0 while root's gateway runs"
ok "... and says running, not 'not running'" grep -q '^gatewayd: running (pid ' "$T/status.out"
ok "... with storescp-front running, not stopped" grep -Eq '^storescp-front +running +[0-9]+ ' "$T/status.out"
ok "... and dcmindex running" grep -Eq '^dcmindex +running +[0-9]+ ' "$T/status.out"

chmod 700 "$T/var/spool/relay/failed" "$T/var/quarantine"
as_nobody status >"$T/status.out" 2>"$T/status.err"
is "$?" 0 "with some directories closed, status as nobody still exits 0"
ok "... the relay failed count is ?, not 0" grep -Eq '^relay +[0-9]+ +[0-9]+ +\?$' "$T/status.out"
ok "... the quarantine count is ?, not 0" grep -q '^quarantined files: *?' "$T/status.out"
ok "... and it names what it could not read" \
    sh -c "grep -q 'user nobody may not read:.*spool/relay/failed' '$T/status.err' &&
           grep -q 'quarantine' '$T/status.err'"

chmod 700 "$T/var/run"
as_nobody status >"$T/status.out" 2>"$T/status.err"
is "$?" 4 "a run directory closed to nobody: status exits 4 (cannot tell), not 3"
ok "... and says it cannot tell, naming the directory" \
    grep -q "cannot tell whether it runs: $T/var/run is not readable by user nobody" "$T/status.err"
ok "... and that a gatewayd process runs" grep -q 'a gatewayd process runs on this machine' "$T/status.err"
ok "... without printing zero counts" sh -c "! grep -q '^index ' '$T/status.out'"
chmod 755 "$T/var/run" "$T/var/spool/relay/failed" "$T/var/quarantine"

chmod 700 "$T/var"
as_nobody status --check >"$T/check.out" 2>&1
is "$?" 3 "status --check as nobody on a closed data directory: UNKNOWN (3)"
ok "... in one Nagios line" grep -q '^GATEWAY UNKNOWN - cannot read ' "$T/check.out"
chmod 755 "$T/var"

printf 'GATEWAY_DATA_DIR=%s/var\n' "$T" >"$T/gateway.env"
chmod 600 "$T/gateway.env"
runuser -u nobody -- env GATEWAY_ENV_FILE="$T/gateway.env" GW_BIN="$GW_BIN" PATH="$PATH" \
    sh "$GATEWAYD" status >"$T/status.out" 2>"$T/status.err"
is "$?" 4 "a configuration file closed to nobody: status exits 4 (cannot tell), not 78"
ok "... saying which file" grep -q "configuration file $T/gateway.env is not readable by user nobody" "$T/status.err"
runuser -u nobody -- env GATEWAY_ENV_FILE="$T/gateway.env" GW_BIN="$GW_BIN" PATH="$PATH" \
    sh "$GATEWAYD" status --check >"$T/check.out" 2>&1
is "$?" 3 "... and status --check says UNKNOWN (3)"
ok "... in its one line" grep -q "^GATEWAY UNKNOWN - configuration file $T/gateway.env is not readable by user nobody" "$T/check.out"

stop_gateway
GATEWAY_DATA_DIR=$T/var GW_BIN=$GW_BIN sh "$GATEWAYD" status >"$T/status.out" 2>&1
is "$?" 3 "once stopped, status exits 3 (not running)"
as_nobody status >"$T/status.out" 2>&1
is "$?" 3 "... for nobody too"

done_testing
