#!/bin/sh
# storescp-hook run by hand never takes a file from elsewhere unless told
# (--take), and storescp's own lines reach the log as logfmt.
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

# storescp's own "W: ..." lines, wrapped as gatewayd wraps them.
sh "$GATEWAYD" _logwrap storescp sh -c '
	echo "W: DIMSE Warning: (STORESCU,SCREENING_PACS): sendMessage: unable to convert"
	echo "E: Association Request Failed" >&2
	echo "I: Association Received"
	echo "ts=2026-12-02T00:00:00Z level=info prog=storescp-hook msg=stored"
	exit 3' 2>"$T/wrap.log"
is "$?" 3 "the wrapper exits with storescp's status"
ok "a W: line becomes a logfmt warning with a timestamp" \
    grep -Eq '^ts=[0-9T:-]+Z level=warn prog=storescp msg="DIMSE Warning: \(STORESCU,SCREENING_PACS\): sendMessage: unable to convert"$' "$T/wrap.log"
ok "an E: line on stderr becomes an error" grep -q '^ts=.* level=error prog=storescp msg="Association Request Failed"$' "$T/wrap.log"
ok "an I: line is info (shown at LOG_LEVEL=info)" grep -q 'level=info prog=storescp msg="Association Received"' "$T/wrap.log"
ok "the hook's own logfmt lines pass unchanged" grep -qx 'ts=2026-12-02T00:00:00Z level=info prog=storescp-hook msg=stored' "$T/wrap.log"
is "$(grep -cv '^ts=' "$T/wrap.log")" 0 "every line is logfmt"

# And the real storescp under gatewayd, with a peer that drops the
# association (storescp warns), then an image.
unset GATEWAY_DATA_DIR
rm -rf "$T/var"
start_gateway
python3 -c 'import socket, sys; s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.send(b"\x01\x00\x00\x00\x00\x10" + b"x" * 8); s.close()' "$GW_PORT"
storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$PYDICOM_FILES/CT_small.dcm" 2>/dev/null
indexed() { [ "$(sql "$T/var/pacs.db" 'SELECT count(*) FROM instances')" = 1 ]; }
wait_for 20 "the image is indexed" indexed
stop_gateway
ok "storescp's complaint about the bad peer is in the log as logfmt" \
    grep -q '^ts=.* level=[a-z]* prog=storescp msg=' "$T/gatewayd.log"
is "$(grep -cv '^ts=' "$T/gatewayd.log")" 0 "every line of the gateway's log is logfmt"
done_testing
