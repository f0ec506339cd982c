#!/bin/sh
# 6200-qrscp-commit: Storage Commitment Push Model against qrscp from an
# independent SCU, dcmjs-dimse (t/peers/commit.js).  Mammograms go in
# through the gateway (storescu -> storescp -> storescp-hook -> dcmindex);
# a commitment for them is reported on the same association, listing as
# committed only what is indexed and hash-verified now: an object deleted
# from the store fails with 0112, a corrupted one with 0110, an unknown
# instance with 0112, a wrong SOP class with 0119.  Malformed N-ACTIONs get
# clear statuses and the server keeps serving; a Transaction UID sent again
# is answered again, reused for other references fails them with 0131.
. "${0%/*}/lib.sh"
. "${0%/*}/qr/lib.sh"

command -v node >/dev/null 2>&1 || skip_all "node not installed"
[ -d "$GW_ROOT/node_modules/dcmjs-dimse" ] ||
    skip_all "dcmjs-dimse not installed (npm ci)"

ingest_mammograms 6 62

QR_PORT=$(free_port)
export QR_PORT QR_BIND=127.0.0.1
bg qrscp qrscp
wait_for 20 "qrscp listens" port_open "$QR_PORT"

set -- $(cat "$T/refs")
REF1=$1 REF2=$2 REF3=$3
CLASS1=${REF1%%:*}

commit() {
	commit_request MODALITY1 "$@"
}

commit 1.2.826.0.1.3680043.9.7.62.1 wait $(cat "$T/refs") >"$T/r1"
is "$(sed -n 's/^status=//p' "$T/r1")" 0x0000 "N-ACTION for six stored instances succeeds"
is "$(grep '^report' "$T/r1")" "report event=1 tx=1.2.826.0.1.3680043.9.7.62.1 committed=6 failed=0" \
    "the report on the same association commits all six (event type 1)"
is "$(sed -n 's/^committed \([^ ]*\) \(.*\)/\1:\2/p' "$T/r1" | sort)" "$(sort "$T/refs")" \
    "it lists exactly the instances asked for"
is "$(sql "$PACS_DB" "SELECT state || ' ' || event_type || ' ' || calling_aet || ' ' || called_aet FROM commitment_requests WHERE transaction_uid = '1.2.826.0.1.3680043.9.7.62.1'")" \
    "REPORTED 1 MODALITY1 SCREENING_QR" "the request is recorded as reported"
is "$(sql "$PACS_DB" "SELECT count(*) FROM commitment_items i JOIN commitment_requests r ON r.id = i.request_ref WHERE r.transaction_uid = '1.2.826.0.1.3680043.9.7.62.1' AND i.failure_reason IS NULL")" \
    6 "its six references are recorded as committed"

# Damage the store: delete one object, flip a byte in another.
hash_of() {
	sql "$PACS_DB" "SELECT object_hash FROM instances WHERE sop_instance_uid = '${1#*:}'"
}
obj() {
	h=$(hash_of "$1")
	echo "$GATEWAY_DATA_DIR/store/$(echo "$h" | cut -c1-2)/$(echo "$h" | cut -c3-4)/$h.dcm"
}
rm -f "$(obj "$REF1")"
f=$(obj "$REF2")
chmod u+w "$f"
/usr/bin/python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(-1,2); b=f.read(1); f.seek(-1,2); f.write(bytes([b[0]^0xff])); f.close()' "$f"
isnt_hash() {
	[ "$(sha256sum "$1" | cut -d' ' -f1)" != "$2" ]
}
ok "the second object no longer hashes to its name" isnt_hash "$f" "$(hash_of "$REF2")"

commit 1.2.826.0.1.3680043.9.7.62.2 wait $(cat "$T/refs") \
    1.2.840.10008.5.1.4.1.1.7:1.2.826.0.1.3680043.9.7.62.999 \
    1.2.840.10008.5.1.4.1.1.7:"${REF3#*:}" >"$T/r2"
is "$(sed -n 's/^status=//p' "$T/r2")" 0x0000 "N-ACTION after damaging the store succeeds"
is "$(grep '^report' "$T/r2")" "report event=2 tx=1.2.826.0.1.3680043.9.7.62.2 committed=4 failed=4" \
    "the report says some failed (event type 2): 4 committed, 4 failed"
