#!/bin/sh
# 8100-status-check: `gatewayd status --check`, the monitoring line, sees
# every failure mode (issue 20 item 1), each made real: files
# quarantined by the hook, a file left in incoming/, the store on a
# read-only file system, the Manage API unreachable, the Manage API
# refusing the gateway's token (HTTP 401), an upload waiting too long,
# and a child in a restart loop.  Each is a WARNING or CRITICAL with its
# reason; each gone, the line is OK again.
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
command -v storescu >/dev/null || skip_all "storescu (dcmtk) not installed"

unset CLOUD_API_ENDPOINT CLOUD_API_TOKEN CLOUD_API_TOKEN_COMMAND \
	AZURE_RELAY_NAMESPACE AZURE_RELAY_HYBRID_CONNECTION \
	AZURE_RELAY_EVENTS_HYBRID_CONNECTION STATUS_PENDING_WARN_SECONDS \
	STATUS_PENDING_CRIT_SECONDS STATUS_RESTART_LOOP_COUNT \
	STATUS_RESTART_LOOP_SECONDS
gw() { sh "$GW_ROOT/pipeline/gatewayd" "$@"; }
# check CODE PATTERN: status --check exits CODE with a line matching PATTERN
check() {
	gw status --check >"$T/check.out" 2>&1
	_rc=$?
	[ "$_rc" = "$1" ] && grep -Eq "$2" "$T/check.out"
}
# saying CODE PATTERN: check, showing the line when it is not as said
saying() { check "$@" || { diag "$(cat "$T/check.out")"; return 1; }; }

start_gateway || { echo "Bail out! gatewayd did not start"; cat "$T/gatewayd.log"; exit 1; }
wait_for 20 "status --check of a gateway just started: OK" check 0 '^GATEWAY OK - running \|'

# 1. An image the hook quarantines (an invalid SOP Instance UID).
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 2 --size 64x48 --studies 1 --seed 81 >/dev/null
"$GW_ROOT/t/tools/dcm-bad-uid" "$T/mg/mg00001.dcm" "$T/bad-uid.dcm"
storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$T/bad-uid.dcm" 2>/dev/null
quarantined() { [ "$(find "$T/var/quarantine" -type f ! -name '*.reason' | wc -l)" -ge 1 ]; }
wait_for 20 "an image with an invalid UID is quarantined" quarantined
ok "a quarantined file: WARNING (1), saying how many" \
    saying 1 '^GATEWAY WARNING - 1 file in quarantine .* quarantine=1$'
find "$T/var/quarantine" -type f -delete
ok "... and OK once the quarantine is empty" saying 0 '^GATEWAY OK'

# 2. A file the hook never took, left in incoming/ (older than 5 minutes).
printf 'x' >"$T/var/incoming/stray.dcm"
touch -d '-10 minutes' "$T/var/incoming/stray.dcm"
ok "a file left in incoming/: WARNING, with its age" \
    saying 1 "^GATEWAY WARNING - 1 file left in incoming/, the oldest 10m0[0-9]s"
rm -f "$T/var/incoming/stray.dcm"

# 3. The store on a file system mounted read-only.
if mount -t tmpfs -o ro,size=1m tmpfs "$T/var/store" 2>/dev/null; then
	on_exit "umount '$T/var/store' 2>/dev/null"
	ok "a store the gateway cannot write: CRITICAL (2), naming it" \
	    saying 2 "^GATEWAY CRITICAL - PACS_STORAGE_PATH not writable by the gateway's user: $T/var/store is on a read-only file system"
	umount "$T/var/store"
	ok "... and OK once it is writable again" saying 0 '^GATEWAY OK'
else
	skip "a store the gateway cannot write: CRITICAL (cannot mount a tmpfs here)"
	skip "... and OK once it is writable again"
fi

# 4. The Manage API configured but nothing answers at its address.
CLOUD_API_ENDPOINT=https://127.0.0.1:$(free_port)/api/v1/dicom \
    gw status --check >"$T/check.out" 2>&1
is "$?" 1 "the Manage API not reachable: WARNING (1)"
ok "... saying so" grep -q 'the Manage API 127.0.0.1:[0-9]* not reachable' "$T/check.out"
stop_gateway

