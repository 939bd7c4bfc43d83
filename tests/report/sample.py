"""Result documents for the report tests.

``sample_result()`` is built inline: a face-capture camera uploading snapshots, a device whose
every string is hostile (markup, formulas, terminal escapes, a lone surrogate), a printer, and
findings with legal references (the shape ``scanner.assess`` produces). ``capture_result()`` is
what ``camsweep analyze`` makes of a committed lab capture, with the lab devices' identities
merged in and the real assessment's findings, so timelines, byte counts and findings are real.
"""

from __future__ import annotations

from pathlib import Path

from scanner.models import CloudLink, Device, Evidence, Finding, ScanInfo, ScanResult, Service

T0 = 1_700_000_000.0
FIXTURES = Path(__file__).resolve().parent.parent / "passive" / "fixtures"
HOSTILE_NAME = "<script>alert('x')</script>"
HOSTILE_FORMULA = '=HYPERLINK("http://evil.example/","click")'
HOSTILE_TERMINAL = "\x1b[31mRED\x1b[0m[bold]markup[/bold]"

PIPL = "Personal Information Protection Law of the PRC (PIPL)"
PIPL_26 = {"law": PIPL, "article": "Art. 26", "jurisdiction": "cn",
           "summary": "Image capture in public places only for public security, with conspicuous signs.",
           "url": "https://personalinformationprotectionlaw.com/PIPL/article-26/"}
PIPL_28 = {"law": PIPL, "article": "Art. 28", "jurisdiction": "cn",
           "summary": "Biometric information is sensitive personal information.",
           "url": "https://personalinformationprotectionlaw.com/PIPL/article-28/"}
CRPL_29 = {"law": "CRPL", "article": "29 para 1", "jurisdiction": "cn",
           "summary": "Collecting consumers' personal information needs stated purpose and consent.",
           "note": "UNCERTAIN: wording as reported"}


def face_camera() -> Device:
    """A Hikvision DeepinView face camera that uploads snapshots to an OSS bucket."""
    uploads = CloudLink(
        host="storeface-pic.oss-cn-hangzhou.aliyuncs.com", ip="203.0.113.103", port=443, operator="Alibaba Cloud OSS",
        category="picture-upload", source="observed", protocol="tls", behaviour="snapshot-upload",
        bytes_up=31 * 98_000, bytes_down=31 * 1_100, packets_up=31 * 70, packets_down=31 * 30, uploads=31,
        first_seen=T0, last_seen=T0 + 58, confidence=0.9,
        evidence=[Evidence("tls:sni", "cloud", "storeface-pic.oss-cn-hangzhou.aliyuncs.com", 0.9,
                           "ClientHello SNI")],
        timeline=[[T0 + 2 * i, 90_000 + 1_000 * (i % 7)] for i in range(30)],
    )
    heartbeat = CloudLink(host="litedev.hik-connect.com", ip="203.0.113.101", port=31006, operator="Hik-Connect",
                          category="vendor-management", source="observed", behaviour="heartbeat",
                          bytes_up=424, bytes_down=216, first_seen=T0, last_seen=T0 + 60)
    return Device(
        ip="198.51.100.44", mac="44:19:b6:f9:0e:c7", vendor="Hikvision", model="iDS-2CD7A46G0-IZHS",
        firmware="V5.7.3 build 220112", serial="DS-2CD7A46G0-IZHS20220101AACH123456789", device_type="camera",
        is_camera=True, face_capable=True, confidence={"vendor": 0.99, "face_capable": 0.9},
        services=[Service(80, "tcp", "http"), Service(554, "tcp", "rtsp"), Service(8000, "tcp", "hik-sdk")],
        clouds=[uploads, heartbeat],
        evidence=[Evidence("sadp", "model", "iDS-2CD7A46G0-IZHS", 0.95, "SADP Inquiry reply DeviceType"),
                  Evidence("signature:hikvision-deepinview", "face_capable", True, 0.9, "DeepinView model line",
                           port=80, protocol="http")],
    )


def hostile_device() -> Device:
    return Device(
        ip="198.51.100.66", mac="02:00:00:00:00:66", vendor=HOSTILE_NAME, model=HOSTILE_FORMULA,
        firmware="@SUM(1+1)*cmd|' /C calc'!A0", hostname=HOSTILE_TERMINAL + " \udcff", device_type="camera",
        is_camera=True, face_capable=None,
        clouds=[CloudLink(host="-2+3.evil.example", ip="203.0.113.66", port=443, operator=HOSTILE_NAME,
                          category="unknown", source="observed", behaviour="snapshot-upload", bytes_up=5_000_000,
                          uploads=40, timeline=[[T0, 100], ["bad"], [T0 + 1, -5], "x", [T0 + 9, 99_000]])],
        evidence=[Evidence("onvif:scopes", "vendor", HOSTILE_NAME, 0.5, "<img src=http://evil.example/x.png>")],
    )


def printer() -> Device:
    return Device(ip="198.51.100.30", mac="00:00:48:12:34:56", vendor="Epson", model="WF-C5790",
                  device_type="printer", services=[Service(631, "tcp", "ipp")],
                  evidence=[Evidence("http:title", "vendor", "Epson", 0.8, "EPSON WF-C5790 Series")])


def sample_result() -> ScanResult:
    findings = [
        Finding("198.51.100.44", "high", "face-upload", "Face-capture camera uploads pictures to a third-party cloud",
                0.9, legal=[PIPL_26, PIPL_28, CRPL_29]),
        Finding("198.51.100.66", "medium", "unknown-upload", HOSTILE_NAME, 0.6, legal=[PIPL_26]),
        Finding("198.51.100.250", "low", "unidentified", "Device answered but was not identified", 0.3),
    ]
    info = ScanInfo(targets=["198.51.100.0/24"], started=T0 - 10, finished=T0 + 70, iface="eth0",
                    options={"rate": 300.0, "ports": [80, 554, 8000]}, notes=["ARP as root"], hosts_scanned=254)
    return ScanResult(scan=info, devices=[printer(), face_camera(), hostile_device()], findings=findings,
                      tool={"name": "camsweep", "version": "0.1.0", "signatures_version": "ccd47f76220a"})


# Identities of the capture's devices as the lab profiles describe them (what a scan would merge in).
LAB72_IDENTITIES = {
    "198.51.100.44": ("Hikvision", "iDS-2CD7A46G0-IZHS", "camera", True),
    "198.51.100.205": ("Dahua", "IPC-HDW5442TM-AS", "camera", True),
    "198.51.100.75": ("ULUCU", None, "camera", None),
    "198.51.100.40": (None, "FR-B200", "camera", None),
    "198.51.100.211": ("Dell", "OptiPlex 7090", "pc", False),
}


def capture_result() -> ScanResult:
    """``camsweep analyze`` of the committed 120 s lab capture, identities merged, then assessed."""
    from scanner.assess import assess
    from scanner.passive.analyze import analyze_captures, build_result

    table, summary = analyze_captures([FIXTURES / "lab72-walkby-watch-120s.pcap"])
    result = build_result(table, summary, started=T0)
    for device in result.devices:
        known = LAB72_IDENTITIES.get(device.ip)
        if known:
            device.vendor, device.model, device.device_type, device.face_capable = known
            device.is_camera = device.device_type == "camera"
    result.findings = assess(result, jurisdiction="cn")
    return result
