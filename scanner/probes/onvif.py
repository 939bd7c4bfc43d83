"""ONVIF device service: the PRE_AUTH calls and ONE anonymous GetDeviceInformation (protocols.md §5.2-5.4).

Sent: SOAP 1.2 POSTs (``Content-Type: application/soap+xml; charset=utf-8; action="..."``), one
per connection, in this order, to ``/onvif/device_service`` (or the path of the device's own
XAddr from ``hints["xaddrs"]``, the space-separated WS-Discovery XAddrs):

1. ``GetSystemDateAndTime`` (PRE_AUTH) -- the device clock;
2. ``GetCapabilities`` with ``Category All`` (PRE_AUTH) -- is there an Analytics service;
3. ``GetServices`` with ``IncludeCapability false`` (PRE_AUTH) -- the service namespaces;
4. ``GetDeviceInformation`` ONCE, without any credentials (READ_SYSTEM: most devices refuse it,
   many cheap ones answer anyway, §5.2). Nothing is ever sent with a UsernameToken or digest.

If the first call gets no SOAP answer (refused, timed out, 404, not SOAP), nothing else is sent.

Parsed (defusedxml; never raises) into one Observation, source ``onvif``:

* ``server`` (HTTP Server header; Hikvision answers with ``App-webs/``, §5.2), ``path``;
* ``clock_skew_s`` = device UTC - local UTC in whole seconds, ``device_utc``, ``time_source``
  (``DateTimeType``: NTP/Manual);
* ``capabilities`` (the categories present), ``analytics.supported`` ("true" when GetCapabilities
  has an Analytics XAddr or GetServices lists the analytics namespace, §5.4), ``analytics.xaddr``,
  ``analytics.rule_support``, ``analytics.module_support``; ``namespaces`` (GetServices);
* from GetDeviceInformation when answered: ``manufacturer``, ``model``, ``firmware``, ``serial``,
  ``hardware_id``; ``device_info`` is "answered", "unauthorized", "fault" or "failed"; ``realm``
  and ``auth_scheme`` from a 401 challenge.

Status: ``success`` when GetDeviceInformation answered (or failed for a reason other than auth);
``unauthorized`` when it was refused (HTTP 401/403 or a ``ter:NotAuthorized`` fault, §5.3) --
the PRE_AUTH fields are present either way; ``not-found`` / ``protocol-error`` when the port has
no ONVIF service; a network status with empty fields when nothing answered at all.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

from scanner.net import NetContext
from scanner.observations import Observation, excerpt
from scanner.probes.http import (
    INTER_REQUEST_DELAY_S,
    HttpResponse,
    ProbeError,
    auth_fields,
    child_text,
    describe,
    failure,
    fetch,
    find_local,
    local_name,
    parse_xml,
)

SOURCE = "onvif"
DEFAULT_PATH = "/onvif/device_service"
SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
DEVICE_WSDL = "http://www.onvif.org/ver10/device/wsdl"
ANALYTICS_NAMESPACES = ("http://www.onvif.org/ver20/analytics/wsdl",)
MAX_NAMESPACES_FIELD = 2048
OPERATIONS = {
    "GetSystemDateAndTime": "<tds:GetSystemDateAndTime/>",
    "GetCapabilities": "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>",
    "GetServices": "<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>",
    "GetDeviceInformation": "<tds:GetDeviceInformation/>",
}
DEVICE_INFORMATION_FIELDS = (
    ("Manufacturer", "manufacturer"),
    ("Model", "model"),
    ("FirmwareVersion", "firmware"),
    ("SerialNumber", "serial"),
    ("HardwareId", "hardware_id"),
)


def soap_request(operation: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{SOAP_ENV}" xmlns:tds="{DEVICE_WSDL}">'
        f"<s:Body>{OPERATIONS[operation]}</s:Body></s:Envelope>"
    ).encode()


@dataclass
class SoapReply:
    response: HttpResponse
    body: Element | None  # the SOAP Body, None when the reply is not a SOAP envelope
    fault: str | None  # "code subcode: reason" of a SOAP fault
    unauthorized: bool


def parse_soap(response: HttpResponse) -> SoapReply:
    """Body and fault of a SOAP reply; 401/403 or a NotAuthorized fault mark it unauthorized."""
    root = parse_xml(response.body) if response.body else None
    body = None
    if root is not None and local_name(root.tag) == "Envelope":
        body = next((child for child in root if local_name(child.tag) == "Body"), None)
    fault_text: str | None = None
    not_authorized = False
    fault = find_local(body, "Fault") if body is not None else None
    if fault is not None:
        values = [(node.text or "").strip() for node in fault.iter() if local_name(node.tag) in ("Value", "faultcode")]
        reason = next(((node.text or "").strip() for node in fault.iter()
                       if local_name(node.tag) in ("Text", "faultstring") and (node.text or "").strip()), "")
        fault_text = (" ".join(v for v in values if v) + (f": {reason}" if reason else ""))[:256] or "SOAP fault"
        not_authorized = any("NotAuthorized" in v for v in values) or "not authorized" in reason.lower()
    unauthorized = response.status_code in (401, 403) or not_authorized
    return SoapReply(response, body, fault_text, unauthorized)


async def call(ctx: NetContext, ip: str, port: int, tls: bool, path: str, operation: str) -> SoapReply:
    """One SOAP 1.2 request on its own connection; raises ProbeError on network failure."""
    content_type = f'application/soap+xml; charset=utf-8; action="{DEVICE_WSDL}/{operation}"'
    response = await fetch(ctx, ip, port, "POST", path, tls=tls, body=soap_request(operation),
                           content_type=content_type)
    return parse_soap(response)


def service_path(hints: dict[str, str] | None, ip: str, port: int, tls: bool) -> str:
    """The path of the device's own XAddr (same address; same port preferred), else the default."""
    same_host: list[tuple[bool, str]] = []
    for url in (hints or {}).get("xaddrs", "").split():
        try:
            parts = urlsplit(url)
            xaddr_port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:
            continue
        if (parts.hostname or "").lower() != ip.lower() or not parts.path.startswith("/"):
            continue
        same_host.append((xaddr_port == port, parts.path))
    for same_port, path in same_host:
        if same_port:
            return path
    return same_host[0][1] if same_host else DEFAULT_PATH


