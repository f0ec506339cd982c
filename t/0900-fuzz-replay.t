#!/bin/sh
# 0900-fuzz-replay: every libFuzzer target (fuzz/fuzz_*.c), built with
# fuzz/replay.c under ASan+UBSan, is fed every file of its seed corpus
# (fuzz/seeds/<target>/, which holds the crashes fuzzing found): a crash,
# a leak, a UB report or a broken promise (abort) fails, so a regression
# is caught without fuzzing.
. "${0%/*}/lib.sh"

targets=$(ls "$GW_ROOT"/fuzz/fuzz_*.c | sed 's,.*/fuzz_,,; s,\.c$,,')
[ -n "$targets" ] || skip_all "no fuzz targets"
export TMPDIR="$T"
for t in $targets; do
	bin=$GW_BUILD/replay/fuzz_$t
	seeds=$GW_ROOT/fuzz/seeds/$t
	if [ ! -x "$bin" ]; then
		fail "fuzz_$t replay driver is built ($bin missing: make units)"
		continue
	fi
	n=$(find "$seeds" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | wc -l)
	ok "fuzz_$t has a seed corpus of its own ($n files in fuzz/seeds/$t)" \
	    test "$n" -gt 0
	"$bin" "$seeds" >"$T/$t.out" 2>"$T/$t.err"
	rc=$?
	[ $rc = 0 ] || sed 's/^/# /' "$T/$t.err" | tail -40 >&2
	is "$rc:$(cat "$T/$t.out")" "0:replayed $n inputs" \
	    "fuzz_$t replays its $n seeds with no crash, leak or UB report"
done
# The worklist target's temporary database is gone after the run.
is "$(ls -d "$T"/fuzz_worklist.* 2>/dev/null)" "" \
    "fuzz_worklist removes its temporary worklist.db"
done_testing
