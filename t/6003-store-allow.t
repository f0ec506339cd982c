#!/bin/sh
# 6003-store-allow: who may store (issue 12): PACS_ALLOWED_AETS and
# PACS_ALLOWED_HOSTS.  storescp cannot refuse by calling AE title or
# address, so the hook quarantines what anyone else sends, with the
# reason, and it is never indexed or queued for the cloud.
. "${0%/*}/lib.sh"

CT=$PYDICOM_FILES/CT_small.dcm
MR=$PYDICOM_FILES/MR_small.dcm
instances() { sql "$PACS_DB" 'SELECT count(*) FROM instances' 2>/dev/null; }
quarantined() { find "$GATEWAY_DATA_DIR/quarantine" -name '*.reason' 2>/dev/null | wc -l | tr -d ' '; }

export PACS_ALLOWED_AETS="MAMMO1, MAMMO2"
start_gateway
ok "storescu as MAMMO2 (on the list) stores" storescu -aet MAMMO2 -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$CT"
wait_for 30 "... and it is indexed" sh -c "[ \"\$(sqlite3 '$PACS_DB' 'SELECT count(*) FROM instances')\" = 1 ]"
storescu -aet INTRUDER -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$MR"
wait_for 30 "a file from a calling AE off the list is quarantined" sh -c "[ \$(find '$GATEWAY_DATA_DIR/quarantine' -name '*.reason' | wc -l) = 1 ]"
ok "... with the reason, the AE and the peer" sh -c "grep -q 'reason=calling AE title \"INTRUDER\" is not in PACS_ALLOWED_AETS' $GATEWAY_DATA_DIR/quarantine/*.reason &&
    grep -q '^peer=127.0.0.1' $GATEWAY_DATA_DIR/quarantine/*.reason"
is "$(instances)" 1 "... and it was not indexed"
ok "... nor queued for the cloud" sh -c "! grep -rqs 'MR_small\|1.3.6.1.4.1.5962.1.1.4.1.1' '$GATEWAY_DATA_DIR/spool/relay' '$GATEWAY_DATA_DIR/spool/index'"
ok "... the refusal is logged" grep -q 'msg=quarantined.*calling_aet=INTRUDER' "$T/gatewayd.log"
stop_gateway

# By address: loopback is not 10.0.0.0/8.
unset PACS_ALLOWED_AETS
rm -rf "$T/var"
export PACS_ALLOWED_HOSTS="10.0.0.0/8,fd00::/8"
GW_PORT=$(free_port)
start_gateway
storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$CT"
wait_for 30 "a file from an address off PACS_ALLOWED_HOSTS is quarantined" sh -c "[ \$(find '$GATEWAY_DATA_DIR/quarantine' -name '*.reason' | wc -l) = 1 ]"
ok "... saying which address" grep -q 'reason=peer address 127.0.0.1 is not in PACS_ALLOWED_HOSTS' "$GATEWAY_DATA_DIR"/quarantine/*.reason
is "$(instances)" 0 "... and nothing was indexed"
stop_gateway

rm -rf "$T/var"
export PACS_ALLOWED_HOSTS="10.0.0.0/8, 127.0.0.0/8"
GW_PORT=$(free_port)
start_gateway
ok "an address inside PACS_ALLOWED_HOSTS stores" storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$CT"
wait_for 30 "... and it is indexed" sh -c "[ \"\$(sqlite3 '$PACS_DB' 'SELECT count(*) FROM instances')\" = 1 ]"
is "$(quarantined)" 0 "... with nothing quarantined"
stop_gateway

PACS_ALLOWED_HOSTS=not-an-address storescp-hook --sweep 2>"$T/bad.err"
is "$?" 78 "a bad PACS_ALLOWED_HOSTS stops the hook with EX_CONFIG"
ok "... saying which setting" grep -q 'bad PACS_ALLOWED_HOSTS' "$T/bad.err"
done_testing
