#!/bin/sh
# Bad input at the storage edge: truncated files, a non-DICOM file, a huge
# bogus length, deflate garbage, a file without the UIDs an index needs,
# invalid UIDs.  Each is quarantined with a reason, named by its SOP
# Instance UID when it has one, while good files keep being indexed.
. "${0%/*}/lib.sh"

export GATEWAY_DATA_DIR=$T/var
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
Q=$GATEWAY_DATA_DIR/quarantine
mkdir -p "$T/in"
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 4 --size 64x48 --studies 1 --seed 21 >/dev/null
good=$T/mg/mg00000.dcm

# make_bad NAME: a broken file in $T/in.
/usr/bin/python3 - "$good" "$T/in" "$PYDICOM_FILES" <<'PY'
import struct, sys, os
good, out, pyd = sys.argv[1:4]
data = open(good, "rb").read()
def w(name, b): open(os.path.join(out, name), "wb").write(b)
w("not-dicom.txt", b"hello, this is not DICOM at all\n" * 10)
w("empty.dcm", b"")
w("truncated-header.dcm", data[:700])
w("truncated-pixels.dcm", data[:len(data) - 1000])
# a huge bogus length on (0008,0070) Manufacturer (explicit VR, 2-byte length)
# -> make it an OB-style element with a 4-byte length of 0xFFFFFFF0
i = data.index(b"\x08\x00\x70\x00LO")
w("bogus-length.dcm", data[:i] + b"\x08\x00\x70\x00UN\x00\x00" + struct.pack("<I", 0xFFFFFFF0) + data[i + 8:])
# deflate garbage: meta says deflated, the body is random bytes
dfl = open(os.path.join(pyd, "image_dfl.dcm"), "rb").read()
gl = struct.unpack("<I", dfl[140:144])[0]
w("deflate-garbage.dcm", dfl[:144 + gl] + os.urandom(4000))
# no Study Instance UID
j = data.index(b"\x20\x00\x0d\x00UI")
ln = struct.unpack("<H", data[j + 6:j + 8])[0]
w("no-study-uid.dcm", data[:j] + data[j + 8 + ln:])
# invalid UIDs: (0008,0018) SOP Instance UID replaced
def with_sop_uid(uid):
    k = data.index(b"\x08\x00\x18\x00UI")
    n = struct.unpack("<H", data[k + 6:k + 8])[0]
    v = uid.encode() + (b"\0" if len(uid) % 2 else b"")
    return data[:k + 6] + struct.pack("<H", len(v)) + v + data[k + 8 + n:]
w("uid-too-long.dcm", with_sop_uid("1.2.826.0.1.3680043.10.1234." + "1" * 42))
w("uid-letters.dcm", with_sop_uid("1.2.826.0.1.3680043.10.abc"))
PY
nbad=$(ls "$T/in" | wc -l)

