#!/bin/sh
# 6130-qrscp-multiframe: C-MOVE and C-GET of 60-frame tomosynthesis
# objects (t/tools/gen-tomo), each sent as it is read or decoded, never
# whole in memory: as stored (the received data set byte-equal to the
# stored one) to storescp, movescu's own storescp and getscu; a JPEG-LS
# one decoded frame by frame for a destination that takes only
# uncompressed, and an explicit VR one re-encoded for one that takes only
# implicit VR, pixels unchanged; a JPEG-LS object whose frame 40 is
# damaged fails half-way through its data set: the sub-association is
# aborted, the failure counted and logged, and qrscp serves the next
# request.
. "${0%/*}/lib.sh"
. "${0%/*}/qr/lib.sh"
command -v dcmcjpls >/dev/null || skip_all "dcmtk not installed"

GEN_TOMO=$GW_ROOT/t/tools/gen-tomo
STUDY=2.25.6130
qr_data
mkdir -p "$T/src"
"$GEN_TOMO" --frames 60 --size 256x200 --study-uid $STUDY --accession ACC6130 \
    --sop-uid 2.25.61301 "$T/src/rcc.dcm" >/dev/null
"$GEN_TOMO" --frames 60 --size 256x200 --study-uid $STUDY --accession ACC6130 \
    --sop-uid 2.25.61302 --view LMLO --seed 5 "$T/lmlo.dcm" >/dev/null
"$GEN_TOMO" --frames 60 --size 256x200 --study-uid 2.25.61309 --accession ACC6139 \
    --sop-uid 2.25.61309 --view LCC --seed 9 "$T/bad.dcm" >/dev/null
ok "dcmcjpls compresses two of them (JPEG-LS lossless, a fragment a frame)" \
    sh -c "dcmcjpls '$T/lmlo.dcm' '$T/src/lmlo-jls.dcm' &&
	   dcmcjpls '$T/bad.dcm' '$T/bad-jls.dcm'"
# Frame 40 of the last one: its JPEG-LS stream overwritten with noise
# (same length), so that only decoding it can tell.
/usr/bin/python3 - "$T/bad-jls.dcm" "$T/src/bad-jls.dcm" <<'PY'
import sys
import pydicom
from pydicom.encaps import generate_pixel_data_frame, encapsulate
d = pydicom.dcmread(sys.argv[1])
frames = list(generate_pixel_data_frame(d.PixelData, 60))
frames[39] = frames[39][:4] + bytes((i * 37 + 11) & 0xff for i in range(len(frames[39]) - 4))
d.PixelData = encapsulate(frames, has_bot=True)
d.save_as(sys.argv[2])
PY
ok "the store is filled (uncompressed, JPEG-LS, damaged JPEG-LS)" \
    qr_fill "$T"/src/*.dcm
is "$(sql "$PACS_DB" "SELECT group_concat(number_of_frames || ' ' || transfer_syntax_uid, ', ') FROM (SELECT * FROM instances i JOIN objects o ON o.hash = i.object_hash ORDER BY i.sop_instance_uid)")" \
    "60 1.2.840.10008.1.2.1, 60 1.2.840.10008.1.2.4.80, 60 1.2.840.10008.1.2.4.80" \
    "pacs.db has the three 60-frame objects"

P_ALL=$(free_port); P_RAW=$(free_port); P_IMPL=$(free_port); PORT=$(free_port)
P_SELF=$(free_port)
mkdir -p "$T/all" "$T/raw" "$T/impl" "$T/get" "$T/self"
bg st-all storescp +B +xa -aet DEST_ALL -od "$T/all" "$P_ALL"
bg st-raw storescp +B -aet DEST_RAW -od "$T/raw" "$P_RAW"
bg st-impl storescp +B +xi -aet DEST_IMPL -od "$T/impl" "$P_IMPL"
cat >"$T/destinations" <<DEST
DEST_ALL  127.0.0.1 $P_ALL
DEST_RAW  127.0.0.1 $P_RAW
DEST_IMPL 127.0.0.1 $P_IMPL
MOVESCU   127.0.0.1 $P_SELF
DEST
wait_until 20 port_open "$P_ALL"
wait_until 20 port_open "$P_RAW"
wait_until 20 port_open "$P_IMPL"
qr_start qrscp "$PORT" --destinations "$T/destinations"
ok "qrscp listens" port_open "$PORT"

# image_keys SOP_UID: the keys of an IMAGE level retrieve of it
series_of() { sql "$PACS_DB" "SELECT series_instance_uid FROM stored_instances WHERE sop_instance_uid = '$1'"; }
image_keys() {
	echo "-k QueryRetrieveLevel=IMAGE -k SeriesInstanceUID=$(series_of "$1") -k SOPInstanceUID=$1"
}
# move OUT DEST STUDY [SOP_UID]: study level, or that image
move() {
	_keys="-k QueryRetrieveLevel=STUDY"
	[ -n "${4:-}" ] && _keys=$(image_keys "$4")
	# shellcheck disable=SC2086
	movescu -v -S -to 30 -aec SCREENING_QR -aem "$2" -k "StudyInstanceUID=$3" \
	    $_keys 127.0.0.1 "$PORT" >"$T/$1" 2>&1
}
final() { grep -a 'Received Final Move Response' "$T/$1"; }

move all.out DEST_ALL $STUDY
is "$(final all.out)" "I: Received Final Move Response (Success)" \
    "C-MOVE of a study of two 60-frame objects: Success"
is "$(count_files "$T/all")" 2 "... both arrive"
ok "... each data set byte-equal to the stored object's" same_as_stored all

move raw.out DEST_RAW $STUDY 2.25.61302
is "$(final raw.out)" "I: Received Final Move Response (Success)" \
    "the JPEG-LS one moves to a destination taking only uncompressed"
f=$(ls "$T"/raw/*)
is "$(ts_of "$f")" 1.2.840.10008.1.2.1 "... in Explicit VR Little Endian"
is "$(pixel_sha "$f")" "$(pixel_sha "$T/lmlo.dcm")" \
    "... decoded frame by frame to exactly the pixels it was compressed from"
is "$(dcm_value "$f" 0028,0008)" 60 "... all 60 frames"

move impl.out DEST_IMPL $STUDY 2.25.61301
is "$(final impl.out)" "I: Received Final Move Response (Success)" \
    "the uncompressed one moves to a destination taking only implicit VR"
f=$(ls "$T"/impl/*)
is "$(ts_of "$f")" 1.2.840.10008.1.2 "... re-encoded in Implicit VR Little Endian"
is "$(pixel_sha "$f")" "$(pixel_sha "$T/src/rcc.dcm")" "... its pixels unchanged"
ok "... every element but the pixel data intact (dcmdump, meta aside)" sh -c "
    dcmdump -q +L -M '$f' | grep -v '^(0002\|^#' | sed 's/ #.*//' >'$T/impl.dump' &&
    dcmdump -q +L -M '$T/src/rcc.dcm' | grep -v '^(0002\|^#' | sed 's/ #.*//' >'$T/rcc.dump' &&
    cmp -s '$T/impl.dump' '$T/rcc.dump'"

