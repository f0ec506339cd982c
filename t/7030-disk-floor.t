#!/bin/sh
# The disk floor: a store that fills up during a send.  No image storescp
# acknowledged is lost, storescp stops listening below PACS_DISK_MIN_FREE
# (gatewayd status, run/storescp.state and a gateway.alert event to the
# cloud, through the relay emulator, say so), the worklist still answers
# C-ECHO, and freeing space brings storage back without a restart by hand.
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"

mkdir -p "$T/var"
mount -t tmpfs -o size=48m tmpfs "$T/var" 2>/dev/null ||
	skip_all "cannot mount a small tmpfs here (needs root)"
on_exit "umount -l '$T/var' 2>/dev/null"

export PACS_DISK_MIN_FREE=16MiB GATEWAY_DISK_CHECK_SECONDS=1
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 14 --size 1024x768 --studies 2 --seed 73 >"$T/mg.list"
relay_start gw-events
cloud_listen gw-events
export AZURE_RELAY_EVENTS_HYBRID_CONNECTION=gw-events
start_gateway
ok "the gateway runs and storescp answers" echoscu -to 2 -aec SCREENING_PACS 127.0.0.1 "$GW_PORT"
RUN=$GATEWAY_DATA_DIR/run

# Leave about 26 MB free: fourteen 1.5 MB images cross the 16 MB floor.
read -r total avail <<EOF
$(df -Pk "$T/var" | awk 'NR == 2 { print $2, $4 }')
EOF
dd if=/dev/zero of="$T/var/filler" bs=1k count=$((avail - 26 * 1024)) 2>/dev/null
: >"$T/sent"
: >"$T/refused"
for f in "$T"/mg/*.dcm; do
	if storescu -to 5 -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$f" 2>>"$T/storescu.log"; then
		echo "$f" >>"$T/sent"
	else
		echo "$f" >>"$T/refused"
	fi
done
diag "$(wc -l <"$T/sent") sent, $(wc -l <"$T/refused") refused while the disk filled"
not_listening() { ! port_open "$GW_PORT"; }
wait_for 15 "below the floor storescp stops listening" not_listening
wait_for 10 "storescp's state says held for the disk floor" sh -c "grep -q '^state=held' '$RUN/storescp.state' && grep -q '^reason=disk_floor' '$RUN/storescp.state'"
ok "the worklist still answers C-ECHO" echoscu -to 5 -aec SCREENING_MWL 127.0.0.1 "$WORKLIST_PORT"
sh "$GW_ROOT/pipeline/gatewayd" status >"$T/status.out" 2>&1
ok "gatewayd status says storage stopped for the disk floor" grep -q '^storage: .*stopped: disk_floor' "$T/status.out"
# alerted STATE: the cloud got the gateway.alert JSON for the disk floor.
alerted() {
	/usr/bin/python3 -c '
import glob, json, sys
for f in glob.glob(sys.argv[2] + "/*.json"):
    try:
        e = json.load(open(f))
    except ValueError:
        continue
    d = e.get("data", {})
    if (e.get("event_type") == "gateway.alert" and d.get("alert") == "disk_floor"
            and d.get("state") == sys.argv[1] and d.get("value", 0) > 0
            and len(e.get("message_id", "")) == 36):
        sys.exit(0)
sys.exit(1)' "$1" "$EVENTS"
}
wait_for 30 "the cloud gets a gateway.alert: disk_floor raised" alerted raised

# Everything storescp acknowledged is indexed, nothing is quarantined.
indexed() {
	while read -r f; do
		uid=$(dcm_value "$f" 0008,0018)
		[ "$(sql "$GATEWAY_DATA_DIR/pacs.db" "SELECT count(*) FROM instances WHERE sop_instance_uid = '$uid'")" = 1 ] || return 1
	done <"$1"
}
wait_for 20 "every image storescp acknowledged is indexed" indexed "$T/sent"
ok "every indexed object is intact" store_verified "$GATEWAY_DATA_DIR/store"

# Space comes back: storage returns by itself; the refused images go in.
rm -f "$T/var/filler"
wait_for 20 "with space back storescp listens again, no restart by hand" \
	echoscu -to 2 -aec SCREENING_PACS 127.0.0.1 "$GW_PORT"
wait_for 30 "... and then disk_floor cleared" alerted cleared
resend=0
while read -r f; do
	storescu -to 5 -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$f" 2>>"$T/storescu.log" || resend=1
done <"$T/refused"
is "$resend" 0 "the images refused earlier are accepted now"
cat "$T/sent" "$T/refused" >"$T/all"
wait_for 20 "all fourteen images are indexed" indexed "$T/all"
is "$(find "$GATEWAY_DATA_DIR/quarantine" -type f | wc -l | tr -d ' ')" 0 "nothing was quarantined"
ok "gatewayd logged the stop and the return" sh -c \
	"grep -q 'storage stopped' '$T/gatewayd.log' && grep -q 'storage starts again' '$T/gatewayd.log'"
stop_gateway
done_testing
