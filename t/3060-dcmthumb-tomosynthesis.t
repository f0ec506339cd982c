#!/bin/sh
# 3060-dcmthumb-tomosynthesis: the preview of a tomosynthesis object
# (t/tools/gen-tomo) is its middle frame, windowed by its Frame VOI LUT
# functional group (an enhanced object has no top-level window), decoded
# without reading the other frames: a JPEG-LS copy whose other frames are
# all damaged gives the same preview, and asking for a damaged frame fails
# with the decoder's reason.
. "${0%/*}/lib.sh"
command -v dcmcjpls >/dev/null || skip_all "dcmtk not installed"

GEN_TOMO=$GW_ROOT/t/tools/gen-tomo
"$GEN_TOMO" --frames 9 --size 256x200 --view LCC "$T/tomo.dcm" >/dev/null
ok "dcmcjpls compresses it (JPEG-LS lossless, a fragment a frame)" \
    dcmcjpls "$T/tomo.dcm" "$T/jls.dcm"
# Every frame but the middle one (5 of 9) overwritten with noise; the
# same object with the Frame VOI LUT's window copied to the top level.
/usr/bin/python3 - "$T" <<'PY'
import sys
import pydicom
from pydicom.encaps import generate_pixel_data_frame, encapsulate
t = sys.argv[1]
d = pydicom.dcmread(t + "/jls.dcm")
frames = list(generate_pixel_data_frame(d.PixelData, 9))
for i in range(9):
    if i != 4:
        frames[i] = frames[i][:4] + bytes((k * 31 + i) & 0xff for k in range(len(frames[i]) - 4))
d.PixelData = encapsulate(frames, has_bot=True)
d.save_as(t + "/damaged.dcm")
d = pydicom.dcmread(t + "/tomo.dcm")
voi = d.SharedFunctionalGroupsSequence[0].FrameVOILUTSequence[0]
d.WindowCenter, d.WindowWidth = voi.WindowCenter, voi.WindowWidth
d.save_as(t + "/top-window.dcm")
PY
ok "pydicom made the damaged and the top-level-window copies" test -f "$T/top-window.dcm"

thumb() { dcmthumb "$@" 2>>"$T/thumb.log"; }
ok "dcmthumb renders the tomosynthesis object" thumb "$T/tomo.dcm" "$T/tomo.png"
ok "... its middle frame (5 of 9)" sh -c \
    "dcmthumb --frame 5 '$T/tomo.dcm' '$T/f5.png' 2>/dev/null && cmp '$T/tomo.png' '$T/f5.png'"
ok "... not another" sh -c \
    "dcmthumb --frame 1 '$T/tomo.dcm' '$T/f1.png' 2>/dev/null && ! cmp -s '$T/tomo.png' '$T/f1.png'"
ok "... windowed as its Frame VOI LUT group says (the same window at the top level renders the same)" \
    sh -c "dcmthumb '$T/top-window.dcm' '$T/top.png' 2>/dev/null && cmp '$T/tomo.png' '$T/top.png'"
ok "... which is not the min-max rendering" sh -c \
    "dcmthumb --min-max '$T/tomo.dcm' '$T/mm.png' 2>/dev/null && ! cmp -s '$T/tomo.png' '$T/mm.png'"
ok "the JPEG-LS copy's preview is the same picture" sh -c \
    "dcmthumb '$T/jls.dcm' '$T/jls.png' 2>/dev/null && cmp '$T/tomo.png' '$T/jls.png'"
ok "with every other frame damaged, the preview is still the same: no other frame is read" \
    sh -c "dcmthumb '$T/damaged.dcm' '$T/damaged.png' 2>/dev/null && cmp '$T/tomo.png' '$T/damaged.png'"
dcmthumb --frame 2 "$T/damaged.dcm" "$T/d2.png" 2>"$T/d2.err"
is "$?" 65 "asking for a damaged frame fails (EX_DATAERR)"
ok "... saying why" grep -q 'cannot render.*JPEG-LS' "$T/d2.err"
ok "no sanitizer report" sh -c "! grep -q 'Sanitizer\|runtime error' '$T/thumb.log' '$T/d2.err'"
done_testing
