#!/bin/sh
# 3030-dcmthumb-pipeline: storescu -> gatewayd -> dcmindex -> thumb spool
# -> dcmthumb: a preview for every image, thumbnail_status in pacs.db, a
# study.image_received job in the relay spool; a corrupt image is FAILED
# with its reason and the next one still renders; SIGKILL mid-run loses
# nothing (gatewayd restarts the stage); SIGTERM stops it cleanly.
. "${0%/*}/lib.sh"

[ -x "$GW_BIN/dcmthumb" ] || skip_all "dcmthumb not built"
/usr/bin/python3 -c 'import pydicom' 2>/dev/null || skip_all "no pydicom"

start_gateway || { echo "Bail out! gatewayd did not start"; cat "$T/gatewayd.log"; exit 1; }
pass "gatewayd answers C-ECHO"
THUMBS=$GATEWAY_DATA_DIR/thumbs
RELAY=$GATEWAY_DATA_DIR/spool/relay
THUMB=$GATEWAY_DATA_DIR/spool/thumb

"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 6 --studies 2 --intent mixed --seed 11 >"$T/mg.list"
# A corrupt image: Rows says 4000, the pixel data holds far less.  The
# reader and dcmindex accept it; only rendering can tell.
/usr/bin/python3 - "$T/mg" <<'EOF'
import sys, glob, pydicom
from pydicom.uid import generate_uid
src = sorted(glob.glob(sys.argv[1] + "/*.dcm"))[0]
ds = pydicom.dcmread(src)
ds.SOPInstanceUID = generate_uid()
ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
ds.Rows = 4000
ds.save_as(sys.argv[1] + "/zz-corrupt.dcm")
EOF
corrupt_uid=$(dcm_value "$T/mg/zz-corrupt.dcm" 0008,0018)

ok "storescu sends 6 mammograms and a corrupt image" \
    storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$T"/mg/*.dcm
status_count() {
	sql "$PACS_DB" "SELECT count(*) FROM instances WHERE thumbnail_status = '$1'"
}
settled() { [ "$(status_count GENERATED)" -ge "$1" ] && [ "$(status_count FAILED)" -ge 1 ] && spool_empty thumb; }
wait_for 60 "gatewayd's dcmthumb renders every image that arrives" settled 6
is "$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE thumbnail_status = 'GENERATED'")" 6 \
    "6 instances are GENERATED"
is "$(sql "$PACS_DB" "SELECT thumbnail_status FROM instances WHERE sop_instance_uid = '$corrupt_uid'")" FAILED \
    "the corrupt image is FAILED"
reason=$(sql "$PACS_DB" "SELECT thumbnail_error FROM instances WHERE sop_instance_uid = '$corrupt_uid'")
ok "its reason is recorded ($reason)" test -n "$reason"
is "$(count_files "$THUMB/failed")" 2 "the job went to failed/ with a reason file"

missing=$(sql "$PACS_DB" "SELECT thumbnail_path FROM instances WHERE thumbnail_status = 'GENERATED'" |
    while read -r p; do [ -s "$THUMBS/$p" ] || echo "$p"; done)
is "$missing" "" "every GENERATED instance has its PNG under var/thumbs"
ok "previews are named by the object" sh -c "sql '$PACS_DB' \"SELECT object_hash, thumbnail_path FROM instances WHERE thumbnail_status = 'GENERATED'\" |
    while IFS='|' read -r h p; do [ \"\$p\" = \"\$(echo \$h | cut -c1-2)/\$(echo \$h | cut -c3-4)/\$h.png\" ] || exit 1; done"
big=$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE thumbnail_status = 'GENERATED' AND max(thumbnail_width, thumbnail_height) <> 400")
is "$big" 0 "the longest side is 400"
is "$(count_files "$RELAY/new")" 0 \
    "no study.image_received job: no cloud is configured to send it"
ok "the log carries no patient names" sh -c "! grep -qi 'patient' '$T/gatewayd.log'"

# SIGKILL in the middle of a run, then start again: nothing lost.
"$GW_ROOT/t/tools/gen-mammo" "$T/mg2" 8 --studies 2 --seed 12 >"$T/mg2.list"
ok "storescu sends 8 more" storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$T"/mg2/*.dcm
generated() { [ "$(status_count GENERATED)" -ge "$1" ]; }
wait_until 60 generated 7
stage_pid=$(sed -n 's/^pid=//p' "$GATEWAY_DATA_DIR/run/dcmthumb.state")
kill -KILL "$stage_pid"
diag "killed dcmthumb (pid $stage_pid) after $(status_count GENERATED) previews"
wait_for 60 "gatewayd restarts dcmthumb, which finishes the work" generated 14
is "$(status_count GENERATED)" 14 "all 14 good images are GENERATED after the SIGKILL"
wait_for 10 "nothing is left in the thumb spool" spool_empty thumb

# SIGTERM: the stage stops on its own, exit 0.
stop_gateway
ok "dcmthumb exits 0 on SIGTERM" grep -q 'child stopped.*child=dcmthumb.*status=0' "$T/gatewayd.log"

# With the relay's events configured, each preview's event is queued:
# one image again, by hand, as dcmindex queues it.
row=$(sql "$PACS_DB" "SELECT i.object_hash, i.sop_instance_uid, st.study_instance_uid FROM instances i JOIN series se ON se.id = i.series_ref JOIN studies st ON st.id = se.study_ref WHERE i.thumbnail_status = 'GENERATED' LIMIT 1")
hash=${row%%|*} sop=${row#*|}
study=${sop#*|} sop=${sop%%|*}
printf 'object=%s\nsop_instance_uid=%s\nstudy_instance_uid=%s\naccession_number=A1\nkind=image\n' \
    "$hash" "$sop" "$study" >"$THUMB/tmp/$hash" && mv "$THUMB/tmp/$hash" "$THUMB/new/$hash"
ok "dcmthumb --once with the relay's events on" env AZURE_RELAY_NAMESPACE=relay.test \
    AZURE_RELAY_EVENTS_HYBRID_CONNECTION=events dcmthumb --once
ok "... queues a study.image_received job" grep -q '^kind=study.image_received' "$RELAY/new/image-$hash"
ok "the event names its preview, format and size" sh -c \
    "grep '^thumbnail=' '$RELAY/new/image-$hash' | grep -q '\\.png\$' &&
     grep -q '^format=png' '$RELAY/new/image-$hash' && grep -q '^width=' '$RELAY/new/image-$hash'"
done_testing
