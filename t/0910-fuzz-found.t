#!/bin/sh
# 0910-fuzz-found: the fixes for what fuzzing found behave as promised
# (t/unit/fuzz_found.c; the inputs themselves are replayed by 0900).
. "${0%/*}/lib.sh"

test_bin=$GW_BUILD/t/fuzz_found
[ -x "$test_bin" ] || skip_all "$test_bin not built (make units)"
exec "$test_bin"
