"""Result documents built inline for the sweep tests (one device, cloud or finding per call)."""

from __future__ import annotations

import json
from typing import Any

from scanner.models import CloudLink, Device, Finding, ScanInfo, ScanResult

T0 = 1_750_000_000.0


def camera(ip: str, mac: str | None, **fields: Any) -> Device:
    defaults: dict[str, Any] = {"vendor": "Hikvision", "model": "DS-2CD2386G2-IU", "firmware": "V5.7.18 build 240826",
                                "device_type": "camera", "is_camera": True, "face_capable": False}
    defaults.update(fields)
    return Device(ip=ip, mac=mac, **defaults)


def cloud(host: str | None, ip: str | None, category: str, *, port: int | None = 443, uploads: int = 0,
          behaviour: str | None = "heartbeat", operator: str | None = None, source: str = "observed") -> CloudLink:
    return CloudLink(host=host, ip=ip, port=port, operator=operator, category=category, source=source,
                     behaviour=behaviour, uploads=uploads)


def finding(ip: str, kind: str, severity: str) -> Finding:
    return Finding(device_ip=ip, severity=severity, kind=kind, title=f"{kind} on {ip}")


def document(devices: list[Device], findings: list[Finding] | None = None, *, listen: float = 0.0,
             at: float = T0) -> dict[str, Any]:
    """A result document as a sweep stores it (JSON round trip)."""
    info = ScanInfo(targets=["198.51.100.0/24"], started=at, finished=at + 9.0,
                    options={"listen_seconds": listen} if listen else {})
    result = ScanResult(scan=info, devices=devices, findings=list(findings or []),
                        tool={"name": "camsweep", "version": "test"})
    doc: dict[str, Any] = json.loads(result.to_json())
    return doc
