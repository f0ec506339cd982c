#!/bin/sh
# 7050-commit-purge-race: Storage Commitment and retention.  qrscp verifies
# a commitment's instances holding run/store.lock shared, as a retrieval
# does, so a purge batch (which holds it exclusively from marking its rows
# to unlinking their files) that chose an object before the request came
# cannot free it between "verified" and the report: the verification
# waits, then finds the object gone and fails it (0112), never reports a
# freed object committed.  A row retention marked purged holds no object,
# even while its file waits in purge_pending to be unlinked.
# The window is made deterministic by a lock the test holds (playing the
# purge), and qrscp's wait is seen in /proc/locks; no sleeps.
. "${0%/*}/lib.sh"
. "${0%/*}/qr/lib.sh"

command -v node >/dev/null 2>&1 || skip_all "node not installed"
[ -d "$GW_ROOT/node_modules/dcmjs-dimse" ] ||
    skip_all "dcmjs-dimse not installed (npm ci)"
command -v flock >/dev/null 2>&1 || skip_all "flock(1) not installed"
[ -r /proc/locks ] || skip_all "no /proc/locks"

qr_data
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 3 --size 64x48 --studies 1 --seed 75 >/dev/null
ok "three mammograms are stored and indexed" qr_fill "$T"/mg/*.dcm
sql "$PACS_DB" "SELECT sop_class_uid || ':' || sop_instance_uid FROM instances ORDER BY sop_instance_uid" >"$T/refs"
set -- $(cat "$T/refs")
REF1=$1 REF2=$2 REF3=$3
is "$#" 3 "... three references to commit"

QR_PORT=$(free_port)
qr_start qrscp "$QR_PORT"
LOCK=$GATEWAY_DATA_DIR/run/store.lock
: >>"$LOCK"
INODE=$(stat -c %i "$LOCK")

# waiting_on_lock: some process waits for a lock on run/store.lock (a
# blocked request is a "->" line of /proc/locks naming its inode).
waiting_on_lock() {
	grep -- '->' /proc/locks | grep -q ":$INODE "
}
file_of() {
	echo "$GATEWAY_DATA_DIR/store/$(sql "$PACS_DB" "SELECT storage_path FROM stored_instances WHERE sop_instance_uid = '${1#*:}'")"
}
# purge_mark REF: what dcmpurge does under the exclusive lock before it
# unlinks: purged_at set, the object listed in purge_pending.
purge_mark() {
	sql "$PACS_DB" "UPDATE instances SET purged_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), upload_status = 'COMPLETE' WHERE sop_instance_uid = '${1#*:}';
	    INSERT INTO purge_pending (object_hash, marked_at) SELECT object_hash, 'now' FROM instances WHERE sop_instance_uid = '${1#*:}'"
}

# 1. A purge batch holds the store lock (it chose REF1 before the request
# was recorded); the commitment for REF1 and REF2 arrives meanwhile.
mkfifo "$T/release"
bg holder flock -x "$LOCK" sh -c 'echo held; read x <"$0"' "$T/release"
HOLDER=$BG_PID
wait_for 10 "the test holds the store lock exclusively, as a purge batch does" grep -qx held "$T/holder.out"
commit_request MODALITY1 1.2.826.0.1.3680043.9.7.75.1 wait "$REF1" "$REF2" >"$T/r1" &
REQ=$!
pending() {
	[ "$(sql "$PACS_DB" "SELECT state FROM commitment_requests WHERE transaction_uid = '1.2.826.0.1.3680043.9.7.75.1'")" = PENDING ]
}
wait_for 20 "the commitment request is recorded (pending) before it is answered" pending
wait_for 20 "qrscp waits for the store lock before it verifies" waiting_on_lock
F1=$(file_of "$REF1")
purge_mark "$REF1"
rm -f "$F1"
sql "$PACS_DB" "DELETE FROM purge_pending"
echo go >"$T/release"
wait "$REQ"
is "$(sed -n 's/^status=//p' "$T/r1")" 0x0000 "the N-ACTION was answered success"
is "$(grep '^report' "$T/r1")" "report event=2 tx=1.2.826.0.1.3680043.9.7.75.1 committed=1 failed=1" \
    "the report, made once the purge let go of the store, commits one and fails one"
is "$(sed -n 's/^failed [^ ]* \([^ ]*\) \(.*\)/\1 \2/p' "$T/r1")" "${REF1#*:} 0x0112" \
    "the instance the purge freed fails with 0112 (no such object): it is never reported committed"
is "$(sed -n 's/^committed [^ ]* //p' "$T/r1")" "${REF2#*:}" "the other is committed"
ok "... and its file is in the store" test -f "$(file_of "$REF2")"
is "$(sql "$PACS_DB" "SELECT state FROM commitment_requests WHERE transaction_uid = '1.2.826.0.1.3680043.9.7.75.1'")" \
    REPORTED "the request is recorded as reported"

# 2. A purge killed between its mark and its unlink: REF2's row says
# purged and purge_pending lists its object; the file is still there.
purge_mark "$REF2"
ok "the file of an instance marked purged is still there (its unlink is pending)" test -f "$(file_of "$REF2")"
commit_request MODALITY1 1.2.826.0.1.3680043.9.7.75.2 wait "$REF2" "$REF3" >"$T/r2"
is "$(grep '^report' "$T/r2")" "report event=2 tx=1.2.826.0.1.3680043.9.7.75.2 committed=1 failed=1" \
    "a commitment for it and another commits only the other"
is "$(sed -n 's/^failed [^ ]* \([^ ]*\) \(.*\)/\1 \2/p' "$T/r2")" "${REF2#*:} 0x0112" \
    "an instance retention marked purged fails with 0112, though its file is not unlinked yet"

# 3. Nothing else holds the lock: qrscp takes and leaves it per request.
kill -0 "$HOLDER" 2>/dev/null && kill "$HOLDER"
ok "qrscp holds no lock on the store between requests" \
    flock -x -n "$LOCK" true
ok "qrscp is still serving" port_open "$QR_PORT"
done_testing
