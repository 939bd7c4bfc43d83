"""Records built inline for the assessment tests: devices, cloud links as the passive stage, the
self-audit and SADP discovery write them, and a result document around them."""

from __future__ import annotations

from typing import Any

from scanner.models import CloudLink, Device, Evidence, ScanInfo, ScanResult

LAN = "198.51.100.0/24"


def camera(ip: str = "198.51.100.20", *, face: bool | None = True, device_type: str = "camera",
           clouds: list[CloudLink] | None = None, **fields: Any) -> Device:
    """A camera (or recorder) as identification leaves it, with the evidence for its type and face capability."""
    evidence = [Evidence(source="sadp:hikvision-sadp", field="device_type", value=device_type, confidence=0.95)]
    confidence = {"device_type": 0.95}
    if face is not None:
        evidence.append(Evidence(source="model:hikvision-model-ids-2cd7", field="face_capable", value=face,
                                 confidence=0.8))
        confidence["face_capable"] = 0.8
    return Device(ip=ip, vendor="Hikvision", model="iDS-2CD7A46G0-IZHS", device_type=device_type,
                  is_camera=device_type in ("camera", "doorbell", "face-terminal"), face_capable=face,
                  confidence=confidence, evidence=evidence, clouds=list(clouds or []), **fields)


def office(ip: str = "198.51.100.30", device_type: str = "pc", clouds: list[CloudLink] | None = None) -> Device:
    """Equipment without a camera (identification settles face_capable false for these types)."""
    return Device(ip=ip, vendor="Dell", device_type=device_type, is_camera=False, face_capable=False,
                  confidence={"device_type": 0.8},
                  evidence=[Evidence(source="smb", field="device_type", value=device_type, confidence=0.8)],
                  clouds=list(clouds or []))


def observed(host: str | None, category: str, behaviour: str, *, ip: str = "203.0.113.50", port: int = 443,
             certainty: float = 0.8, uploads: int = 0, operator: str | None = None, signature: str | None = None,
             confidence: float = 0.7) -> CloudLink:
    """A destination as ``camsweep analyze`` reports it: behaviour verdict, signature match, names."""
    evidence = [Evidence(source="passive:flow", field="cloud_behaviour", value=behaviour, confidence=certainty,
                         detail=f"{uploads} JPEG-sized upstream objects" if uploads else "small exchanges",
                         port=port, protocol="tcp")]
    if signature is not None:
        evidence.append(Evidence(source=f"cloud-signature:{signature}", field="cloud", value=operator,
                                 confidence=confidence, detail=f"{host} matches ({signature})", port=port,
                                 protocol="tcp"))
    return CloudLink(host=host, ip=ip, port=port, operator=operator, category=category, source="observed",
                     protocol="tcp", behaviour=behaviour, bytes_up=40_000 * max(uploads, 1), bytes_down=3_000,
                     uploads=uploads, confidence=confidence if signature else round(certainty * 0.6, 2),
                     evidence=evidence)


def configured(host: str | None, category: str, what: str, *, ip: str | None = None, port: int | None = 443,
               operator: str | None = None) -> CloudLink:
    """A destination the device's own configuration names (self-audit contract)."""
    return CloudLink(host=host, ip=ip, port=port, operator=operator, category=category, source="configured",
                     what=what, confidence=0.9,
                     evidence=[Evidence(source="audit:isapi:/ISAPI/Event/notification/httpHosts", field="cloud",
                                        value=host, confidence=0.9, detail=f"configured {what} destination")])


def hik_connect_flag() -> CloudLink:
    """What identify.py emits for SADP HCPlatformEnable=true."""
    return CloudLink(host=None, ip=None, port=None, operator="Hik-Connect (Hikvision)", category="vendor-management",
                     source="discovery", confidence=0.4,
                     evidence=[Evidence(source="sadp", field="cloud", value="Hik-Connect (Hikvision)", confidence=0.4,
                                        detail="sadp cloud.hik_connect_enabled=true", port=37020, protocol="sadp")])


def result(*devices: Device, targets: tuple[str, ...] = (LAN,)) -> ScanResult:
    return ScanResult(scan=ScanInfo(targets=list(targets), started=1_700_000_000.0), devices=list(devices),
                      tool={"name": "camsweep", "version": "test"})
