#!/bin/sh
# lib/archive/purge: one object behind two rows, pending commitments (t/unit/purge_test.c).
. "${0%/*}/lib.sh"
"$GW_BUILD/t/purge_test" "$T"
