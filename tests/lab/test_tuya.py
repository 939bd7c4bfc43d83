"""Tuya camera emulation: local port 6668, decryptable 3.3 beacons, and its Tuya cloud sessions."""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import time
import zlib

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from scanner.lab.devices import tuya
from tests.lab.harness import running_device
from tests.lab.test_office import port_open, running_with_clouds


def test_local_control_port_accepts_and_stays_silent(tmp_path):
    with running_device("tuya-cam", tmp_path) as dev:
        hello = b"\x00\x00\x55\xaa" + b"\x00" * 12 + b"\x00\x00\xaa\x55"
        with socket.create_connection((dev.ip, dev.port(6668)), timeout=5) as s:
            s.sendall(hello)
            s.settimeout(0.5)
            with pytest.raises(TimeoutError):
                s.recv(4096)
        deadline = time.monotonic() + 3
        while dev.node.counters.get("tuya_local_bytes") != len(hello) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dev.node.counters["tuya_local_bytes"] == len(hello)
        for port in (80, 554, 6666):  # no web server, no RTSP, 6666 is not a TCP service
            assert not port_open(dev.ip, dev.port(port))


def test_beacon_frame_decrypts_with_the_public_udp_key(tmp_path):
    with running_device("tuya-cam", tmp_path) as dev:
        camera = tuya.TuyaCamera(dev.node)
        datagram = camera.beacon()
        prefix, seq, cmd, length = struct.unpack(">4I", datagram[:16])
        assert (prefix, seq, cmd) == (0x000055AA, 0, 0x13)
        assert length == len(datagram) - 16
        assert datagram[-4:] == b"\x00\x00\xaa\x55"
        (crc,) = struct.unpack(">I", datagram[-8:-4])
        assert crc == zlib.crc32(datagram[:-8])
        assert datagram[16:20] == b"\x00\x00\x00\x00"  # return code
        ciphertext = datagram[20:-8]
        assert len(ciphertext) % 16 == 0 and b"gwId" not in ciphertext
        # Decrypt independently of the module, the way tinytuya's scanner does.
        key = hashlib.md5(b"yGAdlopoPVldABfn").digest()
        decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        plain = unpadder.update(decryptor.update(ciphertext) + decryptor.finalize()) + unpadder.finalize()
        doc = json.loads(plain)
        assert doc["ip"] == dev.ip
        assert doc["version"] == "3.3"
        assert doc["encrypt"] is True
        assert len(doc["gwId"]) == 20 and doc["gwId"] == camera.device_id
        assert len(doc["productKey"]) == 16


def test_beacons_are_never_sent_in_loopback_mode(tmp_path):
    with running_device("tuya-cam", tmp_path) as dev:
        dev.call(tuya.TuyaCamera(dev.node).send_beacon())
        time.sleep(0.3)
        assert "tuya_beacons" not in dev.node.counters


def test_cloud_https_poll_and_mqtts_session(tmp_path):
    with running_with_clouds("tuya-cam", tmp_path) as lab:
        counters = lab.device.node.counters
        assert lab.wait_for(lambda: counters.get("polls", 0) >= 1 and counters.get("mqtt_pings", 0) >= 1)
        poll = lab.stats("a2.tuyaus.com")
        assert poll["paths"] == ["/d.json"]
        assert poll["snis"] == ["a2.tuyaus.com"]
        assert poll["pictures"] == 0
        mqtt = lab.stats("m2.tuyaus.com")
        assert mqtt["connections"] == 1
