#!/bin/sh
# 6120-qrscp-orthanc: Orthanc (an independent DICOM implementation) with
# qrscp: as a C-MOVE destination (movescu asks qrscp to move a study to
# Orthanc), and as a Query/Retrieve client through its REST API
# (/modalities/{id}/query, /queries/{id}/retrieve: C-FIND, then C-MOVE
# to Orthanc itself).
. "${0%/*}/lib.sh"
. "${0%/*}/qr/lib.sh"

command -v Orthanc >/dev/null || skip_all "Orthanc is not installed (Debian package orthanc)"
[ -d "$PYDICOM_FILES" ] || skip_all "python3-pydicom's test files are not installed"

qr_data
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 4 --studies 1 --seed 64 >"$T/a.list"
"$GW_ROOT/t/tools/gen-mammo" "$T/mgb" 4 --studies 1 --seed 65 >"$T/b.list"
STUDY_A=$(head -n 1 "$T/a.list" | cut -d' ' -f3)
STUDY_B=$(head -n 1 "$T/b.list" | cut -d' ' -f3)
mkdir -p "$T/mr"
qr_uid_copy "$PYDICOM_FILES/MR_small_jpeg_ls_lossless.dcm" "$T/mr/jls.dcm" \
    "$STUDY_A" 2.25.64001 2.25.64002
ok "the store is filled" qr_fill "$T"/mg/*.dcm "$T"/mgb/*.dcm "$T"/mr/*.dcm

PORT=$(free_port); O_DICOM=$(free_port); O_HTTP=$(free_port)
mkdir -p "$T/orthanc"
cat >"$T/orthanc.json" <<JSON
{
  "Name": "t6120",
  "StorageDirectory": "$T/orthanc/storage",
  "IndexDirectory": "$T/orthanc/index",
  "DicomAet": "ORTHANC",
  "DicomPort": $O_DICOM,
  "HttpPort": $O_HTTP,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "DicomCheckCalledAet": false,
  "StorageCompression": false,
  "Plugins": [],
  "DicomModalities": { "qr": [ "SCREENING_QR", "127.0.0.1", $PORT ] }
}
JSON
bg orthanc Orthanc "$T/orthanc.json"
API=http://127.0.0.1:$O_HTTP
wait_for 60 "Orthanc answers on its HTTP port" curl -sf "$API/system"
printf 'ORTHANC 127.0.0.1 %s\n' "$O_DICOM" >"$T/destinations"
qr_start qrscp "$PORT" --destinations "$T/destinations"
ok "qrscp listens" port_open "$PORT"

# --- Orthanc as a C-MOVE destination ---
movescu -v -S -to 30 -aec SCREENING_QR -aem ORTHANC -k QueryRetrieveLevel=STUDY \
    -k StudyInstanceUID=$STUDY_A 127.0.0.1 "$PORT" >"$T/move.out" 2>&1
ok "movescu moves study A (4 mammograms, 1 JPEG-LS MR) to Orthanc: Success" \
    grep -aq 'Received Final Move Response (Success)' "$T/move.out"
instances() { curl -sf "$API/instances" | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
is "$(instances)" 5 "Orthanc holds the 5 instances"
# orthanc_same UID: Orthanc's copy has the stored object's data set.
orthanc_same() {
	_id=$(curl -sf -X POST "$API/tools/lookup" -d "$1" |
	    $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["ID"])') || return 1
	curl -sf "$API/instances/$_id/file" -o "$T/o.dcm" || return 1
	[ "$(dataset_sha "$T/o.dcm")" = "$(dataset_sha "$(object_of "$1")")" ]
}
all_same() {
	for _u in $(cut -d' ' -f2 "$T/a.list") 2.25.64002; do
		orthanc_same "$_u" || { echo "$_u differs"; return 1; }
	done
}
ok "each of Orthanc's copies is byte-equal to the stored data set" all_same
is "$(curl -sf "$API/instances/$(curl -sf -X POST "$API/tools/lookup" -d 2.25.64002 |
    $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["ID"])')/metadata/TransferSyntax")" \
    "1.2.840.10008.1.2.4.80" "the JPEG-LS object reached Orthanc in JPEG-LS"

# --- Orthanc as a Query/Retrieve client (REST) ---
find_works() {
	findscu -S -to 10 -aec SCREENING_QR -k QueryRetrieveLevel=STUDY \
	    -k StudyInstanceUID=$STUDY_B 127.0.0.1 "$PORT" 2>&1 |
	    grep -aq 'Find Response: 1 (Pending)'
}
if ! find_works; then
	skip "Orthanc's REST query needs qrscp's C-FIND (not there: qr_find is a stub)"
	skip "Orthanc's REST retrieve needs the query first"
else
	q=$(curl -sf -X POST "$API/modalities/qr/query" \
	    -d "{\"Level\":\"Study\",\"Query\":{\"StudyInstanceUID\":\"$STUDY_B\"}}")
	qid=$(echo "$q" | $PY -c 'import json,sys; print(json.load(sys.stdin)["ID"])')
	is "$(curl -sf "$API/queries/$qid/answers" | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1 \
	    "Orthanc's REST query (C-FIND to qrscp) finds study B"
	curl -sf -X POST "$API/queries/$qid/retrieve" \
	    -d '{"TargetAet":"ORTHANC","Synchronous":true}' >"$T/retrieve.out" 2>&1
	has_b() {
		for _u in $(cut -d' ' -f2 "$T/b.list"); do
			curl -sf -X POST "$API/tools/lookup" -d "$_u" | grep -q '"Instance"' ||
			    return 1
		done
	}
	wait_for 30 "Orthanc's REST retrieve (C-MOVE to itself) brings study B's 4 images" has_b
	ok "qrscp logged the C-MOVE Orthanc asked for" \
	    grep -q 'msg=c-move .*dest=ORTHANC instances=4 completed=4 failed=0' "$T/qrscp.log"
fi

kill -TERM "$QR_PID"
wait "$QR_PID"
is "$?" 0 "SIGTERM: qrscp exits 0"
ok "no sanitizer report" sh -c "! grep -l 'Sanitizer\|runtime error' '$T/qrscp.log'"
done_testing
