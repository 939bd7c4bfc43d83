"""Tuya consumer camera: local control port, UDP discovery beacons, Tuya cloud (no web, no RTSP).

protocols.md §0 / [S45] and tinytuya's scanner: a Tuya device listens on TCP 6668 (local control,
silent until a correctly keyed session starts) and broadcasts a discovery beacon every ~5 s to
UDP 6667 (protocol 3.3+). The beacon is framed ``000055AA | seq | cmd 0x13 | length | retcode |
AES-128-ECB(JSON) | CRC32 | 0000AA55``; the JSON (``ip``, ``gwId``, ``productKey``, ``version``...)
is encrypted with the well-known UDP key ``MD5("yGAdlopoPVldABfn")``, so any listener can read it.
Beacons are broadcast only in netns mode. The cloud side (clouds.md): HTTPS to ``a2.tuyaus.com``
(``/d.json``) and MQTT over TLS to ``m2.tuyaus.com:8883``.
"""

from __future__ import annotations

import hashlib
import json
import socket
import string
import struct
import zlib

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from scanner.lab import behaviour
from scanner.lab.devices.common import ident, silent_tcp
from scanner.lab.runtime.node import Node

LOCAL_CONTROL_PORT = 6668
BEACON_PORT = 6667  # protocol 3.3+ (encrypted); 6666 is the 3.1 plain-text beacon port
BEACON_INTERVAL_S = 5.0
BROADCAST = "255.255.255.255"
PREFIX = 0x000055AA
SUFFIX = 0x0000AA55
CMD_UDP_NEW = 0x13  # tinytuya UDP_NEW: 3.3 discovery broadcast
UDP_KEY = hashlib.md5(b"yGAdlopoPVldABfn").digest()
PROTOCOL_VERSION = "3.3"


def encrypt_udp(plaintext: bytes, key: bytes = UDP_KEY) -> bytes:
    """AES-128-ECB with PKCS#7 padding, as Tuya 3.3 devices encrypt beacons."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def decrypt_udp(ciphertext: bytes, key: bytes = UDP_KEY) -> bytes:
    """The inverse of ``encrypt_udp`` (what a beacon listener does)."""
    decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def frame(cmd: int, payload: bytes, seq: int = 0) -> bytes:
    """A 55AA frame: header, return code 0, payload, CRC32 over everything before it, suffix."""
    body = struct.pack(">I", 0) + payload
    header = struct.pack(">4I", PREFIX, seq, cmd, len(body) + 8)
    crc = zlib.crc32(header + body) & 0xFFFFFFFF
    return header + body + struct.pack(">2I", crc, SUFFIX)


class TuyaCamera:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.device_id = "eb" + node.rng.randbytes(9).hex()  # gwId: 20 characters
        alphabet = string.ascii_lowercase + string.digits
        self.product_key = "".join(node.rng.choice(alphabet) for _ in range(16))
        self.local_key = "".join(node.rng.choice(alphabet) for _ in range(16))
        self.serial = str(ident(node, "serial", self.device_id))

    def beacon_json(self) -> dict[str, object]:
        """The discovery document inside each beacon."""
        return {"ip": self.node.spec.ip, "gwId": self.device_id, "active": 2, "ability": 0, "mode": 0,
                "encrypt": True, "productKey": self.product_key, "version": PROTOCOL_VERSION}

    def beacon(self) -> bytes:
        """One encrypted 3.3 discovery datagram."""
        document = json.dumps(self.beacon_json(), separators=(",", ":")).encode()
        return frame(CMD_UDP_NEW, encrypt_udp(document))

    async def send_beacon(self) -> None:
        """Broadcast one beacon to 255.255.255.255:6667 from the device address (netns only)."""
        if not self.node.netns:
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.setblocking(False)
            sock.bind((self.node.spec.ip, 0))
            sock.sendto(self.beacon(), (BROADCAST, self.node.port(BEACON_PORT)))
        self.node.bump("tuya_beacons")


async def build_camera(node: Node) -> None:
    camera = TuyaCamera(node)
    await silent_tcp(node, LOCAL_CONTROL_PORT, on_bytes=lambda data: node.bump("tuya_local_bytes", len(data)))
    if node.netns:
        node.every(BEACON_INTERVAL_S, camera.send_beacon, jitter=0.02)
    behaviour.https_poll(node, "a2.tuyaus.com", 443, interval=60.0, path="/d.json")
    # MQTT credentials: the device id and 16 hex digits of MD5(localKey) (the Tuya device scheme).
    mqtt_password = hashlib.md5(camera.local_key.encode()).hexdigest()[8:24]
    behaviour.mqtt_keepalive(node, "m2.tuyaus.com", 8883, tls=True, interval=30.0,
                             username=camera.device_id, password=mqtt_password)
    node.control("tuya", lambda _m: {"ok": True, "gwId": camera.device_id, "productKey": camera.product_key})
