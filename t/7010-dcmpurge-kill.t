#!/bin/sh
# dcmpurge killed with SIGKILL at many points of a large purge: no held
# row ever points at a missing file, every store file keeps its objects
# row, nothing unconfirmed goes, and the next run finishes the work.
. "${0%/*}/lib.sh"

export GATEWAY_DATA_DIR=$T/var
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
STORE=$GATEWAY_DATA_DIR/store
N=3000
# The index and store made directly (dcmpurge reads only rows and file
# names): N instances, each its own small object file, received 40 days
# ago; three in four confirmed, every fourth still PENDING.
dcmindex --init 2>/dev/null
/usr/bin/python3 - "$GATEWAY_DATA_DIR" $N <<'EOF'
import hashlib, os, sqlite3, sys
data, n = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(os.path.join(data, "pacs.db"))
db.execute("INSERT INTO patients (patient_id, patient_name) VALUES ('P7010', 'KILL^TEST')")
db.execute("INSERT INTO studies (id, study_instance_uid, patient_ref) VALUES (1, '2.25.7010', 1)")
db.execute("INSERT INTO series (id, series_instance_uid, study_ref) VALUES (1, '2.25.7010.1', 1)")
for i in range(n):
    body = b"object %d\n" % i
    h = hashlib.sha256(body).hexdigest()
    d = os.path.join(data, "store", h[:2], h[2:4])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, h + ".dcm"), "wb") as f:
        f.write(body)
    when = "2026-01-01T00:%02d:%02d.000Z" % (i // 60 % 60, i % 60)
    db.execute("INSERT INTO objects (hash, size, storage_path, sop_instance_uid, first_received_at)"
               " VALUES (?, ?, ?, ?, ?)", (h, len(body), "%s/%s/%s.dcm" % (h[:2], h[2:4], h), "2.25.70.%d" % i, when))
    db.execute("INSERT INTO instances (id, sop_instance_uid, series_ref, object_hash, received_at, indexed_at, upload_status)"
               " VALUES (?, ?, 1, ?, ?, ?, ?)", (i + 1, "2.25.70.%d" % i, h, when, when,
               "PENDING" if (i + 1) % 4 == 0 else "COMPLETE"))
db.commit()
EOF
is "$(sql "$PACS_DB" 'SELECT count(*) FROM instances')" $N "$N instances are indexed"
sql "$PACS_DB" "SELECT hash FROM objects o WHERE EXISTS (SELECT 1 FROM instances i WHERE i.object_hash = o.hash AND upload_status = 'PENDING')" |
	sort >"$T/pending.hashes"

# invariants: prints what is wrong, exits 1 when anything is.
invariants() {
	bad=0
	sql "$PACS_DB" "SELECT DISTINCT o.storage_path FROM instances i JOIN objects o ON o.hash = i.object_hash WHERE i.purged_at IS NULL" |
	while read -r p; do
		[ -f "$STORE/$p" ] || { echo "held row, missing file $p"; exit 1; }
	done || bad=1
	find "$STORE" -name '*.dcm' -type f | sed 's|.*/||; s|\.dcm$||' | sort >"$T/files"
	sql "$PACS_DB" "SELECT hash FROM objects" | sort >"$T/rows"
	[ -z "$(comm -23 "$T/files" "$T/rows")" ] || { echo "store file without an objects row"; bad=1; }
	[ -z "$(comm -23 "$T/pending.hashes" "$T/files")" ] || { echo "an unconfirmed object is gone"; bad=1; }
	[ "$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE purged_at IS NOT NULL AND upload_status != 'COMPLETE'")" = 0 ] ||
		{ echo "an unconfirmed row is marked purged"; bad=1; }
	return $bad
}

kills=0 broken=0 i=0
while [ $i -lt 30 ]; do
	i=$((i + 1))
	left=$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE purged_at IS NULL AND upload_status = 'COMPLETE'")
	[ "$left" = 0 ] && break
	dcmpurge --once --batch 3 2>>"$T/purge.log" &
	pid=$!
	# A random moment within the run: 0 to 0.3 s.
	sleep "0.$(shuf -i 0-30 -n 1 | awk '{ printf "%02d", $1 }')"
	if kill -KILL "$pid" 2>/dev/null; then
		kills=$((kills + 1))
	fi
	wait "$pid" 2>/dev/null
	invariants >>"$T/broken" || broken=$((broken + 1))
done
diag "$kills kills in $i runs; $(sql "$PACS_DB" 'SELECT count(*) FROM purge_pending') objects half-done at the end"
ok "dcmpurge was killed mid-run at least five times" test "$kills" -ge 5
is "$broken" 0 "after every kill the invariants hold$(head -n 1 "$T/broken" | sed 's/^/: /')"
ok "a run to the end succeeds" sh -c 'dcmpurge --once 2>>"$0/purge.log"' "$T"
ok "and the invariants hold" invariants
is "$(sql "$PACS_DB" 'SELECT count(*) FROM purge_pending')" 0 "no half-done work is left"
is "$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE purged_at IS NOT NULL")" $((N - N / 4)) \
	"every confirmed instance is purged"
gone=0
sql "$PACS_DB" "SELECT o.storage_path FROM instances i JOIN objects o ON o.hash = i.object_hash WHERE i.purged_at IS NOT NULL" >"$T/purged.paths"
while read -r p; do [ -e "$STORE/$p" ] || gone=$((gone + 1)); done <"$T/purged.paths"
is "$gone" $((N - N / 4)) "and every purged instance's file is gone (half-done unlinks finished)"
is "$(find "$STORE" -name '*.dcm' -type f | wc -l | tr -d ' ')" $((N / 4)) "only the unconfirmed objects remain"
ok "nothing but the expected errors in the log" sh -c '! grep -v "level=info" "$0/purge.log" | grep -q .' "$T"
done_testing
