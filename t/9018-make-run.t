#!/bin/sh
# 9018-make-run: make run (tools/run) is safe on a server: it never reads
# the installed /etc/screening-gateway/gateway.env, takes ./gateway.env
# only when there is one and says so, logs to the data directory and
# exits with gatewayd's status.  make demo needs no npm registry either,
# and pipeline/gatewayd finds the checkout's programs without GW_BIN.
. "${0%/*}/lib.sh"

ok "make demo's dependencies are 'tools/deps run'" sh -c "make -n -C '$GW_ROOT' demo 2>/dev/null | grep -q 'tools/deps run'"
ok "... never 'tools/deps all'" sh -c "! make -n -C '$GW_ROOT' demo 2>/dev/null | grep -q 'tools/deps all'"
ok "make run runs tools/run" sh -c "make -n -C '$GW_ROOT' run 2>/dev/null | grep -q 'tools/run'"

# tools/run works on the checkout it is in: a copy of the parts it needs,
# so that ./gateway.env is ours.
mkdir -p "$T/co/tools" "$T/co/pipeline"
cp "$GW_ROOT/tools/run" "$T/co/tools/"
cp "$GW_ROOT/pipeline/gatewayd" "$T/co/pipeline/"
unset GATEWAY_ENV_FILE GATEWAY_DATA_DIR PACS_PORT

# A port in use: gatewayd refuses, and so does make run.
PORT=$(free_port)
bg listener /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
time.sleep(60)' "$PORT"
wait_for 5 "a listener holds the storage port" port_open "$PORT"
PACS_PORT=$PORT GW_BIN=$GW_BIN sh "$T/co/tools/run" >"$T/run.out" 2>&1
is "$?" 69 "make run exits with gatewayd's status when the port is in use (EX_UNAVAILABLE)"
ok "... saying there is no ./gateway.env and /etc is never read" \
	grep -q 'no ./gateway.env: the defaults (make run never reads /etc/screening-gateway/gateway.env)' "$T/run.out"
ok "... logging to the checkout's var/gatewayd.log" grep -q "logging to $T/co/var/gatewayd.log" "$T/run.out"
ok "... which holds gatewayd's refusal" grep -q 'PACS_PORT' "$T/co/var/gatewayd.log"

# ./gateway.env, when there is one, is the configuration.
printf 'GATEWAY_DATA_DIR=%s/site\nPACS_PORT=%s\n' "$T" "$PORT" >"$T/co/gateway.env"
GW_BIN=$GW_BIN sh "$T/co/tools/run" >"$T/run2.out" 2>&1
is "$?" 69 "with ./gateway.env the same refusal"
ok "... saying the configuration is ./gateway.env" grep -q 'configuration from ./gateway.env' "$T/run2.out"
ok "... and logging to its data directory" test -s "$T/site/gatewayd.log"

# From a checkout after make, pipeline/gatewayd finds build/bin itself.
mkdir -p "$T/co/build"
ln -s "$GW_BIN" "$T/co/build/bin"
GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$T/co/var dcmindex --init 2>/dev/null
(cd "$T" && env -u GW_BIN GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$T/co/var \
	sh "$T/co/pipeline/gatewayd" today) >"$T/today.out" 2>&1
is "$?" 0 "pipeline/gatewayd today works from a checkout without GW_BIN"
(cd "$T" && env -u GW_BIN GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$T/co/var \
	sh "$T/co/pipeline/gatewayd" status) >"$T/status.out" 2>&1
is "$?" 3 "... and gatewayd status (not running: 3)"
ok "... with qrscp's line from its own state, never 'not installed'" \
	sh -c "grep -q '^qrscp: not started' '$T/status.out' && ! grep -q 'not installed' '$T/status.out'"
done_testing
