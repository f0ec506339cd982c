#!/bin/sh
# 0230-settings-table: one table of settings (lib/base/settings.c) is the
# truth for every program, gatewayd and gateway.env(5): every name the code
# reads has a row, the manual documents every row, and gatewayctl config
# checks a configuration before anything starts: the last of a repeated
# name wins, an unknown name is named with the likely intended one, a bad
# value refuses the start naming the setting and what it allows, and a
# production gateway's .env works unchanged.
. "${0%/*}/lib.sh"

TABLE=$GW_ROOT/lib/base/settings.c
MAN=$GW_ROOT/man/gateway.env.5
GATEWAYD="$GW_ROOT/pipeline/gatewayd"
rows() { sed -n 's/^	{ "\([A-Z][A-Z0-9_]*\)",.*/\1/p' "$TABLE" | sort -u; }
rows >"$T/rows"
ok "the table has rows" test "$(wc -l <"$T/rows")" -gt 80

# Every name a program reads (getenv, config_env, config_env_long, env();
# not the C library's own TMPDIR and TZDIR),
# and the *_BIND, *_ALLOWED_*, *_TLS_PORT names lib/dicomnet's scp makes.
grep -ohE '(getenv|config_env|config_env_long|[^_a-z]env)\("[A-Z][A-Z0-9_]+"' \
	"$GW_ROOT"/lib/*/*.c "$GW_ROOT"/bin/*.c | sed 's/.*("//; s/"$//' |
	grep -vxE 'TMPDIR|TZDIR' | sort -u >"$T/read"
for p in WORKLIST QR; do
	printf '%s\n' "${p}_BIND" "${p}_ALLOWED_AETS" "${p}_ALLOWED_HOSTS" "${p}_TLS_PORT"
done >>"$T/read"
ok "the code reads names" test "$(wc -l <"$T/read")" -gt 30
is "$(sort -u "$T/read" | comm -23 - "$T/rows" | tr '\n' ' ')" "" \
	"every setting the code reads has a row in the table"
for k in $(cat "$T/rows"); do
	grep -qw "$k" "$MAN" || echo "$k"
done >"$T/undocumented"
is "$(tr '\n' ' ' <"$T/undocumented")" "" "gateway.env(5) documents every row"
sed -n 's/^\.It Ev \([A-Z][A-Z0-9_]*\).*/\1/p; s/^\.It Ev .*, Ev \([A-Z][A-Z0-9_]*\).*/\1/p' "$MAN" |
	sort -u | comm -23 - "$T/rows" >"$T/extra"
is "$(tr '\n' ' ' <"$T/extra")" "" "gateway.env(5) documents no setting the table lacks"
"$GW_ROOT/tools/settings-md" "$TABLE" >"$T/settings.md"
ok "tools/settings-md prints every row" sh -c \
	'test "$(grep -c "^| [A-Z]" "$0")" -gt 80' "$T/settings.md"
sed -n '/^| where things are |/,/^(end of the settings table)$/p' "$GW_ROOT/README" |
	sed '/^(end of the settings table)$/d' | sed '$d' >"$T/readme.md"
ok "README's settings table is tools/settings-md's (every row, its default)" \
	diff -u "$T/settings.md" "$T/readme.md"
EXAMPLE=$GW_ROOT/pipeline/gateway.env.example
sed -n 's/^#\{0,1\}\([A-Z][A-Z0-9_]*\)=.*/\1/p' "$EXAMPLE" | sort -u >"$T/example"
is "$(comm -23 "$T/example" "$T/rows" | tr '\n' ' ')" "" \
	"every name in gateway.env.example is a row of the table"
for k in PACS_RETENTION_DAYS PACS_DISK_LOW_WATERMARK PACS_PURGE_INTERVAL \
    PACS_DISK_MIN_FREE PACS_VERIFY_MAX_MB_PER_SECOND PACS_DB_BACKUPS \
    QR_DESTINATIONS PACS_ALLOWED_AETS PACS_BIND CLOUD_API_RESOURCE; do
	grep -qx "$k" "$T/example" || echo "$k"
done >"$T/example-missing"
is "$(tr '\n' ' ' <"$T/example-missing")" "" \
	"... and it shows retention, the disk floor, Q/R, who may store and the cloud"

# Checking a configuration.
unset PACS_AET PACS_PORT WORKLIST_AET WORKLIST_PORT LOG_LEVEL GATEWAY_DATA_DIR
cd "$T" || exit 1
cat >"$T/site.env" <<'END'
PACS_AET=FIRST
PACS_PROT=4244
CLOUD_API_ENDPOIINT=https://example.invalid/api
PACS_AET=LAST
END
GATEWAY_ENV_FILE=$T/site.env gatewayctl config --check 2>"$T/check.err"
is "$?" 0 "warnings alone do not refuse a configuration"
ok "a repeated name: the last wins, and the check says so" \
	grep -q 'given twice: the last wins.* setting=PACS_AET .* line=4 earlier_line=1' "$T/check.err"
ok "an unknown name is named with the likely intended one" \
	grep -q 'not a setting.* setting=PACS_PROT .*did_you_mean=PACS_PORT' "$T/check.err"
ok "... a misspelt cloud endpoint too" \
	grep -q 'setting=CLOUD_API_ENDPOIINT .*did_you_mean=CLOUD_API_ENDPOINT' "$T/check.err"
