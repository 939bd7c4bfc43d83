"""The bulk path of ``camsweep analyze`` (``scanner.passive.fastpath``) leaves exactly the flow table the
frame-by-frame path (``analyze.analyze_frames``) leaves: same flows with every counter, object, exchange,
run and name, same archive, same DNS map, same summary, hence the same ``classify.observe`` verdicts.

Checked on the committed lab captures, on generated store traffic (connections with TLS ClientHellos,
some split across segments, HTTP uploads, DNS, LAN video, multicast, VLAN tags, IP options, fragments,
truncated and garbage frames, reordered and jumping timestamps) with batches cut small, on tiny
flow tables that must evict and archive, and on mutated captures.
"""

from __future__ import annotations

import gzip
import random
import struct
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.passive.analyze import PacketPath, PassiveSummary, analyze_captures, analyze_frames
from scanner.passive.classify import observe
from scanner.passive.clouds import load_cloud_signatures
from scanner.passive.fastpath import analyze_batches
from scanner.passive.flows import Burst, Flow, FlowTable
from scanner.passive.reader import ReadStats, iter_frames, iter_pcap_batches
from tests.discovery.helpers import mutations
from tests.passive.test_reader import block, epb, idb, option, shb, spb
from tests.passive.test_tls import client_hello, record, server_name_ext

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.pcap"))

# ---------------------------------------------------------------------------------------------
# comparing two tables
# ---------------------------------------------------------------------------------------------


def _burst(b: Burst) -> tuple[float, float, int, int, bool]:
    return (b.start, b.end, b.bytes, b.packets, b.replied)


def flow_state(flow: Flow) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for slot in Flow.__slots__:
        value = getattr(flow, slot)
        if slot == "_open":
            value = [(port, _burst(b)) for port, b in value.items()]
        elif isinstance(value, deque):
            value = [_burst(b) if isinstance(b, Burst) else b for b in value]
        elif isinstance(value, dict):
            value = list(value.items())  # insertion order counts too
        out[slot] = value
    return out


def table_state(table: FlowTable, summary: PassiveSummary) -> dict[str, Any]:
    """Everything the analysis leaves behind, in order (dict order included)."""
    return {
        "live": [(key, flow_state(f)) for key, f in table.live.items()],
        "archive": [(key, flow_state(f)) for key, f in table.archive.items()],
        "overflow": [(key, flow_state(f)) for key, f in table.overflow.items()],
        "dns": list(table.dns.items()),
        "stats": table.stats,
        "clock": (table._now, table._last_sweep),
        "read": summary.read,
        "decode": summary.decode.as_dict(),
        "summary": (summary.dns_answers, summary.client_hellos, summary.http_heads, summary.first_ts,
                    summary.last_ts),
    }


def verdicts(table: FlowTable) -> list[tuple[Any, ...]]:
    """What ``camsweep analyze`` reports per destination (classify.observe over the table)."""
    return [(d.device_ip, d.device_mac, d.flow.key, d.verdict, tuple(d.names), d.cloud_link())
            for d in observe(table, load_cloud_signatures())]


def both(path: Path, *, batch_size: int = 1 << 20, max_records: int = 1 << 16,
         **table_kw: Any) -> tuple[tuple[FlowTable, PassiveSummary], tuple[FlowTable, PassiveSummary]]:
    """(frame by frame, bulk) over the same capture, each with its own table."""
    frames_table, frames_summary = FlowTable(**table_kw), PassiveSummary()
    analyze_frames(frames_table, frames_summary, iter_frames(path, frames_summary.read))
    bulk_table, bulk_summary = FlowTable(**table_kw), PassiveSummary()
    batches = iter_pcap_batches(path, bulk_summary.read, batch_size=batch_size, max_records=max_records)
    assert batches is not None
    analyze_batches(PacketPath(bulk_table, bulk_summary), batches)
    return (frames_table, frames_summary), (bulk_table, bulk_summary)


