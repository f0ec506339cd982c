#!/bin/sh
# 1740-hook-watch: storescp-hook --watch takes each file storescp writes
# into its association's directory in incoming/ (lib/archive incoming)
# without an exec per file: a file once the next one of its association
# exists, the last once the association is over, however it ends, or
# once storescp closed it and all stayed quiet; never one still
# arriving.  A file storescp failed to receive is neither
# stored nor quarantined.  Killed, the hook loses nothing: started again
# it takes what waits; the sweep takes an ended association's directory
# and leaves a live one alone.
. "${0%/*}/lib.sh"

export GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$T/var
IN=$GATEWAY_DATA_DIR/incoming
STORE=$GATEWAY_DATA_DIR/store
PORT=$(free_port)
PPORT=$(free_port)
"$GW_ROOT/t/tools/gen-mammo" "$T/a" 3 --seed 1740 >/dev/null
"$GW_ROOT/t/tools/gen-mammo" "$T/b" 3 --seed 1741 >/dev/null
"$GW_ROOT/t/tools/gen-mammo" "$T/c" 40 --seed 1742 >"$T/c.list"

objects() { find "$STORE" -name '*.dcm' 2>/dev/null | wc -l | tr -d ' '; }
stored() { [ "$(grep -c 'msg=stored' "$T/$1.log")" -ge "$2" ]; }
no_assoc_dirs() { [ -z "$(ls -d "$IN"/assoc-* 2>/dev/null)" ]; }

bg hook storescp-hook --watch
HOOK=$BG_PID
wait_for 20 "storescp-hook --watch watches incoming/" grep -q 'msg=watching' "$T/hook.log"
bg front storescp-front --bind 127.0.0.1 --port "$PORT"
wait_for 20 "storescp-front listens" grep -q 'msg=listening' "$T/front.log"

# --- an association that lasts: a proxy holds it inside the second file
s1=$(stat -c %s "$T/a/mg00000.dcm")
s2=$(stat -c %s "$T/a/mg00001.dcm")
bg proxy "$GW_ROOT/t/tools/stall-proxy" "$PPORT" "$PORT" $((s1 + s2 / 2 + 16384))
PROXY=$BG_PID
wait_for 10 "the stalling proxy listens" grep -q listening "$T/proxy.out"
storescu -aec SCREENING_PACS 127.0.0.1 "$PPORT" "$T"/a/*.dcm >"$T/scu1.log" 2>&1 &
SCU=$!
wait_for 20 "the transfer stops inside the second file" grep -q stalled "$T/proxy.out"
wait_for 20 "the first file is taken while the association lasts" stored hook 1
dir=$(ls -d "$IN"/assoc-* 2>/dev/null)
is "$(echo "$dir" | wc -l)" 1 "the association has a directory of its own in incoming/"
is "$(ls "$dir" | wc -l | tr -d ' ')" 1 "it holds the second file, still arriving: not taken"
is "$(objects)" 1 "one object is in the store"
ok "its .sender names the calling AE title" grep -qx 'calling_aet=STORESCU' "$dir/.sender"
ok "... and the peer" grep -q '^peer=127\.0\.0\.1$' "$dir/.sender"

# storescp holds the association's lock itself: its front may die.
spid=$(sed -n 's/.*storescp_pid=\([0-9]*\).*/\1/p' "$T/front.log" | head -n 1)
fpid=$(ps -o ppid= -p "$spid" | tr -d ' ')
kill -KILL "$fpid"
wait_until 10 sh -c "! kill -0 $fpid 2>/dev/null"
ok "storescp outlives its front, killed with SIGKILL" kill -0 "$spid"
ok "the sweep leaves a live association's directory alone" storescp-hook --sweep
is "$(ls "$dir" | wc -l | tr -d ' ')" 1 "... its file still there"
ok "... and its .sender" test -f "$dir/.sender"

# Cut inside the second file: storescp removes it and ends.
kill -USR2 "$PROXY"
wait_for 20 "the association over, its directory is removed" no_assoc_dirs
wait "$SCU"
ok "storescu saw its association fail" test "$?" -ne 0
is "$(grep -c 'msg=stored' "$T/hook.log")" 1 "the file that never arrived whole is not stored"
is "$(count_files "$GATEWAY_DATA_DIR/quarantine")" 0 "... nor quarantined"
is "$(objects)" 1 "the store holds the first file only"

