#!/bin/sh
# Metadata differential: for every file in the corpus (and pydicom's test
# files) that dcmtk reads, what dcmindex stores equals what dcmdump reports
# for the same file: UIDs, SOP class, modality, accession, dates, rows and
# columns, transfer syntax, patient name in UTF-8.
. "${0%/*}/lib.sh"

[ -d "$CORPUS" ] || skip_all "no corpus at $CORPUS"
export GATEWAY_DATA_DIR=$T/var
PACS_DB=$GATEWAY_DATA_DIR/pacs.db
IN=$GATEWAY_DATA_DIR/incoming
mkdir -p "$IN"

# Every file, copied in under a unique name; remember name -> source.
find "$CORPUS" "$PYDICOM_FILES" -type f ! -name '*.tsv' ! -name '*.txt' \
    ! -name '*.json' ! -name '*.dump' ! -name '*.gz' 2>/dev/null | sort >"$T/files"
n=0
while read -r f; do
	n=$((n + 1))
	cp "$f" "$IN/f$n"
	printf 'f%s\t%s\n' "$n" "$f" >>"$T/map"
done <"$T/files"
ok "the sweep takes in all $n files" sh -c 'storescp-hook --sweep 2>"$0/hook.log"' "$T"
ok "dcmindex indexes them" sh -c 'dcmindex --once 2>"$0/index.log"' "$T"

# Which object came from which file: receipts keep the incoming name.
sql "$PACS_DB" "SELECT substr(r.receipt_key, 1, instr(r.receipt_key, ':') - 1), o.hash, o.sop_instance_uid = i.sop_instance_uid AND i.object_hash = o.hash FROM receipts r JOIN objects o ON o.hash = r.object_hash JOIN instances i ON i.sop_instance_uid = o.sop_instance_uid" >"$T/receipts"

/usr/bin/python3 - "$T" "$PACS_DB" <<'PY' >"$T/diff.tap"
import os, re, sqlite3, subprocess, sys
T, dbpath = sys.argv[1:3]
src = dict(l.rstrip("\n").split("\t", 1) for l in open(os.path.join(T, "map")))
db = sqlite3.connect(dbpath)
cols = ["sop_instance_uid", "sop_class_uid", "study_instance_uid",
        "series_instance_uid", "modality", "accession_number", "study_date",
        "rows", "columns", "transfer_syntax_uid", "patient_name"]
tags = {"0008,0018": "sop_instance_uid", "0008,0016": "sop_class_uid",
        "0020,000d": "study_instance_uid", "0020,000e": "series_instance_uid",
        "0008,0060": "modality", "0008,0050": "accession_number",
        "0008,0020": "study_date", "0028,0010": "rows", "0028,0011": "columns",
        "0002,0010": "transfer_syntax_uid", "0010,0010": "patient_name"}
line_re = re.compile(r"^\(([0-9a-f]{4},[0-9a-f]{4})\) (..) (.*?)\s*#\s*(\d+),")

def dcmdump(path):
    p = subprocess.run(["dcmdump", "-q", "-Un", "+U8", "-M", path],
                       capture_output=True)
    if p.returncode != 0:
        return None
    out = {}
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        m = line_re.match(line)      # top level only: no indentation
        if not m or m.group(1) not in tags:
            continue
        key, vr, raw = tags[m.group(1)], m.group(2), m.group(3)
        if vr in ("UN", "OB"):
            continue     # dcmtk could not tell the VR: it prints hex
        if raw.startswith("(no value"):
            val = ""
        elif raw.startswith("["):
            val = raw[1:raw.rfind("]")]
        elif raw.startswith("="):
            val = raw[1:]
        else:
            val = raw
        if key not in out:
            out[key] = val.strip()
    return out

def norm(key, v):
    if v is None:
        return ""
    v = str(v)
    if key.endswith("_uid"):
        return v.replace(" ", "").strip("\0")   # dcmtk drops blanks in UIDs
    if key in ("rows", "columns"):
        try:
            return str(int(float(v)))
        except ValueError:
            return v
    return v.strip(" \0")

