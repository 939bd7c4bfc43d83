"""Hikvision emulation answers real clients the way protocols.md §1 describes."""

from __future__ import annotations

import socket
import uuid

import requests
from defusedxml import ElementTree as SafeET
from requests.auth import HTTPDigestAuth

from tests.lab.harness import running_device


def test_isapi_requires_digest_and_reports_face_capabilities(tmp_path):
    with running_device("hik-face", tmp_path) as dev:
        base = f"http://{dev.ip}:{dev.port(80)}"
        anon = requests.get(f"{base}/ISAPI/System/deviceInfo", timeout=5)
        assert anon.status_code == 401
        assert anon.headers["Server"] == "App-webs/"
        assert 'realm="IP Camera(' in anon.headers["WWW-Authenticate"]
        auth = HTTPDigestAuth("admin", dev.manifest_device["password"])
        info = requests.get(f"{base}/ISAPI/System/deviceInfo", auth=auth, timeout=5)
        assert info.status_code == 200
        root = SafeET.fromstring(info.content)
        ns = {"h": "http://www.hikvision.com/ver20/XMLSchema"}
        assert root.findtext("h:model", namespaces=ns) == "iDS-2CD7A46G0-IZHS"
        assert root.findtext("h:macAddress", namespaces=ns) == dev.manifest_device["mac"]
        caps = requests.get(f"{base}/ISAPI/System/capabilities", auth=auth, timeout=5).text
        assert "<isSupportFaceSnap>true</isSupportFaceSnap>" in caps
        hosts = requests.get(f"{base}/ISAPI/Event/notification/httpHosts", auth=auth, timeout=5).text
        assert "storeface-pic.oss-cn-hangzhou.aliyuncs.com" in hosts


def test_isapi_refuses_and_counts_writes(tmp_path):
    with running_device("hik-cam", tmp_path) as dev:
        auth = HTTPDigestAuth("admin", dev.manifest_device["password"])
        url = f"http://{dev.ip}:{dev.port(80)}/ISAPI/System/Network/EZVIZ"
        put = requests.put(url, data="<EZVIZ><enabled>false</enabled></EZVIZ>", auth=auth, timeout=5)
        assert put.status_code == 403
        assert dev.control({"cmd": "auth"})["writes"] == 1
        ezviz = requests.get(url, auth=auth, timeout=5).text
        assert "<enabled>false</enabled>" in ezviz


def test_lockout_after_three_failures(tmp_path):
    with running_device("hik-face-idle", tmp_path) as dev:
        url = f"http://{dev.ip}:{dev.port(80)}/ISAPI/System/deviceInfo"
        for _ in range(3):
            assert requests.get(url, auth=HTTPDigestAuth("admin", "wrong"), timeout=5).status_code == 401
        right = requests.get(url, auth=HTTPDigestAuth("admin", dev.manifest_device["password"]), timeout=5)
        assert right.status_code == 401
        assert "<lockStatus>lock</lockStatus>" in right.text


def test_sadp_unicast_probe_gets_probematch_with_typo(tmp_path):
    with running_device("hik-cam", tmp_path) as dev:
        probe_id = str(uuid.uuid4()).upper()
        probe = (f'<?xml version="1.0" encoding="utf-8"?><Probe><Uuid>{probe_id}</Uuid>'
                 "<Types>inquiry</Types></Probe>").encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.bind(("127.0.0.1", 0))
            s.sendto(probe, (dev.ip, dev.port(37020)))
            reply, _ = s.recvfrom(65535)
        assert b"\r\n" in reply
        root = SafeET.fromstring(reply)
        assert root.findtext("Uuid") == probe_id
        assert root.findtext("DeviceDescription") == "DS-2CD2386G2-IU"
        assert root.findtext("MAC") == dev.manifest_device["mac"].replace(":", "-")
        assert root.findtext("SoftwareVersion") == "V5.7.18build 240826"
        assert root.findtext("HCPlatformEnable") == "flase"


def test_rtsp_options_and_describe_quirks(tmp_path):
    with running_device("hik-cam", tmp_path) as dev:
        with socket.create_connection((dev.ip, dev.port(554)), timeout=5) as s:
            s.sendall(f"OPTIONS rtsp://{dev.ip}/ RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
            options = s.recv(4096).decode()
            s.sendall(f"DESCRIBE rtsp://{dev.ip}/Streaming/Channels/101 RTSP/1.0\r\nCSeq: 2\r\n"
                      "Accept: application/sdp\r\n\r\n".encode())
            describe = s.recv(4096).decode()
        assert options.startswith("RTSP/1.0 200 OK")
        assert "Public: OPTIONS, DESCRIBE, PLAY" in options
        assert "Date:  " in options
        assert "Server:" not in options
        assert describe.startswith("RTSP/1.0 401")
        assert 'Digest qop="auth", realm="IP Camera(' in describe and 'stale="FALSE"' in describe
