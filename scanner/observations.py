"""What discovery and probes report: plain observations, one per answer (or failure).

A failed probe is data (zgrab2 style): ``status`` says what happened and ``fields`` is empty.
Field names are the vocabulary signatures match on (``part:`` in signatures/devices/*.yaml):

    mac, vendor, model, firmware, serial, device_type, name, hostname,
    server (HTTP/RTSP/UPnP Server header), realm (WWW-Authenticate realm), auth_scheme,
    title (HTML title), body (first 8 KB of a page), headers (raw header block),
    scopes (ONVIF scopes, space separated), types (WS-Discovery types), xaddrs,
    manufacturer, hardware_id, public (RTSP Public), status_code,
    services (mDNS service types), txt.* (mDNS TXT keys), upnp.* (description fields),
    sadp.*, dhip.*, xm.* (raw vendor discovery fields), cloud.* (cloud flags such as
    cloud.hik_connect_enabled), analytics.* (ONVIF analytics hints: analytics.xaddr,
    analytics.rule_support, analytics.module_support), path (the request path of a follow-up),
    auth_schemes; RTSP: options_status_code, no_server, date (raw, leading spaces kept),
    date_double_space, sdp_session_name; ONVIF: clock_skew_s, device_utc, time_source,
    capabilities, namespaces, device_info; Dahua: encryption, rpc2.error_code; Axis:
    model_number, vapix.error_code; Uniview: lapi.response_code, lapi.response_string;
    discovery: firmware_raw, device_type_code, analog_channels, digital_channels, http_port,
    command_port, activated, cloud.hik_connect_supported, device_class, vendor_raw, tcp_port,
    endpoint, location, service_ports, oui, oui_org, other_macs, arp.origin; TCP sweep
    per-host summary (port None): alive, open_ports, refused, silent

A failed probe usually has empty ``fields``; ``path`` may still say what was asked, and an
ONVIF ``unauthorized`` observation carries everything the pre-auth calls returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STATUSES = (
    "success",
    "connection-refused",
    "connection-timeout",
    "io-timeout",
    "connection-closed",
    "protocol-error",
    "handshake-error",
    "unauthorized",
    "not-found",
    "skipped",
    "unknown-error",
)


@dataclass
class Observation:
    ip: str
    source: str  # arp, tcp, sadp, dhip, xm, wsd, ssdp, mdns, http, https, rtsp, onvif, dahua-rpc2, upnp, lapi, vapix
    port: int | None = None
    transport: str = "tcp"
    status: str = "success"
    fields: dict[str, str] = field(default_factory=dict)
    raw: str = ""  # a short excerpt kept as evidence (bounded, never payload or credentials)
    error: str | None = None

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)


MAX_RAW = 2048


def excerpt(data: bytes | str, limit: int = MAX_RAW) -> str:
    """A printable, bounded excerpt of what a device sent."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = "".join(ch if ch.isprintable() or ch in "\r\n\t" else "\ufffd" for ch in text[:limit])
    return text