def assert_same(path: Path, **kw: Any) -> tuple[FlowTable, PassiveSummary]:
    (ft, fs), (bt, bs) = both(path, **kw)
    assert table_state(bt, bs) == table_state(ft, fs)
    return bt, bs


# ---------------------------------------------------------------------------------------------
# frames
# ---------------------------------------------------------------------------------------------

CAMS = [("198.51.100.10", "44:19:b6:00:00:10"), ("198.51.100.11", "bc:ad:28:00:00:11"),
        ("198.51.100.12", "e0:50:8b:00:00:12")]
NVR = ("198.51.100.50", "44:19:b6:00:00:50")
GATEWAY = ("198.51.100.1", "00:11:22:33:44:55")
CLOUDS = ["203.0.113.5", "203.0.113.6", "203.0.113.7"]
OUTSIDE_RESOLVER = "203.0.113.53"


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def ip4(address: str) -> bytes:
    return bytes(int(x) for x in address.split("."))


def ethernet(dst: str, src: str, ethertype: int, payload: bytes, *, vlan: int | None = None) -> bytes:
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""  # 802.1Q TPID, TCI
    return mac(dst) + mac(src) + tag + struct.pack("!H", ethertype) + payload


def ipv4(src: str, dst: str, proto: int, l4: bytes, *, options: bytes = b"", fragment: int = 0,
         total: int | None = None) -> bytes:
    ihl = 5 + len(options) // 4
    length = 4 * ihl + len(l4) if total is None else total
    return struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,  # version 4, IHL (RFC 791 §3.1)
        0,  # type of service
        length,  # total length (0: segmentation offload)
        7,  # identification
        fragment,  # flags / fragment offset (8-byte units)
        64,  # TTL
        proto,  # protocol
        0,  # header checksum (not checked)
        ip4(src),
        ip4(dst),
    ) + options + l4


def tcp(sport: int, dport: int, seq: int, flags: int, payload: bytes = b"", *, options: bytes = b"") -> bytes:
    return struct.pack(
        "!HHIIBBHHH",
        sport,
        dport,
        seq & 0xFFFFFFFF,  # sequence number
        1,  # acknowledgment number
        (5 + len(options) // 4) << 4,  # data offset (RFC 9293 §3.1)
        flags,  # CWR ECE URG ACK PSH RST SYN FIN
        65535,  # window
        0,  # checksum
        0,  # urgent pointer
    ) + options + payload


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload  # RFC 768


def dns_answer(name: str, address: str) -> bytes:
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\x00"
    return (
        struct.pack("!HHHHHH", 0x4242, 0x8180, 1, 1, 0, 0)  # id, flags (response, RD, RA), QD, AN, NS, AR
        + qname + struct.pack("!HH", 1, 1)  # question: QTYPE A, QCLASS IN
        + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + ip4(address)  # answer: name pointer, A, IN, TTL
    )  # fmt: skip


def hello(name: str) -> bytes:
    return record(client_hello(server_name_ext(name.encode())))


SERVER_HELLO = b"\x16\x03\x03\x00\x30\x02" + b"\x00" * 0x2F  # handshake record holding a ServerHello (type 2)

ACK, PSH, SYN, FIN, RST = 0x10, 0x08, 0x02, 0x01, 0x04


def write_pcap(path: Path, records: list[tuple[float, bytes]], *, snaplen: int = 0) -> None:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]  # pcap header, Ethernet
    for ts, frame in records:
        sec = int(ts)
        kept = frame[:snaplen] if snaplen else frame
        out.append(struct.pack("<IIII", sec, int(round((ts - sec) * 1e6)) % 1_000_000, len(kept), len(frame)) + kept)
    path.write_bytes(b"".join(out))


# ---------------------------------------------------------------------------------------------
# generated store traffic
# ---------------------------------------------------------------------------------------------