# 5. The Manage API refuses the gateway's token (HTTP 401) for minutes:
# relaysend's run/delivery.state says so.
api_start
export CLOUD_API_ENDPOINT GATEWAY_CA_FILE CLOUD_API_TOKEN=not-the-token
mv "$T/gatewayd.log" "$T/gatewayd-1.log"
start_gateway || { echo "Bail out! gatewayd did not start with the cloud"; cat "$T/gatewayd.log"; exit 1; }
item act-81 ACC081000
storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$T/mg/mg00000.dcm" 2>/dev/null
refused() { grep -q '^api_error=HTTP 401' "$T/var/run/delivery.state" 2>/dev/null; }
wait_for 30 "relaysend records the Manage API's 401 in run/delivery.state" refused
ok "the Manage API refusing the gateway: CRITICAL (2), with the error" \
    saying 2 '^GATEWAY CRITICAL - .*the Manage API refuses the gateway since [0-9T:-]+Z: HTTP 401'
STATUS_PENDING_WARN_SECONDS=1 STATUS_PENDING_CRIT_SECONDS=3 \
    wait_for 20 "an upload waiting longer than STATUS_PENDING_CRIT_SECONDS: CRITICAL, with its age" \
    check 2 'image job waiting for the cloud for [0-9]+s \([0-9]+ attempts'
tried() { [ "$(sql "$PACS_DB" 'SELECT max(upload_attempt_count) FROM instances')" -ge 3 ]; }
wait_for 60 "relaysend tries the upload again and again" tried
is "$(grep -c 'level=error prog=relaysend msg="the Manage API refuses the token"' "$T/gatewayd.log")" 1 \
    "the refused token is logged once, not at every attempt (the outage's lines go on)"
gw status >"$T/status.out" 2>&1
ok "the status screen shows the same problems" \
    sh -c "grep -q '^  CRITICAL: the Manage API refuses the gateway since' '$T/status.out'"
ok "... and the cloud's last error with its time" \
    grep -Eq '^cloud last error: HTTP 401.* \(at [0-9T:-]+Z\)$' "$T/status.out"
stop_gateway

# The right token: the upload goes, the error is cleared.
export CLOUD_API_TOKEN=sesame
mv "$T/gatewayd.log" "$T/gatewayd-2.log"
start_gateway || { echo "Bail out! gatewayd did not start again"; cat "$T/gatewayd.log"; exit 1; }
uploaded() { grep -q '^last_upload=2' "$T/var/run/delivery.state" 2>/dev/null; }
wait_for 30 "with the right token the upload is delivered" uploaded
ok "status --check is OK again: the refusal is over" saying 0 '^GATEWAY OK'
gw status >"$T/status.out" 2>&1
ok "the status shows the last upload and how long ago" \
    grep -Eq '^last upload: [0-9T:-]+Z \([0-9]+s ago\); last event: none$' "$T/status.out"
ok "... and no cloud error any more" grep -qx 'cloud last error: -' "$T/status.out"
stop_gateway
unset CLOUD_API_ENDPOINT CLOUD_API_TOKEN

# 6. A child that keeps dying: dcmthumb replaced by one that exits after
# a second.
mkdir -p "$T/bin"
for p in "$GW_BIN"/*; do ln -s "$p" "$T/bin/"; done
rm "$T/bin/dcmthumb"
printf '#!/bin/sh\nsleep 1\nexit 1\n' >"$T/bin/dcmthumb"
chmod +x "$T/bin/dcmthumb"
mv "$T/gatewayd.log" "$T/gatewayd-3.log"
GW_BIN=$T/bin start_gateway || { echo "Bail out! gatewayd did not start"; cat "$T/gatewayd.log"; exit 1; }
STATUS_RESTART_LOOP_COUNT=3 wait_for 40 "a child restarting in a loop: CRITICAL, while it runs between exits" \
    check 2 'dcmthumb restarting in a loop \(3 exits in 600s, last status=1\)'
ok "... and exits= in its run/dcmthumb.state keeps the times" \
    grep -Eq '^exits=[0-9]+ [0-9]+ [0-9]+' "$T/var/run/dcmthumb.state"
stop_gateway

done_testing
