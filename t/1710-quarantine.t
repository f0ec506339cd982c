#!/bin/sh
# 1710-quarantine: a quarantine an operator can handle (issue 20).  Files
# are named by SOP Instance UID, each with a record of why, who sent it
# and what it is; gatewayctl quarantine lists them; release takes one
# through the normal path again (with its original sender, the allow-lists
# as they are now); delete asks first.  Under the running gateway, the
# record carries the sender storescp-front saw.
. "${0%/*}/lib.sh"

export GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$T/var
IN=$GATEWAY_DATA_DIR/incoming
Q=$GATEWAY_DATA_DIR/quarantine
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
dcmindex --init 2>/dev/null
mkdir -p "$IN" "$T/in"
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 3 --size 64x48 --studies 1 --seed 31 >"$T/mg.list"
good=$T/mg/mg00000.dcm
GOOD_UID=$(dcm_value "$good" 0008,0018)
"$GW_ROOT/t/tools/dcm-bad-uid" "$T/mg/mg00001.dcm" "$T/in/bad-uid.dcm"
instances() { sql "$PACS_DB" 'SELECT count(*) FROM instances' 2>/dev/null; }
entries() { find "$Q" -type f ! -name '*.reason' 2>/dev/null | wc -l | tr -d ' '; }
ctl() { gatewayctl "$@" 2>>"$T/ctl.err"; }

ok "an empty quarantine says so" sh -c "gatewayctl quarantine | grep -q '^quarantine: empty'"

# Three entries: a refused sender, an invalid UID, not DICOM at all.
export PACS_ALLOWED_AETS=MAMMO1
cp "$good" "$IN/a"
storescp-hook "$IN/a" INTRUDER SCREENING_PACS 192.0.2.7 2>>"$T/hook.log"
cp "$T/in/bad-uid.dcm" "$IN/b"
storescp-hook "$IN/b" MAMMO1 SCREENING_PACS 192.0.2.8 2>>"$T/hook.log"
printf 'not DICOM\n' >"$IN/c"
storescp-hook "$IN/c" MAMMO1 SCREENING_PACS 192.0.2.8 2>>"$T/hook.log"
is "$(entries)" 3 "three files are in quarantine"

ctl quarantine >"$T/list.out"
is "$?" 0 "gatewayctl quarantine lists them"
ok "... each by its name, which is its SOP Instance UID" \
    sh -c "grep -q '^$GOOD_UID.dcm ' '$T/list.out' && grep -q '^1.2.826.0.1.3680043.10.bad_uid.dcm ' '$T/list.out'"
ok "... with when and from whom it came" grep -q "^$GOOD_UID.dcm  (.*, received 20.* from INTRUDER at 192.0.2.7)" "$T/list.out"
ok "... and why" grep -q '^  reason: calling AE title "INTRUDER" is not in PACS_ALLOWED_AETS$' "$T/list.out"
ok "... the invalid UID's reason names it" \
    grep -q '^  reason: invalid SOP Instance UID "1.2.826.0.1.3680043.10.bad_uid": characters other than digits and dots' "$T/list.out"
ok "... with its study and accession number" grep -q "^  study $(dcm_value "$good" 0020,000D), accession $(dcm_value "$good" 0008,0050)$" "$T/list.out"
ok "... and a count" grep -q '^3 files in quarantine' "$T/list.out"
ok "gatewayd quarantine is the same list" sh -c "sh '$GW_ROOT/pipeline/gatewayd' quarantine 2>/dev/null | grep -q '^3 files in quarantine'"

# release: the same checks as at arrival, with the original sender.
ctl quarantine release "$GOOD_UID.dcm" >"$T/rel1.out"
is "$?" 65 "a release whose sender is still not allowed fails (EX_DATAERR)"
ok "... says so" grep -q 'still refused, kept in quarantine: calling AE title "INTRUDER"' "$T/rel1.out"
ok "... and the file stays, its record saying when it was tried" \
    sh -c "test -f '$Q/$GOOD_UID.dcm' && grep -q '^released_at=20' '$Q/$GOOD_UID.dcm.reason'"
