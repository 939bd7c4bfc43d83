"""Capture reader: pcap (draft-ietf-opsawg-pcap §4 file header, §5 packet record) and pcapng
(draft-ietf-opsawg-pcapng §3.1 block layout, §4.1 SHB, §4.2 IDB, §4.3 EPB, §4.4 SPB), hostile
files, and round trips through scapy's own writers."""

from __future__ import annotations

import gc
import gzip
import io
import os
import struct
import threading
import tracemalloc
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.all import DNS, DNSQR, IP, TCP, UDP, CookedLinux, Dot1Q, Ether, IPv6, Raw, conf, rdpcap, wrpcap
from scapy.utils import PcapNgWriter

from scanner.errors import UsageError
from scanner.passive import reader
from scanner.passive.decode import decode
from scanner.passive.reader import MAX_RECORD, ReadStats, iter_frames, iter_frames_from
from tests.discovery.helpers import mutations


@pytest.fixture(autouse=True, scope="module")
def _no_neighbour_lookups():
    """scapy fills a missing Ether dst by ARP/ND on the host's network: every frame here names its MACs."""

    def refuse(l2, l3):
        raise AssertionError("a test frame without an explicit destination MAC would make scapy send ARP/ND")

    saved = conf.neighbor.resolve
    conf.neighbor.resolve = refuse
    yield
    conf.neighbor.resolve = saved


CAM, GW = "44:b2:95:c4:01:31", "00:11:22:33:44:55"
FRAME_A = bytes.fromhex("ffffffffffff" "001122334455" "0806") + b"\x00" * 28  # broadcast ARP-ish, 42 bytes
FRAME_B = bytes(range(60))


def frames_of(path: Path, **kw: int) -> tuple[list[tuple[float, int, bytes]], ReadStats]:
    stats = ReadStats()
    return list(iter_frames(path, stats, **kw)), stats


def pcap_header(endian: str = "<", magic: int = 0xA1B2C3D4, linktype: int = 1) -> bytes:
    return struct.pack(
        endian + "IHHiIII",
        magic,  # magic number: 0xA1B2C3D4 microseconds, 0xA1B23C4D nanoseconds (§4)
        2,  # major version
        4,  # minor version
        0,  # reserved 1 (was thiszone)
        0,  # reserved 2 (was sigfigs)
        262144,  # SnapLen
        linktype,  # LinkType and additional information (FCS bits 0 here)
    )


def pcap_record(sec: int, frac: int, frame: bytes, endian: str = "<", caplen: int | None = None) -> bytes:
    return (
        struct.pack(
            endian + "IIII",
            sec,  # timestamp (seconds)
            frac,  # timestamp (microseconds or nanoseconds)
            len(frame) if caplen is None else caplen,  # captured packet length
            len(frame),  # original packet length
        )
        + frame  # packet data, no padding in pcap
    )


# ---------------------------------------------------------------------------------------------
# pcap, inline
# ---------------------------------------------------------------------------------------------


def test_pcap_little_endian_microseconds_inline(tmp_path: Path) -> None:
    """§4/§5: a little-endian microsecond file, written out byte by byte."""
    data = (
        bytes.fromhex("d4c3b2a1")  # magic 0xA1B2C3D4 written little-endian
        + bytes.fromhex("0200" "0400")  # version 2.4
        + bytes.fromhex("00000000" "00000000")  # reserved 1, reserved 2
        + bytes.fromhex("00000400")  # SnapLen 262144
        + bytes.fromhex("01000000")  # LinkType 1 (Ethernet)
        + bytes.fromhex("00f15365")  # record 1: seconds 1700000000
        + bytes.fromhex("20a10700")  # microseconds 500000
        + bytes.fromhex("2a000000")  # captured length 42
        + bytes.fromhex("2a000000")  # original length 42
        + FRAME_A
    )
    path = tmp_path / "le.pcap"
    path.write_bytes(data)
    frames, stats = frames_of(path)
    assert frames == [(1700000000.5, 1, FRAME_A)]
    assert (stats.format, stats.packets, stats.bytes, stats.truncated, stats.bad_records) == ("pcap", 1, 42, 0, 0)


