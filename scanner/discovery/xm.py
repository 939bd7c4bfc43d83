"""Xiongmai (XMEye / NETSurveillance "Sofia") discovery over UDP 34569 (protocols.md §4.3).

Sent: a bare 20-byte header (no body), broadcast to 255.255.255.255:34569 and unicast to each live
host's port 34569. The header is ``struct "<BBHIIHHI"``, little-endian::

    offset 0   u8   0xFF        head
    offset 1   u8   0           version
    offset 2   u16  0           reserved
    offset 4   u32  0           session id
    offset 8   u32  0           sequence number
    offset 12  u16  0           channel / packet flags
    offset 14  u16  1530        message id (discovery request)
    offset 16  u32  0           body length

Parsed: the same header with message id 1531, then a JSON body ending in ``\\n\\0``::

    {"NetWork.NetCommon": {"HostName", "HttpPort", "MAC", "SN", "TCPPort" (34567), "UDPPort",
                           "SSLPort", "HostIP" ("0x0A01A8C0": little-endian hex), …},
     "Name": "NetWork.NetCommon", "Ret": 100, "SessionID": "0x00000000"}

Normalised fields: mac, serial (SN), hostname (HostName), http_port (HttpPort), tcp_port (TCPPort),
firmware (Version, when the firmware sends it), xm.<key> for every NetCommon key.
"""

from __future__ import annotations

import json
import logging
import struct

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

SOURCE = "xm"
XM_BROADCAST = "255.255.255.255"
XM_PORT = 34569
# head u8, version u8, reserved u16, session u32, sequence u32, channel/flags u16, msg id u16, length u32
HEADER = struct.Struct("<BBHIIHHI")
HEAD_MAGIC = 0xFF
MSG_DISCOVERY_REQUEST = 1530
MSG_DISCOVERY_REPLY = 1531
NET_COMMON = "NetWork.NetCommon"

_COPIED = {
    "SN": "serial",
    "HostName": "hostname",
    "HttpPort": "http_port",
    "TCPPort": "tcp_port",
    "Version": "firmware",
}


def build_probe(sequence: int = 0) -> bytes:
    """The discovery request: the 20-byte header with message id 1530 and no body (§4.3)."""
    return HEADER.pack(
        HEAD_MAGIC,  # head
        0,  # version
        0,  # reserved
        0,  # session id
        sequence,  # sequence number
        0,  # channel / packet flags
        MSG_DISCOVERY_REQUEST,  # message id
        0,  # body length
    )


@never_raises(SOURCE, XM_PORT)
def parse_reply(data: bytes, ip: str) -> Observation | None:
    """A 1531 reply -> Observation; None for empty data or a 1530 request (another client's search)."""
    if not data:
        return None
    if len(data) < HEADER.size:
        return protocol_error(ip, SOURCE, XM_PORT, data, f"shorter than the {HEADER.size}-byte header")
    head, _version, _reserved, _session, _sequence, _flags, msg_id, length = HEADER.unpack_from(data)
    if head != HEAD_MAGIC:
        return protocol_error(ip, SOURCE, XM_PORT, data, f"head byte 0x{head:02x}, not 0xff")
    if msg_id == MSG_DISCOVERY_REQUEST:
        return None
    body = data[HEADER.size:HEADER.size + length]
    text = body.split(b"\x00", 1)[0].decode("utf-8", "replace").strip()
    try:
        message, _end = json.JSONDecoder().raw_decode(text)
    except (ValueError, RecursionError) as exc:
        return protocol_error(ip, SOURCE, XM_PORT, data, f"message {msg_id}: body is not JSON: {exc}"[:200])
    common = message.get(NET_COMMON) if isinstance(message, dict) else None
    if not isinstance(common, dict):
        return protocol_error(ip, SOURCE, XM_PORT, data, f"message {msg_id} without {NET_COMMON}")

    raw: dict[str, str] = {}
    for key, value in common.items():
        name = clean_key(str(key))
        if name is None or len(raw) >= MAX_FIELDS:
            continue
        raw[name] = clean_value(value) if not isinstance(value, dict | list) else "[structure]"
    fields: dict[str, str] = {}
    for key, target in _COPIED.items():
        if raw.get(key):
            fields[target] = raw[key]
    mac = normalise_mac(raw.get("MAC", ""))
    if mac:
        fields["mac"] = mac
    fields.update({f"xm.{key}": value for key, value in raw.items()})
    return Observation(ip=ip, source=SOURCE, port=XM_PORT, transport="udp", fields=fields,
                       raw=excerpt(body[:RAW_EXCERPT]))


async def discover(ctx: NetContext, hosts: list[str], *, multicast: bool, timeout: float) -> list[Observation]:
    """Msg 1530 broadcast to 255.255.255.255:34569 (when ``multicast``) and to every host; replies until ``timeout``."""
    probe = build_probe()
    return await udp_discovery(
        ctx,
        source=SOURCE,
        parse=parse_reply,
        multicast_probes=[Probe(probe, XM_BROADCAST, XM_PORT)],
        unicast_probes=lambda host: [Probe(probe, host, XM_PORT)],
        hosts=hosts,
        multicast=multicast,
        timeout=timeout,
        broadcast=True,
    )
