#!/bin/sh
# 6000-qrscp-find: qrscp's C-FIND against dcmtk's findscu, over a pacs.db
# indexed from a small generated archive (t/tools/gen-qrdata): both
# information models, every level, every matching rule (single value,
# universal, wildcard, date and time ranges, list of UIDs), return keys,
# character sets, and bad requests that end in a clear status while the
# server keeps serving.
. "${0%/*}/lib.sh"

. "${0%/*}/qr/lib.sh"
GATEWAY_DATA_DIR=$T/var
export GATEWAY_DATA_DIR
ROOT=$QR_ROOT

qr_archive "$T/files"
QRPORT=$(free_port)
bg qrscp qrscp --bind 127.0.0.1 --port "$QRPORT" --aet GWQR
wait_for 20 "qrscp listens on 127.0.0.1" port_open "$QRPORT"

# fq NAME OPTIONS KEY...: qr_find against qrscp.
fq() {
	_fq_name=$1
	shift
	qr_find "$_fq_name" "$QRPORT" GWQR "$@"
}

# count NAME: how many responses.
count() {
	sed -n 's/^count=//p' "$T/r/$1.txt"
}

# has NAME TEXT: some response line holds TEXT.
has() {
	grep -qF -- "$2" "$T/r/$1.txt"
}

# ends NAME TEXT: some response line ends with TEXT.
ends() {
	awk -v t="$2" 'substr($0, length($0) - length(t) + 1) == t { f = 1 }
	    END { exit !f }' "$T/r/$1.txt"
}

# every NAME TEXT [all]: every response line holds TEXT (in NAME.all with
# a third argument: keys not asked for included).
every() {
	! grep -v '^count=' "$T/r/$1.${3:-txt}" | grep -qvF -- "$2"
}

# --- Patient Root, PATIENT ---
fq pat_all -P QueryRetrieveLevel=PATIENT PatientID PatientName
is "$(count pat_all)" 6 "PATIENT, universal: six patients"
ok "... every response says QueryRetrieveLevel=PATIENT" \
    every pat_all "QueryRetrieveLevel=PATIENT"
is "$(qr_final pat_all)" Success "... and the final status is Success"

fq pat_id -P QueryRetrieveLevel=PATIENT PatientID=NHS0001 PatientName \
    PatientBirthDate PatientSex NumberOfPatientRelatedStudies \
    NumberOfPatientRelatedSeries NumberOfPatientRelatedInstances
is "$(count pat_id)" 1 "PATIENT by Patient ID: one"
ok "... with name, birth date, sex and the patient's counts (2/4/6)" \
    has pat_id "PatientID=NHS0001 | PatientName=SMITH^JANE | PatientBirthDate=19600102 | PatientSex=F | NumberOfPatientRelatedStudies=2 | NumberOfPatientRelatedSeries=4 | NumberOfPatientRelatedInstances=6"

fq pat_wild -P QueryRetrieveLevel=PATIENT "PatientName=S*^J*"
is "$(count pat_wild)" 2 "PATIENT, Patient's Name S*^J*: two"
fq pat_case -P QueryRetrieveLevel=PATIENT "PatientName=SMITH*"
is "$(count pat_case)" 1 "Patient's Name matching is case sensitive"
fq pat_q -P QueryRetrieveLevel=PATIENT "PatientName=?MITH^JANE"
is "$(count pat_q)" 1 "'?' matches one character"
fq pat_birth -P QueryRetrieveLevel=PATIENT PatientBirthDate=19500101-19651231
is "$(count pat_birth)" 2 "birth date range: two"
fq pat_sex -P QueryRetrieveLevel=PATIENT PatientSex=F
is "$(count pat_sex)" 3 "Patient's Sex F: three (an empty sex does not match)"

# --- Patient Root, STUDY / SERIES / IMAGE ---
fq ps -P QueryRetrieveLevel=STUDY PatientID=NHS0001 StudyInstanceUID \
    StudyDate AccessionNumber
is "$(count ps)" 2 "Patient Root STUDY under one patient: two studies"
ok "... with Patient ID in every response" every ps "PatientID=NHS0001"
fq pse -P QueryRetrieveLevel=SERIES PatientID=NHS0001 \
    StudyInstanceUID=$ROOT.1 SeriesNumber
is "$(count pse)" 2 "Patient Root SERIES of one study: two series"
ok "... each with the Series Instance UID added though not asked" \
    every pse "SeriesInstanceUID=$ROOT.1." all
fq pim -P QueryRetrieveLevel=IMAGE PatientID=NHS0001 \
    StudyInstanceUID=$ROOT.1 SeriesInstanceUID=$ROOT.1.2 SOPInstanceUID \
    InstanceNumber SOPClassUID Rows
