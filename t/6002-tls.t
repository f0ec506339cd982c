#!/bin/sh
# 6002-tls: DICOM TLS beside the plain ports (issue 12): qrscp and mwlscp
# through lib/dicomnet/tls, storage through storescp-front (its TLS, then
# dcmtk's storescp behind it) under gatewayd.  dcmtk's
# echoscu, findscu and storescu +tls as clients: anonymous TLS, mutual
# TLS with a client certificate, a certificate from another CA, an
# expired one, a plain client on the TLS port and a TLS client on the
# plain one; a C-MOVE to a "tls" destination.  Each refusal is clean and logged; the servers keep serving.
. "${0%/*}/lib.sh"

"$GW_ROOT/t/relay/mkcerts" "$T/pki" all || { echo "1..0 # SKIP cannot make test certificates"; exit 0; }
P=$T/pki
GATEWAY_DATA_DIR=$T/var
export GATEWAY_DATA_DIR
mkdir -p "$GATEWAY_DATA_DIR/run"
unset GATEWAY_TLS_CA QR_ALLOWED_AETS WORKLIST_ALLOWED_AETS

QRP=$QR_PORT QRT=$(free_port)
# echo_tls PORT [dcmtk TLS options]: C-ECHO to qrscp over TLS.
echo_tls() {
	_p=$1; shift
	echoscu -to 5 "$@" +cf "$P/ca.pem" -aec SCREENING_QR 127.0.0.1 "$_p"
}
echo_plain() { echoscu -to 5 -aec SCREENING_QR 127.0.0.1 "$QRP"; }

# --- a TLS port without client certificates ---
qrscp --tls-port "$QRT" --tls-cert "$P/server.pem" 2>"$T/nokey.err"
is "$?" 78 "a TLS port without a key exits EX_CONFIG"
ok "... saying what is missing" grep -q 'GATEWAY_TLS_KEY' "$T/nokey.err"
qrscp --tls-port "$QRT" --tls-cert "$P/server.pem" --tls-key "$P/client.key" 2>"$T/mismatch.err"
is "$?" 78 "a key that is not the certificate's exits EX_CONFIG"

bg qrscp qrscp --bind 127.0.0.1 --port "$QRP" --tls-port "$QRT" \
    --tls-cert "$P/server.pem" --tls-key "$P/server.key" --artim-seconds 3
QR_PID=$BG_PID
wait_for 20 "qrscp listens on its TLS port" port_open "$QRT"
ok "... and on its plain port" port_open "$QRP"
wait_for 10 "it says so" grep -q "msg=listening bind=127.0.0.1 port=$QRP tls_port=$QRT client_certs=no" "$T/qrscp.log"
ok "C-ECHO over TLS (anonymous client)" echo_tls "$QRT" +tla
wait_for 10 "... logged with the protocol" grep -q 'msg="TLS connection" peer=127.0.0.1:[0-9]* tls="TLSv1.[23] ' "$T/qrscp.log"
ok "C-ECHO on the plain port beside it" echo_plain
not_ok "a plain client on the TLS port is refused" echoscu -to 5 -aec SCREENING_QR 127.0.0.1 "$QRT"
wait_for 10 "... logged as not TLS" grep -q 'msg="TLS handshake failed".*hint="not TLS' "$T/qrscp.log"
not_ok "a TLS client on the plain port is refused" echo_tls "$QRP" +tla
wait_for 10 "... logged as a TLS handshake on the plain port" \
    grep -q 'a TLS handshake on the plain DICOM port' "$T/qrscp.log"
not_ok "a client trusting another CA refuses our server" \
    echoscu -to 5 +tla +cf "$P/rogue-ca.pem" -aec SCREENING_QR 127.0.0.1 "$QRT"
ok "after all that, TLS and plain C-ECHO still work" sh -c "
    echoscu -to 5 +tla +cf '$P/ca.pem' -aec SCREENING_QR 127.0.0.1 $QRT &&
    echoscu -to 5 -aec SCREENING_QR 127.0.0.1 $QRP"
kill -TERM "$QR_PID"
wait_for 15 "qrscp stops" sh -c "! kill -0 $QR_PID 2>/dev/null"

# --- mutual TLS: client certificates from GATEWAY_TLS_CA ---
WLP=$WORKLIST_PORT WLT=$(free_port)
mkdir -p "$T/wl"
GATEWAY_TLS_CERT=$P/server.pem GATEWAY_TLS_KEY=$P/server.key GATEWAY_TLS_CA=$P/ca.pem \
WORKLIST_TLS_PORT=$WLT WORKLIST_DB_PATH=$T/wl/worklist.db \
    bg mwlscp mwlscp --bind 127.0.0.1 --port "$WLP" --artim-seconds 3
wait_for 20 "mwlscp listens on WORKLIST_TLS_PORT" port_open "$WLT"
wait_for 10 "... requiring client certificates" grep -q "tls_port=$WLT client_certs=required" "$T/mwlscp.log"
wl_tls() { echoscu -to 5 "$@" +cf "$P/ca.pem" -aec SCREENING_MWL 127.0.0.1 "$WLT"; }
ok "a client with a certificate from the CA gets C-ECHO" wl_tls +tls "$P/client.key" "$P/client.pem"
wait_for 10 "... its subject is logged" grep -q 'client="/CN=MODALITY_TLS"' "$T/mwlscp.log"
ok "... and a worklist C-FIND over TLS" \
    findscu -to 5 -W +tls "$P/client.key" "$P/client.pem" +cf "$P/ca.pem" \
    -aec SCREENING_MWL 127.0.0.1 "$WLT" -k PatientName
