"""Just enough MQTT 3.1.1 (OASIS mqtt-v3.1.1 §2-3) for cloud keep-alives: CONNECT/CONNACK,
PINGREQ/PINGRESP, SUBSCRIBE/SUBACK, PUBLISH (QoS 0) and DISCONNECT."""

from __future__ import annotations

import asyncio
import struct

CONNECT, CONNACK, PUBLISH, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 1, 2, 3, 8, 9, 12, 13, 14


def encode_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([(kind << 4) | flags]) + encode_length(len(body)) + body


def _str(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, username: str | None = None, password: str | None = None,
                   keepalive: int = 60) -> bytes:
    flags = 0x02  # clean session
    payload = _str(client_id)
    if username is not None:
        flags |= 0x80
        payload += _str(username)
    if password is not None:
        flags |= 0x40
        payload += _str(password)
    variable = _str("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    return packet(CONNECT, 0, variable + payload)


def publish_packet(topic: str, message: bytes) -> bytes:
    return packet(PUBLISH, 0, _str(topic) + message)


PINGREQ_PACKET = packet(PINGREQ, 0, b"")


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(packet type, body); raises IncompleteReadError at EOF and ValueError on garbage."""
    first = (await reader.readexactly(1))[0]
    length = 0
    for shift in range(0, 28, 7):
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
    else:
        raise ValueError("malformed remaining length")
    if length > 1 << 20:
        raise ValueError("packet too large")
    return first >> 4, await reader.readexactly(length)


async def serve_broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       on_packet: object = None) -> int:
    """Answer one client until it disconnects; returns how many packets it sent."""
    count = 0
    try:
        while True:
            kind, body = await read_packet(reader)
            count += 1
            if kind == CONNECT:
                writer.write(packet(CONNACK, 0, b"\x00\x00"))
            elif kind == PINGREQ:
                writer.write(packet(PINGRESP, 0, b""))
            elif kind == SUBSCRIBE and len(body) >= 2:
                writer.write(packet(SUBACK, 0, body[:2] + b"\x00"))
            elif kind == DISCONNECT:
                break
            await writer.drain()
    except (asyncio.IncompleteReadError, ValueError, ConnectionError, OSError):
        pass
    finally:
        writer.close()
    return count
