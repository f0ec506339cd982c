#!/bin/sh
# 9020-tomosynthesis-memory: two 64-frame Breast Tomosynthesis Images
# (t/tools/gen-tomo, 1536x1280 16-bit frames: 251 MB each; the second
# JPEG-LS compressed by dcmcjpls) through the whole gateway under gatewayd:
# stored, indexed with frames, laterality and view from the functional
# groups, previewed from the middle frame, uploaded in "original" mode
# byte for byte, retrieved by C-MOVE (as stored, and decoded frame by
# frame for a destination that takes only uncompressed) and by C-GET,
# then scrubbed.  Every program of ours runs under t/unit/maxrss, which
# reports the peak resident memory of it and of the children it waited
# for (getrusage) when it exits: storescp-hook, dcmindex, dcmthumb,
# relaysend, qrscp and
# the scrub stay under 64 MB with a 251 MB object in flight (bench/tomo
# does 2 GB).  Not timed.
. "${0%/*}/lib.sh"
. "$GW_ROOT/t/relay/lib.sh"
command -v curl >/dev/null || skip_all "curl not installed"
command -v dcmcjpls >/dev/null && command -v dcmsend >/dev/null ||
    skip_all "dcmtk not installed"

LIMIT_KB=65536
# AddressSanitizer keeps freed memory in a quarantine (256 MB by default),
# which would count as resident; a small one keeps the measure honest (the
# sanitizer's own shadow and red zones still count against the limit).
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4
export ASAN_OPTIONS
FRAMES=64
SIZE=1536x1280
export GATEWAY_DATA_DIR=$T/var
mkdir -p "$GATEWAY_DATA_DIR" "$T/in"
GEN_TOMO=$GW_ROOT/t/tools/gen-tomo
"$GEN_TOMO" --frames $FRAMES --size $SIZE --view RCC --accession ACCTOMO9 \
    --study-uid 2.25.9020 "$T/in/rcc.dcm" >"$T/rcc.list"
"$GEN_TOMO" --frames $FRAMES --size $SIZE --view LMLO --accession ACCTOMO9 \
    --study-uid 2.25.9020 --anatomy-per-frame --seed 7 "$T/lmlo.dcm" \
    >"$T/lmlo.list"
ok "dcmcjpls compresses the second, frame by frame (JPEG-LS lossless)" \
    dcmcjpls "$T/lmlo.dcm" "$T/in/lmlo-jls.dcm"
RCC=$(cut -d' ' -f2 "$T/rcc.list")
LMLO=$(cut -d' ' -f2 "$T/lmlo.list")

# Every program gatewayd runs goes through the wrapper; maxrss lines
# ("NAME KIB") land in $T/rss when they exit.
mkdir -p "$T/wbin"
for p in "$GW_BIN"/*; do
	printf '#!/bin/sh\nexec "%s" "%s" "%s" "$@"\n' "$GW_BUILD/t/maxrss" \
	    "$T/rss" "$p" >"$T/wbin/${p##*/}"
	chmod +x "$T/wbin/${p##*/}"
done

# The cloud: the Manage API, a worklist item for the accession, uploads
# of the original (another mode may become the default).
API_MAX_MB=400 api_start
item act-tomo ACCTOMO9
# Tomosynthesis is LOCAL by default (RELAY_UPLOAD_CLASSES=mammo) and
# over the API's 100 MiB: here both are opened to test the streaming.
export CLOUD_API_TOKEN=sesame RELAY_UPLOAD_MODE=original RELAY_UPLOAD_CLASSES=all CLOUD_API_MAX_MB=400
# C-MOVE destinations: storescp taking every syntax, and one taking only
# uncompressed (its default).
P_ALL=$(free_port); P_RAW=$(free_port)
mkdir -p "$T/all" "$T/raw" "$T/get"
bg st-all storescp +B +xa -aet DEST_ALL -od "$T/all" "$P_ALL"
bg st-raw storescp +B -aet DEST_RAW -od "$T/raw" "$P_RAW"
printf 'DEST_ALL 127.0.0.1 %s\nDEST_RAW 127.0.0.1 %s\n' "$P_ALL" "$P_RAW" \
    >"$T/destinations"
export QR_DESTINATIONS=$T/destinations
real_bin=$GW_BIN
GW_BIN=$T/wbin
start_gateway
GW_BIN=$real_bin

# 1. store and index
ok "dcmsend sends both, each in its own transfer syntax" dcmsend -to 60 \
    -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$T/in/rcc.dcm" \
    "$T/in/lmlo-jls.dcm"
indexed() { [ "$(sql "$PACS_DB" "SELECT count(*) FROM instances")" = 2 ]; }
wait_for 120 "both are indexed" indexed
row() { sql "$PACS_DB" "SELECT sop_class_uid, number_of_frames, laterality, view_position FROM instances WHERE sop_instance_uid = '$1'"; }
is "$(row "$RCC")" "1.2.840.10008.5.1.4.1.1.13.1.3|$FRAMES|R|CC" \
    "indexed as a tomosynthesis object of $FRAMES frames, R CC from the shared Frame Anatomy and the View Code"
