#!/bin/sh
# 6100-qrscp-move: C-MOVE with dcmtk's movescu to bare dcmtk storescp
# destinations: the stored bytes where the destination takes the stored
# transfer syntax, decompression where it takes only uncompressed, the
# counts, an unknown destination (A801), a destination that is down, a
# "tls" one that is not (t/6002 moves over TLS), C-CANCEL, a destination killed mid-move, a purged object, bad
# identifiers; and the frame: QR_ALLOWED_AETS, the association limit, a
# malformed PDU.
. "${0%/*}/lib.sh"
. "${0%/*}/qr/lib.sh"

[ -d "$PYDICOM_FILES" ] || skip_all "python3-pydicom's test files are not installed"
RAW="/usr/bin/python3 $GW_ROOT/t/peers/dulraw.py"

qr_data
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 4 --studies 1 --seed 61 >"$T/a.list"
"$GW_ROOT/t/tools/gen-mammo" "$T/mgb" 12 --studies 1 --seed 62 >"$T/b.list"
STUDY_A=$(head -n 1 "$T/a.list" | cut -d' ' -f3)
STUDY_B=$(head -n 1 "$T/b.list" | cut -d' ' -f3)
# One study of three series: the same MR image in RLE, JPEG-LS lossless
# and JPEG 2000 lossless.
STUDY_C=2.25.61000
qr_mr_study "$T/mr" $STUDY_C 6100
ok "the store is filled (4 + 12 mammograms, 3 compressed MR)" \
    qr_fill "$T"/mg/*.dcm "$T"/mgb/*.dcm "$T"/mr/*.dcm
is "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances")" 19 \
    "pacs.db lists the 19 instances"

# Destinations: storescp taking every syntax it knows, storescp taking
# only uncompressed (its default), a slow one (2 s a file), one down.
P_ALL=$(free_port); P_RAW=$(free_port); P_SLOW=$(free_port)
P_DOWN=$(free_port); PORT=$(free_port)
mkdir -p "$T/all" "$T/raw" "$T/slow"
bg st-all storescp -d +B +xa -aet DEST_ALL -od "$T/all" "$P_ALL"
bg st-raw storescp +B -aet DEST_RAW -od "$T/raw" "$P_RAW"
start_slow() {
	bg st-slow storescp +B -aet DEST_SLOW -od "$T/slow" --exec-sync \
	    --exec-on-reception "sleep 0.4" "$P_SLOW"
	SLOW_PID=$BG_PID
	wait_until 20 port_open "$P_SLOW"
}
start_slow
cat >"$T/destinations" <<DEST
# AE host port [tls]
DEST_ALL  127.0.0.1 $P_ALL
DEST_RAW  127.0.0.1 $P_RAW
DEST_SLOW 127.0.0.1 $P_SLOW
DEST_DOWN 127.0.0.1 $P_DOWN
DEST_TLS  127.0.0.1 $P_ALL tls
DEST
wait_until 20 port_open "$P_ALL"
wait_until 20 port_open "$P_RAW"
qr_start qrscp "$PORT" --destinations "$T/destinations" \
    --artim-seconds 2 --max-associations 3
ok "qrscp listens" port_open "$PORT"
ok "C-ECHO with echoscu" echoscu -to 5 -aec SCREENING_QR 127.0.0.1 "$PORT"

# move OUT DEST KEY=VALUE...: a Study Root C-MOVE, movescu's output in OUT.
move() {
	_out=$1; _dest=$2; shift 2
	_k=""
	for _kv in "$@"; do _k="$_k -k $_kv"; done
	# shellcheck disable=SC2086
	movescu -v -S -to 30 -aec SCREENING_QR -aem "$_dest" $_k \
	    127.0.0.1 "$PORT" >"$T/$_out" 2>&1
}
final() { grep -a 'Received Final Move Response' "$T/$1"; }
pending() { grep -ac 'Received Move Response [0-9]* (Pending)' "$T/$1"; }

# --- the stored bytes, as they are ---
move a.out DEST_ALL QueryRetrieveLevel=STUDY StudyInstanceUID=$STUDY_A
is "$(final a.out)" "I: Received Final Move Response (Success)" \
    "a study of 4 moves with status Success"
is "$(pending a.out)" 3 "a pending response after each sub-operation but the last"
is "$(count_files "$T/all")" 4 "the destination received the 4 images"
ok "each received data set is byte-equal to the stored object's" same_as_stored all
ok "the C-STOREs name the move originator and its message ID" \
    sh -c "grep -a -c 'Move Originator AE Title *: MOVESCU\$' '$T/st-all.log' | grep -qx 4 &&
	   grep -a -c 'Move Originator ID *: 1\$' '$T/st-all.log' | grep -qx 4"

rm -f "$T"/all/*
move c.out DEST_ALL QueryRetrieveLevel=STUDY StudyInstanceUID=$STUDY_C
is "$(final c.out)" "I: Received Final Move Response (Success)" \
    "RLE, JPEG-LS and JPEG 2000 objects move to a destination taking all"
ok "their data sets arrive byte-equal, in the stored syntax" same_as_stored all
is "$(for f in "$T"/all/*; do ts_of "$f"; done | sort | tr '\n' ' ')" \
    "1.2.840.10008.1.2.4.80 1.2.840.10008.1.2.4.90 1.2.840.10008.1.2.5 " \
    "the transfer syntaxes were kept"

# --- decompressed for a destination that takes only uncompressed ---
move raw.out DEST_RAW QueryRetrieveLevel=STUDY StudyInstanceUID=$STUDY_C
is "$(final raw.out)" "I: Received Final Move Response (Success)" \
    "the same study moves to a destination taking only uncompressed"
is "$(for f in "$T"/raw/*; do ts_of "$f"; done | sort -u)" \
    "1.2.840.10008.1.2.1" "all three arrive in Explicit VR Little Endian"
want=$(pixel_sha "$PYDICOM_FILES/MR_small.dcm")
is "$(for f in "$T"/raw/*; do pixel_sha "$f"; done | sort -u)" "$want" \
    "each decodes to exactly the pixels of the uncompressed original"
is "$(for f in "$T"/raw/*; do dcm_value "$f" 0008,0018; done | sort | tr '\n' ' ')" \
    "2.25.61101 2.25.61102 2.25.61103 " "with their own SOP Instance UIDs"

# --- refusals ---
move unknown.out NOT_LISTED QueryRetrieveLevel=STUDY StudyInstanceUID=$STUDY_A
ok "a move to an unknown AE is refused: Move Destination Unknown (A801)" \
    grep -aq 'Final Move Response (Refused: MoveDestinationUnknown)' "$T/unknown.out"
ok "qrscp logs the unknown destination" \
    grep -q 'c-move to an unknown destination.*dest=NOT_LISTED' "$T/qrscp.log"
move tls.out DEST_TLS QueryRetrieveLevel=STUDY StudyInstanceUID=$STUDY_A
ok "a \"tls\" destination that speaks plain DICOM: out of resources (A702)" \
    grep -aq 'Final Move Response (Refused: OutOfResourcesSubOperations)' "$T/tls.out"
ok "... the TLS failure is logged" \
    grep -q 'c-move sub-association failed.*dest=DEST_TLS.*TLS' "$T/qrscp.log"
move down.out DEST_DOWN QueryRetrieveLevel=STUDY StudyInstanceUID=$STUDY_A
ok "a destination that is down: out of resources (A702), all 4 failed" \
    sh -c "grep -aq 'Final Move Response (Refused: OutOfResourcesSubOperations)' '$T/down.out'"
ok "the sub-association failure is logged with the destination" \
    grep -q 'c-move sub-association failed.*dest=DEST_DOWN.*cannot open' "$T/qrscp.log"
move wild.out DEST_ALL QueryRetrieveLevel=STUDY "StudyInstanceUID=1.2*"
ok "a wildcard in a retrieve's unique key: Identifier does not match (A900)" \
    grep -aq 'Final Move Response (Error: DataSetDoesNotMatchSOPClass)' "$T/wild.out"
move nolevel.out DEST_ALL StudyInstanceUID=$STUDY_A
ok "an identifier without Query/Retrieve Level is refused (C000 family)" \
    grep -aq 'Final Move Response (Failed: UnableToProcess' "$T/nolevel.out"
move none.out DEST_ALL QueryRetrieveLevel=STUDY StudyInstanceUID=2.25.404
ok "a study not in the index: Success with no sub-operations" \
    grep -aq 'Final Move Response (Success)' "$T/none.out"

# --- a purged object: that sub-operation fails, the rest go ---
rm -f "$T"/all/*
victim=$(sed -n 2p "$T/a.list" | cut -d' ' -f2)
mv "$(object_of "$victim")" "$T/victim.dcm"
movescu -d -S -to 30 -aec SCREENING_QR -aem DEST_ALL -k QueryRetrieveLevel=STUDY \
    -k StudyInstanceUID=$STUDY_A 127.0.0.1 "$PORT" >"$T/purged.out" 2>&1
ok "a study with an object missing from the store ends in B000" \
    grep -aq 'DIMSE Status *: 0xb000' "$T/purged.out"
ok "... with 3 completed and 1 failed" \
    sh -c "grep -a -A8 'Final Move Response' '$T/purged.out' | grep -q 'Completed Suboperations *: 3' &&
	   grep -a -A8 'Final Move Response' '$T/purged.out' | grep -q 'Failed Suboperations *: 1'"
ok "... and the missing instance in the Failed SOP Instance UID List" \
    grep -aq "(0008,0058) UI \[$victim\]" "$T/purged.out"
ok "the log says the object is no longer in the store" \
    grep -q "sub-operation failed.*sop_instance_uid=$victim.*no longer in the store" "$T/qrscp.log"
mv "$T/victim.dcm" "$(object_of "$victim")"
victim2=$(sed -n 3p "$T/a.list" | cut -d' ' -f2)
sql "$PACS_DB" "UPDATE instances SET purged_at = '2026-12-01T00:00:00.000Z' WHERE sop_instance_uid = '$victim2'"
movescu -d -S -to 30 -aec SCREENING_QR -aem DEST_ALL -k QueryRetrieveLevel=STUDY \
    -k StudyInstanceUID=$STUDY_A 127.0.0.1 "$PORT" >"$T/purged2.out" 2>&1
ok "an instance marked purged by retention fails alone (B000, 3 completed)" \
    sh -c "grep -aq 'DIMSE Status *: 0xb000' '$T/purged2.out' &&
	   grep -a -A8 'Final Move Response' '$T/purged2.out' | grep -q 'Completed Suboperations *: 3'"
ok "... logged as purged by retention, listed as failed" \
    sh -c "grep -q 'sub-operation failed.*sop_instance_uid=$victim2.*retention purged' '$T/qrscp.log' &&
	   grep -aq '(0008,0058) UI \[$victim2\]' '$T/purged2.out'"
sql "$PACS_DB" "UPDATE instances SET purged_at = NULL WHERE sop_instance_uid = '$victim2'"

# --- C-CANCEL, between sub-operations ---
movescu -v -S -to 30 --cancel 2 -aec SCREENING_QR -aem DEST_SLOW \
    -k QueryRetrieveLevel=STUDY -k StudyInstanceUID=$STUDY_B \
    127.0.0.1 "$PORT" >"$T/cancel.out" 2>&1
ok "after C-CANCEL the move ends with status Cancel" \
    grep -aq 'Final Move Response (Cancel' "$T/cancel.out"
got=$(count_files "$T/slow")
ok "fewer than the 12 images were sent ($got)" test "$got" -lt 12
ok "movescu releases normally after the cancel" grep -aq 'Releasing Association' "$T/cancel.out"

# --- the destination killed mid-move ---
rm -f "$T"/slow/*
move kill.out DEST_SLOW QueryRetrieveLevel=STUDY StudyInstanceUID=$STUDY_B &
MOVE_PID=$!
wait_for 20 "the slow destination receives a first image" \
    sh -c "[ \$(ls '$T/slow' | wc -l) -ge 1 ]"
ok "while the move runs, run/qr-move.<pid> says where it is going and how far" \
    sh -c "grep -qx 'dest=DEST_SLOW' $GATEWAY_DATA_DIR/run/qr-move.* &&
	   grep -qx 'total=12' $GATEWAY_DATA_DIR/run/qr-move.*"
kill -KILL "$SLOW_PID"
wait "$MOVE_PID"
ok "the move ends with B000 (some failed) after the destination died" \
    grep -aq 'Final Move Response (Warning' "$T/kill.out"
ok "the failure is logged as a sub-operation failure" \
    grep -q 'sub-operation failed.*dest=DEST_SLOW' "$T/qrscp.log"
ok "the move's progress file is gone" \
    sh -c "! ls $GATEWAY_DATA_DIR/run/qr-move.* 2>/dev/null"
ok "qrscp still serves: C-ECHO" echoscu -to 5 -aec SCREENING_QR 127.0.0.1 "$PORT"
start_slow
rm -f "$T"/all/*
move again.out DEST_ALL QueryRetrieveLevel=STUDY StudyInstanceUID=$STUDY_A
is "$(final again.out)" "I: Received Final Move Response (Success)" \
    "and the next move succeeds"

# --- the requester disconnects mid-move ---
rm -f "$T"/slow/*
movescu -S -to 30 -aec SCREENING_QR -aem DEST_SLOW -k QueryRetrieveLevel=STUDY \
    -k StudyInstanceUID=$STUDY_B 127.0.0.1 "$PORT" >"$T/gone.out" 2>&1 &
MOVE_PID=$!
wait_until 20 sh -c "[ \$(ls '$T/slow' | wc -l) -ge 1 ]"
kill -KILL "$MOVE_PID"; wait "$MOVE_PID" 2>/dev/null
wait_for 20 "a requester killed mid-move: qrscp abandons that move" \
    grep -q 'retrieve abandoned: the requester is gone.*dest=DEST_SLOW' "$T/qrscp.log"
ok "... before sending all 12 images" \
    sh -c "[ \$(ls '$T/slow' | wc -l) -lt 12 ]"
ok "... and removes its progress file" \
    sh -c "! ls $GATEWAY_DATA_DIR/run/qr-move.* 2>/dev/null"
ok "qrscp still answers C-ECHO" echoscu -to 5 -aec SCREENING_QR 127.0.0.1 "$PORT"

# --- the frame: PDU robustness, the association limit, allowed AEs ---
export DULRAW_CALLED=SCREENING_QR
ok "garbage bytes end in abort or close" sh -c "$RAW $PORT garbage | grep -Eq '^(closed|abort)'"
ok "an A-ASSOCIATE-RQ with a bad item length ends in abort or close" \
    sh -c "$RAW $PORT baditem | grep -Eq '^(closed|abort)'"
no_children() { ! pgrep -P "$QR_PID" -f qrscp >/dev/null; }
wait_until 20 no_children
ok "beyond --max-associations 3 the extra one is rejected, the held ones work" \
    $RAW "$PORT" hold 3 echoscu -to 5 -aec SCREENING_QR 127.0.0.1 "$PORT"
ok "the limit rejection says local limit exceeded" \
    grep -q 'association rejected.*result=rejected-transient reason="local limit exceeded" source=3' "$T/qrscp.log"
PORT2=$(free_port)
QR_ALLOWED_AETS="VIEWER1,MOVESCU" qr_start qrscp-allow "$PORT2" \
    --destinations "$T/destinations"
ok "QR_ALLOWED_AETS: an allowed calling AE gets C-ECHO" \
    echoscu -to 5 -aet VIEWER1 -aec SCREENING_QR 127.0.0.1 "$PORT2"
not_ok "QR_ALLOWED_AETS: another calling AE is rejected" \
    echoscu -to 5 -aet STRANGER -aec SCREENING_QR 127.0.0.1 "$PORT2"

ok "no patient name, ID or birth date in qrscp's logs" \
    sh -c "! grep -E 'Ødegård|Müller|Núñez|900006[12]|19600101' '$T'/qrscp*.log"
kill -TERM "$QR_PID"
wait "$QR_PID"
is "$?" 0 "SIGTERM: qrscp exits 0"
ok "no sanitizer report in qrscp's logs" \
    sh -c "! grep -l 'Sanitizer\|runtime error' '$T'/qrscp*.log"
done_testing
