#!/bin/sh
# 8000-report-html: gatewayctl report --html FILE, the day's page for the
# clinic's staff: one self-contained file (no server, no other file, no
# network) with the worklist, each study with its previews and where each
# image went, the cloud queue, the quarantine with reasons and the open
# alerts.  Loaded in headless Chromium: it loads, shows every preview, no
# console error; the screenshot's path is in the output.  Patient names
# only with --names, escaped as HTML; written atomically.
. "${0%/*}/lib.sh"
exec 2>>"$T/stderr.log"

[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || skip_all "chromium not installed (tools/deps)"

export GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$T/var WORKLIST_TIMEZONE=UTC
V=$GATEWAY_DATA_DIR
PACS_DB=$V/pacs.db
SHOTS=${TEST_OUTPUT_DIR:-$GW_BUILD/test-output}
mkdir -p "$V/incoming" "$V/run" "$SHOTS"
dcmindex --init 2>/dev/null

# Two studies of four views; one patient's name holds what HTML must
# escape.  A file that is no DICOM goes to quarantine.
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 8 --size 96x72 --studies 2 --seed 80 >"$T/mg.list"
ACC1=$(dcm_value "$T/mg/mg00000.dcm" 0008,0050)
ACC2=$(dcm_value "$T/mg/mg00001.dcm" 0008,0050)
for f in $(awk -v a="$ACC2" '$4 == a { print $1 }' "$T/mg.list"); do
	dcmodify -nb -m '(0010,0010)=<B>&"Q'"'"'^X' "$f" 2>/dev/null
done
n=0
for f in "$T"/mg/*.dcm; do
	n=$((n + 1))
	cp "$f" "$V/incoming/in$n"
	storescp-hook "$V/incoming/in$n" MAMMO1 SCREENING_PACS 127.0.0.1 2>>"$T/hook.log"
done
printf 'not DICOM at all\n' >"$V/incoming/junk"
storescp-hook "$V/incoming/junk" MAMMO1 SCREENING_PACS 127.0.0.1 2>>"$T/hook.log"
dcmindex --once 2>>"$T/index.log"
dcmthumb --once 2>>"$T/thumb.log"
gatewayctl alerts 2>>"$T/alerts.log"	# raises the quarantine alert
is "$(sql "$PACS_DB" "SELECT count(*) FROM instances WHERE thumbnail_status = 'GENERATED'")" 8 \
    "the gateway holds 8 images with previews"

# The day's worklist: the first study's item, and one not yet done.
today=$(TZ=UTC date +%Y%m%d)
DAY=$(TZ=UTC date +%Y-%m-%d)
item() {
	printf '{"schema_version":1,"action_id":"act-%s","action_type":"worklist.create_item","parameters":{"worklist_item":{"accession_number":"%s","participant":{"nhs_number":"9990008881","name":"%s","birth_date":"19700101","sex":"F"},"scheduled":{"date":"%s","time":"%s"},"procedure":{"modality":"MG","study_description":"Screening Mammography"}}}}\n' \
	    "$1" "$1" "$2" "$today" "$3"
}
{ item "$ACC1" 'FIRST^WOMAN' 083000; item ACCLATER 'LATER^<I>' 160000; } |
    mwlsync apply >/dev/null 2>>"$T/mwl.log"

# A relay job for the cloud queue, as relaysend leaves one it retries.
mkdir -p "$V/spool/relay/new"
printf 'kind=image\nobject=%s\nattempts=3\nerror=HTTP 503: service unavailable\n' \
    "$(sql "$PACS_DB" 'SELECT object_hash FROM instances LIMIT 1')" \
    >"$V/spool/relay/new/1700000000.000000.1_0"

gatewayctl report --html "$T/report.html" --date "$DAY" >"$T/out" 2>"$T/report.err"
is "$?" 0 "gatewayctl report --html writes the page (exit 0)"
is "$(cat "$T/out")" "" "... and prints nothing"
ok "it is one HTML file" grep -q '^<!DOCTYPE html>' "$T/report.html"
is "$(grep -o '<img class="preview"[^>]*src="data:image/png;base64,' "$T/report.html" | wc -l | tr -d ' ')" 8 \
    "every preview is embedded in it as a data: URI"
ok "it refers to no other file or server (no src or href but data: and #)" \
    sh -c "! grep -Eo '(src|href)=\"[^\"#][^\"]*\"' '$T/report.html' | grep -v '^src=\"data:'"
ok "it allows nothing else to load (Content-Security-Policy)" \
    grep -q "Content-Security-Policy\" content=\"default-src 'none'; img-src data:" "$T/report.html"
ok "it has no script" sh -c "! grep -qi '<script' '$T/report.html'"
ok "the worklist shows the day's items" \
    sh -c "grep -q '<td>08:30</td><td>$ACC1</td><td>SCHEDULED</td>' '$T/report.html' && grep -q '<td>16:00</td><td>ACCLATER</td>' '$T/report.html'"
ok "... with the images received for each" grep -q "<td>$ACC1</td>.*<td><a href=\"#study-[0-9]*\">4</a></td></tr>" "$T/report.html"
ok "each study is there by its accession number" \
    sh -c "grep -q '>Study $ACC1</h3>' '$T/report.html' && grep -q '>Study $ACC2</h3>' '$T/report.html'"
hash=$(sql "$PACS_DB" "SELECT object_hash FROM instances ORDER BY id LIMIT 1")
path=$(sql "$PACS_DB" "SELECT storage_path FROM objects WHERE hash = '$hash'")
ok "each image says where it is stored (path and hash)" \
    sh -c "grep -q '>$path</code>' '$T/report.html' && grep -q 'sha256 <code>$(echo "$hash" | cut -c1-16)' '$T/report.html'"
ok "... its upload to the cloud (held: no cloud configured)" grep -q '<span class="warn">HELD</span>, 0 attempts' "$T/report.html"
ok "... and that Query/Retrieve can serve it" grep -q '<td>retrievable</td>' "$T/report.html"
ok "the cloud queue shows the waiting job, its attempts and last error" \
    grep -q '<tr><td>image</td><td>1</td><td>0</td><td>[0-9]*d[0-9]*h</td><td>3</td><td>HTTP 503: service unavailable</td></tr>' "$T/report.html"
ok "the quarantine lists the entry with its reason" \
    grep -q '<td class="bad">no DICM prefix' "$T/report.html"
ok "the open alerts include the quarantine's" \
    grep -q '<div class="alert"><b>quarantine</b>: 1 file in quarantine' "$T/report.html"

# Patient names: the page is a file, not a terminal.
ok "without --names no patient name is on the page" \
    sh -c "! grep -Eq 'FIRST|LATER\\^|Q&#39;|&lt;B&gt;|Ødegård|Müller|Núñez|Brien|Smith|Søren' '$T/report.html'"
gatewayctl report --html "$T/names.html" --date "$DAY" --names 2>>"$T/report.err"
ok "with --names they are" \
    sh -c "grep -q 'FIRST^WOMAN' '$T/names.html' && grep -q 'LATER^&lt;I&gt;' '$T/names.html'"
ok "... escaped as HTML (a name holding < & \" ')" grep -q '&lt;B&gt;&amp;&quot;Q&#39;^X' "$T/names.html"
ok "... never raw" sh -c "! grep -q '<B>&\"Q' '$T/names.html' && ! grep -q '<I>' '$T/names.html'"

# What a person sees: headless Chromium loads the page from the file.
shot=$SHOTS/8000-report-html.png
"$GW_ROOT/t/tools/page-check" "file://$T/names.html" "$shot" "$T/chrome" >"$T/seen.json" 2>"$T/check.err"
is "$?" 0 "headless Chromium loads the page"
diag "screenshot: $shot"
seen() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$T/seen.json" "$1"; }
is "$(seen 'len(d["images"])')" 8 "it shows 8 images"
is "$(seen 'sum(1 for i in d["images"] if i["complete"] and i["width"] > 0)')" 8 "... every preview decoded"
is "$(seen 'd["console"]')" "[]" "no console error or warning"
is "$(seen 'd["requests"]')" "[]" "no request for anything outside the page"
ok "the screenshot is a PNG" sh -c "head -c 8 '$shot' | od -An -c | grep -q 'P   N   G'"

# Atomic: a browser never reads half a page; a page that cannot be
# written leaves the old one.
before=$(sha256sum "$T/report.html")
gatewayctl report --html "$T/report.html" --date "$DAY" 2>>"$T/report.err"
is "$(ls -a "$T" | grep -c '^\.report\.html')" 0 "a new page replaces the old one through a rename (no temporary file left)"
gatewayctl report --html "$T/no/such/dir/report.html" 2>"$T/nodir.err"
is "$?" 73 "a page that cannot be written: EX_CANTCREAT"
ok "... logged" grep -q 'msg="report not written"' "$T/nodir.err"
gatewayctl report >/dev/null 2>&1
is "$?" 64 "report without --html is a usage error"
gatewayctl studies --html "$T/x.html" >/dev/null 2>&1
is "$?" 64 "--html with another command is a usage error"

# An empty day says so.
gatewayctl report --html "$T/empty.html" --date 2001-01-01 2>>"$T/report.err"
ok "a day with nothing received says so" grep -q 'No image was received on this day' "$T/empty.html"
ok "... and asks whether the clinic's list arrived" grep -q "has the clinic.s list arrived" "$T/empty.html"

ok "no patient name or NHS number in the logs" \
    sh -c "! grep -Eq 'FIRST|LATER\\^|<B>|9990008881' '$T/stderr.log' '$T/report.err' '$T/nodir.err'"
done_testing
