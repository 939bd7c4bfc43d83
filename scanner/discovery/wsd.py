"""ONVIF WS-Discovery over UDP 3702 (protocols.md §5.1).

Sent: SOAP 1.2 ``Probe`` envelopes (WS-Addressing 2004/08, WS-Discovery 2005/04), one with
``<d:Types>dn:NetworkVideoTransmitter</d:Types>`` (the legacy type most cameras still list) and
one with ``tds:Device`` (the type ONVIF Core requires), each sent twice (SOAP-over-UDP repetition,
perf_style.md A.3) to 239.255.255.250:3702 and to every live host's port 3702. A probe lists a
single type because a Target matches only when it has *all* the probed types.

Parsed: ``ProbeMatches`` (and ``Hello``, the same shape), namespace prefixes ignored::

    wsa:EndpointReference/wsa:Address   urn:uuid:…                     -> endpoint
    d:Types                             dn:NetworkVideoTransmitter …    -> types
    d:Scopes                            onvif://www.onvif.org/…  …      -> scopes (space-joined)
    d:XAddrs                            http://<ip>/onvif/device_service -> xaddrs

and from the scopes (URL-decoded: ``name/HIKVISION%20DS-2CD2386G2-IU`` -> ``HIKVISION DS-2CD2386G2-IU``):
``name`` (…/name/…, usually the vendor), ``hardware`` (…/hardware/…, usually the model),
``location``, ``mac`` (…/MacAddress/…), ``serial`` (…/SerialNumber/…). A SOAP fault (e.g.
``MatchingRuleNotSupported``) is an answer, reported with status ``protocol-error``. Large
ProbeMatches split over two datagrams are reassembled by the collector.
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import unquote
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET

from scanner.discovery import (
    RAW_EXCERPT,
    Probe,
    clean_value,
    never_raises,
    normalise_mac,
    protocol_error,
    udp_discovery,
)
from scanner.net import NetContext
from scanner.observations import Observation, excerpt

log = logging.getLogger(__name__)

SOURCE = "wsd"
WSD_GROUP = "239.255.255.250"
WSD_PORT = 3702
PROBE_TYPES = ("dn:NetworkVideoTransmitter", "tds:Device")
SEND_COUNT = 2  # each probe goes out twice (SOAP-over-UDP)
ONVIF_SCOPE_PREFIX = "onvif://www.onvif.org/"
MAX_SCOPES_TEXT = 4096  # characters of the scope list kept
# scope category (lower-case) -> normalised field
_SCOPE_FIELDS = {"name": "name", "hardware": "hardware", "location": "location", "macaddress": "mac",
                 "serialnumber": "serial"}

_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"'
    ' xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"'
    ' xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"'
    ' xmlns:dn="http://www.onvif.org/ver10/network/wsdl"'
    ' xmlns:tds="http://www.onvif.org/ver10/device/wsdl">'
    "<s:Header>"
    "<a:MessageID>{message_id}</a:MessageID>"
    '<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>'
    '<a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>'
    "</s:Header>"
    "<s:Body><d:Probe><d:Types>{types}</d:Types></d:Probe></s:Body>"
    "</s:Envelope>"
)


def build_probe(types: str = "dn:NetworkVideoTransmitter", message_id: str | None = None) -> bytes:
    """A SOAP 1.2 WS-Discovery Probe for ``types`` (§5.1); repeats must reuse the ``message_id``."""
    return _ENVELOPE.format(message_id=message_id or f"uuid:{uuid.uuid4()}", types=types).encode()


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _find(root: Element, name: str) -> Element | None:
    """First descendant (or self) whose local name is ``name``."""
    for element in root.iter():
        if _local(element.tag) == name:
            return element
    return None


def _text(parent: Element | None, name: str) -> str:
    element = _find(parent, name) if parent is not None else None
    return " ".join((element.text or "").split()) if element is not None else ""


def decode_scopes(scopes: list[str]) -> dict[str, str]:
    """ONVIF scope categories -> fields: ``onvif://www.onvif.org/name/A%20B`` -> ``{"name": "A B"}``.

    The first scope of each category wins; values are URL-decoded; other schemes are ignored.
    """
    fields: dict[str, str] = {}
    for scope in scopes:
        if not scope.lower().startswith(ONVIF_SCOPE_PREFIX):
            continue
        category, _, value = scope[len(ONVIF_SCOPE_PREFIX):].partition("/")
        target = _SCOPE_FIELDS.get(category.lower())
        if target is None or not value or target in fields:
            continue
        decoded = clean_value(unquote(value.rstrip("/")))
        if target == "mac":
            decoded = normalise_mac(decoded) or ""
        if decoded:
            fields[target] = decoded
    return fields


def _bounded_scopes(scopes: list[str]) -> str:
    kept: list[str] = []
    size = 0
    for scope in scopes:
        size += len(scope) + 1
        if size > MAX_SCOPES_TEXT:
            break
        kept.append(scope)
    return " ".join(kept)


@never_raises(SOURCE, WSD_PORT)
def parse_reply(data: bytes, ip: str) -> Observation | None:
    """A ProbeMatches (or Hello) envelope -> Observation; None for empty data or another client's Probe."""
    if not data.strip(b" \t\r\n\x00"):
        return None
    try:
        root = SafeET.fromstring(data)
    except (SafeET.ParseError, ValueError) as exc:  # defusedxml's DTD/entity refusals are ValueErrors
        return protocol_error(ip, SOURCE, WSD_PORT, data, f"not XML: {type(exc).__name__}: {exc}"[:200])
    action = _text(root, "Action")
    if action.endswith("/Probe") or _find(root, "Probe") is not None:
        return None
    match = _find(root, "ProbeMatch")
    if match is None:
        match = _find(root, "Hello")
    if match is None:
        fault = _find(root, "Fault")
        if fault is not None:
            reason = _text(fault, "Text") or _text(fault, "Value") or _text(fault, "faultstring")
            return protocol_error(ip, SOURCE, WSD_PORT, data, f"SOAP fault: {reason}"[:200])
        return protocol_error(ip, SOURCE, WSD_PORT, data, f"no ProbeMatch (root <{_local(root.tag)[:64]}>)")

    reference = _find(match, "EndpointReference")
    scopes = _text(match, "Scopes").split()
    fields: dict[str, str] = {
        "endpoint": clean_value(_text(reference, "Address")),
        "types": clean_value(_text(match, "Types")),
        "scopes": clean_value(_bounded_scopes(scopes), limit=MAX_SCOPES_TEXT),
        "xaddrs": clean_value(_text(match, "XAddrs"), limit=2048),
    }
    fields = {key: value for key, value in fields.items() if value}
    fields.update(decode_scopes(scopes))
    return Observation(ip=ip, source=SOURCE, port=WSD_PORT, transport="udp", fields=fields,
                       raw=excerpt(data[:RAW_EXCERPT]))


async def discover(ctx: NetContext, hosts: list[str], *, multicast: bool, timeout: float) -> list[Observation]:
    """Probes for each of ``PROBE_TYPES``, twice, to 239.255.255.250:3702 (when ``multicast``) and every host."""
    probes = [build_probe(types) for types in PROBE_TYPES]  # one MessageID per type, reused by the repeat
    return await udp_discovery(
        ctx,
        source=SOURCE,
        parse=parse_reply,
        multicast_probes=[Probe(payload, WSD_GROUP, WSD_PORT) for payload in probes],
        unicast_probes=lambda host: [Probe(payload, host, WSD_PORT) for payload in probes],
        hosts=hosts,
        multicast=multicast,
        timeout=timeout,
        repeats=SEND_COUNT,
        reassemble=True,
    )
