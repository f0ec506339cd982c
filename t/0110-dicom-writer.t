#!/bin/sh
# 0110-dicom-writer: lib/dicom/dicom_write.c.  t/unit/dicom_write_test.c checks
# round trips through our reader and writes Part 10 files; dcmdump must
# then read each of them without a warning.
. "${0%/*}/lib.sh"

test_bin=$GW_BUILD/t/dicom_write_test
[ -x "$test_bin" ] || skip_all "$test_bin not built (make units)"

mkdir -p "$T/files"
ok "builder round trips through our reader (t/unit/dicom_write_test)" \
    "$test_bin" "$T/files"
for f in explicit implicit; do
	if [ ! -f "$T/files/$f.dcm" ]; then
		fail "dcmdump reads the $f VR file (not written)"
		continue
	fi
	dcmdump -q +E "$T/files/$f.dcm" >"$T/$f.dump" 2>"$T/$f.err"
	rc=$?
	is "$rc:$(cat "$T/$f.err")" "0:" "dcmdump reads the $f VR file without warnings"
	is "$(dcm_value "$T/files/$f.dcm" 0002,0013)" "SCRGW_010" \
	    "dcmdump sees our implementation version name ($f)"
done
done_testing
