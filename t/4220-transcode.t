#!/bin/sh
# 4220-transcode: lib/image/transcode, the upload modes.  t/unit/transcode runs
# the unit tests on hand-made images; here its --check driver transcodes
# generated mammograms and public test files, and dcmtk and dicom3tools
# judge the outputs: dcmdump reads them and names the right transfer
# syntax, dcmdjpls + dcmicmp find the JPEG-LS pixels identical, and
# dciodvfy reports no error the input did not have.
. "${0%/*}/lib.sh"

tc=$GW_BUILD/t/transcode
[ -x "$tc" ] || skip_all "$tc not built (make units)"
for tool in dcmdump dcmdjpls dcmicmp dciodvfy; do
	command -v $tool >/dev/null || skip_all "$tool not installed"
done

TS_JLS=1.2.840.10008.1.2.4.80
TS_J2K=1.2.840.10008.1.2.4.91

mkdir -p "$T/units" "$T/mg" "$T/out"
ok "unit tests on hand-made images (t/unit/transcode)" "$tc" "$T/units"

# the transfer syntax UID dcmdump reads in the meta group
ts_of() {
	dcmdump -q -Un +P 0002,0010 "$1" 2>/dev/null |
	    sed -n 's/^.*UI \[\([0-9.]*\)\].*/\1/p'
}

# dcmdump reads FILE without a warning or error
dump_clean() {
	_err=$(dcmdump -q +E "$1" 2>&1 >/dev/null) && [ -z "$_err" ]
}

# dciodvfy's errors, sorted; a missing Lossy Image Compression is no
# error of ours when the input lacked it too (the reduced output adds it)
iod_errors() {
	dciodvfy "$1" 2>&1 | grep '^Error' | sort -u
}

# no error in OUT that IN did not have
no_new_errors() {
	iod_errors "$1" >"$T/in.err"
	iod_errors "$2" >"$T/out.err"
	_new=$(comm -13 "$T/in.err" "$T/out.err")
	[ -z "$_new" ] || { echo "$_new"; return 1; }
}

for f in mono16 signed16 mono8 tomo; do
	out=$T/units/$f.dcm.jls.dcm
	ok "dcmdump reads the lossless $f output without warnings" \
	    dump_clean "$out"
	is "$(ts_of "$out")" $TS_JLS "dcmdump sees JPEG-LS lossless ($f)"
	ok "dcmdjpls decodes the lossless $f output" \
	    dcmdjpls "$out" "$T/units/$f.dj.dcm"
	is "$(dcmicmp "$T/units/$f.dcm" "$T/units/$f.dj.dcm" 2>&1 |
	    sed -n 's/^Max Absolute Error *= *//p')" 0 \
	    "dcmtk finds the $f pixels identical (max absolute error 0)"
done
ok "dcmdump reads the reduced output without warnings" \
    dump_clean "$T/units/big.j2k.dcm"
is "$(ts_of "$T/units/big.j2k.dcm")" $TS_J2K "dcmdump sees JPEG 2000 (reduced)"

