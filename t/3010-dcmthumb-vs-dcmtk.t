#!/bin/sh
# 3010-dcmthumb-vs-dcmtk: the differential.  Every image of pydicom's
# test_files and the shared corpus is rendered by dcmthumb and by dcmtk's
# dcm2pnm with the same window choice (the first Window Center/Width:
# +Wi 1; else an enhanced object's Frame VOI LUT group: +Ww C W; else
# the first VOI LUT: +Wl 1; else min-max: +Wm) and the same
# frame (the middle one); dcmtk's full-size picture is area-reduced to
# dcmthumb's size and the two must agree: PSNR >= 30 dB or mean absolute
# difference <= 3 grey levels.  Images dcmtk cannot render are not
# compared; the exceptions below say why they differ.
. "${0%/*}/lib.sh"

[ -x "$GW_BIN/dcmthumb" ] || skip_all "dcmthumb not built"
command -v dcm2pnm >/dev/null || skip_all "dcmtk's dcm2pnm is not installed"
/usr/bin/python3 -c 'import numpy, pydicom' 2>/dev/null ||
    skip_all "python3-numpy / python3-pydicom not installed"

# Known differences: path | why.
cat >"$T/known" <<'EOF'
fo-dicom/GH610.dcm|PET with Rescale Slope 5.9e-08: dcmtk's min-max window collapses and it renders all black
highdicom/seg_image_ct_binary_fractional.dcm|a flat middle frame (one value): where a constant lands is arbitrary
highdicom/seg_image_ct_true_fractional.dcm|a flat middle frame (one value): where a constant lands is arbitrary
rtdose_expb.dcm|32-bit big-endian OW: dcmtk reads the words wrongly (pydicom's pixel_array agrees with dcmthumb)
rtdose_expb_1frame.dcm|32-bit big-endian OW: dcmtk reads the words wrongly (pydicom's pixel_array agrees with dcmthumb)
EOF

{
	ls "$PYDICOM_FILES"/*.dcm
	if have_corpus; then
		tail -n +2 "$CORPUS/../MANIFEST.tsv" | cut -f1 | sed "s|^|$CORPUS/../|"
	fi
} >"$T/files"

# Plan: which files are images, their middle frame and dcmtk's window
# option.  One line: path|frame|option.
/usr/bin/python3 - "$T/files" >"$T/plan" <<'EOF'
import sys, warnings
warnings.simplefilter("ignore")
import pydicom
for path in open(sys.argv[1]).read().split():
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:
        continue
    if "Rows" not in ds or "Columns" not in ds:
        continue
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except Exception:
        frames = 1
    frame = (max(frames, 1) - 1) // 2 + 1
    ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ""))
    prog = "dcml2pnm" if ts in ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81") else "dcmj2pnm"
    # An enhanced object's window is in its Frame VOI LUT functional
    # group (the frame's, else the shared one): dcmtk's +Wi does not look
    # there, so it gets the values (dcmtk applies the group's rescale).
    voi = None
    for fg in ([ds.PerFrameFunctionalGroupsSequence[frame - 1]]
               if len(ds.get("PerFrameFunctionalGroupsSequence", [])) >= frame
               else []) + list(ds.get("SharedFunctionalGroupsSequence", [])):
        for item in fg.get("FrameVOILUTSequence", []):
            if voi is None and item.get("WindowWidth") not in (None, "", []):
                voi = item
    if ds.get("WindowWidth") not in (None, "", []):
        opt = "+Wi 1"
    elif voi is not None:
        c = voi.WindowCenter[0] if voi["WindowCenter"].VM > 1 else voi.WindowCenter
        w = voi.WindowWidth[0] if voi["WindowWidth"].VM > 1 else voi.WindowWidth
        opt = "+Ww %s %s" % (float(c), float(w))
    elif "VOILUTSequence" in ds and len(ds.VOILUTSequence) > 0 and \
            ds.VOILUTSequence[0].get("LUTData") not in (None, b"", []):
        opt = "+Wl 1"
    else:
        opt = "+Wm"
    pad = "pad" if opt == "+Wm" and "PixelPaddingValue" in ds else ""
    print(f"{path}|{frame}|{opt}|{prog}|{pad}")
EOF

mkdir "$T/out"
# dcmthumb: 50 files per run (ASan start-up is the cost), two at a time.
awk -F'|' -v out="$T/out" '{ print $1; print out "/" NR ".ours" }' "$T/plan" |
    xargs -d '\n' -n 100 -P 2 dcmthumb --format pnm --size 96 \
    --square-pixels 2>/dev/null
# dcmtk: the same frame and window, full size.
export T
awk -F'|' '{ print NR "|" $0 }' "$T/plan" | xargs -P 2 -d '\n' -I '{}' sh -c '
	IFS="|" read -r n path frame opt prog pad <<EOF_
$1
EOF_
	o=$T/out/$n
	echo "$path|$pad" >"$o.path"
	[ -f "$o.ours" ] || exit 0
	# shellcheck disable=SC2086
	"$prog" -q +F "$frame" $opt +op "$path" "$o.dcmtk" \
	    2>/dev/null || rm -f "$o.dcmtk"' sh '{}'

# Compare: one line per pair: status|path|psnr|mad.
/usr/bin/python3 - "$T/out" >"$T/results" <<'EOF'
import os, sys, math
import numpy as np

def read_pnm(p):
    with open(p, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos+1].isspace():
            pos += 1
        if data[pos:pos+1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end+1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    pos += 1
    magic, w, h, mx = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    ch = 3 if magic == b"P6" else 1
    dt = np.uint8 if mx < 256 else np.dtype(">u2")
    a = np.frombuffer(data, dtype=dt, count=w*h*ch, offset=pos).astype(np.float64)
    if mx >= 256:
        a = a * 255.0 / mx
    return a.reshape(h, w, ch)

def area_reduce(a, H, W):
    h, w, ch = a.shape
    def weights(n, m):
        M = np.zeros((m, n))
        s = n / m
        for i in range(m):
            lo, hi = i * s, (i + 1) * s
            for j in range(int(lo), min(n, int(math.ceil(hi)))):
                M[i, j] = min(hi, j + 1) - max(lo, j)
        return M / s
    Y, X = weights(h, H), weights(w, W)
    return np.stack([Y @ a[:, :, c] @ X.T for c in range(ch)], axis=2)

out = sys.argv[1]
for name in sorted(os.listdir(out)):
    if not name.endswith(".path"):
        continue
    n = name[:-5]
    path, pad = open(os.path.join(out, name)).read().strip().split("|")
    ours, dcmtk = os.path.join(out, n + ".ours"), os.path.join(out, n + ".dcmtk")
    if not os.path.exists(ours):
        continue
    if not os.path.exists(dcmtk):
        print(f"NODCMTK|{path}||")
        continue
    a, b = read_pnm(ours), read_pnm(dcmtk)
    if a.shape[2] != b.shape[2]:
        a = a.mean(axis=2, keepdims=True) if a.shape[2] == 3 else a
        b = b.mean(axis=2, keepdims=True) if b.shape[2] == 3 else b
    b = area_reduce(b, a.shape[0], a.shape[1])
    mad = float(np.abs(a - b).mean())
    mse = float(((a - b) ** 2).mean())
    psnr = 99.0 if mse == 0 else 10 * math.log10(255 * 255 / mse)
    ok = psnr >= 30 or mad <= 3
    print(f"{'OK' if ok else 'PAD' if pad else 'DIFF'}|{path}|{psnr:.1f}|{mad:.2f}")
EOF

compared=0 nodcmtk=0
while IFS='|' read -r status path psnr mad; do
	rel=${path#"$CORPUS"/../files/}
	rel=${rel#"$PYDICOM_FILES"/}
	case $status in
	OK)	compared=$((compared + 1))
		pass "$rel agrees with dcmtk (PSNR $psnr dB, MAD $mad)" ;;
	NODCMTK) nodcmtk=$((nodcmtk + 1)) ;;
	PAD)	pass "$rel differs, known: no window and Pixel Padding Value: dcmthumb's min-max leaves padding out, dcmtk's +Wm does not (PSNR $psnr dB, MAD $mad)" ;;
	*)	why=$(grep -F "$rel|" "$T/known" | cut -d'|' -f2)
		if [ -n "$why" ]; then
			pass "$rel differs, known: $why (PSNR $psnr dB, MAD $mad)"
		else
			fail "$rel differs from dcmtk: PSNR $psnr dB, MAD $mad"
		fi ;;
	esac
done <"$T/results"
diag "compared $compared images; dcmtk could not render $nodcmtk others (JPEG 2000, HTJ2K, ... : not compared)"
if have_corpus; then
	ok "at least 250 images compared" test "$compared" -ge 250
else
	diag "the shared corpus is not there: pydicom's images only"
	ok "at least 25 of pydicom's images compared" test "$compared" -ge 25
fi
done_testing
