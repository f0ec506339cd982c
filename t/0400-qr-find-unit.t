#!/bin/sh
# qrscp's C-FIND engine over a real pacs.db: levels, matching rules,
# hierarchical keys, character sets, retrieval keys, bad identifiers.
. "${0%/*}/lib.sh"
"$GW_BUILD/t/qr_find_test" "$T"
