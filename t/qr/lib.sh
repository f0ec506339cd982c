# t/qr/lib.sh: a store and pacs.db for the Query/Retrieve tests, and qrscp.
# Source after t/lib.sh.
#
#   qr_data                     GATEWAY_DATA_DIR=$T/var with its tree
#   qr_fill FILE...             the files received and indexed (as storescp
#                               + storescp-hook + dcmindex would)
#   qr_start NAME PORT [opt...] qrscp on 127.0.0.1:PORT (QR_PORT), waits
#                               until it listens; $QR_PID
#   qr_uid_copy IN OUT STUDY SERIES SOP   IN with its UIDs replaced
#   qr_mr_study DIR STUDY N     pydicom's MR_small in RLE, JPEG-LS lossless and
#                               JPEG 2000 lossless as DIR/*.dcm, one series
#                               each of study STUDY: series 2.25.N1..N3,
#                               SOP Instance UIDs 2.25.(N+10)1..3
#   dataset_sha FILE            SHA-256 of a Part 10 file's data set (the
#                               bytes after the meta group)
#   pixel_sha FILE              SHA-256 of its Pixel Data value
#   object_of SOP_UID           the store path of an instance's object
#   ts_of FILE                  a Part 10 file's transfer syntax UID
#   same_as_stored DIR          every file in $T/DIR (named [PREFIX.]UID, as
#                               storescp and getscu name them) has the data
#                               set of the stored object of that UID
PY=/usr/bin/python3

qr_data() {
	GATEWAY_DATA_DIR=$T/var
	export GATEWAY_DATA_DIR
	mkdir -p "$GATEWAY_DATA_DIR/incoming" "$GATEWAY_DATA_DIR/run"
	PACS_DB=$GATEWAY_DATA_DIR/pacs.db
	dcmindex --init >>"$T/fill.log" 2>&1
}

qr_fill() {
	_i=0
	for _f in "$@"; do
		_i=$((_i + 1))
		cp "$_f" "$GATEWAY_DATA_DIR/incoming/$_i.${_f##*/}" || return 1
	done
	storescp-hook --sweep >>"$T/fill.log" 2>&1 &&
	dcmindex --once >>"$T/fill.log" 2>&1
}

qr_start() {
	_n=$1; _p=$2; shift 2
	QR_PORT=$_p bg "$_n" qrscp --bind 127.0.0.1 "$@"
	QR_PID=$BG_PID
	wait_until 20 port_open "$_p"
}

qr_uid_copy() {
	$PY - "$@" <<'PYEOF'
import sys, pydicom
src, dst, study, series, sop = sys.argv[1:6]
d = pydicom.dcmread(src)
d.StudyInstanceUID, d.SeriesInstanceUID, d.SOPInstanceUID = study, series, sop
d.file_meta.MediaStorageSOPInstanceUID = sop
if d.file_meta.TransferSyntaxUID.is_compressed:
    d['PixelData'].VR = 'OB'    # pydicom may have read it as OW
d.save_as(dst, write_like_original=False)
PYEOF
}

qr_mr_study() {
	mkdir -p "$1"
	_n=1
	for _f in MR_small_RLE MR_small_jpeg_ls_lossless MR_small_jp2klossless; do
		qr_uid_copy "$PYDICOM_FILES/$_f.dcm" "$1/$_f.dcm" "$2" \
		    "2.25.$3$_n" "2.25.$(($3 + 10))$_n" || return 1
		_n=$((_n + 1))
	done
}

dataset_sha() {
	$PY - "$1" <<'PYEOF'
import hashlib, struct, sys
b = open(sys.argv[1], 'rb').read()
assert b[128:132] == b'DICM', 'no DICM prefix'
p = 132
while True:
    group, elem = struct.unpack_from('<HH', b, p)
    if group != 2:
        break
    vr = b[p + 4:p + 6]
    if vr in (b'OB', b'OW', b'UN', b'SQ', b'UT', b'UC', b'UR'):
        n = struct.unpack_from('<I', b, p + 8)[0]
        p += 12 + n
    else:
        n = struct.unpack_from('<H', b, p + 6)[0]
        p += 8 + n
print(hashlib.sha256(b[p:]).hexdigest())
PYEOF
}

pixel_sha() {
	$PY -c 'import sys, hashlib, pydicom
print(hashlib.sha256(pydicom.dcmread(sys.argv[1]).PixelData).hexdigest())' "$1"
}

object_of() {
	echo "$GATEWAY_DATA_DIR/store/$(sql "$PACS_DB" "SELECT storage_path FROM stored_instances WHERE sop_instance_uid = '$1'")"
}

ts_of() {
	dcmdump -q -Un +P 0002,0010 "$1" | sed 's/.*\[\(.*\)\].*/\1/'
}

same_as_stored() {
	for _f in "$T/$1"/*; do
		_uid=${_f##*/}
		case $_uid in [A-Z]*.*) _uid=${_uid#*.} ;; esac
		[ "$(dataset_sha "$_f")" = "$(dataset_sha "$(object_of "$_uid")")" ] ||
		    { echo "$_uid differs"; return 1; }
	done
}
