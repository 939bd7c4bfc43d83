"""The unbranded sales-office face box and the fragile HiSilicon camera, with real clients."""

from __future__ import annotations

import socket
import ssl
import time

import pytest
import requests
from defusedxml import ElementTree as SafeET
from requests.auth import HTTPBasicAuth

from tests.lab.harness import NodeHandle, running_device
from tests.lab.onvif_client import TAN, TEV
from tests.lab.test_ulucu import (
    credentials,
    devices_resolve_via,  # noqa: F401 - a fixture
    local_text,
    running_clouds,
    soap,
    wait_for,
    ws_discovery_probe,
)

SALESBOX_CLOUD = "snap.anchang-cloud.example"


# ---- sales-office face box ----------------------------------------------------------------------
def test_salesbox_has_no_web_ui_only_onvif(tmp_path):
    with running_device("salesbox", tmp_path) as dev:
        for path in ("/", "/index.html", "/doc/page/login.asp"):
            page = requests.get(f"http://{dev.ip}:{dev.port(80)}{path}", timeout=5)
            assert page.status_code == 404, path
            assert page.headers["Server"] == "gSOAP/2.8"
        clock = soap(dev, "GetSystemDateAndTime")
        assert clock.status_code == 200 and clock.headers["Server"] == "gSOAP/2.8"
        scopes = local_text(ws_discovery_probe(dev), "Scopes").split()
        assert "onvif://www.onvif.org/hardware/FR-B200" in scopes
        assert "onvif://www.onvif.org/name/IPC" in scopes


def test_salesbox_face_rule_and_topic_only_after_login(tmp_path):
    with running_device("salesbox", tmp_path) as dev:
        caps = soap(dev, "GetCapabilities")
        assert caps.status_code == 200
        assert "<tt:RuleSupport>true</tt:RuleSupport>" in caps.text  # analytics exist, face unnamed
        assert "face" not in caps.text.lower()
        for op, ns, service in (("GetDeviceInformation", None, "device_service"),
                                ("GetSupportedRules", TAN, "analytics_service"),
                                ("GetEventProperties", TEV, "event_service")):
            anon = soap(dev, op, ns, service=service) if ns else soap(dev, op)
            assert anon.status_code == 401, op
            assert 'realm="IPC"' in anon.headers["WWW-Authenticate"]
            assert "Face" not in anon.text

        token = credentials(dev)
        info = SafeET.fromstring(soap(dev, "GetDeviceInformation", token=token).content)
        assert local_text(info, "Manufacturer") == "IPC"
        assert local_text(info, "Model") == "FR-B200"
        assert local_text(info, "FirmwareVersion") == "1.0.7"

        rules = soap(dev, "GetSupportedRules", TAN, service="analytics_service", token=token)
        assert rules.status_code == 200
        names = [el.get("Name") for el in SafeET.fromstring(rules.content).iter()
                 if el.tag.endswith("}RuleDescription")]
        assert names == ["tt:CellMotionDetector", "tt:FaceRecognition"]

        events = soap(dev, "GetEventProperties", TEV, service="event_service", token=token)
        assert events.status_code == 200
        topic_set = next(el for el in SafeET.fromstring(events.content).iter() if el.tag.endswith("}TopicSet"))
        paths = []
        for top in topic_set:
            for middle in top:
                for leaf in middle:
                    paths.append("/".join(el.tag.rsplit("}", 1)[-1] for el in (top, middle, leaf)))
        assert "RuleEngine/Recognition/Face" in paths


def test_salesbox_uploads_pictures_to_its_private_cloud(tmp_path, devices_resolve_via):  # noqa: F811
    with running_clouds(tmp_path, [SALESBOX_CLOUD]) as clouds:
        devices_resolve_via(clouds.ip)
        with running_device("salesbox", tmp_path) as dev:
            assert dev.control({"cmd": "walkby"})["behaviours"] == 1

            def burst_done() -> bool:  # face crops then one scene picture (>= 120 KB)
                stats = clouds.control({"cmd": "clouds"})["clouds"].get(SALESBOX_CLOUD, {})
                return stats.get("bytes_in", 0) >= 120_000 and \
                    dev.node.counters.get("pictures_uploaded", 0) == stats.get("pictures")

            wait_for(burst_done, 15, "upload burst to the private cloud")
            stats = clouds.control({"cmd": "clouds"})["clouds"][SALESBOX_CLOUD]
            assert 2 <= stats["pictures"] == stats["requests"] <= 4
            assert stats["snis"] == [SALESBOX_CLOUD]  # TLS with SNI
            assert stats["paths"] == ["/api/v1/capture"]
            assert dev.node.counters["picture_bytes_uploaded"] >= 120_000 + 18_000
            assert "upload_failures" not in dev.node.counters


