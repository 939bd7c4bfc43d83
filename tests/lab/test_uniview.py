"""Uniview emulation answers real clients the way protocols.md §3 and §5 describe."""

from __future__ import annotations

import socket

import requests
from defusedxml import ElementTree as SafeET
from requests.auth import HTTPDigestAuth

from tests.lab.harness import running_device
from tests.lab.onvif_client import envelope, ws_discovery_probe

MODEL = "IPC3614SB-ADF28KM-I0"
DEVICE_NS = {"tds": "http://www.onvif.org/ver10/device/wsdl"}


def _lapi(base: str, path: str, auth: HTTPDigestAuth | None = None) -> requests.Response:
    return requests.get(f"{base}{path}", auth=auth, timeout=5)


def _soap(operation: str, token: tuple[str, str] | None) -> bytes:
    return envelope(operation, token=token)


def test_lapi_device_info_requires_digest_and_reports_identity(tmp_path):
    with running_device("uniview-cam", tmp_path) as dev:
        base = f"http://{dev.ip}:{dev.port(80)}"
        anon = _lapi(base, "/LAPI/V1.0/System/DeviceInfo")
        assert anon.status_code == 401
        assert 'Digest qop="auth", realm="UNV"' in anon.headers["WWW-Authenticate"]
        wrong = _lapi(base, "/LAPI/V1.0/System/DeviceInfo", HTTPDigestAuth("admin", "wrong"))
        assert wrong.status_code == 401
        auth = HTTPDigestAuth("admin", dev.manifest_device["password"])
        info = _lapi(base, "/LAPI/V1.0/System/DeviceInfo", auth)
        assert info.status_code == 200
        envelope = info.json()["Response"]
        assert envelope["ResponseURL"] == "/LAPI/V1.0/System/DeviceInfo"
        assert envelope["ResponseCode"] == 0 and envelope["StatusCode"] == 0
        assert envelope["ResponseString"] == "Succeed"
        data = envelope["Data"]
        assert data["DeviceModel"] == MODEL
        assert data["SerialNumber"] == dev.manifest_device["serial"]
        assert data["MAC"] == dev.manifest_device["mac"]
        assert data["FirmwareVersion"] == "IPC_G6103-B0005P62D1905"
        attempts = dev.control({"cmd": "auth"})["attempts"]
        assert attempts == 2  # the wrong and the right digest, each counted once


def test_lapi_cloud_smart_caps_and_unknown_path_quirk(tmp_path):
    with running_device("uniview-cam", tmp_path) as dev:
        base = f"http://{dev.ip}:{dev.port(80)}"
        auth = HTTPDigestAuth("admin", dev.manifest_device["password"])
        cloud = _lapi(base, "/LAPI/V1.0/Network/Cloud", auth).json()["Response"]["Data"]
        assert cloud["Enabled"] == 1
        assert cloud["ServerAddress"] == "en.ezcloud.uniview.com"
        assert cloud["RegisterStatus"] == 1
        caps = _lapi(base, "/LAPI/V1.0/Smart/Capabilities", auth).json()["Response"]["Data"]
        assert caps["IsSupportFaceDetection"] == 0
        assert caps["IsSupportFaceRecognition"] == 0
        for path in ("/LAPI/V1.0/No/Such/Thing", "/LAPI/V1.0/Smart/FaceDetection/Rule"):
            unknown = _lapi(base, path, auth)
            assert unknown.status_code == 599, path
            assert unknown.json()["Response"]["ResponseCode"] == 1
            assert unknown.json()["Response"]["ResponseURL"] == path


def test_lapi_refuses_and_counts_writes(tmp_path):
    with running_device("uniview-cam", tmp_path) as dev:
        auth = HTTPDigestAuth("admin", dev.manifest_device["password"])
        url = f"http://{dev.ip}:{dev.port(80)}/LAPI/V1.0/Network/Cloud"
        put = requests.put(url, json={"Enabled": 0}, auth=auth, timeout=5)
        assert put.status_code == 403
        assert put.json()["Response"]["ResponseCode"] != 0
        delete = requests.delete(f"{url}/Unregistration", auth=auth, timeout=5)
        assert delete.status_code == 403
        assert dev.control({"cmd": "auth"})["writes"] == 2
        assert dev.node.counters["lapi_writes"] == 2
        assert requests.get(url, auth=auth, timeout=5).json()["Response"]["Data"]["Enabled"] == 1


def test_login_page_and_onvif_on_port_80(tmp_path):
    with running_device("uniview-cam", tmp_path) as dev:
        base = f"http://{dev.ip}:{dev.port(80)}"
        page = requests.get(f"{base}/", timeout=5)
        assert page.status_code == 200 and "<title>" in page.text and "Uniview" in page.text
        url = f"{base}/onvif/device_service"
        anon = requests.post(url, data=_soap("GetDeviceInformation", None), timeout=5)
        assert anon.status_code == 401  # digest-capable device: HTTP 401 without credentials (§5.3)
        ok = requests.post(url, data=_soap("GetDeviceInformation", ("admin", dev.manifest_device["password"])),
                           timeout=5)
        assert ok.status_code == 200
        root = SafeET.fromstring(ok.content)
        assert root.findtext(".//tds:Model", namespaces=DEVICE_NS) == MODEL
        assert root.findtext(".//tds:Manufacturer", namespaces=DEVICE_NS) == "UNIVIEW"
        assert root.findtext(".//tds:SerialNumber", namespaces=DEVICE_NS) == dev.manifest_device["serial"]


def test_ws_discovery_scopes_name_uniview(tmp_path):
    with running_device("uniview-cam", tmp_path) as dev:
        msg_id, probe = ws_discovery_probe()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.bind(("127.0.0.1", 0))
            s.sendto(probe, (dev.ip, 3702))
            reply, _ = s.recvfrom(65535)
        root = SafeET.fromstring(reply)
        ns = {"d": "http://schemas.xmlsoap.org/ws/2005/04/discovery",
              "w": "http://schemas.xmlsoap.org/ws/2004/08/addressing"}
        assert root.findtext(".//w:RelatesTo", namespaces=ns) == msg_id
        scopes = (root.findtext(".//d:Scopes", namespaces=ns) or "").split()
        assert "onvif://www.onvif.org/name/UNIVIEW" in scopes
        assert f"onvif://www.onvif.org/hardware/{MODEL}" in scopes
        assert root.findtext(".//d:XAddrs", namespaces=ns) == f"http://{dev.ip}/onvif/device_service"


def test_rtsp_digest_realm(tmp_path):
    with running_device("uniview-cam", tmp_path) as dev:
        with socket.create_connection((dev.ip, dev.port(554)), timeout=5) as s:
            s.sendall(f"OPTIONS rtsp://{dev.ip}/ RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
            options = s.recv(4096).decode()
            s.sendall(f"DESCRIBE rtsp://{dev.ip}/media/video1 RTSP/1.0\r\nCSeq: 2\r\n"
                      "Accept: application/sdp\r\n\r\n".encode())
            describe = s.recv(4096).decode()
        assert options.startswith("RTSP/1.0 200 OK")
        assert "CSeq: 1" in options and "Public: OPTIONS, DESCRIBE" in options
        assert describe.startswith("RTSP/1.0 401")
        assert 'realm="UNV"' in describe
