#!/usr/bin/env python3
"""One DNS A query over UDP, no dig needed: dnsq.py SERVER NAME -> the addresses, one a line.

Exits 1 when there is no answer (timeout, error rcode, no A record).
"""
import random, socket, struct, sys

server, name = sys.argv[1], sys.argv[2]
qid = random.randrange(1 << 16)
query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
query += struct.pack("!HH", 1, 1)  # A, IN
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(query, (server, 53))
try:
    resp, _ = s.recvfrom(4096)
except socket.timeout:
    sys.exit(f"dnsq: no answer from {server}")
rid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", resp[:12])
if rid != qid or flags & 0xF:
    sys.exit(f"dnsq: rcode {flags & 0xF} from {server}")


def skip_name(buf, i):
    while True:
        n = buf[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += n + 1


i = 12
for _ in range(qd):
    i = skip_name(resp, i) + 4
found = []
for _ in range(an):
    i = skip_name(resp, i)
    rtype, _, _, rdlen = struct.unpack("!HHIH", resp[i:i + 10])
    i += 10
    if rtype == 1 and rdlen == 4:
        found.append(socket.inet_ntoa(resp[i:i + 4]))
    i += rdlen
if not found:
    sys.exit(f"dnsq: no A record for {name}")
print("\n".join(found))
