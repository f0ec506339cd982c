#!/bin/sh
# The object store, durable writes and schema migration.
. "${0%/*}/lib.sh"
"$GW_BUILD/t/store_test" "$T"
