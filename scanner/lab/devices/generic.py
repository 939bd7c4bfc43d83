"""Unbranded devices: the sales-office face box and a fragile HiSilicon-reference camera.

* ``build_salesbox``: an ONVIF-only face box (protocols.md §9 item g): PRE_AUTH ONVIF calls
  answer anonymously, GetDeviceInformation and the analytics/event services need a login, and
  only after login does it show a standard ``tt:FaceRecognition`` rule and the
  ``tns1:RuleEngine/Recognition/Face`` topic (§5.4). There is no web UI (``GET /`` is 404). It
  uploads face pictures to a private cloud no signature knows; a scan can flag it by behaviour only.
* ``build_fragile``: a cheap Hi3518 camera whose firmware hangs (stops answering on every port
  until rebooted) when more than two TCP connections are open at once, or when a port receives
  bytes of the wrong protocol (binary, a TLS ClientHello, HTTP on the RTSP port). A gentle scan
  must leave it answering.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from scanner.lab import behaviour
from scanner.lab.devices.common import RTSP_PUBLIC, device_auth, ident, rtsp_server, sdp
from scanner.lab.devices.onvif import OnvifIdentity, OnvifService, WsDiscoveryResponder, onvif_scopes
from scanner.lab.runtime.httpserver import (
    ConnectionPolicy,
    DigestAuth,
    Request,
    Response,
    Router,
    ServerStyle,
    TextProtocolServer,
)
from scanner.lab.runtime.node import Node

# ---- sales-office face box --------------------------------------------------------------------
SALESBOX_CLOUD = "snap.anchang-cloud.example"  # "案场" (sales-office) private cloud, in no signature
SALESBOX_MANUFACTURER = "IPC"
# ONVIF-only boxes are typically built on gSOAP, whose HTTP answers carry this banner.
SALESBOX_SERVER = "gSOAP/2.8"
SALESBOX_REALM = "IPC"
FACE_RULE = "tt:FaceRecognition"  # standard ONVIF rule type (protocols.md §5.4)
FACE_TOPIC = "tns1:RuleEngine/Recognition/Face"  # standard ONVIF event topic (§5.4)


async def build_salesbox(node: Node) -> None:
    model = str(ident(node, "model", "FR-B200"))
    serial = str(ident(node, "serial"))
    auth = device_auth(node, SALESBOX_REALM)
    router = Router()  # only the ONVIF SOAP endpoints: every other path (``/`` too) is 404
    scopes = onvif_scopes(SALESBOX_MANUFACTURER, model)
    onvif = OnvifService(
        node,
        OnvifIdentity(
            manufacturer=SALESBOX_MANUFACTURER,
            model=model,
            firmware=str(ident(node, "firmware", "1.0.7")),
            serial=serial,
            hardware_id=model,
            scopes=scopes,
            analytics_modules=["tt:CellMotionEngine"],
            rules=["tt:CellMotionDetector", FACE_RULE],
            event_topics=["tns1:RuleEngine/CellMotionDetector/Motion", FACE_TOPIC],
            configured_rules=[FACE_RULE] if ident(node, "face_capture_enabled", True) else [],
            anonymous_device_info=False,
            clock_skew_s=int(ident(node, "clock_skew_s", 0)),
        ),
        auth,
    )
    onvif.mount(router)
    await node.http(80, TextProtocolServer(router, ServerStyle(server=SALESBOX_SERVER), name="http"))
    await rtsp_server(node, auth, style=ServerStyle(protocol="RTSP/1.0", server=None))
    await WsDiscoveryResponder(node, scopes, onvif.xaddr("device_service")).start()
    node.control("auth", lambda _m: {"ok": True, "attempts": len(auth.attempts), "locked": sorted(auth.locked),
                                     "writes": onvif.writes})
    behaviour.snapshot_uploads(node, SALESBOX_CLOUD, 443, tls=True, method="POST",
                               path=lambda _n: "/api/v1/capture")


# ---- fragile camera ---------------------------------------------------------------------------
FRAGILE_MAX_CONCURRENT = 2  # a third simultaneous TCP connection hangs the firmware
FRAGILE_HTTP_SERVER = "Hipcam"  # the Hi3510/Hi3518 reference web server banner
FRAGILE_RTSP_SERVER = "HiIpcam/V100R003 VodServer/1.0.0"  # protocols.md §6
FRAGILE_RTSP_REALM = "HIipCamera"
FRAGILE_WEB_REALM = "IPCAM"
FRAGILE_LOGIN_PAGE = """<html><head><title>IPCAM</title>
<meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head>
<body><form name="login" action="/cgi-bin/hi3510/param.cgi" method="get">
<input type="hidden" name="cmd" value="getserverinfo">
User <input type="text" name="user"> Password <input type="password" name="pwd">
<input type="submit" value="Login"></form></body></html>
"""
_REQUEST_START = re.compile(rb"[A-Za-z]")  # every HTTP/RTSP request line starts with a method name


class FragileGuard:
    """Node-wide connection count and the hang trigger shared by all of the camera's servers."""

    def __init__(self, node: Node, max_concurrent: int = FRAGILE_MAX_CONCURRENT) -> None:
        self.node = node
        self.max_concurrent = max_concurrent
        self.open_connections = 0
        self.max_concurrent_seen = 0

    def connection_opened(self, server: str) -> None:
        self.open_connections += 1
        self.max_concurrent_seen = max(self.max_concurrent_seen, self.open_connections)
        if self.open_connections > self.max_concurrent:
            self.node.hang(f"{self.open_connections} concurrent connections (opened on {server})")

    def connection_closed(self) -> None:
        self.open_connections -= 1

    def stray_bytes(self, reason: str) -> None:
        """ConnectionPolicy.on_overload target: malformed or wrong-protocol input hangs the device."""
        self.node.hang(reason)

    def report(self, _msg: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "hung": self.node.hung_reason, "max_concurrent_seen": self.max_concurrent_seen,
                "open_connections": self.open_connections}


