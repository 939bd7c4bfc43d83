"""Xiongmai emulation answers real clients the way protocols.md §4.3 (and clouds.md) describe."""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from defusedxml import ElementTree as SafeET

from scanner.lab.devices.xiongmai import sofia_hash, xm_hex_ip
from scanner.lab.runtime.dnsserver import answer
from tests.lab.harness import PORT_OFFSET, running_device
from tests.lab.onvif_client import envelope

MODEL = "HI3516EV300_85H50AI"
FIRMWARE = "V5.00.R02.000529G9.10010.346717.S"
HEADER = "<BBHIIHHI"  # protocols.md §4.3: head, version, reserved, session, sequence, flags, msg id, length
DEVICE_NS = {"tds": "http://www.onvif.org/ver10/device/wsdl"}


# ---- a minimal DVRIP client (raw sockets, like python-dvr) -------------------------------------
class Dvrip:
    def __init__(self, ip: str, port: int) -> None:
        self.sock = socket.create_connection((ip, port), timeout=5)
        self.session = 0
        self.sequence = 0

    def call(self, msg_id: int, body: dict[str, Any]) -> tuple[tuple[int, ...], dict[str, Any]]:
        payload = json.dumps(body).encode() + b"\n\x00"
        self.sock.sendall(struct.pack(HEADER, 0xFF, 0, 0, self.session, self.sequence, 0, msg_id, len(payload))
                          + payload)
        self.sequence += 1
        header = struct.unpack(HEADER, self._read(20))
        data = self._read(header[7])
        assert data.endswith(b"\n\x00")
        return header, json.loads(data[:-2])

    def login(self, password: str, user: str = "admin") -> dict[str, Any]:
        header, reply = self.call(1000, {"EncryptType": "MD5", "LoginType": "DVRIP-Web",
                                         "PassWord": sofia_hash(password), "UserName": user})
        assert header[6] == 1001
        if reply["Ret"] == 100:
            self.session = int(reply["SessionID"], 16)
            assert header[3] == self.session
        return reply

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def close(self) -> None:
        self.sock.close()


def _search(sock: socket.socket, ip: str, sequence: int = 0) -> None:
    sock.sendto(struct.pack(HEADER, 0xFF, 0, 0, 0, sequence, 0, 1530, 0), (ip, 34569))


def test_sofia_hash_and_hex_ip_vectors():
    # Published vectors: the blank password and "password123" (Sofia protocol notes, python-dvr).
    assert sofia_hash("") == "tlJwpbo6"
    assert sofia_hash("password123") == "sY6ww5dO"
    assert len(sofia_hash("Lab4371-xm!")) == 8 and sofia_hash("Lab4371-xm!").isalnum()
    assert sofia_hash("a") != sofia_hash("b")
    assert xm_hex_ip("192.168.1.10") == "0x0A01A8C0"
    assert xm_hex_ip("255.255.255.0") == "0x00FFFFFF"


def test_discovery_reply_parses(tmp_path):
    with running_device("xm-cam", tmp_path) as dev:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.bind(("127.0.0.1", 0))
            _search(s, dev.ip, sequence=7)
            reply, sender = s.recvfrom(65535)
        head, version, _res, session, sequence, _flags, msg_id, length = struct.unpack(HEADER, reply[:20])
        assert sender[0] == dev.ip
        assert (head, version, session, sequence, msg_id) == (0xFF, 0, 0, 7, 1531)
        assert length == len(reply) - 20
        doc = json.loads(reply[20:20 + length].replace(b"\x00", b""))
        assert doc["Ret"] == 100 and doc["Name"] == "NetWork.NetCommon" and doc["SessionID"] == "0x00000000"
        common = doc["NetWork.NetCommon"]
        assert common["MAC"] == dev.manifest_device["mac"]
        assert common["SN"] == dev.manifest_device["serial"]
        assert common["HostIP"] == xm_hex_ip(dev.ip)
        assert (common["TCPPort"], common["UDPPort"], common["HttpPort"]) == (34567, 34568, 80)
        for key in ("HostName", "SSLPort", "MaxBps", "MonMode", "TransferPlan", "UseHSDownLoad", "GateWay",
                    "Submask"):
            assert key in common


