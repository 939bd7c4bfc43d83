"""Uniview LAPI DeviceInfo: the digest challenge (and, on a device without auth, the identity) (protocols.md §3).

Sent: ONE ``GET /LAPI/V1.0/System/DeviceInfo`` without credentials. A Uniview device answers
401 with a digest challenge; the realm ``UNV`` seen in one public fingerprint test is UNCERTAIN
(§3), so the realm is reported as data, not trusted as proof. Unknown LAPI paths answer HTTP 599
with the ``Response`` envelope and ``ResponseCode 1`` (§3 quirk), which is itself a LAPI tell.

Parsed (never raises): ``status_code``, ``server``, ``realm``, ``auth_scheme``; the ``Response``
envelope (``lapi.response_code``, ``lapi.response_string``) and, when ``Data`` is present (a
device that answers without auth), ``model`` (DeviceModel), ``name`` (DeviceName), ``serial``
(SerialNumber), ``firmware`` (FirmwareVersion), ``manufacturer``, ``mac``. Status ``not-found``
on 404, ``success`` otherwise. Source ``lapi``.
"""

from __future__ import annotations

from scanner.net import NetContext
from scanner.observations import Observation
from scanner.probes import normalise_mac
from scanner.probes.http import (
    ProbeError,
    describe,
    failure,
    fetch,
    parse_json_object,
    raw_excerpt,
    response_fields,
)

SOURCE = "lapi"
DEVICE_INFO_PATH = "/LAPI/V1.0/System/DeviceInfo"
DATA_FIELDS = (
    ("DeviceModel", "model"),
    ("DeviceName", "name"),
    ("SerialNumber", "serial"),
    ("FirmwareVersion", "firmware"),
    ("Manufacturer", "manufacturer"),
)


def parse_lapi_envelope(data: bytes) -> dict[str, str]:
    """Fields from a LAPI ``{"Response": {...}}`` envelope; empty when the body is not one."""
    reply = parse_json_object(data)
    envelope = reply.get("Response") if reply is not None else None
    if not isinstance(envelope, dict):
        return {}
    fields: dict[str, str] = {}
    code = envelope.get("ResponseCode")
    if isinstance(code, int | str):
        fields["lapi.response_code"] = str(code)[:32]
    text = envelope.get("ResponseString")
    if isinstance(text, str):
        fields["lapi.response_string"] = text[:128]
    payload = envelope.get("Data")
    if isinstance(payload, dict):
        for key, name in DATA_FIELDS:
            value = payload.get(key)
            if isinstance(value, str) and value.strip():
                fields[name] = value.strip()[:256]
        mac = normalise_mac(str(payload.get("MAC", "")))
        if mac:
            fields["mac"] = mac
    return fields


async def lapi_device_info(ctx: NetContext, ip: str, port: int, *, tls: bool = False) -> Observation:
    """``GET /LAPI/V1.0/System/DeviceInfo`` without credentials; the 401 realm or the envelope."""
    try:
        response = await fetch(ctx, ip, port, "GET", DEVICE_INFO_PATH, tls=tls)
    except ProbeError as err:
        return failure(ip, SOURCE, port, err, DEVICE_INFO_PATH)
    fields = response_fields(response, DEVICE_INFO_PATH)
    fields.update(parse_lapi_envelope(response.body))
    status = "not-found" if response.status_code == 404 else "success"
    return Observation(ip, SOURCE, port, status=status, fields=fields, raw=raw_excerpt(response),
                       error=response.note)


async def probe(ctx: NetContext, ip: str, port: int, *, tls: bool = False,
                hints: dict[str, str] | None = None) -> list[Observation]:
    """LAPI DeviceInfo on ``port`` (the device's web port)."""
    try:
        return [await lapi_device_info(ctx, ip, port, tls=tls)]
    except Exception as exc:  # defence in depth: a probe reports, it never raises
        return [Observation(ip, SOURCE, port, status="unknown-error", error=describe(exc))]
