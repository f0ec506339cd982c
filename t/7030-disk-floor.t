#!/bin/sh
# The disk floor: a store that fills up during a send.  Below
# PACS_DISK_MIN_FREE storescp-front refuses new associations
# (rejected-transient, the port stays open: modalities retry); gatewayd
# status and a gateway.alert event to the cloud (through the relay
# emulator) say so; the worklist still answers C-ECHO; every image
# acknowledged reaches the index; freeing space brings storage back
# without a restart by hand.  Then what made this test flaky (issue 20):
# TERM to storage's process group, as gatewayd's stop (and the old disk
# floor) sends it, while hooks are at work: every image acknowledged
# still reaches the index within seconds, without the sweep.
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"

mkdir -p "$T/var"
mount -t tmpfs -o size=48m tmpfs "$T/var" 2>/dev/null ||
	skip_all "cannot mount a small tmpfs here (needs root)"
on_exit "umount -l '$T/var' 2>/dev/null"

# No sweep but the one at start: only the hooks may deliver.
export PACS_DISK_MIN_FREE=16MiB GATEWAY_DISK_CHECK_SECONDS=1 GATEWAY_SWEEP_INTERVAL_SECONDS=0
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 14 --size 1024x768 --studies 2 --seed 73 >"$T/mg.list"
relay_start gw-events
cloud_listen gw-events
export AZURE_RELAY_EVENTS_HYBRID_CONNECTION=gw-events
start_gateway
ok "the gateway runs and storage answers" echoscu -to 2 -aec SCREENING_PACS 127.0.0.1 "$GW_PORT"
RUN=$GATEWAY_DATA_DIR/run

# send FILE...: one association; the files whose C-STORE was answered
# with success (acknowledged: the modality may delete them) are added to
# $T/acked, whatever storescu's exit status says.
send() {
	storescu -v -to 5 -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$@" >"$T/send.out" 2>&1
	_st=$?
	awk '/Sending file: / { f = $NF } /Received Store Response \(Success\)/ { print f }' \
	    "$T/send.out" >>"$T/acked"
	cat "$T/send.out" >>"$T/storescu.log"
	return $_st
}

# Leave about 26 MB free: fourteen 1.5 MB images cross the 16 MB floor.
read -r total avail <<EOF
$(df -Pk "$T/var" | awk 'NR == 2 { print $2, $4 }')
EOF
dd if=/dev/zero of="$T/var/filler" bs=1k count=$((avail - 26 * 1024)) 2>/dev/null
: >"$T/acked"
: >"$T/refused"
for f in "$T"/mg/*.dcm; do
	send "$f" || echo "$f" >>"$T/refused"
done
diag "$(wc -l <"$T/acked") acknowledged, $(wc -l <"$T/refused") refused while the disk filled"
ok "below the floor an association is refused, for now (rejected-transient)" \
    sh -c "! storescu -to 5 -aec SCREENING_PACS 127.0.0.1 $GW_PORT $T/mg/mg00013.dcm >'$T/rj.out' 2>&1 &&
	grep -q 'Result: Rejected Transient' '$T/rj.out' && grep -q 'Reason: Local Limit Exceeded' '$T/rj.out'"
ok "... the port stays open" port_open "$GW_PORT"
ok "the worklist still answers C-ECHO" echoscu -to 5 -aec SCREENING_MWL 127.0.0.1 "$WORKLIST_PORT"
wait_for 10 "storescp-front logs that storage refuses new associations" \
    grep -q 'prog=storescp-front msg="free space below PACS_DISK_MIN_FREE: storage refuses new associations' "$T/gatewayd.log"
sh "$GW_ROOT/pipeline/gatewayd" status >"$T/status.out" 2>&1
ok "gatewayd status says storage refuses new associations, since when" \
    grep -q '^storage: *refusing new associations: free space below PACS_DISK_MIN_FREE (.* free, floor 16M) since 20' "$T/status.out"
ok "... while storescp-front runs" grep -Eq '^storescp-front +running ' "$T/status.out"
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

# indexed LIST: every file in LIST is in pacs.db.
indexed() {
	while read -r f; do
		uid=$(dcm_value "$f" 0008,0018)
		[ "$(sql "$GATEWAY_DATA_DIR/pacs.db" "SELECT count(*) FROM instances WHERE sop_instance_uid = '$uid'")" = 1 ] || return 1
	done <"$1"
}
wait_for 20 "every image storescp acknowledged is indexed" indexed "$T/acked"
ok "every indexed object is intact" store_verified "$GATEWAY_DATA_DIR/store"
is "$(count_files "$GATEWAY_DATA_DIR/incoming")" 0 "nothing is left behind in incoming/"

# Space comes back: storage accepts again by itself; the refused go in.
rm -f "$T/var/filler"
ok "with space back the next association is accepted, no restart by hand" \
	echoscu -to 2 -aec SCREENING_PACS 127.0.0.1 "$GW_PORT"
wait_for 30 "... and then disk_floor cleared" alerted cleared
resend=0
while read -r f; do
	send "$f" || resend=1
done <"$T/refused"
is "$resend" 0 "the images refused earlier are accepted now"
cat "$T/mg.list" | cut -d' ' -f1 >"$T/all"
wait_for 20 "all fourteen images are indexed" indexed "$T/all"
is "$(find "$GATEWAY_DATA_DIR/quarantine" -type f | wc -l | tr -d ' ')" 0 "nothing was quarantined"
ok "gatewayd logged the floor and the return" sh -c \
	"grep -q 'storage refuses new associations' '$T/gatewayd.log' && grep -q 'storage accepts new associations' '$T/gatewayd.log'"

# TERM to storage's whole process group (storescp-front, storescp, and
# the hooks storescp started) in the middle of a long association.
"$GW_ROOT/t/tools/gen-mammo" "$T/burst" 60 --size 256x192 --studies 3 --seed 74 >"$T/burst.list"
: >"$T/acked"
send "$T"/burst/*.dcm &
SEND_PID=$!
stored() { [ "$(grep -c 'prog=storescp-hook msg=stored' "$T/gatewayd.log")" -ge "$1" ]; }
wait_until 30 stored 20
PGID=$(sed -n 's/^pid=//p' "$RUN/storescp-front.state")
kill -TERM "-$PGID"
wait "$SEND_PID"
diag "$(wc -l <"$T/acked") of 60 acknowledged around the TERM"
ok "images were acknowledged while storage was being stopped" test -s "$T/acked"
wait_for 20 "every one of them reaches the index within seconds, without the sweep" indexed "$T/acked"
is "$(count_files "$GATEWAY_DATA_DIR/incoming")" 0 "... and none waits in incoming/"
wait_for 20 "storescp-front is running again" sh -c "grep -q '^state=running' '$RUN/storescp-front.state' && [ \"\$(sed -n 's/^pid=//p' '$RUN/storescp-front.state')\" != $PGID ]"
stop_gateway
done_testing