def test_discovery_ignores_garbage_and_still_answers(tmp_path):
    with running_device("xm-cam", tmp_path) as dev:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.7)
            s.bind(("127.0.0.1", 0))
            for junk in (b"", b"garbage", b"\xff" * 5, os.urandom(400),
                         struct.pack(HEADER, 0xFE, 0, 0, 0, 0, 0, 1530, 0),  # wrong head
                         struct.pack(HEADER, 0xFF, 0, 0, 0, 0, 0, 1000, 0)):  # not a search
                s.sendto(junk, (dev.ip, 34569))
            try:
                unexpected = s.recvfrom(65535)
            except TimeoutError:
                unexpected = None
            assert unexpected is None
            s.settimeout(3)
            _search(s, dev.ip)
            reply, _ = s.recvfrom(65535)
        assert struct.unpack(HEADER, reply[:20])[6] == 1531
        assert dev.node.counters["xm_discovery_probes"] == 1


def test_dvrip_login_and_reads(tmp_path):
    with running_device("xm-cam", tmp_path) as dev:
        client = Dvrip(dev.ip, 34567)
        try:
            early_header, early = client.call(1020, {"Name": "SystemInfo", "SessionID": "0x00000000"})
            assert early_header[6] == 1021 and early["Ret"] == 105  # not logged in yet
            reply = client.login(dev.manifest_device["password"])
            assert reply["Ret"] == 100
            assert "DeviceType " in reply and "DeviceType" not in reply  # trailing space, as real firmware
            assert reply["AliveInterval"] > 0
            assert reply["SessionID"].startswith("0x") and int(reply["SessionID"], 16) > 0
            sid = reply["SessionID"]

            header, info = client.call(1020, {"Name": "SystemInfo", "SessionID": sid})
            assert header[6] == 1021 and info["Ret"] == 100
            assert info["SystemInfo"]["DeviceModel"] == MODEL
            assert info["SystemInfo"]["SoftWareVersion"] == FIRMWARE
            assert info["SystemInfo"]["SerialNo"] == dev.manifest_device["serial"]

            header, ability = client.call(1360, {"Name": "SystemFunction", "SessionID": sid})
            assert header[6] == 1361
            functions = ability["SystemFunction"]
            assert functions["AlarmFunction"]["HumanDection"] is True
            assert functions["OtherFunction"]["SupportFaceDetectV2"] is False
            assert functions["OtherFunction"]["SupportFaceRecognition"] is False

            header, nat = client.call(1042, {"Name": "NetWork.Nat", "SessionID": sid})
            assert header[6] == 1043 and nat["Name"] == "NetWork.Nat"
            assert nat["NetWork.Nat"]["NatEnable"] is True

            _, missing = client.call(1042, {"Name": "NetWork.NoSuchThing", "SessionID": sid})
            assert missing["Ret"] == 102 and "NetWork.NoSuchThing" not in missing

            header, alive = client.call(1006, {"Name": "KeepAlive", "SessionID": sid})
            assert header[6] == 1007 and alive["Ret"] == 100
        finally:
            client.close()


def test_dvrip_wrong_password_fails_and_is_counted(tmp_path):
    with running_device("xm-cam", tmp_path) as dev:
        client = Dvrip(dev.ip, 34567)
        try:
            assert client.login("not-the-password")["Ret"] == 203
            assert client.login(dev.manifest_device["password"], user="root")["Ret"] == 205
            _, still_out = client.call(1042, {"Name": "NetWork.Nat", "SessionID": "0x00000000"})
            assert still_out["Ret"] == 105
            assert client.login(dev.manifest_device["password"])["Ret"] == 100
        finally:
            client.close()
        auth = dev.control({"cmd": "auth"})
        assert auth["attempts"] == 3


def test_dvrip_lockout_shared_with_the_user_db(tmp_path):
    with running_device("xm-cam", tmp_path, identity_overrides={"lock_after": 2}) as dev:
        client = Dvrip(dev.ip, 34567)
        try:
            assert client.login("wrong-1")["Ret"] == 203
            assert client.login("wrong-2")["Ret"] == 203
            assert client.login(dev.manifest_device["password"])["Ret"] == 206
        finally:
            client.close()
        assert dev.control({"cmd": "auth"})["locked"] == ["admin"]


