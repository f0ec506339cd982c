#!/bin/sh
# lib/base/config: gateway.env read as gatewayd reads it, the environment wins.
. "${0%/*}/lib.sh"
"$GW_BUILD/t/config_test" "$T"