def _int(element: Element | None, name: str) -> int | None:
    text = child_text(element, name) if element is not None else None
    return int(text) if text is not None and text.isascii() and text.isdigit() else None


def parse_date_time(body: Element) -> tuple[datetime | None, str | None]:
    """(device UTC time, DateTimeType) from a GetSystemDateAndTime response."""
    time_source = None
    system = find_local(body, "SystemDateAndTime")
    if system is not None:
        time_source = child_text(system, "DateTimeType")
    utc = find_local(body, "UTCDateTime")
    if utc is None:
        return None, time_source
    date, clock = find_local(utc, "Date"), find_local(utc, "Time")
    parts = [_int(date, "Year"), _int(date, "Month"), _int(date, "Day"),
             _int(clock, "Hour"), _int(clock, "Minute"), _int(clock, "Second")]
    if any(p is None for p in parts):
        return None, time_source
    year, month, day, hour, minute, second = (p or 0 for p in parts)
    try:
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC), time_source
    except (ValueError, OverflowError):
        return None, time_source


def parse_capabilities(body: Element) -> dict[str, str]:
    capabilities = find_local(body, "Capabilities")
    if capabilities is None:
        return {}
    categories = [local_name(child.tag) for child in capabilities]
    fields = {"capabilities": " ".join(c for c in categories if c)[:256]}
    analytics = next((child for child in capabilities if local_name(child.tag) == "Analytics"), None)
    xaddr = child_text(analytics, "XAddr") if analytics is not None else None
    fields["analytics.supported"] = "true" if xaddr else "false"
    if analytics is not None and xaddr:
        fields["analytics.xaddr"] = xaddr[:256]
        for tag, name in (("RuleSupport", "analytics.rule_support"),
                          ("AnalyticsModuleSupport", "analytics.module_support")):
            value = child_text(analytics, tag)
            if value:
                fields[name] = value.lower()[:16]
    return fields


def parse_services(body: Element) -> list[str]:
    namespaces = []
    for node in body.iter():
        if local_name(node.tag) == "Service":
            namespace = child_text(node, "Namespace")
            if namespace and namespace not in namespaces:
                namespaces.append(namespace)
    return namespaces


def parse_device_information(body: Element) -> dict[str, str]:
    info = find_local(body, "GetDeviceInformationResponse")
    if info is None:
        return {}
    fields: dict[str, str] = {}
    for tag, name in DEVICE_INFORMATION_FIELDS:
        value = child_text(info, tag)
        if value:
            fields[name] = value[:256]
    return fields