# Feed them to the hook one by one as storescp would, between good files.
mkdir -p "$GATEWAY_DATA_DIR/incoming"
n=0
for f in "$T"/in/*; do
	g=$T/mg/mg0000$((n % 4)).dcm
	cp "$g" "$GATEWAY_DATA_DIR/incoming/good$n.dcm"
	cp "$f" "$GATEWAY_DATA_DIR/incoming/"
	storescp-hook "$GATEWAY_DATA_DIR/incoming/good$n.dcm" MODALITY SCREENING_PACS 127.0.0.1 2>>"$T/hook.log" || echo "hook failed on good$n" >>"$T/errors"
	storescp-hook "$GATEWAY_DATA_DIR/incoming/${f##*/}" MODALITY SCREENING_PACS 127.0.0.1 2>>"$T/hook.log" || echo "hook failed on ${f##*/}" >>"$T/errors"
	n=$((n + 1))
done
ok "the hook exits 0 for every file, good or bad" test ! -s "$T/errors"
is "$(count_files "$GATEWAY_DATA_DIR/incoming")" 0 "nothing is left in incoming/"
is "$(ls "$Q" | grep -vc '\.reason$')" "$nbad" "every bad file is quarantined"
is "$(ls "$Q" | grep -c '\.reason$')" "$nbad" "each with a reason file"

# entry NAME: the quarantine entry of the file received as NAME.
entry() {
	grep -lx "file=$1" "$Q"/*.reason 2>/dev/null | sed 's/\.reason$//'
}
reason() {
	sed -n 's/^reason=//p' "$(entry "$1").reason" 2>/dev/null
}
ok "non-DICOM: the reason says so" sh -c "echo '$(reason not-dicom.txt)' | grep -qi 'no DICM prefix'"
ok "empty file: the reason says so" sh -c "echo '$(reason empty.dcm)' | grep -qi 'empty'"
ok "truncated header: the reason names the element and offset" sh -c "echo '$(reason truncated-header.dcm)' | grep -qE 'truncated.*\\([0-9A-F]{4},[0-9A-F]{4}\\).*offset'"
ok "truncated pixel data: the reason names (7FE0,0010)" sh -c "echo '$(reason truncated-pixels.dcm)' | grep -q '7FE0,0010'"
ok "huge bogus length: the reason names the element" sh -c "echo '$(reason bogus-length.dcm)' | grep -q '0008,0070'"
ok "deflate garbage: the reason says inflate failed" sh -c "echo '$(reason deflate-garbage.dcm)' | grep -qiE 'deflat|inflat'"
ok "missing Study Instance UID: the reason says so" sh -c "echo '$(reason no-study-uid.dcm)' | grep -q 'Study Instance UID'"
ok "a SOP Instance UID over 64 characters: the reason says so" sh -c "echo '$(reason uid-too-long.dcm)' | grep -q 'invalid SOP Instance UID.*longer than 64 characters (70 characters)'"
ok "a SOP Instance UID with letters: the reason says so" sh -c "echo '$(reason uid-letters.dcm)' | grep -q 'invalid SOP Instance UID \"1.2.826.0.1.3680043.10.abc\": characters other than digits and dots'"
ok "the quarantined bytes are the bytes received" cmp "$T/in/bogus-length.dcm" "$(entry bogus-length.dcm)"
is "$(basename "$(entry uid-letters.dcm)")" "1.2.826.0.1.3680043.10.abc.dcm" "a quarantined file is named by its SOP Instance UID"
ok "... also when the pixel data is cut short" test -n "$(entry truncated-pixels.dcm | grep "/$(dcm_value "$good" 0008,0018 | sed 's/[.]/[.]/g')[~.]")"
ok "a file without a readable SOP Instance UID is named unknown-<time>" sh -c "basename '$(entry not-dicom.txt)' | grep -q '^unknown-.*\.dcm$'"
ok "the reason records the calling AE" grep -q '^calling_aet=MODALITY$' "$(entry empty.dcm).reason"
ok "... the called AE and the peer" sh -c "grep -q '^called_aet=SCREENING_PACS$' '$(entry empty.dcm).reason' && grep -q '^peer=127.0.0.1$' '$(entry empty.dcm).reason'"
ok "... and the SOP and Study Instance UID and accession number it could read" sh -c "
    grep -qx 'sop_instance_uid=1.2.826.0.1.3680043.10.abc' '$(entry uid-letters.dcm).reason' &&
    grep -qx 'study_instance_uid=$(dcm_value "$good" 0020,000D)' '$(entry uid-letters.dcm).reason' &&
    grep -qx 'accession_number=$(dcm_value "$good" 0008,0050)' '$(entry uid-letters.dcm).reason'"

ok "dcmindex indexes the good files" dcmindex --once
is "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances")" 4 "the four good instances are indexed"
is "$(sql "$PACS_DB" "SELECT count(*) FROM receipts")" "$nbad" "every good arrival is recorded"

# An index job whose object vanished fails alone, with a reason, and the
# next job still goes through.
mkdir -p "$GATEWAY_DATA_DIR/spool/index/new"
printf 'object=%064d\n' 0 >"$GATEWAY_DATA_DIR/spool/index/new/0000000001.000000.lost"
printf 'object=not-a-hash\n' >"$GATEWAY_DATA_DIR/spool/index/new/0000000002.000000.junk"
cp "$good" "$GATEWAY_DATA_DIR/incoming/again.dcm"
storescp-hook "$GATEWAY_DATA_DIR/incoming/again.dcm" MODALITY SCREENING_PACS 127.0.0.1 2>>"$T/hook.log"
ok "dcmindex carries on past bad jobs" dcmindex --once
ok "a job for a missing object is in failed/ with a reason" \
    grep -q 'No such file' "$GATEWAY_DATA_DIR/spool/index/failed/0000000001.000000.lost.reason"
ok "a job without a valid object name is in failed/ with a reason" \
    grep -q 'object=' "$GATEWAY_DATA_DIR/spool/index/failed/0000000002.000000.junk.reason"
is "$(sql "$PACS_DB" "SELECT count(*) FROM receipts")" $((nbad + 1)) "the good job after them is indexed"

# A job whose object is missing fails; once the object is back (restored
# from a backup, say), --retry-failed queues it again and it is indexed.
"$GW_ROOT/t/tools/gen-mammo" "$T/late" 1 --size 64x48 --studies 1 --seed 22 >"$T/late.list"
h=$(sha256sum "$T/late/mg00000.dcm" | cut -c1-64)
obj=$GATEWAY_DATA_DIR/store/$(echo "$h" | cut -c1-2)/$(echo "$h" | cut -c3-4)/$h.dcm
printf 'object=%s\nreceipt=late\n' "$h" >"$GATEWAY_DATA_DIR/spool/index/new/0000000003.000000.late"
dcmindex --once 2>/dev/null
ok "a job for an absent object is parked in failed/" test -f "$GATEWAY_DATA_DIR/spool/index/failed/0000000003.000000.late"
mkdir -p "${obj%/*}" && cp "$T/late/mg00000.dcm" "$obj"
ok "dcmindex --retry-failed queues failed jobs again" sh -c 'dcmindex --retry-failed 2>/dev/null'
ok "and the next pass indexes it" sh -c 'dcmindex --once 2>/dev/null'
is "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE storage_hash = '$h'")" 1 "the restored object is indexed"

# The corpus' own broken files: each is stored or quarantined, never lost.
if [ -d "$CORPUS" ]; then
	grep -iE 'truncat|bogus|read error|nested|oob' "$SHARED/corpus/MANIFEST.tsv" | cut -f1 >"$T/broken"
	before_q=$(ls "$Q" | grep -vc '\.reason$')
	before_o=$(find "$GATEWAY_DATA_DIR/store" -name '*.dcm' | wc -l)
	while read -r rel; do
		cp "$SHARED/corpus/$rel" "$GATEWAY_DATA_DIR/incoming/" &&
		storescp-hook "$GATEWAY_DATA_DIR/incoming/${rel##*/}" 2>>"$T/hook.log" || echo "$rel" >>"$T/errors2"
	done <"$T/broken"
	ok "the hook handles every broken corpus file ($(wc -l <"$T/broken"))" test ! -s "$T/errors2"
	q=$(( $(ls "$Q" | grep -vc '\.reason$') - before_q ))
	o=$(( $(find "$GATEWAY_DATA_DIR/store" -name '*.dcm' | wc -l) - before_o ))
	is "$((q + o))" "$(wc -l <"$T/broken")" "each is either stored ($o) or quarantined ($q)"
	ok "dcmindex indexes what was stored" dcmindex --once
fi
done_testing
