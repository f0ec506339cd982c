#!/bin/sh
# dcmindex --verify: a flipped byte and a deleted file are both reported
# (log, verify_failures), nothing else is, and no object is changed; a
# purged object's missing file is expected.  dcmindex --backup: an online
# copy of pacs.db, the newest PACS_DB_BACKUPS kept.
. "${0%/*}/lib.sh"

export GATEWAY_DATA_DIR=$T/var
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
STORE=$GATEWAY_DATA_DIR/store
mkdir -p "$GATEWAY_DATA_DIR/incoming"
"$GW_ROOT/t/tools/gen-mammo" "$GATEWAY_DATA_DIR/incoming" 8 --size 64x48 --studies 2 --seed 72 >/dev/null
storescp-hook --sweep 2>/dev/null && dcmindex --once 2>/dev/null
is "$(sql "$PACS_DB" 'SELECT count(*) FROM objects')" 8 "eight objects are indexed"
export PACS_VERIFY_MAX_MB_PER_SECOND=0

ok "--verify on a good store succeeds" sh -c 'dcmindex --verify 2>"$0/v0.log"' "$T"
ok "and logs what it checked" grep -q 'msg=verified objects=8 .* missing=0 mismatch=0' "$T/v0.log"
is "$(sql "$PACS_DB" 'SELECT count(*) FROM verify_failures')" 0 "verify_failures is empty"

path_of() { echo "$STORE/$(sql "$PACS_DB" "SELECT storage_path FROM objects ORDER BY hash LIMIT 1 OFFSET $1")"; }
hash_of() { sql "$PACS_DB" "SELECT hash FROM objects ORDER BY hash LIMIT 1 OFFSET $1"; }
flipped=$(path_of 1) deleted=$(path_of 4) purged=$(path_of 6)
# Flip one byte in the middle of object 1; delete object 4's file; object 6
# was purged by dcmpurge (row marked, file gone): that is not a failure.
/usr/bin/python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[len(b)//2]^=1; open(p,"wb").write(b)' "$flipped"
cp "$flipped" "$T/flipped.copy"
rm -f "$deleted"
sql "$PACS_DB" "UPDATE instances SET purged_at = '2026-01-01T00:00:00.000Z', upload_status = 'COMPLETE' WHERE object_hash = '$(hash_of 6)'"
rm -f "$purged"
find "$STORE" -type f | sort | xargs sha256sum >"$T/store.before"

not_ok "--verify with two bad objects exits non-zero" sh -c 'dcmindex --verify 2>"$0/v1.log"' "$T"
ok "the log names the changed object as a mismatch" grep -q "object=$(hash_of 1) problem=mismatch" "$T/v1.log"
ok "and the deleted one as missing" grep -q "object=$(hash_of 4) problem=missing" "$T/v1.log"
is "$(grep -c 'verify: object bad' "$T/v1.log")" 2 "nothing else is reported"
is "$(sql "$PACS_DB" 'SELECT object_hash, problem FROM verify_failures ORDER BY object_hash' | tr '\n' ' ')" \
	"$(hash_of 1)|mismatch $(hash_of 4)|missing " "verify_failures lists exactly the two"
ok "the summary counts them" grep -q 'msg=verified objects=7 .* missing=1 mismatch=1' "$T/v1.log"
find "$STORE" -type f | sort | xargs sha256sum >"$T/store.after"
ok "the scrub changed and removed nothing" cmp "$T/store.before" "$T/store.after"
ok "the changed object is left as it was found" cmp "$flipped" "$T/flipped.copy"
is "$(sql "$PACS_DB" 'SELECT objects, failures FROM verify_runs WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1')" \
	"7|2" "verify_runs records the run"

# Repaired (the modality sent it again): the next scrub clears it.
/usr/bin/python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[len(b)//2]^=1; open(p,"wb").write(b)' "$flipped"
dcmindex --verify 2>/dev/null
is "$(sql "$PACS_DB" 'SELECT object_hash FROM verify_failures')" "$(hash_of 4)" \
	"once repaired, only the missing object is still listed"

# A rate limit is honoured: 8 small objects at 1 MB/s still finish.
ok "--verify at PACS_VERIFY_MAX_MB_PER_SECOND=1 finishes" sh -c \
	'PACS_VERIFY_MAX_MB_PER_SECOND=1 dcmindex --verify 2>&1 | grep -q "msg=verified objects=7"'
not_ok "a bad PACS_VERIFY_MAX_MB_PER_SECOND is refused" sh -c \
	'PACS_VERIFY_MAX_MB_PER_SECOND=fast dcmindex --verify 2>"$0/bad.log"' "$T"
ok "naming the variable" grep -q PACS_VERIFY_MAX_MB_PER_SECOND "$T/bad.log"

# Backups.
export PACS_DB_BACKUPS=3
n=0
while [ $n -lt 5 ]; do
	dcmindex --backup 2>>"$T/backup.log" || break
	n=$((n + 1))
done
is "$n" 5 "five backups succeed"
is "$(ls "$GATEWAY_DATA_DIR/backup" | grep -c '^pacs-.*\.db$')" 3 "the newest three are kept"
newest=$(ls "$GATEWAY_DATA_DIR/backup"/pacs-*.db | tail -n 1)
is "$(sql "$newest" 'PRAGMA integrity_check')" ok "a backup is a sound database"
is "$(sql "$newest" 'SELECT count(*) FROM instances')" 8 "with every instance row"
is "$(ls "$GATEWAY_DATA_DIR/backup" | grep -c '\.tmp$')" 0 "no temporary file is left"
# Restore (dcmindex(1)): the copy in place of pacs.db is usable as it is.
cp "$newest" "$T/restored.db"
ok "a restored copy opens and migrates with dcmindex --init" sh -c \
	'PACS_DB_PATH=$0/restored.db dcmindex --init 2>/dev/null' "$T"

# The restore of dcmindex(1): an older backup, then the objects received
# since are handed to the sweep again.
"$GW_ROOT/t/tools/gen-mammo" "$T/later" 2 --size 64x48 --studies 1 --seed 74 >/dev/null
cp "$T"/later/*.dcm "$GATEWAY_DATA_DIR/incoming/"
storescp-hook --sweep 2>/dev/null && dcmindex --once 2>/dev/null
is "$(sql "$PACS_DB" 'SELECT count(*) FROM instances')" 10 "two more images arrive after the backup"
rm -f "$PACS_DB" "$PACS_DB-wal" "$PACS_DB-shm"
cp "$newest" "$PACS_DB"
dcmindex --init 2>/dev/null
is "$(sql "$PACS_DB" 'SELECT count(*) FROM instances')" 8 "the restored backup has the eight it knew"
find "$STORE" -name '*.dcm' | while read -r f; do
	h=$(basename "$f" .dcm)
	[ -n "$(sqlite3 "$PACS_DB" "SELECT 1 FROM objects WHERE hash = '$h'")" ] ||
		ln "$f" "$GATEWAY_DATA_DIR/incoming/"
done
storescp-hook --sweep 2>/dev/null && dcmindex --once 2>/dev/null
is "$(sql "$PACS_DB" 'SELECT count(*) FROM instances')" 10 \
	"the man page's recipe indexes the images received since the backup"
is "$(count_files "$GATEWAY_DATA_DIR/incoming")" 0 "and leaves incoming/ empty"
done_testing
