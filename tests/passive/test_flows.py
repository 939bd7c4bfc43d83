"""The flow table: orientation, counters, upstream objects, exchanges, runs, names, HTTP heads, and the
memory bound for long captures. Packets are fed as plain values (no pcap, no decoder)."""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass

import pytest

from scanner.passive.flows import (
    ARCHIVE_KEEP,
    BURST_GAP_S,
    HEADS_KEEP,
    JPEG_MIN_BYTES,
    MAX_NAMES,
    OVERFLOW,
    STREAM_OBJECT_S,
    TCP_ACK,
    TCP_SYN,
    TIMELINE_MAX,
    Flow,
    FlowKey,
    FlowTable,
    merge_flows,
)

CAM = "198.51.100.44"
CAM_MAC = "44:19:b6:f9:0e:c7"
CLOUD = "203.0.113.103"
T0 = 1_700_000_000.0


def up(table: FlowTable, ts: float, size: int, *, payload: int | None = None, src: str = CAM, dst: str = CLOUD,
       dport: int = 443, sport: int = 40000, proto: int = 6, flags: int = TCP_ACK) -> Flow | None:
    """One packet from the device: ``size`` IP bytes, payload = size - 52 (IPv4 + TCP with timestamps)."""
    pl = max(0, size - 52) if payload is None else payload
    return table.add(ts, CAM_MAC, src, dst, proto, sport, dport, size, pl, flags)


def down(table: FlowTable, ts: float, size: int, *, payload: int | None = None, src: str = CLOUD, dst: str = CAM,
         sport: int = 443, dport: int = 40000, proto: int = 6) -> Flow | None:
    pl = max(0, size - 52) if payload is None else payload
    return table.add(ts, "00:11:22:33:44:55", src, dst, proto, sport, dport, size, pl, TCP_ACK)


def only(table: FlowTable) -> Flow:
    flows = table.flows()
    assert len(flows) == 1, flows
    return flows[0]


# ---- orientation ----------------------------------------------------------------------------------------
def test_upstream_and_downstream_land_in_one_flow_keyed_by_the_remote_port():
    table = FlowTable()
    up(table, T0, 100, sport=40000)
    down(table, T0 + 0.01, 300, dport=40000)
    up(table, T0 + 1, 200, sport=40001)  # a second connection: same flow (local port not in the key)
    flow = only(table)
    assert flow.key == FlowKey(CAM, CLOUD, 443, 6)
    assert flow.key.transport == "tcp"
    assert (flow.bytes_up, flow.packets_up, flow.bytes_down, flow.packets_down) == (300, 2, 300, 1)
    assert flow.first_seen == T0 and flow.last_seen == T0 + 1
    assert flow.local_mac == CAM_MAC  # from the device's own frames, never the gateway's


@pytest.mark.parametrize(("src", "dst", "counter"), [
    ("198.51.100.44", "198.51.100.1", "lan"),  # both inside the store
    ("8.8.8.8", "203.0.113.5", "transit"),  # neither inside
    ("198.51.100.44", "239.255.255.250", "ignored"),  # SSDP multicast
    ("198.51.100.130", "255.255.255.255", "ignored"),  # Tuya broadcast beacon
    ("198.51.100.44", "198.51.100.255", "ignored"),  # subnet broadcast
    ("169.254.1.1", "203.0.113.5", "ignored"),  # link-local
    ("not-an-ip", "203.0.113.5", "ignored"),
])
def test_packets_that_belong_to_no_cloud_flow_are_only_counted(src, dst, counter):
    table = FlowTable()
    assert table.add(T0, CAM_MAC, src, dst, 17, 1900, 1900, 100, 72) is None
    assert table.flows() == []
    assert getattr(table.stats, counter) == 1
    assert table.stats.packets == 1 and table.stats.flow_packets == 0


