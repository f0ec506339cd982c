#!/bin/sh
# lib/cloud/request: images.request over a real pacs.db and relay spool (every
# reply of PROTOCOL.md §7, malformed requests, purged rows) and
# RELAY_UPLOAD_POLICY (t/unit/request_test.c).
. "${0%/*}/lib.sh"
"$GW_BUILD/t/request_test" "$T"
