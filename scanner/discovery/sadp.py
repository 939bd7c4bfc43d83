"""Hikvision SADP discovery over UDP 37020 (protocols.md §1.1).

Sent: one small XML document, to the multicast group 239.255.255.250:37020 and unicast to each
live host's port 37020::

    <?xml version="1.0" encoding="utf-8"?>
    <Probe>
      <Uuid>9F1C...-UPPER-CASE-UUID</Uuid>      random per run, echoed by the device
      <Types>inquiry</Types>                    ("inquiry_v32" is a variant some tools add)
    </Probe>

Parsed: the ``<ProbeMatch>`` answer, a flat list of ``<Field>value</Field>`` children, often with
CRLF line endings. Normalised fields (see ``scanner.observations``):

    model            DeviceDescription   (e.g. DS-2CD2386G2-IU; *this* is the model string)
    serial           DeviceSN            (model + YYYYMMDD + batch + serial)
    mac              MAC                 (sent dash-separated, either case -> 44:b2:95:c4:01:31)
    firmware_raw     SoftwareVersion     as sent: "V5.5.800build 210628"
    firmware         SoftwareVersion     normalised: "V5.5.800 build 210628"
    device_type_code DeviceType          (numeric class code, meaning undocumented)
    analog_channels, digital_channels    AnalogChannelNum, DigitalChannelNum (NVR/DVR hint)
    http_port, command_port              HttpPort, CommandPort (the SDK port, usually 8000)
    activated                            Activated (lenient boolean)
    cloud.hik_connect_supported          SupportHCPlatform (lenient boolean; UNCERTAIN meaning)
    cloud.hik_connect_enabled            HCPlatformEnable  (lenient boolean; real firmware sends "flase")
    sadp.<Field>                         every raw field, as sent

Booleans are lenient: ``true``/``false`` in any case, ``1``/``0``, and the ``flase`` typo of real
firmware (= false). Anything unreadable becomes an Observation with status ``protocol-error``.
"""

from __future__ import annotations

import logging
import re
import uuid
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET

from scanner.discovery import (
    MAX_FIELDS,
    RAW_EXCERPT,
    Probe,
    clean_key,
    clean_value,
    lenient_bool,
    never_raises,
    normalise_mac,
    protocol_error,
    udp_discovery,
)
from scanner.net import NetContext
from scanner.observations import Observation, excerpt

log = logging.getLogger(__name__)

SOURCE = "sadp"
SADP_GROUP = "239.255.255.250"
SADP_PORT = 37020

# Raw field -> normalised field name, copied as sent (after trimming).
_COPIED = {
    "DeviceDescription": "model",
    "DeviceSN": "serial",
    "SoftwareVersion": "firmware_raw",
    "DeviceType": "device_type_code",
    "AnalogChannelNum": "analog_channels",
    "DigitalChannelNum": "digital_channels",
    "HttpPort": "http_port",
    "CommandPort": "command_port",
}
# Raw boolean field -> normalised field name, value "true"/"false" (lenient).
_BOOLEANS = {
    "Activated": "activated",
    "SupportHCPlatform": "cloud.hik_connect_supported",
    "HCPlatformEnable": "cloud.hik_connect_enabled",
}
# "V5.5.800build 210628", "V5.5.800 build 210628", "V1.0Build 200101"
_FIRMWARE = re.compile(r"(?P<version>V?\d+(?:\.\d+)*)\s*build\s*(?P<build>\d+)", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)


def build_probe(probe_uuid: str | None = None, types: str = "inquiry") -> bytes:
    """The SADP ``<Probe>`` inquiry (§1.1); a fresh upper-case UUID unless one is given."""
    probe_uuid = probe_uuid or str(uuid.uuid4()).upper()
    return (f'<?xml version="1.0" encoding="utf-8"?>'
            f"<Probe><Uuid>{probe_uuid}</Uuid><Types>{types}</Types></Probe>").encode()


def normalise_firmware(raw: str) -> str:
    """``V5.5.800build 210628`` -> ``V5.5.800 build 210628`` (the ISAPI spelling); else as sent."""
    match = _FIRMWARE.fullmatch(raw.strip())
    if match is None:
        return raw.strip()
    return f"{match['version']} build {match['build']}"


def _local(tag: object) -> str:
    """Tag name without ``{namespace}`` (non-string tags -- comments, PIs -- give "")."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _parse_xml(data: bytes) -> Element:
    """Parse through defusedxml; firmware sending non-UTF-8 bytes gets a second, lenient try."""
    root: Element
    try:
        root = SafeET.fromstring(data)
    except SafeET.ParseError:
        text = _XML_DECLARATION.sub("", data.decode("utf-8", "replace"), count=1)
        root = SafeET.fromstring(text)
    return root


@never_raises(SOURCE, SADP_PORT)
def parse_reply(data: bytes, ip: str) -> Observation | None:
    """A ``<ProbeMatch>`` -> Observation; None for empty data or a ``<Probe>`` (another client's inquiry)."""
    if not data.strip(b" \t\r\n\x00"):
        return None
    try:
        root = _parse_xml(data)
    except (SafeET.ParseError, ValueError) as exc:  # defusedxml's DTD/entity refusals are ValueErrors
        return protocol_error(ip, SOURCE, SADP_PORT, data, f"not XML: {type(exc).__name__}: {exc}"[:200], exc=exc)
    root_name = _local(root.tag)
    if root_name == "Probe":
        return None
    if root_name != "ProbeMatch":
        return protocol_error(ip, SOURCE, SADP_PORT, data, f"unexpected root element <{root_name[:64]}>")

    raw: dict[str, str] = {}
    for child in root:
        name = clean_key(_local(child.tag))
        if name is None:
            continue
        if len(child):  # a nested block: one level, as Parent.Child
            for grandchild in child:
                sub = clean_key(_local(grandchild.tag))
                if sub is not None and len(raw) < MAX_FIELDS:
                    raw.setdefault(f"{name}.{sub}", clean_value(grandchild.text))
        elif len(raw) < MAX_FIELDS:
            raw.setdefault(name, clean_value(child.text))

    fields: dict[str, str] = {}
    for key, target in _COPIED.items():
        if raw.get(key):
            fields[target] = raw[key]
    if raw.get("SoftwareVersion"):
        fields["firmware"] = normalise_firmware(raw["SoftwareVersion"])
    mac = normalise_mac(raw.get("MAC", ""))
    if mac:
        fields["mac"] = mac
    for key, target in _BOOLEANS.items():
        value = lenient_bool(raw.get(key, ""))
        if value is not None:
            fields[target] = value
    fields.update({f"sadp.{key}": value for key, value in raw.items()})
    if not any(key in raw for key in ("DeviceSN", "MAC", "DeviceDescription", "IPv4Address")):
        return protocol_error(ip, SOURCE, SADP_PORT, data, "ProbeMatch without any device field")
    return Observation(ip=ip, source=SOURCE, port=SADP_PORT, transport="udp", fields=fields,
                       raw=excerpt(data[:RAW_EXCERPT]))


async def discover(ctx: NetContext, hosts: list[str], *, multicast: bool, timeout: float) -> list[Observation]:
    """SADP inquiry to 239.255.255.250:37020 (when ``multicast``) and to every host; replies until ``timeout``."""
    probe = build_probe()
    return await udp_discovery(
        ctx,
        source=SOURCE,
        parse=parse_reply,
        multicast_probes=[Probe(probe, SADP_GROUP, SADP_PORT)],
        unicast_probes=lambda host: [Probe(probe, host, SADP_PORT)],
        hosts=hosts,
        multicast=multicast,
        timeout=timeout,
    )