def test_local_networks_default_and_custom():
    default = FlowTable()
    for ip in ("10.1.2.3", "172.16.0.9", "192.168.1.5", "198.51.100.7", "127.77.0.12", "fd00::5"):
        assert default.is_local(ip), ip
    for ip in ("203.0.113.9", "127.78.0.3", "8.8.8.8", "2001:db8::1"):
        assert not default.is_local(ip), ip
    custom = FlowTable(["192.0.2.0/24"])
    assert custom.is_local("192.0.2.9") and not custom.is_local("10.0.0.1")
    flow = custom.add(T0, CAM_MAC, "192.0.2.9", "10.0.0.1", "udp", 5000, 8800, 128, 100)
    assert flow is not None and flow.key == FlowKey("192.0.2.9", "10.0.0.1", 8800, 17)


def test_loopback_lab_devices_are_local_and_loopback_clouds_remote():
    table = FlowTable()
    flow = table.add(T0, "", "127.77.0.5", "127.78.0.9", 6, 50000, 29023, 300, 248, TCP_ACK)
    assert flow is not None and flow.key.remote_ip == "127.78.0.9"


def test_ipv6_flows():
    table = FlowTable(["2001:db8:1::/64"])
    up(table, T0, 1000, src="2001:db8:1::44", dst="2001:db8:ffff::1")
    assert only(table).key == FlowKey("2001:db8:1::44", "2001:db8:ffff::1", 443, 6)


def test_tcp_connections_are_counted_from_the_devices_syns():
    table = FlowTable()
    for i in range(3):
        up(table, T0 + i, 60, payload=0, sport=40000 + i, flags=TCP_SYN)
        down(table, T0 + i, 60, payload=0, dport=40000 + i)
    up(table, T0 + 5, 60, payload=0, flags=TCP_SYN | TCP_ACK)  # not an opening SYN
    assert only(table).connections == 3


def test_time_never_runs_backwards_for_reordered_packets():
    table = FlowTable()
    up(table, T0 + 1.0, 1500)
    up(table, T0 + 0.9, 1500)  # mirror-port reordering
    flow = only(table).closed()
    assert flow.first_seen == T0 + 1.0 and flow.last_seen == T0 + 1.0
    assert all(b.end >= b.start for b in flow.bursts)


# ---- upstream objects ------------------------------------------------------------------------------------
def send_object(table: FlowTable, ts: float, size: int, *, mss: int = 1448, spacing: float = 0.0005,
                reply: bool = True) -> float:
    """An HTTP request of ``size`` IP bytes in MSS packets, then the server's reply; returns the end time."""
    while size > 0:
        chunk = min(size, mss + 52)
        up(table, ts, chunk)
        size -= chunk
        ts += spacing
    if reply:
        down(table, ts + 0.005, 300)  # HTTP response with payload
    return ts + 0.005


def test_objects_split_on_reply_then_gap_and_pure_acks_are_not_objects():
    table = FlowTable()
    t = send_object(table, T0, 40_000)
    t = send_object(table, t + 0.3, 200_000)
    for i in range(20):
        up(table, t + 0.5 + i * 0.001, 52, payload=0)  # pure ACKs from the device
    flow = only(table).closed()
    assert [b.bytes for b in flow.bursts] == [40_000, 200_000]
    assert flow.jpeg_pairs == 1  # two JPEG-sized objects 0.3 s apart


def test_a_stalled_upload_without_a_reply_stays_one_object():
    table = FlowTable()
    t = send_object(table, T0, 300_000, reply=False)
    down(table, t, 52, payload=0)  # TCP ACKs only
    send_object(table, t + 0.6, 300_000)  # 0.6 s flow-control stall, then the rest
    flow = only(table).closed()
    assert [b.bytes for b in flow.bursts] == [600_000]


def test_a_stall_longer_than_a_second_ends_the_object_even_without_a_reply():
    table = FlowTable()
    t = send_object(table, T0, 30_000, reply=False)
    send_object(table, t + 1.2, 30_000, reply=False)
    assert [b.bytes for b in only(table).closed().bursts] == [30_000, 30_000]


def test_a_reply_with_a_gap_shorter_than_the_burst_gap_does_not_split():
    table = FlowTable()
    t = send_object(table, T0, 2_000)  # TLS ClientHello-ish, answered
    send_object(table, t + BURST_GAP_S / 2, 50_000)  # the request follows quickly
    assert [b.bytes for b in only(table).closed().bursts] == [52_000]


