# t/qr/commit.sh: what the storage commitment tests (t/62xx) share;
# sourced after t/lib.sh.

# ingest_mammograms COUNT SEED: start the gateway, send COUNT generated
# mammograms (one study) with storescu, wait until all are indexed; their
# "CLASS:INSTANCE" pairs, by SOP Instance UID, go to $T/refs.
ingest_mammograms() {
	start_gateway || { echo "Bail out! gatewayd did not start"; cat "$T/gatewayd.log"; exit 1; }
	"$GW_ROOT/t/tools/gen-mammo" "$T/mg" "$1" --studies 1 --seed "$2" >"$T/mg.list"
	ok "storescu sends $1 mammograms to the gateway" \
	    storescu -aec SCREENING_PACS 127.0.0.1 "$GW_PORT" "$T"/mg/*.dcm
	wait_for 60 "all $1 are indexed" indexed_count "$1"
	sql "$PACS_DB" "SELECT sop_class_uid || ':' || sop_instance_uid FROM instances ORDER BY sop_instance_uid" >"$T/refs"
}

indexed_count() {
	[ "$(sql "$PACS_DB" "SELECT count(*) FROM instances")" = "$1" ]
}

# commit_request AE TXUID MODE [ARG...]: one N-ACTION from AE to qrscp on
# $QR_PORT with t/peers/commit.js (see there); its output on stdout.
commit_request() {
	_ae=$1; shift
	(cd "$GW_ROOT" && node -r ./t/peers/nodelay.js t/peers/commit.js request \
	    "$QR_PORT" SCREENING_QR "$_ae" "$@") 2>>"$T/commit.err"
}
