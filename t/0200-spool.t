#!/bin/sh
# The spool (maildir queue): enqueue, claim, finish, fail, recover, wake.
. "${0%/*}/lib.sh"
"$GW_BUILD/t/spool_test" "$T"
