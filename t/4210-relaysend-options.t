#!/bin/sh
# 4210-relaysend-options: relaysend's upload options against the Manage API
# test server (t/relay/manage-api): CLOUD_API_TOKEN_COMMAND supplies the
# token (a failing command is reported and the image waits); the bandwidth
# cap (--max-send-rate, RELAY_MAX_SEND_BYTES_PER_SECOND) makes a ~1 MB
# upload last at least ~4 s (a lower bound only); --jobs 3 (and RELAY_JOBS)
# delivers 30 images each exactly once, with --once and following the
# spool, and SIGTERM stops every worker; the upload modes (original here,
# where bytes and rates are measured; lossless; reduced, the default, with
# production's DICOM_THUMBNAIL_SIZE and DICOM_COMPRESSION_RATIO).
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
command -v openssl >/dev/null || skip_all "openssl not installed"
command -v curl >/dev/null || skip_all "curl not installed"

export GATEWAY_DATA_DIR=$T/var
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
SPOOL=$GATEWAY_DATA_DIR/spool/relay
mkdir -p "$GATEWAY_DATA_DIR/incoming"
api_start
export RELAY_RETRY_MAX_SECONDS=1 RELAY_UPLOAD_MODE=original
unset CLOUD_API_TOKEN CLOUD_API_TOKEN_COMMAND RELAY_NO_MATCH RELAY_JOBS \
	RELAY_MAX_SEND_BYTES_PER_SECOND AZURE_RELAY_NAMESPACE \
	AZURE_RELAY_EVENTS_HYBRID_CONNECTION

count() {	# count ACCESSION STATUS
	sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE accession_number = '$1' AND upload_status = '$2'"
}
puts() {	# puts ACTION_ID: files the API stored for it
	ls "$API/put" 2>/dev/null | grep -c -- "-$1\.dcm\$"
}
drain() {	# drain SECONDS [relaysend options]: until nothing of ours is queued
	_s=$1; shift
	wait_until "$_s" sh -c 'relaysend --once "$@" 2>>"$0"' "$T/send.log" "$@"
}
# elapsed T0 FILE: seconds from T0 (date +%s.%N) to FILE's modification
elapsed() { $PY -c 'import os,sys; print("%.1f" % (os.stat(sys.argv[2]).st_mtime - float(sys.argv[1])))' "$1" "$2"; }
at_least() { $PY -c 'import sys; sys.exit(float(sys.argv[1]) < float(sys.argv[2]))' "$1" "$2"; }

# 1. the token from CLOUD_API_TOKEN_COMMAND
item act-61 ACC061000
ingest 61 2
ok "with CLOUD_API_TOKEN_COMMAND relaysend --once uploads" \
	env CLOUD_API_TOKEN_COMMAND='echo sesame' relaysend --once
is "$(puts act-61)" 2 "the API received both images with the command's token"

# 2. a failing command: reported, the image waits, then goes
item act-62 ACC062000
ingest 62 1
CLOUD_API_TOKEN_COMMAND='echo nope >&2; exit 3' relaysend --once 2>"$T/cmd.log"
is "$?" 75 "a failing token command leaves the image queued (exit 75)"
ok "the log says the token command failed" grep -q 'msg="no token for the Manage API" credential=command reason=.*CLOUD_API_TOKEN_COMMAND' "$T/cmd.log"
is "$(count ACC062000 WAITING)" 1 "the image is WAITING"
is "$(count_files "$SPOOL/failed")" 0 "nothing is parked"
refused() { CLOUD_API_TOKEN_COMMAND='echo wrong' relaysend --once 2>>"$T/wrong.log"; grep -q 'refuses the token.*status=401' "$T/wrong.log"; }
ok "a command printing a refused token is logged as a 401 (once the job is due)" wait_until 10 refused
export CLOUD_API_TOKEN_COMMAND='echo sesame'
ok "with a working command it is delivered" drain 10
is "$(puts act-62)" 1 "once"

