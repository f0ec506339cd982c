#!/bin/sh
# gatewayd and the cloud: relaylisten runs when the relay is configured,
# relaysend when the Manage API or the events hybrid connection is; neither
# is demanded otherwise; `gatewayd status` shows the relay listener, its
# last traffic proof and the relay queue per job kind.
. "${0%/*}/lib.sh"

GATEWAYD="$GW_ROOT/pipeline/gatewayd"
export GATEWAY_ENV_FILE=/dev/null
unset AZURE_RELAY_NAMESPACE AZURE_RELAY_HYBRID_CONNECTION \
    AZURE_RELAY_EVENTS_HYBRID_CONNECTION AZURE_RELAY_ENDPOINT \
    AZURE_RELAY_KEY_NAME AZURE_RELAY_SHARED_ACCESS_KEY AZURE_RELAY_TOKEN_COMMAND \
    CLOUD_API_ENDPOINT CLOUD_API_TOKEN CLOUD_API_TOKEN_COMMAND
REAL_BIN=$GW_BIN
cd "$T" || exit 1

# gw ARGS...: gatewayd with this test's data directory and programs.
gw() { GATEWAY_DATA_DIR=$T/var sh "$GATEWAYD" "$@"; }

# state NAME KEY: a field of the supervisor's record of child NAME.
state() { sed -n "s/^$2=//p" "$T/var/run/$1.state" 2>/dev/null; }

# child_running NAME: gatewayd records NAME as running with a live pid.
child_running() {
	[ "$(state "$1" state)" = running ] && kill -0 "$(state "$1" pid)" 2>/dev/null
}

# bin_dir DIR PROG...: DIR holds our programs (links) but not PROG...
bin_dir() {
	_dir=$1
	shift
	mkdir -p "$_dir"
	for _p in "$REAL_BIN"/*; do ln -sf "$_p" "$_dir/"; done
	for _p in "$@"; do rm -f "$_dir/$_p"; done
}

# stand_in DIR NAME: a stand-in for relaylisten or relaysend that records
# its start, writes relay.state as relaylisten does, and waits for TERM;
# `--status` prints the relay status through lib/ops (screen_print_cloud).
stand_in() {
	cat >"$1/$2" <<EOF
#!/bin/sh
[ "\${1:-}" = --status ] && exec '$GW_BUILD/t/health' --status
printf '%s hc=%s events=%s\n' "\${0##*/}" "\${AZURE_RELAY_HYBRID_CONNECTION:-}" \\
    "\${AZURE_RELAY_EVENTS_HYBRID_CONNECTION:-}" >>'$T/stand-in.log'
if [ "\${0##*/}" = relaylisten ]; then
	now=\$(date -u +%Y-%m-%dT%H:%M:%SZ)
	printf 'connection=connected\nsince=%s\nlast_proof=%s\nlast_error=\nhybrid_connection=%s\npid=%s\n' \\
	    "\$now" "\$now" "\$AZURE_RELAY_HYBRID_CONNECTION" \$\$ >"\$GATEWAY_DATA_DIR/run/relay.state.tmp"
	mv "\$GATEWAY_DATA_DIR/run/relay.state.tmp" "\$GATEWAY_DATA_DIR/run/relay.state"
fi
exec sleep 3600
EOF
	chmod +x "$1/$2"
}

# job NAME KIND AGE: a job of KIND waiting in the relay spool, AGE s old.
job() {
	printf 'kind=%s\nobject=%s\n' "$2" "$1" >"$T/var/spool/relay/new/$1"
	touch -d "@$(($(date +%s) - $3))" "$T/var/spool/relay/new/$1"
}

place_jobs() {
	job 0001-img image 200
	job 0002-img image 20
	job image-ab study.image_received 5
	job mpps-1 mpps.status_update 65
	job mpps-2 mpps.status_update 3
}

# group_empty PGID: no live process is left in the process group.
group_empty() {
	! ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'
}

# ------------------------------------------------- the health library

ok "lib/ops: the health report and the relay status over a fake data directory (t/unit/health.c)" \
    "$GW_BUILD/t/health" "$T/unit"

# ------------------------------------------------ gatewayd config

CLOUD_API_TOKEN=not-for-logs-token CLOUD_API_TOKEN_COMMAND='get-token --api' \
    AZURE_RELAY_EVENTS_HYBRID_CONNECTION=gw-events RELAY_PROBE_SECONDS=30 \
    gw config >"$T/config.out" 2>&1
