"""The README's main command: camsweep demo builds the lab, scans it, shows uploads, cleans up."""

from __future__ import annotations

import json

from scanner.lab import lab, topology
from tests.labfixtures import NETNS_LAB_ID, camsweep


def test_demo_runs_end_to_end_and_leaves_nothing_behind(tmp_path):
    lab_id = NETNS_LAB_ID + 10
    result_path = tmp_path / "demo.json"
    proc = camsweep("demo", "--lab-id", str(lab_id), "--json", str(result_path), timeout=240)
    assert "scanning it as an inspector would" in proc.stdout
    assert "pictures -> storeface-pic.oss-cn-hangzhou.aliyuncs.com" in proc.stdout
    assert "the lab is down" in proc.stdout
    result = json.loads(result_path.read_text())
    assert sum(d["is_camera"] for d in result["devices"]) >= 10
    assert not lab.statedir(lab_id).exists()
    if topology.have_netns_privileges():
        assert topology.list_namespaces(f"csw{lab_id}-") == []
