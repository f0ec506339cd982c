#!/bin/sh
# 3050-j2k-isolation: JPEG 2000 is decoded in a child process (OpenJPEG
# has memory errors on hostile input: bench/fuzz/RESULTS.md).  A decoder
# that dies (here: SIGKILL from outside, as a crash or the OOM killer
# would) fails that one image with a clear reason; the program that asked
# lives on and renders the next image.
. "${0%/*}/lib.sh"

F=$CORPUS/wg04/MG1_J2KI.dcm
[ -f "$F" ] || skip_all "the corpus's MG1_J2KI.dcm is not there"

ok "the JPEG 2000 mammogram renders at full size" dcmthumb --size 4664 "$F" "$T/full.png"

# decoder_of PID: the pid of PID's child (the decoder), if it has one.
decoder_of() { ps -o pid= --ppid "$1" | tr -d ' ' | head -n 1; }
caught=0
for try in 1 2 3; do
	rm -f "$T/a.png" "$T/b.png"
	dcmthumb --size 4664 "$F" "$T/a.png" "$F" "$T/b.png" 2>"$T/thumb.err" &
	pid=$!
	wait_until 10 sh -c "[ -n \"\$(ps -o pid= --ppid $pid)\" ]"
	child=$(decoder_of "$pid")
	[ -n "$child" ] && kill -KILL "$child" 2>/dev/null && caught=1
	wait "$pid"
	rc=$?
	[ "$caught" = 1 ] && grep -q 'decoder died' "$T/thumb.err" && break
	caught=0
	diag "try $try: the decode ended before it was killed"
done
is "$caught" 1 "a decoder child is killed in the middle of its decode"
is "$rc" 65 "dcmthumb exits EX_DATAERR (one image failed), not by a signal"
ok "... saying why" grep -q 'reason="JPEG 2000: the decoder died on this image (signal 9)"' "$T/thumb.err"
ok "... with no preview for that image" test ! -e "$T/a.png"
ok "... and renders the next image" cmp -s "$T/full.png" "$T/b.png"
done_testing
