#!/bin/sh
# Every program run by hand reads the gateway.env gatewayd reads, so it
# works on the service's data from any directory; none creates an empty
# pacs.db where the real one was expected.
. "${0%/*}/lib.sh"

unset GATEWAY_DATA_DIR PACS_PORT PACS_AET WORKLIST_PORT WORKLIST_BIND PACS_DB_PATH \
    CLOUD_API_ENDPOINT CLOUD_API_TOKEN AZURE_RELAY_NAMESPACE
PACS=$(free_port)
MWL=$(free_port)
DATA=$T/data
mkdir -p "$T/etc" "$T/elsewhere"
cat >"$T/etc/gateway.env" <<CONF
# as an operator would write it
GATEWAY_DATA_DIR=$DATA
export PACS_PORT=$PACS
WORKLIST_PORT="$MWL"
CLOUD_API_ENDPOINT=https://127.0.0.1:9/api/v1/dicom
CLOUD_API_TOKEN=not-a-real-token
GATEWAY_THUMBS_DIR=$T/previews
CONF
export GATEWAY_ENV_FILE=$T/etc/gateway.env
cd "$T/elsewhere" || exit 1

# ------------------------------------------- no database yet: refusals
dcmindex --retry-failed 2>"$T/retry.err"
is "$?" 66 "dcmindex --retry-failed without pacs.db exits EX_NOINPUT"
ok "... naming the database the file points at" \
    grep -q "no pacs.db at $DATA/pacs.db: run gatewayd or dcmindex --init" "$T/retry.err"
ok "... and creates nothing here" test -z "$(ls -A "$T/elsewhere")"
ok "... nor there" test ! -e "$DATA"
dcmthumb --retry-failed 2>"$T/thumb.err"
is "$?" 78 "dcmthumb --retry-failed without pacs.db refuses (EX_CONFIG)"
ok "... and creates no database" test ! -e "$DATA/pacs.db"
relaysend --retry-failed 2>"$T/rs.err"
is "$?" 66 "relaysend --retry-failed without pacs.db exits EX_NOINPUT"
ok "... naming it" grep -q "no pacs.db at $DATA/pacs.db" "$T/rs.err"
dcmpurge --dry-run >/dev/null 2>"$T/purge.err"
is "$?" 66 "dcmpurge --dry-run without a store or pacs.db exits EX_NOINPUT"
ok "... and neither creates anything" sh -c "test ! -e '$DATA' && test -z \"\$(ls -A '$T/elsewhere')\""
gatewayctl studies >/dev/null 2>"$T/studies.err"
is "$?" 66 "gatewayctl studies without pacs.db exits EX_NOINPUT"
mwlsync backup "$T/wl.bak" 2>"$T/backup.err"
is "$?" 66 "mwlsync backup with no worklist.db refuses (EX_NOINPUT)"
ok "... naming the file's worklist.db" grep -q "no worklist.db at $DATA/worklist.db" "$T/backup.err"
ok "... and creates none" test ! -e "$DATA/worklist.db"

# ------------------------------------------- the file's data directory
ok "dcmindex --init creates pacs.db where the file says" sh -c 'dcmindex --init 2>/dev/null'
ok "... in $DATA, not ./var" sh -c "test -s '$DATA/pacs.db' && test ! -e '$T/elsewhere/var'"
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 2 --size 64x48 --studies 1 --seed 12 >/dev/null
mkdir -p "$DATA/incoming"
cp "$T/mg"/*.dcm "$DATA/incoming/"
ok "storescp-hook --sweep takes the file's incoming directory" sh -c 'storescp-hook --sweep 2>/dev/null'
ok "dcmindex --once indexes into the file's pacs.db" sh -c 'dcmindex --once 2>/dev/null'
is "$(sql "$DATA/pacs.db" 'SELECT count(*) FROM instances')" 2 "... both images"
dcmindex --retry-failed 2>"$T/retry.err"
is "$?" 0 "dcmindex --retry-failed works from another directory"
ok "... on the real spool" grep -q 'failed jobs queued again.*jobs=0' "$T/retry.err"
ok "dcmthumb --once renders into the file's data directory" sh -c 'dcmthumb --once 2>/dev/null'
is "$(find "$T/previews" -name '*.png' | wc -l | tr -d ' ')" 2 "... both previews, in the file's GATEWAY_THUMBS_DIR"
ok "dcmthumb --retry-failed works" sh -c 'dcmthumb --retry-failed 2>/dev/null'

relaysend --retry-failed 2>"$T/relaysend.err"
is "$?" 0 "relaysend --retry-failed takes CLOUD_API_ENDPOINT from the file"
ok "... instead of refusing" sh -c "! grep -q 'CLOUD_API_ENDPOINT' '$T/relaysend.err'"

relaylisten --health >"$T/health.json" 2>/dev/null
is "$(python3 -c 'import json,sys; h=json.load(open(sys.argv[1])); print(h["ports"]["pacs"]["port"], h["ports"]["worklist"]["port"])' "$T/health.json")" \
    "$PACS $MWL" "relaylisten --health checks the file's ports, not the defaults"

ok "mwlsync apply starts the file's worklist.db" sh -c 'echo "{}" | mwlsync apply >/dev/null 2>&1; test -e "$0/worklist.db"' "$DATA"
ok "... and backup then works on it" sh -c 'mwlsync backup "$0/wl.bak" 2>/dev/null' "$T"
gatewayctl studies >"$T/studies.out" 2>/dev/null
ok "gatewayctl studies lists the file's study" grep -q '^1 study$' "$T/studies.out"
is "$(sh "$GW_ROOT/pipeline/gatewayd" exec dcmindex --retry-failed 2>&1 | grep -c 'jobs=0')" 1 \
    "gatewayd exec runs a tool with the service's configuration"
sh "$GW_ROOT/pipeline/gatewayd" exec /bin/sh -c true 2>"$T/exec.err"
is "$?" 64 "gatewayd exec takes a program name, not a path"

# ------------------------------------------- the environment wins
other=$(free_port)
PACS_PORT=$other relaylisten --health >"$T/health.json" 2>/dev/null
is "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ports"]["pacs"]["port"])' "$T/health.json")" \
    "$other" "a variable set in the environment wins over the file"

printf 'GATEWAY_DATA_DIR=%s\nLOG_LEVEL=error\n' "$DATA" >"$T/etc/quiet.env"
GATEWAY_ENV_FILE=$T/etc/quiet.env dcmindex --retry-failed 2>"$T/quiet.err"
is "$(cat "$T/quiet.err")" "" "LOG_LEVEL from the file applies to a hand-run tool"

GATEWAY_ENV_FILE=$T/etc/missing.env dcmindex --once 2>"$T/missing.err"
is "$?" 78 "a named configuration file that is missing is refused (EX_CONFIG)"
ok "... saying which" grep -q "cannot read configuration file: open $T/etc/missing.env" "$T/missing.err"
GATEWAY_ENV_FILE=$T/etc/missing.env relaysend --once 2>/dev/null
is "$?" 78 "... by relaysend too"

done_testing