def test_udp_datagrams_form_objects_too():
    table = FlowTable()
    for i in range(30):
        up(table, T0 + i * 0.001, 1228, proto=17, dport=8800)
    flow = only(table).closed()
    assert flow.key.transport == "udp"
    assert [b.packets for b in flow.bursts] == [30]


def test_long_continuous_objects_are_streams_not_sized():
    table = FlowTable()
    t = T0
    while t < T0 + STREAM_OBJECT_S + 1:
        up(table, t, 1252, proto=17, dport=8800)
        t += 0.01
    flow = only(table).closed()
    assert flow.stream_objects == 1
    assert math.isclose(flow.stream_seconds, STREAM_OBJECT_S + 1, abs_tol=0.02)
    assert flow.stream_bytes == flow.bytes_up
    assert sum(flow.object_counts) == 0


def test_object_histogram_counts_and_bytes():
    table = FlowTable()
    t = T0
    for size in (500, 14_999, 15_000, 999_999, 1_000_000, 3_000_000):
        t = send_object(table, t, size, mss=65_000) + 2
    flow = only(table).closed()
    assert sum(flow.object_counts) == 6
    assert sum(flow.object_bytes) == 500 + 14_999 + 15_000 + 999_999 + 1_000_000 + 3_000_000
    assert flow.jpeg_pairs == 1  # 15_000 and 999_999 are JPEG-sized and 2 s apart; 1_000_000 is not


def test_isolated_jpeg_sized_objects_make_no_pairs():
    table = FlowTable()
    for i in range(4):
        send_object(table, T0 + i * 90, 600_000)
    flow = only(table).closed()
    assert flow.jpeg_pairs == 0
    assert sum(flow.object_counts) == 4


# ---- exchanges and runs --------------------------------------------------------------------------------
def test_exchanges_and_their_spacing():
    table = FlowTable()
    rng = random.Random(5)
    starts = []
    t = T0
    for _ in range(12):
        starts.append(t)
        up(table, t, 250)
        down(table, t + 0.01, 102)
        t += 20 * rng.uniform(0.98, 1.02)
    flow = only(table).closed()
    assert sum(flow.exchange_counts) == 12 and flow.exchange_total == 12
    assert [e.size for e in flow.exchanges] == [352] * 12
    n, mean, std = flow.interval_stats()
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert n == 11
    assert math.isclose(mean, statistics.fmean(gaps), rel_tol=1e-9)
    assert math.isclose(std, statistics.pstdev(gaps), rel_tol=1e-6)


def test_activity_within_two_seconds_is_one_exchange():
    table = FlowTable()
    up(table, T0, 500)
    down(table, T0 + 1.5, 500)
    up(table, T0 + 3.0, 500)
    up(table, T0 + 5.5, 500)  # 2.5 s later: a new exchange
    flow = only(table).closed()
    assert [e.size for e in flow.exchanges] == [1500, 500]


def test_runs_measure_span_duty_rate_and_steadiness():
    table = FlowTable()
    # 10 s of 25 kB per second, one idle second inside, then silence, then a lone packet.
    for sec in range(12):
        if sec == 5:
            continue
        up(table, T0 + sec + 0.5, 25_000, proto=17)
    up(table, T0 + 40.2, 1000, proto=17)
    flow = only(table).closed()
    longest = max(flow.runs, key=lambda r: r.span)
    assert (longest.span, longest.active, longest.bytes) == (12, 11, 275_000)
    assert math.isclose(longest.duty, 11 / 12)
    assert math.isclose(longest.bits_per_second, 275_000 * 8 / 12)
    assert 0 < longest.cv < 0.35  # steady apart from the one idle second
    assert flow.run_count == 2


def test_closed_is_a_copy_and_the_live_flow_keeps_going():
    table = FlowTable()
    send_object(table, T0, 40_000)
    live = table.live[FlowKey(CAM, CLOUD, 443, 6)]
    snapshot = live.closed()
    assert len(snapshot.bursts) == 1 and len(live.bursts) == 0  # the live object is still open
    send_object(table, T0 + 0.05, 10_000)  # continues the same object (no gap)
    assert [b.bytes for b in only(table).closed().bursts] == [50_000]


