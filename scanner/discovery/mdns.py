"""mDNS / DNS-SD browsing through python-zeroconf (protocols.md §7; perf_style.md A.3, B.6).

Sent: zeroconf's own browse queries (PTR questions for each service type, with its startup
repetitions and random delays) from the chosen interface only (``interfaces=[source_ip]``), and
SRV/TXT/A questions for each instance found (usually already answered from the cache, since
responders put those records in the PTR answer's additional section).

Parsed by zeroconf, which never raises on hostile packets. Reported: one Observation per IPv4
address (source ``mdns``, port 5353, transport udp) with fields

    services       the service types found at the address, space-joined ("_axis-video._tcp _http._tcp")
    service_ports  type:port pairs ("_http._tcp:5000 _smb._tcp:445") -- where the probes should knock
    hostname       the SRV target without the trailing dot ("axis-accc8e012345.local")
    name           the instance name of the most camera-relevant service ("AXIS P3245-LV - ACCC8E012345")
    txt.<key>      TXT keys (lower-case, RFC 6763 §6.4), first value wins, bounded
    mac            from a ``macaddress``/``mac`` TXT key when it is one (Axis puts it there)

Camera-relevant types come first in ``DEFAULT_SERVICE_TYPES``; the order decides which instance
name is reported. ONVIF itself does not use mDNS (§7).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from scanner.discovery import MAX_FIELDS, clean_key, clean_value, normalise_mac
from scanner.net import NetContext
from scanner.observations import Observation

log = logging.getLogger(__name__)

SOURCE = "mdns"
MDNS_PORT = 5353
DEFAULT_SERVICE_TYPES = [
    "_axis-video._tcp",
    "_axis-nvr._tcp",
    "_rtsp._tcp",
    "_hap._tcp",
    "_googlecast._tcp",
    "_http._tcp",
    "_ipp._tcp",
    "_printer._tcp",
    "_smb._tcp",
    "_device-info._tcp",
    "_workstation._tcp",
]
MAX_TXT_KEYS = 32
MAX_TXT_VALUE = 256
MAX_INSTANCES = 1024  # instances resolved per run (a hostile network cannot grow this without bound)
CLOSE_TIMEOUT = 3.0


def _fqdn_type(service_type: str) -> str:
    """``_http._tcp`` -> ``_http._tcp.local.`` (zeroconf wants the full form)."""
    text = service_type.strip().rstrip(".")
    if not text.endswith(".local"):
        text += ".local"
    return text + "."


def _short_type(service_type: str) -> str:
    return service_type.rstrip(".").removesuffix(".local")


@dataclass
class _Host:
    """What has been resolved for one address so far."""

    services: dict[str, int] = field(default_factory=dict)  # short type -> port
    names: dict[str, str] = field(default_factory=dict)  # short type -> instance name
    hostname: str = ""
    txt: dict[str, str] = field(default_factory=dict)


class _Resolver:
    """Collects resolved service instances per address."""

    def __init__(self, aiozc: AsyncZeroconf, priority: list[str], deadline: float) -> None:
        self.aiozc = aiozc
        self.priority = priority
        self.deadline = deadline
        self.hosts: dict[str, _Host] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.seen: set[tuple[str, str]] = set()

    def on_change(self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        """zeroconf browser handler (called with keyword arguments)."""
        if state_change is ServiceStateChange.Removed or (service_type, name) in self.seen:
            return
        if len(self.seen) >= MAX_INSTANCES:
            return
        self.seen.add((service_type, name))
        task = asyncio.ensure_future(self.resolve(service_type, name))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def resolve(self, service_type: str, name: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        remaining_ms = max(100.0, (self.deadline - time.monotonic()) * 1000)
        try:
            if not await info.async_request(self.aiozc.zeroconf, remaining_ms):
                return
        except Exception as exc:  # noqa: BLE001 - a bad record must not end the browse
            log.debug("mDNS: could not resolve %s: %s", name, exc)
            return
        short = _short_type(service_type)
        instance = name[: -len(service_type) - 1] if name.endswith("." + service_type) else name
        for address in info.parsed_addresses(IPVersion.V4Only):
            host = self.hosts.setdefault(address, _Host())
            host.services.setdefault(short, int(info.port or 0))
            host.names.setdefault(short, clean_value(instance))
            if info.server and not host.hostname:
                host.hostname = clean_value(info.server.rstrip("."))
            for raw_key, raw_value in (info.properties or {}).items():
                key = clean_key(raw_key.decode("utf-8", "replace").lower()) if isinstance(raw_key, bytes) else None
                if key is None or key in host.txt or len(host.txt) >= MAX_TXT_KEYS:
                    continue
                value = raw_value.decode("utf-8", "replace") if isinstance(raw_value, bytes) else ""
                host.txt[key] = clean_value(value, limit=MAX_TXT_VALUE)

    def observations(self) -> list[Observation]:
        order = {t: i for i, t in enumerate(self.priority)}
        result = []
        for address, host in self.hosts.items():
            types = sorted(host.services, key=lambda t: (order.get(t, len(order)), t))
            fields = {
                "services": " ".join(types),
                "service_ports": " ".join(f"{t}:{host.services[t]}" for t in types),
                "name": host.names.get(types[0], "") if types else "",
                "hostname": host.hostname,
            }
            fields = {key: value for key, value in fields.items() if value}
            for key, value in list(host.txt.items())[:MAX_FIELDS]:
                fields[f"txt.{key}"] = value
            mac = normalise_mac(host.txt.get("macaddress", "") or host.txt.get("mac", ""))
            if mac:
                fields["mac"] = mac
            result.append(Observation(ip=address, source=SOURCE, port=MDNS_PORT, transport="udp", fields=fields))
        return result


async def discover(ctx: NetContext, *, timeout: float, service_types: list[str] | None = None) -> list[Observation]:
    """Browse ``service_types`` (default: ``DEFAULT_SERVICE_TYPES``) for ``timeout`` seconds on the
    interface ``ctx.options.source_ip``; one Observation per IPv4 address that answered."""
    types = [_short_type(_fqdn_type(t)) for t in (service_types or DEFAULT_SERVICE_TYPES)]
    source_ip = ctx.options.source_ip
    try:
        aiozc = AsyncZeroconf(interfaces=[source_ip] if source_ip else InterfaceChoice.Default,
                              ip_version=IPVersion.V4Only)
    except OSError as exc:
        log.warning("mDNS discovery: cannot open the mDNS socket: %s", exc)
        return []
    resolver = _Resolver(aiozc, types, time.monotonic() + timeout)
    browser: AsyncServiceBrowser | None = None
    try:
        await ctx.limiter.acquire()  # zeroconf paces its own queries; this counts the browse once
        browser = AsyncServiceBrowser(aiozc.zeroconf, [_fqdn_type(t) for t in types], handlers=[resolver.on_change])
        await asyncio.sleep(max(0.0, resolver.deadline - time.monotonic()))
        for task in list(resolver.tasks):
            task.cancel()
        await asyncio.gather(*resolver.tasks, return_exceptions=True)
    finally:
        with contextlib.suppress(Exception):
            if browser is not None:
                await asyncio.wait_for(browser.async_cancel(), CLOSE_TIMEOUT)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(aiozc.async_close(), CLOSE_TIMEOUT)
    return resolver.observations()