@pytest.mark.parametrize(
    ("endian", "magic", "frac", "expected_ts", "fmt"),
    [
        ("<", 0xA1B2C3D4, 250_000, 1700000000.25, "pcap"),
        (">", 0xA1B2C3D4, 250_000, 1700000000.25, "pcap"),
        ("<", 0xA1B23C4D, 250_000_001, 1700000000.250000001, "pcap-ns"),
        (">", 0xA1B23C4D, 250_000_001, 1700000000.250000001, "pcap-ns"),
    ],
)
def test_pcap_both_byte_orders_and_resolutions(
    tmp_path: Path, endian: str, magic: int, frac: int, expected_ts: float, fmt: str
) -> None:
    """§4: the magic's byte order decides the order of every field; 0xA1B23C4D means nanoseconds."""
    path = tmp_path / "x.pcap"
    path.write_bytes(
        pcap_header(endian, magic, 228)
        + pcap_record(1700000000, frac, FRAME_B, endian)
        + pcap_record(1700000001, 0, FRAME_A, endian)
    )
    frames, stats = frames_of(path)
    assert [f[1:] for f in frames] == [(228, FRAME_B), (228, FRAME_A)]
    assert frames[0][0] == pytest.approx(expected_ts, abs=1e-7)
    assert frames[1][0] == 1700000001.0
    assert stats.format == fmt and stats.packets == 2


def test_pcap_linktype_is_the_low_16_bits(tmp_path: Path) -> None:
    """§4: the upper bits of LinkType carry FCS information, not the link type."""
    path = tmp_path / "fcs.pcap"
    path.write_bytes(pcap_header(linktype=(1 << 28) | (1 << 26) | 1) + pcap_record(1, 0, FRAME_A))
    frames, _ = frames_of(path)
    assert frames[0][1] == 1


def test_modified_pcap_records_have_8_more_header_bytes(tmp_path: Path) -> None:
    """The old Kuznetzov format (magic 0xA1B2CD34): ifindex (4), protocol (2), pkt_type (1), pad (1)."""
    record = struct.pack("<IIII", 5, 1, len(FRAME_B), len(FRAME_B)) + struct.pack("<IHBx", 2, 0x0800, 0) + FRAME_B
    path = tmp_path / "mod.pcap"
    path.write_bytes(pcap_header(magic=0xA1B2CD34) + record + record)
    frames, stats = frames_of(path)
    assert frames == [(5.000001, 1, FRAME_B)] * 2 and stats.format == "pcap-modified"


def test_unknown_linktype_is_counted_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "user0.pcap"
    path.write_bytes(pcap_header(linktype=147) + pcap_record(1, 0, FRAME_A) * 3)
    frames, stats = frames_of(path)
    assert frames == []
    assert (stats.packets, stats.unknown_linktype, stats.unknown_linktypes) == (3, 3, {147})
    assert "unknown-linktype" in stats.errors


# ---------------------------------------------------------------------------------------------
# pcapng, inline
# ---------------------------------------------------------------------------------------------


def block(endian: str, btype: int, body: bytes) -> bytes:
    """§3.1: Block Type (4), Block Total Length (4), Block Body (padded to 32 bits), Block Total Length (4)."""
    body += b"\0" * (-len(body) % 4)
    total = 12 + len(body)
    return struct.pack(endian + "II", btype, total) + body + struct.pack(endian + "I", total)


def shb(endian: str) -> bytes:
    return block(
        endian,
        0x0A0D0D0A,  # Block Type: Section Header (§4.1)
        struct.pack(endian + "I", 0x1A2B3C4D)  # Byte-Order Magic
        + struct.pack(endian + "HH", 1, 0)  # Major 1, Minor 0
        + struct.pack(endian + "q", -1),  # Section Length: not specified
    )


