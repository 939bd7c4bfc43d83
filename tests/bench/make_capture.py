"""Build a large pcap (or pcapng) for throughput benchmarks by repeating a real lab capture.

Every copy shifts the timestamps (so flows look like a long recording) and keeps frames byte
for byte. Usage: python3 -m tests.bench.make_capture SOURCE.pcap OUT.pcap[ng] TARGET_BYTES
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from scanner.passive.reader import ReadStats, iter_frames


def make(source: Path, out: Path, target_bytes: int, *, pcapng: bool = False) -> tuple[int, int]:
    """Write ``out`` until it reaches ``target_bytes``: pcap (microseconds, Ethernet) or pcapng (one
    section, one Ethernet interface at the default microsecond resolution, Enhanced Packet Blocks)."""
    frames = [(ts, frame) for ts, _lt, frame in iter_frames(source, ReadStats())]
    if not frames:
        raise SystemExit(f"{source} has no frames")
    linktype = 1
    span = frames[-1][0] - frames[0][0] + 1.0
    written = packets = 0
    with out.open("wb") as fh:
        if pcapng:
            # Section Header Block (byte-order magic, version 1.0, unknown length), Interface Description Block
            fh.write(struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28))
            fh.write(struct.pack("<IIHHII", 1, 20, linktype, 0, 262144, 20))
        else:
            fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        copy = 0
        while written < target_bytes:
            shift = copy * span
            for ts, frame in frames:
                t = ts + shift
                if pcapng:
                    units = int(t * 1e6)
                    pad = -len(frame) % 4
                    total = 32 + len(frame) + pad
                    fh.write(struct.pack("<IIIIIII", 6, total, 0, units >> 32, units & 0xFFFFFFFF, len(frame),
                                         len(frame)))
                    fh.write(frame + b"\0" * pad + struct.pack("<I", total))
                    written += total
                else:
                    sec = int(t)
                    fh.write(struct.pack("<IIII", sec, int((t - sec) * 1e6), len(frame), len(frame)))
                    fh.write(frame)
                    written += 16 + len(frame)
                packets += 1
            copy += 1
    return packets, written


if __name__ == "__main__":
    n, size = make(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), pcapng=sys.argv[2].endswith(".pcapng"))
    print(f"{n} packets, {size} bytes")
