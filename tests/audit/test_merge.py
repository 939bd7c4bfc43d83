"""How an audit report lands in the Device record (no network)."""

from __future__ import annotations

import json

import jsonschema

from scanner.audit.records import AuditReport, Destination
from scanner.audit.runner import is_lan, merge
from scanner.models import AuditRecord, Device, ScanInfo, ScanResult
from scanner.passive.clouds import shipped


def report_with(*facts: tuple[str, object, float], destinations: list[Destination] | None = None) -> AuditReport:
    report = AuditReport(read=["isapi:/ISAPI/System/deviceInfo"], protocols=["isapi"])
    for field, value, confidence in facts:
        report.fact(field, value, f"audit:isapi:{field}", confidence, "d")
    report.destinations.extend(destinations or [])
    return report


def test_configured_face_settings_override_weaker_scan_conclusions_only():
    device = Device(ip="198.51.100.5", face_capable=True, confidence={"face_capable": 0.675})
    merge(device, AuditRecord("ok"), report_with(("face_capable", False, 0.95), ("face_capture_enabled", False, 0.9)),
          None)
    assert device.face_capable is False and device.confidence["face_capable"] == 0.95
    assert any("configuration says false" in n for n in device.notes)
    # Weak negative ONVIF evidence (0.5) does not undo a stronger positive conclusion.
    strong = Device(ip="198.51.100.6", face_capable=True, confidence={"face_capable": 0.9})
    merge(strong, AuditRecord("ok"), report_with(("face_capable", False, 0.5)), None)
    assert strong.face_capable is True
    assert [e.value for e in strong.evidence if e.field == "face_capable"] == [False]  # still recorded


def test_identity_fills_gaps_only_and_not_from_onvif_models():
    device = Device(ip="198.51.100.5", model="DS-2CD2386G2-IU")
    report = report_with(("model", "OTHER", 0.98), ("serial", "SN1", 0.98))
    report.fact("firmware", "1.0", "audit:onvif:GetDeviceInformation", 0.95)
    merge(device, AuditRecord("ok"), report, None)
    assert (device.model, device.serial, device.firmware) == ("DS-2CD2386G2-IU", "SN1", "1.0")
    box = Device(ip="198.51.100.7")
    onvif_only = AuditReport()
    onvif_only.fact("model", "IPC", "audit:onvif:GetDeviceInformation", 0.95)
    merge(box, AuditRecord("ok"), onvif_only, None)
    assert box.model is None


def test_configured_destinations_become_named_cloud_links():
    dests = [
        Destination("iai.tencentcloudapi.com", 443, "http-upload", "pictures", "audit:dahua-cgi:PictureHttpUpload",
                    "PictureHttpUpload.Enable=true"),
        Destination("203.0.113.50", 7660, "isup", "status", "audit:isapi:/ISAPI/System/Network/Ehome", "Ehome"),
        Destination("192.168.1.20", 80, "http", "pictures", "audit:isapi:/ISAPI/Event/notification/httpHosts", "h"),
        Destination(None, None, "xmeye-p2p", "video", "audit:dvrip:NetWork.Nat", "NatEnable=true",
                    operator_hint="XMEye (Xiongmai)"),
        Destination("iai.tencentcloudapi.com", 443, "http-upload", "pictures", "dup", "dup"),
    ]
    device = Device(ip="198.51.100.5")
    merge(device, AuditRecord("ok"), report_with(destinations=dests), shipped())
    links = {(c.host, c.ip, c.port): c for c in device.clouds}
    assert len(device.clouds) == 4  # the duplicate is dropped
    face = links[("iai.tencentcloudapi.com", None, 443)]
    assert (face.source, face.what, face.category, face.operator) == ("configured", "pictures", "face-analytics",
                                                                      "Tencent Cloud face recognition")
    assert any(e.field == "picture_push_target" for e in face.evidence)
    isup = links[(None, "203.0.113.50", 7660)]
    assert isup.category == "unknown" and isup.operator is None
    lan = links[(None, "192.168.1.20", 80)]
    assert not any(e.field == "picture_push_target" for e in lan.evidence)  # a LAN server is not "outside"
    xm = links[(None, None, None)]
    assert (xm.operator, xm.category) == ("XMEye (Xiongmai)", "video-cloud")


def test_lan_test():
    assert is_lan("192.168.1.20", "198.51.100.5") and is_lan("198.51.100.77", "198.51.100.5")
    assert not is_lan("203.0.113.50", "198.51.100.5") and not is_lan("faces.example.com", "198.51.100.5")


def test_the_result_document_with_an_audit_validates_and_round_trips():
    from pathlib import Path

    import scanner

    schema = json.loads((Path(scanner.__file__).parent / "schema" / "result.schema.json").read_text())
    device = Device(ip="198.51.100.5")
    merge(device, AuditRecord("ok", "read 3 isapi", ["isapi:/ISAPI/System/deviceInfo"], ["isapi"]),
          report_with(("face_capable", True, 0.95), destinations=[
              Destination("litedev.hik-connect.com", None, "hik-connect", "status", "audit:isapi:/ISAPI/System/Network/"
                          "EZVIZ", "EZVIZ enabled=true")]), shipped())
    result = ScanResult(scan=ScanInfo(targets=["198.51.100.5"], started=0.0), devices=[device, Device(ip="x")],
                        tool={"name": "camsweep", "version": scanner.__version__})
    doc = json.loads(result.to_json())
    jsonschema.validate(doc, schema)
    again = ScanResult.from_dict(doc)
    assert again.devices[0].audit == device.audit and again.devices[1].audit is None