# ---- fragile camera ---------------------------------------------------------------------------
def fragile_state(dev: NodeHandle) -> dict[str, object]:
    return dev.control({"cmd": "fragile"})


def wait_idle(dev: NodeHandle) -> None:
    """Let the camera notice closed connections (a gentle scanner waits between probes too)."""
    wait_for(lambda: fragile_state(dev)["open_connections"] == 0, 5, "connections to close")


def rtsp_options(dev: NodeHandle, sock: socket.socket, cseq: int = 1) -> str:
    sock.sendall(f"OPTIONS rtsp://{dev.ip}/11 RTSP/1.0\r\nCSeq: {cseq}\r\n\r\n".encode())
    return sock.recv(4096).decode()


def http_get(dev: NodeHandle, sock: socket.socket) -> bytes:
    sock.sendall(f"GET / HTTP/1.1\r\nHost: {dev.ip}\r\n\r\n".encode())
    return sock.recv(65536)


def assert_silent(sock: socket.socket, request: bytes, wait: float = 0.5) -> None:
    """``request`` gets no answer within ``wait`` seconds, and the connection stays open."""
    sock.settimeout(wait)
    sock.sendall(request)
    with pytest.raises(TimeoutError):
        sock.recv(4096)


def assert_hung_everywhere(dev: NodeHandle) -> None:
    """A fresh connection to either port is accepted and never answered."""
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"http://{dev.ip}:{dev.port(80)}/", timeout=(2, 0.5))
    with socket.create_connection((dev.ip, dev.port(554)), timeout=2) as s:
        assert_silent(s, f"OPTIONS rtsp://{dev.ip}/11 RTSP/1.0\r\nCSeq: 9\r\n\r\n".encode())


def get_and_close(url: str, **kwargs: object) -> requests.Response:
    """GET with ``Connection: close`` (requests otherwise keeps the socket until the response is
    garbage-collected, and an open idle socket counts against the camera's two connections)."""
    return requests.get(url, headers={"Connection": "close"}, timeout=5, **kwargs)  # type: ignore[arg-type]


def test_fragile_survives_sequential_requests_and_two_concurrent_connections(tmp_path):
    with running_device("fragile-cam", tmp_path) as dev:
        base = f"http://{dev.ip}:{dev.port(80)}"
        for _ in range(2):
            page = get_and_close(f"{base}/")
            assert page.status_code == 200
            assert page.headers["Server"] == "Hipcam"
            assert "/cgi-bin/hi3510/param.cgi" in page.text
            wait_idle(dev)
        anon = get_and_close(f"{base}/cgi-bin/hi3510/param.cgi?cmd=getserverinfo")
        assert anon.status_code == 401 and anon.headers["WWW-Authenticate"] == 'Basic realm="IPCAM"'
        wait_idle(dev)
        info = get_and_close(f"{base}/cgi-bin/hi3510/param.cgi?cmd=getserverinfo",
                             auth=HTTPBasicAuth(*credentials(dev)))
        assert 'var model="HI3518E-IPC";' in info.text and 'var softVersion="V100R003";' in info.text
        wait_idle(dev)

        with (socket.create_connection((dev.ip, dev.port(80)), timeout=5) as web,
              socket.create_connection((dev.ip, dev.port(554)), timeout=5) as rtsp):
            options = rtsp_options(dev, rtsp)
            assert options.startswith("RTSP/1.0 200 OK\r\nCSeq: 1\r\n")
            assert "Server: HiIpcam/V100R003 VodServer/1.0.0\r\n" in options
            assert http_get(dev, web).startswith(b"HTTP/1.1 200 OK\r\n")
            rtsp.sendall(f"DESCRIBE rtsp://{dev.ip}/11 RTSP/1.0\r\nCSeq: 2\r\n\r\n".encode())
            assert 'Digest qop="auth", realm="HIipCamera"' in rtsp.recv(4096).decode()
            assert fragile_state(dev) == {"ok": True, "hung": None, "max_concurrent_seen": 2,
                                          "open_connections": 2}
        wait_idle(dev)
        assert get_and_close(f"{base}/").status_code == 200
        wait_idle(dev)
        assert fragile_state(dev) == {"ok": True, "hung": None, "max_concurrent_seen": 2, "open_connections": 0}