async def probe(ctx: NetContext, ip: str, port: int, *, tls: bool = False,
                hints: dict[str, str] | None = None) -> list[Observation]:
    """The PRE_AUTH device calls and one anonymous GetDeviceInformation."""
    try:
        return [await _probe(ctx, ip, port, tls, hints)]
    except Exception as exc:  # defence in depth: a probe reports, it never raises
        return [Observation(ip, SOURCE, port, status="unknown-error", error=describe(exc))]


async def _probe(ctx: NetContext, ip: str, port: int, tls: bool, hints: dict[str, str] | None) -> Observation:
    path = service_path(hints, ip, port, tls)
    fields: dict[str, str] = {"path": path}
    notes: list[str] = []
    heads: list[bytes] = []

    def remember(reply: SoapReply) -> None:
        server = reply.response.header("server")
        if server and "server" not in fields:
            fields["server"] = server
        if reply.response.status_code == 401:
            fields.update(auth_fields(reply.response))
        heads.append(reply.response.head)

    def observation(status: str) -> Observation:
        return Observation(ip, SOURCE, port, status=status, fields=fields, raw=excerpt(b"\n".join(heads)),
                           error="; ".join(notes) or None)

    try:
        first = await call(ctx, ip, port, tls, path, "GetSystemDateAndTime")
    except ProbeError as err:
        return failure(ip, SOURCE, port, err, path)
    received = time.time()
    remember(first)
    if first.unauthorized:
        fields["status_code"] = str(first.response.status_code)
        notes.append("GetSystemDateAndTime needs credentials (a PRE_AUTH call, ONVIF Core)")
        return observation("unauthorized")
    if first.body is None:
        fields["status_code"] = str(first.response.status_code)
        notes.append("no SOAP envelope in the reply to GetSystemDateAndTime")
        return observation("not-found" if first.response.status_code == 404 else "protocol-error")
    if first.fault:
        notes.append(f"GetSystemDateAndTime: {first.fault}")
    else:
        device_utc, time_source = parse_date_time(first.body)
        if device_utc is not None:
            fields["device_utc"] = device_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
            # the device reports whole seconds: its clock is on average half a second past that
            fields["clock_skew_s"] = str(round(device_utc.timestamp() + 0.5 - received))
        if time_source:
            fields["time_source"] = time_source[:32]

    analytics_namespace = False
    for operation in ("GetCapabilities", "GetServices"):
        await asyncio.sleep(INTER_REQUEST_DELAY_S)
        try:
            reply = await call(ctx, ip, port, tls, path, operation)
        except ProbeError as err:  # the device struggles: send nothing more
            notes.append(f"{operation}: {err.status}: {err.message}")
            fields["device_info"] = "failed"
            return observation("success")
        remember(reply)
        if reply.body is None or reply.fault:
            notes.append(f"{operation}: {reply.fault or f'HTTP {reply.response.status_code} without SOAP'}")
            continue
        if operation == "GetCapabilities":
            fields.update(parse_capabilities(reply.body))
        else:
            namespaces = parse_services(reply.body)
            if namespaces:
                fields["namespaces"] = " ".join(namespaces)[:MAX_NAMESPACES_FIELD]
                analytics_namespace = any(ns in ANALYTICS_NAMESPACES for ns in namespaces)
                if "analytics.supported" not in fields:
                    fields["analytics.supported"] = "false"
    if analytics_namespace:
        fields["analytics.supported"] = "true"

    await asyncio.sleep(INTER_REQUEST_DELAY_S)
    try:
        info = await call(ctx, ip, port, tls, path, "GetDeviceInformation")
    except ProbeError as err:
        notes.append(f"GetDeviceInformation: {err.status}: {err.message}")
        fields["device_info"] = "failed"
        return observation("success")
    remember(info)
    if info.unauthorized:
        fields["device_info"] = "unauthorized"
        return observation("unauthorized")
    identity = parse_device_information(info.body) if info.body is not None and not info.fault else {}
    if identity:
        fields.update(identity)
        fields["device_info"] = "answered"
    else:
        fields["device_info"] = "fault"
        notes.append(f"GetDeviceInformation: {info.fault or f'HTTP {info.response.status_code}, no answer'}")
    return observation("success")
