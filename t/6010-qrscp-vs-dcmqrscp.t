#!/bin/sh
# 6010-qrscp-vs-dcmqrscp: a differential.  The same archive
# (t/tools/gen-qrdata) is stored into dcmtk's dcmqrscp with storescu and
# indexed for qrscp with dcmindex; then the same C-FIND queries, from
# findscu, go to both, and the result sets and attribute values must be
# the same.
#
# Deliberate differences, left out of the comparison:
# - (0008,0054) Retrieve AE Title is each server's own AE title (both
#   answer it unasked), so the compared keys never include it.
# - dcmqrscp drops the keys it does not support (ModalitiesInStudy, the
#   Number of ... Related counts, Rows, ViewPosition, ...) where qrscp
#   answers them (from the index, or empty): only keys both support are
#   compared, and an absent key compares as an empty one.
# - dcmqrscp refuses a query without the unique keys of the levels above;
#   qrscp matches any value there (t/6000): only hierarchical queries here.
. "${0%/*}/lib.sh"
. "${0%/*}/qr/lib.sh"

command -v dcmqrscp >/dev/null || skip_all "no dcmqrscp"
GATEWAY_DATA_DIR=$T/var
QR_ABSENT_EMPTY=1
export GATEWAY_DATA_DIR
mkdir -p "$T/dqr/db"
ROOT=$QR_ROOT

qr_archive "$T/files"
QRPORT=$(free_port)
DQPORT=$(free_port)
cat >"$T/dqr/dcmqrscp.cfg" <<EOF
NetworkTCPPort  = $DQPORT
MaxPDUSize      = 16384
MaxAssociations = 16

HostTable BEGIN
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
DQR $T/dqr/db RW (500, 1024mb) ANY
AETable END
EOF
bg dcmqrscp dcmqrscp -c "$T/dqr/dcmqrscp.cfg"
bg qrscp qrscp --bind 127.0.0.1 --port "$QRPORT" --aet GWQR
wait_for 20 "dcmqrscp listens" port_open "$DQPORT"
wait_for 20 "qrscp listens" port_open "$QRPORT"
ok "storescu stores the archive into dcmqrscp" sh -c \
    'storescu -to 20 -aec DQR 127.0.0.1 "$0" "$1"/files/*.dcm' "$DQPORT" "$T"

succeeded() {
	[ "$(qr_final "$1")" = Success ]
}

