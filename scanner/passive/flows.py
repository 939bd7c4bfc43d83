"""The flow table: per (local device, remote address, remote port, transport) counters and a compact
record of *how* the device talks to that destination, for ``classify``.

Input is one call per decoded IP packet, either ``FlowTable.add_packet(pkt)`` with any object that
has the fields of ``scanner.passive.decode.Packet`` (``ts, src_mac, src_ip, dst_ip, proto, sport,
dport, ip_len, payload_len, tcp_flags``), or ``FlowTable.add(...)`` with the same values. HTTP
request heads, TLS SNI / HTTP Host names and DNS answers are attached with ``add_http_head``,
``add_name`` and ``add_dns``. Nothing here keeps payload bytes.

**Orientation.** The *local* side is the address inside ``local_networks`` (the scan's subnet;
default RFC 1918, the lab's 198.51.100.0/24 and 127.77.0.0/16, and IPv6 ULA fc00::/7). Packets
from local to remote are *upstream*. Packets between two local addresses (LAN), between two
remote ones (transit), or to multicast / broadcast / link-local / unspecified addresses are
counted in ``TableStats`` and otherwise ignored. The key is ``FlowKey(local_ip, remote_ip,
remote_port, proto)``: every connection a device opens to the same server port is one flow (the
local port is not part of the key), so a camera that opens a new TLS connection per walk-by still
builds one history.

**What a flow keeps** (all bounded per flow):

* totals: IP bytes and packets up and down, first/last seen, TCP connections opened (SYNs), the
  device MAC, up to ``MAX_NAMES`` names for the remote address (TLS SNI, HTTP Host; DNS answers
  live in a table-wide map, see ``names_for``);
* *upstream objects* ("bursts"): consecutive upstream packets that carry payload on one
  connection (the device's local port; at most ``MAX_OPEN_OBJECTS`` open at once, so two
  overlapping walk-by uploads on two connections stay two sets of objects), measured in IP
  bytes. A new object starts when the connection has been silent upstream for ``BURST_GAP_S``
  (0.15 s) *and* the server answered with payload in between (an HTTP response, a TLS record),
  or after ``BURST_STALL_S`` (1 s) of upstream silence even without an answer. The answer rule
  keeps one large upload that stalls for a moment (TCP flow control, a retransmission timeout)
  one object, while back-to-back picture uploads (each answered by the server, then 0.2-1 s idle
  in the lab model) stay separate. An object that lasts ``STREAM_OBJECT_S`` (5 s) or more is a
  *stream* (live video, a bulk transfer): counted with its duration and bytes, not sized. Other
  objects go into a fixed size histogram (``OBJECT_EDGES``: counts and bytes per bin,
  mergeable), and JPEG-sized ones (``JPEG_MIN_BYTES``-``JPEG_MAX_BYTES``) that follow another
  within ``CLUSTER_GAP_S`` are counted as *pairs* (a burst of pictures gives k-1 pairs for k
  pictures; isolated file uploads give none). The last ``BURST_KEEP`` objects are kept for
  evidence;
* *exchanges*: activity in either direction separated by ``EXCHANGE_GAP_S`` (2 s) of silence
  (a heartbeat and its reply, one HTTPS poll with its handshake). Sizes go into a histogram
  (``EXCHANGE_EDGES``); the spacing of exchange starts into running mean/variance (Welford), so
  periodicity costs O(1) memory; the last ``EXCHANGE_KEEP`` exchanges are kept for evidence;
* *upstream activity runs*: upstream payload bytes are binned per whole second; consecutive
  active seconds with at most ``RUN_MAX_IDLE_S`` idle seconds between them form a run (span,
  active seconds, bytes, sum of squared per-second bytes for the steadiness of the rate). The
  ``RUN_KEEP`` longest runs are kept; all runs are counted;
* HTTP request heads: the last ``HEADS_KEEP`` (method, path, content type and length, Host) and
  uncapped counters of image requests, JPEG-sized uploads and document uploads.

**Bounded memory for long captures.** At most ``max_flows`` flows are live. A flow idle for
``idle_timeout`` seconds of capture time (checked every ``idle_timeout / 4``), or the least
recently seen eighth of the table when it is full, is *archived*: its open burst/exchange/run is
closed, its evidence lists are trimmed to ``ARCHIVE_KEEP`` entries, and it is merged into the
archived record of the same key (counters and histograms add up, runs keep the longest, interval
statistics combine and gain the interval across the gap). When the archive holds
``max_archived`` keys, the eighth with the fewest upstream bytes is folded into one *overflow*
record per device (key ``(local_ip, "*", 0, 0)``), and when there are ``max_archived`` of those,
into one global overflow record (``("*", "*", 0, 0)``). The DNS map is an LRU of ``max_dns``
addresses. So memory is O(max_flows + max_archived + max_dns) whatever the capture length.
Measured with tracemalloc: at most ~10 kB per live flow with full evidence lists and ~4 kB per
archived record, so the defaults (4096 live, 8192 archived) stay under ~80 MB in the worst case
and at a few MB for a store network (tens of devices, hundreds of destinations).
"""

from __future__ import annotations

import ipaddress
import math
from bisect import bisect_right
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