class Store:
    """A few cameras talking to clouds and to an NVR, with the noise of a real mirror port."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.records: list[tuple[float, bytes]] = []

    def add(self, ts: float, frame: bytes) -> None:
        self.records.append((ts, frame))

    def tcp_frame(self, ts: float, src: tuple[str, str], dst: tuple[str, str], sport: int, dport: int, seq: int,
                  flags: int, payload: bytes = b"") -> None:
        rng = self.rng
        variant = rng.random()
        segment = tcp(sport, dport, seq, flags, payload, options=b"\x01\x01\x08\x0a" + b"\x00" * 8
                      if rng.random() < 0.3 else b"")
        if variant < 0.03:
            frame = ethernet(dst[1], src[1], 0x0800, ipv4(src[0], dst[0], 6, segment), vlan=20)
        elif variant < 0.05:
            frame = ethernet(dst[1], src[1], 0x0800, ipv4(src[0], dst[0], 6, segment, options=b"\x01\x01\x01\x00"))
        elif variant < 0.06:
            frame = ethernet(dst[1], src[1], 0x0800, ipv4(src[0], dst[0], 6, segment, total=0))  # offload
        else:
            frame = ethernet(dst[1], src[1], 0x0800, ipv4(src[0], dst[0], 6, segment))
        self.add(ts, frame)

    def connection(self, ts: float, cam: tuple[str, str], cloud: str, port: int, kind: str) -> float:
        """One connection from a camera to a cloud: handshake, a ClientHello or HTTP head, an upload, replies."""
        rng = self.rng
        remote = (cloud, GATEWAY[1])
        sport = rng.randint(30000, 60000)
        seq = rng.randint(0, 2**32 - 1)
        rseq = rng.randint(0, 2**32 - 1)
        if rng.random() < 0.9:
            self.tcp_frame(ts, cam, remote, sport, port, seq, SYN)
            ts += 0.001
            self.tcp_frame(ts, remote, cam, port, sport, rseq, SYN | ACK)
            ts += 0.001
            self.tcp_frame(ts, cam, remote, sport, port, seq + 1, ACK)
        seq += 1
        if kind == "tls":
            data = hello(rng.choice(["storeface-pic.oss-cn-hangzhou.aliyuncs.com", "iai.tencentcloudapi.com",
                                     "snap.anchang-cloud.example"]))
            cut = rng.choice([len(data), len(data), 40, 3, 120])
            pieces = [data[:cut], data[cut:]] if cut < len(data) else [data]
            if len(pieces) == 2 and rng.random() < 0.3:
                pieces_at = [(seq + cut, pieces[1]), (seq, pieces[0])]  # second segment first
            else:
                pieces_at = [(seq, pieces[0])] + ([(seq + cut, pieces[1])] if len(pieces) == 2 else [])
            for at, piece in pieces_at:
                ts += rng.choice([0.0005, 0.002, 0.2])
                self.tcp_frame(ts, cam, remote, sport, port, at, PSH | ACK, piece)
            seq += len(data)
            ts += 0.01
            self.tcp_frame(ts, remote, cam, port, sport, rseq + 1, PSH | ACK, SERVER_HELLO)
        elif kind == "http":
            head = (f"POST /upload/{rng.randint(1, 99)}.jpg HTTP/1.1\r\nHost: {cloud}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {rng.choice([18000, 40000, 300000])}\r\n\r\n").encode()
            ts += 0.001
            self.tcp_frame(ts, cam, remote, sport, port, seq, PSH | ACK, head)
            seq += len(head)
        elif kind == "raw":
            ts += 0.001
            self.tcp_frame(ts, cam, remote, sport, port, seq, PSH | ACK, b"\x00\x01hello")
            seq += 7
        for _ in range(rng.choice([0, 1, 3, 12, 40])):  # an upload in segments, acknowledged
            size = rng.choice([1448, 1448, 2896, 600, 40])
            ts += rng.choice([0.0003, 0.001, 0.01, 0.1, 0.16, 0.5, 1.2, 2.5])
            self.tcp_frame(ts, cam, remote, sport, port, seq, PSH | ACK if rng.random() < 0.5 else ACK,
                           bytes([0x17, 3, 3]) + b"\x5a" * (size - 3))
            seq += size
            if rng.random() < 0.5:
                self.tcp_frame(ts + 0.0002, remote, cam, port, sport, rseq, ACK)
            if rng.random() < 0.1:
                self.tcp_frame(ts + 0.0003, remote, cam, port, sport, rseq, PSH | ACK, b"HTTP/1.1 200 OK\r\n\r\n")
        ts += rng.choice([0.001, 0.2])
        ending = rng.random()
        if ending < 0.6:
            self.tcp_frame(ts, cam, remote, sport, port, seq, FIN | ACK)
            self.tcp_frame(ts + 0.001, remote, cam, port, sport, rseq, FIN | ACK)
        elif ending < 0.7:
            self.tcp_frame(ts, remote, cam, port, sport, rseq, RST)
        return ts

    def noise(self, ts: float) -> None:
        rng = self.rng
        cam = rng.choice(CAMS)
        pick = rng.random()
        if pick < 0.15:  # DNS answer from the gateway, or from an outside resolver
            resolver = rng.choice([GATEWAY[0], OUTSIDE_RESOLVER])
            payload = dns_answer(rng.choice(["api.ulucu.com", "iai.tencentcloudapi.com"]), rng.choice(CLOUDS))
            self.add(ts, ethernet(cam[1], GATEWAY[1], 0x0800, ipv4(resolver, cam[0], 17, udp(53, 40000, payload))))
        elif pick < 0.25:  # mDNS and SSDP multicast
            self.add(ts, ethernet("01:00:5e:00:00:fb", cam[1], 0x0800,
                                  ipv4(cam[0], "224.0.0.251", 17, udp(5353, 5353, b"\x00" * 30))))
        elif pick < 0.45:  # RTSP interleaved video to the NVR (LAN)
            self.tcp_frame(ts, cam, NVR, 554, 41000, rng.randint(0, 2**31), PSH | ACK, b"$\x00" + b"\x11" * 1400)
        elif pick < 0.6:  # UDP video relay to a cloud
            video = b"\x80" + b"\x22" * rng.choice([20, 1200])  # RTP-ish
            self.add(ts, ethernet(GATEWAY[1], cam[1], 0x0800, ipv4(cam[0], CLOUDS[2], 17, udp(50000, 8800, video))))
        elif pick < 0.7:  # ICMPv6 neighbour discovery to a multicast group
            ip6 = struct.pack("!IHBB16s16s", 0x60000000, 8, 58, 255, b"\xfe\x80" + b"\x00" * 13 + b"\x01",
                              b"\xff\x02" + b"\x00" * 13 + b"\x01")
            self.add(ts, ethernet("33:33:00:00:00:01", cam[1], 0x86DD, ip6 + b"\x87\x00\x00\x00\x00\x00\x00\x00"))
        elif pick < 0.75:  # ARP
            self.add(ts, ethernet("ff:ff:ff:ff:ff:ff", cam[1], 0x0806, b"\x00\x01\x08\x00\x06\x04" + b"\x00" * 22))
        elif pick < 0.8:  # a fragment, and garbage
            self.add(ts, ethernet(GATEWAY[1], cam[1], 0x0800, ipv4(cam[0], CLOUDS[0], 17, b"\x00" * 64, fragment=185)))
            self.add(ts, bytes(rng.getrandbits(8) for _ in range(rng.choice([3, 20, 60]))))
        elif pick < 0.9:  # ICMP to a cloud, and a frame cut inside its TCP header
            self.add(ts, ethernet(GATEWAY[1], cam[1], 0x0800, ipv4(cam[0], CLOUDS[1], 1, b"\x08\x00" + b"\x00" * 30)))
            frame = ethernet(GATEWAY[1], cam[1], 0x0800, ipv4(cam[0], CLOUDS[1], 6, tcp(1, 443, 0, ACK, b"x" * 10)))
            self.add(ts, frame[:40])
        else:  # a raw TCP heartbeat over an already open connection (no handshake seen)
            self.tcp_frame(ts, cam, (CLOUDS[1], GATEWAY[1]), 45000, 8666, rng.randint(0, 2**31), PSH | ACK,
                           b"\x01" * rng.choice([30, 200]))

    def generate(self, connections: int, noise: int, start: float = 1_795_411_200.0) -> list[tuple[float, bytes]]:
        rng = self.rng
        for _ in range(connections):
            at = start + rng.uniform(0, 30) + rng.choice([0, 0, 0, 200, 700])  # some after a sweep or an idle gap
            self.connection(at, rng.choice(CAMS), rng.choice(CLOUDS), rng.choice([443, 443, 80, 8800]),
                            rng.choice(["tls", "tls", "http", "raw", "none"]))
        for _ in range(noise):
            self.noise(start + rng.uniform(0, 40) + rng.choice([0, 0, 0, 200, 700]))
        records = sorted(self.records, key=lambda r: r[0])
        # a mirror port reorders a little
        for _ in range(len(records) // 50):
            i = rng.randrange(1, len(records))
            records[i - 1], records[i] = records[i], records[i - 1]
        return records


# ---------------------------------------------------------------------------------------------
# the committed captures
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_bulk_equals_frame_by_frame_on_the_committed_lab_captures(fixture: Path) -> None:
    frames_table, frames_summary = analyze_captures([fixture], bulk=False)
    bulk_table, bulk_summary = analyze_captures([fixture])
    assert table_state(bulk_table, bulk_summary) == table_state(frames_table, frames_summary)
    assert verdicts(bulk_table) == verdicts(frames_table)
    assert any(v[3].behaviour == "snapshot-upload" for v in verdicts(bulk_table))  # the fixture is not empty
    assert bulk_summary.read.packets > 1000


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_bulk_equals_frame_by_frame_in_small_batches_and_small_tables(fixture: Path) -> None:
    """Batches of a few records, flows swept every 5 s of capture time, and a table that must evict."""
    assert_same(fixture, max_records=7)
    bulk_table, _ = assert_same(fixture, max_records=50, idle_timeout=20.0, max_flows=8, max_archived=8)
    assert bulk_table.stats.archived and bulk_table.stats.overflowed  # the paths that reorder nothing were taken


# ---------------------------------------------------------------------------------------------
# generated traffic
# ---------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), records=st.sampled_from([3, 64, 1 << 16]),
       small_table=st.booleans(), snaplen=st.sampled_from([0, 0, 0, 70]))
def test_bulk_equals_frame_by_frame_on_generated_store_traffic(tmp_path: Path, seed: int, records: int,
                                                               small_table: bool, snaplen: int) -> None:
    capture = tmp_path / f"store-{seed}.pcap"
    write_pcap(capture, Store(random.Random(seed)).generate(connections=40, noise=300), snaplen=snaplen)
    table_kw: dict[str, Any] = {"idle_timeout": 8.0, "max_flows": 8, "max_archived": 8} if small_table else {}
    bulk_table, bulk_summary = assert_same(capture, max_records=records, **table_kw)
    (frames_table, _), _ = both(capture, max_records=records, **table_kw)
    assert verdicts(bulk_table) == verdicts(frames_table)
    assert bulk_summary.read.packets > 300


def test_generated_traffic_exercises_every_kind_of_packet(tmp_path: Path) -> None:
    """The generator is worth its name: SNI, HTTP heads, DNS answers, decode failures, many runs."""
    capture = tmp_path / "store.pcap"
    write_pcap(capture, Store(random.Random(7)).generate(connections=60, noise=500))
    table, summary = assert_same(capture, max_records=100)
    assert summary.client_hellos >= 10 and summary.http_heads >= 5 and summary.dns_answers >= 20
    assert summary.decode.malformed + summary.decode.truncated + summary.decode.not_ip >= 20
    assert summary.decode.fragments >= 5
    assert table.stats.lan and table.stats.ignored and table.stats.flow_packets > 1000
    assert any(f.names for f in table.live.values())


def test_destinations_are_named_by_unicast_dns_not_by_mdns(tmp_path: Path) -> None:
    """An mDNS answer (any LAN host can multicast one, unasked) naming a remote address names nothing; a
    unicast DNS answer, from any resolver, does. Both paths agree."""
    cam_ip, cam_mac = CAMS[0]
    records = [
        (1.0, ethernet("01:00:5e:00:00:fb", NVR[1], 0x0800,
                       ipv4(NVR[0], "224.0.0.251", 17, udp(5353, 5353, dns_answer("api.ulucu.com", CLOUDS[0]))))),
        (1.1, ethernet(cam_mac, GATEWAY[1], 0x0800,
                       ipv4(OUTSIDE_RESOLVER, cam_ip, 17, udp(53, 40000, dns_answer("snap.example", CLOUDS[1]))))),
    ]
    for n, cloud in enumerate(CLOUDS[:2]):
        records.append((2.0 + n, ethernet(GATEWAY[1], cam_mac, 0x0800,
                                          ipv4(cam_ip, cloud, 6, tcp(50000 + n, 443, 7, ACK | PSH, b"x" * 900)))))
    capture = tmp_path / "names.pcap"
    write_pcap(capture, records)
    table, summary = assert_same(capture)
    assert summary.dns_answers == 1
    assert table.names_for(CLOUDS[0]) == [] and table.names_for(CLOUDS[1]) == ["snap.example"]


# ---------------------------------------------------------------------------------------------
# reading and hostile input
# ---------------------------------------------------------------------------------------------


def _records_of(path: Path, **kw: int) -> tuple[list[tuple[float, int, bytes]], ReadStats]:
    stats = ReadStats()
    batches = iter_pcap_batches(path, stats, **kw)
    assert batches is not None
    return [frame for item in batches for frame in ([item] if isinstance(item, tuple) else item.frames())], stats


def test_batches_read_what_iter_frames_reads(tmp_path: Path) -> None:
    capture = tmp_path / "store.pcap"
    write_pcap(capture, Store(random.Random(3)).generate(connections=20, noise=100))
    data = capture.read_bytes()
    reference_stats = ReadStats()
    reference = list(iter_frames(capture, reference_stats))
    for records in (1, 5, 1 << 16):
        assert _records_of(capture, max_records=records) == (reference, reference_stats)
    gz = tmp_path / "store.pcap.gz"
    gz.write_bytes(gzip.compress(data))
    frames, stats = _records_of(gz)
    assert frames == reference and stats.format == "pcap+gzip"
    # a bad record length in the middle, and the file cut short
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(data[:2000] + struct.pack("<IIII", 1, 2, 0x7FFFFFFF, 0x7FFFFFFF) + data[2000:-7])
    reference_stats = ReadStats()
    reference = list(iter_frames(bad, reference_stats))
    assert reference_stats.bad_records and reference_stats.truncated
    assert _records_of(bad, max_records=3) == (reference, reference_stats)


@pytest.mark.parametrize(("endian", "magic", "linktype"), [
    ("<", 0xA1B2C3D4, 1),  # microseconds, little-endian
    (">", 0xA1B23C4D, 1),  # nanoseconds, big-endian
    ("<", 0xA1B2CD34, 1),  # the "modified" pcap: 8 more bytes per record header
    ("<", 0xA1B2C3D4, 101),  # raw IP: analysed one by one
    ("<", 0xA1B2C3D4, 147),  # a link type decode does not know: counted, skipped
])
def test_every_pcap_variant_reads_and_analyses_the_same(tmp_path: Path, endian: str, magic: int,
                                                         linktype: int) -> None:
    records = Store(random.Random(5)).generate(connections=10, noise=40)
    scale = 1e9 if magic == 0xA1B23C4D else 1e6
    extra = b"\0" * 8 if magic == 0xA1B2CD34 else b""
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for ts, frame in records:
        if linktype == 101:
            frame = frame[14:]  # the IP packet without its Ethernet header
        sec = int(ts)
        out.append(struct.pack(endian + "IIII", sec, int((ts - sec) * scale), len(frame), len(frame)) + extra + frame)
    capture = tmp_path / "variant.pcap"
    capture.write_bytes(b"".join(out))
    reference_stats = ReadStats()
    reference = list(iter_frames(capture, reference_stats))
    assert _records_of(capture, max_records=9) == (reference, reference_stats)
    table, summary = assert_same(capture, max_records=9)
    assert summary.read.packets == len(records)
    assert (table.stats.packets > 0) == (linktype != 147)


def test_batches_apply_only_to_regular_capture_files(tmp_path: Path) -> None:
    text = tmp_path / "x.txt"
    text.write_bytes(b"not a capture at all")
    short = tmp_path / "short.pcap"
    short.write_bytes(b"\xd4\xc3")
    for path in (text, short, tmp_path / "missing.pcap", tmp_path, Path("/dev/null")):
        stats = ReadStats()
        assert iter_pcap_batches(path, stats) is None
        assert stats == ReadStats()  # nothing read: iter_frames does it (and raises the UsageError)


# ---------------------------------------------------------------------------------------------
# pcapng: runs of Enhanced Packet Blocks go in batches, every other packet frame by frame
# ---------------------------------------------------------------------------------------------


def write_pcapng(path: Path, records: list[tuple[float, bytes]], *, nanoseconds: bool = False,
                 oddities: bool = False, seed: int = 0) -> None:
    """``records`` as a pcapng file: two Ethernet interfaces (the second with if_tsresol and
    if_tsoffset), the packets in runs on one or the other. With ``oddities``: simple packet blocks,
    a raw-IP interface, an interface of an unknown link type, skipped blocks, a packet on an undefined
    interface, and a second section in the other byte order."""
    rng = random.Random(seed)
    offset = 1000
    sections = [records] if not oddities else [records[: len(records) // 2], records[len(records) // 2:]]
    out: list[bytes] = []
    for number, part in enumerate(sections):
        endian = "<" if number == 0 else ">"
        resolution = option(endian, 9, b"\x09" if nanoseconds else b"\x06")
        out += [shb(endian), idb(endian, 1),
                idb(endian, 1, resolution, option(endian, 14, struct.pack(endian + "q", offset)))]
        if oddities:
            out += [idb(endian, 101), idb(endian, 147)]
        iface = 0
        for ts, frame in part:
            if rng.random() < 0.05:
                iface = 1 - iface  # a run ends, the other interface's begins
            if iface == 0:
                units = int(round(ts * 1e6))
            else:
                units = int(round((ts - offset) * (1e9 if nanoseconds else 1e6)))
            out.append(epb(endian, iface, units, frame))
            if oddities:
                roll = rng.random()
                if roll < 0.03:
                    out.append(spb(endian, frame))  # interface 0, the previous packet's timestamp
                elif roll < 0.05:
                    out.append(epb(endian, 2, units, frame[14:]))  # raw IP: frame by frame
                elif roll < 0.06:
                    out.append(epb(endian, 3, units, frame))  # unknown link type: counted, skipped
                elif roll < 0.07:
                    out.append(block(endian, 5, struct.pack(endian + "III", 0, 0, 0)))  # statistics: skipped
                elif roll < 0.075:
                    out.append(epb(endian, 9, units, frame))  # no interface 9: a bad record
    path.write_bytes(b"".join(out))


@pytest.mark.parametrize("nanoseconds", [False, True])
@pytest.mark.parametrize("oddities", [False, True])
def test_pcapng_batches_read_what_iter_frames_reads(tmp_path: Path, nanoseconds: bool, oddities: bool) -> None:
    capture = tmp_path / "store.pcapng"
    write_pcapng(capture, Store(random.Random(3)).generate(connections=20, noise=100), nanoseconds=nanoseconds,
                 oddities=oddities, seed=1)
    reference_stats = ReadStats()
    reference = list(iter_frames(capture, reference_stats))
    assert reference_stats.format == "pcapng" and len(reference) > 300
    for kw in ({"max_records": 1}, {"max_records": 5}, {"batch_size": 3000}, {}):
        assert _records_of(capture, **kw) == (reference, reference_stats), kw
    gz = tmp_path / "store.pcapng.gz"
    gz.write_bytes(gzip.compress(capture.read_bytes()))
    frames, stats = _records_of(gz, batch_size=5000)
    assert frames == reference and stats.format == "pcapng+gzip"


@pytest.mark.parametrize("fixture", FIXTURES[:1], ids=[f.name for f in FIXTURES[:1]])
def test_bulk_equals_frame_by_frame_on_a_lab_capture_as_pcapng(tmp_path: Path, fixture: Path) -> None:
    records = [(ts, frame) for ts, _, frame in iter_frames(fixture, ReadStats())]
    capture = tmp_path / "lab.pcapng"
    write_pcapng(capture, records)
    bulk_table, bulk_summary = assert_same(capture)
    assert any(v[3].behaviour == "snapshot-upload" for v in verdicts(bulk_table))
    assert bulk_summary.read.packets == len(records) > 1000
    assert_same(capture, batch_size=20_000, max_records=50, idle_timeout=20.0, max_flows=8, max_archived=8)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), records=st.sampled_from([3, 64, 1 << 16]), nanoseconds=st.booleans(),
       oddities=st.booleans(), small_table=st.booleans())
def test_bulk_equals_frame_by_frame_on_generated_pcapng(tmp_path: Path, seed: int, records: int, nanoseconds: bool,
                                                        oddities: bool, small_table: bool) -> None:
    capture = tmp_path / f"store-{seed}.pcapng"
    write_pcapng(capture, Store(random.Random(seed)).generate(connections=30, noise=200), nanoseconds=nanoseconds,
                 oddities=oddities, seed=seed)
    table_kw: dict[str, Any] = {"idle_timeout": 8.0, "max_flows": 8, "max_archived": 8} if small_table else {}
    bulk_table, bulk_summary = assert_same(capture, max_records=records, **table_kw)
    (frames_table, _), _ = both(capture, max_records=records, **table_kw)
    assert verdicts(bulk_table) == verdicts(frames_table)
    assert bulk_summary.read.packets > 200



_SAMPLE = Store(random.Random(11)).generate(connections=4, noise=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutations(b"".join(struct.pack("<IIII", int(ts), 0, len(f), len(f)) + f for ts, f in _SAMPLE)))
def test_mutated_captures_never_raise_and_match(tmp_path: Path, data: bytes) -> None:
    capture = tmp_path / "mutated.pcap"
    capture.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1) + data)
    assert_same(capture, max_records=4)


_SAMPLE_NG = (shb("<") + idb("<", 1) + idb("<", 1, option("<", 9, b"\x09"))
              + b"".join(epb("<", n % 2, int(ts * 1e6) if n % 2 == 0 else int(ts * 1e9), f)
                         for n, (ts, f) in enumerate(_SAMPLE)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutations(_SAMPLE_NG))
def test_mutated_pcapng_captures_never_raise_and_match(tmp_path: Path, data: bytes) -> None:
    capture = tmp_path / "mutated.pcapng"
    capture.write_bytes(data)
    if data[:4] != b"\x0a\x0d\x0d\x0a":
        return  # no longer a pcapng file (the pcap mutations above cover the rest)
    reference_stats = ReadStats()
    reference = list(iter_frames(capture, reference_stats))
    assert _records_of(capture, max_records=3, batch_size=700) == (reference, reference_stats)
    assert_same(capture, max_records=3, batch_size=700)