def option(endian: str, code: int, value: bytes) -> bytes:
    """§3.5: Option Code (2), Option Length (2), Option Value padded to 32 bits."""
    return struct.pack(endian + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def idb(endian: str, linktype: int, *options: bytes) -> bytes:
    body = struct.pack(endian + "HHI", linktype, 0, 262144)  # LinkType, Reserved, SnapLen (§4.2)
    if options:
        body += b"".join(options) + option(endian, 0, b"")  # ... opt_endofopt
    return block(endian, 1, body)


def epb(endian: str, iface: int, units: int, frame: bytes, *options: bytes) -> bytes:
    body = (
        struct.pack(endian + "I", iface)  # Interface ID (§4.3)
        + struct.pack(endian + "II", units >> 32, units & 0xFFFFFFFF)  # Timestamp (Upper), (Lower)
        + struct.pack(endian + "II", len(frame), len(frame))  # Captured / Original Packet Length
        + frame
        + b"\0" * (-len(frame) % 4)  # Packet Data padded to 32 bits
        + b"".join(options)
    )
    return block(endian, 6, body)


def spb(endian: str, frame: bytes) -> bytes:
    return block(endian, 3, struct.pack(endian + "I", len(frame)) + frame)  # Original Packet Length, Data (§4.4)


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_interfaces_resolutions_and_block_kinds(tmp_path: Path, endian: str) -> None:
    """§4.2 if_tsresol (code 9: 10^-n, or 2^-n with the top bit), if_tsoffset (code 14); EPB/SPB; others skipped."""
    data = (
        shb(endian)
        + idb(endian, 1)  # interface 0: Ethernet, default resolution (microseconds)
        + idb(endian, 101, option(endian, 9, b"\x09"), option(endian, 2, b"eth1"))  # 1: raw IP, nanoseconds
        + idb(endian, 229, option(endian, 9, b"\x94"), option(endian, 14, struct.pack(endian + "q", 100)))  # 2^-20 +100
        + block(endian, 4, b"\x00\x00\x00\x00")  # Name Resolution Block: skipped
        + epb(endian, 0, 1_700_000_000_500_000, FRAME_A, option(endian, 1, b"a comment"), option(endian, 0, b""))
        + epb(endian, 1, 1_700_000_000_123_456_789, FRAME_B)
        + block(endian, 5, struct.pack(endian + "III", 0, 0, 0))  # Interface Statistics Block: skipped
        + epb(endian, 2, 3 << 20, FRAME_A)  # 3 s in 2^-20 units, plus the 100 s offset
        + spb(endian, FRAME_B[:45])  # no timestamp: the previous packet's; interface 0
        + block(endian, 0x40000BAD, b"custom body")  # Custom Block: skipped
    )
    path = tmp_path / "x.pcapng"
    path.write_bytes(data)
    frames, stats = frames_of(path)
    assert [(lt, fr) for _, lt, fr in frames] == [(1, FRAME_A), (101, FRAME_B), (229, FRAME_A), (1, FRAME_B[:45])]
    assert frames[0][0] == 1700000000.5
    assert frames[1][0] == pytest.approx(1700000000.123456789, abs=1e-6)
    assert frames[2][0] == 103.0 and frames[3][0] == 103.0
    assert (stats.format, stats.packets, stats.interfaces, stats.sections) == ("pcapng", 4, 3, 1)
    assert stats.skipped_blocks == 3
    assert stats.bad_records == 0 and stats.errors == {}


def test_pcapng_obsolete_packet_block(tmp_path: Path) -> None:
    """pcapng Appendix A (obsolete Packet Block, type 2): Interface ID (2), Drops Count (2), timestamp, lengths."""
    opb = block(
        "<",
        2,
        struct.pack("<HH", 0, 0)  # Interface ID, Drops Count
        + struct.pack("<II", 0, 7_000_000)  # Timestamp (Upper), (Lower)
        + struct.pack("<II", len(FRAME_A), len(FRAME_A))  # Captured Len, Packet Len
        + FRAME_A,
    )
    short = struct.pack("<III", 2, 12, 12)  # a 12-byte "packet block": no room for its fields
    path = tmp_path / "opb.pcapng"
    path.write_bytes(shb("<") + idb("<", 1) + opb + short + opb)
    frames, stats = frames_of(path)
    assert frames == [(7.0, 1, FRAME_A), (7.0, 1, FRAME_A)]
    assert stats.bad_records == 1 and stats.resyncs == 1


def test_pcapng_new_section_changes_byte_order_and_resets_interfaces(tmp_path: Path) -> None:
    """§4.1: each SHB starts a section with its own byte order; interface ids restart at 0."""
    data = (
        shb(">")
        + idb(">", 1)
        + epb(">", 0, 1_000_000, FRAME_A)
        + shb("<")
        + idb("<", 228)
        + epb("<", 0, 2_000_000, FRAME_B)
        + epb("<", 1, 3_000_000, FRAME_B)  # interface 1 was defined only in the old section
    )
    path = tmp_path / "two.pcapng"
    path.write_bytes(data)
    frames, stats = frames_of(path)
    assert frames == [(1.0, 1, FRAME_A), (2.0, 228, FRAME_B)]
    assert stats.sections == 2 and stats.bad_records == 1 and "bad-record" in stats.errors


def test_pcapng_trailing_length_mismatch_resyncs_to_the_next_block(tmp_path: Path) -> None:
    """§3.1: the Block Total Length is repeated at the end; a mismatch is a bad block, then reading resumes."""
    bad = bytearray(epb("<", 0, 2_000_000, FRAME_B))
    bad[-4:] = struct.pack("<I", 12345)
    data = shb("<") + idb("<", 1) + epb("<", 0, 1_000_000, FRAME_A) + bytes(bad) + epb("<", 0, 3_000_000, FRAME_A)
    path = tmp_path / "bad.pcapng"
    path.write_bytes(data)
    frames, stats = frames_of(path)
    assert [ts for ts, _, _ in frames] == [1.0, 3.0]
    assert stats.bad_records == 1 and stats.resyncs == 1 and stats.skipped_bytes == len(bad)


def test_pcapng_absurd_block_length_is_counted_not_fatal(tmp_path: Path) -> None:
    absurd = struct.pack("<II", 6, 0x7FFFFFF0) + b"\x00" * 40
    data = shb("<") + idb("<", 1) + epb("<", 0, 1_000_000, FRAME_A) + absurd + epb("<", 0, 2_000_000, FRAME_B)
    path = tmp_path / "absurd.pcapng"
    path.write_bytes(data)
    frames, stats = frames_of(path)
    assert [fr for _, _, fr in frames] == [FRAME_A, FRAME_B]
    assert stats.bad_records == 1 and stats.resyncs == 1


def test_pcapng_truncated_last_block(tmp_path: Path) -> None:
    data = shb("<") + idb("<", 1) + epb("<", 0, 1_000_000, FRAME_A) + epb("<", 0, 2_000_000, FRAME_B)[:-7]
    path = tmp_path / "cut.pcapng"
    path.write_bytes(data)
    frames, stats = frames_of(path)
    assert len(frames) == 1 and stats.truncated == 1 and "truncated" in stats.errors


def test_pcapng_oversized_packet_is_a_bad_record(tmp_path: Path) -> None:
    big = b"\xaa" * (MAX_RECORD + 4)
    data = shb("<") + idb("<", 1) + epb("<", 0, 1_000_000, big) + epb("<", 0, 2_000_000, FRAME_A)
    path = tmp_path / "big.pcapng"
    path.write_bytes(data)
    frames, stats = frames_of(path)
    assert frames == [(2.0, 1, FRAME_A)] and stats.bad_records == 1


# ---------------------------------------------------------------------------------------------
# hostile pcap
# ---------------------------------------------------------------------------------------------


def test_truncated_pcap_is_counted_not_fatal(tmp_path: Path) -> None:
    records = [pcap_record(1700000000 + i, 0, FRAME_B) for i in range(5)]
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap_header() + b"".join(records)[:-30])
    frames, stats = frames_of(path)
    assert len(frames) == 4 and stats.packets == 4
    assert stats.truncated == 1 and "truncated" in stats.errors