is "$(count pim)" 2 "Patient Root IMAGE of one series: two instances"
ok "... with instance numbers, SOP class and Rows" \
    has pim "SOPInstanceUID=$ROOT.1.2.2 | InstanceNumber=2 | SOPClassUID=1.2.840.10008.5.1.4.1.1.1.2 | Rows=8"
fq pwrong -P QueryRetrieveLevel=SERIES PatientID=NHS0002 \
    StudyInstanceUID=$ROOT.1
is "$(count pwrong)" 0 "a study under another patient: nothing"
is "$(qr_final pwrong)" Success "... and that is a successful answer"

# --- Study Root, STUDY ---
fq s_all -S QueryRetrieveLevel=STUDY StudyInstanceUID
is "$(count s_all)" 7 "Study Root STUDY, universal: seven studies"
fq s_ab -S QueryRetrieveLevel=STUDY StudyDate=20240101-20240131 \
    StudyInstanceUID
is "$(count s_ab)" 2 "date range A-B: two"
ok "... the first January study" ends s_ab "=$ROOT.1"
ok "... and the second" ends s_ab "=$ROOT.3"
fq s_b -S QueryRetrieveLevel=STUDY StudyDate=-20231231
is "$(count s_b)" 1 "date range -B: one"
fq s_a -S QueryRetrieveLevel=STUDY StudyDate=20240301-
is "$(count s_a)" 3 "date range A-: three"
fq s_one -S QueryRetrieveLevel=STUDY StudyDate=20240110
is "$(count s_one)" 2 "a single date: two"
fq s_time -S QueryRetrieveLevel=STUDY StudyTime=090000-100000
is "$(count s_time)" 1 "time range: one"
fq s_dt -S QueryRetrieveLevel=STUDY StudyDate=20240110-20240215 \
    StudyTime=120000-150000 StudyInstanceUID
is "$(count s_dt)" 1 "StudyDate and StudyTime ranges, not negotiated as one: separately"
ok "... 2024-02-15 14:00 only" ends s_dt "=$ROOT.2"
fq s_list -S QueryRetrieveLevel=STUDY "StudyInstanceUID=$ROOT.1\\$ROOT.4"
is "$(count s_list)" 2 "list of UIDs: two"
fq s_acc -S QueryRetrieveLevel=STUDY "AccessionNumber=ACC100?"
is "$(count s_acc)" 2 "Accession Number ACC100?: two"
fq s_pat -S QueryRetrieveLevel=STUDY "PatientName=SMITH^JANE" PatientID \
    StudyDescription
is "$(count s_pat)" 2 "Study Root: a patient key matches at STUDY"
ok "... and patient and study keys are returned" \
    has s_pat "PatientName=SMITH^JANE | PatientID=NHS0001 | StudyDescription=Assessment"
fq s_mods -S QueryRetrieveLevel=STUDY ModalitiesInStudy=OT \
    NumberOfStudyRelatedSeries NumberOfStudyRelatedInstances
is "$(count s_mods)" 1 "Modalities in Study OT: one"
ok "... with all its modalities and its counts" \
    has s_mods "ModalitiesInStudy=MG\\OT | NumberOfStudyRelatedSeries=2 | NumberOfStudyRelatedInstances=2"
fq s_ref -S QueryRetrieveLevel=STUDY StudyInstanceUID=$ROOT.1 \
    ReferringPhysicianName StudyID
ok "a key the index lacks comes back empty, never invented" \
    has s_ref "ReferringPhysicianName= | StudyID=1"
fq s_empty -S QueryRetrieveLevel=STUDY StudyID=7 AccessionNumber
ok "an empty stored value is returned empty, a match on one is exact" \
    has s_empty "AccessionNumber=ACC5001"

# --- Study Root, SERIES / IMAGE ---
fq se -S QueryRetrieveLevel=SERIES StudyInstanceUID=$ROOT.2 Modality \
    SeriesNumber NumberOfSeriesRelatedInstances
is "$(count se)" 2 "SERIES of one study: two"
ok "... each with the study's UID" every se "StudyInstanceUID=$ROOT.2"
ok "... and level SERIES" every se "QueryRetrieveLevel=SERIES"
fq se_mod -S QueryRetrieveLevel=SERIES StudyInstanceUID=$ROOT.2 Modality=OT
is "$(count se_mod)" 1 "Modality single value: one"
fq se_no -S QueryRetrieveLevel=SERIES StudyInstanceUID=$ROOT.1 SeriesNumber=2
is "$(count se_no)" 1 "Series Number: one"
fq im -S QueryRetrieveLevel=IMAGE StudyInstanceUID=$ROOT.6 \
    SeriesInstanceUID=$ROOT.6.1 InstanceNumber=4 ImageLaterality ViewPosition
