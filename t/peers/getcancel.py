#!/usr/bin/python3
"""getcancel.py: a C-GET requester that sends C-CANCEL, for t/6110.

    getcancel.py PORT CALLED_AE STUDY_UID SOP_CLASS [CANCEL_AFTER]

Proposes Study Root GET and SOP_CLASS (Implicit VR Little Endian, with
the SCP role), sends a C-GET of the study, answers every C-STORE with
Success and, after CANCEL_AFTER (1) of them, sends a C-CANCEL.  Prints
"stores=N status=XXXX" (the final C-GET response's status, hex) and
exits 0 when the association was released cleanly.  dcmtk's getscu has
no cancel option; this is the smallest client that has one.
"""
import socket
import struct
import sys

STUDY_GET = b'1.2.840.10008.5.1.4.1.2.2.3'
IMPLICIT = b'1.2.840.10008.1.2'


def item(t, body):
    return struct.pack('>BBH', t, 0, len(body)) + body


def uid(u):
    return u + b'\0' if len(u) % 2 else u


def pctx(cid, abstract):
    return item(0x20, bytes([cid, 0, 0, 0]) + item(0x30, abstract) +
                item(0x40, IMPLICIT))


def assoc_rq(called, sop_class):
    role = struct.pack('>H', len(sop_class)) + sop_class + bytes([0, 1])
    user = item(0x50, item(0x51, struct.pack('>I', 65536)) +
                item(0x52, b'1.2.3.4') + item(0x54, role))
    body = (struct.pack('>HH', 1, 0) + called.ljust(16) +
            b'GETCANCEL'.ljust(16) + b'\0' * 32 +
            item(0x10, b'1.2.840.10008.3.1.1.1') + pctx(1, STUDY_GET) +
            pctx(3, sop_class) + user)
    return struct.pack('>BBI', 1, 0, len(body)) + body


def elem(group, el, value):
    return struct.pack('<HHI', group, el, len(value)) + value


def command(elems):
    body = b''.join(elem(0, e, v) for e, v in sorted(elems.items()))
    return elem(0, 0, struct.pack('<I', len(body))) + body


def us(v):
    return struct.pack('<H', v)


def parse(data):
    out, p = {}, 0
    while p + 8 <= len(data):
        g, e, n = struct.unpack_from('<HHI', data, p)
        out[(g, e)] = data[p + 8:p + 8 + n]
        p += 8 + n
    return out


class Link:
    def __init__(self, port):
        self.s = socket.create_connection(('127.0.0.1', port), 10)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.settimeout(30)

    def read(self, n):
        b = b''
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise EOFError('closed')
            b += c
        return b

    def pdu(self):
        t, _, n = struct.unpack('>BBI', self.read(6))
        return t, self.read(n)

    def send_pdv(self, cid, is_cmd, data):
        pdv = struct.pack('>IBB', len(data) + 2, cid, (1 if is_cmd else 0) | 2)
        self.s.sendall(struct.pack('>BBI', 4, 0, len(pdv) + len(data)) +
                       pdv + data)

    def message(self):
        """(context, command dict, data set bytes or None)."""
        parts = {True: b'', False: b''}
        cmd, ctx = None, None
        while True:
            t, body = self.pdu()
            if t != 4:
                raise EOFError('PDU type %d' % t)
            p = 0
            while p < len(body):
                n, ctx, hdr = struct.unpack_from('>IBB', body, p)
                is_cmd = bool(hdr & 1)
                parts[is_cmd] += body[p + 6:p + 4 + n]
                p += 4 + n
                if hdr & 2 and is_cmd:
                    cmd = parse(parts[True])
                    if us(0x0101) == cmd.get((0, 0x800)):
                        return ctx, cmd, None
                elif hdr & 2:
                    return ctx, cmd, parts[False]


def main():
    port, called, study, sop_class = (int(sys.argv[1]), sys.argv[2].encode(),
                                      sys.argv[3].encode(),
                                      sys.argv[4].encode())
    after = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    link = Link(port)
    link.s.sendall(assoc_rq(called, sop_class))
    t, _ = link.pdu()
    if t != 2:
        print('not accepted: PDU type %d' % t)
        return 1
    ident = elem(8, 0x52, b'STUDY ') + elem(0x20, 0x0d, uid(study))
    link.send_pdv(1, True, command({
        0x0002: uid(STUDY_GET), 0x0100: us(0x0010), 0x0110: us(7),
        0x0700: us(0), 0x0800: us(0)}))
    link.send_pdv(1, False, ident)
    stores = 0
    while True:
        ctx, cmd, _ = link.message()
        field = struct.unpack('<H', cmd[(0, 0x100)])[0]
        if field == 0x0001:             # C-STORE-RQ: take it
            stores += 1
            link.send_pdv(ctx, True, command({
                0x0002: cmd[(0, 2)], 0x0100: us(0x8001),
                0x0120: cmd[(0, 0x110)], 0x0800: us(0x0101),
                0x0900: us(0), 0x1000: cmd[(0, 0x1000)]}))
            if stores == after:
                link.send_pdv(1, True, command({
                    0x0100: us(0x0FFF), 0x0120: us(7), 0x0800: us(0x0101)}))
        elif field == 0x8010:           # C-GET-RSP
            status = struct.unpack('<H', cmd[(0, 0x900)])[0]
            if status not in (0xFF00, 0xFF01):
                break
    link.s.sendall(struct.pack('>BBI', 5, 0, 4) + b'\0' * 4)
    t, _ = link.pdu()
    print('stores=%d status=%04X' % (stores, status))
    return 0 if t == 6 else 1


sys.exit(main())