# Study- and series-level attributes are kept once per study and series.
# Test files often share a study or series UID while disagreeing about the
# patient or modality; for those groups only the instance-level attributes
# are compared, and the groups are listed.
STUDY = ("patient_name", "accession_number", "study_date")
SERIES = ("modality",)
dumps, groups = {}, {}
for line in open(os.path.join(T, "receipts")):
    name, h, current = line.rstrip("\n").split("|")
    if current != "1":
        continue       # a superseded copy of an instance: not what is shown
    want = dcmdump(src[name])
    if want is None:
        continue
    dumps[name] = (h, want)
    for level, keys, uid in (("study", STUDY, "study_instance_uid"),
                             ("series", SERIES, "series_instance_uid")):
        k = (level, want.get(uid))
        groups.setdefault(k, set()).add(tuple(want.get(x) for x in keys))
conflicting = {k for k, v in groups.items() if len(v) > 1}
for level, uid in sorted(conflicting):
    print("# exception: files of %s %s disagree on %s-level attributes" % (level, uid, level))

checked = mismatched = unreadable_by_us = 0
for name, (h, want) in sorted(dumps.items()):
    row = db.execute("SELECT %s FROM stored_instances WHERE storage_hash = ?"
                     % ", ".join(cols), (h,)).fetchone()
    checked += 1
    for key, got in zip(cols, row):
        if key not in want:
            continue
        if key in STUDY and ("study", want.get("study_instance_uid")) in conflicting:
            continue
        if key in SERIES and ("series", want.get("series_instance_uid")) in conflicting:
            continue
        if norm(key, got) != norm(key, want[key]):
            mismatched += 1
            print("# %s %s: ours %r, dcmdump %r" % (os.path.relpath(src[name]), key, got, want[key]))

# Files dcmtk reads fully that we quarantined are reader bugs.
stored = {l.split("|")[0] for l in open(os.path.join(T, "receipts"))}
qdir = os.path.join(T, "var", "quarantine")
for name in sorted(os.listdir(qdir)):
    if name.endswith(".reason"):
        continue
    record = dict(l.rstrip("\n").split("=", 1) for l in open(os.path.join(qdir, name + ".reason")) if "=" in l)
    orig, reason = record["file"], record["reason"]
    if reason.startswith("invalid "):
        print("# quarantined by the UID rule: %s (%s)" % (os.path.relpath(src[orig]), reason))
        continue       # dcmtk reads bad UIDs; the gateway refuses them
    want = dcmdump(src[orig])
    if want and all(k in want and want[k] for k in ("sop_instance_uid", "study_instance_uid", "series_instance_uid")):
        p = subprocess.run(["dcmdump", "-q", "+E", src[orig]], capture_output=True)
        if p.returncode == 0 and not p.stderr:
            unreadable_by_us += 1
            print("# quarantined but dcmdump reads it cleanly: %s (%s)" % (os.path.relpath(src[orig]), reason))
print("checked=%d mismatched=%d unreadable_by_us=%d" % (checked, mismatched, unreadable_by_us))
PY
grep '^#' "$T/diff.tap"
res=$(tail -n 1 "$T/diff.tap")
checked=$(echo "$res" | sed 's/.*checked=\([0-9]*\).*/\1/')
ok "dcmtk and dcmindex both read at least 450 files ($checked)" test "$checked" -ge 450
ok "every stored attribute equals dcmdump's ($res)" sh -c "echo '$res' | grep -q 'mismatched=0 '"
ok "no file that dcmdump reads cleanly is quarantined" sh -c "echo '$res' | grep -q 'unreadable_by_us=0'"
is "$(count_files "$IN")" 0 "every file was stored or quarantined"
is "$(count_files "$GATEWAY_DATA_DIR/spool/index/failed")" 0 "no index job failed"
not_ok "the logs carry no patient name" grep -q 'patient_name\|PatientName' "$T/hook.log" "$T/index.log"
done_testing
