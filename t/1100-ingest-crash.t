#!/bin/sh
# Crash safety: dcmindex SIGKILLed in the middle of a batch, files left in
# incoming/ as if storescp-hook had died, an object linked into the store
# whose index job was never written.  After a restart every instance is
# indexed exactly once and nothing is left behind.
. "${0%/*}/lib.sh"

export GATEWAY_DATA_DIR=$T/var
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
INCOMING=$GATEWAY_DATA_DIR/incoming
mkdir -p "$INCOMING"

"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 240 --size 64x48 --studies 6 --seed 11 >"$T/mg.list"
cut -d' ' -f2 "$T/mg.list" | sort >"$T/want"

# 200 files arrive and are hooked; 40 wait as if the hook never ran.
for f in $(ls "$T"/mg/*.dcm | head -n 200); do cp "$f" "$INCOMING/"; done
ok "the sweep hooks 200 files" storescp-hook --sweep
is "$(count_files "$GATEWAY_DATA_DIR/spool/index/new")" 200 "200 index jobs wait"

# Kill dcmindex once it holds claimed jobs (a batch in progress).
bg dcmindex dcmindex --batch 8
wait_for 30 "dcmindex claims a batch" sh -c "[ \$(ls '$GATEWAY_DATA_DIR/spool/index/cur' | wc -l) -gt 0 ]"
kill -KILL "$BG_PID"
wait "$BG_PID" 2>/dev/null
left=$(count_files "$GATEWAY_DATA_DIR/spool/index/new")
ok "SIGKILL left work undone ($left jobs still new)" test "$left" -gt 0

for f in $(ls "$T"/mg/*.dcm | tail -n 40); do cp "$f" "$INCOMING/"; done
# One more: linked into the store, job never written (hook died in between).
last=$(ls "$INCOMING" | tail -n 1)
h=$(sha256sum "$INCOMING/$last" | cut -d' ' -f1)
mkdir -p "$GATEWAY_DATA_DIR/store/$(echo "$h" | cut -c1-2)/$(echo "$h" | cut -c3-4)"
ln "$INCOMING/$last" "$GATEWAY_DATA_DIR/store/$(echo "$h" | cut -c1-2)/$(echo "$h" | cut -c3-4)/$h.dcm"

# Restart as gatewayd would: sweep, then the indexer recovers cur/.
ok "the sweep after the crash succeeds" storescp-hook --sweep
ok "dcmindex drains the spool after restart" dcmindex --once
is "$(count_files "$INCOMING")" 0 "nothing is left in incoming/"
ok "nothing is left claimed or waiting" spool_empty index
sql "$PACS_DB" "SELECT sop_instance_uid FROM stored_instances" | sort >"$T/got"
ok "all 240 instances are indexed" cmp "$T/want" "$T/got"
is "$(sql "$PACS_DB" "SELECT count(*) FROM receipts")" 240 "each arrival is recorded once"
is "$(sql "$PACS_DB" "SELECT count(*) FROM objects")" 240 "one object per file"
ok "every object's SHA-256 equals its name" store_verified "$GATEWAY_DATA_DIR/store"
is "$(count_files "$GATEWAY_DATA_DIR/spool/thumb/new")" 240 "every object is queued for a preview once"

# Running everything again changes nothing: the stages are idempotent.
ok "a second sweep and index pass succeed" sh -c 'storescp-hook --sweep && dcmindex --once'
before=$(sql "$PACS_DB" "SELECT group_concat(sop_instance_uid || object_hash || received_at) FROM (SELECT * FROM instances ORDER BY 1)")
job=$(ls "$GATEWAY_DATA_DIR/spool/thumb/new" | head -n 1)
sed -n 's/^object=//p' "$GATEWAY_DATA_DIR/spool/thumb/new/$job" >"$T/obj"
# Replay an index job for an already indexed object.
printf 'object=%s\nreceipt=replay\nreceived_at=2000-01-01T00:00:00.000Z\n' "$(cat "$T/obj")" \
    >"$GATEWAY_DATA_DIR/spool/index/new/0000000000.000000.replay"
ok "a replayed old job is indexed" dcmindex --once
is "$(sql "$PACS_DB" "SELECT group_concat(sop_instance_uid || object_hash || received_at) FROM (SELECT * FROM instances ORDER BY 1)")" \
    "$before" "a replayed job does not change the instances"
done_testing
