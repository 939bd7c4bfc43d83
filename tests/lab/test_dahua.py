"""Dahua emulation answers real clients the way protocols.md §2 (and §5 for ONVIF) describes."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import time

import requests
from defusedxml import ElementTree as SafeET
from requests.auth import HTTPDigestAuth

from tests.lab.harness import running_device
from tests.lab.onvif_client import envelope, ws_discovery_probe

FACE_MODEL = "IPC-HDW5442TM-AS"
CAM_MODEL = "IPC-HFW2431S-S-S2"
DHIP_SEARCH = {"method": "DHDiscover.search", "params": {"mac": "", "uni": 1}}


# ---- helpers (independent of the emulator's own code) -------------------------------------------
def dhip_packet(body: bytes) -> bytes:
    """protocols.md §2.1: u32 32, "DHIP", 8 zero bytes, u32 len, u32 0, u32 len, u32 0, body."""
    return struct.pack("<I", 32) + b"DHIP" + bytes(8) + struct.pack("<IIII", len(body), 0, len(body), 0) + body


def udp_exchange(ip: str, port: int, datagrams: list[bytes], *, wait: float = 3.0) -> list[bytes]:
    """Send datagrams from 127.0.0.1, collect every reply until ``wait`` passes without one."""
    replies = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        for datagram in datagrams:
            s.sendto(datagram, (ip, port))
        s.settimeout(wait)
        try:
            while True:
                replies.append(s.recvfrom(65535)[0])
                s.settimeout(0.5)
        except TimeoutError:
            pass
    return replies


def parse_dhip_reply(reply: bytes) -> tuple[dict, bytes]:
    """Check the framing of a DHIP reply; (JSON object, bytes after the JSON)."""
    header_len, magic = struct.unpack_from("<I4s", reply, 0)
    assert (header_len, magic) == (32, b"DHIP")
    assert reply[8:16] == bytes(8)
    length, zero1, length_again, zero2 = struct.unpack_from("<IIII", reply, 16)
    assert (zero1, zero2) == (0, 0) and length == length_again == len(reply) - 32
    body = reply[32:]
    text = body.rstrip(b"\x00\n")
    return json.loads(text), body[len(text):]


def raw_http(ip: str, port: int, path: str) -> str:
    """One GET with Connection: close; the whole raw response (header names as sent)."""
    with socket.create_connection((ip, port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.decode("latin-1")


def header_names(raw: str) -> list[str]:
    head = raw.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
    return [line.split(":", 1)[0] for line in head]


def key_values(text: str) -> dict[str, str]:
    assert text.endswith("\r\n")
    return dict(line.split("=", 1) for line in text.split("\r\n") if line)


def md5_upper(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest().upper()


def rpc2_login(base: str, user: str, password: str) -> tuple[dict, dict]:
    """The two-step RPC2_Login of §2.3: (challenge reply, second reply)."""
    first = requests.post(f"{base}/RPC2_Login", timeout=5, json={
        "method": "global.login", "params": {"userName": user, "password": "", "clientType": "Web3.0"}, "id": 1})
    challenge = first.json()
    realm, rand = challenge["params"]["realm"], challenge["params"]["random"]
    hashed = md5_upper(f"{user}:{rand}:{md5_upper(f'{user}:{realm}:{password}')}")
    second = requests.post(f"{base}/RPC2_Login", timeout=5, json={
        "method": "global.login", "session": challenge["session"], "id": 2,
        "params": {"userName": user, "password": hashed, "clientType": "Web3.0",
                   "authorityType": "Default", "passwordType": "Default"}})
    return challenge, second.json()


def rpc2(base: str, session: int, method: str, params: dict | None = None) -> dict:
    reply = requests.post(f"{base}/RPC2", timeout=5,
                          json={"method": method, "params": params or {}, "id": 7, "session": session})
    assert reply.status_code == 200
    return reply.json()


def onvif_device_info(url: str, user: str, password: str, created_at: float) -> requests.Response:
    """GetDeviceInformation with a WS-UsernameToken whose Created is ``created_at`` (UTC)."""
    return requests.post(url, data=envelope("GetDeviceInformation", token=(user, password), created_at=created_at),
                         timeout=5, headers={"Content-Type": "application/soap+xml; charset=utf-8"})


# ---- DHIP ---------------------------------------------------------------------------------------
def test_dhip_search_gets_notify_dev_info(tmp_path):
    with running_device("dahua-face", tmp_path) as dev:
        probe = dhip_packet(json.dumps(DHIP_SEARCH).encode() + b"\n")
        replies = udp_exchange(dev.ip, dev.port(37810), [probe])
        assert len(replies) == 1
        msg, trailer = parse_dhip_reply(replies[0])
        assert trailer in (b"\x00", b"\n", b"\n\x00", b"\x00\n")  # the NUL/newline quirk
        assert trailer  # and it is really there
        assert msg["method"] == "client.notifyDevInfo"
        assert msg["mac"] == dev.manifest_device["mac"]
        info = msg["params"]["deviceInfo"]
        assert info["DeviceClass"] == "IPC"
        assert info["DeviceType"] == FACE_MODEL
        assert info["SerialNo"] == dev.manifest_device["serial"]
        assert info["Vendor"] == "Dahua"
        assert info["Version"] == "2.800.0000016.0.R"
        assert (info["HttpPort"], info["Port"]) == (80, 37777)
        assert info["IPv4Address"]["IPAddress"] == dev.ip
        assert info["IPv4Address"]["SubnetMask"] == "255.255.255.0"
        assert info["UnLoginFuncMask"] == 1 and "Init" in info


def test_dhip_ignores_garbage_and_keeps_answering(tmp_path):
    with running_device("dahua-cam", tmp_path) as dev:
        garbage = [
            b"",
            b"\x00" * 31,
            b"GET / HTTP/1.1\r\n\r\n",
            os.urandom(700),
            struct.pack("<I4s8xIIII", 32, b"DHIP", 0xFFFFFFFF, 0, 0xFFFFFFFF, 0) + b"{",
            dhip_packet(b"\xff\xfe not json"),
            dhip_packet(b"[1, 2, 3]"),
            dhip_packet(json.dumps({"method": "DHDiscover.setConfig", "params": {}}).encode()),
        ]
        assert udp_exchange(dev.ip, dev.port(37810), garbage, wait=1.0) == []
        replies = udp_exchange(dev.ip, dev.port(37810), [dhip_packet(json.dumps(DHIP_SEARCH).encode())])
        assert len(replies) == 1
        msg, _ = parse_dhip_reply(replies[0])
        assert msg["params"]["deviceInfo"]["DeviceType"] == CAM_MODEL
        counters = dev.control({"cmd": "status"})["counters"]
        assert counters["dhip_ignored"] == len(garbage)
        assert counters["dhip_probes"] == 1


def test_dhip_answers_a_single_byte_like_internet_devices(tmp_path):
    with running_device("dahua-cam", tmp_path) as dev:
        replies = udp_exchange(dev.ip, dev.port(37810), [b"\x01"])
        assert len(replies) == 1
        msg, _ = parse_dhip_reply(replies[0])
        assert msg["params"]["deviceInfo"]["SerialNo"] == dev.manifest_device["serial"]


# ---- web / CGI ----------------------------------------------------------------------------------
def test_web_page_markers_without_server_header(tmp_path):
    with running_device("dahua-cam", tmp_path) as dev:
        raw = raw_http(dev.ip, dev.port(80), "/")
        assert raw.startswith("HTTP/1.1 200 OK\r\n")
        names = header_names(raw)
        assert "SERVER" not in {n.upper() for n in names}
        assert all(n == n.upper() for n in names)
        assert "CONNECTION: close" in raw and "CACHE-CONTROL: max-age=0" in raw
        assert "<title>WEB SERVICE</title>" in raw
        assert '"method":"global.login"' in raw and "/RPC2_Login" in raw


def test_cgi_requires_digest_and_answers_key_value(tmp_path):
    with running_device("dahua-face", tmp_path) as dev:
        serial = dev.manifest_device["serial"]
        anon = raw_http(dev.ip, dev.port(80), "/cgi-bin/magicBox.cgi?action=getSystemInfo")
        assert anon.startswith("HTTP/1.1 401 Unauthorized\r\n")
        assert f'WWW-AUTHENTICATE: Digest qop="auth", realm="Login to {serial}", nonce="' in anon
        assert "stale=" not in anon
        assert "SERVER" not in {n.upper() for n in header_names(anon)}

        base = f"http://{dev.ip}:{dev.port(80)}/cgi-bin/magicBox.cgi"
        auth = HTTPDigestAuth("admin", dev.manifest_device["password"])
        info = requests.get(f"{base}?action=getSystemInfo", auth=auth, timeout=5)
        assert info.status_code == 200
        assert all(name == name.upper() for name in info.headers)
        assert "SERVER" not in info.headers
        fields = key_values(info.text)
        assert fields["deviceType"] == FACE_MODEL
        assert fields["serialNumber"] == serial
        expected = {
            "getDeviceType": {"type": FACE_MODEL},
            "getSoftwareVersion": {"version": "2.800.0000016.0.R,build:2020-06-05"},
            "getVendor": {"vendor": "Dahua"},
            "getSerialNo": {"sn": serial},
            "getMachineName": {"name": "dahua-face"},
        }
        for action, want in expected.items():
            assert key_values(requests.get(f"{base}?action={action}", auth=auth, timeout=5).text) == want
        bad = requests.get(f"{base}?action=getNothing", auth=auth, timeout=5)
        assert bad.status_code == 400

        wrong = requests.get(f"{base}?action=getSerialNo", auth=HTTPDigestAuth("admin", "nope"), timeout=5)
        assert wrong.status_code == 401


def config(dev, name: str) -> dict[str, str]:
    url = f"http://{dev.ip}:{dev.port(80)}/cgi-bin/configManager.cgi?action=getConfig&name={name}"
    reply = requests.get(url, auth=HTTPDigestAuth("admin", dev.manifest_device["password"]), timeout=5)
    assert reply.status_code == 200
    return key_values(reply.text)


def test_face_camera_config_shows_face_rule_and_picture_upload(tmp_path):
    with running_device("dahua-face", tmp_path) as dev:
        upload = config(dev, "PictureHttpUpload")
        assert upload["table.PictureHttpUpload.Enable"] == "true"
        assert upload["table.PictureHttpUpload.UploadServerList[0].Address"] == "iai.tencentcloudapi.com"
        assert upload["table.PictureHttpUpload.UploadServerList[0].Port"] == "443"
        rules = config(dev, "VideoAnalyseRule")
        face = [k.rsplit(".", 1)[0] for k, v in rules.items() if k.endswith(".Type") and v == "FaceDetection"]
        assert face == ["table.VideoAnalyseRule[0][0]"]
        assert rules["table.VideoAnalyseRule[0][0].Enable"] == "true"
        assert config(dev, "T2UServer")["table.T2UServer.Enable"] == "true"
        network = config(dev, "Network")
        assert network["table.Network.eth0.PhysicalAddress"] == dev.manifest_device["mac"]
        assert network["table.Network.eth0.IPAddress"] == dev.ip
        assert "table.NTP.Address" in config(dev, "NTP")
        assert config(dev, "EventHttpUpload")["table.EventHttpUpload.Enable"] == "false"
        assert "table.VSP_PaaS.Enable" in config(dev, "VSP_PaaS")
        assert dev.control({"cmd": "walkby"})["behaviours"] == 1  # the Tencent snapshot burst


def test_plain_camera_config_has_p2p_but_no_face(tmp_path):
    with running_device("dahua-cam", tmp_path) as dev:
        assert config(dev, "PictureHttpUpload")["table.PictureHttpUpload.Enable"] == "false"
        upload = config(dev, "PictureHttpUpload")
        assert "tencent" not in upload["table.PictureHttpUpload.UploadServerList[0].Address"]
        types = {v for k, v in config(dev, "VideoAnalyseRule").items() if k.endswith(".Type")}
        assert types == {"CrossLineDetection", "CrossRegionDetection"}
        assert config(dev, "T2UServer")["table.T2UServer.Enable"] == "true"
        assert dev.control({"cmd": "walkby"})["behaviours"] == 0


def test_cgi_writes_are_refused_and_counted(tmp_path):
    with running_device("dahua-face", tmp_path) as dev:
        auth = HTTPDigestAuth("admin", dev.manifest_device["password"])
        url = (f"http://{dev.ip}:{dev.port(80)}/cgi-bin/configManager.cgi"
               "?action=setConfig&PictureHttpUpload.Enable=false")
        assert requests.get(url, auth=auth, timeout=5).status_code == 403
        assert dev.control({"cmd": "auth"})["writes"] == 1
        counters = dev.control({"cmd": "status"})["counters"]
        assert counters["cgi_writes"] == 1
        assert counters["cgi_writes_unauthenticated"] == 1  # the digest client's first, anonymous try
        assert config(dev, "PictureHttpUpload")["table.PictureHttpUpload.Enable"] == "true"


# ---- RPC2 ---------------------------------------------------------------------------------------
def test_rpc2_login_challenge_leaks_mac_and_serial(tmp_path):
    with running_device("dahua-face", tmp_path) as dev:
        reply = requests.post(f"http://{dev.ip}:{dev.port(80)}/RPC2_Login", timeout=5, json={
            "method": "global.login", "params": {"userName": "admin", "password": "", "clientType": "Web3.0"},
            "id": 1})
        assert reply.status_code == 200
        assert "SERVER" not in reply.headers
        body = reply.json()
        assert set(body) == {"error", "id", "params", "result", "session"}
        assert body["error"] == {"code": 268632079, "message": "Component error: login challenge!"}
        assert body["result"] is False and body["id"] == 1
        assert isinstance(body["session"], int)
        params = body["params"]
        assert set(params) == {"authorization", "encryption", "mac", "random", "realm"}
        assert params["mac"] == dev.manifest_device["mac"].replace(":", "").upper()
        assert params["realm"] == f"Login to {dev.manifest_device['serial']}"
        assert params["encryption"] == "Default"
        assert params["random"].isdigit()
        int(params["authorization"], 16)


def test_rpc2_full_login_then_calls(tmp_path):
    with running_device("dahua-face", tmp_path) as dev:
        base = f"http://{dev.ip}:{dev.port(80)}"
        challenge, login = rpc2_login(base, "admin", dev.manifest_device["password"])
        assert login["result"] is True
        session = login["session"]
        assert session == challenge["session"]
        info = rpc2(base, session, "magicBox.getSystemInfo")
        assert info["result"] is True
        assert info["params"]["serialNumber"] == dev.manifest_device["serial"]
        assert info["params"]["deviceType"] == FACE_MODEL
        version = rpc2(base, session, "magicBox.getSoftwareVersion")
        assert version["params"]["version"]["Version"] == "2.800.0000016.0.R"
        upload = rpc2(base, session, "configManager.getConfig", {"name": "PictureHttpUpload"})
        assert upload["params"]["table"]["Enable"] is True
        assert upload["params"]["table"]["UploadServerList"][0]["Address"] == "iai.tencentcloudapi.com"
        rules = rpc2(base, session, "configManager.getConfig", {"name": "VideoAnalyseRule"})["params"]["table"]
        assert {"Enable": True, "Name": "FaceDetection", "Type": "FaceDetection"} in rules[0]
        t2u = rpc2(base, session, "configManager.getConfig", {"name": "T2UServer"})
        assert t2u["params"]["table"]["Enable"] is True
        assert rpc2(base, session, "configManager.getConfig", {"name": "NoSuchThing"})["result"] is False
        write = rpc2(base, session, "configManager.setConfig", {"name": "T2UServer", "table": {"Enable": False}})
        assert write["result"] is False
        assert dev.control({"cmd": "auth"})["writes"] == 1
        assert rpc2(base, session + 1, "magicBox.getSystemInfo")["result"] is False


def test_rpc2_wrong_password_fails_and_is_counted(tmp_path):
    with running_device("dahua-cam", tmp_path) as dev:
        base = f"http://{dev.ip}:{dev.port(80)}"
        _, login = rpc2_login(base, "admin", "not-the-password")
        assert login["result"] is False
        assert "error" in login
        assert rpc2(base, login["session"], "magicBox.getSystemInfo")["result"] is False
        assert dev.control({"cmd": "auth"})["attempts"] == 1
        _, good = rpc2_login(base, "admin", dev.manifest_device["password"])
        assert good["result"] is True
        plain = rpc2(base, good["session"], "configManager.getConfig", {"name": "PictureHttpUpload"})
        assert plain["params"]["table"]["Enable"] is False


# ---- RTSP ---------------------------------------------------------------------------------------
def test_rtsp_banner_realm_and_405(tmp_path):
    with running_device("dahua-cam", tmp_path) as dev:
        with socket.create_connection((dev.ip, dev.port(554)), timeout=5) as s:
            s.sendall(f"OPTIONS rtsp://{dev.ip}/ RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
            options = s.recv(4096).decode()
            s.sendall(f"DESCRIBE rtsp://{dev.ip}/cam/realmonitor?channel=1&subtype=0 RTSP/1.0\r\nCSeq: 2\r\n"
                      "Accept: application/sdp\r\n\r\n".encode())
            describe = s.recv(4096).decode()
            s.sendall(f"FROB rtsp://{dev.ip}/ RTSP/1.0\r\nCSeq: 3\r\n\r\n".encode())
            unknown = s.recv(4096).decode()
        assert options.startswith("RTSP/1.0 200 OK\r\n")
        assert "Server: Dahua Rtsp Server\r\n" in options
        assert describe.startswith("RTSP/1.0 401 Unauthorized\r\n")
        assert "Server: Dahua Rtsp Server\r\n" in describe
        assert f'realm="Login to {dev.manifest_device["serial"]}"' in describe
        assert unknown.startswith("RTSP/1.0 405 Method Not Allowed\r\n")
        assert "Server: Dahua Rtsp Server\r\n" in unknown


# ---- ONVIF --------------------------------------------------------------------------------------
def test_onvif_username_token_needs_the_device_clock(tmp_path):
    with running_device("dahua-face", tmp_path) as dev:
        url = f"http://{dev.ip}:{dev.port(80)}/onvif/device_service"
        password = dev.manifest_device["password"]
        skewed = onvif_device_info(url, "admin", password, time.time() + 7200)
        assert skewed.status_code == 200
        root = SafeET.fromstring(skewed.content)
        ns = {"tds": "http://www.onvif.org/ver10/device/wsdl"}
        assert root.findtext(".//tds:Manufacturer", namespaces=ns) == "Dahua"
        assert root.findtext(".//tds:Model", namespaces=ns) == FACE_MODEL
        assert root.findtext(".//tds:SerialNumber", namespaces=ns) == dev.manifest_device["serial"]
        assert root.findtext(".//tds:FirmwareVersion", namespaces=ns).startswith("2.800.0000016.0.R")
        host_clock = onvif_device_info(url, "admin", password, time.time())
        assert host_clock.status_code == 400
        assert b"NotAuthorized" in host_clock.content
        anonymous = requests.post(url, data=b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
                                  b'<s:Body><GetDeviceInformation xmlns="http://www.onvif.org/ver10/device/wsdl"/>'
                                  b"</s:Body></s:Envelope>", timeout=5)
        assert anonymous.status_code == 401
        assert f'realm="Login to {dev.manifest_device["serial"]}"' in anonymous.headers["WWW-Authenticate"]


def test_onvif_face_analytics_only_on_face_camera(tmp_path):
    body = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
            b'<GetEventProperties xmlns="http://www.onvif.org/ver10/events/wsdl"/></s:Body></s:Envelope>')
    for profile, has_face in (("dahua-face", True), ("dahua-cam", False)):
        with running_device(profile, tmp_path) as dev:
            auth = HTTPDigestAuth("admin", dev.manifest_device["password"])
            events = requests.post(f"http://{dev.ip}:{dev.port(80)}/onvif/event_service", data=body, auth=auth,
                                   timeout=5)
            assert events.status_code == 200
            assert (b"FaceDetection" in events.content) is has_face
            assert b"CellMotionDetector" in events.content


def test_ws_discovery_scopes_name_dahua_and_model(tmp_path):
    with running_device("dahua-cam", tmp_path) as dev:
        msg_id, probe = ws_discovery_probe()
        replies = udp_exchange(dev.ip, dev.port(3702), [probe])
        assert len(replies) == 1
        text = replies[0].decode()
        assert msg_id in text
        assert "onvif://www.onvif.org/name/Dahua" in text
        assert f"onvif://www.onvif.org/hardware/{CAM_MODEL}" in text
        assert f"http://{dev.ip}/onvif/device_service" in text