# ---- names and HTTP ------------------------------------------------------------------------------------
@dataclass
class Head:
    method: str
    path: str
    host: str = ""
    content_type: str = ""
    content_length: int | None = None


def test_http_heads_are_bounded_and_counted():
    table = FlowTable()
    up(table, T0, 100, dport=80)
    for i in range(HEADS_KEEP + 10):
        table.add_http_head(T0 + i, CAM, CLOUD, 6, 40000, 80,
                            Head("PUT", f"/Ub0000000542866896QB_0_{i}_4.jpg", "v0.api.upyun.com", "image/jpeg", 40_000))
    table.add_http_head(T0, CAM, CLOUD, 6, 40000, 80, Head("POST", "/api", "", "application/json", 50_000))
    table.add_http_head(T0, CAM, CLOUD, 6, 40000, 80, Head("POST", "/up", "", "application/pdf", 2_000_000))
    table.add_http_head(T0, CAM, CLOUD, 6, 40000, 80, Head("GET", "/status", "", "", None))
    table.add_http_head(T0, CLOUD, CAM, 6, 80, 40000, Head("PUT", "/x.jpg", "", "image/jpeg", 1))  # downstream
    flow = only(table)
    assert len(flow.heads) == HEADS_KEEP
    assert flow.http_requests == HEADS_KEEP + 13
    assert flow.http_images == HEADS_KEEP + 10
    assert flow.http_image_bytes == 40_000 * (HEADS_KEEP + 10)
    assert flow.http_jpeg_uploads == 1 and flow.http_documents == 1
    assert flow.names == {"v0.api.upyun.com": "http"}


def test_image_is_recognised_by_type_or_extension():
    table = FlowTable()
    up(table, T0, 100, dport=80)
    octet = Head("POST", "/faces/1.JPG?x=1", "", "application/octet-stream", 30_000)
    table.add_http_head(T0, CAM, CLOUD, 6, 40000, 80, octet)
    table.add_http_head(T0, CAM, CLOUD, 6, 40000, 80, Head("GET", "/logo.png", "", "", None))  # a download
    assert only(table).http_images == 1


def test_heads_for_unknown_flows_are_dropped():
    table = FlowTable()
    table.add_http_head(T0, CAM, CLOUD, 6, 40000, 80, Head("PUT", "/x.jpg", "", "image/jpeg", 30_000))
    assert table.flows() == []


def test_names_from_sni_http_and_dns():
    table = FlowTable()
    up(table, T0, 600)
    table.add_name(CAM, CLOUD, 6, 40000, 443, "StoreFace-Pic.oss-cn-hangzhou.aliyuncs.com.", "sni")
    table.add_dns("storeface-pic.oss-cn-hangzhou.aliyuncs.com", [CLOUD])
    table.add_dns("oss-cn-hangzhou.aliyuncs.com", [CLOUD, "203.0.113.200"])
    flow = table.live[FlowKey(CAM, CLOUD, 443, 6)]
    assert flow.names == {"storeface-pic.oss-cn-hangzhou.aliyuncs.com": "sni"}
    assert table.names_for(CLOUD, flow) == ["storeface-pic.oss-cn-hangzhou.aliyuncs.com",
                                            "oss-cn-hangzhou.aliyuncs.com"]
    assert table.names_for("203.0.113.200") == ["oss-cn-hangzhou.aliyuncs.com"]
    for i in range(MAX_NAMES + 5):
        flow.add_name(f"n{i}.example", "sni")
    assert len(flow.names) == MAX_NAMES


def test_dns_map_is_an_lru_bounded_in_addresses_and_names():
    table = FlowTable(max_dns=16)
    for i in range(100):
        table.add_dns(f"host{i}.example", [f"203.0.113.{i}"])
    assert len(table.dns) == 16
    assert table.names_for("203.0.113.99") == ["host99.example"]
    assert table.names_for("203.0.113.0") == []
    for i in range(30):
        table.add_dns(f"alias{i}.example", ["203.0.113.99"])
    assert len(table.names_for("203.0.113.99")) == MAX_NAMES