# ---- tunables (calibration notes in classify.py) --------------------------------------------------------
BURST_GAP_S = 0.15  # upstream silence that ends an object when the server answered meanwhile
BURST_STALL_S = 1.0  # upstream silence that ends an object even without an answer
EXCHANGE_GAP_S = 2.0  # silence (both directions) that ends an exchange
RUN_MAX_IDLE_S = 1  # idle whole seconds allowed inside an upstream activity run
STREAM_OBJECT_S = 5.0  # an upstream object lasting this long is a stream, not a file or picture
CLUSTER_GAP_S = 5.0  # JPEG-sized objects this close (end to start) belong to one burst of pictures
#: Upstream object size histogram bin edges (IP bytes); 15 kB and 1 MB bound "JPEG-sized".
OBJECT_EDGES: tuple[int, ...] = (1_000, 4_000, 15_000, 32_000, 64_000, 128_000, 256_000, 512_000,
                                 1_000_000, 2_000_000, 8_000_000)
#: Exchange size histogram bin edges (IP bytes, both directions).
EXCHANGE_EDGES: tuple[int, ...] = (256, 512, 1_000, 2_000, 4_000, 8_000, 16_000, 64_000, 256_000, 1_000_000)
#: JPEG-sized objects at IP level, [min, max): a face crop or a scene picture in one request (classify.py).
JPEG_MIN_BYTES = 15_000
JPEG_MAX_BYTES = 1_000_000
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".heic")
DOCUMENT_TYPES = ("application/pdf", "application/msword", "application/vnd.", "application/zip",
                  "application/x-zip", "application/x-rar", "application/x-7z", "text/")
UPLOAD_METHODS = ("POST", "PUT", "PATCH")

BURST_KEEP = 16
TIMELINE_MAX = 240  # timeline entries per flow (the report's upload plot)
MAX_OPEN_OBJECTS = 8  # concurrent connections with an open object, per flow
EXCHANGE_KEEP = 12
RUN_KEEP = 8
RUN_RECORD_MIN_SPAN = 2  # runs shorter than this are only counted
HEADS_KEEP = 8
ARCHIVE_KEEP = 4
MAX_NAMES = 8
PATH_MAX = 120

DEFAULT_LOCAL_NETWORKS: tuple[str, ...] = (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918
    "198.51.100.0/24",  # the lab's store subnet (netns mode)
    "127.77.0.0/16",  # the lab's devices (loopback mode)
    "fc00::/7",  # IPv6 unique local
)
PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp"}
_PROTO_NUMBERS = {name: number for number, name in PROTO_NAMES.items()}
TCP_SYN = 0x02
TCP_ACK = 0x10

# Address kinds (``FlowTable.address_kind``).
ADDRESS_REMOTE, ADDRESS_LOCAL, ADDRESS_IGNORED = 0, 1, 2
_REMOTE, _LOCAL, _IGNORE = ADDRESS_REMOTE, ADDRESS_LOCAL, ADDRESS_IGNORED
_ADDR_CACHE_MAX = 65_536


class PacketLike(Protocol):
    """The fields of ``scanner.passive.decode.Packet`` the flow table reads."""

    @property
    def ts(self) -> float: ...
    @property
    def src_mac(self) -> str: ...
    @property
    def src_ip(self) -> str: ...
    @property
    def dst_ip(self) -> str: ...
    @property
    def proto(self) -> int: ...
    @property
    def sport(self) -> int: ...
    @property
    def dport(self) -> int: ...
    @property
    def ip_len(self) -> int: ...
    @property
    def payload_len(self) -> int: ...
    @property
    def tcp_flags(self) -> int: ...


class HttpHeadLike(Protocol):
    """The fields of ``scanner.passive.httphead.HttpHead`` the flow table reads."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def content_length(self) -> int | None: ...


class FlowKey(NamedTuple):
    local_ip: str
    remote_ip: str
    remote_port: int
    proto: int

    @property
    def transport(self) -> str:
        return PROTO_NAMES.get(self.proto, str(self.proto))


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request head seen upstream (no body, no credentials: method, path, type, length, Host)."""

    ts: float
    method: str
    path: str
    content_type: str
    content_length: int | None
    host: str

    @property
    def is_image(self) -> bool:
        ctype = self.content_type.lower()
        if ctype.startswith("image/"):
            return True
        bare = self.path.split("?", 1)[0].lower()
        return self.method in UPLOAD_METHODS and bare.endswith(IMAGE_EXTENSIONS)

    @property
    def is_document(self) -> bool:
        ctype = self.content_type.lower()
        return any(ctype.startswith(prefix) for prefix in DOCUMENT_TYPES)

    @property
    def is_upload(self) -> bool:
        return self.method in UPLOAD_METHODS and (self.content_length or 0) > 0


class Burst:
    """One upstream object: consecutive upstream payload packets (IP bytes)."""

    __slots__ = ("start", "end", "bytes", "packets", "replied")

    def __init__(self, start: float, end: float, nbytes: int, packets: int, replied: bool = False) -> None:
        self.start = start
        self.end = end
        self.bytes = nbytes
        self.packets = packets
        self.replied = replied  # the server sent payload after this object's last packet

    def __repr__(self) -> str:
        return f"Burst({self.start:.3f}-{self.end:.3f}, {self.bytes} B, {self.packets} pkts)"


class Exchange(NamedTuple):
    start: float
    end: float
    bytes_up: int
    bytes_down: int

    @property
    def size(self) -> int:
        return self.bytes_up + self.bytes_down