listed() {
	for _k in AZURE_RELAY_ENDPOINT AZURE_RELAY_EVENTS_HYBRID_CONNECTION \
	    AZURE_RELAY_TOKEN_COMMAND CLOUD_API_TOKEN CLOUD_API_TOKEN_COMMAND GATEWAY_CA_FILE \
	    RELAY_PING_SECONDS RELAY_PROBE_SECONDS RELAY_TOKEN_TTL_SECONDS \
	    ENVIRONMENT CLOUD_API_RESOURCE IDENTITY_ENDPOINT AZURE_CLIENT_SECRET \
	    RELAY_RETRY_MAX_SECONDS RELAY_MAX_SEND_BYTES_PER_SECOND RELAY_JOBS \
	    RELAY_UPLOAD_MODE RELAY_UPLOAD_POLICY; do
		grep -q "^$_k=" "$T/config.out" || { echo "$_k not listed"; return 1; }
	done
}
ok "gatewayd config lists the cloud's settings" listed
ok "... with their values" sh -c "grep -qx 'AZURE_RELAY_EVENTS_HYBRID_CONNECTION=gw-events' '$T/config.out' &&
	grep -qx 'RELAY_PROBE_SECONDS=30' '$T/config.out' &&
	grep -qx 'CLOUD_API_TOKEN_COMMAND=get-token --api' '$T/config.out'"
ok "... but CLOUD_API_TOKEN only as set" grep -qx 'CLOUD_API_TOKEN=(set, not shown)' "$T/config.out"
not_ok "... never its value" grep -q not-for-logs-token "$T/config.out"

# --------------------------------- demanded only when they will be run

bin_dir "$T/bin-none" relaylisten relaysend
GW_BIN=$T/bin-none AZURE_RELAY_NAMESPACE=relay.invalid AZURE_RELAY_HYBRID_CONNECTION=gw \
    GATEWAY_DATA_DIR=$T/refused PACS_PORT=$(free_port) sh "$GATEWAYD" run >/dev/null 2>"$T/refuse-listen.log"
is "$?" 69 "with the relay configured, a missing relaylisten is refused (EX_UNAVAILABLE)"
ok "... naming it" grep -q 'relaylisten missing' "$T/refuse-listen.log"

GW_BIN=$T/bin-none CLOUD_API_ENDPOINT=https://api.invalid/dicom \
    GATEWAY_DATA_DIR=$T/refused PACS_PORT=$(free_port) sh "$GATEWAYD" run >/dev/null 2>"$T/refuse-send.log"
is "$?" 69 "with CLOUD_API_ENDPOINT set, a missing relaysend is refused"
ok "... naming it" grep -q 'relaysend missing' "$T/refuse-send.log"

export GW_BIN=$T/bin-none
start_gateway || { echo "Bail out! gatewayd did not start without the cloud programs"; cat "$T/gatewayd.log"; exit 1; }
pass "without the cloud configured, gatewayd starts without relaylisten and relaysend"
ok "... and runs neither" sh -c "! grep -Eq 'relaylisten|relaysend' '$T/var/run/children'"
gw status >"$T/status-none.out" 2>&1
ok "status says relaylisten is not installed" grep -qx 'relay: relaylisten not installed' "$T/status-none.out"
stop_gateway

# -------------------------------------- supervised, with stand-ins

bin_dir "$T/bin-stand" relaylisten relaysend
stand_in "$T/bin-stand" relaylisten
stand_in "$T/bin-stand" relaysend
export GW_BIN=$T/bin-stand AZURE_RELAY_NAMESPACE=relay.invalid \
    AZURE_RELAY_HYBRID_CONNECTION=gw-control AZURE_RELAY_EVENTS_HYBRID_CONNECTION=gw-events
mv "$T/gatewayd.log" "$T/gatewayd-none.log"
start_gateway || { echo "Bail out! gatewayd did not start with stand-ins"; cat "$T/gatewayd.log"; exit 1; }
wait_for 10 "with the relay configured, gatewayd starts relaylisten" child_running relaylisten
wait_for 10 "with the events hybrid connection (no CLOUD_API_ENDPOINT), it starts relaysend" \
    child_running relaysend
ok "both are in the list of supervised children" \
    sh -c "grep -q relaylisten '$T/var/run/children' && grep -q relaysend '$T/var/run/children'"
ok "relaylisten gets the configuration from the environment" \
    grep -qx 'relaylisten hc=gw-control events=gw-events' "$T/stand-in.log"
# leads_group NAME: child NAME leads its own process group.
leads_group() {
	_pid=$(state "$1" pid)
	[ -n "$_pid" ] && [ "$(ps -o pgid= -p "$_pid" | tr -d ' ')" = "$_pid" ]
}
ok "relaylisten leads its own process group" leads_group relaylisten

LISTEN_PID=$(state relaylisten pid)
kill -KILL "$LISTEN_PID"
restarted() {
	p=$(state relaylisten pid)
	[ -n "$p" ] && [ "$p" != "$LISTEN_PID" ] && kill -0 "$p" 2>/dev/null
}
wait_for 10 "a killed relaylisten is restarted" restarted
is "$(state relaylisten restarts)" 1 "... and the restart is counted"
wait_for 10 "... and writes relay.state again" \
    sh -c "grep -qx 'pid=$(state relaylisten pid)' '$T/var/run/relay.state'"

