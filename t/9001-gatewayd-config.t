#!/bin/sh
# gatewayd's configuration: gateway.env is read literally, the environment
# wins over it, and a port taken behind the supervisor's back is noticed.
. "${0%/*}/lib.sh"

GATEWAYD="$GW_ROOT/pipeline/gatewayd"
unset GATEWAY_DATA_DIR PACS_AET PACS_PORT WORKLIST_AET WORKLIST_PORT LOG_LEVEL \
    AZURE_RELAY_SHARED_ACCESS_KEY GATEWAY_ENV_FILE

# value KEY: KEY's line in the output of gatewayd config.
value() { sed -n "s/^$1=//p" "$T/config.out"; }

cat >"$T/gateway.env" <<'EOF'
# a comment, then a blank line

PACS_AET="SITE PACS"
  PACS_PORT=11112
export WORKLIST_AET='MWL"1'
WORKLIST_PORT=$(touch pwned)
LOG_LEVEL=DEBUG
AZURE_RELAY_SHARED_ACCESS_KEY=not-for-logs
GATEWAY_DATA_DIR=data
lower_case=ignored
no equals sign
EOF
printf 'CLOUD_API_ENDPOINT=https://example.invalid/api\r\n' >>"$T/gateway.env"

cd "$T" || exit 1
GATEWAY_ENV_FILE=$T/gateway.env PACS_PORT=4999 sh "$GATEWAYD" config >"$T/config.out" 2>"$T/config.err"
is "$?" 0 "gatewayd config reads the file"
is "$(value PACS_AET)" "SITE PACS" "a double-quoted value loses its quotes"
is "$(value WORKLIST_AET)" 'MWL"1' "a single-quoted value is taken literally, with an optional export"
is "$(value WORKLIST_PORT)" '$(touch pwned)' "a value is never evaluated"
ok "... and nothing ran" test ! -e "$T/pwned"
is "$(value PACS_PORT)" 4999 "the environment wins over the file"
is "$(value LOG_LEVEL)" debug "LOG_LEVEL is lower-cased"
is "$(value GATEWAY_DATA_DIR)" "$T/data" "a relative data directory is made absolute"
is "$(value PACS_DB_PATH)" "$T/data/pacs.db" "paths default under the data directory"
is "$(value CLOUD_API_ENDPOINT)" "https://example.invalid/api" "a CRLF line ending is dropped"
ok "secrets are not printed" sh -c "! grep -q not-for-logs '$T/config.out' '$T/config.err'"
ok "bad lines are reported by line number, without their value" \
    sh -c "grep -q 'bad name.* line=10' '$T/config.err' && grep -q 'without =.* line=11' '$T/config.err'"
is "$(value lower_case)" "" "a lower-case name is not imported"

if [ -e /etc/screening-gateway/gateway.env ]; then
	skip "./gateway.env is the fallback (this machine has /etc/screening-gateway/gateway.env)"
else
	sh "$GATEWAYD" config >"$T/config.out" 2>/dev/null
	is "$(value PACS_AET)" "SITE PACS" "without GATEWAY_ENV_FILE, ./gateway.env is read"
fi
rm -f "$T/gateway.env"
GATEWAY_ENV_FILE=/dev/null sh "$GATEWAYD" config >"$T/config.out" 2>/dev/null
is "$(value PACS_AET) $(value PACS_PORT) $(value WORKLIST_AET) $(value WORKLIST_PORT) $(value LOG_LEVEL)" \
    "SCREENING_PACS 4244 SCREENING_MWL 4243 info" "the seed's defaults apply with no configuration"
is "$(value GATEWAY_DATA_DIR)" "$T/var" "the data directory defaults to ./var"

GATEWAY_ENV_FILE=$T/missing.env sh "$GATEWAYD" run >/dev/null 2>"$T/missing.err"
is "$?" 78 "a named configuration file that is missing is refused (EX_CONFIG)"

GATEWAY_ENV_FILE=/dev/null PACS_PORT=http sh "$GATEWAYD" run >/dev/null 2>"$T/port.err"
is "$?" 78 "a PACS_PORT that is not a number is refused (EX_CONFIG)"

# Without ss (here: one that sees nothing), the port check cannot see the
# listener; storescp-front's bind error must still stop the start.
mkdir "$T/noss"
printf '#!/bin/sh\nexit 0\n' >"$T/noss/ss"
chmod +x "$T/noss/ss"
PORT=$(free_port)
bg listener python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
print("ready", flush=True); time.sleep(60)' "$PORT"
wait_until 5 port_open "$PORT"
GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$T/busy PACS_PORT=$PORT WORKLIST_PORT=$(free_port) PATH=$T/noss:$PATH \
    sh "$GATEWAYD" run >/dev/null 2>"$T/busy.err"
is "$?" 69 "storescp-front failing to bind ends the start (EX_UNAVAILABLE)"
ok "... saying storescp-front could not listen" grep -q "storescp-front could not listen on PACS_PORT $PORT" "$T/busy.err"
nothing_runs() { ! pgrep -f "$T/busy" >/dev/null; }
ok "... and leaves nothing running" nothing_runs
ok "... and no pid file" test ! -e "$T/busy/run/gatewayd.pid"

done_testing