class FragileServer(TextProtocolServer):
    """A TextProtocolServer that counts connections node-wide and hangs on non-protocol bytes.

    Each connection's bytes pass through a pump that inspects the first non-blank byte before the
    request parser sees it (a TLS ClientHello or binary junk may never contain a newline, so the
    line parser alone would just wait). Requests of the other protocol (``HTTP/1.1`` on the RTSP
    port and vice versa) hang it too. Once hung, nothing is written on any connection.
    """

    def __init__(self, router: Router, style: ServerStyle, guard: FragileGuard, *, protocol: str, name: str) -> None:
        super().__init__(router, style, ConnectionPolicy(on_overload=guard.stray_bytes), name=name)
        self.guard = guard
        self.protocol = protocol  # "HTTP" or "RTSP"
        self._client_gone: dict[asyncio.StreamWriter, asyncio.Event] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.guard.connection_opened(self.name)
        inspected = asyncio.StreamReader()
        gone = self._client_gone[writer] = asyncio.Event()
        pump = asyncio.ensure_future(self._pump(reader, inspected, gone))
        try:
            await super().handle(inspected, writer)
        finally:
            pump.cancel()
            self._client_gone.pop(writer, None)
            self.guard.connection_closed()

    async def _pump(self, reader: asyncio.StreamReader, inspected: asyncio.StreamReader,
                    gone: asyncio.Event) -> None:
        """Copy client bytes to the parser; the first non-blank byte must start a method name."""
        checked = False
        try:
            while data := await reader.read(4096):
                if not checked and data.strip(b"\r\n"):
                    checked = True
                    first = data.strip(b"\r\n")[:1]
                    if not _REQUEST_START.match(first):
                        self.guard.stray_bytes(f"non-protocol bytes on {self.name}: {data[:8].hex()}")
                inspected.feed_data(data)
        except (ConnectionError, OSError):
            pass
        finally:
            inspected.feed_eof()
            gone.set()

    async def _dispatch(self, req: Request) -> Response:
        if not req.version.upper().startswith(self.protocol + "/"):
            self.guard.stray_bytes(f"{req.version} request on {self.name}: {req.method} {req.target[:40]}")
            return Response(400, close=True)  # never sent: the device is hung now
        return await super()._dispatch(req)

    async def _write(self, writer: asyncio.StreamWriter, resp: Response, req: Request | None) -> None:
        if self.hung.is_set():
            # A hung firmware keeps the socket open and says nothing until the client leaves.
            gone = self._client_gone.get(writer)
            if gone is not None:
                await gone.wait()
            return
        await super()._write(writer, resp, req)


