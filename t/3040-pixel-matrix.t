#!/bin/sh
# 3040-pixel-matrix: lib/image/pixel against known sample values, for the whole
# classes behind two reported wrong pictures (t/tools/gen-pixel-cases):
# every native depth (1/8/16/32 bits, full and partial Bits Stored,
# unsigned and signed) in implicit, explicit, deflated little endian and
# big endian (OB and OW), one and three samples, both planar
# configurations, odd-sized second frames; RLE at each depth; and the
# fragment layouts PS3.5 A.4 allows: empty and full Basic Offset Table,
# frames split over fragments with and without one, an Extended Offset
# Table, one frame in many fragments, a fragment holding the bytes of a
# Sequence Delimitation Item; and 16-bit frames read at a reduced size
# for a preview (block means).
. "${0%/*}/lib.sh"

test_bin=$GW_BUILD/t/pixdump
[ -x "$test_bin" ] || skip_all "$test_bin not built (make units)"
/usr/bin/python3 -c 'import numpy, pydicom' 2>/dev/null ||
    skip_all "python3-numpy / python3-pydicom not installed"
command -v dcmcjpls >/dev/null || skip_all "dcmtk's dcmcjpls is not installed"

mkdir -p "$T/cases"
if ! /usr/bin/python3 "$GW_ROOT/t/tools/gen-pixel-cases" "$T/cases" \
    >"$T/list" 2>"$T/gen.err"; then
	sed 's/^/# /' "$T/gen.err" >&2
	fail "the cases are generated"
	done_testing
	exit
fi
ok "over 600 cases are generated" test "$(wc -l <"$T/list")" -gt 600
while read -r name frame min_side; do
	got=$("$test_bin" "$T/cases/$name.dcm" "$frame" "$min_side" 2>&1)
	is "$got" "$(cat "$T/cases/$name.expect")" \
	    "$name: frame $frame decodes to the samples written"
done <"$T/list"
done_testing
