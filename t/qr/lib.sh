# t/qr/lib.sh: what the Query/Retrieve and storage commitment tests
# (t/6xxx, and others that serve or retrieve) share.  Source after t/lib.sh.
#
# An archive, generated and indexed:
#   qr_archive DIR          generate t/tools/gen-qrdata into DIR, sweep and
#                           index it into $GATEWAY_DATA_DIR (checks)
# Queries with findscu:
#   qr_find NAME PORT AE OPTIONS KEY...
#                           findscu (OPTIONS: -P or -S, and more) with
#                           these keys (-k each; '~' for a blank in a
#                           value); responses one line each, sorted, in
#                           $T/r/NAME.txt (asked-for keys, in the order
#                           asked; absent ones empty when QR_ABSENT_EMPTY=1)
#                           and NAME.all (every element); findscu's
#                           output in NAME.log
#   qr_final NAME           the final status findscu reported
#   $QR_ROOT                the archive's UID root
#
# A store and pacs.db of given files, and qrscp:
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
#
# Storage commitment (t/62xx):
#   ingest_mammograms COUNT SEED   the gateway started, COUNT mammograms
#                           stored and indexed; CLASS:INSTANCE pairs in $T/refs
#   commit_request AE TXUID MODE [ARG...]   one N-ACTION to qrscp (t/peers/commit.js)

QR_ROOT=1.2.826.0.1.3680043.9.7433.1
QR_TOOLS=$GW_ROOT/t/tools
mkdir -p "$T/r"

qr_archive() {
	mkdir -p "$1" "$GATEWAY_DATA_DIR/incoming"
	ok "the test archive is generated" sh -c \
	    '"$0/gen-qrdata" "$1" >"$1.txt" && cp "$1"/*.dcm "$2/incoming/"' \
	    "$QR_TOOLS" "$1" "$GATEWAY_DATA_DIR"
	ok "the sweep takes it in" sh -c \
	    'storescp-hook --sweep 2>"$0/hook.log"' "$T"
	ok "dcmindex indexes it" sh -c 'dcmindex --once 2>"$0/index.log"' "$T"
	is "$(sql "$GATEWAY_DATA_DIR/pacs.db" \
	    'SELECT count(*) FROM instances')" 13 "13 instances indexed"
}

qr_find() {
	_name=$1; _port=$2; _ae=$3; _model=$4; shift 4
	_keys=
	_n=$#
	while [ "$_n" -gt 0 ]; do
		case ${1%%=*} in
		SpecificCharacterSet) ;;
		*) _keys=${_keys:+$_keys,}${1%%=*} ;;
		esac
		set -- "$@" -k "$(printf '%s' "$1" | tr '~' ' ')"
		shift
		_n=$((_n - 1))
	done
	rm -rf "$T/r/$_name"
	mkdir -p "$T/r/$_name"
	# shellcheck disable=SC2086
	findscu -v -to 10 $_model -X -od "$T/r/$_name" -aec "$_ae" "$@" \
	    127.0.0.1 "$_port" >"$T/r/$_name.log" 2>&1
	"$QR_TOOLS/qr-responses" "$T/r/$_name" --keys "$_keys" \
	    ${QR_ABSENT_EMPTY:+--absent-empty} >"$T/r/$_name.txt"
	"$QR_TOOLS/qr-responses" "$T/r/$_name" >"$T/r/$_name.all"
}

qr_final() {
	sed -n 's/.*Received Final Find Response (\(.*\))$/\1/p' \
	    "$T/r/$1.log" | tail -1
}

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

# ingest_mammograms COUNT SEED: start the gateway, send COUNT generated
# mammograms (one study) with storescu, wait until all are indexed; their
# "CLASS:INSTANCE" pairs, by SOP Instance UID, go to $T/refs.
ingest_mammograms() {
	start_gateway || { echo "Bail out! gatewayd did not start"; cat "$T/gatewayd.log"; exit 1; }
	"$GW_ROOT/t/tools/gen-mammo" "$T/mg" "$1" --studies 1 --seed "$2" >"$T/mg.list"
	ok "storescu sends $1 mammograms to the gateway" \
	    storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$T"/mg/*.dcm
	wait_for 60 "all $1 are indexed" indexed_count "$1"
	sql "$PACS_DB" "SELECT sop_class_uid || ':' || sop_instance_uid FROM instances ORDER BY sop_instance_uid" >"$T/refs"
}

indexed_count() {
	[ "$(sql "$PACS_DB" "SELECT count(*) FROM instances")" = "$1" ]
}

# commit_request AE TXUID MODE [ARG...]: one N-ACTION from AE to qrscp on
# $QR_PORT with t/peers/commit.js (see there); its output on stdout.
commit_request() {
	_ae=$1; shift
	(cd "$GW_ROOT" && node -r ./t/peers/nodelay.js t/peers/commit.js request \
	    "$QR_PORT" SCREENING_QR "$_ae" "$@") 2>>"$T/commit.err"
}
