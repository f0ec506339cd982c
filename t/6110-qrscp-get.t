#!/bin/sh
# 6110-qrscp-get: C-GET with dcmtk's getscu: the C-STOREs on the
# requester's own association (SCP/SCU role selection), the same counts
# and statuses as C-MOVE, the stored bytes or decompression by what the
# requester took, a SOP class it cannot take, bad identifiers, the Patient
# Root model.
. "${0%/*}/lib.sh"
. "${0%/*}/qr/lib.sh"

[ -d "$PYDICOM_FILES" ] || skip_all "python3-pydicom's test files are not installed"

qr_data
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 4 --studies 1 --seed 63 >"$T/a.list"
STUDY_A=$(head -n 1 "$T/a.list" | cut -d' ' -f3)
PATIENT_A=9000063000
STUDY_C=2.25.61100
qr_mr_study "$T/mr" $STUDY_C 6120
# An RT Plan: a storage class C-GET's role selection does not offer.
qr_uid_copy "$PYDICOM_FILES/rtplan.dcm" "$T/mr/rtplan.dcm" 2.25.61900 \
    2.25.61901 2.25.61902
# Big endian and deflated: re-encoded little endian, no pixel work.
mkdir -p "$T/legacy"
qr_uid_copy "$PYDICOM_FILES/MR_small_bigendian.dcm" "$T/legacy/be.dcm" 2.25.61800 \
    2.25.61801 2.25.61811
qr_uid_copy "$PYDICOM_FILES/image_dfl.dcm" "$T/legacy/dfl.dcm" 2.25.61800 \
    2.25.61802 2.25.61812
