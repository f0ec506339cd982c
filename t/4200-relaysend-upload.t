#!/bin/sh
# 4200-relaysend-upload: relaysend uploads stored images to the Manage API
# (t/relay/manage-api, HTTPS with a test CA): each image once, with the
# worklist item's action_id, by default as production sends it (a reduced
# JPEG 2000 copy, the same SOP Instance UID), byte for byte with
# RELAY_UPLOAD_MODE=original; 503s retried with back-off; a 400 parked in
# failed/ and reported, after which the cloud refuses the action (403)
# until it takes it again; an image without a worklist item waits until
# one appears; SIGKILL in the middle of an upload loses nothing; a wrong
# token and an unverifiable certificate make jobs wait, never park them.
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
command -v openssl >/dev/null || skip_all "openssl not installed"
command -v curl >/dev/null || skip_all "curl not installed"

export GATEWAY_DATA_DIR=$T/var
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
SPOOL=$GATEWAY_DATA_DIR/spool/relay
mkdir -p "$GATEWAY_DATA_DIR/incoming"
api_start
export CLOUD_API_TOKEN=sesame
export RELAY_RETRY_MAX_SECONDS=1
unset CLOUD_API_TOKEN_COMMAND RELAY_NO_MATCH

count() {	# count ACCESSION STATUS
	sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE accession_number = '$1' AND upload_status = '$2'"
}
puts() {	# puts ACTION_ID: files the API stored for it
	ls "$API/put" 2>/dev/null | grep -c -- "-$1\.dcm\$"
}
send() { relaysend --once 2>>"$T/send.log"; }
# drain SECONDS: run relaysend --once until nothing of ours is left queued
drain() { wait_until "$1" send; }
value() {	# value ACCESSION COLUMN: the column of its instances, one a line
	sql "$PACS_DB" "SELECT $2 FROM stored_instances WHERE accession_number = '$1' ORDER BY 1"
}
has() { case "$1" in *"$2"*) return 0;; esac; return 1; }	# has TEXT PART
retried() { [ "$(value ACC042000 'max(upload_attempt_count)')" -ge 2 ]; }
uploading() { [ "$(count ACC046000 UPLOADING)" = 1 ]; }
same_sops() {	# same_sops ACTION_ID ACCESSION: uploaded SOP UIDs == stored ones
	a=$(for f in "$API"/put/*-"$1".dcm; do dcm_value "$f" 0008,0018; done | sort)
	b=$(sql "$PACS_DB" "SELECT sop_instance_uid FROM stored_instances WHERE accession_number = '$2' ORDER BY 1")
	[ -n "$a" ] && [ "$a" = "$b" ]
}
all_j2k() {	# all_j2k ACTION_ID: every file uploaded is JPEG 2000 (lossy)
	for f in "$API"/put/*-"$1".dcm; do
		[ "$(dcmdump -q +P 0002,0010 "$f" | awk '{ print $3 }')" = =JPEG2000 ] || return 1
	done
}
same_bytes() {	# same_bytes ACTION_ID ACCESSION: uploaded bytes == stored objects
	a=$(cd "$API/put" && sha256sum ./*-"$1".dcm | cut -d' ' -f1 | sort)
	b=$(sql "$PACS_DB" "SELECT storage_hash FROM stored_instances WHERE accession_number = '$2' ORDER BY 1")
	[ -n "$a" ] && [ "$a" = "$b" ]
}

ok "--help" relaysend --help
is "$(relaysend --version)" "relaysend 0.1.0" "--version"
not_ok "an unknown option is a usage error" relaysend --bogus

# 1. four images of one worklist item
item act-41 ACC041000
ok "four images are ingested" ingest 41 4
is "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE upload_status = 'PENDING'")" 4 \
	"new instances are PENDING"
ok "relaysend --once uploads them and exits 0" send
is "$(puts act-41)" 4 "the API received four files for the item's action_id"
ok "by default each is a JPEG 2000 lossy copy, as production sends" all_j2k act-41
ok "... of the stored images (the same SOP Instance UIDs)" same_sops act-41 ACC041000
ok "the start says the upload mode" grep -q 'msg=started .*upload_mode=reduced upload_classes=mammo' "$T/send.log"
is "$(count ACC041000 COMPLETE)" 4 "all four are COMPLETE"
is "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE accession_number = 'ACC041000' AND uploaded_at IS NOT NULL AND upload_attempt_count = 1")" 4 \
	"uploaded_at is set, one attempt each"
is "$(grep -c '"PUT"' "$API/requests.log")" 4 "each image was PUT exactly once"
is "$(count_files "$SPOOL/new") $(count_files "$SPOOL/cur")" "0 0" "the relay spool is empty"

# 2. 503 three times, with Retry-After: retried, then complete
item act-42 ACC042000
ingest 42 2
api_fault "?status=503&count=3&retry_after=1"
ok "503s are retried until both images are delivered" drain 25
is "$(count ACC042000 COMPLETE)" 2 "both are COMPLETE"
is "$(puts act-42)" 2 "each stored once by the API"
is "$(grep -c '"status": 503' "$API/requests.log")" 3 "three 503 answers were seen"
ok "the outage was logged with its error" \
	grep -q 'level=warn .*msg="cannot deliver to the Manage API: .* kind=image .*error="HTTP 503' "$T/send.log"
ok "the attempt count is kept" retried

# 3. a permanent 400: parked, reported; the report makes the cloud refuse
# the action (403), as production does, until it takes it again
item act-43 ACC043000
ingest 43 1
api_fault "?status=400&count=1"
drain 10
is "$(count_files "$SPOOL/failed")" 2 "the job is in failed/ with its reason"
ok "the reason names the HTTP status" grep -q 'HTTP 400' "$SPOOL"/failed/*.reason
is "$(count ACC043000 FAILED)" 1 "upload_status is FAILED"
ok "upload_error says why" has "$(value ACC043000 upload_error)" "HTTP 400"
ok "a PATCH …/failure reached the API" sh -c "grep -q '\"error\"' '$API'/failure/*-act-43.json"
api_fault /clear
ok "relaysend --retry-failed" relaysend --retry-failed
drain 10
is "$(count ACC043000 REFUSED)" 1 "the retried image is refused: the cloud blocks a reported action (403)"
is "$(count_files "$SPOOL/failed") $(count_files "$SPOOL/new")" "0 0" "nothing is parked or queued for it"
api_admin "/_action?id=act-43&state=sent"
ok "once the cloud takes the action again, gatewayctl resend sends it" gatewayctl resend ACC043000
ok "... delivered" drain 10
is "$(count ACC043000 COMPLETE)" 1 "and COMPLETE"

# 4. no worklist item yet: UNMATCHED, delivered once the item exists
ingest 44 1
not_ok "relaysend --once reports work left (exit 75)" send
is "$(count ACC044000 UNMATCHED)" 1 "the image is UNMATCHED"
ok "its next attempt time is recorded" has "$(value ACC044000 upload_next_attempt_at)" "T"
is "$(count_files "$SPOOL/new")" 1 "its job stays queued"
item act-44 ACC044000
ok "after the item is created it is delivered" drain 10
is "$(count ACC044000 COMPLETE)" 1 "COMPLETE"
is "$(puts act-44)" 1 "with the new item's action_id"

# 4b. --no-match report parks it instead
ingest 45 1
RELAY_NO_MATCH=report relaysend --once 2>>"$T/send.log"
ok "--no-match report parks it with the reason" grep -q 'no worklist item' "$SPOOL"/failed/*.reason
is "$(count ACC045000 FAILED)" 1 "FAILED"
item act-45 ACC045000
relaysend --retry-failed 2>>"$T/send.log"
ok "after the item exists and --retry-failed it is delivered" drain 10

# 5. SIGKILL in the middle of an upload (the original bytes, this time)
item act-46 ACC046000
ingest 46 2
api_fault "?mode=timeout&count=1"
bg sender env RELAY_UPLOAD_MODE=original relaysend
SENDER=$BG_PID
wait_for 10 "an upload hangs in UPLOADING" uploading
kill -KILL "$SENDER"
wait_until 5 sh -c "! kill -0 $SENDER"
is "$(count_files "$SPOOL/cur")" 1 "the interrupted job is still claimed in cur/"
api_fault /clear
export RELAY_UPLOAD_MODE=original
ok "a restart resumes and delivers everything" drain 15
unset RELAY_UPLOAD_MODE
ok "the start reported the resumed upload" grep -q 'resumed_uploads=1' "$T/send.log"
is "$(count ACC046000 COMPLETE)" 2 "both images COMPLETE"
ok "the uploaded bytes are the stored objects" same_bytes act-46 ACC046000

# 6. a wrong token: 401 is retried, never parked
item act-47 ACC047000
ingest 47 1
CLOUD_API_TOKEN=wrong relaysend --once 2>>"$T/send.log"
is "$(count ACC047000 WAITING)" 1 "with a wrong token the image WAITs"
ok "the log says the token is refused" grep -q 'refuses the token' "$T/send.log"
is "$(count_files "$SPOOL/failed")" 0 "nothing is parked for a bad token"
ok "with the right token it is delivered" drain 10

# 7. a certificate that cannot be verified
item act-48 ACC048000
ingest 48 1
env -u GATEWAY_CA_FILE relaysend --once 2>"$T/tls.log"
ok "the error says certificate verification failed" grep -q 'certificate verification failed' "$T/tls.log"
is "$(count ACC048000 WAITING)" 1 "and the image WAITs"
ok "with the CA it is delivered" drain 10

# 8. follow mode stops cleanly on SIGTERM
bg follower relaysend
FOLLOWER=$BG_PID
wait_for 10 "relaysend follows the spool" grep -q 'msg=started' "$T/follower.log"
kill -TERM "$FOLLOWER"
wait "$FOLLOWER"
is "$?" 0 "SIGTERM stops it with status 0"

is "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE upload_status <> 'COMPLETE'")" 0 \
	"every image ends COMPLETE"
is "$(ls "$API/put" | wc -l | tr -d ' ')" 13 "the API stored 13 files for 13 images"
is "$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE upload_status = 'LOCAL'")" 0 "MG images are never LOCAL"
ok "the log names no patient" sh -c "! grep -q 'TEST^ONE\|9990001112' '$T/send.log'"
done_testing