def test_fragile_hangs_on_third_concurrent_connection(tmp_path):
    with running_device("fragile-cam", tmp_path) as dev:
        with (socket.create_connection((dev.ip, dev.port(80)), timeout=5) as first,
              socket.create_connection((dev.ip, dev.port(554)), timeout=5) as second):
            assert http_get(dev, first).startswith(b"HTTP/1.1 200 OK")
            assert rtsp_options(dev, second).startswith("RTSP/1.0 200 OK")
            assert fragile_state(dev)["hung"] is None
            with socket.create_connection((dev.ip, dev.port(80)), timeout=5) as third:
                wait_for(lambda: fragile_state(dev)["hung"] is not None, 5, "the hang")
                state = fragile_state(dev)
                assert state["hung"] == "3 concurrent connections (opened on http)"
                assert state["max_concurrent_seen"] == 3
                # the connections that worked a moment ago are silent now, the new one too
                assert_silent(first, f"GET / HTTP/1.1\r\nHost: {dev.ip}\r\n\r\n".encode())
                assert_silent(second, f"OPTIONS rtsp://{dev.ip}/11 RTSP/1.0\r\nCSeq: 2\r\n\r\n".encode())
                assert_silent(third, f"GET / HTTP/1.1\r\nHost: {dev.ip}\r\n\r\n".encode())
        wait_idle(dev)
        assert_hung_everywhere(dev)  # closing everything does not bring it back
        assert fragile_state(dev)["hung"] == "3 concurrent connections (opened on http)"


def test_fragile_hangs_on_http_sent_to_its_rtsp_port(tmp_path):
    with running_device("fragile-cam", tmp_path) as dev:
        with socket.create_connection((dev.ip, dev.port(554)), timeout=5) as s:
            assert_silent(s, f"GET / HTTP/1.1\r\nHost: {dev.ip}\r\n\r\n".encode())
        assert fragile_state(dev)["hung"] == "HTTP/1.1 request on rtsp: GET /"
        wait_idle(dev)
        assert_hung_everywhere(dev)


@pytest.mark.parametrize(("port", "payload", "reason"), [
    (554, b"\x00\x01\x02\xff\xfe\r\n", "non-protocol bytes on rtsp: 000102fffe0d0a"),
    (80, b"HELLO\r\n\r\n", "non-protocol bytes on http: HELLO"),  # via ConnectionPolicy.on_overload
    (80, b"RTSP/1.0 200 OK\r\n\r\n", "non-protocol bytes on http: RTSP/1.0 200 OK"),
    (80, b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n", "RTSP/1.0 request on http: OPTIONS *"),
])
def test_fragile_hangs_on_non_protocol_bytes(tmp_path, port, payload, reason):
    with running_device("fragile-cam", tmp_path) as dev:
        with socket.create_connection((dev.ip, dev.port(port)), timeout=5) as s:
            assert_silent(s, payload)
        assert fragile_state(dev)["hung"] == reason
        wait_idle(dev)
        assert_hung_everywhere(dev)


def test_fragile_hangs_on_tls_client_hello_on_port_80(tmp_path):
    with running_device("fragile-cam", tmp_path) as dev:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection((dev.ip, dev.port(80)), timeout=1.5) as raw:
            started = time.monotonic()
            with pytest.raises(TimeoutError):  # the ClientHello is never answered
                ctx.wrap_socket(raw, server_hostname=dev.ip)
            assert time.monotonic() - started >= 1.4
        hung = fragile_state(dev)["hung"]
        assert isinstance(hung, str) and hung.startswith("non-protocol bytes on http: 160301")
        wait_idle(dev)
        assert_hung_everywhere(dev)
