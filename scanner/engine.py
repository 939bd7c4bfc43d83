"""Runs a scan: discover -> probe -> identify, within the gentle limits of ``NetContext``.

Phases (DESIGN.md data flow):
1. In parallel: ARP sweep of the interface's subnet (raw sockets), multicast/broadcast
   discovery (SADP, DHIP, XM, WS-Discovery, SSDP) and mDNS browsing.
2. TCP connect sweep of the camera ports on live hosts (all targets when ARP is unavailable).
3. Unicast discovery to live hosts that stayed silent on multicast (multicast loss is the top
   complaint about existing tools), and targeted probes per open service: HTTP(S), RTSP,
   ONVIF, UPnP description. Only protocol-appropriate bytes reach a port: nothing is ever sent
   to vendor binary ports (Hikvision 8000, Dahua 37777, XM 34567, Tuya 6668, JetDirect 9100).
4. Identification: signatures + explicit resolution rules (scanner.identify).

Every observation lands in ``ScanState`` as it arrives, so an interrupted scan still reports
what it found.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import subprocess
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import scanner
from scanner.errors import PrivilegeError, UsageError
from scanner.models import ScanInfo, ScanResult
from scanner.net import NetContext, NetOptions
from scanner.observations import Observation
from scanner.targets import DEFAULT_MAX_HOSTS, TargetSet, parse_local_networks, parse_targets

log = logging.getLogger(__name__)

HTTP_PORTS = (80, 8080, 8000, 5000, 631, 9000, 2020, 8899)
HTTPS_PORTS = (443, 8443, 5001)
RTSP_PORTS = (554, 8554)
ONVIF_CANDIDATE_PORTS = (80, 8899, 2020, 8080)
NEVER_SEND_PORTS = (37777, 34567, 6668, 9100, 445, 135)  # binary vendor/service ports: connect only
LOOPBACK_RATE = 5000.0  # loopback traffic never leaves the machine; the network rate cap is moot

Progress = Callable[[str, int, int], None]


@dataclass
class ScanOptions:
    targets: list[str]
    iface: str | None = None
    ports: list[int] | None = None
    allow_public: bool = False
    max_hosts: int = DEFAULT_MAX_HOSTS
    rate: float = 300.0
    per_host: int = 2
    discovery_timeout: float = 3.0
    connect_timeout: float = 1.0
    read_timeout: float = 3.0
    multicast: bool | None = None  # None: when the targets are on the interface's segment
    arp: bool | None = None  # None: when privileged and the targets are on the interface's segment
    port_map: dict[int, int] = field(default_factory=dict)
    listen_seconds: float = 0.0  # > 0: listen passively beside the scan (scanner.passive.live.Listener)
    listen_iface: str | None = None  # default: the scan's interface (a mirror port is better)
    local_networks: list[str] | None = None  # the store's own networks for the passive side
    creds: Any = None  # scanner.audit.CredentialSet: audit the devices found with these (issue 6)


@dataclass
class Interface:
    name: str
    ip: str
    network: ipaddress.IPv4Network


@dataclass
class ScanState:
    observations: dict[str, list[Observation]] = field(default_factory=lambda: defaultdict(list))
    notes: list[str] = field(default_factory=list)
    live: set[str] = field(default_factory=set)

    def add(self, items: list[Observation]) -> None:
        for o in items:
            self.observations[o.ip].append(o)
            if o.status in ("success", "connection-refused", "unauthorized"):
                self.live.add(o.ip)


def interface(name: str) -> Interface:
    """The IPv4 address and subnet of ``name``; UsageError when there is no such interface."""
    try:
        proc = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", name], capture_output=True, text=True,
                              timeout=5)
    except FileNotFoundError as exc:
        raise UsageError("iproute2 ('ip') is needed to read interface addresses") from exc
    if proc.returncode != 0:
        raise UsageError(f"no network interface named {name!r} (see 'ip link')")
    try:
        data = json.loads(proc.stdout or "[]")
        info = data[0]["addr_info"][0]
    except (ValueError, IndexError, KeyError) as exc:
        raise UsageError(f"interface {name!r} has no IPv4 address") from exc
    net = ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False)
    return Interface(name, info["local"], net)


def route_interface(target: str) -> Interface | None:
    """The interface the kernel would use to reach ``target`` (no packet is sent)."""
    proc = subprocess.run(["ip", "-j", "route", "get", target], capture_output=True, text=True, timeout=5)
    try:
        route = json.loads(proc.stdout or "[]")[0]
        return interface(route["dev"])
    except (ValueError, IndexError, KeyError, UsageError):
        return None


def can_use_raw_sockets() -> bool:
    return os.geteuid() == 0


def prepare(options: ScanOptions) -> tuple[TargetSet, Interface | None, NetContext, bool, bool, list[str]]:
    """Validate the options, choose the interface and what discovery may do; no packet sent."""
    iface = interface(options.iface) if options.iface else None
    options.local_networks = parse_local_networks(options.local_networks)
    targets = parse_targets(options.targets, iface_network=iface.network if iface else None,
                            allow_public=options.allow_public, max_hosts=options.max_hosts)
    if iface is None:
        iface = route_interface(targets.hosts[0])
    notes: list[str] = []
    loopback = all(ipaddress.IPv4Address(h).is_loopback for h in targets.hosts)
    on_segment = bool(iface) and not loopback and all(
        ipaddress.IPv4Address(h) in iface.network for h in targets.hosts)  # type: ignore[union-attr]
    multicast = on_segment if options.multicast is None else options.multicast
    if options.multicast is None and not on_segment:
        notes.append("multicast/broadcast discovery skipped: the targets are not on the interface's segment"
                     + (" (loopback)" if loopback else ""))
    arp = options.arp
    if arp is None:
        arp = on_segment and can_use_raw_sockets()
        if on_segment and not can_use_raw_sockets():
            notes.append("ARP sweep skipped: needs root or CAP_NET_RAW; MACs come from the kernel neighbour "
                         "table after TCP connects, and every other discovery still runs")
    elif arp and not can_use_raw_sockets():
        raise PrivilegeError("--arp needs root or CAP_NET_RAW (without it camsweep uses TCP connects and "
                             "the kernel neighbour table)")
    rate = LOOPBACK_RATE if loopback else options.rate
    ctx = NetContext(NetOptions(
        source_ip=None if loopback or iface is None else iface.ip,
        iface=None if loopback or iface is None else iface.name,
        per_host=options.per_host,
        rate=rate,
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        port_map=dict(options.port_map),
    ))
    return targets, iface, ctx, multicast, arp, notes


async def run_scan(options: ScanOptions, state: ScanState, progress: Progress | None = None) -> None:
    """Fill ``state`` with observations; cancellable at any point (state keeps what arrived)."""
    from scanner.discovery import arp as arp_mod
    from scanner.discovery import dhip, mdns, sadp, ssdp, tcp, wsd, xm

    targets, iface, ctx, multicast, use_arp, notes = prepare(options)
    state.notes.extend(notes)
    report = progress or (lambda _phase, _done, _total: None)
    hosts = targets.hosts
    in_scope = set(hosts)
    ports = options.ports or list(tcp.DEFAULT_PORTS)

    def keep(items: list[Observation]) -> list[Observation]:
        return [o for o in items if o.ip in in_scope]

    # Phase 1: ARP, multicast and mDNS together.
    report("discovery", 0, 1)
    phase1: list[Awaitable[list[Observation]]] = []
    if use_arp and iface is not None:
        networks = targets.networks or [iface.network]
        for net in networks:
            phase1.append(asyncio.to_thread(arp_mod.arp_sweep, iface.name, str(net), timeout=1.0))
    if multicast:
        for module in (sadp, dhip, xm, wsd, ssdp):
            phase1.append(module.discover(ctx, [], multicast=True, timeout=options.discovery_timeout))
        phase1.append(mdns.discover(ctx, timeout=options.discovery_timeout))
    arp_seen: set[str] = set()
    for result in await asyncio.gather(*phase1, return_exceptions=True):
        if isinstance(result, BaseException):
            if isinstance(result, asyncio.CancelledError):
                raise result
            state.notes.append(f"a discovery step failed: {result}")
            continue
        kept = keep(result)
        state.add(kept)
        arp_seen.update(o.ip for o in kept if o.source == "arp")
    report("discovery", 1, 1)

    # Phase 2: TCP sweep of live hosts (every target when there was no ARP).
    sweep_hosts = [h for h in hosts if h in state.live] if use_arp else hosts
    report("ports", 0, len(sweep_hosts))
    state.add(keep(await tcp.sweep(ctx, sweep_hosts, ports, timeout=options.connect_timeout)))
    report("ports", len(sweep_hosts), len(sweep_hosts))
    if not use_arp:
        macs = arp_mod.neighbours(iface.name if iface else None)
        for ip, mac in macs.items():
            if ip in state.live and ip in in_scope:
                state.add([Observation(ip=ip, source="neighbour", fields={"mac": mac}, transport="l2")])
    for ip in sorted(state.live):
        found_mac = next((o.fields["mac"] for o in state.observations[ip] if o.fields.get("mac")), None)
        if found_mac:
            state.add([arp_mod.oui_observation(ip, found_mac)])

    # Phase 3: unicast discovery for silent hosts, and targeted probes.
    live = sorted(h for h in state.live if h in in_scope)
    unicast: list[Awaitable[list[Observation]]] = []
    for module, source in ((sadp, "sadp"), (dhip, "dhip"), (xm, "xm"), (wsd, "wsd"), (ssdp, "ssdp")):
        silent = [h for h in live if not any(o.source == source for o in state.observations[h])]
        if silent:
            unicast.append(module.discover(ctx, silent, multicast=False, timeout=1.5))
    unicast_done = asyncio.Event()
    probe_jobs = [_probe_host(ctx, ip, state, unicast_done) for ip in live]
    total = len(probe_jobs)
    done = 0
    report("probes", 0, total)

    async def unicast_all() -> None:
        try:
            for result in await asyncio.gather(*unicast, return_exceptions=True):
                if isinstance(result, list):
                    state.add(keep(result))
        finally:
            unicast_done.set()

    async def tracked(job: Awaitable[None]) -> None:
        nonlocal done
        await job
        done += 1
        report("probes", done, total)

    await asyncio.gather(unicast_all(), *(tracked(j) for j in probe_jobs))


async def _probe_host(ctx: NetContext, ip: str, state: ScanState, unicast_done: asyncio.Event) -> None:
    """Run the protocol-appropriate probes for one host's open ports (≤ per_host at once).

    HTTP and RTSP probes start at once; ONVIF and UPnP wait for the unicast discovery answers
    (WS-Discovery XAddrs, SSDP LOCATION) that tell them where to look.
    """
    from scanner.probes import http, onvif, rtsp, upnp

    def open_ports() -> set[int]:
        return {o.port for o in state.observations[ip] if o.source == "tcp" and o.status == "success"
                and o.port is not None}

    ports = open_ports()
    hik_sdk = any(o.source == "sadp" for o in state.observations[ip])
    hints = {}
    if hik_sdk:
        hints["vendor"] = "Hikvision"
    elif any(o.source == "dhip" for o in state.observations[ip]):
        hints["vendor"] = "Dahua"
    jobs: list[Awaitable[list[Observation]]] = []
    for port in sorted(ports):
        if port in NEVER_SEND_PORTS or (port == 8000 and hik_sdk):
            continue
        if port in RTSP_PORTS:
            jobs.append(rtsp.probe(ctx, ip, port))
        elif port in HTTPS_PORTS:
            jobs.append(http.probe(ctx, ip, port, tls=True, hints=hints))
        elif port in HTTP_PORTS and port not in (8899, 2020):
            jobs.append(http.probe(ctx, ip, port, hints=hints))
    async def discovery_guided() -> list[Observation]:
        await unicast_done.wait()
        found: list[Observation] = []
        xaddrs = " ".join(o.fields.get("xaddrs", "") for o in state.observations[ip] if o.source == "wsd")
        onvif_port = _onvif_port(xaddrs, ports)
        if onvif_port is not None:
            found.extend(await onvif.probe(ctx, ip, onvif_port, hints={"xaddrs": xaddrs}))
        location = next((o.fields["location"] for o in state.observations[ip]
                         if o.source == "ssdp" and o.fields.get("location")), None)
        if location:
            found.extend(await upnp.probe(ctx, ip, 0, hints={"location": location}))
        return found

    jobs.append(discovery_guided())
    for result in await asyncio.gather(*jobs, return_exceptions=True):
        if isinstance(result, list):
            state.add(result)
        elif isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            log.debug("probe of %s failed: %s", ip, result)


def _onvif_port(xaddrs: str, open_ports: set[int]) -> int | None:
    """The port of the first WS-Discovery XAddr; without one, a likely ONVIF port of a streamer."""
    first = xaddrs.split()[0] if xaddrs.split() else ""
    if first.count("/") >= 2:
        hostport = first.split("/")[2]
        port_text = hostport.rsplit(":", 1)[1] if ":" in hostport else ""
        return int(port_text) if port_text.isdigit() else 80
    has_stream = bool(open_ports & set(RTSP_PORTS))
    for port in ONVIF_CANDIDATE_PORTS:
        if port in open_ports and (has_stream or port in (8899, 2020)):
            return port
    return None


def build_result(options: ScanOptions, state: ScanState, started: float, *, interrupted: bool) -> ScanResult:
    """Identify every live host from what was observed (also after an interruption)."""
    from scanner.identify import resolve
    from scanner.signatures import load_signatures

    matcher = load_signatures()
    devices = []
    for ip in sorted(state.observations, key=lambda a: ipaddress.IPv4Address(a)):
        obs = state.observations[ip]
        if not any(o.status in ("success", "unauthorized") and o.source not in ("oui",) for o in obs):
            continue
        devices.append(resolve(ip, obs, matcher))
    info = ScanInfo(
        targets=list(options.targets),
        started=started,
        finished=time.time(),
        iface=options.iface,
        interrupted=interrupted,
        options={"ports": options.ports, "rate": options.rate, "per_host": options.per_host,
                 "allow_public": options.allow_public, "max_hosts": options.max_hosts},
        notes=list(state.notes),
        hosts_scanned=len(state.live),
    )
    tool = {"name": "camsweep", "version": scanner.__version__,
            "signatures_version": getattr(matcher, "version", "unknown")}
    return ScanResult(scan=info, devices=devices, tool=tool)


def scan(options: ScanOptions, progress: Progress | None = None) -> ScanResult:
    """Run a whole scan synchronously; Ctrl-C returns the partial result marked interrupted.

    With ``listen_seconds`` the passive listener runs in a thread from before the first probe
    until the listening time is over (at least as long as the scan), and what it saw -- clouds
    per device -- is merged into the result (devices the scan missed are added by MAC and IP).
    """
    targets, iface, _ctx, _mc, _arp, _notes = prepare(options)  # usage errors before any packet
    listener = _start_listener(options, targets, iface)
    state = ScanState()
    started = time.time()
    interrupted = False
    try:
        asyncio.run(run_scan(options, state, progress))
    except KeyboardInterrupt:
        interrupted = True
    if listener is not None:
        if progress is not None and not interrupted:
            progress("listening", 0, 1)
        try:
            listener.finish(interrupt=interrupted)
        except KeyboardInterrupt:
            interrupted = True
    result = build_result(options, state, started, interrupted=interrupted)
    if listener is not None:
        from scanner.passive.analyze import build_result as passive_result

        result.scan.options["listen_seconds"] = options.listen_seconds
        result.scan.options["listen_iface"] = listener.iface
        result.scan.options["local_networks"] = [str(n) for n in listener.table.local_networks]
        result = passive_result(listener.table, listener.summary, scan=result)
        result.scan.notes.extend(listener.notes())
    if options.creds is not None and not result.scan.interrupted:
        from scanner.audit import audit_scan

        audit_scan(result, options, options.creds)
    return result


def _start_listener(options: ScanOptions, targets: TargetSet, iface: Interface | None) -> Any:
    """The running passive listener for ``--listen`` (None without it); errors before the scan.

    The store's own networks are, unless ``--local`` says otherwise, the private ranges, the
    scanned networks and this host's own address: the scan's probes are LAN traffic, never a
    device "talking to" a remote server (on ``lo`` they come from 127.0.0.1).
    """
    if options.listen_seconds <= 0:
        return None
    from scanner.passive.flows import DEFAULT_LOCAL_NETWORKS
    from scanner.passive.live import Listener

    listen_iface = options.listen_iface or (iface.name if iface else None)
    if listen_iface is None:
        raise UsageError("--listen needs an interface: give --listen-iface (a mirror port) or --iface")
    local = options.local_networks
    if not local:
        local = [*DEFAULT_LOCAL_NETWORKS, *(str(n) for n in targets.networks)]
        if iface is not None:
            local.append(f"{iface.ip}/32")
    return Listener(listen_iface, options.listen_seconds, local_networks=local).start()


def as_dict(result: ScanResult) -> dict[str, Any]:
    return result.to_dict()
