#!/bin/sh
# 5010-modality-emu-peers: the modality emulator against independent
# peers.  Its worklist query and MPPS against a dcmjs-dimse SCP
# (t/peers/mpps-scp.js), its C-STORE into a bare dcmtk storescp (the
# files clean for dcmdump and for dicom3tools' dciodvfy, also when
# compressed through dcmtk's JPEG and JPEG-LS encoders), and its C-FIND
# against dcmtk's wlmscpfs serving mwlsync export-wl files.
. "${0%/*}/lib.sh"
command -v storescp >/dev/null 2>&1 && command -v wlmscpfs >/dev/null 2>&1 ||
	skip_all "dcmtk not installed"
command -v node >/dev/null 2>&1 || skip_all "node not installed"
[ -d "$GW_ROOT/node_modules/dcmjs-dimse" ] ||
	skip_all "dcmjs-dimse not installed (npm ci)"
[ -x "$GW_BIN/modality-emu" ] || skip_all "modality-emu not built"
have_dciodvfy=0
command -v dciodvfy >/dev/null 2>&1 && have_dciodvfy=1

TODAY=$(date +%Y%m%d)
STUDY=2.25.1234567890123456789
MPPS_PORT=$(free_port)
STORE_PORT=$(free_port)
mkdir -p "$T/in"
(cd "$GW_ROOT" && exec node -r ./t/peers/nodelay.js t/peers/mpps-scp.js \
    "$MPPS_PORT" ACCPEER1 "$STUDY" "$TODAY") >"$T/mpps-scp.out" \
    2>"$T/mpps-scp.log" &
_bg_pids="$_bg_pids $!"
bg storescp storescp -od "$T/in" +xa -pdu 131072 -aet SCREENING_PACS \
    "$STORE_PORT"
wait_until 20 port_open "$MPPS_PORT" && wait_until 20 port_open "$STORE_PORT" ||
	{ echo "Bail out! the peers did not start"; exit 1; }

export WORKLIST_PORT=$MPPS_PORT PACS_PORT=$STORE_PORT

# emu NAME ARGS...: run modality-emu, status in $rc.
emu() {
	_n=$1; shift
	modality-emu "$@" >"$T/$_n.out" 2>"$T/$_n.err"
	rc=$?
}

