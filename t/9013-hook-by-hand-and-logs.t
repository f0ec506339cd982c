#!/bin/sh
# storescp-hook run by hand never takes a file from elsewhere unless told
# (--take), and storescp's own lines reach the log as logfmt, with the
# peer.
. "${0%/*}/lib.sh"

export GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$T/var
GATEWAYD="$GW_ROOT/pipeline/gatewayd"
dcmindex --init 2>/dev/null
mkdir -p "$T/var/incoming" "$T/mine"
cp "$PYDICOM_FILES/CT_small.dcm" "$T/mine/scan.dcm"
sum=$(sha256sum <"$T/mine/scan.dcm")

storescp-hook "$T/mine/scan.dcm" 2>"$T/hook.err"
is "$?" 77 "a file outside incoming/ is refused (EX_NOPERM)"
ok "... the file is still there, unchanged" sh -c "[ \"\$(sha256sum <'$T/mine/scan.dcm')\" = '$sum' ]"
ok "... nothing went to the store or the spool" \
    sh -c "test -z \"\$(find '$T/var' -type f -name '*.dcm')\" && test ! -e '$T/var/spool/index/new'"
ok "... and the log says why and how to insist" grep -q 'refused: not in the incoming directory.*--take' "$T/hook.err"
(cd "$T/mine" && storescp-hook scan.dcm 2>/dev/null)
is "$?" 77 "... also when given as a relative name"
ln -s "$T/mine" "$T/var/incoming/link"
storescp-hook "$T/var/incoming/link/scan.dcm" 2>/dev/null
is "$?" 77 "... also through a symbolic link inside incoming/"
ok "... still there" test -f "$T/mine/scan.dcm"
rm "$T/var/incoming/link"

ok "with --take it is taken" sh -c "storescp-hook --take '$T/mine/scan.dcm' 2>/dev/null"
ok "... moved into the store" sh -c "test ! -e '$T/mine/scan.dcm' && test -n \"\$(find '$T/var/store' -name '*.dcm')\""
cp "$PYDICOM_FILES/MR_small.dcm" "$T/var/incoming/mr.dcm"
ok "a file in incoming/ is taken as storescp gives it" sh -c "storescp-hook '$T/var/incoming/mr.dcm' X Y 127.0.0.1 2>/dev/null"
ok "... relative to incoming/ too" sh -c "cp '$PYDICOM_FILES/CT_small.dcm' '$T/var/incoming/ct2.dcm' &&
    cd '$T/var/incoming' && storescp-hook ct2.dcm 2>/dev/null"
storescp-hook --take --sweep 2>/dev/null
is "$?" 64 "--take with --sweep is a usage error"

# storescp's own lines, under gatewayd: storescp-front relays them with
# the peer and AE titles.  A peer that breaks off its association request
# (the front aborts it), then one that sends a broken P-DATA-TF once
# storescp has the association (storescp complains), then an image.
unset GATEWAY_DATA_DIR
rm -rf "$T/var"
start_gateway
python3 -c 'import socket, sys; s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.send(b"\x01\x00\x00\x00\x00\x10" + b"x" * 8); s.close()' "$GW_PORT"
python3 - "$GW_PORT" <<'PY'
import socket, struct, sys
def item(t, b): return struct.pack(">BBH", t, 0, len(b)) + b
ae = lambda s: s.encode().ljust(16)
pc = item(0x20, bytes([1, 0, 0, 0]) + item(0x30, b"1.2.840.10008.1.1") + item(0x40, b"1.2.840.10008.1.2"))
ui = item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.3.4"))
body = struct.pack(">HH", 1, 0) + ae("SCREENING_PACS") + ae("GARBLER") + b"\0" * 32 + item(0x10, b"1.2.840.10008.3.1.1.1") + pc + ui
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(struct.pack(">BBI", 1, 0, len(body)) + body)
s.recv(65536)
s.sendall(struct.pack(">BBI", 4, 0, 10) + struct.pack(">I", 200) + b"\x01\x03xxxx")
try:
    s.recv(100)
except OSError:
    pass
s.close()
PY
storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$PYDICOM_FILES/CT_small.dcm" 2>/dev/null
indexed() { [ "$(sql "$T/var/pacs.db" 'SELECT count(*) FROM instances')" = 1 ]; }
wait_for 20 "the image is indexed" indexed
stop_gateway
ok "a broken association request is logged with the peer" \
    grep -q '^ts=.* level=warn prog=storescp-front msg="association aborted" peer=127.0.0.1:[0-9]* error="peer closed the connection inside a PDU"' "$T/gatewayd.log"
ok "storescp's complaint about a bad peer is logfmt, with the peer and AE titles" \
    grep -q '^ts=.* level=error prog=storescp msg=".*PDV.*" peer=127.0.0.1:[0-9]* calling_aet=GARBLER called_aet=SCREENING_PACS$' "$T/gatewayd.log"
ok "the hook's own lines come through" grep -q '^ts=.* level=info prog=storescp-hook msg=stored ' "$T/gatewayd.log"
is "$(grep -cv '^ts=' "$T/gatewayd.log")" 0 "every line of the gateway's log is logfmt"
done_testing
