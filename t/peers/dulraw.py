#!/usr/bin/python3
"""dulraw.py: raw DICOM upper-layer bytes for the network robustness tests.

    dulraw.py PORT garbage|hugelen|baditem|pdata-first|silent|stall-mid-pdu
    dulraw.py PORT hold N CMD...   hold N associations open, run CMD, then
                                release them (exit 0 when CMD failed and
                                every held association released cleanly)

The called AE title is SCREENING_MWL, or $DULRAW_CALLED.

Each probe prints what the server did: "closed" (EOF or reset),
"abort" (an A-ABORT PDU) or "pdu-N", and the seconds it took.
"""
import os
import socket
import struct
import subprocess
import sys
import time


def item(t, body):
    return struct.pack('>BBH', t, 0, len(body)) + body


def assoc_rq(called=None, calling=b'DULRAW'):
    if called is None:      # the called AE: DULRAW_CALLED, else mwlscp's
        called = os.environ.get('DULRAW_CALLED', 'SCREENING_MWL').encode()
    pctx = item(0x20, bytes([1, 0, 0, 0]) + item(0x30, b'1.2.840.10008.1.1') +
                item(0x40, b'1.2.840.10008.1.2'))
    user = item(0x50, item(0x51, struct.pack('>I', 16384)) +
                item(0x52, b'1.2.3.4'))
    body = (struct.pack('>HH', 1, 0) + called.ljust(16) + calling.ljust(16) +
            b'\0' * 32 + item(0x10, b'1.2.840.10008.3.1.1.1') + pctx + user)
    return struct.pack('>BBI', 1, 0, len(body)) + body


def connect(port):
    s = socket.create_connection(('127.0.0.1', port), 5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def outcome(s, timeout=15):
    """What the server does next: read until EOF or a whole PDU."""
    s.settimeout(timeout)
    t0 = time.time()
    data = b''
    try:
        while len(data) < 6 or len(data) < 6 + struct.unpack('>I', data[2:6])[0]:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except ConnectionResetError:
        pass
    except socket.timeout:
        return 'timeout', time.time() - t0
    if not data:
        return 'closed', time.time() - t0
    if data[0] == 7:
        return 'abort', time.time() - t0
    return 'pdu-%d' % data[0], time.time() - t0


def probe(port, kind):
    s = connect(port)
    if kind == 'garbage':
        s.sendall(b'\xde\xad\xbe\xef' * 64)
    elif kind == 'hugelen':
        s.sendall(struct.pack('>BBI', 1, 0, 0x7fffffff) + b'\0' * 64)
    elif kind == 'baditem':
        rq = bytearray(assoc_rq())
        # the application context item's length now runs past the PDU
        rq[6 + 68 + 2:6 + 68 + 4] = struct.pack('>H', 0xfff0)
        s.sendall(bytes(rq))
    elif kind == 'pdata-first':
        pdv = struct.pack('>IBB', 4, 1, 3) + b'\0\0'
        s.sendall(struct.pack('>BBI', 4, 0, len(pdv)) + pdv)
    elif kind == 'silent':
        pass
    elif kind == 'stall-mid-pdu':
        s.sendall(assoc_rq())
        what, _ = outcome(s)
        if what != 'pdu-2':
            print('not accepted: %s' % what)
            return 1
        s.sendall(b'\x04\x00\x00')     # three bytes of a P-DATA header
    what, secs = outcome(s)
    print('%s %.1f' % (what, secs))
    return 0


def hold(port, n, cmd):
    held = []
    for _ in range(n):
        s = connect(port)
        s.sendall(assoc_rq())
        what, _ = outcome(s)
        if what != 'pdu-2':
            print('held association %d not accepted: %s' % (len(held), what))
            return 1
        held.append(s)
    rc = subprocess.call(cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    ok = rc != 0
    print('extra association %s' % ('refused' if ok else 'ACCEPTED'))
    for s in held:
        s.sendall(struct.pack('>BBI', 5, 0, 4) + b'\0' * 4)
        what, _ = outcome(s)
        print('held association release: %s' % what)
        ok = ok and what == 'pdu-6'
        s.close()
    return 0 if ok else 1


def main():
    port = int(sys.argv[1])
    if sys.argv[2] == 'hold':
        return hold(port, int(sys.argv[3]), sys.argv[4:])
    return probe(port, sys.argv[2])


sys.exit(main())
