#!/bin/sh
# 4910-resend-held-events: an image whose preview is made while the
# relay's events are off gets no study.image_received job; pacs.db marks
# its event held back (instances.event_held_at).  Once events are
# configured, `gatewayctl resend --held` queues those events as dcmthumb
# would have (same job, preview included), beside the HELD images'
# uploads, and clears the marks: relaysend delivers them to the cloud.
# That holds whether the images were HELD too (nothing configured) or
# already uploaded (the Manage API on, events off).
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
$PY -c 'import websockets' 2>/dev/null || skip_all "python3-websockets not installed"
command -v openssl >/dev/null || skip_all "openssl not installed"
command -v curl >/dev/null || skip_all "curl not installed"

cloud_off
export RELAY_RETRY_MAX_SECONDS=1

relay_start events
cloud_listen events
unset CLOUD_API_ENDPOINT	# not yet: relay_start leaves events off too

previews() { ingest "$1" "$2" && dcmthumb --once 2>>"$T/thumb.log"; }	# previews SEED COUNT
held() { sql "$PACS_DB" "SELECT count(*) FROM stored_instances s JOIN instances i USING (sop_instance_uid) WHERE s.accession_number = '$1' AND i.event_held_at IS NOT NULL"; }
count() { sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE accession_number = '$1' AND upload_status = '$2'"; }
event_jobs() { grep -l '^kind=study.image_received$' "$SPOOL"/new/* 2>/dev/null | wc -l | tr -d ' '; }
events_for() {	# events_for ACCESSION: study.image_received the cloud got, with a preview
	$PY - "$EVENTS" "$1" <<'EOF'
import glob, json, sys
n = 0
for f in glob.glob(sys.argv[1] + "/*.json"):
    e = json.load(open(f))
    p = e.get("parameters", {})
    if e.get("message_type") == "study.image_received" and \
       p["study"]["accession_number"] == sys.argv[2] and \
       p["image"]["thumbnail"] is not None:
        n += 1
print(n)
EOF
}
send() { relaysend --once 2>>"$T/send.log"; }
drain() { wait_until "$1" send; }

# 1. Nothing configured: previews are made, their events held back.
ok "two images are ingested, their previews made, with no cloud at all" previews 93 2
is "$(event_jobs)" 0 "no event job: nothing would send it"
is "$(held ACC093000)" 2 "pacs.db marks both events held back"
is "$(count ACC093000 HELD)" 2 "and both images HELD"

# 2. The cloud configured: resend --held sends the images and the events.
api_start
export CLOUD_API_TOKEN=sesame AZURE_RELAY_EVENTS_HYBRID_CONNECTION=events
item act-93 ACC093000
ok "gatewayctl resend --held" sh -c 'gatewayctl resend --held >"$0/held.out" 2>>"$0/ctl.log"' "$T"
is "$(cat "$T/held.out")" "2 uploads queued (every HELD image)
2 events queued (held back while the relay's events were off)" "... says what it queued"
is "$(event_jobs)" 2 "two study.image_received jobs wait"
ok "... each with its preview, as dcmthumb writes it" sh -c \
	"for f in \$(grep -l '^kind=study.image_received\$' '$SPOOL'/new/*); do
		p=\$(sed -n 's/^thumbnail=//p' \"\$f\"); test -s \"\$p\" &&
		grep -qx 'thumbnail_status=GENERATED' \"\$f\" && grep -qx 'format=png' \"\$f\" || exit 1
	done"
is "$(held ACC093000)" 0 "... and the marks are cleared"
ok "relaysend delivers them" drain 30
is "$(count ACC093000 COMPLETE)" 2 "both images are uploaded"
is "$(events_for ACC093000)" 2 "the cloud has both events, with their previews"
gatewayctl resend --held >"$T/held.out" 2>>"$T/ctl.log"
is "$(cat "$T/held.out")" "0 uploads queued (every HELD image)
0 events queued (held back while the relay's events were off)" "a second resend --held has nothing left"

# 3. Uploads on, events off: the image goes, its event is held back.
unset AZURE_RELAY_EVENTS_HYBRID_CONNECTION
item act-94 ACC094000
ok "an image is ingested with the Manage API on and events off" previews 94 1
is "$(held ACC094000) $(event_jobs)" "1 0" "its event is held back, no job"
ok "relaysend uploads it" drain 30
is "$(count ACC094000 COMPLETE)" 1 "... COMPLETE"
export AZURE_RELAY_EVENTS_HYBRID_CONNECTION=events
gatewayctl resend --held >"$T/held.out" 2>>"$T/ctl.log"
is "$(cat "$T/held.out")" "0 uploads queued (every HELD image)
1 event queued (held back while the relay's events were off)" \
	"with events on, resend --held queues its event alone"
ok "relaysend delivers it" drain 30
is "$(events_for ACC094000)" 1 "the cloud has it"

# 4. Events configured, the Manage API not: only the events go.
unset CLOUD_API_ENDPOINT AZURE_RELAY_EVENTS_HYBRID_CONNECTION
ok "an image with nothing configured" previews 95 1
export AZURE_RELAY_EVENTS_HYBRID_CONNECTION=events
gatewayctl resend --held >"$T/held.out" 2>>"$T/ctl.log"
is "$(cat "$T/held.out")" "no upload queued: CLOUD_API_ENDPOINT is not set (HELD images stay held)
1 event queued (held back while the relay's events were off)" \
	"with events alone, resend --held queues the event and says the images stay"
is "$(count ACC095000 HELD)" 1 "... the image stays HELD"

NAME=$(sql "$PACS_DB" "SELECT patient_name FROM patients LIMIT 1")
ok "no patient name in the logs" sh -c "! grep -qF '$NAME' '$T/send.log' '$T/ctl.log' '$T/thumb.log'"
done_testing