# generated mammograms (pydicom), 512x400 16-bit
if "$GW_ROOT/t/tools/gen-mammo" "$T/mg" 2 --size small --studies 1 \
    >/dev/null 2>&1; then
	mg=$(ls "$T/mg"/*.dcm | head -n 1)
else
	mg=
fi
P=$PYDICOM_FILES
# name, modes, file: mammograms (generated; GE, uncompressed; GE, JPEG
# lossless with compressed icons), signed MR in four encodings and RLE,
# CT, colour RLE, YBR 4:2:2, multi-frame colour
set -- mammo lossless,reduced "$mg" \
    ge_native lossless,reduced "$CORPUS/derived/fullsize-mg/GH133_GE_SenographeEssential_MG_ForPresentation_uncompressed.dcm" \
    ge_jpeg70 reduced "$CORPUS/fo-dicom/GH133.dcm" \
    mr lossless,reduced "$P/MR_small.dcm" \
    mr_be lossless,reduced "$P/MR_small_bigendian.dcm" \
    mr_implicit lossless,reduced "$P/MR_small_implicit.dcm" \
    mr_rle lossless,reduced "$P/MR_small_RLE.dcm" \
    ct lossless,reduced "$P/CT_small.dcm" \
    rgb_rle lossless,reduced "$P/SC_rgb_rle.dcm" \
    ybr422 lossless,reduced "$P/SC_ybr_full_422_uncompressed.dcm" \
    rgb16_2frame lossless "$P/SC_rgb_rle_16bit_2frame.dcm"
while [ $# -ge 3 ]; do
	name=$1 modes=$2 in=$3
	shift 3
	if [ ! -f "$in" ]; then
		skip "$name: input not available"
		continue
	fi
	case $modes in *lossless*)
	out=$T/out/$name.jls.dcm
	ok "lossless $name decodes to the input's pixels (lib/image/pixel)" \
	    "$tc" --check lossless "$in" "$out"
	is "$(ts_of "$out")" $TS_JLS "dcmdump sees JPEG-LS lossless ($name)"
	ok "dcmdump reads lossless $name without warnings" dump_clean "$out"
	ok "dciodvfy: no new error in lossless $name" no_new_errors "$in" "$out"
	esac
	case $modes in *reduced*)
	out=$T/out/$name.j2k.dcm
	ok "reduced $name: at most 400 px, lossy attributes, ratio, decodes" \
	    "$tc" --check reduced "$in" "$out"
	is "$(ts_of "$out")" $TS_J2K "dcmdump sees JPEG 2000 ($name)"
	ok "dcmdump reads reduced $name without warnings" dump_clean "$out"
	ok "dciodvfy: no new error in reduced $name" no_new_errors "$in" "$out"
	esac
done

# what is left alone or refused
"$tc" --check lossless "$P/MR_small_jpeg_ls_lossless.dcm" "$T/x.dcm"
is $? 3 "lossless on a JPEG-LS image: nothing to do"
"$tc" --check original "$P/MR_small.dcm" "$T/x.dcm"
is $? 3 "original: nothing to do"
"$tc" --check lossless "$P/rtplan.dcm" "$T/x.dcm"
is $? 3 "no pixel data: nothing to do"
if [ -f "$CORPUS/fo-dicom/GH133.dcm" ]; then
	"$tc" --check lossless "$CORPUS/fo-dicom/GH133.dcm" "$T/x.dcm"
	is $? 3 "lossless on a JPEG lossless image: nothing to do"
else
	skip "lossless on a JPEG lossless image: the corpus's GH133.dcm is not there"
fi
"$tc" --check lossless "$P/SC_rgb_small_odd.dcm" "$T/x.dcm"
is "$?:$(test -e "$T/x.dcm" && echo kept)" 3: \
    "lossless no smaller than the input: nothing to do, output removed"
# 16-bit noise: JPEG-LS output does not fit the half of the decoded frame
# the encoder writes into, and takes a buffer of its own; still no gain.
/usr/bin/python3 - "$T/noise.dcm" <<'PY'
import sys
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
m = FileMetaDataset()
m.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
m.MediaStorageSOPInstanceUID = generate_uid()
m.TransferSyntaxUID = ExplicitVRLittleEndian
d = Dataset()
d.file_meta = m
d.is_little_endian, d.is_implicit_VR = True, False
d.SOPClassUID, d.SOPInstanceUID = m.MediaStorageSOPClassUID, m.MediaStorageSOPInstanceUID
d.StudyInstanceUID, d.SeriesInstanceUID = generate_uid(), generate_uid()
d.Modality = "OT"
d.SamplesPerPixel, d.PhotometricInterpretation = 1, "MONOCHROME2"
d.Rows = d.Columns = 256
d.BitsAllocated = d.BitsStored = 16
d.HighBit, d.PixelRepresentation = 15, 0
d.PixelData = np.random.default_rng(7).integers(0, 65536, (256, 256), dtype=np.uint16).tobytes()
d.save_as(sys.argv[1], write_like_original=False)
PY
"$tc" --check lossless "$T/noise.dcm" "$T/x.dcm"
is "$?:$(test -e "$T/x.dcm" && echo kept)" 3: \
    "lossless of 16-bit noise (larger than it went in): nothing to do, no error"
"$tc" --check reduced "$P/SC_rgb_rle_16bit_2frame.dcm" "$T/x.dcm" 2>"$T/err"
is "$?:$(cat "$T/err")" "2:transcode: reduced mode does not take multi-frame images (2 frames) (code 22)" \
    "reduced refuses a multi-frame image, saying why"
if [ -n "$mg" ]; then
	head -c 200000 "$mg" >"$T/cut.dcm"
	"$tc" --check lossless "$T/cut.dcm" "$T/x.dcm" 2>"$T/err"
	rc=$?
	is "$rc" 2 "a truncated mammogram fails"
	ok "... with a message about truncation" grep -q truncated "$T/err"
	name=$(dcm_value "$mg" 0010,0010)
	id=$(dcm_value "$mg" 0010,0020)
	ok "... that names no patient" \
	    sh -c '[ -n "$2" ] && ! grep -qF -e "$2" "$3" &&
	    { [ -z "$1" ] || ! grep -qF -e "$1" "$3"; }' - \
	    "$name" "$id" "$T/err"
else
	skip "truncated mammogram: gen-mammo unavailable"
fi
done_testing