def test_truncated_file_header(tmp_path: Path) -> None:
    path = tmp_path / "hdr.pcap"
    path.write_bytes(pcap_header()[:10])
    frames, stats = frames_of(path)
    assert frames == [] and stats.truncated == 1


def test_bad_record_length_resyncs_to_the_next_record(tmp_path: Path) -> None:
    """A record claiming 2 GiB: counted, then reading resumes at the next plausible record header."""
    good = [pcap_record(1700000000 + i, i, FRAME_B) for i in range(6)]
    bad = pcap_record(1700000002, 0, FRAME_A, caplen=0x7FFFFFFF)
    path = tmp_path / "bad.pcap"
    path.write_bytes(pcap_header() + b"".join(good[:3]) + bad + b"".join(good[3:]))
    frames, stats = frames_of(path)
    assert [fr for _, _, fr in frames] == [FRAME_B] * 6
    assert [ts for ts, _, _ in frames] == [1700000000 + i + i * 1e-6 for i in range(6)]
    assert (stats.bad_records, stats.resyncs, stats.skipped_bytes) == (1, 1, len(bad))
    assert "offset" in stats.errors["bad-record"]


def test_bad_record_followed_by_garbage_stops_quietly(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pcap"
    path.write_bytes(
        pcap_header() + pcap_record(1, 0, FRAME_A) + pcap_record(2, 0, FRAME_A, caplen=0xFFFFFFF0) + b"\xff" * 5000
    )
    frames, stats = frames_of(path)
    assert len(frames) == 1 and stats.bad_records == 1 and stats.resyncs == 0
    assert stats.skipped_bytes > 5000


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a pcap or pcapng file"),
        (b"GIF89a, not a capture", "not a pcap or pcapng file (starts with 0x47494638)"),
        (gzip.compress(b"plain text"), "not a pcap or pcapng file"),
    ],
)
def test_not_a_capture_is_a_one_line_usage_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        iter_frames(path, ReadStats())  # raised at the call, before iteration
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_unreadable_paths_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        iter_frames(tmp_path / "missing.pcap", ReadStats())
    with pytest.raises(UsageError, match="directory"):
        iter_frames(tmp_path, ReadStats())