is "$(row "$LMLO")" "1.2.840.10008.5.1.4.1.1.13.1.3|$FRAMES|L|MLO" \
    "the compressed one L MLO from every frame's Frame Anatomy"
gatewayctl show ACCTOMO9 >"$T/show.out" 2>&1
is "$(grep -c "image:   tomosynthesis, $FRAMES frames of $SIZE" "$T/show.out")" 2 \
    "gatewayctl show says tomosynthesis, $FRAMES frames of $SIZE"

# 2. previews: the middle frame, as dcmthumb renders it from the file
previews() { [ "$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE thumbnail_status = 'GENERATED'")" = 2 ]; }
wait_for 120 "both previews are made" previews
thumb_of() { echo "$GATEWAY_DATA_DIR/thumbs/$(sql "$PACS_DB" "SELECT thumbnail_path FROM instances WHERE sop_instance_uid = '$1'")"; }
dcmthumb --frame $((FRAMES / 2)) "$T/in/rcc.dcm" "$T/middle.png" 2>/dev/null
ok "the preview is the middle frame (frame $((FRAMES / 2)) of $FRAMES)" \
    cmp "$(thumb_of "$RCC")" "$T/middle.png"

# 3. upload, original
uploaded() { [ "$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE upload_status = 'COMPLETE'")" = 2 ]; }
wait_for 300 "both are uploaded" uploaded
same_upload() {
	for h in $(sql "$PACS_DB" "SELECT object_hash FROM instances"); do
		sha256sum "$API"/put/*-act-tomo.dcm | grep -q "^$h " || return 1
	done
}
ok "the Manage API received the stored bytes of each" same_upload

# 4. Q/R: C-MOVE as stored, C-MOVE decoded, C-GET
. "$GW_ROOT/t/qr/lib.sh"
# move DEST LEVEL [SOP_UID]; get DIR SOP_UID [getscu options]
move() {
	movescu -to 60 -S -aec SCREENING_QR -aem "$1" -k "QueryRetrieveLevel=$2" \
	    -k StudyInstanceUID=2.25.9020 ${3:+-k "SeriesInstanceUID=$(series_of "$3")"} \
	    ${3:+-k "SOPInstanceUID=$3"} 127.0.0.1 "$QR_PORT" >"$T/move-$1.out" 2>&1
}
series_of() { sql "$PACS_DB" "SELECT series_instance_uid FROM stored_instances WHERE sop_instance_uid = '$1'"; }
get() {
	_d=$1 _uid=$2; shift 2
	(cd "$T/$_d" && getscu +B -to 60 -S -aec SCREENING_QR "$@" \
	    -k QueryRetrieveLevel=IMAGE -k StudyInstanceUID=2.25.9020 \
	    -k "SeriesInstanceUID=$(series_of "$_uid")" -k "SOPInstanceUID=$_uid" \
	    127.0.0.1 "$QR_PORT" >"$T/get-$_uid.out" 2>&1)
}
ok "C-MOVE of the study to a destination taking every syntax" move DEST_ALL STUDY
is "$(count_files "$T/all")" 2 "... both objects arrive"
ok "... each with the stored data set, byte for byte" same_as_stored all
ok "C-MOVE of the JPEG-LS one to a destination taking only uncompressed" \
    move DEST_RAW IMAGE "$LMLO"
f=$(ls "$T"/raw/* 2>/dev/null | head -n 1)
is "$(ts_of "$f")" 1.2.840.10008.1.2.1 "... it arrives in explicit VR little endian"
is "$(pixel_sha "$f")" "$(pixel_sha "$T/lmlo.dcm")" \
    "... decoded frame by frame to the pixels it was compressed from"
ok "C-GET of the uncompressed one" get get "$RCC"
ok "C-GET of the JPEG-LS one, taking JPEG-LS" get get "$LMLO" +xt
is "$(count_files "$T/get")" 2 "... two files come back"
ok "... with the stored data sets, byte for byte" same_as_stored get

# 5. the scrub, then memory
"$GW_BUILD/t/maxrss" "$T/rss" "$GW_BIN/dcmindex" --verify 2>"$T/verify.log"
is "$?" 0 "dcmindex --verify finds both objects good"
stop_gateway
for p in storescp-hook dcmindex dcmthumb relaysend qrscp; do
	kb=$(awk -v p="$p" '$1 == p && $2 > m { m = $2 } END { print m + 0 }' "$T/rss")
	ok "$p stayed under 64 MB resident ($kb KiB at most)" \
	    test "$kb" -gt 0 -a "$kb" -lt $LIMIT_KB
done
diag "peak resident memory, KiB (every run): $(sort "$T/rss" | tr '\n' ' ')"
ok "no sanitizer report in the gateway's log" \
    sh -c "! grep -q 'Sanitizer\|runtime error' '$T/gatewayd.log'"
done_testing