# clean_files DIR: dcmdump reads every file without a word on stderr,
# and dciodvfy (when installed) finds no error.
clean_files() {
	for f in "$1"/*; do
		[ -f "$f" ] || continue
		dcmdump -q +E "$f" 2>&1 >/dev/null | grep . && return 1
		if [ $have_dciodvfy = 1 ] &&
		    dciodvfy -new "$f" 2>&1 | grep Error; then
			return 1
		fi
	done
	return 0
}

emu plain --size small
is "$rc" 0 "an exam against dcmjs-dimse and storescp exits 0"
ok "the dcmjs-dimse SCP answered a C-FIND" grep -qx c-find "$T/mpps-scp.out"
ok "it accepted the N-CREATE IN PROGRESS with the scheduled step attributes" \
    grep -q "^n-create .*status=IN PROGRESS accession=ACCPEER1 study=$STUDY sps_id=SPS-ACCPEER1 rp_id=RP-ACCPEER1" \
    "$T/mpps-scp.out"
ok "it accepted the N-SET COMPLETED listing four images" \
    grep -q '^n-set .*status=COMPLETED images=4' "$T/mpps-scp.out"
is "$(count_files "$T/in")" 4 "storescp wrote four files"
ok "every file is MG For Presentation of the worklist's study" sh -c "
    for f in '$T'/in/*; do
	dcmdump -q -Un +P SOPClassUID +P StudyInstanceUID \"\$f\" | tr '\n' ' ' |
	    grep -q '1.2.840.10008.5.1.4.1.1.1.2].*$STUDY' || exit 1
    done"
ok "dcmdump +E prints nothing on stderr and dciodvfy finds no error" \
    clean_files "$T/in"
[ $have_dciodvfy = 1 ] || diag "dciodvfy not installed: only dcmdump checked"

for ts in jpeg-lossless:1.2.840.10008.1.2.4.70 jpeg-ls:1.2.840.10008.1.2.4.80; do
	name=${ts%%:*} uid=${ts#*:}
	rm -f "$T"/in/*
	emu "$name" --size small --views RCC,LMLO --transfer-syntax "$name"
	is "$rc" 0 "--transfer-syntax $name exits 0"
	is "$(count_files "$T/in")" 2 "$name: storescp wrote two files"
	f=$(find "$T/in" -type f | head -n 1)
	is "$(dcmdump -q -Un +P TransferSyntaxUID "$f" | sed 's/.*\[\(.*\)\].*/\1/')" "$uid" \
	    "$name: the file is in $uid"
	ok "$name: dcmdump and dciodvfy are clean" clean_files "$T/in"
done

# --frames: a Breast Tomosynthesis Image, proposed and stored as such.
BTO=1.2.840.10008.5.1.4.1.1.13.1.3
rm -f "$T"/in/*
emu frames --size small --views RCC,LMLO --frames 5
is "$rc" 0 "--frames 5 exits 0"
ok "its N-SET COMPLETED lists the two images" sh -c \
    "tail -n 1 '$T/mpps-scp.out' | grep -q '^n-set .*status=COMPLETED images=2'"
is "$(count_files "$T/in")" 2 "--frames: storescp wrote two files"
ok "every file is a Breast Tomosynthesis Image of five frames" sh -c "
    for f in '$T'/in/*; do
	dcmdump -q -Un +P SOPClassUID +P NumberOfFrames \"\$f\" | tr '\n' ' ' |
	    grep -q '$BTO].*\[5\]' || exit 1
    done"
ok "--frames: dcmdump +E and dciodvfy are clean" clean_files "$T/in"
f=$(find "$T/in" -type f | head -n 1)
is "$(dcmdump -q -Un +P PerFrameFunctionalGroupsSequence "$f" 2>/dev/null |
    grep -c 'Sequence with explicit length #=5\|Sequence with undefined length #=5')" 1 \
    "--frames: five per-frame functional group items"
rm -f "$T"/in/*
emu framesjls --size 64x48 --views LCC --frames 3 --transfer-syntax jpeg-ls
is "$rc" 0 "--frames 3 --transfer-syntax jpeg-ls exits 0"
ok "--frames, JPEG-LS: dcmdump and dciodvfy are clean" clean_files "$T/in"

# wlmscpfs serving what mwlsync exports.
export WORKLIST_DB_PATH=$T/worklist.db GATEWAY_DATA_DIR=$T/var
printf '{"schema_version":1,"action_id":"act-1","action_type":"worklist.create_item","parameters":{"worklist_item":{"accession_number":"ACCWL1","participant":{"nhs_number":"9990007777","name":"M\\u00fcller^Zo\\u00eb","birth_date":"19700101","sex":"F"},"scheduled":{"date":"%s","time":"100000"},"procedure":{"modality":"MG","study_description":"Screening"}}}}\n' "$TODAY" |
    mwlsync apply >"$T/apply.out" 2>&1
mwlsync export-wl "$T/wl/SCREENING_MWL" 2>>"$T/apply.out"
WL_PORT=$(free_port)
bg wlmscpfs wlmscpfs -dfp "$T/wl" -dfr "$WL_PORT"
wait_until 10 port_open "$WL_PORT" ||
	{ echo "Bail out! wlmscpfs did not start"; exit 1; }
WORKLIST_PORT=$WL_PORT emu wl --list
is "$rc" 0 "C-FIND against wlmscpfs exits 0"
ok "wlmscpfs returned the exported item" \
    grep -q "^accession=ACCWL1 .*date=$TODAY modality=MG" "$T/wl.out"
WORKLIST_PORT=$WL_PORT emu wlname --list --patient-name 'M*'
ok "a patient name filter matches on wlmscpfs" \
    grep -q '^accession=ACCWL1' "$T/wlname.out"
WORKLIST_PORT=$WL_PORT emu wlct --list --modality CT
is "$rc" 66 "a modality filter with no match: exit 66"

mkdir -p "$T/unit"
ok "lib/emu/mammo unit tests pass (t/unit/mammo_test)" "$GW_BUILD/t/mammo_test" "$T/unit"
ok "its four views, two tomosynthesis and two breast projection images are clean for dcmdump and dciodvfy" clean_files "$T/unit"

ok "no sanitizer report from the emulator" \
    sh -c "! cat '$T'/*.err | grep -q 'Sanitizer\|runtime error'"
done_testing