# 3. the bandwidth cap: ~1 MB at 200000 B/s lasts at least ~4 s
item act-63 ACC063000
ingest 63 1 720x700
size=$(sql "$PACS_DB" "SELECT file_size FROM stored_instances WHERE accession_number = 'ACC063000'")
ok "the image is about 1 MB ($size bytes)" test "$size" -ge 1000000
t0=$(date +%s.%N)
relaysend --once --max-send-rate 200000 2>"$T/rate.log"
is "$?" 0 "relaysend --once --max-send-rate 200000 uploads it"
took=$(elapsed "$t0" "$(ls "$API"/put/*-act-63.dcm)")
ok "the API had the whole file no sooner than 4 s after the start (${took} s)" at_least "$took" 4
secs=$(sed -n 's/.*msg=uploaded.*seconds=\([0-9.]*\).*/\1/p' "$T/rate.log")
ok "relaysend's log agrees (${secs} s)" at_least "${secs:-0}" 4

item act-64 ACC064000
ingest 64 1 720x700
t0=$(date +%s.%N)
ok "RELAY_MAX_SEND_BYTES_PER_SECOND=200000 caps it too" \
	env RELAY_MAX_SEND_BYTES_PER_SECOND=200000 relaysend --once
took=$(elapsed "$t0" "$(ls "$API"/put/*-act-64.dcm)")
ok "again no sooner than 4 s (${took} s)" at_least "$took" 4

# 4. --jobs 3 --once: 30 images, each delivered exactly once
for s in 65 66 67; do item act-$s ACC0${s}000; ingest $s 10; done
relaysend --once --jobs 3 2>"$T/jobs.log"
is "$?" 0 "relaysend --once --jobs 3 exits 0 when the queue is empty"
is "$(( $(puts act-65) + $(puts act-66) + $(puts act-67) ))" 30 "the API stored 30 files"
is "$(cd "$API/put" && ls ./*-act-6[567].dcm | xargs sha256sum | cut -d' ' -f1 | sort -u | wc -l | tr -d ' ')" 30 \
	"30 different images: none twice"
created() { grep '"PUT"' "$API/requests.log" | grep -c '"status": 201'; }
is "$(created)" 35 "each image was PUT exactly once (35 accepted PUTs in all)"
is "$(grep -c 'msg=stopped worker=[012] uploaded=[1-9]' "$T/jobs.log")" 3 "all three workers delivered some"
is "$(grep -c 'msg=started' "$T/jobs.log")" 1 "the start is logged once"
is "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE upload_status <> 'COMPLETE'")" 0 "every image is COMPLETE"
is "$(count_files "$SPOOL/new") $(count_files "$SPOOL/cur")" "0 0" "the relay spool is empty"

# 5. RELAY_JOBS=3, following: woken by new jobs, stopped by SIGTERM
bg follower env RELAY_JOBS=3 relaysend
FOLLOWER=$BG_PID
wait_for 10 "three workers follow the spool" grep -q 'msg="workers started" jobs=3' "$T/follower.log"
workers=$(pgrep -P "$FOLLOWER" | tr '\n' ' ')
is "$(echo $workers | wc -w | tr -d ' ')" 3 "three worker processes"
for s in 68 69 70; do item act-$s ACC0${s}000; ingest $s 10; done
delivered() { [ $(( $(puts act-68) + $(puts act-69) + $(puts act-70) )) -ge 30 ]; }
wait_for 30 "the followers deliver 30 more images" delivered
is "$(cd "$API/put" && ls ./*-act-6[89].dcm ./*-act-70.dcm | xargs sha256sum | cut -d' ' -f1 | sort -u | wc -l | tr -d ' ')" 30 \
	"30 different images: none twice"