ok "storescu sends the three again" storescu -aec SCREENING_PACS 127.0.0.1 "$PORT" "$T"/a/*.dcm
wait_for 20 "each is taken" stored hook 4
wait_for 10 "the directory goes with the association" no_assoc_dirs
is "$(objects)" 3 "three objects in the store (the first once)"

# --- a modality that holds its association open after its last image
PPORT2=$(free_port)
bg proxy2 "$GW_ROOT/t/tools/stall-proxy" "$PPORT2" "$PORT" release
PROXY2=$BG_PID
wait_for 10 "a proxy that holds the release listens" grep -q listening "$T/proxy2.out"
"$GW_ROOT/t/tools/gen-mammo" "$T/e" 1 --seed 1744 >/dev/null
storescu -aec SCREENING_PACS 127.0.0.1 "$PPORT2" "$T"/e/*.dcm >"$T/scu2.log" 2>&1 &
SCU=$!
wait_for 20 "the modality holds its association after its last image" grep -q stalled "$T/proxy2.out"
wait_for 30 "that image is taken once storescp closed it and all stayed quiet" stored hook 5
ok "... while the association still lasts" sh -c "ls -d '$IN'/assoc-* >/dev/null 2>&1"
kill -USR1 "$PROXY2"
wait "$SCU"
is "$?" 0 "the modality's release goes through"
wait_for 10 "... and the directory goes with the association" no_assoc_dirs
is "$(objects)" 4 "four objects in the store"

# --- the hook killed: the files wait; a new hook takes them
kill -KILL "$HOOK"
wait_until 10 sh -c "! kill -0 $HOOK 2>/dev/null"
ok "with the hook down, an association still stores" storescu -aec SCREENING_PACS 127.0.0.1 "$PORT" "$T"/b/*.dcm
is "$(count_files "$IN")" 3 "its three files wait in incoming/"
bg hook2 storescp-hook --watch
HOOK=$BG_PID
wait_for 20 "a hook started again takes them" stored hook2 3
wait_for 10 "... and removes their directory" no_assoc_dirs
is "$(objects)" 7 "seven objects in the store"

# --- the sweep takes an ended association's directory
kill -KILL "$HOOK"
wait_until 10 sh -c "! kill -0 $HOOK 2>/dev/null"
"$GW_ROOT/t/tools/gen-mammo" "$T/d" 2 --seed 1743 >/dev/null
ok "two files arrive with no hook" storescu -aec SCREENING_PACS 127.0.0.1 "$PORT" "$T"/d/*.dcm
ok "the sweep takes an ended association's files" sh -c 'storescp-hook --sweep 2>"$0"' "$T/sweep.log"
ok "... says so" grep -q 'msg="sweep done" files=2 associations=1 failed=0' "$T/sweep.log"
ok "... and removes its directory" no_assoc_dirs
is "$(objects)" 9 "nine objects in the store"
# A front killed while it made a directory leaves .assoc-*: the sweep
# removes it once it is a minute old, and nothing younger.
mkdir "$IN/.assoc-old" "$IN/.assoc-new"
echo calling_aet=X >"$IN/.assoc-old/.sender"
echo calling_aet=X >"$IN/.assoc-new/.sender"
touch -d '2 minutes ago' "$IN/.assoc-old"
ok "the sweep runs" sh -c 'storescp-hook --sweep 2>/dev/null'
ok "... removes an abandoned directory a front was making" test ! -e "$IN/.assoc-old"
ok "... and leaves one that may be in the making" test -f "$IN/.assoc-new/.sender"
rm -r "$IN/.assoc-new"

# --- killed in the middle of a stream, nothing is lost
bg hook3 storescp-hook --watch
HOOK=$BG_PID
wait_for 20 "a third hook watches" grep -q 'msg=watching' "$T/hook3.log"
storescu -aec SCREENING_PACS 127.0.0.1 "$PORT" "$T"/c/*.dcm >"$T/scu3.log" 2>&1 &
SCU=$!
wait_for 30 "40 files begin to arrive and to be taken" stored hook3 1
kill -KILL "$HOOK"
wait "$SCU"
is "$?" 0 "the modality's 40 stores all succeed"
bg hook4 storescp-hook --watch
wait_for 30 "the hook started again takes what is left" no_assoc_dirs
ok "dcmindex indexes everything queued" sh -c 'dcmindex --init && dcmindex --once'
cut -d' ' -f2 "$T/c.list" | sort -u >"$T/want"
sql "$GATEWAY_DATA_DIR/pacs.db" "SELECT sop_instance_uid FROM stored_instances" | sort -u >"$T/got"
is "$(comm -23 "$T/want" "$T/got" | wc -l | tr -d ' ')" 0 "every one of the 40 is indexed"
is "$(objects)" 49 "49 objects in the store"
ok "every object's SHA-256 equals its name" store_verified "$STORE"
is "$(count_files "$IN")" 0 "nothing is left in incoming/"
is "$(count_files "$GATEWAY_DATA_DIR/quarantine")" 0 "nothing is quarantined"
is "$(sql "$GATEWAY_DATA_DIR/pacs.db" "SELECT count(*) FROM stored_instances")" 49 "49 instances indexed, each once"

# An encapsulated object written in one go sits in the page cache in
# whole 2 MB folios, and a touch maps a whole one: the hook's parse walks
# every fragment, so it drops what it stepped over (DCM_MAPPED) or it
# would hold the whole object resident.
if command -v dcmcjpls >/dev/null; then
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4
	export ASAN_OPTIONS
	"$GW_ROOT/t/tools/gen-tomo" --frames 64 --size 1536x1280 "$T/tomo.dcm" >/dev/null
	dcmcjpls "$T/tomo.dcm" "$T/tomo-jls.dcm"
	/usr/bin/python3 -c 'import os, sys
b = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, b)
os.close(fd)' "$T/tomo-jls.dcm" "$IN/tomo-jls.dcm"
	mb=$(($(stat -c %s "$IN/tomo-jls.dcm") / 1048576))
	ok "the sweep stores a JPEG-LS tomosynthesis object ($mb MB)" \
	    "$GW_BUILD/t/maxrss" "$T/rss" "$GW_BIN/storescp-hook" --sweep
	kb=$(awk '$1 == "storescp-hook" { print $2 }' "$T/rss")
	ok "... and its peak resident memory stays far under the object's ($kb KiB)" \
	    test "$kb" -gt 0 -a "$kb" -lt $((mb * 1024 / 2))
else
	skip "dcmcjpls not installed"
	skip "dcmcjpls not installed"
fi
done_testing
