"""SSDP (UDP 1900) and the UPnP device description, for any lab device that speaks UPnP.

protocols.md §7: ``M-SEARCH * HTTP/1.1`` with ``MAN: "ssdp:discover"``, ``ST`` and ``MX`` is
answered unicast, after a random delay of at most MX seconds (capped at 2 s in the lab), with
``CACHE-CONTROL``, ``EXT``, ``LOCATION`` (the description XML URL), ``SERVER``, ``ST`` and ``USN``.
``ssdp:all`` gets one answer per advertised target (root device, UDN, device type). In netns mode
the device also multicasts ``NOTIFY ssdp:alive`` at start and every 15 minutes. Anything that is
not a well-formed M-SEARCH is dropped without a reply.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from email.utils import formatdate
from xml.sax.saxutils import escape

from scanner.lab.runtime.httpserver import Request, Response, Router
from scanner.lab.runtime.node import Node, UdpEndpoint

SSDP_GROUP = "239.255.255.250"
SSDP_PORT = 1900
MX_CAP_S = 2.0  # the lab answers within 2 s whatever MX says, so scans stay fast
MAX_AGE_S = 1800
NOTIFY_INTERVAL_S = 900.0
MAX_DATAGRAM = 8192
UPNP_DEVICE_NS = "urn:schemas-upnp-org:device-1-0"


@dataclass
class UpnpDescription:
    """The fields of a UPnP root device description (``urn:schemas-upnp-org:device-1-0``)."""

    device_type: str  # e.g. "urn:schemas-upnp-org:device:Basic:1"
    friendly_name: str
    manufacturer: str
    manufacturer_url: str
    model_description: str
    model_name: str
    model_number: str
    model_url: str
    serial_number: str
    udn: str  # "uuid:..."
    presentation_url: str
    extra: list[tuple[str, str]] = field(default_factory=list)  # vendor elements inside <device>

    def to_xml(self) -> str:
        """The description document as served at LOCATION."""
        fields = [
            ("deviceType", self.device_type),
            ("friendlyName", self.friendly_name),
            ("manufacturer", self.manufacturer),
            ("manufacturerURL", self.manufacturer_url),
            ("modelDescription", self.model_description),
            ("modelName", self.model_name),
            ("modelNumber", self.model_number),
            ("modelURL", self.model_url),
            ("serialNumber", self.serial_number),
            ("UDN", self.udn),
            *self.extra,
            ("presentationURL", self.presentation_url),
        ]
        inner = "".join(f"<{name}>{escape(value)}</{name}>\r\n" for name, value in fields)
        return (
            '<?xml version="1.0"?>\r\n'
            f'<root xmlns="{UPNP_DEVICE_NS}">\r\n'
            "<specVersion>\r\n<major>1</major>\r\n<minor>0</minor>\r\n</specVersion>\r\n"
            f"<device>\r\n{inner}</device>\r\n</root>\r\n"
        )


def mount_description(router: Router, description: UpnpDescription, path: str = "/description.xml") -> None:
    """Serve ``description`` as ``text/xml`` at ``path`` on a device's HTTP router."""

    def handler(_req: Request) -> Response:
        return Response(200, description.to_xml(), content_type='text/xml; charset="utf-8"')

    router.get(path, handler)


@dataclass
class MSearch:
    """A parsed M-SEARCH request."""

    st: str
    mx: float


def parse_msearch(data: bytes) -> MSearch | None:
    """Parse an M-SEARCH datagram; None for anything else (NOTIFY, responses, garbage).

    MX is optional (unicast M-SEARCH, UPnP 1.1); a present but non-integer or negative MX makes
    the request invalid, as UPnP asks devices to silently discard those.
    """
    if len(data) > MAX_DATAGRAM:
        return None
    text = data.decode("latin-1")
    lines = text.replace("\r\n", "\n").split("\n")
    if lines[0].strip().upper() != "M-SEARCH * HTTP/1.1":
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if headers.get("man", "").strip('"').lower() != "ssdp:discover":
        return None
    st = headers.get("st", "")
    if not st:
        return None
    mx_text = headers.get("mx")
    mx = 0.0
    if mx_text is not None:
        if not (mx_text.isascii() and mx_text.isdigit()):
            return None
        mx = float(mx_text)
    return MSearch(st=st, mx=mx)


