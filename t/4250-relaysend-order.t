#!/bin/sh
# lib/cloud/sendqueue: the order relaysend sends in: priority=high first, then
# round robin over studies; a pass ends early when a producer writes
# (t/unit/sendqueue_test.c).
. "${0%/*}/lib.sh"
"$GW_BUILD/t/sendqueue_test" "$T"
