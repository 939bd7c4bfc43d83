"""``camsweep analyze``: which device sends what to which cloud, from capture files.

One pass over each capture, as a stream: frames are decoded cheaply (``decode``), every packet
is counted in the flow table, and only the packets that matter are dissected further -- DNS
answers name the addresses devices talk to (whatever resolver they asked, including hard-coded
outside ones), TLS ClientHellos give the SNI (reassembled across TCP segments), plain-HTTP
request heads give host, method, path and sizes. Then every (device, destination) pair is
classified and matched against signatures/clouds. Metadata only: no payload byte is kept.

``PacketPath`` is that per-packet behaviour, and what ``camsweep listen`` runs. pcap files take the
bulk path (``fastpath``): the same result, with the header fields of a whole buffer of records read
as arrays and the packets of one connection counted in runs; only the packets that matter (and the
odd ones) reach ``PacketPath`` one by one. ``analyze_captures(..., bulk=False)`` runs every packet
through ``PacketPath``, the reference the bulk path is tested against.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import scanner
from scanner.models import Device, ScanInfo, ScanResult
from scanner.passive.classify import observe
from scanner.passive.clouds import CloudSignatureSet, shipped
from scanner.passive.decode import DecodeStats, Packet, decode, looks_like_http_request
from scanner.passive.dns import DNS_PORT, TYPE_A, TYPE_AAAA, parse_dns
from scanner.passive.flows import FlowTable
from scanner.passive.httphead import parse_request_head
from scanner.passive.readahead import iter_batches
from scanner.passive.reader import ReadStats, iter_frames
from scanner.passive.tls import SniReassembler

DNS_PORTS = (DNS_PORT, 5353)  # datagrams that are DNS or mDNS, never HTTP or TLS


@dataclass
class PassiveSummary:
    """What the pass saw and what it skipped (hostile or unsupported input is counted, not fatal)."""

    files: list[str] = field(default_factory=list)
    read: ReadStats = field(default_factory=ReadStats)
    decode: DecodeStats = field(default_factory=DecodeStats)
    dns_answers: int = 0
    client_hellos: int = 0
    http_heads: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    interrupted: bool = False  # Ctrl-C: what was read up to then is kept

    def skipped(self) -> int:
        """Frames or records lost to damage or unsupported formats (ARP and other non-IP frames are not)."""
        d = self.decode
        return d.malformed + d.truncated + d.unsupported_linktype + self.read.bad_records + self.read.truncated \
            + self.read.unknown_linktype

    def notes(self) -> list[str]:
        out = [f"{self.read.packets} frames read from {len(self.files)} capture(s); {self.dns_answers} DNS answers, "
               f"{self.client_hellos} TLS ClientHellos, {self.http_heads} HTTP request heads"]
        skipped = self.skipped()
        if skipped:
            first = "; ".join(f"{k}: {v}" for k, v in list(self.read.errors.items())[:3])
            out.append(f"{skipped} frames or records skipped as truncated, malformed or unsupported"
                       + (f" (first: {first})" if first else ""))
        return out


class PacketPath:
    """What happens to one decoded packet: the flow table counts it, and the few that matter are dissected.

    This is the reference behaviour of ``camsweep analyze``; the bulk path (``fastpath``) hands it every
    packet it does not account for itself, in capture order.
    """

    __slots__ = ("table", "summary", "sni")

    def __init__(self, table: FlowTable, summary: PassiveSummary) -> None:
        self.table = table
        self.summary = summary
        self.sni = SniReassembler()

    def packet(self, pkt: Packet) -> None:
        summary = self.summary
        table = self.table
        ts = pkt.ts
        if summary.first_ts is None:
            summary.first_ts = ts
        summary.last_ts = ts
        table.add_packet(pkt)
        if not pkt.payload_len:
            if pkt.proto == 6 and pkt.tcp_flags:
                self.sni.feed_packet(pkt)  # SYN/FIN/RST keep the reassembler's per-flow state right
            return
        if pkt.proto == 17 and (pkt.sport in DNS_PORTS or pkt.dport in DNS_PORTS):
            if pkt.sport != DNS_PORT and pkt.dport != DNS_PORT:
                return  # mDNS names link-local hosts; it never names a destination (see DNS_PORT)
            message = parse_dns(pkt.data())
            if message is not None and message.qr:
                addresses = [a.value for a in message.answers if a.rtype in (TYPE_A, TYPE_AAAA)]
                if addresses:
                    # The query name and every CNAME in the chain lead to these addresses.
                    for name in {q.name for q in message.questions} | {a.name for a in message.answers}:
                        table.add_dns(name, addresses)
                    summary.dns_answers += 1
            return
        if pkt.proto != 6:
            return
        hello = self.sni.feed_packet(pkt)
        if hello is not None and hello.sni:
            summary.client_hellos += 1
            table.add_name(pkt.src_ip, pkt.dst_ip, 6, pkt.sport, pkt.dport, hello.sni, "sni")
            return
        data = pkt.data()
        if looks_like_http_request(data):
            head = parse_request_head(data)
            if head is not None:
                summary.http_heads += 1
                table.add_http_head(ts, pkt.src_ip, pkt.dst_ip, 6, pkt.sport, pkt.dport, head)
                if head.host:
                    table.add_name(pkt.src_ip, pkt.dst_ip, 6, pkt.sport, pkt.dport, head.host.split(":")[0], "http")


def analyze_frames(table: FlowTable, summary: PassiveSummary, frames: Iterable[tuple[float, int, bytes]]) -> None:
    """Feed frames (timestamp, linktype, bytes) into ``table``, one by one."""
    path = PacketPath(table, summary)
    stats = summary.decode
    for ts, linktype, frame in frames:
        pkt = decode(linktype, frame, ts, stats)
        if pkt is not None:
            path.packet(pkt)


def analyze_captures(paths: list[Path], *, local_networks: list[str] | None = None,
                     summary: PassiveSummary | None = None, bulk: bool = True,
                     read_ahead: bool | None = None) -> tuple[FlowTable, PassiveSummary]:
    """One streaming pass over every capture (UsageError for a file that is not a capture).

    pcap and pcapng files go through the vectorised bulk path (``fastpath``) unless ``bulk`` is False,
    read by a second process (``readahead``) when ``read_ahead`` says so (None: large files, 2+ CPUs);
    pipes and streams frame by frame. All give the same table.
    """
    summary = summary or PassiveSummary()
    table = FlowTable(local_networks=local_networks)
    for path in paths:
        summary.files.append(str(path))
        if bulk:
            # numpy, imported only when used; before the reader forks, so that it has it too (readahead)
            from scanner.passive.fastpath import analyze_batches
        batches = iter_batches(path, summary.read, read_ahead=read_ahead) if bulk else None
        frames = iter_frames(path, summary.read) if batches is None else None
        try:
            if batches is not None:
                # The classification needs the cloud signatures at the end; loaded now, while a reading
                # process fills its first buffers, they cost nothing (loaded once per process).
                shipped()
                analyze_batches(PacketPath(table, summary), batches)
            elif frames is not None:
                analyze_frames(table, summary, frames)
        except KeyboardInterrupt:  # Ctrl-C: the table holds everything read so far, and is kept
            summary.interrupted = True
            summary.files[-1] += " (interrupted)"
            return table, summary
        finally:
            for items in (batches, frames):
                close = getattr(items, "close", None)
                if close is not None:
                    close()  # a reading process is stopped at once
    return table, summary


def build_result(table: FlowTable, summary: PassiveSummary, *, scan: ScanResult | None = None,
                 signatures: CloudSignatureSet | None = None, started: float | None = None) -> ScanResult:
    """The result document: a scan's devices (when given) with the observed clouds added."""
    signatures = signatures or shipped()  # loaded once per process (classify and the report use it too)
    if scan is None:
        result = ScanResult(scan=ScanInfo(targets=summary.files, started=started or time.time()),
                            tool={"name": "camsweep", "version": scanner.__version__})
    else:
        result = scan
    by_ip = {d.ip: d for d in result.devices}
    for dest in observe(table, signatures):
        device = by_ip.get(dest.device_ip)
        if device is None:
            device = Device(ip=dest.device_ip, mac=dest.device_mac or None)
            by_ip[dest.device_ip] = device
            result.devices.append(device)
        elif device.mac is None and dest.device_mac:
            device.mac = dest.device_mac
        device.clouds = [c for c in device.clouds if not (c.source == "observed" and c.ip == dest.flow.key.remote_ip
                                                           and c.port == dest.flow.key.remote_port)]
        device.clouds.append(dest.cloud_link())
    result.devices.sort(key=lambda d: ipaddress.ip_address(d.ip))
    # The networks this pass treated as the store's own: the assessment judges observed links by them.
    result.scan.options.setdefault("local_networks", [str(n) for n in table.local_networks])
    result.scan.notes.extend(summary.notes())
    result.scan.finished = time.time()
    return result