# ---------------------------------------------------------------------------------------------
# streaming: chunk boundaries, flat memory, streams, gzip
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1000])
def test_records_across_chunk_boundaries(tmp_path: Path, chunk_size: int) -> None:
    pcap = tmp_path / "c.pcap"
    pcap.write_bytes(pcap_header() + b"".join(pcap_record(i, i, FRAME_B[: 20 + i]) for i in range(30)))
    ng = tmp_path / "c.pcapng"
    ng.write_bytes(shb("<") + idb("<", 1) + b"".join(epb("<", 0, i * 1_000_000, FRAME_B[: 20 + i]) for i in range(30)))
    for path in (pcap, ng):
        assert frames_of(path, chunk_size=chunk_size)[0] == frames_of(path)[0]
        assert len(frames_of(path, chunk_size=chunk_size)[0]) == 30


class RecordingStream(io.RawIOBase):
    """A pipe-like stream: short reads of at most 1000 bytes, and a record of the sizes asked for."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.asked: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.asked.append(n)
        out = bytes(self.data[self.pos : self.pos + min(n, 1000)])
        self.pos += len(out)
        return out


def test_stream_reader_with_short_reads_and_bounded_requests() -> None:
    big = b"\x42" * 70000
    data = pcap_header() + b"".join(pcap_record(i, 0, big if i % 10 == 0 else FRAME_B) for i in range(100))
    stream = RecordingStream(data)
    stats = ReadStats()
    frames = list(iter_frames_from(stream, stats, chunk_size=4096))  # type: ignore[arg-type]
    assert len(frames) == 100 and frames[10][2] == big and stats.bytes == 10 * 70000 + 90 * 60
    assert max(stream.asked) <= 70000 + 16  # never more than one record or one chunk at a time


def test_stream_that_is_not_a_capture() -> None:
    with pytest.raises(UsageError, match="not a pcap"):
        iter_frames_from(io.BytesIO(b"hello world"), ReadStats())


def test_memory_stays_flat_on_a_large_file(tmp_path: Path) -> None:
    """Reading a 24 MB capture keeps far less than the file in memory (streamed, never loaded)."""
    frame = bytes(range(256)) * 6  # 1536-byte frames
    record = pcap_record(1700000000, 0, frame)
    path = tmp_path / "large.pcap"
    with open(path, "wb") as fh:
        fh.write(pcap_header())
        for _ in range(16):
            fh.write(record * 1000)
    stats = ReadStats()
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_frames(path, stats))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 16000 and stats.bytes == 16000 * len(frame)
    assert peak < 4 * reader.CHUNK_SIZE, peak  # the file is 24 MB


def test_a_named_pipe_path_is_read_once(tmp_path: Path) -> None:
    """``camsweep analyze <(tcpdump -w -)``: the path is a pipe, so the magic is peeked, not consumed."""
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    data = pcap_header() + pcap_record(1, 0, FRAME_A) + pcap_record(2, 0, FRAME_B)

    def writer() -> None:
        with open(fifo, "wb") as fh:
            fh.write(data)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        frames, stats = frames_of(fifo)
    finally:
        thread.join(5)
    assert frames == [(1.0, 1, FRAME_A), (2.0, 1, FRAME_B)] and stats.format == "pcap"


def test_an_iterator_never_started_closes_its_file(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_header() + pcap_record(1, 0, FRAME_A))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = iter_frames(path, ReadStats())
        del frames
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_gzip_compressed_capture(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap.gz"
    path.write_bytes(gzip.compress(pcap_header() + pcap_record(7, 0, FRAME_A) + pcap_record(8, 0, FRAME_B)))
    frames, stats = frames_of(path)
    assert frames == [(7.0, 1, FRAME_A), (8.0, 1, FRAME_B)] and stats.format == "pcap+gzip"


def test_truncated_gzip_stops_quietly(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap.gz"
    path.write_bytes(gzip.compress(pcap_header() + pcap_record(7, 0, FRAME_A) * 200)[:-40])
    frames, stats = frames_of(path)
    assert len(frames) < 200 and "read-error" in stats.errors


# ---------------------------------------------------------------------------------------------
# round trips through scapy's writers
# ---------------------------------------------------------------------------------------------


def scapy_packets() -> list[Ether]:
    pkts = [
        Ether(src=CAM, dst=GW)
        / IP(src="198.51.100.23", dst="203.0.113.9")
        / TCP(sport=40000, dport=443, flags="S", seq=1000),
        Ether(src=CAM, dst=GW) / Dot1Q(vlan=20) / IP(src="198.51.100.23", dst="198.51.100.1")
        / UDP(sport=5353, dport=53) / DNS(qd=DNSQR(qname="api.ulucu.com")),
        Ether(src=CAM, dst=GW) / IPv6(src="2001:db8::23", dst="2001:db8::9") / TCP(sport=1234, dport=80, flags="PA")
        / Raw(b"POST /upload HTTP/1.1\r\nHost: x\r\n\r\n"),
        Ether(src=CAM, dst=GW) / IP(src="198.51.100.23", dst="203.0.113.9", options=b"\x94\x04\x00\x00")
        / UDP(dport=9000) / Raw(b"\x00" * 300),
    ]
    for i, pkt in enumerate(pkts):
        pkt.time = 1700000000 + i + 0.123456
    return pkts


def assert_same_as_scapy(frames: list[tuple[float, int, bytes]], expected: list[Ether]) -> None:
    assert len(frames) == len(expected)
    for (ts, linktype, frame), pkt in zip(frames, expected, strict=True):
        assert frame == bytes(pkt)
        assert ts == pytest.approx(float(pkt.time), abs=1e-6)
        decoded = decode(linktype, frame, ts)
        assert decoded is not None
        ip = pkt[IP] if IP in pkt else pkt[IPv6]
        l4 = pkt[TCP] if TCP in pkt else pkt[UDP]
        assert (decoded.src_ip, decoded.dst_ip, decoded.sport, decoded.dport) == (ip.src, ip.dst, l4.sport, l4.dport)
        assert decoded.src_mac == pkt[Ether].src and decoded.dst_mac == pkt[Ether].dst
        assert decoded.payload_len == len(l4.payload)


def test_round_trip_scapy_wrpcap(tmp_path: Path) -> None:
    pkts = scapy_packets()
    path = tmp_path / "scapy.pcap"
    wrpcap(str(path), pkts)
    frames, stats = frames_of(path)
    assert stats.packets == len(pkts) == len(rdpcap(str(path))) and stats.format == "pcap"
    assert_same_as_scapy(frames, list(rdpcap(str(path))))
    assert_same_as_scapy(frames, pkts)


def test_round_trip_scapy_wrpcap_nanoseconds(tmp_path: Path) -> None:
    pkts = scapy_packets()
    path = tmp_path / "ns.pcap"
    wrpcap(str(path), pkts, nano=True)
    frames, stats = frames_of(path)
    assert stats.format == "pcap-ns"
    assert_same_as_scapy(frames, list(rdpcap(str(path))))


def test_round_trip_scapy_pcapng_writer(tmp_path: Path) -> None:
    """scapy writes one IDB per interface name (sniffed_on) and comment options on EPBs."""
    pkts = scapy_packets()
    pkts[1].sniffed_on = "eth1"
    pkts[2].comments = [b"an EPB option"]
    path = tmp_path / "scapy.pcapng"
    with PcapNgWriter(str(path)) as writer:
        for pkt in pkts:
            writer.write(pkt)
    frames, stats = frames_of(path)
    assert stats.format == "pcapng" and stats.interfaces == 2 and stats.packets == 4
    assert_same_as_scapy(frames, list(rdpcap(str(path))))


def test_round_trip_scapy_cooked_capture(tmp_path: Path) -> None:
    pkt = CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=bytes.fromhex("44b295c40131") + b"\0\0") / IP(
        src="198.51.100.23", dst="203.0.113.9"
    ) / TCP(sport=1, dport=2)
    pkt.time = 1700000000.5
    path = tmp_path / "sll.pcap"
    wrpcap(str(path), [pkt])
    frames, _ = frames_of(path)
    assert frames == [(1700000000.5, 113, bytes(pkt))]
    decoded = decode(113, frames[0][2], frames[0][0])
    assert decoded is not None and decoded.src_mac == "44:b2:95:c4:01:31" and decoded.dst_ip == "203.0.113.9"


# ---------------------------------------------------------------------------------------------
# never raises
# ---------------------------------------------------------------------------------------------

_VALID_PCAP = pcap_header() + b"".join(pcap_record(1700000000 + i, i, FRAME_B[: 30 + i]) for i in range(4))
_VALID_NG = shb("<") + idb("<", 1, option("<", 9, b"\x06")) + epb("<", 0, 5, FRAME_A) + spb("<", FRAME_B)


def _read_all(data: bytes) -> tuple[list[tuple[float, int, bytes]], ReadStats]:
    stats = ReadStats()
    try:
        frames = list(iter_frames_from(io.BytesIO(data), stats, chunk_size=64))
    except UsageError:
        return [], stats
    assert all(len(frame) <= MAX_RECORD for _, _, frame in frames)
    assert len(frames) <= stats.packets
    return frames, stats


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from([pcap_header("<"), pcap_header(">", 0xA1B23C4D), b"\x0a\x0d\x0d\x0a", shb(">")]),
    tail=st.binary(max_size=600),
)
def test_arbitrary_bytes_after_a_magic_never_raise(prefix: bytes, tail: bytes) -> None:
    _read_all(prefix + tail)


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(mutations(_VALID_PCAP), mutations(_VALID_NG), st.binary(max_size=200)))
def test_mutated_captures_never_raise(data: bytes) -> None:
    _read_all(data)


@st.composite
def block_soup(draw: st.DrawFn) -> bytes:
    """pcapng made of plausible and implausible blocks: known types, bodies of any size, lengths sometimes off."""
    endian = draw(st.sampled_from(["<", ">"]))
    out = shb(endian)
    for _ in range(draw(st.integers(0, 8))):
        btype = draw(st.sampled_from([1, 2, 3, 5, 6, 6, 6, 0x0A0D0D0A, 0x0BAD, draw(st.integers(0, 2**32 - 1))]))
        body = draw(st.binary(max_size=80))
        if btype == 1 and draw(st.booleans()):
            body = struct.pack(endian + "HHI", draw(st.sampled_from([1, 101, 147])), 0, 65535) + body
        raw = bytearray(block(endian, btype, body))
        if draw(st.booleans()):
            where = draw(st.sampled_from([4, len(raw) - 4, 8, 20]))
            if where + 4 <= len(raw):
                raw[where : where + 4] = struct.pack(endian + "I", draw(st.integers(0, 2**32 - 1)))
        out += bytes(raw)
    return out


@st.composite
def record_soup(draw: st.DrawFn) -> bytes:
    """pcap records with lengths that are sometimes impossible."""
    endian = draw(st.sampled_from(["<", ">"]))
    magic = draw(st.sampled_from([0xA1B2C3D4, 0xA1B23C4D, 0xA1B2CD34]))
    out = pcap_header(endian, magic)
    for i in range(draw(st.integers(0, 8))):
        frame = draw(st.binary(max_size=60))
        caplen = draw(st.one_of(st.none(), st.integers(0, 2**32 - 1)))
        extra = b"\0" * 8 if magic == 0xA1B2CD34 else b""
        rec = pcap_record(1700000000 + i, 0, frame, endian, caplen)
        out += rec[:16] + extra + rec[16:]
    return out


@settings(max_examples=400, deadline=None)
@given(data=st.one_of(block_soup(), record_soup()))
def test_structured_hostile_captures_never_raise(data: bytes) -> None:
    _read_all(data)
