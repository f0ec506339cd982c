#!/bin/sh
# lib/cloud/identity without a network: production's credential rule,
# token replies, the HIMDS key file check, JWT expiry, renewal, the cache.
. "${0%/*}/lib.sh"
"$GW_BUILD/t/identity_test" "$T"
