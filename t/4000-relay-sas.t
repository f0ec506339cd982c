#!/bin/sh
# lib/cloud/relay: SAS tokens (PROTOCOL.md §1 vectors, cross-checked with openssl), URLs, token command, accept.
. "${0%/*}/lib.sh"
"$GW_BUILD/t/relay_test" "$(printf 'http%%3A%%2F%%2Fcontoso.servicebus.windows.net%%2Fhc1\n1700000000' | openssl dgst -sha256 -binary -hmac 'dGVzdGtleXZhbHVlMTIzNDU2Nzg5MA==' | openssl base64)"
