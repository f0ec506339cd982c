#!/bin/sh
# 7060-reindex-from-backup: dcmindex --reindex rebuilds pacs.db from the
# store, and takes from the newest backup what the store cannot give back:
# the rows of instances dcmpurge freed (with their patient, study, series,
# object and receipts; still purged, still COMPLETE) and the Storage
# Commitment tables (claims dropped).  An instance the backup holds but the
# store lost is counted, not invented; a backup that cannot be read (not a
# database, a newer schema) gives way to the next older one; an older
# schema is migrated in a copy; the backup itself is never changed.
. "${0%/*}/lib.sh"

export GATEWAY_DATA_DIR=$T/var GATEWAY_ENV_FILE=/dev/null
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
BACKUPS=$GATEWAY_DATA_DIR/backup
unset CLOUD_API_ENDPOINT AZURE_RELAY_NAMESPACE PACS_DB_BACKUPS
mkdir -p "$GATEWAY_DATA_DIR/incoming"

# ingest SEED COUNT: COUNT generated mammograms of one study, indexed.
ingest() {
	"$GW_ROOT/t/tools/gen-mammo" "$T/mg$1" "$2" --size 64x48 --studies 1 --seed "$1" >/dev/null &&
	cp "$T/mg$1"/*.dcm "$GATEWAY_DATA_DIR/incoming/" &&
	storescp-hook --sweep 2>/dev/null && dcmindex --once 2>/dev/null &&
	dcmthumb --once 2>/dev/null	# its jobs name the objects: dcmpurge waits for them
}
acc() { dcm_value "$(ls "$T/mg$1"/*.dcm | head -n 1)" 0008,0050; }
# confirmed ACCESSION [N]: the study's first N images (all by default)
# uploaded and 40 days old
confirmed() {
	sql "$PACS_DB" "UPDATE instances SET upload_status = 'COMPLETE', uploaded_at = '2026-01-01T00:00:00.000Z', received_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-40 days') WHERE id IN (SELECT i.id FROM instances i JOIN series se ON se.id = i.series_ref JOIN studies st ON st.id = se.study_ref WHERE st.accession_number = '$1' ORDER BY i.sop_instance_uid LIMIT ${2:--1})"
}
rows() { sql "$PACS_DB" "SELECT sop_instance_uid, accession_number, patient_name, study_instance_uid, series_instance_uid, storage_hash, upload_status, image_location, purged_at IS NOT NULL FROM stored_instances ORDER BY 1"; }

ingest 61 3
ingest 62 3
A=$(acc 61) B=$(acc 62)
is "$(sql "$PACS_DB" 'SELECT count(*) FROM instances')" 6 "two studies of three images are indexed"
confirmed "$A"
confirmed "$B" 2
ok "dcmpurge frees what the cloud confirmed" sh -c 'PACS_RETENTION_DAYS=30 dcmpurge --once 2>/dev/null'
is "$(sql "$PACS_DB" 'SELECT count(*) FROM instances WHERE purged_at IS NOT NULL')" 5 \
	"... a whole study and two images of the other: five purged rows"
is "$(find "$GATEWAY_DATA_DIR/store" -name '*.dcm' | wc -l | tr -d ' ')" 1 "... one file is left in the store"

# Two commitment requests, one reported, one pending (claimed by a pid).
sql "$PACS_DB" "INSERT INTO commitment_requests (id, transaction_uid, calling_aet, called_aet, received_at, state, event_type, reported_at) VALUES (1, '1.2.3.76.1', 'MODALITY1', 'SCREENING_QR', '2026-01-01T00:00:00.000Z', 'REPORTED', 1, '2026-01-01T00:00:01.000Z');
INSERT INTO commitment_requests (id, transaction_uid, calling_aet, called_aet, received_at, claimed_by, claimed_until) VALUES (2, '1.2.3.76.2', 'MODALITY1', 'SCREENING_QR', '2026-01-02T00:00:00.000Z', 12345, 9999999999);
INSERT INTO commitment_items SELECT 1, row_number() OVER (ORDER BY sop_instance_uid) - 1, sop_class_uid, sop_instance_uid, NULL FROM instances;
INSERT INTO commitment_items VALUES (2, 0, '1.2.840.10008.5.1.4.1.1.1.2', '1.2.3.4.5.6', NULL)"
ok "dcmindex --backup" sh -c 'dcmindex --backup 2>/dev/null'
rows >"$T/rows.backup"
BACKUP=$(ls "$BACKUPS"/pacs-*.db)
sha256sum "$BACKUP" >"$T/backup.sha"

# After the backup: an image arrives; the last image of study B is freed.
ingest 63 1
C=$(acc 63)
confirmed "$B"
PACS_RETENTION_DAYS=30 dcmpurge --once 2>/dev/null
is "$(find "$GATEWAY_DATA_DIR/store" -name '*.dcm' | wc -l | tr -d ' ')" 1 \
	"later an image arrives and B's last image is freed: one file in the store"

# pacs.db is lost; the store and the backup are left.
rm -f "$PACS_DB" "$PACS_DB-wal" "$PACS_DB-shm"
ok "dcmindex --reindex succeeds" sh -c 'dcmindex --reindex 2>"$0/reindex.log"' "$T"
ok "the backup was not changed" sha256sum -c --quiet "$T/backup.sha"
ok "no temporary database is left" sh -c "! ls '$GATEWAY_DATA_DIR' | grep -q reindex"
is "$(sql "$PACS_DB" 'SELECT count(*) FROM instances')" 6 \
	"the rebuilt index has the store's image and the backup's five purged ones"
rows | grep "|1\$" >"$T/rows.purged"
grep "|1\$" "$T/rows.backup" >"$T/want.purged"
is "$(wc -l <"$T/rows.purged" | tr -d ' ')" 5 "the five purged rows are back"
ok "... as the backup had them: patient, study, series, object, COMPLETE, location cloud" \
	cmp "$T/rows.purged" "$T/want.purged"
is "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE accession_number = '$A' AND image_location = 'cloud'")" 3 \
	"study A, whose files are all gone, is listed again, its images in the cloud"
is "$(sql "$PACS_DB" "SELECT count(*) FROM receipts r JOIN instances i ON i.object_hash = r.object_hash WHERE i.purged_at IS NOT NULL AND r.receipt_key NOT LIKE 'reindex:%'")" 5 \
	"... with their receipts"
is "$(sql "$PACS_DB" "SELECT accession_number || ' ' || upload_status || ' ' || image_location FROM stored_instances WHERE purged_at IS NULL")" \
	"$C HELD store" "the image received after the backup is rebuilt from the store, HELD"
is "$(sql "$PACS_DB" "SELECT count(*) FROM stored_instances WHERE accession_number = '$B'")" 2 \
	"B's image freed after the backup is not invented (the backup held it)"
ok "... and the log counts it" grep -q 'msg="reindex: instances the backup holds are not in the store (purged since the backup, or lost): not recovered" .*instances=1$' "$T/reindex.log"
ok "the log names the backup and what it gave" \
	grep -q "msg=\"reindex: rows taken from the backup\" backup=$BACKUP purged_instances=5 commitment_requests=2\$" "$T/reindex.log"
is "$(sql "$PACS_DB" "SELECT id || ' ' || transaction_uid || ' ' || state || ' ' || coalesce(claimed_by, '-') FROM commitment_requests ORDER BY id" | tr '\n' ',')" \
	"1 1.2.3.76.1 REPORTED -,2 1.2.3.76.2 PENDING -," \
	"the commitment requests are back, the pending one's claim dropped (qrscp reports it again)"
is "$(sql "$PACS_DB" 'SELECT count(*) FROM commitment_items')" 7 "... with their items"
is "$(sql "$PACS_DB" 'PRAGMA foreign_key_check' | wc -l | tr -d ' ')" 0 "every row's references hold"
ok "the scrub expects no file of the purged rows" sh -c 'PACS_VERIFY_MAX_MB_PER_SECOND=0 dcmindex --verify 2>/dev/null'
ok "dcmpurge has nothing to do on the rebuilt index" sh -c 'dcmpurge --once 2>&1 | grep -q "instances=0 objects=0"'

# The newest backup unreadable, the one before it good: that one is used.
dcmindex --backup 2>/dev/null
NEWEST=$(ls "$BACKUPS"/pacs-*.db | tail -n 1)
ok "a second backup is the newest" test "$NEWEST" != "$BACKUP"
echo "not a database" >"$NEWEST"
rm -f "$PACS_DB" "$PACS_DB-wal" "$PACS_DB-shm"
ok "--reindex with the newest backup damaged succeeds" sh -c 'dcmindex --reindex 2>"$0/reindex2.log"' "$T"
ok "... saying the newest is not usable" grep -q "msg=\"reindex: backup not usable\" backup=$NEWEST" "$T/reindex2.log"
ok "... and taking the rows from the one before" grep -q "rows taken from the backup\" backup=$BACKUP purged_instances=5" "$T/reindex2.log"
is "$(sql "$PACS_DB" 'SELECT count(*) FROM instances WHERE purged_at IS NOT NULL')" 5 "... the purged rows are back"

# A backup of a newer schema is not touched.
cp "$BACKUP" "$T/newer.db"
sql "$T/newer.db" 'PRAGMA user_version = 999'
mv "$T/newer.db" "$NEWEST"
rm -f "$PACS_DB" "$PACS_DB-wal" "$PACS_DB-shm"
dcmindex --reindex 2>"$T/reindex3.log"
ok "a backup of a newer schema is passed over, saying why" \
	grep -q "backup not usable\" backup=$NEWEST .*newer than this program" "$T/reindex3.log"

# Every backup unreadable: the index is rebuilt, and the exit says so.
echo "not a database" >"$BACKUP"
rm -f "$PACS_DB" "$PACS_DB-wal" "$PACS_DB-shm"
dcmindex --reindex 2>"$T/reindex4.log"
is "$?" 65 "with no readable backup --reindex exits EX_DATAERR"
ok "... saying what is not recovered" grep -q 'level=error .*msg="reindex: no backup could be read: purged instances and commitment requests are not recovered"' "$T/reindex4.log"
is "$(sql "$PACS_DB" 'SELECT count(*) FROM instances')" 1 "... with the store's image indexed all the same"

# A backup of an older schema (version 7: no upload states yet) is
# migrated in a copy.
rm -f "$BACKUPS"/pacs-*.db
awk '/^-- version: 8/ { exit } { print }' "$GW_ROOT/sql/pacs.sql" >"$T/v7.sql"
sqlite3 "$BACKUPS/pacs-20260101T000000.000000Z.db" <"$T/v7.sql"
sql "$BACKUPS/pacs-20260101T000000.000000Z.db" "PRAGMA user_version = 7;
INSERT INTO commitment_requests (id, transaction_uid, calling_aet, called_aet, received_at) VALUES (1, '1.2.3.76.7', 'MODALITY2', 'SCREENING_QR', '2025-01-01T00:00:00.000Z')"
rm -f "$PACS_DB" "$PACS_DB-wal" "$PACS_DB-shm"
ok "--reindex with a backup of schema version 7" sh -c 'dcmindex --reindex 2>"$0/reindex5.log"' "$T"
is "$(sql "$PACS_DB" 'SELECT transaction_uid FROM commitment_requests')" 1.2.3.76.7 \
	"... takes its commitment request"
is "$(sql "$BACKUPS/pacs-20260101T000000.000000Z.db" 'PRAGMA user_version')" 7 "... and leaves the backup at version 7"

NAME=$(sql "$PACS_DB" "SELECT patient_name FROM patients LIMIT 1")
ok "no patient name in the logs" sh -c "! grep -qF '$NAME' '$T'/reindex*.log"
done_testing
