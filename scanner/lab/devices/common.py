"""Pieces every emulated device uses: identity access, device TLS, an RTSP server, a raw TCP port."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

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

RTSP_PUBLIC = "OPTIONS, DESCRIBE, PLAY, PAUSE, SETUP, TEARDOWN, SET_PARAMETER, GET_PARAMETER"


def ident(node: Node, key: str, default: Any = None) -> Any:
    return node.spec.identity.get(key, default)


def device_auth(node: Node, realm: str, **kwargs: Any) -> DigestAuth:
    """The device's one user database (web, RTSP and ONVIF share it, as on real firmware)."""
    users = {str(ident(node, "username", "admin")): str(ident(node, "password", ""))}
    return DigestAuth(realm, users, lock_after=ident(node, "lock_after"), **kwargs)


def device_tls(node: Node) -> ssl.SSLContext:
    """TLS for a device's own HTTPS port (the lab's self-signed certificate)."""
    root = Path(node.spec.statedir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(root / "cloud.pem"), str(root / "cloud.key"))
    return ctx


def sdp(node: Node, name: str) -> str:
    return (
        "v=0\r\n"
        f"o=- 1109162014219182 1109162014219192 IN IP4 {node.spec.ip}\r\n"
        f"s={name}\r\n"
        "t=0 0\r\n"
        "m=video 0 RTP/AVP 96\r\n"
        "a=rtpmap:96 H264/90000\r\n"
        "a=control:trackID=1\r\n"
    )


async def rtsp_server(
    node: Node,
    auth: DigestAuth,
    *,
    style: ServerStyle,
    public: str = RTSP_PUBLIC,
    stream_name: str = "Media Presentation",
    options_needs_auth: bool = False,
    policy: ConnectionPolicy | None = None,
    port: int = 554,
) -> TextProtocolServer:
    """OPTIONS (Public list) and DESCRIBE (401 with the device realm, SDP with credentials)."""
    router = Router()

    def options(req: Request) -> Response:
        if options_needs_auth and not auth.check(req)[0]:
            return Response(401, headers=auth.challenge_headers())
        return Response(200, headers=[("Public", public)])

    def describe(req: Request) -> Response:
        ok, _ = auth.check(req)
        if not ok:
            return Response(401, headers=auth.challenge_headers())
        return Response(200, sdp(node, stream_name), content_type="application/sdp",
                        headers=[("Content-Base", f"rtsp://{node.spec.ip}{req.path}/")])

    def other(req: Request) -> Response:
        if req.method in ("SETUP", "PLAY", "TEARDOWN", "PAUSE", "GET_PARAMETER", "SET_PARAMETER"):
            return Response(454) if auth.check(req)[0] else Response(401, headers=auth.challenge_headers())
        return Response(405, headers=[("Allow", public)])

    router.prefix("OPTIONS", "", options)
    router.prefix("DESCRIBE", "", describe)
    router.fallback = other
    server = TextProtocolServer(router, style, policy, name="rtsp")
    await node.http(port, server)
    return server


async def silent_tcp(node: Node, port: int, *, on_bytes: Callable[[bytes], None] | None = None) -> None:
    """A vendor SDK port: accepts, reads and discards until the client closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(4096):
                if on_bytes:
                    on_bytes(data)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    await node.tcp(port, handle)