export PACS_ALLOWED_AETS=MAMMO1,INTRUDER
ctl quarantine release "$GOOD_UID.dcm" >"$T/rel2.out"
is "$?" 0 "once INTRUDER is allowed, the release stores it"
ok "... it leaves the quarantine, record and all" \
    sh -c "test ! -e '$Q/$GOOD_UID.dcm' && test ! -e '$Q/$GOOD_UID.dcm.reason'"
dcmindex --once 2>/dev/null
is "$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE sop_instance_uid = '$GOOD_UID'")" 1 "... and is indexed"
is "$(sql "$PACS_DB" "SELECT calling_aet || ' ' || peer_address FROM receipts")" "INTRUDER 192.0.2.7" \
    "... as received from its original sender"
ok "... the release is logged" grep -q "msg=\"released from quarantine\" entry=$GOOD_UID.dcm sop_instance_uid=$GOOD_UID" "$T/ctl.err"
ok "the stored object is intact" store_verified "$GATEWAY_DATA_DIR/store"
ctl quarantine release 1.2.826.0.1.3680043.10.bad_uid.dcm >/dev/null
is "$?" 65 "an invalid UID stays invalid: released, it is kept"
is "$(entries)" 2 "... two entries are left"
ctl quarantine release no-such-entry.dcm >/dev/null
is "$?" 66 "releasing an entry that does not exist is EX_NOINPUT"
ctl quarantine release ../pacs.db >/dev/null
is "$?" 64 "... and a path is not an entry (EX_USAGE)"
ctl quarantine release "1.2.826.0.1.3680043.10.bad_uid.dcm.reason" >/dev/null
is "$?" 64 "... nor is a record"

# delete: asks first.
c=$(basename "$(grep -lx 'file=c' "$Q"/*.reason)" .reason)
echo n | ctl quarantine delete "$c" >/dev/null
is "$?" 77 "delete answered no deletes nothing (EX_NOPERM)"
ok "... the entry is still there" test -f "$Q/$c"
ctl quarantine delete "$c" </dev/null >/dev/null
is "$?" 77 "... nor does delete with no answer"
echo y | ctl quarantine delete "$c" >"$T/del.out"
is "$?" 0 "delete answered yes deletes"
ok "... the file and its record" sh -c "test ! -e '$Q/$c' && test ! -e '$Q/$c.reason'"
ok "... logged" grep -q "msg=\"deleted from quarantine\" entry=$c reason=" "$T/ctl.err"
ctl quarantine delete --yes 1.2.826.0.1.3680043.10.bad_uid.dcm </dev/null >/dev/null
is "$?" 0 "delete --yes does not ask"
is "$(entries)" 0 "the quarantine is empty"
unset PACS_ALLOWED_AETS

# Under the gateway: the record has the sender storescp-front saw.
rm -rf "$T/var"
start_gateway
storescu -aet MAMMO1 -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$T/in/bad-uid.dcm" >"$T/storescu.out" 2>&1
wait_for 20 "a file with an invalid UID sent by storescu is quarantined" sh -c "[ \$(find '$Q' -name '*.reason' | wc -l) = 1 ]"
ok "... its record names the calling and called AE titles and the peer" sh -c "
    grep -qx 'calling_aet=MAMMO1' '$Q'/*.reason && grep -qx 'called_aet=SCREENING_PACS' '$Q'/*.reason &&
    grep -qx 'peer=127.0.0.1' '$Q'/*.reason"
ok "... and the hook's log line says where it went" \
    grep -q 'prog=storescp-hook msg=quarantined file=.* entry=1.2.826.0.1.3680043.10.bad_uid.dcm calling_aet=MAMMO1 peer=127.0.0.1 reason=' "$T/gatewayd.log"
stop_gateway
done_testing
