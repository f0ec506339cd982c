#!/bin/sh
# 8020-gatewayd-views: gatewayd keeps the day's page (GATEWAY_REPORT_HTML)
# and the metrics file (METRICS_TEXTFILE_DIR) written, each by a child of
# its own, from its start on; neither runs when its setting is unset.
. "${0%/*}/lib.sh"
exec 2>>"$T/stderr.log"

export GATEWAY_REPORT_HTML=$T/site/report.html METRICS_TEXTFILE_DIR=$T/prom
mkdir -p "$T/site" "$T/prom"
start_gateway
ok "gatewayd starts with a page and a metrics directory configured" kill -0 "$GATEWAYD_PID"
wait_for 60 "the day's page is written" test -s "$GATEWAY_REPORT_HTML"
wait_for 60 "the metrics file is written" test -s "$T/prom/screening_gateway.prom"
prom=$T/prom/screening_gateway.prom
wait_for 60 "the metrics see gatewayd and its children running" \
    sh -c "grep -q '^gateway_supervisor_up 1$' '$prom' && grep -q '^gateway_child_up{child=\"dcmindex\"} 1$' '$prom'"
ok "... the report and metrics children among them" \
    sh -c "grep -q '^gateway_child_up{child=\"report\"}' '$prom' && grep -q '^gateway_child_up{child=\"metrics\"}' '$prom'"
ok "the page is the day's, for this gateway" grep -q "<h1>SCREENING_PACS: $(date +%Y-%m-%d)</h1>" "$GATEWAY_REPORT_HTML"
ok "gatewayd status lists both children" \
    sh -c "sh '$GW_ROOT/pipeline/gatewayd' status 2>/dev/null | grep -q '^report ' && sh '$GW_ROOT/pipeline/gatewayd' status 2>/dev/null | grep -q '^metrics '"
ok "gatewayctl config shows the settings" \
    sh -c "gatewayctl config | grep -q '^GATEWAY_REPORT_HTML=$GATEWAY_REPORT_HTML' && gatewayctl config | grep -q '^METRICS_INTERVAL_SECONDS=60'"
stop_gateway
ok "gatewayd stops" sh -c "! kill -0 $GATEWAYD_PID 2>/dev/null"

cp "$T/gatewayd.log" "$T/first.log"

# Unset: no child for them.
unset GATEWAY_REPORT_HTML METRICS_TEXTFILE_DIR
rm -rf "$T/var"
GW_PORT=
start_gateway
wait_for 60 "gatewayd starts again without them" test -s "$T/var/run/children"
ok "... and runs neither child" sh -c "! grep -Eq '(^| )(report|metrics)( |$)' '$T/var/run/children'"
stop_gateway
ok "no error was logged" sh -c "! grep -q 'level=error' '$T/first.log' '$T/gatewayd.log'"
done_testing
