#!/bin/sh
# 0240-schema-migrations: a pacs.db or worklist.db left at any earlier
# schema version is brought up to the same schema as a new one (tables,
# indexes and the views, which are written once, in sql/pacs.sql's last
# section, and made again after the last version applied).
. "${0%/*}/lib.sh"

# upto SQL N: the text of versions 1..N of a schema file, then its
# user_version (no views: a version changes only tables).
upto() {
	awk -v n="$2" '
		/^-- views$/ { exit }
		/^-- version: / { v = $3 }
		v >= 1 && v <= n { print }
		END { printf "PRAGMA user_version=%d;\n", n }' "$1"
}
schema() { sqlite3 "$1" "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"; }
# open DB DIR: the programs open (and migrate, or make) the database
open_db() {
	case $1 in
	pacs) GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$2 dcmindex --init ;;
	worklist) printf '{"action_type":"echo"}\n' |
		GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$2 mwlsync apply ;;
	esac >/dev/null 2>&1
}

for db in pacs worklist; do
	sql=$GW_ROOT/sql/$db.sql
	max=$(sed -n 's/^-- version: //p' "$sql" | sort -n | tail -1)
	mkdir -p "$T/fresh-$db"
	open_db "$db" "$T/fresh-$db"
	schema "$T/fresh-$db/$db.db" >"$T/fresh-$db.schema"
	ok "a new $db.db has its schema" test -s "$T/fresh-$db.schema"
	n=1
	while [ "$n" -lt "$max" ]; do
		d=$T/$db-$n
		mkdir -p "$d"
		upto "$sql" "$n" | sqlite3 "$d/$db.db"
		open_db "$db" "$d"
		schema "$d/$db.db" >"$d.schema"
		ok "$db.db at version $n is migrated to the same schema as a new one" \
			cmp -s "$T/fresh-$db.schema" "$d.schema"
		n=$((n + 1))
	done
done
ok "pacs.db's views are there" sh -c "sqlite3 '$T/fresh-pacs/pacs.db' 'SELECT count(*) FROM stored_instances, study_summary, series_summary, storage_stats, verify_failures' >/dev/null"
done_testing
