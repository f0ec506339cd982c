#!/bin/sh
# dcmpurge killed with SIGKILL at many points of a large purge: no held
# row ever points at a missing file, every store file keeps its objects
# row, nothing unconfirmed goes, and the next run finishes the work.
. "${0%/*}/lib.sh"

export GATEWAY_DATA_DIR=$T/var
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
STORE=$GATEWAY_DATA_DIR/store
mkdir -p "$GATEWAY_DATA_DIR/incoming"
N=400
"$GW_ROOT/t/tools/gen-mammo" "$GATEWAY_DATA_DIR/incoming" $N --size 32x24 --studies 40 --seed 71 >/dev/null
storescp-hook --sweep 2>/dev/null && dcmindex --once 2>/dev/null
rm -f "$GATEWAY_DATA_DIR"/spool/relay/new/* "$GATEWAY_DATA_DIR"/spool/thumb/new/*
is "$(sql "$PACS_DB" 'SELECT count(*) FROM instances')" $N "$N instances are indexed"
# Three in four confirmed and old; every fourth still PENDING.
sql "$PACS_DB" "UPDATE instances SET received_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-40 days', '+' || id || ' seconds'),
	upload_status = CASE WHEN id % 4 = 0 THEN 'PENDING' ELSE 'COMPLETE' END"
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
	dcmpurge --once --batch 2 2>>"$T/purge.log" &
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
