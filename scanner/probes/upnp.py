"""UPnP device description: GET the SSDP ``LOCATION`` URL of a device (protocols.md §7).

Sent: ONE ``GET`` of the description URL an SSDP answer or NOTIFY gave (``LOCATION``), and only
when that URL points at the device's own address: a LOCATION naming another host is refused
(status ``skipped``, nothing sent), so a spoofed or stale SSDP answer can never steer the scanner
to a third party.

Parsed (defusedxml; never raises): the root device of ``urn:schemas-upnp-org:device-1-0`` ->
fields ``upnp.deviceType``, ``upnp.friendlyName``, ``upnp.manufacturer``, ``upnp.manufacturerURL``,
``upnp.modelDescription``, ``upnp.modelName``, ``upnp.modelNumber``, ``upnp.serialNumber``,
``upnp.UDN``, ``upnp.presentationURL``, plus ``server``, ``status_code``, ``path``. Axis, for
example, answers manufacturer ``AXIS``, modelName ``AXIS M1014`` and the MAC as serialNumber.
Source ``upnp``.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from scanner.net import NetContext
from scanner.observations import Observation
from scanner.probes.http import (
    ProbeError,
    child_text,
    describe,
    failure,
    fetch,
    local_name,
    parse_xml,
    raw_excerpt,
    response_fields,
)

SOURCE = "upnp"
DEVICE_FIELDS = ("deviceType", "friendlyName", "manufacturer", "manufacturerURL", "modelDescription",
                 "modelName", "modelNumber", "serialNumber", "UDN", "presentationURL")


def _same_address(host: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(ip)
    except ValueError:
        return False


def parse_location(location_url: str, ip: str) -> tuple[int, str, bool] | str:
    """(port, path, tls) of a LOCATION on ``ip``, or the reason it is refused."""
    try:
        parts = urlsplit(location_url.strip())
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            return f"LOCATION is not an http(s) URL: {location_url[:80]!r}"
        if not _same_address(parts.hostname or "", ip):
            return f"LOCATION points at another host ({parts.hostname!r}), not {ip}"
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return f"LOCATION is not a valid URL: {location_url[:80]!r}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return port, path, scheme == "https"


def parse_description(data: bytes) -> dict[str, str]:
    """``upnp.*`` fields of the root device; empty when the document is not a UPnP description."""
    root = parse_xml(data)
    if root is None or local_name(root.tag) != "root":
        return {}
    device = next((child for child in root if local_name(child.tag) == "device"), None)
    if device is None:
        return {}
    fields: dict[str, str] = {}
    for name in DEVICE_FIELDS:
        value = child_text(device, name)
        if value:
            fields[f"upnp.{name}"] = value[:256]
    return fields


async def fetch_description(ctx: NetContext, ip: str, location_url: str) -> Observation:
    """GET ``location_url`` if it is on ``ip`` and parse the device description."""
    target = parse_location(location_url, ip)
    if isinstance(target, str):
        return Observation(ip, SOURCE, None, status="skipped", error=target)
    port, path, tls = target
    try:
        response = await fetch(ctx, ip, port, "GET", path, tls=tls)
    except ProbeError as err:
        return failure(ip, SOURCE, port, err, path)
    fields = response_fields(response, path)
    fields.pop("headers", None)
    description = parse_description(response.body) if response.status_code == 200 else {}
    fields.update(description)
    if response.status_code == 404:
        status, error = "not-found", response.note
    elif not description:
        status, error = "protocol-error", response.note or "no UPnP device description in the reply"
    else:
        status, error = "success", response.note
    return Observation(ip, SOURCE, port, status=status, fields=fields, raw=raw_excerpt(response, 1024), error=error)


async def probe(ctx: NetContext, ip: str, port: int, *, tls: bool = False,
                hints: dict[str, str] | None = None) -> list[Observation]:
    """The description at ``hints["location"]`` (from SSDP); without one nothing is sent (``skipped``)."""
    location = (hints or {}).get("location") or (hints or {}).get("upnp.location")
    if not location:
        return [Observation(ip, SOURCE, port, status="skipped", error="no SSDP LOCATION to fetch")]
    try:
        return [await fetch_description(ctx, ip, location)]
    except Exception as exc:  # defence in depth: a probe reports, it never raises
        return [Observation(ip, SOURCE, port, status="unknown-error", error=describe(exc))]
