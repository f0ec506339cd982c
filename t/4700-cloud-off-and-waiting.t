#!/bin/sh
# 4700-cloud-off-and-waiting: what happens to images the cloud cannot take
# yet.  With no cloud configured nothing is queued for it: images are
# HELD in pacs.db, MPPS events wait in worklist.db's outbox, status says
# "not configured" and counts them; once the cloud is configured,
# `gatewayctl resend --held` and mwlscp's start send them.  An image with
# no worklist item is UNMATCHED: reported once per study, counted, looked
# for again (no attempt counted), sent as soon as the item arrives, or by
# hand under another item (`gatewayctl assign`), or given up (`gatewayctl
# release`: kept, not sent; `gatewayctl resend` undoes it).
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
command -v openssl >/dev/null || skip_all "openssl not installed"
command -v curl >/dev/null || skip_all "curl not installed"

cloud_off
WL=$GATEWAY_DATA_DIR/worklist.db
export RELAY_RETRY_MAX_SECONDS=1	# a worklist lookup every second

count() {	# count ACCESSION STATUS
	sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE accession_number = '$1' AND upload_status = '$2'"
}
queued() { echo $(( $(count_files "$SPOOL/new") + $(count_files "$SPOOL/cur") )); }
puts() { ls "$API/put" 2>/dev/null | grep -c -- "-$1\.dcm\$"; }	# puts ACTION_ID
send() { relaysend --once 2>>"$T/send.log"; }
drain() { wait_until "$1" send; }
status() { relaylisten --status 2>&1; }

# 1. The cloud off: nothing is queued for it.
item act-71 ACC071000
ok "two images are ingested with no cloud configured" ingest 71 2
is "$(queued)" 0 "no relay job: nothing would send it"
is "$(count ACC071000 HELD)" 2 "both images are HELD"
ok "dcmindex says the cloud is off" grep -q 'msg=started .*cloud=off$' "$T/index.log"
status >"$T/status.out"
ok "status: the relay is not configured" grep -qx 'relay: not configured' "$T/status.out"
ok "status: the cloud is not configured, images kept" \
	grep -q '^cloud: not configured (CLOUD_API_ENDPOINT, AZURE_RELAY_\*): nothing is queued for it; images are kept, HELD$' "$T/status.out"
ok "status counts them" grep -qx 'uploads: 0 sent, 2 held' "$T/status.out"
gatewayctl resend --held >/dev/null 2>"$T/resend.err"
is "$?" 78 "resend --held with no cloud: EX_CONFIG"
ok "... saying why" grep -q 'the cloud is not configured' "$T/resend.err"
not_ok "--held goes with resend alone" gatewayctl resend ACC071000 --held

