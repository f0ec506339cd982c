#!/bin/sh
# Duplicates (the same instance twice; the same SOP Instance UID with other
# bytes) and `dcmindex --reindex`, which rebuilds pacs.db from the store.
. "${0%/*}/lib.sh"

export GATEWAY_DATA_DIR=$T/var
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
IN=$GATEWAY_DATA_DIR/incoming
mkdir -p "$IN"
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 8 --size 64x48 --studies 2 --seed 31 >"$T/mg.list"
one=$T/mg/mg00000.dcm
uid=$(sed -n 1p "$T/mg.list" | cut -d' ' -f2)

# hook FILE NAME [MTIME]: deliver FILE as storescp would, as incoming/NAME.
hook() {
	cp "$1" "$IN/$2"
	[ -n "${3:-}" ] && touch -d "$3" "$IN/$2"
	storescp-hook "$IN/$2" MODALITY SCREENING_PACS 127.0.0.1 2>>"$T/hook.log"
}

for f in "$T"/mg/*.dcm; do hook "$f" "first-${f##*/}" "2026-01-01 10:00:00"; done
hook "$one" again.dcm "2026-01-01 11:00:00"
ok "dcmindex indexes the set and the repeat" dcmindex --once
is "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE sop_instance_uid = '$uid'")" 1 \
    "the same instance twice is one instance"
is "$(sql "$PACS_DB" "SELECT count(*) FROM objects WHERE sop_instance_uid = '$uid'")" 1 "and one object"
is "$(sql "$PACS_DB" "SELECT count(*) FROM receipts r JOIN objects o ON o.hash = r.object_hash WHERE o.sop_instance_uid = '$uid'")" 2 \
    "with two receipts"

# The modality re-sends the instance, corrected: same UID, other bytes.
cp "$one" "$T/corrected.dcm"
dcmodify -nb -m "StudyDescription=Corrected" "$T/corrected.dcm" 2>/dev/null
new=$(sha256sum "$T/corrected.dcm" | cut -d' ' -f1)
hook "$T/corrected.dcm" corrected.dcm "2026-01-01 12:00:00"
# ... and a stale copy, received earlier, shows up late (e.g. from a sweep).
cp "$one" "$T/stale.dcm"
dcmodify -nb -m "StudyDescription=Stale" "$T/stale.dcm" 2>/dev/null
stale=$(sha256sum "$T/stale.dcm" | cut -d' ' -f1)
hook "$T/stale.dcm" stale.dcm "2026-01-01 09:00:00"
ok "dcmindex indexes both" dcmindex --once
is "$(sql "$PACS_DB" "SELECT count(*) FROM objects WHERE sop_instance_uid = '$uid'")" 3 \
    "every version of the instance is kept as an object"
is "$(sql "$PACS_DB" "SELECT storage_hash FROM stored_instances WHERE sop_instance_uid = '$uid'")" "$new" \
    "the most recently received version is current"
is "$(sql "$PACS_DB" "SELECT study_description FROM stored_instances WHERE sop_instance_uid = '$uid'")" "Corrected" \
    "its attributes are the ones shown"
ok "the stale version's object is still in the store" \
    test -f "$GATEWAY_DATA_DIR/store/$(echo "$stale" | cut -c1-2)/$(echo "$stale" | cut -c3-4)/$stale.dcm"
is "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances")" 8 "still eight instances"

# Rebuild from the store alone.
sql "$PACS_DB" "SELECT sop_instance_uid, storage_hash, study_instance_uid, patient_name, accession_number, rows FROM stored_instances ORDER BY 1" >"$T/before"
is "$(sql "$PACS_DB" "SELECT count(*) FROM objects")" 10 "ten objects before the rebuild"
ok "dcmindex --reindex succeeds" dcmindex --reindex
sql "$PACS_DB" "SELECT sop_instance_uid, storage_hash, study_instance_uid, patient_name, accession_number, rows FROM stored_instances ORDER BY 1" >"$T/after"
ok "the rebuilt stored_instances equals the old one" cmp "$T/before" "$T/after"
is "$(sql "$PACS_DB" "SELECT count(*) FROM objects")" 10 "every object is back"
is "$(sql "$PACS_DB" "PRAGMA user_version")" \
    "$(sed -n 's/^-- version: //p' "$GW_ROOT/sql/pacs.sql" | tail -n 1)" \
    "the rebuilt database has the current schema"
ok "no temporary database is left" sh -c "! ls '$GATEWAY_DATA_DIR' | grep -q reindex"
is "$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE upload_status = 'HELD'")" 8 \
    "every rebuilt instance is HELD (what the cloud has is not known): kept, resend --held sends it"
# A damaged object is reported, not indexed.
f=$(find "$GATEWAY_DATA_DIR/store" -name "$stale.dcm")
chmod u+w "$f"; printf 'x' >>"$f"
ok "--reindex with a damaged object still succeeds" dcmindex --reindex
is "$(sql "$PACS_DB" "SELECT count(*) FROM objects")" 9 "the damaged object is left out"
ok "and the reason is logged" sh -c "dcmindex --reindex 2>&1 | grep -q 'hashes to'"
done_testing
