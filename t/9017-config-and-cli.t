#!/bin/sh
# gatewayd config prints every setting with its value and where it came
# from; the command line says what is wrong, not only the usage.
. "${0%/*}/lib.sh"

GATEWAYD="$GW_ROOT/pipeline/gatewayd"
unset GATEWAY_DATA_DIR PACS_AET PACS_PORT WORKLIST_PORT WORKLIST_BIND LOG_LEVEL
printf 'PACS_AET=FILE_PACS\nRELAY_JOBS=4\n' >"$T/gateway.env"
cd "$T" || exit 1
GATEWAY_ENV_FILE=$T/gateway.env PACS_PORT=4999 sh "$GATEWAYD" config >"$T/config.out" 2>&1
is "$?" 0 "gatewayd config exits 0"
value() { sed -n "s/^$1=//p" "$T/config.out"; }
# group KEY: the comment heading KEY's group.
group() { awk -v k="$1=" '/^# / { g = $0 } index($0, k) == 1 { print g }' "$T/config.out"; }
is "$(value RELAY_JOBS) $(value RELAY_UPLOAD_MODE) $(value RELAY_RETRY_MAX_SECONDS)" "4 reduced 600" \
    "relay settings show their effective values, defaults included"
for k in WORKLIST_ALLOWED_AETS WORKLIST_CHARSET GATEWAY_THUMBS_DIR WORKLIST_STATION_AET \
    GATEWAY_ALERT_INTERVAL_SECONDS RELAY_NO_MATCH QR_PORT; do
	grep -q "^$k=" "$T/config.out" || missing="${missing:-} $k"
done
is "${missing:-}" "" "every setting is listed"
is "$(value WORKLIST_CHARSET)|$(value WORKLIST_STATION_AET)|$(value GATEWAY_THUMBS_DIR)" \
    "ISO_IR 100|ANY|$T/var/thumbs" "... with its default"
is "$(group PACS_PORT)" "# from the environment" "a value from the environment says so"
is "$(group PACS_AET)" "# from $T/gateway.env" "a value from the file names the file"
is "$(group RELAY_UPLOAD_MODE)" "# defaults" "a default says so"
is "$(grep -o '^[A-Z_]*=' "$T/config.out" | sort | uniq -d)" "" "each setting once"
GATEWAY_ENV_FILE=$T/config.out sh "$GATEWAYD" config >"$T/again.out" 2>&1
ok "the output is itself a gateway.env that gives the same values" \
    sh -c "grep '^[A-Z]' '$T/config.out' | sort >'$T/a' && grep '^[A-Z]' '$T/again.out' | sort >'$T/b' && cmp -s '$T/a' '$T/b'"

sh "$GATEWAYD" frobnicate >/dev/null 2>"$T/unknown.err"
is "$?" 64 "an unknown command is a usage error"
ok "... naming it" grep -q "unknown command 'frobnicate'" "$T/unknown.err"
sh "$GATEWAYD" config extra >/dev/null 2>"$T/extra.err"
ok "a stray argument is named" grep -q 'config takes no arguments' "$T/extra.err"

: >"$T/a-file"
GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$T/a-file PACS_PORT=$(free_port) sh "$GATEWAYD" run >/dev/null 2>"$T/file.err"
is "$?" 73 "a data directory that is a file is refused (EX_CANTCREAT)"
ok "... saying why" grep -q "cannot create data directory $T/a-file: a file of that name exists" "$T/file.err"
GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$T/a-file/var PACS_PORT=$(free_port) sh "$GATEWAYD" run >/dev/null 2>"$T/under.err"
ok "... and one under a file" grep -q "cannot create data directory $T/a-file/var: Not a directory" "$T/under.err"

# --help describes each option; man pages show --help and --version.
ok "modality-emu --help describes its options" sh -c 'modality-emu --help | grep -q "^  --transfer-syntax T  explicit"'
ok "dcmthumb --help offers --retry-failed" sh -c 'dcmthumb --help | grep -q "^  --retry-failed"'
ok "storescp-hook --help offers --take" sh -c 'storescp-hook --help | grep -q "^  --take"'
for m in mwlsync.1 modality-emu.1 storescp-hook.1 dcmthumb.1 gatewayctl.8; do
	sed -n '/^\.Sh SYNOPSIS/,/^\.Sh DESCRIPTION/p' "$GW_ROOT/man/$m" | grep -q -- '-help | -version' ||
	    nohelp="${nohelp:-} $m"
done
is "${nohelp:-}" "" "man SYNOPSIS shows --help and --version"
missing=
for p in "$GW_BIN"/*; do
	n=${p##*/}
	ls "$GW_ROOT/man/$n".[158] >/dev/null 2>&1 || missing="$missing $n"
done
is "$missing" "" "every program has a man page"
done_testing
