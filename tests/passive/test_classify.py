"""The behaviour classifier on synthetic flows built like the lab's behaviour model
(scanner/lab/behaviour.py, profiles.py, devices/office.py), boundary cases, and the lab captures
committed under fixtures/ (header-only pcaps recorded on lab 72's mirror port, seed 1)."""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scanner.passive.classify import (
    HEARTBEAT_MAX_EXCHANGE,
    VIDEO_MIN_BPS,
    Verdict,
    classify,
    cloud_links,
    observe,
)
from scanner.passive.clouds import load_cloud_signatures
from scanner.passive.flows import JPEG_MAX_BYTES, JPEG_MIN_BYTES, TCP_ACK, TCP_SYN, Flow, FlowKey, FlowTable

T0 = 1_700_000_000.0
MSS = 1448
HDR = 52  # IPv4 + TCP with timestamps
FIXTURES = Path(__file__).parent / "fixtures"


# ---- a small traffic model mirroring the lab's -----------------------------------------------------------
@dataclass
class Head:
    method: str
    path: str
    host: str = ""
    content_type: str = ""
    content_length: int | None = None


class Net:
    """Collects what several Sims emit and feeds a FlowTable in capture (time) order."""

    def __init__(self, table: FlowTable | None = None) -> None:
        self.events: list[tuple[float, int, str, tuple[object, ...]]] = []
        self.table = table if table is not None else FlowTable()

    def emit(self, ts: float, kind: str, args: tuple[object, ...]) -> None:
        self.events.append((ts, len(self.events), kind, args))

    def run(self) -> FlowTable:
        table = self.table
        for ts, _, kind, args in sorted(self.events):
            if kind == "pkt":
                table.add(ts, *args)  # type: ignore[arg-type]
            else:
                table.add_http_head(ts, *args)  # type: ignore[arg-type]
        self.events.clear()
        return table