class SsdpResponder:
    """Answers M-SEARCH for one root device and (netns mode) announces it with NOTIFY."""

    def __init__(self, node: Node, description: UpnpDescription, *, server: str, http_port: int = 80,
                 path: str = "/description.xml") -> None:
        self.node = node
        self.description = description
        self.server = server
        self.location = f"http://{node.spec.ip}:{http_port}{path}"
        self.endpoint: UdpEndpoint | None = None

    def targets(self) -> list[tuple[str, str]]:
        """Every (ST/NT, USN) pair this device advertises."""
        udn = self.description.udn
        return [
            ("upnp:rootdevice", f"{udn}::upnp:rootdevice"),
            (udn, udn),
            (self.description.device_type, f"{udn}::{self.description.device_type}"),
        ]

    def matching(self, st: str) -> list[tuple[str, str]]:
        if st.lower() == "ssdp:all":
            return self.targets()
        return [(t, usn) for t, usn in self.targets() if t.lower() == st.lower()]

    def response(self, st: str, usn: str) -> bytes:
        """One M-SEARCH answer (an HTTP 200 over UDP)."""
        return (
            "HTTP/1.1 200 OK\r\n"
            f"CACHE-CONTROL: max-age={MAX_AGE_S}\r\n"
            f"DATE: {formatdate(usegmt=True)}\r\n"
            "EXT:\r\n"
            f"LOCATION: {self.location}\r\n"
            f"SERVER: {self.server}\r\n"
            f"ST: {st}\r\n"
            f"USN: {usn}\r\n"
            "\r\n"
        ).encode()

    def notify(self, nt: str, usn: str) -> bytes:
        """One ``NOTIFY ssdp:alive`` announcement."""
        return (
            "NOTIFY * HTTP/1.1\r\n"
            f"HOST: {SSDP_GROUP}:{SSDP_PORT}\r\n"
            f"CACHE-CONTROL: max-age={MAX_AGE_S}\r\n"
            f"LOCATION: {self.location}\r\n"
            f"NT: {nt}\r\n"
            "NTS: ssdp:alive\r\n"
            f"SERVER: {self.server}\r\n"
            f"USN: {usn}\r\n"
            "\r\n"
        ).encode()

    async def start(self) -> None:
        """Listen on UDP 1900 (joined to the SSDP group in netns mode) and announce."""
        self.endpoint = await self.node.udp(SSDP_PORT, self.on_datagram, group=SSDP_GROUP)
        if self.node.netns:
            self.announce()
            self.node.every(NOTIFY_INTERVAL_S, self._announce_async, first=NOTIFY_INTERVAL_S)

    def announce(self) -> None:
        """Multicast NOTIFY ssdp:alive for every target (netns mode only)."""
        if self.endpoint is None or not self.node.netns:
            return
        for nt, usn in self.targets():
            self.endpoint.send(self.notify(nt, usn), (SSDP_GROUP, self.node.port(SSDP_PORT)))
        self.node.bump("ssdp_notifies")

    async def _announce_async(self) -> None:
        self.announce()

    def on_datagram(self, data: bytes, addr: tuple[str, int], endpoint: UdpEndpoint) -> None:
        search = parse_msearch(data)
        if search is None:
            return
        answers = self.matching(search.st)
        if not answers:
            return
        self.node.bump("ssdp_searches")
        delay = self.node.rng.uniform(0.0, min(search.mx, MX_CAP_S))

        async def reply() -> None:
            await asyncio.sleep(delay)
            for st, usn in answers:
                endpoint.send(self.response(st, usn), addr)

        self.node.spawn(reply())
