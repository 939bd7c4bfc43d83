"""SSDP (UPnP discovery) over UDP 1900 (protocols.md §7).

Sent: ``M-SEARCH`` requests for ``ST: ssdp:all`` and ``ST: upnp:rootdevice``, to the multicast
group 239.255.255.250:1900 with ``MX: 2`` (responders wait a random 0..MX seconds, perf_style.md
A.3) and unicast to each live host's port 1900 without MX (UPnP 1.1: a unicast search is answered
at once)::

    M-SEARCH * HTTP/1.1
    HOST: 239.255.255.250:1900
    MAN: "ssdp:discover"
    MX: 2
    ST: ssdp:all

Parsed: the ``HTTP/1.1 200 OK`` answers (and ``NOTIFY * HTTP/1.1`` announcements, whose ``NT``
plays the part of ``ST``). Normalised fields: ``server`` (SERVER, e.g. ``Linux/4.9-axis1, UPnP/1.0,
Portable SDK for UPnP devices/1.6.22``), ``location`` (the description XML URL), ``usn``, ``st``
(every ST a device answered, space-joined), ``headers`` (the raw header block, bounded). The
description document at LOCATION is the UPnP probe's business, not discovery's.
"""

from __future__ import annotations

import logging

from scanner.discovery import (
    RAW_EXCERPT,
    Probe,
    clean_value,
    never_raises,
    protocol_error,
    udp_discovery,
)
from scanner.net import NetContext
from scanner.observations import Observation, excerpt

log = logging.getLogger(__name__)

SOURCE = "ssdp"
SSDP_GROUP = "239.255.255.250"
SSDP_PORT = 1900
SEARCH_TARGETS = ("ssdp:all", "upnp:rootdevice")
MULTICAST_MX = 2
MAX_MESSAGE = 8192  # an SSDP message is a few hundred bytes; anything longer is cut here
MAX_HEADERS = 64
MAX_HEADER_BLOCK = 1024  # characters of the raw header block kept in ``headers``


def build_probe(st: str = "ssdp:all", *, mx: int | None = MULTICAST_MX,
                host: str = f"{SSDP_GROUP}:{SSDP_PORT}") -> bytes:
    """One ``M-SEARCH`` (§7); ``mx=None`` for a unicast search (no MX header, UPnP 1.1)."""
    lines = ["M-SEARCH * HTTP/1.1", f"HOST: {host}", 'MAN: "ssdp:discover"']
    if mx is not None:
        lines.append(f"MX: {mx}")
    lines.append(f"ST: {st}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@never_raises(SOURCE, SSDP_PORT)
def parse_reply(data: bytes, ip: str) -> Observation | None:
    """An M-SEARCH answer or NOTIFY -> Observation; None for empty data or a search request."""
    if not data.strip():
        return None
    text = data[:MAX_MESSAGE].decode("utf-8", "replace")
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    start, _, header_block = head.partition("\n")
    start_parts = start.strip().split(None, 2)
    if start_parts[:1] == ["M-SEARCH"]:
        return None
    if len(start_parts) >= 2 and start_parts[0].upper().startswith("HTTP/"):
        if start_parts[1] != "200":
            return protocol_error(ip, SOURCE, SSDP_PORT, data, f"status {start_parts[1][:16]}")
        st_header = "st"
    elif start_parts[:1] == ["NOTIFY"]:
        st_header = "nt"
    else:
        return protocol_error(ip, SOURCE, SSDP_PORT, data, f"not an SSDP message: {start[:60]!r}")

    headers: dict[str, str] = {}
    for line in header_block.split("\n")[:MAX_HEADERS]:
        name, sep, value = line.partition(":")
        if sep and name.strip():
            headers.setdefault(name.strip().lower(), clean_value(value))
    fields = {
        "server": headers.get("server", ""),
        "location": headers.get("location", ""),
        "usn": headers.get("usn", ""),
        "st": headers.get(st_header, ""),
    }
    fields = {key: value for key, value in fields.items() if value}
    if not fields:
        return protocol_error(ip, SOURCE, SSDP_PORT, data, "no SERVER, LOCATION, USN or ST header")
    lines = [clean_value(line) for line in header_block.split("\n")[:MAX_HEADERS]]
    fields["headers"] = "\n".join(line for line in lines if line)[:MAX_HEADER_BLOCK]
    return Observation(ip=ip, source=SOURCE, port=SSDP_PORT, transport="udp", fields=fields,
                       raw=excerpt(data[:RAW_EXCERPT]))


async def discover(ctx: NetContext, hosts: list[str], *, multicast: bool, timeout: float) -> list[Observation]:
    """M-SEARCH (ssdp:all, upnp:rootdevice) to 239.255.255.250:1900 with MX 2 (when ``multicast``)
    and to every host; replies until ``timeout`` (give multicast at least MX + 0.5 s)."""
    multicast_probes = [Probe(build_probe(st), SSDP_GROUP, SSDP_PORT) for st in SEARCH_TARGETS]

    def unicast(host: str) -> list[Probe]:
        return [Probe(build_probe(st, mx=None, host=f"{host}:{SSDP_PORT}"), host, SSDP_PORT) for st in SEARCH_TARGETS]

    return await udp_discovery(
        ctx,
        source=SOURCE,
        parse=parse_reply,
        multicast_probes=multicast_probes,
        unicast_probes=unicast,
        hosts=hosts,
        multicast=multicast,
        timeout=timeout,
        merge_fields=frozenset({"st"}),
    )