is "$(created)" 65 "each once (65 accepted PUTs in all)"
kill -TERM "$FOLLOWER"
wait "$FOLLOWER"
is "$?" 0 "SIGTERM stops relaysend with status 0"
gone() { for p in $workers; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
ok "and every worker has stopped" gone
is "$(grep -c 'msg=stopped worker=' "$T/follower.log")" 3 "each worker said so"

# 6. upload modes: the API gets a lossless or a reduced copy, same image
item act-71 ACC071000
ingest 71 1 720x700
sop=$(sql "$PACS_DB" "SELECT sop_instance_uid FROM stored_instances WHERE accession_number = 'ACC071000'")
orig=$(sql "$PACS_DB" "SELECT file_size FROM stored_instances WHERE accession_number = 'ACC071000'")
ok "--upload-mode lossless uploads" drain 20 --upload-mode lossless
f=$(ls "$API"/put/*-act-71.dcm)
is "$(dcmdump -q +P 0002,0010 "$f" | awk '{ print $3 }')" =JPEGLSLossless "lossless: JPEG-LS lossless transfer syntax"
is "$(dcm_value "$f" 0008,0018)" "$sop" "... the same SOP Instance UID"
ok "... smaller than the original" test "$(wc -c <"$f")" -lt "$orig"
dcmdjpls "$f" "$T/back.dcm" 2>/dev/null
stored=$(sql "$PACS_DB" "SELECT storage_path FROM stored_instances WHERE accession_number = 'ACC071000'")
ok "... and decodes to the original pixels (dcmdjpls, dcmicmp)" sh -c \
	"dcmicmp '$GATEWAY_DATA_DIR/store/$stored' '$T/back.dcm' 2>&1 | grep -q 'Max Absolute Error *= 0\$'"
item act-72 ACC072000
ingest 72 1 720x700
export RELAY_UPLOAD_MODE=reduced
ok "RELAY_UPLOAD_MODE=reduced uploads" drain 20
unset RELAY_UPLOAD_MODE
f=$(ls "$API"/put/*-act-72.dcm)
is "$(dcmdump -q +P 0002,0010 "$f" | awk '{ print $3 }')" =JPEG2000 "reduced: JPEG 2000 (lossy) transfer syntax"
is "$(dcm_value "$f" 0028,0010)x$(dcm_value "$f" 0028,0011)" 400x389 "... longest side 400 px"
is "$(dcm_value "$f" 0028,2110)" 01 "... Lossy Image Compression 01"
item act-73 ACC073000
ingest 73 1 720x700
unset RELAY_UPLOAD_MODE
export DICOM_THUMBNAIL_SIZE=200 DICOM_COMPRESSION_RATIO=40
ok "with no RELAY_UPLOAD_MODE, DICOM_THUMBNAIL_SIZE=200 and DICOM_COMPRESSION_RATIO=40 it uploads" drain 20
unset DICOM_THUMBNAIL_SIZE DICOM_COMPRESSION_RATIO
f=$(ls "$API"/put/*-act-73.dcm)
is "$(dcmdump -q +P 0002,0010 "$f" | awk '{ print $3 }')" =JPEG2000 "reduced is the default"
is "$(dcm_value "$f" 0028,0010)x$(dcm_value "$f" 0028,0011)" 200x194 "... longest side DICOM_THUMBNAIL_SIZE"
ratio=$(dcm_value "$f" 0028,2112)
ok "... compressed about DICOM_COMPRESSION_RATIO:1 (ratio $ratio)" at_least "$ratio" 30
for bad in RELAY_UPLOAD_MODE=bogus DICOM_THUMBNAIL_SIZE=0 DICOM_COMPRESSION_RATIO=1 \
    RELAY_UPLOAD_CLASSES=some MAX_UPLOAD_RETRIES=0 RELAY_500_SPREAD_SECONDS=-1; do
	env "$bad" relaysend --once 2>"$T/mode.err"
	is "$?" 78 "relaysend refuses $bad: EX_CONFIG"
	ok "... naming it" grep -q "${bad%%=*}" "$T/mode.err"
done

ok "the logs name no patient" sh -c "! cat '$T'/*.log | grep -q 'TEST^ONE\|9990001112'"
done_testing
