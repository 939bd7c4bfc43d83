"""Every audit client against the lab's emulated devices (real digest, RPC2, UsernameToken, DVRIP).

Each device runs in-process on its own 127.77.x.y address (tests/lab/harness.py); the device's
own control channel says how many logins it saw, whether it locked, and whether anything wrote.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import pytest
import requests
from requests.auth import HTTPDigestAuth

from scanner.audit import dahua, onvif
from scanner.audit.context import DeviceAudit
from scanner.audit.creds import parse_credentials
from scanner.audit.runner import run_audit
from scanner.audit.transport import NetSettings
from scanner.models import Device, ScanInfo, ScanResult, Service
from tests.lab.harness import NodeHandle, running_device

PORTS = (80, 443, 554, 8899, 34567)


def record_for(dev: NodeHandle, vendor: str | None, tcp: tuple[int, ...], *, onvif_port: int | None = None,
               wsd: bool = True) -> Device:
    """The Device a scan would have produced (vendor and open ports), without running a scan."""
    services = [Service(p, "tcp", "onvif" if p == onvif_port else "http") for p in tcp]
    if wsd:
        services.append(Service(3702, "udp", "wsd"))
    return Device(ip=dev.ip, vendor=vendor, services=services)


def audit(dev: NodeHandle, device: Device, password: str | None = None, username: str | None = None) -> Device:
    creds = parse_credentials([{"match": dev.ip, "username": username or dev.manifest_device["username"],
                                "password": password or dev.manifest_device["password"]}])
    result = ScanResult(scan=ScanInfo(targets=[dev.ip], started=time.time()), devices=[device])
    run_audit(result, creds, NetSettings(port_map={p: dev.port(p) for p in PORTS}))
    return device


def configured(device: Device) -> set[tuple[Any, ...]]:
    return {(c.host or c.ip, c.port, c.what, c.operator, c.category) for c in device.clouds if c.source == "configured"}


def facts(device: Device, field: str) -> list[Any]:
    return [e.value for e in device.evidence if e.field == field and e.source.startswith("audit:")]


def test_hikvision_face_camera_reports_face_capture_and_picture_cloud(tmp_path):
    with running_device("hik-face", tmp_path) as dev:
        device = audit(dev, record_for(dev, "Hikvision", (80, 443, 554, 8000)))
        assert device.audit is not None and device.audit.status == "ok", device.audit
        assert configured(device) == {
            ("litedev.hik-connect.com", None, "status", "Hik-Connect (Hikvision)", "vendor-management"),
            ("storeface-pic.oss-cn-hangzhou.aliyuncs.com", 443, "pictures", "Alibaba Cloud OSS", "picture-upload"),
        }
        pictures = next(c for c in device.clouds if c.what == "pictures")
        assert any(e.field == "picture_push_target" for e in pictures.evidence)
        assert device.face_capable is True and device.face_capture_enabled is True
        assert facts(device, "face_library") == [1]
        assert [e.source for e in device.evidence if e.field == "face_library"] == ["audit:isapi:FDLib"]
        assert device.serial == dev.manifest_device["serial"]
        assert "isapi:/ISAPI/System/Network/EZVIZ" in device.audit.read and "onvif" in device.audit.protocols
        auth = dev.control({"cmd": "auth"})
        assert auth["writes"] == 0 and auth["locked"] == []


def test_wrong_password_on_the_lockout_camera_is_exactly_one_attempt(tmp_path):
    with running_device("hik-face-idle", tmp_path) as dev:
        device = audit(dev, record_for(dev, "Hikvision", (80, 443, 554, 8000)), password="not-the-password")
        assert device.audit is not None and device.audit.status == "auth-failed"
        assert "1 login attempt" in device.audit.detail and "not-the-password" not in device.audit.detail
        auth = dev.control({"cmd": "auth"})
        assert auth["attempts"] == 1 and auth["locked"] == [] and auth["writes"] == 0
        assert device.clouds == [] and device.audit.read == []


def test_an_already_locked_account_is_reported_locked_after_one_attempt(tmp_path):
    with running_device("hik-face-idle", tmp_path) as dev:
        url = f"http://{dev.ip}:{dev.port(80)}/ISAPI/System/deviceInfo"
        for _ in range(3):  # someone else's failed logins lock the account (lock_after=3)
            requests.get(url, auth=HTTPDigestAuth("admin", "guess"), timeout=5)
        assert dev.control({"cmd": "auth"})["locked"] == ["admin"]
        device = audit(dev, record_for(dev, "Hikvision", (80, 443, 554, 8000)))  # the right password
        assert device.audit is not None and device.audit.status == "locked"
        assert "lockStatus=lock" in device.audit.detail
        assert dev.control({"cmd": "auth"})["attempts"] == 4  # exactly one more


def test_dahua_cgi_configs_and_onvif_on_a_clock_two_hours_fast(tmp_path):
    with running_device("dahua-face", tmp_path) as dev:
        device = audit(dev, record_for(dev, "Dahua", (80, 554, 37777)))
        assert device.audit is not None and device.audit.status == "ok", device.audit
        assert configured(device) == {
            ("www.easy4ipcloud.com", 8800, "video", "Dahua Easy4IP", "video-cloud"),
            ("iai.tencentcloudapi.com", 443, "pictures", "Tencent Cloud face recognition", "face-analytics"),
        }
        assert device.face_capable is True and device.face_capture_enabled is True
        # The token was accepted because it was built on the device's clock (7200 s ahead).
        assert "onvif:GetDeviceInformation" in device.audit.read
        skew = facts(device, "clock_skew_s")
        assert len(skew) == 1 and abs(skew[0] - 7200) <= 5
        assert dev.control({"cmd": "auth"})["writes"] == 0


def test_a_token_on_our_own_clock_would_have_been_refused(tmp_path):
    """The control experiment for the test above: without the clock measurement the login fails."""
    with running_device("dahua-face", tmp_path) as dev:
        header = onvif.username_token("admin", dev.manifest_device["password"], time.time())
        body = onvif.envelope(f'<tds:GetDeviceInformation xmlns:tds="{onvif.TDS}"/>', header)
        reply = requests.post(f"http://{dev.ip}:{dev.port(80)}/onvif/device_service", data=body,
                              headers={"Content-Type": onvif.SOAP_TYPE}, timeout=5)
        fault = onvif.fault_of(reply.content)
        assert fault is not None and "notauthorized" in fault[0]


def test_dahua_rpc2_login_reads_the_same_configuration(tmp_path):
    with running_device("dahua-face", tmp_path) as dev:
        creds = parse_credentials([{"match": "*", "username": "admin", "password": dev.manifest_device["password"]}])
        ctx = DeviceAudit(record_for(dev, "Dahua", (80,)), creds.credentials[0],
                          NetSettings(port_map={80: dev.port(80)}))
        dahua.audit(ctx, prefer_rpc2=True)
        ctx.close()
        assert ctx.guard.state == "ok" and ctx.report.protocols == ["dahua-rpc2"]
        assert {(d.host, d.port, d.what) for d in ctx.report.destinations} == {
            ("www.easy4ipcloud.com", 8800, "video"), ("iai.tencentcloudapi.com", 443, "pictures")}
        assert ("face_capture_enabled", True) in [(f.field, f.value) for f in ctx.report.facts]
        counters = dev.control({"cmd": "status"})["counters"]
        assert counters.get("rpc_writes", 0) == 0 and dev.control({"cmd": "auth"})["attempts"] == 1


def test_dahua_rpc2_wrong_password_is_one_attempt(tmp_path):
    with running_device("dahua-cam", tmp_path) as dev:
        creds = parse_credentials([{"match": "*", "username": "admin", "password": "wrong"}])
        ctx = DeviceAudit(record_for(dev, "Dahua", (80,)), creds.credentials[0],
                          NetSettings(port_map={80: dev.port(80)}))
        dahua.audit(ctx, prefer_rpc2=True)
        ctx.close()
        assert ctx.guard.state == "failed" and "refused the login" in ctx.guard.detail
        assert dev.control({"cmd": "auth"})["attempts"] == 1


def test_uniview_lapi_cloud_and_no_face(tmp_path):
    with running_device("uniview-cam", tmp_path) as dev:
        device = audit(dev, record_for(dev, "Uniview", (80, 554)))
        assert device.audit is not None and device.audit.status == "ok", device.audit
        assert configured(device) == {("en.ezcloud.uniview.com", None, "status", "Uniview EZCloud", "video-cloud")}
        assert device.face_capable is False and device.face_capture_enabled is False
        assert device.firmware == "IPC_G6103-B0005P62D1905"  # not visible before login
        assert dev.control({"cmd": "auth"})["writes"] == 0


def test_xiongmai_dvrip_cloud_switch(tmp_path):
    with running_device("xm-cam", tmp_path) as dev:
        device = audit(dev, record_for(dev, "Xiongmai", (80, 554, 8899, 34567), onvif_port=8899))
        assert device.audit is not None and device.audit.status == "ok", device.audit
        assert configured(device) == {("secu100.net", 8000, "video", "XMEye (Xiongmai)", "video-cloud")}
        assert device.face_capable is False
        assert {"dvrip:SystemFunction", "dvrip:NetWork.Nat", "onvif:GetDeviceInformation"} <= set(device.audit.read)
        auth = dev.control({"cmd": "auth"})
        assert auth["writes"] == 0
        counters = dev.control({"cmd": "status"})["counters"]
        assert counters.get("dvrip_writes", 0) == 0


def test_xiongmai_wrong_password_is_one_attempt(tmp_path):
    with running_device("xm-cam", tmp_path) as dev:
        device = audit(dev, record_for(dev, "Xiongmai", (80, 554, 8899, 34567), onvif_port=8899), password="nope")
        assert device.audit is not None and device.audit.status == "auth-failed"
        assert "Ret 203" in device.audit.detail
        assert dev.control({"cmd": "auth"})["attempts"] == 1  # ONVIF was not tried afterwards


def test_onvif_only_face_box(tmp_path):
    with running_device("salesbox", tmp_path) as dev:
        device = audit(dev, record_for(dev, None, (80, 554)))
        assert device.audit is not None and device.audit.status == "ok", device.audit
        assert device.audit.protocols == ["onvif"]
        assert device.face_capable is True and device.face_capture_enabled is True
        assert device.serial == dev.manifest_device["serial"]
        auth = dev.control({"cmd": "auth"})
        assert auth["writes"] == 0 and auth["locked"] == []


def test_devices_without_a_client_or_a_matching_entry_get_nothing(tmp_path):
    with running_device("fragile-cam", tmp_path) as dev:
        device = audit(dev, Device(ip=dev.ip, vendor="Generic", services=[Service(80, "tcp", "http")]))
        assert device.audit is not None and device.audit.status == "unsupported"
        assert "nothing sent" in device.audit.detail
        fragile = dev.control({"cmd": "fragile"})
        assert fragile["hung"] is None and fragile["max_concurrent_seen"] == 0  # not even a connection
    creds = parse_credentials([{"match": "203.0.113.9", "username": "admin", "password": "x"}])
    other = Device(ip="198.51.100.77", vendor="Hikvision")
    result = ScanResult(scan=ScanInfo(targets=[], started=0.0), devices=[other])
    run_audit(result, creds, NetSettings())
    assert other.audit is not None and other.audit.status == "no-credentials"


def test_unreachable_device(tmp_path):
    # A closed port on our own loopback: nothing listens on 127.77.255.254.
    device = Device(ip="127.77.255.254", vendor="Hikvision", services=[Service(80, "tcp", "http")])
    creds = parse_credentials([{"match": "*", "username": "admin", "password": "x"}])
    result = ScanResult(scan=ScanInfo(targets=[], started=0.0), devices=[device])
    run_audit(result, creds, NetSettings(connect_timeout=0.5, read_timeout=0.5))
    assert device.audit is not None and device.audit.status == "unreachable"


@pytest.mark.parametrize("profile", ["hik-nvr", "dahua-cam", "axis-cam", "ulucu-flow"])
def test_no_writes_and_no_failed_logins_on_a_good_audit(tmp_path, profile):
    vendors = {"hik-nvr": ("Hikvision", (80, 554, 8000)), "dahua-cam": ("Dahua", (80, 554)),
               "axis-cam": ("Axis", (80, 554)), "ulucu-flow": (None, (80, 554))}
    with running_device(profile, tmp_path) as dev:
        vendor, ports = vendors[profile]
        device = audit(dev, record_for(dev, vendor, ports))
        assert device.audit is not None and device.audit.status == "ok", device.audit
        auth = dev.control({"cmd": "auth"})
        assert auth["writes"] == 0 and auth.get("locked", []) == []


def test_password_is_never_in_what_the_device_receives_in_clear(tmp_path):
    """Digest, UsernameToken and the RPC2/sofia hashes carry derived values only."""
    password = "Clear-Text-Canary-7"
    seen: list[bytes] = []
    original = requests.Session.send

    def spy(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        seen.append(str(request.headers).encode() + (request.body or b""))
        return original(self, request, **kwargs)

    with running_device("dahua-face", tmp_path, identity_overrides={"password": password}) as dev:
        requests.Session.send = spy  # type: ignore[method-assign]
        try:
            device = audit(dev, record_for(dev, "Dahua", (80, 554)), password=password)
        finally:
            requests.Session.send = original  # type: ignore[method-assign]
        assert device.audit is not None and device.audit.status == "ok"
    assert seen and not any(password.encode() in blob for blob in seen)
    assert not any(base64.b64encode(f"admin:{password}".encode()) in blob for blob in seen)  # no Basic auth
    assert hashlib.md5(password.encode()).hexdigest() not in b"".join(seen).decode("latin-1")


def test_devices_outside_the_scope_are_never_contacted(tmp_path):
    with running_device("hik-cam", tmp_path) as dev:
        device = record_for(dev, "Hikvision", (80,))
        creds = parse_credentials([{"match": "*", "username": "admin", "password": dev.manifest_device["password"]}])
        result = ScanResult(scan=ScanInfo(targets=["127.77.0.1"], started=0.0), devices=[device])
        run_audit(result, creds, NetSettings(port_map={80: dev.port(80)}), scope={"127.77.0.1"})
        assert device.audit is not None and device.audit.status == "unsupported"
        assert "not among the scan's targets" in device.audit.detail
        assert dev.control({"cmd": "auth"})["attempts"] == 0


def test_https_only_hikvision(tmp_path):
    with running_device("hik-face", tmp_path) as dev:
        device = audit(dev, record_for(dev, "Hikvision", (443,), wsd=False))
        assert device.audit is not None and device.audit.status == "ok", device.audit
        assert device.face_capture_enabled is True
        assert "storeface-pic.oss-cn-hangzhou.aliyuncs.com" in {c.host for c in device.clouds}