ok "the store is filled" qr_fill "$T"/mg/*.dcm "$T"/mr/*.dcm "$T"/legacy/*.dcm
is "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances")" 10 \
    "pacs.db lists the 10 instances"
is "$(sql "$PACS_DB" "SELECT group_concat(transfer_syntax_uid, ' ') FROM (SELECT transfer_syntax_uid FROM stored_instances WHERE study_instance_uid = '2.25.61800' ORDER BY 1)")" \
    "1.2.840.10008.1.2.1.99 1.2.840.10008.1.2.2" "stored deflated and big endian"

PORT=$(free_port)
qr_start qrscp "$PORT"
ok "qrscp listens" port_open "$PORT"

# get DIR OPTS... -- KEYS...: getscu into $T/DIR, its output in $T/DIR.out.
get() {
	_d=$1; shift
	mkdir -p "$T/$_d"
	_o=""
	while [ "$1" != -- ]; do _o="$_o $1"; shift; done
	shift
	_k=""
	for _kv in "$@"; do _k="$_k -k $_kv"; done
	# shellcheck disable=SC2086
	getscu -v +B -to 30 -aec SCREENING_QR -od "$T/$_d" $_o $_k \
	    127.0.0.1 "$PORT" >"$T/$_d.out" 2>&1
}
final() { grep -a 'Received C-GET Response (' "$T/$1.out" | tail -n 1; }
counts() {
	grep -a -A4 'Final status report' "$T/$1.out" |
	    sed -n 's/.*Number of \([A-Za-z]*\) Suboperations *: \([0-9]*\)/\1=\2/p' |
	    tr '\n' ' '
}

get a -S -- QueryRetrieveLevel=STUDY StudyInstanceUID=$STUDY_A
is "$(final a)" "I: Received C-GET Response (Success)" "a C-GET of a 4-image study succeeds"
is "$(counts a)" "Remaining=0 Completed=4 Failed=0 Warning=0 " "with 4 sub-operations completed"
is "$(grep -ac 'Received C-GET Response (Pending)' "$T/a.out")" 3 \
    "a pending response after each sub-operation but the last"
is "$(count_files "$T/a")" 4 "getscu received the 4 images on its own association"
ok "each data set is byte-equal to the stored object's" same_as_stored a

get p -P -- QueryRetrieveLevel=PATIENT PatientID=$PATIENT_A
is "$(counts p)" "Remaining=0 Completed=4 Failed=0 Warning=0 " \
    "the Patient Root model retrieves the patient's 4 images"

get c -S -- QueryRetrieveLevel=STUDY StudyInstanceUID=$STUDY_C
is "$(final c)" "I: Received C-GET Response (Success)" \
    "compressed objects to a getscu taking only uncompressed"
is "$(for f in "$T"/c/*; do ts_of "$f"; done | sort -u)" "1.2.840.10008.1.2.1" \
    "arrive decompressed to Explicit VR Little Endian"
want=$(pixel_sha "$PYDICOM_FILES/MR_small.dcm")
is "$(for f in "$T"/c/*; do pixel_sha "$f"; done | sort -u)" "$want" \
    "with exactly the original pixels"

get old -S -- QueryRetrieveLevel=STUDY StudyInstanceUID=2.25.61800
is "$(counts old)" "Remaining=0 Completed=2 Failed=0 Warning=0 " \
    "big endian and deflated objects are retrieved"
is "$(for f in "$T"/old/*; do ts_of "$f"; done | sort -u)" "1.2.840.10008.1.2.1" \
    "... re-encoded in Explicit VR Little Endian"
is "$(pixel_sha "$T"/old/*61811)" "$want" \
    "the big endian MR has the little endian original's pixels"
is "$(pixel_sha "$T"/old/*61812)" "$(pixel_sha "$PYDICOM_FILES/image_dfl.dcm")" \
    "the deflated image has its inflated pixels"

get jls +xt -S -- QueryRetrieveLevel=STUDY StudyInstanceUID=$STUDY_C
ok "a getscu preferring JPEG-LS gets that object as stored" \
    sh -c "ls '$T/jls' | grep -q '2\.25\.61302\$'"
ok "... byte-equal to the stored data set, in JPEG-LS" same_as_stored jls
is "$(counts jls)" "Remaining=0 Completed=1 Failed=2 Warning=0 " \
    "the two it took no syntax for (RLE, JPEG 2000 in a JPEG-LS context) fail"
ok "... B000 (Warning) as the final status" \
    grep -aq 'Received C-GET Response (Warning' "$T/jls.out"
ok "... each with a log line naming the instance" \
    sh -c "grep -c 'sub-operation failed.*operation=c-get.*sop_instance_uid=2.25.6130[13].*took neither' '$T/qrscp.log' | grep -qx 2"

get rt -S -- QueryRetrieveLevel=STUDY StudyInstanceUID=2.25.61900
is "$(counts rt)" "Remaining=0 Completed=0 Failed=1 Warning=0 " \
    "an RT Plan (no storage context with the SCP role) is a failed sub-operation"
ok "the failure is logged with its SOP class" \
    grep -q 'sub-operation failed.*operation=c-get.*sop_class_uid=1.2.840.10008.5.1.4.1.1.481.5' "$T/qrscp.log"

get wild -S -- QueryRetrieveLevel=STUDY "StudyInstanceUID=2.25.*"
ok "a wildcard in a unique key: A900" \
    grep -aq 'C-GET Response (Error: DataSetDoesNotMatchSOPClass)' "$T/wild.out"
get series -S -- QueryRetrieveLevel=SERIES StudyInstanceUID=$STUDY_C
ok "a SERIES retrieval without its Series Instance UID: A900" \
    grep -aq 'C-GET Response (Error: DataSetDoesNotMatchSOPClass)' "$T/series.out"
get img -S -- QueryRetrieveLevel=IMAGE StudyInstanceUID=$STUDY_C \
    SeriesInstanceUID=2.25.61202 SOPInstanceUID=2.25.61302
is "$(counts img)" "Remaining=0 Completed=1 Failed=0 Warning=0 " \
    "an IMAGE retrieval sends that one instance"

out=$(/usr/bin/python3 "$GW_ROOT/t/peers/getcancel.py" "$PORT" SCREENING_QR \
    "$STUDY_A" 1.2.840.10008.5.1.4.1.1.1.2 1)
ok "a C-CANCEL during a C-GET ends it with status Cancel (FE00) ($out)" \
    sh -c "echo '$out' | grep -q 'status=FE00\$'"
ok "... before all 4 images were sent" \
    sh -c "echo '$out' | grep -q '^stores=[123] '"
ok "... and qrscp logged the cancel" \
    grep -q 'msg=c-get .*status=0xFE00' "$T/qrscp.log"

ok "no patient data in qrscp's log" \
    sh -c "! grep -E 'Ødegård|Müller|Núñez|9000063|19600101' '$T/qrscp.log'"
kill -TERM "$QR_PID"
wait "$QR_PID"
is "$?" 0 "SIGTERM: qrscp exits 0"
ok "no sanitizer report" sh -c "! grep -l 'Sanitizer\|runtime error' '$T/qrscp.log'"
done_testing
