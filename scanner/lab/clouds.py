"""The fake internet: every cloud endpoint the lab's devices talk to, on its own address.

Each endpoint speaks what the device expects (clouds.md): TLS HTTP sinks that accept picture
uploads, ULUCU's TCP 29023 JSON heartbeat, EZVIZ's TCP 8666 config exchange, MQTT, Dahua's
UDP 8800 P2P signalling and relay, a TCP video relay. The node keeps per-host counters
(requests, bytes, JPEG pictures received) as the ground truth of what was uploaded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from typing import Any

from scanner.lab.runtime import mqtt
from scanner.lab.runtime.dnsserver import DnsResponder
from scanner.lab.runtime.httpserver import (
    ConnectionPolicy,
    Request,
    Response,
    Router,
    ServerStyle,
    TextProtocolServer,
    json_response,
    sni_recording_context,
)
from scanner.lab.runtime.node import Node, UdpEndpoint

log = logging.getLogger(__name__)

JPEG_SOI = b"\xff\xd8\xff"


def _stats(node: Node, host: str) -> dict[str, Any]:
    clouds: dict[str, dict[str, Any]] = node.state.setdefault("clouds", {})
    return clouds.setdefault(host, {"requests": 0, "bytes_in": 0, "pictures": 0, "connections": 0,
                                    "snis": [], "paths": []})


def _sink_router(node: Node, host: str) -> Router:
    router = Router()

    def sink(req: Request) -> Response:
        stats = _stats(node, host)
        stats["requests"] += 1
        stats["bytes_in"] += len(req.body)
        if req.body.startswith(JPEG_SOI) or b'"/9j/' in req.body[:64]:  # raw or base64 JPEG
            stats["pictures"] += 1
        if req.sni and req.sni not in stats["snis"]:
            stats["snis"].append(req.sni)
        if len(stats["paths"]) < 20 and req.path not in stats["paths"]:
            stats["paths"].append(req.path)
        size = req.query.get("size", "")
        if req.method == "GET" and size.isdigit():
            return Response(200, b"<html>" + b"x" * min(int(size), 4 << 20) + b"</html>",
                            content_type="text/html")
        return json_response(json.dumps({"code": 0, "msg": "ok", "host": host}))

    router.fallback = sink
    return router


async def build_clouds(node: Node) -> None:
    loop = asyncio.get_running_loop()
    resolver = DnsResponder(node.spec.clouds)
    transport, _ = await loop.create_datagram_endpoint(lambda: resolver, local_addr=(node.spec.ip, node.port(53)))
    node.adopt(transport)
    tls = sni_recording_context(node.spec.certfile, node.spec.keyfile)
    for endpoint in node.spec.cloud_endpoints:
        await _serve(node, endpoint["host"], endpoint["ip"], int(endpoint["port"]), endpoint["kind"], tls)
    node.control("clouds", lambda _msg: {"ok": True, "clouds": node.state.get("clouds", {}),
                                          "dns_queries": resolver.queries})


async def _serve(node: Node, host: str, ip: str, port: int, kind: str, tls: ssl.SSLContext) -> None:
    policy = ConnectionPolicy(max_body=16 << 20, idle_timeout=120.0)
    style = ServerStyle(server="nginx")
    if kind in ("https-sink", "http-sink"):
        server = TextProtocolServer(_sink_router(node, host), style, policy, name=host)
        await node.http(port, server, ip=ip, tls=tls if kind == "https-sink" else None)
    elif kind == "tcp-json":
        await node.tcp(port, lambda r, w: _json_heartbeat(node, host, r, w), ip=ip)
    elif kind == "tcp-config":
        await node.tcp(port, lambda r, w: _config_exchange(node, host, r, w), ip=ip)
    elif kind in ("mqtt", "mqtts"):
        await node.tcp(port, lambda r, w: _mqtt(node, host, r, w), ip=ip, tls=tls if kind == "mqtts" else None)
    elif kind == "tcp-relay":
        await node.tcp(port, lambda r, w: _drain(node, host, r, w), ip=ip)
    elif kind == "udp-p2p":
        await node.udp(port, lambda data, addr, ep: _p2p(node, host, data, addr, ep), ip=ip)
    else:
        raise ValueError(f"unknown cloud endpoint kind {kind}")


async def _json_heartbeat(node: Node, host: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """ULUCU device entry: newline-delimited JSON requests, JSON answers."""
    stats = _stats(node, host)
    stats["connections"] += 1
    try:
        while line := await reader.readline():
            stats["requests"] += 1
            stats["bytes_in"] += len(line)
            try:
                msg = json.loads(line)
                cmd = msg.get("cmd", "") if isinstance(msg, dict) else ""
            except ValueError:
                cmd = ""
            reply: dict[str, Any] = {"code": 0, "cmd": cmd, "msg": "success"}
            if cmd == "login":
                # The load balancer hands out a device-manager address (huidian.h protocol 2.1.2).
                reply["dm_addr"] = f"{host}:29023"
                reply["heartbeat"] = 20
            writer.write((json.dumps(reply) + "\n").encode())
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _config_exchange(node: Node, host: str, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
    """EZVIZ litedev 8666: a small request, a ~200-byte settings reply."""
    stats = _stats(node, host)
    stats["connections"] += 1
    try:
        while data := await reader.read(4096):
            stats["requests"] += 1
            stats["bytes_in"] += len(data)
            writer.write(b"\x9e\xba\xac\xe9" + json.dumps({"mqtt": "pushed", "ttl": 300}).encode().ljust(196, b" "))
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _mqtt(node: Node, host: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    stats = _stats(node, host)
    stats["connections"] += 1
    stats["requests"] += await mqtt.serve_broker(reader, writer)


async def _drain(node: Node, host: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    stats = _stats(node, host)
    stats["connections"] += 1
    try:
        while data := await reader.read(65536):
            stats["bytes_in"] += len(data)
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def _p2p(node: Node, host: str, data: bytes, addr: tuple[str, int], endpoint: UdpEndpoint) -> None:
    """Dahua P2P: HTTP-like DHGET/DHPOST signalling is answered; anything else is relay video."""
    stats = _stats(node, host)
    stats["bytes_in"] += len(data)
    if data.startswith((b"DHGET", b"DHPOST")):
        stats["requests"] += 1
        cseq = b"1"
        for line in data.split(b"\r\n"):
            if line.lower().startswith(b"cseq:"):
                cseq = line.split(b":", 1)[1].strip()
        body = b'<body><US>' + addr[0].encode() + b":" + str(addr[1]).encode() + b"</US></body>"
        endpoint.send(b"DHTTP/1.0 200 OK\r\nCSeq: " + cseq + b"\r\nContent-Length: " + str(len(body)).encode()
                      + b"\r\n\r\n" + body, addr)
    else:
        stats["relay_datagrams"] = stats.get("relay_datagrams", 0) + 1
