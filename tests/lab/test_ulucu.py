"""ULUCU passenger-flow camera: anonymous ONVIF/RTSP shows nothing of ULUCU; its cloud traffic does.

The cloud checks run the device's real outbound code: its DNS query goes to an in-process lab
cloud node (the lab's own resolver), and the answers point at recording servers in this test
that keep every heartbeat line and upload request the camera sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import socket
import socketserver
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from defusedxml import ElementTree as SafeET
from requests.auth import HTTPDigestAuth

from scanner.lab.clouds import build_clouds
from scanner.lab.profiles import CLOUD_BY_HOST
from scanner.lab.runtime.node import Node, NodeSpec
from scanner.lab.runtime.tlsutil import write_self_signed
from tests.lab import harness
from tests.lab.harness import NodeHandle, running_device
from tests.lab.onvif_client import SOAP_ENV, TDS, envelope

_test_ips = itertools.count(10)


def spare_ip() -> str:
    """A fresh loopback address for a test-side server (outside the harness's 127.77.x range)."""
    n = next(_test_ips)
    return f"127.79.{230 + n // 200}.{n % 200 + 20}"


# ---- ONVIF client ------------------------------------------------------------------------------
def soap(dev: NodeHandle, operation: str, namespace: str = TDS, *, service: str = "device_service",
         token: tuple[str, str] | None = None, auth: Any = None) -> requests.Response:
    """POST one empty-bodied ONVIF operation (optionally with a UsernameToken)."""
    return requests.post(f"http://{dev.ip}:{dev.port(80)}/onvif/{service}", data=envelope(operation, namespace,
                         token=token), auth=auth, timeout=5,
                         headers={"Content-Type": "application/soap+xml; charset=utf-8"})


def credentials(dev: NodeHandle) -> tuple[str, str]:
    return dev.manifest_device["username"], dev.manifest_device["password"]


def ws_discovery_probe(dev: NodeHandle) -> Any:
    """Unicast a WS-Discovery Probe for NetworkVideoTransmitter; the parsed ProbeMatches."""
    probe = (f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{SOAP_ENV}" '
             'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
             'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
             'xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header>'
             f"<a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
             "<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>"
             "<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action></s:Header>"
             "<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body></s:Envelope>")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.bind(("127.0.0.1", 0))
        s.sendto(probe.encode(), (dev.ip, dev.port(3702)))
        reply, _ = s.recvfrom(65535)
    return SafeET.fromstring(reply)


def local_text(root: Any, name: str) -> str:
    """Text of the first element whose local name is ``name``."""
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == name:
            return str(el.text or "")
    raise AssertionError(f"no <{name}> in reply")


# ---- the fake internet -----------------------------------------------------------------------
@contextmanager
def running_clouds(tmp_path: Path, endpoints: list[str], names: dict[str, str] | None = None
                   ) -> Iterator[NodeHandle]:
    """The lab's cloud node (resolver + ``endpoints`` from CLOUD_BY_HOST) on a fresh address.

    Its resolver answers every endpoint host with its own address, plus ``names`` (host -> ip).
    """
    ip = spare_ip()
    certdir = tmp_path / "clouds"
    certdir.mkdir(exist_ok=True)
    certfile, keyfile = write_self_signed(certdir, endpoints or ["lab.test"])
    clouds = [CLOUD_BY_HOST[h] for h in endpoints]
    spec = NodeSpec(
        name="clouds", role="cloud", ip=ip, mode="loopback", statedir=str(certdir), seed=1,
        port_offset=harness.PORT_OFFSET, clouds={**{c.host: ip for c in clouds}, **(names or {})},
        cloud_endpoints=[{"host": c.host, "port": c.port, "kind": c.kind, "ip": ip} for c in clouds],
        certfile=str(certfile), keyfile=str(keyfile),
    )
    loop = asyncio.new_event_loop()
    # build_clouds opens its DNS endpoint on the loop directly (not through node.udp), so
    # node.close() would leave it open: keep every datagram transport to close it ourselves.
    datagram_transports: list[asyncio.BaseTransport] = []
    create_datagram_endpoint = loop.create_datagram_endpoint

    async def tracked_datagram_endpoint(*args: Any, **kwargs: Any) -> Any:
        transport, protocol = await create_datagram_endpoint(*args, **kwargs)
        datagram_transports.append(transport)
        return transport, protocol

    loop.create_datagram_endpoint = tracked_datagram_endpoint  # type: ignore[method-assign]

    async def close() -> None:
        for transport in datagram_transports:
            transport.close()
        await node.close()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    node = Node(spec)
    try:
        asyncio.run_coroutine_threadsafe(build_clouds(node), loop).result(10)
        yield NodeHandle(node, loop, ip, {})
    finally:
        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


class _ClosingNode(Node):
    """A Node that also closes its outbound connections on ``close()``.

    ``Node.close()`` cancels tasks and closes listeners, but a persistent cloud connection (the
    ULUCU heartbeat) belongs to no task and would be left open, and a TLS upload connection closed
    by a cancelled task still needs its close_notify exchange after the loop stops (either is a
    ResourceWarning under pytest). This closes them all and waits for them first.
    """

    def __init__(self, spec: NodeSpec) -> None:
        super().__init__(spec)
        self.outbound: list[asyncio.StreamWriter] = []

    async def open(self, host: str, port: int, **kwargs: Any
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        conn = await super().open(host, port, **kwargs)
        if conn is not None:
            self.outbound.append(conn[1])
        return conn

    async def close(self) -> None:
        for writer in self.outbound:
            writer.close()
        for writer in self.outbound:
            with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
                await asyncio.wait_for(writer.wait_closed(), 2)
        await super().close()


@pytest.fixture
def devices_resolve_via(monkeypatch):
    """Make devices started by ``running_device`` send their DNS queries to a given resolver.

    The harness fixes ``resolver="127.0.0.1"``; a device's first heartbeat may fire 0.2 s after
    start, so the resolver must be right from the start, not patched afterwards.
    """

    def use(resolver_ip: str) -> None:
        def spec_with_resolver(**kwargs: Any) -> NodeSpec:
            return NodeSpec(**{**kwargs, "resolver": resolver_ip})

        monkeypatch.setattr(harness, "NodeSpec", spec_with_resolver)
        monkeypatch.setattr(harness, "Node", _ClosingNode)

    return use


class _Recorder:
    """What a test-side server received (shared with its handler threads)."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.lock = threading.Lock()

    def add(self, item: Any) -> None:
        with self.lock:
            self.items.append(item)

    def snapshot(self) -> list[Any]:
        with self.lock:
            return list(self.items)


@contextmanager
def json_line_server(ip: str, port: int) -> Iterator[_Recorder]:
    """A ULUCU-entry-like TCP server: records each JSON line and answers ``{"code": 0, ...}``."""
    recorder = _Recorder()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            try:
                while line := self.rfile.readline():
                    msg = json.loads(line)
                    recorder.add(msg)
                    self.wfile.write((json.dumps({"code": 0, "cmd": msg.get("cmd"), "msg": "success"}) + "\n")
                                     .encode())
            except (OSError, ValueError):
                pass

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True
        block_on_close = False

    with Server((ip, port), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        try:
            yield recorder
        finally:
            server.shutdown()
            thread.join(5)


@contextmanager
def upload_server(ip: str, port: int) -> Iterator[_Recorder]:
    """An object-store-like HTTP server: records (method, path, Host, body) and answers 200."""
    recorder = _Recorder()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _store(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            recorder.add((self.command, self.path, self.headers.get("Host"), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_PUT = _store  # noqa: N815 - http.server's naming
        do_POST = _store  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
            pass

    class Server(ThreadingHTTPServer):
        allow_reuse_address = True
        daemon_threads = True
        block_on_close = False

    with Server((ip, port), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        try:
            yield recorder
        finally:
            server.shutdown()
            thread.join(5)


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# ---- tests ------------------------------------------------------------------------------------
def test_onvif_pre_auth_answers_but_device_information_needs_login(tmp_path):
    with running_device("ulucu-flow", tmp_path) as dev:
        clock = soap(dev, "GetSystemDateAndTime")
        assert clock.status_code == 200
        assert local_text(SafeET.fromstring(clock.content), "Year") == str(time.gmtime().tm_year)

        anon = soap(dev, "GetDeviceInformation")
        assert anon.status_code == 401
        assert anon.headers["WWW-Authenticate"].startswith('Digest qop="auth", realm="IPCAM"')

        user, password = credentials(dev)
        wrong = soap(dev, "GetDeviceInformation", token=(user, password + "x"))
        assert wrong.status_code == 400 and "ter:NotAuthorized" in wrong.text

        info = soap(dev, "GetDeviceInformation", token=(user, password))
        assert info.status_code == 200
        root = SafeET.fromstring(info.content)
        assert local_text(root, "Manufacturer") == "IPC"
        assert local_text(root, "SerialNumber") == dev.manifest_device["serial"]
        assert re.fullmatch(r"Ub\d{16}QB", local_text(root, "SerialNumber"))
        digest = soap(dev, "GetDeviceInformation", auth=HTTPDigestAuth(user, password))
        assert digest.status_code == 200 and "<tds:Model>IPC</tds:Model>" in digest.text


def test_nothing_a_scan_can_reach_names_ulucu(tmp_path):
    with running_device("ulucu-flow", tmp_path) as dev:
        page = requests.get(f"http://{dev.ip}:{dev.port(80)}/", timeout=5)
        assert page.status_code == 200
        assert page.headers["Server"] == "Boa/0.94.14rc21"
        assert 'action="/login.cgi"' in page.text
        login = requests.post(f"http://{dev.ip}:{dev.port(80)}/login.cgi", timeout=5,
                              data={"username": "admin", "password": "not-it"})
        assert login.json() == {"code": -1, "msg": "user or password error"}

        with socket.create_connection((dev.ip, dev.port(554)), timeout=5) as s:
            s.sendall(f"DESCRIBE rtsp://{dev.ip}/live/ch0 RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n"
                      .encode())
            describe = s.recv(4096).decode()
        assert describe.startswith("RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\n")
        assert 'realm="IPCAM"' in describe and "Server:" not in describe

        match = ws_discovery_probe(dev)
        scopes = local_text(match, "Scopes").split()
        assert "onvif://www.onvif.org/name/IPC" in scopes
        assert "onvif://www.onvif.org/hardware/IPC" in scopes
        caps = soap(dev, "GetCapabilities")
        reachable = page.text + describe + " ".join(scopes) + caps.text
        assert "ulucu" not in reachable.lower()
        assert caps.status_code == 200 and "<tt:Analytics>" not in caps.text


def test_heartbeat_logs_in_then_beats_with_protocol_2_1_2(tmp_path, devices_resolve_via):
    entry_ip = spare_ip()
    with (json_line_server(entry_ip, 29023) as entry,
          running_clouds(tmp_path, [], {"entry.device.serv.ulucu.com": entry_ip}) as clouds):
        devices_resolve_via(clouds.ip)
        with running_device("ulucu-flow", tmp_path) as dev:
            wait_for(lambda: dev.node.counters.get("heartbeats", 0) >= 1, 30, "login and first heartbeat")
            serial = dev.manifest_device["serial"]
            login, beat = entry.snapshot()[:2]
            assert login["cmd"] == "login" and beat["cmd"] == "heartbeat"
            assert login["ver"] == beat["ver"] == "2.1.2"
            assert login["sn"] == beat["sn"] == serial
            assert login["dev_type"] == 5
            assert login["mac"] == dev.manifest_device["mac"].replace(":", "").upper()
            assert beat["interval"] == 20
            assert abs(beat["ts"] - time.time()) < 30
            assert dev.node.counters["heartbeats"] == 1
            assert dev.node.counters["dns_queries"] == 1  # one real lookup of the entry host
        assert clouds.control({"cmd": "clouds"})["dns_queries"] == 1


def test_walkby_puts_named_pictures_to_upyun(tmp_path, devices_resolve_via):
    upyun_ip = spare_ip()
    with (upload_server(upyun_ip, 80 + harness.PORT_OFFSET) as upyun,
          running_clouds(tmp_path, [], {"v0.api.upyun.com": upyun_ip}) as clouds):
        devices_resolve_via(clouds.ip)
        with running_device("ulucu-flow", tmp_path) as dev:
            started = int(time.time())
            assert dev.control({"cmd": "walkby"})["behaviours"] == 1
            # 1-3 face crops plus one scene picture, 0.2-1 s apart
            # the burst ends with the scene picture (>= 120 KB; face crops are <= 64 KB)
            wait_for(lambda: any(len(u[3]) >= 120_000 for u in upyun.snapshot())
                     and dev.node.counters.get("pictures_uploaded", 0) == len(upyun.snapshot()), 15, "upload burst")
            uploads = upyun.snapshot()
            serial = dev.manifest_device["serial"]
            for method, path, host, body in uploads:
                assert method == "PUT"
                assert host == "v0.api.upyun.com"
                found = re.fullmatch(rf"/ulucu-hd-img/{serial}_0_(\d{{10}})_4\.jpg", path)
                assert found, path
                assert started - 1 <= int(found.group(1)) <= time.time() + 1
                assert body[:3] == b"\xff\xd8\xff" and body[-2:] == b"\xff\xd9"
            assert 2 <= len(uploads) <= 4
            assert [len(u[3]) >= 120_000 for u in uploads] == [False] * (len(uploads) - 1) + [True]
