"""The records every stage passes on, and the result document (a public, versioned interface).

Stages never reach back: discovery makes ``Host``s, probes add ``Service``s and ``Evidence``,
identification turns evidence into a ``Device`` (each claim with its evidence and confidence),
the passive side adds ``CloudLink``s, assessment adds ``Finding``s. ``ScanResult.to_json()``
is the document described by ``scanner/schema/result.schema.json``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = "1.0"

SEVERITIES = ("high", "medium", "low", "info")
CLOUD_SOURCES = ("observed", "configured", "discovery")
CLOUD_CATEGORIES = (
    "face-analytics",
    "picture-upload",
    "video-cloud",
    "vendor-management",
    "passenger-flow",
    "web",
    "payment",
    "unknown",
)


@dataclass
class Evidence:
    """One observation a claim rests on: where it came from and what it says."""

    source: str  # e.g. "sadp", "onvif:scopes", "http:server", "rtsp:realm", "oui", "signature:hikvision-app-webs"
    field: str  # the claim it supports: vendor, model, firmware, device_type, is_camera, face_capable, cloud...
    value: Any
    confidence: float  # 0..1, how strongly this observation alone supports the value
    detail: str = ""  # a short excerpt of what was seen (never payload bytes, never credentials)
    port: int | None = None
    protocol: str | None = None


@dataclass
class Service:
    port: int
    transport: str  # tcp | udp
    protocol: str  # http, https, rtsp, onvif, hik-sdk, dahua-sdk, xm-dvrip, sadp, dhip, ...
    status: str = "open"  # zgrab2-style: open, connection-refused, io-timeout, protocol-error, ...
    banner: str | None = None


@dataclass
class CloudLink:
    host: str | None
    ip: str | None
    port: int | None
    operator: str | None
    category: str  # one of CLOUD_CATEGORIES
    source: str  # one of CLOUD_SOURCES
    protocol: str | None = None
    behaviour: str | None = None  # snapshot-upload | video-relay | heartbeat | other
    bytes_up: int = 0
    bytes_down: int = 0
    packets_up: int = 0
    packets_down: int = 0
    uploads: int = 0  # estimated number of pictures sent
    first_seen: float | None = None
    last_seen: float | None = None
    what: str | None = None  # pictures, events, video, status (configured destinations)
    confidence: float = 0.5
    evidence: list[Evidence] = field(default_factory=list)
    # Upstream bursts seen on the wire, oldest first: [start time (epoch s), bytes up]; bounded (the
    # newest are dropped past a cap and counted in ``uploads``/``bytes_up`` only). Empty when not observed.
    timeline: list[list[float]] = field(default_factory=list)


@dataclass
class AuditRecord:
    """The self-audit of one device with the store's own credentials (``camsweep audit``/``scan --creds``)."""

    status: str  # one of AUDIT_STATUSES
    detail: str = ""  # one line: why, or what was read (never a credential)
    read: list[str] = field(default_factory=list)  # endpoints read, e.g. "isapi:/ISAPI/System/Network/EZVIZ"
    protocols: list[str] = field(default_factory=list)  # isapi, dahua-cgi, dahua-rpc2, onvif, lapi, dvrip


AUDIT_STATUSES = ("ok", "partial", "locked", "auth-failed", "no-credentials", "unsupported", "unreachable")


@dataclass
class Device:
    ip: str
    mac: str | None = None
    vendor: str | None = None
    brand: str | None = None  # the name on the box when an OEM made the hardware
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None
    hostname: str | None = None
    device_type: str | None = None  # camera, nvr, dvr, doorbell, printer, nas, pc, pos, router, unknown
    is_camera: bool = False
    face_capable: bool | None = None  # None: unknown (never guessed true)
    face_capture_enabled: bool | None = None
    confidence: dict[str, float] = field(default_factory=dict)  # per claim
    services: list[Service] = field(default_factory=list)
    clouds: list[CloudLink] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    audit: AuditRecord | None = None  # set only when credentials were given


@dataclass
class Finding:
    device_ip: str
    severity: str  # one of SEVERITIES
    kind: str
    title: str
    confidence: float = 0.5
    evidence: list[Evidence] = field(default_factory=list)
    legal: list[dict[str, str]] = field(default_factory=list)


@dataclass
class ScanInfo:
    targets: list[str]
    started: float
    finished: float | None = None
    iface: str | None = None
    interrupted: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was skipped and why (privileges, mode)
    hosts_scanned: int = 0


@dataclass
class ScanResult:
    scan: ScanInfo
    devices: list[Device] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    tool: dict[str, str] = field(default_factory=dict)
    schema_version: str = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "tool": self.tool,
            "scan": dataclasses.asdict(self.scan),
            "devices": [dataclasses.asdict(d) for d in self.devices],
            "findings": [dataclasses.asdict(f) for f in self.findings],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanResult:
        """Rebuild a result (e.g. ``analyze --scan SCAN.json``); unknown keys are ignored."""

        def evidence(items: list[dict[str, Any]]) -> list[Evidence]:
            return [_build(Evidence, e) for e in items or []]

        devices = []
        for d in data.get("devices", []):
            dev = _build(Device, d)
            dev.services = [_build(Service, s) for s in d.get("services", [])]
            dev.clouds = []
            for c in d.get("clouds", []):
                link = _build(CloudLink, c)
                link.evidence = evidence(c.get("evidence", []))
                dev.clouds.append(link)
            dev.evidence = evidence(d.get("evidence", []))
            dev.audit = _build(AuditRecord, d["audit"]) if isinstance(d.get("audit"), dict) else None
            devices.append(dev)
        findings = []
        for f in data.get("findings", []):
            finding = _build(Finding, f)
            finding.evidence = evidence(f.get("evidence", []))
            findings.append(finding)
        return cls(
            scan=_build(ScanInfo, data.get("scan", {"targets": [], "started": 0.0})),
            devices=devices,
            findings=findings,
            tool=dict(data.get("tool", {})),
            schema_version=str(data.get("schema_version", SCHEMA_VERSION)),
        )


def _build(cls: type[Any], data: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