# ---- archive, merge, memory bound ------------------------------------------------------------------------
def test_idle_flows_are_archived_and_merged_back_with_the_interval_across_the_gap():
    table = FlowTable(idle_timeout=60)
    for i in range(3):  # three heartbeats 20 s apart
        up(table, T0 + 20 * i, 250)
    up(table, T0 + 300, 250, dst="203.0.113.9")  # another flow advances time: the first goes idle
    up(table, T0 + 310, 250)  # the first flow comes back
    assert table.stats.archived == 1
    flows = {f.key.remote_ip: f for f in table.flows()}
    merged = flows[CLOUD]
    assert merged.instances == 2
    assert merged.packets_up == 4 and merged.bytes_up == 1000
    assert sum(merged.exchange_counts) == 4
    n, mean, _ = merged.interval_stats()
    assert n == 3 and math.isclose(mean, (20 + 20 + 270) / 3)
    assert merged.first_seen == T0 and merged.last_seen == T0 + 310


def test_merge_of_two_halves_matches_the_whole():
    rng = random.Random(7)
    packets = []
    t = T0
    for _ in range(400):
        t += rng.expovariate(2.0)
        if rng.random() < 0.6:
            packets.append((t, True, rng.choice([60, 1500, 30_000, 65_000])))
        else:
            packets.append((t, False, rng.choice([52, 300])))
    whole = FlowTable()
    first, second = FlowTable(), FlowTable()
    for index, (ts, is_up, size) in enumerate(packets):
        for table in (whole, first if index < 200 else second):
            (up if is_up else down)(table, ts, size)
    a, b, w = only(first), only(second), only(whole).closed()
    merged = merge_flows([b, a])
    assert merged is not None
    merged = merged.closed()
    for attr in ("bytes_up", "bytes_down", "packets_up", "packets_down", "first_seen", "last_seen"):
        assert getattr(merged, attr) == getattr(w, attr), attr
    assert sum(merged.object_bytes) + merged.stream_bytes == sum(w.object_bytes) + w.stream_bytes
    assert sum(merged.exchange_counts) in (sum(w.exchange_counts), sum(w.exchange_counts) + 1)  # cut at the seam


def test_flows_returns_copies():
    table = FlowTable()
    send_object(table, T0, 40_000)
    out = table.flows()[0]
    out.bytes_up = 0
    out.bursts.clear()
    assert table.live[FlowKey(CAM, CLOUD, 443, 6)].bytes_up == 40_000 + 0  # untouched


def test_archived_records_keep_only_a_few_evidence_items():
    table = FlowTable(idle_timeout=10)
    t = T0
    for _ in range(20):
        t = send_object(table, t, 40_000) + 0.3
    up(table, t + 100, 100, dst="203.0.113.9")
    up(table, t + 200, 100, dst="203.0.113.9")
    archived = table.archive[FlowKey(CAM, CLOUD, 443, 6)]
    assert len(archived.bursts) == ARCHIVE_KEEP
    assert sum(archived.object_counts) == 20  # the histogram keeps everything


def _feed_and_check_bound(table: FlowTable, keys: list[tuple[str, str]], order, n: int) -> int:
    bound = table.max_flows + table.max_archived + 301
    total = 0
    ts = T0
    for i in range(n):
        ts += 0.001
        device, remote = keys[order(i)]
        size = 60 + (i % 1400)
        if i & 1:
            table.add(ts, "", device, remote, 6, 40000, 443, size, size - 52, TCP_ACK)
        else:
            table.add(ts, "", remote, device, 6, 443, 40000, size, size - 52, TCP_ACK)
        total += size
        if i % 50_000 == 0:
            assert len(table.live) <= table.max_flows
            assert len(table.archive) <= table.max_archived
            assert len(table.overflow) <= 301  # one per device at most, plus the global record
            assert table.tracked() <= bound
    return total


def _check_conservation(table: FlowTable, total: int, n: int) -> None:
    assert table.stats.flow_packets == n
    assert table.stats.peak_live <= table.max_flows
    records = table.flows(include_overflow=True)
    assert sum(f.bytes_up + f.bytes_down for f in records) == total  # no byte lost on the way
    assert sum(f.packets_up + f.packets_down for f in records) == n
    assert all(f.key.remote_ip == OVERFLOW for f in table.overflow.values())
    assert all(len(f.bursts) <= ARCHIVE_KEEP for f in table.archive.values())


