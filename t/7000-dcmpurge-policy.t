#!/bin/sh
# dcmpurge's policy: only instances the cloud confirmed, past the
# retention period, named by no spool job, go; --dry-run changes nothing;
# below the low watermark the oldest confirmed go first until free space
# is back above the watermark plus the margin.
. "${0%/*}/lib.sh"

mkdir -p "$T/disk"
mount -t tmpfs -o size=32m tmpfs "$T/disk" 2>/dev/null ||
	skip_all "cannot mount a small tmpfs here (needs root)"
on_exit 'umount "$T/disk" 2>/dev/null'

export GATEWAY_DATA_DIR=$T/disk/var
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
STORE=$GATEWAY_DATA_DIR/store
SPOOL=$GATEWAY_DATA_DIR/spool
mkdir -p "$GATEWAY_DATA_DIR/incoming"
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 12 --size 1024x768 --studies 6 --seed 70 >"$T/mg.list"
cp "$T"/mg/*.dcm "$GATEWAY_DATA_DIR/incoming/"
storescp-hook --sweep 2>/dev/null && dcmindex --once 2>/dev/null
is "$(sql "$PACS_DB" 'SELECT count(*) FROM instances')" 12 "twelve instances are indexed"
# relaysend and dcmthumb have done their part: their spools are empty.
rm -f "$SPOOL"/relay/new/* "$SPOOL"/thumb/new/*

# sop N: the Nth SOP Instance UID of the list (1-based); hash_of SOP.
sop() { sed -n "${1}p" "$T/mg.list" | cut -d' ' -f2; }
hash_of() { sql "$PACS_DB" "SELECT object_hash FROM instances WHERE sop_instance_uid = '$1'"; }
file_of() { h=$(hash_of "$1"); echo "$STORE/$(echo "$h" | cut -c1-2)/$(echo "$h" | cut -c3-4)/$h.dcm"; }
set_row() { sql "$PACS_DB" "UPDATE instances SET upload_status = '$2', received_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-$3 days') WHERE sop_instance_uid = '$1'"; }

# 1, 2: confirmed and 40 days old: they go.  3: confirmed, 10 days old.
# 4-7: PENDING, WAITING, FAILED, UPLOADING, all 40 days old.
# 8: confirmed and old but a relay job still names its object.
# 9 and 10 share a study; 10 is confirmed and old but the cloud asked
# for the study (a requested relay job for 9).  11, 12: confirmed, young.
set_row "$(sop 1)" COMPLETE 40
set_row "$(sop 2)" COMPLETE 41
set_row "$(sop 3)" COMPLETE 10
set_row "$(sop 4)" PENDING 40
set_row "$(sop 5)" WAITING 40
set_row "$(sop 6)" FAILED 40
set_row "$(sop 7)" UPLOADING 40
set_row "$(sop 8)" COMPLETE 40
printf 'object=%s\nkind=image\n' "$(hash_of "$(sop 8)")" >"$SPOOL/relay/new/held8"
study10=$(sed -n 10p "$T/mg.list" | cut -d' ' -f3)
sql "$PACS_DB" "UPDATE series SET study_ref = (SELECT study_ref FROM series se JOIN instances i ON i.series_ref = se.id WHERE i.sop_instance_uid = '$(sop 10)') WHERE id = (SELECT series_ref FROM instances WHERE sop_instance_uid = '$(sop 9)')"
set_row "$(sop 9)" PENDING 40
set_row "$(sop 10)" COMPLETE 40
printf 'object=%s\nkind=image\nrequested=1\npriority=high\nstudy_instance_uid=%s\n' \
	"$(hash_of "$(sop 9)")" "$study10" >"$SPOOL/relay/new/requested9"
set_row "$(sop 11)" COMPLETE 3
set_row "$(sop 12)" COMPLETE 2

snapshot() { sql "$PACS_DB" 'SELECT * FROM instances ORDER BY id' | sha256sum; find "$STORE" -type f | sort; }
snapshot >"$T/before"
export PACS_RETENTION_DAYS=30 PACS_DISK_LOW_WATERMARK=1
ok "--dry-run succeeds" sh -c 'dcmpurge --dry-run >"$0/dry.out" 2>"$0/dry.log"' "$T"
grep '^would purge' "$T/dry.out" | sed 's/.*sop_instance_uid=\([^ ]*\).*/\1/' | sort >"$T/dry.sops"
printf '%s\n%s\n' "$(sop 1)" "$(sop 2)" | sort >"$T/want.sops"
ok "--dry-run names exactly the two confirmed instances past 30 days" cmp "$T/dry.sops" "$T/want.sops"
ok "and says why (age) and that each file would go" sh -c \
	'[ "$(grep -c "reason=age file=removed" "$0/dry.out")" = 2 ]' "$T"
snapshot >"$T/after-dry"
ok "--dry-run changed neither pacs.db nor the store" cmp "$T/before" "$T/after-dry"

