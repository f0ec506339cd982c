#!/bin/sh
# 8010-metrics: gatewayctl metrics, the gateway's state in Prometheus's
# text format (checked with prometheus_client's parser and stricter rules
# of our own), each value against a known state: images received, upload
# states, spool depths and oldest ages, the relay queue, quarantine, disk
# free, child restarts, alerts, today's worklist; no patient data in any
# label.  --textfile writes node_exporter's textfile atomically, 0644.
. "${0%/*}/lib.sh"
exec 2>>"$T/stderr.log"

/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null ||
    skip_all "python3-prometheus-client not installed (tools/deps)"

export GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$T/var WORKLIST_TIMEZONE=UTC
V=$GATEWAY_DATA_DIR
mkdir -p "$V/incoming" "$V/run"
dcmindex --init 2>/dev/null
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 4 --size 64x48 --studies 1 --seed 81 >"$T/mg.list"
n=0
for f in "$T"/mg/*.dcm "$T/mg/mg00000.dcm"; do	# the first one twice
	n=$((n + 1))
	cp "$f" "$V/incoming/in$n"
	storescp-hook "$V/incoming/in$n" MAMMO1 SCREENING_PACS 127.0.0.1 2>>"$T/hook.log"
done
printf 'not DICOM\n' >"$V/incoming/junk"
storescp-hook "$V/incoming/junk" MAMMO1 SCREENING_PACS 127.0.0.1 2>>"$T/hook.log"
dcmindex --once 2>>"$T/index.log"
gatewayctl alerts 2>>"$T/alerts.log"	# raises the quarantine alert
rm -f "$V"/spool/thumb/new/*	# as if dcmthumb had made the previews

# Jobs: two for the cloud waiting (one queued 1700000000), one failed;
# one index job waiting.
R=$V/spool/relay
printf 'kind=image\nattempts=2\nerror=HTTP 503\n' >"$R/new/1700000000.000000.1_0"
printf 'kind=study.image_received\n' >"$R/new/study-event"
printf 'kind=image\n' >"$R/failed/parked"
printf 'HTTP 400\n' >"$R/failed/parked.reason"
printf 'object=x\n' >"$V/spool/index/new/$(date +%s).000000.1_0"
# gatewayd's records of its children (it is not running).
printf 'dcmindex dcmthumb\n' >"$V/run/children"
printf 'name=dcmindex\nstate=backoff\npid=\nrestarts=3\n' >"$V/run/dcmindex.state"
printf 'name=dcmthumb\nstate=running\npid=1\nrestarts=0\n' >"$V/run/dcmthumb.state"
# Today's worklist: one scheduled, one in progress.
today=$(TZ=UTC date +%Y%m%d)
for a in ACCM1 ACCM2; do
	printf '{"schema_version":1,"action_id":"act-%s","action_type":"worklist.create_item","parameters":{"worklist_item":{"accession_number":"%s","participant":{"nhs_number":"9990007771","name":"METRIC^%s","birth_date":"19700101","sex":"F"},"scheduled":{"date":"%s","time":"090000"},"procedure":{"modality":"MG"}}}}\n' "$a" "$a" "$a" "$today"
done | mwlsync apply >/dev/null 2>>"$T/mwl.log"
printf '{"action_type":"worklist.update_status","parameters":{"worklist_item":{"accession_number":"ACCM2","status":"IN PROGRESS"}}}\n' |
    mwlsync apply >/dev/null 2>>"$T/mwl.log"

gatewayctl metrics >"$T/metrics.txt" 2>"$T/metrics.err"
is "$?" 0 "gatewayctl metrics exits 0"

# The format: prometheus_client's parser, and each family with HELP and
# TYPE before its samples, names and label names as the format allows,
# one family per name.
/usr/bin/python3 - "$T/metrics.txt" >"$T/values" 2>"$T/parse.err" <<'PY'
import re, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
fams = list(text_string_to_metric_families(text))
assert text.endswith("\n"), "no final newline"
seen, current = set(), None
for line in text.splitlines():
    m = re.match(r"# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$", line)
    if m:
        if m.group(1) == "HELP":
            assert m.group(2) not in seen, "family twice: " + m.group(2)
            seen.add(m.group(2)); current = m.group(2); typed = False
        else:
            assert m.group(2) == current and m.group(3) in ("gauge", "counter"), line
            typed = True
        continue
    m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9]+)$', line)
    assert m, "not a sample: " + line
    assert m.group(1) == current and typed, "sample outside its family: " + line
for f in fams:
    if f.type == "counter":
        assert f.name + "_total" in seen, f.name
    for s in f.samples:
        key = s.name + "".join(",%s=%s" % kv for kv in sorted(s.labels.items()))
        print("%s %d" % (key, s.value))
PY
is "$?" 0 "the output parses as the Prometheus text format, every family with # HELP and # TYPE"
[ -s "$T/parse.err" ] && diag "$(cat "$T/parse.err")"
val() { awk -v k="$1" '$1 == k { print $2 }' "$T/values"; }

is "$(val gateway_info,pacs_aet=SCREENING_PACS,version=0.1.0)" 1 "gateway_info names the version and AE title"
is "$(val gateway_images_received_total)" 5 "images received: 5 receptions (one image sent twice)"
is "$(val gateway_upload_state,state=held) $(val gateway_upload_state,state=complete)" "4 0" \
    "upload states: the 4 images are held (no cloud configured), none complete"
is "$(grep -c '^gateway_upload_state{' "$T/metrics.txt")" 10 "... every upload state is given"
is "$(val gateway_spool_jobs,dir=new,stage=relay) $(val gateway_spool_jobs,dir=failed,stage=relay)" "2 1" \
    "spool depths: 2 relay jobs waiting, 1 failed (its .reason not counted)"
is "$(val gateway_spool_jobs,dir=new,stage=index)" 1 "... 1 index job waiting"
age=$(val gateway_spool_oldest_age_seconds,stage=relay)
want=$(( $(date +%s) - 1700000000 ))
ok "the relay's oldest job is as old as the time its name starts with ($age s)" \
    test "$age" -ge $((want - 5)) -a "$age" -le $((want + 5))
is "$(val gateway_spool_jobs,dir=new,stage=thumb) $(val gateway_spool_oldest_age_seconds,stage=thumb)" "0 0" \
    "an empty spool's oldest age is 0"
is "$(val gateway_relay_jobs,kind=image,state=pending) $(val gateway_relay_jobs,kind=image,state=failed) $(val gateway_relay_jobs,kind=study.image_received,state=pending)" \
    "1 1 1" "the relay queue per job kind: pending and failed"
is "$(val gateway_quarantine_files)" 1 "one file in quarantine"
is "$(val gateway_alert_active,alert=quarantine) $(val gateway_alert_active,alert=low_disk)" "1 0" \
    "the quarantine alert is open, low disk is not"
free=$(val "gateway_disk_free_bytes,path=$V")
dffree=$(( $(df -Pk "$V" | awk 'NR == 2 { print $4 }') * 1024 ))
ok "disk free for the data directory is what df says (within 64 MiB)" \
    test "$free" -ge $((dffree - 67108864)) -a "$free" -le $((dffree + 67108864))
is "$(val gateway_supervisor_up)" 0 "the supervisor is not running"
is "$(val gateway_child_restarts_total,child=dcmindex) $(val gateway_child_up,child=dcmindex)" "3 0" \
    "child restarts as gatewayd recorded them; a child of a stopped gatewayd is not up"
is "$(val gateway_worklist_items,state=scheduled) $(val gateway_worklist_items,state=in_progress)" "1 1" \
    "today's worklist: one scheduled, one in progress"
ok "no patient name, ID or birth date in the metrics" \
    sh -c "! grep -Eqi 'METRIC\\^|9990007771|19700101|Ødegård|Müller|Núñez|Brien|Smith|Søren' '$T/metrics.txt'"

# The textfile collector: DIR/screening_gateway.prom, written atomically.
mkdir -p "$T/prom"
gatewayctl metrics --textfile="$T/prom" >"$T/tf.out" 2>>"$T/metrics.err"
is "$?" 0 "metrics --textfile=DIR exits 0"
is "$(cat "$T/tf.out")" "" "... prints nothing"
is "$(ls -A "$T/prom")" "screening_gateway.prom" "... and leaves only screening_gateway.prom in DIR (no temporary file)"
is "$(stat -c %a "$T/prom/screening_gateway.prom")" 644 "... readable by node_exporter's user, whatever the umask"
is "$(grep '^# TYPE' "$T/prom/screening_gateway.prom")" "$(grep '^# TYPE' "$T/metrics.txt")" \
    "... the same families as on standard output"
mkdir -p "$T/prom2"
( umask 077; METRICS_TEXTFILE_DIR=$T/prom2 gatewayctl metrics --textfile 2>>"$T/metrics.err" )
ok "--textfile alone writes into METRICS_TEXTFILE_DIR" test -f "$T/prom2/screening_gateway.prom"
is "$(stat -c %a "$T/prom2/screening_gateway.prom")" 644 "... 0644 under umask 077 too"
gatewayctl metrics --textfile >/dev/null 2>"$T/nodir.err"
is "$?" 64 "--textfile without a directory or METRICS_TEXTFILE_DIR: EX_USAGE"
gatewayctl metrics --textfile="$T/missing" 2>"$T/missing.err"
is "$?" 73 "a directory that does not exist: EX_CANTCREAT"
ok "... logged" grep -q 'msg="metrics not written"' "$T/missing.err"

# Without pacs.db the families it feeds are left out, not given as 0.
GATEWAY_DATA_DIR=$T/empty gatewayctl metrics >"$T/empty.txt" 2>>"$T/metrics.err"
is "$?" 0 "metrics of a gateway with no pacs.db yet exits 0"
ok "... leaving out what pacs.db would say" sh -c "! grep -q '^gateway_upload_state' '$T/empty.txt' && grep -q '^gateway_supervisor_up 0' '$T/empty.txt'"
done_testing