(cd "$T/self" && movescu -S -to 30 -aec SCREENING_QR -aem MOVESCU +xt \
    --port "$P_SELF" -k QueryRetrieveLevel=STUDY -k StudyInstanceUID=$STUDY \
    127.0.0.1 "$PORT" >"$T/self.out" 2>&1)
is "$?" 0 "C-MOVE of the study to movescu's own storage SCP (taking JPEG-LS too)"
is "$(count_files "$T/self")" 2 "... both arrive"
ok "... each data set byte-equal to the stored object's" same_as_stored self

# getscu proposes one context a SOP class: uncompressed, or with +xt
# JPEG-LS first, so each object is asked for on its own.
get() {
	_uid=$1; shift
	# shellcheck disable=SC2046
	(cd "$T/get" && getscu +B -S -to 30 -aec SCREENING_QR "$@" \
	    -k StudyInstanceUID=$STUDY $(image_keys "$_uid") 127.0.0.1 "$PORT" \
	    >"$T/get-$_uid.out" 2>&1)
}
ok "C-GET of the uncompressed one with getscu" get 2.25.61301
ok "C-GET of the JPEG-LS one with getscu taking JPEG-LS" get 2.25.61302 +xt
is "$(count_files "$T/get")" 2 "... both arrive"
ok "... each data set byte-equal to the stored object's" same_as_stored get

# A frame that cannot be decoded, half-way through the data set.
move bad.out DEST_RAW 2.25.61309 2.25.61309
ok "the damaged object's C-MOVE to uncompressed ends in B000 (one failed)" \
    grep -aq 'Final Move Response (Warning: SubOperationsCompleteOneOrMoreFailures)' \
    "$T/bad.out"
ok "... qrscp logs the frame that failed" \
    grep -q 'sub-operation failed.*sop_instance_uid=2.25.61309.*frame 40' "$T/qrscp.log"
rm -f "$T"/raw/*
move again.out DEST_RAW $STUDY 2.25.61302
is "$(final again.out)" "I: Received Final Move Response (Success)" \
    "qrscp serves the next C-MOVE"
ok "qrscp is still running" kill -0 "$QR_PID"
ok "no sanitizer report" sh -c "! grep -q 'Sanitizer\|runtime error' '$T/qrscp.log'"
done_testing
