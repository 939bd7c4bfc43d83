"""How lab devices talk to their clouds over time (clouds.md §2 traits).

* heartbeats/control: small periodic exchanges (ULUCU 29023 every 20 s, MQTT keep-alives,
  EZVIZ 8666 config, HTTPS polls);
* snapshot uploads: when a visitor walks by, a burst of 1-3 face crops (18-64 KB) and one
  scene picture (120-350 KB), each one HTTP request, 0.2-1 s apart, then idle;
* video relay: sustained upstream at a fixed bitrate, only while someone watches the live view.

Pictures are synthetic: a JPEG start-of-image marker and JFIF header, pseudo-random filler,
an end-of-image marker. No real face is ever produced.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import ssl
import time
from collections.abc import Callable

from scanner.lab.profiles import CLOUD_BY_HOST
from scanner.lab.runtime import mqtt
from scanner.lab.runtime.node import Node

FACE_CROP_BYTES = (18_000, 64_000)
SCENE_BYTES = (120_000, 350_000)


def synthetic_jpeg(rng: random.Random, size: int) -> bytes:
    """``size`` bytes shaped like a JPEG file (SOI, APP0/JFIF, filler, EOI). Not an image."""
    header = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    filler = rng.randbytes(max(0, size - len(header) - 2))
    return header + filler + b"\xff\xd9"


def address(node: Node, host: str) -> str:
    """Name to dial: the pushed address for config-pushed endpoints, else the DNS name."""
    if CLOUD_BY_HOST[host].no_dns:
        return node.spec.clouds[host]
    return host


async def http_request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    method: str,
    host: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> int:
    """Send one HTTP/1.1 request on an open connection and read the whole response; status."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    length = 0
    while True:
        line = await asyncio.wait_for(reader.readline(), 10)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip() or 0)
    if length:
        await reader.readexactly(length)
    parts = status_line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def snapshot_uploads(
    node: Node,
    host: str,
    port: int,
    *,
    tls: bool,
    method: str = "POST",
    path: Callable[[int], str] = lambda n: f"/upload/{n}.jpg",
    content_type: str = "image/jpeg",
    faces: tuple[int, int] = (1, 3),
    scene: bool = True,
    resolver: str | None = None,
    encoding: str = "raw",
) -> None:
    """On every walk-by: upload a burst of face crops (and a scene picture) to ``host``.

    ``encoding="json-base64"`` wraps each picture as ``{"Image": "<base64>"}`` the way face APIs
    (Tencent IAI, Baidu, Face++) take them; ``raw`` sends the JPEG bytes as the body.
    """

    async def burst() -> None:
        count = node.rng.randint(*faces)
        sizes = [node.rng.randint(*FACE_CROP_BYTES) for _ in range(count)]
        if scene:
            sizes.append(node.rng.randint(*SCENE_BYTES))
        conn = await node.open(address(node, host), port, tls=tls, resolver=resolver)
        if conn is None:
            node.bump("upload_failures")
            return
        reader, writer = conn
        try:
            for size in sizes:
                seq = node.counters.get("pictures_uploaded", 0) + 1
                picture = synthetic_jpeg(node.rng, size)
                ctype = content_type
                if encoding == "json-base64":
                    picture = json.dumps({"Image": base64.b64encode(picture).decode(),
                                          "GroupId": "store-visitors"}).encode()
                    ctype = "application/json"
                status = await http_request(reader, writer, method, host, path(seq), picture,
                                            {"Content-Type": ctype})
                if 200 <= status < 300:
                    node.bump("pictures_uploaded")
                    node.bump("picture_bytes_uploaded", size)
                await asyncio.sleep(node.rng.uniform(0.2, 1.0))
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError):
            node.bump("upload_failures")
        finally:
            writer.close()

    node.on_walkby(burst)


def https_poll(node: Node, host: str, port: int, *, interval: float, path: str = "/v1/status",
               body_bytes: int = 300, tls: bool = True, resolver: str | None = None) -> None:
    """A small periodic status POST (vendor management / telemetry)."""

    async def poll() -> None:
        conn = await node.open(address(node, host), port, tls=tls, resolver=resolver)
        if conn is None:
            return
        reader, writer = conn
        try:
            payload = json.dumps({"sn": node.spec.identity.get("serial", ""), "t": int(time.time()),
                                  "pad": "x" * body_bytes}).encode()
            await http_request(reader, writer, "POST", host, path, payload, {"Content-Type": "application/json"})
            node.bump("polls")
        finally:
            writer.close()

    node.every(interval, poll)