ok "dcmpurge --once succeeds" sh -c 'dcmpurge --once 2>"$0/once.log"' "$T"
ok "the files of 1 and 2 are gone" sh -c "[ ! -e '$(file_of "$(sop 1)")' ] && [ ! -e '$(file_of "$(sop 2)")' ]"
kept=0
for n in 3 4 5 6 7 8 9 10 11 12; do [ -f "$(file_of "$(sop $n)")" ] && kept=$((kept + 1)); done
is "$kept" 10 "young, unconfirmed, spooled and requested instances keep their files"
is "$(sql "$PACS_DB" 'SELECT count(*) FROM instances WHERE purged_at IS NOT NULL')" 2 \
	"exactly two rows say purged"
is "$(sql "$PACS_DB" "SELECT image_location FROM stored_instances WHERE sop_instance_uid = '$(sop 1)'")" cloud \
	"stored_instances still lists a purged instance, with where its image went"
is "$(sql "$PACS_DB" 'SELECT count(*) FROM stored_instances')" 12 "every instance is still listed"
is "$(sql "$PACS_DB" 'SELECT count(*) FROM purge_pending')" 0 "no half-done work is left"
ok "the log counts instances and bytes freed" grep -q 'msg="purge round" instances=2 objects=2 bytes=3147' "$T/once.log"
names=$(sql "$PACS_DB" "SELECT patient_name || char(10) || patient_id FROM patients" | grep -v '^$')
leak=0
for v in $names; do grep -qF -- "$v" "$T/once.log" "$T/dry.log" "$T/dry.out" && leak=1; done
is "$leak" 0 "no patient name or Patient ID in the output or logs"
ok "a second round has nothing to do" sh -c 'dcmpurge --once 2>&1 | grep -q "instances=0 objects=0"'

# The held jobs are done: 8 and 10 go on the next round.
rm -f "$SPOOL/relay/new/held8" "$SPOOL/relay/new/requested9"
dcmpurge --once 2>/dev/null
ok "once the spool no longer names them, 8 and 10 go too" sh -c \
	"[ ! -e '$(file_of "$(sop 8)")' ] && [ ! -e '$(file_of "$(sop 10)")' ]"

# The watermark: 3, 11 and 12 are confirmed but young.  Fill the disk to
# about 12 % free; with a 15 % watermark the oldest confirmed (3, then
# 11) go until at least 20 % is free; 12 may stay, the rest must.
read -r total avail <<EOF
$(df -Pk "$T/disk" | awk 'NR == 2 { print $2, $4 }')
EOF
fill=$((avail - total * 12 / 100))
dd if=/dev/zero of="$T/disk/filler" bs=1k count="$fill" 2>/dev/null
export PACS_DISK_LOW_WATERMARK=15
ok "below the watermark --dry-run names the oldest confirmed first" sh -c \
	'dcmpurge --dry-run 2>/dev/null | grep "^would purge" | head -n 1 | grep -q "sop_instance_uid=$1 .*reason=watermark"' \
	sh "$(sop 3)"
ok "below the watermark dcmpurge --once succeeds" sh -c 'dcmpurge --once 2>"$0/wm.log"' "$T"
ok "the log says the watermark path ran" grep -q 'watermark=1' "$T/wm.log"
free_pct=$(df -Pk "$T/disk" | awk 'NR == 2 { printf "%d", 100 * $4 / $2 }')
ok "free space is back to at least 20 % ($free_pct %)" test "$free_pct" -ge 20
ok "the oldest confirmed (3) went first" sh -c "[ ! -e '$(file_of "$(sop 3)")' ]"
ok "the youngest confirmed (12) was not needed and stays" test -f "$(file_of "$(sop 12)")"
kept=0
for n in 4 5 6 7 9; do [ -f "$(file_of "$(sop $n)")" ] && kept=$((kept + 1)); done
is "$kept" 5 "the watermark never takes anything unconfirmed"
rm -f "$T/disk/filler"

# A purged image the modality sends again is in the store again: its row
# is no longer purged, and the next round keeps it while it is young.
cp "$(grep " $(sop 1) " "$T/mg.list" | cut -d' ' -f1)" "$GATEWAY_DATA_DIR/incoming/again.dcm"
storescp-hook --sweep 2>/dev/null && dcmindex --once 2>/dev/null
is "$(sql "$PACS_DB" "SELECT purged_at IS NULL FROM instances WHERE sop_instance_uid = '$(sop 1)'")" 1 \
	"a purged image received again is no longer purged"
ok "... its file is in the store" test -f "$(file_of "$(sop 1)")"
is "$(sql "$PACS_DB" "SELECT image_location FROM stored_instances WHERE sop_instance_uid = '$(sop 1)'")" store \
	"... and stored_instances says so"
dcmpurge --once 2>/dev/null
ok "... and a round keeps it (young again)" test -f "$(file_of "$(sop 1)")"
done_testing