# One query a line: the model option, then the keys ('~' for a blank
# inside a value).  $ROOT expands.
cat >"$T/queries" <<EOF
-P QueryRetrieveLevel=PATIENT PatientID PatientName
-P QueryRetrieveLevel=PATIENT PatientID=NHS0001 PatientName PatientBirthDate PatientSex
-P QueryRetrieveLevel=PATIENT PatientName=SMITH* PatientID
-P QueryRetrieveLevel=PATIENT PatientName=S*^J* PatientID
-P QueryRetrieveLevel=PATIENT PatientName=?MITH^JANE PatientID
-P QueryRetrieveLevel=PATIENT PatientName=*n PatientID
-P QueryRetrieveLevel=PATIENT PatientBirthDate=19500101-19651231 PatientID
-P QueryRetrieveLevel=PATIENT PatientBirthDate=-19700304 PatientID
-P QueryRetrieveLevel=PATIENT PatientSex=F PatientID PatientName
-P QueryRetrieveLevel=PATIENT PatientSex=* PatientID
-P QueryRetrieveLevel=PATIENT PatientID=NHS000? PatientName
-P QueryRetrieveLevel=STUDY PatientID=NHS0001 StudyInstanceUID StudyDate StudyTime AccessionNumber StudyID StudyDescription
-P QueryRetrieveLevel=STUDY PatientID=NHS0001 StudyDate=20240201- StudyInstanceUID
-P QueryRetrieveLevel=STUDY PatientID=NHS0002 StudyInstanceUID=$ROOT.1
-P QueryRetrieveLevel=SERIES PatientID=NHS0001 StudyInstanceUID=$ROOT.1 SeriesInstanceUID SeriesNumber Modality
-P QueryRetrieveLevel=IMAGE PatientID=NHS0001 StudyInstanceUID=$ROOT.1 SeriesInstanceUID=$ROOT.1.2 SOPInstanceUID InstanceNumber
-S QueryRetrieveLevel=STUDY StudyInstanceUID StudyDate StudyTime AccessionNumber
-S QueryRetrieveLevel=STUDY StudyDate=20240101-20240131 StudyInstanceUID
-S QueryRetrieveLevel=STUDY StudyDate=-20231231 StudyInstanceUID
-S QueryRetrieveLevel=STUDY StudyDate=20240301- StudyInstanceUID
-S QueryRetrieveLevel=STUDY StudyDate=20240110 StudyInstanceUID PatientName
-S QueryRetrieveLevel=STUDY StudyTime=090000-100000 StudyInstanceUID
-S QueryRetrieveLevel=STUDY StudyTime=-120000 StudyInstanceUID StudyTime
-S QueryRetrieveLevel=STUDY StudyTime=1400- StudyInstanceUID StudyTime
-S QueryRetrieveLevel=STUDY StudyDate=20240110-20240215 StudyTime=120000-150000 StudyInstanceUID
-S QueryRetrieveLevel=STUDY StudyInstanceUID=$ROOT.1\\$ROOT.4 StudyDate
-S QueryRetrieveLevel=STUDY StudyInstanceUID=$ROOT.1\\$ROOT.99 AccessionNumber
-S QueryRetrieveLevel=STUDY AccessionNumber=ACC100? StudyInstanceUID
-S QueryRetrieveLevel=STUDY AccessionNumber=ACC5001 StudyInstanceUID StudyID StudyDescription
-S QueryRetrieveLevel=STUDY PatientName=SMITH^JANE PatientID StudyInstanceUID
-S QueryRetrieveLevel=STUDY PatientID=NHS0003 PatientName PatientBirthDate StudyInstanceUID
-S QueryRetrieveLevel=STUDY StudyDescription=Screen* StudyInstanceUID
-S QueryRetrieveLevel=STUDY StudyID=1 StudyInstanceUID
-S QueryRetrieveLevel=SERIES StudyInstanceUID=$ROOT.2 SeriesInstanceUID Modality SeriesNumber
-S QueryRetrieveLevel=SERIES StudyInstanceUID=$ROOT.2 Modality=OT SeriesInstanceUID
-S QueryRetrieveLevel=SERIES StudyInstanceUID=$ROOT.1 SeriesNumber=2 SeriesInstanceUID
-S QueryRetrieveLevel=SERIES StudyInstanceUID=$ROOT.7 SeriesInstanceUID=$ROOT.7.1 SeriesNumber
-S QueryRetrieveLevel=IMAGE StudyInstanceUID=$ROOT.6 SeriesInstanceUID=$ROOT.6.1 SOPInstanceUID InstanceNumber
-S QueryRetrieveLevel=IMAGE StudyInstanceUID=$ROOT.6 SeriesInstanceUID=$ROOT.6.1 InstanceNumber=4 SOPInstanceUID
-S QueryRetrieveLevel=IMAGE StudyInstanceUID=$ROOT.1 SeriesInstanceUID=$ROOT.1.1 SOPInstanceUID=$ROOT.1.1.2\\$ROOT.9.9.9 InstanceNumber
-P SpecificCharacterSet=ISO_IR~192 QueryRetrieveLevel=PATIENT PatientName=山田* PatientID
-P SpecificCharacterSet=ISO_IR~100 QueryRetrieveLevel=PATIENT PatientID=NHS0003 PatientName
-P SpecificCharacterSet=ISO_IR~192 QueryRetrieveLevel=PATIENT PatientName=Ø* PatientID
EOF

n=0
matched=0
while read -r line; do
	n=$((n + 1))
	set -f		# the keys' '*' and '?' are not file names
	# shellcheck disable=SC2086
	set -- $line
	set +f
	model=$1; shift
	qr_find "q$n.dqr" "$DQPORT" DQR "$model" "$@"
	qr_find "q$n.gw" "$QRPORT" GWQR "$model" "$@"
	if ! succeeded "q$n.dqr" || ! succeeded "q$n.gw"; then
		fail "query $n: $line: both peers answer with Success"
		diag "dcmqrscp: $(qr_final "q$n.dqr"), qrscp: $(qr_final "q$n.gw")"
		diag "$(tail -5 "$T/r/q$n.gw.log")"
	elif cmp -s "$T/r/q$n.dqr.txt" "$T/r/q$n.gw.txt"; then
		pass "query $n: $line: $(tail -1 "$T/r/q$n.gw.txt"), the same"
	else
		fail "query $n: $line"
		diag "$(diff "$T/r/q$n.dqr.txt" "$T/r/q$n.gw.txt")"
	fi
	[ "$(tail -1 "$T/r/q$n.gw.txt")" != count=0 ] && matched=$((matched + 1))
done <"$T/queries"

ok "at least 30 queries compared ($n)" test "$n" -ge 30
ok "and most of them match something ($matched)" test "$matched" -ge 40
done_testing