class Sim:
    """Emits packets for one (device, cloud, port) pair, the way the lab's devices talk.

    ``gro`` merges upstream segments like the lab's veth mirror does (up to 64 kB per packet);
    ``uplink_bps`` paces uploads like a WAN uplink instead of LAN speed.
    """

    def __init__(self, net: Net, device: str, cloud: str, port: int, *, proto: int = 6,
                 seed: int = 1, gro: bool = False, uplink_bps: float | None = None) -> None:
        self.net = net
        self.device = device
        self.cloud = cloud
        self.port = port
        self.proto = proto
        self.rng = random.Random(seed)
        self.sport = 40000
        self.seg = 65_160 if gro else MSS
        self.uplink_bps = uplink_bps
        self.pictures = 0

    def up(self, ts: float, payload: int, flags: int = TCP_ACK) -> None:
        hdr = HDR if self.proto == 6 else 28
        self.net.emit(ts, "pkt", ("44:19:b6:00:00:01", self.device, self.cloud, self.proto, self.sport, self.port,
                                  payload + hdr, payload, flags if self.proto == 6 else 0))

    def down(self, ts: float, payload: int) -> None:
        hdr = HDR if self.proto == 6 else 28
        self.net.emit(ts, "pkt", ("00:11:22:33:44:55", self.cloud, self.device, self.proto, self.port, self.sport,
                                  payload + hdr, payload, TCP_ACK if self.proto == 6 else 0))

    def connect(self, t: float, tls: bool) -> float:
        self.sport += 1
        self.up(t, 0, TCP_SYN)
        self.down(t + 0.0005, 0)
        self.up(t + 0.001, 0)
        t += 0.001
        if tls:  # measured in the lab: ClientHello 517, server 1118 + 542, client 80
            self.up(t, 517)
            self.down(t + 0.001, 1118)
            self.up(t + 0.0015, 0)
            self.up(t + 0.003, 80)
            self.down(t + 0.004, 542)
            t += 0.005
        return t

    def close(self, t: float) -> float:
        self.up(t, 0)
        self.down(t + 0.0005, 0)
        return t + 0.001

    def request(self, t: float, size: int, *, reply: int = 180, head: Head | None = None) -> float:
        """One HTTP request with a ``size``-byte body (header ~300 B) and the reply; returns the end."""
        remaining = size + 300
        if head is not None:
            self.net.emit(t, "head", (self.device, self.cloud, self.proto, self.sport, self.port, head))
        step = 0.0003 if self.uplink_bps is None else self.seg * 8 / self.uplink_bps
        sent = 0
        while remaining > 0:
            chunk = min(self.seg, remaining)
            self.up(t, chunk)
            remaining -= chunk
            sent += 1
            if sent % 4 == 0:
                self.down(t + step / 2, 0)  # ACKs
            t += step
        self.down(t + 0.002, reply)
        return t + 0.003

    def walkby(self, t: float, *, tls: bool = True, base64: bool = False, faces: tuple[int, int] = (1, 3),
               scene: bool = True, heads: bool = False) -> float:
        """behaviour.snapshot_uploads: 1-3 face crops of 18-64 kB and a 120-350 kB scene, 0.2-1 s apart."""
        count = self.rng.randint(*faces)
        sizes = [self.rng.randint(18_000, 64_000) for _ in range(count)]
        if scene:
            sizes.append(self.rng.randint(120_000, 350_000))
        t = self.connect(t, tls)
        for size in sizes:
            body = math.ceil(size * 4 / 3) + 40 if base64 else size
            path = f"/Ub00000005_0_{int(t)}_4.jpg"
            head = Head("PUT", path, "v0.api.upyun.com", "image/jpeg", size) if heads else None
            t = self.request(t, body, head=head)
            self.pictures += 1
            t += self.rng.uniform(0.2, 1.0)
        return self.close(t)

    def visitors(self, start: float, seconds: float, mean_gap: float, **kw: object) -> None:
        """Visitors at exponential gaps (node.start_visitors); overlapping walk-bys are allowed."""
        t = start
        while True:
            t += self.rng.expovariate(1.0 / mean_gap)
            if t > start + seconds:
                return
            self.walkby(t, **kw)  # type: ignore[arg-type]

    def json_heartbeats(self, start: float, seconds: float, interval: float = 20.0, jitter: float = 0.02) -> None:
        """behaviour.json_line_heartbeat: one persistent connection, ~250 B up / ~100 B down."""
        t = self.connect(start, tls=False)
        while t < start + seconds:
            self.up(t, 199)
            self.down(t + 0.001, 50)
            self.up(t + 0.0015, 0)
            t += interval * self.rng.uniform(1 - jitter, 1 + jitter)

    def mqtt_pings(self, start: float, seconds: float, interval: float = 30.0) -> None:
        t = self.connect(start, tls=False)
        self.up(t, 60)
        self.down(t + 0.001, 4)
        while t < start + seconds:
            t += interval * self.rng.uniform(0.9, 1.1)
            self.up(t, 2)
            self.down(t + 0.001, 2)
            self.up(t + 0.0015, 0)

    def https_polls(self, start: float, seconds: float, interval: float, body: int = 300) -> None:
        """behaviour.https_poll: a new TLS connection per small POST (~4 kB per exchange in the lab)."""
        t = start
        while t < start + seconds:
            end = self.connect(t, tls=True)
            end = self.request(end, body, reply=240)
            self.close(end)
            t += interval * self.rng.uniform(0.9, 1.1)

    def udp_registrations(self, start: float, seconds: float, interval: float = 30.0) -> None:
        """Dahua P2P DHPOST every 30 s (~80 B) and its answer."""
        t = start
        while t < start + seconds:
            self.up(t, 79)
            self.down(t + 0.02, 91)
            t += interval * self.rng.uniform(0.9, 1.1)

    def udp_video(self, start: float, seconds: float, kbps: int = 1200) -> None:
        """behaviour.udp_p2p video: 1200-byte datagrams every 50 ms tick."""
        per_tick = max(1, kbps * 1000 // 8 // 1200 // 20)
        t = start
        while t < start + seconds:
            for k in range(per_tick):
                self.up(t + k * 0.0001, 1200)
            t += 0.05

    def tcp_video(self, start: float, seconds: float, kbps: int = 2000, tick: float = 0.1,
                  ack_every_tick: bool = False) -> None:
        """behaviour.tcp_video_relay: 1400-byte writes, a tick's worth every ``tick`` seconds."""
        t = self.connect(start, tls=False)
        per_tick = max(1, int(kbps * 1000 / 8 / 1400 * tick))
        end = start + seconds
        while t < end:
            for k in range(per_tick):
                self.up(t + k * 0.0001, 1400)
            self.down(t + 0.002, 16 if ack_every_tick else 0)
            t += tick

    def browse(self, t: float, size: int) -> float:
        """The staff PC: GET a page of ``size`` bytes over a new TLS connection."""
        t = self.connect(t, tls=True)
        self.up(t, 288)
        while size > 0:
            chunk = min(self.seg, size)
            self.down(t, chunk)
            size -= chunk
            t += 0.0002
        self.up(t, 0)
        return self.close(t + 0.001)


def verdict_of(net: Net, device: str, cloud: str, port: int, proto: int = 6) -> Verdict:
    flow = next(f for f in net.run().flows() if f.key == FlowKey(device, cloud, port, proto))
    return classify(flow)


HIK, DAHUA, ULUCU, BOX, NVR, DCAM, PC, POS = (f"198.51.100.{n}" for n in (44, 205, 75, 40, 215, 26, 211, 63))
OSS, IAI, UPYUN, ANCHANG, RELAY, EASY4IP, ENTRY = (f"203.0.113.{n}" for n in (103, 105, 107, 108, 102, 104, 106))


# ---- snapshot uploads -------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_walkby_bursts_over_tls_are_snapshot_uploads_with_the_exact_count(seed):
    net = Net()
    sim = Sim(net, HIK, OSS, 443, seed=seed)
    sim.visitors(T0, 600, mean_gap=30)
    verdict = verdict_of(net, HIK, OSS, 443)
    assert verdict.behaviour == "snapshot-upload", verdict
    assert verdict.uploads == sim.pictures
    assert verdict.rule == "jpeg-bursts"
    assert "JPEG-sized" in verdict.explanation


@pytest.mark.parametrize("gro", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_back_to_back_visitors_never_look_like_video(seed, gro):
    """Visitors every ~3-10 s make long, busy upstream runs; pictures must still be pictures."""
    net = Net()
    sim = Sim(net, BOX, ANCHANG, 443, seed=seed, gro=gro)
    sim.visitors(T0, 300, mean_gap=3 + seed)
    verdict = verdict_of(net, BOX, ANCHANG, 443)
    assert verdict.behaviour == "snapshot-upload", verdict
    assert verdict.uploads == sim.pictures


def test_face_api_json_base64_pictures_are_counted():
    """Dahua -> Tencent IAI: each picture base64 in a JSON body (x4/3), over TLS."""
    net = Net()
    sim = Sim(net, DAHUA, IAI, 443, seed=3)
    for k in range(8):
        sim.walkby(T0 + 25 * k, base64=True)
    verdict = verdict_of(net, DAHUA, IAI, 443)
    assert verdict.behaviour == "snapshot-upload"
    assert verdict.uploads == sim.pictures


def test_plain_http_picture_heads_give_the_count_directly():
    """ULUCU -> UpYun over plain HTTP: PUT <SN>_0_<time>_4.jpg with Content-Type image/jpeg."""
    net = Net()
    sim = Sim(net, ULUCU, UPYUN, 80, seed=4)
    for k in range(5):
        sim.walkby(T0 + 40 * k, tls=False, heads=True)
    verdict = verdict_of(net, ULUCU, UPYUN, 80)
    assert verdict.behaviour == "snapshot-upload"
    assert verdict.rule == "http-images"
    assert verdict.uploads == sim.pictures
    assert "PUT /Ub00000005_0_" in verdict.explanation


def test_one_image_head_is_enough_when_http_shows_it():
    net = Net()
    sim = Sim(net, ULUCU, UPYUN, 80)
    sim.walkby(T0, tls=False, heads=True, faces=(1, 1), scene=False)
    verdict = verdict_of(net, ULUCU, UPYUN, 80)
    assert (verdict.behaviour, verdict.uploads) == ("snapshot-upload", 1)


def test_pictures_over_a_slow_uplink_are_still_pictures():
    net = Net()
    sim = Sim(net, HIK, OSS, 443, seed=9, uplink_bps=4_000_000)
    for k in range(6):
        sim.walkby(T0 + 30 * k)
    verdict = verdict_of(net, HIK, OSS, 443)
    assert verdict.behaviour == "snapshot-upload"
    assert verdict.uploads == sim.pictures


def test_idle_eviction_between_visitors_keeps_the_total():
    """A quiet store: visitors 15 min apart, flows archived in between; the merged record counts all."""
    net = Net(FlowTable(idle_timeout=300))
    sim = Sim(net, HIK, OSS, 443, seed=5)
    other = Sim(net, ULUCU, ENTRY, 29023, seed=5)
    other.json_heartbeats(T0, 3 * 900 + 60)  # keeps capture time moving
    for k in range(3):
        sim.walkby(T0 + 900 * k + 10)
    verdict = verdict_of(net, HIK, OSS, 443)
    assert net.table.stats.archived >= 2
    assert (verdict.behaviour, verdict.uploads) == ("snapshot-upload", sim.pictures)


# ---- what must NOT be a snapshot upload -------------------------------------------------------------------
def test_staff_pc_browsing_and_document_uploads_are_not_snapshots():
    """office.py: a 30-300 kB page every ~8 s from Baidu/Taobao/QQ Mail, a 1.4-1.6 MB .docx POST to
    QQ Mail every ~90 s (one request), 10 minutes."""
    net = Net()
    rng = random.Random(11)
    sites = {"baidu": Sim(net, PC, "203.0.113.114", 443, seed=1),
             "qqmail": Sim(net, PC, "203.0.113.115", 443, seed=2),
             "taobao": Sim(net, PC, "203.0.113.116", 443, seed=3)}
    t = T0
    while t < T0 + 600:
        sites[rng.choice(list(sites))].browse(t, rng.randint(30_000, 300_000))
        t += 8 * rng.uniform(0.7, 1.3)
    mail = sites["qqmail"]
    t = T0 + rng.uniform(20, 90)
    while t < T0 + 600:
        start = mail.connect(t, tls=True)
        mail.close(mail.request(start, rng.randint(1_400_000, 1_600_000),
                                head=None))
        t += 90 * rng.uniform(0.8, 1.2)
    verdicts = {name: verdict_of(net, PC, sim.cloud, 443) for name, sim in sites.items()}
    for name, verdict in verdicts.items():
        assert verdict.behaviour != "snapshot-upload", (name, verdict)
        assert verdict.uploads == 0
    assert "downstream-dominant" in verdicts["baidu"].explanation
    assert verdicts["qqmail"].behaviour == "other"


def test_a_single_large_upload_is_not_a_snapshot_upload():
    net = Net()
    sim = Sim(net, PC, "203.0.113.115", 443)
    start = sim.connect(T0, tls=True)
    sim.close(sim.request(start, 1_500_000))
    verdict = verdict_of(net, PC, "203.0.113.115", 443)
    assert verdict.behaviour == "other"
    assert "over 1 MB" in verdict.explanation


def test_a_stalling_document_upload_does_not_split_into_pictures():
    """A 1.5 MB upload that pauses twice (flow control, no server answer) stays one object."""
    net = Net()
    sim = Sim(net, PC, "203.0.113.115", 443)
    t = sim.connect(T0, tls=True)
    for _part in range(3):
        t = sim.request(t, 500_000, reply=0) + 0.4  # no payload from the server between the parts
    sim.down(t, 200)
    verdict = verdict_of(net, PC, "203.0.113.115", 443)
    assert verdict.behaviour != "snapshot-upload", verdict


def test_repeated_isolated_jpeg_sized_uploads_are_file_uploads():
    """600 kB documents every 90 s, upstream-dominant: JPEG-sized but never in a burst."""
    net = Net()
    sim = Sim(net, PC, "203.0.113.120", 443)
    for k in range(6):
        start = sim.connect(T0 + 90 * k, tls=True)
        sim.close(sim.request(start, 600_000))
    verdict = verdict_of(net, PC, "203.0.113.120", 443)
    assert verdict.behaviour == "other"
    assert "each on its own" in verdict.explanation


def test_a_few_jpeg_sized_objects_beside_big_uploads_are_file_transfers():
    """A sync client: two small files close together, then several 4 MB files on the same flow."""
    net = Net()
    sim = Sim(net, PC, "203.0.113.121", 443, gro=True)
    t = sim.connect(T0, tls=True)
    t = sim.request(t, 40_000) + 0.3
    t = sim.request(t, 60_000) + 0.3
    for _ in range(3):
        t = sim.request(t, 4_000_000) + 0.5
    verdict = verdict_of(net, PC, "203.0.113.121", 443)
    assert verdict.behaviour == "other" and "over 1 MB carry more" in verdict.explanation, verdict


def test_one_picture_alone_is_not_enough_over_tls():
    net = Net()
    sim = Sim(net, HIK, OSS, 443)
    sim.walkby(T0, faces=(1, 1), scene=False)
    verdict = verdict_of(net, HIK, OSS, 443)
    assert verdict.behaviour == "other"
    assert "one JPEG-sized" in verdict.explanation


def test_two_pictures_in_one_burst_are_enough():
    net = Net()
    sim = Sim(net, HIK, OSS, 443)
    sim.walkby(T0, faces=(1, 1), scene=True)
    verdict = verdict_of(net, HIK, OSS, 443)
    assert (verdict.behaviour, verdict.uploads) == ("snapshot-upload", 2)


@pytest.mark.parametrize(("size", "expected"), [
    (JPEG_MIN_BYTES - 1, "other"),
    (JPEG_MIN_BYTES, "snapshot-upload"),
    (JPEG_MAX_BYTES - 1, "snapshot-upload"),
    (JPEG_MAX_BYTES, "other"),
])
def test_jpeg_size_bounds_at_ip_level(size, expected):
    """Four objects of exactly ``size`` IP bytes (one GRO-merged segment each), answered, 0.5 s apart."""
    net = Net()
    sim = Sim(net, HIK, OSS, 443)
    t = sim.connect(T0, tls=False)
    for _ in range(4):
        sim.up(t, size - HDR)
        sim.down(t + 0.002, 180)
        t += 0.5
    assert verdict_of(net, HIK, OSS, 443).behaviour == expected


def test_downloads_of_picture_sized_objects_are_not_uploads():
    net = Net()
    sim = Sim(net, PC, "203.0.113.114", 443)
    for k in range(10):
        sim.browse(T0 + k * 0.5, 120_000)
    verdict = verdict_of(net, PC, "203.0.113.114", 443)
    assert verdict.behaviour == "other" and "downstream-dominant" in verdict.explanation


def test_jpeg_bursts_with_heavy_downloads_on_the_same_flow_are_rejected():
    net = Net()
    sim = Sim(net, PC, "203.0.113.115", 443)
    sim.walkby(T0)
    for k in range(10):
        sim.browse(T0 + 10 + k, 300_000)
    verdict = verdict_of(net, PC, "203.0.113.115", 443)
    assert verdict.behaviour == "other" and "not upstream-dominant" in verdict.explanation


def test_http_document_heads_veto_jpeg_sized_objects():
    net = Net()
    sim = Sim(net, PC, "203.0.113.115", 80)
    t = sim.connect(T0, tls=False)
    for _ in range(3):
        t = sim.request(t, 200_000, head=Head("POST", "/upload", "", "application/pdf", 200_000)) + 0.3
    verdict = verdict_of(net, PC, "203.0.113.115", 80)
    assert verdict.behaviour == "other" and "document" in verdict.explanation


# ---- video relay ---------------------------------------------------------------------------------------------
def test_dahua_udp_p2p_video_while_watched():
    net = Net()
    sim = Sim(net, DCAM, EASY4IP, 8800, proto=17)
    sim.udp_registrations(T0, 300)
    sim.udp_video(T0 + 100, 15, kbps=1200)
    verdict = verdict_of(net, DCAM, EASY4IP, 8800, proto=17)
    assert verdict.behaviour == "video-relay" and verdict.rule == "stream"
    assert "1.2 Mbit/s" in verdict.explanation


def test_dahua_udp_p2p_without_a_viewer_is_a_heartbeat():
    net = Net()
    sim = Sim(net, DCAM, EASY4IP, 8800, proto=17)
    sim.udp_registrations(T0, 300)
    verdict = verdict_of(net, DCAM, EASY4IP, 8800, proto=17)
    assert verdict.behaviour == "heartbeat"


def test_hik_connect_tcp_relay():
    net = Net()
    sim = Sim(net, NVR, RELAY, 7760, gro=True)
    sim.tcp_video(T0, 15, kbps=2000)
    verdict = verdict_of(net, NVR, RELAY, 7760)
    assert verdict.behaviour == "video-relay"
    assert "2.0 Mbit/s" in verdict.explanation


def test_frame_by_frame_acknowledged_stream_is_video_not_pictures():
    """5 fps with an application-level answer after every frame: each frame is a JPEG-sized object
    (1.2 Mbit/s / 5 = 30 kB), but the steady run says stream."""
    net = Net()
    sim = Sim(net, NVR, RELAY, 7760)
    sim.tcp_video(T0, 30, kbps=1200, tick=0.2, ack_every_tick=True)
    verdict = verdict_of(net, NVR, RELAY, 7760)
    assert verdict.behaviour == "video-relay" and verdict.rule == "steady-run", verdict


@pytest.mark.parametrize(("seconds", "kbps", "expected"), [
    (4, 2000, "other"),  # shorter than 5 s: not recognised (documented limit)
    (6, 2000, "video-relay"),
    (30, VIDEO_MIN_BPS // 1000 - 60, "other"),  # below 200 kbit/s
    (30, VIDEO_MIN_BPS // 1000 + 60, "video-relay"),
])
def test_video_boundaries(seconds, kbps, expected):
    net = Net()
    sim = Sim(net, NVR, RELAY, 7760)
    sim.tcp_video(T0, seconds, kbps=kbps)
    assert verdict_of(net, NVR, RELAY, 7760).behaviour == expected


# ---- heartbeats ---------------------------------------------------------------------------------------------
def test_ulucu_heartbeat_every_20_s():
    net = Net()
    Sim(net, ULUCU, ENTRY, 29023).json_heartbeats(T0, 300)
    verdict = verdict_of(net, ULUCU, ENTRY, 29023)
    assert verdict.behaviour == "heartbeat" and verdict.uploads == 0
    assert "every 20.0 s" in verdict.explanation


def test_mqtt_pings_every_30_s():
    net = Net()
    Sim(net, HIK, "203.0.113.101", 31006).mqtt_pings(T0, 300)
    assert verdict_of(net, HIK, "203.0.113.101", 31006).behaviour == "heartbeat"


@pytest.mark.parametrize(("interval", "body"), [(30.0, 300), (60.0, 300), (15.0, 440)])
def test_https_polls_with_a_handshake_each_are_heartbeats(interval, body):
    """Uniview 30 s, Tuya a2 60 s, POS payment POST (~500 B JSON) every 15 s."""
    net = Net()
    Sim(net, POS, "203.0.113.117", 443).https_polls(T0, 300, interval, body)
    verdict = verdict_of(net, POS, "203.0.113.117", 443)
    assert verdict.behaviour == "heartbeat", verdict


def test_irregular_small_exchanges_are_not_heartbeats():
    net = Net()
    sim = Sim(net, HIK, "203.0.113.30", 443)
    rng = random.Random(2)
    t = T0
    for _ in range(12):
        sim.up(t, 200)
        sim.down(t + 0.01, 100)
        t += rng.choice([6, 90, 12, 200, 30])
    verdict = verdict_of(net, HIK, "203.0.113.30", 443)
    assert verdict.behaviour == "other" and "irregular" in verdict.explanation


def test_periodic_but_large_exchanges_are_not_heartbeats():
    net = Net()
    sim = Sim(net, HIK, "203.0.113.31", 443)
    for k in range(10):
        sim.up(T0 + 20 * k, HEARTBEAT_MAX_EXCHANGE + 2_000)
        sim.down(T0 + 20 * k + 0.01, 100)
    assert verdict_of(net, HIK, "203.0.113.31", 443).behaviour == "other"


def test_two_small_exchanges_are_an_unconfirmed_heartbeat_and_one_is_other():
    net = Net()
    sim = Sim(net, HIK, "203.0.113.100", 8666)
    sim.up(T0, 135)
    sim.down(T0 + 0.01, 200)
    one = verdict_of(net, HIK, "203.0.113.100", 8666)
    assert one.behaviour == "other" and "too few" in one.explanation
    sim.up(T0 + 120, 135)
    sim.down(T0 + 120.01, 200)
    two = verdict_of(net, HIK, "203.0.113.100", 8666)
    assert two.behaviour == "heartbeat" and "not confirmed" in two.explanation and two.certainty < 0.7


def test_every_verdict_is_one_of_the_four_behaviours():
    empty = Flow(FlowKey(HIK, OSS, 443, 6), T0)
    verdict = classify(empty)
    assert verdict.behaviour == "other" and verdict.uploads == 0
    assert "no upstream" in verdict.explanation


# ---- destinations for the result document --------------------------------------------------------------
def test_cloud_links_name_the_operator_or_mark_unknown():
    net = Net()
    Sim(net, BOX, ANCHANG, 443, seed=2).visitors(T0, 300, mean_gap=20)
    Sim(net, ULUCU, ENTRY, 29023).json_heartbeats(T0, 300)
    table = net.run()
    table.add_dns("snap.anchang-cloud.example", [ANCHANG])
    table.add_dns("entry.device.serv.ulucu.com", [ENTRY])
    table.add_name(BOX, ANCHANG, 6, 40001, 443, "snap.anchang-cloud.example", "sni")
    links = cloud_links(table, load_cloud_signatures())
    box = links[BOX][0]
    assert (box.host, box.ip, box.port, box.category, box.operator) == (
        "snap.anchang-cloud.example", ANCHANG, 443, "unknown", None)
    assert (box.source, box.behaviour, box.protocol) == ("observed", "snapshot-upload", "tcp")
    assert box.uploads > 0 and box.bytes_up > box.bytes_down > 0 and box.packets_up > 0
    assert box.first_seen is not None and box.last_seen is not None and box.first_seen < box.last_seen
    assert 0 < box.confidence < 0.6  # behaviour alone, no signature
    assert any(e.field == "cloud_behaviour" and "JPEG-sized" in e.detail for e in box.evidence)
    ulucu = links[ULUCU][0]
    assert (ulucu.operator, ulucu.category, ulucu.behaviour, ulucu.uploads) == (
        "ULUCU", "passenger-flow", "heartbeat", 0)
    assert ulucu.confidence == 0.9
    assert any(e.source == "cloud-signature:ulucu-device" for e in ulucu.evidence)


def test_a_device_channel_opened_before_the_capture_is_named_by_its_port():
    """No DNS answer and no SNI for the ULUCU entry server (looked up at boot): its distinctive port
    29023 still names the operator, at low confidence, and the host stays unknown."""
    net = Net()
    Sim(net, ULUCU, ENTRY, 29023).json_heartbeats(T0, 300)
    Sim(net, BOX, ANCHANG, 443, seed=2).visitors(T0, 300, mean_gap=20)
    links = cloud_links(net.run(), load_cloud_signatures())
    ulucu = links[ULUCU][0]
    assert (ulucu.host, ulucu.operator, ulucu.category, ulucu.behaviour) == (
        None, "ULUCU", "passenger-flow", "heartbeat")
    assert ulucu.confidence == 0.4
    assert any(e.source == "cloud-signature:ulucu-device" and "port-only match" in e.detail for e in ulucu.evidence)
    box = links[BOX][0]  # 443 names nobody: behaviour alone
    assert (box.operator, box.category) == (None, "unknown")


def test_observe_leaves_out_dns_flows_and_uses_address_signatures():
    net = Net()
    sim = Sim(net, "198.51.100.204", "203.0.113.53", 53, proto=17)
    sim.up(T0, 40)
    Sim(net, HIK, "50.19.254.134", 32100, proto=17).udp_registrations(T0, 100)
    found = observe(net.run(), load_cloud_signatures())
    assert [d.flow.key.remote_ip for d in found] == ["50.19.254.134"]
    assert found[0].match is not None and found[0].match.signature_id == "tutk-kalay-device"
    assert found[0].host is None  # known by address only


# ---- the lab's own captures -------------------------------------------------------------------------------
def pcap_packets(path: Path) -> Iterator[tuple[float, str, str, str, int, int, int, int, int, int]]:
    """Header-only pcap (snaplen 64, nanosecond timestamps) -> flow-table input (test-local reader)."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    div = 1e9 if magic == 0xA1B23C4D else 1e6
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, _orig = struct.unpack_from("<IIII", data, pos)
        frame = data[pos + 16: pos + 16 + caplen]
        pos += 16 + caplen
        if frame[12:14] != b"\x08\x00":
            continue
        ihl = (frame[14] & 15) * 4
        ip_len = struct.unpack_from("!H", frame, 16)[0]
        proto = frame[23]
        src, dst = ".".join(map(str, frame[26:30])), ".".join(map(str, frame[30:34]))
        mac = ":".join(f"{b:02x}" for b in frame[6:12])
        l4 = 14 + ihl
        sport, dport = struct.unpack_from("!HH", frame, l4)
        if proto == 6:
            payload, flags = ip_len - ihl - (frame[l4 + 12] >> 4) * 4, frame[l4 + 13]
        elif proto == 17:
            payload, flags = ip_len - ihl - 8, 0
        else:
            continue
        yield sec + frac / div, mac, src, dst, proto, sport, dport, ip_len, payload, flags


# Lab 72, seed 1 (from its manifest): device ip -> (cloud ip, port, proto) -> expected behaviour.
LAB_EXPECTED = {
    ("198.51.100.44", "203.0.113.103", 443, 6): "snapshot-upload",  # hik-face -> OSS bucket
    ("198.51.100.205", "203.0.113.105", 443, 6): "snapshot-upload",  # dahua-face -> Tencent IAI
    ("198.51.100.75", "203.0.113.107", 80, 6): "snapshot-upload",  # ulucu-flow -> UpYun
    ("198.51.100.40", "203.0.113.108", 443, 6): "snapshot-upload",  # salesbox -> private cloud
    ("198.51.100.75", "203.0.113.106", 29023, 6): "heartbeat",  # ULUCU entry, 20 s
    ("198.51.100.44", "203.0.113.101", 31006, 6): "heartbeat",  # Hik-Connect MQTT
    ("198.51.100.63", "203.0.113.117", 443, 6): "heartbeat",  # POS payment posts
    ("198.51.100.211", "203.0.113.114", 443, 6): "other",  # staff PC browsing Baidu
    ("198.51.100.211", "203.0.113.115", 443, 6): "other",  # staff PC: QQ Mail + 1.5 MB document
    ("198.51.100.211", "203.0.113.116", 443, 6): "other",  # staff PC browsing Taobao
}
LAB_WATCHED = {  # only in the 120 s capture: live views of 15 s (hik-nvr) and 10 s (dahua-cam)
    ("198.51.100.215", "203.0.113.102", 7760, 6): "video-relay",
    ("198.51.100.26", "203.0.113.104", 8800, 17): "video-relay",
    ("198.51.100.136", "203.0.113.109", 443, 6): "heartbeat",  # Uniview EZCloud polls
}
# Pictures the lab's clouds counted during the 60 s capture (lab status before/after).
LAB_PICTURES_60S = {"198.51.100.44": 31, "198.51.100.205": 17, "198.51.100.75": 10, "198.51.100.40": 20}


def lab_table(name: str) -> dict[FlowKey, Verdict]:
    table = FlowTable()
    for packet in pcap_packets(FIXTURES / name):
        table.add(*packet)
    return {flow.key: classify(flow) for flow in table.flows()}


def test_lab_capture_with_walkbys_and_live_views():
    verdicts = lab_table("lab72-walkby-watch-120s.pcap")
    for key, expected in {**LAB_EXPECTED, **LAB_WATCHED}.items():
        assert verdicts[FlowKey(*key)].behaviour == expected, (key, verdicts[FlowKey(*key)])
    assert "over 1 MB" in verdicts[FlowKey("198.51.100.211", "203.0.113.115", 443, 6)].explanation
    flagged = {key for key, v in verdicts.items() if v.behaviour == "snapshot-upload"}
    assert flagged == {FlowKey(*k) for k, v in LAB_EXPECTED.items() if v == "snapshot-upload"}


def test_lab_capture_upload_counts_match_the_lab_counters():
    verdicts = lab_table("lab72-visitors-60s.pcap")
    for key, expected in LAB_EXPECTED.items():
        if key[0] == "198.51.100.63":
            continue  # 4 POS posts in 60 s: heartbeat too, checked in the 120 s capture
        assert verdicts[FlowKey(*key)].behaviour == expected, (key, verdicts[FlowKey(*key)])
    for key, verdict in verdicts.items():
        if key.local_ip in LAB_PICTURES_60S and verdict.behaviour == "snapshot-upload":
            truth = LAB_PICTURES_60S[key.local_ip]
            assert abs(verdict.uploads - truth) <= max(2, truth // 8), (key, verdict.uploads, truth)