not_ok "a client without a certificate is refused" wl_tls +tla
not_ok "a certificate from another CA is refused" wl_tls +tls "$P/rogue-client.key" "$P/rogue-client.pem"
wait_for 10 "... logged with the reason" grep -q 'TLS handshake failed.*certificate\|TLS handshake failed.*unknown ca\|TLS handshake failed.*verify failed' "$T/mwlscp.log"
not_ok "an expired certificate is refused" wl_tls +tls "$P/expired-client.key" "$P/expired-client.pem"
wait_for 10 "... logged as expired" grep -q 'TLS handshake failed.*expired' "$T/mwlscp.log"
ok "the plain worklist port still answers" echoscu -to 5 -aec SCREENING_MWL 127.0.0.1 "$WLP"
ok "... and so does the TLS one" wl_tls +tls "$P/client.key" "$P/client.pem"

# --- storage over TLS under gatewayd (storescp-front) ---
CT_SMALL=$PYDICOM_FILES/CT_small.dcm
GWD=$T/gw
PT=$(free_port) PP=$(free_port)
cat >"$T/gateway.env" <<ENV
GATEWAY_DATA_DIR=$GWD
PACS_PORT=$PP
PACS_TLS_PORT=$PT
GATEWAY_TLS_CERT=$P/server.pem
GATEWAY_TLS_KEY=$P/server.key
GATEWAY_TLS_CA=$P/ca.pem
ENV
unset GATEWAY_DATA_DIR
GATEWAY_ENV_FILE=$T/gateway.env WORKLIST_PORT=$(free_port) GW_BIN=$GW_BIN \
    bg gatewayd sh "$GW_ROOT/pipeline/gatewayd" run
wait_for 30 "storescp-front listens on PACS_TLS_PORT under gatewayd" port_open "$PT"
stored() { [ "$(sqlite3 "$GWD/pacs.db" 'SELECT count(*) FROM instances' 2>/dev/null)" = "$1" ]; }
ok "storescu +tls with a client certificate stores an image" \
    storescu -to 10 +tls "$P/client.key" "$P/client.pem" +cf "$P/ca.pem" \
    -aec SCREENING_PACS 127.0.0.1 "$PT" "$CT_SMALL"
wait_for 30 "... and it is indexed" stored 1
not_ok "storescu +tls without a certificate is refused" \
    storescu -to 10 +tla +cf "$P/ca.pem" -aec SCREENING_PACS 127.0.0.1 "$PT" "$CT_SMALL"
not_ok "a plain storescu on the TLS port is refused" \
    storescu -to 10 -aec SCREENING_PACS 127.0.0.1 "$PT" "$CT_SMALL"
ok "the plain storage port beside it still stores" \
    storescu -to 10 -aec SCREENING_PACS 127.0.0.1 "$PP" "$PYDICOM_FILES/MR_small.dcm"
wait_for 30 "... indexed too" stored 2
GATEWAY_ENV_FILE=$T/gateway.env sh "$GW_ROOT/pipeline/gatewayd" status >"$T/status.out" 2>&1
ok "gatewayd status lists storescp-front running" grep -Eq '^storescp-front +running ' "$T/status.out"
# --- C-MOVE to a "tls" destination (dcmtk storescp +tls), mutual TLS ---
. "$GW_ROOT/t/qr/lib.sh"
GATEWAY_DATA_DIR=$T/qrvar
qr_data
"$GW_ROOT/t/tools/gen-mammo" "$T/mg" 2 --studies 1 --seed 602 >"$T/mg.list"
STUDY=$(head -n 1 "$T/mg.list" | cut -d' ' -f3)
ok "two mammograms stored and indexed" qr_fill "$T"/mg/*.dcm
PD=$(free_port) QM=$(free_port)
mkdir -p "$T/dest"
bg st-tls storescp +tls "$P/server.key" "$P/server.pem" -pw +cf "$P/ca.pem" -rc \
    -aet DEST_TLS -od "$T/dest" "$PD"
wait_for 20 "a TLS storescp destination listens" port_open "$PD"
printf 'DEST_TLS 127.0.0.1 %s tls\n' "$PD" >"$T/qr-dests"
GATEWAY_TLS_CERT=$P/server.pem GATEWAY_TLS_KEY=$P/server.key GATEWAY_TLS_CA=$P/ca.pem \
    qr_start qrscp-mv "$QM" --destinations "$T/qr-dests"
movescu -v -to 10 -S -aec SCREENING_QR -aem DEST_TLS 127.0.0.1 "$QM" \
    -k QueryRetrieveLevel=STUDY -k StudyInstanceUID="$STUDY" >"$T/mv.out" 2>&1
ok "C-MOVE to the TLS destination succeeds" grep -aq 'Final Move Response (Success)' "$T/mv.out"
is "$(find "$T/dest" -type f | wc -l | tr -d ' ')" 2 "... and both images arrived over TLS"
ok "... byte for byte as stored" same_as_stored dest
ok "no sanitizer report in any log" sh -c "! grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error' '$T'/*.log"
done_testing
