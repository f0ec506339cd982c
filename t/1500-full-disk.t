#!/bin/sh
# A full disk: the hook and the indexer fail loudly and leave every file
# and job where it was; once space is back, everything is indexed.
. "${0%/*}/lib.sh"

mkdir -p "$T/disk"
mount -t tmpfs -o size=4m tmpfs "$T/disk" 2>/dev/null ||
	skip_all "cannot mount a small tmpfs here (needs root)"
on_exit 'umount "$T/disk" 2>/dev/null'

export GATEWAY_DATA_DIR=$T/disk/var
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
IN=$GATEWAY_DATA_DIR/incoming
mkdir -p "$IN"
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 6 --size 64x48 --studies 2 --seed 41 >"$T/mg.list"
cut -d' ' -f2 "$T/mg.list" | sort >"$T/want"

# Three arrive and are indexed while there is room.
for f in $(ls "$T"/mg/*.dcm | head -n 3); do cp "$f" "$IN/"; done
ok "with room, the sweep stores three files" sh -c 'storescp-hook --sweep 2>/dev/null'
ok "and dcmindex indexes them" sh -c 'dcmindex --once 2>/dev/null'

# Two more are hooked (their index jobs wait), then the disk fills up
# and one more arrives.
for f in $(ls "$T"/mg/*.dcm | sed -n 4,5p); do cp "$f" "$IN/"; done
ok "two more files are stored and queued" sh -c 'storescp-hook --sweep 2>/dev/null'
last=$(ls "$T"/mg/*.dcm | tail -n 1)
cp "$last" "$IN/"
dd if=/dev/zero of="$T/disk/filler" bs=4k 2>/dev/null
not_ok "on a full disk the sweep reports failure" sh -c 'storescp-hook --sweep 2>"$0/hook.log"' "$T"
ok "the error says the disk is full" grep -q 'No space left' "$T/hook.log"
ok "the file it could not store is still in incoming/, intact" cmp "$last" "$IN/${last##*/}"
not_ok "on a full disk dcmindex reports failure" sh -c 'dcmindex --once 2>"$0/index.log"' "$T"
is "$(count_files "$GATEWAY_DATA_DIR/spool/index/new")" 2 "both index jobs are still waiting"
is "$(count_files "$GATEWAY_DATA_DIR/spool/index/cur")" 0 "none is left claimed"
is "$(ls "$GATEWAY_DATA_DIR/quarantine" 2>/dev/null | wc -l)" 0 "nothing good is quarantined for lack of space"

# Space comes back: the next sweep and index pass finish the work.
rm -f "$T/disk/filler"
ok "after space is freed the sweep succeeds" sh -c 'storescp-hook --sweep 2>/dev/null'
ok "and dcmindex indexes the rest" sh -c 'dcmindex --once 2>/dev/null'
is "$(count_files "$IN")" 0 "incoming/ is empty"
sql "$PACS_DB" "SELECT sop_instance_uid FROM stored_instances" | sort >"$T/got"
ok "all six instances are indexed" cmp "$T/want" "$T/got"
ok "every object's SHA-256 equals its name" store_verified "$GATEWAY_DATA_DIR/store"
done_testing
