"""camsweep analyze on captures of the loopback-mode lab (devices on 127.77.N.x, clouds on
127.78.N.x, the capture taken on ``lo``): the same verdicts as on the netns mirror
port -- every uploader with its destination and category, nobody else accused -- and no MAC
claimed, since loopback frames carry none."""

from __future__ import annotations

import json

import pytest

from scanner.lab import lab
from tests.labfixtures import NETNS_LAB_ID, camsweep

pytestmark = pytest.mark.root


@pytest.mark.parametrize("seed", [3])  # tests/test_demo.py runs the loopback lab with seed 6
def test_analyze_loopback_lab_capture(tmp_path, seed):
    lab_id = NETNS_LAB_ID + 19
    lab.down(lab_id)
    pcap = tmp_path / "lo.pcap"
    try:
        doc = lab.up(lab_id, "loopback", seed, visitor_interval=0)
        before = lab.node_command(lab_id, "clouds", {"cmd": "clouds"})["clouds"]
        camsweep("lab", "pcap", str(pcap), "--lab-id", str(lab_id), "--seconds", "12", "--walkby-every", "4",
                 timeout=120)
        after = lab.node_command(lab_id, "clouds", {"cmd": "clouds"})["clouds"]
    finally:
        lab.down(lab_id)
    result = json.loads(camsweep("analyze", str(pcap), "--json", "-").stdout)
    by_ip = {d["ip"]: d for d in result["devices"]}
    expected = {d["ip"]: d for d in doc["devices"] if d["expected"]["uploads_pictures"]}
    uploaders = {ip for ip, d in by_ip.items() for c in d["clouds"] if c["behaviour"] == "snapshot-upload"}
    assert uploaders == set(expected)
    for ip, truth in expected.items():
        assert by_ip[ip]["mac"] is None
        for cloud in (c for c in truth["clouds"] if c["purpose"] == "snapshots"):
            link = next(c for c in by_ip[ip]["clouds"] if c["ip"] == cloud["ip"] and c["port"] == cloud["port"])
            assert (link["behaviour"], link["host"], link["category"]) == (
                "snapshot-upload", cloud["host"], cloud["category"])
            received = after[cloud["host"]]["pictures"] - before.get(cloud["host"], {}).get("pictures", 0)
            assert received > 0
            assert abs(link["uploads"] - received) <= max(2, received // 4), (truth["name"], link["uploads"], received)
