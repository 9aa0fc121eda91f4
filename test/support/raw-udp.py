#!/usr/bin/env python3
"""Sends one UDP datagram with a chosen source port (0 is allowed) through a raw
IPv4 socket: the kernel will not let an ordinary socket send from port 0.
Needs root (CAP_NET_RAW). Loopback only: refuses any other address.

usage: raw-udp.py SRC_HOST SRC_PORT DST_HOST DST_PORT HEX_PAYLOAD [COUNT]
"""
import socket
import struct
import sys


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def main() -> int:
    src, sport, dst, dport, payload_hex = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
    count = min(int(sys.argv[6]) if len(sys.argv) > 6 else 1, 10000)
    if not (src.startswith("127.") and dst.startswith("127.")):
        print("loopback only", file=sys.stderr)
        return 2
    payload = bytes.fromhex(payload_hex)
    ulen = 8 + len(payload)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_UDP, ulen)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = struct.pack("!HHHH", sport, dport, ulen, csum) + payload
    total = 20 + len(udp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0x1234, 0, 64, socket.IPPROTO_UDP, 0, socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for _ in range(count):
        s.sendto(ip + udp, (dst, 0))
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