class Run(NamedTuple):
    """Upstream activity run over whole seconds [start, end]."""

    start: int
    end: int  # last active second
    active: int  # seconds with upstream payload
    bytes: int
    sum_sq: float  # sum of squared per-second byte counts (steadiness)

    @property
    def span(self) -> int:
        return self.end - self.start + 1

    @property
    def duty(self) -> float:
        return self.active / self.span

    @property
    def bits_per_second(self) -> float:
        return self.bytes * 8 / self.span

    @property
    def cv(self) -> float:
        """Coefficient of variation of the per-second byte counts over the span (idle seconds as 0)."""
        mean = self.bytes / self.span
        if mean <= 0:
            return 0.0
        var = max(0.0, self.sum_sq / self.span - mean * mean)
        return math.sqrt(var) / mean


def _bin(edges: Sequence[int], value: int) -> int:
    return bisect_right(edges, value)


def _add_into(target: list[int], other: list[int]) -> None:
    for index, value in enumerate(other):
        if value:
            target[index] += value


class Flow:
    """Everything the table knows about one (local device, remote ip, remote port, proto)."""

    __slots__ = (
        "key", "local_mac", "first_seen", "last_seen", "bytes_up", "bytes_down", "packets_up", "packets_down",
        "connections", "names",
        "_open", "bursts", "object_counts", "object_bytes", "stream_objects", "stream_seconds", "stream_bytes",
        "jpeg_pairs", "last_jpeg_end",
        "_ex_start", "_ex_end", "_ex_up", "_ex_down", "exchanges", "exchange_counts", "exchange_total",
        "first_exchange", "last_exchange", "iv_n", "iv_mean", "iv_m2",
        "_sec", "_sec_bytes", "_run", "runs", "run_count",
        "heads", "http_requests", "http_images", "http_image_bytes", "http_jpeg_uploads", "http_documents",
        "instances", "timeline", "timeline_width",
    )

    def __init__(self, key: FlowKey, ts: float, mac: str = "") -> None:
        self.key = key
        self.local_mac = mac
        self.first_seen = ts
        self.last_seen = ts
        self.bytes_up = 0
        self.bytes_down = 0
        self.packets_up = 0
        self.packets_down = 0
        self.connections = 0
        self.names: dict[str, str] = {}
        self._open: dict[int, Burst] = {}  # the open object of each connection (local port)
        self.bursts: deque[Burst] = deque(maxlen=BURST_KEEP)
        self.object_counts = [0] * (len(OBJECT_EDGES) + 1)
        self.object_bytes = [0] * (len(OBJECT_EDGES) + 1)
        self.stream_objects = 0  # objects lasting >= STREAM_OBJECT_S (not in the size histogram)
        self.stream_seconds = 0.0
        self.stream_bytes = 0
        self.jpeg_pairs = 0  # JPEG-sized objects that started <= CLUSTER_GAP_S after the previous one ended
        self.last_jpeg_end = -1.0
        self._ex_start = -1.0
        self._ex_end = -1.0
        self._ex_up = 0
        self._ex_down = 0
        self.exchanges: deque[Exchange] = deque(maxlen=EXCHANGE_KEEP)
        self.exchange_counts = [0] * (len(EXCHANGE_EDGES) + 1)
        self.exchange_total = 0  # exchanges started (the open one included)
        self.first_exchange = -1.0
        self.last_exchange = -1.0
        self.iv_n = 0  # intervals between exchange starts: count, mean, sum of squared deviations
        self.iv_mean = 0.0
        self.iv_m2 = 0.0
        self._sec = -1
        self._sec_bytes = 0
        self._run: list[float] | None = None  # [start, end, active, bytes, sum_sq]
        self.runs: list[Run] = []
        self.run_count = 0
        self.heads: deque[HttpRequest] = deque(maxlen=HEADS_KEEP)
        self.http_requests = 0
        self.http_images = 0
        self.http_image_bytes = 0
        self.http_jpeg_uploads = 0  # non-document uploads whose Content-Length is JPEG-sized
        self.http_documents = 0
        self.instances = 1  # live periods merged into this record
        # Upstream objects over time for the report's plot: (start, bytes), exact until TIMELINE_MAX
        # entries, then binned (timeline_width seconds, doubling as needed) so memory stays bounded.
        self.timeline: list[tuple[float, int]] = []
        self.timeline_width = 0.0

    # ---- packets ------------------------------------------------------------------------------
    def up(self, ts: float, ip_len: int, payload_len: int, flags: int, port: int = 0) -> None:
        """One packet from the device; ``port`` is its local port (objects are tracked per connection)."""
        if ts < self.last_seen:
            ts = self.last_seen  # mirror ports reorder a little; never let time run backwards
        else:
            self.last_seen = ts
        self.packets_up += 1
        self.bytes_up += ip_len
        if flags & TCP_SYN and not flags & TCP_ACK:
            self.connections += 1
        self._exchange(ts, ip_len, 0)
        if payload_len <= 0:
            return
        burst = self._open.get(port)
        if burst is None:
            if self._open:
                self._close_stale(ts)
            self._open[port] = Burst(ts, ts, ip_len, 1)
        else:
            gap = ts - burst.end
            if gap >= BURST_STALL_S or (gap >= BURST_GAP_S and burst.replied):
                self._close_burst(port)
                self._open[port] = Burst(ts, ts, ip_len, 1)
            else:
                burst.end = ts
                burst.bytes += ip_len
                burst.packets += 1
                burst.replied = False
        self._count_second(int(ts), ip_len)

    def down(self, ts: float, ip_len: int, payload_len: int, port: int = 0) -> None:
        """One packet to the device; ``port`` is the device's local port."""
        if ts < self.last_seen:
            ts = self.last_seen
        else:
            self.last_seen = ts
        self.packets_down += 1
        self.bytes_down += ip_len
        self._exchange(ts, 0, ip_len)
        if payload_len > 0:
            burst = self._open.get(port)
            if burst is not None:
                burst.replied = True

    def add_run(self, port: int, ts0: float, ts1: float, packets_up: int, bytes_up: int, packets_down: int,
                bytes_down: int, objects: tuple[int, int, float, int, float] | None, replied_before: bool,
                replied_after: bool, syns: int = 0) -> None:
        """A *run* of packets of one connection (``port``: the device's local port) in one call, exactly as
        ``up``/``down`` one by one would leave this flow, under the conditions ``FlowTable.add_run`` states.

        ``objects`` sums the upstream packets with payload: (count, IP bytes, first timestamp, first IP
        length, last timestamp), or None when there are none. ``replied_before``: a downstream packet
        with payload came before the first of them (or anywhere in the run, when there are none);
        ``replied_after``: one came after the last of them. ``syns``: upstream SYNs (without ACK) in the run.
        Times before ``last_seen`` are taken as ``last_seen``, as ``up``/``down`` do.
        """
        floor = self.last_seen
        if ts0 < floor:  # reordered: up()/down() would clamp every packet up to the newest seen
            ts0 = floor
            if ts1 < floor:
                ts1 = floor
            if objects is not None:
                count, nbytes, first_ts, first_len, last_ts = objects
                objects = (count, nbytes, max(first_ts, floor), first_len, max(last_ts, floor))
        self.last_seen = ts1
        self.connections += syns
        self.packets_up += packets_up
        self.bytes_up += bytes_up
        self.packets_down += packets_down
        self.bytes_down += bytes_down
        self._exchange(ts0, 0, 0)  # only the first packet can open an exchange; the rest extend it
        self._ex_end = ts1
        self._ex_up += bytes_up
        self._ex_down += bytes_down
        if replied_before:
            burst = self._open.get(port)
            if burst is not None:
                burst.replied = True
        if objects is None:
            return
        count, nbytes, first_ts, first_len, last_ts = objects
        # the first upstream payload packet, as in up() ...
        burst = self._open.get(port)
        if burst is None:
            if self._open:
                self._close_stale(first_ts)
            burst = self._open[port] = Burst(first_ts, first_ts, first_len, 1)
        else:
            gap = first_ts - burst.end
            if gap >= BURST_STALL_S or (gap >= BURST_GAP_S and burst.replied):
                self._close_burst(port)
                burst = self._open[port] = Burst(first_ts, first_ts, first_len, 1)
            else:
                burst.end = first_ts
                burst.bytes += first_len
                burst.packets += 1
                burst.replied = False
        # ... and the others, which extend the same object
        if count > 1:
            burst.end = last_ts
            burst.bytes += nbytes - first_len
            burst.packets += count - 1
        burst.replied = replied_after
        self._count_second(int(first_ts), nbytes)

    def _exchange(self, ts: float, up: int, down: int) -> None:
        if self._ex_start < 0 or ts - self._ex_end > EXCHANGE_GAP_S:
            if self._ex_start >= 0:
                self._close_exchange()
            self._start_exchange(ts)
        self._ex_end = ts
        self._ex_up += up
        self._ex_down += down

    def _start_exchange(self, ts: float) -> None:
        if self.last_exchange >= 0:
            self._add_interval(ts - self.last_exchange)
        if self.first_exchange < 0:
            self.first_exchange = ts
        self.last_exchange = ts
        self.exchange_total += 1
        self._ex_start = ts
        self._ex_end = ts
        self._ex_up = 0
        self._ex_down = 0

    def _add_interval(self, interval: float) -> None:
        self.iv_n += 1
        delta = interval - self.iv_mean
        self.iv_mean += delta / self.iv_n
        self.iv_m2 += delta * (interval - self.iv_mean)

    def _close_exchange(self) -> None:
        ex = Exchange(self._ex_start, self._ex_end, self._ex_up, self._ex_down)
        self.exchanges.append(ex)
        self.exchange_counts[_bin(EXCHANGE_EDGES, ex.size)] += 1
        self._ex_start = -1.0

    def _close_stale(self, now: float) -> None:
        """Close objects of connections silent for BURST_STALL_S; keep at most MAX_OPEN_OBJECTS open."""
        for port in [p for p, b in self._open.items() if now - b.end >= BURST_STALL_S]:
            self._close_burst(port)
        while len(self._open) >= MAX_OPEN_OBJECTS:
            self._close_burst(min(self._open, key=lambda p: self._open[p].end))

    def _close_burst(self, port: int) -> None:
        burst = self._open.pop(port, None)
        if burst is None:
            return
        duration = burst.end - burst.start
        if duration >= STREAM_OBJECT_S:
            self.stream_objects += 1
            self.stream_seconds += duration
            self.stream_bytes += burst.bytes
        else:
            index = _bin(OBJECT_EDGES, burst.bytes)
            self.object_counts[index] += 1
            self.object_bytes[index] += burst.bytes
            if JPEG_MIN_BYTES <= burst.bytes < JPEG_MAX_BYTES:
                if self.last_jpeg_end >= 0 and burst.start - self.last_jpeg_end <= CLUSTER_GAP_S:
                    self.jpeg_pairs += 1
                self.last_jpeg_end = burst.end
        self.bursts.append(burst)
        self._timeline_add(burst.start, burst.bytes)

    def _timeline_add(self, start: float, nbytes: int) -> None:
        width = self.timeline_width
        if width > 0:
            start = math.floor(start / width) * width
            if self.timeline and self.timeline[-1][0] == start:
                self.timeline[-1] = (start, self.timeline[-1][1] + nbytes)
                return
        self.timeline.append((start, nbytes))
        if len(self.timeline) > TIMELINE_MAX:
            self._timeline_rebin(max(1.0, width * 2))

    def _timeline_rebin(self, width: float) -> None:
        """Sum the timeline into bins of ``width`` seconds (doubling until it fits TIMELINE_MAX)."""
        entries = sorted(self.timeline)
        while True:
            bins: dict[float, int] = {}
            for start, nbytes in entries:
                key = math.floor(start / width) * width
                bins[key] = bins.get(key, 0) + nbytes
            if len(bins) <= TIMELINE_MAX:
                break
            width *= 2
        self.timeline = sorted(bins.items())
        self.timeline_width = width

    def _count_second(self, sec: int, nbytes: int) -> None:
        """Upstream bytes into the activity record of second ``sec`` (the last one is folded in when
        a new second begins)."""
        if sec != self._sec:
            if self._sec >= 0:
                self._fold_second(self._sec, self._sec_bytes)
            self._sec = sec
            self._sec_bytes = 0
        self._sec_bytes += nbytes

    def _fold_second(self, sec: int, nbytes: int) -> None:
        run = self._run
        if run is not None and sec - run[1] <= RUN_MAX_IDLE_S + 1:
            run[1] = sec
            run[2] += 1
            run[3] += nbytes
            run[4] += float(nbytes) * nbytes
            return
        if run is not None:
            self._record_run(Run(int(run[0]), int(run[1]), int(run[2]), int(run[3]), run[4]))
        self._run = [sec, sec, 1, nbytes, float(nbytes) * nbytes]

    def _record_run(self, run: Run) -> None:
        self.run_count += 1
        if run.span < RUN_RECORD_MIN_SPAN:
            return
        self.runs.append(run)
        if len(self.runs) > RUN_KEEP:
            self.runs.remove(min(self.runs, key=lambda r: (r.span, r.bytes)))

    def close_open(self) -> None:
        """Close the open objects, exchange and run (the flow went idle or is being archived)."""
        for port in sorted(self._open, key=lambda p: self._open[p].start):
            self._close_burst(port)
        if self._ex_start >= 0:
            self._close_exchange()
        if self._sec >= 0:
            self._fold_second(self._sec, self._sec_bytes)
            self._sec = -1
            self._sec_bytes = 0
        if self._run is not None:
            run = self._run
            self._record_run(Run(int(run[0]), int(run[1]), int(run[2]), int(run[3]), run[4]))
            self._run = None

    # ---- names and HTTP -----------------------------------------------------------------------
    def add_name(self, name: str, source: str) -> None:
        name = name.strip().lower().rstrip(".")
        if not name or name in self.names or len(self.names) >= MAX_NAMES:
            return
        self.names[name] = source

    def add_head(self, head: HttpRequest) -> None:
        self.heads.append(head)
        self.http_requests += 1
        if head.is_image:
            self.http_images += 1
            self.http_image_bytes += head.content_length or 0
        elif head.is_document:
            if head.is_upload:
                self.http_documents += 1
        elif head.is_upload and JPEG_MIN_BYTES <= (head.content_length or 0) < JPEG_MAX_BYTES:
            self.http_jpeg_uploads += 1
        if head.host:
            self.add_name(head.host.split(":", 1)[0] if not head.host.startswith("[") else head.host, "http")

    # ---- views ---------------------------------------------------------------------------------
    def closed(self) -> Flow:
        """A copy with the open object, exchange and run closed: what ``classify`` reads."""
        twin = self.copy()
        twin.close_open()
        return twin

    def interval_stats(self) -> tuple[int, float, float]:
        """(number of intervals, mean, standard deviation) between exchange starts."""
        if self.iv_n == 0:
            return 0, 0.0, 0.0
        std = math.sqrt(self.iv_m2 / self.iv_n) if self.iv_n > 1 else 0.0
        return self.iv_n, self.iv_mean, std

    @property
    def duration(self) -> float:
        return self.last_seen - self.first_seen

    # ---- archive ------------------------------------------------------------------------------
    def compact(self) -> None:
        """Close what is open and trim the evidence lists (archived records)."""
        self.close_open()
        self.bursts = deque(self.bursts, maxlen=ARCHIVE_KEEP)  # a deque keeps the newest maxlen items
        self.exchanges = deque(self.exchanges, maxlen=ARCHIVE_KEEP)
        self.heads = deque(self.heads, maxlen=ARCHIVE_KEEP)
        if len(self.runs) > ARCHIVE_KEEP:
            self.runs = sorted(self.runs, key=lambda r: (r.span, r.bytes), reverse=True)[:ARCHIVE_KEEP]

    def merge(self, other: Flow) -> None:
        """Fold ``other`` (a closed/compacted record, typically later in time) into this one."""
        other.close_open()
        self.close_open()
        earlier, later = (self, other) if self.first_seen <= other.first_seen else (other, self)
        gap_interval = (later.first_exchange - earlier.last_exchange
                        if earlier.last_exchange >= 0 and later.first_exchange >= 0 else -1.0)
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        self.local_mac = self.local_mac or other.local_mac
        self.bytes_up += other.bytes_up
        self.bytes_down += other.bytes_down
        self.packets_up += other.packets_up
        self.packets_down += other.packets_down
        self.connections += other.connections
        for name, source in other.names.items():
            self.add_name(name, source)
        if other.timeline:
            self.timeline = sorted([*self.timeline, *other.timeline])
            width = max(self.timeline_width, other.timeline_width)
            if width > 0 or len(self.timeline) > TIMELINE_MAX:
                self._timeline_rebin(max(width, 1.0))
        if other.bursts:
            keep_b = self.bursts.maxlen or BURST_KEEP
            merged_b = sorted([*self.bursts, *other.bursts], key=lambda b: b.start)[-keep_b:]
            self.bursts = deque(merged_b, maxlen=keep_b)
        _add_into(self.object_counts, other.object_counts)
        _add_into(self.object_bytes, other.object_bytes)
        self.stream_objects += other.stream_objects
        self.stream_seconds += other.stream_seconds
        self.stream_bytes += other.stream_bytes
        self.jpeg_pairs += other.jpeg_pairs
        self.last_jpeg_end = max(self.last_jpeg_end, other.last_jpeg_end)
        if other.exchanges:
            keep_e = self.exchanges.maxlen or EXCHANGE_KEEP
            self.exchanges = deque(sorted([*self.exchanges, *other.exchanges])[-keep_e:], maxlen=keep_e)
        _add_into(self.exchange_counts, other.exchange_counts)
        self.exchange_total += other.exchange_total
        # Chan et al. parallel variance: combine the two interval populations, then the gap between them.
        n = self.iv_n + other.iv_n
        if n:
            delta = other.iv_mean - self.iv_mean
            mean = self.iv_mean + delta * other.iv_n / n
            self.iv_m2 = self.iv_m2 + other.iv_m2 + delta * delta * self.iv_n * other.iv_n / n
            self.iv_mean = mean
            self.iv_n = n
        if gap_interval > 0:
            self._add_interval(gap_interval)
        firsts = [t for t in (self.first_exchange, other.first_exchange) if t >= 0]
        self.first_exchange = min(firsts) if firsts else -1.0
        self.last_exchange = max(self.last_exchange, other.last_exchange)
        self.run_count += other.run_count
        if other.runs:
            keep_r = RUN_KEEP if (self.bursts.maxlen or BURST_KEEP) > ARCHIVE_KEEP else ARCHIVE_KEEP
            self.runs = sorted([*self.runs, *other.runs], key=lambda r: (r.span, r.bytes), reverse=True)[:keep_r]
        if other.heads:
            keep_h = self.heads.maxlen or HEADS_KEEP
            self.heads = deque(sorted([*self.heads, *other.heads], key=lambda h: h.ts)[-keep_h:], maxlen=keep_h)
        self.http_requests += other.http_requests
        self.http_images += other.http_images
        self.http_image_bytes += other.http_image_bytes
        self.http_jpeg_uploads += other.http_jpeg_uploads
        self.http_documents += other.http_documents
        self.instances += other.instances

    def copy(self) -> Flow:
        """An independent copy (merging for a report must not disturb the live table)."""
        twin = Flow(self.key, self.first_seen, self.local_mac)
        for slot in Flow.__slots__:
            value = getattr(self, slot)
            if isinstance(value, deque):
                value = deque((Burst(b.start, b.end, b.bytes, b.packets, b.replied) if isinstance(b, Burst) else b
                               for b in value), maxlen=value.maxlen)
            elif slot == "_open":
                value = {p: Burst(b.start, b.end, b.bytes, b.packets, b.replied) for p, b in value.items()}
            elif isinstance(value, list | dict):
                value = value.copy()
            setattr(twin, slot, value)
        return twin

    def __repr__(self) -> str:
        return (f"Flow({self.key.local_ip} -> {self.key.remote_ip}:{self.key.remote_port}/{self.key.transport}, "
                f"up {self.bytes_up} B/{self.packets_up}, down {self.bytes_down} B/{self.packets_down})")


