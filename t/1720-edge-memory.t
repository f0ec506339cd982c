#!/bin/sh
# 1720-edge-memory: bounded memory at the storage edge (issue 19): with a
# 2 GB object in flight, storescp (bit-preserving, +B: straight to disk)
# and storescp-hook --watch (parse touching headers only, hash streamed) each
# peak under 64 MB of resident memory.  storescp's peak is read from
# /proc/PID/status (VmHWM) while the object arrives and from its
# resource use when it ends; the hook reports its own.
. "${0%/*}/lib.sh"

LIMIT_KB=$((64 * 1024))
free_kb=$(df -Pk "$T" | awk 'NR == 2 { print $4 }')
[ "$free_kb" -gt $((6 * 1024 * 1024)) ] || skip_all "needs 6 GB free under $T"

export GATEWAY_ENV_FILE=/dev/null GATEWAY_DATA_DIR=$T/var PACS_DISK_MIN_FREE=1GiB
PORT=$(free_port)
# A 2 GiB native 16-bit image (32768 x 32768), its pixels a sparse hole.
/usr/bin/python3 - "$T/big.dcm" <<'PY'
import struct, sys
def el(g, e, vr, val):
    if len(val) % 2:
        val += b"\0"
    if vr in ("OB", "OW"):
        return struct.pack("<HH2sHI", g, e, vr.encode(), 0, len(val)) + val
    return struct.pack("<HH2sH", g, e, vr.encode(), len(val)) + val
us = lambda v: struct.pack("<H", v)
MG, SOP = b"1.2.840.10008.5.1.4.1.1.1.2", b"1.2.826.0.1.3680043.10.1720.1"
meta = (el(2, 1, "OB", b"\0\1") + el(2, 2, "UI", MG) + el(2, 3, "UI", SOP)
        + el(2, 0x10, "UI", b"1.2.840.10008.1.2.1") + el(2, 0x12, "UI", b"1.2.826.0.1.3680043.10.1720"))
meta = el(2, 0, "UL", struct.pack("<I", len(meta))) + meta
ds = (el(8, 0x16, "UI", MG) + el(8, 0x18, "UI", SOP) + el(8, 0x50, "SH", b"BIG1720")
      + el(8, 0x60, "CS", b"MG") + el(0x20, 0xD, "UI", b"1.2.826.0.1.3680043.10.1720.2")
      + el(0x20, 0xE, "UI", b"1.2.826.0.1.3680043.10.1720.3") + el(0x28, 2, "US", us(1))
      + el(0x28, 4, "CS", b"MONOCHROME2") + el(0x28, 0x10, "US", us(32768))
      + el(0x28, 0x11, "US", us(32768)) + el(0x28, 0x100, "US", us(16))
      + el(0x28, 0x101, "US", us(16)) + el(0x28, 0x102, "US", us(15)) + el(0x28, 0x103, "US", us(0)))
n = 32768 * 32768 * 2
with open(sys.argv[1], "wb") as f:
    f.write(b"\0" * 128 + b"DICM" + meta + ds + struct.pack("<HH2sHI", 0x7FE0, 0x10, b"OW", 0, n))
    f.truncate(f.tell() + n)
PY
bg hook storescp-hook --watch
bg front storescp-front --bind 127.0.0.1 --port "$PORT"
wait_for 20 "storescp-front listens" grep -q 'msg=listening' "$T/front.log"

storescu -to 10 -aec SCREENING_PACS 127.0.0.1 "$PORT" "$T/big.dcm" >"$T/storescu.out" 2>&1 &
SEND=$!
wait_until 30 grep -q 'storescp_pid=' "$T/front.log"
pid=$(sed -n 's/.*storescp_pid=\([0-9]*\).*/\1/p' "$T/front.log" | head -n 1)
# VmHWM of storescp while the object arrives, until it exits.
hwm=0
while [ -r "/proc/$pid/status" ]; do
	v=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null)
	[ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
	sleep 0.2
done
wait "$SEND"
is "$?" 0 "storescu sends a 2 GB object"
diag "storescp VmHWM seen while it arrived: $hwm kB"
ok "storescp's resident memory (VmHWM) stays under 64 MB while it arrives" test "$hwm" -gt 0 -a "$hwm" -lt "$LIMIT_KB"
peak() { sed -n "s/.*$1.*peak_rss_kb=\([0-9]*\).*/\1/p" "$T/front.log" "$T/hook.log" | head -n 1; }
wait_for 120 "the hook stores it" grep -q 'prog=storescp-hook msg=stored .*size=2147' "$T/hook.log"
diag "peak resident memory: storescp $(peak 'msg="storescp done"') kB, storescp-hook $(peak 'msg=stored') kB"
ok "... storescp's peak, from its resource use, is under 64 MB" test "$(peak 'msg="storescp done"')" -lt "$LIMIT_KB"
ok "... and the hook's" test "$(peak 'msg=stored')" -lt "$LIMIT_KB"
ok "the object is in the store, named by its SHA-256" store_verified "$GATEWAY_DATA_DIR/store"
is "$(count_files "$GATEWAY_DATA_DIR/incoming")" 0 "nothing is left in incoming/"
done_testing