class FragileCamera:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.model = str(ident(node, "model", "HI3518E-IPC"))
        self.firmware = str(ident(node, "firmware", "V100R003"))
        self.web_auth: DigestAuth = device_auth(node, FRAGILE_WEB_REALM, basic_only=True)
        self.rtsp_auth: DigestAuth = device_auth(node, FRAGILE_RTSP_REALM)

    def login_page(self, _req: Request) -> Response:
        return Response(200, FRAGILE_LOGIN_PAGE, content_type="text/html")

    def param_cgi(self, req: Request) -> Response:
        """``/cgi-bin/hi3510/param.cgi?cmd=getserverinfo`` (HTTP Basic): ``var name="value";`` lines."""
        if not self.web_auth.check(req)[0]:
            return Response(401, "401 Unauthorized", headers=self.web_auth.challenge_headers())
        if req.query.get("cmd") != "getserverinfo":
            return Response(200, "[Error] cmd not supported.\r\n", content_type="text/plain")
        fields = {"model": self.model, "hardVersion": "V1.0.0", "softVersion": self.firmware,
                  "name": "IPCAM", "startdate": "2023-05-01 08:00:00"}
        body = "".join(f'var {k}="{v}";\r\n' for k, v in fields.items())
        return Response(200, body, content_type="text/plain")

    def rtsp_router(self) -> Router:
        """OPTIONS (Public list) and DESCRIBE (digest 401, SDP with credentials), like common.rtsp_server."""
        router = Router()
        auth = self.rtsp_auth

        def options(_req: Request) -> Response:
            return Response(200, headers=[("Public", RTSP_PUBLIC)])

        def describe(req: Request) -> Response:
            if not auth.check(req)[0]:
                return Response(401, headers=auth.challenge_headers())
            return Response(200, sdp(self.node, "HIipCamera Stream"), content_type="application/sdp",
                            headers=[("Content-Base", f"rtsp://{self.node.spec.ip}{req.path}/")])

        def other(req: Request) -> Response:
            if req.method in ("SETUP", "PLAY", "TEARDOWN", "PAUSE", "GET_PARAMETER", "SET_PARAMETER"):
                return Response(454) if auth.check(req)[0] else Response(401, headers=auth.challenge_headers())
            return Response(405, headers=[("Allow", RTSP_PUBLIC)])

        router.prefix("OPTIONS", "", options)
        router.prefix("DESCRIBE", "", describe)
        router.fallback = other
        return router


async def build_fragile(node: Node) -> None:
    cam = FragileCamera(node)
    guard = FragileGuard(node)
    web = Router()
    web.get("/", cam.login_page)
    web.get("/index.html", cam.login_page)
    web.get("/cgi-bin/hi3510/param.cgi", cam.param_cgi)
    # Both servers go through node.http so node.hang() silences them together; common.rtsp_server
    # cannot be used here because it builds a plain TextProtocolServer.
    await node.http(80, FragileServer(web, ServerStyle(server=FRAGILE_HTTP_SERVER), guard,
                                      protocol="HTTP", name="http"))
    await node.http(554, FragileServer(cam.rtsp_router(), ServerStyle(protocol="RTSP/1.0",
                                                                       server=FRAGILE_RTSP_SERVER),
                                       guard, protocol="RTSP", name="rtsp"))
    node.control("fragile", guard.report)

