# t/qr-lib.sh: what the Query/Retrieve tests share (source after lib.sh).
#
#   qr_archive DIR          generate t/tools/gen-qrdata into DIR, sweep and
#                           index it into $GATEWAY_DATA_DIR (checks)
#   qr_find NAME PORT AE OPTIONS KEY...
#                           findscu (OPTIONS: -P or -S, and more) with
#                           these keys (-k each; '~' for a blank in a
#                           value); responses one line each, sorted, in
#                           $T/r/NAME.txt (asked-for keys, in the order
#                           asked; absent ones empty when QR_ABSENT_EMPTY=1)
#                           and NAME.all (every element); findscu's
#                           output in NAME.log
#   qr_final NAME           the final status findscu reported
#   $QR_ROOT                the archive's UID root

QR_ROOT=1.2.826.0.1.3680043.9.7433.1
QR_TOOLS=$GW_ROOT/t/tools
mkdir -p "$T/r"

qr_archive() {
	mkdir -p "$1" "$GATEWAY_DATA_DIR/incoming"
	ok "the test archive is generated" sh -c \
	    '"$0/gen-qrdata" "$1" >"$1.txt" && cp "$1"/*.dcm "$2/incoming/"' \
	    "$QR_TOOLS" "$1" "$GATEWAY_DATA_DIR"
	ok "the sweep takes it in" sh -c \
	    'storescp-hook --sweep 2>"$0/hook.log"' "$T"
	ok "dcmindex indexes it" sh -c 'dcmindex --once 2>"$0/index.log"' "$T"
	is "$(sql "$GATEWAY_DATA_DIR/pacs.db" \
	    'SELECT count(*) FROM instances')" 13 "13 instances indexed"
}

qr_find() {
	_name=$1; _port=$2; _ae=$3; _model=$4; shift 4
	_keys=
	_n=$#
	while [ "$_n" -gt 0 ]; do
		case ${1%%=*} in
		SpecificCharacterSet) ;;
		*) _keys=${_keys:+$_keys,}${1%%=*} ;;
		esac
		set -- "$@" -k "$(printf '%s' "$1" | tr '~' ' ')"
		shift
		_n=$((_n - 1))
	done
	rm -rf "$T/r/$_name"
	mkdir -p "$T/r/$_name"
	# shellcheck disable=SC2086
	findscu -v -to 10 $_model -X -od "$T/r/$_name" -aec "$_ae" "$@" \
	    127.0.0.1 "$_port" >"$T/r/$_name.log" 2>&1
	"$QR_TOOLS/qr-responses" "$T/r/$_name" --keys "$_keys" \
	    ${QR_ABSENT_EMPTY:+--absent-empty} >"$T/r/$_name.txt"
	"$QR_TOOLS/qr-responses" "$T/r/$_name" >"$T/r/$_name.all"
}

qr_final() {
	sed -n 's/.*Received Final Find Response (\(.*\))$/\1/p' \
	    "$T/r/$1.log" | tail -1
}
