"""The loopback lab (no privileges needed): every unicast protocol works on 127.77.N.x, the
manifest says what loopback cannot do, and ``lab down`` leaves no process behind."""

from __future__ import annotations

import json
import socket
import time

import requests
from requests.auth import HTTPDigestAuth

from scanner.lab import lab
from tests.labfixtures import NETNS_LAB_ID, camsweep

LAB_ID = NETNS_LAB_ID + 4
IDLE_LAB_ID = NETNS_LAB_ID + 5


def _port(doc, port):
    return port + doc["port_offset"] if doc["port_offset"] and port < 1024 else port


def test_loopback_lab_up_use_and_down(tmp_path):
    manifest_path = tmp_path / "manifest.json"
    lab.down(LAB_ID)
    try:
        proc = camsweep("lab", "up", "--lab-id", str(LAB_ID), "--mode", "loopback", "--seed", "3",
                        "--manifest", str(manifest_path), "--visitor-interval", "0")
        assert f"lab {LAB_ID} up in loopback mode" in proc.stdout
        doc = json.loads(manifest_path.read_text())
        assert doc["mode"] == "loopback" and doc["features"]["multicast"] is False
        assert any("multicast" in item for item in doc["features"]["unavailable"])
        assert all(d["ip"].startswith(f"127.77.{LAB_ID}.") for d in doc["devices"])
        assert all(c["ip"].startswith(f"127.78.{LAB_ID}.") for c in doc["clouds"])

        hik = next(d for d in doc["devices"] if d["name"] == "hik-face")
        auth = HTTPDigestAuth(hik["credentials"]["username"], hik["credentials"]["password"])
        info = requests.get(f"http://{hik['ip']}:{_port(doc, 80)}/ISAPI/System/deviceInfo", auth=auth, timeout=5)
        assert hik["model"] in info.text and hik["serial"] in info.text

        for device in doc["devices"]:  # every listed TCP service answers
            for service in device["services"]:
                port = _port(doc, int(service.split("/")[1]))
                with socket.create_connection((device["ip"], port), timeout=3):
                    pass

        fired = camsweep("lab", "walkby", "hik-face", "--lab-id", str(LAB_ID))
        assert "visitor walked past hik-face" in fired.stdout
        # The cloud counts a picture when its request arrives, the camera only once it has read the
        # reply: wait for the burst to settle until both sides agree.
        deadline = time.monotonic() + 15
        pictures = uploaded = 0
        while time.monotonic() < deadline:
            status = lab.node_command(LAB_ID, "hik-face", {"cmd": "status"})
            uploaded = status["counters"].get("pictures_uploaded", 0)
            clouds = lab.node_command(LAB_ID, "clouds", {"cmd": "clouds"})["clouds"]
            pictures = clouds.get("storeface-pic.oss-cn-hangzhou.aliyuncs.com", {}).get("pictures", 0)
            if pictures >= 2 and uploaded == pictures:
                break
            time.sleep(0.1)
        assert pictures >= 2
        assert uploaded == pictures
    finally:
        down = camsweep("lab", "down", "--lab-id", str(LAB_ID))
    assert f"lab {LAB_ID} down" in down.stdout
    assert lab._node_processes(lab.statedir(LAB_ID)) == []
    assert not lab.statedir(LAB_ID).exists()


def test_walkby_on_a_lab_that_is_not_up_is_a_one_line_usage_error():
    proc = camsweep("lab", "walkby", "--lab-id", str(IDLE_LAB_ID), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"camsweep: error: lab {IDLE_LAB_ID} is not up "
                                   f"(camsweep lab up --lab-id {IDLE_LAB_ID})")


def test_unknown_mode_is_a_usage_error():
    proc = camsweep("lab", "up", "--lab-id", str(IDLE_LAB_ID), "--mode", "vlan", check=False)
    assert proc.returncode == 2
    assert "unknown lab mode 'vlan'" in proc.stderr
