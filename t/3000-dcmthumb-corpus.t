#!/bin/sh
# 3000-dcmthumb-corpus: every file in pydicom's test_files and the shared
# corpus either renders to a PNG, or is SKIP because it has no pixel data,
# or fails for a reason listed below as a known exception.  One line per
# file; an unexpected failure fails the test.
. "${0%/*}/lib.sh"

[ -x "$GW_BIN/dcmthumb" ] || skip_all "dcmthumb not built"
[ -d "$CORPUS" ] || skip_all "the shared corpus is not there"

# Known exceptions: path (relative to the corpus or pydicom's test_files)
# and a piece of the reason dcmthumb must give.  Keep it short; each is
# a file nothing on Debian decodes, or one broken on purpose.
cat >"$T/known" <<'EOF'
dcm4che/will-jxl.dcm|no decoder for transfer syntax 1.2.840.10008.1.2.4.111
fo-dicom/GH340.dcm|Bits Allocated 12
fo-dicom/genFile.dcm|Not a JPEG file
pylibjpeg-data/966.dcm|JPEG 2000
orthanc-tests/2026-05-26-oob-monochrome-46341.dcm|exceeds 512 MiB
orthanc-tests/2026-05-26-oob-monochrome-65535.dcm|exceeds 512 MiB
JPEG2000-embedded-sequence-delimiter.dcm|JPEG 2000
dcm4che/3gb-bulk-data-truncated|truncated element
dcm4che/Tag-0040-A170-VR-CS.dcm|item expected in sequence
dcmjs/zero-length-US.dcm|truncated element
fo-dicom/GH1339.dcm|without a sequence delimiter
fo-dicom/GH179B.dcm|truncated element
fo-dicom/GH364.dcm|item outside a sequence
fo-dicom/GH626.dcm|truncated element
openrem/MG-Im-Hologic-PropProj.dcm|truncated element
orthanc-tests/2026-05-06-Deeply-Nested-Sequence.dcm|nests deeper than 32
pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm|without a sequence delimiter
MR_truncated.dcm|truncated element
rtplan_truncated.dcm|truncated element
meta_missing_tsyntax.dcm|
no_meta.dcm|no DICM prefix
nested_priv_SQ.dcm|
EOF
# Why: will-jxl is JPEG XL, GH340 packs 12-bit pixels (Bits Allocated 12,
# retired), genFile's "JPEG" fragment is zeros (dcmtk refuses it too),
# 966 is a Canon J2K with an invalid COM marker OpenJPEG rejects, the oob
# files claim 46341x46341 and 65535x65535 pixels, the embedded-delimiter
# J2K is a 250-byte parser test, and the rest are truncated or malformed files
# kept in the corpus to test the reader.

# Render everything, 50 files per dcmthumb run, two runs at a time (one
# process per file would spend most of the time starting ASan).
{
	ls "$PYDICOM_FILES"/*.dcm
	tail -n +2 "$CORPUS/../MANIFEST.tsv" | cut -f1 | sed "s|^|$CORPUS/../|"
} >"$T/files"
mkdir "$T/out"
awk -v out="$T/out" '{ print; print out "/" NR ".png" }' "$T/files" |
    xargs -d '\n' -n 100 -P 2 dcmthumb 2>>"$T/log"

# One line per file: <status>|<path>|<message>.
n=0
while IFS= read -r f; do
	n=$((n + 1))
	png=$T/out/$n.png
	line=$(grep -F "file=$f " "$T/log" | head -n 1)
	msg=${line#*reason=}
	if [ -f "$png" ]; then
		head -c 8 "$png" | od -An -c | grep -q "P   N   G" &&
		    echo "OK|$f|" || echo "BADPNG|$f|"
	elif echo "$line" | grep -q "status=SKIP"; then
		echo "SKIP|$f|$msg"
	else
		echo "FAILED|$f|${msg:-no output and no reason logged}"
	fi
done <"$T/files" >"$T/results"

rendered=0 skipped=0 known=0
while IFS='|' read -r status path msg; do
	rel=${path#"$CORPUS"/../files/}
	rel=${rel#"$PYDICOM_FILES"/}
	case $status in
	OK)	rendered=$((rendered + 1)); pass "$rel renders" ;;
	SKIP)
		skipped=$((skipped + 1))
		case $msg in
		*"no pixel data"*|*"empty pixel data"*|*"without Rows/Columns"*)
			pass "$rel has no pixels: SKIP ($msg)" ;;
		*)	fail "$rel: SKIP for a wrong reason: $msg" ;;
		esac ;;
	FAILED)
		want=$(grep -F "$rel|" "$T/known" | head -n 1 | cut -d'|' -f2)
		if grep -qF "$rel|" "$T/known" && case $msg in *"$want"*) true;;
		    *) false;; esac; then
			known=$((known + 1))
			pass "$rel: known exception: $msg"
		else
			fail "$rel: $msg"
		fi ;;
	*)	fail "$rel: output is not a PNG" ;;
	esac
done <"$T/results"
diag "rendered $rendered, skipped $skipped (no pixels), known exceptions $known"
ok "at least 350 files render" test "$rendered" -ge 350
done_testing
