#!/bin/sh
# 8110-status-consistent: `gatewayd status` never contradicts itself
# (issue 20 item 2).  A data directory that does not exist is an error,
# not a table of zeros; a gateway not running does not accept images; the
# disk lines are the store's file system and the data directory's; an
# event's age runs from when it was queued, not from its last retry; the
# last event is the last one relaysend delivered; the cloud's last error
# comes with its time and is cleared once deliveries succeed.
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
$PY -c 'import websockets' 2>/dev/null || skip_all "python3-websockets not installed"
command -v openssl >/dev/null || skip_all "openssl not installed"
command -v curl >/dev/null || skip_all "curl not installed"

unset CLOUD_API_ENDPOINT CLOUD_API_TOKEN CLOUD_API_TOKEN_COMMAND \
	AZURE_RELAY_NAMESPACE AZURE_RELAY_HYBRID_CONNECTION \
	AZURE_RELAY_EVENTS_HYBRID_CONNECTION PACS_STORAGE_PATH
export GATEWAY_ENV_FILE=/dev/null RELAY_RETRY_MAX_SECONDS=1
gw() { sh "$GW_ROOT/pipeline/gatewayd" "$@"; }

# 1. A data directory that does not exist.
GATEWAY_DATA_DIR=$T/nowhere gw status >"$T/none.out" 2>"$T/none.err"
is "$?" 4 "status of a data directory that does not exist: 4 (cannot tell), not 3"
ok "... saying it does not exist" grep -q "the data directory $T/nowhere does not exist" "$T/none.out"
not_ok "... without a table of zeros" grep -Eq '^(index|CHILD|quarantined)' "$T/none.out"
GATEWAY_DATA_DIR=$T/nowhere gw status --check >"$T/none.check" 2>&1
is "$?" 2 "... and status --check is CRITICAL"
ok "... for that reason alone" \
    grep -q "^GATEWAY CRITICAL - the data directory $T/nowhere does not exist (GATEWAY_DATA_DIR) |" "$T/none.check"
not_ok "no file was made there" test -e "$T/nowhere"

# 2. A gateway that is not running, its store on another file system.
export GATEWAY_DATA_DIR=$T/var
mkdir -p "$T/var/incoming" "$T/var/run"	# as gatewayd makes them
dcmindex --init 2>/dev/null
STORE=/dev/shm/gw8110.$$
if [ -d /dev/shm ] && [ "$(stat -c %d /dev/shm)" != "$(stat -c %d "$T")" ] && mkdir "$STORE" 2>/dev/null; then
	on_exit "rm -rf '$STORE'"
	export PACS_STORAGE_PATH=$STORE
fi
gw status >"$T/down.out" 2>&1
is "$?" 3 "status of a gateway not running: 3"
ok "... storage: not running" grep -Eq '^storage: +not running' "$T/down.out"
not_ok "... never 'accepting images'" grep -q 'accepting images' "$T/down.out"
not_ok "... nor qrscp 'not installed'" grep -q 'not installed' "$T/down.out"
if [ -n "${PACS_STORAGE_PATH:-}" ]; then
	ok "the disk line is the store's file system" grep -Eq "^disk \\($STORE\\): .* free of " "$T/down.out"
	ok "... and the data directory's, apart" grep -Eq "^disk \\($T/var\\): .* free of " "$T/down.out"
else
	skip "the disk line is the store's file system (no other file system here)"
	skip "... and the data directory's, apart"
fi

# 3. An MPPS event queued 4 minutes ago that relaysend cannot deliver (no
# one listens on the events' hybrid connection): each retry rewrites the
# job, its age runs on.
relay_start events
unset CLOUD_API_ENDPOINT
export AZURE_RELAY_EVENTS_HYBRID_CONNECTION=events
SPOOL=$T/var/spool/relay
mkdir -p "$SPOOL/tmp" "$SPOOL/new" "$SPOOL/cur" "$SPOOL/failed"
printf 'kind=mpps.status_update\nevent={"schema_version":1,"message_type":"mpps.status_update","parameters":{}}\n' >"$SPOOL/tmp/mpps-8110"
mv "$SPOOL/tmp/mpps-8110" "$SPOOL/new/mpps-8110"
touch -d '-4 minutes' "$SPOOL/new/mpps-8110"
relaysend --once 2>>"$T/send.log"
ok "relaysend could not deliver it: it waits, retried" grep -q '^attempts=1' "$SPOOL/new/mpps-8110"
gw status >"$T/retry.out" 2>&1
ok "its age runs from when it was queued, not from the retry" \
    grep -Eq '^mpps\.status_update +1 +0 4m0[0-9]s$' "$T/retry.out"
ok "the cloud's last error, with its time" \
    grep -Eq '^cloud last error: .+ \(at [0-9T:-]+Z\)$' "$T/retry.out"
ok "... and no event delivered yet" grep -q '; last event: none$' "$T/retry.out"

# 4. The cloud listens: the event is delivered.
cloud_listen events
delivered() { relaysend --once 2>>"$T/send.log"; [ ! -e "$SPOOL/new/mpps-8110" ]; }
wait_for 30 "relaysend delivers the event once the cloud listens" delivered
gw status >"$T/sent.out" 2>&1
ok "status: the last event is the one just delivered" \
    grep -Eq '; last event: [0-9T:-]+Z \([0-9]+s ago\)$' "$T/sent.out"
ok "... and the cloud's last error is cleared" grep -qx 'cloud last error: -' "$T/sent.out"
ok "... in run/delivery.state too" grep -q '^last_event=2' "$T/var/run/delivery.state"

done_testing
