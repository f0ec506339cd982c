#!/bin/sh
# Ingest through the whole gateway: storescu -> storescp-front -> storescp -> storescp-hook
# -> store -> dcmindex -> pacs.db, with every storage object pydicom ships
# and generated mammograms (MG For Presentation and For Processing, 16-bit,
# several studies).
. "${0%/*}/lib.sh"

[ -d "$PYDICOM_FILES" ] || skip_all "python3-pydicom's test files are not installed"
start_gateway || { echo "Bail out! gatewayd did not start"; cat "$T/gatewayd.log"; exit 1; }
pass "gatewayd answers C-ECHO on its port"

# Send each pydicom file on its own association with dcmsend, which proposes
# the file's own transfer syntax and never decompresses; remember the SOP
# Instance UID of every file storescp accepted.
: >"$T/sent"
for f in "$PYDICOM_FILES"/*.dcm; do
	# dcmsend may exit 0 when a store failed: read its verdict.
	dcmsend -v -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$f" 2>&1 |
	    grep -q 'Received C-STORE Response (Success)' || continue
	# pydicom, not dcmdump: dcmdump shows some UIDs as UN bytes, and
	# storescp +B acknowledges such files too (it does not parse them).
	uid=$(/usr/bin/python3 -c 'import sys, pydicom
print(pydicom.dcmread(sys.argv[1], stop_before_pixels=True).SOPInstanceUID)' "$f" 2>/dev/null)
	[ -n "$uid" ] && echo "$uid" >>"$T/sent"
done
sent=$(wc -l <"$T/sent")
ok "storescp accepted at least 50 of pydicom's files ($sent)" test "$sent" -ge 50

"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 24 --studies 3 --intent mixed --seed 7 >"$T/mg.list"
ok "storescu sends 24 generated mammograms on one association" \
    storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$T"/mg/*.dcm
cut -d' ' -f2 "$T/mg.list" >>"$T/sent"

all_indexed() {
	spool_empty index && [ "$(count_files "$GATEWAY_DATA_DIR/incoming")" = 0 ] &&
	[ "$(sql "$PACS_DB" "SELECT count(DISTINCT sop_instance_uid) FROM stored_instances")" \
	    -ge "$(sort -u "$T/sent" | wc -l)" ]
}
wait_for 60 "every accepted instance is indexed" all_indexed

sort -u "$T/sent" >"$T/want"
sql "$PACS_DB" "SELECT sop_instance_uid FROM stored_instances" | sort >"$T/got"
ok "stored_instances holds exactly the instances sent" cmp "$T/want" "$T/got"
is "$(sql "$PACS_DB" "SELECT count(*) - count(DISTINCT sop_instance_uid) FROM stored_instances")" 0 \
    "each SOP Instance UID is in stored_instances once"
ok "every object's SHA-256 equals its name" store_verified "$GATEWAY_DATA_DIR/store"
is "$(find "$GATEWAY_DATA_DIR/store" -name '*.dcm' | wc -l)" \
    "$(sql "$PACS_DB" "SELECT count(*) FROM objects")" "the objects table lists every file in the store"
is "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances s WHERE storage_hash IS NULL OR file_size IS NULL OR storage_path NOT LIKE substr(storage_hash,1,2) || '/' || substr(storage_hash,3,2) || '/' || storage_hash || '.dcm'")" 0 \
    "storage_path is ab/cd/<hash>.dcm relative to the store"

# The generated studies: 3 studies of 8 images in 4 series each.
is "$(sql "$PACS_DB" "SELECT group_concat(accession_number || ':' || series_count || ':' || instance_count, ' ') FROM (SELECT * FROM study_summary WHERE accession_number LIKE 'ACC007%' ORDER BY accession_number)")" \
    "ACC007000:4:8 ACC007001:4:8 ACC007002:4:8" "study_summary counts series and instances per study"
is "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE modality = 'MG' AND accession_number LIKE 'ACC007%' AND laterality IN ('L','R') AND view_position IN ('CC','MLO') AND rows = 512 AND columns = 400 AND kvp = 28 AND source_aet = 'STORESCU'")" 24 \
    "mammography attributes and the calling AE are recorded"
is "$(sql "$PACS_DB" "SELECT count(DISTINCT sop_class_uid) FROM stored_instances WHERE accession_number LIKE 'ACC007%'")" 2 \
    "For Presentation and For Processing both arrive"
is "$(sql "$PACS_DB" "SELECT patient_name FROM study_summary WHERE accession_number = 'ACC007000'")" \
    "Ødegård^Åse" "patient names are stored as UTF-8"
is "$(sql "$PACS_DB" "SELECT sum(instance_count) FROM series_summary WHERE study_instance_uid IN (SELECT study_instance_uid FROM studies WHERE accession_number LIKE 'ACC007%')")" 24 \
    "series_summary adds up to the instances"
is "$(sql "$PACS_DB" "SELECT count(*) FROM receipts r JOIN objects o ON o.hash = r.object_hash WHERE r.calling_aet IN ('STORESCU', 'DCMSEND') AND r.called_aet = 'SCREENING_PACS' AND r.peer_address != ''")" \
    "$(sql "$PACS_DB" "SELECT count(*) FROM receipts")" "every receipt records calling AE, called AE and peer"
previews_done() {
	spool_empty thumb &&
	[ "$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE thumbnail_status = 'PENDING'")" = 0 ]
}
wait_for 120 "the preview stage has seen every instance (none PENDING)" previews_done
is "$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE thumbnail_status = 'GENERATED' AND sop_instance_uid IN (SELECT sop_instance_uid FROM stored_instances WHERE accession_number LIKE 'ACC007%')")" 24 \
    "every generated mammogram has a preview"
is "$(count_files "$GATEWAY_DATA_DIR/spool/index/failed")" 0 "no index job failed"

stop_gateway
ok "gatewayd stops on SIGTERM" sh -c "! kill -0 $GATEWAYD_PID"
not_ok "the logs carry no patient name, ID or birth date" \
    grep -E 'Ødegård|Müller|9007000|19600101' "$T/gatewayd.log"
done_testing