def json_line_heartbeat(node: Node, host: str, port: int, *, interval: float,
                        message: Callable[[str], dict[str, object]], resolver: str | None = None) -> None:
    """A persistent TCP connection carrying one JSON line per heartbeat (ULUCU 29023)."""
    conn_box: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def beat() -> None:
        conn = conn_box.get("c")
        if conn is None or conn[1].is_closing():
            opened = await node.open(address(node, host), port, resolver=resolver)
            if opened is None:
                return
            conn_box["c"] = conn = opened
            await _send_json(conn, message("login"))
        try:
            await _send_json(conn, message("heartbeat"))
            node.bump("heartbeats")
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            conn[1].close()
            conn_box.pop("c", None)

    node.every(interval, beat, jitter=0.02)


async def _send_json(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], msg: dict[str, object]) -> None:
    reader, writer = conn
    writer.write((json.dumps(msg) + "\n").encode())
    await writer.drain()
    await asyncio.wait_for(reader.readline(), 10)


def mqtt_keepalive(node: Node, host: str, port: int, *, interval: float, tls: bool = False,
                   username: str | None = None, password: str | None = None) -> None:
    """A persistent MQTT session with PINGREQ every ``interval`` seconds."""
    conn_box: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def ping() -> None:
        conn = conn_box.get("c")
        if conn is None or conn[1].is_closing():
            opened = await node.open(address(node, host), port, tls=tls)
            if opened is None:
                return
            conn_box["c"] = conn = opened
            client_id = str(node.spec.identity.get("serial", node.spec.name))
            conn[1].write(mqtt.connect_packet(client_id, username, password, keepalive=int(interval * 2)))
            await conn[1].drain()
            await asyncio.wait_for(mqtt.read_packet(conn[0]), 10)
            conn[1].write(mqtt.publish_packet(f"dev/{client_id}/status", b'{"online":1}'))
        try:
            conn[1].write(mqtt.PINGREQ_PACKET)
            await conn[1].drain()
            await asyncio.wait_for(mqtt.read_packet(conn[0]), 10)
            node.bump("mqtt_pings")
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            conn[1].close()
            conn_box.pop("c", None)

    node.every(interval, ping)


def tcp_exchange(node: Node, host: str, port: int, *, interval: float, request: bytes,
                 resolver: str | None = None) -> None:
    """Connect, send ``request``, read the reply, close; every ``interval`` (EZVIZ 8666)."""

    async def exchange() -> None:
        conn = await node.open(address(node, host), port, resolver=resolver)
        if conn is None:
            return
        reader, writer = conn
        try:
            writer.write(request)
            await writer.drain()
            await asyncio.wait_for(reader.read(4096), 10)
            node.bump("config_exchanges")
        finally:
            writer.close()

    node.every(interval, exchange)


def tcp_video_relay(node: Node, host: str, port: int, *, kbps: int = 1500) -> None:
    """While someone watches: stream ``kbps`` upstream over one TCP connection."""

    async def relay(seconds: float) -> None:
        conn = await node.open(address(node, host), port)
        if conn is None:
            return
        _, writer = conn
        chunk = 1400
        per_second = max(1, kbps * 1000 // 8 // chunk)
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                for _ in range(per_second // 10):
                    writer.write(node.rng.randbytes(chunk))
                    node.bump("video_bytes", chunk)
                await writer.drain()
                await asyncio.sleep(0.1)
        except (OSError, ConnectionError):
            pass
        finally:
            writer.close()

    node.on_watch(relay)


def udp_p2p(node: Node, host: str, port: int, *, interval: float = 30.0, kbps: int = 1200,
            resolver: str | None = None) -> None:
    """Dahua P2P: DHPOST registration every ``interval``; PTCP-like UDP video while watched."""
    box: dict[str, object] = {}

    async def ensure() -> tuple[asyncio.DatagramTransport, str] | None:
        ip = await node.resolve(host, resolver=resolver)
        if ip is None:
            return None
        if "t" not in box:
            transport, _ = await node.udp_client()
            box["t"] = transport
        return box["t"], ip  # type: ignore[return-value]

    async def register() -> None:
        got = await ensure()
        if got is None:
            return
        transport, ip = got
        serial = node.spec.identity.get("serial", "")
        seq = node.counters.get("p2p_registrations", 0) + 1
        msg = (f"DHPOST /online/p2psrv/{serial} HTTP/1.1\r\nCSeq: {seq}\r\n"
               f"Content-Length: 0\r\n\r\n").encode()
        transport.sendto(msg, (ip, node.port(port)))
        node.bump("p2p_registrations")

    async def video(seconds: float) -> None:
        got = await ensure()
        if got is None:
            return
        transport, ip = got
        per_tick = max(1, kbps * 1000 // 8 // 1200 // 20)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(per_tick):
                transport.sendto(b"\x00\x00\x00\x01PTCP" + node.rng.randbytes(1192), (ip, node.port(port)))
                node.bump("video_bytes", 1200)
            await asyncio.sleep(0.05)

    node.every(interval, register)
    node.on_watch(video)
