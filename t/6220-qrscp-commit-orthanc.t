#!/bin/sh
# 6220-qrscp-commit-orthanc: Orthanc (an independent DICOM implementation)
# as the Storage Commitment SCU of qrscp, through its REST API
# (POST /modalities/{id}/storage-commitment, then GET the returned
# /storage-commitment/{transaction}).  Orthanc closes its association after
# the N-ACTION and takes the report on its own DICOM port, so qrscp sends
# it on a new association (Orthanc is listed in QR_DESTINATIONS).
. "${0%/*}/lib.sh"
. "${0%/*}/qr/lib.sh"

command -v Orthanc >/dev/null || skip_all "Orthanc is not installed (Debian package orthanc)"
command -v curl >/dev/null || skip_all "curl is not installed"
PY=/usr/bin/python3

ingest_mammograms 4 622

QR_PORT=$(free_port); O_DICOM=$(free_port); O_HTTP=$(free_port)
export QR_PORT QR_BIND=127.0.0.1 QR_COMMIT_RETRY_SECONDS=1 QR_COMMIT_RETRY_MAX_SECONDS=2
mkdir -p "$T/orthanc"
cat >"$T/orthanc.json" <<JSON
{
  "Name": "t6220",
  "StorageDirectory": "$T/orthanc/storage",
  "IndexDirectory": "$T/orthanc/index",
  "DicomAet": "ORTHANCSC",
  "DicomPort": $O_DICOM,
  "HttpPort": $O_HTTP,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "DicomCheckCalledAet": false,
  "Plugins": [],
  "DicomModalities": { "qr": [ "SCREENING_QR", "127.0.0.1", $QR_PORT ] }
}
JSON
bg orthanc Orthanc "$T/orthanc.json"
API=http://127.0.0.1:$O_HTTP
wait_for 60 "Orthanc answers on its HTTP port" curl -sf "$API/system"
printf 'ORTHANCSC 127.0.0.1 %s\n' "$O_DICOM" >"$T/destinations"
bg qrscp qrscp --destinations "$T/destinations"
wait_for 20 "qrscp listens" port_open "$QR_PORT"

# instances_json [CLASS:INSTANCE...]: Orthanc's DicomInstances list.
instances_json() {
	$PY -c 'import json,sys; print(json.dumps({"DicomInstances": [dict(zip(("SOPClassUID","SOPInstanceUID"), a.split(":"))) for a in sys.argv[1:]]}))' "$@"
}
# ask CLASS:INSTANCE...: POST the request; prints the Transaction UID.
ask() {
	curl -sf -X POST "$API/modalities/qr/storage-commitment" -d "$(instances_json "$@")" |
	    $PY -c 'import json,sys; print(json.load(sys.stdin)["ID"])'
}
# status TX: Orthanc's view of the report: "Status committed failed".
status() {
	curl -sf "$API/storage-commitment/$1" |
	    $PY -c 'import json,sys; r=json.load(sys.stdin); print(r["Status"], len(r.get("Success",[])), len(r.get("Failures",[])))'
}
answered() {
	s=$(status "$1") && [ "${s%% *}" != Pending ]
}

TX1=$(ask $(cat "$T/refs"))
ok "Orthanc sends the N-ACTION for the four instances (transaction $TX1)" test -n "$TX1"
wait_for 30 "Orthanc receives the report" answered "$TX1"
is "$(status "$TX1")" "Success 4 0" "Orthanc's report: all four committed"
is "$(sql "$PACS_DB" "SELECT state || ' ' || calling_aet FROM commitment_requests WHERE transaction_uid = '$TX1'")" \
    "REPORTED ORTHANCSC" "qrscp recorded the request from Orthanc as reported"

# Delete one object from the store: Orthanc hears it failed.
h=$(sql "$PACS_DB" "SELECT object_hash FROM instances ORDER BY sop_class_uid, sop_instance_uid LIMIT 1")
rm -f "$GATEWAY_DATA_DIR/store/$(echo "$h" | cut -c1-2)/$(echo "$h" | cut -c3-4)/$h.dcm"
TX2=$(ask $(cat "$T/refs") 1.2.840.10008.5.1.4.1.1.7:1.2.826.0.1.3680043.9.7.622.999)
wait_for 30 "Orthanc receives the second report" answered "$TX2"
is "$(status "$TX2")" "Failure 3 2" \
    "Orthanc's report: 3 committed, the deleted object and an unknown instance failed"
curl -sf "$API/storage-commitment/$TX2" >"$T/tx2.json"
is "$($PY -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sorted(set(f["FailureReason"] for f in r["Failures"])))' "$T/tx2.json")" \
    "[274]" "both failures carry reason 0112 (274: no such object instance)"

ok "qrscp still answers C-ECHO" echoscu -aec SCREENING_QR 127.0.0.1 "$QR_PORT"
stop_gateway
done_testing
