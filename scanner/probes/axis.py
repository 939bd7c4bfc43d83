"""Axis VAPIX basic device information: the properties Axis serves without a login (protocols.md §4.3).

Sent: ONE ``POST /axis-cgi/basicdeviceinfo.cgi`` with the JSON body
``{"apiVersion":"1.0","method":"getAllUnrestrictedProperties"}`` -- a read-only query that VAPIX
answers without credentials (``getAllProperties`` would need a login and is never sent).

Parsed (never raises): ``data.propertyList`` -> fields ``vendor`` (Brand), ``model``
(ProdShortName, else ProdNbr), ``model_number`` (ProdNbr), ``firmware`` (Version), ``serial``
(SerialNumber; on Axis it is the MAC), ``device_type`` (ProdType as Axis words it, e.g. "Network
Camera": a hint, not a normalised type), ``hardware_id`` (HardwareID), ``name`` (ProdFullName).
A VAPIX error object gives ``vapix.error_code``. Status: ``success`` with properties,
``unauthorized`` on 401 (realm kept), ``not-found`` on 404, ``protocol-error`` otherwise.
Source ``vapix``.
"""

from __future__ import annotations

import json

from scanner.net import NetContext
from scanner.observations import Observation
from scanner.probes.http import (
    ProbeError,
    describe,
    failure,
    fetch,
    parse_json_object,
    raw_excerpt,
    response_fields,
)

SOURCE = "vapix"
BASIC_DEVICE_INFO_PATH = "/axis-cgi/basicdeviceinfo.cgi"
REQUEST = {"apiVersion": "1.0", "method": "getAllUnrestrictedProperties"}
PROPERTY_FIELDS = (
    ("Brand", "vendor"),
    ("ProdNbr", "model_number"),
    ("Version", "firmware"),
    ("SerialNumber", "serial"),
    ("ProdType", "device_type"),
    ("HardwareID", "hardware_id"),
    ("ProdFullName", "name"),
)


def parse_basic_device_info(data: bytes) -> tuple[dict[str, str], str | None]:
    """(fields, error) from a basicdeviceinfo reply; error is None when properties were read."""
    reply = parse_json_object(data)
    if reply is None:
        return {}, "the reply is not a JSON object"
    fields: dict[str, str] = {}
    error = reply.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        if isinstance(code, int | str):
            fields["vapix.error_code"] = str(code)[:32]
        return fields, f"VAPIX error: {str(error.get('message', ''))[:200]}"
    data_obj = reply.get("data")
    properties = data_obj.get("propertyList") if isinstance(data_obj, dict) else None
    if not isinstance(properties, dict):
        return fields, "no propertyList in the reply"
    for key, name in PROPERTY_FIELDS:
        value = properties.get(key)
        if isinstance(value, str) and value.strip():
            fields[name] = value.strip()[:256]
    model = properties.get("ProdShortName") or properties.get("ProdNbr")
    if isinstance(model, str) and model.strip():
        fields["model"] = model.strip()[:256]
    return fields, None


async def basic_device_info(ctx: NetContext, ip: str, port: int, *, tls: bool = False) -> Observation:
    """The unrestricted basicdeviceinfo properties (one POST, no credentials)."""
    body = json.dumps(REQUEST, separators=(",", ":")).encode()
    try:
        response = await fetch(ctx, ip, port, "POST", BASIC_DEVICE_INFO_PATH, tls=tls, body=body,
                               content_type="application/json")
    except ProbeError as err:
        return failure(ip, SOURCE, port, err, BASIC_DEVICE_INFO_PATH)
    fields = response_fields(response, BASIC_DEVICE_INFO_PATH)
    raw = raw_excerpt(response, 1024)
    if response.status_code == 401:
        return Observation(ip, SOURCE, port, status="unauthorized", fields=fields, raw=raw, error=response.note)
    if response.status_code == 404:
        return Observation(ip, SOURCE, port, status="not-found", fields=fields, raw=raw, error=response.note)
    properties, error = parse_basic_device_info(response.body)
    fields.update(properties)
    if error is not None:
        return Observation(ip, SOURCE, port, status="protocol-error", fields=fields, raw=raw,
                           error=response.note or error)
    return Observation(ip, SOURCE, port, status="success", fields=fields, raw=raw, error=response.note)


async def probe(ctx: NetContext, ip: str, port: int, *, tls: bool = False,
                hints: dict[str, str] | None = None) -> list[Observation]:
    """VAPIX basic device info on ``port`` (the camera's web port)."""
    try:
        return [await basic_device_info(ctx, ip, port, tls=tls)]
    except Exception as exc:  # defence in depth: a probe reports, it never raises
        return [Observation(ip, SOURCE, port, status="unknown-error", error=describe(exc))]