GATEWAY_ENV_FILE=$T/site.env gatewayctl config >"$T/config.out" 2>&1
is "$(sed -n 's/^PACS_AET=//p' "$T/config.out")" LAST "gatewayctl config shows the last value"
ok "... and the unknown name as a comment, with its suggestion" \
	grep -q '^# PACS_PROT (line 2): not a setting; PACS_PORT?' "$T/config.out"

printf 'RELAY_UPLOAD_MODE=losless\nPACS_RETENTION_DAYS=thirty\n' >"$T/bad.env"
GATEWAY_ENV_FILE=$T/bad.env GATEWAY_DATA_DIR=$T/bad PACS_PORT=$(free_port) \
	sh "$GATEWAYD" run >/dev/null 2>"$T/bad.err"
is "$?" 78 "gatewayd run refuses bad values (EX_CONFIG)"
ok "... naming the setting and the values it allows" \
	grep -q 'setting=RELAY_UPLOAD_MODE .*losless.* is not one of: reduced, original, lossless' "$T/bad.err"
ok "... and a number that is not one" \
	grep -q 'setting=PACS_RETENTION_DAYS .*thirty.* is not a whole number from 0 to 36500' "$T/bad.err"
ok "... before anything starts" test ! -e "$T/bad/run/gatewayd.pid"
for v in PACS_PORT=99999 GATEWAY_DAILY_RESET=yes PACS_DISK_MIN_FREE=lots WORKLIST_AET=AN_AE_TITLE_TOO_LONG \
    PACS_ALLOWED_HOSTS=10.0.0.0/99 LOG_LEVEL=loud; do
	env GATEWAY_ENV_FILE=/dev/null "$v" gatewayctl config --check 2>/dev/null
	is "$?" 78 "gatewayctl config --check refuses $v"
done
GATEWAY_ENV_FILE=/dev/null QR_PORT=4244 gatewayctl config --check 2>"$T/ports.err"
is "$?" 78 "two ports the same are refused"
ok "... naming both" grep -q 'setting=QR_PORT other=PACS_PORT port=4244' "$T/ports.err"

# A production gateway's .env (its names: MWL_*, LOG_LEVEL=INFO, ...).
WL_PORT=$(free_port)
cat >"$T/prod.env" <<END
ENVIRONMENT=PROD
MWL_AET=PROD_MWL
MWL_PORT=$WL_PORT
MWL_DB_PATH=$T/prod/worklist.db
PACS_AET=PROD_PACS
BACKUP_PATH=$T/prod/backups
MAX_BACKUPS=5
LOG_LEVEL=INFO
LOG_FORMAT=%(asctime)s - %(message)s
UPLOAD_POLL_INTERVAL=2
UPLOAD_BATCH_SIZE=10
END
GATEWAY_ENV_FILE=$T/prod.env gatewayctl config --check 2>"$T/prod.err"
is "$?" 0 "production's .env passes the check"
ok "... with no warning" test ! -s "$T/prod.err"
GATEWAY_ENV_FILE=$T/prod.env gatewayctl config >"$T/prod.out" 2>&1
value() { sed -n "s/^$1=//p" "$T/prod.out"; }
is "$(value WORKLIST_AET) $(value WORKLIST_PORT) $(value PACS_DB_BACKUPS) $(value GATEWAY_BACKUP_DIR)" \
	"PROD_MWL $WL_PORT 5 $T/prod/backups" "production's names set ours (MWL_AET, MWL_PORT, MAX_BACKUPS, BACKUP_PATH)"
is "$(value LOG_LEVEL) $(value ENVIRONMENT)" "info prod" "... and INFO and PROD are lower-cased"
ok "gatewayctl config says which name and file each came from" \
	grep -q "^# from $T/prod.env, as production's MWL_PORT" "$T/prod.out"
ok "... production's names with no use here are listed as such" \
	grep -q '^# UPLOAD_POLL_INTERVAL: production.s' "$T/prod.out"
mkdir -p "$T/prod"
GATEWAY_ENV_FILE=$T/prod.env GATEWAY_DATA_DIR=$T/prod mwlscp --bind 127.0.0.1 2>"$T/mwlscp.log" &
MWL_PID=$!
on_exit "kill $MWL_PID 2>/dev/null"
wait_for 10 "mwlscp listens on MWL_PORT" port_open "$WL_PORT"
ok "... and answers as MWL_AET" echoscu -to 5 -aec PROD_MWL 127.0.0.1 "$WL_PORT"
ok "... with its worklist at MWL_DB_PATH" test -f "$T/prod/worklist.db"
kill "$MWL_PID"

# The store must be writable before anything starts.
mkdir -p "$T/ro/store"
if mount -t tmpfs -o ro,size=1m tmpfs "$T/ro/store" 2>/dev/null; then
	on_exit "umount -l '$T/ro/store' 2>/dev/null"
	GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$T/ro PACS_PORT=$(free_port) \
		sh "$GATEWAYD" run >/dev/null 2>"$T/ro.err"
	is "$?" 73 "a store that cannot be written refuses the start (EX_CANTCREAT)"
	ok "... naming the setting and the path" grep -q "PACS_STORAGE_PATH $T/ro/store is not writable" "$T/ro.err"
else
	skip "a read-only store needs a tmpfs mount (root)"
	skip "... naming the setting and the path"
fi
done_testing
