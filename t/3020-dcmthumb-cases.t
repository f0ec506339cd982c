#!/bin/sh
# 3020-dcmthumb-cases: hand-checked renderings of real files and of
# variants made from them with pydicom: a signed 16-bit CT renders with
# its window, MONOCHROME1 is inverted exactly once, SIGMOID differs from
# LINEAR, the first of several windows is used, --window and --frame
# choose, and non-square pixels change the shape.
. "${0%/*}/lib.sh"

[ -x "$GW_BIN/dcmthumb" ] || skip_all "dcmthumb not built"
/usr/bin/python3 -c 'import pydicom, numpy' 2>/dev/null || skip_all "no pydicom/numpy"
CT=$PYDICOM_FILES/CT_small.dcm
[ -f "$CT" ] || skip_all "pydicom's CT_small.dcm is not installed"

# Variants of CT_small (signed 16-bit).
/usr/bin/python3 - "$CT" "$T" <<'EOF'
import sys, copy, pydicom, numpy as np
src, out = sys.argv[1], sys.argv[2]
ds = pydicom.dcmread(src)
# CT_small has no window of its own: give it one around its values.
hu = ds.pixel_array * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
ds.WindowCenter, ds.WindowWidth = round(float(np.median(hu))), round(float(hu.std() * 4))
def save(name, **kw):
    d = copy.deepcopy(ds)
    for k, v in kw.items():
        setattr(d, k, v)
    d.save_as(f"{out}/{name}.dcm")
save("ct")
save("sigmoid", VOILUTFunction="SIGMOID")
save("mono1", PhotometricInterpretation="MONOCHROME1")
save("mono1-inverse", PhotometricInterpretation="MONOCHROME1",
     PresentationLUTShape="INVERSE")
save("mono2-inverse", PresentationLUTShape="INVERSE")
c, w = float(ds.WindowCenter), float(ds.WindowWidth)
save("two-windows", WindowCenter=[c, c + 3000], WindowWidth=[w, 10])
save("second-window", WindowCenter=c + 3000, WindowWidth=10)
save("aspect", PixelSpacing=[1.0, 0.5])
# Four frames, each a constant: 0, 1000, 2000, 3000 (frame 3 is the middle
# one by dcmthumb's choice of (n - 1) / 2, 0-based: the second frame).
m = copy.deepcopy(ds)
frames = np.stack([np.full((m.Rows, m.Columns), v, np.int16)
                   for v in (0, 1000, 2000, 3000)])
m.NumberOfFrames = 4
m.WindowCenter, m.WindowWidth = 1500, 3000
m.RescaleSlope, m.RescaleIntercept = 1, 0
m.PixelData = frames.tobytes()
m.save_as(f"{out}/frames.dcm")
EOF

render() {	# render NAME [options]: $T/NAME.pgm
	_n=$1; shift
	dcmthumb --format pnm "$@" "$T/$_n.dcm" "$T/$_n.pgm"
}
stats() {	# stats FILE: "width height mean"
	/usr/bin/python3 -c '
import sys
d = open(sys.argv[1], "rb").read().split(b"\n", 3)
w, h = map(int, d[1].split())
px = d[3][:w * h]
print(w, h, round(sum(px) / len(px), 2))' "$1"
}
mean() { stats "$1" | cut -d' ' -f3; }
same() { cmp -s "$1" "$2"; }
inverse() {	# inverse A B: every pixel of B is 255 - A
	/usr/bin/python3 -c '
import sys
a = open(sys.argv[1], "rb").read().split(b"\n", 3)[3]
b = open(sys.argv[2], "rb").read().split(b"\n", 3)[3]
sys.exit(0 if len(a) == len(b) and all(x + y == 255 for x, y in zip(a, b)) else 1)' "$1" "$2"
}

ok "signed 16-bit CT_small renders" render ct
m=$(mean "$T/ct.pgm")
ok "the CT is neither black nor white (mean $m)" \
    /usr/bin/python3 -c "import sys; sys.exit(0 if 20 < $m < 235 else 1)"
ok "dcmthumb agrees with itself on PNG output" dcmthumb "$T/ct.dcm" "$T/ct.png"

ok "SIGMOID renders" render sigmoid
not_ok "SIGMOID differs from LINEAR" same "$T/ct.pgm" "$T/sigmoid.pgm"

render mono1
ok "MONOCHROME1 is shown inverted" inverse "$T/ct.pgm" "$T/mono1.pgm"
render mono1-inverse
ok "MONOCHROME1 with Presentation LUT Shape INVERSE is inverted once, not twice" \
    same "$T/mono1.pgm" "$T/mono1-inverse.pgm"
render mono2-inverse
ok "MONOCHROME2 with INVERSE is inverted" inverse "$T/ct.pgm" "$T/mono2-inverse.pgm"

render two-windows
ok "with two windows the first is used" same "$T/ct.pgm" "$T/two-windows.pgm"
render second-window
dcmthumb --format pnm --window 2 "$T/two-windows.dcm" "$T/window2.pgm"
ok "--window 2 uses the second" same "$T/second-window.pgm" "$T/window2.pgm"

render aspect
is "$(stats "$T/aspect.pgm" | cut -d' ' -f1-2)" "64 128" \
    "Pixel Spacing 1.0 mm between rows, 0.5 between columns: 128x128 shows 64 wide, 128 high"

render frames
is "$(mean "$T/frames.pgm")" "$(dcmthumb --format pnm --frame 2 "$T/frames.dcm" "$T/f2.pgm" && mean "$T/f2.pgm")" \
    "the middle frame (2 of 4) by default"
dcmthumb --format pnm --frame 4 "$T/frames.dcm" "$T/f4.pgm"
is "$(mean "$T/f4.pgm")" "255.0" "--frame 4 renders the last frame (3000, above the window)"
not_ok "--frame 5 of 4 fails" dcmthumb --frame 5 "$T/frames.dcm" "$T/f5.pgm"
dcmthumb "$PYDICOM_FILES/rtplan.dcm" "$T/rtplan.png" 2>"$T/rtplan.log"
is "$?" 65 "an object without pixels exits 65 (EX_DATAERR)"
ok "and says SKIP: no pixel data" grep -q 'status=SKIP reason="no pixel data"' "$T/rtplan.log"
ok "--help" dcmthumb --help
is "$(dcmthumb --version | cut -d' ' -f1)" dcmthumb "--version names the program"
done_testing