def test_dvrip_refuses_and_counts_writes(tmp_path):
    with running_device("xm-cam", tmp_path) as dev:
        client = Dvrip(dev.ip, 34567)
        try:
            sid = client.login(dev.manifest_device["password"])["SessionID"]
            header, refused = client.call(1040, {"Name": "NetWork.Nat", "SessionID": sid,
                                                 "NetWork.Nat": {"NatEnable": False}})
            assert header[6] == 1041 and refused["Ret"] == 103
            _, nat = client.call(1042, {"Name": "NetWork.Nat", "SessionID": sid})
            assert nat["NetWork.Nat"]["NatEnable"] is True
        finally:
            client.close()
        assert dev.control({"cmd": "auth"})["writes"] == 1
        assert dev.node.counters["dvrip_writes"] == 1


def test_dvrip_garbage_closes_connection_and_device_survives(tmp_path):
    with running_device("xm-cam", tmp_path) as dev:
        with socket.create_connection((dev.ip, 34567), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            assert s.recv(4096) == b""
        client = Dvrip(dev.ip, 34567)
        try:
            assert client.login(dev.manifest_device["password"])["Ret"] == 100
        finally:
            client.close()


def test_http_and_rtsp_banners(tmp_path):
    with running_device("xm-cam", tmp_path) as dev:
        page = requests.get(f"http://{dev.ip}:{dev.port(80)}/", timeout=5)
        assert page.status_code == 200
        assert page.headers["Server"] == "uc-httpd 1.0.0"
        assert "<title>NETSurveillance WEB</title>" in page.text
        with socket.create_connection((dev.ip, dev.port(554)), timeout=5) as s:
            s.sendall(f"OPTIONS rtsp://{dev.ip}:554 RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
            options = s.recv(4096).decode()
            s.sendall(f"DESCRIBE rtsp://{dev.ip}:554/user=admin_password=_channel=1_stream=0.sdp RTSP/1.0\r\n"
                      "CSeq: 2\r\nAccept: application/sdp\r\n\r\n".encode())
            describe = s.recv(4096).decode()
        assert options.startswith("RTSP/1.0 200 OK")
        assert "Server: H264DVR 1.0\r\n" in options
        assert "Public: OPTIONS, DESCRIBE, SETUP, TEARDOWN, GET_PARAMETER, PLAY, PAUSE" in options
        assert "Date:" not in options
        assert describe.startswith("RTSP/1.0 401") and "Server: H264DVR 1.0" in describe


def _soap(operation: str, token: tuple[str, str] | None) -> bytes:
    return envelope(operation, token=token)


def test_onvif_on_8899_with_username_token(tmp_path):
    with running_device("xm-cam", tmp_path) as dev:
        url = f"http://{dev.ip}:8899/onvif/device_service"
        anon = requests.post(url, data=_soap("GetDeviceInformation", None), timeout=5)
        assert anon.status_code == 400 and "ter:NotAuthorized" in anon.text  # token-only device (§5.3)
        bad = requests.post(url, data=_soap("GetDeviceInformation", ("admin", "nope")), timeout=5)
        assert bad.status_code == 400
        ok = requests.post(url, data=_soap("GetDeviceInformation", ("admin", dev.manifest_device["password"])),
                           timeout=5)
        assert ok.status_code == 200
        root = SafeET.fromstring(ok.content)
        assert root.findtext(".//tds:Model", namespaces=DEVICE_NS) == MODEL
        assert root.findtext(".//tds:FirmwareVersion", namespaces=DEVICE_NS) == FIRMWARE
        assert root.findtext(".//tds:SerialNumber", namespaces=DEVICE_NS) == dev.manifest_device["serial"]
        caps = requests.post(url, data=_soap("GetCapabilities", None), timeout=5)
        assert caps.status_code == 200 and f"http://{dev.ip}:8899/onvif/media_service" in caps.text
        # Port 80 is uc-httpd only: no ONVIF there.
        assert requests.post(f"http://{dev.ip}:{dev.port(80)}/onvif/device_service",
                             data=_soap("GetCapabilities", None), timeout=5).status_code == 404


def test_ws_discovery_points_at_8899(tmp_path):
    with running_device("xm-cam", tmp_path) as dev:
        msg_id = f"uuid:{uuid.uuid4()}"
        probe = (
            '<?xml version="1.0" encoding="UTF-8"?><e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
            'xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
            'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
            'xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><e:Header>'
            f"<w:MessageID>{msg_id}</w:MessageID><w:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>"
            "<w:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action></e:Header>"
            "<e:Body><d:Probe><d:Types>tds:Device</d:Types></d:Probe></e:Body></e:Envelope>"
        ).encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.bind(("127.0.0.1", 0))
            s.sendto(probe, (dev.ip, 3702))
            reply, _ = s.recvfrom(65535)
        root = SafeET.fromstring(reply)
        ns = {"d": "http://schemas.xmlsoap.org/ws/2005/04/discovery"}
        assert root.findtext(".//d:XAddrs", namespaces=ns) == f"http://{dev.ip}:8899/onvif/device_service"
        scopes = (root.findtext(".//d:Scopes", namespaces=ns) or "").split()
        assert "onvif://www.onvif.org/name/XM" in scopes
        assert f"onvif://www.onvif.org/hardware/{MODEL}" in scopes


# ---- cloud: names through the outside resolver, plain HTTP POST / on 8086 -----------------------
OUTSIDE_RESOLVER = "127.77.253.71"
SECU100_SINK = "127.77.253.72"


class _Sink(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append((self.path, self.headers.get("Host", ""), dict(self.headers), body))
        out = b'{"DssProtocol": {"Header": {"ErrorNum": "200"}}}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *_args: object) -> None:
        pass


def test_cloud_posts_resolve_through_outside_resolver(tmp_path):
    names = {"pub-cfg.secu100.net": SECU100_SINK, "access-dss.secu100.net": SECU100_SINK}
    queried: list[bytes] = []
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind((OUTSIDE_RESOLVER, 53 + PORT_OFFSET))
    dns.settimeout(0.2)
    stop = threading.Event()

    def resolve_forever() -> None:
        while not stop.is_set():
            try:
                query, addr = dns.recvfrom(4096)
            except TimeoutError:
                continue
            queried.append(query)
            reply = answer(query, names)
            if reply is not None:
                dns.sendto(reply, addr)

    _Sink.seen = []
    sink = ThreadingHTTPServer((SECU100_SINK, 8086), _Sink)
    threads = [threading.Thread(target=resolve_forever, daemon=True),
               threading.Thread(target=sink.serve_forever, daemon=True)]
    for t in threads:
        t.start()
    try:
        with running_device("xm-cam", tmp_path, identity_overrides={"outside_resolver": OUTSIDE_RESOLVER}) as dev:
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and len(_Sink.seen) < 2:
                time.sleep(0.1)
            counters = dict(dev.node.counters)
    finally:
        stop.set()
        sink.shutdown()
        sink.server_close()
        dns.close()
    assert len(queried) >= 2  # both names went to the outside resolver (the store resolver is 127.0.0.1)
    by_type = {}
    for path, host, headers, body in _Sink.seen:
        assert path == "/"
        doc = json.loads(body)
        protocol = next(iter(doc))
        by_type[doc[protocol]["Header"]["MessageType"]] = (host, headers, doc[protocol]["Body"])
    cfg_host, cfg_headers, cfg_body = by_type["MSG_DSS_CFG_QUERY_REQ"]
    assert cfg_host == "pub-cfg.secu100.net" and cfg_headers["User-Agent"] == "XAPP"
    assert cfg_body["ProductID"] == MODEL and cfg_body["OtherInfo"] == FIRMWARE
    dss_host, _, dss_body = by_type["MSG_DEV_REGISTER_REQ"]
    assert dss_host == "access-dss.secu100.net"
    assert dss_body["SerialNumber"] == dss_body["AuthCode"] != ""
    assert counters.get("polls") == 1 and counters.get("heartbeats") == 1
