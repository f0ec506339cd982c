#!/bin/sh
# 1730-index-enhanced-mammography: tomosynthesis and Breast Projection
# X-Ray images (t/tools/gen-tomo), and variants of them made with pydicom,
# indexed into pacs.db: number of frames, class, Presentation Intent Type,
# and laterality and view where each class keeps them: Image Laterality
# and View Position at the top when present, else Frame Laterality from
# the shared or every per-frame Frame Anatomy, else the series'
# Laterality; the View Code Sequence at the top or in the functional
# groups, its CID 4014 code (SNOMED CT or SNOMED RT) mapped to the View
# Position term.  Frames that disagree give no laterality rather than a
# wrong one.  gatewayctl show names each class.
. "${0%/*}/lib.sh"

export GATEWAY_DATA_DIR=$T/var GATEWAY_ENV_FILE=/dev/null
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
IN=$GATEWAY_DATA_DIR/incoming
mkdir -p "$IN" "$T/src"
GEN_TOMO=$GW_ROOT/t/tools/gen-tomo
STUDY=2.25.1700

# tomo NAME OPTIONS...: a generated object, its SOP Instance UID NAME.
tomo() {
	_n=$1; shift
	"$GEN_TOMO" --size 64x48 --accession ACC1700 --study-uid $STUDY \
	    --sop-uid "2.25.1700$_n" "$@" "$T/src/$_n.dcm" >/dev/null
}
tomo 1 --frames 5 --view RCC
tomo 2 --frames 4 --view LMLO --anatomy-per-frame
tomo 3 --frames 1 --view LCC --class bpx
tomo 4 --frames 2 --view RMLO --class bpx-processing --anatomy-per-frame
tomo 5 --frames 3 --view RCC --anatomy-per-frame
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 2 --studies 1 --seed 17 \
    --intent processing >"$T/mg.list"
ok "gen-tomo and gen-mammo wrote the sources" test -f "$T/src/5.dcm" -a -s "$T/mg.list"

# Variants of object 5 (three frames, Frame Anatomy per frame, RCC): each
# a change of where laterality and view are kept, as a vendor might.
/usr/bin/python3 - "$T/src" <<'PY' >"$T/variants.log" 2>&1
import copy, sys
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

src = sys.argv[1]

def variant(n, change):
    d = pydicom.dcmread(src + "/5.dcm")
    uid = "2.25.1700%d" % n
    d.SOPInstanceUID = uid
    d.file_meta.MediaStorageSOPInstanceUID = uid
    change(d)
    d.save_as("%s/%d.dcm" % (src, n), write_like_original=False)

def anatomy(d, i):
    return d.PerFrameFunctionalGroupsSequence[i].FrameAnatomySequence[0]

def code(value, scheme):
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, "x"
    return c

def disagree(d):                       # 6: frame 2 says L, the others R
    anatomy(d, 1).FrameLaterality = "L"
def disagree_series(d):                # 7: ... and the series says R
    disagree(d)
    d.Laterality = "R"
def view_in_groups(d):                 # 8: View Code in the shared group
    d.SharedFunctionalGroupsSequence[0].ViewCodeSequence = d.ViewCodeSequence
    del d.ViewCodeSequence
def srt(value):                        # 9-12: SNOMED RT and older codes
    def f(d):
        d.ViewCodeSequence = Sequence([code(value, "SRT")])
    return f
def unknown_view(d):                   # 13: not a CID 4014 code
    d.ViewCodeSequence = Sequence([code("12345", "99LOCAL")])
def top_level(d):                      # 14: top level wins over the groups
    d.ImageLaterality = "L"
    d.ViewPosition = "ML"

variant(6, disagree)
variant(7, disagree_series)
variant(8, view_in_groups)
variant(9, srt("R-10226"))
variant(10, srt("R-1024A"))
variant(11, srt("Y-X1771"))
variant(12, lambda d: d.ViewCodeSequence[0].__setattr__("CodeValue", "399196006"))
variant(13, unknown_view)
variant(14, top_level)
PY
ok "pydicom made the variants" test -f "$T/src/14.dcm"
cp "$T"/src/*.dcm "$T"/mg/*.dcm "$IN/"
ok "dcmindex --init" dcmindex --init
ok "the sweep takes them in" sh -c 'storescp-hook --sweep 2>"$0/hook.log"' "$T"
ok "dcmindex indexes them" sh -c 'dcmindex --once 2>"$0/index.log"' "$T"

# row N: class|frames|laterality|view|intent of 2.25.1700N
row() {
	sql "$PACS_DB" "SELECT substr(sop_class_uid, 25), coalesce(number_of_frames, ''), coalesce(laterality, ''), coalesce(view_position, ''), coalesce(presentation_intent, '') FROM instances WHERE sop_instance_uid = '2.25.1700$1'"
}
is "$(row 1)" "13.1.3|5|R|CC|" \
    "tomosynthesis: five frames, R from the shared Frame Anatomy, CC from the top-level View Code"
is "$(row 2)" "13.1.3|4|L|MLO|" \
    "tomosynthesis: L from every frame's Frame Anatomy"
is "$(row 3)" "13.1.4|1|L|CC|FOR PRESENTATION" \
    "breast projection for presentation: one frame, L CC"
is "$(row 4)" "13.1.5|2|R|MLO|FOR PROCESSING" \
    "breast projection for processing: R MLO from every frame"
is "$(row 6)" "13.1.3|3||CC|" \
    "frames that disagree on laterality give none"
is "$(row 7)" "13.1.3|3|R|CC|" \
    "... then the series' Laterality is taken"
is "$(row 8)" "13.1.3|3|R|CC|" \
    "a View Code Sequence in the shared functional group gives the view"
is "$(row 9)" "13.1.3|3|R|MLO|" "SNOMED RT R-10226 is MLO"
is "$(row 10)" "13.1.3|3|R|XCCL|" "R-1024A is XCCL"
is "$(row 11)" "13.1.3|3|R|XCCM|" "the deprecated Y-X1771 is XCCM"
is "$(row 12)" "13.1.3|3|R|FB|" "399196006 (caudo-cranial) is FB"
is "$(row 13)" "13.1.3|3|R||" "a code outside CID 4014 gives no view"
is "$(row 14)" "13.1.3|3|L|ML|" \
    "top-level Image Laterality and View Position win over the groups"
is "$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE sop_class_uid = '1.2.840.10008.5.1.4.1.1.1.2.1' AND laterality IN ('R', 'L') AND view_position IN ('CC', 'MLO') AND presentation_intent = 'FOR PROCESSING'")" 2 \
    "digital mammograms for processing keep their top-level values"

gatewayctl show ACC1700 >"$T/show.out" 2>&1
is "$?" 0 "gatewayctl show exits 0"
ok "it names the tomosynthesis images with their frames and size" \
    grep -q 'image:   tomosynthesis, 5 frames of 64x48$' "$T/show.out"
ok "... the breast projections for presentation" \
    grep -q 'image:   breast projection, for presentation, 1 frame of 64x48$' "$T/show.out"
ok "... and for processing" \
    grep -q 'image:   breast projection, for processing, 2 frames of 64x48$' "$T/show.out"
acc=$(head -n 1 "$T/mg.list" | cut -d' ' -f4)
gatewayctl show "$acc" >"$T/show-mg.out" 2>&1
ok "... and the mammograms for processing" \
    grep -q 'image:   mammogram, for processing, 1 frame of 512x400$' "$T/show-mg.out"
ok "no sanitizer report" sh -c "! cat '$T'/*.log | grep -q 'Sanitizer\|runtime error'"
done_testing