is "$(count im)" 1 "IMAGE by Instance Number: one"
ok "... with laterality and view" has im "InstanceNumber=4 | ImageLaterality=L | ViewPosition=CC"
fq im_list -S QueryRetrieveLevel=IMAGE StudyInstanceUID=$ROOT.1 \
    SeriesInstanceUID=$ROOT.1.1 "SOPInstanceUID=$ROOT.1.1.2\\$ROOT.9.9.9"
is "$(count im_list)" 1 "a list of SOP Instance UIDs: the one that exists"

# --- character sets ---
fq cs_utf8 -P QueryRetrieveLevel=PATIENT "SpecificCharacterSet=ISO_IR 192" \
    "PatientName=山田*"
is "$(count cs_utf8)" 1 "a UTF-8 query for a Japanese name: one"
ok "... the name comes back intact" has cs_utf8 "PatientName=山田^太郎"
ok "... declared ISO_IR 192" sh -c \
    'dcmdump "$0"/rsp0001.dcm | grep -aq "(0008,0005) CS \[ISO_IR 192\]"' \
    "$T/r/cs_utf8"
fq cs_latin1 -P QueryRetrieveLevel=PATIENT "SpecificCharacterSet=ISO_IR 100" \
    "PatientName=M$(printf '\374')ller*"
is "$(count cs_latin1)" 1 "a Latin-1 query for a Latin-1 name: one"
ok "... decoded, the name is Müller^Jürgen" has cs_latin1 "PatientName=Müller^Jürgen"
ok "... answered in ISO_IR 100, the query's character set" sh -c \
    'dcmdump "$0"/rsp0001.dcm | grep -aq "(0008,0005) CS \[ISO_IR 100\]"' \
    "$T/r/cs_latin1"
fq cs_mixed -P QueryRetrieveLevel=PATIENT "SpecificCharacterSet=ISO_IR 100" \
    PatientID=NHS0004 PatientName
ok "a Latin-1 query finding a Japanese name gets it in ISO_IR 192" sh -c \
    'grep -qF "PatientName=山田^太郎" "$0.txt" &&
    dcmdump "$0"/rsp0001.dcm | grep -aq "(0008,0005) CS \[ISO_IR 192\]"' \
    "$T/r/cs_mixed"

# --- bad requests: a clear status, and the server keeps serving ---
fq bad_nolevel -S PatientName
is "$(qr_final bad_nolevel)" "Failed: UnableToProcess" \
    "no Query/Retrieve Level: Unable to process"
fq bad_level -S QueryRetrieveLevel=PATIENT PatientName
is "$(qr_final bad_level)" "Failed: UnableToProcess" \
    "PATIENT level in the Study Root model: Unable to process"
fq bad_what -P QueryRetrieveLevel=FRAME PatientName
is "$(qr_final bad_what)" "Failed: UnableToProcess" \
    "a level that does not exist: Unable to process"
fq bad_date -S QueryRetrieveLevel=STUDY StudyDate=2024x
is "$(qr_final bad_date)" "Error: DataSetDoesNotMatchSOPClass" \
    "a malformed date: A900 (identifier does not match)"
fq bad_uid -S QueryRetrieveLevel=STUDY "StudyInstanceUID=1.2.*"
is "$(qr_final bad_uid)" "Error: DataSetDoesNotMatchSOPClass" \
    "a UID with a wildcard: A900"
ok "the refusals are logged with their reason, without the values" sh -c \
    'grep -q "c-find refused.*is not in the Study Root" "$0" &&
    grep -q "c-find refused.*(0008,0020): not a date" "$0" &&
    ! grep -q "2024x" "$0"' "$T/qrscp.log"
not_ok "an unknown SOP class (Modality Worklist) is not accepted" \
    findscu -to 10 -W -aec GWQR -k PatientName 127.0.0.1 "$QRPORT"
fq after -S QueryRetrieveLevel=STUDY StudyInstanceUID
is "$(count after)" 7 "after all that, C-FIND still answers every study"

# --- cancel ---
fq cancel "-S --cancel 1" QueryRetrieveLevel=IMAGE SOPInstanceUID
case $(qr_final cancel) in
Cancel*|Success) pass "a C-CANCEL after the first response ends the find" ;;
*) fail "a C-CANCEL after the first response ends the find"
   diag "final status: $(qr_final cancel)" ;;
esac
fq after_cancel -S QueryRetrieveLevel=STUDY StudyInstanceUID
is "$(count after_cancel)" 7 "... and the next find is answered whole"

ok "qrscp is still running" kill -0 "$(cat "$T/qrscp.pid")"
ok "its log has no patient name or Patient ID" sh -c \
    '! grep -qE "SMITH|NHS000|Müller|山田" "$0"' "$T/qrscp.log"
done_testing