if command -v node >/dev/null 2>&1 && [ -d "$GW_ROOT/node_modules/dcmjs-dimse" ]; then
	PORT=$(free_port)
	STUDY=$(sql "$WL" "SELECT study_instance_uid FROM worklist_items WHERE accession_number = 'ACC071000'")
	mpps() {
		(cd "$GW_ROOT" && node -r ./t/peers/nodelay.js \
		    t/peers/mpps.js "$PORT" "$@") 2>>"$T/mpps.err" | sed -n 's/^status=//p'
	}
	export WORKLIST_PORT=$PORT
	bg mwlscp mwlscp --bind 127.0.0.1
	wait_until 20 port_open "$PORT"
	is "$(mpps create 1.2.826.0.1.3680043.9.47.1 ACC071000 "$STUDY")" 0x0000 "an MPPS N-CREATE with the cloud off"
	is "$(sql "$WL" "SELECT count(*) FROM outbox WHERE sent_at IS NULL")" 1 "its event waits in worklist.db's outbox"
	is "$(queued)" 0 "... not in the relay spool"
	status >"$T/status.out"
	ok "status counts the held MPPS event" grep -q '^mpps events held: 1 ' "$T/status.out"
	kill -TERM "$BG_PID"; wait "$BG_PID"
	bg mwlscp2 env AZURE_RELAY_NAMESPACE=relay.test \
		AZURE_RELAY_EVENTS_HYBRID_CONNECTION=events mwlscp --bind 127.0.0.1
	wait_until 20 port_open "$PORT"
	ok "with the relay's events configured mwlscp queues it at start" \
		sh -c "grep -l '^kind=mpps.status_update' '$SPOOL'/new/* >/dev/null 2>&1"
	is "$(sql "$WL" "SELECT count(*) FROM outbox WHERE sent_at IS NULL")" 0 "... and the outbox has none unsent"
	ok "... saying so" grep -q 'msg="held mpps events queued" events=1' "$T/mwlscp2.log"
	kill -TERM "$BG_PID"; wait "$BG_PID"
	rm -f "$SPOOL"/new/*	# no relay here to send it
else
	skip "MPPS with the cloud off: node or dcmjs-dimse not installed"
fi

# 2. The cloud configured: the held images go by hand.
api_start
export CLOUD_API_TOKEN=sesame
relaylisten --health >"$T/health.json" 2>/dev/null
ok "the health report names the held images" \
	grep -q 'uploads: 2 images held, not queued for the cloud (gatewayctl resend --held)' "$T/health.json"
ok "gatewayctl resend --held" sh -c 'gatewayctl resend --held >"$0/held.out" 2>>"$0/ctl.log"' "$T"
ok "... says how many" grep -qx '2 uploads queued (every HELD image)' "$T/held.out"
is "$(count ACC071000 PENDING)" 2 "... both are PENDING"
ok "relaysend sends them" drain 20
is "$(count ACC071000 COMPLETE)" 2 "both are COMPLETE"
is "$(puts act-71)" 2 "the API got both under the item's action_id"

# 3. No worklist item: UNMATCHED, reported once per study.
ingest 72 2
not_ok "relaysend --once: work left (exit 75)" send
is "$(count ACC072000 UNMATCHED)" 2 "both images are UNMATCHED"
job=$(ls "$SPOOL/new" | head -n 1)
next() { sed -n 's/^next_attempt_ms=//p' "$SPOOL/new/$job" 2>/dev/null; }
first=$(next)
looked_again() { send; [ -n "$(next)" ] && [ "$(next)" != "$first" ]; }
wait_for 10 "relaysend looks for the item again" looked_again
is "$(grep -c 'msg="a study waits for a worklist item".*accession_number=ACC072000' "$T/send.log")" 1 \
	"one warning for the study, however many images and looks"
is "$(sql "$PACS_DB" "SELECT max(upload_attempt_count) FROM stored_instances WHERE accession_number = 'ACC072000'")" 0 \
	"looking for the item counts no upload attempt"
status >"$T/status.out"
ok "status counts the waiting images and their study" \
	grep -Eq '^uploads: 2 sent, 2 waiting for a worklist item \(1 study, oldest [0-9]+s: gatewayctl waiting\)$' "$T/status.out"
gatewayctl waiting >"$T/waiting.out" 2>>"$T/ctl.log"
ok "gatewayctl waiting lists the study" grep -Eq "^[0-9T:.-]+Z +ACC072000 +- +2 +2\.25\." "$T/waiting.out"
ok "... with the totals" grep -qx '2 images in 1 study' "$T/waiting.out"
relaylisten --health >"$T/health.json" 2>/dev/null
not_ok "a young wait is no problem" grep -q 'wait for a worklist item' "$T/health.json"
sql "$PACS_DB" "UPDATE instances SET received_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 hours') WHERE upload_status = 'UNMATCHED'"
relaylisten --health >"$T/health.json" 2>/dev/null
ok "one waiting two hours is" \
	grep -q 'uploads: 2 images of 1 study wait for a worklist item, the oldest for 2h0[0-9]m (gatewayctl waiting)' "$T/health.json"
item act-72 ACC072000
ok "once the item arrives they go within a look" drain 20
is "$(count ACC072000 COMPLETE)" 2 "both are COMPLETE"
is "$(puts act-72)" 2 "under the new item's action_id"
ok "the log says the item was found" grep -q 'msg="the worklist item is there: sending".*accession_number=ACC072000' "$T/send.log"

# 4. assign: the study goes under another worklist item.
ingest 73 2
send
is "$(count ACC073000 UNMATCHED)" 2 "a study with an unbooked accession number waits"
gatewayctl assign ACC073000 NO-SUCH-ITEM >/dev/null 2>"$T/assign.err"
is "$?" 66 "assign to an unknown item: EX_NOINPUT"
ok "... saying so" grep -q 'no worklist item with a source message id has accession number NO-SUCH-ITEM' "$T/assign.err"
gatewayctl assign NO-SUCH-STUDY ACC071000 >/dev/null 2>"$T/assign.err"
is "$?" 66 "assign of an unknown study: EX_NOINPUT"
item act-74 ACC074000
ok "gatewayctl assign ACC073000 ACC074000" sh -c 'gatewayctl assign ACC073000 ACC074000 >"$0/assign.out" 2>>"$0/ctl.log"' "$T"
ok "... says what it queued" grep -qx 'ACC073000 goes under worklist item ACC074000: 2 uploads queued' "$T/assign.out"
ok "relaysend sends them" drain 20
is "$(count ACC073000 COMPLETE)" 2 "both are COMPLETE"
is "$(puts act-74)" 2 "under the assigned item's action_id"
gatewayctl show ACC073000 >"$T/show.out" 2>>"$T/ctl.log"
ok "show says so" grep -q '^  sent under worklist item ACC074000 (assigned by hand)$' "$T/show.out"

# 5. release: given up, kept, not sent; resend undoes it.
ingest 75 2
send
is "$(count ACC075000 UNMATCHED)" 2 "another study waits"
ok "gatewayctl release ACC075000" sh -c 'gatewayctl release ACC075000 >"$0/release.out" 2>>"$0/ctl.log"' "$T"
ok "... says what it did" grep -q '^ACC075000 released: 2 images not sent (kept in the store' "$T/release.out"
is "$(count ACC075000 RELEASED)" 2 "both are RELEASED"
ok "relaysend drops their jobs" drain 20
is "$(queued) $(count_files "$SPOOL/failed")" "0 0" "... none queued, none failed"
is "$(count ACC075000 RELEASED)" 2 "... and they stay RELEASED"
ok "... logged" grep -q 'msg="released by hand: not sent".*accession_number=ACC075000' "$T/send.log"
is "$(find "$GATEWAY_DATA_DIR/store" -name '*.dcm' | wc -l | tr -d ' ')" 8 "every image is still in the store"
status >"$T/status.out"
ok "status counts them" grep -qx 'uploads: 6 sent, 2 released' "$T/status.out"
gatewayctl waiting >"$T/waiting.out" 2>>"$T/ctl.log"
ok "... and nothing waits" grep -qx '0 images in 0 studies' "$T/waiting.out"
gatewayctl release NO-SUCH-STUDY >/dev/null 2>&1
is "$?" 66 "release of an unknown study: EX_NOINPUT"
item act-75 ACC075000
ok "gatewayctl resend ACC075000 lifts the release" sh -c 'gatewayctl resend ACC075000 >/dev/null 2>>"$0/ctl.log"' "$T"
ok "relaysend sends them" drain 20
is "$(count ACC075000 COMPLETE)" 2 "both are COMPLETE"

NAME=$(sql "$PACS_DB" "SELECT patient_name FROM patients LIMIT 1")
ok "no patient name in the logs" sh -c "! grep -qF '$NAME' '$T/send.log' '$T/ctl.log' '$T/index.log'"
done_testing