is "$(grep "^failed $CLASS1 ${REF1#*:} " "$T/r2" | cut -d' ' -f4)" 0x0112 \
    "an object deleted from the store fails with 0112 (no such object instance)"
is "$(grep "^failed [^ ]* ${REF2#*:} " "$T/r2" | cut -d' ' -f4)" 0x0110 \
    "a corrupted object fails with 0110 (processing failure)"
is "$(grep "^failed [^ ]* 1.2.826.0.1.3680043.9.7.62.999 " "$T/r2" | cut -d' ' -f4)" 0x0112 \
    "an instance never received fails with 0112"
is "$(grep "^failed 1.2.840.10008.5.1.4.1.1.7 ${REF3#*:} " "$T/r2" | cut -d' ' -f4)" 0x0119 \
    "a reference with the wrong SOP class fails with 0119 (class/instance conflict)"
ok "the intact instances are committed, the damaged ones are not" sh -c "
	grep -q '^committed [^ ]* ${REF3#*:}\$' '$T/r2' &&
	! grep -q '^committed [^ ]* ${REF1#*:}\$' '$T/r2' &&
	! grep -q '^committed [^ ]* ${REF2#*:}\$' '$T/r2'"
ok "the corrupted object is logged with its SOP Instance UID" \
    grep -q "stored object fails verification.*${REF2#*:}.*reason=0x0110" "$T/qrscp.log"

# The same request again is answered again, with what holds now.
commit 1.2.826.0.1.3680043.9.7.62.1 wait $(cat "$T/refs") >"$T/r3"
is "$(sed -n 's/^status=//p;s/^report event=\([0-9]\).*committed=\([0-9]*\) failed=\([0-9]*\)/\1 \2 \3/p' "$T/r3" | tr '\n' ' ')" \
    "0x0000 2 4 2 " "a Transaction UID sent again with the same references is answered again, as of now"
is "$(sql "$PACS_DB" "SELECT count(*) FROM commitment_requests WHERE transaction_uid = '1.2.826.0.1.3680043.9.7.62.1'")" 1 \
    "and stays one request"
# ... but reused for other references is refused, reference by reference.
commit 1.2.826.0.1.3680043.9.7.62.1 wait "$REF3" >"$T/r4"
is "$(grep -c '^failed .* 0x0131$' "$T/r4") $(grep '^report' "$T/r4" | cut -d' ' -f2)" "1 event=2" \
    "a Transaction UID reused for other references fails them with 0131"
is "$(sql "$PACS_DB" "SELECT count(*) FROM commitment_requests WHERE transaction_uid = '1.2.826.0.1.3680043.9.7.62.1' AND duplicate_of IS NOT NULL")" 1 \
    "the reuse is recorded as a duplicate"

# Malformed requests: a clear status each, nothing recorded.
before=$(sql "$PACS_DB" "SELECT count(*) FROM commitment_requests")
check_refused() {
	want=$1 title=$2; shift 2
	commit "$@" >"$T/bad"
	is "$(sed -n 's/^status=//p' "$T/bad")" "$want" "$title"
}
check_refused 0x0115 "no Transaction UID: 0115 (invalid argument value)" \
    1.2.826.0.1.3680043.9.7.62.10 release --no-tx "$REF3"
check_refused 0x0115 "no Referenced SOP Sequence: 0115" \
    1.2.826.0.1.3680043.9.7.62.11 release --no-seq
check_refused 0x0115 "an empty Referenced SOP Sequence: 0115" \
    1.2.826.0.1.3680043.9.7.62.12 release --empty-seq
check_refused 0x0115 "an item without its SOP Instance UID: 0115" \
    1.2.826.0.1.3680043.9.7.62.13 release --item-without-uids "$REF3"
ok "the error comment names what is missing" grep -q 'comment=Referenced SOP Instance UID.*item 2\|comment=no Referenced SOP Instance UID in item 2' "$T/bad"
check_refused 0x0123 "an unknown action type: 0123 (no such action)" \
    1.2.826.0.1.3680043.9.7.62.14 release --action-type 7 "$REF3"
check_refused 0x0117 "a requested SOP instance other than the well-known one: 0117" \
    1.2.826.0.1.3680043.9.7.62.15 release --instance 1.2.3.4 "$REF3"
is "$(sql "$PACS_DB" "SELECT count(*) FROM commitment_requests")" "$before" \
    "no refused request is recorded"
ok "qrscp still answers C-ECHO" echoscu -aec SCREENING_QR 127.0.0.1 "$QR_PORT"
ok "refusals are logged with their reason" grep -q 'commitment request refused.*status=0x0115.*Transaction UID' "$T/qrscp.log"
is "$(sql "$PACS_DB" "SELECT count(*) FROM commitment_requests WHERE state = 'PENDING'")" 0 \
    "nothing is left pending"

kill -TERM "$(cat "$T/qrscp.pid")"
wait_for 20 "qrscp stops on SIGTERM" sh -c "! kill -0 $(cat "$T/qrscp.pid") 2>/dev/null"
stop_gateway
not_ok "the logs carry no patient name, ID or birth date" \
    grep -E 'Ødegård|9007000|19600101' "$T/qrscp.log"
done_testing