place_jobs
gw status >"$T/status-stand.out" 2>&1
is "$?" 0 "gatewayd status exits 0"
ok "status lists relaylisten and relaysend as running" \
    sh -c "grep -Eq '^relaylisten +running +[0-9]+ ' '$T/status-stand.out' &&
	   grep -Eq '^relaysend +running +[0-9]+ ' '$T/status-stand.out'"
ok "status shows the relay connected, with since and pid" \
    grep -Eq "^relay: connected since [0-9T:-]+Z \\(pid $(state relaylisten pid), hybrid connection gw-control\\)$" \
    "$T/status-stand.out"
ok "... the last traffic proof and how long ago" \
    grep -Eq '^last traffic proof: [0-9T:-]+Z \([0-9]+s ago\)$' "$T/status-stand.out"
ok "... no last error" grep -qx 'last error: -' "$T/status-stand.out"
ok "... the queue header" grep -Eq '^KIND +PENDING +FAILED +OLDEST$' "$T/status-stand.out"
ok "... 2 image jobs pending, the oldest 3m2Xs old" \
    grep -Eq '^image +2 +0 +3m2[0-9]s$' "$T/status-stand.out"
ok "... 1 study.image_received" grep -Eq '^study\.image_received +1 +0 +[0-9]+s$' "$T/status-stand.out"
ok "... 2 mpps.status_update, the oldest over a minute" \
    grep -Eq '^mpps\.status_update +2 +0 +1m0[0-9]s$' "$T/status-stand.out"
ok "... and no image_failure" grep -Eq '^image_failure +0 +0 +-$' "$T/status-stand.out"

LISTEN_PID=$(state relaylisten pid)
SEND_PID=$(state relaysend pid)
stop_gateway
ok "gatewayd stops relaylisten's process group" group_empty "$LISTEN_PID"
ok "... and relaysend's" group_empty "$SEND_PID"
is "$(state relaylisten state)" stopped "relaylisten is recorded as stopped"

# ------------------------------------------------ the real relaylisten

if [ ! -x "$REAL_BIN/relaylisten" ]; then
	skip "the real relaylisten is started (not built yet)"
	skip "... and gatewayd status shows its relay section (not built yet)"
	done_testing
	exit
fi
mv "$T/gatewayd.log" "$T/gatewayd-stand.log"
# Key and endpoint of a relay nobody runs: relaylisten keeps trying.
export GW_BIN=$REAL_BIN AZURE_RELAY_KEY_NAME=RootManageSharedAccessKey \
    AZURE_RELAY_SHARED_ACCESS_KEY=not-for-logs-9002 AZURE_RELAY_ENDPOINT=127.0.0.1:$(free_port)
unset AZURE_RELAY_EVENTS_HYBRID_CONNECTION
rm -f "$T/var/spool/relay/new/"*
start_gateway || { echo "Bail out! gatewayd did not start with relaylisten"; cat "$T/gatewayd.log"; exit 1; }
wait_for 10 "the real relaylisten is started and supervised" child_running relaylisten
ok "... it is relaylisten that runs" \
    sh -c "tr '\\0' ' ' </proc/$(state relaylisten pid)/cmdline | grep -q relaylisten"
ok "... and relaysend is not (nothing for it to send)" sh -c "! grep -q relaysend '$T/var/run/children'"
wait_for 20 "relaylisten writes run/relay.state" test -s "$T/var/run/relay.state"
place_jobs
gw status >"$T/status-real.out" 2>&1
ok "gatewayd status shows the relay's connection state" \
    grep -Eq '^relay: (connecting|backoff|connected|stopped)' "$T/status-real.out"
ok "... and the queue per job kind" \
    sh -c "grep -Eq '^image +2 +0 +3m2[0-9]s$' '$T/status-real.out' &&
	   grep -Eq '^mpps\\.status_update +2 +0 ' '$T/status-real.out'"
GATEWAY_DATA_DIR=$T/var "$REAL_BIN/relaylisten" --health >"$T/health.json" 2>"$T/health.err"
is "$?" 0 "relaylisten --health prints the health report"
health_says() {
	python3 -c 'import json, sys
h = json.load(open(sys.argv[1]))
assert h["gatewayd"]["running"] is True, "gatewayd"
assert h["ports"]["pacs"]["answering"] is True, "pacs port"
assert h["ports"]["worklist"]["answering"] is True, "worklist port"
assert all(c["state"] == "running" for c in h["children"].values()), h["children"]
assert h["spools"]["relay"]["kinds"]["image"]["pending"] == 2, "image jobs"
assert h["relay"]["connection"] != "not running", "relay"
assert h["healthy"] is False and any(p.startswith("relay not connected") for p in h["problems"]), h["problems"]
' "$T/health.json"
}
ok "... of this gateway: supervisor, ports, children, queue, the relay not connected" health_says
stop_gateway
not_ok "the relay key is in no log" grep -rq not-for-logs-9002 "$T/gatewayd.log" "$T/status-real.out"

done_testing
