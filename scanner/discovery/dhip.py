"""Dahua DHIP discovery over UDP 37810 (protocols.md §2.1).

Sent: the 32-byte DHIP header followed by a JSON body, to the multicast group
239.255.255.251:37810 and unicast to each live host's port 37810::

    offset 0x00  u32 LE   0x00000020       header length (32)
    offset 0x04  4 bytes  "DHIP"           magic
    offset 0x08  8 bytes  zero             reserved (session/id in TCP DHIP)
    offset 0x10  u32 LE   body length
    offset 0x14  u32      0
    offset 0x18  u32 LE   body length      (repeated)
    offset 0x1C  u32      0
    body         {"method":"DHDiscover.search","params":{"mac":"","uni":1}}\\n

Parsed: the same header, then ``{"mac": …, "method": "client.notifyDevInfo", "params":
{"deviceInfo": {…}}}`` -- often followed by NUL and/or newline bytes, which are ignored (the JSON
is read with ``raw_decode``, so trailing bytes never matter). Normalised fields:

    model         DeviceType        (e.g. IPC-HDW5421S; OEMs put their own model here)
    serial        SerialNo
    mac           top-level "mac" (or deviceInfo.MAC), lower-case colon form
    firmware      Version           (e.g. 2.800.0000016.0.R)
    device_class  DeviceClass       (IPC, NVR, VTO, VTH, …)
    vendor_raw    Vendor            ("General", "Dahua", "Lorex", …; not a verdict)
    http_port     HttpPort
    dhip.<k>      every deviceInfo key (nested objects flattened with dots, e.g. dhip.IPv4Address.IPAddress)
"""

from __future__ import annotations

import json
import logging
import struct
from typing import Any

from scanner.discovery import (
    MAX_FIELDS,
    RAW_EXCERPT,
    Probe,
    clean_key,
    clean_value,
    never_raises,
    normalise_mac,
    protocol_error,
    udp_discovery,
)
from scanner.net import NetContext
from scanner.observations import Observation, excerpt

log = logging.getLogger(__name__)

SOURCE = "dhip"
DHIP_GROUP = "239.255.255.251"
DHIP_PORT = 37810
DHIP_MAGIC = b"DHIP"
# u32 header length, "DHIP", 8 reserved bytes, u32 body length, u32 0, u32 body length, u32 0
HEADER = struct.Struct("<I4s8xIIII")
SEARCH_METHOD = "DHDiscover.search"
MAX_DEPTH = 3  # nested deviceInfo objects flattened this deep

_COPIED = {
    "DeviceType": "model",
    "SerialNo": "serial",
    "Version": "firmware",
    "DeviceClass": "device_class",
    "Vendor": "vendor_raw",
    "HttpPort": "http_port",
}


def build_probe(uni: int = 1) -> bytes:
    """``DHDiscover.search`` in DHIP framing (§2.1), with ConfigTool's trailing newline."""
    body = json.dumps({"method": SEARCH_METHOD, "params": {"mac": "", "uni": uni}},
                      separators=(",", ":")).encode() + b"\n"
    return HEADER.pack(HEADER.size, DHIP_MAGIC, len(body), 0, len(body), 0) + body


def _flatten(prefix: str, value: Any, out: dict[str, str], depth: int = 0) -> None:
    """``{"IPv4Address": {"IPAddress": …}}`` -> ``dhip.IPv4Address.IPAddress``; bounded in count and depth."""
    if len(out) >= MAX_FIELDS:
        return
    if isinstance(value, dict) and depth < MAX_DEPTH:
        for key, sub in value.items():
            name = clean_key(str(key))
            if name is not None:
                _flatten(f"{prefix}.{name}" if prefix else name, sub, out, depth + 1)
    elif isinstance(value, dict | list):
        try:
            out[prefix] = clean_value(json.dumps(value, separators=(",", ":")))
        except (ValueError, RecursionError):
            out[prefix] = "[unreadable]"
    else:
        out[prefix] = clean_value(value)


@never_raises(SOURCE, DHIP_PORT)
def parse_reply(data: bytes, ip: str) -> Observation | None:
    """A ``client.notifyDevInfo`` datagram -> Observation; None for empty data or a search request."""
    if not data:
        return None
    if len(data) < HEADER.size or data[4:8] != DHIP_MAGIC:
        return protocol_error(ip, SOURCE, DHIP_PORT, data, "no DHIP header")
    _header_len, _magic, declared, _zero1, _declared_again, _zero2 = HEADER.unpack_from(data)
    body = data[HEADER.size:HEADER.size + declared]  # a short datagram gives what it has
    text = body.decode("utf-8", "replace").lstrip("\x00 \t\r\n")
    try:
        message, _end = json.JSONDecoder().raw_decode(text)  # trailing "\n\0" is ignored
    except (ValueError, RecursionError) as exc:
        return protocol_error(ip, SOURCE, DHIP_PORT, data, f"body is not JSON: {exc}"[:200])
    if not isinstance(message, dict):
        return protocol_error(ip, SOURCE, DHIP_PORT, data, "body is not a JSON object")
    if message.get("method") == SEARCH_METHOD:
        return None  # another client's search, not an answer
    params = message.get("params")
    info = params.get("deviceInfo") if isinstance(params, dict) else None
    if not isinstance(info, dict):
        return protocol_error(ip, SOURCE, DHIP_PORT, data, "no params.deviceInfo object")

    raw: dict[str, str] = {}
    _flatten("", info, raw)
    fields: dict[str, str] = {}
    for key, target in _COPIED.items():
        if raw.get(key):
            fields[target] = raw[key]
    mac = normalise_mac(clean_value(message.get("mac", ""))) or normalise_mac(raw.get("MAC", ""))
    if mac:
        fields["mac"] = mac
    fields.update({f"dhip.{key}": value for key, value in raw.items()})
    return Observation(ip=ip, source=SOURCE, port=DHIP_PORT, transport="udp", fields=fields,
                       raw=excerpt(body[:RAW_EXCERPT]))


async def discover(ctx: NetContext, hosts: list[str], *, multicast: bool, timeout: float) -> list[Observation]:
    """DHIP search to 239.255.255.251:37810 (when ``multicast``) and to every host; replies until ``timeout``."""
    probe = build_probe()
    return await udp_discovery(
        ctx,
        source=SOURCE,
        parse=parse_reply,
        multicast_probes=[Probe(probe, DHIP_GROUP, DHIP_PORT)],
        unicast_probes=lambda host: [Probe(probe, host, DHIP_PORT)],
        hosts=hosts,
        multicast=multicast,
        timeout=timeout,
    )