@dataclass
class TableStats:
    packets: int = 0
    flow_packets: int = 0  # packets counted into a flow
    lan: int = 0  # both ends local
    transit: int = 0  # neither end local
    ignored: int = 0  # multicast, broadcast, link-local, unspecified, unparsable
    flows_created: int = 0
    archived: int = 0  # live flows moved to the archive
    overflowed: int = 0  # archived records folded into overflow records
    peak_live: int = 0


OVERFLOW = "*"


class FlowTable:
    """Live flows (at most ``max_flows``), an archive of idle ones, and a bounded DNS map."""

    def __init__(
        self,
        local_networks: Iterable[str | ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None,
        *,
        max_flows: int = 4096,
        idle_timeout: float = 600.0,
        max_archived: int = 8192,
        max_dns: int = 8192,
    ) -> None:
        nets = DEFAULT_LOCAL_NETWORKS if local_networks is None else local_networks
        self.local_networks = tuple(ipaddress.ip_network(n, strict=False) if isinstance(n, str) else n for n in nets)
        self.max_flows = max(8, max_flows)
        self.idle_timeout = idle_timeout
        self.max_archived = max(8, max_archived)
        self.max_dns = max(16, max_dns)
        self.live: dict[FlowKey, Flow] = {}
        self.archive: dict[FlowKey, Flow] = {}
        self.overflow: dict[FlowKey, Flow] = {}
        self.dns: OrderedDict[str, list[str]] = OrderedDict()
        self.stats = TableStats()
        self._kinds: dict[str, int] = {}
        self._last_sweep = -1.0
        self._now = 0.0

    # ---- orientation --------------------------------------------------------------------------
    def _kind(self, ip: str) -> int:
        kind = self._kinds.get(ip)
        if kind is not None:
            return kind
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            kind = _IGNORE
        else:
            if addr.is_multicast or addr.is_unspecified or addr.is_link_local or ip == "255.255.255.255" or (
                addr.version == 4 and ip.endswith(".255") and any(
                    addr in n and addr == n.broadcast_address for n in self.local_networks if n.version == 4)):
                kind = _IGNORE
            elif any(addr.version == n.version and addr in n for n in self.local_networks):
                kind = _LOCAL
            else:
                kind = _REMOTE
        if len(self._kinds) >= _ADDR_CACHE_MAX:
            self._kinds.clear()
        self._kinds[ip] = kind
        return kind

    def address_kind(self, ip: str) -> int:
        """ADDRESS_LOCAL (in ``local_networks``), ADDRESS_REMOTE, or ADDRESS_IGNORED (multicast, broadcast, ...)."""
        return self._kind(ip)

    def is_local(self, ip: str) -> bool:
        return self._kind(ip) == _LOCAL

    def orient(self, src_ip: str, dst_ip: str, proto: int | str, sport: int, dport: int) -> tuple[FlowKey, bool] | None:
        """(key, upstream?) for a packet, or None when it belongs to no flow (LAN, transit, multicast)."""
        src = self._kind(src_ip)
        dst = self._kind(dst_ip)
        number = proto if isinstance(proto, int) else _PROTO_NUMBERS.get(str(proto).lower(), 0)
        if src == _LOCAL and dst == _REMOTE:
            return FlowKey(src_ip, dst_ip, dport, number), True
        if src == _REMOTE and dst == _LOCAL:
            return FlowKey(dst_ip, src_ip, sport, number), False
        return None

    # ---- input --------------------------------------------------------------------------------
    def add_packet(self, pkt: PacketLike) -> Flow | None:
        return self.add(pkt.ts, pkt.src_mac, pkt.src_ip, pkt.dst_ip, pkt.proto, pkt.sport, pkt.dport,
                        pkt.ip_len, pkt.payload_len, pkt.tcp_flags)

    def add(self, ts: float, src_mac: str, src_ip: str, dst_ip: str, proto: int | str, sport: int, dport: int,
            ip_len: int, payload_len: int, tcp_flags: int = 0) -> Flow | None:
        """Count one packet; returns its flow (None when it belongs to none)."""
        stats = self.stats
        stats.packets += 1
        src = self._kinds.get(src_ip)
        if src is None:
            src = self._kind(src_ip)
        dst = self._kinds.get(dst_ip)
        if dst is None:
            dst = self._kind(dst_ip)
        if src == _LOCAL and dst == _REMOTE:
            upstream = True
            local_ip, remote_ip, remote_port = src_ip, dst_ip, dport
        elif src == _REMOTE and dst == _LOCAL:
            upstream = False
            local_ip, remote_ip, remote_port = dst_ip, src_ip, sport
        else:
            if src == _IGNORE or dst == _IGNORE:
                stats.ignored += 1
            elif src == _LOCAL:
                stats.lan += 1
            else:
                stats.transit += 1
            return None
        if proto.__class__ is not int:
            proto = _PROTO_NUMBERS.get(str(proto).lower(), 0)
        assert isinstance(proto, int)
        if ts > self._now:
            self._now = ts
            if self._last_sweep < 0:
                self._last_sweep = ts
            elif ts - self._last_sweep >= self.idle_timeout / 4:
                self._sweep(ts)
        key = FlowKey(local_ip, remote_ip, remote_port, proto)
        flow = self.live.get(key)
        if flow is None:
            if len(self.live) >= self.max_flows:
                self._evict_oldest()
            flow = Flow(key, ts, src_mac if upstream else "")
            self.live[key] = flow
            stats.flows_created += 1
            if len(self.live) > stats.peak_live:
                stats.peak_live = len(self.live)
        stats.flow_packets += 1
        if upstream:
            if not flow.local_mac and src_mac:
                flow.local_mac = src_mac
            flow.up(ts, ip_len, payload_len, tcp_flags, sport)
        else:
            flow.down(ts, ip_len, payload_len, dport)
        return flow

    def add_run(self, key: FlowKey, port: int, ts0: float, ts1: float, packets_up: int, bytes_up: int,
                packets_down: int, bytes_down: int, objects: tuple[int, int, float, int, float] | None,
                replied_before: bool, replied_after: bool, syns: int = 0) -> Flow | None:
        """Count a run of packets of one connection at once, as ``add`` one by one would; None (and nothing
        counted) when this run cannot be taken at once: the caller then adds its packets one by one.

        The caller guarantees, for the run's packets in capture order: all belong to ``key`` and the
        device port ``port``; no other flow's packet comes between them; timestamps never decrease,
        from ``ts0`` to ``ts1``, with at most ``EXCHANGE_GAP_S`` between neighbours; no payload on SYN,
        FIN or RST segments (``syns`` counts the upstream SYNs without ACK, for ``Flow.connections``); the upstream
        packets with payload (``objects``, see ``Flow.add_run``) all fall in one whole second, and each
        follows the previous one by less than ``BURST_GAP_S``, or by less than ``BURST_STALL_S`` with
        no downstream payload between them (times as they are, before ``Flow.add_run`` clamps them to the
        flow's newest). Here it is checked that no later packet would start an idle sweep. The device MAC is left to the
        caller (``Flow.local_mac``), as it is only read from frames that carry one.
        """
        now = self._now
        last_sweep = self._last_sweep
        sweep = False
        if ts0 > now:
            now = ts0
            if last_sweep < 0:
                last_sweep = ts0
            elif ts0 - last_sweep >= self.idle_timeout / 4:
                sweep = True
                last_sweep = ts0
        if ts1 > now and (last_sweep < 0 or ts1 - last_sweep >= self.idle_timeout / 4):
            return None  # a later packet would sweep: one by one
        flow = self.live.get(key)
        stats = self.stats
        count = packets_up + packets_down
        stats.packets += count
        stats.flow_packets += count
        if sweep:
            self._sweep(ts0)
            flow = self.live.get(key)
        self._now = max(now, ts1)
        self._last_sweep = last_sweep
        if flow is None:
            if len(self.live) >= self.max_flows:
                self._evict_oldest()
            flow = Flow(key, ts0)
            self.live[key] = flow
            stats.flows_created += 1
            if len(self.live) > stats.peak_live:
                stats.peak_live = len(self.live)
        flow.add_run(port, ts0, ts1, packets_up, bytes_up, packets_down, bytes_down, objects, replied_before,
                     replied_after, syns)
        return flow

    def add_http_head(self, ts: float, src_ip: str, dst_ip: str, proto: int | str, sport: int, dport: int,
                      head: HttpHeadLike) -> None:
        """Attach an HTTP request head seen in a packet from ``src`` to ``dst`` (upstream requests only)."""
        oriented = self.orient(src_ip, dst_ip, proto, sport, dport)
        if oriented is None or not oriented[1]:
            return
        flow = self.live.get(oriented[0])
        if flow is None:
            return
        flow.add_head(HttpRequest(ts, head.method[:16], head.path[:PATH_MAX], (head.content_type or "")[:80],
                                  head.content_length, (head.host or "")[:253]))

    def add_name(self, src_ip: str, dst_ip: str, proto: int | str, sport: int, dport: int, name: str,
                 source: str) -> None:
        """A name the device used for this destination (``source``: sni | http), from a packet src -> dst."""
        oriented = self.orient(src_ip, dst_ip, proto, sport, dport)
        if oriented is None:
            return
        flow = self.live.get(oriented[0])
        if flow is not None:
            flow.add_name(name, source)

    def add_dns(self, name: str, addresses: Iterable[str]) -> None:
        """A DNS answer: ``name`` (the query name or a CNAME in the chain) resolves to ``addresses``."""
        name = name.strip().lower().rstrip(".")
        if not name:
            return
        for address in addresses:
            names = self.dns.get(address)
            if names is None:
                names = []
                self.dns[address] = names
                if len(self.dns) > self.max_dns:
                    self.dns.popitem(last=False)
            else:
                self.dns.move_to_end(address)
            if name not in names:
                names.append(name)
                if len(names) > MAX_NAMES:
                    del names[0]

    def names_for(self, ip: str, flow: Flow | None = None) -> list[str]:
        """Names for a remote address: the flow's own (SNI, Host) first, then DNS answers."""
        out: list[str] = list(flow.names) if flow is not None else []
        for name in self.dns.get(ip, ()):
            if name not in out:
                out.append(name)
        return out

    # ---- memory bound -------------------------------------------------------------------------
    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        idle = [key for key, flow in self.live.items() if now - flow.last_seen > self.idle_timeout]
        for key in idle:
            self._archive(self.live.pop(key))

    def _evict_oldest(self) -> None:
        count = max(1, len(self.live) // 8)
        oldest = sorted(self.live.values(), key=lambda f: f.last_seen)[:count]
        for flow in oldest:
            del self.live[flow.key]
            self._archive(flow)

    def _archive(self, flow: Flow) -> None:
        self.stats.archived += 1
        flow.compact()
        existing = self.archive.get(flow.key)
        if existing is not None:
            existing.merge(flow)
            return
        if len(self.archive) >= self.max_archived:
            self._overflow()
        self.archive[flow.key] = flow

    def _overflow(self) -> None:
        count = max(1, len(self.archive) // 8)
        smallest = sorted(self.archive.values(), key=lambda f: (f.bytes_up, f.last_seen))[:count]
        for flow in smallest:
            del self.archive[flow.key]
            self.stats.overflowed += 1
            key = FlowKey(flow.key.local_ip, OVERFLOW, 0, 0)
            if key not in self.overflow and len(self.overflow) >= self.max_archived:
                key = FlowKey(OVERFLOW, OVERFLOW, 0, 0)
            target = self.overflow.get(key)
            if target is None:
                target = Flow(key, flow.first_seen, "")
                target.compact()
                self.overflow[key] = target
            target.merge(flow)

    def tracked(self) -> int:
        """Records held (live + archived + overflow): the memory bound."""
        return len(self.live) + len(self.archive) + len(self.overflow)

    # ---- output -------------------------------------------------------------------------------
    def flows(self, *, include_overflow: bool = False) -> list[Flow]:
        """One record per key, live and archived periods merged (copies: the table is untouched)."""
        out: dict[FlowKey, Flow] = {key: live.copy() for key, live in self.live.items()}
        for key, archived in self.archive.items():
            if key in out:
                out[key].merge(archived.copy())  # the live copy keeps its longer evidence lists
            else:
                out[key] = archived.copy()
        if include_overflow:
            for key, flow in self.overflow.items():
                out[key] = flow.copy()
        return sorted(out.values(), key=lambda f: (f.key.local_ip, f.first_seen))


def merge_flows(flows: Iterable[Flow]) -> Flow | None:
    """Merge several records (e.g. one server name behind several addresses) into one copy."""
    merged: Flow | None = None
    for flow in sorted(flows, key=lambda f: f.first_seen):
        if merged is None:
            merged = flow.copy()
        else:
            merged.merge(flow.copy())
    return merged
