"""Throughput micro-check for the passive bulk path (not a test; perf_style.md A.4, Appendix A1).

Writes ~200k frames to a temporary pcap (the A1 mix: per 10 frames, 5 Ethernet/IPv4/TCP PSH-ACK
segments with 742 payload bytes, 3 bare ACKs, 2 DNS queries over UDP) and prints frames/s for
``iter_frames`` alone, and for ``iter_frames`` + ``decode`` (+ ``parse_dns`` on the DNS frames).

    python3 -m tests.passive.perf_probe [FRAMES] [--pcapng] [--anchors]     (from the repository root)

``--anchors`` also times scapy on the same file in the same run: ``RawPcapReader`` (bytes only)
over all frames and ``PcapReader`` (full dissection) over the first 20,000. Numbers from a
shared VM: compare ratios (A.4 measured dpkt decode at 58-76k pkt/s and scapy full dissection at
~5.5k pkt/s on this kind of machine), not absolute values.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import time
from pathlib import Path

from scanner.passive.decode import DecodeStats, decode
from scanner.passive.dns import parse_dns
from scanner.passive.reader import ReadStats, iter_frames


def _ipv4_checksumless(src: bytes, dst: bytes, proto: int, l4: bytes) -> bytes:
    # version/IHL, TOS, total length, id, flags/fragment, TTL, protocol, checksum (left 0), source, destination
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0x4000, 64, proto, 0, src, dst) + l4


def _templates() -> list[bytes]:
    eth = bytes.fromhex("44b295c40131" "001122334455" "0800")  # dst MAC, src MAC, EtherType IPv4
    cam, cloud, dns = bytes([198, 51, 100, 23]), bytes([203, 0, 113, 9]), bytes([198, 51, 100, 1])
    # TCP: ports, seq, ack, data offset 5 words, flags, window, checksum, urgent pointer
    data = struct.pack("!HHIIBBHHH", 40000, 443, 1000, 2000, 5 << 4, 0x18, 65535, 0, 0) + b"\x17\x03\x03" + b"x" * 739
    ack = struct.pack("!HHIIBBHHH", 443, 40000, 2000, 1742, 5 << 4, 0x10, 65535, 0, 0)
    query = (
        struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)  # id, flags (RD), QD=1, AN, NS, AR
        + b"\x03api\x05ulucu\x03com\x00"  # QNAME
        + struct.pack("!HH", 1, 1)  # QTYPE A, QCLASS IN
    )
    udp = struct.pack("!HHHH", 53000, 53, 8 + len(query), 0) + query
    tcp_data = eth + _ipv4_checksumless(cam, cloud, 6, data)
    tcp_ack = eth + _ipv4_checksumless(cloud, cam, 6, ack)
    dns_q = eth + _ipv4_checksumless(cam, dns, 17, udp)
    return [tcp_data] * 5 + [tcp_ack] * 3 + [dns_q] * 2


def write_pcap(path: Path, frames: int) -> None:
    templates = _templates()
    with open(path, "wb") as fh:
        # magic, version 2.4, thiszone, sigfigs, snaplen, LinkType Ethernet
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        rec = struct.Struct("<IIII")
        out = []
        for i in range(frames):
            frame = templates[i % 10]
            out.append(rec.pack(1_700_000_000 + i // 1000, (i % 1000) * 1000, len(frame), len(frame)))
            out.append(frame)
            if len(out) > 20000:
                fh.write(b"".join(out))
                out.clear()
        fh.write(b"".join(out))


def write_pcapng(path: Path, frames: int) -> None:
    templates = _templates()
    with open(path, "wb") as fh:
        # SHB: type, length 28, byte-order magic, version 1.0, section length -1, length again
        fh.write(struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28))
        # IDB: type 1, length 20, link type Ethernet, reserved, snaplen, length again
        fh.write(struct.pack("<IIHHII", 1, 20, 1, 0, 65535, 20))
        out = []
        for i in range(frames):
            frame = templates[i % 10]
            pad = (-len(frame)) % 4
            blen = 32 + len(frame) + pad
            units = (1_700_000_000 + i // 1000) * 1_000_000 + (i % 1000) * 1000
            out.append(struct.pack("<IIIIIII", 6, blen, 0, units >> 32, units & 0xFFFFFFFF, len(frame), len(frame)))
            out.append(frame + b"\0" * pad + struct.pack("<I", blen))
            if len(out) > 20000:
                fh.write(b"".join(out))
                out.clear()
        fh.write(b"".join(out))


def main() -> None:
    frames = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 200_000
    ng = "--pcapng" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("probe.pcapng" if ng else "probe.pcap")
        (write_pcapng if ng else write_pcap)(path, frames)
        size = os.path.getsize(path)
        print(f"{path.name}: {frames} frames, {size / 1e6:.1f} MB")
        for run in (1, 2):
            stats = ReadStats()
            t0 = time.perf_counter()
            n = sum(1 for _ in iter_frames(path, stats))
            t1 = time.perf_counter()
            assert n == frames == stats.packets, (n, stats)
            stats = ReadStats()
            dstats = DecodeStats()
            decoded = dns = 0
            t2 = time.perf_counter()
            for ts, linktype, frame in iter_frames(path, stats):
                pkt = decode(linktype, frame, ts, dstats)
                if pkt is not None:
                    decoded += 1
                    if pkt.dport == 53 and parse_dns(pkt.payload) is not None:
                        dns += 1
            t3 = time.perf_counter()
            assert decoded == frames and dns == frames // 5, (decoded, dns, dstats.as_dict())
            print(
                f"run {run}: iter_frames {frames / (t1 - t0):,.0f} frames/s; "
                f"iter_frames+decode(+parse_dns) {frames / (t3 - t2):,.0f} frames/s"
            )
        if "--anchors" in sys.argv:
            anchors(path, frames)


def anchors(path: Path, frames: int) -> None:
    from scapy.all import DNS, IP, PcapReader, RawPcapReader  # scapy.all: the layers must be loaded to dissect

    t0 = time.perf_counter()
    with RawPcapReader(str(path)) as raw:
        n = sum(1 for _ in raw)
    t1 = time.perf_counter()
    assert n == frames
    limit = min(frames, 20_000)
    t2 = time.perf_counter()
    with PcapReader(str(path)) as full:
        for i, pkt in enumerate(full):
            assert pkt[IP].src  # as A1: the IP source, and the DNS question on DNS packets
            if DNS in pkt:
                assert pkt[DNS].qd
            if i + 1 >= limit:
                break
    t3 = time.perf_counter()
    print(
        f"anchors: scapy RawPcapReader {frames / (t1 - t0):,.0f} frames/s; "
        f"scapy PcapReader full dissection {limit / (t3 - t2):,.0f} frames/s"
    )


if __name__ == "__main__":
    main()
