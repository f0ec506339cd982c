#!/bin/sh
# 6003-store-allow: who may store (issue 12, issue 19): PACS_ALLOWED_AETS
# and PACS_ALLOWED_HOSTS.  storescp-front refuses anyone else at the
# association (t/1700); storescp-hook applies the same rule again to a
# file that comes another way, and quarantines it with the reason: never
# indexed or queued for the cloud.  A bad list stops both programs.
. "${0%/*}/lib.sh"

CT=$PYDICOM_FILES/CT_small.dcm
MR=$PYDICOM_FILES/MR_small.dcm
export GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$T/var
IN=$GATEWAY_DATA_DIR/incoming
Q=$GATEWAY_DATA_DIR/quarantine
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
dcmindex --init 2>/dev/null
mkdir -p "$IN"
instances() { sql "$PACS_DB" 'SELECT count(*) FROM instances' 2>/dev/null; }
quarantined() { find "$Q" -name '*.reason' 2>/dev/null | wc -l | tr -d ' '; }
# hook FILE NAME ARGS...: FILE delivered as incoming/NAME, as storescp
# would, with the sender in ARGS.
hook() {
	_f=$1 _n=$2
	shift 2
	cp "$_f" "$IN/$_n" && storescp-hook "$IN/$_n" "$@" 2>>"$T/hook.log"
}

export PACS_ALLOWED_AETS="MAMMO1, MAMMO2"
ok "a file from MAMMO2 (on the list) is stored" hook "$CT" ct MAMMO2 SCREENING_PACS 127.0.0.1
ok "a file from INTRUDER (off the list) is taken" hook "$MR" mr INTRUDER SCREENING_PACS 127.0.0.1
is "$(quarantined)" 1 "... into the quarantine"
ok "... with the reason, the AE and the peer" sh -c "grep -q 'reason=calling AE title \"INTRUDER\" is not in PACS_ALLOWED_AETS' $Q/*.reason &&
    grep -q '^calling_aet=INTRUDER$' $Q/*.reason && grep -q '^peer=127.0.0.1$' $Q/*.reason"
ok "... logged" grep -q 'msg=quarantined.*calling_aet=INTRUDER' "$T/hook.log"
ok "the sender may come from storescp-front's environment" sh -c "
    cp '$MR' '$IN/mr2' && STORESCP_FRONT_CALLING_AET=INTRUDER STORESCP_FRONT_PEER=127.0.0.1 \
    storescp-hook '$IN/mr2' 2>>'$T/hook.log'"
is "$(quarantined)" 2 "... and is judged the same way"
dcmindex --once 2>/dev/null
is "$(instances)" 1 "only MAMMO2's file was indexed"
ok "... nothing of INTRUDER's was queued for the cloud" \
    sh -c "! grep -rqs '1.3.6.1.4.1.5962.1.1.4.1.1' '$GATEWAY_DATA_DIR/spool/relay' '$GATEWAY_DATA_DIR/spool/index'"
unset PACS_ALLOWED_AETS

export PACS_ALLOWED_HOSTS="10.0.0.0/8,fd00::/8"
ok "a file from an address off PACS_ALLOWED_HOSTS is taken" hook "$MR" mr3 MAMMO1 SCREENING_PACS 127.0.0.1
ok "... into the quarantine, saying which address" \
    grep -q 'reason=peer address 127.0.0.1 is not in PACS_ALLOWED_HOSTS' $(grep -l '^file=mr3$' "$Q"/*.reason)
cp "$MR" "$IN/swept"
ok "a file the sweep finds has lost its sender: it is stored" sh -c 'storescp-hook --sweep 2>/dev/null'
dcmindex --once 2>/dev/null
is "$(instances)" 2 "... and indexed"
unset PACS_ALLOWED_HOSTS

PACS_ALLOWED_HOSTS=not-an-address storescp-hook --sweep 2>"$T/bad.err"
is "$?" 78 "a bad PACS_ALLOWED_HOSTS stops the hook with EX_CONFIG"
ok "... saying which setting" grep -q 'bad PACS_ALLOWED_HOSTS' "$T/bad.err"
PACS_ALLOWED_AETS=A_CALLING_AE_TITLE_TOO_LONG storescp-hook --sweep 2>"$T/bad2.err"
is "$?" 78 "an AE title over 16 characters in PACS_ALLOWED_AETS stops it too"
PACS_ALLOWED_HOSTS=not-an-address storescp-front --port "$(free_port)" 2>"$T/bad3.err"
is "$?" 78 "... and storescp-front"
ok "... saying which setting" grep -q 'PACS_ALLOWED_HOSTS' "$T/bad3.err"
done_testing