DEVICES = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(300)]
REMOTES = [f"198.18.{i // 256}.{i % 256}" for i in range(5000)]


def test_a_million_packets_over_many_flows_stay_within_the_bound():
    """Memory bound for a long capture: 200 concurrent sessions of 100 packets each (10,000 sessions over
    ~10,000 distinct keys), live <= max_flows, archive <= max_archived, overflow <= one per device."""
    table = FlowTable(["10.0.0.0/16"], max_flows=256, idle_timeout=5.0, max_archived=1024)
    n = 1_000_000
    sessions = n // 100
    keys = [(DEVICES[k % 300], REMOTES[(k * 7919) % 5000]) for k in range(sessions)]

    def order(i: int) -> int:  # slot i % 200 runs session (i // 20_000) * 200 + slot
        return (i // 20_000) * 200 + i % 200

    total = _feed_and_check_bound(table, keys, order, n)
    _check_conservation(table, total, n)
    assert table.stats.flows_created >= sessions
    assert table.stats.archived >= sessions - table.max_flows and table.stats.overflowed > 0


def test_worst_case_every_packet_a_new_flow_stays_within_the_bound():
    table = FlowTable(["10.0.0.0/16"], max_flows=128, idle_timeout=30.0, max_archived=512)
    n = 60_000
    keys = [(DEVICES[k % 300], REMOTES[(k * 31) % 5000]) for k in range(n)]
    total = _feed_and_check_bound(table, keys, lambda i: i, n)
    _check_conservation(table, total, n)
    assert table.stats.flows_created == n


def test_overflow_keeps_the_heaviest_uploaders_in_the_archive():
    table = FlowTable(max_flows=8, idle_timeout=1e9, max_archived=8)
    heavy = "203.0.113.250"
    send_object(table, T0, 500_000)  # default destination CLOUD: a heavy uploader
    for i in range(200):
        up(table, T0 + 1 + i, 100, dst=heavy if i == 0 else f"198.18.0.{i}")
    kept = {f.key.remote_ip for f in table.archive.values()} | {f.key.remote_ip for f in table.live.values()}
    assert CLOUD in kept
    assert table.stats.overflowed > 0


def test_jpeg_bound_constant_is_the_classifier_s():
    from scanner.passive import classify

    assert classify.JPEG_MIN_BYTES == JPEG_MIN_BYTES


# ---- the upload timeline (the report's plot) ------------------------------------------------------------
def _pictures(table: FlowTable, starts: list[float], size: int = 60_000) -> None:
    """One JPEG-sized upload per start (two segments), each answered by the server."""
    for t in starts:
        up(table, t, size // 2)
        up(table, t + 0.01, size // 2)
        down(table, t + 0.05, 300)


def test_each_upstream_object_is_on_the_timeline_with_its_start_and_bytes():
    table = FlowTable()
    _pictures(table, [T0, T0 + 10, T0 + 20])
    flow = only(table).closed()
    assert [start for start, _ in flow.timeline] == [T0, T0 + 10, T0 + 20]
    assert all(nbytes == 60_000 for _, nbytes in flow.timeline)
    assert flow.timeline_width == 0


def test_a_long_capture_bins_the_timeline_and_keeps_every_byte():
    table = FlowTable(idle_timeout=10_000)
    n = TIMELINE_MAX * 5
    _pictures(table, [T0 + 7 * i for i in range(n)])
    flow = only(table).closed()
    assert len(flow.timeline) <= TIMELINE_MAX and flow.timeline_width >= 1
    assert sum(nbytes for _, nbytes in flow.timeline) == 60_000 * n  # binned, never dropped
    starts = [start for start, _ in flow.timeline]
    assert starts == sorted(starts) and starts[0] <= T0 and starts[-1] <= T0 + 7 * (n - 1)


def test_archived_and_live_periods_merge_their_timelines():
    table = FlowTable(idle_timeout=60)
    _pictures(table, [T0, T0 + 5])
    _pictures(table, [T0 + 1000, T0 + 1005])  # the first period was archived meanwhile
    flow = only(table).closed()
    assert [start for start, _ in flow.timeline] == [T0, T0 + 5, T0 + 1000, T0 + 1005]
