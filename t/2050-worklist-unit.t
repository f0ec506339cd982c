#!/bin/sh
# worklist.db: C-FIND matching rules, MPPS state machine, outbox, reset.
. "${0%/*}/lib.sh"
"$GW_BUILD/t/worklist_test" "$T"
