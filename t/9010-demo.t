#!/bin/sh
# make demo (tools/demo) in an operator's shell: GATEWAY_DATA_DIR and the
# cloud settings point at "production", and the demo touches neither.  It
# runs in a new directory of its own, says where, and keeps it.
. "${0%/*}/lib.sh"

PROD=$T/production
mkdir -p "$PROD/store/ab" "$T/tmp"
echo "the real index" >"$PROD/pacs.db"
echo "a stored image" >"$PROD/store/ab/cafe.dcm"
listing() { (cd "$PROD" && find . -exec ls -ld --time-style=+%s {} + | sort; cat pacs.db store/ab/cafe.dcm); }
before=$(listing)

GATEWAY_DATA_DIR=$PROD PACS_DB_PATH=$PROD/pacs.db \
CLOUD_API_ENDPOINT=https://127.0.0.1:1/production-cloud \
TMPDIR=$T/tmp GW_BIN=$GW_BIN \
    sh "$GW_ROOT/tools/demo" >"$T/demo.out" 2>&1
is "$?" 0 "the demo runs with GATEWAY_DATA_DIR set"
is "$(listing)" "$before" "the directory GATEWAY_DATA_DIR named is untouched"

dir=$(sed -n 's/^the demo.s data stays in \(.*\) (rm -r it when done)$/\1/p' "$T/demo.out")
case "$dir" in
"$T"/tmp/screening-gateway-demo.*) pass=0 ;;
*) pass=1 ;;
esac
is "$pass" 0 "it says where its own data went: a new directory under TMPDIR"
ok "... which holds the demo's index" test -s "$dir/pacs.db"
is "$(sqlite3 "$dir/pacs.db" 'SELECT count(*) FROM stored_instances')" 8 \
    "... with the eight demo images"
ok "the caller's cloud settings were not used (no relaysend)" \
    sh -c "! grep -q 'child=relaysend' '$dir/gateway.log'"

GATEWAY_DATA_DIR=$PROD TMPDIR=$T/tmp GW_BIN=$GW_BIN \
    sh "$GW_ROOT/tools/demo" >"$T/demo2.out" 2>&1
dir2=$(sed -n 's/^the demo.s data stays in \(.*\) (rm -r it when done)$/\1/p' "$T/demo2.out")
ok "a second demo gets a directory of its own" test -n "$dir2" -a "$dir2" != "$dir"
ok "... and leaves the first one's data alone" test -s "$dir/pacs.db"
done_testing
